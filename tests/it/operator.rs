//! Issue 15, the operator surface: `/api/report` (the JSON of `wa-sentinel
//! report`), the status page's uptime bars and tenant figures, the page of
//! one instance, and actions taken from the page (CSRF, audit events), with
//! the page rendered and an action performed in headless Chromium.

use serde_json::Value;
use wa_sentinel::domain::Ts;
use wa_sentinel::providers::simulator::Behaviour;
use wa_sentinel::report::{ReportQuery, build};

use crate::it::receiver::{ADMIN, Live};

/// `/api/report` is behind the admin token and returns what `report::build`
/// computes for the same window; bad windows are 400s in the one error shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue15_api_report_is_the_report_json_behind_the_admin_token() {
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
    // The same function on the same window.
    let query = ReportQuery { from: Ts(0), to, tenant: None, provider: None };
    let mut want = serde_json::to_value(build(&live.store, &query, live.sup.now()).await.unwrap()).unwrap();
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
