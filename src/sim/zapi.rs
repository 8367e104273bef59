//! An in-process Z-API server for the demo and the tests, on [`SimServer`]
//! (latency, failures, outage, call counts).
//!
//! It serves `/instances/{id}/token/{token}/<method>` (`wapi-waha-zapi.md`
//! §3): `status`, `restore-session`, `restart`, `me` and `PUT
//! update-webhook-<kind>` (`{"value": url}`). With a client token configured,
//! a request without the right `Client-Token` gets `{"error":"null not
//! allowed"}`. An unknown instance id or a wrong token answers 404 `{"error":
//! "Instance not found"}` (an assumption: Z-API does not document it). Each
//! instance follows a scripted [`ZapiBehaviour`]; [`ZapiSim::post_webhook`]
//! posts a callback to the URL configured for its slot.
//!
//! Texts: `POST …/send-text` `{phone, message}` answers `{zaapId, messageId,
//! id}` and is recorded ([`ZapiSim::sent_messages`]) whatever the instance's
//! state: as Z-API documents, a message sent while the phone is not
//! connected is queued (`queued: true`) and goes out when it reconnects.
//!
//! Re-pairing: `GET …/qr-code/image` (`{value}`, a PNG data URL) and `GET
//! …/phone-code/{phone}` (`{code}`) while "You are not connected."; [`ZapiSim::scan`] connects it.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use axum::response::Response;
use serde_json::{Value, json};

use super::Delivery;
use super::server::{SimBackend, SimMessage, SimRequest, SimServer, json_reply, lock};
use crate::config::{ProviderConfig, ProviderKind, Secret};
use crate::providers::zapi::SLOTS;

/// What a simulated instance does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZapiBehaviour {
    /// Connected, sends callbacks.
    Connected,
    /// Connected but silent until restarted.
    Zombie,
    /// "You need to restore the session.": `restore-session` (or `restart`) brings it back.
    NeedsRestore,
    /// "You are not connected.": waiting for a QR scan.
    NotConnected,
}

/// A Z-API callback the simulator can post; each goes to its slot's URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZapiEvent {
    Received,
    Delivery,
    MessageStatus,
    Connected,
    Disconnected,
}

impl ZapiEvent {
    /// The slot kind (`update-webhook-<kind>`).
    pub fn kind(self) -> &'static str {
        match self {
            ZapiEvent::Received => "received",
            ZapiEvent::Delivery => "delivery",
            ZapiEvent::MessageStatus => "message-status",
            ZapiEvent::Connected => "connected",
            ZapiEvent::Disconnected => "disconnected",
        }
    }
}

#[derive(Debug)]
struct Instance {
    token: String,
    behaviour: ZapiBehaviour,
    callbacks: BTreeMap<&'static str, String>,
}

#[derive(Debug)]
struct Backend {
    client_token: Option<String>,
    instances: Mutex<BTreeMap<String, Instance>>,
    sent: Mutex<Vec<SimMessage>>,
}

/// The running Z-API simulator; derefs to its [`SimServer`] (faults, counts).
#[derive(Debug)]
pub struct ZapiSim {
    server: SimServer,
    backend: Arc<Backend>,
}

impl Deref for ZapiSim {
    type Target = SimServer;
    fn deref(&self) -> &SimServer {
        &self.server
    }
}

fn status_json(b: ZapiBehaviour) -> Value {
    let (connected, error) = match b {
        ZapiBehaviour::Connected | ZapiBehaviour::Zombie => (true, "You are already connected."),
        ZapiBehaviour::NeedsRestore => (false, "You need to restore the session."),
        ZapiBehaviour::NotConnected => (false, "You are not connected."),
    };
    json!({"connected": connected, "error": error, "smartphoneConnected": connected})
}

