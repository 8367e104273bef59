-- Outbox claims become leases: each claim writes a random token, and only the
-- holder of the token may renew the claim or record the outcome of a delivery.
-- Kept column-for-column identical to migrations/sqlite.

ALTER TABLE outbox ADD COLUMN claim_token TEXT;
