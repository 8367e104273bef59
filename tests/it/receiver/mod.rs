//! The embedded receiver and operator surface (docs/http-api.md, rule 7): every status
//! code, by-events paths, header auth, webhook-driven recovery under a second
//! end to end, debounce, idempotent duplicates, health/readiness/metrics, the
//! admin API and the status page — against the real server on a socket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wa_sentinel::config::raw::{RawNotifier, RawProvider};
use wa_sentinel::config::{self, RawConfig};
use wa_sentinel::domain::health::Observation;
use wa_sentinel::domain::{Health, InstanceKey, ProviderStatus};
use wa_sentinel::notify::worker::{DeliveryPolicy, OutboxWorker};
use wa_sentinel::server;
use wa_sentinel::sim::evolution::{Behaviour, SimOptions, Simulator};
use wa_sentinel::store::Store;
use wa_sentinel::supervisor::Supervisor;
use wa_sentinel::supervisor::scheduler::Ticks;
use wiremock::MockServer;

use crate::it::common::TestDb;

pub const TOKEN: &str = "hooktoken";
pub const ADMIN: &str = "admin-secret";

pub struct Live {
    pub sim: Simulator,
    pub sup: Arc<Supervisor>,
    pub store: Store,
    pub base: String,
    pub sink: MockServer,
    pub http: reqwest::Client,
    stop: CancellationToken,
    db: TestDb,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The Evolution v2 provider `evo` on the simulator, discovering, path token [`TOKEN`].
fn evo_provider(sim: &Simulator) -> RawProvider {
    RawProvider {
        name: "evo".into(),
        kind: "evolution".into(),
        base_url: sim.base_url(),
        api_version: Some("v2".into()),
        api_key: Some(sim.api_key().into()),
        webhook_token: Some(TOKEN.into()),
        discover: true,
        ..Default::default()
    }
}

impl Live {
    pub async fn start(instances: &[(&str, Behaviour)], tweak: impl FnOnce(&mut RawConfig)) -> Live {
        Live::start_on(TestDb::sqlite().await, None, instances, tweak).await
    }

    /// [`Live::start`] on `db`, with the supervisor's clock read from `clock`
    /// (Unix ms) when given: the status page and a report then see one `now`.
    pub async fn start_on(
        db: TestDb,
        clock: Option<Arc<std::sync::atomic::AtomicI64>>,
        instances: &[(&str, Behaviour)],
        tweak: impl FnOnce(&mut RawConfig),
    ) -> Live {
        let sim = Simulator::start(SimOptions {
            instances: instances.iter().map(|(n, b)| (n.to_string(), *b)).collect(),
            ..SimOptions::default()
        })
        .await
        .unwrap();
        let sink = crate::it::common::ok_sink().await;
        let mut raw = RawConfig::default();
        raw.providers.push(RawProvider { webhook_jwt_key: Some("shared-hs256-secret".into()), ..evo_provider(&sim) });
        raw.notifiers.push(RawNotifier {
            name: "sink".into(),
            kind: "webhook".into(),
            url: Some(sink.uri()),
            ..Default::default()
        });
        raw.server.admin_token = Some(ADMIN.into());
        raw.server.max_body = "64KiB".into();
        raw.supervisor.settle_delay = "0s".into();
        raw.restart.max_attempts_per_outage = 0; // recovery only by webhook here
        tweak(&mut raw);
        let cfg = config::validate(raw, &|_| "test".into()).expect("valid");
        let store = db.store.clone();
        let stop = CancellationToken::new();
        let worker = OutboxWorker::new(store.clone(), &cfg, DeliveryPolicy::from_config(&cfg)).unwrap();
        tokio::spawn(worker.clone().run(stop.child_token()));
        let now: wa_sentinel::supervisor::Clock = match clock {
            Some(c) => Arc::new(move || wa_sentinel::domain::Ts(c.load(std::sync::atomic::Ordering::SeqCst))),
            None => Arc::new(wa_sentinel::clock::now),
        };
        let sup = Supervisor::new(Arc::new(cfg), store.clone(), Some(worker), now).unwrap();
        sup.sync_inventory().await.unwrap();
        let ticks = Arc::new(Ticks::default());
        let state = server::start_background(sup.clone(), ticks, stop.child_token());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(server::serve(listener, state, stop.child_token()));
        Live { sim, sup, store, base, sink, http: reqwest::Client::new(), stop, db }
    }

    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// The database URL (for the CLI run against the same database).
    pub fn db_url(&self) -> &str {
        &self.db.url
    }

