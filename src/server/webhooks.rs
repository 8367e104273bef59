//! `POST /webhooks/{provider}/{token}[/{*event}]` (docs/http-api.md, rule 7).
//!
//! WAHA extras: with `webhook_hmac_key`, a present `X-Webhook-Hmac` must
//! verify (401 otherwise); deliveries are deduplicated on
//! `X-Webhook-Request-Id`.
//!
//! Answers: 200 processed; 202 well-formed but about an instance nobody
//! configured (logged and counted — the provider must not retry); 400
//! malformed or without an instance field (naming it); 401 wrong token; 404
//! unknown provider; 413 over `server.max_body`; 503 when a health change
//! cannot be recorded right now (never a false 200).
//!
//! The provider and the token are checked before a byte of the body is read:
//! an unauthenticated request is answered 401 (or 404) at once, so strangers
//! cannot make the receiver buffer `max_body` each. Only an authenticated
//! request is read, up to `max_body` (413 beyond).
//!
//! Hot path: every accepted webhook of a known instance sets its coalesced
//! `last_webhook_at` in the in-memory index (flushed in batches); one proving
//! life for an instance already known healthy touches nothing else. Anything that may change health goes to
//! the single writer task, and the answer waits for its commit.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, oneshot};

use super::AppState;
use super::auth::{bearer, verify_hs256};
use crate::domain::health::Observation;
use crate::domain::{Health, InstanceKey, WebhookSignal};
use crate::providers::{parse_inbound, waha};
use crate::supervisor::Supervisor;

/// A `connecting`/QR signal is forwarded at most once per instance per window:
/// a reconnect loop posts ~3 a second.
pub const CONNECTING_DEBOUNCE_MS: i64 = 5_000;

/// How long a handler waits for the writer before answering 503.
const WRITE_WAIT: Duration = Duration::from_secs(5);

/// A health-relevant webhook for the writer task.
pub struct WriteRequest {
    pub key: InstanceKey,
    pub signal: WebhookSignal,
    pub done: oneshot::Sender<Result<Health, String>>,
}

/// The single writer: applies webhook observations one at a time, so bursts
/// never fan out into concurrent transactions.
pub async fn writer(sup: std::sync::Arc<Supervisor>, mut rx: mpsc::Receiver<WriteRequest>) {
    while let Some(req) = rx.recv().await {
        let res = sup.observe(&req.key, Observation::Webhook(req.signal), None).await;
        let answer = match res {
            Ok(Some(out)) => Ok(out.state.health),
            Ok(None) => Ok(sup.index().get(&req.key.provider, &req.key.name).map_or(Health::Unknown, |e| e.health())),
            Err(e) => {
                tracing::warn!(instance = %req.key, error = %e, "cannot record a webhook observation");
                Err(e.to_string())
            }
        };
        let _ = req.done.send(answer);
    }
}

/// Known event names become metric labels; anything else is `other` (a label
/// must never carry attacker-chosen text).
const KNOWN_EVENTS: &[&str] = &[
    "messages.upsert",
    "messages.update",
    "messages.delete",
    "messages.set",
    "send.message",
    "connection.update",
    "qrcode.updated",
    "logout.instance",
    "status.instance",
    "presence.update",
    "contacts.upsert",
    "contacts.update",
    "chats.upsert",
    "chats.update",
    "chats.delete",
    "groups.upsert",
    "group.update",
    "call",
    "webhookReceived",
    "webhookDelivery",
    "webhookStatus",
    "webhookConnected",
    "webhookDisconnected",
    "webhookPresence",
    "session.status",
    "message",
    "message.any",
    "message.ack",
    "message.reaction",
    "ReceivedCallback",
    "DeliveryCallback",
    "MessageStatusCallback",
    "ConnectedCallback",
    "DisconnectedCallback",
    "PresenceChatCallback",
];

/// The label index of `event`: its place in [`KNOWN_EVENTS`], or
/// `KNOWN_EVENTS.len()` for `other`.
fn event_label(event: &str) -> usize {
    KNOWN_EVENTS
        .iter()
        .position(|k| *k == event)
        .or_else(|| KNOWN_EVENTS.iter().position(|k| k.eq_ignore_ascii_case(event)))
        .unwrap_or(KNOWN_EVENTS.len())
}

