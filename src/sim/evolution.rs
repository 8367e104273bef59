//! An in-process, Evolution-v2-compatible HTTP server for the demo,
//! integration tests and benchmarks.
//!
//! It speaks the routes the sentinel uses, with the quirks that matter
//! ([docs/providers.md](../../docs/providers.md), "Evolution API"): the existence guard runs before auth (unknown
//! instance → 404 even with a bad key), `POST /instance/restart` on a closed
//! session answers 200 `{"error":true,"message":"[object Object]"}` and does
//! nothing, `PUT /instance/restart` is an Express route miss, `webhook/find`
//! answers literal `null` when unset, `webhook/set` wants the nested v2 body
//! and 500s when `events` is missing while enabled, and `fetchInstances`
//! reports `disconnectionReasonCode` only for terminal closes.
//!
//! Instances follow a scripted [`Behaviour`] that tests change at runtime;
//! latency, a failure rate (500s) and a whole-server "down" switch (503) can be
//! injected; every request is counted per (method, path). [`Simulator::post_webhook`]
//! sends an Evolution v2 webhook to the instance's configured URL.
//!
//! Texts: `POST /message/sendText/{i}` (the v2 body, or v1's while
//! [`Simulator::set_version`] says 1.x) is accepted from an `open` instance
//! and recorded ([`Simulator::sent_messages`]), else 400 `Error: Connection
//! Closed`; `POST /chat/findMessages/{i}` lists what was sent, by id, chat or
//! time window, unless message storage is off
//! ([`Simulator::set_store_messages`], Evolution's
//! `DATABASE_SAVE_DATA_NEW_MESSAGE`). [`Simulator::set_send_delay`] makes a
//! send answer late, after it was recorded (a client timeout whose message
//! went out).
//!
//! State lives in an `Arc<Mutex<…>>` (std mutex: never held across an await).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::server::{SimMessage, pct_decode, query_param};
use super::{Delivery, SIM_PAIRING_CODE, SIM_QR_TEXT, sim_qr_data_url};

mod routes;
use crate::config::{ProviderConfig, ProviderKind, Secret};
use routes::handle;

/// What a simulated instance does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `open`, sends webhooks.
    Open,
    /// `close` after a transient drop; `GET /instance/connect` revives it.
    ClosedTransient { reason: u16 },
    /// Logged out (401): `close`, needs a QR.
    LoggedOut,
    /// Banned (403): `close`, needs a QR.
    Banned,
    /// Unpaired, issuing QR codes: `connecting`.
    ConnectingWithQr,
    /// `open` but sends no webhooks until `POST /instance/restart`.
    ZombieOpen,
    /// Session replaced (440): `close`; `connect` revives it.
    Replaced,
    /// Paired, but every reconnect fails (observed on a real 2.3.6 server): polls
    /// keep saying `close`, `connect` starts a socket that loops `connecting`
    /// (the test posts those webhooks, ~3 a second on the real server).
    ReconnectLoop,
    /// Never paired (observed on a real 2.3.6 server): `close`, `ownerJid:
    /// null` in fetchInstances; `connect` only issues a QR code and the socket
    /// loops `connecting` while polls keep saying `close`.
    Unpaired,
    /// A broken session object on the server: `connectionState` and
    /// `connect` answer `500 Connection Closed` (as a real server does for an
    /// instance whose socket died badly) while the other instances answer.
    Broken,
}

impl Behaviour {
    fn state(self) -> &'static str {
        match self {
            Behaviour::Open | Behaviour::ZombieOpen => "open",
            Behaviour::ConnectingWithQr => "connecting",
            Behaviour::ClosedTransient { .. }
            | Behaviour::LoggedOut
            | Behaviour::Banned
            | Behaviour::Replaced
            | Behaviour::ReconnectLoop
            | Behaviour::Unpaired
            | Behaviour::Broken => "close",
        }
    }

    /// The DB column `connectionStatus` (not written on transient drops).
    fn db_status(self) -> &'static str {
        match self {
            Behaviour::LoggedOut | Behaviour::Banned | Behaviour::Unpaired => "close",
            Behaviour::ConnectingWithQr => "connecting",
            _ => "open",
        }
    }

    fn terminal_code(self) -> Option<u16> {
        match self {
            Behaviour::LoggedOut => Some(401),
            Behaviour::Banned => Some(403),
            _ => None,
        }
    }
}

