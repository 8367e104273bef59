//! Provider clients: the only code that talks HTTP to Evolution API (v1, v2),
//! W-API, WAHA and Z-API, and the pure parsers for the webhooks they send us.
//!
//! The rest of the daemon sees one enum-dispatched [`ProviderClient`] with the
//! operations of docs/providers.md (status, discovery, situation-specific recovery,
//! webhook audit/repair) and [`parse_inbound`]. Every HTTP outcome is mapped
//! to `Ok` or an [`ErrorClass`] in exactly one place ([`http::classify`]) so
//! every provider agrees on what "unreachable" or "bad response" means.
//!
//! - [`evolution`]: Evolution API v1 and v2 (version auto-detected).
//! - [`wapi`]: W-API (per-instance Bearer tokens, six webhook slots).
//! - [`waha`]: WAHA (`X-Api-Key`, sessions, one full-config `PUT` that restarts the session).
//! - [`zapi`]: Z-API (credentials in the URL path, six webhook slots).
//! - [`pairing`]: re-pairing calls — the current QR code, a pairing code, the one start.
//! - [`slots`]: the slot-per-event-kind webhook repair W-API and Z-API share.
//! - [`lean`]: the status poll's own HTTP client (plain `http://` only).
//! - [`messaging`]: sending a text through an instance (the `whatsapp`
//!   notifier) and reading back what it sent.
//!
//! The servers that pretend to be these providers (for the demo, the tests
//! and the benchmarks) are not clients and live apart, in [`crate::sim`].

pub mod evolution;
pub mod http;
pub mod lean;
pub mod messaging;
pub mod pairing;
pub mod slots;
pub mod waha;
pub mod wapi;
pub mod zapi;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::config::{DesiredWebhook, ProviderConfig, ProviderKind, Secret};
use crate::domain::{ProviderErrorKind, ProviderStatus, RecoveryKind, Ts, WebhookSignal};

/// reqwest is built with `rustls-no-provider`: building a `Client` needs this first.
pub use crate::tls::install_crypto;

/// One instance as the provider knows it.
#[derive(Debug, Clone)]
pub struct InstanceRef {
    /// Evolution instance name, W-API and Z-API instance id, WAHA session name.
    pub name: String,
    /// W-API per-instance Bearer token, Z-API instance token (Evolution and
    /// WAHA use the provider's key).
    pub token: Option<Secret>,
}

impl InstanceRef {
    pub fn named(name: impl Into<String>) -> Self {
        InstanceRef { name: name.into(), token: None }
    }
}

/// The answer of a per-instance liveness call.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport {
    pub status: ProviderStatus,
    /// The provider's body, kept for logs, truncated to [`RAW_LIMIT`] bytes.
    pub raw: String,
}

impl StatusReport {
    /// A failed status call that still answers the question: "does not exist"
    /// and "not loaded" are instance statuses; anything else stays an error.
    pub fn from_error(e: ProviderError) -> Result<StatusReport, ProviderError> {
        match e.instance_status() {
            Some(status) => Ok(StatusReport { status, raw: truncate(&e.detail, RAW_LIMIT) }),
            None => Err(e),
        }
    }
}

/// An instance found by discovery.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub name: String,
    /// W-API instance token (from the integrator list). Always `None` for
    /// Evolution: the global key works everywhere, so instance tokens are not
    /// copied around.
    pub token: Option<Secret>,
    /// The provider's own id of the instance (Evolution's uuid), when it has
    /// one apart from the name: a different id under a known name is a new
    /// instance (rule 14, docs/rules.md).
    pub provider_id: Option<String>,
}

/// How a provider call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Connect error (refused, reset), timeout: the server was not reached.
    Unreachable,
    /// A 5xx answer: the server answered, with an error. Said of one
    /// instance, it is that instance's problem (Evolution's `500 Connection
    /// Closed` for a broken session object); said of every call, the server's.
    ServerError,
    /// 401/403 for the API key or token.
    Unauthorized,
    /// 404 "instance does not exist" (an instance status, not a provider fault).
    InstanceNotFound,
    /// Evolution: the instance exists but is not loaded in memory (an instance status).
    NotLoaded,
    /// HTML, unparsable or truncated JSON, `{"error": true}` inside a 200, unexpected shape.
    BadResponse,
    /// Evolution 2.4 `503 LICENSE_REQUIRED`.
    Unlicensed,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::ServerError => "server_error",
            ErrorClass::Unauthorized => "unauthorized",
            ErrorClass::InstanceNotFound => "instance_not_found",
            ErrorClass::NotLoaded => "not_loaded",
            ErrorClass::BadResponse => "bad_response",
            ErrorClass::Unlicensed => "unlicensed",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed provider call. `detail` never contains a secret: request URLs
