-- Issue 16 item 5: testing-lab requests (source 'lab', not refused) per subject and period,
-- and the lab part of the last published credit state (lab_blocked: the quota is used up).
ALTER TABLE spend ADD COLUMN lab_requests bigint NOT NULL DEFAULT 0;
UPDATE spend s SET lab_requests = l.n
FROM (SELECT user_id, period, count(*) AS n FROM usage_log
      WHERE source = 'lab' AND outcome <> 'rejected' AND user_id IS NOT NULL
      GROUP BY user_id, period) l
WHERE s.subject_type = 'user' AND s.subject_id = l.user_id AND s.period = l.period;
ALTER TABLE credit_state ADD COLUMN lab_requests bigint NOT NULL DEFAULT 0;
ALTER TABLE credit_state ADD COLUMN lab_quota integer;
ALTER TABLE credit_state ADD COLUMN lab_blocked boolean NOT NULL DEFAULT false;
