//! The `leases` table: replica heartbeats and per-provider leadership (SPEC §8).

use std::time::Duration;

use super::{Db, Result, Store};
use crate::domain::Ts;

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
}
