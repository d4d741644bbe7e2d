-- The books are append-only, TRUNCATE included: UPDATE and DELETE were already refused row by
-- row (0001), but a TRUNCATE bypasses row triggers. usage_log is the source every derived
-- table can be rebuilt from (0002 rebuilt the daily rollup from it); credit_ledger is the
-- prepaid balance's history.
CREATE TRIGGER usage_log_no_truncate BEFORE TRUNCATE ON usage_log
    FOR EACH STATEMENT EXECUTE FUNCTION usage_log_append_only();
CREATE TRIGGER credit_ledger_no_truncate BEFORE TRUNCATE ON credit_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION credit_ledger_append_only();
