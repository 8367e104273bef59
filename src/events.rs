//! Every observable event in one place: its log line and its counters
//! together (vector's `emit()` idea), so logs and metrics never disagree.
//! Field names are stable (`instance`, `provider`, `tenant`, `outage_id`):
//! JSON logs and searches rely on them.

use crate::domain::health::Change;
use crate::domain::provider::ProviderChange;
use crate::domain::{InstanceKey, RecoveryKind};

/// A state-machine change of one instance, committed.
pub fn change(key: &InstanceKey, tenant: &str, c: &Change) {
    match c {
        Change::HealthChanged { from, to, reason } => {
            tracing::info!(instance = %key, provider = %key.provider, tenant, from = from.as_str(), to = to.as_str(), reason = %reason, "health changed")
        }
        Change::OutageOpened { id, cause } => {
            tracing::warn!(instance = %key, provider = %key.provider, tenant, outage_id = %id, cause = cause.as_str(), "outage opened")
        }
        Change::OutageClosed { id, recovered_by } => {
            tracing::info!(instance = %key, provider = %key.provider, tenant, outage_id = %id, recovered_by = recovered_by.as_str(), "outage closed")
        }
        Change::CauseChanged { id, cause } => {
            tracing::warn!(instance = %key, outage_id = %id, cause = cause.as_str(), "outage cause changed")
        }
        Change::RecoveryScheduled { kind, attempt, manual } => {
            tracing::info!(instance = %key, action = kind.as_str(), attempt, manual, "recovery scheduled")
        }
        Change::RecoveryRefused { why } => tracing::info!(instance = %key, why = %why, "recovery refused"),
        Change::RecoverySkipped { attempt } => {
            tracing::info!(instance = %key, attempt, "recovery attempt given back: the call sent nothing")
        }
        Change::FlappingStarted { id } => tracing::warn!(instance = %key, episode = %id, "flapping started"),
        Change::FlappingEnded { id } => tracing::info!(instance = %key, episode = %id, "flapping ended"),
        Change::MaintenanceSet { until } => {
            tracing::info!(instance = %key, until = ?until.map(|t| t.rfc3339()), "maintenance changed")
        }
        Change::NoticeSuppressed { kind, why } => {
            tracing::debug!(instance = %key, kind = kind.as_str(), why, "notice suppressed")
        }
    }
}

/// A recovery call returned.
pub fn recovery(key: &InstanceKey, kind: RecoveryKind, attempt: u32, outcome: &str, detail: &str) {
    match outcome {
        "sent" => tracing::info!(instance = %key, action = kind.as_str(), attempt, detail, "recovery action sent"),
        "skipped" => {
            tracing::info!(instance = %key, action = kind.as_str(), attempt, detail, "recovery action skipped: nothing sent")
        }
        _ => tracing::warn!(instance = %key, action = kind.as_str(), attempt, detail, "recovery action failed"),
    }
}

/// A provider-wide outage opened or closed.
pub fn provider_change(provider: &str, c: &ProviderChange) {
    match c {
        ProviderChange::OutageOpened { id, cause, reason } => {
            tracing::error!(provider, outage_id = %id, cause = cause.as_str(), reason = %reason, "provider outage")
        }
        ProviderChange::OutageClosed { id, recovered_by } => {
            tracing::info!(provider, outage_id = %id, recovered_by = recovered_by.as_str(), "provider recovered")
        }
        ProviderChange::CauseChanged { id, cause, reason } => {
            tracing::error!(provider, outage_id = %id, cause = cause.as_str(), reason = %reason, "provider outage cause changed")
        }
        ProviderChange::RemediationScheduled { outage_id, attempt, command } => {
            tracing::warn!(provider, outage_id = %outage_id, attempt, command = %command, "running the remediation command")
        }
        ProviderChange::VersionChanged { from, to } => {
            tracing::warn!(provider, from = %from, to = %to, "provider version changed")
        }
    }
}

/// The webhook audit found something (`webhook_repaired`, `webhook_mismatch`, `webhook_audit_failed`).
pub fn webhook_audit(key: &InstanceKey, kind: &str, detail: &str) {
    match kind {
        "webhook_repaired" => tracing::info!(instance = %key, detail, "webhook config repaired"),
        // Not read (or not written): its state is unknown, not wrong; the detail says which and why.
        "webhook_audit_failed" => tracing::warn!(instance = %key, provider = %key.provider, kind, "{detail}"),
        _ => tracing::warn!(instance = %key, kind, detail, "webhook config not in the desired state"),
    }
}

/// A scheduler tick found the previous run of its job still going and skipped.
pub fn tick_skipped(job: &'static str) {
    metrics::counter!("wa_sentinel_ticks_skipped_total", "job" => job).increment(1);
    tracing::debug!(job, "previous run still going: tick skipped");
}

/// A provider's previous pipeline is still running: its tick is skipped (and
/// only its own — other providers go on).
pub fn pipeline_skipped(provider: &str) {
    metrics::counter!("wa_sentinel_ticks_skipped_total", "job" => "poll", "provider" => provider.to_string())
        .increment(1);
    tracing::debug!(provider, "previous poll cycle of this provider still running: tick skipped");
}

/// An operator acted on an instance from the status page (also an audit event).
pub fn operator_action(key: &InstanceKey, action: &str, outcome: &str, client: &std::net::IpAddr) {
    tracing::info!(instance = %key, action, outcome, client = %client, actor = "status page", "operator action");
}

/// A re-pair link was issued or revoked (never the link itself: it is a credential).
pub fn pair_link(key: &InstanceKey, what: &str, by: &str) {
    tracing::info!(instance = %key, by, "re-pair link {what}");
}

/// The leader carried out an action another replica recorded for it.
pub fn requested_action(key: &InstanceKey, action: &str, outcome: &str) {
    tracing::info!(instance = %key, action, outcome, "requested action carried out by the leader");
}

/// A notice its notifier could not deliver went to the notifier's fallback.
pub fn notice_handed_over(notifier: &str, fallback: &str, kind: &str, dedup_key: &str, why: &str) {
    tracing::warn!(notifier, fallback, kind, dedup_key, why, "notice handed to the fallback notifier");
    metrics::counter!("wa_sentinel_notifications_total", "notifier" => notifier.to_string(), "kind" => kind.to_string(), "result" => "handed_over")
        .increment(1);
}
