//! An in-process, Evolution-v2-compatible HTTP server for the demo,
//! integration tests and benchmarks.
//!
//! It speaks the routes the sentinel uses, with the quirks that matter
//! (`evolution-api.md`): the existence guard runs before auth (unknown
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

use super::sim_server::SimMessage;
use crate::config::{ProviderConfig, ProviderKind, Secret};

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

/// What `post_webhook` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Posted; the receiver answered this status.
    Sent(u16),
    /// Not posted, and why (zombie, no webhook configured, event not subscribed).
    Suppressed(&'static str),
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

/// The QR string every simulator hands out, and its PNG (a real, scannable
/// QR code of that string, drawn once).
pub const SIM_QR_TEXT: &str =
    "2@wa-sentinel-simulator,c2ltdWxhdGVkLXB1YmxpYy1rZXk=,c2ltdWxhdGVkLWlkZW50aXR5,c2ltdWxhdGVkLWFkdg==";

/// The pairing code every simulator hands out for a number.
pub const SIM_PAIRING_CODE: &str = "WZYEH1YY";

/// The PNG of [`SIM_QR_TEXT`], as the simulators serve it.
pub fn sim_qr_png() -> &'static [u8] {
    static PNG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PNG.get_or_init(|| crate::pairing::qr_png(SIM_QR_TEXT).expect("a short QR string"))
}

/// [`sim_qr_png`] as a data URL, as Evolution, Z-API and W-API hand it out.
pub fn sim_qr_data_url() -> String {
    use base64::Engine;
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(sim_qr_png()))
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
    serving: super::sim_server::Serving,
}

/// v2's webhook event enum, for `webhook/set` validation.
const V2_EVENTS: &[&str] = crate::config::events::EVOLUTION_V2;

impl Simulator {
    /// Bind 127.0.0.1:0 and serve until dropped or [`Simulator::shutdown`].
    pub async fn start(opts: SimOptions) -> std::io::Result<Simulator> {
        super::install_crypto();
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
        let serving = super::sim_server::Serving::spawn(listener, app);
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

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn evo_error(status: u16, phrase: &str, message: Value) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply(code, json!({"status": status, "error": phrase, "response": {"message": message}}))
}

pub(super) fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

pub(super) fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (pct_decode(k) == key).then(|| pct_decode(&v.replace('+', " ")))
    })
}

async fn handle(State(shared): State<Shared>, req: Request) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers: HeaderMap = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
    let (latency, down, fail) = {
        let mut g = lock(&shared);
        *g.calls.entry((method.clone(), path.clone())).or_insert(0) += 1;
        let fail = g.failure_rate > 0.0 && g.roll() < g.failure_rate;
        (g.latency, g.down, fail)
    };
    if let Some(outage) = super::sim_server::delay_or_outage(latency, down).await {
        return outage;
    }
    if fail {
        return evo_error(500, "Internal Server Error", json!(["Error: Connection Closed"]));
    }
    let key = headers.get("apikey").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let segs: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(pct_decode).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    if let ("POST", ["message", "sendText", name]) = (method.as_str(), segs.as_slice()) {
        let (resp, delay) = send_text(&mut lock(&shared), name, &key, &body);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        return resp;
    }
    let mut g = lock(&shared);
    if g.unlicensed && !segs.is_empty() {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": 503, "code": "LICENSE_REQUIRED", "message": "This installation is not activated"}),
        );
    }
    let not_found_route = || evo_error(404, "Not Found", json!([format!("Cannot {method} {path}")]));
    match (method.as_str(), segs.as_slice()) {
        ("GET", []) => reply(
            StatusCode::OK,
            json!({"status": 200, "message": "Welcome to the Evolution API, it is working!", "version": g.version,
                   "clientName": "evolution", "documentation": "https://doc.evolution-api.com",
                   "whatsappWebVersion": "2.3000.1028450369"}),
        ),
        ("GET", ["instance", "fetchInstances"]) => {
            if key != g.api_key {
                return evo_error(401, "Unauthorized", json!("Unauthorized"));
            }
            let wanted = query_param(&query, "instanceName");
            if let Some(w) = &wanted
                && !g.instances.contains_key(w)
            {
                return evo_error(404, "Not Found", json!([format!("Instance \"{w}\" not found")]));
            }
            let rows: Vec<Value> = g
                .instances
                .iter()
                .filter(|(n, _)| wanted.as_ref().is_none_or(|w| w == *n))
                .map(|(n, i)| {
                    json!({"id": i.id, "name": n, "connectionStatus": i.behaviour.db_status(),
                           "ownerJid": (i.behaviour != Behaviour::Unpaired).then_some("5511987654321@s.whatsapp.net"),
                           "integration": "WHATSAPP-BAILEYS",
                           "token": i.token, "clientName": "evolution",
                           "disconnectionReasonCode": i.behaviour.terminal_code(),
                           "disconnectionObject": null, "disconnectionAt": null})
                })
                .collect();
            reply(StatusCode::OK, Value::Array(rows))
        }
        ("POST", ["chat", "findMessages", name]) => {
            let global = g.api_key.clone();
            let Some(inst) = g.instances.get(*name) else {
                return evo_error(404, "Not Found", json!([format!("The \"{name}\" instance does not exist")]));
            };
            if key != global && key != inst.token {
                return evo_error(401, "Unauthorized", json!("Unauthorized"));
            }
            find_messages(&g, name, &body)
        }
        (m, [res @ ("instance" | "webhook"), action, name]) => {
            let known = matches!(
                (m, *res, *action),
                ("GET", "instance", "connectionState" | "connect")
                    | ("POST", "instance", "restart")
                    | ("GET", "webhook", "find")
                    | ("POST", "webhook", "set")
            );
            if !known {
                return not_found_route();
            }
            let global = g.api_key.clone();
            // Existence is checked before auth (Evolution's guard order).
            let Some(inst) = g.instances.get(*name) else {
                return evo_error(404, "Not Found", json!([format!("The \"{name}\" instance does not exist")]));
            };
            if key != global && key != inst.token {
                return evo_error(401, "Unauthorized", json!("Unauthorized"));
            }
            let number = query_param(&query, "number").filter(|n| !n.is_empty());
            let text = g.qr_as_text;
            let inst = g.instances.get_mut(*name).expect("checked above");
            instance_route(inst, name, res, action, &body, number, text)
        }
        _ => not_found_route(),
    }
}