/// An Evolution v2 webhook event the simulator can send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimEvent {
    ConnectionUpdate { state: String, status_reason: u16 },
    MessagesUpsert,
    QrcodeUpdated,
    LogoutInstance,
}

impl SimEvent {
    /// Payload name (`connection.update`).
    pub fn name(&self) -> &'static str {
        match self {
            SimEvent::ConnectionUpdate { .. } => "connection.update",
            SimEvent::MessagesUpsert => "messages.upsert",
            SimEvent::QrcodeUpdated => "qrcode.updated",
            SimEvent::LogoutInstance => "logout.instance",
        }
    }

    /// Config name (`CONNECTION_UPDATE`).
    pub fn config_name(&self) -> String {
        self.name().replace(['.', '-'], "_").to_uppercase()
    }

    /// by-events URL suffix (`connection-update`).
    pub fn suffix(&self) -> String {
        self.config_name().to_lowercase().replace('_', "-")
    }

    fn data(&self, instance: &str, n: u64) -> Value {
        match self {
            SimEvent::ConnectionUpdate { state, status_reason } => {
                json!({"instance": instance, "state": state, "statusReason": status_reason})
            }
            SimEvent::MessagesUpsert => json!({
                "key": {"remoteJid": "5511976543210@s.whatsapp.net", "fromMe": false, "id": format!("SIM{n:016X}")},
                "pushName": "Simulated", "status": "DELIVERY_ACK",
                "message": {"conversation": "hello from the simulator"},
                "messageType": "conversation", "messageTimestamp": 1_761_141_807u64 + n, "source": "android"
            }),
            SimEvent::QrcodeUpdated => json!({"qrcode": {
                "instance": instance, "pairingCode": null, "code": "2@sim", "base64": "data:image/png;base64,AAAA"
            }}),
            SimEvent::LogoutInstance => Value::Null,
        }
    }
}

/// Start-up options.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub api_key: String,
    pub version: String,
    pub instances: Vec<(String, Behaviour)>,
    pub latency: Duration,
    /// Probability in [0, 1] that a request answers 500.
    pub failure_rate: f64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            api_key: "sim-global-key".into(),
            version: "2.3.6".into(),
            instances: Vec::new(),
            latency: Duration::ZERO,
            failure_rate: 0.0,
        }
    }
}

#[derive(Debug)]
struct SimInstance {
    behaviour: Behaviour,
    token: String,
    id: String,
    webhook: Option<Value>,
    /// The socket was started with `?number=`: its QR answers carry a pairing code.
    pairing_number: Option<String>,
}

#[derive(Debug)]
struct Inner {
    api_key: String,
    version: String,
    instances: BTreeMap<String, SimInstance>,
    latency: Duration,
    failure_rate: f64,
    /// Connect answers carry only the QR string (`code`), no `base64` image.
    qr_as_text: bool,
    down: bool,
    /// The server's webhook dispatcher is stuck: no instance posts anything.
    webhooks_stuck: bool,
    /// Evolution ≥ 2.4 without an activated licence: every call but `GET /`
    /// answers `503 {"code":"LICENSE_REQUIRED"}`.
    unlicensed: bool,
    calls: HashMap<(String, String), u64>,
    rng: u64,
    seq: u64,
    /// Texts sent through any instance, oldest first.
    sent: Vec<SimMessage>,
    /// `DATABASE_SAVE_DATA_NEW_MESSAGE`: findMessages finds nothing without it.
    store_messages: bool,
    /// A send answers this late, after it was recorded.
    send_delay: Duration,
}

impl Inner {
    fn add(&mut self, name: &str, behaviour: Behaviour) {
        self.seq += 1;
        let n = self.seq;
        self.instances.insert(
            name.to_string(),
            SimInstance {
                behaviour,
                token: format!("SIM-TOKEN-{n:04}"),
                id: format!("00000000-0000-4000-8000-{n:012}"),
                webhook: None,
                pairing_number: None,
            },
        );
    }

