//! Row shapes: what the store reads and writes, and their conversion to and
//! from the domain types.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Result, StoreError};
use crate::domain::health::{Cause, Change, Flapping, OutageState};
use crate::domain::{Health, InstanceKey, InstanceState, Ts};

/// One instance as stored: identity, tenant, and its state-machine state.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceRecord {
    pub id: String,
    pub key: InstanceKey,
    pub tenant: String,
    pub labels: BTreeMap<String, String>,
    /// `config` or `discovered`.
    pub source: String,
    /// Where its tenant came from: `config`, `api`, `sql`, `pattern`, `default`.
    pub tenant_source: String,
    /// Still listed by the config or the provider (false once retired).
    pub present: bool,
    /// The provider's own id of the instance (Evolution's uuid), when discovery
    /// tells it: a different id under the same name is a new instance.
    pub provider_id: Option<String>,
    pub state: InstanceState,
    pub last_health_check: Option<Ts>,
    pub webhook_checked_at: Option<Ts>,
    pub webhook_ok: Option<bool>,
    /// Optimistic-concurrency version: bumped by every committed step.
    pub version: i64,
}

/// One record kept under an instance's name ([`super::Store::records_of`]):
/// a name deleted and created again has a retired record and a present one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef {
    pub id: String,
    pub created_at: Ts,
    /// When it was retired (`None` while present).
    pub retired_at: Option<Ts>,
    pub present: bool,
}

/// What the inventory and the receiver's index need of a present instance —
/// not its whole state machine (cheap to hold for every instance at once).
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryRow {
    pub id: String,
    pub key: InstanceKey,
    pub tenant: String,
    pub labels: BTreeMap<String, String>,
    pub source: String,
    pub tenant_source: String,
    pub provider_id: Option<String>,
    pub health: Health,
    pub version: i64,
    pub last_webhook_at: Option<Ts>,
}

#[derive(sqlx::FromRow)]
pub(super) struct InventorySqlRow {
    id: String,
    provider: String,
    name: String,
    tenant: String,
    labels: String,
    source: String,
    tenant_source: String,
    provider_id: Option<String>,
    health: String,
    version: i64,
    last_webhook_at: Option<i64>,
}

impl InventorySqlRow {
    pub(super) fn into_row(self) -> Result<InventoryRow> {
        let key = InstanceKey::new(self.provider, self.name);
        let corrupt = |what: &str| StoreError::Corrupt(format!("instance {key}: {what}"));
        let health =
            Health::parse(&self.health).ok_or_else(|| corrupt(&format!("unknown health `{}`", self.health)))?;
        let labels = serde_json::from_str(&self.labels).map_err(|e| corrupt(&format!("labels: {e}")))?;
        Ok(InventoryRow {
            id: self.id,
            key,
            tenant: self.tenant,
            labels,
            source: self.source,
            tenant_source: self.tenant_source,
            provider_id: self.provider_id,
            health,
            version: self.version,
            last_webhook_at: self.last_webhook_at.map(Ts),
        })
    }
}

/// One entry of a poll cycle's queue: which instance, at which row version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollRow {
    pub id: String,
    pub name: String,
    pub version: i64,
}

/// Filters for listing instances (all `None`: everything present).
#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    pub provider: Option<String>,
    pub tenant: Option<String>,
    pub health: Option<Health>,
    pub include_absent: bool,
}

/// One row to insert into the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub dedup_key: String,
    pub notifier: String,
    pub kind: String,
    /// The notice as JSON (the facts of the notice JSON, docs/http-api.md#notices).
    pub payload: String,
}

/// One claimed outbox row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub dedup_key: String,
    pub notifier: String,
    pub kind: String,
    pub payload: String,
    pub attempts: i64,
    pub created_at: i64,
    /// The random token of the claim that returned this row: only its holder
    /// may renew the claim or record the outcome (see `Store::claim_outbox`).
    pub claim_token: String,
    /// A `whatsapp` notifier's record of its sends (JSON by recipient).
    pub receipts: Option<String>,
}

