//! Provider-level health with the real engine, the real receiver
//! and the Evolution simulator, on SQLite and PostgreSQL: a server whose
//! sessions are open but whose webhooks stopped, the remediation hook, one
//! silent instance among lively ones, and version changes. The real binary
//! with a crash between the commit of an attempt and its run is at the end.

use std::path::{Path, PathBuf};
use std::time::Duration;

use wa_sentinel::config::raw::RawNotifier;
use wa_sentinel::domain::{Health, InstanceKey};
use wa_sentinel::sim::evolution::{Behaviour, SimEvent, SimOptions, Simulator};
use wa_sentinel::store::Store;

use crate::it::common::{TestDb, free_port, idempotency_keys, ok_sink};
use crate::it::process::{Daemon, daemon_config, wait_for};
use crate::it::supervisor::Rig;
use crate::on_both_backends;

const LIVELY: [&str; 3] = ["a", "b", "c"];

/// An executable script that appends its environment to `log` (and does
/// whatever `extra` says); the remediation command of these tests.
fn script(dir: &Path, name: &str, log: &Path, extra: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    let body = format!(
        "#!/bin/sh\necho \"$WA_SENTINEL_PROVIDER $WA_SENTINEL_CAUSE $WA_SENTINEL_OUTAGE_ID\" >> {}\n{extra}\n",
        log.display()
    );
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn runs(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log).unwrap_or_default().lines().map(str::to_string).collect()
}

/// Every instance posts a message webhook to the receiver (unless the
/// simulator's dispatcher is stuck or the instance is a zombie).
async fn traffic(rig: &Rig, url: &str, names: &[&str]) {
    for n in names {
        let _ = rig.sim.post_webhook(n, SimEvent::MessagesUpsert, Some(url)).await.unwrap();
    }
}

/// A minute passes: traffic, then a poll cycle (and its actions).
async fn minute(rig: &Rig, url: &str, names: &[&str]) {
    rig.advance(1);
    traffic(rig, url, names).await;
    // The receiver's batch write of `last_webhook_at` (every 2 s in the daemon, whose polls are 30 s apart).
    wa_sentinel::server::flush(&rig.sup).await;
    rig.cycle().await;
}

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

async fn silent_rig(store: Store, command: &Path, timeout: &str, cooldown: &str) -> Rig {
    silent_rig_with(store, command, timeout, cooldown, 1).await
}

async fn silent_rig_with(store: Store, command: &Path, timeout: &str, cooldown: &str, max: u32) -> Rig {
    let (command, timeout, cooldown) = (command.display().to_string(), timeout.to_string(), cooldown.to_string());
    Rig::new(store, &[("a", Behaviour::Open), ("b", Behaviour::Open), ("c", Behaviour::Open)], move |raw| {
        // A zombie would be restarted after 5 quiet minutes: the provider's
        // silence must hold that back.
        raw.supervisor.stale_webhook_after = "5m".into();
        let p = &mut raw.providers[0];
        p.silent_after = Some("15m".into());
        p.remediate_command = Some(vec![command]);
        p.remediate_timeout = Some(timeout);
        p.remediate_cooldown = Some(cooldown);
        p.remediate_max_attempts = Some(max);
        raw.server.admin_token = Some("admin".into());
    })
    .await
}

on_both_backends!(
    silent_provider_one_notice_no_instance_restarts_remediation_once_recovered_by_webhooks,
    one_silent_instance_among_lively_ones_is_handled_alone,
    a_hanging_remediation_is_killed_at_the_timeout_and_reported,
    a_version_change_is_one_event_and_one_notice_for_the_notifier_that_names_it,
    an_unlicensed_evolution_is_one_provider_notice_that_asks_for_activation,
    only_the_leader_runs_the_remediation_and_a_new_leader_keeps_its_cooldown,
);

