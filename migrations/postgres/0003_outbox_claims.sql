-- Outbox claims become leases: each claim writes a random token, and only the
-- holder of the token may renew the claim or record the outcome of a delivery.
-- Kept column-for-column identical to migrations/sqlite.

ALTER TABLE outbox ADD COLUMN claim_token TEXT;

-- A claim reads each notifier's oldest pending rows (`notifier = ? AND status
-- = 'pending' ORDER BY id LIMIT ?`): one index range scan, however long the
-- backlog behind a failing head is.
CREATE INDEX outbox_by_notifier ON outbox (notifier, status, id);
