-- Metering schema: usage log, daily rollups, spend per period, credit ledger, credit state.

-- Append-only raw log; request_id is the idempotency key (INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE usage_log (
    request_id      text PRIMARY KEY,
    event_id        uuid        NOT NULL,
    started_at      timestamptz NOT NULL,
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    period          text        NOT NULL,            -- UTC month of started_at, 'YYYY-MM'
    user_id         text,
    key_id          text,
    purpose         text        NOT NULL,
    requested_model text,
    model           text,
    upstream_model  text,
    provider_id     text,
    provider        text,
    deployment_id   text,
    byok            boolean     NOT NULL DEFAULT false,
    input_tokens    bigint      NOT NULL,
    output_tokens   bigint      NOT NULL,
    cached_tokens   bigint      NOT NULL,
    estimated       boolean     NOT NULL DEFAULT false,
    cost_usd        numeric(24, 9) NOT NULL,
    latency_ms      double precision NOT NULL,
    ttft_ms         double precision,
    status          integer     NOT NULL,
    outcome         text        NOT NULL,
    error_code      text,
    stream          boolean     NOT NULL DEFAULT false,
    fallbacks       integer     NOT NULL DEFAULT 0,
    attempts        jsonb       NOT NULL DEFAULT '[]'::jsonb,
    source          text        NOT NULL
);
CREATE INDEX usage_log_started_idx ON usage_log (started_at DESC);
CREATE INDEX usage_log_user_idx ON usage_log (user_id, started_at DESC);
CREATE INDEX usage_log_key_idx ON usage_log (key_id, started_at DESC);
CREATE INDEX usage_log_source_idx ON usage_log (source, started_at DESC);

CREATE FUNCTION usage_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'usage_log is append-only';
END $$;
CREATE TRIGGER usage_log_no_change BEFORE UPDATE OR DELETE ON usage_log
    FOR EACH ROW EXECUTE FUNCTION usage_log_append_only();

-- Daily rollup maintained in the ingest transaction; analytics read this, never the raw log.
-- lat_hist counts requests per latency bucket (bounds in turnout_metering.latency).
CREATE TABLE usage_daily (
    day            date    NOT NULL,
    user_id        text    NOT NULL DEFAULT '',
    key_id         text    NOT NULL DEFAULT '',
    model          text    NOT NULL DEFAULT '',
    provider       text    NOT NULL DEFAULT '',
    source         text    NOT NULL DEFAULT '',
    outcome        text    NOT NULL DEFAULT '',
    requests       bigint  NOT NULL,
    errors         bigint  NOT NULL,
    input_tokens   bigint  NOT NULL,
    output_tokens  bigint  NOT NULL,
    cached_tokens  bigint  NOT NULL,
    cost_usd       numeric(24, 9) NOT NULL,
    latency_sum_ms double precision NOT NULL,
    lat_hist       bigint[] NOT NULL,
    PRIMARY KEY (day, user_id, key_id, model, provider, source, outcome)
);
CREATE INDEX usage_daily_user_idx ON usage_daily (user_id, day);
CREATE INDEX usage_daily_source_idx ON usage_daily (source, day);

-- Spend per subject ('user' | 'key') per UTC month.
CREATE TABLE spend (
    subject_type text NOT NULL CHECK (subject_type IN ('user', 'key')),
    subject_id   text NOT NULL,
    period       text NOT NULL,
    spent_usd    numeric(24, 9) NOT NULL DEFAULT 0,
    requests     bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject_type, subject_id, period)
);

-- Prepaid credit: a user has an account once it receives credit (grant or tier credits).
CREATE TABLE credit_accounts (
    user_id     text PRIMARY KEY,
    balance_usd numeric(24, 9) NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE credit_ledger (
    id          bigserial PRIMARY KEY,
    user_id     text NOT NULL REFERENCES credit_accounts (user_id),
    kind        text NOT NULL CHECK (kind IN ('grant', 'debit', 'adjustment', 'expiry')),
    amount_usd  numeric(24, 9) NOT NULL,
    period      text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    ref         text,                      -- idempotency reference (tier grant, expiry, batch)
    actor       text NOT NULL DEFAULT 'system',
    requests    bigint NOT NULL DEFAULT 0, -- usage records a debit covers
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX credit_ledger_ref_idx ON credit_ledger (user_id, kind, ref) WHERE ref IS NOT NULL;
CREATE INDEX credit_ledger_user_idx ON credit_ledger (user_id, id DESC);

CREATE FUNCTION credit_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'credit_ledger is append-only';
END $$;
CREATE TRIGGER credit_ledger_no_change BEFORE UPDATE OR DELETE ON credit_ledger
    FOR EACH ROW EXECUTE FUNCTION credit_ledger_append_only();

-- Last published turnout.credit.v1 state per subject (seq grows per subject).
CREATE TABLE credit_state (
    subject_type  text NOT NULL,
    subject_id    text NOT NULL,
    seq           bigint NOT NULL,
    period        text NOT NULL,
    limit_usd     numeric(24, 9),
    spent_usd     numeric(24, 9) NOT NULL,
    remaining_usd numeric(24, 9),
    balance_usd   numeric(24, 9),
    blocked       boolean NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject_type, subject_id)
);

-- UTC months whose rollover (tier credit expiry + grant, cap reset events) is done.
CREATE TABLE periods (
    period       text PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);
