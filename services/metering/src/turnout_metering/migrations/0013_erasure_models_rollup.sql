-- Erasure keeps usage_daily_models in step (it left it alone before): that rollup has no
-- user and no key, but it has the requests' sources, and a source can be as personal as
-- "alice-laptop" (x-turnout-source is free text). erase_usage_subject() renames the user's
-- sources in usage_log and usage_daily; it now also fills again, from usage_daily, the
-- usage_daily_models rows of the user's days and models (their sums then count the user's
-- requests under the pseudonyms). So usage_daily_models stays exactly usage_daily summed
-- without users and keys, holds no erased source, and counts by source (GET /usage?source=,
-- GET /lab/history's total) can come from it instead of counting log rows one by one.
--
-- 0009's function does the rest, unchanged, under the name erase_usage_rows. Erasures made
-- before this migration left their sources in usage_daily_models: if there were any, the
-- whole table is filled again here.

ALTER FUNCTION erase_usage_subject(text, text[], jsonb, text, text) RENAME TO erase_usage_rows;

-- usage_daily_models' rows of these days and models, summed again from usage_daily (as
-- migration 0011 filled the whole table)
CREATE FUNCTION refill_usage_daily_models(p_days date[], p_models text[])
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
    DELETE FROM usage_daily_models WHERE day = ANY (p_days) AND model = ANY (p_models);
    INSERT INTO usage_daily_models (day, model, provider_id, provider, source, outcome,
                                    requests, errors, input_tokens, output_tokens,
                                    cached_tokens, cost_usd, billed_usd, latency_sum_ms,
                                    lat_hist)
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
    WHERE day = ANY (p_days) AND model = ANY (p_models)
    GROUP BY day, model, provider_id, provider, source, outcome;
$$;

CREATE FUNCTION erase_usage_subject(p_user text, p_keys text[], aliases jsonb, p_actor text,
                                    p_reason text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
DECLARE
    days date[];
    models text[];
    audit_id bigint;
BEGIN
    SELECT coalesce(array_agg(DISTINCT day), '{}'), coalesce(array_agg(DISTINCT model), '{}')
    INTO days, models
    FROM usage_daily WHERE user_id = p_user OR key_id = ANY (p_keys);
    audit_id := erase_usage_rows(p_user, p_keys, aliases, p_actor, p_reason);
    PERFORM refill_usage_daily_models(days, models);
    RETURN audit_id;
END $$;

-- after earlier erasures only: the whole table, filled again
SELECT refill_usage_daily_models(array_agg(DISTINCT day), array_agg(DISTINCT model))
FROM usage_daily WHERE EXISTS (SELECT 1 FROM usage_erasures);
