-- History that decisions and reports still need is kept outside the tables
-- retention prunes (rule 10 and the availability reports, docs/rules.md and
-- docs/http-api.md). Retention deletes events and delivered outbox rows older
-- than `supervisor.retention`; but the closing notice of an open outage goes
-- to whoever was told of its start, and a report reads maintenance windows.
-- Kept column-for-column identical between migrations/sqlite and migrations/postgres.

-- The notifiers told about an outage (one row per notifier that got one of
-- its notices queued): its closing notice goes to them, however long it
-- stays open. Gone with the outage.
CREATE TABLE outage_recipients (
    outage_id TEXT NOT NULL REFERENCES outages (id) ON DELETE CASCADE,
    notifier  TEXT NOT NULL,
    PRIMARY KEY (outage_id, notifier)
);

-- Maintenance windows: from the moment maintenance was set to its end (its
-- `until`, or earlier when ended or replaced). Pruned by their end.
CREATE TABLE maintenance_windows (
    id          TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    provider    TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    ended_at    BIGINT NOT NULL
);
CREATE INDEX maintenance_windows_by_instance ON maintenance_windows (instance_id, started_at);
CREATE INDEX maintenance_windows_by_end ON maintenance_windows (ended_at);

-- Recipients of the outages open now, from the outbox rows retention has
-- not pruned yet.
INSERT INTO outage_recipients (outage_id, notifier)
SELECT DISTINCT o.id, b.notifier FROM outages o JOIN outbox b ON b.dedup_key LIKE 'outage:' || o.id || ':%'
WHERE o.ended_at IS NULL;

-- The first release marked deleted instances `present = FALSE` without a
-- `retired_at`: they would count as up from their creation until now in every
-- report. They retired when they were last seen.
UPDATE instances SET retired_at = GREATEST(updated_at, last_health_check, last_webhook_at)
WHERE present = FALSE AND retired_at IS NULL;

-- Maintenance windows so far, from their audit events: each runs from its
-- event to its `until`, cut short by the instance's next maintenance event.
INSERT INTO maintenance_windows (id, instance_id, provider, started_at, ended_at)
SELECT 'event-' || id, instance_id, provider, at, LEAST(until_ms, COALESCE(next_at, until_ms))
FROM (
    SELECT e.id, e.instance_id, e.provider, e.at,
           (extract(epoch from (e.detail::jsonb ->> 'until')::timestamptz) * 1000)::bigint AS until_ms,
           LEAD(e.at) OVER (PARTITION BY e.instance_id ORDER BY e.at, e.id) AS next_at
    FROM events e
    WHERE e.kind = 'maintenance' AND e.instance_id IN (SELECT id FROM instances)
) w
WHERE until_ms IS NOT NULL AND LEAST(until_ms, COALESCE(next_at, until_ms)) > at;
