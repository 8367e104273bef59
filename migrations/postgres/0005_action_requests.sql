-- Actions asked for on a replica that does not lead the instance's provider
-- (the status page's restart and webhook re-apply): only a provider's leader
-- calls it (SPEC §8), so the request is recorded here and the leader carries
-- it out at the start of its next poll cycle of that provider. A request not
-- taken within a few minutes expires instead of acting long after the click.
-- Kept column-for-column identical between migrations/sqlite and migrations/postgres.

CREATE TABLE action_requests (
    id           TEXT PRIMARY KEY,
    instance_id  TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    provider     TEXT NOT NULL,
    action       TEXT NOT NULL,               -- restart | webhook
    force        BOOLEAN NOT NULL DEFAULT FALSE,
    actor        TEXT NOT NULL,
    address      TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    taken_at     BIGINT,
    done_at      BIGINT,
    outcome      TEXT,                        -- done | refused | failed | expired
    message      TEXT
);
CREATE INDEX action_requests_pending ON action_requests (provider, taken_at, requested_at);

-- Availability reads the maintenance windows back from their audit events by kind.
CREATE INDEX events_by_kind ON events (kind, at);
