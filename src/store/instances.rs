//! The `instances` table: inventory, one state-machine step committed with its
//! outage rows, events and outbox rows, and the batched writes of the hot path.

use std::collections::BTreeMap;

use super::records::{InstanceRow, InventorySqlRow, change_event};
use super::stream::StreamOut;
use super::{
    Db, InstanceFilter, InstanceRecord, InventoryRow, OutboxEntry, PollRow, RecordRef, Result, Store, StoreError,
};
use crate::domain::health::{Change, StepOutput};
use crate::domain::notice::RecoveredBy;
use crate::domain::{Health, InstanceKey, InstanceState, Ts};

/// What commits with a step besides its state, outages, events and outbox
/// rows: the re-pair links its notices carry and its events for the stream.
#[derive(Debug, Default, Clone, Copy)]
pub struct CommitExtras<'a> {
    pub links: &'a [super::NewPairLink],
    pub stream: &'a [StreamOut],
}

/// One instance for [`Store::ensure_instances`].
#[derive(Debug, Clone, Copy)]
pub struct NewInstance<'a> {
    pub key: &'a InstanceKey,
    pub tenant: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub source: &'a str,
    pub provider_id: Option<&'a str>,
    /// Where the tenant came from (`config`, `api`, `sql`, `pattern`, `default`).
    pub tenant_source: &'a str,
}

impl Store {
    /// Make sure a present instance exists with this tenant, labels and
    /// provider-side id (inventory merge). A new row starts `unknown`; a
    /// retired row is never revived — an instance seen again under an old
    /// name starts with a fresh record (rule 14). Returns the present record.
    pub async fn ensure_instance(
        &self,
        key: &InstanceKey,
        tenant: &str,
        labels: &BTreeMap<String, String>,
        source: &str,
        provider_id: Option<&str>,
        now: Ts,
    ) -> Result<InstanceRecord> {
        let one = NewInstance { key, tenant, labels, source, provider_id, tenant_source: "default" };
        self.ensure_instances(std::slice::from_ref(&one), now, &[]).await?;
        self.instance(key).await?.ok_or_else(|| StoreError::Corrupt(format!("instance {key} vanished after insert")))
    }

