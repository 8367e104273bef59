//! W-API client (`https://api.w-api.app/v1`) and the parser for W-API webhooks.
//!
//! Every instance call carries `Authorization: Bearer <instance token>` and
//! `?instanceId=`. The token is `InstanceRef::token`; when an instance has
//! none the provider's `api_key` is tried instead.
//!
//! Status: `GET /instance/status-instance` gives one boolean. `connected:false`
//! alone cannot tell a logged-out session from an unhealthy one, so a `false`
//! is followed by `GET /instance/qr-code?image=disable`: a QR in the answer
//! means the session needs a scan → `LoggedOut { reason: None }`; anything
//! else (no QR, `error:true`, a 5xx, which one client reads as "instance needs
//! a restart") → `Disconnected { reason: None }`, which the state machine
//! may recover with a restart.
//!
//! Webhooks: six URL slots, one per event kind ([`SLOTS`]), set with
//! `PUT /webhook/update-webhook-<kind>` body `{"<webhook_body_key>": url}` and
//! read back from `GET /instance/fetch-instance` (`webhook*Url`, `""` = unset).
//! Which slots the sentinel manages, and the repair itself, are shared with
//! Z-API ([`super::slots`]).

use std::time::Duration;

use serde_json::{Value, json};

use super::http::Http;
use super::slots::{self, SlotApi, Unmatched};
use super::{
    Discovered, ErrorClass, Inbound, InboundError, InstanceRef, Provider, ProviderError, RAW_LIMIT, Recovered,
    StatusReport, WebhookRepair, WebhookSettings, truncate,
};
use crate::config::{DesiredWebhook, ProviderConfig, Secret};
use crate::domain::{ProviderStatus, RecoveryKind, Ts, WebhookSignal};

pub use super::slots::Slot;

/// The six slots, in the order used for reads and writes.
pub const SLOTS: [Slot; 6] = [
    Slot { kind: "connected", field: "webhookConnectedUrl", event: "webhookConnected" },
    Slot { kind: "disconnected", field: "webhookDisconnectedUrl", event: "webhookDisconnected" },
    Slot { kind: "delivery", field: "webhookDeliveryUrl", event: "webhookDelivery" },
    Slot { kind: "received", field: "webhookReceivedUrl", event: "webhookReceived" },
    Slot { kind: "message-status", field: "webhookStatusUrl", event: "webhookStatus" },
    Slot { kind: "chat-presence", field: "webhookPresenceUrl", event: "webhookPresence" },
];

/// Integrator list pages fetched at most (100 instances each).
const MAX_PAGES: u32 = 50;

/// W-API client (see the module docs).
#[derive(Debug)]
pub struct WapiClient {
    pub(super) http: Http,
    api_key: Option<Secret>,
    body_key: String,
}

impl WapiClient {
    pub fn new(cfg: &ProviderConfig, request_timeout: Duration) -> Result<Self, ProviderError> {
        Ok(WapiClient {
            http: Http::new(&cfg.base_url, request_timeout)?,
            api_key: cfg.api_key.clone(),
            body_key: if cfg.webhook_body_key.is_empty() { "value".into() } else { cfg.webhook_body_key.clone() },
        })
    }

    fn token<'a>(&'a self, inst: &'a InstanceRef) -> Result<&'a Secret, ProviderError> {
        inst.token.as_ref().or(self.api_key.as_ref()).ok_or_else(|| {
            ProviderError::new(
                ErrorClass::Unauthorized,
                format!("no token configured for W-API instance {}", inst.name),
            )
        })
    }

    pub(super) fn req(
        &self,
        method: reqwest::Method,
        inst: &InstanceRef,
        segs: &[&str],
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let token = self.token(inst)?;
        Ok(self
            .http
            .client()
            .request(method, self.http.url(segs))
            .query(&[("instanceId", inst.name.as_str())])
            .bearer_auth(token.expose()))
    }
}

impl Provider for WapiClient {
    async fn status(&self, inst: &InstanceRef) -> Result<StatusReport, ProviderError> {
        let what = format!("GET /instance/status-instance?instanceId={}", inst.name);
        let rb = self.req(reqwest::Method::GET, inst, &["instance", "status-instance"])?;
        let r = match self.http.send(rb, &what).await {
            Ok(r) => r,
            Err(e) => return StatusReport::from_error(e),
        };
        let raw = truncate(&r.body, RAW_LIMIT);
        match r.json.get("connected").and_then(Value::as_bool) {
            Some(true) => Ok(StatusReport { status: ProviderStatus::Connected, raw }),
            Some(false) => {
                let (status, note) = self.qr_verdict(inst).await;
                Ok(StatusReport { status, raw: truncate(&format!("{raw} | qr-code: {note}"), RAW_LIMIT) })
            }
            None => Err(ProviderError::new(ErrorClass::BadResponse, format!("{what}: no boolean `connected`"))),
        }
    }