fn label_name(i: usize) -> &'static str {
    KNOWN_EVENTS.get(i).copied().unwrap_or("other")
}

/// What the hot path needs per provider, built once per configuration: the
/// provider's place in the config and its `webhooks_received_total` handles
/// (one per event label, registered on first use so that `/metrics` lists
/// only series that happened), so that a request neither scans the provider
/// list nor builds a metric key with an owned label.
pub struct Routes {
    by_name: std::collections::HashMap<String, Route>,
}

struct Route {
    index: usize,
    name: String,
    received: Box<[std::sync::OnceLock<metrics::Counter>]>,
}

impl Route {
    fn received(&self, label: usize) -> &metrics::Counter {
        self.received[label].get_or_init(|| {
            metrics::counter!("wa_sentinel_webhooks_received_total",
                "provider" => self.name.clone(), "event" => label_name(label))
        })
    }
}

impl Routes {
    pub fn new(cfg: &crate::config::Config) -> Routes {
        let by_name = cfg
            .providers
            .iter()
            .enumerate()
            .map(|(index, p)| {
                let received = (0..=KNOWN_EVENTS.len()).map(|_| std::sync::OnceLock::new()).collect();
                (p.name.clone(), Route { index, name: p.name.clone(), received })
            })
            .collect();
        Routes { by_name }
    }
}

/// A JSON answer `{"status":…,"message":…}`.
fn reply(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{{\"status\":{},\"message\":{}}}", status.as_u16(), serde_json::Value::from(msg)),
    )
        .into_response()
}

