//! Inside the SaaS application's workflow: tenants learned from the
//! application (the name's pattern, the admin API, its own database) and every
//! state change streamed back to it (subscribers, `GET /api/events`). The
//! engine on both backends, and the real binary.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wa_sentinel::domain::tenancy::SqlMapping;
use wa_sentinel::domain::{InstanceKey, Ts};
use wa_sentinel::sim::evolution::{Behaviour, SimOptions, Simulator};
use wa_sentinel::store::{InstanceFilter, Store};

use crate::it::common::{OwnDatabase, TestDb, free_port, ok_sink};
use crate::it::process::{Daemon, wait_for};
use crate::it::supervisor::Rig;
use crate::on_both_backends;

on_both_backends!(
    a_tenant_comes_from_config_then_api_then_sql_then_pattern_then_default,
    every_state_change_is_streamed_in_commit_order_and_pulled_after_a_seq,
    an_outage_s_closing_notice_reaches_whoever_heard_of_its_start_after_the_tenant_moved,
);

async fn tenant_of(store: &Store, name: &str) -> (String, String) {
    let r = store.instance(&InstanceKey::new("evo", name)).await.unwrap().unwrap();
    (r.tenant, r.tenant_source)
}

/// One resolution over every source, in the documented order; a tenant
/// change is an event of the stream.
async fn a_tenant_comes_from_config_then_api_then_sql_then_pattern_then_default(store: Store) {
    let names = ["tenant_1_inst_1", "tenant_2_inst_1", "tenant_3_inst_1", "tenant_4_inst_1", "other"];
    let instances: Vec<(&str, Behaviour)> = names.iter().map(|n| (*n, Behaviour::Open)).collect();
    let rig = Rig::new(store.clone(), &instances, |r| {
        r.providers[0].tenant_pattern = Some(r"^(?P<tenant>tenant_\d+)_inst_\d+$".into());
        r.instances.push(wa_sentinel::config::raw::RawInstance {
            provider: "evo".into(),
            name: "tenant_1_inst_1".into(),
            tenant: Some("by-hand".into()),
            ..Default::default()
        });
    })
    .await;
    store.set_tenant_assignment(&InstanceKey::new("evo", "tenant_1_inst_1"), "from-api", Ts(0)).await.unwrap();
    store.set_tenant_assignment(&InstanceKey::new("evo", "tenant_2_inst_1"), "from-api", Ts(0)).await.unwrap();
    let mut sql = SqlMapping::default();
    sql.any_provider.insert("tenant_2_inst_1".into(), "from-sql".into());
    sql.by_provider.insert(("evo".into(), "tenant_3_inst_1".into()), "from-sql".into());
    rig.sup.set_sql_tenants(sql);
    rig.cycle().await;
    assert_eq!(tenant_of(&store, "tenant_1_inst_1").await, ("by-hand".into(), "config".into()));
    assert_eq!(tenant_of(&store, "tenant_2_inst_1").await, ("from-api".into(), "api".into()));
    assert_eq!(tenant_of(&store, "tenant_3_inst_1").await, ("from-sql".into(), "sql".into()));
    assert_eq!(tenant_of(&store, "tenant_4_inst_1").await, ("tenant_4".into(), "pattern".into()));
    assert_eq!(tenant_of(&store, "other").await, ("unassigned".into(), "default".into()));

    // The API's assignment goes: the SQL source decides again, and says so.
    store.clear_tenant_assignment(&InstanceKey::new("evo", "tenant_2_inst_1")).await.unwrap();
    let before = store.stream_last().await.unwrap();
    rig.advance(1);
    rig.cycle().await;
    assert_eq!(tenant_of(&store, "tenant_2_inst_1").await, ("from-sql".into(), "sql".into()));
    let events = store.stream_after(before, 10).await.unwrap();
    let moved: Vec<Value> = events.iter().map(|(_, p)| serde_json::from_str(p).unwrap()).collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(moved[0]["event"], "tenant_changed");
    assert_eq!((moved[0]["from"].as_str(), moved[0]["to"].as_str()), (Some("from-api"), Some("from-sql")));
}

