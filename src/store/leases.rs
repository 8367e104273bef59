//! The `leases` table (replica heartbeats and per-provider leadership), the
//! shared `leadership_plan` and the `replica_views` each replica publishes
//! (docs/operations.md "Several replicas").

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Db, Result, Store, StoreError};
use crate::domain::leadership::Plan;
use crate::domain::{InstanceKey, Ts};

/// The name of the one row of `leadership_plan`.
const PLAN: &str = "providers";

/// A replica's views are dropped a day after it last published one.
const VIEW_KEPT_MS: i64 = 24 * 3_600_000;

/// What a live replica configures (its `[[providers]]` and `[[instances]]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaView {
    pub holder: String,
    pub providers: BTreeSet<String>,
    pub instances: BTreeSet<InstanceKey>,
}

fn corrupt(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!(
        "{what} is not valid JSON ({e}); `wa-sentinel migrate` or a replica's next round rewrites it"
    ))
}

impl Store {
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
                 OR leases.expires_at <= (extract(epoch from clock_timestamp()) * 1000)::bigint",
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
                 WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
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

    /// Take the lease `name` for `holder` only if it is free or expired —
    /// never extend a live one, not even the holder's own (a replica's
    /// heartbeat at the start of its round: visible from its first round, but
    /// extended only at the end of a round, after its provider leases).
    pub async fn start_lease(&self, name: &str, holder: &str, ttl: Duration, now: Ts) -> Result<bool> {
        let ttl_ms = crate::domain::time::duration_ms(ttl);
        let n = match &self.db {
            Db::Postgres(p) => sqlx::query(
                "INSERT INTO leases (name, holder, expires_at) \
                 VALUES ($1, $2, (extract(epoch from clock_timestamp()) * 1000)::bigint + $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE leases.expires_at <= (extract(epoch from clock_timestamp()) * 1000)::bigint",
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
                 WHERE leases.expires_at <= $4",
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

    /// The holders of the unexpired leases whose name starts with `prefix`
    /// (the live replicas: `replica:`), on the database clock for PostgreSQL.
    pub async fn live_lease_holders(&self, prefix: &str, now: Ts) -> Result<Vec<String>> {
        let like = format!("{prefix}%");
        let rows: Vec<(String,)> = match &self.db {
            Db::Postgres(p) => {
                sqlx::query_as(
                    "SELECT holder FROM leases WHERE name LIKE $1 \
                     AND expires_at > (extract(epoch from clock_timestamp()) * 1000)::bigint ORDER BY holder",
                )
                .bind(&like)
                .fetch_all(p)
                .await?
            }
            Db::Sqlite(p) => {
                sqlx::query_as("SELECT holder FROM leases WHERE name LIKE $1 AND expires_at > $2 ORDER BY holder")
                    .bind(&like)
                    .bind(now.0)
                    .fetch_all(p)
                    .await?
            }
        };
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Extend `holder`'s lease `name` if it still holds it (never takes it).
    pub async fn renew_lease(&self, name: &str, holder: &str, ttl: Duration, now: Ts) -> Result<bool> {
        let ttl_ms = crate::domain::time::duration_ms(ttl);
        let n = match &self.db {
            Db::Postgres(p) => sqlx::query(
                "UPDATE leases SET expires_at = (extract(epoch from clock_timestamp()) * 1000)::bigint + $3 \
                 WHERE name = $1 AND holder = $2",
            )
            .bind(name)
            .bind(holder)
            .bind(ttl_ms)
            .execute(p)
            .await?
            .rows_affected(),
            Db::Sqlite(p) => sqlx::query("UPDATE leases SET expires_at = $3 WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .bind(now.0 + ttl_ms)
                .execute(p)
                .await?
                .rows_affected(),
        };
        Ok(n == 1)
    }

    /// The holders and names of the unexpired leases whose name starts with
    /// `prefix` (`provider:`), on the database clock for PostgreSQL.
    pub async fn live_leases(&self, prefix: &str, now: Ts) -> Result<Vec<(String, String)>> {
        let like = format!("{prefix}%");
        let rows: Vec<(String, String)> = match &self.db {
            Db::Postgres(p) => {
                sqlx::query_as(
                    "SELECT name, holder FROM leases WHERE name LIKE $1 \
                     AND expires_at > (extract(epoch from clock_timestamp()) * 1000)::bigint ORDER BY name",
                )
                .bind(&like)
                .fetch_all(p)
                .await?
            }
            Db::Sqlite(p) => {
                sqlx::query_as("SELECT name, holder FROM leases WHERE name LIKE $1 AND expires_at > $2 ORDER BY name")
                    .bind(&like)
                    .bind(now.0)
                    .fetch_all(p)
                    .await?
            }
        };
        Ok(rows)
    }

    /// Publish what `holder` configures (every lease round), and forget the
    /// views of replicas gone for a day.
    pub async fn publish_view(
        &self,
        holder: &str,
        providers: &BTreeSet<String>,
        instances: &BTreeSet<InstanceKey>,
        now: Ts,
    ) -> Result<()> {
        let providers = serde_json::to_string(providers).expect("names serialise");
        let pairs: Vec<(&str, &str)> = instances.iter().map(|k| (k.provider.as_str(), k.name.as_str())).collect();
        let instances = serde_json::to_string(&pairs).expect("names serialise");
        on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO replica_views (holder, providers, instances, seen_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (holder) DO UPDATE SET providers = excluded.providers, \
                 instances = excluded.instances, seen_at = excluded.seen_at",
            )
            .bind(holder)
            .bind(&providers)
            .bind(&instances)
            .bind(now.0)
            .execute(p)
            .await?;
            sqlx::query("DELETE FROM replica_views WHERE seen_at < $1").bind(now.0 - VIEW_KEPT_MS).execute(p).await?;
        });
        Ok(())
    }

    /// The views of the live replicas: those holding an unexpired
    /// `replica:<holder>` lease (on the database clock for PostgreSQL). Empty
    /// on SQLite, where one process runs without heartbeats.
    pub async fn live_views(&self, now: Ts) -> Result<Vec<ReplicaView>> {
        let rows: Vec<(String, String, String)> = match &self.db {
            Db::Postgres(p) => {
                sqlx::query_as(
                    "SELECT v.holder, v.providers, v.instances FROM replica_views v \
                     JOIN leases l ON l.name = 'replica:' || v.holder AND l.holder = v.holder \
                     WHERE l.expires_at > (extract(epoch from clock_timestamp()) * 1000)::bigint ORDER BY v.holder",
                )
                .fetch_all(p)
                .await?
            }
            Db::Sqlite(p) => {
                sqlx::query_as(
                    "SELECT v.holder, v.providers, v.instances FROM replica_views v \
                     JOIN leases l ON l.name = 'replica:' || v.holder AND l.holder = v.holder \
                     WHERE l.expires_at > $1 ORDER BY v.holder",
                )
                .bind(now.0)
                .fetch_all(p)
                .await?
            }
        };
        rows.into_iter()
            .map(|(holder, providers, instances)| {
                let providers: BTreeSet<String> =
                    serde_json::from_str(&providers).map_err(|e| corrupt("a replica's provider list", e))?;
                let pairs: Vec<(String, String)> =
                    serde_json::from_str(&instances).map_err(|e| corrupt("a replica's instance list", e))?;
                let instances = pairs.into_iter().map(|(p, n)| InstanceKey::new(&p, &n)).collect();
                Ok(ReplicaView { holder, providers, instances })
            })
            .collect()
    }

    /// The shared leadership plan, if one was written.
    pub async fn leadership_plan(&self) -> Result<Option<Plan>> {
        let row: Option<(i64, String, String)> = on_pool!(self, p => {
            sqlx::query_as("SELECT version, members, leaders FROM leadership_plan WHERE name = $1")
                .bind(PLAN)
                .fetch_optional(p)
                .await?
        });
        let Some((version, members, leaders)) = row else { return Ok(None) };
        let members: BTreeSet<String> = serde_json::from_str(&members).map_err(|e| corrupt("the plan's members", e))?;
        let leaders: BTreeMap<String, String> =
            serde_json::from_str(&leaders).map_err(|e| corrupt("the plan's leaders", e))?;
        Ok(Some(Plan { version, members, leaders }))
    }

    /// Write `plan` if the stored plan is still at version `expected` (`None`:
    /// no plan yet); false when another replica wrote first (read it again).
    pub async fn write_plan(&self, expected: Option<i64>, plan: &Plan, by: &str, now: Ts) -> Result<bool> {
        let members = serde_json::to_string(&plan.members).expect("names serialise");
        let leaders = serde_json::to_string(&plan.leaders).expect("names serialise");
        let n = on_pool!(self, p => {
            match expected {
                None => sqlx::query(
                    "INSERT INTO leadership_plan (name, version, members, leaders, written_by, written_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
                )
                .bind(PLAN)
                .bind(plan.version)
                .bind(&members)
                .bind(&leaders)
                .bind(by)
                .bind(now.0)
                .execute(p)
                .await?
                .rows_affected(),
                Some(v) => sqlx::query(
                    "UPDATE leadership_plan SET version = $2, members = $3, leaders = $4, written_by = $5, \
                     written_at = $6 WHERE name = $1 AND version = $7",
                )
                .bind(PLAN)
                .bind(plan.version)
                .bind(&members)
                .bind(&leaders)
                .bind(by)
                .bind(now.0)
                .bind(v)
                .execute(p)
                .await?
                .rows_affected(),
            }
        });
        Ok(n == 1)
    }
}
