//! The normalised provider status (docs/providers.md, "Normalised status") and the
//! signals a webhook can carry. Provider clients map their payloads onto these;
//! the state machine only ever sees these.

use std::fmt;

/// What one provider said about one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ProviderStatus {
    /// Evolution `state=open`; W-API `connected:true`.
    Connected,
    /// Evolution `state=connecting`; `qr_pending` when QR codes are being issued
    /// (unpaired, waiting for a human).
    Connecting { qr_pending: bool },
    /// Closed after a transient reason (408, 428, 440, 500, 503, 515) or an unknown one.
    Disconnected { reason: Option<u16> },
    /// Logged out (401) or rejected (402/403/406): needs a QR re-scan, restart cannot fix it.
    LoggedOut { reason: Option<u16> },
    /// 404: the instance does not exist on the provider.
    NotFound,
    /// Evolution 200 without `state`: the instance is not loaded in memory.
    NotLoaded,
    /// The provider is starting the session itself (WAHA `STARTING`): not
    /// open yet, and no call helps now — a restart would begin again from
    /// scratch. Counts towards `down_after`, never spends a recovery attempt.
    Starting,
    /// Never paired (Evolution: no `ownerJid`; W-API: never a `connectedPhone`):
    /// waiting for its first QR scan. Needs a person; never recovered by a call.
    Unpaired,
    /// A state the client does not recognise (WAHA `PASSKEY_REQUIRED` or newer
    /// ones): a person must look; never recovered by a call (rule 13, docs/rules.md).
    NeedsHuman,
}

/// Why a provider call failed. Any of these makes the *provider* suspect and
/// the instance `unknown` — never `disconnected` (rule 2, docs/rules.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderErrorKind {
    /// Connect error, timeout: the server was not reached.
    Unreachable,
    /// The server answered a 5xx.
    ServerError,
    /// 401/403 for the API key.
    Unauthorized,
    /// Unparsable body, HTML, `{"error": true}` inside a 200.
    BadResponse,
    /// Evolution 2.4 `503 LICENSE_REQUIRED`.
    Unlicensed,
}

impl ProviderErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderErrorKind::Unreachable => "unreachable",
            ProviderErrorKind::ServerError => "server_error",
            ProviderErrorKind::Unauthorized => "unauthorized",
            ProviderErrorKind::BadResponse => "bad_response",
            ProviderErrorKind::Unlicensed => "unlicensed",
        }
    }
}

impl fmt::Display for ProviderErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an inbound webhook says about its instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case")]
pub enum WebhookSignal {
    /// The provider says the session is open (`connection.update` open, W-API
    /// `webhookConnected`): proof of a live session, which is what ends an
    /// outage that needs a person (logged out, waiting for a QR) — rule 7.
    Open,
    /// Any other event that proves the session alive (a message, a receipt).
    /// Ends a transient outage, but not a logged-out one: a late message retry
    /// from the provider is not a live session.
    Alive,
    /// `connection.update` with `connecting`; `qr_pending` for `qrcode.updated`.
    Connecting { qr_pending: bool },
    /// The provider is starting the session (WAHA `session.status` `STARTING`).
    Starting,
    /// `connection.update` close with a transient reason: an outage at once (rule 3).
    Closed { reason: Option<u16> },
    /// A disconnect without a reason (W-API `webhookDisconnected`): counts like
    /// a bad poll, so the next poll (with W-API's QR check) can tell a logout
    /// from a drop before anything is restarted.
    Dropped,
    /// `connection.update` close with a terminal reason, `logout.instance`,
    /// `status.instance` closed with a terminal code.
    LoggedOut { reason: Option<u16> },
    /// An event that says nothing about liveness (e.g. a failed message ack).
    Neutral,
}

impl WebhookSignal {
    /// Says the session is not open (a verdict against the instance).
    pub fn says_down(self) -> bool {
        matches!(
            self,
            WebhookSignal::Connecting { .. }
                | WebhookSignal::Starting
                | WebhookSignal::Closed { .. }
                | WebhookSignal::Dropped
                | WebhookSignal::LoggedOut { .. }
        )
    }
}

/// Human description of a disconnect reason code (Baileys `DisconnectReason`).
pub fn reason_text(code: u16) -> &'static str {
    match code {
        401 => "logged out",
        402 => "payment required / account locked",
        403 => "forbidden (the number may be banned)",
        406 => "not acceptable (the number may be banned)",
        408 => "connection lost / timed out",
        411 => "multi-device mismatch",
        428 => "connection closed",
        440 => "session replaced by another connection",
        500 => "bad session",
        503 => "WhatsApp service unavailable",
        515 => "restart required",
        _ => "unrecognised reason",
    }
}