/// One outbox row as it stands, for tests and the instance page.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxView {
    pub dedup_key: String,
    pub notifier: String,
    pub kind: String,
    /// `pending`, `delivered`, `dead` or `handed_over`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub receipts: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EventRecord {
    pub id: i64,
    pub instance_id: Option<String>,
    pub provider: String,
    pub at: i64,
    pub kind: String,
    pub detail: String,
}

/// One notice about an instance (an outbox row), for its status page.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct NoticeRecord {
    pub kind: String,
    pub notifier: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: i64,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub last_error: Option<String>,
}

/// One outage for `history`, the API and the status page.
#[derive(Debug, Clone, Serialize)]
pub struct OutageRecord {
    pub id: String,
    pub instance_id: Option<String>,
    pub provider: String,
    pub instance: Option<String>,
    pub tenant: Option<String>,
    pub cause: String,
    pub reason: String,
    #[serde(serialize_with = "crate::domain::time::serialize_rfc3339")]
    pub started_at: Ts,
    #[serde(serialize_with = "crate::domain::time::serialize_opt_rfc3339")]
    pub ended_at: Option<Ts>,
    pub recovered_by: Option<String>,
    pub restart_attempts: u32,
    pub notified: bool,
}

#[derive(sqlx::FromRow)]
pub(super) struct OutageRow {
    id: String,
    instance_id: Option<String>,
    provider: String,
    instance: Option<String>,
    tenant: Option<String>,
    cause: String,
    reason: String,
    started_at: i64,
    ended_at: Option<i64>,
    recovered_by: Option<String>,
    restart_attempts: i64,
    down_notified: bool,
}

