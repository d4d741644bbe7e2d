-- A second daily rollup without users and keys, for the summaries that neither filter nor
-- group by a user or a key (the admin's "all usage by model / provider / day / source"): a
-- 30-day summary over millions of requests then reads a few thousand rows instead of every
-- (user, key) row of usage_daily (bench/usage_scale.py). Ingest keeps it in the same statement
-- as usage_daily; this migration fills it from usage_daily (the same sums, the latency
-- histograms added bucket by bucket). Erasure leaves it alone: it holds no user or key, and
-- its sources are the labels every user's requests share.
CREATE TABLE usage_daily_models (
    day            date    NOT NULL,
    model          text    NOT NULL DEFAULT '',
    provider_id    text    NOT NULL DEFAULT '',
    provider       text    NOT NULL DEFAULT '',
    source         text    NOT NULL DEFAULT '',
    outcome        text    NOT NULL DEFAULT '',
    requests       bigint  NOT NULL,
    errors         bigint  NOT NULL,
    input_tokens   bigint  NOT NULL,
    output_tokens  bigint  NOT NULL,
    cached_tokens  bigint  NOT NULL,
    cost_usd       numeric(24, 9) NOT NULL,
    billed_usd     numeric(24, 9) NOT NULL,
    latency_sum_ms double precision NOT NULL,
    lat_hist       bigint[] NOT NULL,
    PRIMARY KEY (day, model, provider_id, provider, source, outcome)
);

INSERT INTO usage_daily_models (day, model, provider_id, provider, source, outcome, requests,
                                errors, input_tokens, output_tokens, cached_tokens, cost_usd,
                                billed_usd, latency_sum_ms, lat_hist)
SELECT day, model, provider_id, provider, source, outcome, sum(requests), sum(errors),
       sum(input_tokens), sum(output_tokens), sum(cached_tokens), sum(cost_usd),
       sum(billed_usd), sum(latency_sum_ms),
       -- the 25 latency buckets of turnout_metering.usage.latency, added one by one
       ARRAY[
           sum(lat_hist[1]), sum(lat_hist[2]), sum(lat_hist[3]), sum(lat_hist[4]), sum(lat_hist[5]),
           sum(lat_hist[6]), sum(lat_hist[7]), sum(lat_hist[8]), sum(lat_hist[9]), sum(lat_hist[10]),
           sum(lat_hist[11]), sum(lat_hist[12]), sum(lat_hist[13]), sum(lat_hist[14]), sum(lat_hist[15]),
           sum(lat_hist[16]), sum(lat_hist[17]), sum(lat_hist[18]), sum(lat_hist[19]), sum(lat_hist[20]),
           sum(lat_hist[21]), sum(lat_hist[22]), sum(lat_hist[23]), sum(lat_hist[24]), sum(lat_hist[25])
       ]::bigint[]
FROM usage_daily
GROUP BY day, model, provider_id, provider, source, outcome;
