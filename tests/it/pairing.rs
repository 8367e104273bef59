//! Re-pair links end to end: a logged-out (or never-paired) number's down
//! notice carries a link, the customer's page shows the provider's QR code
//! through wa-sentinel (Evolution, WAHA and Z-API simulators; W-API on
//! wiremock over its fixtures), hands out pairing codes, and after the scan
//! says only "connected"; bad, expired and revoked links; what reaches the
//! browser; what a burst of reloads costs the provider; operators' links;
//! the report's time to reconnect; the page in headless Chromium.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wa_sentinel::config::raw::{RawInstance, RawNotifier, RawProvider};
use wa_sentinel::config::{self, RawConfig};
use wa_sentinel::domain::InstanceKey;
use wa_sentinel::notify::worker::{DeliveryPolicy, OutboxWorker};
use wa_sentinel::server;
use wa_sentinel::sim::evolution::{Behaviour, SimEvent, SimOptions, Simulator};
use wa_sentinel::sim::waha::{WahaBehaviour, WahaSim};
use wa_sentinel::sim::zapi::{ZapiBehaviour, ZapiSim};
use wa_sentinel::sim::{SIM_PAIRING_CODE, SIM_QR_TEXT, sim_qr_png};
use wa_sentinel::store::Store;
use wa_sentinel::supervisor::Supervisor;
use wa_sentinel::supervisor::scheduler::Ticks;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer};

use crate::it::common::TestDb;
use crate::it::providers::{fixture_json, json_fixture};

const ADMIN: &str = "pair-admin-secret";
const EVO_TOKEN: &str = "evo-hook-token";
const ZAPI_TOKEN: &str = "zapi-instance-token-0001";
const ZAPI_CLIENT: &str = "zapi-client-token-0002";
const WAHA_KEY: &str = "waha-api-key-0003";
const WAPI_TOKEN: &str = "wapi-instance-token-0004";

/// A daemon's serving half on `db`: the public URL is its own listener, a
/// webhook notifier (`/hook`) and a Slack notifier (`/slack`) on one sink.
pub struct Rig {
    pub sup: Arc<Supervisor>,
    pub store: Store,
    pub base: String,
    pub sink: MockServer,
    pub http: reqwest::Client,
    stop: CancellationToken,
    _db: TestDb,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn evo(sim: &Simulator) -> RawProvider {
    RawProvider {
        name: "evo".into(),
        kind: "evolution".into(),
        base_url: sim.base_url(),
        api_version: Some("v2".into()),
        api_key: Some(sim.api_key().into()),
        webhook_token: Some(EVO_TOKEN.into()),
        discover: true,
        ..Default::default()
    }
}

impl Rig {
    pub async fn start(
        db: TestDb,
        providers: Vec<RawProvider>,
        instances: Vec<RawInstance>,
        tweak: impl FnOnce(&mut RawConfig),
    ) -> Rig {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let sink = crate::it::common::ok_sink().await;
        let mut raw = RawConfig { providers, instances, ..RawConfig::default() };
        for (name, kind) in [("hook", "webhook"), ("slack", "slack")] {
            raw.notifiers.push(RawNotifier {
                name: name.into(),
                kind: kind.into(),
                url: Some(format!("{}/{name}", sink.uri())),
                ..Default::default()
            });
        }
        raw.server.public_url = Some(base.clone());
        raw.server.admin_token = Some(ADMIN.into());
        raw.supervisor.settle_delay = "0s".into();
        tweak(&mut raw);
        let cfg = config::validate(raw, &|_| "test".into()).expect("valid");
        let store = db.store.clone();
        let stop = CancellationToken::new();
        let worker = OutboxWorker::new(store.clone(), &cfg, DeliveryPolicy::from_config(&cfg)).unwrap();
        tokio::spawn(worker.clone().run(stop.child_token()));
        let sup =
            Supervisor::new(Arc::new(cfg), store.clone(), Some(worker), Arc::new(wa_sentinel::clock::now)).unwrap();
        sup.sync_inventory().await.unwrap();
        let state = server::start_background(sup.clone(), Arc::new(Ticks::default()), stop.child_token());
        tokio::spawn(server::serve(listener, state, stop.child_token()));
        Rig { sup, store, base, sink, http: reqwest::Client::new(), stop, _db: db }
    }

    /// The bodies the sink got on `/hook` (the notice JSON), in order.
    async fn notices(&self) -> Vec<Value> {
        self.sink
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == "/hook")
            .filter_map(|r| serde_json::from_slice(&r.body).ok())
            .collect()
    }