fn state_body(name: &str, state: &str) -> Value {
    json!({"instance": {"instanceName": name, "state": state}})
}

/// A QR object as connect answers it: `base64` (a PNG data URL) and `code`,
/// with a `pairingCode` when the socket was started with a number.
fn qr_body(inst: &SimInstance, text_only: bool) -> Value {
    let mut v = json!({"pairingCode": inst.pairing_number.as_ref().map(|_| SIM_PAIRING_CODE), "code": SIM_QR_TEXT,
                       "base64": sim_qr_data_url(), "count": 1});
    if text_only && let Some(m) = v.as_object_mut() {
        m.remove("base64");
    }
    v
}

fn instance_route(
    inst: &mut SimInstance,
    name: &str,
    res: &str,
    action: &str,
    body: &[u8],
    number: Option<String>,
    text_only: bool,
) -> Response {
    match (res, action) {
        ("instance", "connectionState") if inst.behaviour == Behaviour::Broken => {
            evo_error(500, "Internal Server Error", json!(["Connection Closed"]))
        }
        ("instance", "connectionState") => reply(StatusCode::OK, state_body(name, inst.behaviour.state())),
        ("instance", "connect") => match inst.behaviour {
            Behaviour::ClosedTransient { .. } | Behaviour::Replaced => {
                inst.behaviour = Behaviour::Open;
                reply(StatusCode::OK, state_body(name, "open"))
            }
            // A closed socket starts (in pairing mode with `?number=`); a
            // connecting one ignores the number and answers its current QR.
            Behaviour::LoggedOut | Behaviour::Banned => {
                inst.behaviour = Behaviour::ConnectingWithQr;
                inst.pairing_number = number;
                reply(StatusCode::OK, qr_body(inst, text_only))
            }
            Behaviour::ConnectingWithQr => reply(StatusCode::OK, qr_body(inst, text_only)),
            Behaviour::Unpaired => {
                if inst.pairing_number.is_none() {
                    inst.pairing_number = number;
                }
                reply(StatusCode::OK, qr_body(inst, text_only))
            }
            Behaviour::ReconnectLoop => reply(StatusCode::OK, state_body(name, "connecting")),
            Behaviour::Open | Behaviour::ZombieOpen => reply(StatusCode::OK, state_body(name, "open")),
            Behaviour::Broken => evo_error(500, "Internal Server Error", json!(["Connection Closed"])),
        },
        ("instance", "restart") => match inst.behaviour {
            // The state update is asynchronous in v2: the answer still says open.
            Behaviour::Open | Behaviour::ZombieOpen => {
                inst.behaviour = Behaviour::Open;
                reply(StatusCode::OK, state_body(name, "open"))
            }
            Behaviour::ConnectingWithQr => reply(StatusCode::OK, json!({"count": 0})),
            _ => reply(StatusCode::OK, json!({"error": true, "message": "[object Object]"})),
        },
        ("webhook", "find") => reply(StatusCode::OK, inst.webhook.clone().unwrap_or(Value::Null)),
        ("webhook", "set") => webhook_set(inst, body),
        _ => evo_error(404, "Not Found", json!([format!("Cannot handle {res}/{action}")])),
    }
}

