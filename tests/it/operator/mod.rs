//! The operator surface: `/api/report` (the JSON of `wa-sentinel
//! report`), the status page's uptime bars and tenant figures, the page of
//! one instance, and actions taken from the page (CSRF, audit events), with
//! the page rendered and an action performed in headless Chromium.

use serde_json::Value;
use wa_sentinel::domain::health::{Ctx, Observation};
use wa_sentinel::domain::{Policy, ProviderStatus, Ts, step};
use wa_sentinel::report::{ReportQuery, build};
use wa_sentinel::sim::evolution::Behaviour;

use crate::it::receiver::{ADMIN, Live};

/// `/api/report` is behind the admin token and returns what `report::build`
/// computes for the same window; bad windows are 400s in the one error shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_report_is_the_report_json_behind_the_admin_token() {
    let live = Live::start(&[("shop-main", Behaviour::Open), ("lost-1", Behaviour::LoggedOut)], |_| {}).await;
    live.sup.poll_cycle().await.unwrap();
    let get = |q: &str, token: Option<&str>| {
        let mut r = live.http.get(format!("{}/api/report{q}", live.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(get("", None).await.unwrap().status().as_u16(), 401);
    assert_eq!(get("", Some("nope")).await.unwrap().status().as_u16(), 401);
    // A window ending on a whole second after the poll, and already past: both
    // computations below see the same, finished window.
    let to = Ts((live.sup.now().0 / 1000 + 2) * 1000);
    tokio::time::sleep(std::time::Duration::from_millis((to.0 - live.sup.now().0 + 50) as u64)).await;
    let q = format!("?since=1970-01-01T00:00:00Z&until={}", to.rfc3339());
    let r = get(&q, Some(ADMIN)).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let got: Value = r.json().await.unwrap();
    // The same function on the same window, through the same JSON text and
    // parser: serde_json's default float parsing is not correctly rounded
    // (an availability could come back one ulp off a direct `to_value`).
    let query = ReportQuery { from: Ts(0), to, tenant: None, provider: None };
    let text = serde_json::to_string(&build(&live.store, &query, live.sup.now()).await.unwrap()).unwrap();
    let mut want: Value = serde_json::from_str(&text).unwrap();
    want["generated_at"] = got["generated_at"].clone();
    assert_eq!(got, want);
    let names: Vec<&str> =
        got["instances"].as_array().unwrap().iter().map(|i| i["instance"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["lost-1", "shop-main"]);
    assert_eq!(got["instances"][0]["outages"], 1, "lost-1 is logged out: one open outage");
    assert_eq!(got["instances"][1]["outages"], 0);
    let filtered: Value = get("?since=1h&provider=evo&tenant=nobody", Some(ADMIN)).await.unwrap().json().await.unwrap();
    assert_eq!(filtered["instances"], serde_json::json!([]));
    assert_eq!(filtered["tenant"], "nobody");
    let bad = get("?since=tomorrowish", Some(ADMIN)).await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    assert_eq!(get("?since=1h&until=2h", Some(ADMIN)).await.unwrap().status().as_u16(), 400, "empty window");
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn form_body(pairs: &[(&str, String)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// A client that keeps redirects visible.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Sign in with the form: the `name=value` of the session cookie.
async fn session(live: &Live) -> String {
    let r = no_redirects()
        .post(format!("{}/login", live.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("token", ADMIN.to_string())]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let c = r.headers()["set-cookie"].to_str().unwrap();
    c.split(';').next().unwrap().to_string()
}

/// The CSRF token in a page's forms.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
    page[at..at + 64].to_string()
}

async fn get_page(live: &Live, path: &str, cookie: Option<&str>) -> (u16, reqwest::header::HeaderMap, String) {
    let mut r = live.http.get(format!("{}{path}", live.base));
    r = match cookie {
        Some(c) => r.header("cookie", c),
        None => r.basic_auth("admin", Some(ADMIN)),
    };
    let r = r.send().await.unwrap();
    let (code, headers) = (r.status().as_u16(), r.headers().clone());
    (code, headers, r.text().await.unwrap())
}

/// The row of `name` in the instances table.
fn row_of<'a>(page: &'a str, name: &str) -> &'a str {
    let at = page.find(&format!(">{name}</a></td>")).unwrap_or_else(|| panic!("no row for {name}:\n{page}"));
    let start = page[..at].rfind("<tr>").unwrap();
    let end = at + page[at..].find("</tr>").unwrap();
    &page[start..end]
}

/// Every instance row has a 90-segment uptime bar and its 24 h /
/// 30 d figures, a tenant summary carries the same figures, the 7 d / 30 d
/// switch works, and the page is served under `default-src 'self'` with its
/// stylesheet from `/status.css` (no inline style or script).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_has_uptime_bars_and_tenant_figures() {
    let live = Live::start(&[("shop-main", Behaviour::Open), ("lost-1", Behaviour::LoggedOut)], |_| {}).await;
    live.sup.poll_cycle().await.unwrap();
    let (code, headers, page) = get_page(&live, "/", None).await;
    assert_eq!(code, 200);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(!page.contains("<style") && !page.contains("<script") && !page.contains("style=\""), "{page}");
    assert!(page.contains("<link rel=\"stylesheet\" href=\"/status.css\">"));
    let css = live.http.get(format!("{}/status.css", live.base)).send().await.unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(css.text().await.unwrap().contains(".s-down{"));

    let lost = row_of(&page, "lost-1");
    assert!(lost.contains("href=\"/instances/evo/lost-1\""), "{lost}");
    assert!(lost.contains("class=\"bar\"") && lost.contains("s-down"), "the open outage shows: {lost}");
    // Segments of a bar: the run lengths add up to 90.
    let runs: u32 = lost.split(" g").skip(1).map(|s| s[..s.find('"').unwrap()].parse::<u32>().unwrap()).sum();
    assert_eq!(runs, 90, "{lost}");
    let shop = row_of(&page, "shop-main");
    assert!(shop.contains("s-up") && !shop.contains("s-down"), "{shop}");
    assert!(shop.contains("<td>100.00%</td><td>100.00%</td>"), "24 h and 30 d: {shop}");
    // The figures agree with the report's function: lost-1 has been down
    // since its first poll, a few milliseconds after it was first seen.
    let r = build(
        &live.store,
        &ReportQuery { from: Ts(0), to: live.sup.now(), tenant: None, provider: None },
        live.sup.now(),
    )
    .await
    .unwrap();
    assert_eq!(r.instances.iter().find(|i| i.instance == "lost-1").unwrap().figures.outages, 1);
    // The tenant summary: both instances of `unassigned`.
    let tenants = &page[page.find("<h2>Tenants</h2>").unwrap()..page.find("<h2>Instances</h2>").unwrap()];
    assert!(tenants.contains(">unassigned</a></td><td>2</td>"), "{tenants}");
    assert!(tenants.contains("s-down"), "the tenant's bar shows the worst of its instances: {tenants}");
    assert!(page.contains("Uptime bars over <b>24 h</b>"));
    let (_, _, week) = get_page(&live, "/?range=7d", None).await;
    assert!(week.contains("Uptime bars over <a href=\"?range=24h\">24 h</a><b>7 d</b>"), "{week}");
    assert!(week.contains("<th>Uptime (7 d)</th>"));
}

/// The page of one instance — health and cause, cooldown,
/// outages with how each ended, the timeline of events and notices; names are
/// escaped; an unknown instance is a 404; HTTP Basic may look, not act.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_page_shows_health_outages_and_timeline() {
    let live = Live::start(&[("shop-main", Behaviour::Open), ("lost-1", Behaviour::LoggedOut)], |_| {}).await;
    live.sup.poll_cycle().await.unwrap();
    live.sup.wait_idle().await;
    let (code, headers, page) = get_page(&live, "/instances/evo/lost-1", None).await;
    assert_eq!(code, 200, "{page}");
    assert!(headers["content-security-policy"].to_str().unwrap().starts_with("default-src 'self'"));
    assert!(page.contains("<h1>evo/lost-1</h1>"), "{page}");
    assert!(page.contains("<span class=\"h logged_out\">logged_out</span>"), "{page}");
    assert!(page.contains("<dt>Cause</dt><dd>logged_out</dd>"), "{page}");
    let outages = &page[page.find("<h2>Outages</h2>").unwrap()..page.find("<h2>Timeline</h2>").unwrap()];
    assert!(outages.contains("<td>logged_out</td>") && outages.contains("(open)"), "{outages}");
    let timeline = &page[page.find("<h2>Timeline</h2>").unwrap()..];
    assert!(timeline.contains("outage_opened") && timeline.contains("health_changed"), "{timeline}");
    // The down notice went to the sink: its delivery state is on the timeline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, _, p) = get_page(&live, "/instances/evo/lost-1", None).await;
        if p.contains("notice instance_logged_out") && p.contains("to sink · delivered") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no delivered notice on the timeline:\n{p}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(page.contains("you may look, not act") && !page.contains("name=\"csrf\""), "Basic: no actions");
    let (code, _, _) = get_page(&live, "/instances/evo/nobody", None).await;
    assert_eq!(code, 404);
    let (code, _, _) = get_page(&live, "/instances/evo/%3Cscript%3E", None).await;
    assert_eq!(code, 404);
    let anon = live.http.get(format!("{}/instances/evo/lost-1", live.base)).send().await.unwrap();
    assert_eq!(anon.status().as_u16(), 401, "signed-in viewers only");
}

/// Actions need a signed-in session and that session's CSRF
/// token; each goes through the supervisor's path (the cooldown refuses a
/// second restart unless forced; maintenance lands in the state; the webhook
/// config is applied) and is an audit event with the actor and address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_need_the_session_csrf_token_and_are_audited() {
    let live = Live::start(&[("shop-main", Behaviour::Open), ("lost-1", Behaviour::LoggedOut)], |r| {
        r.server.public_url = Some("http://sentinel.test".into());
    })
    .await;
    live.sup.poll_cycle().await.unwrap();
    let (me, other) = (session(&live).await, session(&live).await);
    let (code, _, page) = get_page(&live, "/instances/evo/shop-main", Some(&me)).await;
    assert_eq!(code, 200);
    let token = csrf_of(&page);
    let other_token = csrf_of(&get_page(&live, "/instances/evo/shop-main", Some(&other)).await.2);
    assert_ne!(token, other_token, "a token per session");
    let post = |path: &str, cookie: Option<&str>, form: Vec<(&str, String)>| {
        let mut r = no_redirects()
            .post(format!("{}/instances/evo/shop-main/{path}", live.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&form));
        r = match cookie {
            Some(c) => r.header("cookie", c.to_string()),
            None => r.basic_auth("admin", Some(ADMIN)),
        };
        r.send()
    };
    let maint = |t: &str| vec![("csrf", t.to_string()), ("duration", "2h".to_string())];
    assert_eq!(post("maintenance", Some(&me), vec![("duration", "2h".into())]).await.unwrap().status().as_u16(), 403);
    assert_eq!(post("maintenance", Some(&me), maint(&other_token)).await.unwrap().status().as_u16(), 403);
    assert_eq!(post("maintenance", None, maint(&token)).await.unwrap().status().as_u16(), 403, "Basic: look only");
    let key = wa_sentinel::domain::InstanceKey::new("evo", "shop-main");
    assert!(live.store.instance(&key).await.unwrap().unwrap().state.maintenance_until.is_none(), "nothing done");

    let done = post("maintenance", Some(&me), maint(&token)).await.unwrap();
    assert_eq!(done.status().as_u16(), 303);
    let back = done.headers()["location"].to_str().unwrap().to_string();
    assert!(back.starts_with("/instances/evo/shop-main?action="), "{back}");
    let until = live.store.instance(&key).await.unwrap().unwrap().state.maintenance_until.expect("in maintenance");
    assert!(until.0 - live.sup.now().0 > 7_100_000, "two hours");
    let (_, _, shown) = get_page(&live, &back, Some(&me)).await;
    assert!(
        shown.contains("<div class=\"note ok\"><b>maintenance</b> done: evo/shop-main: in maintenance until"),
        "{shown}"
    );
    assert!(shown.contains("End maintenance"), "{shown}");

    let restart = |force: bool| {
        let mut f = vec![("csrf", token.clone())];
        if force {
            f.push(("force", "1".into()));
        }
        post("restart", Some(&me), f)
    };
    let first = restart(false).await.unwrap();
    assert_eq!(first.status().as_u16(), 303);
    let (_, _, p) = get_page(&live, first.headers()["location"].to_str().unwrap(), Some(&me)).await;
    assert!(p.contains("<b>restart</b> done:"), "{p}");
    let second = restart(false).await.unwrap();
    let (_, _, p) = get_page(&live, second.headers()["location"].to_str().unwrap(), Some(&me)).await;
    assert!(p.contains("<b>restart</b> refused:") && p.contains("cooldown"), "{p}");
    let forced = restart(true).await.unwrap();
    let (_, _, p) = get_page(&live, forced.headers()["location"].to_str().unwrap(), Some(&me)).await;
    assert!(p.contains("<b>restart</b> done:"), "{p}");
    let hook = post("webhook", Some(&me), vec![("csrf", token.clone())]).await.unwrap();
    let (_, _, p) = get_page(&live, hook.headers()["location"].to_str().unwrap(), Some(&me)).await;
    assert!(p.contains("<b>webhook</b> done: evo/shop-main: webhook config"), "{p}");
    let off = post("maintenance", Some(&me), vec![("csrf", token.clone()), ("off", "1".into())]).await.unwrap();
    assert_eq!(off.status().as_u16(), 303);
    assert!(live.store.instance(&key).await.unwrap().unwrap().state.maintenance_until.is_none());

    // The audit log: one operator_action per action, with actor and address.
    let rec = live.store.instance(&key).await.unwrap().unwrap();
    let events = live.store.events(&rec.id, 100).await.unwrap();
    let actions: Vec<Value> = events
        .iter()
        .filter(|e| e.kind == "operator_action")
        .map(|e| serde_json::from_str(&e.detail).unwrap())
        .collect();
    let summary: Vec<(String, String)> = actions
        .iter()
        .rev()
        .map(|a| (a["action"].as_str().unwrap().to_string(), a["outcome"].as_str().unwrap().to_string()))
        .collect();
    let pairs: Vec<(&str, &str)> = summary.iter().map(|(a, o)| (a.as_str(), o.as_str())).collect();
    assert_eq!(
        pairs,
        vec![
            ("maintenance", "done"),
            ("restart", "done"),
            ("restart", "refused"),
            ("restart", "done"),
            ("webhook", "done"),
            ("maintenance", "done")
        ]
    );
    assert!(actions.iter().all(|a| a["actor"] == "status page" && a["address"] == "127.0.0.1"), "{actions:?}");
    assert_eq!(actions[2]["force"], true, "newest first: the forced restart");
    assert!(events.iter().any(|e| e.kind == "manual_restart"), "the supervisor's own path ran");
    assert!(events.iter().any(|e| e.kind == "maintenance"));
}

/// Step one instance at an instant of the past and commit (may_recover off:
/// nothing is sent). Seeds a history the uptime bars can show.
async fn seed(store: &wa_sentinel::store::Store, key: &wa_sentinel::domain::InstanceKey, at: i64, obs: Observation) {
    let rec = store.instance(key).await.unwrap().unwrap();
    let id = uuid::Uuid::now_v7().to_string();
    let ctx = Ctx { now: Ts(at), key, tenant: &rec.tenant, new_id: &id, may_recover: false, watching_since: Ts(0) };
    let out = step(&rec.state, obs, &ctx, &Policy { down_after: 1, ..Policy::default() });
    store.commit_step(&rec, &out, &[], Ts(at)).await.unwrap();
}

/// Two tenants' instances with three days of history: outages that ended,
/// one still open, a maintenance window, a provider outage.
async fn seed_history(live: &Live) {
    use wa_sentinel::domain::InstanceKey;
    use wa_sentinel::domain::provider::{ProviderChange, ProviderOutage, ProviderState, ProviderStepOutput};
    const M: i64 = 60_000;
    const H: i64 = 60 * M;
    let now = live.sup.now().0;
    let up = || Observation::Polled(ProviderStatus::Connected);
    let drop = || Observation::Polled(ProviderStatus::Disconnected { reason: Some(428) });
    type Plan = (&'static str, &'static str, i64, Vec<(i64, Observation)>);
    let plan: [Plan; 4] = [
        (
            "acme_sales",
            "acme",
            72 * H,
            vec![(20 * H, drop()), (20 * H - 25 * M, up()), (3 * H, drop()), (3 * H - 9 * M, up())],
        ),
        (
            "acme_support",
            "acme",
            72 * H,
            vec![(10 * H, Observation::Maintenance(Some(Ts(now - 8 * H)))), (9 * H, drop()), (8 * H - M, up())],
        ),
        ("acme_billing", "acme", 30 * H, vec![(14 * H, drop()), (12 * H, up())]),
        (
            "globex_main",
            "globex",
            48 * H,
            vec![(H, Observation::Polled(ProviderStatus::LoggedOut { reason: Some(401) }))],
        ),
    ];
    for (name, tenant, age, steps) in plan {
        let key = InstanceKey::new("evo", name);
        let labels = std::collections::BTreeMap::new();
        live.store.ensure_instance(&key, tenant, &labels, "config", None, Ts(now - age)).await.unwrap();
        seed(&live.store, &key, now - age + 1000, up()).await;
        for (ago, obs) in steps {
            seed(&live.store, &key, now - ago, obs).await;
        }
    }
    let outage = ProviderOutage {
        id: "p1".into(),
        started_at: Ts(now - 6 * H),
        reason: "unreachable".into(),
        notified: true,
        cause: wa_sentinel::domain::provider::ProviderCause::Unreachable,
        remediation_attempts: 0,
        exhausted_notified: false,
    };
    let opened = ProviderStepOutput {
        state: ProviderState { failed_cycles: 2, outage: Some(outage), ..ProviderState::default() },
        notices: vec![],
        remediate: None,
        changes: vec![ProviderChange::OutageOpened {
            id: "p1".into(),
            cause: wa_sentinel::domain::provider::ProviderCause::Unreachable,
            reason: "provider unreachable".into(),
        }],
    };
    live.store.commit_provider_step("evo", &opened, &[], Ts(now - 6 * H)).await.unwrap();
    let closed = ProviderStepOutput {
        state: ProviderState::default(),
        notices: vec![],
        remediate: None,
        changes: vec![ProviderChange::OutageClosed {
            id: "p1".into(),
            recovered_by: wa_sentinel::domain::notice::RecoveredBy::Poll,
        }],
    };
    live.store.commit_provider_step("evo", &closed, &[], Ts(now - 6 * H + 12 * M)).await.unwrap();
}

/// A W3C WebDriver session on chromedriver, over plain HTTP (no driver crate).
pub struct Browser {
    http: reqwest::Client,
    url: String,
    _driver: tokio::process::Child,
}

impl Browser {
    pub async fn start(chromium: &str, chromedriver: &str, profile: &std::path::Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(std::time::Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--hide-scrollbars", format!("--user-data-dir={}", profile.display())]
        }}}});
        let r: Value = http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let id = r["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no WebDriver session: {r}"));
        Browser { url: format!("{base}/session/{id}"), http, _driver: driver }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut r = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let v: Value = r.send().await.unwrap().json().await.unwrap();
        assert!(v["value"].get("error").is_none(), "WebDriver {path}: {v}");
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(serde_json::json!({"url": url}))).await;
    }

    pub async fn find(&self, css: &str) -> String {
        let v = self
            .call(reqwest::Method::POST, "/element", Some(serde_json::json!({"using": "css selector", "value": css})))
            .await;
        v.as_object().unwrap().values().next().unwrap().as_str().unwrap().to_string()
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/click"), Some(serde_json::json!({}))).await;
    }

    pub async fn type_in(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/value"), Some(serde_json::json!({"text": text}))).await;
    }

    pub async fn rect(&self, css: &str) -> Value {
        let e = self.find(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{e}/rect"), None).await
    }

    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None).await.as_str().unwrap().to_string()
    }

    pub async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None).await.as_str().unwrap().to_string()
    }

    /// Wait for a navigation a click started (a click may return before it ends).
    pub async fn wait_for_url(&self, want: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let url = self.current_url().await;
            if want(&url)
                && self.call(reqwest::Method::GET, "/source", None).await.as_str().is_some_and(|s| s.contains("</h1>"))
            {
                return url;
            }
            assert!(std::time::Instant::now() < deadline, "still at {url}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub async fn size(&self, width: u32, height: u32) {
        let rect = serde_json::json!({"width": width, "height": height});
        self.call(reqwest::Method::POST, "/window/rect", Some(rect)).await;
    }

    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(path, bytes).unwrap();
    }

    pub async fn quit(&self) {
        let _ = self.http.delete(&self.url).send().await;
    }
}

