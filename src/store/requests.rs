//! The `action_requests` table: status-page actions that need a provider
//! call, asked for on a replica that does not lead the provider. The leader
//! takes them at the start of its next poll cycle of that provider.

use super::{Db, Result, Store};
use crate::domain::Ts;

/// One recorded request.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ActionRequest {
    pub id: String,
    pub instance_id: String,
    pub provider: String,
    /// `restart` or `webhook`.
    pub action: String,
    pub force: bool,
    pub actor: String,
    pub address: String,
    pub requested_at: i64,
}

impl Store {
    /// Record a request for the provider's leader.
    pub async fn request_action(&self, r: &ActionRequest) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO action_requests (id, instance_id, provider, action, force, actor, address, requested_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&r.id)
            .bind(&r.instance_id)
            .bind(&r.provider)
            .bind(&r.action)
            .bind(r.force)
            .bind(&r.actor)
            .bind(&r.address)
            .bind(r.requested_at)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Take the pending requests of `provider`, oldest first: each is marked
    /// taken in the same transaction, so two takers never get the same one.
    /// Requests made before `expired_before` are closed as `expired` instead.
    pub async fn take_action_requests(
        &self,
        provider: &str,
        now: Ts,
        expired_before: Ts,
    ) -> Result<Vec<ActionRequest>> {
        // Every poll cycle of every provider asks: a plain read when there is
        // nothing (the usual case), no write transaction and no write lock.
        let pending: i64 = on_pool!(self, p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM action_requests WHERE provider = $1 AND taken_at IS NULL")
                .bind(provider)
                .fetch_one(p)
                .await?
        });
        if pending == 0 {
            return Ok(Vec::new());
        }
        let rows = in_write_tx!(self, tx => {
            sqlx::query(
                "UPDATE action_requests SET taken_at = $1, done_at = $1, outcome = 'expired', \
                 message = 'not taken in time by the leader' \
                 WHERE provider = $2 AND taken_at IS NULL AND requested_at < $3",
            )
            .bind(now.0)
            .bind(provider)
            .bind(expired_before.0)
            .execute(&mut *tx)
            .await?;
            let rows: Vec<ActionRequest> = sqlx::query_as(
                "UPDATE action_requests SET taken_at = $1 WHERE provider = $2 AND taken_at IS NULL \
                 RETURNING id, instance_id, provider, action, force, actor, address, requested_at",
            )
            .bind(now.0)
            .bind(provider)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            rows
        });
        let mut rows = rows;
        rows.sort_by(|a, b| (a.requested_at, &a.id).cmp(&(b.requested_at, &b.id)));
        Ok(rows)
    }

    /// Record how a taken request ended.
    pub async fn finish_action_request(&self, id: &str, outcome: &str, message: &str, now: Ts) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("UPDATE action_requests SET done_at = $1, outcome = $2, message = $3 WHERE id = $4")
                .bind(now.0)
                .bind(outcome)
                .bind(message)
                .bind(id)
                .execute(p)
                .await?;
        });
        Ok(())
    }
}
