//! Links from the operators' side and the edges: unknown, tampered, expired
//! and revoked links; links issued and revoked by API, page and CLI, the one
//! start under the cooldown; the public listener only; the page in headless
//! Chromium.

use super::*;

/// A link that does not exist, or whose token was changed, is 404; an
/// expired or revoked one is 410 with a line to ask for a new one; the page
/// speaks the browser's language (pt-BR) over `alerts.language`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tampered_expired_and_revoked_links() {
    let (_sim, rig, url) = logged_out_with_a_link().await;
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
    let revoked: Value = crate::it::common::admin_json(
        rig.http.delete(format!("{}/api/instances/evo/lost-1/pair-link", rig.base)),
        ADMIN,
    )
    .await;
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
    let set_cookie = crate::it::common::sign_in(&rig.base, ADMIN).await.1.unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_string();
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
    let (_sim, rig, url) = logged_out_with_a_link().await;
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
    use crate::it::operator::{Browser, chromium_and_driver};
    let Some((chromium, chromedriver)) = chromium_and_driver() else { return };
    let (sim, rig, url) = logged_out_with_a_link().await;
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