/// In headless Chromium driven through chromedriver: sign in
/// with the form, see the uptime bars drawn by the stylesheet (CSP
/// `default-src 'self'` lets `/status.css` in), open an instance's page and
/// put it in maintenance with its form; the state and the audit log show it.
/// Desktop and phone screenshots are written to a scratch directory, or to
/// `docs/` with `WA_SENTINEL_SCREENSHOTS=docs`. Skipped when Chromium or
/// chromedriver is absent, except under `CI=true` (`.ci/run` installs both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_puts_an_instance_in_maintenance_from_the_page_in_chromium() {
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
    let live = Live::start(&[("shop-main", Behaviour::Open), ("lost-1", Behaviour::LoggedOut)], |_| {}).await;
    live.sup.poll_cycle().await.unwrap();
    seed_history(&live).await;
    let scratch = tempfile::tempdir().unwrap();
    let shots = match std::env::var("WA_SENTINEL_SCREENSHOTS").as_deref() {
        Ok("docs") => std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/docs")),
        _ => scratch.path().to_path_buf(),
    };
    let profile = tempfile::tempdir().unwrap();
    let b = Browser::start(&chromium, chromedriver, profile.path()).await;
    b.size(1280, 900).await;

    b.goto(&format!("{}/login", live.base)).await;
    b.type_in("input[name=token]", ADMIN).await;
    b.click("button[type=submit]").await;
    let home = format!("{}/", live.base);
    b.wait_for_url(|u| u == home).await; // signed in, back on the status page
    let dom = b.source().await;
    assert!(dom.contains("acme_sales") && dom.contains("globex_main") && dom.contains("s-provider_down"), "{dom}");
    let bar = b.rect("tr .bar").await;
    assert_eq!(bar["height"], 16, "the stylesheet is applied under the CSP: {bar}");
    assert_eq!(bar["width"], 180, "{bar}");
    b.screenshot(&shots.join("status-page.png")).await;

    b.click("a[href='/instances/evo/acme_support']").await;
    b.wait_for_url(|u| u.ends_with("/instances/evo/acme_support")).await;
    let dom = b.source().await;
    assert!(dom.contains("<h1>evo/acme_support</h1>") && dom.contains("s-maintenance"), "{dom}");
    b.click("select[name=duration] option[value='8h'], select[name=duration] option:nth-child(3)").await;
    b.click("form[action$='/maintenance'] button").await;
    b.wait_for_url(|u| u.contains("/instances/evo/acme_support?action=")).await;
    let dom = b.source().await;
    assert!(dom.contains("<b>maintenance</b> done: evo/acme_support: in maintenance until"), "{dom}");
    assert!(dom.contains("End maintenance"), "{dom}");
    b.screenshot(&shots.join("instance-page.png")).await;
    let key = wa_sentinel::domain::InstanceKey::new("evo", "acme_support");
    let rec = live.store.instance(&key).await.unwrap().unwrap();
    let left = rec.state.maintenance_until.expect("in maintenance").0 - live.sup.now().0;
    assert!((7 * 3_600_000..=8 * 3_600_000).contains(&left), "eight hours: {left} ms");
    let events = live.store.events(&rec.id, 50).await.unwrap();
    let action = events.iter().find(|e| e.kind == "operator_action").expect("audited");
    let d: Value = serde_json::from_str(&action.detail).unwrap();
    assert_eq!((d["actor"].as_str(), d["address"].as_str()), (Some("status page"), Some("127.0.0.1")));

    b.size(390, 844).await;
    b.goto(&format!("{}/", live.base)).await;
    assert!(b.rect("tr .bar").await["width"].as_f64().unwrap() <= 120.0, "narrower bars on a phone");
    b.screenshot(&shots.join("status-page-phone.png")).await;
    b.goto(&format!("{}/instances/evo/globex_main", live.base)).await;
    b.screenshot(&shots.join("instance-page-phone.png")).await;
    b.quit().await;
    for f in ["status-page.png", "status-page-phone.png", "instance-page.png", "instance-page-phone.png"] {
        assert!(std::fs::metadata(shots.join(f)).unwrap().len() > 10_000, "{f}");
    }
}

