//! Evolution API client, v1 (1.7/1.8) and v2 (2.x) in one type, and the
//! webhook config it reads and writes; the parser for Evolution webhook
//! bodies is `evolution/inbound.rs`.
//!
//! Version: `api_version = auto` asks `GET /` (no key) once and caches the
//! major version from its `version` field; an answer without a usable version
//! falls back to v2 (the maintained line) with a single warning. A transport
//! failure is *not* cached: the calling operation fails `Unreachable` and the
//! next call asks again.
//!
//! Status: `GET /instance/connectionState/{i}` carries no reason code. On
//! `close` only, v2 makes one follow-up `GET /instance/fetchInstances?instanceName=`
//! and reads `disconnectionReasonCode`. That column is written on *terminal*
//! closes only and is never cleared, so it is trusted only when the same row's
//! `connectionStatus` is `close` (otherwise it may be a stale code from an
//! earlier logout). v1 exposes no reason anywhere (its fetchInstances returns
//! a single `{instance:{…status}}` object for `?instanceName=`), so v1 `close`
//! is `Disconnected { reason: None }` without a second call. A failed
//! follow-up degrades to `Disconnected { reason: None }`.

mod answers;
mod inbound;

use std::time::Duration;

use serde_json::{Map, Value, json};

use hyper::body::Bytes;

use super::http::{Http, Reply, reply_of, text_of};
use super::lean::{LeanGet, secret_header};
use super::{
    Discovered, ErrorClass, InstanceRef, Provider, ProviderError, RAW_LIMIT, Recovered, StatusReport, WebhookRepair,
    WebhookSettings, redact_url, truncate,
};
use crate::config::{ApiVersion, DesiredWebhook, ProviderConfig, Secret};
use crate::domain::{ProviderStatus, RecoveryKind};

/// Disconnect reasons after which Evolution gives up (creds deleted): 401 in
/// v1 and v2, plus 402/403/406 in v2. v1 never posts a close for 402/403/406,
/// so one set serves both.
pub const TERMINAL_REASONS: [u16; 4] = [401, 402, 403, 406];

use answers::{FetchRow, FetchRows, StateAnswer, fast_state, state_of};
pub use answers::{close_status_from_rows, instance_names, instance_rows};
pub use inbound::parse_inbound;

/// The Evolution major version a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvoVersion {
    V1,
    V2,
}

/// Evolution API client (see the module docs).
#[derive(Debug)]
pub struct EvolutionClient {
    pub(super) http: Http,
    api_key: Option<Secret>,
    configured: ApiVersion,
    /// Detected once per client (per config generation); concurrent first
    /// calls wait for the one probe in flight (single-flight).
    detected: tokio::sync::OnceCell<EvoVersion>,
    /// The status poll on hyper directly, for a plain `http://` server
    /// ([`LeanGet`]); `None`: reqwest. Boxed: the other provider clients
    /// are a fraction of its size.
    lean: Option<Box<LeanGet>>,
}

impl EvolutionClient {
    pub fn new(cfg: &ProviderConfig, request_timeout: Duration) -> Result<Self, ProviderError> {
        let http = Http::new(&cfg.base_url, request_timeout)?;
        let mut headers = hyper::HeaderMap::new();
        if let Some((k, v)) = cfg.api_key.as_ref().and_then(|k| secret_header("apikey", k.expose())) {
            headers.insert(k, v);
        }
        const NAME: &str = "instance-name";
        let lean = LeanGet::for_base(&http.url(&["instance", "connectionState", NAME]), NAME, headers, request_timeout)
            .map(Box::new);
        Ok(EvolutionClient {
            http,
            api_key: cfg.api_key.clone(),
            configured: cfg.api_version,
            detected: tokio::sync::OnceCell::new(),
            lean,
        })
    }

    /// The version in use: the configured one, or the detected (cached) one.
    pub async fn version(&self) -> Result<EvoVersion, ProviderError> {
        match self.configured {
            ApiVersion::V1 => return Ok(EvoVersion::V1),
            ApiVersion::V2 => return Ok(EvoVersion::V2),
            ApiVersion::Auto => {}
        }
        self.detected.get_or_try_init(|| self.probe_version()).await.copied()
    }

