//! An in-process WAHA server for the demo and the tests, on [`SimServer`]
//! (latency, failures, outage, call counts).
//!
//! It speaks what the sentinel uses (`docs/providers.md`, WAHA): `X-Api-Key`
//! (401 NestJS body), `GET /api/sessions[?all=true]` (STOPPED only with
//! `all`), `GET /api/sessions/{s}` (404 "Session not found"), `POST
//! …/{start,stop,restart}` (answering the SessionDTO, `STARTING`), and `PUT
//! /api/sessions/{s}`, which replaces the whole config and restarts the
//! session, and refuses unknown properties like a WAHA run with
//! `WAHA_HTTP_STRICT_MODE=true` (400 `property name should not exist`). Each session follows a scripted [`WahaBehaviour`];
//! [`WahaSim::post_webhook`] posts an event to every configured webhook that
//! subscribes to it, signed (`X-Webhook-Hmac`) when the entry has a key.
//!
//! Texts: `POST /api/sendText` is accepted from a `WORKING` session and
//! recorded ([`WahaSim::sent_messages`]; the answer is NOWEB's `WAMessage`),
//! else 422 with the bare "Session status is not as expected" object; `GET
//! /api/{s}/chats/{chatId}/messages` lists what the session sent to that chat
//! (`filter.fromMe`, `filter.timestamp.gte`, `limit`).
//!
//! Re-pairing: in `SCAN_QR_CODE`, `GET /api/{s}/auth/qr` answers the PNG
//! (`{mimetype, data}` with `Accept: application/json`, `{value}` with
//! `?format=raw`) and `POST /api/{s}/auth/request-code` a pairing code; in any
//! other status both answer 422 naming it. [`WahaSim::scan`] opens the session.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use axum::response::Response;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use super::Delivery;
use super::server::{SimBackend, SimMessage, SimRequest, SimServer, json_reply, lock};
use crate::config::{ProviderConfig, ProviderKind, Secret};

/// What a simulated session does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WahaBehaviour {
    /// `WORKING`, sends webhooks.
    Working,
    /// `WORKING` but sends no webhooks until restarted.
    Zombie,
    /// `STARTING` (stays so until something else is scripted).
    Starting,
    /// `SCAN_QR_CODE`: waiting for a person.
    ScanQr,
    /// `STOPPED`: `start` brings it back.
    Stopped,
    /// `FAILED` after a transient drop: `restart` brings it back.
    Failed,
    /// `FAILED` because it was logged out: `restart` leads to `SCAN_QR_CODE`.
    FailedLoggedOut,
    /// `PASSKEY_REQUIRED`, a status newer than the sentinel.
    Passkey,
}

impl WahaBehaviour {
    pub fn status(self) -> &'static str {
        match self {
            WahaBehaviour::Working | WahaBehaviour::Zombie => "WORKING",
            WahaBehaviour::Starting => "STARTING",
            WahaBehaviour::ScanQr => "SCAN_QR_CODE",
            WahaBehaviour::Stopped => "STOPPED",
            WahaBehaviour::Failed | WahaBehaviour::FailedLoggedOut => "FAILED",
            WahaBehaviour::Passkey => "PASSKEY_REQUIRED",
        }
    }

    fn restarted(self) -> WahaBehaviour {
        match self {
            WahaBehaviour::FailedLoggedOut | WahaBehaviour::ScanQr => WahaBehaviour::ScanQr,
            WahaBehaviour::Passkey => WahaBehaviour::Passkey,
            _ => WahaBehaviour::Working,
        }
    }
}

/// A WAHA webhook event the simulator can post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WahaEvent {
    /// `session.status` with the session's current status.
    SessionStatus,
    Message,
    MessageAck,
}

impl WahaEvent {
    pub fn name(self) -> &'static str {
        match self {
            WahaEvent::SessionStatus => "session.status",
            WahaEvent::Message => "message",
            WahaEvent::MessageAck => "message.ack",
        }
    }
}

#[derive(Debug)]
struct Session {
    behaviour: WahaBehaviour,
    config: Value,
}

