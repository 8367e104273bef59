//! Observations in an operator's words, for what people read (the audit
//! events shown on an instance's page and in the API): `poll: connection
//! closed, code 428 (connection closed)`, `webhook: session open`, never
//! Rust's `Debug` text (`Polled(Disconnected { reason: None })`).
//!
//! Event rows written by releases that stored the `Debug` text are rendered
//! in words too ([`legacy_observation`], used by [`clean_detail`]); the rows
//! themselves are left as they are.

use super::health::Observation;
use super::status::{ProviderErrorKind, ProviderStatus, WebhookSignal, reason_text};

/// `code 428 (connection closed)`.
fn code_words(code: u16) -> String {
    format!("code {code} ({})", reason_text(code))
}

fn with_code(what: &str, code: Option<u16>) -> String {
    match code {
        Some(c) => format!("{what}, {}", code_words(c)),
        None => what.to_string(),
    }
}

/// What a provider said about an instance.
pub fn status(st: ProviderStatus) -> String {
    match st {
        ProviderStatus::Connected => "session open".into(),
        ProviderStatus::Connecting { qr_pending: false } => "connecting".into(),
        ProviderStatus::Connecting { qr_pending: true } => "waiting for a QR code scan".into(),
        ProviderStatus::Disconnected { reason } => with_code("connection closed", reason),
        ProviderStatus::LoggedOut { reason } => with_code("logged out", reason),
        ProviderStatus::NotFound => "the instance does not exist on the provider".into(),
        ProviderStatus::NotLoaded => "the session is not loaded (stopped)".into(),
        ProviderStatus::Starting => "the provider is starting the session".into(),
        ProviderStatus::Unpaired => "never paired: waiting for its first QR code scan".into(),
        ProviderStatus::NeedsHuman => "a state wa-sentinel does not know: a person must look".into(),
    }
}

/// Why a provider call failed.
pub fn provider_failure(kind: ProviderErrorKind) -> &'static str {
    match kind {
        ProviderErrorKind::Unreachable => "the provider did not answer (unreachable)",
        ProviderErrorKind::ServerError => "the provider answered with a server error (5xx)",
        ProviderErrorKind::Unauthorized => "the provider refused the API key (unauthorized)",
        ProviderErrorKind::BadResponse => "the provider's answer could not be read (bad response)",
        ProviderErrorKind::Unlicensed => "the provider needs activation (unlicensed)",
    }
}

/// What a webhook said about its instance.
pub fn signal(sig: WebhookSignal) -> String {
    match sig {
        WebhookSignal::Open => "session open".into(),
        WebhookSignal::Alive => "activity: the session is alive".into(),
        WebhookSignal::Connecting { qr_pending: false } => "connecting".into(),
        WebhookSignal::Connecting { qr_pending: true } => "QR code issued".into(),
        WebhookSignal::Starting => "the provider is starting the session".into(),
        WebhookSignal::Closed { reason } => with_code("connection closed", reason),
        WebhookSignal::Dropped => "disconnected (no reason given)".into(),
        WebhookSignal::LoggedOut { reason } => with_code("logged out", reason),
        WebhookSignal::Neutral => "nothing about the session".into(),
    }
}

/// One observation, as the audit log shows it.
pub fn observation(obs: &Observation) -> String {
    match obs {
        Observation::Polled(st) => format!("poll: {}", status(*st)),
        Observation::ProviderFailed(k) => format!("poll failed: {}", provider_failure(*k)),
        Observation::StatusFailed { detail } => format!("poll failed for this instance alone: {detail}"),
        Observation::RecoverySkipped { attempt: 0, .. } => "the manual recovery call sent nothing".into(),
        Observation::RecoverySkipped { attempt, .. } => format!("recovery attempt {attempt} sent nothing"),
        Observation::Webhook(sig) => format!("webhook: {}", signal(*sig)),
        Observation::Maintenance(Some(until)) => format!("maintenance until {}", until.rfc3339()),
        Observation::Maintenance(None) => "maintenance ended".into(),
        Observation::ManualRestart { force: false } => "manual restart".into(),
        Observation::ManualRestart { force: true } => "manual restart (forced)".into(),
        Observation::Retired => "retired".into(),
    }
}

/// `Some(428)` / `None` → the code.
fn legacy_code(v: &str) -> Option<Option<u16>> {
    match v.trim() {
        "None" => Some(None),
        s => s.strip_prefix("Some(")?.strip_suffix(')')?.trim().parse().ok().map(Some),
    }
}

/// `Name` or `Name { field: value }` → the name and the one field's value.
fn legacy_variant(s: &str) -> Option<(&str, Option<&str>)> {
    let s = s.trim();
    match s.split_once('{') {
        None => Some((s, None)),
        Some((name, rest)) => {
            let body = rest.trim().strip_suffix('}')?;
            let (_, value) = body.split_once(':')?;
            Some((name.trim(), Some(value.trim())))
        }
    }
}

fn legacy_status(s: &str) -> Option<ProviderStatus> {
    let (name, value) = legacy_variant(s)?;
    Some(match (name, value) {
        ("Connected", None) => ProviderStatus::Connected,
        ("Connecting", Some(v)) => ProviderStatus::Connecting { qr_pending: v.parse().ok()? },
        ("Disconnected", Some(v)) => ProviderStatus::Disconnected { reason: legacy_code(v)? },
        ("LoggedOut", Some(v)) => ProviderStatus::LoggedOut { reason: legacy_code(v)? },
        ("NotFound", None) => ProviderStatus::NotFound,
        ("NotLoaded", None) => ProviderStatus::NotLoaded,
        ("Unpaired", None) => ProviderStatus::Unpaired,
        ("NeedsHuman", None) => ProviderStatus::NeedsHuman,
        _ => return None,
    })
}