    /// `GET /` (no key): its `version` says v1 or v2. Unreachable is an error
    /// (not cached: the next call probes again); anything else falls back to v2.
    async fn probe_version(&self) -> Result<EvoVersion, ProviderError> {
        let (v, why) = match self.http.send(self.http.client().get(self.http.url(&[])), "GET /").await {
            Ok(r) => match r.json.get("version").and_then(Value::as_str).and_then(major_of) {
                Some(1) => (EvoVersion::V1, None),
                Some(_) => (EvoVersion::V2, None),
                None => (EvoVersion::V2, Some("`GET /` gave no usable `version`".to_string())),
            },
            Err(e) if matches!(e.class, ErrorClass::Unreachable | ErrorClass::ServerError) => return Err(e),
            Err(e) => (EvoVersion::V2, Some(format!("`GET /` failed ({e})"))),
        };
        if let Some(why) = why {
            tracing::warn!("Evolution API version detection: {why}; assuming v2 (set api_version to override)");
        }
        Ok(v)
    }

    /// `GET /` (no key) → `version`, asked every cycle: unlike the cached
    /// major version, this notices an upgrade (`None` when it does not say).
    pub async fn server_version(&self) -> Option<String> {
        let r = self.http.send(self.http.client().get(self.http.url(&[])), "GET /").await.ok()?;
        r.json.get("version").and_then(Value::as_str).map(|v| super::truncate(v.trim(), 64)).filter(|v| !v.is_empty())
    }

    pub(super) fn get(&self, segs: &[&str]) -> reqwest::RequestBuilder {
        self.auth(self.http.client().get(self.http.url(segs)))
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        // A sensitive header value is redacted by reqwest's and http's Debug.
        match self.api_key.as_ref().and_then(|k| reqwest::header::HeaderValue::from_str(k.expose()).ok()) {
            Some(mut v) => {
                v.set_sensitive(true);
                rb.header("apikey", v)
            }
            None => rb,
        }
    }
}

impl Provider for EvolutionClient {
    async fn status(&self, inst: &InstanceRef) -> Result<StatusReport, ProviderError> {
        let name = inst.name.as_str();
        let what = || format!("GET /instance/connectionState/{name}");
        let answer = match &self.lean {
            Some(lean) if lean.serves(name) => lean.get(name, what).await.map(|r| (r.status, r.body)),
            _ => self
                .http
                .send_bytes(self.get(&["instance", "connectionState", name]), &what())
                .await
                .map(|(status, body)| (status, Bytes::from(body))),
        };
        let (status, body) = match answer {
            Ok(a) => a,
            Err(e) => return StatusReport::from_error(e),
        };
        // The usual answer, read from its bytes; anything else is classified.
        if (200..300).contains(&status)
            && let Some(st) = fast_state(&body)
        {
            return Ok(StatusReport { status: st, raw: truncate(&String::from_utf8_lossy(&body), RAW_LIMIT) });
        }
        let r = match reply_of(status, text_of(&body), &what()) {
            Ok(r) => r,
            Err(e) => return StatusReport::from_error(e),
        };
        let raw = truncate(&r.body, RAW_LIMIT);
        let status = match state_of(&r.json, &what())? {
            StateAnswer::Status(s) => s,
            // v2's row tells the reason code; both versions' rows tell
            // whether the instance was ever paired (an owner).
            StateAnswer::Closed => self.close_reason(name).await,
        };
        Ok(StatusReport { status, raw })
    }

    async fn list_instances(&self) -> Result<Vec<Discovered>, ProviderError> {
        // Typed: only the name and id of each row are decoded (a v2 row also
        // carries settings, counts and a token), never a `Value` of the whole.
        let what = "GET /instance/fetchInstances";
        let rows: FetchRows = self.http.send_typed(self.get(&["instance", "fetchInstances"]), what).await?;
        let (found, empty) = match rows.0 {
            Some(v) => {
                let empty = v.is_empty();
                (v.into_iter().filter_map(FetchRow::into_pair).collect::<Vec<_>>(), empty)
            }
            None => (rows.1.and_then(FetchRow::into_pair).into_iter().collect(), false),
        };
        if found.is_empty() && !empty {
            return Err(ProviderError::new(
                ErrorClass::BadResponse,
                format!("{what}: no instance names in the answer"),
            ));
        }
        Ok(found.into_iter().map(|(name, provider_id)| Discovered { name, token: None, provider_id }).collect())
    }