#[derive(Debug)]
struct Backend {
    api_key: Option<String>,
    sessions: Mutex<BTreeMap<String, Session>>,
    sent: Mutex<Vec<SimMessage>>,
}

/// The running WAHA simulator; derefs to its [`SimServer`] (faults, counts).
#[derive(Debug)]
pub struct WahaSim {
    server: SimServer,
    backend: Arc<Backend>,
}

impl Deref for WahaSim {
    type Target = SimServer;
    fn deref(&self) -> &SimServer {
        &self.server
    }
}

fn err(status: u16, message: &str, phrase: &str) -> Response {
    json_reply(status, json!({"statusCode": status, "message": message, "error": phrase}))
}

fn session_json(name: &str, s: &Session) -> Value {
    let me = match s.behaviour {
        WahaBehaviour::Working | WahaBehaviour::Zombie => json!({"id": "5516993630000@c.us", "pushName": name}),
        _ => Value::Null,
    };
    json!({"name": name, "status": s.behaviour.status(), "config": s.config, "me": me, "engine": {"engine": "NOWEB"}})
}

impl SimBackend for Backend {
    fn handle(&self, req: &SimRequest) -> Response {
        if let Some(key) = &self.api_key
            && req.header("x-api-key") != Some(key.as_str())
        {
            return json_reply(401, json!({"message": "Unauthorized", "statusCode": 401}));
        }
        let mut sessions = lock(&self.sessions);
        match (req.method.as_str(), req.segs().as_slice()) {
            ("POST", ["api", "sendText"]) => self.send_text(&sessions, req),
            ("GET", ["api", session, "chats", chat, "messages"]) => {
                if !sessions.contains_key(*session) {
                    return err(404, "Session not found", "Not Found");
                }
                self.messages(session, chat, req)
            }
            ("GET", ["api", "sessions"]) => {
                let all = req.query("all").as_deref() == Some("true");
                let list: Vec<Value> = sessions
                    .iter()
                    .filter(|(_, s)| all || s.behaviour != WahaBehaviour::Stopped)
                    .map(|(n, s)| session_json(n, s))
                    .collect();
                json_reply(200, Value::Array(list))
            }
            (m, ["api", "sessions", name, rest @ ..]) => {
                let Some(s) = sessions.get_mut(*name) else {
                    return err(404, "Session not found", "Not Found");
                };
                match (m, rest) {
                    ("GET", []) => json_reply(200, session_json(name, s)),
                    ("PUT", []) => {
                        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                            return err(400, "the body is not JSON", "Bad Request");
                        };
                        let unknown = strict_mode_violations(&body);
                        if !unknown.is_empty() {
                            return json_reply(
                                400,
                                json!({"message": unknown, "error": "Bad Request", "statusCode": 400}),
                            );
                        }
                        let Some(config) = body.get("config").cloned().filter(Value::is_object) else {
                            return err(400, "config must be an object", "Bad Request");
                        };
                        s.config = config;
                        // An update stops and starts a running session.
                        if s.behaviour == WahaBehaviour::Zombie {
                            s.behaviour = WahaBehaviour::Working;
                        }
                        json_reply(200, session_json(name, s))
                    }
                    ("POST", ["start"]) => {
                        if s.behaviour == WahaBehaviour::Stopped {
                            s.behaviour = WahaBehaviour::Working;
                        }
                        let mut body = session_json(name, s);
                        body["status"] = json!("STARTING");
                        json_reply(201, body)
                    }
                    ("POST", ["restart"]) => {
                        s.behaviour = s.behaviour.restarted();
                        let mut body = session_json(name, s);
                        body["status"] = json!("STARTING");
                        json_reply(201, body)
                    }
                    ("POST", ["stop"]) => {
                        s.behaviour = WahaBehaviour::Stopped;
                        json_reply(201, session_json(name, s))
                    }
                    _ => err(404, &format!("Cannot {m} /api/sessions/{name}/{}", rest.join("/")), "Not Found"),
                }
            }
            // Re-pairing: the QR code and a pairing code, in `SCAN_QR_CODE` only.
            (m @ ("GET" | "POST"), ["api", name, "auth", what @ ("qr" | "request-code")]) => {
                let Some(s) = sessions.get(*name) else {
                    return err(404, "Session not found", "Not Found");
                };
                if s.behaviour != WahaBehaviour::ScanQr {
                    return match *what {
                        "qr" => json_reply(
                            422,
                            json!({"error": "Session status is not as expected. Try again later or restart the session",
                                   "session": name, "status": s.behaviour.status(), "expected": ["SCAN_QR_CODE"]}),
                        ),
                        _ => err(
                            422,
                            &format!(
                                "Can request code only in SCAN_QR_CODE status. The current status is {}",
                                s.behaviour.status()
                            ),
                            "Unprocessable Entity",
                        ),
                    };
                }
                match (m, *what) {
                    ("GET", "qr") if req.query("format").as_deref() == Some("raw") => {
                        json_reply(200, json!({"value": super::SIM_QR_TEXT}))
                    }
                    // WAHA compares the header with exactly this value.
                    ("GET", "qr") if req.header("accept") == Some("application/json") => {
                        use base64::Engine;
                        let data = base64::engine::general_purpose::STANDARD.encode(super::sim_qr_png());
                        json_reply(200, json!({"mimetype": "image/png", "data": data}))
                    }
                    ("GET", "qr") => axum::response::IntoResponse::into_response((
                        [(axum::http::header::CONTENT_TYPE, "image/png")],
                        super::sim_qr_png().to_vec(),
                    )),
                    ("POST", "request-code") => {
                        let phone = serde_json::from_slice::<Value>(&req.body)
                            .ok()
                            .and_then(|b| b.get("phoneNumber").and_then(Value::as_str).map(str::to_string));
                        match phone {
                            Some(p) if !p.is_empty() => {
                                let c = super::SIM_PAIRING_CODE;
                                json_reply(201, json!({"code": format!("{}-{}", &c[..4], &c[4..])}))
                            }
                            _ => err(400, "phoneNumber should not be empty", "Bad Request"),
                        }
                    }
                    _ => err(404, &format!("Cannot {m} /api/{name}/auth/{what}"), "Not Found"),
                }
            }
            (m, _) => err(404, &format!("Cannot {m} /{}", req.segs.join("/")), "Not Found"),
        }
    }
}

