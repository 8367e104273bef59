//! The `events` table: the append-only audit log.

use super::{Db, EventRecord, NoticeRecord, Result, Store};
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

    /// Record an operator's action on an instance (`operator_action`); returns
    /// the event's id, which the status page shows the outcome of.
    pub async fn record_action_event(
        &self,
        instance_id: &str,
        provider: &str,
        detail: &serde_json::Value,
        now: Ts,
    ) -> Result<i64> {
        let detail = detail.to_string();
        let id = on_pool!(self, p => {
            sqlx::query_scalar(
                "INSERT INTO events (instance_id, provider, at, kind, detail) \
                 VALUES ($1, $2, $3, 'operator_action', $4) RETURNING id",
            )
            .bind(instance_id)
            .bind(provider)
            .bind(now.0)
            .bind(&detail)
            .fetch_one(p)
            .await?
        });
        Ok(id)
    }

    /// The notices about one instance (its outages' and its webhook repairs'),
    /// newest first, with their delivery state.
    pub async fn notices_of(&self, instance_id: &str, outage_ids: &[String], limit: u32) -> Result<Vec<NoticeRecord>> {
        let mut out: Vec<NoticeRecord> = Vec::new();
        let prefixes = outage_ids
            .iter()
            .map(|o| format!("outage:{}:", like_escape(o)))
            .chain(std::iter::once(format!("webhook:{}:", like_escape(instance_id))));
        for prefix in prefixes {
            let rows: Vec<NoticeRecord> = on_pool!(self, p => {
                sqlx::query_as(
                    "SELECT kind, notifier, status, attempts, created_at, delivered_at, last_error FROM outbox \
                     WHERE dedup_key LIKE $1 ESCAPE '\\' ORDER BY created_at DESC, id DESC LIMIT $2",
                )
                .bind(format!("{prefix}%"))
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
            });
            out.extend(rows);
        }
        out.sort_by_key(|n| std::cmp::Reverse(n.created_at));
        out.truncate(limit as usize);
        Ok(out)
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

/// `s` with LIKE's wildcards escaped (the escape character is a backslash).
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}