fn webhook_set(inst: &mut SimInstance, body: &[u8]) -> Response {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return evo_error(400, "Bad Request", json!(["Unexpected token in JSON"])),
    };
    let Some(w) = parsed.get("webhook").and_then(Value::as_object) else {
        return evo_error(400, "Bad Request", json!([["instance requires property \"webhook\""]]));
    };
    let Some(enabled) = w.get("enabled").and_then(Value::as_bool) else {
        return evo_error(400, "Bad Request", json!([["webhook requires property \"enabled\""]]));
    };
    let url = match w.get("url").and_then(Value::as_str) {
        Some(u) if !u.is_empty() => u.to_string(),
        _ => {
            return evo_error(400, "Bad Request", json!([["webhook requires property \"url\""]]));
        }
    };
    let events: Option<Vec<String>> = w
        .get("events")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect());
    if enabled && events.is_none() {
        return evo_error(
            500,
            "Internal Server Error",
            json!("Cannot read properties of undefined (reading 'length')"),
        );
    }
    let events = events.unwrap_or_default();
    if let Some((i, _)) = events.iter().enumerate().find(|(_, e)| !V2_EVENTS.contains(&e.as_str())) {
        return evo_error(
            400,
            "Bad Request",
            json!([[format!("webhook.events[{i}] is not one of enum values: {}", V2_EVENTS.join(","))]]),
        );
    }
    let prev = inst.webhook.as_ref();
    // Omitted fields keep their old values (Prisma upsert).
    let keep = |k_in: &str, k_row: &str, default: Value| {
        w.get(k_in).cloned().or_else(|| prev.and_then(|p| p.get(k_row)).cloned()).unwrap_or(default)
    };
    let stored_events: Vec<String> = match (enabled, events.is_empty()) {
        (false, _) => Vec::new(),
        // `events: []` is stored as the full list.
        (true, true) => V2_EVENTS.iter().map(|s| s.to_string()).collect(),
        (true, false) => events,
    };
    let row = json!({
        "id": "cmh0sim0000000000000000",
        "url": url,
        "headers": keep("headers", "headers", json!({})),
        "enabled": enabled,
        "events": stored_events,
        "webhookByEvents": keep("byEvents", "webhookByEvents", json!(false)),
        "webhookBase64": keep("base64", "webhookBase64", json!(false)),
        "createdAt": "2025-10-20T12:01:03.552Z",
        "updatedAt": "2025-10-22T14:05:10.871Z",
        "instanceId": inst.id,
    });
    inst.webhook = Some(row.clone());
    reply(StatusCode::CREATED, row)
}

