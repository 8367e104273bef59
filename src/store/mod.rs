//! The only SQL in wa-sentinel. One [`Store`] over SQLite (the embedded
//! default: file created if missing, WAL, foreign keys on) or PostgreSQL
//! (production, several replicas). The SQL text is shared: both backends take
//! `$N` placeholders, instants are `BIGINT` milliseconds and JSON is `TEXT`, so
//! each method is written once and expanded for each pool by `on_pool!`.
//! Where the dialects differ (row claiming), the method says so.
//!
//! One file per table family, each an `impl Store` block: `instances`
//! (inventory and state-machine commits), `outages`, `events`,
//! `availability` (what availability is computed from), `requests`
//! (status-page actions waiting for a provider's leader), `providers`
//! (provider-wide state), `leases` (and the shared leadership plan), `outbox`, `sessions` (status-page
//! sign-ins), `retention`, `stream` (the event stream), `tenants` (tenants
//! assigned through the API) and `pair_links` (re-pair links). The shared macros
//! live here, above the module declarations, so every file can use them.
//!
//! DDL runs only in migrations (`migrations/sqlite`, `migrations/postgres`),
//! applied at start-up and by `wa-sentinel migrate` — never per request.

mod records;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Row, SqlitePool};

pub use availability::{HistoryFilter, InstanceHistory};
pub use instances::{CommitExtras, NewInstance};
pub use leases::ReplicaView;
pub use pair_links::{NewPairLink, PairLinkRecord};
pub use providers::ProviderOverview;
pub use records::{
    EventRecord, InstanceFilter, InstanceRecord, InventoryRow, NoticeRecord, OutageRecord, OutboxEntry, OutboxRow,
    OutboxView, PollRow, RecordRef,
};
pub use requests::ActionRequest;
pub use stream::StreamOut;

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
/// A notice about an outage also records its notifier among the outage's
/// recipients (`outage_recipients`), which outlive the pruned outbox rows.
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
        if let Some(outage) = $crate::store::outage_of_dedup_key(&$e.dedup_key) {
            sqlx::query(
                "INSERT INTO outage_recipients (outage_id, notifier) \
                 SELECT id, $2 FROM outages WHERE id = $1 ON CONFLICT (outage_id, notifier) DO NOTHING",
            )
            .bind(outage)
            .bind(&$e.notifier)
            .execute(&mut *$tx)
            .await?;
        }
    };
}

/// Append one event to the stream inside a transaction: numbered from the
/// stream's counter (a row updated in this transaction, so numbers follow
/// commit order), and one outbox row per subscriber, numbered from that
/// subscriber's own counter (strictly increasing, no gaps).
macro_rules! insert_stream {
    ($tx:ident, $s:expr) => {
        let seq: i64 = sqlx::query_scalar("UPDATE stream_seq SET last = last + 1 WHERE name = '' RETURNING last")
            .fetch_one(&mut *$tx)
            .await?;
        let ev = &$s.event;
        sqlx::query(
            "INSERT INTO stream_events (seq, at, event, provider, instance, tenant, payload) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(seq)
        .bind(ev.at.0)
        .bind(ev.event)
        .bind(&ev.provider)
        .bind(&ev.instance)
        .bind(&ev.tenant)
        .bind(ev.json(seq).to_string())
        .execute(&mut *$tx)
        .await?;
        for sub in &$s.subscribers {
            let counter = format!("subscriber:{sub}");
            let n: i64 = sqlx::query_scalar(
                "INSERT INTO stream_seq (name, last) VALUES ($1, 1) \
                 ON CONFLICT (name) DO UPDATE SET last = stream_seq.last + 1 RETURNING last",
            )
            .bind(&counter)
            .fetch_one(&mut *$tx)
            .await?;
            sqlx::query(
                "INSERT INTO outbox (dedup_key, notifier, kind, payload, status, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, $4, 'pending', $5, $5) ON CONFLICT (dedup_key, notifier) DO NOTHING",
            )
            .bind(format!("event:{sub}:{n}"))
            .bind(&counter)
            .bind(ev.event)
            .bind(ev.json(n).to_string())
            .bind(ev.at.0)
            .execute(&mut *$tx)
            .await?;
        }
    };
}

/// The outage a notice's dedup key names (`outage:<id>:…`), if any.
pub(crate) fn outage_of_dedup_key(key: &str) -> Option<&str> {
    key.strip_prefix("outage:")?.split(':').next().filter(|id| !id.is_empty())
}

macro_rules! instance_select {
    () => {
        "SELECT i.id, i.provider, i.name, i.tenant, i.labels, i.source, i.tenant_source, i.present, i.health, i.health_reason, \
         i.health_since, i.consecutive_failures, i.connected_at, i.disconnected_at, i.last_health_check, \
         i.last_webhook_at, i.last_restart_attempt, i.restart_attempts, i.replaced_count, i.flap_history, \
         i.flapping_id, i.flapping_since, i.maintenance_until, i.webhook_checked_at, i.webhook_ok, i.version, \
         i.provider_id, i.replaced_at, \
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

mod availability;
mod events;
mod instances;
mod leases;
mod outages;
mod outbox;
mod pair_links;
mod providers;
mod requests;
mod retention;
mod sessions;
mod stream;
mod tenants;

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
                .busy_timeout(Duration::from_secs(10))
                // 1 MiB of page cache per connection instead of SQLite's 2 MiB:
                // every pool connection fills its own (measured with massif at
                // 10,000 instances over 20 providers: 13.7 MiB of the heap).
                .pragma("cache_size", "-1024");
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

    /// The SQLite file this store uses (`None` on PostgreSQL).
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        match &self.db {
            Db::Sqlite(p) => Some(p.connect_options().get_filename().to_path_buf()),
            Db::Postgres(_) => None,
        }
    }
}