impl Backend {
    fn send_text(&self, sessions: &BTreeMap<String, Session>, req: &SimRequest) -> Response {
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return err(400, "the body is not JSON", "Bad Request");
        };
        let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(session), Some(chat), Some(text)) = (field("session"), field("chatId"), field("text")) else {
            return err(400, "session, chatId and text are required", "Bad Request");
        };
        let Some(s) = sessions.get(&session) else {
            return err(404, &format!("We didn't find a session with name '{session}'."), "Not Found");
        };
        if s.behaviour.status() != "WORKING" {
            return json_reply(
                422,
                json!({"error": "Session status is not as expected. Try again later or restart the session",
                       "session": session, "status": s.behaviour.status(), "expected": ["WORKING"]}),
            );
        }
        // WAHA appends `@c.us` to a chat id without `@`.
        let chat = if chat.contains('@') { chat } else { format!("{chat}@c.us") };
        let mut sent = lock(&self.sent);
        let at = crate::clock::now();
        let id = format!("true_{chat}_3EB0{:018X}", sent.len() + 1);
        sent.push(SimMessage {
            instance: session,
            to: chat.clone(),
            text: text.clone(),
            id: id.clone(),
            at,
            queued: false,
        });
        json_reply(
            201,
            json!({"id": id, "timestamp": at.0 / 1000, "from": "5516993630000@c.us", "fromMe": true, "source": "api",
                   "body": text, "hasMedia": false, "media": null, "ack": 0, "ackName": "PENDING", "replyTo": null,
                   "_data": {"key": {"remoteJid": chat, "fromMe": true}}}),
        )
    }

    fn messages(&self, session: &str, chat: &str, req: &SimRequest) -> Response {
        let since = req.query("filter.timestamp.gte").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
        let limit = req.query("limit").and_then(|s| s.parse::<usize>().ok()).unwrap_or(100);
        let list: Vec<Value> = lock(&self.sent)
            .iter()
            .rev()
            .filter(|m| m.instance == session && m.to == chat && m.at.0 / 1000 >= since)
            .take(limit)
            .map(|m| {
                json!({"id": m.id, "timestamp": m.at.0 / 1000, "from": "5516993630000@c.us", "fromMe": true,
                       "source": "api", "body": m.text, "to": m.to, "hasMedia": false, "ack": 2,
                       "ackName": "DEVICE", "replyTo": null, "_data": {}})
            })
            .collect();
        json_reply(200, Value::Array(list))
    }
}

