-- Replicas on one PostgreSQL share the providers through one plan, kept here
-- under one version: a replica replans only when the live replicas or their
-- configured providers changed, and writes with compare-and-set on the
-- version, so every replica follows the same plan whatever instance counts or
-- configuration it read (docs/operations.md "Several replicas"). SQLite runs
-- one process that leads every provider; the tables exist there too.
-- Kept column-for-column identical between migrations/sqlite and migrations/postgres.

CREATE TABLE leadership_plan (
    name        TEXT PRIMARY KEY,             -- 'providers': the one shared plan
    version     BIGINT NOT NULL,              -- raised by one at every write
    members     TEXT NOT NULL,                -- JSON array: the live replicas it was made for
    leaders     TEXT NOT NULL,                -- JSON object: provider -> replica
    written_by  TEXT NOT NULL,
    written_at  BIGINT NOT NULL
);

-- What each replica configures, published at every lease round: the plan
-- gives a provider only to a replica that configures it, and retirement
-- "because removed from the configuration" waits while a live replica (one
-- with a live replica:<holder> lease) still configures the provider or
-- instance.
CREATE TABLE replica_views (
    holder      TEXT PRIMARY KEY,
    providers   TEXT NOT NULL,                -- JSON array of provider names
    instances   TEXT NOT NULL,                -- JSON array of [provider, name] from [[instances]]
    seen_at     BIGINT NOT NULL
);
