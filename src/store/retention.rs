//! Retention: old events, closed outages, finished outbox rows and ended
//! maintenance windows are deleted. What a decision or a report within the
//! kept period still needs lives outside those rows: an open outage's
//! recipients (`outage_recipients`, gone with the outage), maintenance windows
//! (pruned by their end, not their start).

use super::{Db, Result, Store};
use crate::domain::Ts;

impl Store {
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
            sqlx::query("DELETE FROM maintenance_windows WHERE ended_at < $1").bind(before.0).execute(p).await?;
            sqlx::query("DELETE FROM stream_events WHERE at < $1").bind(before.0).execute(p).await?;
            // A link is useless past its expiry; its row only tells the
            // instance's page what became of it.
            sqlx::query("DELETE FROM pair_links WHERE expires_at < $1").bind(before.0).execute(p).await?;
            (e.rows_affected(), o.rows_affected())
        });
        Ok((e, o))
    }
}