/// carry none (keys and tokens travel in headers; the Z-API client describes
/// its calls without the token and scrubs it from answers) and webhook URLs
/// are redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {detail}")]
pub struct ProviderError {
    pub class: ErrorClass,
    pub detail: String,
}

impl ProviderError {
    pub fn new(class: ErrorClass, detail: impl Into<String>) -> Self {
        ProviderError { class, detail: detail.into() }
    }

    /// The domain error kind, for classes that make the *provider* suspect.
    /// `InstanceNotFound` and `NotLoaded` are instance statuses: `None`.
    pub fn provider_kind(&self) -> Option<ProviderErrorKind> {
        match self.class {
            ErrorClass::Unreachable => Some(ProviderErrorKind::Unreachable),
            ErrorClass::ServerError => Some(ProviderErrorKind::ServerError),
            ErrorClass::Unauthorized => Some(ProviderErrorKind::Unauthorized),
            ErrorClass::BadResponse => Some(ProviderErrorKind::BadResponse),
            ErrorClass::Unlicensed => Some(ProviderErrorKind::Unlicensed),
            ErrorClass::InstanceNotFound | ErrorClass::NotLoaded => None,
        }
    }

    /// The instance status these classes stand for (`NotFound`, `NotLoaded`).
    pub fn instance_status(&self) -> Option<ProviderStatus> {
        match self.class {
            ErrorClass::InstanceNotFound => Some(ProviderStatus::NotFound),
            ErrorClass::NotLoaded => Some(ProviderStatus::NotLoaded),
            _ => None,
        }
    }
}

/// A normalised read of a provider's webhook config.
///
/// Evolution maps 1:1 (`events: []` = all events). W-API has one URL slot per
/// event kind and no event list: `events` holds the *slot kinds* that have a
/// URL (`connected`, `received`, …), `url` is the URL of the first set slot in
/// the order of [`wapi::SLOTS`], `by_events` is true when the set slots do not
/// all share one URL, `enabled` is true when any slot is set, `base64` is
/// always false. No slot set at all reads as `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    pub enabled: bool,
    pub url: Option<String>,
    pub events: Vec<String>,
    pub by_events: bool,
    pub base64: bool,
}

/// What `apply_webhook` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookRepair {
    /// The config already matched; nothing was written.
    AlreadyOk,
    /// Written and verified by reading back; `reasons` says why it was written.
    Repaired { reasons: Vec<String> },
    /// Written, but the read-back still differs (wrong body key, a provider bug…).
    Mismatch { detail: String },
}

/// One parsed inbound webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// Evolution instance name / W-API and Z-API `instanceId` / WAHA `session`.
    pub instance: String,
    /// The event as the provider names it (`messages.upsert`, `webhookReceived`,
    /// WAHA `session.status`, Z-API `type`).
    pub event: String,
    pub signal: WebhookSignal,
    pub raw_len: usize,
    /// When the provider says the event happened (Unix ms), where it says so
    /// in a trustworthy unit: W-API `moment`, WAHA `timestamp`, Z-API
    /// `momment` (normalised). `None` for Evolution (`date_time` is local time
    /// labelled `Z`).
    pub at: Option<Ts>,
}

/// Why an inbound body was refused (answer 400 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    #[error("malformed webhook body: {0}")]
    Malformed(String),
    #[error("webhook body lacks the field `{0}`")]
    MissingField(&'static str),
}

