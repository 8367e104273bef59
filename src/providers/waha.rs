//! WAHA client (devlikeapro/waha, self-hosted) and the parser for WAHA
//! webhooks (`wapi-waha-zapi.md` §2).
//!
//! Every call carries the server's `X-Api-Key` when one is configured (a WAHA
//! without a key answers without one). Sessions are addressed by name:
//! `GET /api/sessions/{s}` gives `status` ([`status_of`]) and the session's
//! whole `config`, webhooks included.
//!
//! Recovery: a `Reconnect` reads the status first, then `POST …/start` a
//! `STOPPED` session (restart would not start it) or `POST …/restart` a
//! `FAILED` one; a session in any other state is left alone (a `STARTING`
//! session is on its way; `SCAN_QR_CODE` needs a person). A `Restart` (the
//! open-but-silent zombie) is `POST …/restart`.
//!
//! Webhook audit: the desired entry is our URL with the desired events in
//! WAHA's names ([`waha_events`]) plus `hmac.key` when `webhook_hmac_key` is
//! configured. **`PUT /api/sessions/{s}` restarts a running session**, so it
//! is sent only on a real difference ([`plan_webhooks`]: event order, `null`s
//! and extra events do not count), with every other config field and every
//! other webhook as read, and the result is read back. Its body is
//! `{"config": …}` and nothing else (WAHA's strict mode refuses other
//! properties). Webhooks set through
//! WAHA's environment (`WHATSAPP_HOOK_URL`) are invisible to the API.
//!
//! Inbound: `{event, session, payload, id?, timestamp?, me?, …}`; the 2024
//! core sends no `id`/`timestamp`. `session.status` carries `payload.status`
//! (the only field read); `message`, `message.any`, `message.ack`,
//! `message.reaction` (any `message.*`) prove life. Signatures
//! (`X-Webhook-Hmac`) are checked by the receiver with [`verify_hmac`].

use std::time::Duration;

use hmac::{KeyInit, Mac};
use serde_json::{Map, Value, json};

use super::http::{Http, Reply};
use super::{
    Discovered, ErrorClass, Inbound, InboundError, InstanceRef, Provider, ProviderError, RAW_LIMIT, Recovered,
    StatusReport, WebhookRepair, WebhookSettings, redact_url, truncate,
};
use crate::config::{DesiredWebhook, ProviderConfig, Secret};
use crate::domain::{ProviderStatus, RecoveryKind, Ts, WebhookSignal};

/// WAHA's session statuses → the normalised status. Anything unknown
/// (`PASSKEY_REQUIRED`, newer ones) needs a person.
pub fn status_of(status: &str) -> ProviderStatus {
    match status {
        "WORKING" => ProviderStatus::Connected,
        "STARTING" => ProviderStatus::Starting,
        "SCAN_QR_CODE" => ProviderStatus::Connecting { qr_pending: true },
        // Recovered by a Reconnect, which this client sends as `start`.
        "STOPPED" => ProviderStatus::NotLoaded,
        // NOWEB: logged out, or a drop the engine did not recover; one restart tells.
        "FAILED" => ProviderStatus::Disconnected { reason: None },
        _ => ProviderStatus::NeedsHuman,
    }
}

/// Desired (Evolution style) event names → WAHA event names, in a fixed
/// order: `CONNECTION_UPDATE`/`QRCODE_UPDATED` → `session.status`,
/// `MESSAGES_UPSERT` → `message`, `SEND_MESSAGE` → `message.any`,
/// `MESSAGES_UPDATE` → `message.ack`; WAHA's own names in upper snake case
/// (`MESSAGE_REACTION` → `message.reaction`) pass through. Nothing mapped →
/// `session.status` and `message`.
pub fn waha_events(desired: &DesiredWebhook) -> Vec<&'static str> {
    const ORDER: [&str; 5] = ["session.status", "message", "message.any", "message.ack", "message.reaction"];
    let mut want: Vec<&'static str> = Vec::new();
    for e in &desired.events {
        let mapped = match e.trim().replace(['.', '-'], "_").to_uppercase().as_str() {
            "CONNECTION_UPDATE" | "QRCODE_UPDATED" | "SESSION_STATUS" => "session.status",
            "MESSAGES_UPSERT" | "MESSAGE" => "message",
            "SEND_MESSAGE" | "MESSAGE_ANY" => "message.any",
            "MESSAGES_UPDATE" | "MESSAGE_ACK" => "message.ack",
            "MESSAGE_REACTION" => "message.reaction",
            _ => continue,
        };
        want.push(mapped);
    }
    if want.is_empty() {
        want = vec!["session.status", "message"];
    }
    ORDER.into_iter().filter(|e| want.contains(e)).collect()
}