    /// xorshift64*: deterministic, good enough for a failure rate.
    fn roll(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> MutexGuard<'_, Inner> {
    // A panicking test thread must not wedge the server.
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// The running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct Simulator {
    base_url: String,
    api_key: String,
    shared: Shared,
    client: reqwest::Client,
    serving: super::server::Serving,
}

/// v2's webhook event enum, for `webhook/set` validation.
const V2_EVENTS: &[&str] = crate::config::events::EVOLUTION_V2;

impl Simulator {
    /// Bind 127.0.0.1:0 and serve until dropped or [`Simulator::shutdown`].
    pub async fn start(opts: SimOptions) -> std::io::Result<Simulator> {
        crate::tls::install_crypto();
        let mut inner = Inner {
            api_key: opts.api_key.clone(),
            version: opts.version,
            instances: BTreeMap::new(),
            latency: opts.latency,
            failure_rate: opts.failure_rate,
            qr_as_text: false,
            down: false,
            webhooks_stuck: false,
            unlicensed: false,
            calls: HashMap::new(),
            rng: 0x9E37_79B9_7F4A_7C15,
            seq: 0,
            sent: Vec::new(),
            store_messages: true,
            send_delay: Duration::ZERO,
        };
        for (name, b) in &opts.instances {
            inner.add(name, *b);
        }
        let shared: Shared = Arc::new(Mutex::new(inner));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let serving = super::server::Serving::spawn(listener, app);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Simulator { base_url: format!("http://{addr}"), api_key: opts.api_key, shared, client, serving })
    }

    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// A ready provider config pointing at this simulator (`api_version = auto`).
    pub fn provider_config(&self, name: &str) -> ProviderConfig {
        ProviderConfig {
            api_key: Some(Secret::literal(self.api_key.clone())),
            discover: true,
            ..ProviderConfig::new(name, ProviderKind::Evolution, &self.base_url(), Secret::literal("sim-webhook-token"))
        }
    }

    pub fn add_instance(&self, name: &str, behaviour: Behaviour) {
        lock(&self.shared).add(name, behaviour);
    }

    pub fn remove_instance(&self, name: &str) -> bool {
        lock(&self.shared).instances.remove(name).is_some()
    }

    /// Change an instance's behaviour; `false` if it does not exist.
    pub fn set_behaviour(&self, name: &str, behaviour: Behaviour) -> bool {
        match lock(&self.shared).instances.get_mut(name) {
            Some(i) => {
                i.behaviour = behaviour;
                true
            }
            None => false,
        }
    }

    pub fn behaviour(&self, name: &str) -> Option<Behaviour> {
        lock(&self.shared).instances.get(name).map(|i| i.behaviour)
    }

    /// The stored webhook row (as `webhook/find` returns it).
    pub fn webhook_config(&self, name: &str) -> Option<Value> {
        lock(&self.shared).instances.get(name).and_then(|i| i.webhook.clone())
    }