/// `POST /message/sendText/{name}`: the answer, and how long to hold it back.
fn send_text(g: &mut Inner, name: &str, key: &str, body: &[u8]) -> (Response, Duration) {
    if g.unlicensed {
        let r = reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": 503, "code": "LICENSE_REQUIRED", "message": "This installation is not activated"}),
        );
        return (r, Duration::ZERO);
    }
    let (global, v1) = (g.api_key.clone(), g.version.starts_with('1'));
    let Some(inst) = g.instances.get(name) else {
        return (
            evo_error(404, "Not Found", json!([format!("The \"{name}\" instance does not exist")])),
            Duration::ZERO,
        );
    };
    if key != global && key != inst.token {
        return (evo_error(401, "Unauthorized", json!("Unauthorized")), Duration::ZERO);
    }
    let Ok(parsed) = serde_json::from_slice::<Value>(body) else {
        return (evo_error(400, "Bad Request", json!(["Unexpected token in JSON"])), Duration::ZERO);
    };
    // Each version's schema: a body of the other version is refused (a cheap version probe).
    let (field, text) = if v1 {
        ("textMessage", parsed.pointer("/textMessage/text").and_then(Value::as_str))
    } else {
        ("text", parsed.get("text").and_then(Value::as_str))
    };
    let (Some(number), Some(text)) = (parsed.get("number").and_then(Value::as_str), text) else {
        let missing = if parsed.get("number").is_none() { "number" } else { field };
        return (
            evo_error(400, "Bad Request", json!([[format!("instance requires property \"{missing}\"")]])),
            Duration::ZERO,
        );
    };
    if text.trim().is_empty() {
        return (evo_error(400, "Bad Request", json!(["Text is required"])), Duration::ZERO);
    }
    if inst.behaviour.state() != "open" {
        return (evo_error(400, "Bad Request", json!(["Error: Connection Closed"])), Duration::ZERO);
    }
    let instance_id = inst.id.clone();
    g.seq += 1;
    let id = format!("3EB0{:036X}", g.seq);
    let at = crate::clock::now();
    let jid = if number.contains('@') { number.to_string() } else { format!("{number}@s.whatsapp.net") };
    g.sent.push(SimMessage {
        instance: name.to_string(),
        to: number.to_string(),
        text: text.to_string(),
        id: id.clone(),
        at,
        queued: false,
    });
    let body = if v1 {
        json!({"key": {"remoteJid": jid, "fromMe": true, "id": id},
               "message": {"extendedTextMessage": {"text": text}},
               "messageTimestamp": (at.0 / 1000).to_string(), "status": "PENDING"})
    } else {
        json!({"key": {"remoteJid": jid, "fromMe": true, "id": id}, "pushName": "Você", "status": "PENDING",
               "message": {"conversation": text}, "messageType": "conversation",
               "messageTimestamp": at.0 / 1000, "instanceId": instance_id, "source": "unknown"})
    };
    (reply(StatusCode::CREATED, body), g.send_delay)
}

/// `POST /chat/findMessages/{name}` (v2): `where.key.id`, `where.key.remoteJid`,
/// `where.key.fromMe` and `where.messageTimestamp.gte/lte` (ISO), newest
/// first, `offset` per page. Nothing is found while message storage is off.
fn find_messages(g: &Inner, name: &str, body: &[u8]) -> Response {
    let q: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let key = q.pointer("/where/key");
    let want_id = key.and_then(|k| k.get("id")).and_then(Value::as_str);
    let want_jid = key.and_then(|k| k.get("remoteJid")).and_then(Value::as_str);
    let from_me = key.and_then(|k| k.get("fromMe")).and_then(Value::as_bool);
    let bound = |which: &str| {
        q.pointer(&format!("/where/messageTimestamp/{which}"))
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.timestamp_millis())
    };
    let (gte, lte) = (bound("gte"), bound("lte"));
    let inst_id = g.instances.get(name).map(|i| i.id.clone()).unwrap_or_default();
    let page = usize::try_from(q.get("offset").and_then(Value::as_u64).unwrap_or(50)).unwrap_or(50).max(1);
    let records: Vec<Value> = g
        .sent
        .iter()
        .rev()
        .filter(|m| g.store_messages && m.instance == name && from_me != Some(false))
        .filter(|m| {
            let jid = if m.to.contains('@') { m.to.clone() } else { format!("{}@s.whatsapp.net", m.to) };
            want_id.is_none_or(|w| w == m.id)
                && want_jid.is_none_or(|w| w == jid)
                && gte.is_none_or(|t| m.at.0 >= t - 999)
                && lte.is_none_or(|t| m.at.0 <= t + 999)
        })
        .map(|m| {
            let jid = if m.to.contains('@') { m.to.clone() } else { format!("{}@s.whatsapp.net", m.to) };
            json!({"id": format!("cm{:022x}", m.at.0), "key": {"id": m.id, "fromMe": true, "remoteJid": jid},
                   "pushName": "Você", "messageType": "conversation", "message": {"conversation": m.text},
                   "messageTimestamp": m.at.0 / 1000, "instanceId": inst_id, "source": "unknown",
                   "contextInfo": null, "MessageUpdate": [{"status": "SERVER_ACK"}]})
        })
        .collect();
    let total = records.len();
    let shown: Vec<Value> = records.into_iter().take(page).collect();
    reply(
        StatusCode::OK,
        json!({"messages": {"total": total, "pages": total.div_ceil(page), "currentPage": 1, "records": shown}}),
    )
}
