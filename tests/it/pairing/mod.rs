//! Re-pair links end to end: a logged-out (or never-paired) number's down
//! notice carries a link, the customer's page shows the provider's QR code
//! through wa-sentinel (Evolution, WAHA and Z-API simulators; W-API on
//! wiremock over its fixtures), hands out pairing codes, and after the scan
//! says only "connected"; bad, expired and revoked links; what reaches the
//! browser; what a burst of reloads costs the provider; operators' links;
//! the report's time to reconnect; the page in headless Chromium.

mod operators;
mod providers;

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

/// The common opening: an Evolution simulator with one logged-out
/// `lost-1`, a rig on SQLite after one cycle, and the link its down notice
/// carries.
async fn logged_out_with_a_link() -> (Simulator, Rig, String) {
    let sim = Simulator::start(SimOptions {
        instances: vec![("lost-1".into(), Behaviour::LoggedOut)],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let rig = Rig::start(TestDb::sqlite().await, vec![evo(&sim)], vec![], |_| {}).await;
    rig.sup.poll_cycle().await.unwrap();
    let url = rig.pair_url("lost-1").await;
    (sim, rig, url)
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

    let report: Value =
        crate::it::common::admin_json(rig.http.get(format!("{}/api/report?since=1h", rig.base)), ADMIN).await;
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
    let (sim, rig, url) = logged_out_with_a_link().await;
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
    let (_sim, rig, url) = logged_out_with_a_link().await;
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
