-- Issue 16 item 5 (seed 002): testing-lab requests a user of the tier may send per UTC month
-- (requests with x-turnout-source: lab; NULL = no quota). The seed's defaults per tier.
ALTER TABLE tiers ADD COLUMN lab_monthly_quota integer CHECK (lab_monthly_quota > 0);
UPDATE tiers SET lab_monthly_quota = q.quota, revision = nextval('config_revision')
FROM (VALUES ('free', 100), ('starter', 1000), ('professional', 5000), ('enterprise', 10000))
     AS q(name, quota)
WHERE tiers.name = q.name;