/// A tenant change takes effect for notices from then on, but an open
/// outage's closing notice still reaches the notifier told of its start:
/// the old tenant's pager hears the recovery of what it was paged about.
async fn an_outage_s_closing_notice_reaches_whoever_heard_of_its_start_after_the_tenant_moved(store: Store) {
    let pager = |name: &str, tenant: &str| wa_sentinel::config::raw::RawNotifier {
        name: name.into(),
        kind: "webhook".into(),
        url: Some("http://127.0.0.1:9/hook".into()),
        tenants: Some(vec![tenant.into()]),
        ..Default::default()
    };
    let rig = Rig::new(store.clone(), &[("shop", Behaviour::LoggedOut)], |r| {
        r.notifiers.push(pager("acme-pager", "acme"));
        r.notifiers.push(pager("globex-pager", "globex"));
    })
    .await;
    let shop = InstanceKey::new("evo", "shop");
    store.set_tenant_assignment(&shop, "acme", Ts(0)).await.unwrap();
    rig.cycle().await;
    let sent = |rows: Vec<(String, String, String)>| -> Vec<(String, String)> {
        rows.into_iter().map(|(k, n, _)| (n, k.rsplit(':').next().unwrap().to_string())).collect()
    };
    assert_eq!(sent(store.outbox_all().await.unwrap()), vec![("acme-pager".into(), "instance_logged_out".into())]);
    store.set_tenant_assignment(&shop, "globex", Ts(0)).await.unwrap();
    rig.advance(1);
    rig.cycle().await;
    assert_eq!(tenant_of(&store, "shop").await, ("globex".into(), "api".into()));
    rig.sim.set_behaviour("shop", Behaviour::Open);
    rig.advance(1);
    rig.cycle().await;
    let mut got = sent(store.outbox_all().await.unwrap());
    got.sort();
    assert_eq!(
        got,
        vec![
            ("acme-pager".into(), "instance_logged_out".into()),
            ("acme-pager".into(), "instance_recovered".into()),
            ("globex-pager".into(), "instance_recovered".into()),
        ],
        "the old tenant's pager closes what it opened; the new tenant's hears the news from now on"
    );
}

/// Every health transition and outage change is an event, numbered in commit
/// order, readable after any sequence number.
async fn every_state_change_is_streamed_in_commit_order_and_pulled_after_a_seq(store: Store) {
    let rig = Rig::new(store.clone(), &[("a", Behaviour::Open)], |r| r.supervisor.down_after = 1).await;
    rig.cycle().await;
    let first = store.stream_last().await.unwrap();
    rig.sim.set_behaviour("a", Behaviour::ClosedTransient { reason: 428 });
    rig.advance(1);
    rig.cycle().await; // down, reconnected, and back (the verification poll)
    let all = store.stream_after(0, 100).await.unwrap();
    let seqs: Vec<i64> = all.iter().map(|r| r.0).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "numbered 1, 2, 3 … in commit order");
    let after: Vec<Value> =
        store.stream_after(first, 100).await.unwrap().iter().map(|(_, p)| serde_json::from_str(p).unwrap()).collect();
    let kinds: Vec<&str> = after.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["health_changed", "outage_opened", "health_changed", "outage_closed"]);
    assert_eq!((after[0]["from"].as_str(), after[0]["to"].as_str()), (Some("connected"), Some("disconnected")));
    assert_eq!(after[0]["cause"], "disconnected");
    assert_eq!(after[1]["outage_id"], after[3]["outage_id"]);
    assert_eq!(after[3]["recovered_by"], "restart");
    for e in &after {
        assert_eq!(
            (e["provider"].as_str(), e["instance"].as_str(), e["tenant"].as_str()),
            (Some("evo"), Some("a"), Some("unassigned"))
        );
        assert!(e["at"].as_str().unwrap().ends_with('Z'));
    }
}

