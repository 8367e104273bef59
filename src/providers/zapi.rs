//! Z-API client (z-api.io, hosted) and the parser for Z-API webhooks
//! (`wapi-waha-zapi.md` §3).
//!
//! **The instance credentials are in the URL path**:
//! `{base_url}/instances/{id}/token/{token}/<method>`. So no URL is ever put in
//! an error or a log line: call descriptions spell the path with `…` in place
//! of the token, transport errors drop their URL, and every error detail is
//! scrubbed of the token in case the provider echoes the path back. The
//! account security token, when configured, travels as a sensitive
//! `Client-Token` header; without it (or from an IP off the allow-list) Z-API
//! answers `{"error": "… not allowed"}`, which [`super::http::classify`] makes
//! `Unauthorized` — a configuration problem of the whole provider.
//!
//! Status: `GET …/status` → `{connected, error, smartphoneConnected}`.
//! `connected:true` → connected; `"You need to restore the session."` → closed
//! (recovered with `GET …/restore-session`); `"You are not connected."` →
//! waiting for a QR scan (a person; never restarted); `smartphoneConnected`
//! is a legacy phone-online flag and is ignored. A zombie is `GET …/restart`.
//!
//! Webhooks: one URL per slot ([`SLOTS`]), read from the `*CallbackUrl`
//! fields of `GET …/me`, set with `PUT …/update-webhook-<kind>`
//! `{"value": url}`; slots derived and repaired as for W-API ([`super::slots`]).
//!
//! Inbound: discriminated by `type`, instance = `instanceId`; `momment` is in
//! milliseconds or seconds depending on the event ([`momment_ms`]).

use std::time::Duration;

use serde_json::{Value, json};

use super::http::{Http, Reply};
use super::slots::{self, Slot, SlotApi, Unmatched};
use super::{
    Discovered, ErrorClass, Inbound, InboundError, InstanceRef, Provider, ProviderError, RAW_LIMIT, Recovered,
    StatusReport, WebhookRepair, WebhookSettings, truncate,
};
use crate::config::{DesiredWebhook, ProviderConfig, Secret};
use crate::domain::{ProviderStatus, RecoveryKind, Ts, WebhookSignal};

/// The six slots: `update-webhook-<kind>`, the `/me` field, the payload `type`.
pub const SLOTS: [Slot; 6] = [
    Slot { kind: "connected", field: "connectedCallbackUrl", event: "ConnectedCallback" },
    Slot { kind: "disconnected", field: "disconnectedCallbackUrl", event: "DisconnectedCallback" },
    Slot { kind: "delivery", field: "deliveryCallbackUrl", event: "DeliveryCallback" },
    Slot { kind: "received", field: "receivedCallbackUrl", event: "ReceivedCallback" },
    Slot { kind: "message-status", field: "messageStatusCallbackUrl", event: "MessageStatusCallback" },
    Slot { kind: "chat-presence", field: "presenceChatCallbackUrl", event: "PresenceChatCallback" },
];

/// `connected:false` plus this `error` text → the normalised status.
pub fn status_of(connected: bool, error: &str) -> ProviderStatus {
    let e = error.to_lowercase();
    match connected {
        true => ProviderStatus::Connected,
        false if e.contains("not connected") => ProviderStatus::Connecting { qr_pending: true },
        // "You need to restore the session." and anything else: restore it.
        false => ProviderStatus::Disconnected { reason: None },
    }
}

/// `momment` → Unix milliseconds. Z-API sends milliseconds in most events and
/// seconds in some (the disconnect example): anything below 10^11 is seconds
/// (10^11 ms is 1973; 10^11 s is the year 5138).
pub fn momment_ms(v: i64) -> i64 {
    if v.unsigned_abs() < 100_000_000_000 { v.saturating_mul(1000) } else { v }
}

/// Z-API client (see the module docs).
#[derive(Debug)]
pub struct ZapiClient {
    http: Http,
    client_token: Option<Secret>,
}

impl ZapiClient {
    pub fn new(cfg: &ProviderConfig, request_timeout: Duration) -> Result<Self, ProviderError> {
        Ok(ZapiClient { http: Http::new(&cfg.base_url, request_timeout)?, client_token: cfg.client_token.clone() })
    }

    fn token<'a>(&self, inst: &'a InstanceRef) -> Result<&'a Secret, ProviderError> {
        inst.token.as_ref().ok_or_else(|| {
            ProviderError::new(
                ErrorClass::Unauthorized,
                format!("no token configured for Z-API instance {}: set its `token_env`", inst.name),
            )
        })
    }

    /// Call `<method> {base}/instances/{id}/token/{token}/{path…}`, classify,
    /// and scrub the token from anything that comes back as an error.
    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        inst: &InstanceRef,
        path: &[&str],
        body: Option<Value>,
    ) -> Result<Reply, ProviderError> {
        let token = self.token(inst)?;
        let what = format!("{method} /instances/{}/token/…/{}", inst.name, path.join("/"));
        let mut segs = vec!["instances", inst.name.as_str(), "token", token.expose()];
        segs.extend_from_slice(path);
        let mut rb = self.http.client().request(method, self.http.url(&segs));
        if let Some(mut v) =
            self.client_token.as_ref().and_then(|k| reqwest::header::HeaderValue::from_str(k.expose()).ok())
        {
            v.set_sensitive(true);
            rb = rb.header("client-token", v);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let scrub = |s: &str| s.replace(token.expose(), "[token]");
        match self.http.send(rb, &what).await {
            Ok(mut r) => {
                r.body = scrub(&r.body);
                Ok(r)
            }
            Err(e) => Err(ProviderError::new(e.class, scrub(&e.detail))),
        }
    }

    async fn me(&self, inst: &InstanceRef) -> Result<Value, ProviderError> {
        Ok(self.call(reqwest::Method::GET, inst, &["me"], None).await?.json)
    }
}

