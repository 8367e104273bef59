//! The `events` table: the append-only audit log.

use super::{Db, EventRecord, Result, Store};
use crate::domain::Ts;

impl Store {
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

    /// The newest provider-wide events of `provider` (outages, remediation
    /// runs, version changes), instance events excluded.
    pub async fn provider_events(&self, provider: &str, limit: u32) -> Result<Vec<EventRecord>> {
        let rows = on_pool!(self, p => {
            sqlx::query_as::<_, EventRecord>(
                "SELECT id, instance_id, provider, at, kind, detail FROM events \
                 WHERE provider = $1 AND instance_id IS NULL ORDER BY at DESC, id DESC LIMIT $2",
            )
            .bind(provider)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
        });
        Ok(rows)
    }
}
