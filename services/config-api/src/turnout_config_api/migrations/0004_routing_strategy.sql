-- Load-aware routing (issue 19): how a public name picks among its deployments of equal
-- priority. weighted: random by weight (as before); least_busy: fewest requests in flight
-- (plus vLLM's queue); latency: lowest recent time to first token. A routing rule may set
-- one for its targets (NULL: each target name's own).
ALTER TABLE models ADD COLUMN routing_strategy text NOT NULL DEFAULT 'weighted'
    CHECK (routing_strategy IN ('weighted', 'least_busy', 'latency'));
ALTER TABLE routing_rules ADD COLUMN routing_strategy text
    CHECK (routing_strategy IN ('weighted', 'least_busy', 'latency'));
