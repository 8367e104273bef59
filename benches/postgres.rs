//! A fresh PostgreSQL database per run, and its write counters.

use super::*;

/// A fresh database per run (so `pg_stat_database` sees only the daemon).
pub(crate) struct PgBench {
    pub(crate) admin: sqlx::PgPool,
    pub(crate) name: String,
    pub(crate) url: String,
}

impl PgBench {
    pub(crate) async fn create(base: &str) -> Result<PgBench> {
        let admin = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(base).await?;
        let name = format!("bench_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await?;
        let (head, query) = base.split_once('?').map_or((base, None), |(h, q)| (h, Some(q)));
        let prefix =
            head.rsplit_once('/').filter(|(p, _)| p.contains("://") && !p.ends_with('/')).map_or(head, |(p, _)| p);
        let url = match query {
            Some(q) => format!("{prefix}/{name}?{q}"),
            None => format!("{prefix}/{name}"),
        };
        Ok(PgBench { admin, name, url })
    }

    /// (xact_commit, tup_inserted, tup_updated, tup_deleted)
    pub(crate) async fn stats(&self) -> Result<[i64; 4]> {
        let (a, b, c, d): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database WHERE datname = $1",
        )
        .bind(&self.name)
        .fetch_one(&self.admin)
        .await?;
        Ok([a, b, c, d])
    }

    pub(crate) async fn drop_db(self) {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)))
            .execute(&self.admin)
            .await;
        self.admin.close().await;
    }
}
