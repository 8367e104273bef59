-- wa-sentinel schema, PostgreSQL flavour. Instants are Unix milliseconds (BIGINT),
-- JSON is TEXT. Kept column-for-column identical to migrations/sqlite.

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
    health_since         BIGINT NOT NULL,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    connected_at         BIGINT,
    disconnected_at      BIGINT,
    last_health_check    BIGINT,
    last_webhook_at      BIGINT,
    last_restart_attempt BIGINT,
    restart_attempts     BIGINT NOT NULL DEFAULT 0,
    replaced_count       BIGINT NOT NULL DEFAULT 0,
    flap_history         TEXT NOT NULL DEFAULT '[]',
    flapping_id          TEXT,
    flapping_since       BIGINT,
    maintenance_until    BIGINT,
    webhook_checked_at   BIGINT,
    webhook_ok           BOOLEAN,
    open_outage_id       TEXT,
    version              BIGINT NOT NULL DEFAULT 0,  -- optimistic concurrency
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    UNIQUE (provider, name)
);

CREATE TABLE outages (
    id                 TEXT PRIMARY KEY,
    instance_id        TEXT REFERENCES instances (id) ON DELETE CASCADE, -- NULL: provider-wide
    provider           TEXT NOT NULL,
    cause              TEXT NOT NULL,
    reason             TEXT NOT NULL,
    started_at         BIGINT NOT NULL,
    ended_at           BIGINT,
    recovered_by       TEXT,                          -- poll | webhook | restart | manual
    restart_attempts   BIGINT NOT NULL DEFAULT 0,
    down_notified      BOOLEAN NOT NULL DEFAULT FALSE,
    exhausted_notified BOOLEAN NOT NULL DEFAULT FALSE,
    reminders_sent     BIGINT NOT NULL DEFAULT 0,
    last_notice_at     BIGINT
);
CREATE INDEX outages_by_instance ON outages (instance_id, started_at);
CREATE INDEX outages_by_start ON outages (started_at);

CREATE TABLE events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id TEXT REFERENCES instances (id) ON DELETE CASCADE,
    provider    TEXT NOT NULL,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_instance ON events (instance_id, at);
CREATE INDEX events_by_at ON events (at);

CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedup_key       TEXT NOT NULL,
    notifier        TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | dead
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    UNIQUE (dedup_key, notifier)
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE provider_state (
    name            TEXT PRIMARY KEY,
    failed_cycles   BIGINT NOT NULL DEFAULT 0,
    open_outage_id  TEXT REFERENCES outages (id),
    updated_at      BIGINT NOT NULL
);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
