-- Issue 16, the BYOK billing policy: what a request debits the user (billed_usd) apart from
-- what it cost at catalog prices (cost_usd). A request served with the user's own provider
-- key bills its tier's byok_fee_pct of its cost; any other bills its cost.
-- usage_log is append-only: rows from before this migration keep NULL, which means cost_usd.
ALTER TABLE usage_log ADD COLUMN billed_usd numeric(24, 9);
ALTER TABLE usage_daily ADD COLUMN billed_usd numeric(24, 9);
UPDATE usage_daily SET billed_usd = cost_usd;
ALTER TABLE usage_daily ALTER COLUMN billed_usd SET NOT NULL;
