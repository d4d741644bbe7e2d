-- Probe history (bounded by the retention task), current state per provider, and
-- passive counters per 100 ms from turnout.usage.v1 (shared by every replica).
CREATE TABLE probe_history (
    id           bigserial PRIMARY KEY,
    provider_id  text             NOT NULL,
    at           timestamptz      NOT NULL DEFAULT now(),
    status       text             NOT NULL,
    circuit      text             NOT NULL,
    http_status  integer,
    latency_ms   double precision,
    reason       text             NOT NULL DEFAULT ''
);
CREATE INDEX probe_history_provider_idx ON probe_history (provider_id, id DESC);
CREATE INDEX probe_history_at_idx ON probe_history (at);

-- deployment_id '' is the provider itself; other rows are deployments (passive circuits)
CREATE TABLE provider_state (
    provider_id         text             NOT NULL,
    deployment_id       text             NOT NULL DEFAULT '',
    status              text             NOT NULL,
    circuit             text             NOT NULL,
    auto_disabled       boolean          NOT NULL DEFAULT false,
    latency_ms          double precision,
    reason              text             NOT NULL DEFAULT '',
    recent_failures     integer          NOT NULL DEFAULT 0,
    last_probe_at       timestamptz,
    changed_at          timestamptz      NOT NULL DEFAULT now(),
    circuit_changed_at  timestamptz,
    opened_at           timestamptz,
    PRIMARY KEY (provider_id, deployment_id)
);

CREATE TABLE passive_buckets (
    provider_id     text             NOT NULL,
    deployment_id   text             NOT NULL DEFAULT '',
    bucket          timestamptz      NOT NULL,
    requests        integer          NOT NULL DEFAULT 0,
    errors          integer          NOT NULL DEFAULT 0,
    latency_ms_sum  double precision NOT NULL DEFAULT 0,
    latency_ms_max  double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (provider_id, deployment_id, bucket)
);
CREATE INDEX passive_buckets_bucket_idx ON passive_buckets (bucket);