    async fn recover(&self, inst: &InstanceRef, kind: RecoveryKind) -> Result<Recovered, ProviderError> {
        let v = self.version().await?;
        let name = inst.name.as_str();
        let (what, rb) = match (kind, v) {
            // Both versions: connect starts a socket from the stored creds;
            // restart does nothing on a closed session (v2 answers
            // `[object Object]`, v1 returns the state).
            (RecoveryKind::Reconnect, _) => {
                (format!("GET /instance/connect/{name}"), self.get(&["instance", "connect", name]))
            }
            (RecoveryKind::Restart, EvoVersion::V2) => (
                format!("POST /instance/restart/{name}"),
                self.auth(self.http.client().post(self.http.url(&["instance", "restart", name]))),
            ),
            (RecoveryKind::Restart, EvoVersion::V1) => (
                format!("PUT /instance/restart/{name}"),
                self.auth(self.http.client().put(self.http.url(&["instance", "restart", name]))),
            ),
        };
        let r = self.http.send(rb, &what).await?;
        Ok(Recovered::Sent(format!("{what} -> {} {}", r.status, summarise_action(&r.json))))
    }

    async fn webhook(&self, inst: &InstanceRef) -> Result<Option<WebhookSettings>, ProviderError> {
        Ok(self.read_webhook(inst).await?.0)
    }

    async fn check_webhook(
        &self,
        inst: &InstanceRef,
        desired_url: &str,
        desired: &DesiredWebhook,
    ) -> Result<Vec<String>, ProviderError> {
        Ok(webhook_diff(self.read_webhook(inst).await?.0.as_ref(), desired_url, desired))
    }

    async fn apply_webhook(
        &self,
        inst: &InstanceRef,
        desired_url: &str,
        desired: &DesiredWebhook,
    ) -> Result<WebhookRepair, ProviderError> {
        let v = self.version().await?;
        let (current, headers) = self.read_webhook(inst).await?;
        let reasons = webhook_diff(current.as_ref(), desired_url, desired);
        if reasons.is_empty() {
            return Ok(WebhookRepair::AlreadyOk);
        }
        let events = merged_events(current.as_ref(), desired);
        let body = match v {
            // Always send `events` (omitting it → 500) and `headers` (omitted
            // fields keep stale values); keep the operator's headers.
            EvoVersion::V2 => json!({"webhook": {
                "enabled": true,
                "url": desired_url,
                "headers": Value::Object(headers),
                "byEvents": desired.by_events,
                "base64": desired.base64,
                "events": events,
            }}),
            EvoVersion::V1 => json!({
                "url": desired_url,
                "enabled": true,
                "webhook_by_events": desired.by_events,
                "webhook_base64": desired.base64,
                "events": events,
            }),
        };
        let what = format!("POST /webhook/set/{}", inst.name);
        let rb = self.auth(self.http.client().post(self.http.url(&["webhook", "set", &inst.name]))).json(&body);
        self.http.send(rb, &what).await?;
        // v1 saves without awaiting: give a lagging read-back one more chance.
        let mut left = webhook_diff(self.read_webhook(inst).await?.0.as_ref(), desired_url, desired);
        if !left.is_empty() {
            tokio::time::sleep(Duration::from_millis(300)).await;
            left = webhook_diff(self.read_webhook(inst).await?.0.as_ref(), desired_url, desired);
        }
        if left.is_empty() {
            Ok(WebhookRepair::Repaired { reasons })
        } else {
            Ok(WebhookRepair::Mismatch {
                detail: format!("after {what}, GET /webhook/find still differs: {}", left.join("; ")),
            })
        }
    }
}

impl EvolutionClient {
    /// v2 only: the reason of a `close`, from fetchInstances (module docs).
    async fn close_reason(&self, name: &str) -> ProviderStatus {
        let rb = self.get(&["instance", "fetchInstances"]).query(&[("instanceName", name)]);
        let what = format!("GET /instance/fetchInstances?instanceName={name}");
        match self.http.send(rb, &what).await {
            Ok(r) => close_status_from_rows(&r.json, name),
            Err(e) => {
                tracing::debug!(instance = name, error = %e, "close reason lookup failed");
                ProviderStatus::Disconnected { reason: None }
            }
        }
    }

    /// Raw read: settings plus the v2 `headers` object (kept on rewrite).
    async fn read_webhook(
        &self,
        inst: &InstanceRef,
    ) -> Result<(Option<WebhookSettings>, Map<String, Value>), ProviderError> {
        let what = format!("GET /webhook/find/{}", inst.name);
        let r: Reply = self.http.send(self.get(&["webhook", "find", &inst.name]), &what).await?;
        let headers = r.json.get("headers").and_then(Value::as_object).cloned().unwrap_or_default();
        Ok((webhook_from_json(&r.json), headers))
    }
}

