//! The `provider_state` table and provider-wide outages (unreachable,
//! unlicensed, silent), the remediation record and the provider's version.

use super::{Db, OutboxEntry, Result, Store, StoreError};
use crate::domain::Ts;
use crate::domain::provider::{
    ProviderCause, ProviderChange, ProviderOutage, ProviderState, ProviderStepOutput, RemediationRecord,
};

/// `provider_state` joined with its open outage.
#[derive(sqlx::FromRow)]
struct ProviderStateRow {
    name: String,
    failed_cycles: i64,
    quiet_since: Option<i64>,
    remediation_at: Option<i64>,
    remediation_command: Option<String>,
    remediation_result: Option<String>,
    version: Option<String>,
    o_id: Option<String>,
    o_started_at: Option<i64>,
    o_reason: Option<String>,
    o_down_notified: Option<bool>,
    o_cause: Option<String>,
    o_restart_attempts: Option<i64>,
    o_exhausted_notified: Option<bool>,
}

macro_rules! provider_select {
    () => {
        "SELECT s.name, s.failed_cycles, s.quiet_since, s.remediation_at, s.remediation_command, \
     s.remediation_result, s.version, o.id AS o_id, o.started_at AS o_started_at, o.reason AS o_reason, \
     o.down_notified AS o_down_notified, o.cause AS o_cause, o.restart_attempts AS o_restart_attempts, \
     o.exhausted_notified AS o_exhausted_notified \
         FROM provider_state s LEFT JOIN outages o ON o.id = s.open_outage_id"
    };
}

impl ProviderStateRow {
    fn into_state(self) -> Result<ProviderState> {
        let outage = match (self.o_id, self.o_started_at, self.o_reason) {
            (Some(id), Some(started), Some(reason)) => {
                let cause = self.o_cause.unwrap_or_default();
                Some(ProviderOutage {
                    id,
                    started_at: Ts(started),
                    reason,
                    notified: self.o_down_notified.unwrap_or(false),
                    cause: ProviderCause::parse(&cause)
                        .ok_or_else(|| StoreError::Corrupt(format!("unknown provider outage cause `{cause}`")))?,
                    remediation_attempts: self.o_restart_attempts.unwrap_or(0).try_into().unwrap_or(0),
                    exhausted_notified: self.o_exhausted_notified.unwrap_or(false),
                })
            }
            _ => None,
        };
        Ok(ProviderState {
            failed_cycles: self.failed_cycles.try_into().unwrap_or(0),
            outage,
            quiet_since: self.quiet_since.map(Ts),
            last_remediation: self.remediation_at.map(|at| RemediationRecord {
                at: Ts(at),
                command: self.remediation_command.unwrap_or_default(),
                result: self.remediation_result,
            }),
            version: self.version,
        })
    }
}

/// One provider as the status page and `status` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProviderOverview {
    pub name: String,
    pub kind: String,
    /// `ok`, `unreachable`, `unlicensed` or `silent`.
    pub state: &'static str,
    /// The open outage's start and reason.
    #[serde(serialize_with = "crate::domain::time::serialize_opt_rfc3339")]
    pub since: Option<Ts>,
    pub reason: Option<String>,
    /// The latest webhook from any of its instances.
    #[serde(serialize_with = "crate::domain::time::serialize_opt_rfc3339")]
    pub last_webhook: Option<Ts>,
    pub version: Option<String>,
    pub remediation: Option<RemediationRecord>,
}

impl Store {
    /// The overview of these providers (`(name, kind)`, in that order);
    /// `seen` adds the latest webhook this process has not written yet.
    pub async fn provider_overview(
        &self,
        providers: &[(String, String)],
        seen: &(dyn Fn(&str) -> Option<Ts> + Sync),
    ) -> Result<Vec<ProviderOverview>> {
        let states: std::collections::HashMap<String, ProviderState> =
            self.provider_states().await?.into_iter().collect();
        let mut out = Vec::new();
        for (name, kind) in providers {
            let st = states.get(name).cloned().unwrap_or_default();
            let (stored, _) = self.provider_webhooks(name).await?;
            out.push(ProviderOverview {
                name: name.clone(),
                kind: kind.clone(),
                state: st.state_name(),
                since: st.outage.as_ref().map(|o| o.started_at),
                reason: st.outage.as_ref().map(|o| o.reason.clone()),
                last_webhook: stored.max(seen(name)),
                version: st.version.clone(),
                remediation: st.last_remediation.clone(),
            });
        }
        Ok(out)
    }

    pub async fn provider_state(&self, name: &str) -> Result<ProviderState> {
        let row: Option<ProviderStateRow> = on_pool!(self, p => {
            sqlx::query_as(concat!(provider_select!(), " WHERE s.name = $1")).bind(name).fetch_optional(p).await?
        });
        row.map_or_else(|| Ok(ProviderState::default()), ProviderStateRow::into_state)
    }

    /// Every provider's stored state, by name (status page, `status`).
    pub async fn provider_states(&self) -> Result<Vec<(String, ProviderState)>> {
        let rows: Vec<ProviderStateRow> = on_pool!(self, p => {
            sqlx::query_as(concat!(provider_select!(), " ORDER BY s.name")).fetch_all(p).await?
        });
        rows.into_iter().map(|r| Ok((r.name.clone(), r.into_state()?))).collect()
    }

