//! Provider clients: the only code that talks HTTP to Evolution API (v1, v2)
//! and W-API, and the pure parser for the webhooks they send us.
//!
//! The rest of the daemon sees one enum-dispatched [`ProviderClient`] with the
//! operations of PROVIDERS.md (status, discovery, situation-specific recovery,
//! webhook audit/repair) and [`parse_inbound`]. Every HTTP outcome is mapped
//! to `Ok` or an [`ErrorClass`] in exactly one place ([`http::classify`]) so
//! both providers agree on what "unreachable" or "bad response" means.
//!
//! - [`evolution`]: Evolution API v1 and v2 (version auto-detected).
//! - [`wapi`]: W-API (per-instance Bearer tokens, six webhook slots).
//! - [`simulator`]: an in-process Evolution-v2-compatible server for the demo,
//!   integration tests and benchmarks.

pub mod evolution;
pub mod http;
pub mod simulator;
pub mod wapi;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::config::{DesiredWebhook, ProviderConfig, ProviderKind, Secret};
use crate::domain::{ProviderErrorKind, ProviderStatus, RecoveryKind, WebhookSignal};

/// reqwest is built with `rustls-no-provider`: building a `Client` needs this first.
pub use crate::tls::install_crypto;

/// One instance as the provider knows it.
#[derive(Debug, Clone)]
pub struct InstanceRef {
    /// Evolution instance name, W-API `instanceId`.
    pub name: String,
    /// W-API per-instance Bearer token (Evolution uses the provider's global key).
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
    /// instance (SPEC §5 rule 14).
    pub provider_id: Option<String>,
}

/// How a provider call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Connect error, timeout, 5xx.
    Unreachable,
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
/// carry none (keys and tokens travel in headers) and webhook URLs are redacted.
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
    /// Evolution instance name / W-API `instanceId`.
    pub instance: String,
    /// The event as the provider names it (`messages.upsert`, `webhookReceived`).
    pub event: String,
    pub signal: WebhookSignal,
    pub raw_len: usize,
}

/// Why an inbound body was refused (answer 400 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    #[error("malformed webhook body: {0}")]
    Malformed(String),
    #[error("webhook body lacks the field `{0}`")]
    MissingField(&'static str),
}

/// Parse one inbound webhook body. Pure and total: never panics.
/// `path_event` is the by-events URL suffix (`messages-upsert`) when present;
/// it names the event only when the body does not.
pub fn parse_inbound(kind: ProviderKind, body: &[u8], path_event: Option<&str>) -> Result<Inbound, InboundError> {
    match kind {
        ProviderKind::Evolution => evolution::parse_inbound(body, path_event),
        ProviderKind::Wapi => wapi::parse_inbound(body, path_event),
    }
}

/// One client per configured provider.
#[derive(Debug)]
pub enum ProviderClient {
    Evolution(evolution::EvolutionClient),
    Wapi(wapi::WapiClient),
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
        })
    }

    pub fn kind(&self) -> ProviderKind {
        match self {
            ProviderClient::Evolution(_) => ProviderKind::Evolution,
            ProviderClient::Wapi(_) => ProviderKind::Wapi,
        }
    }
}

impl Provider for ProviderClient {
    async fn status(&self, inst: &InstanceRef) -> Result<StatusReport, ProviderError> {
        match self {
            ProviderClient::Evolution(c) => c.status(inst).await,
            ProviderClient::Wapi(c) => c.status(inst).await,
        }
    }

    async fn list_instances(&self) -> Result<Vec<Discovered>, ProviderError> {
        match self {
            ProviderClient::Evolution(c) => c.list_instances().await,
            ProviderClient::Wapi(c) => c.list_instances().await,
        }
    }

    async fn recover(&self, inst: &InstanceRef, kind: RecoveryKind) -> Result<String, ProviderError> {
        match self {
            ProviderClient::Evolution(c) => c.recover(inst, kind).await,
            ProviderClient::Wapi(c) => c.recover(inst, kind).await,
        }
    }

    async fn webhook(&self, inst: &InstanceRef) -> Result<Option<WebhookSettings>, ProviderError> {
        match self {
            ProviderClient::Evolution(c) => c.webhook(inst).await,
            ProviderClient::Wapi(c) => c.webhook(inst).await,
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
        }
    }
}

/// What a provider offers the supervisor, whatever its API (PROVIDERS.md):
/// implemented by each client ([`evolution::EvolutionClient`],
/// [`wapi::WapiClient`]) and by [`ProviderClient`], which dispatches to the
/// configured one without boxing. Nothing here assumes Evolution: WAHA or
/// Z-API would be one more implementation.
pub trait Provider {
    /// Per-instance liveness call. A missing instance and an instance that is
    /// not loaded come back as `Ok` with `NotFound` / `NotLoaded`; `Err` is
    /// always a provider problem (`provider_kind()` is `Some`).
    fn status(&self, inst: &InstanceRef) -> impl Future<Output = Result<StatusReport, ProviderError>> + Send;

    /// Discovery: every instance the provider lists.
    fn list_instances(&self) -> impl Future<Output = Result<Vec<Discovered>, ProviderError>> + Send;

    /// The situation-specific recovery call (PROVIDERS.md, "Recovery actions").
    /// Returns a short description of what was called and what came back.
    fn recover(
        &self,
        inst: &InstanceRef,
        kind: RecoveryKind,
    ) -> impl Future<Output = Result<String, ProviderError>> + Send;

    /// The instance's webhook config, `None` when none is configured.
    fn webhook(
        &self,
        inst: &InstanceRef,
    ) -> impl Future<Output = Result<Option<WebhookSettings>, ProviderError>> + Send;

    /// Read-only audit: why the instance's webhook config differs from the
    /// desired one (empty: it matches). Used while the instance is in
    /// maintenance, when nothing may be written (SPEC §5 rule 16).
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
        assert_eq!(k(ErrorClass::Unauthorized), Some(ProviderErrorKind::Unauthorized));
        assert_eq!(k(ErrorClass::BadResponse), Some(ProviderErrorKind::BadResponse));
        assert_eq!(k(ErrorClass::Unlicensed), Some(ProviderErrorKind::Unlicensed));
        assert_eq!(k(ErrorClass::InstanceNotFound), None);
        assert_eq!(k(ErrorClass::NotLoaded), None);
        let e = ProviderError::new(ErrorClass::Unauthorized, "401 Unauthorized");
        assert_eq!(e.to_string(), "unauthorized: 401 Unauthorized");
    }
}
