-- usage_log becomes a table partitioned by time (native declarative partitioning, RANGE on
-- started_at), so that years of raw usage stay cheap to write and old months can be dropped
-- whole (retention, turnout_metering.usage.partitions) instead of deleted row by row.
--
-- * The key is (request_id, started_at): a unique index of a partitioned table must hold the
--   partition key. A redelivered record is the same event with the same started_at, so
--   ingest's ON CONFLICT (request_id, started_at) DO NOTHING keeps it idempotent.
-- * Partitions are named usage_log_pYYYYMMDD_YYYYMMDD after their bounds [from, to) in UTC;
--   usage_log_create_partition() is the only way they are made (this migration, and metering's
--   periodic task and ingest, which create them ahead and on demand, monthly or daily).
-- * Append-only per partition: the row trigger of the parent is cloned onto every partition
--   (UPDATE and DELETE refused there too) and each partition gets its own TRUNCATE trigger
--   (a statement trigger of the parent does not fire for a TRUNCATE of one partition).
--   Dropping a whole partition is retention's job (TURNOUT_USAGE_RETENTION_DAYS).
-- * The rows move in this transaction: one INSERT ... SELECT from the old table, checked
--   (count and money per column) before the old table is dropped; a mismatch aborts the
--   migration and leaves everything as it was.

ALTER TABLE usage_log RENAME TO usage_log_unpartitioned;
ALTER TABLE usage_log_unpartitioned RENAME CONSTRAINT usage_log_pkey TO usage_log_unpartitioned_pkey;
DROP INDEX usage_log_started_idx;
DROP INDEX usage_log_user_idx;
DROP INDEX usage_log_key_idx;
DROP INDEX usage_log_source_idx;

CREATE TABLE usage_log (
    request_id      text        NOT NULL,
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
    billed_usd      numeric(24, 9),
    latency_ms      double precision NOT NULL,
    ttft_ms         double precision,
    status          integer     NOT NULL,
    outcome         text        NOT NULL,
    error_code      text,
    stream          boolean     NOT NULL DEFAULT false,
    fallbacks       integer     NOT NULL DEFAULT 0,
    attempts        jsonb       NOT NULL DEFAULT '[]'::jsonb,
    source          text        NOT NULL,
    route           text,
    power_level     text,
    task_type       text,
    api             text,
    PRIMARY KEY (request_id, started_at)
) PARTITION BY RANGE (started_at);
CREATE INDEX usage_log_started_idx ON usage_log (started_at DESC);
CREATE INDEX usage_log_user_idx ON usage_log (user_id, started_at DESC);
CREATE INDEX usage_log_key_idx ON usage_log (key_id, started_at DESC);
CREATE INDEX usage_log_source_idx ON usage_log (source, started_at DESC);

CREATE TRIGGER usage_log_no_change BEFORE UPDATE OR DELETE ON usage_log
    FOR EACH ROW EXECUTE FUNCTION usage_log_append_only();
CREATE TRIGGER usage_log_no_truncate BEFORE TRUNCATE ON usage_log
    FOR EACH STATEMENT EXECUTE FUNCTION usage_log_append_only();

-- Create the partition [lo, hi) unless one with that name exists; answers its name. Callers
-- make sure the range overlaps no other partition (turnout_metering.usage.partitions plans them).
CREATE FUNCTION usage_log_create_partition(lo timestamptz, hi timestamptz)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    name text := 'usage_log_p' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD')
                 || '_' || to_char(hi AT TIME ZONE 'UTC', 'YYYYMMDD');
BEGIN
    IF to_regclass(format('%I.%I', '{schema}', name)) IS NOT NULL THEN
        RETURN name;
    END IF;
    EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.usage_log FOR VALUES FROM (%L) TO (%L)',
                   '{schema}', name, '{schema}', lo, hi);
    EXECUTE format('CREATE TRIGGER usage_log_no_truncate BEFORE TRUNCATE ON %I.%I'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION %I.usage_log_append_only()',
                   '{schema}', name, '{schema}');
    RETURN name;
END $$;

-- Monthly partitions for every month that has rows, and for this month and the next.
SELECT usage_log_create_partition(m, m + interval '1 month')
FROM (
    SELECT date_trunc('month', started_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS m
    FROM usage_log_unpartitioned
    UNION
    SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    UNION
    SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
) months ORDER BY m;

INSERT INTO usage_log (request_id, event_id, started_at, ingested_at, period, user_id, key_id,
                       purpose, requested_model, model, upstream_model, provider_id, provider,
                       deployment_id, byok, input_tokens, output_tokens, cached_tokens,
                       estimated, cost_usd, billed_usd, latency_ms, ttft_ms, status, outcome,
                       error_code,
                       stream, fallbacks, attempts, source, route, power_level, task_type,
                       api)
SELECT request_id, event_id, started_at, ingested_at, period, user_id, key_id, purpose,
       requested_model, model, upstream_model, provider_id, provider, deployment_id, byok,
       input_tokens, output_tokens, cached_tokens, estimated, cost_usd, billed_usd, latency_ms,
       ttft_ms,
       status, outcome, error_code, stream, fallbacks, attempts, source, route, power_level,
       task_type, api
FROM usage_log_unpartitioned;

DO $$
DECLARE
    old record;
    new record;
BEGIN
    SELECT count(*) AS n, sum(cost_usd) AS cost, sum(billed_usd) AS billed,
           sum(input_tokens) AS i, sum(output_tokens) AS o, sum(cached_tokens) AS c
      INTO old FROM usage_log_unpartitioned;
    SELECT count(*) AS n, sum(cost_usd) AS cost, sum(billed_usd) AS billed,
           sum(input_tokens) AS i, sum(output_tokens) AS o, sum(cached_tokens) AS c
      INTO new FROM usage_log;
    IF (old.n, old.cost, old.billed, old.i, old.o, old.c)
       IS DISTINCT FROM (new.n, new.cost, new.billed, new.i, new.o, new.c) THEN
        RAISE EXCEPTION 'usage_log partitioning moved % rows (cost %), expected % (cost %)',
            new.n, new.cost, old.n, old.cost;
    END IF;
END $$;

-- DROP is not UPDATE, DELETE or TRUNCATE: the old table's triggers go with it.
DROP TABLE usage_log_unpartitioned;
