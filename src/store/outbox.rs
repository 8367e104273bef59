//! The `outbox` table: notices queued in the transaction of the change that
//! caused them, claimed (a lease with a token per claim) and marked by the
//! delivery worker.

use std::time::Duration;

use super::{Db, OutboxEntry, OutboxRow, OutboxView, Result, Store};
use crate::domain::Ts;

/// One of the oldest pending rows of a notifier: `(id, notifier,
/// next_attempt_at, claimed_until)`.
type PendingHead = (i64, String, i64, Option<i64>);

/// Which of the notifiers' oldest pending rows a claim at `now` may take, at
/// most `limit`, oldest first: per notifier, its rows in order up to the first
/// one that waits for a retry or is claimed by someone (later rows wait behind
/// it, so a notifier's notices go out in order).
fn claimable(mut heads: Vec<PendingHead>, now: Ts, limit: u32) -> Vec<i64> {
    heads.sort_by(|a, b| (&a.1, a.0).cmp(&(&b.1, b.0)));
    let mut ids = Vec::new();
    let mut blocked: Option<&str> = None;
    for (id, notifier, next_attempt_at, claimed_until) in &heads {
        if blocked == Some(notifier.as_str()) {
            continue;
        }
        if *next_attempt_at > now.0 || claimed_until.is_some_and(|c| c > now.0) {
            blocked = Some(notifier);
            continue;
        }
        ids.push(*id);
    }
    ids.sort_unstable();
    ids.truncate(limit as usize);
    ids
}

/// ` WHERE` the pending rows among `ids` still held by the claim `token`.
macro_rules! held_by {
    ($qb:ident, $token:expr, $ids:expr) => {{
        $qb.push(" WHERE claim_token = ");
        $qb.push_bind($token);
        $qb.push(" AND status = 'pending' AND id IN (");
        let mut sep = $qb.separated(", ");
        for id in $ids {
            sep.push_bind(*id);
        }
        sep.push_unseparated(")");
    }};
}