/// A required non-empty string field of an inbound body.
fn required_str(v: Option<&serde_json::Value>, field: &'static str) -> Result<String, InboundError> {
    v.and_then(serde_json::Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
        .ok_or(InboundError::MissingField(field))
}

/// Parse one inbound webhook body. Pure and total: never panics.
/// `path_event` is the by-events URL suffix (`messages-upsert`) when present;
/// it names the event only when the body does not.
pub fn parse_inbound(kind: ProviderKind, body: &[u8], path_event: Option<&str>) -> Result<Inbound, InboundError> {
    match kind {
        ProviderKind::Evolution => evolution::parse_inbound(body, path_event),
        ProviderKind::Wapi => wapi::parse_inbound(body, path_event),
        // WAHA posts every event to one URL: no by-events suffix.
        ProviderKind::Waha => waha::parse_inbound(body),
        ProviderKind::Zapi => zapi::parse_inbound(body, path_event),
    }
}

/// One client per configured provider.
#[derive(Debug)]
pub enum ProviderClient {
    Evolution(evolution::EvolutionClient),
    Wapi(wapi::WapiClient),
    Waha(waha::WahaClient),
    Zapi(zapi::ZapiClient),
}

impl ProviderClient {
    /// Build the client: one `reqwest::Client` (connection reuse) with
    /// `request_timeout` applied to every call.
    pub fn new(cfg: &ProviderConfig, request_timeout: Duration) -> Result<Self, ProviderError> {
        Ok(match cfg.kind {
            ProviderKind::Evolution => {
                ProviderClient::Evolution(evolution::EvolutionClient::new(cfg, request_timeout)?)
            }
            ProviderKind::Wapi => ProviderClient::Wapi(wapi::WapiClient::new(cfg, request_timeout)?),
            ProviderKind::Waha => ProviderClient::Waha(waha::WahaClient::new(cfg, request_timeout)?),
            ProviderKind::Zapi => ProviderClient::Zapi(zapi::ZapiClient::new(cfg, request_timeout)?),
        })
    }

    /// The provider's version where its API tells it (Evolution `GET /`,
    /// WAHA `GET /api/server/version`); `None` otherwise or on any error.
    pub async fn server_version(&self) -> Option<String> {
        match self {
            ProviderClient::Evolution(c) => c.server_version().await,
            ProviderClient::Waha(c) => c.server_version().await,
            ProviderClient::Wapi(_) | ProviderClient::Zapi(_) => None,
        }
    }

    pub fn kind(&self) -> ProviderKind {
        match self {
            ProviderClient::Evolution(_) => ProviderKind::Evolution,
            ProviderClient::Wapi(_) => ProviderKind::Wapi,
            ProviderClient::Waha(_) => ProviderKind::Waha,
            ProviderClient::Zapi(_) => ProviderKind::Zapi,
        }
    }
}

impl Provider for ProviderClient {
    async fn status(&self, inst: &InstanceRef) -> Result<StatusReport, ProviderError> {
        match self {
            ProviderClient::Evolution(c) => c.status(inst).await,
            ProviderClient::Wapi(c) => c.status(inst).await,
            ProviderClient::Waha(c) => c.status(inst).await,
            ProviderClient::Zapi(c) => c.status(inst).await,
        }
    }

    async fn list_instances(&self) -> Result<Vec<Discovered>, ProviderError> {
        match self {
            ProviderClient::Evolution(c) => c.list_instances().await,
            ProviderClient::Wapi(c) => c.list_instances().await,
            ProviderClient::Waha(c) => c.list_instances().await,
            ProviderClient::Zapi(c) => c.list_instances().await,
        }
    }

    async fn recover(&self, inst: &InstanceRef, kind: RecoveryKind) -> Result<Recovered, ProviderError> {
        match self {
            ProviderClient::Evolution(c) => c.recover(inst, kind).await,
            ProviderClient::Wapi(c) => c.recover(inst, kind).await,
            ProviderClient::Waha(c) => c.recover(inst, kind).await,
            ProviderClient::Zapi(c) => c.recover(inst, kind).await,
        }
    }

    async fn webhook(&self, inst: &InstanceRef) -> Result<Option<WebhookSettings>, ProviderError> {
        match self {
            ProviderClient::Evolution(c) => c.webhook(inst).await,
            ProviderClient::Wapi(c) => c.webhook(inst).await,
            ProviderClient::Waha(c) => c.webhook(inst).await,
            ProviderClient::Zapi(c) => c.webhook(inst).await,
        }
    }

    async fn check_webhook(
        &self,
        inst: &InstanceRef,
        desired_url: &str,
        desired: &DesiredWebhook,
    ) -> Result<Vec<String>, ProviderError> {
        match self {
            ProviderClient::Evolution(c) => c.check_webhook(inst, desired_url, desired).await,
            ProviderClient::Wapi(c) => c.check_webhook(inst, desired_url, desired).await,
            ProviderClient::Waha(c) => c.check_webhook(inst, desired_url, desired).await,
            ProviderClient::Zapi(c) => c.check_webhook(inst, desired_url, desired).await,
        }
    }

    async fn apply_webhook(
        &self,
        inst: &InstanceRef,
        desired_url: &str,
        desired: &DesiredWebhook,
    ) -> Result<WebhookRepair, ProviderError> {
        match self {
            ProviderClient::Evolution(c) => c.apply_webhook(inst, desired_url, desired).await,
            ProviderClient::Wapi(c) => c.apply_webhook(inst, desired_url, desired).await,
            ProviderClient::Waha(c) => c.apply_webhook(inst, desired_url, desired).await,
            ProviderClient::Zapi(c) => c.apply_webhook(inst, desired_url, desired).await,
        }
    }
}

/// What a provider offers the supervisor, whatever its API (docs/providers.md):
/// implemented by each client ([`evolution::EvolutionClient`],
/// [`wapi::WapiClient`]) and by [`ProviderClient`], which dispatches to the
/// configured one without boxing ([`waha::WahaClient`] and
/// [`zapi::ZapiClient`] too). Nothing here assumes Evolution.
/// What a recovery call did, in words for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// The call went out: what was called and what came back.
    Sent(String),
    /// Nothing was sent, and why (a session that is starting, already open).
    Skipped(String),
}

