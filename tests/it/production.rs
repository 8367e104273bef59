//! Production behaviour of the real binary (issue "Production"): systemd
//! notifications, SIGTERM during a webhook burst, SIGHUP reloads, a second
//! process refused on one SQLite file, and two replicas on one PostgreSQL
//! database with a leader killed mid-flight.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use wa_sentinel::domain::{Health, InstanceKey};
use wa_sentinel::sim::evolution::{Behaviour, SimOptions, Simulator};
use wa_sentinel::store::Store;

use crate::it::common::free_port;
use crate::it::common::{TestDb, idempotency_keys, ok_sink};
use crate::it::process::{Daemon, daemon_config as config, wait_for};

fn signal(d: &Daemon, sig: &str) {
    let ok = Command::new("kill").args([&format!("-{sig}"), &d.child.id().to_string()]).status().unwrap().success();
    assert!(ok, "kill -{sig} failed");
}

fn log_of(cfg: &Path) -> String {
    std::fs::read_to_string(cfg.with_extension("log")).unwrap_or_default()
}

async fn http_ok(url: &str) -> bool {
    reqwest::get(url).await.is_ok_and(|r| r.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_sees_ready_then_watchdog_pings() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions { instances: vec![("a".into(), Behaviour::Open)], ..SimOptions::default() })
        .await
        .unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = tokio::net::UnixDatagram::bind(&sock_path).unwrap();
    let cfg = dir.path().join("c.toml");
    let db = format!("sqlite://{}/s.db", dir.path().display());
    std::fs::write(&cfg, config(&db, free_port(), &sim, "http://127.0.0.1:9/", "*/1 * * * * *", "")).unwrap();
    let sock_str = sock_path.to_string_lossy().to_string();
    let _d = Daemon::spawn(&cfg, &[("NOTIFY_SOCKET", &sock_str), ("WATCHDOG_USEC", "1000000")]);
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !got.iter().any(|m: &String| m.contains("WATCHDOG=1")) {
        let n =
            tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await.expect("no WATCHDOG=1 within 30 s").unwrap();
        got.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    let ready = got.iter().position(|m| m.contains("READY=1")).expect("READY=1 sent");
    let wd = got.iter().position(|m| m.contains("WATCHDOG=1")).unwrap();
    assert!(ready < wd, "READY=1 before WATCHDOG=1: {got:?}");
    assert!(got[ready].contains("STATUS="), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_webhook_burst_loses_no_recovery_it_answered_200_for() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..40).map(|i| format!("i{i}")).collect();
    let sim = Simulator::start(SimOptions {
        instances: names.iter().map(|n| (n.clone(), Behaviour::ClosedTransient { reason: 428 })).collect(),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let port = free_port();
    let cfg = dir.path().join("c.toml");
    let db = format!("sqlite://{}/s.db", dir.path().display());
    // One poll at start-up marks every instance down; none after (hourly).
    let text = config(&db, port, &sim, "http://127.0.0.1:9/", "0 0 * * * *", "")
        .replace("cooldown = \"30m\"", "cooldown = \"30m\"\nmax_attempts_per_outage = 0");
    std::fs::write(&cfg, text).unwrap();
    let mut d = Daemon::spawn(&cfg, &[]);
    let store = Store::connect(&db, 2).await.unwrap();
    let down = || async {
        let mut n = 0;
        for name in &names {
            if let Ok(Some(r)) = store.instance(&InstanceKey::new("evo", name)).await
                && r.state.health == Health::Disconnected
            {
                n += 1;
            }
        }
        n
    };
    let mut all_down = false;
    for _ in 0..200 {
        if down().await == names.len() {
            all_down = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(all_down, "the first cycle did not mark every instance down:\n{}", log_of(&cfg));

    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let (client, name) = (client.clone(), name.clone());
        let url = format!("http://127.0.0.1:{port}/webhooks/evo/hooktoken");
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5 * i as u64)).await;
            let body = serde_json::json!({"event": "messages.upsert", "instance": name, "data": {"key": {"id": "X"}}});
            let code = client.post(url).json(&body).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
            (name, code)
        }));
    }
    tokio::time::sleep(Duration::from_millis(80)).await;
    signal(&d, "TERM");
    let mut answered = Vec::new();
    for t in tasks {
        let (name, code) = t.await.unwrap();
        if code == 200 {
            answered.push(name);
        }
    }
    let status = d.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "clean exit on SIGTERM:\n{}", log_of(&cfg));
    assert!(!answered.is_empty(), "no webhook was answered before the shutdown");
    for name in &answered {
        let r = store.instance(&InstanceKey::new("evo", name)).await.unwrap().unwrap();
        assert_eq!(r.state.health, Health::Connected, "{name} was answered 200 but its recovery was lost");
        assert!(r.state.outage.is_none(), "{name}");
    }
    eprintln!("{} of {} webhooks answered 200 before SIGTERM; all recorded", answered.len(), names.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_valid_config_and_rejects_an_invalid_one() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions { instances: vec![("a".into(), Behaviour::Open)], ..SimOptions::default() })
        .await
        .unwrap();
    let sim2 = Simulator::start(SimOptions { instances: vec![("b".into(), Behaviour::Open)], ..SimOptions::default() })
        .await
        .unwrap();
    let port = free_port();
    let cfg = dir.path().join("c.toml");
    let db = format!("sqlite://{}/s.db", dir.path().display());
    let base = config(&db, port, &sim, "http://127.0.0.1:9/", "*/1 * * * * *", "");
    std::fs::write(&cfg, &base).unwrap();
    let d = Daemon::spawn(&cfg, &[]);
    let health = format!("http://127.0.0.1:{port}/healthz");
    let mut up = false;
    for _ in 0..100 {
        if http_ok(&health).await {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "daemon not up:\n{}", log_of(&cfg));

    // Valid: a second provider appears and gets polled.
    let second = format!(
        "{base}\n[[providers]]\nname = \"evo2\"\nkind = \"evolution\"\nbase_url = \"{}\"\napi_version = \"v2\"\napi_key = \"{}\"\nwebhook_token = \"t2\"\ndiscover = true\n",
        sim2.base_url(),
        sim2.api_key()
    );
    std::fs::write(&cfg, second).unwrap();
    signal(&d, "HUP");
    assert!(
        wait_for(Duration::from_secs(20), || sim2.calls("GET", "/instance/connectionState/b") > 0).await,
        "the reloaded provider is not polled:\n{}",
        log_of(&cfg)
    );
    // The new generation may poll before the line saying so is written.
    assert!(wait_for(Duration::from_secs(10), || log_of(&cfg).contains("config reloaded")).await, "{}", log_of(&cfg));

    // Invalid: rejected with a log line, the old config keeps running.
    std::fs::write(&cfg, "[supervisor]\ndown_after = 0\n").unwrap();
    signal(&d, "HUP");
    assert!(wait_for(Duration::from_secs(10), || log_of(&cfg).contains("reload rejected")).await, "{}", log_of(&cfg));
    let before = sim2.calls("GET", "/instance/connectionState/b");
    assert!(
        wait_for(Duration::from_secs(10), || sim2.calls("GET", "/instance/connectionState/b") > before).await,
        "the old config stopped"
    );
    assert!(http_ok(&health).await);
}