impl SimBackend for Backend {
    fn handle(&self, req: &SimRequest) -> Response {
        if let Some(t) = &self.client_token
            && req.header("client-token") != Some(t.as_str())
        {
            return json_reply(400, json!({"error": "null not allowed"}));
        }
        let mut instances = lock(&self.instances);
        let segs = req.segs();
        let ["instances", id, "token", token, method, rest @ ..] = segs.as_slice() else {
            return json_reply(404, json!({"error": "Not Found"}));
        };
        let Some(inst) = instances.get_mut(*id).filter(|i| i.token == *token) else {
            return json_reply(404, json!({"error": "Instance not found"}));
        };
        match (req.method.as_str(), *method, rest) {
            // Re-pairing. What Z-API answers on a connected instance is not
            // documented: `{"connected": true}` here (an assumption).
            ("GET", "qr-code", ["image"]) => match inst.behaviour {
                ZapiBehaviour::NotConnected => json_reply(200, json!({"value": super::sim_qr_data_url()})),
                ZapiBehaviour::Connected | ZapiBehaviour::Zombie => json_reply(200, json!({"connected": true})),
                ZapiBehaviour::NeedsRestore => json_reply(200, json!({"error": "You need to restore the session."})),
            },
            ("GET", "phone-code", [phone]) if !phone.is_empty() => match inst.behaviour {
                ZapiBehaviour::NotConnected => json_reply(200, json!({"code": super::SIM_PAIRING_CODE})),
                ZapiBehaviour::Connected | ZapiBehaviour::Zombie => json_reply(200, json!({"connected": true})),
                ZapiBehaviour::NeedsRestore => json_reply(200, json!({"error": "You need to restore the session."})),
            },
            (_, _, [_, ..]) => json_reply(404, json!({"error": "Not Found"})),
            ("GET", "status", []) => json_reply(200, status_json(inst.behaviour)),
            ("POST", "send-text", []) => {
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
                let (Some(phone), Some(message)) = (field("phone"), field("message")) else {
                    return json_reply(400, json!({"error": "phone and message are required"}));
                };
                let mut sent = lock(&self.sent);
                let n = sent.len() + 1;
                let (zaap, msg) = (format!("3999984263738042930CD6ECDE9{n:05X}"), format!("D241{n:016X}"));
                let queued = !matches!(inst.behaviour, ZapiBehaviour::Connected | ZapiBehaviour::Zombie);
                let at = crate::clock::now();
                let instance = (*id).to_string();
                sent.push(SimMessage { instance, to: phone, text: message, id: msg.clone(), at, queued });
                json_reply(200, json!({"zaapId": zaap, "messageId": msg, "id": msg}))
            }
            ("GET", "restore-session", []) => {
                if inst.behaviour == ZapiBehaviour::NeedsRestore {
                    inst.behaviour = ZapiBehaviour::Connected;
                }
                json_reply(200, json!({"value": true}))
            }
            ("GET", "restart", []) => {
                if inst.behaviour != ZapiBehaviour::NotConnected {
                    inst.behaviour = ZapiBehaviour::Connected;
                }
                json_reply(200, json!({"value": true}))
            }
            ("GET", "me", []) => {
                let mut me = json!({"id": id, "token": inst.token, "name": id, "due": 1_769_904_000_000u64,
                                    "connected": status_json(inst.behaviour)["connected"], "paymentStatus": "RECEIVED",
                                    "receiveCallbackSentByMe": false, "callRejectAuto": false, "autoReadMessage": false});
                for slot in SLOTS {
                    me[slot.field] = json!(inst.callbacks.get(slot.field).cloned().unwrap_or_default());
                }
                json_reply(200, me)
            }
            ("PUT", m, []) if m.starts_with("update-webhook-") => {
                let kind = &m["update-webhook-".len()..];
                let Some(slot) = SLOTS.iter().find(|s| s.kind == kind) else {
                    return json_reply(404, json!({"error": "Not Found"}));
                };
                let Some(url) = serde_json::from_slice::<Value>(&req.body)
                    .ok()
                    .and_then(|b| b.get("value").and_then(Value::as_str).map(str::to_string))
                else {
                    return json_reply(400, json!({"error": "value is required"}));
                };
                inst.callbacks.insert(slot.field, url);
                json_reply(200, json!({"value": true}))
            }
            _ => json_reply(404, json!({"error": "Not Found"})),
        }
    }
}

impl ZapiSim {
    /// Serve these instances (id, token, behaviour), no callbacks set; with a
    /// `Client-Token` required when `client_token` is given.
    pub async fn start(
        client_token: Option<&str>,
        instances: &[(&str, &str, ZapiBehaviour)],
    ) -> std::io::Result<ZapiSim> {
        let backend = Arc::new(Backend {
            client_token: client_token.map(str::to_string),
            instances: Mutex::default(),
            sent: Mutex::default(),
        });
        let server = SimServer::start(backend.clone()).await?;
        let sim = ZapiSim { server, backend };
        for (id, token, b) in instances {
            sim.add_instance(id, token, *b);
        }
        Ok(sim)
    }

    /// A ready `zapi` provider config pointing here (no discovery: Z-API has none).
    pub fn provider_config(&self, name: &str) -> ProviderConfig {
        ProviderConfig {
            client_token: self.backend.client_token.as_deref().map(Secret::literal),
            ..ProviderConfig::new(name, ProviderKind::Zapi, &self.base_url(), Secret::literal("sim-webhook-token"))
        }
    }

