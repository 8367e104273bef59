//! The embedded receiver and operator surface (docs/http-api.md, rule 7): every status
//! code, by-events paths, header auth, webhook-driven recovery under a second
//! end to end, debounce, idempotent duplicates, health/readiness/metrics and
//! the split listeners — against the real server on a socket. The admin
//! surface's tests are in [`admin`]; [`Live`] (a supervisor, its server and
//! an Evolution simulator) serves both and the operator tests.

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
    let port = crate::it::common::free_port;
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

mod admin;