    pub async fn health(&self, name: &str) -> Health {
        self.store.instance(&InstanceKey::new("evo", name)).await.unwrap().unwrap().state.health
    }

    /// Put an instance into a notified outage without a provider: a close webhook.
    pub async fn knock_down(&self, name: &str) {
        let key = InstanceKey::new("evo", name);
        self.sup
            .observe(&key, Observation::Polled(ProviderStatus::Disconnected { reason: Some(428) }), None)
            .await
            .unwrap();
        self.sup
            .observe(&key, Observation::Polled(ProviderStatus::Disconnected { reason: Some(428) }), None)
            .await
            .unwrap();
        assert!(self.store.instance(&key).await.unwrap().unwrap().state.outage.is_some());
    }

    pub async fn sink_kinds(&self) -> Vec<String> {
        let reqs = self.sink.received_requests().await.unwrap_or_default();
        reqs.iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["kind"].as_str().unwrap().to_string())
            .collect()
    }
}

pub fn upsert(instance: &str) -> String {
    json!({
        "event": "messages.upsert",
        "instance": instance,
        "data": {"key": {"remoteJid": "5511999999999@s.whatsapp.net", "fromMe": false, "id": "ABC"}, "message": {"conversation": "oi"}},
        "destination": "https://x", "date_time": "2025-11-21T10:00:00.000Z", "server_url": "https://evo", "apikey": null
    })
    .to_string()
}