impl OutageRow {
    pub(super) fn into_record(self) -> Result<OutageRecord> {
        Ok(OutageRecord {
            id: self.id,
            instance_id: self.instance_id,
            provider: self.provider,
            instance: self.instance,
            tenant: self.tenant,
            cause: self.cause,
            reason: self.reason,
            started_at: Ts(self.started_at),
            ended_at: self.ended_at.map(Ts),
            recovered_by: self.recovered_by,
            restart_attempts: u32_of(self.restart_attempts),
            notified: self.down_notified,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct InstanceRow {
    id: String,
    provider: String,
    name: String,
    tenant: String,
    labels: String,
    source: String,
    tenant_source: String,
    present: bool,
    health: String,
    health_reason: String,
    health_since: i64,
    consecutive_failures: i64,
    connected_at: Option<i64>,
    disconnected_at: Option<i64>,
    last_health_check: Option<i64>,
    last_webhook_at: Option<i64>,
    last_restart_attempt: Option<i64>,
    restart_attempts: i64,
    replaced_count: i64,
    flap_history: String,
    flapping_id: Option<String>,
    flapping_since: Option<i64>,
    maintenance_until: Option<i64>,
    webhook_checked_at: Option<i64>,
    webhook_ok: Option<bool>,
    version: i64,
    provider_id: Option<String>,
    replaced_at: Option<i64>,
    o_id: Option<String>,
    o_cause: Option<String>,
    o_reason: Option<String>,
    o_started_at: Option<i64>,
    o_restart_attempts: Option<i64>,
    o_down_notified: Option<bool>,
    o_exhausted_notified: Option<bool>,
    o_reminders_sent: Option<i64>,
    o_last_notice_at: Option<i64>,
}

fn u32_of(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

impl InstanceRow {
    pub(super) fn into_record(self) -> Result<InstanceRecord> {
        let key = InstanceKey::new(self.provider, self.name);
        let corrupt = |what: &str| StoreError::Corrupt(format!("instance {key}: {what}"));
        let health =
            Health::parse(&self.health).ok_or_else(|| corrupt(&format!("unknown health `{}`", self.health)))?;
        let outage = match (self.o_id, self.o_cause, self.o_started_at) {
            (Some(id), Some(cause), Some(started)) => Some(OutageState {
                cause: Cause::parse(&cause).ok_or_else(|| corrupt(&format!("unknown outage cause `{cause}`")))?,
                id,
                started_at: Ts(started),
                reason: self.o_reason.unwrap_or_default(),
                restart_attempts: u32_of(self.o_restart_attempts.unwrap_or(0)),
                down_notified: self.o_down_notified.unwrap_or(false),
                exhausted_notified: self.o_exhausted_notified.unwrap_or(false),
                reminders_sent: u32_of(self.o_reminders_sent.unwrap_or(0)),
                last_notice_at: self.o_last_notice_at.map(Ts),
            }),
            _ => None,
        };
        let flap_history: Vec<Ts> =
            serde_json::from_str(&self.flap_history).map_err(|e| corrupt(&format!("flap_history: {e}")))?;
        let labels = serde_json::from_str(&self.labels).map_err(|e| corrupt(&format!("labels: {e}")))?;
        let state = InstanceState {
            health,
            reason: self.health_reason,
            health_since: Ts(self.health_since),
            consecutive_failures: u32_of(self.consecutive_failures),
            connected_at: self.connected_at.map(Ts),
            disconnected_at: self.disconnected_at.map(Ts),
            last_webhook_at: self.last_webhook_at.map(Ts),
            last_restart_attempt: self.last_restart_attempt.map(Ts),
            restart_attempts: u32_of(self.restart_attempts),
            replaced_count: u32_of(self.replaced_count),
            replaced_at: self.replaced_at.map(Ts),
            flap_history,
            flapping: match (self.flapping_id, self.flapping_since) {
                (Some(id), Some(since)) => Some(Flapping { id, since: Ts(since) }),
                _ => None,
            },
            maintenance_until: self.maintenance_until.map(Ts),
            outage,
        };
        Ok(InstanceRecord {
            id: self.id,
            key,
            tenant: self.tenant,
            labels,
            source: self.source,
            tenant_source: self.tenant_source,
            present: self.present,
            provider_id: self.provider_id,
            state,
            last_health_check: self.last_health_check.map(Ts),
            webhook_checked_at: self.webhook_checked_at.map(Ts),
            webhook_ok: self.webhook_ok,
            version: self.version,
        })
    }
}

/// The audit-log form of a state-machine change: `(kind, detail json)`.
pub(super) fn change_event(c: &Change) -> (&'static str, String) {
    use serde_json::json;
    let (kind, detail) = match c {
        Change::HealthChanged { from, to, reason } => {
            ("health_changed", json!({"from": from.as_str(), "to": to.as_str(), "reason": reason}))
        }
        Change::OutageOpened { id, cause } => ("outage_opened", json!({"outage_id": id, "cause": cause.as_str()})),
        Change::OutageClosed { id, recovered_by } => {
            ("outage_closed", json!({"outage_id": id, "recovered_by": recovered_by.as_str()}))
        }
        Change::CauseChanged { id, cause } => ("cause_changed", json!({"outage_id": id, "cause": cause.as_str()})),
        Change::RecoveryScheduled { kind, attempt, manual } => {
            ("recovery_scheduled", json!({"action": kind.as_str(), "attempt": attempt, "manual": manual}))
        }
        Change::RecoveryRefused { why } => ("recovery_refused", json!({"why": why})),
        Change::RecoverySkipped { attempt } => ("recovery_skipped", json!({"attempt": attempt})),
        Change::FlappingStarted { id } => ("flapping_started", json!({"episode": id})),
        Change::FlappingEnded { id } => ("flapping_ended", json!({"episode": id})),
        Change::MaintenanceSet { until } => ("maintenance", json!({"until": until.map(|t| t.rfc3339())})),
        Change::NoticeSuppressed { kind, why } => ("notice_suppressed", json!({"kind": kind.as_str(), "why": why})),
    };
    (kind, detail.to_string())
}