/// What `PUT /api/sessions/{s}` accepts (WAHA's `SessionUpdateRequest`,
/// `SessionConfig` and `WebhookConfig`; devlikeapro/waha 2024.10,
/// `src/structures/sessions.dto.ts`): with `WAHA_HTTP_STRICT_MODE=true` its
/// validation pipe (`forbidNonWhitelisted`) refuses any other property with
/// 400, and the simulator always does. `metadata` is a free-form map.
const UPDATE_REQUEST: &[&str] = &["config"];
const SESSION_CONFIG: &[&str] = &["webhooks", "metadata", "proxy", "debug", "noweb"];
const WEBHOOK_CONFIG: &[&str] = &["url", "events", "hmac", "retries", "customHeaders"];

/// class-validator's messages for the properties strict mode refuses
/// (`property name should not exist`, `config.webhooks.0.property x should not exist`).
fn strict_mode_violations(body: &Value) -> Vec<String> {
    fn extra(v: &Value, allowed: &[&str], at: &str, out: &mut Vec<String>) {
        for k in v.as_object().into_iter().flat_map(|m| m.keys()) {
            if !allowed.contains(&k.as_str()) {
                out.push(format!("{at}property {k} should not exist"));
            }
        }
    }
    let mut out = Vec::new();
    extra(body, UPDATE_REQUEST, "", &mut out);
    if let Some(config) = body.get("config") {
        extra(config, SESSION_CONFIG, "config.", &mut out);
        for (i, hook) in config.get("webhooks").and_then(Value::as_array).into_iter().flatten().enumerate() {
            extra(hook, WEBHOOK_CONFIG, &format!("config.webhooks.{i}."), &mut out);
        }
    }
    out
}

/// Lowercase hex HMAC-SHA512, as WAHA signs.
fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha512>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

impl WahaSim {
    /// Serve these sessions (empty webhook configs), with this `X-Api-Key` if any.
    pub async fn start(api_key: Option<&str>, sessions: &[(&str, WahaBehaviour)]) -> std::io::Result<WahaSim> {
        let backend = Arc::new(Backend {
            api_key: api_key.map(str::to_string),
            sessions: Mutex::default(),
            sent: Mutex::default(),
        });
        let server = SimServer::start(backend.clone()).await?;
        let sim = WahaSim { server, backend };
        for (name, b) in sessions {
            sim.add_session(name, *b);
        }
        Ok(sim)
    }

    pub fn api_key(&self) -> Option<&str> {
        self.backend.api_key.as_deref()
    }

    /// A ready `waha` provider config pointing here (discovery on).
    pub fn provider_config(&self, name: &str) -> ProviderConfig {
        ProviderConfig {
            api_key: self.api_key().map(Secret::literal),
            discover: true,
            ..ProviderConfig::new(name, ProviderKind::Waha, &self.base_url(), Secret::literal("sim-webhook-token"))
        }
    }

    pub fn add_session(&self, name: &str, behaviour: WahaBehaviour) {
        let config = json!({"metadata": {"sim": "true"}, "proxy": null, "debug": false, "webhooks": []});
        lock(&self.backend.sessions).insert(name.to_string(), Session { behaviour, config });
    }

    pub fn remove_session(&self, name: &str) -> bool {
        lock(&self.backend.sessions).remove(name).is_some()
    }

    /// The customer scanned the QR code: the session is `WORKING`.
    pub fn scan(&self, name: &str) -> bool {
        self.set_behaviour(name, WahaBehaviour::Working)
    }

