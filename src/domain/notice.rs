//! Notices: what operators are told, each with a stable dedup key.
//!
//! A notice names itself: `outage:<outage id>:<kind>` (reminders add their
//! sequence number). The outbox is unique on `(dedup_key, notifier)`, so a
//! replayed transition can never send a notice twice.

use std::fmt;

use super::{InstanceKey, Ts};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    InstanceDown,
    InstanceLoggedOut,
    InstanceMissing,
    RestartExhausted,
    InstanceRecovered,
    InstanceFlapping,
    ProviderUnreachable,
    ProviderRecovered,
    WebhookRepaired,
    Reminder,
    /// wa-sentinel itself seems cut off: no provider answers and no webhook arrives.
    SentinelIsolated,
    /// An instance with an announced outage was retired (deleted on the
    /// provider, removed from the config): the outage is closed, so whoever
    /// was told it began can close the incident.
    InstanceRetired,
    /// Every session of a provider is open but no webhook arrives from any of
    /// them: the server's webhook dispatcher is stuck.
    ProviderSilent,
    /// The remediation command ran as often as allowed and the provider outage lasts.
    RemediationExhausted,
    /// The provider reports another version than in the previous cycle.
    /// Opt-in: sent only to notifiers that name it in `kinds`.
    ProviderVersionChanged,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 15] = [
        NoticeKind::InstanceDown,
        NoticeKind::InstanceLoggedOut,
        NoticeKind::InstanceMissing,
        NoticeKind::RestartExhausted,
        NoticeKind::InstanceRecovered,
        NoticeKind::InstanceFlapping,
        NoticeKind::ProviderUnreachable,
        NoticeKind::ProviderRecovered,
        NoticeKind::WebhookRepaired,
        NoticeKind::Reminder,
        NoticeKind::SentinelIsolated,
        NoticeKind::InstanceRetired,
        NoticeKind::ProviderSilent,
        NoticeKind::RemediationExhausted,
        NoticeKind::ProviderVersionChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::InstanceDown => "instance_down",
            NoticeKind::InstanceLoggedOut => "instance_logged_out",
            NoticeKind::InstanceMissing => "instance_missing",
            NoticeKind::RestartExhausted => "restart_exhausted",
            NoticeKind::InstanceRecovered => "instance_recovered",
            NoticeKind::InstanceFlapping => "instance_flapping",
            NoticeKind::ProviderUnreachable => "provider_unreachable",
            NoticeKind::ProviderRecovered => "provider_recovered",
            NoticeKind::WebhookRepaired => "webhook_repaired",
            NoticeKind::Reminder => "reminder",
            NoticeKind::SentinelIsolated => "sentinel_isolated",
            NoticeKind::InstanceRetired => "instance_retired",
            NoticeKind::ProviderSilent => "provider_silent",
            NoticeKind::RemediationExhausted => "remediation_exhausted",
            NoticeKind::ProviderVersionChanged => "provider_version_changed",
        }
    }

    pub fn parse(s: &str) -> Option<NoticeKind> {
        NoticeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kinds that announce an outage; exactly one of them per outage (rule 6, docs/rules.md).
    pub fn is_down_class(self) -> bool {
        matches!(self, NoticeKind::InstanceDown | NoticeKind::InstanceLoggedOut | NoticeKind::InstanceMissing)
    }

    /// Off by default: only notifiers that name the kind in `kinds` get it
    /// (informative, and frequent on some setups).
    pub fn opt_in(self) -> bool {
        matches!(self, NoticeKind::WebhookRepaired | NoticeKind::ProviderVersionChanged)
    }

    pub fn severity(self) -> Severity {
        match self {
            NoticeKind::InstanceDown
            | NoticeKind::InstanceLoggedOut
            | NoticeKind::RestartExhausted
            | NoticeKind::ProviderUnreachable
            | NoticeKind::SentinelIsolated
            | NoticeKind::RemediationExhausted => Severity::Critical,
            NoticeKind::InstanceMissing
            | NoticeKind::InstanceFlapping
            | NoticeKind::Reminder
            | NoticeKind::ProviderSilent => Severity::Warning,
            NoticeKind::InstanceRecovered
            | NoticeKind::ProviderRecovered
            | NoticeKind::WebhookRepaired
            | NoticeKind::InstanceRetired
            | NoticeKind::ProviderVersionChanged => Severity::Info,
        }
    }
}

