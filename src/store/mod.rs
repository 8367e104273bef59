//! The only SQL in wa-sentinel. One [`Store`] over SQLite (the embedded
//! default: file created if missing, WAL, foreign keys on) or PostgreSQL
//! (production, several replicas). The SQL text is shared: both backends take
//! `$N` placeholders, instants are `BIGINT` milliseconds and JSON is `TEXT`, so
//! each method is written once and expanded for each pool by [`on_pool!`].
//! Where the dialects differ (row claiming), the method says so.
//!
//! DDL runs only in migrations (`migrations/sqlite`, `migrations/postgres`),
//! applied at start-up and by `wa-sentinel migrate` — never per request.

mod records;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Row, SqlitePool};

use crate::domain::health::{Change, StepOutput};
use crate::domain::provider::{ProviderChange, ProviderState, ProviderStepOutput};
use crate::domain::{Health, InstanceKey, InstanceState, Ts};
pub use records::{EventRecord, InstanceFilter, InstanceRecord, OutageRecord, OutboxEntry, OutboxRow};
use records::{InstanceRow, OutageRow, change_event};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Another writer changed the instance since it was read; reload and step again.
    #[error("instance {0} was changed concurrently; reload and retry")]
    Conflict(String),
    #[error("stored data is not understood: {0}")]
    Corrupt(String),
    #[error("cannot open the database {url}: {why}")]
    Open { url: String, why: String },
}

/// `provider_state` joined with its open outage.
type ProviderStateRow = (i64, Option<String>, Option<i64>, Option<String>, Option<bool>);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Debug)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which backend a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