    /// Preload a webhook row, e.g. an operator's own config.
    pub fn set_webhook_config(&self, name: &str, row: Option<Value>) {
        if let Some(i) = lock(&self.shared).instances.get_mut(name) {
            i.webhook = row;
        }
    }

    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared).latency = latency;
    }

    pub fn set_failure_rate(&self, rate: f64) {
        lock(&self.shared).failure_rate = rate.clamp(0.0, 1.0);
    }

    /// Connect answers carry only the QR string (`code`) and no image, as
    /// some servers do: the re-pair page then draws the PNG itself.
    pub fn set_qr_as_text(&self, text: bool) {
        lock(&self.shared).qr_as_text = text;
    }

    /// The customer scanned the QR code (or typed the pairing code): the
    /// session opens. Post the `connection.update` open webhook to tell the
    /// receiver at once, or let the next poll find it.
    pub fn scan(&self, name: &str) -> bool {
        match lock(&self.shared).instances.get_mut(name) {
            Some(i) => {
                i.behaviour = Behaviour::Open;
                i.pairing_number = None;
                true
            }
            None => false,
        }
    }

    /// Whole-server outage: every request answers 503 with an HTML body.
    pub fn set_down(&self, down: bool) {
        lock(&self.shared).down = down;
    }

    /// The stuck dispatcher of evolution-api issues #2257/#2401/#2665: every
    /// session stays `open`, but no instance posts a webhook until unstuck.
    pub fn set_webhooks_stuck(&self, stuck: bool) {
        lock(&self.shared).webhooks_stuck = stuck;
    }

    /// An Evolution 2.4 install that needs activation: every API call answers
    /// `503 LICENSE_REQUIRED` (`GET /` still answers).
    pub fn set_unlicensed(&self, unlicensed: bool) {
        lock(&self.shared).unlicensed = unlicensed;
    }

    /// What `GET /` reports as `version` from now on (an upgrade).
    pub fn set_version(&self, version: &str) {
        lock(&self.shared).version = version.to_string();
    }

    /// Every text sent through any instance, oldest first.
    pub fn sent_messages(&self) -> Vec<SimMessage> {
        lock(&self.shared).sent.clone()
    }

    /// Whether findMessages finds what was sent (Evolution's
    /// `DATABASE_SAVE_DATA_NEW_MESSAGE`; on by default here).
    pub fn set_store_messages(&self, on: bool) {
        lock(&self.shared).store_messages = on;
    }

    /// Answer each send this late, after recording it: a client that gives
    /// up sooner does not know the message went out.
    pub fn set_send_delay(&self, delay: Duration) {
        lock(&self.shared).send_delay = delay;
    }

    /// Requests seen for (method, path), e.g. `("GET", "/instance/connect/a")`.
    pub fn calls(&self, method: &str, path: &str) -> u64 {
        lock(&self.shared).calls.get(&(method.to_string(), path.to_string())).copied().unwrap_or(0)
    }

    pub fn total_calls(&self) -> u64 {
        lock(&self.shared).calls.values().sum()
    }

    pub fn reset_calls(&self) {
        lock(&self.shared).calls.clear();
    }

    /// POST an Evolution v2 webhook for `instance` to `target`, or to the
    /// instance's configured webhook URL (with its by-events suffix, headers
    /// and event filter). A zombie sends nothing.
    pub async fn post_webhook(
        &self,
        instance: &str,
        event: SimEvent,
        target: Option<&str>,
    ) -> Result<Delivery, String> {
        let (url, headers, body) = {
            let mut g = lock(&self.shared);
            g.seq += 1;
            let n = g.seq;
            let Some(inst) = g.instances.get(instance) else {
                return Err(format!("unknown instance {instance}"));
            };
            if inst.behaviour == Behaviour::ZombieOpen {
                return Ok(Delivery::Suppressed("zombie session sends no webhooks"));
            }
            if g.webhooks_stuck {
                return Ok(Delivery::Suppressed("the server's webhook dispatcher is stuck"));
            }
            let cfg = inst.webhook.as_ref().filter(|w| w.get("enabled") == Some(&Value::Bool(true)));
            let url = match (target, cfg) {
                (Some(t), _) => t.to_string(),
                (None, Some(w)) => {
                    let events: Vec<&str> = w
                        .get("events")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    if !events.is_empty() && !events.contains(&event.config_name().as_str()) {
                        return Ok(Delivery::Suppressed("event not subscribed"));
                    }
                    let base = w.get("url").and_then(Value::as_str).unwrap_or("").to_string();
                    if w.get("webhookByEvents") == Some(&Value::Bool(true)) {
                        format!("{}/{}", base.trim_end_matches('/'), event.suffix())
                    } else {
                        base
                    }
                }
                (None, None) => return Ok(Delivery::Suppressed("no webhook configured")),
            };
            let headers: Vec<(String, String)> = cfg
                .and_then(|w| w.get("headers"))
                .and_then(Value::as_object)
                .map(|h| h.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
                .unwrap_or_default();
            let body = json!({
                "event": event.name(),
                "instance": instance,
                "data": event.data(instance, n),
                "destination": url,
                "date_time": "2025-10-22T14:03:27.512Z",
                "sender": "5511987654321@s.whatsapp.net",
                "server_url": self.base_url,
                "apikey": null,
            });
            (url, headers, body)
        };
        let mut rb = self.client.post(&url).json(&body);
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        let resp = rb.send().await.map_err(|e| format!("webhook POST failed: {}", e.without_url()))?;
        Ok(Delivery::Sent(resp.status().as_u16()))
    }

    /// Stop serving and wait (bounded) for the server task.
    pub async fn shutdown(self) {
        self.serving.shutdown().await;
    }
}