/// The PostgreSQL advisory lock that serialises outbox claims across replicas
/// (an arbitrary constant: "wa-sentinel outbox" in ASCII, truncated).
const OUTBOX_CLAIM_LOCK: i64 = 0x7761_2d73_6f75_7462;

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

    /// Claim up to `limit` due outbox rows of the given notifiers for `hold`.
    /// A claim is a lease: every row it takes carries the claim's random token,
    /// and only the holder of the token may renew the claim or record the
    /// outcome ([`Store::outbox_renew_claim`], [`Store::outbox_delivered`],
    /// [`Store::outbox_failed`], [`Store::outbox_release`]). Another claimer
    /// skips the rows until the lease runs out.
    ///
    /// A row waits while an older row of the same notifier is pending a retry
    /// or claimed, so notices reach each notifier in order. Rows of notifiers
    /// this worker does not know (another replica's or a newer config's) are
    /// left alone. Claims never run concurrently: SQLite takes the write lock
    /// up front (`BEGIN IMMEDIATE`); PostgreSQL takes a transaction-scoped
    /// advisory lock, so a second replica's claim sees the first one's rows as
    /// claimed instead of skipping past them (which would reorder a notifier).
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
        let token = uuid::Uuid::now_v7().simple().to_string();
        // Per notifier, only the oldest `limit` pending rows can be claimable
        // (a claim never skips a row), so each notifier costs one index range
        // scan on `outbox_by_notifier`, however long its backlog is.
        macro_rules! heads_sql {
            ($qb:ident) => {{
                let mut $qb = sqlx::QueryBuilder::new("");
                for (i, n) in notifiers.iter().enumerate() {
                    if i > 0 {
                        $qb.push(" UNION ALL ");
                    }
                    $qb.push("SELECT * FROM (SELECT id, notifier, next_attempt_at, claimed_until FROM outbox WHERE notifier = ");
                    $qb.push_bind(n.as_str());
                    $qb.push(" AND status = 'pending' ORDER BY id LIMIT ");
                    $qb.push_bind(i64::from(limit));
                    $qb.push(format!(") AS head_{i}"));
                }
                $qb
            }};
        }
        macro_rules! claim_sql {
            ($qb:ident, $ids:expr) => {{
                let mut $qb = sqlx::QueryBuilder::new("UPDATE outbox SET claimed_until = ");
                $qb.push_bind(until);
                $qb.push(", claim_token = ");
                $qb.push_bind(token.as_str());
                $qb.push(" WHERE id IN (");
                let mut sep = $qb.separated(", ");
                for id in $ids {
                    sep.push_bind(*id);
                }
                sep.push_unseparated(
                    ") RETURNING id, dedup_key, notifier, kind, payload, attempts, created_at, claim_token, receipts",
                );
                $qb
            }};
        }
        macro_rules! claim_in {
            ($tx:ident) => {{
                let heads: Vec<PendingHead> = heads_sql!(qb).build_query_as().fetch_all(&mut *$tx).await?;
                let ids = claimable(heads, now, limit);
                let rows: Vec<OutboxRow> = if ids.is_empty() {
                    Vec::new()
                } else {
                    claim_sql!(qb, &ids).build_query_as().fetch_all(&mut *$tx).await?
                };
                $tx.commit().await?;
                rows
            }};
        }
        let mut rows: Vec<OutboxRow> = match &self.db {
            Db::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                claim_in!(tx)
            }
            Db::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(OUTBOX_CLAIM_LOCK).execute(&mut *tx).await?;
                claim_in!(tx)
            }
        };
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// Renew the claim `token` on the rows `ids` (a notifier's rows not yet
    /// delivered, in order) until `until`; returns the ids this claim still
    /// holds. A row missing from the answer was taken over by another claimer
    /// after this claim's lease ran out: this holder must not deliver it.
    pub async fn outbox_renew_claim(&self, token: &str, ids: &[i64], until: Ts) -> Result<Vec<i64>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let held: Vec<i64> = on_pool!(self, p => {
            let mut qb = sqlx::QueryBuilder::new("UPDATE outbox SET claimed_until = ");
            qb.push_bind(until.0);
            held_by!(qb, token, ids);
            qb.push(" RETURNING id");
            qb.build_query_scalar().fetch_all(p).await?
        });
        Ok(held)
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

    /// Record a delivery. Only the holder of the row's claim can: false (and
    /// nothing written) when another claimer took the row over meanwhile.
    pub async fn outbox_delivered(&self, row: &OutboxRow, now: Ts) -> Result<bool> {
        let n = on_pool!(self, p => {
            sqlx::query(
                "UPDATE outbox SET status = 'delivered', delivered_at = $1, attempts = attempts + 1, \
                 claimed_until = NULL, claim_token = NULL, last_error = NULL \
                 WHERE id = $2 AND claim_token = $3 AND status = 'pending'",
            )
            .bind(now.0)
            .bind(row.id)
            .bind(&row.claim_token)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Give claimed rows back without counting an attempt (they wait behind a
    /// failed one). Rows another claimer holds by now are left alone.
    pub async fn outbox_release(&self, token: &str, ids: &[i64]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let n = on_pool!(self, p => {
            let mut qb = sqlx::QueryBuilder::new("UPDATE outbox SET claimed_until = NULL, claim_token = NULL");
            held_by!(qb, token, ids);
            qb.build().execute(p).await?.rows_affected()
        });
        Ok(n)
    }

    /// A failed attempt: retry at `next_at`, or give up (`dead`) when `next_at`
    /// is `None`. Like [`Store::outbox_delivered`], only the claim's holder
    /// writes: false when the row was taken over.
    pub async fn outbox_failed(&self, row: &OutboxRow, error: &str, next_at: Option<Ts>) -> Result<bool> {
        let n = on_pool!(self, p => {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $1, claimed_until = NULL, claim_token = NULL, \
                 status = CASE WHEN $2 IS NULL THEN 'dead' ELSE 'pending' END, \
                 next_attempt_at = COALESCE($2, next_attempt_at) \
                 WHERE id = $3 AND claim_token = $4 AND status = 'pending'",
            )
            .bind(error)
            .bind(next_at.map(|t| t.0))
            .bind(row.id)
            .bind(&row.claim_token)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Write a `whatsapp` notifier's receipts (`(row id, JSON)`), in one
    /// transaction. Only the claim's holder can: returns how many rows it
    /// still held (the others were taken over and are not written).
    pub async fn outbox_set_receipts(&self, token: &str, rows: &[(i64, String)]) -> Result<u64> {
        let mut n = 0;
        in_write_tx!(self, tx => {
            for (id, receipts) in rows {
                n += sqlx::query(
                    "UPDATE outbox SET receipts = $1 WHERE id = $2 AND claim_token = $3 AND status = 'pending'",
                )
                .bind(receipts)
                .bind(id)
                .bind(token)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            tx.commit().await?;
        });
        Ok(n)
    }

    /// Give claimed rows back, not to be claimed before `until`, without
    /// counting an attempt (a `whatsapp` notifier's digest window, or a wait
    /// for a verdict on its instance). The notifier's later rows wait behind
    /// them, as behind a retry.
    pub async fn outbox_defer(&self, token: &str, ids: &[i64], until: Ts) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let n = on_pool!(self, p => {
            let mut qb = sqlx::QueryBuilder::new("UPDATE outbox SET claimed_until = NULL, claim_token = NULL, next_attempt_at = ");
            qb.push_bind(until.0);
            held_by!(qb, token, ids);
            qb.build().execute(p).await?.rows_affected()
        });
        Ok(n)
    }

    /// Hand a notice its notifier cannot deliver to `fallback`, in one
    /// transaction: the row is settled as `handed_over` with `why`, and the
    /// fallback gets a row with the same dedup key and payload (none when it
    /// has one already), and counts among the notifiers told about the
    /// outage. Only the claim's holder can: false when the row was taken over.
    pub async fn outbox_hand_over(&self, row: &OutboxRow, fallback: &str, why: &str, now: Ts) -> Result<bool> {
        let entry = OutboxEntry {
            dedup_key: row.dedup_key.clone(),
            notifier: fallback.to_string(),
            kind: row.kind.clone(),
            payload: row.payload.clone(),
        };
        let mut handed = false;
        in_write_tx!(self, tx => {
            let n = sqlx::query(
                "UPDATE outbox SET status = 'handed_over', attempts = attempts + 1, last_error = $1, delivered_at = $2, \
                 claimed_until = NULL, claim_token = NULL \
                 WHERE id = $3 AND claim_token = $4 AND status = 'pending'",
            )
            .bind(why)
            .bind(now.0)
            .bind(row.id)
            .bind(&row.claim_token)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                let e = &entry;
                insert_outbox!(tx, e, now);
                handed = true;
            }
            tx.commit().await?;
        });
        Ok(handed)
    }

    /// Every outbox row as it stands, oldest first (tests, diagnostics).
    pub async fn outbox_rows(&self) -> Result<Vec<OutboxView>> {
        let rows: Vec<OutboxView> = on_pool!(self, p => {
            sqlx::query_as(
                "SELECT dedup_key, notifier, kind, status, attempts, last_error, receipts FROM outbox ORDER BY id",
            )
            .fetch_all(p)
            .await?
        });
        Ok(rows)
    }

    /// Count of outbox rows by status (`pending`, `delivered`, `dead`, `handed_over`).
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

    /// The notifiers that had a notice about outage `outage_id` queued:
    /// whoever was told about it (its closing notice goes to them). Kept with
    /// the outage, not read from the outbox, which retention prunes.
    pub async fn notifiers_told(&self, outage_id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = on_pool!(self, p => {
            sqlx::query_as("SELECT notifier FROM outage_recipients WHERE outage_id = $1 ORDER BY notifier")
                .bind(outage_id)
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_takes_each_notifiers_rows_in_order_up_to_the_first_waiting_one() {
        let now = Ts(1000);
        let h = |id: i64, n: &str, next: i64, claimed: Option<i64>| (id, n.to_string(), next, claimed);
        let heads = vec![
            h(1, "ops", 1000, None),
            h(4, "ops", 5000, None), // waits for its retry: 6 waits behind it
            h(6, "ops", 0, None),
            h(2, "mail", 0, Some(2000)), // claimed elsewhere: 3 waits behind it
            h(3, "mail", 0, None),
            h(5, "pager", 0, Some(900)), // an expired claim does not hold
            h(7, "pager", 0, None),
        ];
        assert_eq!(claimable(heads.clone(), now, 10), vec![1, 5, 7]);
        assert_eq!(claimable(heads, now, 2), vec![1, 5], "oldest first, at most `limit`");
    }
}
