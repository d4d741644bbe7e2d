-- usage_daily keys its rows by provider id as well as provider name. The SPEC lets you refer
-- to a provider by name or by id, and a provider can be renamed. With the id in the rollup, a
-- summary filtered by id also counts the rows recorded under the provider's earlier names.
--
-- Existing rows get their provider_id from a rebuild of the rollup out of usage_log, not from
-- a guess. usage_log is append-only and complete, and it is the only source of usage_daily
-- (the ingest statement adds exactly the rows it inserted there). So the rebuild is exact,
-- even for a day and name that two provider ids served; a backfill by (day, name) could only
-- leave those rows at ''. The aggregate is the one in turnout_metering.ingest, with the
-- latency buckets of turnout_metering.latency.BOUNDS (bucket_index_sql and histogram_sql,
-- written out); services/metering/tests/test_migrations.py checks that the rebuilt rollup
-- equals the one ingest builds. The rebuild is one pass over usage_log. It holds usage_daily's
-- lock until it commits, so ingest waits for it. Records without a provider id keep ''.

ALTER TABLE usage_daily DROP CONSTRAINT usage_daily_pkey;
ALTER TABLE usage_daily ADD COLUMN provider_id text NOT NULL DEFAULT '';
TRUNCATE usage_daily;

INSERT INTO usage_daily (day, user_id, key_id, model, provider_id, provider, source, outcome,
                         requests, errors, input_tokens, output_tokens, cached_tokens, cost_usd,
                         latency_sum_ms, lat_hist)
SELECT (started_at AT TIME ZONE 'UTC')::date, coalesce(user_id, ''), coalesce(key_id, ''),
       coalesce(model, ''), coalesce(provider_id, ''), coalesce(provider, ''), source, outcome,
       count(*), count(*) FILTER (WHERE outcome <> 'success'), sum(input_tokens),
       sum(output_tokens), sum(cached_tokens), sum(cost_usd), sum(latency_ms),
       ARRAY[count(*) FILTER (WHERE b = 0), count(*) FILTER (WHERE b = 1),
             count(*) FILTER (WHERE b = 2), count(*) FILTER (WHERE b = 3),
             count(*) FILTER (WHERE b = 4), count(*) FILTER (WHERE b = 5),
             count(*) FILTER (WHERE b = 6), count(*) FILTER (WHERE b = 7),
             count(*) FILTER (WHERE b = 8), count(*) FILTER (WHERE b = 9),
             count(*) FILTER (WHERE b = 10), count(*) FILTER (WHERE b = 11),
             count(*) FILTER (WHERE b = 12), count(*) FILTER (WHERE b = 13),
             count(*) FILTER (WHERE b = 14), count(*) FILTER (WHERE b = 15),
             count(*) FILTER (WHERE b = 16), count(*) FILTER (WHERE b = 17),
             count(*) FILTER (WHERE b = 18), count(*) FILTER (WHERE b = 19),
             count(*) FILTER (WHERE b = 20), count(*) FILTER (WHERE b = 21),
             count(*) FILTER (WHERE b = 22), count(*) FILTER (WHERE b = 23),
             count(*) FILTER (WHERE b = 24)]::bigint[]
FROM (
    SELECT *, width_bucket(latency_ms, ARRAY[5.0, 10.0, 20.0, 30.0, 50.0, 75.0, 100.0, 150.0,
                                             200.0, 300.0, 500.0, 750.0, 1000.0, 1500.0,
                                             2000.0, 3000.0, 5000.0, 7500.0, 10000.0, 15000.0,
                                             20000.0, 30000.0, 60000.0, 120000.0]::float8[]) AS b
    FROM usage_log
) n
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

ALTER TABLE usage_daily
    ADD PRIMARY KEY (day, user_id, key_id, model, provider_id, provider, source, outcome);

-- The latest name each provider id was recorded under: the one with the latest started_at,
-- and on a tie the greatest name. Summaries grouped by provider show a provider's rollup rows
-- under this name, so a renamed provider makes one row. Ingest keeps it current in the same
-- statement that writes usage_daily.
CREATE TABLE provider_names (
    provider_id text PRIMARY KEY,
    name        text        NOT NULL,
    seen_at     timestamptz NOT NULL   -- started_at of the record that gave the name
);

INSERT INTO provider_names (provider_id, name, seen_at)
SELECT DISTINCT ON (provider_id) provider_id, provider, started_at
FROM usage_log
WHERE provider_id <> '' AND provider <> ''
ORDER BY provider_id, started_at DESC, provider DESC;