/// A daemon config with an admin token, a pattern, and `extra` appended.
fn config(db: &str, port: u16, sim: &Simulator, extra: &str) -> String {
    format!(
        r#"
[database]
url = "{db}"
[server]
listen = "127.0.0.1:{port}"
admin_token = "admin"
events_token = "reader"
[supervisor]
poll_schedule = "*/1 * * * * *"
request_timeout = "2s"
down_after = 1
settle_delay = "0s"
[restart]
cooldown = "30m"
[alerts]
retry_min_delay = "1s"
retry_max_delay = "2s"
[[providers]]
name = "evo"
kind = "evolution"
base_url = "{base}"
api_version = "v2"
api_key = "{key}"
webhook_token = "hooktoken"
discover = true
tenant_pattern = '^(?P<tenant>tenant_\d+)_inst_\d+$'
{extra}
"#,
        base = sim.base_url(),
        key = sim.api_key(),
    )
}

async fn tenants_in(url: &str) -> Vec<(String, String, String)> {
    let store = Store::connect(url, 2).await.unwrap();
    let rows = store.instances(&InstanceFilter::default()).await.unwrap();
    rows.into_iter().map(|r| (r.key.name, r.tenant, r.tenant_source)).collect()
}

/// Wait up to 20 s for `name` to have `tenant` from `source`.
async fn tenant_becomes(url: &str, name: &str, tenant: &str, source: &str) -> bool {
    for _ in 0..100 {
        if tenants_in(url).await.iter().any(|t| t.0 == name && t.1 == tenant && t.2 == source) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// A pattern-mapped fleet, API assignments (one made before the instance
/// exists) that survive a restart, and the API's answers to bad tenants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_assignments_apply_when_discovered_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions {
        instances: vec![("tenant_1_inst_1".into(), Behaviour::Open), ("shop".into(), Behaviour::Open)],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let port = free_port();
    let db = format!("sqlite://{}/app.db", dir.path().display());
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, config(&db, port, &sim, "")).unwrap();
    let mut daemon = Daemon::spawn(&cfg, &[]);
    let client = reqwest::Client::new();
    let api = |path: &str| format!("http://127.0.0.1:{port}/api/instances/evo/{path}/tenant");
    assert!(
        wait_for(Duration::from_secs(30), || sim.calls("GET", "/instance/connectionState/shop") >= 1).await,
        "the daemon polls"
    );
    let put = |path: String, body: Value| client.put(path).bearer_auth("admin").json(&body).send();
    assert_eq!(put(api("shop"), json!({"tenant": "acme"})).await.unwrap().status(), 200);
    let ahead = put(api("not-yet"), json!({"tenant": "globex"})).await.unwrap();
    assert_eq!(ahead.status(), 200, "an assignment may come before the instance exists");
    for bad in [json!({"tenant": ""}), json!({"tenant": "two words"}), json!({"tenant": "<b>"})] {
        let r = put(api("shop"), bad.clone()).await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().starts_with("tenant: "), "{body}");
    }
    let wrong = client.put(api("shop")).bearer_auth("nope").json(&json!({"tenant": "x"})).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let url = db.clone();
    let applied = async {
        for _ in 0..100 {
            if tenants_in(&url).await.iter().any(|t| t.0 == "shop" && t.1 == "acme") {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    };
    assert!(applied.await, "applied at the next cycle");
    // The API says where the tenant came from; DELETE hands the decision back
    // to the next source in the order; both are audited on the timeline.
    let listed: Value =
        crate::it::common::admin_json(client.get(format!("http://127.0.0.1:{port}/api/instances")), "admin").await;
    let shop = listed["instances"].as_array().unwrap().iter().find(|i| i["instance"] == "shop").unwrap().clone();
    assert_eq!((&shop["tenant"], &shop["tenant_source"]), (&json!("acme"), &json!("api")), "{shop}");
    let del = client.delete(api("shop")).bearer_auth("admin").send().await.unwrap();
    assert_eq!(del.status(), 200);
    assert_eq!(del.json::<Value>().await.unwrap()["removed"], true);
    assert!(
        tenant_becomes(&db, "shop", "unassigned", "default").await,
        "without the assignment, the default tenant: {:?}",
        tenants_in(&db).await
    );
    let store = Store::connect(&db, 2).await.unwrap();
    let rec = store.instance(&InstanceKey::new("evo", "shop")).await.unwrap().unwrap();
    let audited: Vec<Value> = store
        .events(&rec.id, 100)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == "tenant_assigned")
        .map(|e| serde_json::from_str(&e.detail).unwrap())
        .collect();
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert!(audited.iter().all(|d| d["actor"] == "api" && d["address"] == "127.0.0.1"), "{audited:?}");
    assert!(audited.iter().any(|d| d["tenant"] == "acme") && audited.iter().any(|d| d["tenant"].is_null()));
    assert_eq!(put(api("shop"), json!({"tenant": "acme"})).await.unwrap().status(), 200, "assigned again");
    assert!(tenant_becomes(&db, "shop", "acme", "api").await);
    daemon.kill9();

    // The instance assigned ahead appears on the provider; a new daemon starts.
    sim.add_instance("not-yet", Behaviour::Open);
    let mut daemon = Daemon::spawn(&cfg, &[]);
    assert!(
        wait_for(Duration::from_secs(30), || sim.calls("GET", "/instance/connectionState/not-yet") >= 1).await,
        "the new instance is polled"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    daemon.kill9();
    let mut t = tenants_in(&db).await;
    t.sort();
    assert_eq!(
        t,
        vec![
            ("not-yet".into(), "globex".into(), "api".into()),
            ("shop".into(), "acme".into(), "api".into()),
            ("tenant_1_inst_1".into(), "tenant_1".into(), "pattern".into()),
        ]
    );
    // `wa-sentinel tenants` says the same.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wa-sentinel"))
        .args(["--config", cfg.to_str().unwrap(), "tenants", "--json"])
        .env_remove("WA_SENTINEL_CONFIG")
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listed.as_array().unwrap().iter().any(|r| r["instance"] == "not-yet" && r["source"] == "api"), "{listed}");
}