    /// Commit one provider-wide step with its notices, in one transaction. A
    /// scheduled remediation is committed here — before it runs.
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
                    ProviderChange::OutageOpened { id, cause, reason } => {
                        let notified = s.outage.as_ref().is_some_and(|o| o.notified);
                        sqlx::query(
                            "INSERT INTO outages (id, instance_id, provider, cause, reason, started_at, down_notified) \
                             VALUES ($1, NULL, $2, $3, $4, $5, $6)",
                        )
                        .bind(id)
                        .bind(provider)
                        .bind(cause.column())
                        .bind(reason)
                        .bind(now.0)
                        .bind(notified)
                        .execute(&mut *tx)
                        .await?;
                    }
                    ProviderChange::OutageClosed { id, recovered_by } => {
                        sqlx::query(
                            "UPDATE outages SET ended_at = $1, recovered_by = $2 WHERE id = $3 AND ended_at IS NULL",
                        )
                        .bind(now.0)
                        .bind(recovered_by.as_str())
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    ProviderChange::CauseChanged { id, cause, reason } => {
                        sqlx::query("UPDATE outages SET cause = $1, reason = $2 WHERE id = $3")
                            .bind(cause.column())
                            .bind(reason)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    ProviderChange::RemediationScheduled { .. } | ProviderChange::VersionChanged { .. } => {}
                }
                let (kind, detail) = match c {
                    ProviderChange::OutageOpened { id, cause, reason } => (
                        "provider_outage_opened",
                        serde_json::json!({"outage_id": id, "cause": cause.as_str(), "reason": reason}),
                    ),
                    ProviderChange::OutageClosed { id, recovered_by } => (
                        "provider_outage_closed",
                        serde_json::json!({"outage_id": id, "recovered_by": recovered_by.as_str()}),
                    ),
                    ProviderChange::CauseChanged { id, cause, reason } => (
                        "provider_cause_changed",
                        serde_json::json!({"outage_id": id, "cause": cause.as_str(), "reason": reason}),
                    ),
                    ProviderChange::RemediationScheduled { outage_id, attempt, command } => (
                        "remediation_started",
                        serde_json::json!({"outage_id": outage_id, "attempt": attempt, "command": command}),
                    ),
                    ProviderChange::VersionChanged { from, to } => {
                        ("provider_version_changed", serde_json::json!({"from": from, "to": to}))
                    }
                };
                sqlx::query("INSERT INTO events (instance_id, provider, at, kind, detail) VALUES (NULL, $1, $2, $3, $4)")
                    .bind(provider)
                    .bind(now.0)
                    .bind(kind)
                    .bind(detail.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(o) = &s.outage {
                sqlx::query("UPDATE outages SET restart_attempts = $1, exhausted_notified = $2 WHERE id = $3")
                    .bind(i64::from(o.remediation_attempts))
                    .bind(o.exhausted_notified)
                    .bind(&o.id)
                    .execute(&mut *tx)
                    .await?;
            }
            // The remediation result is the runner's to write
            // (`record_remediation_result`): a new run clears it, nothing else touches it.
            let scheduled = out.changes.iter().any(|c| matches!(c, ProviderChange::RemediationScheduled { .. }));
            let rem = s.last_remediation.as_ref();
            sqlx::query(
                "INSERT INTO provider_state (name, failed_cycles, open_outage_id, updated_at, quiet_since, \
                 remediation_at, remediation_command, remediation_result, version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8) \
                 ON CONFLICT (name) DO UPDATE SET failed_cycles = excluded.failed_cycles, \
                 open_outage_id = excluded.open_outage_id, updated_at = excluded.updated_at, \
                 quiet_since = excluded.quiet_since, remediation_at = excluded.remediation_at, \
                 remediation_command = excluded.remediation_command, \
                 remediation_result = CASE WHEN $9 THEN NULL ELSE provider_state.remediation_result END, \
                 version = excluded.version",
            )
            .bind(provider)
            .bind(i64::from(s.failed_cycles))
            .bind(s.outage.as_ref().map(|o| o.id.as_str()))
            .bind(now.0)
            .bind(s.quiet_since.map(|t| t.0))
            .bind(rem.map(|r| r.at.0))
            .bind(rem.map(|r| r.command.as_str()))
            .bind(s.version.as_deref())
            .bind(scheduled)
            .execute(&mut *tx)
            .await?;
            for e in outbox {
                insert_outbox!(tx, e, now);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The runner's outcome of the remediation that started at `started`, with
    /// its `remediation_result` event; a newer run's record is left alone.
    pub async fn record_remediation_result(
        &self,
        provider: &str,
        started: Ts,
        result: &str,
        detail: &serde_json::Value,
        now: Ts,
    ) -> Result<()> {
        in_write_tx!(self, tx => {
            sqlx::query("UPDATE provider_state SET remediation_result = $1 WHERE name = $2 AND remediation_at = $3")
                .bind(result)
                .bind(provider)
                .bind(started.0)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO events (instance_id, provider, at, kind, detail) VALUES (NULL, $1, $2, 'remediation_result', $3)",
            )
            .bind(provider)
            .bind(now.0)
            .bind(detail.to_string())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The most recent webhook of any present instance of `provider`, and
    /// whether the audit found any of their webhook configs pointing at us.
    /// (Every replica's receiver flushes `last_webhook_at` here, so the leader
    /// sees webhooks that reached another replica.)
    pub async fn provider_webhooks(&self, provider: &str) -> Result<(Option<Ts>, bool)> {
        let row: (Option<i64>, Option<i64>) = on_pool!(self, p => {
            sqlx::query_as(
                "SELECT MAX(last_webhook_at), \
                 CAST(SUM(CASE WHEN webhook_ok = TRUE THEN 1 ELSE 0 END) AS BIGINT) \
                 FROM instances WHERE provider = $1 AND present = TRUE",
            )
            .bind(provider)
            .fetch_one(p)
            .await?
        });
        Ok((row.0.map(Ts), row.1.unwrap_or(0) > 0))
    }
}