/// What [`plan_webhooks`] decided: the new `config.webhooks` and why.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookPlan {
    pub webhooks: Vec<Value>,
    pub reasons: Vec<String>,
}

fn url_of(h: &Value) -> &str {
    h.get("url").and_then(Value::as_str).unwrap_or("")
}

fn events_of(h: &Value) -> Vec<&str> {
    h.get("events").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

fn hmac_key_of(h: &Value) -> Option<&str> {
    h.get("hmac").and_then(|m| m.get("key")).and_then(Value::as_str).filter(|k| !k.is_empty())
}

/// The prefix our receiver URLs share for this provider (everything up to the
/// token): an entry under it with another token is ours, left by an old token.
fn receiver_prefix(desired_url: &str) -> Option<&str> {
    desired_url.rfind('/').map(|i| &desired_url[..=i]).filter(|p| p.contains("/webhooks/"))
}

/// Compare the session's webhooks with the desired entry; `None` when nothing
/// needs a write. Only a real difference counts: our URL absent, a desired
/// event missing (`*` covers all; order and extra events do not matter), or
/// the configured HMAC key not set. The write keeps every other entry and
/// every other field of ours (retries, customHeaders) as read.
pub fn plan_webhooks(
    hooks: &[Value],
    desired_url: &str,
    events: &[&str],
    hmac_key: Option<&str>,
) -> Option<WebhookPlan> {
    let mut reasons = Vec::new();
    let exact = hooks.iter().position(|h| url_of(h) == desired_url);
    let stale = || {
        let prefix = receiver_prefix(desired_url)?;
        hooks.iter().position(|h| url_of(h).starts_with(prefix))
    };
    let (index, mut entry) = match exact.or_else(stale) {
        Some(i) => (Some(i), hooks[i].clone()),
        None => {
            reasons.push(format!("no webhook to {}", redact_url(desired_url)));
            (None, json!({"url": desired_url, "events": []}))
        }
    };
    if index.is_some() && exact.is_none() {
        reasons.push(format!("our receiver is configured with another token ({})", redact_url(url_of(&entry))));
    }
    let have = events_of(&entry);
    if !have.contains(&"*") {
        let missing: Vec<&str> = events.iter().copied().filter(|e| !have.contains(e)).collect();
        if !missing.is_empty() && index.is_some() {
            reasons.push(format!("missing events {}", missing.join(",")));
        }
        let union: Vec<Value> = have.iter().chain(missing.iter()).map(|e| json!(e)).collect();
        entry["events"] = Value::Array(union);
    }
    if let Some(key) = hmac_key {
        match hmac_key_of(&entry) {
            Some(k) if k == key => {}
            Some(_) => reasons.push("hmac key differs from webhook_hmac_key".into()),
            None if index.is_some() => reasons.push("no hmac key (webhook_hmac_key is configured)".into()),
            None => {}
        }
        entry["hmac"] = json!({"key": key});
    }
    if reasons.is_empty() {
        return None;
    }
    entry["url"] = json!(desired_url);
    let mut webhooks = hooks.to_vec();
    match index {
        Some(i) => webhooks[i] = entry,
        None => webhooks.push(entry),
    }
    Some(WebhookPlan { webhooks, reasons })
}

/// `X-Webhook-Hmac`: the hex HMAC-SHA512 of the raw body with the key.
/// Constant-time; a header that is not hex never verifies.
pub fn verify_hmac(key: &Secret, body: &[u8], header: &str) -> bool {
    let Some(tag) = decode_hex(header.trim()) else { return false };
    let mut mac = hmac::Hmac::<sha2::Sha512>::new_from_slice(key.expose().as_bytes()).expect("any key length");
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    s.as_bytes().chunks(2).map(|p| Some(digit(p[0])? * 16 + digit(p[1])?)).collect()
}

/// WAHA client (see the module docs).
#[derive(Debug)]
pub struct WahaClient {
    pub(super) http: Http,
    api_key: Option<Secret>,
    hmac_key: Option<Secret>,
}

impl WahaClient {
    pub fn new(cfg: &ProviderConfig, request_timeout: Duration) -> Result<Self, ProviderError> {
        Ok(WahaClient {
            http: Http::new(&cfg.base_url, request_timeout)?,
            api_key: cfg.api_key.clone(),
            hmac_key: cfg.webhook_hmac_key.clone(),
        })
    }

    pub(super) fn req(&self, method: reqwest::Method, segs: &[&str]) -> reqwest::RequestBuilder {
        let rb = self.http.client().request(method, self.http.url(segs));
        // A sensitive header value is redacted by reqwest's and http's Debug.
        match self.api_key.as_ref().and_then(|k| reqwest::header::HeaderValue::from_str(k.expose()).ok()) {
            Some(mut v) => {
                v.set_sensitive(true);
                rb.header("x-api-key", v)
            }
            None => rb,
        }
    }

    /// `GET /api/server/version` → `version` (`None` when it does not say).
    pub async fn server_version(&self) -> Option<String> {
        let rb = self.req(reqwest::Method::GET, &["api", "server", "version"]);
        let r = self.http.send(rb, "GET /api/server/version").await.ok()?;
        r.json.get("version").and_then(Value::as_str).map(|v| truncate(v.trim(), 64)).filter(|v| !v.is_empty())
    }

    /// `GET /api/sessions/{s}`: the whole SessionInfo.
    pub(super) async fn session(&self, name: &str) -> Result<Reply, ProviderError> {
        self.http
            .send(self.req(reqwest::Method::GET, &["api", "sessions", name]), &format!("GET /api/sessions/{name}"))
            .await
    }

    async fn action(&self, name: &str, action: &str) -> Result<String, ProviderError> {
        let what = format!("POST /api/sessions/{name}/{action}");
        let r = self.http.send(self.req(reqwest::Method::POST, &["api", "sessions", name, action]), &what).await?;
        let status = r.json.get("status").and_then(Value::as_str).map(|s| format!(" status={}", truncate(s, 40)));
        Ok(format!("{what} -> {}{}", r.status, status.unwrap_or_default()))
    }
}

fn status_text(session: &Value) -> Option<&str> {
    session.get("status").and_then(Value::as_str)
}

fn webhooks_of(session: &Value) -> Vec<Value> {
    session.get("config").and_then(|c| c.get("webhooks")).and_then(Value::as_array).cloned().unwrap_or_default()
}

impl Provider for WahaClient {
    async fn status(&self, inst: &InstanceRef) -> Result<StatusReport, ProviderError> {
        let r = match self.session(&inst.name).await {
            Ok(r) => r,
            Err(e) => return StatusReport::from_error(e),
        };
        let status = status_text(&r.json).ok_or_else(|| {
            ProviderError::new(ErrorClass::BadResponse, format!("GET /api/sessions/{}: no `status` string", inst.name))
        })?;
        // Only the status: the config holds the HMAC key in clear.
        Ok(StatusReport { status: status_of(status), raw: truncate(&format!("status={status}"), RAW_LIMIT) })
    }

    /// `GET /api/sessions?all=true`: STOPPED sessions included.
    async fn list_instances(&self) -> Result<Vec<Discovered>, ProviderError> {
        let rb = self.req(reqwest::Method::GET, &["api", "sessions"]).query(&[("all", "true")]);
        let r = self.http.send(rb, "GET /api/sessions?all=true").await?;
        let list = r.json.as_array().ok_or_else(|| {
            ProviderError::new(ErrorClass::BadResponse, "GET /api/sessions?all=true: not a JSON array")
        })?;
        Ok(list
            .iter()
            .filter_map(|s| s.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()))
            .map(|name| Discovered { name: name.to_string(), token: None, provider_id: None })
            .collect())
    }

    async fn recover(&self, inst: &InstanceRef, kind: RecoveryKind) -> Result<Recovered, ProviderError> {
        if kind == RecoveryKind::Restart {
            return self.action(&inst.name, "restart").await.map(Recovered::Sent);
        }
        let r = self.session(&inst.name).await?;
        match status_text(&r.json).unwrap_or("") {
            "STOPPED" => self.action(&inst.name, "start").await.map(Recovered::Sent),
            "FAILED" => self.action(&inst.name, "restart").await.map(Recovered::Sent),
            other => Ok(Recovered::Skipped(format!("session is {}: nothing sent", truncate(other, 40)))),
        }
    }

    /// The entry pointing at our receiver if any, else the first entry.
    async fn webhook(&self, inst: &InstanceRef) -> Result<Option<WebhookSettings>, ProviderError> {
        let hooks = webhooks_of(&self.session(&inst.name).await?.json);
        let pick = hooks.iter().find(|h| url_of(h).contains("/webhooks/")).or(hooks.first());
        Ok(pick.map(|h| WebhookSettings {
            enabled: true,
            url: Some(url_of(h).to_string()).filter(|u| !u.is_empty()),
            events: events_of(h).into_iter().map(str::to_string).collect(),
            by_events: false,
            base64: false,
        }))
    }

    async fn check_webhook(
        &self,
        inst: &InstanceRef,
        desired_url: &str,
        desired: &DesiredWebhook,
    ) -> Result<Vec<String>, ProviderError> {
        let hooks = webhooks_of(&self.session(&inst.name).await?.json);
        let key = self.hmac_key.as_ref().map(Secret::expose);
        Ok(plan_webhooks(&hooks, desired_url, &waha_events(desired), key).map(|p| p.reasons).unwrap_or_default())
    }

    async fn apply_webhook(
        &self,
        inst: &InstanceRef,
        desired_url: &str,
        desired: &DesiredWebhook,
    ) -> Result<WebhookRepair, ProviderError> {
        let events = waha_events(desired);
        let key = self.hmac_key.as_ref().map(Secret::expose);
        let session = self.session(&inst.name).await?.json;
        let Some(plan) = plan_webhooks(&webhooks_of(&session), desired_url, &events, key) else {
            return Ok(WebhookRepair::AlreadyOk);
        };
        // The full config as read (metadata, proxy, engine settings…), only
        // `webhooks` replaced: a PUT replaces the whole config.
        let mut config: Map<String, Value> =
            session.get("config").and_then(Value::as_object).cloned().unwrap_or_default();
        config.insert("webhooks".into(), Value::Array(plan.webhooks));
        // Only `config`: the route's `SessionUpdateRequest` declares nothing
        // else, and WAHA run with `WAHA_HTTP_STRICT_MODE=true` refuses any
        // other property with 400 (`property name should not exist`).
        let what = format!("PUT /api/sessions/{}", inst.name);
        let rb = self.req(reqwest::Method::PUT, &["api", "sessions", &inst.name]).json(&json!({"config": config}));
        self.http.send(rb, &what).await?;
        let after = self.session(&inst.name).await?.json;
        let mut reasons = plan.reasons;
        match plan_webhooks(&webhooks_of(&after), desired_url, &events, key) {
            None => {
                reasons.push("written with PUT, which restarts the session".into());
                Ok(WebhookRepair::Repaired { reasons })
            }
            Some(left) => Ok(WebhookRepair::Mismatch {
                detail: format!(
                    "after {what}, GET /api/sessions/{} still differs: {}",
                    inst.name,
                    left.reasons.join("; ")
                ),
            }),
        }
    }
}