/// A subscriber that refuses its first deliveries receives every event after,
/// in order, each signed, numbered without a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_fails_first_receives_every_event_in_order_signed_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions { instances: vec![("a".into(), Behaviour::Open)], ..SimOptions::default() })
        .await
        .unwrap();
    // The subscriber: 503 for its first three requests, then 200; it keeps
    // what it accepted, with the signature header.
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let tries = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (s, t) = (seen.clone(), tries.clone());
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (s, t) = (s.clone(), t.clone());
            async move {
                if t.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 3 {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                let sig =
                    headers.get("x-wa-sentinel-signature").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                s.lock().unwrap().push((sig, body));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sub_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let port = free_port();
    let db = format!("sqlite://{}/sub.db", dir.path().display());
    let cfg = dir.path().join("config.toml");
    let extra =
        format!("[[subscribers]]\nname = \"app\"\nurl = \"http://{sub_addr}/events\"\nsecret = \"whsec-test\"\n");
    std::fs::write(&cfg, config(&db, port, &sim, &extra)).unwrap();
    let mut daemon = Daemon::spawn(&cfg, &[]);
    // Three drops and recoveries: 3 × (health_changed, outage_opened, health_changed, outage_closed)
    // after the first health_changed (unknown → connected).
    // (The session comes back by itself: only the first drop gets a reconnect
    // inside the 30-minute cooldown.)
    assert!(
        wait_for(Duration::from_secs(30), || sim.calls("GET", "/instance/connectionState/a") >= 2).await,
        "the daemon polls"
    );
    for _ in 0..3 {
        sim.set_behaviour("a", Behaviour::ClosedTransient { reason: 428 });
        tokio::time::sleep(Duration::from_millis(2500)).await;
        sim.set_behaviour("a", Behaviour::Open);
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    let all_in = wait_for(Duration::from_secs(60), || seen.lock().unwrap().len() >= 13).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    daemon.kill9();
    let got = seen.lock().unwrap().clone();
    assert!(all_in, "received {} events", got.len());
    let now_s = wa_sentinel::clock::now().0 / 1000;
    let mut seqs = Vec::new();
    for (sig, body) in &got {
        assert!(
            wa_sentinel::notify::subscriber::verify(b"whsec-test", sig, body.as_bytes(), now_s, 600),
            "signature {sig} over {body}"
        );
        let v: Value = serde_json::from_str(body).unwrap();
        seqs.push(v["seq"].as_i64().unwrap());
    }
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "in order, no gap, each once");
    assert!(tries.load(std::sync::atomic::Ordering::SeqCst) >= 3 + got.len() as u32);
}

/// `GET /api/events?wait=…` is answered as soon as the next change happens,
/// with the read-only events token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_is_answered_as_soon_as_the_next_change_happens() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions { instances: vec![("a".into(), Behaviour::Open)], ..SimOptions::default() })
        .await
        .unwrap();
    let sink = ok_sink().await;
    let port = free_port();
    let db = format!("sqlite://{}/poll.db", dir.path().display());
    let cfg = dir.path().join("config.toml");
    let extra = format!("[[notifiers]]\nname = \"sink\"\nkind = \"webhook\"\nurl = \"{}\"\n", sink.uri());
    std::fs::write(&cfg, config(&db, port, &sim, &extra)).unwrap();
    let mut daemon = Daemon::spawn(&cfg, &[]);
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}/api/events");
    let mut next = 0;
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{base}?after=0")).bearer_auth("reader").send().await
            && r.status() == 200
        {
            let v: Value = r.json().await.unwrap();
            next = v["next"].as_i64().unwrap();
            if next > 0 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(next > 0, "the first poll's events are there");
    let denied = client.get(format!("{base}?after=0")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(denied.status(), 401);
    let waiting = {
        let (client, url) = (client.clone(), format!("{base}?after={next}&wait=30s"));
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let v: Value = client.get(url).bearer_auth("reader").send().await.unwrap().json().await.unwrap();
            (v, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.set_behaviour("a", Behaviour::ClosedTransient { reason: 428 });
    let changed_at = std::time::Instant::now();
    let (v, waited) = waiting.await.unwrap();
    daemon.kill9();
    let events = v["events"].as_array().unwrap();
    assert!(!events.is_empty(), "{v}");
    assert_eq!(events[0]["event"], "health_changed");
    assert!(events[0]["seq"].as_i64().unwrap() > next);
    assert!(waited >= Duration::from_secs(2), "held until the change: {waited:?}");
    assert!(changed_at.elapsed() < Duration::from_secs(5), "answered within a poll period of the change");
}

/// The application's own PostgreSQL as the tenant source: its rows map
/// tenants, a changed row moves a tenant; when its table goes away, and when
/// its database refuses every connection, the last mapping stays (the daemon
/// keeps polling, logs once, says so in `/metrics`); when it answers again,
/// its rows count again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_applications_database_maps_tenants_and_its_last_mapping_outlives_it() {
    let Some(db) = TestDb::postgres().await else { return };
    // The application's database, of its own: the test makes it refuse connections for a while.
    let Some(own) = OwnDatabase::create("wa_app").await else { return };
    let app_url = own.url.clone();
    let app = sqlx::PgPool::connect(&app_url).await.unwrap();
    let app_table = |desk: &str| {
        format!(
            "CREATE TABLE whatsapp_instances (instance_name TEXT, tenant_id TEXT);
             INSERT INTO whatsapp_instances VALUES ('shop', 'acme'), ('desk', '{desk}');"
        )
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(app_table("globex"))).execute(&app).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions {
        instances: vec![("shop".into(), Behaviour::Open), ("desk".into(), Behaviour::Open)],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let port = free_port();
    let cfg = dir.path().join("config.toml");
    let extra = "[tenants]\nsource_url_env = \"APP_DATABASE_URL\"\nrefresh = \"1s\"\n";
    std::fs::write(&cfg, config(&db.url, port, &sim, extra)).unwrap();
    // check-config --check-sources reads it once.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_wa-sentinel"))
        .args(["--config", cfg.to_str().unwrap(), "check-config", "--check-sources"])
        .env_remove("WA_SENTINEL_CONFIG")
        .env("APP_DATABASE_URL", &app_url)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&check.stderr).contains("tenant source OK: 2 mapping(s)"), "{check:?}");
    let mut daemon = Daemon::spawn(&cfg, &[("APP_DATABASE_URL", app_url.as_str())]);
    let has = |want: (&'static str, &'static str)| {
        let url = db.url.clone();
        async move {
            for _ in 0..150 {
                if tenants_in(&url).await.iter().any(|t| t.0 == want.0 && t.1 == want.1 && t.2 == "sql") {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            false
        }
    };
    assert!(has(("shop", "acme")).await && has(("desk", "globex")).await, "{:?}", tenants_in(&db.url).await);
    sqlx::query("UPDATE whatsapp_instances SET tenant_id = 'initech' WHERE instance_name = 'desk'")
        .execute(&app)
        .await
        .unwrap();
    assert!(has(("desk", "initech")).await, "a changed row moves the tenant");
    let metrics = || async {
        let r = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap();
        r.text().await.unwrap()
    };
    assert!(metrics().await.contains("wa_sentinel_tenant_source_up 1"), "{}", metrics().await);
    let log = || std::fs::read_to_string(cfg.with_extension("log")).unwrap_or_default();
    let sim = &sim;
    let polls_go_on = |what: &str| {
        let polls = sim.calls("GET", "/instance/connectionState/shop");
        let what = what.to_string();
        async move {
            let more = || sim.calls("GET", "/instance/connectionState/shop") >= polls + 3;
            assert!(wait_for(Duration::from_secs(20), more).await, "polling stopped while {what}");
        }
    };
    let failing = |what: &'static str| async move {
        let m = metrics().await;
        assert!(
            m.contains("wa_sentinel_tenant_source_up 0") && m.contains("wa_sentinel_tenant_source_errors_total"),
            "{what}: {m}"
        );
    };
    // The table goes away.
    sqlx::raw_sql("DROP TABLE whatsapp_instances").execute(&app).await.unwrap();
    polls_go_on("the table was gone").await;
    failing("the table is gone").await;
    // The table is back, then the whole database refuses connections (the
    // source's open connection is cut too).
    sqlx::raw_sql(sqlx::AssertSqlSafe(app_table("initech"))).execute(&app).await.unwrap();
    let answers_again = || log().contains("the tenant source answers again");
    assert!(wait_for(Duration::from_secs(20), answers_again).await, "{}", log());
    app.close().await;
    own.refuse_connections().await;
    polls_go_on("the database refused connections").await;
    failing("the database refuses connections").await;
    assert!(has(("desk", "initech")).await && has(("shop", "acme")).await, "the last mapping stays");
    // It answers again: a row changed meanwhile counts.
    own.allow_connections().await;
    let app = sqlx::PgPool::connect(&app_url).await.unwrap();
    sqlx::query("UPDATE whatsapp_instances SET tenant_id = 'umbrella' WHERE instance_name = 'shop'")
        .execute(&app)
        .await
        .unwrap();
    assert!(has(("shop", "umbrella")).await, "read again once it answers: {:?}", tenants_in(&db.url).await);
    assert!(metrics().await.contains("wa_sentinel_tenant_source_up 1"), "{}", metrics().await);
    daemon.kill9();
    let mut t = tenants_in(&db.url).await;
    t.sort();
    assert_eq!(
        t,
        vec![("desk".into(), "initech".into(), "sql".into()), ("shop".into(), "umbrella".into(), "sql".into())],
    );
    // Each failure logged once (then at debug level until it answers again).
    assert_eq!(log().matches("cannot read the tenant source").count(), 2, "{}", log());
    app.close().await;
    own.drop().await;
}
