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

/// Names come from providers: a hostile one is text on the status page and
/// on its own page (the templates escape it), and a path segment in links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_instance_name_is_text_on_every_admin_page() {
    const EVIL: &str = "<script>alert(1)</script>";
    let live =
        Live::start(&[(EVIL, Behaviour::LoggedOut), ("x\"onmouseover=\"alert(2)", Behaviour::Open)], |_| {}).await;
    live.sup.poll_cycle().await.unwrap();
    live.sup.wait_idle().await;
    let me = session(&live).await;
    let (code, _, status) = get_page(&live, "/", Some(&me)).await;
    assert_eq!(code, 200);
    let (code, _, own) = get_page(&live, "/instances/evo/%3Cscript%3Ealert%281%29%3C%2Fscript%3E", Some(&me)).await;
    assert_eq!(code, 200, "{own}");
    for page in [&status, &own] {
        assert!(!page.contains("<script") && !page.contains("\"onmouseover"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{page}");
    }
    assert!(status.contains("href=\"/instances/evo/%3Cscript%3Ealert%281%29%3C%2Fscript%3E\""), "{status}");
    assert!(status.contains("x&quot;onmouseover=&quot;alert(2)"), "{status}");
    assert!(own.contains("<h1>evo/&lt;script&gt;alert(1)&lt;/script&gt;</h1>"), "{own}");
    assert!(own.contains("action=\"/instances/evo/%3Cscript%3Ealert%281%29%3C%2Fscript%3E/restart\""), "{own}");
}

mod actions;
mod browser;
mod records;

pub use browser::{Browser, CHROMIUM, chromium_and_driver, installed};