/// The answers of the hot path, as static bodies (no allocation).
fn reply_static(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

const OK: &str = r#"{"status":200,"message":"ok"}"#;
const DUPLICATE: &str = r#"{"status":200,"message":"duplicate delivery: already processed"}"#;
const UNKNOWN_INSTANCE: &str = r#"{"status":202,"message":"unknown instance: recorded, not processed"}"#;

// The handlers take the request whole: axum's `HeaderMap` extractor would
// clone every header.
pub async fn receive_plain(
    State(app): State<AppState>,
    Path((provider, token)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    receive(app, provider, token, None, parts.headers, body).await
}

pub async fn receive_event(
    State(app): State<AppState>,
    Path((provider, token, event)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    receive(app, provider, token, Some(event), parts.headers, body).await
}

/// The body of an authenticated request, at most `max` bytes.
async fn read_body(headers: &HeaderMap, body: Body, max: usize) -> Result<Bytes, Response> {
    let too_large = || {
        metrics::counter!("wa_sentinel_webhooks_rejected_total", "reason" => "too_large").increment(1);
        reply(StatusCode::PAYLOAD_TOO_LARGE, "body larger than server.max_body")
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, max)).await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(too_large()),
        Err(_) => Err(reply(StatusCode::BAD_REQUEST, "the request body could not be read")),
    }
}

async fn receive(
    app: AppState,
    provider: String,
    token: String,
    event: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let core = app.core();
    let sup = &core.sup;
    let cfg = sup.config();
    let Some(route) = core.routes.by_name.get(&provider) else {
        metrics::counter!("wa_sentinel_webhooks_rejected_total", "reason" => "unknown_provider").increment(1);
        return reply(StatusCode::NOT_FOUND, "unknown provider");
    };
    let p = &cfg.providers[route.index];
    let now = sup.now();
    let header_ok = || {
        let Some(b) = bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())) else { return false };
        p.webhook_bearer.as_ref().is_some_and(|s| s.matches(b.as_bytes()))
            || p.webhook_jwt_key.as_ref().is_some_and(|k| verify_hs256(b, k, now))
    };
    if !p.webhook_token.matches(token.as_bytes()) && !header_ok() {
        metrics::counter!("wa_sentinel_webhooks_rejected_total", "reason" => "unauthorized").increment(1);
        return reply(StatusCode::UNAUTHORIZED, "wrong webhook token");
    }
    let body = match read_body(&headers, body, cfg.server.max_body).await {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    sup.index().saw_traffic(now);
    // WAHA signs with `hmac.key` when its version does; older core images never
    // sign, so a missing signature is accepted (the path token was right).
    if let Some(key) = &p.webhook_hmac_key
        && let Some(sig) = headers.get("x-webhook-hmac")
        && !sig.to_str().is_ok_and(|s| waha::verify_hmac(key, &body, s))
    {
        metrics::counter!("wa_sentinel_webhooks_rejected_total", "reason" => "bad_signature").increment(1);
        return reply(StatusCode::UNAUTHORIZED, "X-Webhook-Hmac does not match the body: check webhook_hmac_key");
    }
    // A retry of a delivery already answered 2xx is acknowledged, not redone.
    let request_id = headers.get("x-webhook-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(id) = &request_id
        && app.deliveries.seen(&p.name, id)
    {
        return reply_static(StatusCode::OK, DUPLICATE);
    }
    let processed = |resp: Response| {
        if let Some(id) = &request_id {
            app.deliveries.remember(&p.name, id);
        }
        resp
    };
    // The event suffix is the last path segment (`/messages-upsert`).
    let suffix = event.as_deref().map(|e| e.rsplit('/').next().unwrap_or(e));
    let inbound = match parse_inbound(p.kind, &body, suffix) {
        Ok(i) => i,
        Err(e) => {
            metrics::counter!("wa_sentinel_webhooks_rejected_total", "reason" => "malformed").increment(1);
            return reply(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    let label = event_label(&inbound.event);
    route.received(label).increment(1);
    let Some(entry) = sup.index().get(&p.name, &inbound.instance) else {
        tracing::info!(provider = %p.name, instance = %inbound.instance, event = label_name(label), "webhook for an unknown instance");
        metrics::counter!("wa_sentinel_webhooks_rejected_total", "reason" => "unknown_instance").increment(1);
        return processed(reply_static(StatusCode::ACCEPTED, UNKNOWN_INSTANCE));
    };
    // Every accepted webhook is the instance's last webhook, whatever its
    // event (a `session.status`, a `connecting`, a neutral ack): it proves the
    // provider's dispatcher reaches us. The silence rules measure from it too.
    entry.touch(now);
    let forward = match inbound.signal {
        WebhookSignal::Neutral => false,
        // A replica that does not lead the provider learns the leader's
        // verdicts only at its index's next refresh: a session-open event (rare,
        // and the proof that ends any outage) is forwarded whatever its cached
        // view says, so a recovery never waits for a refresh or a poll.
        WebhookSignal::Open => entry.health() != Health::Connected || !sup.leads(&p.name),
        WebhookSignal::Alive => entry.health() != Health::Connected,
        WebhookSignal::Connecting { .. } | WebhookSignal::Starting => entry.connecting_due(now, CONNECTING_DEBOUNCE_MS),
        WebhookSignal::Closed { .. } | WebhookSignal::LoggedOut { .. } | WebhookSignal::Dropped => true,
    };
    if !forward {
        return processed(reply_static(StatusCode::OK, OK));
    }
    drop(body); // nothing below needs it: do not hold up to max_body while waiting
    let (done, wait) = oneshot::channel();
    let key = InstanceKey::new(&p.name, &inbound.instance);
    let req = WriteRequest { key, signal: inbound.signal, done };
    // One deadline for queueing and committing: a stalled writer (database
    // down) makes the provider retry later instead of piling up requests.
    let outcome = tokio::time::timeout(WRITE_WAIT, async {
        core.writer.send(req).await.map_err(|_| ())?;
        wait.await.map_err(|_| ())?.map_err(|_| ())
    })
    .await;
    match outcome {
        Ok(Ok(_)) => processed(reply_static(StatusCode::OK, OK)),
        _ => reply(StatusCode::SERVICE_UNAVAILABLE, "cannot record the health change right now; retry later"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_known_events_become_labels() {
        let l = |e| super::label_name(super::event_label(e));
        assert_eq!(l("messages.upsert"), "messages.upsert");
        assert_eq!(l("MESSAGES.UPSERT"), "messages.upsert");
        assert_eq!(l("<script>"), "other");
    }
}