fn major_of(version: &str) -> Option<u32> {
    version.trim().trim_start_matches('v').split('.').next()?.parse().ok()
}

/// One line about what a connect/restart answer says (never the QR itself).
fn summarise_action(j: &Value) -> String {
    if let Some(s) = j.get("instance").and_then(|i| i.get("state")).and_then(Value::as_str) {
        return format!("state={s}");
    }
    if j.get("pairingCode").and_then(Value::as_str).is_some() {
        return "pairing code issued".into();
    }
    if j.get("base64").and_then(Value::as_str).is_some() || j.get("code").and_then(Value::as_str).is_some() {
        return "QR code issued (session needs a scan)".into();
    }
    if let Some(c) = j.get("count").and_then(Value::as_u64) {
        return format!("count={c} (socket starting, no QR yet)");
    }
    "ok".into()
}

/// `GET /webhook/find` (either version) → normalised settings; `None` when
/// nothing is configured (v2 `null`, v1 the disabled default with `url: ""`).
pub fn webhook_from_json(j: &Value) -> Option<WebhookSettings> {
    let obj = j.as_object()?;
    let url = obj.get("url").and_then(Value::as_str).filter(|u| !u.is_empty()).map(str::to_string);
    let enabled = obj.get("enabled").and_then(Value::as_bool).unwrap_or(false);
    if !enabled && url.is_none() {
        return None;
    }
    let flag = |keys: &[&str]| keys.iter().find_map(|k| obj.get(*k).and_then(Value::as_bool)).unwrap_or(false);
    let events = obj
        .get("events")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    Some(WebhookSettings {
        enabled,
        url,
        events,
        by_events: flag(&["webhookByEvents", "webhook_by_events", "byEvents"]),
        base64: flag(&["webhookBase64", "webhook_base64", "base64"]),
    })
}

/// `messages.upsert`, `messages-upsert`, `MESSAGES_UPSERT` → `MESSAGES_UPSERT`.
pub fn canonical_event(e: &str) -> String {
    e.trim().replace(['.', '-'], "_").to_uppercase()
}

/// The events whose webhooks say something about the session, in canonical
/// form; the hot path compares against these without allocating.
const SIGNAL_EVENTS: &[&str] = &[
    "CONNECTION_UPDATE",
    "QRCODE_UPDATED",
    "LOGOUT_INSTANCE",
    "STATUS_INSTANCE",
    "REMOVE_INSTANCE",
    "INSTANCE_DELETE",
    "INSTANCE_CREATE",
    "APPLICATION_STARTUP",
    "ERROR",
];

/// `canonical_event(e)` if it is one of [`SIGNAL_EVENTS`], else `""` (any
/// other event, which proves the session alive).
pub(crate) fn canonical_kind(e: &str) -> &'static str {
    let e = e.trim().as_bytes();
    let same = |c: &str| {
        c.len() == e.len()
            && c.bytes().zip(e).all(|(c, b)| {
                let b = if matches!(b, b'.' | b'-') { b'_' } else { b.to_ascii_uppercase() };
                c == b
            })
    };
    SIGNAL_EVENTS.iter().copied().find(|c| same(c)).unwrap_or("")
}

/// Why the current config needs a write; empty = fine. URLs are redacted.
/// `events: []` (enabled) means all events, which covers any desired set.
pub fn webhook_diff(current: Option<&WebhookSettings>, desired_url: &str, desired: &DesiredWebhook) -> Vec<String> {
    let Some(c) = current else {
        return vec!["no webhook configured".into()];
    };
    let mut reasons = Vec::new();
    if !c.enabled {
        reasons.push("webhook disabled".into());
    }
    if c.url.as_deref() != Some(desired_url) {
        reasons.push(match &c.url {
            Some(u) => format!("points at another URL ({})", redact_url(u)),
            None => "no URL set".into(),
        });
    }
    if !c.events.is_empty() {
        let have: Vec<String> = c.events.iter().map(|e| canonical_event(e)).collect();
        let missing: Vec<String> =
            desired.events.iter().map(|e| canonical_event(e)).filter(|e| !have.contains(e)).collect();
        if !missing.is_empty() {
            reasons.push(format!("missing events {}", missing.join(",")));
        }
    } else if !c.enabled {
        // Disabled configs store `events: []`; that is not "all".
        reasons.push("no events subscribed".into());
    }
    if c.by_events != desired.by_events {
        reasons.push(format!("byEvents is {}, want {}", c.by_events, desired.by_events));
    }
    reasons
}

