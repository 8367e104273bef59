//! Tests that spawn the real binary: crash safety (SIGKILL mid-cycle, then a
//! restart on the same database).

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::it::common::{free_port, idempotency_keys, ok_sink};
use wa_sentinel::sim::evolution::{Behaviour, SimEvent, SimOptions, Simulator};

/// A daemon process; killed (SIGKILL) on drop if still running.
pub struct Daemon {
    pub child: Child,
}

impl Daemon {
    pub fn spawn(config: &Path, envs: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wa-sentinel"));
        cmd.arg("--config")
            .arg(config)
            .arg("run")
            .env_remove("WA_SENTINEL_CONFIG")
            .env("RUST_LOG", "info,sqlx=warn,tokio_cron_scheduler=warn");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let log = std::fs::File::create(config.with_extension("log")).unwrap();
        let child = cmd.stdout(Stdio::null()).stderr(log).spawn().expect("spawn wa-sentinel");
        Daemon { child }
    }

    /// How it ended, if it has.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Poll `cond` every 50 ms until it holds or `limit` passes.
pub async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

/// A daemon config against one simulator and a webhook notice sink.
pub fn daemon_config(db_url: &str, port: u16, sim: &Simulator, sink: &str, poll: &str, extra: &str) -> String {
    format!(
        r#"
[database]
url = "{db_url}"
[server]
listen = "127.0.0.1:{port}"
admin_token = "admin"
[supervisor]
poll_schedule = "{poll}"
request_timeout = "2s"
down_after = 1
settle_delay = "0s"
[restart]
cooldown = "30m"
[alerts]
retry_min_delay = "1s"
[[providers]]
name = "evo"
kind = "evolution"
base_url = "{base}"
api_version = "v2"
api_key = "{key}"
webhook_token = "hooktoken"
discover = true
[[notifiers]]
name = "sink"
kind = "webhook"
url = "{sink}"
{extra}
"#,
        base = sim.base_url(),
        key = sim.api_key()
    )
}

pub fn write_config(dir: &Path, db_url: &str, sim: &Simulator, sink: &str, extra: &str) -> std::path::PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(&p, daemon_config(db_url, 0, sim, sink, "*/1 * * * * *", extra)).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_cycle_and_restarted_no_duplicate_notice_no_recovery_inside_cooldown() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions {
        instances: vec![("b".into(), Behaviour::ClosedTransient { reason: 428 }), ("ok".into(), Behaviour::Open)],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let sink = ok_sink().await;
    let db = format!("sqlite://{}/crash.db", dir.path().display());
    let cfg = write_config(dir.path(), &db, &sim, &sink.uri(), "");
    let connects = || sim.calls("GET", "/instance/connect/b");

    let mut first = Daemon::spawn(&cfg, &[]);
    assert!(wait_for(Duration::from_secs(30), || connects() >= 1).await, "first daemon never reconnected b");
    first.kill9(); // mid-cycle: the verification poll of that recovery is still pending
    assert_eq!(connects(), 1);

    // The session drops again while nobody watches; a new daemon takes over the database.
    sim.set_behaviour("b", Behaviour::ClosedTransient { reason: 428 });
    let polls_before = sim.calls("GET", "/instance/connectionState/b");
    let mut second = Daemon::spawn(&cfg, &[]);
    assert!(
        wait_for(Duration::from_secs(30), || sim.calls("GET", "/instance/connectionState/b") >= polls_before + 4).await,
        "second daemon does not poll"
    );
    // The first daemon may have claimed the down notice before it was killed:
    // its claim (a lease of 30 s) must run out before the second delivers it.
    // Wait for the delivery itself rather than for a fixed time.
    let delivered = async {
        for _ in 0..900 {
            if idempotency_keys(&sink).await.iter().any(|k| k.ends_with(":instance_down")) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(delivered.await, "the down notice is delivered by one of the two daemons");
    second.kill9();
    assert_eq!(connects(), 1, "no recovery call inside the cooldown across the restart");

    let mut seen: HashMap<String, u32> = HashMap::new();
    for key in idempotency_keys(&sink).await {
        *seen.entry(key).or_default() += 1;
    }
    let kinds: Vec<&str> = seen.keys().map(|k| k.rsplit(':').next().unwrap()).collect();
    assert!(kinds.contains(&"instance_down"), "{seen:?}");
    // Delivery is at-least-once with a stable Idempotency-Key: what counts for the
    // receiver is that no *distinct* notice was produced twice for one outage.
    let mut per_outage_kind: HashMap<(String, String), u32> = HashMap::new();
    for k in seen.keys() {
        let parts: Vec<&str> = k.split(':').collect();
        *per_outage_kind.entry((parts[1].to_string(), parts[2].to_string())).or_default() += 1;
    }
    assert!(per_outage_kind.values().all(|n| *n == 1), "{seen:?}");
    let dup = seen.values().filter(|n| **n > 1).count();
    assert!(dup <= 1, "at most the one delivery in flight at the kill may repeat: {seen:?}");
}

#[test]
fn the_demo_reaches_all_scenarios_by_itself() {
    let out = Command::new(env!("CARGO_BIN_EXE_wa-sentinel"))
        .args(["demo", "--fast", "--exit-when-done", "--listen", "127.0.0.1:0"])
        .env_remove("WA_SENTINEL_CONFIG")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("all scenarios observed"), "{stdout}");
    for s in wa_sentinel::demo::SCENARIOS {
        assert!(stdout.contains(s), "scenario `{s}` not reported:\n{stdout}");
    }
    // The console: header, notices and checklist; the daemon's log goes to a file (path printed).
    assert!(stdout.lines().any(|l| l.starts_with("NOTICE ")), "notices are shown on the console:\n{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("EVENT #") && l.contains("health_changed")),
        "the subscriber's events are shown on the console:\n{stdout}"
    );
    assert!(!stdout.contains("EVENT refused"), "every event's signature verifies");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains(" INFO ") && !stderr.contains(" INFO "),
        "no log lines on the console:\n{stdout}\n{stderr}"
    );
    assert!(!stdout.contains('\x1b'), "piped output has no escape codes");
    let log_path = stdout.lines().find_map(|l| l.strip_prefix("daemon log kept: ")).expect("log path printed");
    let log = std::fs::read_to_string(log_path).expect("the demo's log file");
    assert!(log.contains(" INFO ") && log.contains("NOTICE") && !log.contains('\x1b'), "full log, plain text");
    // The re-pair link went to the demo's backend and was printed by the
    // script; the daemon never writes one to its log (it is a credential).
    assert!(stdout.contains("logged-out-1's notice carries a re-pair link"), "{stdout}");
    assert!(!log.contains("/pair/"), "a re-pair link in the daemon's log");
    let _ = std::fs::remove_dir_all(std::path::Path::new(log_path).parent().unwrap());
}

/// Silence is measured only while someone watches: a daemon stopped for three
/// times `stale_webhook_after` and started again on the same database
/// restarts none of the sessions whose webhooks resume, and still finds the
/// one that stays silent — a whole `stale_webhook_after` after it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_daemon_restarts_no_session_whose_webhooks_resume() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["a", "b", "c", "d"];
    let sim = std::sync::Arc::new(
        Simulator::start(SimOptions {
            instances: names.iter().map(|n| (n.to_string(), Behaviour::Open)).collect(),
            ..SimOptions::default()
        })
        .await
        .unwrap(),
    );
    let sink = ok_sink().await;
    let port = free_port();
    let cfg = dir.path().join("config.toml");
    let config = format!(
        r#"
[database]
url = "sqlite://{db}/watch.db"
[server]
listen = "127.0.0.1:{port}"
[supervisor]
poll_schedule = "*/1 * * * * *"
request_timeout = "2s"
down_after = 1
settle_delay = "0s"
stale_webhook_after = "6s"
[restart]
cooldown = "30m"
[[providers]]
name = "evo"
kind = "evolution"
base_url = "{base}"
api_version = "v2"
api_key = "{key}"
webhook_token = "hooktoken"
discover = true
silent_after = "0s"
[[notifiers]]
name = "sink"
kind = "webhook"
url = "{sink}"
"#,
        db = dir.path().display(),
        base = sim.base_url(),
        key = sim.api_key(),
        sink = sink.uri(),
    );
    std::fs::write(&cfg, config).unwrap();
    let target = format!("http://127.0.0.1:{port}/webhooks/evo/hooktoken");
    // Every session that is not a zombie posts a message webhook twice a second.
    let pushing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let pusher = {
        let (sim, target, pushing) = (sim.clone(), target.clone(), pushing.clone());
        tokio::spawn(async move {
            loop {
                if pushing.load(std::sync::atomic::Ordering::SeqCst) {
                    for n in names {
                        let _ = sim.post_webhook(n, SimEvent::MessagesUpsert, Some(&target)).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let restarts = |n: &str| sim.calls("POST", &format!("/instance/restart/{n}"));
    let polls = || sim.calls("GET", "/instance/connectionState/d");

    let mut first = Daemon::spawn(&cfg, &[]);
    assert!(wait_for(Duration::from_secs(30), || polls() >= 3).await, "the first daemon polls");
    tokio::time::sleep(Duration::from_secs(2)).await;
    first.kill9();
    // Nobody watches for three times `stale_webhook_after`; d turns into a zombie.
    pushing.store(false, std::sync::atomic::Ordering::SeqCst);
    sim.set_behaviour("d", Behaviour::ZombieOpen);
    tokio::time::sleep(Duration::from_secs(18)).await;

    let before = polls();
    let mut second = Daemon::spawn(&cfg, &[]);
    assert!(wait_for(Duration::from_secs(30), || polls() >= before + 2).await, "the second daemon polls");
    // The webhooks of a, b and c resume a few seconds after the start.
    tokio::time::sleep(Duration::from_secs(2)).await;
    pushing.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        wait_for(Duration::from_secs(30), || restarts("d") >= 1).await,
        "the zombie is found once a whole stale period was watched"
    );
    // A few more cycles: still nobody else.
    tokio::time::sleep(Duration::from_secs(3)).await;
    second.kill9();
    pusher.abort();
    for n in ["a", "b", "c"] {
        assert_eq!(restarts(n), 0, "{n} sent webhooks again and was restarted");
    }
    assert_eq!(restarts("d"), 1);
    let downs: Vec<String> =
        idempotency_keys(&sink).await.into_iter().filter(|k| k.ends_with(":instance_down")).collect();
    assert!(downs.len() <= 1, "at most d is announced: {downs:?}");
}