    /// [`Store::ensure_instance`] for many instances in one transaction, with
    /// no read-back (a first discovery of thousands of instances is one
    /// commit); `stream` (tenant changes) commits with them.
    pub async fn ensure_instances(&self, rows: &[NewInstance<'_>], now: Ts, stream: &[StreamOut]) -> Result<()> {
        if rows.is_empty() && stream.is_empty() {
            return Ok(());
        }
        let fresh = InstanceState::new(now);
        in_write_tx!(self, tx => {
            for r in rows {
                let labels = serde_json::to_string(r.labels).expect("string map serialises");
                sqlx::query(
                    "INSERT INTO instances (id, provider, name, tenant, labels, source, present, health, health_reason, \
                     health_since, created_at, updated_at, provider_id, tenant_source) \
                     VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7, $8, $9, $9, $9, $10, $11) \
                     ON CONFLICT (provider, name) WHERE present = TRUE DO UPDATE SET tenant = excluded.tenant, \
                     labels = excluded.labels, source = excluded.source, tenant_source = excluded.tenant_source, \
                     provider_id = COALESCE(excluded.provider_id, instances.provider_id), updated_at = excluded.updated_at \
                     WHERE instances.tenant <> excluded.tenant OR instances.labels <> excluded.labels \
                     OR instances.source <> excluded.source OR instances.tenant_source <> excluded.tenant_source \
                     OR (excluded.provider_id IS NOT NULL AND instances.provider_id IS NULL)",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&r.key.provider)
                .bind(&r.key.name)
                .bind(r.tenant)
                .bind(&labels)
                .bind(r.source)
                .bind(fresh.health.as_str())
                .bind(&fresh.reason)
                .bind(now.0)
                .bind(r.provider_id)
                .bind(r.tenant_source)
                .execute(&mut *tx)
                .await?;
            }
            for s in stream {
                insert_stream!(tx, s);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn instance(&self, key: &InstanceKey) -> Result<Option<InstanceRecord>> {
        let row: Option<InstanceRow> = on_pool!(self, p => {
            sqlx::query_as(concat!(instance_select!(), " WHERE i.provider = $1 AND i.name = $2 AND i.present = TRUE"))
                .bind(&key.provider)
                .bind(&key.name)
                .fetch_optional(p)
                .await?
        });
        row.map(InstanceRow::into_record).transpose()
    }

    /// Every record ever kept under `key` (the present one and retired ones),
    /// newest first.
    pub async fn records_of(&self, key: &InstanceKey) -> Result<Vec<RecordRef>> {
        let rows: Vec<(String, i64, Option<i64>, bool)> = on_pool!(self, p => {
            sqlx::query_as(
                "SELECT id, created_at, retired_at, present FROM instances WHERE provider = $1 AND name = $2 \
                 ORDER BY created_at DESC, id DESC",
            )
            .bind(&key.provider)
            .bind(&key.name)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, created_at, retired_at, present)| RecordRef {
                id,
                created_at: Ts(created_at),
                retired_at: retired_at.map(Ts).filter(|_| !present),
                present,
            })
            .collect())
    }

    pub async fn instance_by_id(&self, id: &str) -> Result<Option<InstanceRecord>> {
        let row: Option<InstanceRow> = on_pool!(self, p => {
            sqlx::query_as(concat!(instance_select!(), " WHERE i.id = $1")).bind(id).fetch_optional(p).await?
        });
        row.map(InstanceRow::into_record).transpose()
    }

    /// Instances, ordered by provider and name, filtered.
    pub async fn instances(&self, f: &InstanceFilter) -> Result<Vec<InstanceRecord>> {
        let rows: Vec<InstanceRow> = on_pool!(self, p => {
            sqlx::query_as(concat!(
                instance_select!(),
                " WHERE ($1 IS NULL OR i.provider = $1) AND ($2 IS NULL OR i.tenant = $2) \
                  AND ($3 IS NULL OR i.health = $3) AND (i.present = TRUE OR $4 = TRUE) \
                  ORDER BY i.provider, i.name"
            ))
            .bind(f.provider.as_deref())
            .bind(f.tenant.as_deref())
            .bind(f.health.map(Health::as_str))
            .bind(f.include_absent)
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(InstanceRow::into_record).collect()
    }

    /// The present instances of one provider (or all), as the inventory and
    /// the receiver's index need them: a few fields, not the state machine.
    pub async fn inventory(&self, provider: Option<&str>) -> Result<Vec<InventoryRow>> {
        let rows: Vec<InventorySqlRow> = on_pool!(self, p => {
            sqlx::query_as(
                "SELECT id, provider, name, tenant, labels, source, tenant_source, provider_id, health, version, \
                 last_webhook_at FROM instances WHERE present = TRUE AND ($1 IS NULL OR provider = $1) \
                 ORDER BY provider, name",
            )
            .bind(provider)
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(InventorySqlRow::into_row).collect()
    }

    /// One page of provider `provider`'s present instances, by name after
    /// `after`, as a poll cycle's queue needs them: identity and row version
    /// only (three columns; the full record is read for the few that need
    /// it, [`Store::instances_by_ids`]). A cycle streams its queue a page at
    /// a time instead of holding every record at once.
    pub async fn poll_page(&self, provider: &str, after: Option<&str>, limit: u32) -> Result<Vec<PollRow>> {
        // Two texts, not `($2 IS NULL OR name > $2)`: with the `OR`, SQLite
        // reads the provider's index from its first name for every page (each
        // page cost all the pages before it); `name > $2` is a range on
        // `(provider, name)`.
        let rows: Vec<(String, String, i64)> = match after {
            None => on_pool!(self, p => {
                sqlx::query_as(
                    "SELECT id, name, version FROM instances \
                     WHERE provider = $1 AND present = TRUE ORDER BY name LIMIT $2",
                )
                .bind(provider)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
            }),
            Some(after) => on_pool!(self, p => {
                sqlx::query_as(
                    "SELECT id, name, version FROM instances \
                     WHERE provider = $1 AND present = TRUE AND name > $2 ORDER BY name LIMIT $3",
                )
                .bind(provider)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
            }),
        };
        Ok(rows.into_iter().map(|(id, name, version)| PollRow { id, name, version }).collect())
    }

    /// The present instances with these ids, with their state (any order).
    pub async fn instances_by_ids(&self, ids: &[&str]) -> Result<Vec<InstanceRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<InstanceRow> = match &self.db {
            Db::Postgres(p) => {
                sqlx::query_as(concat!(instance_select!(), " WHERE i.id = ANY($1) AND i.present = TRUE"))
                    .bind(ids)
                    .fetch_all(p)
                    .await?
            }
            // A JSON array of ids: one statement text whatever the count.
            Db::Sqlite(p) => {
                sqlx::query_as(concat!(
                    instance_select!(),
                    " WHERE i.id IN (SELECT value FROM json_each($1)) AND i.present = TRUE"
                ))
                .bind(serde_json::to_string(ids).expect("strings serialise"))
                .fetch_all(p)
                .await?
            }
        };
        rows.into_iter().map(InstanceRow::into_record).collect()
    }

    /// `(provider, present instances)`: the weights of the replicas' plan.
    pub async fn instance_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = on_pool!(self, p => {
            sqlx::query_as("SELECT provider, COUNT(*) FROM instances WHERE present = TRUE GROUP BY provider")
                .fetch_all(p)
                .await?
        });
        Ok(rows)
    }

    /// `(health, count)` of provider `provider`'s present instances, and its
    /// open outages: the gauges, aggregated by the database instead of loading
    /// rows (retired instances are not counted).
    pub async fn gauge_counts_of(&self, provider: &str) -> Result<(Vec<(String, i64)>, i64)> {
        let (h, o, _) = self.gauge_counts_with_causes(provider).await?;
        Ok((h, o))
    }

    /// [`Store::gauge_counts_of`], and how many of the open outages need a
    /// person (logged out, waiting for a QR, an unknown state, deleted):
    /// their health says `connecting` or `logged_out`, which alerts on
    /// "down" instances would not count.
    pub async fn gauge_counts_with_causes(&self, provider: &str) -> Result<(Vec<(String, i64)>, i64, i64)> {
        let (h, o, np) = on_pool!(self, p => {
            let h: Vec<(String, i64)> = sqlx::query_as(
                "SELECT health, COUNT(*) FROM instances WHERE provider = $1 AND present = TRUE GROUP BY health",
            )
            .bind(provider)
            .fetch_all(p)
            .await?;
            let o: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM outages o JOIN instances i ON i.id = o.instance_id \
                 WHERE o.provider = $1 AND o.ended_at IS NULL AND i.present = TRUE",
            )
            .bind(provider)
            .fetch_one(p)
            .await?;
            let np: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM outages o JOIN instances i ON i.id = o.instance_id \
                 WHERE o.provider = $1 AND o.ended_at IS NULL AND i.present = TRUE \
                 AND o.cause IN ('logged_out', 'needs_qr', 'needs_human', 'missing')",
            )
            .bind(provider)
            .fetch_one(p)
            .await?;
            (h, o, np)
        });
        Ok((h, o, np))
    }

    /// Commit one state-machine step: the instance row (guarded by its version),
    /// its outage rows, the audit events and the outbox rows — all in one
    /// transaction. Nothing is written if another writer got there first
    /// ([`StoreError::Conflict`]). Returns the new version.
    pub async fn commit_step(
        &self,
        rec: &InstanceRecord,
        out: &StepOutput,
        outbox: &[OutboxEntry],
        now: Ts,
    ) -> Result<i64> {
        self.commit_step_with(rec, out, outbox, &CommitExtras::default(), now, false).await
    }

    /// [`Store::commit_step`]; with `retire`, the instance is also marked
    /// absent in the same transaction (its outage closed by the step).
    pub async fn commit_step_and(
        &self,
        rec: &InstanceRecord,
        out: &StepOutput,
        outbox: &[OutboxEntry],
        now: Ts,
        retire: bool,
        stream: &[StreamOut],
    ) -> Result<i64> {
        self.commit_step_with(rec, out, outbox, &CommitExtras { links: &[], stream }, now, retire).await
    }

    /// [`Store::commit_step_and`], with the re-pair links its notices carry
    /// inserted in the same transaction (a notice never names a link that
    /// was not stored, nor a stored link a notice that was not queued). The
    /// same transaction records what the step means for earlier links: a
    /// session found open ends every link of the instance (it only says
    /// "connected" from then on), and an outage that closes while a link
    /// issued for it had been opened was recovered through the link.
    pub async fn commit_step_with(
        &self,
        rec: &InstanceRecord,
        out: &StepOutput,
        outbox: &[OutboxEntry],
        extras: &CommitExtras<'_>,
        now: Ts,
        retire: bool,
    ) -> Result<i64> {
        let (links, stream) = (extras.links, extras.stream);
        let s = &out.state;
        let opened_session =
            out.changes.iter().any(|c| matches!(c, Change::HealthChanged { to: Health::Connected, .. }));
        let flap = serde_json::to_string(&s.flap_history).expect("Vec<Ts> serialises");
        let opened = out.changes.iter().find_map(|c| match c {
            Change::OutageOpened { id, .. } => Some(id.clone()),
            _ => None,
        });
        let events: Vec<(&'static str, String)> = out.changes.iter().map(change_event).collect();
        in_write_tx!(self, tx => {
            let updated = sqlx::query(
                "UPDATE instances SET health = $1, health_reason = $2, health_since = $3, consecutive_failures = $4, \
                 connected_at = $5, disconnected_at = $6, \
                 last_webhook_at = CASE WHEN last_webhook_at IS NULL OR last_webhook_at < $7 THEN $7 ELSE last_webhook_at END, \
                 last_restart_attempt = $8, restart_attempts = $9, replaced_count = $10, flap_history = $11, \
                 flapping_id = $12, flapping_since = $13, maintenance_until = $14, open_outage_id = $15, \
                 last_health_check = $16, updated_at = $16, version = version + 1, replaced_at = $19, \
                 present = CASE WHEN $20 THEN FALSE ELSE present END, \
                 retired_at = CASE WHEN $20 THEN $16 ELSE retired_at END \
                 WHERE id = $17 AND version = $18",
            )
            .bind(s.health.as_str())
            .bind(&s.reason)
            .bind(s.health_since.0)
            .bind(i64::from(s.consecutive_failures))
            .bind(s.connected_at.map(|t| t.0))
            .bind(s.disconnected_at.map(|t| t.0))
            .bind(s.last_webhook_at.map(|t| t.0))
            .bind(s.last_restart_attempt.map(|t| t.0))
            .bind(i64::from(s.restart_attempts))
            .bind(i64::from(s.replaced_count))
            .bind(&flap)
            .bind(s.flapping.as_ref().map(|f| f.id.as_str()))
            .bind(s.flapping.as_ref().map(|f| f.since.0))
            .bind(s.maintenance_until.map(|t| t.0))
            .bind(s.outage.as_ref().map(|o| o.id.as_str()))
            .bind(now.0)
            .bind(&rec.id)
            .bind(rec.version)
            .bind(s.replaced_at.map(|t| t.0))
            .bind(retire)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                tx.rollback().await?;
                return Err(StoreError::Conflict(rec.key.to_string()));
            }
            if let (Some(id), Some(o)) = (&opened, &s.outage) {
                sqlx::query(
                    "INSERT INTO outages (id, instance_id, provider, cause, reason, started_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id)
                .bind(&rec.id)
                .bind(&rec.key.provider)
                .bind(o.cause.as_str())
                .bind(&o.reason)
                .bind(o.started_at.0)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(o) = &s.outage {
                sqlx::query(
                    "UPDATE outages SET cause = $1, reason = $2, restart_attempts = $3, down_notified = $4, \
                     exhausted_notified = $5, reminders_sent = $6, last_notice_at = $7 WHERE id = $8",
                )
                .bind(o.cause.as_str())
                .bind(&o.reason)
                .bind(i64::from(o.restart_attempts))
                .bind(o.down_notified)
                .bind(o.exhausted_notified)
                .bind(i64::from(o.reminders_sent))
                .bind(o.last_notice_at.map(|t| t.0))
                .bind(&o.id)
                .execute(&mut *tx)
                .await?;
            }
            for c in &out.changes {
                if let Change::OutageClosed { id, recovered_by } = c {
                    sqlx::query("UPDATE outages SET ended_at = $1, recovered_by = $2 WHERE id = $3 AND ended_at IS NULL")
                        .bind(now.0)
                        .bind(recovered_by.as_str())
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    if *recovered_by != RecoveredBy::Retired {
                        sqlx::query(
                            "UPDATE outages SET via_link = TRUE WHERE id = $1 AND EXISTS \
                             (SELECT 1 FROM pair_links WHERE outage_id = $1 AND first_viewed_at IS NOT NULL)",
                        )
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
            if opened_session {
                sqlx::query(
                    "UPDATE pair_links SET connected_at = $1 WHERE instance_id = $2 AND connected_at IS NULL \
                     AND revoked_at IS NULL AND expires_at > $1",
                )
                .bind(now.0)
                .bind(&rec.id)
                .execute(&mut *tx)
                .await?;
            }
            super::pair_links::insert_pair_links!(tx, links);
            for c in &out.changes {
                if let Change::MaintenanceSet { until } = c {
                    // A change of maintenance ends the window running now (an
                    // `--off`, or a new duration that replaces it) ...
                    sqlx::query("UPDATE maintenance_windows SET ended_at = $1 WHERE instance_id = $2 AND ended_at > $1")
                        .bind(now.0)
                        .bind(&rec.id)
                        .execute(&mut *tx)
                        .await?;
                    // ... and a new duration opens the next one.
                    if let Some(until) = until.filter(|u| *u > now) {
                        sqlx::query(
                            "INSERT INTO maintenance_windows (id, instance_id, provider, started_at, ended_at) \
                             VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(uuid::Uuid::now_v7().to_string())
                        .bind(&rec.id)
                        .bind(&rec.key.provider)
                        .bind(now.0)
                        .bind(until.0)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
            for (kind, detail) in &events {
                sqlx::query("INSERT INTO events (instance_id, provider, at, kind, detail) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&rec.id)
                    .bind(&rec.key.provider)
                    .bind(now.0)
                    .bind(*kind)
                    .bind(detail)
                    .execute(&mut *tx)
                    .await?;
            }
            for e in outbox {
                insert_outbox!(tx, e, now);
            }
            for s in stream {
                insert_stream!(tx, s);
            }
            tx.commit().await?;
        });
        Ok(rec.version + 1)
    }

    /// Record when instances were last checked, in one statement (healthy
    /// instances cost no per-instance write otherwise).
    pub async fn touch_health_checks(&self, ids: &[String], now: Ts) -> Result<()> {
        match &self.db {
            // One statement with an array parameter: no per-id bind parsing.
            Db::Postgres(p) => {
                sqlx::query("UPDATE instances SET last_health_check = $1 WHERE id = ANY($2)")
                    .bind(now.0)
                    .bind(ids)
                    .execute(p)
                    .await?;
            }
            // One statement whatever the count (a JSON array of ids): its text
            // never changes, so it is prepared once, not per chunk size.
            Db::Sqlite(p) => {
                if !ids.is_empty() {
                    sqlx::query(
                        "UPDATE instances SET last_health_check = $1 WHERE id IN (SELECT value FROM json_each($2))",
                    )
                    .bind(now.0)
                    .bind(serde_json::to_string(ids).expect("strings serialise"))
                    .execute(p)
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Flush coalesced `last_webhook_at` values; never moves one backwards.
    /// PostgreSQL takes them in one statement (arrays unnested); SQLite, local
    /// and single-writer, in one transaction of small updates.
    pub async fn flush_last_webhooks(&self, seen: &[(String, Ts)]) -> Result<()> {
        if seen.is_empty() {
            return Ok(());
        }
        match &self.db {
            Db::Postgres(p) => {
                let ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
                let ats: Vec<i64> = seen.iter().map(|(_, t)| t.0).collect();
                sqlx::query(
                    "UPDATE instances AS i SET last_webhook_at = v.at \
                     FROM (SELECT unnest($1::text[]) AS id, unnest($2::bigint[]) AS at) AS v \
                     WHERE i.id = v.id AND (i.last_webhook_at IS NULL OR i.last_webhook_at < v.at)",
                )
                .bind(&ids)
                .bind(&ats)
                .execute(p)
                .await?;
            }
            Db::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                for (id, at) in seen {
                    sqlx::query(
                        "UPDATE instances SET last_webhook_at = $1 WHERE id = $2 \
                         AND (last_webhook_at IS NULL OR last_webhook_at < $1)",
                    )
                    .bind(at.0)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Record the outcome of a webhook audit of one instance.
    pub async fn set_webhook_check(&self, id: &str, ok: bool, now: Ts) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("UPDATE instances SET webhook_checked_at = $1, webhook_ok = $2 WHERE id = $3")
                .bind(now.0)
                .bind(ok)
                .bind(id)
                .execute(p)
                .await?;
        });
        Ok(())
    }
}