    /// Change a session's behaviour; `false` if it does not exist.
    pub fn set_behaviour(&self, name: &str, behaviour: WahaBehaviour) -> bool {
        lock(&self.backend.sessions).get_mut(name).map(|s| s.behaviour = behaviour).is_some()
    }

    pub fn behaviour(&self, name: &str) -> Option<WahaBehaviour> {
        lock(&self.backend.sessions).get(name).map(|s| s.behaviour)
    }

    /// The session's whole config, as `GET /api/sessions/{s}` shows it.
    pub fn config(&self, name: &str) -> Option<Value> {
        lock(&self.backend.sessions).get(name).map(|s| s.config.clone())
    }

    /// Replace the session's config (an operator's own settings, a webhook).
    pub fn set_config(&self, name: &str, config: Value) {
        if let Some(s) = lock(&self.backend.sessions).get_mut(name) {
            s.config = config;
        }
    }

    /// Every text sent through any session, oldest first.
    pub fn sent_messages(&self) -> Vec<SimMessage> {
        lock(&self.backend.sent).clone()
    }

    /// Session config writes (`PUT /api/sessions/{s}`), each one a session restart.
    pub fn puts(&self, name: &str) -> u64 {
        self.calls("PUT", &format!("/api/sessions/{name}"))
    }

    /// Post `event` to every configured webhook of `session` that subscribes
    /// to it (`*` = all), signed when the entry has an `hmac.key`. A zombie
    /// sends nothing. Returns the last receiver status.
    pub async fn post_webhook(&self, session: &str, event: WahaEvent) -> Result<Delivery, String> {
        let (targets, body) = {
            let sessions = lock(&self.backend.sessions);
            let Some(s) = sessions.get(session) else { return Err(format!("unknown session {session}")) };
            if s.behaviour == WahaBehaviour::Zombie {
                return Ok(Delivery::Suppressed("zombie session sends no webhooks"));
            }
            let hooks = s.config.get("webhooks").and_then(Value::as_array).cloned().unwrap_or_default();
            let targets: Vec<(String, Option<String>)> = hooks
                .iter()
                .filter(|h| {
                    h.get("events")
                        .and_then(Value::as_array)
                        .is_some_and(|e| e.iter().any(|x| x == event.name() || x == "*"))
                })
                .filter_map(|h| {
                    let url = h.get("url").and_then(Value::as_str)?.to_string();
                    let key = h.get("hmac").and_then(|m| m.get("key")).and_then(Value::as_str).map(str::to_string);
                    Some((url, key))
                })
                .collect();
            let now = crate::clock::now().0;
            let payload = match event {
                WahaEvent::SessionStatus => json!({"status": s.behaviour.status(), "statuses": []}),
                WahaEvent::Message => {
                    json!({"id": format!("false_5516992840000@c.us_SIM{now}"), "timestamp": now / 1000,
                                             "from": "5516992840000@c.us", "fromMe": false, "body": "hello from the simulator"})
                }
                WahaEvent::MessageAck => {
                    json!({"id": format!("true_5516992840000@c.us_SIM{now}"), "ack": 3, "ackName": "READ"})
                }
            };
            let body = json!({"id": format!("evt_sim{now}"), "timestamp": now, "event": event.name(), "session": session,
                              "me": null, "payload": payload, "engine": "NOWEB"});
            (targets, serde_json::to_vec(&body).map_err(|e| e.to_string())?)
        };
        if targets.is_empty() {
            return Ok(Delivery::Suppressed("no webhook subscribed to this event"));
        }
        let mut last = 0;
        for (url, key) in targets {
            let mut headers = vec![("X-Webhook-Request-Id".to_string(), uuid::Uuid::now_v7().simple().to_string())];
            if let Some(k) = key {
                headers.push(("X-Webhook-Hmac".into(), sign(&k, &body)));
                headers.push(("X-Webhook-Hmac-Algorithm".into(), "sha512".into()));
            }
            last = self.post(&url, &headers, body.clone()).await?;
        }
        Ok(Delivery::Sent(last))
    }
}
