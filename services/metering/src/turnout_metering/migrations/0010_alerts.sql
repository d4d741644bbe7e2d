-- Alerts (turnout_metering.alerts): what was already announced, the per-user webhooks an admin
-- configured, and every delivery to a webhook with its attempts (a 'dead' row is the dead
-- letter after the last retry).

-- Per subject and period: the highest budget threshold announced (0, 50, 80, 100) and whether
-- "credits exhausted" was; an alert is emitted only when the state crosses above these.
CREATE TABLE alert_marks (
    subject_type text    NOT NULL,
    subject_id   text    NOT NULL,
    period       text    NOT NULL,
    level        integer NOT NULL DEFAULT 0,
    exhausted    boolean NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject_type, subject_id, period)
);

-- Webhooks set by an admin through the API (the global ones come from TURNOUT_ALERT_WEBHOOKS).
-- user_id NULL: every alert; else only the alerts about that user (and its keys).
CREATE TABLE alert_webhooks (
    id          text PRIMARY KEY,
    user_id     text,
    url         text NOT NULL,
    secret      text NOT NULL,
    format      text NOT NULL CHECK (format IN ('json', 'slack')),
    alerts      text[],               -- alert kinds to send; NULL: all
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_webhooks_user_idx ON alert_webhooks (user_id);

CREATE TABLE alert_deliveries (
    id            bigserial PRIMARY KEY,
    event_id      uuid        NOT NULL,
    webhook       text        NOT NULL,   -- 'env:<hash of the URL>' or an alert_webhooks id
    alert         text        NOT NULL,
    payload       jsonb       NOT NULL,   -- the AlertEvent
    state         text        NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts      integer     NOT NULL DEFAULT 0,
    next_at       timestamptz NOT NULL DEFAULT now(),
    last_status   integer,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    UNIQUE (event_id, webhook)
);
CREATE INDEX alert_deliveries_due_idx ON alert_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX alert_deliveries_state_idx ON alert_deliveries (state, id DESC);
