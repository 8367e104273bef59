-- Re-pair links (docs/http-api.md, "Re-pair links"): a link a customer opens
-- to scan a fresh QR code, or get a pairing code, for an instance whose
-- outage needs a person. The token itself is never stored: only its SHA-256,
-- like the status-page sessions. Kept column-for-column identical between
-- migrations/sqlite and migrations/postgres.

CREATE TABLE pair_links (
    id              TEXT PRIMARY KEY,        -- shown to operators and in audit events
    token_hash      TEXT NOT NULL UNIQUE,    -- SHA-256 (hex) of the link's token
    instance_id     TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    provider        TEXT NOT NULL,
    outage_id       TEXT,                    -- the outage it was issued for; NULL when none was open
    created_by      TEXT NOT NULL,           -- notice | api | cli | status page
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    connected_at    BIGINT,                  -- the session opened: the link only says so from then on
    started_at      BIGINT,                  -- the page asked the provider to start the session (once)
    first_viewed_at BIGINT,
    views           BIGINT NOT NULL DEFAULT 0,
    codes           BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX pair_links_by_instance ON pair_links (instance_id, created_at);
CREATE INDEX pair_links_by_outage ON pair_links (outage_id);
CREATE INDEX pair_links_by_expiry ON pair_links (expires_at);

-- An outage that closed while a link issued for it had been opened: a
-- recovery the customer made through the link (the report counts them).
ALTER TABLE outages ADD COLUMN via_link BOOLEAN NOT NULL DEFAULT FALSE;
