-- Issue 16: BYOK self-service and the BYOK billing policy.
-- A provider an admin opened to BYOK: its users may add their own key for it (used only
-- against the provider's configured base URL). Closed by default.
ALTER TABLE providers ADD COLUMN byok_enabled boolean NOT NULL DEFAULT false;
-- What a request served with the user's own key debits, in percent of its catalog cost
-- (the cost is still recorded at catalog price for analytics). 0 = BYOK requests are free.
ALTER TABLE tiers ADD COLUMN byok_fee_pct numeric(7, 4) NOT NULL DEFAULT 0
    CHECK (byok_fee_pct >= 0 AND byok_fee_pct <= 100);
-- Users' key-test calls (10 a minute per user): a sliding window, shared by every replica.
CREATE TABLE key_tests (
    user_id   text        NOT NULL,
    tested_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX key_tests_user_idx ON key_tests (user_id, tested_at);