    /// Discovery through the integrator (account) token in `api_key`; without
    /// one there is nothing to discover and the list is empty.
    async fn list_instances(&self) -> Result<Vec<Discovered>, ProviderError> {
        let Some(key) = &self.api_key else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut page = 1u32;
        loop {
            let rb = self
                .http
                .client()
                .get(self.http.url(&["integrator", "instances"]))
                .query(&[("pageSize", "100"), ("page", &page.to_string())])
                .bearer_auth(key.expose());
            let r = self.http.send(rb, &format!("GET /integrator/instances?page={page}")).await?;
            let list = r.json.get("instances").and_then(Value::as_array).ok_or_else(|| {
                ProviderError::new(ErrorClass::BadResponse, "GET /integrator/instances: no `instances` array")
            })?;
            out.extend(list.iter().filter_map(|i| {
                let name = i.get("instanceId").and_then(Value::as_str).filter(|s| !s.is_empty())?;
                let token = i.get("token").and_then(Value::as_str).filter(|s| !s.is_empty()).map(Secret::literal);
                Some(Discovered { name: name.to_string(), token, provider_id: None })
            }));
            let total_pages = r.json.get("totalPage").and_then(Value::as_u64).unwrap_or(1);
            if list.is_empty() || u64::from(page) >= total_pages || page >= MAX_PAGES {
                return Ok(out);
            }
            page += 1;
        }
    }

    /// W-API has one recovery call for both situations: `GET /instance/restart`.
    async fn recover(&self, inst: &InstanceRef, _kind: RecoveryKind) -> Result<Recovered, ProviderError> {
        let what = format!("GET /instance/restart?instanceId={}", inst.name);
        let rb = self.req(reqwest::Method::GET, inst, &["instance", "restart"])?;
        let r = self.http.send(rb, &what).await?;
        let msg = r.json.get("message").and_then(Value::as_str).map(|m| truncate(m, 120)).unwrap_or_default();
        Ok(Recovered::Sent(format!("{what} -> {} {msg}", r.status).trim_end().to_string()))
    }

    async fn webhook(&self, inst: &InstanceRef) -> Result<Option<WebhookSettings>, ProviderError> {
        Ok(settings_from_fetch(&self.fetch_instance(inst).await?))
    }

    async fn check_webhook(
        &self,
        inst: &InstanceRef,
        desired_url: &str,
        desired: &DesiredWebhook,
    ) -> Result<Vec<String>, ProviderError> {
        Ok(slots::diff(self, &SLOTS, inst, desired_url, desired).await?.0)
    }

    async fn apply_webhook(
        &self,
        inst: &InstanceRef,
        desired_url: &str,
        desired: &DesiredWebhook,
    ) -> Result<WebhookRepair, ProviderError> {
        slots::apply(self, &SLOTS, inst, desired_url, desired).await
    }
}

impl SlotApi for WapiClient {
    async fn read(&self, inst: &InstanceRef) -> Result<Value, ProviderError> {
        self.fetch_instance(inst).await
    }

    async fn write(&self, inst: &InstanceRef, slot: Slot, url: &str) -> Result<(), ProviderError> {
        let path = format!("update-webhook-{}", slot.kind);
        let what = format!("PUT /webhook/{path}?instanceId={}", inst.name);
        let mut body = serde_json::Map::new();
        body.insert(self.body_key.clone(), json!(url));
        let rb = self.req(reqwest::Method::PUT, inst, &["webhook", &path])?.json(&Value::Object(body));
        self.http.send(rb, &what).await.map(drop)
    }