/// The absolute path of a program on `PATH` (chromedriver wants one).
pub fn which(program: &str) -> String {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| program.to_string())
}

/// Replicas: on a replica that does not lead the provider, a
/// restart from the page is recorded (`queued`) and nothing is sent; the
/// provider's leader carries it out at its next cycle and audits the outcome
/// with the page's actor and address. Maintenance is done at once anywhere.
/// A second supervisor on `live`'s database that leads every provider (no
/// replica leases): the leader a follower's requests go to.
fn leader_of(live: &Live) -> std::sync::Arc<wa_sentinel::supervisor::Supervisor> {
    wa_sentinel::supervisor::Supervisor::new(
        std::sync::Arc::new(live.sup.config().clone()),
        live.store.clone(),
        None,
        std::sync::Arc::new(wa_sentinel::clock::now),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_queues_provider_actions_for_the_leader() {
    use std::sync::Arc;
    use wa_sentinel::supervisor::scheduler::Ticks;

    let live = Live::start(&[("shop-main", Behaviour::Open)], |_| {}).await;
    live.sup.poll_cycle().await.unwrap();
    live.sup.attach_ticks(Arc::new(Ticks::default()));
    assert!(!live.sup.leads("evo"), "this replica now leads nothing");
    let me = session(&live).await;
    let token = csrf_of(&get_page(&live, "/instances/evo/shop-main", Some(&me)).await.2);
    let post = |path: &str, form: Vec<(&str, String)>| {
        no_redirects()
            .post(format!("{}/instances/evo/shop-main/{path}", live.base))
            .header("cookie", me.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&form))
            .send()
    };
    let restarts = || live.sim.calls("POST", "/instance/restart/shop-main");
    let r = post("restart", vec![("csrf", token.clone())]).await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let (_, _, p) = get_page(&live, r.headers()["location"].to_str().unwrap(), Some(&me)).await;
    assert!(p.contains("<b>restart</b> queued: this replica does not lead provider `evo`"), "{p}");
    assert_eq!(restarts(), 0, "a follower never calls the provider");
    let m = post("maintenance", vec![("csrf", token.clone()), ("duration", "30m".into())]).await.unwrap();
    let (_, _, p) = get_page(&live, m.headers()["location"].to_str().unwrap(), Some(&me)).await;
    assert!(p.contains("<b>maintenance</b> done:"), "maintenance needs no provider call: {p}");

    // The leader carries the request out at the start of its cycle.
    let leader = leader_of(&live);
    leader.poll_cycle().await.unwrap();
    assert_eq!(restarts(), 1, "sent once, by the leader");
    assert_eq!(leader.run_requested_actions("evo").await.unwrap(), 0, "taken once");
    let key = wa_sentinel::domain::InstanceKey::new("evo", "shop-main");
    let rec = live.store.instance(&key).await.unwrap().unwrap();
    let events = live.store.events(&rec.id, 50).await.unwrap();
    let done: Vec<Value> = events
        .iter()
        .filter(|e| e.kind == "operator_action")
        .map(|e| serde_json::from_str::<Value>(&e.detail).unwrap())
        .filter(|d| d["action"] == "restart")
        .collect();
    assert_eq!(done.len(), 2, "queued on the follower, done on the leader: {done:?}");
    assert_eq!(done[0]["outcome"], "done");
    assert_eq!((done[0]["actor"].as_str(), done[0]["address"].as_str()), (Some("status page"), Some("127.0.0.1")));
    assert_eq!(done[1]["outcome"], "queued");
    let (_, _, p) = get_page(&live, "/instances/evo/shop-main", Some(&me)).await;
    assert!(p.contains("via: request from a replica that does not lead the provider"), "on the timeline: {p}");

    // A request nobody took in time expires instead of restarting late.
    let old = wa_sentinel::store::ActionRequest {
        id: "old".into(),
        instance_id: rec.id.clone(),
        provider: "evo".into(),
        action: "restart".into(),
        force: true,
        actor: "status page".into(),
        address: "127.0.0.1".into(),
        requested_at: live.sup.now().0 - 6 * 60_000,
    };
    live.store.request_action(&old).await.unwrap();
    assert_eq!(leader.run_requested_actions("evo").await.unwrap(), 0);
    assert_eq!(restarts(), 1, "expired, not sent");
}

/// The admin API's restart follows the same rule as the page: a replica that
/// does not lead the provider never calls it, it records the request (202)
/// and the leader carries it out once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_restart_on_a_follower_is_queued_for_the_leader() {
    use std::sync::Arc;
    use wa_sentinel::supervisor::scheduler::Ticks;

    let live = Live::start(&[("shop-main", Behaviour::Open)], |_| {}).await;
    live.sup.poll_cycle().await.unwrap();
    live.sup.attach_ticks(Arc::new(Ticks::default()));
    assert!(!live.sup.leads("evo"));
    let restarts = || live.sim.calls("POST", "/instance/restart/shop-main");
    let r = live
        .http
        .post(format!("{}/api/instances/evo/shop-main/restart", live.base))
        .bearer_auth(super::receiver::ADMIN)
        .json(&serde_json::json!({"force": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["result"], "queued", "{body}");
    assert_eq!(restarts(), 0, "a follower never calls the provider");
    let leader = leader_of(&live);
    leader.poll_cycle().await.unwrap();
    assert_eq!(restarts(), 1, "sent once, by the leader");
    let key = wa_sentinel::domain::InstanceKey::new("evo", "shop-main");
    let rec = live.store.instance(&key).await.unwrap().unwrap();
    let events = live.store.events(&rec.id, 50).await.unwrap();
    let by_api: Vec<Value> = events
        .iter()
        .filter(|e| e.kind == "operator_action")
        .map(|e| serde_json::from_str::<Value>(&e.detail).unwrap())
        .filter(|d| d["actor"] == "api")
        .collect();
    assert_eq!(by_api.len(), 1, "{by_api:?}");
    assert_eq!(by_api[0]["outcome"], "done", "{by_api:?}");
}

/// Run `$name(db)` on a fresh SQLite database and, when configured, on a
/// fresh PostgreSQL schema.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::it::common::TestDb::sqlite().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = crate::it::common::TestDb::postgres().await else { return };
                super::$name(db).await;
            }
        }
    )*};
}