    pub fn add_instance(&self, id: &str, token: &str, behaviour: ZapiBehaviour) {
        let inst = Instance { token: token.to_string(), behaviour, callbacks: BTreeMap::new() };
        lock(&self.backend.instances).insert(id.to_string(), inst);
    }

    /// The customer scanned the QR code: the instance is connected.
    pub fn scan(&self, id: &str) -> bool {
        self.set_behaviour(id, ZapiBehaviour::Connected)
    }

    /// Change an instance's behaviour; `false` if it does not exist.
    pub fn set_behaviour(&self, id: &str, behaviour: ZapiBehaviour) -> bool {
        lock(&self.backend.instances).get_mut(id).map(|i| i.behaviour = behaviour).is_some()
    }

    pub fn behaviour(&self, id: &str) -> Option<ZapiBehaviour> {
        lock(&self.backend.instances).get(id).map(|i| i.behaviour)
    }

    /// The URL in one slot (`"received"`, …), `""` when unset.
    pub fn callback(&self, id: &str, kind: &str) -> String {
        let field = SLOTS.iter().find(|s| s.kind == kind).map_or("", |s| s.field);
        lock(&self.backend.instances).get(id).and_then(|i| i.callbacks.get(field).cloned()).unwrap_or_default()
    }

    /// Preset one slot (an operator's own URL).
    pub fn set_callback(&self, id: &str, kind: &str, url: &str) {
        if let (Some(slot), Some(i)) =
            (SLOTS.iter().find(|s| s.kind == kind), lock(&self.backend.instances).get_mut(id))
        {
            i.callbacks.insert(slot.field, url.to_string());
        }
    }

    /// Every text sent through any instance (queued ones included), oldest first.
    pub fn sent_messages(&self) -> Vec<SimMessage> {
        lock(&self.backend.sent).clone()
    }

    /// The path of one instance call, for [`SimServer::calls`].
    pub fn path(&self, id: &str, method: &str) -> String {
        let token = lock(&self.backend.instances).get(id).map(|i| i.token.clone()).unwrap_or_default();
        format!("/instances/{id}/token/{token}/{method}")
    }

    /// Post `event` to the URL of its slot. A zombie sends nothing.
    pub async fn post_webhook(&self, id: &str, event: ZapiEvent) -> Result<Delivery, String> {
        let (url, body) = {
            let instances = lock(&self.backend.instances);
            let Some(i) = instances.get(id) else { return Err(format!("unknown instance {id}")) };
            if i.behaviour == ZapiBehaviour::Zombie {
                return Ok(Delivery::Suppressed("zombie session sends no webhooks"));
            }
            let field = SLOTS.iter().find(|s| s.kind == event.kind()).map_or("", |s| s.field);
            let Some(url) = i.callbacks.get(field).filter(|u| !u.is_empty()).cloned() else {
                return Ok(Delivery::Suppressed("no webhook configured for this slot"));
            };
            let now = crate::clock::now().0;
            let body = match event {
                ZapiEvent::Received => {
                    json!({"type": "ReceivedCallback", "instanceId": id, "messageId": format!("SIM{now}"),
                    "phone": "5516992840000", "fromMe": false, "momment": now, "status": "RECEIVED",
                    "connectedPhone": "5516993630000", "text": {"message": "hello from the simulator"}})
                }
                ZapiEvent::Delivery => json!({"type": "DeliveryCallback", "instanceId": id, "phone": "5516992840000",
                    "zaapId": format!("SIM{now}"), "messageId": format!("SIM{now}")}),
                ZapiEvent::MessageStatus => json!({"type": "MessageStatusCallback", "instanceId": id, "status": "READ",
                    "ids": [format!("SIM{now}")], "momment": now, "phone": "5516992840000", "isGroup": false}),
                ZapiEvent::Connected => json!({"type": "ConnectedCallback", "instanceId": id, "connected": true,
                    "momment": now, "phone": "5516993630000"}),
                // Seconds here, as in Z-API's own example.
                ZapiEvent::Disconnected => {
                    json!({"type": "DisconnectedCallback", "instanceId": id, "disconnected": true,
                    "momment": now / 1000, "error": "Device has been disconnected"})
                }
            };
            (url, serde_json::to_vec(&body).map_err(|e| e.to_string())?)
        };
        Ok(Delivery::Sent(self.post(&url, &[], body).await?))
    }
}
