-- Outbox claims become leases (a token per claim, and an index for the claim
-- query); status-page sessions move to the database. Outbox: each claim writes
-- a random token, and only the holder of the token may renew the claim or
-- record the outcome of a delivery.
-- Kept column-for-column identical to migrations/postgres.

ALTER TABLE outbox ADD COLUMN claim_token TEXT;

-- A claim reads each notifier's oldest pending rows (`notifier = ? AND status
-- = 'pending' ORDER BY id LIMIT ?`): one index range scan, however long the
-- backlog behind a failing head is.
CREATE INDEX outbox_by_notifier ON outbox (notifier, status, id);

-- Status-page sessions, server-side: the SHA-256 of the random cookie value
-- (never the value), a fingerprint of the admin token that created it (a new
-- token invalidates every older session), and when it expires.
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    admin_fp   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
