-- wa-sentinel schema, SQLite flavour. Instants are Unix milliseconds (INTEGER),
-- JSON is TEXT. Kept column-for-column identical to migrations/postgres.

CREATE TABLE instances (
    id                   TEXT PRIMARY KEY,
    provider             TEXT NOT NULL,
    name                 TEXT NOT NULL,
    tenant               TEXT NOT NULL,
    labels               TEXT NOT NULL DEFAULT '{}',
    source               TEXT NOT NULL,              -- config | discovered
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
    version              INTEGER NOT NULL DEFAULT 0,  -- optimistic concurrency
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    UNIQUE (provider, name)
);

CREATE TABLE outages (
    id                 TEXT PRIMARY KEY,
    instance_id        TEXT REFERENCES instances (id) ON DELETE CASCADE, -- NULL: provider-wide
    provider           TEXT NOT NULL,
    cause              TEXT NOT NULL,
    reason             TEXT NOT NULL,
    started_at         INTEGER NOT NULL,
    ended_at           INTEGER,
    recovered_by       TEXT,                          -- poll | webhook | restart | manual
    restart_attempts   INTEGER NOT NULL DEFAULT 0,
    down_notified      BOOLEAN NOT NULL DEFAULT FALSE,
    exhausted_notified BOOLEAN NOT NULL DEFAULT FALSE,
    reminders_sent     INTEGER NOT NULL DEFAULT 0,
    last_notice_at     INTEGER
);
CREATE INDEX outages_by_instance ON outages (instance_id, started_at);
CREATE INDEX outages_by_start ON outages (started_at);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT REFERENCES instances (id) ON DELETE CASCADE,
    provider    TEXT NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_instance ON events (instance_id, at);
CREATE INDEX events_by_at ON events (at);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key       TEXT NOT NULL,
    notifier        TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_until   INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    UNIQUE (dedup_key, notifier)
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE provider_state (
    name            TEXT PRIMARY KEY,
    failed_cycles   INTEGER NOT NULL DEFAULT 0,
    open_outage_id  TEXT REFERENCES outages (id),
    updated_at      INTEGER NOT NULL
);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
