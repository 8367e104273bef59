-- Tenants learned from the SaaS application, and every state change streamed
-- back to it (docs/http-api.md, "Tenants" and "Events").
-- Kept column-for-column identical between migrations/sqlite and migrations/postgres.

-- Where each instance's tenant came from: config, api, sql, pattern, default.
ALTER TABLE instances ADD COLUMN tenant_source TEXT NOT NULL DEFAULT 'default';
UPDATE instances SET tenant_source = 'config' WHERE source = 'config';

-- Tenants assigned through the admin API (`PUT /api/instances/{provider}/{name}/tenant`).
-- By name, not by row: an assignment may come before the instance exists on
-- the provider, and applies when it is discovered.
CREATE TABLE tenant_assignments (
    provider    TEXT NOT NULL,
    name        TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    assigned_at BIGINT NOT NULL,
    PRIMARY KEY (provider, name)
);

-- The event stream: every health transition, outage opened or closed,
-- maintenance on or off and tenant change, numbered in commit order (`seq`
-- comes from `stream_seq`, updated in the same transaction, so a reader that
-- asks for what follows a seq never misses one committed later with a lower
-- number). Pulled with `GET /api/events`, pushed to subscribers through the
-- outbox. Pruned by retention.
CREATE TABLE stream_events (
    seq      BIGINT PRIMARY KEY,
    at       BIGINT NOT NULL,
    event    TEXT NOT NULL,
    provider TEXT NOT NULL,
    instance TEXT NOT NULL,
    tenant   TEXT NOT NULL,
    payload  TEXT NOT NULL
);
CREATE INDEX stream_events_by_at ON stream_events (at);

-- Counters: '' numbers the stream; 'subscriber:<name>' numbers what one
-- subscriber receives (strictly increasing, no gaps).
CREATE TABLE stream_seq (
    name TEXT PRIMARY KEY,
    last BIGINT NOT NULL
);
INSERT INTO stream_seq (name, last) VALUES ('', 0);