async fn silent_provider_one_notice_no_instance_restarts_remediation_once_recovered_by_webhooks(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.log");
    let cmd = script(dir.path(), "remedy.sh", &log, "echo restarted; exit 0");
    let rig = silent_rig(store.clone(), &cmd, "10s", "60m").await;
    let url = rig.receiver().await;
    for _ in 0..3 {
        minute(&rig, &url, &LIVELY).await;
    }
    assert!(rig.notice_kinds().await.is_empty());

    // The server's dispatcher gets stuck: every session stays open, nothing arrives.
    rig.sim.set_webhooks_stuck(true);
    for _ in 0..20 {
        minute(&rig, &url, &LIVELY).await;
    }
    let kinds = rig.notice_kinds().await;
    assert_eq!(count(&kinds, "provider_silent"), 1, "{kinds:?}");
    assert!(kinds.iter().all(|k| k == "provider_silent"), "no instance notice: {kinds:?}");
    for n in LIVELY {
        assert_eq!(rig.restarts(n), 0, "{n}: no per-instance zombie restart for a server-side fault");
        assert_eq!(rig.health(n).await, Health::Connected, "{n}: verdict unchanged");
    }
    let ran = runs(&log);
    assert_eq!(ran.len(), 1, "the remediation ran once: {ran:?}");
    let state = store.provider_state("evo").await.unwrap();
    assert_eq!(state.state_name(), "silent");
    let outage = state.outage.as_ref().unwrap();
    assert_eq!(ran[0], format!("evo silent {}", outage.id), "its environment names provider, cause and outage");
    assert_eq!(outage.remediation_attempts, 1);
    assert_eq!(state.last_remediation.as_ref().and_then(|r| r.result.as_deref()), Some("exit 0"));
    let events = store.provider_events("evo", 50).await.unwrap();
    let result = events.iter().find(|e| e.kind == "remediation_result").expect("the run is in the event log");
    let detail: serde_json::Value = serde_json::from_str(&result.detail).unwrap();
    assert_eq!((detail["exit_code"].as_i64(), detail["output"].as_str()), (Some(0), Some("restarted\n")));
    assert!(events.iter().any(|e| e.kind == "remediation_started"));

    // `wa-sentinel status` (its provider header) and the status page tell the same.
    let overview = store.provider_overview(&[("evo".into(), "evolution".into())], &|_| None).await.unwrap();
    let header = wa_sentinel::cli::provider_table(&overview, rig.sup.now());
    let line = header.lines().nth(1).unwrap();
    for want in ["evo", "evolution", "silent (", "2.3.6", &cmd.display().to_string(), ": exit 0"] {
        assert!(line.contains(want), "`{want}` missing from the status header:\n{header}");
    }
    assert!(overview[0].last_webhook.is_some());
    let base = url.split("/webhooks/").next().unwrap();
    let page = reqwest::Client::new()
        .get(format!("{base}/"))
        .basic_auth("operator", Some("admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let providers =
        &page[page.find("<h2>Providers</h2>").expect("a provider section")..page.find("<h2>Instances</h2>").unwrap()];
    for want in [">evo<", ">silent<", "2.3.6", "exit 0", "remedy.sh"] {
        assert!(providers.contains(want), "`{want}` missing from the provider section:\n{providers}");
    }

    // Webhooks flow again: the outage closes with one provider_recovered.
    rig.sim.set_webhooks_stuck(false);
    minute(&rig, &url, &LIVELY).await;
    minute(&rig, &url, &LIVELY).await;
    let kinds = rig.notice_kinds().await;
    assert_eq!(count(&kinds, "provider_recovered"), 1, "{kinds:?}");
    assert!(!store.provider_state("evo").await.unwrap().is_down());

    // Stuck again inside the 60m cooldown: a new outage and notice, no second run.
    rig.sim.set_webhooks_stuck(true);
    for _ in 0..20 {
        minute(&rig, &url, &LIVELY).await;
    }
    let kinds = rig.notice_kinds().await;
    assert_eq!(count(&kinds, "provider_silent"), 2, "{kinds:?}");
    assert_eq!(runs(&log).len(), 1, "not again inside the cooldown");
    for n in LIVELY {
        assert_eq!(rig.restarts(n), 0);
    }
}

async fn one_silent_instance_among_lively_ones_is_handled_alone(store: Store) {
    let rig = Rig::new(
        store.clone(),
        &[("a", Behaviour::Open), ("b", Behaviour::Open), ("c", Behaviour::Open), ("z", Behaviour::ZombieOpen)],
        |raw| raw.supervisor.stale_webhook_after = "5m".into(),
    )
    .await;
    let url = rig.receiver().await;
    for _ in 0..20 {
        minute(&rig, &url, &["a", "b", "c", "z"]).await;
    }
    assert!(rig.restarts("z") >= 1, "the zombie is restarted as before");
    for n in LIVELY {
        assert_eq!(rig.restarts(n), 0);
    }
    let kinds = rig.notice_kinds().await;
    assert!(!kinds.iter().any(|k| k.starts_with("provider_")), "no provider outage: {kinds:?}");
    assert!(!store.provider_state("evo").await.unwrap().is_down());
}

async fn a_hanging_remediation_is_killed_at_the_timeout_and_reported(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.log");
    let cmd = script(dir.path(), "hang.sh", &log, "echo hanging; sleep 60");
    let rig = silent_rig(store.clone(), &cmd, "1s", "10m").await;
    let url = rig.receiver().await;
    for _ in 0..3 {
        minute(&rig, &url, &LIVELY).await; // the first cycle discovers the instances
    }
    rig.sim.set_webhooks_stuck(true);
    let started = std::time::Instant::now();
    for _ in 0..17 {
        minute(&rig, &url, &LIVELY).await;
    }
    assert!(started.elapsed() < Duration::from_secs(30), "the 60 s command was not waited for");
    assert_eq!(runs(&log).len(), 1);
    let state = store.provider_state("evo").await.unwrap();
    assert_eq!(state.last_remediation.as_ref().and_then(|r| r.result.as_deref()), Some("killed after the 1s timeout"));
    let events = store.provider_events("evo", 50).await.unwrap();
    let result = events.iter().find(|e| e.kind == "remediation_result").unwrap();
    let detail: serde_json::Value = serde_json::from_str(&result.detail).unwrap();
    assert_eq!(detail["timed_out"], true);
    assert_eq!(detail["output"], "hanging\n", "the output before the kill is kept");
    // The only attempt failed; after its cooldown: one remediation_exhausted.
    for _ in 0..11 {
        minute(&rig, &url, &LIVELY).await;
    }
    let kinds = rig.notice_kinds().await;
    assert_eq!(count(&kinds, "remediation_exhausted"), 1, "{kinds:?}");
    assert_eq!(runs(&log).len(), 1);
}

async fn a_version_change_is_one_event_and_one_notice_for_the_notifier_that_names_it(store: Store) {
    let rig = Rig::new(store.clone(), &[("a", Behaviour::Open)], |raw| {
        let hook = |name: &str, kinds: Option<Vec<String>>| RawNotifier {
            name: name.into(),
            kind: "webhook".into(),
            url: Some("https://hooks.example.com/x".into()),
            kinds,
            ..Default::default()
        };
        raw.notifiers = vec![
            hook("everything", None),
            hook("versions", Some(vec!["provider_version_changed".into(), "provider_unreachable".into()])),
            hook("others", Some(vec!["instance_down".into()])),
        ];
    })
    .await;
    let metrics = wa_sentinel::server::metrics_handle().expect("the process's recorder");
    rig.cycle().await;
    rig.cycle().await;
    assert_eq!(store.provider_state("evo").await.unwrap().version.as_deref(), Some("2.3.6"));
    assert!(rig.notices().await.is_empty(), "the first version seen is no change");
    rig.sim.set_version("2.3.7");
    // The version is asked hourly (and after an outage), not every cycle.
    rig.advance(61);
    rig.cycle().await;
    rig.advance(61);
    rig.cycle().await;
    let rows: Vec<(String, String)> = store
        .outbox_all()
        .await
        .unwrap()
        .into_iter()
        .filter(|(k, _, _)| k.starts_with("version:"))
        .map(|(k, n, _)| (k, n))
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1, "versions", "only the notifier that names the kind");
    // Only this test reports 2.3.7 (the recorder is shared by the whole test process).
    let info = r#"wa_sentinel_provider_info{provider="evo",kind="evolution",version="2.3.7"} 1"#;
    assert!(metrics.render().lines().any(|l| l == info), "{info} not exported");
    let events = store.provider_events("evo", 50).await.unwrap();
    let changed: Vec<_> = events.iter().filter(|e| e.kind == "provider_version_changed").collect();
    assert_eq!(changed.len(), 1);
    assert!(changed[0].detail.contains("\"from\":\"2.3.6\"") && changed[0].detail.contains("\"to\":\"2.3.7\""));
}

async fn an_unlicensed_evolution_is_one_provider_notice_that_asks_for_activation(store: Store) {
    let rig = Rig::new(store.clone(), &[("a", Behaviour::Open), ("b", Behaviour::Open)], |_| {}).await;
    rig.cycle().await;
    rig.sim.set_unlicensed(true);
    for _ in 0..5 {
        rig.advance(1);
        rig.cycle().await;
    }
    let state = store.provider_state("evo").await.unwrap();
    assert_eq!(state.state_name(), "unlicensed");
    let kinds = rig.notice_kinds().await;
    assert_eq!(kinds, ["provider_unreachable"], "one provider notice, no instance notice");
    let reason = &state.outage.as_ref().unwrap().reason;
    let n = wa_sentinel::domain::Notice {
        kind: wa_sentinel::domain::NoticeKind::ProviderUnreachable,
        provider: "evo".into(),
        instance: None,
        tenant: None,
        outage_id: None,
        started_at: rig.sup.now(),
        at: rig.sup.now(),
        reason: reason.clone(),
        // What the provider step puts there (domain::provider's unit tests check it).
        cause: Some(state.outage.as_ref().unwrap().cause.as_str().to_string()),
        code: None,
        restart_attempts: 0,
        max_attempts: 0,
        recovered_by: None,
        sequence: 0,
        dedup_key: String::new(),
        remediation: None,
        pair_url: None,
    };
    let text = wa_sentinel::notify::render::render(&n, wa_sentinel::config::Language::En);
    assert_eq!(text.title, "Provider needs activation", "{reason}");
    let outages = store.outages(None, true, 10).await.unwrap();
    assert_eq!(outages.iter().map(|o| o.cause.as_str()).collect::<Vec<_>>(), ["provider_unlicensed"]);
    for n in ["a", "b"] {
        assert_eq!(rig.health(n).await, Health::Unknown, "{n}: no verdict while the provider refuses");
    }
    rig.sim.set_unlicensed(false);
    rig.advance(1);
    rig.cycle().await;
    assert_eq!(rig.notice_kinds().await, ["provider_unreachable", "provider_recovered"]);
}

/// Two replicas on one database: only the provider's leader runs the
/// command; when the lease moves, the new leader continues the same outage
/// and respects the cooldown of the run the old leader made.
async fn only_the_leader_runs_the_remediation_and_a_new_leader_keeps_its_cooldown(store: Store) {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use wa_sentinel::supervisor::Supervisor;
    use wa_sentinel::supervisor::scheduler::Ticks;

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.log");
    let cmd = script(dir.path(), "remedy.sh", &log, "exit 0");
    let rig = silent_rig_with(store.clone(), &cmd, "10s", "10m", 2).await;
    let ticks_a = Arc::new(Ticks::default());
    ticks_a.provider("evo").leader.store(true, Ordering::SeqCst);
    rig.sup.attach_ticks(ticks_a.clone());
    let clock = rig.clock.clone();
    let now = Arc::new(move || wa_sentinel::domain::Ts(clock.load(Ordering::SeqCst)));
    let b = Supervisor::new(Arc::new(rig.sup.config().clone()), store.clone(), None, now).unwrap();
    let ticks_b = Arc::new(Ticks::default());
    b.attach_ticks(ticks_b.clone());
    let url = rig.receiver().await;
    let both = || async {
        minute(&rig, &url, &LIVELY).await;
        b.poll_cycle().await.unwrap();
        b.wait_idle().await;
    };
    for _ in 0..3 {
        both().await;
    }
    rig.sim.set_webhooks_stuck(true);
    for _ in 0..17 {
        both().await;
    }
    assert_eq!(runs(&log).len(), 1, "one run, by the leader");
    // The lease moves to b.
    ticks_a.provider("evo").leader.store(false, Ordering::SeqCst);
    ticks_b.provider("evo").leader.store(true, Ordering::SeqCst);
    for _ in 0..5 {
        both().await;
    }
    assert_eq!(runs(&log).len(), 1, "the new leader keeps the cooldown of the old one's run");
    for _ in 0..6 {
        both().await;
    }
    let ran = runs(&log);
    assert_eq!(ran.len(), 2, "after the cooldown the new leader runs attempt 2: {ran:?}");
    assert_eq!(ran[0], ran[1], "the same outage continued");
    let kinds = rig.notice_kinds().await;
    assert_eq!(count(&kinds, "provider_silent"), 1, "{kinds:?}");
}

// ------------------------------------------------------------ the real binary

/// The daemon against a simulator whose three sessions are open, webhooks
/// posted by this test to the daemon's receiver until the dispatcher sticks.
/// A crash (SIGKILL) right after the attempt was committed and before the
/// command ran: the restarted daemon does not run it inside the cooldown, the
/// notifier hears one `provider_silent`, and once the dispatcher is unstuck
/// one `provider_recovered`.
async fn killed_between_commit_and_exec(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.log");
    let cmd = script(dir.path(), "remedy.sh", &log, "exit 0");
    let sim = Simulator::start(SimOptions {
        instances: LIVELY.iter().map(|n| (n.to_string(), Behaviour::Open)).collect(),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let sink = ok_sink().await;
    let port = free_port();
    let extra = format!(
        "silent_after = \"3s\"\nremediate_command = [\"{}\"]\nremediate_cooldown = \"1h\"\nremediate_timeout = \"5s\"\n",
        cmd.display()
    );
    // The provider keys go right after the [[providers]] table's own keys.
    let cfg_text = daemon_config(&db.url, port, &sim, &sink.uri(), "*/1 * * * * *", "").replacen(
        "discover = true\n",
        &format!("discover = true\n{extra}"),
        1,
    );
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    let url = format!("http://127.0.0.1:{port}/webhooks/evo/hooktoken");

    let pump = {
        let url = url.clone();
        let sim = std::sync::Arc::new(sim);
        let s = sim.clone();
        let task = tokio::spawn(async move {
            loop {
                for n in LIVELY {
                    let _ = s.post_webhook(n, SimEvent::MessagesUpsert, Some(&url)).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        (sim, task)
    };
    let sim = &pump.0;
    let store = &db.store;
    let started = |store: Store| async move {
        store.provider_events("evo", 50).await.unwrap_or_default().iter().any(|e| e.kind == "remediation_started")
    };

    let mut first = Daemon::spawn(&cfg, &[("WA_SENTINEL_TEST_REMEDIATION_DELAY_MS", "4000")]);
    // Webhooks flow (the receiver is up and saw them), then the dispatcher sticks.
    let seen = wait_for(Duration::from_secs(30), || sim.calls("GET", "/instance/connectionState/a") >= 3).await;
    assert!(seen, "the daemon never polled");
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.set_webhooks_stuck(true);
    let mut committed = false;
    for _ in 0..200 {
        if started(store.clone()).await {
            committed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(committed, "no remediation attempt was committed");
    first.kill9(); // inside the 4 s window between the commit and the run
    assert!(runs(&log).is_empty(), "killed before the command ran");

    let mut second = Daemon::spawn(&cfg, &[]);
    let polls = sim.calls("GET", "/instance/connectionState/a");
    assert!(
        wait_for(Duration::from_secs(30), || sim.calls("GET", "/instance/connectionState/a") >= polls + 6).await,
        "the second daemon does not poll"
    );
    assert!(runs(&log).is_empty(), "the committed attempt is not run again inside the cooldown: {:?}", runs(&log));
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await.unwrap().text().await.unwrap();
    assert!(ready.contains("provider evo: silent (no webhook from any instance)"), "{ready}");
    // The dispatcher is unstuck: webhooks flow, the outage closes.
    sim.set_webhooks_stuck(false);
    let mut recovered = false;
    for _ in 0..300 {
        if idempotency_keys(&sink).await.iter().any(|k| k.ends_with(":provider_recovered")) {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.kill9();
    pump.1.abort();
    assert!(recovered, "no provider_recovered reached the notifier: {:?}", idempotency_keys(&sink).await);
    let mut keys = idempotency_keys(&sink).await;
    keys.sort();
    keys.dedup(); // delivery is at least once; the key is what a receiver deduplicates on
    let kinds: Vec<&str> = keys.iter().map(|k| k.rsplit(':').next().unwrap()).collect();
    assert_eq!(kinds, ["provider_recovered", "provider_silent"], "{keys:?}");
    assert!(runs(&log).is_empty());
    let outages = store.outages(None, false, 10).await.unwrap();
    assert_eq!(outages.len(), 1, "one outage across the crash: {outages:?}");
    assert_eq!((outages[0].cause.as_str(), outages[0].restart_attempts), ("provider_silent", 1));
    assert_eq!(outages[0].recovered_by.as_deref(), Some("webhook"));
    for n in LIVELY {
        assert_eq!(sim.calls("POST", &format!("/instance/restart/{n}")), 0);
    }
    let key = InstanceKey::new("evo", "a");
    assert_eq!(store.instance(&key).await.unwrap().unwrap().state.health, Health::Connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_commit_and_exec_sqlite() {
    killed_between_commit_and_exec(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_commit_and_exec_postgres() {
    let Some(db) = TestDb::postgres().await else { return };
    killed_between_commit_and_exec(db).await;
}