#[test]
fn a_second_process_on_the_same_sqlite_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(Simulator::start(SimOptions::default())).unwrap();
    let db = format!("sqlite://{}/s.db", dir.path().display());
    let a = dir.path().join("a.toml");
    std::fs::write(&a, config(&db, free_port(), &sim, "http://127.0.0.1:9/", "*/1 * * * * *", "")).unwrap();
    let first = Daemon::spawn(&a, &[]);
    assert!(rt.block_on(wait_for(Duration::from_secs(20), || log_of(&a).contains("listening"))), "{}", log_of(&a));
    let b = dir.path().join("b.toml");
    std::fs::write(&b, config(&db, free_port(), &sim, "http://127.0.0.1:9/", "*/1 * * * * *", "")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wa-sentinel"))
        .arg("--config")
        .arg(&b)
        .arg("run")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another wa-sentinel process") && err.contains("PostgreSQL"), "{err}");
    drop(first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_one_recovery_one_notice_and_takeover_after_sigkill() {
    let Some(db) = TestDb::postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions {
        instances: vec![("b".into(), Behaviour::ClosedTransient { reason: 428 }), ("ok".into(), Behaviour::Open)],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let sink = ok_sink().await;
    let mut daemons = Vec::new();
    let mut cfgs = Vec::new();
    for name in ["r1", "r2"] {
        let cfg = dir.path().join(format!("{name}.toml"));
        std::fs::write(&cfg, config(&db.url, free_port(), &sim, &sink.uri(), "*/1 * * * * *", "")).unwrap();
        daemons.push(Some(Daemon::spawn(&cfg, &[])));
        cfgs.push(cfg);
    }
    let connects = || sim.calls("GET", "/instance/connect/b");
    assert!(wait_for(Duration::from_secs(40), || connects() >= 1).await, "nobody reconnected b");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(connects(), 1, "exactly one recovery call between two replicas");
    let leads = |i: usize| {
        log_of(&cfgs[i])
            .lines()
            .rev()
            .find(|l| l.contains("provider leadership changed"))
            .is_some_and(|l| l.contains("\"evo\""))
    };
    let leaders: Vec<usize> = (0..2).filter(|i| leads(*i)).collect();
    assert_eq!(leaders.len(), 1, "exactly one leader: {leaders:?}");
    let leader = leaders[0];
    let follower = 1 - leader;

    // The leader dies without a word; the session drops again meanwhile.
    daemons[leader].take().unwrap().kill9();
    sim.set_behaviour("b", Behaviour::ClosedTransient { reason: 428 });
    let polls = sim.calls("GET", "/instance/connectionState/ok");
    assert!(
        wait_for(Duration::from_secs(40), || leads(follower)).await,
        "the follower never took over:\n{}",
        log_of(&cfgs[follower])
    );
    assert!(
        wait_for(Duration::from_secs(20), || sim.calls("GET", "/instance/connectionState/ok") >= polls + 3).await,
        "the new leader does not poll"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(connects(), 1, "no recovery call inside the cooldown across the takeover");
    let mut keys = idempotency_keys(&sink).await;
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert!(n - keys.len() <= 1, "duplicates beyond the one delivery in flight at the kill: {keys:?}");
    let downs: Vec<&String> = keys.iter().filter(|k| k.ends_with(":instance_down")).collect();
    assert!(!downs.is_empty(), "{keys:?}");
}
