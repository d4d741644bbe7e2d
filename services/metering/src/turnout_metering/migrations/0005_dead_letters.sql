-- Records set aside instead of holding a batch forever: a record metering cannot parse, or
-- one the database refuses on its own (found by splitting the failed batch). Everything
-- behind it is metered; an admin lists them on GET /api/v1/dead-letters.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    "offset"    bigint NOT NULL,
    key         bytea,
    value       bytea,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (topic, partition, "offset")
);