/// Run `$body` with `$pool` bound to whichever pool this store has. The body is
/// type-checked once per backend, so the same query text serves both.
macro_rules! on_pool {
    ($self:expr, $pool:ident => $body:expr) => {
        match &$self.db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

/// Run `$body` inside a write transaction bound to `$tx`, on whichever pool
/// this store has. SQLite takes the write lock up front (`BEGIN IMMEDIATE`), so
/// two writers queue on the busy timeout instead of failing on a lock upgrade.
/// The body commits (or returns early, which rolls back).
macro_rules! in_write_tx {
    ($self:expr, $tx:ident => $body:block) => {
        match &$self.db {
            Db::Sqlite(p) => {
                let mut $tx = p.begin_with("BEGIN IMMEDIATE").await?;
                $body
            }
            Db::Postgres(p) => {
                let mut $tx = p.begin().await?;
                $body
            }
        }
    };
}

/// Insert one outbox row inside a transaction; a duplicate `(dedup_key, notifier)` is ignored.
macro_rules! insert_outbox {
    ($tx:ident, $e:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO outbox (dedup_key, notifier, kind, payload, status, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5, $5) ON CONFLICT (dedup_key, notifier) DO NOTHING",
        )
        .bind(&$e.dedup_key)
        .bind(&$e.notifier)
        .bind(&$e.kind)
        .bind(&$e.payload)
        .bind($now.0)
        .execute(&mut *$tx)
        .await?;
    };
}

macro_rules! instance_select {
    () => {
        "SELECT i.id, i.provider, i.name, i.tenant, i.labels, i.source, i.present, i.health, i.health_reason, \
         i.health_since, i.consecutive_failures, i.connected_at, i.disconnected_at, i.last_health_check, \
         i.last_webhook_at, i.last_restart_attempt, i.restart_attempts, i.replaced_count, i.flap_history, \
         i.flapping_id, i.flapping_since, i.maintenance_until, i.webhook_checked_at, i.webhook_ok, i.version, \
         o.id AS o_id, o.cause AS o_cause, o.reason AS o_reason, o.started_at AS o_started_at, \
         o.restart_attempts AS o_restart_attempts, o.down_notified AS o_down_notified, \
         o.exhausted_notified AS o_exhausted_notified, o.reminders_sent AS o_reminders_sent, \
         o.last_notice_at AS o_last_notice_at \
         FROM instances i LEFT JOIN outages o ON o.id = i.open_outage_id"
    };
}

macro_rules! outage_select {
    () => {
        "SELECT o.id, o.instance_id, o.provider, i.name AS instance, i.tenant, o.cause, o.reason, \
         o.started_at, o.ended_at, o.recovered_by, o.restart_attempts, o.down_notified \
         FROM outages o LEFT JOIN instances i ON i.id = o.instance_id"
    };
}

impl Store {
    /// Open (and for SQLite, create) the database. Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        let open_err = |why: String| StoreError::Open { url: crate::config::redact_url_password(url), why };
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| open_err(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let path = opts.get_filename().to_path_buf();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| open_err(format!("cannot create directory {}: {e}", dir.display())))?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .connect_with(opts)
                .await
                .map_err(|e| open_err(e.to_string()))?;
            Ok(Store { db: Db::Sqlite(pool) })
        } else {
            // A statement stuck on a dead connection must not hang a poll cycle forever.
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| open_err(e.to_string()))?
                .options([("statement_timeout", "30s")]);
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await
                .map_err(|e| open_err(e.to_string()))?;
            Ok(Store { db: Db::Postgres(pool) })
        }
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Apply pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        match &self.db {
            Db::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await?,
            Db::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await?,
        }
        Ok(())
    }

    /// Is every migration this binary knows applied? (`/readyz`.)
    pub async fn migrations_current(&self) -> Result<bool> {
        let (migrator, applied): (&sqlx::migrate::Migrator, Vec<i64>) = on_pool!(self, p => {
            let m = match self.db { Db::Sqlite(_) => &SQLITE_MIGRATIONS, Db::Postgres(_) => &POSTGRES_MIGRATIONS };
            let rows = sqlx::query("SELECT version FROM _sqlx_migrations WHERE success = TRUE").fetch_all(p).await;
            match rows {
                Ok(rows) => (m, rows.iter().map(|r| r.get::<i64, _>(0)).collect()),
                Err(_) => (m, Vec::new()),
            }
        });
        Ok(migrator.iter().filter(|m| m.migration_type.is_up_migration()).all(|m| applied.contains(&m.version)))
    }

    /// Is the database reachable?
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, p => { sqlx::query("SELECT 1").execute(p).await?; });
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }

    // ---------------------------------------------------------------- instances

    /// Make sure an instance exists with this tenant and labels (inventory
    /// merge). New instances start `unknown`. Returns its record.
    pub async fn ensure_instance(
        &self,
        key: &InstanceKey,
        tenant: &str,
        labels: &BTreeMap<String, String>,
        source: &str,
        now: Ts,
    ) -> Result<InstanceRecord> {
        let id = uuid::Uuid::now_v7().to_string();
        let labels = serde_json::to_string(labels).expect("string map serialises");
        let fresh = InstanceState::new(now);
        on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO instances (id, provider, name, tenant, labels, source, present, health, health_reason, \
                 health_since, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7, $8, $9, $9, $9) \
                 ON CONFLICT (provider, name) DO UPDATE SET tenant = excluded.tenant, labels = excluded.labels, \
                 source = excluded.source, present = TRUE, updated_at = excluded.updated_at \
                 WHERE instances.tenant <> excluded.tenant OR instances.labels <> excluded.labels \
                 OR instances.source <> excluded.source OR instances.present = FALSE",
            )
            .bind(&id)
            .bind(&key.provider)
            .bind(&key.name)
            .bind(tenant)
            .bind(&labels)
            .bind(source)
            .bind(fresh.health.as_str())
            .bind(&fresh.reason)
            .bind(now.0)
            .execute(p)
            .await?;
        });
        self.instance(key).await?.ok_or_else(|| StoreError::Corrupt(format!("instance {key} vanished after insert")))
    }

    /// Mark instances of a provider that are no longer listed (neither configured
    /// nor discovered) as absent; returns how many changed.
    pub async fn set_present(&self, id: &str, present: bool) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("UPDATE instances SET present = $1 WHERE id = $2").bind(present).bind(id).execute(p).await?;
        });
        Ok(())
    }

    pub async fn instance(&self, key: &InstanceKey) -> Result<Option<InstanceRecord>> {
        let row: Option<InstanceRow> = on_pool!(self, p => {
            sqlx::query_as(concat!(instance_select!(), " WHERE i.provider = $1 AND i.name = $2"))
                .bind(&key.provider)
                .bind(&key.name)
                .fetch_optional(p)
                .await?
        });
        row.map(InstanceRow::into_record).transpose()
    }

    pub async fn instance_by_id(&self, id: &str) -> Result<Option<InstanceRecord>> {
        let row: Option<InstanceRow> = on_pool!(self, p => {
            sqlx::query_as(concat!(instance_select!(), " WHERE i.id = $1")).bind(id).fetch_optional(p).await?
        });
        row.map(InstanceRow::into_record).transpose()
    }

    /// Instances, ordered by provider and name, filtered.
    pub async fn instances(&self, f: &InstanceFilter) -> Result<Vec<InstanceRecord>> {
        let rows: Vec<InstanceRow> = on_pool!(self, p => {
            sqlx::query_as(concat!(
                instance_select!(),
                " WHERE ($1 IS NULL OR i.provider = $1) AND ($2 IS NULL OR i.tenant = $2) \
                  AND ($3 IS NULL OR i.health = $3) AND (i.present = TRUE OR $4 = TRUE) \
                  ORDER BY i.provider, i.name"
            ))
            .bind(f.provider.as_deref())
            .bind(f.tenant.as_deref())
            .bind(f.health.map(Health::as_str))
            .bind(f.include_absent)
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(InstanceRow::into_record).collect()
    }

    /// `(provider, health, count)` of present instances, and `(provider, open
    /// outages)`: the gauges, aggregated by the database instead of loading rows.
    pub async fn gauge_counts(&self) -> Result<(Vec<(String, String, i64)>, Vec<(String, i64)>)> {
        let (h, o) = on_pool!(self, p => {
            let h: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT provider, health, COUNT(*) FROM instances WHERE present = TRUE GROUP BY provider, health",
            )
            .fetch_all(p)
            .await?;
            let o: Vec<(String, i64)> = sqlx::query_as(
                "SELECT provider, COUNT(*) FROM outages WHERE ended_at IS NULL AND instance_id IS NOT NULL GROUP BY provider",
            )
            .fetch_all(p)
            .await?;
            (h, o)
        });
        Ok((h, o))
    }

    /// Commit one state-machine step: the instance row (guarded by its version),
    /// its outage rows, the audit events and the outbox rows — all in one
    /// transaction. Nothing is written if another writer got there first
    /// ([`StoreError::Conflict`]). Returns the new version.
    pub async fn commit_step(
        &self,
        rec: &InstanceRecord,
        out: &StepOutput,
        outbox: &[OutboxEntry],
        now: Ts,
    ) -> Result<i64> {
        let s = &out.state;
        let flap = serde_json::to_string(&s.flap_history).expect("Vec<Ts> serialises");
        let opened = out.changes.iter().find_map(|c| match c {
            Change::OutageOpened { id, .. } => Some(id.clone()),
            _ => None,
        });
        let events: Vec<(&'static str, String)> = out.changes.iter().map(change_event).collect();
        in_write_tx!(self, tx => {
            let updated = sqlx::query(
                "UPDATE instances SET health = $1, health_reason = $2, health_since = $3, consecutive_failures = $4, \
                 connected_at = $5, disconnected_at = $6, \
                 last_webhook_at = CASE WHEN last_webhook_at IS NULL OR last_webhook_at < $7 THEN $7 ELSE last_webhook_at END, \
                 last_restart_attempt = $8, restart_attempts = $9, replaced_count = $10, flap_history = $11, \
                 flapping_id = $12, flapping_since = $13, maintenance_until = $14, open_outage_id = $15, \
                 last_health_check = $16, updated_at = $16, version = version + 1 \
                 WHERE id = $17 AND version = $18",
            )
            .bind(s.health.as_str())
            .bind(&s.reason)
            .bind(s.health_since.0)
            .bind(i64::from(s.consecutive_failures))
            .bind(s.connected_at.map(|t| t.0))
            .bind(s.disconnected_at.map(|t| t.0))
            .bind(s.last_webhook_at.map(|t| t.0))
            .bind(s.last_restart_attempt.map(|t| t.0))
            .bind(i64::from(s.restart_attempts))
            .bind(i64::from(s.replaced_count))
            .bind(&flap)
            .bind(s.flapping.as_ref().map(|f| f.id.as_str()))
            .bind(s.flapping.as_ref().map(|f| f.since.0))
            .bind(s.maintenance_until.map(|t| t.0))
            .bind(s.outage.as_ref().map(|o| o.id.as_str()))
            .bind(now.0)
            .bind(&rec.id)
            .bind(rec.version)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                tx.rollback().await?;
                return Err(StoreError::Conflict(rec.key.to_string()));
            }
            if let (Some(id), Some(o)) = (&opened, &s.outage) {
                sqlx::query(
                    "INSERT INTO outages (id, instance_id, provider, cause, reason, started_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id)
                .bind(&rec.id)
                .bind(&rec.key.provider)
                .bind(o.cause.as_str())
                .bind(&o.reason)
                .bind(o.started_at.0)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(o) = &s.outage {
                sqlx::query(
                    "UPDATE outages SET cause = $1, reason = $2, restart_attempts = $3, down_notified = $4, \
                     exhausted_notified = $5, reminders_sent = $6, last_notice_at = $7 WHERE id = $8",
                )
                .bind(o.cause.as_str())
                .bind(&o.reason)
                .bind(i64::from(o.restart_attempts))
                .bind(o.down_notified)
                .bind(o.exhausted_notified)
                .bind(i64::from(o.reminders_sent))
                .bind(o.last_notice_at.map(|t| t.0))
                .bind(&o.id)
                .execute(&mut *tx)
                .await?;
            }
            for c in &out.changes {
                if let Change::OutageClosed { id, recovered_by } = c {
                    sqlx::query("UPDATE outages SET ended_at = $1, recovered_by = $2 WHERE id = $3 AND ended_at IS NULL")
                        .bind(now.0)
                        .bind(recovered_by.as_str())
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for (kind, detail) in &events {
                sqlx::query("INSERT INTO events (instance_id, provider, at, kind, detail) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&rec.id)
                    .bind(&rec.key.provider)
                    .bind(now.0)
                    .bind(*kind)
                    .bind(detail)
                    .execute(&mut *tx)
                    .await?;
            }
            for e in outbox {
                insert_outbox!(tx, e, now);
            }
            tx.commit().await?;
        });
        Ok(rec.version + 1)
    }

    /// Record when instances were last checked, in one statement per chunk
    /// (healthy instances cost no per-instance write otherwise).
    pub async fn touch_health_checks(&self, ids: &[String], now: Ts) -> Result<()> {
        match &self.db {
            // One statement with an array parameter: no per-id bind parsing.
            Db::Postgres(p) => {
                sqlx::query("UPDATE instances SET last_health_check = $1 WHERE id = ANY($2)")
                    .bind(now.0)
                    .bind(ids)
                    .execute(p)
                    .await?;
            }
            Db::Sqlite(p) => {
                for chunk in ids.chunks(500) {
                    let mut qb = sqlx::QueryBuilder::new("UPDATE instances SET last_health_check = ");
                    qb.push_bind(now.0).push(" WHERE id IN (");
                    let mut sep = qb.separated(", ");
                    for id in chunk {
                        sep.push_bind(id);
                    }
                    qb.push(")");
                    qb.build().execute(p).await?;
                }
            }
        }
        Ok(())
    }

    /// Flush coalesced `last_webhook_at` values; never moves one backwards.
    /// PostgreSQL takes them in one statement (arrays unnested); SQLite, local
    /// and single-writer, in one transaction of small updates.
    pub async fn flush_last_webhooks(&self, seen: &[(String, Ts)]) -> Result<()> {
        if seen.is_empty() {
            return Ok(());
        }
        match &self.db {
            Db::Postgres(p) => {
                let ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
                let ats: Vec<i64> = seen.iter().map(|(_, t)| t.0).collect();
                sqlx::query(
                    "UPDATE instances AS i SET last_webhook_at = v.at \
                     FROM (SELECT unnest($1::text[]) AS id, unnest($2::bigint[]) AS at) AS v \
                     WHERE i.id = v.id AND (i.last_webhook_at IS NULL OR i.last_webhook_at < v.at)",
                )
                .bind(&ids)
                .bind(&ats)
                .execute(p)
                .await?;
            }
            Db::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                for (id, at) in seen {
                    sqlx::query(
                        "UPDATE instances SET last_webhook_at = $1 WHERE id = $2 \
                         AND (last_webhook_at IS NULL OR last_webhook_at < $1)",
                    )
                    .bind(at.0)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Record the outcome of a webhook audit of one instance.
    pub async fn set_webhook_check(&self, id: &str, ok: bool, now: Ts) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("UPDATE instances SET webhook_checked_at = $1, webhook_ok = $2 WHERE id = $3")
                .bind(now.0)
                .bind(ok)
                .bind(id)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Retention: delete events, and closed outages, older than `before`.
    /// Returns (events, outages) deleted. Open outages are never deleted.
    pub async fn prune(&self, before: Ts) -> Result<(u64, u64)> {
        let (e, o) = on_pool!(self, p => {
            let e = sqlx::query("DELETE FROM events WHERE at < $1").bind(before.0).execute(p).await?;
            let o = sqlx::query(
                "DELETE FROM outages WHERE ended_at IS NOT NULL AND ended_at < $1 \
                 AND id NOT IN (SELECT open_outage_id FROM provider_state WHERE open_outage_id IS NOT NULL)",
            )
            .bind(before.0)
            .execute(p)
            .await?;
            sqlx::query("DELETE FROM outbox WHERE status <> 'pending' AND created_at < $1").bind(before.0).execute(p).await?;
            (e.rows_affected(), o.rows_affected())
        });
        Ok((e, o))
    }

    /// Append one audit event (manual actions, recovery results, webhook repairs).
    pub async fn record_event(
        &self,
        instance_id: Option<&str>,
        provider: &str,
        kind: &str,
        detail: &serde_json::Value,
        now: Ts,
    ) -> Result<()> {
        let detail = detail.to_string();
        on_pool!(self, p => {
            sqlx::query("INSERT INTO events (instance_id, provider, at, kind, detail) VALUES ($1, $2, $3, $4, $5)")
                .bind(instance_id)
                .bind(provider)
                .bind(now.0)
                .bind(kind)
                .bind(&detail)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// The newest events of one instance.
    pub async fn events(&self, instance_id: &str, limit: u32) -> Result<Vec<EventRecord>> {
        let rows = on_pool!(self, p => {
            sqlx::query_as::<_, EventRecord>(
                "SELECT id, instance_id, provider, at, kind, detail FROM events WHERE instance_id = $1 \
                 ORDER BY at DESC, id DESC LIMIT $2",
            )
            .bind(instance_id)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
        });
        Ok(rows)
    }

    // ------------------------------------------------------------------ outages

    /// Outages, newest first; optionally of one instance, optionally only open ones.
    pub async fn outages(
        &self,
        instance: Option<&InstanceKey>,
        open_only: bool,
        limit: u32,
    ) -> Result<Vec<OutageRecord>> {
        let rows: Vec<OutageRow> = on_pool!(self, p => {
            sqlx::query_as(concat!(
                outage_select!(),
                " WHERE ($1 IS NULL OR (o.provider = $1 AND i.name = $2)) \
                  AND ($3 = FALSE OR o.ended_at IS NULL) ORDER BY o.started_at DESC, o.id DESC LIMIT $4"
            ))
            .bind(instance.map(|k| k.provider.as_str()))
            .bind(instance.map(|k| k.name.as_str()))
            .bind(open_only)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(OutageRow::into_record).collect()
    }

    // ---------------------------------------------------------------- providers

    pub async fn provider_state(&self, name: &str) -> Result<ProviderState> {
        let row: Option<ProviderStateRow> = on_pool!(self, p => {
            sqlx::query_as(
                "SELECT s.failed_cycles, o.id, o.started_at, o.reason, o.down_notified FROM provider_state s \
                 LEFT JOIN outages o ON o.id = s.open_outage_id WHERE s.name = $1",
            )
            .bind(name)
            .fetch_optional(p)
            .await?
        });
        Ok(match row {
            None => ProviderState::default(),
            Some((failed, oid, started, reason, notified)) => ProviderState {
                failed_cycles: failed.try_into().unwrap_or(0),
                outage: match (oid, started, reason) {
                    (Some(id), Some(s), Some(r)) => Some(crate::domain::provider::ProviderOutage {
                        id,
                        started_at: Ts(s),
                        reason: r,
                        notified: notified.unwrap_or(false),
                    }),
                    _ => None,
                },
            },
        })
    }

    /// Commit one provider-wide step with its notices, in one transaction.
    pub async fn commit_provider_step(
        &self,
        provider: &str,
        out: &ProviderStepOutput,
        outbox: &[OutboxEntry],
        now: Ts,
    ) -> Result<()> {
        let s = &out.state;
        in_write_tx!(self, tx => {
            for c in &out.changes {
                match c {
                    ProviderChange::OutageOpened { id, reason } => {
                        let notified = s.outage.as_ref().is_some_and(|o| o.notified);
                        sqlx::query(
                            "INSERT INTO outages (id, instance_id, provider, cause, reason, started_at, down_notified) \
                             VALUES ($1, NULL, $2, 'provider_unreachable', $3, $4, $5)",
                        )
                        .bind(id)
                        .bind(provider)
                        .bind(reason)
                        .bind(now.0)
                        .bind(notified)
                        .execute(&mut *tx)
                        .await?;
                    }
                    ProviderChange::OutageClosed { id } => {
                        sqlx::query(
                            "UPDATE outages SET ended_at = $1, recovered_by = 'poll' WHERE id = $2 AND ended_at IS NULL",
                        )
                        .bind(now.0)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                let (kind, detail) = match c {
                    ProviderChange::OutageOpened { id, reason } => {
                        ("provider_outage_opened", serde_json::json!({"outage_id": id, "reason": reason}))
                    }
                    ProviderChange::OutageClosed { id } => ("provider_outage_closed", serde_json::json!({"outage_id": id})),
                };
                sqlx::query("INSERT INTO events (instance_id, provider, at, kind, detail) VALUES (NULL, $1, $2, $3, $4)")
                    .bind(provider)
                    .bind(now.0)
                    .bind(kind)
                    .bind(detail.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO provider_state (name, failed_cycles, open_outage_id, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name) DO UPDATE SET failed_cycles = excluded.failed_cycles, \
                 open_outage_id = excluded.open_outage_id, updated_at = excluded.updated_at",
            )
            .bind(provider)
            .bind(i64::from(s.failed_cycles))
            .bind(s.outage.as_ref().map(|o| o.id.as_str()))
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            for e in outbox {
                insert_outbox!(tx, e, now);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    // ------------------------------------------------------------------- leases

    /// Take or renew the lease `name` for `holder` for `ttl`; true if held now.
    /// PostgreSQL measures expiry on the database clock, so replicas with
    /// skewed clocks still agree. (SQLite runs one process, guarded by a file
    /// lock, and uses the caller's clock.)
    pub async fn try_lease(&self, name: &str, holder: &str, ttl: Duration, now: Ts) -> Result<bool> {
        let ttl_ms = crate::domain::time::duration_ms(ttl);
        let n = match &self.db {
            Db::Postgres(p) => sqlx::query(
                "INSERT INTO leases (name, holder, expires_at) \
                 VALUES ($1, $2, (extract(epoch from clock_timestamp()) * 1000)::bigint + $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE leases.holder = excluded.holder \
                 OR leases.expires_at < (extract(epoch from clock_timestamp()) * 1000)::bigint",
            )
            .bind(name)
            .bind(holder)
            .bind(ttl_ms)
            .execute(p)
            .await?
            .rows_affected(),
            Db::Sqlite(p) => sqlx::query(
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
            )
            .bind(name)
            .bind(holder)
            .bind(now.0 + ttl_ms)
            .bind(now.0)
            .execute(p)
            .await?
            .rows_affected(),
        };
        Ok(n == 1)
    }

    /// Give the lease up (on shutdown), so another replica takes over at once.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2").bind(name).bind(holder).execute(p).await?;
        });
        Ok(())
    }

    /// The SQLite file this store uses (`None` on PostgreSQL).
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        match &self.db {
            Db::Sqlite(p) => Some(p.connect_options().get_filename().to_path_buf()),
            Db::Postgres(_) => None,
        }
    }

    // ------------------------------------------------------------------- outbox

    /// Queue notices outside a state change (e.g. `webhook_repaired`). Duplicates
    /// of `(dedup_key, notifier)` are ignored.
    pub async fn enqueue(&self, outbox: &[OutboxEntry], now: Ts) -> Result<()> {
        in_write_tx!(self, tx => {
            for e in outbox {
                insert_outbox!(tx, e, now);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Claim up to `limit` due outbox rows of the given notifiers for `hold`
    /// (another claimer skips them until then). A row waits while an older row
    /// of the same notifier is pending a retry or claimed elsewhere, so notices
    /// reach each notifier in order. Rows of notifiers this worker does not know
    /// (another replica's or a newer config's) are left alone. PostgreSQL uses
    /// `FOR UPDATE SKIP LOCKED`, so several replicas can deliver without
    /// duplicates; SQLite has one writer and one claimer.
    pub async fn claim_outbox(
        &self,
        now: Ts,
        hold: Duration,
        limit: u32,
        notifiers: &[String],
    ) -> Result<Vec<OutboxRow>> {
        if notifiers.is_empty() {
            return Ok(Vec::new());
        }
        let until = now.plus(hold).0;
        macro_rules! claim_sql {
            ($qb:ident, $lock:expr) => {{
                let mut $qb = sqlx::QueryBuilder::new("UPDATE outbox SET claimed_until = ");
                $qb.push_bind(until);
                $qb.push(" WHERE id IN (SELECT o.id FROM outbox o WHERE o.status = 'pending' AND o.next_attempt_at <= ");
                $qb.push_bind(now.0);
                $qb.push(" AND (o.claimed_until IS NULL OR o.claimed_until <= ");
                $qb.push_bind(now.0);
                $qb.push(") AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.notifier = o.notifier AND p.status = 'pending' AND p.id < o.id AND (p.next_attempt_at > ");
                $qb.push_bind(now.0);
                $qb.push(" OR p.claimed_until > ");
                $qb.push_bind(now.0);
                $qb.push(")) AND o.notifier IN (");
                let mut sep = $qb.separated(", ");
                for n in notifiers {
                    sep.push_bind(n.as_str());
                }
                $qb.push(") ORDER BY o.id LIMIT ");
                $qb.push_bind(i64::from(limit));
                $qb.push($lock);
                $qb.push(") RETURNING id, dedup_key, notifier, kind, payload, attempts, created_at, claimed_until");
                $qb
            }};
        }
        let mut rows: Vec<OutboxRow> = match &self.db {
            Db::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                let mut qb = claim_sql!(qb, "");
                let rows = qb.build_query_as().fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows
            }
            Db::Postgres(p) => {
                let mut qb = claim_sql!(qb, " FOR UPDATE SKIP LOCKED");
                qb.build_query_as().fetch_all(p).await?
            }
        };
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// Renew a claim before delivering a row; false if it expired and another
    /// claimer took the row (then this one must not deliver it).
    pub async fn outbox_renew_claim(&self, id: i64, claimed_until: i64, new_until: Ts) -> Result<bool> {
        let n = on_pool!(self, p => {
            sqlx::query("UPDATE outbox SET claimed_until = $1 WHERE id = $2 AND claimed_until = $3 AND status = 'pending'")
                .bind(new_until.0)
                .bind(id)
                .bind(claimed_until)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Pending rows of notifiers no longer configured, older than `before`, are
    /// marked dead (counted by the caller) instead of waiting forever.
    pub async fn outbox_expire_unknown(&self, notifiers: &[String], before: Ts) -> Result<u64> {
        let n = on_pool!(self, p => {
            let mut qb = sqlx::QueryBuilder::new(
                "UPDATE outbox SET status = 'dead', last_error = 'notifier no longer configured' WHERE status = 'pending' AND created_at < ",
            );
            qb.push_bind(before.0);
            if !notifiers.is_empty() {
                qb.push(" AND notifier NOT IN (");
                let mut sep = qb.separated(", ");
                for n in notifiers {
                    sep.push_bind(n.as_str());
                }
                qb.push(")");
            }
            qb.build().execute(p).await?.rows_affected()
        });
        Ok(n)
    }

    pub async fn outbox_delivered(&self, id: i64, now: Ts) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query(
                "UPDATE outbox SET status = 'delivered', delivered_at = $1, attempts = attempts + 1, \
                 claimed_until = NULL, last_error = NULL WHERE id = $2",
            )
            .bind(now.0)
            .bind(id)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Give a claimed row back without counting an attempt (it waits behind a failed one).
    pub async fn outbox_release(&self, id: i64) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("UPDATE outbox SET claimed_until = NULL WHERE id = $1").bind(id).execute(p).await?;
        });
        Ok(())
    }

    /// A failed attempt: retry at `next_at`, or give up (`dead`) when `next_at` is `None`.
    pub async fn outbox_failed(&self, id: i64, error: &str, next_at: Option<Ts>) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $1, claimed_until = NULL, \
                 status = CASE WHEN $2 IS NULL THEN 'dead' ELSE 'pending' END, \
                 next_attempt_at = COALESCE($2, next_attempt_at) WHERE id = $3",
            )
            .bind(error)
            .bind(next_at.map(|t| t.0))
            .bind(id)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Count of outbox rows by status (`pending`, `delivered`, `dead`).
    pub async fn outbox_count(&self, status: &str) -> Result<i64> {
        let n: i64 = on_pool!(self, p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = $1").bind(status).fetch_one(p).await?
        });
        Ok(n)
    }

    /// Every outbox row (newest last), for tests and `history`-like views.
    pub async fn outbox_all(&self) -> Result<Vec<(String, String, String)>> {
        let rows: Vec<(String, String, String)> = on_pool!(self, p => {
            sqlx::query_as("SELECT dedup_key, notifier, status FROM outbox ORDER BY id").fetch_all(p).await?
        });
        Ok(rows)
    }
}