    fn mismatch(&self, left: &[Unmatched]) -> String {
        let detail = left
            .iter()
            .map(|u| {
                format!(
                    "after PUT /webhook/update-webhook-{} with body key `{}`, fetch-instance {}",
                    u.slot.kind,
                    self.body_key,
                    u.describe()
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        format!("{detail}. W-API sources disagree on the body key (value, urlWebhook, url): check `webhook_body_key`")
    }
}

impl WapiClient {
    /// After `connected:false`: a QR on offer means logged out (module docs).
    async fn qr_verdict(&self, inst: &InstanceRef) -> (ProviderStatus, String) {
        let what = format!("GET /instance/qr-code?instanceId={}", inst.name);
        let rb = match self.req(reqwest::Method::GET, inst, &["instance", "qr-code"]) {
            Ok(rb) => rb.query(&[("image", "disable")]),
            Err(e) => return (ProviderStatus::Disconnected { reason: None }, e.to_string()),
        };
        match self.http.send(rb, &what).await {
            Ok(r) if r.json.get("qrcode").and_then(Value::as_str).is_some_and(|q| !q.is_empty()) => {
                (ProviderStatus::LoggedOut { reason: None }, "QR offered (session needs a scan)".into())
            }
            Ok(_) => (ProviderStatus::Disconnected { reason: None }, "no QR".into()),
            Err(e) => (ProviderStatus::Disconnected { reason: None }, e.to_string()),
        }
    }

    async fn fetch_instance(&self, inst: &InstanceRef) -> Result<Value, ProviderError> {
        let what = format!("GET /instance/fetch-instance?instanceId={}", inst.name);
        let rb = self.req(reqwest::Method::GET, inst, &["instance", "fetch-instance"])?;
        Ok(self.http.send(rb, &what).await?.json)
    }
}

/// fetch-instance (or an integrator list entry) → normalised settings
/// ([`slots::settings`]); `None` when no slot is set.
pub fn settings_from_fetch(j: &Value) -> Option<WebhookSettings> {
    slots::settings(&SLOTS, j)
}

/// Parse a W-API webhook body (`{event, instanceId, connectedPhone?, …}`).
pub fn parse_inbound(body: &[u8], path_event: Option<&str>) -> Result<Inbound, InboundError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| InboundError::Malformed(e.to_string()))?;
    let obj = v.as_object().ok_or_else(|| InboundError::Malformed("not a JSON object".into()))?;
    let instance = obj
        .get("instanceId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(InboundError::MissingField("instanceId"))?
        .to_string();
    let phone = obj.get("connectedPhone").and_then(Value::as_str).is_some_and(plausible_phone);
    let event = match obj.get("event").and_then(Value::as_str).filter(|s| !s.trim().is_empty()) {
        Some(e) => e.to_string(),
        None => match path_event.and_then(|p| SLOTS.iter().find(|s| s.kind == p.trim() || s.event == p.trim())) {
            Some(s) => s.event.to_string(),
            // A body with the instance's own phone but no event still proves life.
            None if phone => "unknown".to_string(),
            None => return Err(InboundError::MissingField("event")),
        },
    };
    let signal = match event.as_str() {
        "webhookConnected" => WebhookSignal::Open,
        // No reason: logout and a transient drop look the same; not proof of life.
        "webhookDisconnected" => WebhookSignal::Dropped,
        // A failed message ack is not an instance failure.
        "webhookStatus" if obj.get("status").and_then(Value::as_str) == Some("ERROR") => WebhookSignal::Neutral,
        _ if phone => WebhookSignal::Alive,
        _ => WebhookSignal::Neutral,
    };
    // `moment` is Unix seconds.
    let at = obj.get("moment").and_then(Value::as_i64).and_then(|s| s.checked_mul(1000)).map(Ts);
    Ok(Inbound { instance, event, signal, raw_len: body.len(), at })
}

/// `connectedPhone` proves life only if it looks like a phone number (digits,
/// 8–15 long); LID-looking or empty values do not.
fn plausible_phone(p: &str) -> bool {
    (8..=15).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_from_desired_events() {
        let d = DesiredWebhook {
            events: vec!["MESSAGES_UPSERT".into(), "CONNECTION_UPDATE".into(), "QRCODE_UPDATED".into()],
            by_events: false,
            base64: false,
        };
        let kinds: Vec<&str> = slots::wanted_slots(&SLOTS, &d).iter().map(|s| s.kind).collect();
        assert_eq!(kinds, vec!["connected", "disconnected", "received"], "in slot order");
        let d = DesiredWebhook { events: vec!["message-status".into()], by_events: true, base64: false };
        assert_eq!(slots::wanted_slots(&SLOTS, &d)[0].kind, "message-status");
    }

    #[test]
    fn phone_plausibility() {
        assert!(plausible_phone("5516993630000"));
        assert!(!plausible_phone(""));
        assert!(!plausible_phone("62169752330325@lid"));
        assert!(!plausible_phone("123"));
    }
}