fn conn(instance: &str, state: &str, reason: u16) -> String {
    json!({"event": "connection.update", "instance": instance, "data": {"instance": instance, "state": state, "statusReason": reason}}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_code_of_the_webhook_route() {
    let live = Live::start(&[("a", Behaviour::Open)], |_| {}).await;
    let ok = format!("/webhooks/evo/{TOKEN}");
    assert_eq!(live.post(&ok, upsert("a")).await.0, 200);
    let (code, body) = live.post(&ok, upsert("stranger")).await;
    assert_eq!(code, 202, "{body}");
    let (code, body) = live.post(&ok, "{not json").await;
    assert_eq!(code, 400);
    assert!(body.contains("malformed"), "{body}");
    let (code, body) = live.post(&ok, json!({"event": "messages.upsert", "data": {}}).to_string()).await;
    assert_eq!(code, 400);
    assert!(body.contains("instance"), "names the missing field: {body}");
    assert_eq!(live.post("/webhooks/evo/wrong-token", upsert("a")).await.0, 401);
    assert_eq!(live.post(&format!("/webhooks/nope/{TOKEN}"), upsert("a")).await.0, 404);
    let big = format!("{{\"event\":\"messages.upsert\",\"instance\":\"a\",\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    assert_eq!(live.post(&ok, big).await.0, 413);
}

/// Send only the head of a POST announcing `content_length` bytes, and wait
/// up to 3 s for an answer: its status, or `None` when the server waits for
/// the body.
async fn answer_before_body(live: &Live, path: &str, content_length: usize) -> Option<u16> {
    answer_before_body_with(live, path, "Content-Type: application/json\r\n", content_length).await
}

/// [`answer_before_body`] with other header lines (each ending in `\r\n`).
async fn answer_before_body_with(live: &Live, path: &str, headers: &str, content_length: usize) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = live.base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {content_length}\r\n\r\n");
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 12];
    match tokio::time::timeout(Duration::from_secs(3), sock.read_exact(&mut buf)).await {
        Ok(Ok(_)) => std::str::from_utf8(&buf[9..12]).ok()?.parse().ok(),
        _ => None,
    }
}

/// The provider and the token are checked before the body is read: a
/// stranger is answered at once, without the server waiting for (and
/// buffering up to `max_body` of) the body; an authenticated oversized body
/// still gets its 413, and an authenticated body is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_checked_before_the_body_is_read() {
    let live = Live::start(&[("a", Behaviour::Open)], |_| {}).await;
    assert_eq!(answer_before_body(&live, "/webhooks/evo/wrong-token", 60 * 1024).await, Some(401));
    assert_eq!(answer_before_body(&live, &format!("/webhooks/nope/{TOKEN}"), 60 * 1024).await, Some(404));
    assert_eq!(answer_before_body(&live, &format!("/webhooks/evo/{TOKEN}"), 70 * 1024).await, Some(413));
    assert_eq!(answer_before_body(&live, &format!("/webhooks/evo/{TOKEN}"), 60 * 1024).await, None, "read: waits");
    assert_eq!(live.post(&format!("/webhooks/evo/{TOKEN}"), upsert("a")).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_events_suffixes_are_routed() {
    let live = Live::start(&[("a", Behaviour::Open)], |_| {}).await;
    for suffix in ["messages-upsert", "connection-update", "status-instance", "qrcode-updated"] {
        let (code, body) = live.post(&format!("/webhooks/evo/{TOKEN}/{suffix}"), upsert("a")).await;
        assert_eq!(code, 200, "/{suffix}: {body}");
    }
    // The event only in the path: the suffix names it.
    let body = json!({"instance": "a", "data": {"state": "open", "statusReason": 200}}).to_string();
    assert_eq!(live.post(&format!("/webhooks/evo/{TOKEN}/connection-update"), body).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evolution_jwt_header_is_accepted_besides_the_path_token() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::{KeyInit, Mac};
    let live = Live::start(&[("a", Behaviour::Open)], |_| {}).await;
    let now = chrono::Utc::now().timestamp();
    let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let p = URL_SAFE_NO_PAD
        .encode(json!({"iat": now, "exp": now + 600, "app": "evolution", "action": "webhook"}).to_string());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"shared-hs256-secret").unwrap();
    mac.update(format!("{h}.{p}").as_bytes());
    let jwt = format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    let r = live
        .http
        .post(format!("{}/webhooks/evo/other", live.base))
        .bearer_auth(&jwt)
        .body(upsert("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = live
        .http
        .post(format!("{}/webhooks/evo/other", live.base))
        .bearer_auth("forged.jwt.value")
        .body(upsert("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule7_a_webhook_recovers_a_down_instance_and_the_notice_arrives_within_a_second() {
    let live = Live::start(&[("a", Behaviour::Open)], |_| {}).await;
    live.knock_down("a").await;
    assert!(
        crate::it::process::wait_for(Duration::from_secs(5), || futures_lite_kinds(&live)
            .contains(&"instance_down".to_string()))
        .await
    );
    let t0 = Instant::now();
    let (code, _) = live.post(&format!("/webhooks/evo/{TOKEN}/messages-upsert"), upsert("a")).await;
    assert_eq!(code, 200);
    assert_eq!(live.health("a").await, Health::Connected, "connected at once, not at the next poll");
    let arrived = crate::it::process::wait_for(Duration::from_secs(1), || {
        futures_lite_kinds(&live).contains(&"instance_recovered".to_string())
    })
    .await;
    assert!(arrived, "recovery notice not at the sink within 1 s");
    let elapsed = t0.elapsed();
    let outages = live.store.outages(Some(&InstanceKey::new("evo", "a")), false, 5).await.unwrap();
    assert_eq!(outages[0].recovered_by.as_deref(), Some("webhook"));
    eprintln!("webhook -> notice at the sink: {elapsed:?}");
}

/// The sink's notice kinds, read synchronously (wiremock's API is async).
fn futures_lite_kinds(live: &Live) -> Vec<String> {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(live.sink_kinds()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_100_connecting_events_is_debounced() {
    let live = Live::start(&[("a", Behaviour::Open)], |_| {}).await;
    let id = live.store.instance(&InstanceKey::new("evo", "a")).await.unwrap().unwrap().id;
    let before = live.store.events(&id, 1000).await.unwrap().len();
    for _ in 0..100 {
        assert_eq!(live.post(&format!("/webhooks/evo/{TOKEN}"), conn("a", "connecting", 200)).await.0, 200);
    }
    let written = live.store.events(&id, 1000).await.unwrap().len() - before;
    assert!(written <= 1, "100 connecting events wrote {written} events");
    assert_eq!(live.health("a").await, Health::Connecting);
    assert!(live.store.instance(&InstanceKey::new("evo", "a")).await.unwrap().unwrap().state.outage.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_reordered_deliveries_are_harmless() {
    let live = Live::start(&[("a", Behaviour::Open)], |_| {}).await;
    let logout = conn("a", "close", 401);
    for _ in 0..3 {
        assert_eq!(live.post(&format!("/webhooks/evo/{TOKEN}"), logout.clone()).await.0, 200);
    }
    assert_eq!(live.health("a").await, Health::LoggedOut);
    let outages = live.store.outages(Some(&InstanceKey::new("evo", "a")), false, 10).await.unwrap();
    assert_eq!(outages.len(), 1);
    let keys: Vec<String> = live.store.outbox_all().await.unwrap().into_iter().map(|r| r.0).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    // A late `open` (delivered out of order) proves life: the outage closes once.
    assert_eq!(live.post(&format!("/webhooks/evo/{TOKEN}"), conn("a", "open", 200)).await.0, 200);
    assert_eq!(live.post(&format!("/webhooks/evo/{TOKEN}"), conn("a", "open", 200)).await.0, 200);
    assert_eq!(live.store.outages(None, true, 10).await.unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_readyz_and_metrics() {
    let live = Live::start(&[("a", Behaviour::Open)], |_| {}).await;
    live.post(&format!("/webhooks/evo/{TOKEN}"), upsert("a")).await;
    let get = |p: &str| live.http.get(format!("{}{p}", live.base)).send();
    assert_eq!(get("/healthz").await.unwrap().status().as_u16(), 200);
    assert_eq!(get("/readyz").await.unwrap().status().as_u16(), 200);
    live.sup.poll_cycle().await.unwrap();
    let text = get("/metrics").await.unwrap().text().await.unwrap();
    for series in [
        "wa_sentinel_webhooks_received_total",
        "wa_sentinel_polls_total",
        "wa_sentinel_poll_cycle_seconds",
        "wa_sentinel_instances",
        "wa_sentinel_outbox_pending",
        "wa_sentinel_outages_open",
    ] {
        assert!(text.contains(series), "{series} missing from /metrics");
    }
    assert!(!text.contains(TOKEN), "no token in metric labels");
}

/// With the database gone, `/readyz`, the API and the status page say so in
/// operator words, never with the driver's error (the log has it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_about_a_failing_database_use_operator_words() {
    let live = Live::start(&[("a", Behaviour::Open)], |_| {}).await;
    live.store.close().await;
    let r = live.http.get(format!("{}/readyz", live.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let text = r.text().await.unwrap();
    assert!(text.starts_with("not ready: database unreachable"), "{text}");
    let r = live.http.get(format!("{}/api/instances", live.base)).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let api: Value = r.json().await.unwrap();
    assert_eq!(api["error"]["code"], "database");
    let r = live.http.get(format!("{}/", live.base)).basic_auth("admin", Some(ADMIN)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let page = r.text().await.unwrap();
    for answer in [text.as_str(), api["error"]["message"].as_str().unwrap(), page.as_str()] {
        assert!(answer.contains("database unreachable"), "{answer}");
        for raw in ["pool", "sqlx", "error returned", "SELECT", ".db"] {
            assert!(!answer.contains(raw), "`{raw}` leaked: {answer}");
        }
    }
}

/// `server.admin_listen`: the daemon serves the admin surface (`/`, `/login`,
/// `/api/*`, `/metrics`) only there, and the public listener only webhooks
/// and health.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_admin_listen_the_public_listener_serves_only_webhooks_and_health() {
    let sim = Simulator::start(SimOptions { instances: vec![("a".into(), Behaviour::Open)], ..SimOptions::default() })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (public, admin) = (format!("127.0.0.1:{}", port()), format!("127.0.0.1:{}", port()));
    let mut raw = RawConfig::default();
    raw.database.url = format!("sqlite://{}/d.db", dir.path().display());
    raw.server.listen = public.clone();
    raw.server.admin_listen = Some(admin.clone());
    raw.server.admin_token = Some(ADMIN.into());
    raw.providers.push(evo_provider(&sim));
    let cfg = config::validate(raw, &|_| "test".into()).expect("valid");
    let shutdown = CancellationToken::new();
    let (_reload_tx, reload) = tokio::sync::mpsc::channel(1);
    let signals = wa_sentinel::daemon::Signals { shutdown: shutdown.clone(), reload };
    let daemon = tokio::spawn(wa_sentinel::daemon::run(cfg, signals, None));
    let http = reqwest::Client::new();
    let up = crate::it::process::wait_for(Duration::from_secs(20), || {
        std::net::TcpStream::connect(&public).is_ok() && std::net::TcpStream::connect(&admin).is_ok()
    })
    .await;
    assert!(up, "both listeners up");
    let code = |r: reqwest::Response| r.status().as_u16();
    let get = |base: &str, p: &str| http.get(format!("http://{base}{p}")).bearer_auth(ADMIN).send();
    let hook = |base: &str| http.post(format!("http://{base}/webhooks/evo/{TOKEN}")).body(upsert("a")).send();
    // Public: webhooks and health, nothing of the admin surface.
    assert_ne!(code(hook(&public).await.unwrap()), 404);
    assert_eq!(code(get(&public, "/healthz").await.unwrap()), 200);
    assert_ne!(code(get(&public, "/readyz").await.unwrap()), 404);
    for p in ["/", "/api/instances", "/metrics", "/instances/evo/a", "/api/report", "/status.css", "/login"] {
        assert_eq!(code(get(&public, p).await.unwrap()), 404, "public {p}");
    }
    let login = http
        .post(format!("http://{public}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(code(login), 404, "public /login");
    // Admin: the surface, and no webhooks.
    let api = http.get(format!("http://{admin}/api/instances")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(code(api), 200);
    let page = http.get(format!("http://{admin}/")).basic_auth("u", Some(ADMIN)).send().await.unwrap();
    assert_eq!(code(page), 200);
    assert_eq!(code(get(&admin, "/metrics").await.unwrap()), 200);
    assert_eq!(code(get(&admin, "/status.css").await.unwrap()), 200);
    assert_eq!(code(get(&admin, "/api/report").await.unwrap()), 200);
    assert_eq!(code(hook(&admin).await.unwrap()), 404, "no webhooks on the admin listener");
    shutdown.cancel();
    daemon.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_needs_the_token_and_answers_json() {
    let live = Live::start(&[("a", Behaviour::Open), ("b", Behaviour::ClosedTransient { reason: 428 })], |_| {}).await;
    live.sup.poll_cycle().await.unwrap();
    let get = |p: &str, auth: Option<&str>| {
        let mut r = live.http.get(format!("{}{p}", live.base));
        if let Some(a) = auth {
            r = r.bearer_auth(a);
        }
        r.send()
    };
    let r = get("/api/instances", None).await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "unauthorized");
    assert_eq!(get("/api/instances", Some("nope")).await.unwrap().status().as_u16(), 401);
    let all: Value = get("/api/instances", Some(ADMIN)).await.unwrap().json().await.unwrap();
    assert_eq!(all["instances"].as_array().unwrap().len(), 2);
    let conn: Value = get("/api/instances?health=connected", Some(ADMIN)).await.unwrap().json().await.unwrap();
    assert_eq!(conn["instances"].as_array().unwrap().len(), 1);
    assert_eq!(get("/api/instances?health=bogus", Some(ADMIN)).await.unwrap().status().as_u16(), 400);
    let one: Value = get("/api/instances/evo/b", Some(ADMIN)).await.unwrap().json().await.unwrap();
    assert_eq!(one["instance"]["health"], "disconnected");
    assert!(!one["events"].as_array().unwrap().is_empty());
    assert_eq!(get("/api/instances/evo/zzz", Some(ADMIN)).await.unwrap().status().as_u16(), 404);
    // The providers' section as JSON.
    assert_eq!(get("/api/providers", None).await.unwrap().status().as_u16(), 401);
    let provs: Value = get("/api/providers", Some(ADMIN)).await.unwrap().json().await.unwrap();
    assert_eq!(provs.as_array().map(Vec::len), Some(1), "{provs}");
    assert_eq!((provs[0]["name"].as_str(), provs[0]["kind"].as_str()), (Some("evo"), Some("evolution")), "{provs}");
    assert_eq!(provs[0]["state"], "ok", "{provs}");
    let m = live
        .http
        .post(format!("{}/api/instances/evo/a/maintenance", live.base))
        .bearer_auth(ADMIN)
        .json(&json!({"for": "2h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(m.status().as_u16(), 200);
    let r = live
        .http
        .post(format!("{}/api/instances/evo/b/restart", live.base))
        .bearer_auth(ADMIN)
        .json(&json!({"force": true}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(live.sim.calls("GET", "/instance/connect/b"), 1);
    let r =
        live.http.post(format!("{}/api/instances/evo/b/restart", live.base)).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 409, "inside the cooldown without force");
    let open: Value = get("/api/outages?open=true", Some(ADMIN)).await.unwrap().json().await.unwrap();
    assert!(open["outages"].is_array());
}

/// POST `body` as one chunk of a chunked request (no `Content-Length`); the
/// answer's status.
async fn chunked_post(live: &Live, path: &str, headers: &str, body: &[u8]) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = live.base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Transfer-Encoding: chunked\r\n\r\n");
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(format!("{:x}\r\n", body.len()).as_bytes()).await.unwrap();
    sock.write_all(body).await.unwrap();
    let _ = sock.write_all(b"\r\n0\r\n\r\n").await;
    let mut buf = [0u8; 12];
    match tokio::time::timeout(Duration::from_secs(3), sock.read_exact(&mut buf)).await {
        Ok(Ok(_)) => std::str::from_utf8(&buf[9..12]).ok()?.parse().ok(),
        _ => None,
    }
}

/// POST an admin API route with this bearer token, content type and body.
async fn api_post(live: &Live, path: &str, token: &str, content_type: Option<&str>, body: String) -> (u16, Value) {
    let mut r = live.http.post(format!("{}{path}", live.base)).bearer_auth(token).body(body);
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    let r = r.send().await.unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

/// The admin API judges the token from the request's head: a wrong token is
/// a 401 whatever the body is (no content type, broken JSON), and the server
/// answers it without waiting for the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_admin_token_is_refused_before_the_body_is_read() {
    let live = Live::start(&[("a", Behaviour::Open)], |_| {}).await;
    let path = "/api/instances/evo/a/maintenance";
    let (code, body) = api_post(&live, path, "nope", None, r#"{"for": "2h"}"#.into()).await;
    assert_eq!(code, 401, "no content type, wrong token: {body}");
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    let (code, body) = api_post(&live, path, "nope", Some("application/json"), "{not json".into()).await;
    assert_eq!(code, 401, "broken JSON, wrong token: {body}");
    let (code, _) = api_post(&live, "/api/instances/evo/a/restart", "nope", Some("text/plain"), "x".into()).await;
    assert_eq!(code, 401);
    let wrong = "Authorization: Bearer nope\r\nContent-Type: application/json\r\n";
    assert_eq!(answer_before_body_with(&live, path, wrong, 10 * 1024).await, Some(401), "answered from the head");
    // The right token with what the route cannot take: named in the one error shape.
    let (code, body) = api_post(&live, path, ADMIN, None, r#"{"for": "2h"}"#.into()).await;
    assert_eq!((code, body["error"]["code"].as_str()), (415, Some("unsupported_media_type")), "{body}");
    let (code, body) = api_post(&live, path, ADMIN, Some("application/json"), "{not json".into()).await;
    assert_eq!((code, body["error"]["code"].as_str()), (400, Some("bad_request")), "{body}");
    assert!(
        live.store.instance(&InstanceKey::new("evo", "a")).await.unwrap().unwrap().state.maintenance_until.is_none()
    );
}

/// A wrong admin token counts as a failed sign-in of the address even when
/// its body is broken: the 11th in a minute is refused with 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_admin_tokens_with_broken_bodies_count_towards_the_limit() {
    let live = Live::start(&[("a", Behaviour::Open)], |_| {}).await;
    let path = "/api/instances/evo/a/maintenance";
    for i in 0..10 {
        let (ct, body) = if i % 2 == 0 { (None, "{}") } else { (Some("application/json"), "{not json") };
        assert_eq!(api_post(&live, path, "nope", ct, body.into()).await.0, 401, "failure {i}");
    }
    let (code, body) = api_post(&live, path, "nope", Some("application/json"), "{not json".into()).await;
    assert_eq!((code, body["error"]["code"].as_str()), (429, Some("rate_limited")), "{body}");
    let (code, _) = api_post(&live, path, ADMIN, Some("application/json"), r#"{"for": "2h"}"#.into()).await;
    assert_eq!(code, 429, "locked out: even the right token is not looked at");
}

/// Admin routes read at most 16 KiB: a larger body with the right credential
/// is refused with 413, announced or not; nothing is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_body_over_16_kib_is_refused_with_413() {
    let live = Live::start(&[("a", Behaviour::Open)], |_| {}).await;
    let big = format!(r#"{{"for": "2h", "pad": "{}"}}"#, "x".repeat(17 * 1024));
    let (code, body) =
        api_post(&live, "/api/instances/evo/a/maintenance", ADMIN, Some("application/json"), big.clone()).await;
    assert_eq!((code, body["error"]["code"].as_str()), (413, Some("too_large")), "{body}");
    let right = format!("Authorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\n");
    let path = "/api/instances/evo/a/restart";
    assert_eq!(answer_before_body_with(&live, path, &right, 17 * 1024).await, Some(413), "refused from the head");
    // Not announced: a chunked body is cut off at the limit.
    assert_eq!(chunked_post(&live, "/api/instances/evo/a/maintenance", &right, big.as_bytes()).await, Some(413));
    assert!(
        live.store.instance(&InstanceKey::new("evo", "a")).await.unwrap().unwrap().state.maintenance_until.is_none()
    );
    // The status page's forms too, once signed in.
    let cookie = sign_in(&live, ADMIN).await.1.unwrap().split(';').next().unwrap().to_string();
    let r = live
        .http
        .post(format!("{}/instances/evo/a/maintenance", live.base))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("duration=2h&pad={}", "x".repeat(17 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
}

/// The status page's action forms judge the session from the head: without
/// one (or with HTTP Basic, which may only look) the request is refused
/// before its body is read or parsed, whatever it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_actions_without_a_session_are_refused_before_the_body_is_read() {
    let live = Live::start(&[("a", Behaviour::Open)], |_| {}).await;
    let post = |ct: Option<&'static str>, body: &'static str, basic: bool| {
        let mut r = live.http.post(format!("{}/instances/evo/a/restart", live.base)).body(body);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        if basic {
            r = r.basic_auth("admin", Some(ADMIN));
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post(None, "force=1", false).await, 401, "no session, no content type");
    assert_eq!(post(Some("application/x-www-form-urlencoded"), "%%%=&&", false).await, 401, "broken form");
    assert_eq!(post(Some("application/json"), "{", false).await, 401);
    assert_eq!(post(None, "force=1", true).await, 403, "Basic may look, not act");
    let path = "/instances/evo/a/restart";
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    assert_eq!(answer_before_body_with(&live, path, form, 10 * 1024).await, Some(401), "answered from the head");
    assert_eq!(live.sim.calls("GET", "/instance/connect/a") + live.sim.calls("POST", "/instance/restart/a"), 0);
    // The sign-in form is the credential itself: a body without a readable
    // token is a failed sign-in, counted like a wrong token.
    let login = |ct: Option<&'static str>, body: &'static str| {
        let mut r = live.http.post(format!("{}/login", live.base)).body(body);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    for i in 0..5 {
        assert_eq!(login(None, "token=nope").await, 401, "no content type {i}");
        assert_eq!(login(Some("application/json"), "{\"token\":").await, 401, "not a form {i}");
    }
    assert_eq!(login(Some("application/x-www-form-urlencoded"), "token=nope").await, 429, "the 11th failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_token_the_api_and_page_are_disabled_not_open() {
    let live = Live::start(&[("a", Behaviour::Open)], |r| r.server.admin_token = None).await;
    let r = live.http.get(format!("{}/api/instances", live.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = live.http.get(format!("{}/", live.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_needs_auth_escapes_names_and_lists_instances() {
    let live = Live::start(&[("a", Behaviour::Open), ("<b>evil</b>", Behaviour::Open)], |_| {}).await;
    live.sup.poll_cycle().await.unwrap();
    let r = live.http.get(format!("{}/", live.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    let html = live
        .http
        .get(format!("{}/", live.base))
        .basic_auth("admin", Some(ADMIN))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("name=\"viewport\""), "usable on a phone");
    assert!(html.contains("&lt;b&gt;evil&lt;/b&gt;") && !html.contains("<b>evil</b>"), "escaped");
    assert!(html.contains(">connected<"));
    // The login form sets a session cookie that opens the page.
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = no_redirect
        .post(format!("{}/login", live.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_string();
    assert!(!cookie.contains(ADMIN), "the cookie is not the token");
    let r = no_redirect.get(format!("{}/?tenant=default", live.base)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = no_redirect
        .post(format!("{}/login", live.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

/// POST the login form; (status, `Set-Cookie`, `Retry-After`).
async fn sign_in(live: &Live, token: &str) -> (u16, Option<String>, Option<String>) {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = client
        .post(format!("{}/login", live.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    let h = |k: &str| r.headers().get(k).map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), h("set-cookie"), h("retry-after"))
}

/// Failed sign-ins are limited per client address: 10 a minute, then 429
/// with `Retry-After`, and a locked-out address's credential is not even
/// looked at (the right token gets 429 too), on the form, Basic and the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_limited_per_client_address() {
    let live = Live::start(&[("a", Behaviour::Open)], |_| {}).await;
    for i in 0..10 {
        assert_eq!(sign_in(&live, "nope").await.0, 401, "failure {i}");
    }
    let (code, _, retry) = sign_in(&live, "nope").await;
    assert_eq!(code, 429);
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=7).contains(&retry), "{retry}");
    assert_eq!(sign_in(&live, ADMIN).await.0, 429, "locked out: not evaluated");
    let page = live.http.get(format!("{}/", live.base)).basic_auth("u", Some(ADMIN)).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 429);
    let api = live.http.get(format!("{}/api/instances", live.base)).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(api.status().as_u16(), 429);
    assert!(api.headers().get("retry-after").is_some());
    // Webhooks are not the admin surface: unaffected.
    assert_eq!(live.post(&format!("/webhooks/evo/{TOKEN}"), upsert("a")).await.0, 200);
}

/// Sessions are random, server-side, expiring (12 h), `HttpOnly`,
/// `SameSite=Strict`, and `wa-sentinel logout-all` ends them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_random_server_side_and_revocable() {
    let live = Live::start(&[("a", Behaviour::Open)], |_| {}).await;
    let (c1, c2) = (sign_in(&live, ADMIN).await.1.unwrap(), sign_in(&live, ADMIN).await.1.unwrap());
    assert_ne!(c1, c2, "a random value per sign-in");
    for attr in ["HttpOnly", "SameSite=Strict", "Max-Age=43200", "Path=/"] {
        assert!(c1.contains(attr), "{attr}: {c1}");
    }
    assert!(!c1.contains("Secure"), "no https public_url: no Secure");
    let pair = |c: &str| c.split(';').next().unwrap().to_string();
    let page = |cookie: String| live.http.get(format!("{}/", live.base)).header("cookie", cookie).send();
    assert_eq!(page(pair(&c1)).await.unwrap().status().as_u16(), 200);
    let forged = format!("wa_sentinel_session={}", "0".repeat(64));
    assert_eq!(page(forged).await.unwrap().status().as_u16(), 401, "only sessions the server created");
    let cfg = live.db.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, format!("[database]\nurl = \"{cfg}\"\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wa-sentinel"))
        .env_remove("WA_SENTINEL_CONFIG")
        .arg("--config")
        .arg(&path)
        .arg("logout-all")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 status-page session(s) ended"));
    assert_eq!(page(pair(&c1)).await.unwrap().status().as_u16(), 401, "ended by logout-all");
    assert_eq!(page(pair(&c2)).await.unwrap().status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_secure_when_the_public_url_is_https() {
    let live =
        Live::start(&[("a", Behaviour::Open)], |r| r.server.public_url = Some("https://sentinel.example.com".into()))
            .await;
    let cookie = sign_in(&live, ADMIN).await.1.unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
}

/// Headless Chromium renders the status page (HTTP Basic in the URL). Skipped
/// when Chromium is absent, except under `CI=true`, where `.ci/run` installs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_renders_in_headless_chromium() {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| std::process::Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()));
    let Some(chromium) = chromium else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but Chromium is not installed");
        eprintln!("skipping: Chromium is not installed");
        return;
    };
    let live = Live::start(&[("shop-main", Behaviour::Open), ("lost-1", Behaviour::LoggedOut)], |_| {}).await;
    live.sup.poll_cycle().await.unwrap();
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://admin:{ADMIN}@{}/", live.base.trim_start_matches("http://"));
    let out = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=390,844",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(&url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out).await.expect("chromium timed out").unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("<h1>wa-sentinel</h1>"), "rendered DOM:\n{dom}");
    assert!(dom.contains("lost-1") && dom.contains("logged_out"), "{dom}");
    let lost = dom.find("lost-1").unwrap();
    let healthy = dom.find("shop-main").unwrap();
    assert!(lost < healthy, "trouble is listed first");
}
