-- Why a model served, kept with each record (the usage event has carried `route` since the
-- router set it; `power_level` and `task_type` are the request's x-power-level / x-task-type).
-- Earlier records have NULLs: the log is append-only and was never told.
ALTER TABLE usage_log ADD COLUMN route text;
ALTER TABLE usage_log ADD COLUMN power_level text;
ALTER TABLE usage_log ADD COLUMN task_type text;