on_both_databases!(
    the_status_page_tenant_figures_are_the_report_s_retired_instances_included,
    a_recreated_instance_s_page_shows_its_own_history_and_links_the_retired_record,
);

const MIN: i64 = 60_000;

/// On a clock the test moves: `shop-1` stays open; `gone-1` is down for a
/// while, deleted on the provider (seen missing, then unlisted: retired,
/// its outage closed) and created again under the same name (a new row).
/// Returns the live rig, its clock, and the retired record's id.
async fn deleted_and_recreated(
    db: crate::it::common::TestDb,
) -> (Live, std::sync::Arc<std::sync::atomic::AtomicI64>, String) {
    use std::sync::atomic::Ordering;
    // Three hours back: what happens below is over before the real clock
    // (which the notice worker reads) gets there.
    let start = wa_sentinel::clock::now().0 / MIN * MIN - 180 * MIN;
    let clock = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(start));
    let live =
        Live::start_on(db, Some(clock.clone()), &[("shop-1", Behaviour::Open), ("gone-1", Behaviour::Open)], |r| {
            r.providers[0].default_tenant = Some("acme".into())
        })
        .await;
    let step = |minutes: i64| clock.fetch_add(minutes * MIN, Ordering::SeqCst);
    let cycle = || async {
        live.sup.poll_cycle().await.unwrap();
        live.sup.wait_idle().await;
    };
    cycle().await;
    step(30);
    live.sim.set_behaviour("gone-1", Behaviour::ClosedTransient { reason: 428 });
    for _ in 0..3 {
        cycle().await;
        step(1);
    }
    let key = wa_sentinel::domain::InstanceKey::new("evo", "gone-1");
    let old = live.store.instance(&key).await.unwrap().unwrap();
    assert!(old.state.outage.is_some(), "gone-1 is down");
    step(20);
    live.sim.remove_instance("gone-1");
    for _ in 0..4 {
        cycle().await;
        step(1);
    }
    assert!(live.store.instance(&key).await.unwrap().is_none(), "gone-1 retired");
    step(5);
    live.sim.add_instance("gone-1", Behaviour::Open);
    cycle().await;
    let new = live.store.instance(&key).await.unwrap().expect("gone-1 again, as a new record");
    assert_ne!(new.id, old.id);
    step(10);
    cycle().await;
    (live, clock, old.id)
}

