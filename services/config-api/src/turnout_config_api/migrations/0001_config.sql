-- Schema `config`: the admin control plane (providers, catalog, routing, users, keys, audit).
-- Every entity row carries the config revision of its latest change.

CREATE SEQUENCE IF NOT EXISTS config_revision AS bigint START 1;

CREATE TABLE tiers (
    name                text PRIMARY KEY,
    rank                integer NOT NULL CHECK (rank >= 0),
    monthly_credits_usd numeric(20, 9) NOT NULL DEFAULT 0 CHECK (monthly_credits_usd >= 0),
    rpm_limit           integer CHECK (rpm_limit > 0),
    tpm_limit           integer CHECK (tpm_limit > 0),
    revision            bigint NOT NULL DEFAULT 0,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE providers (
    id                text PRIMARY KEY,
    name              text NOT NULL UNIQUE,
    kind              text NOT NULL,
    base_url          text NOT NULL,
    enabled           boolean NOT NULL DEFAULT true,
    api_key_encrypted text,
    api_key_hint      text,
    rpm_limit         integer,
    tpm_limit         integer,
    priority          integer NOT NULL DEFAULT 0,
    weight            integer NOT NULL DEFAULT 1 CHECK (weight >= 0),
    min_tier          text NOT NULL DEFAULT 'free',
    is_system         boolean NOT NULL DEFAULT false,
    timeout_s         double precision NOT NULL DEFAULT 60,
    metadata          jsonb NOT NULL DEFAULT '{}'::jsonb,
    revision          bigint NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE models (
    id                     text PRIMARY KEY,
    name                   text NOT NULL,
    provider_id            text NOT NULL REFERENCES providers (id) ON DELETE RESTRICT,
    upstream_model         text NOT NULL,
    purposes               text[] NOT NULL DEFAULT ARRAY['chat'],
    context_window         integer,
    max_output_tokens      integer,
    capabilities           jsonb NOT NULL DEFAULT '{}'::jsonb,
    input_price_per_mtok   numeric(20, 9) NOT NULL DEFAULT 0 CHECK (input_price_per_mtok >= 0),
    output_price_per_mtok  numeric(20, 9) NOT NULL DEFAULT 0 CHECK (output_price_per_mtok >= 0),
    cached_price_per_mtok  numeric(20, 9) CHECK (cached_price_per_mtok >= 0),
    power_level            text,
    min_tier               text NOT NULL DEFAULT 'free',
    enabled                boolean NOT NULL DEFAULT true,
    deprecated             boolean NOT NULL DEFAULT false,
    priority               integer NOT NULL DEFAULT 0,
    weight                 integer NOT NULL DEFAULT 1 CHECK (weight >= 0),
    fallbacks              text[] NOT NULL DEFAULT '{}',
    aliases                text[] NOT NULL DEFAULT '{}',
    revision               bigint NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider_id, upstream_model)
);
CREATE INDEX models_name_idx ON models (name);

CREATE TABLE routes (
    purpose    text PRIMARY KEY,
    model      text NOT NULL,
    fallbacks  text[] NOT NULL DEFAULT '{}',
    revision   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE routing_rules (
    id            text PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    enabled       boolean NOT NULL DEFAULT true,
    priority      integer NOT NULL DEFAULT 100,
    power_level   text,
    tier          text,
    task_type     text,
    model         text,
    min_tokens    integer,
    max_tokens    integer,
    requires_byok boolean NOT NULL DEFAULT false,
    targets       text[] NOT NULL,
    weight        integer NOT NULL DEFAULT 1 CHECK (weight >= 0),
    revision      bigint NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id                 text PRIMARY KEY,
    tier               text NOT NULL REFERENCES tiers (name) ON UPDATE CASCADE,
    monthly_budget_usd numeric(20, 9) CHECK (monthly_budget_usd >= 0),
    enabled            boolean NOT NULL DEFAULT true,
    revision           bigint NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE virtual_keys (
    id             text PRIMARY KEY,
    user_id        text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           text NOT NULL,
    key_hash       text NOT NULL UNIQUE,
    key_hint       text NOT NULL,
    allowed_models text[],
    rpm_limit      integer,
    tpm_limit      integer,
    budget_usd     numeric(20, 9) CHECK (budget_usd >= 0),
    expires_at     timestamptz,
    revoked        boolean NOT NULL DEFAULT false,
    revision       bigint NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX virtual_keys_user_idx ON virtual_keys (user_id);

CREATE TABLE byok_keys (
    user_id           text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider_id       text NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    api_key_encrypted text NOT NULL,
    api_key_hint      text NOT NULL,
    revision          bigint NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, provider_id)
);

CREATE TABLE admin_tokens (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    token_hash text NOT NULL UNIQUE,
    revoked    boolean NOT NULL DEFAULT false,
    created_by text NOT NULL,
    revision   bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    entity      text NOT NULL,
    entity_id   text NOT NULL,
    before      jsonb,
    after       jsonb,
    diff        jsonb NOT NULL DEFAULT '{}'::jsonb,
    request_id  text,
    revision    bigint NOT NULL
);
CREATE INDEX audit_entity_idx ON audit_log (entity, entity_id);
CREATE INDEX audit_at_idx ON audit_log (at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Seed tiers: rows, audit entries and their config events (through the outbox) in this
-- migration's transaction, so consumers see them on the topic like any other change.
INSERT INTO tiers (name, rank, monthly_credits_usd, rpm_limit, tpm_limit, revision)
SELECT t.name, t.rank, t.credits, t.rpm, t.tpm, nextval('config_revision')
FROM (VALUES ('free', 0, 0::numeric, 20, 40000),
             ('starter', 1, 10::numeric, 60, 200000),
             ('professional', 2, 50::numeric, 300, 1000000),
             ('enterprise', 3, 500::numeric, 3000, 10000000))
     AS t(name, rank, credits, rpm, tpm)
ORDER BY t.rank;

INSERT INTO audit_log (actor, action, entity, entity_id, after, request_id, revision)
SELECT 'system', 'seed', 'tier', name,
       jsonb_build_object('name', name, 'rank', rank,
                          'monthly_credits_usd', trim_scale(monthly_credits_usd)::text,
                          'rpm_limit', rpm_limit, 'tpm_limit', tpm_limit),
       'migration-0001', revision
FROM tiers ORDER BY revision;

INSERT INTO outbox (topic, key, payload)
SELECT 'turnout.config.v1',
       convert_to('tier:' || name, 'UTF8'),
       convert_to(jsonb_build_object(
           'event_id', gen_random_uuid(),
           'schema_version', 1,
           'occurred_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           'revision', revision,
           'entity', 'tier',
           'entity_id', name,
           'op', 'upsert',
           'data', jsonb_build_object('name', name, 'rank', rank,
                                      'monthly_credits_usd', trim_scale(monthly_credits_usd)::text,
                                      'rpm_limit', rpm_limit, 'tpm_limit', tpm_limit)
       )::text, 'UTF8')
FROM tiers ORDER BY revision;