/// The envelope, borrowed from the body: only what a signal needs is decoded.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    event: Option<Value>,
    #[serde(default)]
    session: Option<Value>,
    #[serde(default)]
    timestamp: Option<Value>,
    #[serde(borrow, default)]
    payload: Option<&'a serde_json::value::RawValue>,
}

#[derive(serde::Deserialize, Default)]
struct StatusPayload {
    #[serde(default)]
    status: Option<Value>,
}

/// Parse a WAHA webhook body (module docs). Pure and total.
pub fn parse_inbound(body: &[u8]) -> Result<Inbound, InboundError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(InboundError::Malformed("not a JSON object".into()));
    }
    let env: Envelope<'_> = serde_json::from_slice(body).map_err(|e| InboundError::Malformed(e.to_string()))?;
    let event = super::required_str(env.event.as_ref(), "event")?;
    let instance = super::required_str(env.session.as_ref(), "session")?;
    let signal = if event == "session.status" {
        let payload =
            env.payload.and_then(|raw| serde_json::from_str::<StatusPayload>(raw.get()).ok()).unwrap_or_default();
        let status =
            payload.status.as_ref().and_then(Value::as_str).ok_or(InboundError::MissingField("payload.status"))?;
        match status {
            "WORKING" => WebhookSignal::Open,
            "STARTING" => WebhookSignal::Starting,
            "SCAN_QR_CODE" => WebhookSignal::Connecting { qr_pending: true },
            // No reason given: counts like a bad poll; the poll decides.
            "FAILED" | "STOPPED" => WebhookSignal::Dropped,
            // Unknown (PASSKEY_*): the next poll maps it to needs-human.
            _ => WebhookSignal::Neutral,
        }
    } else if event == "message" || event.starts_with("message.") {
        WebhookSignal::Alive
    } else {
        WebhookSignal::Neutral
    };
    let at = env.timestamp.as_ref().and_then(Value::as_i64).map(Ts);
    Ok(Inbound { instance, event, signal, raw_len: body.len(), at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_mapping() {
        let mapped = |events: &[&str]| {
            let events = events.iter().map(|s| s.to_string()).collect();
            waha_events(&DesiredWebhook { events, by_events: false, base64: false })
        };
        assert_eq!(
            mapped(&["MESSAGES_UPSERT", "MESSAGES_UPDATE", "CONNECTION_UPDATE", "QRCODE_UPDATED", "SEND_MESSAGE"]),
            vec!["session.status", "message", "message.any", "message.ack"]
        );
        assert_eq!(mapped(&["CALL"]), vec!["session.status", "message"]);
        assert_eq!(mapped(&["MESSAGE_REACTION"]), vec!["message.reaction"]);
    }

    #[test]
    fn plan_writes_only_on_a_real_difference() {
        let url = "https://s.example.com/webhooks/waha/tok";
        let ev = ["session.status", "message"];
        let ok = json!({"url": url, "events": ["message", "session.status", "message.ack"], "hmac": {"key": "k"},
                        "retries": null, "customHeaders": null});
        assert_eq!(
            plan_webhooks(std::slice::from_ref(&ok), url, &ev, Some("k")),
            None,
            "order and extras do not count"
        );
        assert_eq!(plan_webhooks(std::slice::from_ref(&ok), url, &ev, None), None, "a key we do not manage is left");
        let all = json!({"url": url, "events": ["*"]});
        assert_eq!(plan_webhooks(&[all], url, &ev, None), None);
        // Missing event and key: our entry rewritten, its other fields kept.
        let other = json!({"url": "https://crm.example.com/hook", "events": ["message"]});
        let ours = json!({"url": url, "events": ["message"], "hmac": null, "retries": {"attempts": 3}});
        let p = plan_webhooks(&[other.clone(), ours], url, &ev, Some("k")).unwrap();
        assert_eq!(p.webhooks[0], other);
        assert_eq!(p.webhooks[1]["events"], json!(["message", "session.status"]));
        assert_eq!(p.webhooks[1]["hmac"], json!({"key": "k"}));
        assert_eq!(p.webhooks[1]["retries"], json!({"attempts": 3}));
        assert_eq!(p.reasons.len(), 2, "{:?}", p.reasons);
        // None of ours: appended.
        let p = plan_webhooks(std::slice::from_ref(&other), url, &ev, None).unwrap();
        assert_eq!(p.webhooks.len(), 2);
        assert_eq!(p.webhooks[1], json!({"url": url, "events": ["session.status", "message"]}));
        // An old token of ours: replaced in place, not duplicated.
        let old = json!({"url": "https://s.example.com/webhooks/waha/oldtok", "events": ev});
        let p = plan_webhooks(&[old], url, &ev, None).unwrap();
        assert_eq!(p.webhooks, vec![json!({"url": url, "events": ev})]);
        assert!(p.reasons.iter().all(|r| !r.contains("oldtok")), "{:?}", p.reasons);
    }

    #[test]
    fn hmac_hex_decoding() {
        assert_eq!(decode_hex("0aFf"), Some(vec![10, 255]));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
        assert!(!verify_hmac(&Secret::literal("k"), b"x", "not hex"));
    }

    #[test]
    fn statuses() {
        assert_eq!(status_of("WORKING"), ProviderStatus::Connected);
        assert_eq!(status_of("SCAN_QR_CODE"), ProviderStatus::Connecting { qr_pending: true });
        assert_eq!(status_of("STOPPED"), ProviderStatus::NotLoaded);
        assert_eq!(status_of("FAILED"), ProviderStatus::Disconnected { reason: None });
        assert_eq!(status_of("PASSKEY_REQUIRED"), ProviderStatus::NeedsHuman);
    }
}