/// The status page's tenant figures come from the report's function over the
/// same windows: a retired instance that was down in the window counts in
/// its tenant's instances, outages and time down on the page as in
/// `report`, and the page says how many of them are retired.
async fn the_status_page_tenant_figures_are_the_report_s_retired_instances_included(db: crate::it::common::TestDb) {
    let (live, _clock, _) = deleted_and_recreated(db).await;
    let now = live.sup.now();
    let q = |from: Ts| ReportQuery { from, to: now, tenant: Some("acme".into()), provider: None };
    let month = build(&live.store, &q(Ts(now.0 - 30 * 24 * 60 * MIN)), now).await.unwrap();
    let day = build(&live.store, &q(Ts(now.0 - 24 * 60 * MIN)), now).await.unwrap();
    let (m, d) = (&month.tenants[0], &day.tenants[0]);
    assert_eq!((m.instances, m.figures.outages), (3, 1), "shop-1, gone-1 retired, gone-1 again: {month:?}");
    assert!(month.instances.iter().any(|i| !i.present));
    let (code, _, page) = get_page(&live, "/", None).await;
    assert_eq!(code, 200);
    let tenants = &page[page.find("<h2>Tenants</h2>").unwrap()..page.find("<h2>Instances</h2>").unwrap()];
    let row = row_of(tenants, "acme");
    let cells: Vec<&str> = row.split("<td>").skip(1).map(|c| &c[..c.find("</td>").unwrap()]).collect();
    let want_instances = format!("{} <span class=\"muted\">(1 retired)</span>", m.instances);
    assert_eq!(cells[1], want_instances, "{row}");
    assert_eq!(cells[3], wa_sentinel::report::percent(&d.figures), "24 h: {row}");
    assert_eq!(cells[4], wa_sentinel::report::percent(&m.figures), "30 d: {row}");
    assert_eq!(cells[5], m.figures.outages.to_string(), "outages 30 d: {row}");
    let down = wa_sentinel::domain::time::human_duration(std::time::Duration::from_millis(m.figures.down_ms as u64));
    assert_eq!(cells[6], down, "down 30 d: {row}");
    // The retired record is listed apart, linked to its own page.
    let retired = &page[page.find("<h2>Retired").expect("a section of retired instances")..];
    assert!(retired.contains("/instances/evo/gone-1?id="), "{retired}");
}

