-- Self-service keys (issue 16): the most active virtual keys a user of the tier may hold when
-- creating keys themselves (NULL: no maximum; admins are never limited by it).
ALTER TABLE tiers ADD COLUMN max_keys integer CHECK (max_keys > 0);