fn legacy_signal(s: &str) -> Option<WebhookSignal> {
    let (name, value) = legacy_variant(s)?;
    Some(match (name, value) {
        ("Open", None) => WebhookSignal::Open,
        ("Alive", None) => WebhookSignal::Alive,
        ("Connecting", Some(v)) => WebhookSignal::Connecting { qr_pending: v.parse().ok()? },
        ("Closed", Some(v)) => WebhookSignal::Closed { reason: legacy_code(v)? },
        ("Dropped", None) => WebhookSignal::Dropped,
        ("LoggedOut", Some(v)) => WebhookSignal::LoggedOut { reason: legacy_code(v)? },
        ("Neutral", None) => WebhookSignal::Neutral,
        _ => return None,
    })
}

fn legacy_failure(s: &str) -> Option<ProviderErrorKind> {
    Some(match s.trim() {
        "Unreachable" => ProviderErrorKind::Unreachable,
        "Unauthorized" => ProviderErrorKind::Unauthorized,
        "BadResponse" => ProviderErrorKind::BadResponse,
        "Unlicensed" => ProviderErrorKind::Unlicensed,
        _ => return None,
    })
}

/// An observation as older releases stored it (`Debug`:
/// `Polled(Disconnected { reason: None })`), in words; `None` when `text`
/// is not such a text.
pub fn legacy_observation(text: &str) -> Option<String> {
    let (outer, inner) = text.trim().strip_suffix(')')?.split_once('(')?;
    let obs = match outer {
        "Polled" => Observation::Polled(legacy_status(inner)?),
        "Webhook" => Observation::Webhook(legacy_signal(inner)?),
        "ProviderFailed" => Observation::ProviderFailed(legacy_failure(inner)?),
        _ => return None,
    };
    Some(observation(&obs))
}

/// An audit event's detail as shown to people: an `observation` stored as
/// `Debug` text by an older release is put in words.
pub fn clean_detail(detail: &mut serde_json::Value) {
    if let Some(v) = detail.get_mut("observation")
        && let Some(words) = v.as_str().and_then(legacy_observation)
    {
        *v = serde_json::Value::String(words);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Ts;

    /// Every observation a poll or a webhook can make, in words, and the
    /// `Debug` text of each (what older releases stored) read back to the
    /// same words.
    #[test]
    fn every_observation_reads_in_words_and_old_debug_text_reads_the_same() {
        let codes = [None, Some(401), Some(428), Some(440), Some(999)];
        let mut all: Vec<Observation> = Vec::new();
        for qr in [false, true] {
            all.push(Observation::Polled(ProviderStatus::Connecting { qr_pending: qr }));
            all.push(Observation::Webhook(WebhookSignal::Connecting { qr_pending: qr }));
        }
        for c in codes {
            all.push(Observation::Polled(ProviderStatus::Disconnected { reason: c }));
            all.push(Observation::Polled(ProviderStatus::LoggedOut { reason: c }));
            all.push(Observation::Webhook(WebhookSignal::Closed { reason: c }));
            all.push(Observation::Webhook(WebhookSignal::LoggedOut { reason: c }));
        }
        for st in [
            ProviderStatus::Connected,
            ProviderStatus::NotFound,
            ProviderStatus::NotLoaded,
            ProviderStatus::Unpaired,
            ProviderStatus::NeedsHuman,
        ] {
            all.push(Observation::Polled(st));
        }
        for sig in [WebhookSignal::Open, WebhookSignal::Alive, WebhookSignal::Dropped, WebhookSignal::Neutral] {
            all.push(Observation::Webhook(sig));
        }
        for k in [
            ProviderErrorKind::Unreachable,
            ProviderErrorKind::Unauthorized,
            ProviderErrorKind::BadResponse,
            ProviderErrorKind::Unlicensed,
        ] {
            all.push(Observation::ProviderFailed(k));
        }
        for obs in &all {
            let words = observation(obs);
            for mark in ["(Dis", "Some(", "None", "{ ", "Polled", "Webhook("] {
                assert!(!words.contains(mark), "{obs:?} → {words}");
            }
            assert_eq!(legacy_observation(&format!("{obs:?}")).as_deref(), Some(words.as_str()), "{obs:?}");
        }
        assert_eq!(
            observation(&Observation::Polled(ProviderStatus::Disconnected { reason: None })),
            "poll: connection closed"
        );
        assert_eq!(
            observation(&Observation::Polled(ProviderStatus::Disconnected { reason: Some(428) })),
            "poll: connection closed, code 428 (connection closed)"
        );
        assert_eq!(observation(&Observation::Webhook(WebhookSignal::Open)), "webhook: session open");
        assert_eq!(observation(&Observation::Maintenance(Some(Ts(0)))), "maintenance until 1970-01-01T00:00:00Z");
    }

    #[test]
    fn other_texts_are_left_alone() {
        for t in ["", "poll: session open", "Polled(Whatever)", "Polled(Disconnected { reason: Some(x) })", "x(y)"] {
            assert_eq!(legacy_observation(t), None, "{t}");
        }
        let mut d = serde_json::json!({"observation": "Polled(Disconnected { reason: None })", "health": "x"});
        clean_detail(&mut d);
        assert_eq!(d, serde_json::json!({"observation": "poll: connection closed", "health": "x"}));
        let mut d = serde_json::json!({"observation": 3});
        clean_detail(&mut d);
        assert_eq!(d, serde_json::json!({"observation": 3}));
    }
}
