-- Erasure keeps usage_daily_models in step (it left it alone before): that rollup has no
-- user and no key, but it has the requests' sources, and a source can be as personal as
-- "alice-laptop" (x-turnout-source is free text). erase_usage_subject() renames the user's
-- sources in usage_log and usage_daily; it now also moves the user's share of each
-- usage_daily_models row from the source to its pseudonym (the user's usage_daily rows,
-- summed per usage_daily_models row: subtracted there, added under the pseudonym, a row left
-- with no request deleted). So usage_daily_models stays exactly usage_daily summed without
-- users and keys, holds no erased source, and counts by source (GET /usage?source=...,
-- GET /lab/history's total) can come from it instead of counting log rows one by one.
--
-- The rest of the function is 0009's, unchanged. Erasures made before this migration left
-- their sources in usage_daily_models: if there were any, it is filled again from
-- usage_daily (as migration 0011 filled it).

CREATE OR REPLACE FUNCTION erase_usage_subject(p_user text, p_keys text[], aliases jsonb,
                                               p_actor text, p_reason text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
DECLARE
    n_rows bigint;
    n_rollup bigint;
    cost numeric(24, 9);
    audit_id bigint;
BEGIN
    PERFORM set_config('turnout.usage_erasure', 'on', true);
    WITH changed AS (
        UPDATE usage_log SET
            user_id = coalesce(aliases -> 'user_id' ->> user_id, user_id),
            key_id = coalesce(aliases -> 'key_id' ->> key_id, key_id),
            source = coalesce(aliases -> 'source' ->> source, source),
            task_type = coalesce(aliases -> 'task_type' ->> task_type, task_type)
        WHERE user_id = p_user OR key_id = ANY (p_keys)
        RETURNING cost_usd
    )
    SELECT count(*), coalesce(sum(cost_usd), 0) INTO n_rows, cost FROM changed;
    PERFORM set_config('turnout.usage_erasure', 'off', true);

    -- the user's share of usage_daily_models, from the user's usage_daily rows (before they
    -- move below): taken from each row under its source, added under the pseudonym
    WITH mine AS (
        SELECT day, model, provider_id, provider, source, outcome,
               aliases -> 'source' ->> source AS alias,
               sum(requests) AS requests, sum(errors) AS errors,
               sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
               sum(cached_tokens) AS cached_tokens, sum(cost_usd) AS cost_usd,
               sum(billed_usd) AS billed_usd, sum(latency_sum_ms) AS latency_sum_ms,
               ARRAY[
                   sum(lat_hist[1]), sum(lat_hist[2]), sum(lat_hist[3]), sum(lat_hist[4]), sum(lat_hist[5]),
                   sum(lat_hist[6]), sum(lat_hist[7]), sum(lat_hist[8]), sum(lat_hist[9]), sum(lat_hist[10]),
                   sum(lat_hist[11]), sum(lat_hist[12]), sum(lat_hist[13]), sum(lat_hist[14]), sum(lat_hist[15]),
                   sum(lat_hist[16]), sum(lat_hist[17]), sum(lat_hist[18]), sum(lat_hist[19]), sum(lat_hist[20]),
                   sum(lat_hist[21]), sum(lat_hist[22]), sum(lat_hist[23]), sum(lat_hist[24]), sum(lat_hist[25])
               ]::bigint[] AS lat_hist
        FROM usage_daily
        WHERE (user_id = p_user OR key_id = ANY (p_keys))
          AND aliases -> 'source' ->> source IS NOT NULL
        GROUP BY day, model, provider_id, provider, source, outcome
    ), taken AS (
        UPDATE usage_daily_models m SET
            requests = m.requests - x.requests,
            errors = m.errors - x.errors,
            input_tokens = m.input_tokens - x.input_tokens,
            output_tokens = m.output_tokens - x.output_tokens,
            cached_tokens = m.cached_tokens - x.cached_tokens,
            cost_usd = m.cost_usd - x.cost_usd,
            billed_usd = m.billed_usd - x.billed_usd,
            latency_sum_ms = m.latency_sum_ms - x.latency_sum_ms,
            lat_hist = (SELECT array_agg(a - b ORDER BY i)
                        FROM unnest(m.lat_hist, x.lat_hist) WITH ORDINALITY AS t(a, b, i))
        FROM mine x
        WHERE (m.day, m.model, m.provider_id, m.provider, m.source, m.outcome)
            = (x.day, x.model, x.provider_id, x.provider, x.source, x.outcome)
        RETURNING 1
    )
    INSERT INTO usage_daily_models AS d (day, model, provider_id, provider, source, outcome,
                                         requests, errors, input_tokens, output_tokens,
                                         cached_tokens, cost_usd, billed_usd, latency_sum_ms,
                                         lat_hist)
    SELECT day, model, provider_id, provider, alias, outcome, requests, errors, input_tokens,
           output_tokens, cached_tokens, cost_usd, billed_usd, latency_sum_ms, lat_hist
    FROM mine
    ON CONFLICT (day, model, provider_id, provider, source, outcome) DO UPDATE SET
        requests = d.requests + EXCLUDED.requests,
        errors = d.errors + EXCLUDED.errors,
        input_tokens = d.input_tokens + EXCLUDED.input_tokens,
        output_tokens = d.output_tokens + EXCLUDED.output_tokens,
        cached_tokens = d.cached_tokens + EXCLUDED.cached_tokens,
        cost_usd = d.cost_usd + EXCLUDED.cost_usd,
        billed_usd = d.billed_usd + EXCLUDED.billed_usd,
        latency_sum_ms = d.latency_sum_ms + EXCLUDED.latency_sum_ms,
        lat_hist = (SELECT array_agg(a + b ORDER BY i)
                    FROM unnest(d.lat_hist, EXCLUDED.lat_hist) WITH ORDINALITY AS t(a, b, i));
    DELETE FROM usage_daily_models
    WHERE requests = 0 AND source IN (SELECT jsonb_object_keys(aliases -> 'source'));

    WITH gone AS (
        DELETE FROM usage_daily WHERE user_id = p_user OR key_id = ANY (p_keys) RETURNING *
    ), moved AS (
        INSERT INTO usage_daily AS d (day, user_id, key_id, model, provider_id, provider, source,
                                      outcome, requests, errors, input_tokens, output_tokens,
                                      cached_tokens, cost_usd, billed_usd, latency_sum_ms,
                                      lat_hist)
        SELECT day, coalesce(aliases -> 'user_id' ->> nullif(user_id, ''), user_id),
               coalesce(aliases -> 'key_id' ->> nullif(key_id, ''), key_id), model,
               provider_id, provider, coalesce(aliases -> 'source' ->> source, source),
               outcome, requests, errors, input_tokens, output_tokens, cached_tokens, cost_usd,
               billed_usd, latency_sum_ms, lat_hist
        FROM gone
        ON CONFLICT (day, user_id, key_id, model, provider_id, provider, source, outcome)
        DO UPDATE SET
            requests = d.requests + EXCLUDED.requests,
            errors = d.errors + EXCLUDED.errors,
            input_tokens = d.input_tokens + EXCLUDED.input_tokens,
            output_tokens = d.output_tokens + EXCLUDED.output_tokens,
            cached_tokens = d.cached_tokens + EXCLUDED.cached_tokens,
            cost_usd = d.cost_usd + EXCLUDED.cost_usd,
            billed_usd = d.billed_usd + EXCLUDED.billed_usd,
            latency_sum_ms = d.latency_sum_ms + EXCLUDED.latency_sum_ms,
            lat_hist = (SELECT array_agg(x + y ORDER BY i)
                        FROM unnest(d.lat_hist, EXCLUDED.lat_hist) WITH ORDINALITY AS t(x, y, i))
        RETURNING 1
    )
    SELECT count(*) INTO n_rollup FROM moved;

    INSERT INTO usage_erasures (subject_alias, keys, usage_rows, rollup_rows, cost_usd, actor,
                                reason)
    VALUES (aliases -> 'user_id' ->> p_user, coalesce(array_length(p_keys, 1), 0), n_rows,
            n_rollup, cost, p_actor, p_reason)
    RETURNING id INTO audit_id;
    RETURN audit_id;
END $$;

-- after earlier erasures only: usage_daily_models again usage_daily summed (0011's fill)
DELETE FROM usage_daily_models WHERE EXISTS (SELECT 1 FROM usage_erasures);
INSERT INTO usage_daily_models (day, model, provider_id, provider, source, outcome, requests,
                                errors, input_tokens, output_tokens, cached_tokens, cost_usd,
                                billed_usd, latency_sum_ms, lat_hist)
SELECT day, model, provider_id, provider, source, outcome, sum(requests), sum(errors),
       sum(input_tokens), sum(output_tokens), sum(cached_tokens), sum(cost_usd),
       sum(billed_usd), sum(latency_sum_ms),
       ARRAY[
           sum(lat_hist[1]), sum(lat_hist[2]), sum(lat_hist[3]), sum(lat_hist[4]), sum(lat_hist[5]),
           sum(lat_hist[6]), sum(lat_hist[7]), sum(lat_hist[8]), sum(lat_hist[9]), sum(lat_hist[10]),
           sum(lat_hist[11]), sum(lat_hist[12]), sum(lat_hist[13]), sum(lat_hist[14]), sum(lat_hist[15]),
           sum(lat_hist[16]), sum(lat_hist[17]), sum(lat_hist[18]), sum(lat_hist[19]), sum(lat_hist[20]),
           sum(lat_hist[21]), sum(lat_hist[22]), sum(lat_hist[23]), sum(lat_hist[24]), sum(lat_hist[25])
       ]::bigint[]
FROM usage_daily
WHERE EXISTS (SELECT 1 FROM usage_erasures)
GROUP BY day, model, provider_id, provider, source, outcome;
