-- Erasure of one user's personal data from the usage rows: the one documented exception to
-- usage_log being append-only (turnout_metering.usage.erasure, POST /api/v1/erasures).
--
-- erase_usage_subject() is the only code that sets the transaction-local setting
-- turnout.usage_erasure; while it is 'on', the append-only trigger lets an UPDATE through if
-- it changes the personal columns (user_id, key_id, source, task_type) and nothing else: money,
-- tokens, times, ids and models stay exactly as they were. DELETE and TRUNCATE are refused
-- whatever the setting. The rollup rows of the user move to the pseudonyms (merged if the
-- pseudonyms already have rows, from an earlier erasure), so every total stays the same.
-- The credit ledger, credit accounts and spend per period are the user's account, not usage
-- rows, and are left as they are. Each erasure is recorded in usage_erasures (append-only),
-- under the pseudonym, never the erased id.
--
-- The guard stops every ordinary code path (and mistakes); it is not a wall against someone
-- who can run SQL as the schema's owner. A deployment that gives metering a role without
-- UPDATE on usage_log keeps erasure working: the function runs as its owner (SECURITY DEFINER).

CREATE OR REPLACE FUNCTION usage_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    personal constant text[] := ARRAY['user_id', 'key_id', 'source', 'task_type'];
BEGIN
    IF TG_OP = 'UPDATE' AND coalesce(current_setting('turnout.usage_erasure', true), '') = 'on'
       AND (to_jsonb(NEW) - personal) = (to_jsonb(OLD) - personal) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'usage_log is append-only';
END $$;

CREATE TABLE usage_erasures (
    id            bigserial PRIMARY KEY,
    subject_alias text        NOT NULL,   -- the user's pseudonym (never the erased id)
    keys          integer     NOT NULL,   -- key ids replaced
    usage_rows    bigint      NOT NULL,   -- usage_log rows changed
    rollup_rows   bigint      NOT NULL,   -- usage_daily rows moved to the pseudonyms
    cost_usd      numeric(24, 9) NOT NULL,-- what those rows cost (unchanged, for the record)
    actor         text        NOT NULL,
    reason        text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION usage_erasures_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'usage_erasures is append-only';
END $$;
CREATE TRIGGER usage_erasures_no_change BEFORE UPDATE OR DELETE ON usage_erasures
    FOR EACH ROW EXECUTE FUNCTION usage_erasures_append_only();
CREATE TRIGGER usage_erasures_no_truncate BEFORE TRUNCATE ON usage_erasures
    FOR EACH STATEMENT EXECUTE FUNCTION usage_erasures_append_only();

-- The HMAC key of the pseudonyms when TURNOUT_ERASURE_KEY is not set: made once, kept here.
CREATE TABLE erasure_secret (
    id     boolean PRIMARY KEY DEFAULT true CHECK (id),
    secret text NOT NULL
);

-- aliases: {"user_id": {old: new}, "key_id": {...}, "source": {...}, "task_type": {...}},
-- every value the user's rows hold (turnout_metering.usage.erasure computes them). Answers the id of
-- the usage_erasures row.
CREATE FUNCTION erase_usage_subject(p_user text, p_keys text[], aliases jsonb, p_actor text,
                                    p_reason text)
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
