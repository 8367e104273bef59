//! What one observation says on its own, before the instance's history is
//! taken into account: a health, a cause, a reason in English, and whether it
//! counts towards `down_after`, opens an outage at once, proves a live
//! session, or asks for no recovery call.

use super::super::status::reason_text;
use super::super::{Health, ProviderStatus};
use super::Cause;
use super::state::OPEN_REASON;

/// What one observation says, before history is taken into account.
pub(super) struct Verdict {
    pub(super) health: Health,
    pub(super) cause: Option<Cause>,
    pub(super) reason: String,
    pub(super) code: Option<u16>,
    /// Counts towards `down_after` (polls and QR requests; not a debounced `connecting` webhook).
    pub(super) counted: bool,
    /// Opens an outage at once (terminal states, a `close` webhook).
    pub(super) immediate: bool,
    /// Proof of a live session (a poll saying open, an `open` webhook), which
    /// is what ends an outage that needs a person; a message is not.
    pub(super) live_session: bool,
    /// The provider is bringing the session up itself: no recovery call now.
    pub(super) no_remedy: bool,
}

/// The stored, English reason: `what` and the code's meaning, without saying
/// the same words twice ("logged out (statusReason 401)", not "logged out:
/// logged out (…)"). [`status_code_in`] reads the code back.
pub(super) fn describe(what: &str, code: Option<u16>) -> String {
    match code {
        Some(c) if reason_text(c) == what => format!("{what} (statusReason {c})"),
        Some(c) => format!("{what}: {} (statusReason {c})", reason_text(c)),
        None => what.to_string(),
    }
}

/// The code `describe` wrote into a reason, if any.
pub fn status_code_in(reason: &str) -> Option<u16> {
    let (_, tail) = reason.rsplit_once("(statusReason ")?;
    tail.strip_suffix(')')?.parse().ok()
}

pub(super) fn classify_status(st: ProviderStatus, counted: bool) -> Verdict {
    let v = |health, cause, reason: String, code, immediate| Verdict {
        health,
        cause,
        reason,
        code,
        counted,
        immediate,
        live_session: health == Health::Connected,
        no_remedy: false,
    };
    match st {
        ProviderStatus::Connected => v(Health::Connected, None, OPEN_REASON.into(), None, false),
        ProviderStatus::Connecting { qr_pending: true } => {
            v(Health::Connecting, Some(Cause::NeedsQr), "waiting for a QR code scan".into(), None, false)
        }
        ProviderStatus::Connecting { qr_pending: false } => {
            v(Health::Connecting, Some(Cause::Connecting), "connecting".into(), None, false)
        }
        ProviderStatus::Disconnected { reason } => {
            v(Health::Disconnected, Some(Cause::Disconnected), describe("connection closed", reason), reason, false)
        }
        ProviderStatus::Starting => Verdict {
            no_remedy: true,
            ..v(Health::Connecting, Some(Cause::Connecting), "the provider is starting the session".into(), None, false)
        },
        ProviderStatus::NotLoaded => {
            v(Health::Disconnected, Some(Cause::Disconnected), "session not loaded on the provider".into(), None, false)
        }
        ProviderStatus::LoggedOut { reason } => {
            v(Health::LoggedOut, Some(Cause::LoggedOut), describe("logged out", reason), reason, true)
        }
        ProviderStatus::Unpaired => v(
            Health::Connecting,
            Some(Cause::NeedsQr),
            "never paired: waiting for its first QR code scan".into(),
            None,
            true,
        ),
        ProviderStatus::NeedsHuman => v(
            Health::LoggedOut,
            Some(Cause::NeedsHuman),
            "the provider reports a state that needs a person".into(),
            None,
            true,
        ),
        ProviderStatus::NotFound => {
            v(Health::Missing, Some(Cause::Missing), "instance does not exist on the provider".into(), None, true)
        }
    }
}