impl fmt::Display for NoticeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// How an outage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveredBy {
    Poll,
    Webhook,
    Restart,
    Manual,
    /// The instance was retired (deleted on the provider, removed from the config).
    Retired,
}

impl RecoveredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveredBy::Poll => "poll",
            RecoveredBy::Webhook => "webhook",
            RecoveredBy::Restart => "restart",
            RecoveredBy::Manual => "manual",
            RecoveredBy::Retired => "retired",
        }
    }
}

/// The facts of one notice; channels render them (the notice JSON, docs/http-api.md#notices).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub provider: String,
    /// `None` for provider-wide notices.
    pub instance: Option<String>,
    pub tenant: Option<String>,
    /// The outage (or episode) the notice belongs to; `None` for notices that
    /// belong to no outage (`webhook_repaired`), whose dedup key has its own
    /// namespace (`webhook:<instance id>:<ms>`).
    pub outage_id: Option<String>,
    pub started_at: Ts,
    pub at: Ts,
    /// Human cause in English, e.g. "connection closed (statusReason 428)";
    /// machines read it from the JSON `reason` field as it is.
    pub reason: String,
    /// What went wrong, as a stable key the renderer puts in the reader's
    /// language: an instance cause (`logged_out`, `disconnected`, `needs_qr`,
    /// …) or a provider error (`unreachable`, `unauthorized`, `unlicensed`,
    /// `bad_response`). `None` where the kind says it all, and on notices
    /// queued before this field existed (the raw `reason` is shown then).
    #[serde(default)]
    pub cause: Option<String>,
    /// The WhatsApp disconnect code (`statusReason`), when the provider gave one.
    #[serde(default)]
    pub code: Option<u16>,
    pub restart_attempts: u32,
    pub max_attempts: u32,
    /// For recoveries: how.
    pub recovered_by: Option<RecoveredBy>,
    /// For reminders: which one (1, 2, ...).
    pub sequence: u32,
    pub dedup_key: String,
    /// Provider notices: the remediation command, its attempt and (once it
    /// ran) its result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Box<RemediationNote>>,
    /// The down notice of an outage only a QR scan can end: the re-pair link
    /// the customer opens (`<server.public_url>/pair/<token>`), minted in the
    /// transaction that queues the notice. A credential: it goes to the
    /// notifiers, never to a log line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair_url: Option<String>,
}

/// What a provider notice says about the remediation hook.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemediationNote {
    /// The command as people read it (argv joined by spaces).
    pub command: String,
    /// Runs so far in this outage (0: about to run the first).
    pub attempt: u32,
    pub max_attempts: u32,
    /// The last run's result (`exit 0`, `killed after the 60s timeout`), once known.
    pub result: Option<String>,
}

impl Notice {
    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }

    pub fn key(&self) -> Option<InstanceKey> {
        self.instance.as_ref().map(|n| InstanceKey::new(&self.provider, n))
    }
}

/// The dedup key of a notice: `outage:<id>:<kind>`, plus `:<n>` for the n-th reminder.
pub fn dedup_key(outage_id: &str, kind: NoticeKind, sequence: u32) -> String {
    if kind == NoticeKind::Reminder {
        format!("outage:{outage_id}:{kind}:{sequence}")
    } else {
        format!("outage:{outage_id}:{kind}")
    }
}

/// The dedup key of a `webhook_repaired` notice, which belongs to no outage:
/// `webhook:<instance id>:<ms>`.
pub fn repair_dedup_key(instance_id: &str, at: super::Ts) -> String {
    format!("webhook:{instance_id}:{}", at.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_three_are_down_class() {
        for k in NoticeKind::ALL {
            assert_eq!(NoticeKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(NoticeKind::ALL.iter().filter(|k| k.is_down_class()).count(), 3);
    }

    #[test]
    fn dedup_keys_name_the_notice() {
        assert_eq!(dedup_key("0193", NoticeKind::InstanceDown, 0), "outage:0193:instance_down");
        assert_eq!(dedup_key("0193", NoticeKind::Reminder, 2), "outage:0193:reminder:2");
    }
}
