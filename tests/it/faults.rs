//! The fault suite: the real binary under failures. Short by default (CI);
//! `WA_SENTINEL_FAULTS_LONG=1` runs the long version (longer outages, 20
//! kill -9 runs, 10,000 hostile webhooks).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use wa_sentinel::domain::{Health, InstanceKey};
use wa_sentinel::sim::evolution::{Behaviour, SimOptions, Simulator};
use wa_sentinel::store::{InstanceFilter, Store};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::it::common::{OwnDatabase, free_port};
use crate::it::common::{idempotency_keys, ok_sink};
use crate::it::process::{Daemon, wait_for};

fn long() -> bool {
    std::env::var("WA_SENTINEL_FAULTS_LONG").is_ok_and(|v| v == "1")
}

fn log_of(cfg: &Path) -> String {
    std::fs::read_to_string(cfg.with_extension("log")).unwrap_or_default()
}

fn provider(name: &str, base: &str, key: &str, discover: bool) -> String {
    format!(
        "[[providers]]\nname = \"{name}\"\nkind = \"evolution\"\nbase_url = \"{base}\"\napi_version = \"v2\"\n\
         api_key = \"{key}\"\nwebhook_token = \"hooktoken\"\ndiscover = {discover}\n"
    )
}

/// Write `dir/c.toml` for a daemon with one discovering Evolution provider
/// (the simulator) and, if given, a webhook notifier at `sink`.
fn one_provider_config(dir: &Path, db: &str, port: u16, poll: &str, sim: &Simulator, sink: Option<&str>) -> PathBuf {
    let cfg = dir.join("c.toml");
    let notifier = sink.map(|u| format!("[[notifiers]]\nname = \"sink\"\nkind = \"webhook\"\nurl = \"{u}\"\n"));
    let extra = provider("evo", &sim.base_url(), sim.api_key(), true) + &notifier.unwrap_or_default();
    std::fs::write(&cfg, base_config(db, port, poll, &extra)).unwrap();
    cfg
}

fn base_config(db: &str, port: u16, poll: &str, extra: &str) -> String {
    format!(
        "[database]\nurl = \"{db}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_token = \"admin\"\n\
         [supervisor]\npoll_schedule = \"{poll}\"\nrequest_timeout = \"1s\"\ndown_after = 1\nsettle_delay = \"0s\"\n\
         [restart]\ncooldown = \"30m\"\n[alerts]\nretry_min_delay = \"1s\"\nretry_max_delay = \"2s\"\n{extra}\n"
    )
}

