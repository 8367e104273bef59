-- no-transaction
-- Instances have a lifecycle (SPEC §5 rule 14): a retired row keeps its history,
-- and a new instance under an old name gets a row of its own. So (provider, name)
-- is unique only among present instances, and the provider's own id of an
-- instance (Evolution's uuid) is kept to tell a recreated instance apart.
-- replaced_at: when the last fresh 440 close was seen (repeated-440 window).
--
-- SQLite cannot drop a table constraint: the table is rebuilt (sqlite.org/lang_altertable.html,
-- "Making Other Kinds Of Table Schema Changes"), with foreign keys off so that
-- dropping the old table does not cascade into outages and events.

PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE instances_new (
    id                   TEXT PRIMARY KEY,
    provider             TEXT NOT NULL,
    name                 TEXT NOT NULL,
    tenant               TEXT NOT NULL,
    labels               TEXT NOT NULL DEFAULT '{}',
    source               TEXT NOT NULL,
    present              BOOLEAN NOT NULL DEFAULT TRUE,
    health               TEXT NOT NULL,
    health_reason        TEXT NOT NULL,
    health_since         INTEGER NOT NULL,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    connected_at         INTEGER,
    disconnected_at      INTEGER,
    last_health_check    INTEGER,
    last_webhook_at      INTEGER,
    last_restart_attempt INTEGER,
    restart_attempts     INTEGER NOT NULL DEFAULT 0,
    replaced_count       INTEGER NOT NULL DEFAULT 0,
    flap_history         TEXT NOT NULL DEFAULT '[]',
    flapping_id          TEXT,
    flapping_since       INTEGER,
    maintenance_until    INTEGER,
    webhook_checked_at   INTEGER,
    webhook_ok           BOOLEAN,
    open_outage_id       TEXT,
    version              INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    provider_id          TEXT,
    replaced_at          INTEGER,
    retired_at           INTEGER
);
INSERT INTO instances_new (id, provider, name, tenant, labels, source, present, health, health_reason,
    health_since, consecutive_failures, connected_at, disconnected_at, last_health_check, last_webhook_at,
    last_restart_attempt, restart_attempts, replaced_count, flap_history, flapping_id, flapping_since,
    maintenance_until, webhook_checked_at, webhook_ok, open_outage_id, version, created_at, updated_at)
SELECT id, provider, name, tenant, labels, source, present, health, health_reason,
    health_since, consecutive_failures, connected_at, disconnected_at, last_health_check, last_webhook_at,
    last_restart_attempt, restart_attempts, replaced_count, flap_history, flapping_id, flapping_since,
    maintenance_until, webhook_checked_at, webhook_ok, open_outage_id, version, created_at, updated_at
FROM instances;
DROP TABLE instances;
ALTER TABLE instances_new RENAME TO instances;
CREATE UNIQUE INDEX instances_present_key ON instances (provider, name) WHERE present = TRUE;
CREATE INDEX instances_by_key ON instances (provider, name);
PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