    /// Wait for the down notice of `instance` that carries a link.
    async fn pair_url(&self, instance: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(n) =
                self.notices().await.into_iter().find(|n| n["instance"] == instance && n["pair_url"].is_string())
            {
                return n["pair_url"].as_str().unwrap().to_string();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no notice with a pair_url for {instance}: {:?}",
                self.notices().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait for the Slack notices (each notifier's delivery is its own:
    /// the webhook's may land first).
    async fn slack_texts(&self, containing: &str) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let texts: Vec<String> = self
                .sink
                .received_requests()
                .await
                .unwrap_or_default()
                .iter()
                .filter(|r| r.url.path() == "/slack")
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                .collect();
            if texts.iter().any(|t| t.contains(containing)) || std::time::Instant::now() >= deadline {
                return texts;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn get(&self, url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let r = self.http.get(url).send().await.unwrap();
        let (code, headers) = (r.status().as_u16(), r.headers().clone());
        (code, headers, r.bytes().await.unwrap().to_vec())
    }

    async fn page(&self, url: &str) -> (u16, String) {
        let (code, _, body) = self.get(url).await;
        (code, String::from_utf8(body).unwrap())
    }

    /// POST the code form of the page at `url`, as the page's own form does.
    async fn ask_code(&self, url: &str, phone: &str) -> (u16, String) {
        let token = url.rsplit('/').next().unwrap();
        let form = wa_sentinel::pairing::form_token(token);
        let r = self
            .http
            .post(format!("{url}/code"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", &self.base)
            .header("sec-fetch-site", "same-origin")
            .body(format!("form={form}&phone={}", phone.replace('+', "%2B").replace(' ', "+")))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn events(&self, provider: &str, name: &str) -> Vec<(String, Value)> {
        let rec = self.store.instance(&InstanceKey::new(provider, name)).await.unwrap().unwrap();
        let events = self.store.events(&rec.id, 500).await.unwrap();
        events.into_iter().map(|e| (e.kind, serde_json::from_str(&e.detail).unwrap_or_default())).collect()
    }
}

/// Nothing a provider must keep to itself appears in `body`.
fn assert_no_secret(body: &[u8], secrets: &[&str], what: &str) {
    let text = String::from_utf8_lossy(body);
    for s in secrets {
        assert!(!text.contains(s), "{what} reveals {s:?}:\n{text}");
    }
}

/// The host:port of a base URL (what a page must never name).
fn host_of(url: &str) -> String {
    url.trim_start_matches("http://").trim_end_matches('/').to_string()
}

crate::on_both_backends_with_db!(
    a_logged_out_number_s_notice_carries_a_link_whose_page_shows_the_provider_s_qr_until_the_scan
);

/// The whole path on Evolution: a 401 logout opens an outage whose one down
/// notice carries `pair_url` (the JSON and the Slack text), stored only as a
/// hash; the page starts the closed socket once (committed first), shows the
/// simulator's PNG byte for byte, and after the scan says only "connected";
/// the outage is recorded as recovered through the link, and the report
/// says so. Nothing the provider must keep reaches the browser.
async fn a_logged_out_number_s_notice_carries_a_link_whose_page_shows_the_provider_s_qr_until_the_scan(db: TestDb) {
    let sim = Simulator::start(SimOptions {
        instances: vec![("lost-1".into(), Behaviour::LoggedOut), ("shop".into(), Behaviour::Open)],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let rig = Rig::start(db, vec![evo(&sim)], vec![], |_| {}).await;
    rig.sup.poll_cycle().await.unwrap();
    let url = rig.pair_url("lost-1").await;
    let token = url.strip_prefix(&format!("{}/pair/", rig.base)).expect("<public_url>/pair/<token>").to_string();
    assert!(wa_sentinel::pairing::well_formed(&token), "256 random bits in hex: {token}");
    let notice = rig.notices().await.into_iter().find(|n| n["instance"] == "lost-1").unwrap();
    assert_eq!((notice["kind"].as_str(), notice["cause"].as_str()), (Some("instance_logged_out"), Some("logged_out")));
    assert!(rig.notices().await.iter().all(|n| n["instance"] != "shop"), "a healthy number gets no notice");
    // Every channel's text has the line, in the notice's language.
    let line = format!("To reconnect, open {url}");
    let slack = rig.slack_texts(&line).await;
    assert!(slack.iter().any(|b| b.contains(&line)), "{slack:?}");
    // Stored as a hash, bound to the instance and its outage.
    let rec = rig.store.instance(&InstanceKey::new("evo", "lost-1")).await.unwrap().unwrap();
    let links = rig.store.pair_links_of(&rec.id, 10).await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].token_hash, wa_sentinel::pairing::token_hash(&token));
    assert_eq!(links[0].outage_id.as_deref(), rec.state.outage.as_ref().map(|o| o.id.as_str()));
    assert_eq!(links[0].created_by, "notice");
    assert!(rec.state.last_restart_attempt.is_none(), "a logout is never restarted by itself (rule 13)");

    let (code, headers, body) = rig.get(&url).await;
    let page = String::from_utf8(body.clone()).unwrap();
    assert_eq!(code, 200, "{page}");
    assert!(headers["content-security-policy"].to_str().unwrap().starts_with("default-src 'self'"));
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["referrer-policy"], "same-origin", "the link goes nowhere else");
    assert!(page.contains(&format!("src=\"/pair/{token}/qr.png\"")), "{page}");
    assert!(page.contains("<meta http-equiv=\"refresh\" content=\"35\">"), "before Evolution's 45 s QR dies: {page}");
    assert!(!page.contains("<script") && !page.contains("style=\""), "{page}");
    let (code, headers, png) = rig.get(&format!("{url}/qr.png")).await;
    assert_eq!(code, 200);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(png, sim_qr_png(), "the provider's image, byte for byte");
    let secrets = [sim.api_key(), &host_of(&sim.base_url()), EVO_TOKEN, ADMIN];
    assert_no_secret(&body, &secrets, "the page");
    assert_no_secret(&png, &secrets, "the image");
    // The closed socket was started once, through the committed step.
    assert_eq!(sim.calls("GET", "/instance/connect/lost-1"), 1);
    let rec = rig.store.instance(&InstanceKey::new("evo", "lost-1")).await.unwrap().unwrap();
    assert!(rec.state.last_restart_attempt.is_some(), "committed before the provider was called");
    let events = rig.events("evo", "lost-1").await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    for k in ["pair_link_issued", "pair_link_viewed", "pair_start", "recovery_result"] {
        assert!(kinds.contains(&k), "{k} on the timeline: {kinds:?}");
    }
    let viewed = events.iter().find(|(k, _)| k == "pair_link_viewed").unwrap();
    assert_eq!(viewed.1["address"], "127.0.0.1");

    // The customer scans: the session opens and says so by webhook.
    sim.scan("lost-1");
    let open = SimEvent::ConnectionUpdate { state: "open".into(), status_reason: 200 };
    sim.post_webhook("lost-1", open, Some(&format!("{}/webhooks/evo/{EVO_TOKEN}", rig.base))).await.unwrap();
    let (code, page) = rig.page(&url).await;
    assert_eq!(code, 200);
    assert!(page.contains("This number is connected") && !page.contains("qr.png") && !page.contains("<form"), "{page}");
    let (code, _, _) = rig.get(&format!("{url}/qr.png")).await;
    assert_eq!(code, 404, "no QR code after the scan");
    let outage = rig
        .store
        .outages(None, false, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.instance.as_deref() == Some("lost-1"))
        .unwrap();
    assert_eq!(outage.recovered_by.as_deref(), Some("webhook"));

    let report: Value = rig
        .http
        .get(format!("{}/api/report?since=1h", rig.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let line = report["instances"].as_array().unwrap().iter().find(|i| i["instance"] == "lost-1").unwrap();
    assert_eq!(line["needs_person_reconnects"], 1, "{line}");
    assert_eq!(line["reconnects_via_link"], 1, "{line}");
    assert!(
        line["reconnect_median_ms"].as_i64().unwrap() >= 0 && line["reconnect_max_ms"] == line["reconnect_median_ms"]
    );
    assert!(line["mttr_ms"].is_i64(), "MTTR is still there: {line}");
    assert_eq!(report["tenants"][0]["reconnects_via_link"], 1);
    assert_eq!(report["total_reconnects"]["needs_person_reconnects"], 1);
}

/// Run `async fn NAME(TestDb)` on SQLite and PostgreSQL.
#[macro_export]
macro_rules! on_both_backends_with_db {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::it::common::TestDb::sqlite().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::it::common::TestDb::postgres().await else { return };
                super::$name(db).await;
            }
        }
    )*};
}

/// A hundred views at once read the provider's QR code once (and start the
/// closed session once): the rest share the cached answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_100_page_loads_costs_the_provider_a_handful_of_calls() {
    let sim = Simulator::start(SimOptions {
        instances: vec![("lost-1".into(), Behaviour::LoggedOut)],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let rig = Rig::start(TestDb::sqlite().await, vec![evo(&sim)], vec![], |_| {}).await;
    rig.sup.poll_cycle().await.unwrap();
    let url = rig.pair_url("lost-1").await;
    sim.reset_calls();
    let loads = (0..100).map(|i| {
        let (http, url) = (rig.http.clone(), if i % 2 == 0 { url.clone() } else { format!("{url}/qr.png") });
        tokio::spawn(async move { http.get(url).send().await.unwrap().status().as_u16() })
    });
    for l in loads {
        assert_eq!(l.await.unwrap(), 200);
    }
    let calls = sim.total_calls();
    assert!(calls <= 4, "a handful of provider calls for 100 loads, not {calls}");
    let starts = rig.events("evo", "lost-1").await.iter().filter(|(k, _)| k == "pair_start").count();
    assert_eq!(starts, 1, "one start");
    let views = rig.events("evo", "lost-1").await.iter().filter(|(k, _)| k == "pair_link_viewed").count();
    assert_eq!(views, 50, "every view is on the timeline");
}

/// A provider that hands out the QR string and no image: the page serves a
/// PNG drawn from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_draws_the_qr_code_when_the_provider_gives_only_its_string() {
    let sim = Simulator::start(SimOptions {
        instances: vec![("lost-1".into(), Behaviour::LoggedOut)],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    sim.set_qr_as_text(true);
    let rig = Rig::start(TestDb::sqlite().await, vec![evo(&sim)], vec![], |_| {}).await;
    rig.sup.poll_cycle().await.unwrap();
    let url = rig.pair_url("lost-1").await;
    let (code, _, png) = rig.get(&format!("{url}/qr.png")).await;
    assert_eq!(code, 200);
    assert_eq!(png, wa_sentinel::pairing::qr_png(SIM_QR_TEXT).unwrap());
}

/// Evolution hands out a pairing code only to a socket started with the
/// number: a code asked first starts the closed session with it (once,
/// committed first). The form refuses other sites, forged tokens, bad
/// numbers and too many requests; every request is audited with the number
/// masked, and the code never reaches the log of events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pairing_code_for_a_number_and_the_limits_of_the_form() {
    let sim = Simulator::start(SimOptions {
        instances: vec![("lost-1".into(), Behaviour::LoggedOut)],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let rig = Rig::start(TestDb::sqlite().await, vec![evo(&sim)], vec![], |_| {}).await;
    rig.sup.poll_cycle().await.unwrap();
    let url = rig.pair_url("lost-1").await;
    let (code, page) = rig.ask_code(&url, "+55 (11) 98765-4321").await;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains(&format!("<p class=\"pairing-code\">{SIM_PAIRING_CODE}</p>")), "{page}");
    assert!(page.contains("content=\"60;url=/pair/"), "back to the QR code after a minute: {page}");
    let starts: Vec<Value> =
        rig.events("evo", "lost-1").await.into_iter().filter(|(k, _)| k == "pair_start").map(|(_, d)| d).collect();
    assert_eq!(starts.len(), 1, "the closed socket started once, with the number: {starts:?}");
    assert!(starts[0]["outcome"].as_str().unwrap().contains("?number=…"), "{starts:?}");

    let token = url.rsplit('/').next().unwrap();
    let post = |form: String, origin: String| {
        rig.http
            .post(format!("{url}/code"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", origin)
            .body(form)
            .send()
    };
    let forged = post("form=00&phone=5511987654321".into(), rig.base.clone()).await.unwrap();
    assert_eq!(forged.status().as_u16(), 403, "a form token not derived from this link");
    let good = wa_sentinel::pairing::form_token(token);
    let cross = post(format!("form={good}&phone=5511987654321"), "https://evil.example".into()).await.unwrap();
    assert_eq!(cross.status().as_u16(), 403, "another site's form");
    let (code, page) = rig.ask_code(&url, "not a number").await;
    assert_eq!(code, 400);
    assert!(page.contains("does not look like a phone number"), "{page}");
    // Three codes per link at once: the first was above.
    for _ in 0..2 {
        assert_eq!(rig.ask_code(&url, "5511987654321").await.0, 200);
    }
    let (code, page) = rig.ask_code(&url, "5511987654321").await;
    assert_eq!(code, 429, "{page}");
    let events = rig.events("evo", "lost-1").await;
    let asked: Vec<&Value> = events.iter().filter(|(k, _)| k == "pair_code_requested").map(|(_, d)| d).collect();
    assert_eq!(asked.len(), 4, "{asked:?}");
    assert!(asked.iter().all(|d| d["phone"] == "…4321"), "the number masked: {asked:?}");
    assert!(asked.iter().any(|d| d["outcome"] == "rate limited"));
    let all = serde_json::to_string(&events.iter().map(|(_, d)| d).collect::<Vec<_>>()).unwrap();
    assert!(!all.contains(SIM_PAIRING_CODE) && !all.contains("5511987654321"), "{all}");
}

/// WAHA and Z-API numbers waiting for a QR scan: each down notice carries a
/// link whose page shows the simulator's QR code byte for byte, hands out a
/// pairing code, and after the scan says only "connected". Neither provider
/// URL, API key, client token nor instance token reaches the browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waha_and_z_api_numbers_waiting_for_a_scan_get_a_link_with_their_qr_and_codes() {
    let waha = WahaSim::start(
        Some(WAHA_KEY),
        &[("waha-lost", WahaBehaviour::ScanQr), ("waha-passkey", WahaBehaviour::Passkey)],
    )
    .await
    .unwrap();
    let zapi =
        ZapiSim::start(Some(ZAPI_CLIENT), &[("ZAPI-LOST-1", ZAPI_TOKEN, ZapiBehaviour::NotConnected)]).await.unwrap();
    let providers = vec![
        RawProvider {
            name: "waha".into(),
            kind: "waha".into(),
            base_url: waha.base_url(),
            api_key: Some(WAHA_KEY.into()),
            webhook_token: Some("waha-hook".into()),
            discover: true,
            ..Default::default()
        },
        RawProvider {
            name: "zapi".into(),
            kind: "zapi".into(),
            base_url: zapi.base_url(),
            client_token: Some(ZAPI_CLIENT.into()),
            webhook_token: Some("zapi-hook".into()),
            ..Default::default()
        },
    ];
    let instances = vec![RawInstance {
        provider: "zapi".into(),
        name: "ZAPI-LOST-1".into(),
        token: Some(ZAPI_TOKEN.into()),
        ..Default::default()
    }];
    let rig = Rig::start(TestDb::sqlite().await, providers, instances, |_| {}).await;
    rig.sup.poll_cycle().await.unwrap();
    let secrets = [WAHA_KEY, ZAPI_TOKEN, ZAPI_CLIENT, ADMIN];
    for (name, base) in [("waha-lost", waha.base_url()), ("ZAPI-LOST-1", zapi.base_url())] {
        let url = rig.pair_url(name).await;
        let (code, body) = rig.page(&url).await;
        assert_eq!(code, 200, "{name}: {body}");
        assert!(body.contains("content=\"10\""), "{name}: a 20 s QR code, reloaded every 10 s: {body}");
        let (code, _, png) = rig.get(&format!("{url}/qr.png")).await;
        assert_eq!((code, png.as_slice()), (200, sim_qr_png()), "{name}: the provider's image, byte for byte");
        let (code, page) = rig.ask_code(&url, "5511987654321").await;
        assert_eq!(code, 200, "{name}: {page}");
        let shown = if name == "waha-lost" { "WZYE-H1YY" } else { SIM_PAIRING_CODE };
        assert!(page.contains(shown), "{name}: {page}");
        for b in [body.as_bytes(), &png, page.as_bytes()] {
            assert_no_secret(b, &[&secrets[..], &[host_of(&base).as_str()]].concat(), name);
        }
    }
    assert_eq!(waha.calls("GET", "/api/waha-lost/auth/qr"), 1, "one read for the page and its image");
    // A state wa-sentinel does not know (a passkey prompt): no link by
    // default (`pairing.causes`), a QR code may not help.
    let passkey = rig.notices().await.into_iter().find(|n| n["instance"] == "waha-passkey").expect("announced");
    assert_eq!((passkey["cause"].as_str(), &passkey["pair_url"]), (Some("needs_human"), &Value::Null));
    waha.scan("waha-lost");
    zapi.scan("ZAPI-LOST-1");
    rig.sup.poll_cycle().await.unwrap();
    for name in ["waha-lost", "ZAPI-LOST-1"] {
        let url = rig.pair_url(name).await;
        let (code, page) = rig.page(&url).await;
        assert!(code == 200 && page.contains("This number is connected") && !page.contains("qr.png"), "{name}: {page}");
    }
}

/// W-API (on wiremock, over its fixtures): the `qr-code` check tells a
/// logout, whose notice carries a link; the page serves the fixture's PNG
/// byte for byte and the fixture's pairing code, and no instance token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_w_api_instance_s_link_shows_its_qr_code_and_a_pairing_code() {
    use base64::Engine;
    let wapi = MockServer::start().await;
    let id = "3B6XIW-ZTS923-GEAY6V";
    Mock::given(method("GET"))
        .and(path("/instance/status-instance"))
        .respond_with(json_fixture(200, "wapi/status-instance.disconnected.json"))
        .mount(&wapi)
        .await;
    Mock::given(method("GET"))
        .and(path("/instance/qr-code"))
        .and(query_param("image", "disable"))
        .respond_with(json_fixture(200, "wapi/qr-code.image-disable.json"))
        .mount(&wapi)
        .await;
    Mock::given(method("GET"))
        .and(path("/instance/pairing-code"))
        .and(query_param("phoneNumber", "5511987654321"))
        .respond_with(json_fixture(200, "wapi/pairing-code-response.json"))
        .expect(1)
        .mount(&wapi)
        .await;
    let providers = vec![RawProvider {
        name: "wapi".into(),
        kind: "wapi".into(),
        base_url: wapi.uri(),
        webhook_token: Some("wapi-hook".into()),
        ..Default::default()
    }];
    let instances = vec![RawInstance {
        provider: "wapi".into(),
        name: id.into(),
        token: Some(WAPI_TOKEN.into()),
        ..Default::default()
    }];
    let rig = Rig::start(TestDb::sqlite().await, providers, instances, |_| {}).await;
    rig.sup.poll_cycle().await.unwrap();
    let url = rig.pair_url(id).await;
    let (code, _, png) = rig.get(&format!("{url}/qr.png")).await;
    let fixture = fixture_json("wapi/qr-code.image-disable.json");
    let b64 = fixture["qrcode"].as_str().unwrap().split_once(',').unwrap().1.to_string();
    assert_eq!(code, 200);
    assert_eq!(png, base64::engine::general_purpose::STANDARD.decode(b64).unwrap());
    let (code, page) = rig.ask_code(&url, "+55 11 98765 4321").await;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains(fixture_json("wapi/pairing-code-response.json")["pairingCode"].as_str().unwrap()), "{page}");
    assert_no_secret(page.as_bytes(), &[WAPI_TOKEN, &host_of(&wapi.uri())], "the page");
}

/// A link that does not exist, or whose token was changed, is 404; an
/// expired or revoked one is 410 with a line to ask for a new one; the page
/// speaks the browser's language (pt-BR) over `alerts.language`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tampered_expired_and_revoked_links() {
    let sim = Simulator::start(SimOptions {
        instances: vec![("lost-1".into(), Behaviour::LoggedOut)],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let rig = Rig::start(TestDb::sqlite().await, vec![evo(&sim)], vec![], |_| {}).await;
    rig.sup.poll_cycle().await.unwrap();
    let url = rig.pair_url("lost-1").await;
    let token = url.rsplit('/').next().unwrap().to_string();
    let flipped = format!("{}{}", &token[..63], if token.ends_with('0') { '1' } else { '0' });
    let upper = token.to_uppercase();
    for bad in [flipped.as_str(), "nope", &token[..32], upper.as_str()] {
        let (code, page) = rig.page(&format!("{}/pair/{bad}", rig.base)).await;
        assert_eq!(code, 404, "{bad}: {page}");
        assert!(page.contains("This link does not exist"), "{page}");
        assert_eq!(rig.get(&format!("{}/pair/{bad}/qr.png", rig.base)).await.0, 404);
    }
    let api = |body: Value| {
        rig.http.post(format!("{}/api/instances/evo/lost-1/pair-link", rig.base)).bearer_auth(ADMIN).json(&body).send()
    };
    let short: Value = api(json!({"for": "1s"})).await.unwrap().json().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let r =
        rig.http.get(short["url"].as_str().unwrap()).header("accept-language", "pt-BR,pt;q=0.9").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 410);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("lang=\"pt-BR\"") && page.contains("Este link expirou. Peça um novo a quem o enviou."),
        "{page}"
    );
    // Revoked from the API: every usable link of the instance.
    let revoked: Value = rig
        .http
        .delete(format!("{}/api/instances/evo/lost-1/pair-link", rig.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["revoked"], 1, "the notice's link (the expired one is not counted): {revoked}");
    let (code, page) = rig.page(&url).await;
    assert_eq!(code, 410);
    assert!(page.contains("This link was withdrawn"), "{page}");
    assert_eq!(rig.get(&format!("{url}/qr.png")).await.0, 410);
    // Retention drops a link once it has been expired for the kept period.
    let rec = rig.store.instance(&InstanceKey::new("evo", "lost-1")).await.unwrap().unwrap();
    assert_eq!(rig.store.pair_links_of(&rec.id, 10).await.unwrap().len(), 2);
    rig.store.prune(wa_sentinel::domain::Ts(rig.sup.now().0 + 2 * 86_400_000)).await.unwrap();
    assert!(rig.store.pair_links_of(&rec.id, 10).await.unwrap().is_empty());
}

/// Operators: the API mints a link on demand (`{"for": "2h"}` → `{url,
/// expires_at}`, behind the admin token; refused for a connected number),
/// the instance page issues one with its CSRF token and shows it once, and
/// `wa-sentinel pair-link` prints one and revokes them. The start a closed
/// session needs respects the instance's cooldown: a second link cannot
/// restart it inside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_issue_and_revoke_links_and_the_start_respects_the_cooldown() {
    let sim = Simulator::start(SimOptions {
        instances: vec![("lost-1".into(), Behaviour::LoggedOut), ("shop".into(), Behaviour::Open)],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let db = TestDb::sqlite().await;
    let db_url = db.url.clone();
    let rig = Rig::start(db, vec![evo(&sim)], vec![], |_| {}).await;
    rig.sup.poll_cycle().await.unwrap();
    let mint = |who: &str, token: Option<&'static str>| {
        let mut r =
            rig.http.post(format!("{}/api/instances/evo/{who}/pair-link", rig.base)).json(&json!({"for": "2h"}));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(mint("lost-1", None).await.unwrap().status().as_u16(), 401);
    assert_eq!(mint("shop", Some(ADMIN)).await.unwrap().status().as_u16(), 409, "connected: nothing to pair");
    assert_eq!(mint("nobody", Some(ADMIN)).await.unwrap().status().as_u16(), 404);
    let r = mint("lost-1", Some(ADMIN)).await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let minted: Value = r.json().await.unwrap();
    let first = minted["url"].as_str().unwrap().to_string();
    assert!(first.starts_with(&format!("{}/pair/", rig.base)), "{minted}");
    let left = chrono::DateTime::parse_from_rfc3339(minted["expires_at"].as_str().unwrap()).unwrap().timestamp_millis()
        - rig.sup.now().0;
    assert!((7_100_000..=7_200_000).contains(&left), "two hours: {left} ms");
    // The first view starts the closed session (committed first).
    assert_eq!(rig.get(&format!("{first}/qr.png")).await.0, 200);
    assert_eq!(sim.calls("GET", "/instance/connect/lost-1"), 1);
    // The socket closes again; a second link may not restart it inside the cooldown.
    sim.set_behaviour("lost-1", Behaviour::LoggedOut);
    let second: Value = mint("lost-1", Some(ADMIN)).await.unwrap().json().await.unwrap();
    let (code, page) = rig.page(second["url"].as_str().unwrap()).await;
    assert_eq!(code, 200);
    assert!(page.contains("restarted moments ago") && !page.contains("qr.png"), "{page}");
    assert_eq!(sim.calls("GET", "/instance/connect/lost-1"), 1, "no second start inside the cooldown");

    // The instance page: its links, and a new one issued with the session's CSRF token.
    let login = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = login
        .post(format!("{}/login", rig.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={ADMIN}"))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let page = rig
        .http
        .get(format!("{}/instances/evo/lost-1", rig.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<h2>Re-pair links</h2>") && page.contains("<td>notice</td>") && page.contains("<td>api</td>"),
        "{page}"
    );
    assert!(!page.contains(&first) && !page.contains(first.rsplit('/').next().unwrap()), "never the link itself");
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = &page[at..at + 64];
    let made = rig
        .http
        .post(format!("{}/instances/evo/lost-1/pair-link", rig.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&duration=1h"))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status().as_u16(), 200);
    let shown = made.text().await.unwrap();
    assert!(shown.contains(&format!("{}/pair/", rig.base)) && shown.contains("shown only now"), "{shown}");
    let no_csrf = rig
        .http
        .post(format!("{}/instances/evo/lost-1/pair-link", rig.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("duration=1h")
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status().as_u16(), 403);

    // The command line, against the same database.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[database]\nurl = \"{db_url}\"\n[server]\npublic_url = \"{}\"\n[[providers]]\nname = \"evo\"\nkind = \"evolution\"\n\
             base_url = \"{}\"\napi_key = \"{}\"\nwebhook_token = \"{EVO_TOKEN}\"\n",
            rig.base,
            sim.base_url(),
            sim.api_key()
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_wa-sentinel");
    let out = std::process::Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .args(["pair-link", "evo/lost-1", "--for", "30m"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().next().unwrap().starts_with(&format!("{}/pair/", rig.base)), "{stdout}");
    let out = std::process::Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .args(["pair-link", "evo/lost-1", "--revoke"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // The notice's, the two of the API, the page's and the command's own.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("5 re-pair link(s) revoked"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(rig.page(&first).await.0, 410);
    let out =
        std::process::Command::new(bin).arg("--config").arg(&cfg).args(["pair-link", "evo/shop"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is connected: there is nothing to pair"));
}

/// With `server.admin_listen`, `/pair/*` is served on the public listener
/// (customers are not operators) and not on the admin one; the public
/// listener still serves nothing of the admin surface.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_pair_pages_live_on_the_public_listener_only() {
    let sim = Simulator::start(SimOptions {
        instances: vec![("lost-1".into(), Behaviour::LoggedOut)],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let rig = Rig::start(TestDb::sqlite().await, vec![evo(&sim)], vec![], |_| {}).await;
    rig.sup.poll_cycle().await.unwrap();
    let url = rig.pair_url("lost-1").await;
    let token = url.rsplit('/').next().unwrap().to_string();
    let state = server::start_background(rig.sup.clone(), Arc::new(Ticks::default()), rig.stop.child_token());
    let mut bases = Vec::new();
    for surface in [server::Surface::Public, server::Surface::Admin] {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        bases.push(format!("http://{}", l.local_addr().unwrap()));
        tokio::spawn(server::serve_surface(l, state.clone(), surface, rig.stop.child_token()));
    }
    let (public, admin) = (&bases[0], &bases[1]);
    assert_eq!(rig.page(&format!("{public}/pair/{token}")).await.0, 200);
    assert_eq!(rig.get(&format!("{public}/pair/style.css")).await.0, 200);
    assert_eq!(rig.page(&format!("{admin}/pair/{token}")).await.0, 404);
    for p in ["/", "/login", "/api/instances", "/status.css", "/metrics", "/instances/evo/lost-1"] {
        assert_eq!(rig.get(&format!("{public}{p}")).await.0, 404, "{p} is not public");
    }
}

/// The page in headless Chromium through chromedriver: the QR code drawn
/// under the CSP, the code form used, then the scan and "connected".
/// Desktop and phone screenshots go to a scratch directory, or to `docs/`
/// with `WA_SENTINEL_SCREENSHOTS=docs`. Skipped without Chromium or
/// chromedriver, except under `CI=true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_re_pairs_from_the_page_in_chromium() {
    use crate::it::operator::{Browser, which};
    fn found(names: &[&'static str]) -> Option<&'static str> {
        names
            .iter()
            .copied()
            .find(|c| std::process::Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
    }
    let (Some(chromium), Some(chromedriver)) =
        (found(&["chromium", "chromium-browser", "google-chrome"]), found(&["chromedriver"]))
    else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but Chromium or chromedriver is missing");
        eprintln!("skipping: Chromium or chromedriver is not installed");
        return;
    };
    let chromium = which(chromium);
    let sim = Simulator::start(SimOptions {
        instances: vec![("lost-1".into(), Behaviour::LoggedOut)],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let rig = Rig::start(TestDb::sqlite().await, vec![evo(&sim)], vec![], |_| {}).await;
    rig.sup.poll_cycle().await.unwrap();
    let url = rig.pair_url("lost-1").await;
    // Evolution hands out codes only to a socket started with a number: the
    // customer's first code request starts it so.
    assert!(rig.ask_code(&url, "5511987654321").await.1.contains(SIM_PAIRING_CODE));
    let scratch = tempfile::tempdir().unwrap();
    let shots = match std::env::var("WA_SENTINEL_SCREENSHOTS").as_deref() {
        Ok("docs") => std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/docs")),
        _ => scratch.path().to_path_buf(),
    };
    let profile = tempfile::tempdir().unwrap();
    let b = Browser::start(&chromium, chromedriver, profile.path()).await;
    b.size(1280, 900).await;
    b.goto(&url).await;
    let img = b.rect("div.qr img").await;
    assert!(img["width"].as_f64().unwrap() >= 200.0, "the QR code is drawn, styled under the CSP: {img}");
    b.screenshot(&shots.join("pair-page.png")).await;
    b.size(390, 844).await;
    b.goto(&url).await;
    assert!(b.rect("div.qr img").await["width"].as_f64().unwrap() <= 360.0, "fits a phone");
    b.screenshot(&shots.join("pair-page-phone.png")).await;
    b.type_in("input[name=phone]", "+55 11 98765 4321").await;
    b.click("form button[type=submit]").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !b.source().await.contains(SIM_PAIRING_CODE) {
        assert!(std::time::Instant::now() < deadline, "no code shown: {}", b.source().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.screenshot(&shots.join("pair-page-code-phone.png")).await;
    sim.scan("lost-1");
    rig.sup.poll_cycle().await.unwrap();
    b.goto(&url).await;
    assert!(b.source().await.contains("This number is connected"));
    b.quit().await;
    for f in ["pair-page.png", "pair-page-phone.png", "pair-page-code-phone.png"] {
        assert!(std::fs::metadata(shots.join(f)).unwrap().len() > 10_000, "{f}");
    }
}

/// The re-pairing calls against every fixture shape of the providers' QR
/// and pairing-code answers (wiremock, with call counts): Evolution reads a
/// QR code only from a `connecting` session and hands its PNG on byte for
/// byte, says "connected" for an open one and fails on a `{error: true}`
/// 200; WAHA's `{mimetype, data}`, `{value}` (drawn by the page) and 422
/// `WORKING`, its `request-code` and its 422 for the wrong status; Z-API's
/// `qr-code/image` and `phone-code`, asked after `status`.
#[tokio::test]
async fn re_pairing_calls_read_every_fixture_shape() {
    use base64::Engine;
    use wa_sentinel::config::{ApiVersion, ProviderConfig, ProviderKind, Secret};
    use wa_sentinel::providers::pairing::{CodeAnswer, QrAnswer};
    use wa_sentinel::providers::{ErrorClass, InstanceRef, ProviderClient};
    use wiremock::matchers::{body_json, header};
    let png_of = |rel: &str, field: &str| {
        let v = fixture_json(rel);
        let s = v[field].as_str().unwrap();
        base64::engine::general_purpose::STANDARD.decode(s.rsplit(',').next().unwrap()).unwrap()
    };
    let timeout = Duration::from_secs(5);

    // Evolution v2.
    let server = MockServer::start().await;
    let evo = crate::it::providers::evo(&server.uri(), ApiVersion::V2);
    let inst = InstanceRef::named("sales-bot");
    let state = |fx: &'static str| {
        Mock::given(method("GET")).and(path("/instance/connectionState/sales-bot")).respond_with(json_fixture(200, fx))
    };
    let connect = |fx: &'static str| {
        Mock::given(method("GET")).and(path("/instance/connect/sales-bot")).respond_with(json_fixture(200, fx))
    };
    state("evolution/v2-connectionState-close.json").up_to_n_times(1).mount(&server).await;
    assert!(matches!(evo.pairing_qr(&inst).await.unwrap(), QrAnswer::NeedsStart(_)), "closed: a start first");
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "and no connect: it would start a socket");
    state("evolution/v2-connectionState-connecting.json").mount(&server).await;
    connect("evolution/v2-connect-response-qr-png.json").up_to_n_times(1).mount(&server).await;
    let want = png_of("evolution/v2-connect-response-qr-png.json", "base64");
    assert_eq!(evo.pairing_qr(&inst).await.unwrap(), QrAnswer::Png(want));
    connect("evolution/v2-connect-response-already-open.json").up_to_n_times(1).mount(&server).await;
    assert_eq!(evo.pairing_qr(&inst).await.unwrap(), QrAnswer::Connected);
    connect("evolution/v2-connect-response-no-qr-yet.json").up_to_n_times(1).mount(&server).await;
    assert!(matches!(evo.pairing_qr(&inst).await.unwrap(), QrAnswer::NotReady(_)));
    connect("evolution/v2-connect-response-error-200.json").up_to_n_times(1).mount(&server).await;
    assert_eq!(evo.pairing_qr(&inst).await.unwrap_err().class, ErrorClass::BadResponse);
    Mock::given(method("GET"))
        .and(path("/instance/connect/sales-bot"))
        .and(query_param("number", "5511987654321"))
        .respond_with(json_fixture(200, "evolution/v2-connect-response-pairing-code-png.json"))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(evo.pairing_code(&inst, "5511987654321").await.unwrap(), CodeAnswer::Code("WZYEH1YY".into()));

    // WAHA.
    let server = MockServer::start().await;
    let cfg = ProviderConfig {
        api_key: Some(Secret::literal("waha-key")),
        ..ProviderConfig::new("waha", ProviderKind::Waha, &server.uri(), Secret::literal("hook"))
    };
    let waha = ProviderClient::new(&cfg, timeout).unwrap();
    let inst = InstanceRef::named("default");
    Mock::given(method("GET"))
        .and(path("/api/sessions/default"))
        .respond_with(json_fixture(200, "waha/session.get.scan_qr_code.json"))
        .mount(&server)
        .await;
    let qr = |fx: &'static str, status: u16| {
        Mock::given(method("GET"))
            .and(path("/api/default/auth/qr"))
            .and(header("accept", "application/json"))
            .and(header("x-api-key", "waha-key"))
            .respond_with(json_fixture(status, fx))
            .up_to_n_times(1)
    };
    qr("waha/auth-qr-base64-response.json", 200).mount(&server).await;
    assert_eq!(
        waha.pairing_qr(&inst).await.unwrap(),
        QrAnswer::Png(png_of("waha/auth-qr-base64-response.json", "data"))
    );
    qr("waha/auth-qr-raw-response.json", 200).mount(&server).await;
    let raw = fixture_json("waha/auth-qr-raw-response.json")["value"].as_str().unwrap().to_string();
    assert_eq!(waha.pairing_qr(&inst).await.unwrap(), QrAnswer::Text(raw.clone()));
    assert!(wa_sentinel::pairing::is_png(&wa_sentinel::pairing::qr_png(&raw).unwrap()), "the page can draw it");
    qr("waha/auth-qr-error-422-already-working.json", 422).mount(&server).await;
    assert_eq!(waha.pairing_qr(&inst).await.unwrap(), QrAnswer::Connected);
    let code = |fx: &'static str, status: u16| {
        Mock::given(method("POST"))
            .and(path("/api/default/auth/request-code"))
            .and(body_json(fixture_json("waha/auth-request-code-request.json")))
            .respond_with(json_fixture(status, fx))
            .up_to_n_times(1)
    };
    code("waha/auth-request-code-response.json", 201).mount(&server).await;
    assert_eq!(waha.pairing_code(&inst, "5511987654321").await.unwrap(), CodeAnswer::Code("WZYE-H1YY".into()));
    code("waha/auth-request-code-error-422-wrong-status.json", 422).mount(&server).await;
    assert!(
        matches!(waha.pairing_code(&inst, "5511987654321").await.unwrap(), CodeAnswer::NotReady(m) if m.contains("SCAN_QR_CODE"))
    );

    // Z-API.
    let server = MockServer::start().await;
    let cfg = ProviderConfig {
        client_token: Some(Secret::literal("client-token")),
        ..ProviderConfig::new("zapi", ProviderKind::Zapi, &server.uri(), Secret::literal("hook"))
    };
    let zapi = ProviderClient::new(&cfg, timeout).unwrap();
    let inst = InstanceRef { name: "3C2A".into(), token: Some(Secret::literal("inst-token")) };
    let call = |p: &str, fx: &'static str| {
        Mock::given(method("GET"))
            .and(path(format!("/instances/3C2A/token/inst-token/{p}")))
            .and(header("client-token", "client-token"))
            .respond_with(json_fixture(200, fx))
    };
    call("status", "zapi/status.not-connected.json").mount(&server).await;
    call("qr-code/image", "zapi/qr-code-image-response.json").up_to_n_times(1).mount(&server).await;
    assert_eq!(
        zapi.pairing_qr(&inst).await.unwrap(),
        QrAnswer::Png(png_of("zapi/qr-code-image-response.json", "value"))
    );
    call("qr-code/image", "zapi/qr-code-image-response-already-connected.UNCERTAIN.json").mount(&server).await;
    assert_eq!(zapi.pairing_qr(&inst).await.unwrap(), QrAnswer::Connected);
    call("phone-code/5511987654321", "zapi/phone-code-response.json").expect(1).mount(&server).await;
    assert_eq!(zapi.pairing_code(&inst, "5511987654321").await.unwrap(), CodeAnswer::Code("WZYEH1YY".into()));
}
