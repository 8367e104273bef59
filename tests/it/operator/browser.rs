//! The status page and an instance's page in headless Chromium, on a
//! seeded history of two tenants: the uptime bars drawn under the CSP, and
//! maintenance set from the page's form (screenshots for docs/).

use super::*;

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
        let port = crate::it::common::free_port();
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
    let Some((chromium, chromedriver)) = chromium_and_driver() else { return };
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

/// The first of `names` that runs (`--version` succeeds).
pub fn installed(names: &[&'static str]) -> Option<&'static str> {
    names
        .iter()
        .copied()
        .find(|c| std::process::Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
}

/// The names Chromium goes by.
pub const CHROMIUM: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// Chromium's absolute path and chromedriver, or `None` when either is
/// missing (the test is skipped), except under `CI=true`, where `.ci/run`
/// installs both and a missing one fails the test.
pub fn chromium_and_driver() -> Option<(String, &'static str)> {
    let (Some(chromium), Some(chromedriver)) = (installed(&CHROMIUM), installed(&["chromedriver"])) else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but Chromium or chromedriver is missing");
        eprintln!("skipping: Chromium or chromedriver is not installed");
        return None;
    };
    Some((which(chromium), chromedriver))
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