/// Events to write: the operator's (when enabled) ∪ desired, in a stable
/// order; `[]` stays `[]` (all events) when the enabled config had it.
pub fn merged_events(current: Option<&WebhookSettings>, desired: &DesiredWebhook) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(c) = current.filter(|c| c.enabled) {
        if c.events.is_empty() {
            return Vec::new();
        }
        out.extend(c.events.iter().map(|e| canonical_event(e)));
    }
    for e in &desired.events {
        let e = canonical_event(e);
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

pub(crate) fn as_u16(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// The hot path's allocation-free event match agrees with
        /// `canonical_event` on any spelling (dots, dashes, case, padding).
        #[test]
        fn canonical_kind_agrees_with_canonical_event(
            e in prop_oneof![
                "[a-zA-Z._ -]{0,24}",
                proptest::sample::select(super::SIGNAL_EVENTS.to_vec()).prop_map(|s| s.to_lowercase().replace('_', ".")),
                proptest::sample::select(super::SIGNAL_EVENTS.to_vec()).prop_map(|s| format!(" {}-", s.replace('_', "-"))),
            ]
        ) {
            let canon = super::canonical_event(&e);
            let expect = if super::SIGNAL_EVENTS.contains(&canon.as_str()) { canon.as_str() } else { "" };
            prop_assert_eq!(super::canonical_kind(&e), expect);
        }
    }

    /// Pieces of `connectionState` answers: the usual ones, their near
    /// misses (other fields, other states, escapes, arrays, duplicates).
    fn answer_body() -> impl Strategy<Value = String> {
        let ws = proptest::sample::select(vec!["", " ", "\n", "\t", "\r\n  "]);
        let value = proptest::sample::select(vec![
            r#""open""#,
            r#""connecting""#,
            r#""close""#,
            r#""refused""#,
            r#""op\u0065n""#,
            r#""OPEN""#,
            "null",
            "1",
            "1e400",
            "true",
            r#"["open"]"#,
            "{}",
            r#""sales-bot""#,
        ]);
        let key = proptest::sample::select(vec!["state", "instanceName", "status", "st\\u0061te", "error"]);
        let entry = (ws.clone(), key, ws.clone(), value.clone()).prop_map(|(a, k, b, v)| format!(r#"{a}"{k}":{b}{v}"#));
        let inner = proptest::collection::vec(entry, 0..4).prop_map(|e| format!("{{{}}}", e.join(",")));
        let top_key =
            proptest::sample::select(vec!["instance", "instance", "instance", "error", "message", "\\u0069nstance"]);
        let top_value = prop_oneof![3 => inner.clone(), 1 => value.prop_map(str::to_string), 1 => inner.prop_map(|i| format!("[{i}]"))];
        let top_entry = (ws.clone(), top_key, top_value).prop_map(|(a, k, v)| format!(r#"{a}"{k}":{v}"#));
        prop_oneof![
            8 => (proptest::collection::vec(top_entry, 0..3), ws.clone(), ws).prop_map(|(e, a, b)| format!("{a}{{{}}}{b}", e.join(","))),
            1 => "\\PC{0,60}",
        ]
    }

    proptest! {
        /// The poll's read of a `connectionState` answer from its bytes says
        /// what the classified read says, on every body it takes.
        #[test]
        fn the_fast_state_read_agrees_with_the_classified_read(body in answer_body()) {
            if let Some(st) = super::fast_state(body.as_bytes()) {
                let json = crate::providers::http::classify(200, &body);
                prop_assert!(json.is_ok(), "{body}: {json:?}");
                let read = super::state_of(&json.unwrap(), "GET /x");
                prop_assert_eq!(read, Ok(super::StateAnswer::Status(st)), "{}", body);
            }
        }
    }

    #[test]
    fn the_fast_state_read_takes_the_usual_answers() {
        let read = |b: &str| super::fast_state(b.as_bytes());
        assert_eq!(read(r#"{"instance":{"instanceName":"a","state":"open"}}"#), Some(ProviderStatus::Connected));
        assert_eq!(
            read(r#" {"instance": {"state": "connecting", "instanceName": "a"}} "#),
            Some(ProviderStatus::Connecting { qr_pending: false })
        );
        assert_eq!(read(r#"{"instance":{"instanceName":"a","state":null}}"#), Some(ProviderStatus::NotLoaded));
        for other in [
            r#"{"instance":{"instanceName":"a","state":"close"}}"#,
            r#"{"instance":{"state":"open"},"error":true}"#,
            r#"{"instance":{"state":"open","state":"close"}}"#,
            r#"[{"state":"open"}]"#,
            r#"{"instance":["a","open"]}"#,
        ] {
            assert_eq!(read(other), None, "{other}");
        }
    }

    #[test]
    fn non_string_event_or_instance_is_a_missing_field_and_bad_utf8_is_malformed() {
        use crate::providers::InboundError;
        let r = super::parse_inbound(br#"{"event":{"a":[1,2]},"instance":"x"}"#, None);
        assert!(matches!(r, Err(InboundError::MissingField("event"))), "{r:?}");
        let r = super::parse_inbound(br#"{"event":"messages.upsert","instance":42}"#, None);
        assert!(matches!(r, Err(InboundError::MissingField("instance"))), "{r:?}");
        let r = super::parse_inbound(b"{\"event\":\"messages.upsert\",\"instance\":\"x\xff\"}", None);
        assert!(matches!(r, Err(InboundError::Malformed(_))), "{r:?}");
        let r = super::parse_inbound(br#"{"event":"messages\u002eupsert","instance":"caf\u00e9"}"#, None).unwrap();
        assert_eq!((r.event.as_str(), r.instance.as_str()), ("messages.upsert", "café"));
    }
    use super::*;

    fn desired(events: &[&str]) -> DesiredWebhook {
        DesiredWebhook { events: events.iter().map(|s| s.to_string()).collect(), by_events: false, base64: false }
    }

    #[test]
    fn diff_and_merge_keep_operator_events() {
        let cur = WebhookSettings {
            enabled: true,
            url: Some("https://x/h".into()),
            events: vec!["CALL".into(), "CONNECTION_UPDATE".into()],
            by_events: false,
            base64: false,
        };
        let d = desired(&["CONNECTION_UPDATE", "MESSAGES_UPSERT"]);
        assert_eq!(webhook_diff(Some(&cur), "https://x/h", &d), vec!["missing events MESSAGES_UPSERT".to_string()]);
        assert_eq!(merged_events(Some(&cur), &d), vec!["CALL", "CONNECTION_UPDATE", "MESSAGES_UPSERT"]);
        let all = WebhookSettings { events: vec![], ..cur.clone() };
        assert!(webhook_diff(Some(&all), "https://x/h", &d).is_empty());
        assert!(merged_events(Some(&all), &d).is_empty());
        assert_eq!(webhook_diff(None, "u", &d), vec!["no webhook configured".to_string()]);
    }

    #[test]
    fn close_rows_trust_code_only_when_db_says_close() {
        let j: Value =
            serde_json::json!([{"name":"a","ownerJid":"55@s","connectionStatus":"open","disconnectionReasonCode":401}]);
        assert_eq!(close_status_from_rows(&j, "a"), ProviderStatus::Disconnected { reason: None });
        let j: Value = serde_json::json!([{"name":"a","connectionStatus":"close","disconnectionReasonCode":403}]);
        assert_eq!(close_status_from_rows(&j, "a"), ProviderStatus::LoggedOut { reason: Some(403) });
        assert_eq!(close_status_from_rows(&j, "b"), ProviderStatus::Disconnected { reason: None });
    }

    #[test]
    fn debug_never_shows_the_key() {
        let cfg = ProviderConfig {
            name: "p".into(),
            kind: crate::config::ProviderKind::Evolution,
            base_url: "http://127.0.0.1:1".into(),
            api_version: ApiVersion::Auto,
            api_key: Some(Secret::literal("super-secret-key")),
            webhook_token: Secret::literal("hook-secret"),
            discover: false,
            default_tenant: "t".into(),
            webhook_body_key: "value".into(),
            webhook_bearer: None,
            webhook_jwt_key: None,
            webhook_hmac_key: None,
            client_token: None,
            health: Default::default(),
            tenant_pattern: None,
        };
        let c = EvolutionClient::new(&cfg, Duration::from_secs(1)).unwrap();
        let shown = format!("{c:?} {:?}", c.get(&["instance", "x"]));
        assert!(!shown.contains("super-secret-key"), "{shown}");
    }

    #[test]
    fn version_major() {
        assert_eq!(major_of("2.3.6"), Some(2));
        assert_eq!(major_of("1.8.2"), Some(1));
        assert_eq!(major_of("v2.4.0-rc2"), Some(2));
        assert_eq!(major_of("x"), None);
    }
}