/// The page of a recreated instance shows its own record's outages and
/// notices only, and links the retired record, whose page (`?id=`) shows its
/// history and offers no actions.
async fn a_recreated_instance_s_page_shows_its_own_history_and_links_the_retired_record(db: crate::it::common::TestDb) {
    let (live, _clock, old_id) = deleted_and_recreated(db).await;
    let me = session(&live).await;
    let (code, _, page) = get_page(&live, "/instances/evo/gone-1", Some(&me)).await;
    assert_eq!(code, 200, "{page}");
    let outages = &page[page.find("<h2>Outages</h2>").unwrap()..page.find("<h2>Timeline</h2>").unwrap()];
    assert!(outages.contains("No outage on record."), "the retired record's outage is not this one's: {outages}");
    let timeline = &page[page.find("<h2>Timeline</h2>").unwrap()..];
    assert!(!timeline.contains("notice instance_down") && !timeline.contains("notice instance_retired"), "{timeline}");
    let link = format!("/instances/evo/gone-1?id={old_id}");
    assert!(page.contains(&format!("href=\"{link}\"")), "a link to the retired record: {page}");
    assert!(page.contains("name=\"csrf\""), "the current record can be acted on");

    let (code, _, old) = get_page(&live, &link, Some(&me)).await;
    assert_eq!(code, 200, "{old}");
    assert!(old.contains("retired"), "{old}");
    let outages = &old[old.find("<h2>Outages</h2>").unwrap()..old.find("<h2>Timeline</h2>").unwrap()];
    assert!(outages.contains("<td>retired</td>") && outages.contains("<td>missing</td>"), "{outages}");
    let timeline = &old[old.find("<h2>Timeline</h2>").unwrap()..];
    assert!(timeline.contains("notice instance_down") && timeline.contains("notice instance_retired"), "{timeline}");
    assert!(!old.contains("name=\"csrf\""), "a retired record offers no actions: {old}");
    assert!(old.contains("href=\"/instances/evo/gone-1\""), "a link back to the current record");
    // An id of another instance, or none at all, is not this page.
    let shop = live.store.instance(&wa_sentinel::domain::InstanceKey::new("evo", "shop-1")).await.unwrap().unwrap();
    assert_eq!(get_page(&live, &format!("/instances/evo/gone-1?id={}", shop.id), Some(&me)).await.0, 404);
    assert_eq!(get_page(&live, "/instances/evo/gone-1?id=nope", Some(&me)).await.0, 404);
}

