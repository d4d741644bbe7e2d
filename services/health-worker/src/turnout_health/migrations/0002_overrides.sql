-- Issue 16 item 6: an admin forces a provider up or down (reason, optional expiry). While an
-- override is active the measured state is still kept, but what is published is the override.
CREATE TABLE overrides (
    provider_id text        PRIMARY KEY,
    status      text        NOT NULL CHECK (status IN ('up', 'down')),
    reason      text        NOT NULL,
    expires_at  timestamptz,
    actor       text        NOT NULL,
    set_at      timestamptz NOT NULL DEFAULT now()
);

-- Every set, clear and expiry, append-only: who, when, what and why.
CREATE TABLE override_log (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    provider_id text        NOT NULL,
    action      text        NOT NULL CHECK (action IN ('set', 'clear', 'expire')),
    status      text        NOT NULL,
    reason      text        NOT NULL,
    expires_at  timestamptz,
    actor       text        NOT NULL
);
CREATE INDEX override_log_provider_idx ON override_log (provider_id, id DESC);

CREATE FUNCTION override_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'override_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER override_log_append_only BEFORE UPDATE OR DELETE ON override_log
    FOR EACH ROW EXECUTE FUNCTION override_log_append_only();
