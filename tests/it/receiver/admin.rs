//! The admin surface on the real server: the API's token and answers,
//! bodies refused before they are read, the sign-in form and its limits,
//! sessions, and the status page (escaping, headless Chromium).

use super::*;
use crate::it::common::sign_in;

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
    let cookie = sign_in(&live.base, ADMIN).await.1.unwrap().split(';').next().unwrap().to_string();
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
    let (code, set_cookie, _) = sign_in(&live.base, ADMIN).await;
    assert_eq!(code, 303);
    let cookie = set_cookie.unwrap().split(';').next().unwrap().to_string();
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

/// Failed sign-ins are limited per client address: 10 a minute, then 429
/// with `Retry-After`, and a locked-out address's credential is not even
/// looked at (the right token gets 429 too), on the form, Basic and the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_limited_per_client_address() {
    let live = Live::start(&[("a", Behaviour::Open)], |_| {}).await;
    for i in 0..10 {
        assert_eq!(sign_in(&live.base, "nope").await.0, 401, "failure {i}");
    }
    let (code, _, retry) = sign_in(&live.base, "nope").await;
    assert_eq!(code, 429);
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=7).contains(&retry), "{retry}");
    assert_eq!(sign_in(&live.base, ADMIN).await.0, 429, "locked out: not evaluated");
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
    let (c1, c2) = (sign_in(&live.base, ADMIN).await.1.unwrap(), sign_in(&live.base, ADMIN).await.1.unwrap());
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
    let cookie = sign_in(&live.base, ADMIN).await.1.unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
}

/// Headless Chromium renders the status page (HTTP Basic in the URL). Skipped
/// when Chromium is absent, except under `CI=true`, where `.ci/run` installs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_renders_in_headless_chromium() {
    let Some(chromium) = crate::it::operator::installed(&crate::it::operator::CHROMIUM) else {
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