/// What Rust's `Debug` formatting of the domain types looks like: none of it
/// may reach an operator.
const DEBUG_MARKS: [&str; 6] = ["Polled(", "Webhook(", "ProviderFailed(", "Some(", "None", "{ "];

fn debug_marks(text: &str) -> Vec<&'static str> {
    DEBUG_MARKS.iter().copied().filter(|m| text.contains(m)).collect()
}

/// Every string inside a JSON value.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// A realistic history — a drop reconnected and verified, a reconnect that
/// did not help, a manual restart, maintenance, and an event row written by
/// an older release in `Debug` text — reads in operator words on the
/// instance's page, in the API and from `wa-sentinel history` and `status`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_details_read_in_operator_words_on_the_page_the_api_and_the_cli() {
    let live = Live::start(
        &[("drop-1", Behaviour::ClosedTransient { reason: 428 }), ("loop-1", Behaviour::ReconnectLoop)],
        |r| {
            r.restart.max_attempts_per_outage = 3;
            r.restart.cooldown = "1s".into();
        },
    )
    .await;
    for _ in 0..3 {
        live.sup.poll_cycle().await.unwrap();
        live.sup.wait_idle().await;
    }
    let key = wa_sentinel::domain::InstanceKey::new("evo", "loop-1");
    live.sup.manual_restart(&key, true).await.unwrap();
    live.sup.observe(&key, Observation::Maintenance(Some(Ts(live.sup.now().0 + 3_600_000))), None).await.unwrap();
    let rec = live.store.instance(&key).await.unwrap().unwrap();
    let old = serde_json::json!({"observation": "Polled(Disconnected { reason: None })", "health": "disconnected"});
    live.store.record_event(Some(&rec.id), "evo", "recovery_verified", &old, live.sup.now()).await.unwrap();
    let verified: Vec<String> = live
        .store
        .events(&rec.id, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "recovery_verified")
        .map(|e| e.detail)
        .collect();
    assert!(verified.len() >= 2, "a verification of this release and the old row: {verified:?}");

    for name in ["drop-1", "loop-1"] {
        let (code, _, page) = get_page(&live, &format!("/instances/evo/{name}"), None).await;
        assert_eq!(code, 200);
        let timeline = &page[page.find("<h2>Timeline</h2>").unwrap()..];
        assert!(timeline.contains("recovery_verified"), "{timeline}");
        assert_eq!(debug_marks(&page), Vec::<&str>::new(), "{name}'s page:\n{timeline}");
        let api: Value = live
            .http
            .get(format!("{}/api/instances/evo/{name}", live.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut texts = Vec::new();
        strings(&api, &mut texts);
        let leaked: Vec<&String> = texts.iter().filter(|t| !debug_marks(t).is_empty()).collect();
        assert!(leaked.is_empty(), "{name} in the API: {leaked:?}");
    }
    let (_, _, page) = get_page(&live, "/instances/evo/loop-1", None).await;
    assert!(page.contains("observation: poll: connection closed"), "the old row, in words too: {page}");

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, format!("[database]\nurl = \"{}\"\n", live.db_url())).unwrap();
    for args in [vec!["history"], vec!["history", "evo/loop-1"], vec!["history", "--json"], vec!["status"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wa-sentinel"))
            .env_remove("WA_SENTINEL_CONFIG")
            .arg("--config")
            .arg(&cfg)
            .args(&args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(debug_marks(&text), Vec::<&str>::new(), "{args:?}:\n{text}");
    }
}
