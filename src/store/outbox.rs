//! The `outbox` table: notices queued in the transaction of the change that
//! caused them, claimed and marked by the delivery worker.

use std::time::Duration;

use super::{Db, OutboxEntry, OutboxRow, Result, Store};
use crate::domain::Ts;

impl Store {
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

    /// The notifiers that have a notice about outage `outage_id` queued or
    /// sent: whoever was told about it (its closing notice goes to them).
    pub async fn notifiers_told(&self, outage_id: &str) -> Result<Vec<String>> {
        let prefix = format!("outage:{outage_id}:%");
        let rows: Vec<(String,)> = on_pool!(self, p => {
            sqlx::query_as("SELECT DISTINCT notifier FROM outbox WHERE dedup_key LIKE $1").bind(&prefix).fetch_all(p).await?
        });
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}