impl Provider for ZapiClient {
    async fn status(&self, inst: &InstanceRef) -> Result<StatusReport, ProviderError> {
        let r = match self.call(reqwest::Method::GET, inst, &["status"], None).await {
            Ok(r) => r,
            Err(e) => return StatusReport::from_error(e),
        };
        let connected = r.json.get("connected").and_then(Value::as_bool).ok_or_else(|| {
            ProviderError::new(
                ErrorClass::BadResponse,
                format!("GET /instances/{}/token/…/status: no boolean `connected`", inst.name),
            )
        })?;
        let error = r.json.get("error").and_then(Value::as_str).unwrap_or("");
        Ok(StatusReport { status: status_of(connected, error), raw: truncate(&r.body, RAW_LIMIT) })
    }

    /// Z-API has no API that lists an account's instances.
    async fn list_instances(&self) -> Result<Vec<Discovered>, ProviderError> {
        Ok(Vec::new())
    }

    /// A closed session is restored (`restore-session`, "indicated for cases
    /// where the disconnection webhook is sent"); a zombie is restarted.
    async fn recover(&self, inst: &InstanceRef, kind: RecoveryKind) -> Result<Recovered, ProviderError> {
        let action = match kind {
            RecoveryKind::Reconnect => "restore-session",
            RecoveryKind::Restart => "restart",
        };
        let what = format!("GET /instances/{}/token/…/{action}", inst.name);
        let r = self.call(reqwest::Method::GET, inst, &[action], None).await?;
        match r.json.get("value") {
            Some(Value::Bool(false)) => {
                Err(ProviderError::new(ErrorClass::BadResponse, format!("{what}: answered {{\"value\": false}}")))
            }
            _ => Ok(Recovered::Sent(format!("{what} -> {}", r.status))),
        }
    }

    async fn webhook(&self, inst: &InstanceRef) -> Result<Option<WebhookSettings>, ProviderError> {
        Ok(slots::settings(&SLOTS, &self.me(inst).await?))
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

impl SlotApi for ZapiClient {
    async fn read(&self, inst: &InstanceRef) -> Result<Value, ProviderError> {
        self.me(inst).await
    }

    async fn write(&self, inst: &InstanceRef, slot: Slot, url: &str) -> Result<(), ProviderError> {
        let path = format!("update-webhook-{}", slot.kind);
        self.call(reqwest::Method::PUT, inst, &[&path], Some(json!({"value": url}))).await.map(drop)
    }

    fn mismatch(&self, left: &[Unmatched]) -> String {
        left.iter()
            .map(|u| format!("after PUT update-webhook-{}, GET me {}", u.slot.kind, u.describe()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Parse a Z-API webhook body (module docs). A body without `type` is named
/// by its slot's URL suffix (`/received`) when there is one.
pub fn parse_inbound(body: &[u8], path_event: Option<&str>) -> Result<Inbound, InboundError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| InboundError::Malformed(e.to_string()))?;
    let obj = v.as_object().ok_or_else(|| InboundError::Malformed("not a JSON object".into()))?;
    let instance = super::required_str(obj.get("instanceId"), "instanceId")?;
    let event = match obj.get("type").and_then(Value::as_str).filter(|s| !s.trim().is_empty()) {
        Some(t) => t.to_string(),
        None => path_event
            .and_then(|p| SLOTS.iter().find(|s| s.kind == p.trim()))
            .map(|s| s.event.to_string())
            .ok_or(InboundError::MissingField("type"))?,
    };
    let signal = match event.as_str() {
        "ConnectedCallback" => WebhookSignal::Open,
        // "Device has been disconnected": a drop or an unlink; the poll tells.
        "DisconnectedCallback" => WebhookSignal::Dropped,
        "ReceivedCallback" | "DeliveryCallback" | "MessageStatusCallback" | "PresenceChatCallback" => {
            WebhookSignal::Alive
        }
        _ => WebhookSignal::Neutral,
    };
    let at = obj.get("momment").and_then(Value::as_i64).map(|m| Ts(momment_ms(m)));
    Ok(Inbound { instance, event, signal, raw_len: body.len(), at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn momment_by_magnitude() {
        assert_eq!(momment_ms(1_767_113_000), 1_767_113_000_000);
        assert_eq!(momment_ms(1_767_110_000_000), 1_767_110_000_000);
        assert_eq!(momment_ms(i64::MIN), i64::MIN, "no overflow");
    }

    #[test]
    fn statuses() {
        assert_eq!(status_of(true, "You are already connected."), ProviderStatus::Connected);
        assert_eq!(status_of(false, "You are not connected."), ProviderStatus::Connecting { qr_pending: true });
        assert_eq!(status_of(false, "You need to restore the session."), ProviderStatus::Disconnected { reason: None });
    }
}