impl Recovered {
    pub fn detail(&self) -> &str {
        match self {
            Recovered::Sent(d) | Recovered::Skipped(d) => d,
        }
    }
}

pub trait Provider {
    /// Per-instance liveness call. A missing instance and an instance that is
    /// not loaded come back as `Ok` with `NotFound` / `NotLoaded`; `Err` is
    /// always a provider problem (`provider_kind()` is `Some`).
    fn status(&self, inst: &InstanceRef) -> impl Future<Output = Result<StatusReport, ProviderError>> + Send;

    /// Discovery: every instance the provider lists.
    fn list_instances(&self) -> impl Future<Output = Result<Vec<Discovered>, ProviderError>> + Send;

    /// The situation-specific recovery call. Returns what was called and
    /// what came back — or that the client found nothing it could do and sent
    /// nothing (which then spends no attempt).
    fn recover(
        &self,
        inst: &InstanceRef,
        kind: RecoveryKind,
    ) -> impl Future<Output = Result<Recovered, ProviderError>> + Send;

    /// The instance's webhook config, `None` when none is configured.
    fn webhook(
        &self,
        inst: &InstanceRef,
    ) -> impl Future<Output = Result<Option<WebhookSettings>, ProviderError>> + Send;

    /// Read-only audit: why the instance's webhook config differs from the
    /// desired one (empty: it matches). Used while the instance is in
    /// maintenance, when nothing may be written (rule 16, docs/rules.md).
    fn check_webhook(
        &self,
        inst: &InstanceRef,
        desired_url: &str,
        desired: &DesiredWebhook,
    ) -> impl Future<Output = Result<Vec<String>, ProviderError>> + Send;

    /// Diff-based repair: read, compare, write only when needed (keeping the
    /// operator's events and headers), read back to verify.
    fn apply_webhook(
        &self,
        inst: &InstanceRef,
        desired_url: &str,
        desired: &DesiredWebhook,
    ) -> impl Future<Output = Result<WebhookRepair, ProviderError>> + Send;
}

/// Raw bodies kept for logs are cut to this many bytes.
pub const RAW_LIMIT: usize = 2048;

/// Cut `s` to at most `max` bytes on a char boundary, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[{} bytes cut]", &s[..end], s.len() - end)
}

/// A URL fit for logs and error details: scheme, host, port and the first
/// path segment; the rest of the path and the query (where webhook secrets
/// live) are replaced by `…`.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let mut segs = u.path_segments().into_iter().flatten().filter(|s| !s.is_empty());
            let first = segs.next();
            let more = segs.next().is_some() || u.query().is_some();
            let mut out = format!("{}://{host}{port}", u.scheme());
            if let Some(f) = first {
                out.push('/');
                out.push_str(f);
            }
            if more {
                out.push_str("/…");
            }
            out
        }
        Err(_) => "[unparsable url]".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_path_secrets_and_query() {
        let r = redact_url("https://hooks.example.com/wa/wapi/3B6X/connected?k=s3cr3t");
        assert_eq!(r, "https://hooks.example.com/wa/…");
        assert!(!r.contains("s3cr3t"));
        assert_eq!(redact_url("http://127.0.0.1:8080/hooks"), "http://127.0.0.1:8080/hooks");
        assert_eq!(redact_url("not a url"), "[unparsable url]");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let s = "é".repeat(2000);
        let t = truncate(&s, 2049);
        assert!(t.starts_with(&"é".repeat(1024)));
        assert!(t.contains("bytes cut"));
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn provider_kind_mapping() {
        let k = |c| ProviderError::new(c, "x").provider_kind();
        assert_eq!(k(ErrorClass::Unreachable), Some(ProviderErrorKind::Unreachable));
        assert_eq!(k(ErrorClass::ServerError), Some(ProviderErrorKind::ServerError));
        assert_eq!(k(ErrorClass::Unauthorized), Some(ProviderErrorKind::Unauthorized));
        assert_eq!(k(ErrorClass::BadResponse), Some(ProviderErrorKind::BadResponse));
        assert_eq!(k(ErrorClass::Unlicensed), Some(ProviderErrorKind::Unlicensed));
        assert_eq!(k(ErrorClass::InstanceNotFound), None);
        assert_eq!(k(ErrorClass::NotLoaded), None);
        let e = ProviderError::new(ErrorClass::Unauthorized, "401 Unauthorized");
        assert_eq!(e.to_string(), "unauthorized: 401 Unauthorized");
    }
}
