//! The `provider_state` table and provider-wide outages.

use super::{Db, OutboxEntry, ProviderStateRow, Result, Store};
use crate::domain::Ts;
use crate::domain::provider::{ProviderChange, ProviderState, ProviderStepOutput};

impl Store {
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
}