/// A notice sink that records `Idempotency-Key`s; can be started late on a fixed port.
async fn sink_on(port: u16) -> Arc<Mutex<Vec<String>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let app = Router::new().route(
        "/",
        post(move |headers: axum::http::HeaderMap| {
            let g = g.clone();
            async move {
                let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
                g.lock().unwrap().push(key);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    got
}

fn counts(keys: &[String]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for k in keys {
        *m.entry(k.clone()).or_insert(0) += 1;
    }
    m
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifier_down_for_a_long_stretch_then_back_gets_every_notice_once() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..5).map(|i| format!("lo{i}")).collect();
    let sim = Simulator::start(SimOptions {
        instances: names.iter().map(|n| (n.clone(), Behaviour::LoggedOut)).collect(),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let sink_port = free_port(); // nothing listens yet: connection refused
    let db = format!("sqlite://{}/s.db", dir.path().display());
    let sink_url = format!("http://127.0.0.1:{sink_port}/");
    let port = free_port();
    let cfg = one_provider_config(dir.path(), &db, port, "*/1 * * * * *", &sim, Some(&sink_url));
    let _d = Daemon::spawn(&cfg, &[]);
    let store = Store::connect(&db, 2).await.unwrap();
    let mut queued = 0;
    for _ in 0..200 {
        queued = store.outbox_count("pending").await.unwrap_or(0);
        if queued >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(queued, 5, "five logged-out notices queued while the notifier is down:\n{}", log_of(&cfg));
    // The daemon's own /metrics counts the five as needing a person (the
    // series the WaSentinelInstancesNeedPerson alert reads).
    let metrics = || async {
        let r = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/metrics")).bearer_auth("admin").send();
        r.await.unwrap().text().await.unwrap()
    };
    let series = "wa_sentinel_instances_need_person{provider=\"evo\"} 5";
    let mut text = String::new();
    for _ in 0..50 {
        text = metrics().await;
        if text.contains(series) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(text.contains(series), "{series} missing:\n{text}");
    tokio::time::sleep(Duration::from_secs(if long() { 60 } else { 4 })).await;
    let got = sink_on(sink_port).await;
    assert!(
        wait_for(Duration::from_secs(30), || counts(&got.lock().unwrap()).len() == 5).await,
        "not every notice arrived after the notifier came back: {:?}",
        got.lock().unwrap()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let c = counts(&got.lock().unwrap());
    assert!(c.values().all(|n| *n == 1), "a notice was delivered twice: {c:?}");
    assert_eq!(store.outbox_count("delivered").await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_slow_hanging_or_garbage_makes_instances_unknown_never_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let healthy =
        Simulator::start(SimOptions { instances: vec![("fine".into(), Behaviour::Open)], ..SimOptions::default() })
            .await
            .unwrap();
    // A listener that accepts and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_addr = hang.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let h2 = held.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = hang.accept().await {
            h2.lock().unwrap().push(s);
        }
    });
    let faults: Vec<(&str, ResponseTemplate)> = vec![
        (
            "slow",
            ResponseTemplate::new(200)
                .set_body_string(r#"{"instance":{"state":"open"}}"#)
                .set_delay(Duration::from_secs(3)),
        ),
        ("html", ResponseTemplate::new(200).set_body_string("<html><body>502 Bad Gateway</body></html>")),
        ("truncated", ResponseTemplate::new(200).set_body_string(r#"{"instance":{"instanceName":"x","state":"op"#)),
        ("errorflag", ResponseTemplate::new(200).set_body_string(r#"{"error":true,"message":"boom"}"#)),
    ];
    let mut servers = Vec::new();
    let mut providers = provider("good", &healthy.base_url(), healthy.api_key(), true);
    for (name, tmpl) in faults {
        let s = MockServer::start().await;
        Mock::given(method("GET")).and(path_regex("^/instance/connectionState/.*")).respond_with(tmpl).mount(&s).await;
        providers += &provider(name, &s.uri(), "k", false);
        providers += &format!("[[instances]]\nprovider = \"{name}\"\nname = \"i-{name}\"\n");
        servers.push((name, s));
    }
    providers += &provider("hang", &format!("http://{hang_addr}"), "k", false);
    providers += "[[instances]]\nprovider = \"hang\"\nname = \"i-hang\"\n";
    let cfg = dir.path().join("c.toml");
    let db = format!("sqlite://{}/s.db", dir.path().display());
    std::fs::write(&cfg, base_config(&db, free_port(), "*/1 * * * * *", &providers)).unwrap();
    let _d = Daemon::spawn(&cfg, &[]);
    let store = Store::connect(&db, 2).await.unwrap();
    // Each provider has its own cycle (and its own log line); the slowest sets the pace.
    let cycles = || log_of(&cfg).lines().filter(|l| l.contains("poll cycle done") && l.contains("slow")).count();
    assert!(wait_for(Duration::from_secs(40), || cycles() >= 5).await, "{}", log_of(&cfg));
    let all = store.instances(&InstanceFilter::default()).await.unwrap();
    for r in &all {
        if r.key.provider == "good" {
            assert_eq!(r.state.health, Health::Connected);
        } else {
            assert_eq!(r.state.health, Health::Unknown, "{} became {:?}", r.key, r.state.health);
            assert!(r.state.outage.is_none(), "{}", r.key);
            assert!(r.state.last_restart_attempt.is_none(), "{} restarted", r.key);
        }
    }
    for (name, s) in &servers {
        let reqs = s.received_requests().await.unwrap();
        assert!(
            reqs.iter().all(|r| r.url.path().starts_with("/instance/connectionState/")),
            "{name}: only status calls"
        );
    }
    let keys: Vec<String> = store.outbox_all().await.unwrap().into_iter().map(|r| r.0).collect();
    let provider_notices = keys.iter().filter(|k| k.ends_with(":provider_unreachable")).count();
    assert_eq!(provider_notices, 5, "one provider notice per failing provider: {keys:?}");
    assert_eq!(keys.len(), 5, "and nothing else: {keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_at_random_points_in_consecutive_runs_loses_and_duplicates_nothing() {
    let runs = if long() { 20 } else { 5 };
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions {
        instances: vec![
            ("b".into(), Behaviour::ClosedTransient { reason: 428 }),
            ("lo".into(), Behaviour::LoggedOut),
            ("ok".into(), Behaviour::Open),
        ],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let sink = ok_sink().await;
    let db = format!("sqlite://{}/s.db", dir.path().display());
    let cfg = one_provider_config(dir.path(), &db, free_port(), "*/1 * * * * *", &sim, Some(&sink.uri()));
    // Deterministic "random" kill points between 0.3 s and 2.8 s.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..runs {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let after = Duration::from_millis(300 + seed % 2500);
        let mut d = Daemon::spawn(&cfg, &[]);
        tokio::time::sleep(after).await;
        d.kill9();
        // The session drops again while nobody watches.
        sim.set_behaviour("b", Behaviour::ClosedTransient { reason: 428 });
    }
    assert!(sim.calls("GET", "/instance/connect/b") <= 1, "a recovery call inside the cooldown across kills");
    assert_eq!(sim.calls("GET", "/instance/connect/lo") + sim.calls("POST", "/instance/restart/lo"), 0);

    // The database is consistent: an open outage only on an unhealthy instance,
    // at most one open outage per instance, each open outage referenced.
    let store = Store::connect(&db, 2).await.unwrap();
    for r in store.instances(&InstanceFilter::default()).await.unwrap() {
        if let Some(o) = &r.state.outage {
            assert_ne!(r.state.health, Health::Connected, "{}: open outage {} on a connected instance", r.key, o.id);
        }
        let open = store.outages(Some(&InstanceKey::new("evo", &r.key.name)), true, 10).await.unwrap();
        assert!(open.len() <= 1, "{}: {} open outages", r.key, open.len());
        assert_eq!(open.first().map(|o| o.id.clone()), r.state.outage.as_ref().map(|o| o.id.clone()), "{}", r.key);
    }
    // Delivery is at least once with a stable key: a kill can repeat at most the
    // one delivery in flight; no notice is ever produced twice under two keys.
    let c = counts(&idempotency_keys(&sink).await);
    let repeats: usize = c.values().map(|n| n - 1).sum();
    assert!(repeats <= runs, "{repeats} repeated deliveries in {runs} kills: {c:?}");
    let lo_notices = store.outages(Some(&InstanceKey::new("evo", "lo")), false, 50).await.unwrap().len();
    assert_eq!(lo_notices, 1, "the logged-out instance has one outage across all runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_webhooks_get_the_right_codes_bounded_memory_and_store_nothing() {
    let n = if long() { 10_000 } else { 1_000 };
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions { instances: vec![("a".into(), Behaviour::Open)], ..SimOptions::default() })
        .await
        .unwrap();
    let port = free_port();
    let db = format!("sqlite://{}/s.db", dir.path().display());
    let cfg = one_provider_config(dir.path(), &db, port, "0 0 * * * *", &sim, None);
    let d = Daemon::spawn(&cfg, &[]);
    let store = Store::connect(&db, 2).await.unwrap();
    assert!(wait_for(Duration::from_secs(30), || log_of(&cfg).contains("poll cycle done")).await, "{}", log_of(&cfg));
    let before_events = store
        .events(&store.instance(&InstanceKey::new("evo", "a")).await.unwrap().unwrap().id, 1000)
        .await
        .unwrap()
        .len();

    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let big =
        format!("{{\"event\":\"messages.upsert\",\"instance\":\"a\",\"pad\":\"{}\"}}", "x".repeat(3 * 1024 * 1024));
    let legit = r#"{"event":"messages.upsert","instance":"a","data":{"key":{"id":"L"}}}"#;
    let cases: Vec<(String, String, u16)> = vec![
        (format!("{base}/webhooks/evo/wrong"), legit.to_string(), 401),
        (format!("{base}/webhooks/evo/hooktoken"), "{\"event\": \"messages.upsert\", \"instance\": ".to_string(), 400),
        (format!("{base}/webhooks/nope/hooktoken"), legit.to_string(), 404),
        (format!("{base}/webhooks/evo/hooktoken"), legit.replace("\"a\"", "\"ghost\""), 202),
        (format!("{base}/webhooks/evo/hooktoken"), nested.clone(), 400),
    ];
    let sem = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (url, body, want) = if i % 50 == 49 {
            (format!("{base}/webhooks/evo/hooktoken"), big.clone(), 413)
        } else {
            cases[i % cases.len()].clone()
        };
        // Oversized bodies get a fresh connection each: the server answers 413
        // early and closes, which must not poison a pooled connection.
        let client = if want == 413 {
            reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
        } else {
            client.clone()
        };
        let sem = sem.clone();
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.unwrap();
            let got = client.post(url).body(body).send().await.map(|r| r.status().as_u16());
            (want, got.ok())
        }));
    }
    // Legitimate traffic at the same time is unaffected.
    let mut legit_codes = Vec::new();
    for _ in 0..100 {
        let r = client.post(format!("{base}/webhooks/evo/hooktoken")).body(legit).send().await.unwrap();
        legit_codes.push(r.status().as_u16());
    }
    let mut wrong = Vec::new();
    let mut resets = 0;
    for t in tasks {
        let (want, got) = t.await.unwrap();
        match got {
            Some(code) if code == want => {}
            // A 3 MB body may be cut off by the 413 before the client finished sending it.
            None if want == 413 => resets += 1,
            other => wrong.push((want, other)),
        }
    }
    assert!(wrong.is_empty(), "wrong answers: {:?}", &wrong[..wrong.len().min(10)]);
    assert!(legit_codes.iter().all(|c| *c == 200), "legitimate webhooks were affected: {legit_codes:?}");
    let hwm = vm_hwm_kib(d.child.id()).unwrap_or(0);
    assert!(hwm < 256 * 1024, "peak RSS {hwm} KiB is not bounded");
    // Nothing stored: no new instance, no event, no notice.
    assert_eq!(store.instances(&InstanceFilter { include_absent: true, ..Default::default() }).await.unwrap().len(), 1);
    let after_events = store
        .events(&store.instance(&InstanceKey::new("evo", "a")).await.unwrap().unwrap().id, 1000)
        .await
        .unwrap()
        .len();
    assert_eq!(after_events, before_events);
    assert!(store.outbox_all().await.unwrap().is_empty());
    eprintln!(
        "{n} hostile webhooks: all answered as expected ({resets} oversized bodies cut off by the early 413); peak RSS {} MiB",
        hwm / 1024
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_while_running_keeps_serving_answers_503_for_changes_and_loses_nothing() {
    // A database of its own: this test makes it refuse connections for a while.
    let Some(own) = OwnDatabase::create("wa_fault").await else { return };
    let db = own.url.clone();

    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions {
        instances: vec![("a".into(), Behaviour::Open), ("b".into(), Behaviour::Open)],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let port = free_port();
    let cfg = one_provider_config(dir.path(), &db, port, "*/2 * * * * *", &sim, None);
    let d = Daemon::spawn(&cfg, &[]);
    assert!(wait_for(Duration::from_secs(40), || log_of(&cfg).contains("poll cycle done")).await, "{}", log_of(&cfg));
    let hook = format!("http://127.0.0.1:{port}/webhooks/evo/hooktoken");
    let client = reqwest::Client::new();
    let upsert = |i: &str| serde_json::json!({"event": "messages.upsert", "instance": i, "data": {"key": {"id": "X"}}});
    let logout = serde_json::json!({"event": "connection.update", "instance": "b", "data": {"state": "close", "statusReason": 401}});

    // Cut the database off.
    own.refuse_connections().await;
    let r = client.post(&hook).json(&upsert("a")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "a healthy instance's webhook needs no database");
    let r = client.post(&hook).json(&logout).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503, "a health change it cannot record is never a false 200");
    let ready = client.get(format!("http://127.0.0.1:{port}/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);

    // Back: the provider's retry of the same webhook is recorded.
    own.allow_connections().await;
    let mut code = 0;
    for _ in 0..40 {
        code = client.post(&hook).json(&logout).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
        if code == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(code, 200, "the daemon did not reconnect:\n{}", log_of(&cfg));
    let store = Store::connect(&db, 2).await.unwrap();
    let b = store.instance(&InstanceKey::new("evo", "b")).await.unwrap().unwrap();
    assert_eq!(b.state.health, Health::LoggedOut);
    assert!(b.state.outage.is_some());
    assert_eq!(store.instance(&InstanceKey::new("evo", "a")).await.unwrap().unwrap().state.health, Health::Connected);
    store.close().await;
    drop(d);
    own.drop().await;
}
