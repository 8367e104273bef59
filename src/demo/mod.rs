//! `wa-sentinel demo`: the whole system on this machine with no setup. Three
//! in-process Evolution-v2 simulators with instances that misbehave on a
//! script, the real daemon against them (ephemeral SQLite, console notices,
//! listener on 127.0.0.1), and a checklist that ticks as each scenario is
//! observed in the daemon's own database:
//!
//! | instance | script | what wa-sentinel does |
//! |---|---|---|
//! | `drop-1` | drops (428) | detects the outage, reconnects (`GET /instance/connect`), recovers |
//! | `logged-out-1` | logged out (401), then re-paired through its link | one `instance_logged_out`, never restarted by itself; the notice's `pair_url` (received by the demo's own backend, a `webhook` notifier) is opened as a customer would: the page starts the session once and shows the simulator's QR code; the demo "scans" it and the page says connected |
//! | `zombie-1` | open but silent | restarts it (`POST /instance/restart`); its webhooks resume |
//! | `nohook-1` | no webhook config | the audit re-applies it |
//! | `flappy-1` | drops and returns repeatedly | one `instance_flapping` instead of a notice storm |
//! | `phone-2` | logged out, then the QR is re-scanned | a webhook proves it alive: recovered at once, not at the next poll |
//! | `evo-b` (provider) | goes down, comes back | one `provider_unreachable`, one `provider_recovered` |
//! | `fresh-1` | never paired (`ownerJid: null`) | one needs-QR notice, never a recovery call |
//! | `gone-1` | logged out, then deleted on the provider | its outage closed as `retired`, one closing notice |
//! | `waha-failed-1` (WAHA) | `FAILED` | reads the status, `POST /api/sessions/{s}/restart`, back to `WORKING` |
//! | `zapi-restore-1` (Z-API) | "You need to restore the session." | `GET …/restore-session`, connected again |
//! | `evo-c` (provider) | sessions open, its webhook dispatcher gets stuck | one `provider_silent`, no instance restarted, the remediation command runs (a harmless `touch` that "restarts" the simulator), webhooks back: `provider_recovered` |
//! | the daemon itself | stopped mid-demo for three times `stale_webhook_after`, then started again on the same database | no healthy session restarted: silence counts only while someone watches (rule 17) |
//!
//! The WAHA and Z-API instances start with the right webhook config, so the
//! audit leaves them alone (a WAHA config write would restart the session).

mod checklist;
mod receivers;
mod scripts;

use checklist::watch;
use receivers::{backend, console_subscriber};
use scripts::{other_kinds, script, silent_server};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::config::raw::{RawInstance, RawNotifier, RawProvider};
use crate::config::{self, RawConfig};
use crate::domain::InstanceKey;
use crate::sim::evolution::{Behaviour, SimEvent, SimOptions, Simulator};
use crate::sim::sim_qr_png;
use crate::sim::waha::{WahaBehaviour, WahaEvent, WahaSim};
use crate::sim::zapi::{ZapiBehaviour, ZapiEvent, ZapiSim};
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Compress the script (1 s polls, seconds instead of tens of seconds): for tests.
    pub fast: bool,
    /// Exit 0 once every scenario was observed (exit 1 if not within the limit).
    pub exit_when_done: bool,
    /// Where to listen; `None`: 127.0.0.1:8080, or a free port if that is taken.
    pub listen: Option<std::net::SocketAddr>,
    /// The daemon's full log on the console too (it always goes to `demo.log`).
    pub verbose: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start the simulator: {0}")]
    Simulator(std::io::Error),
    #[error("demo configuration: {0}")]
    Config(String),
    #[error("cannot create the demo's directory or log file {0}: {1}")]
    Files(std::path::PathBuf, std::io::Error),
    #[error(transparent)]
    Daemon(#[from] crate::daemon::DaemonError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("not every scenario was observed within {0:?}: missing {1:?}")]
    Incomplete(Duration, Vec<&'static str>),
}

/// The scenarios a newcomer should see, in the order they usually happen.
pub const SCENARIOS: [&str; 15] = [
    "outage detected (drop-1)",
    "reconnected and recovered (drop-1)",
    "logged out: notice, no restart (logged-out-1)",
    "zombie restarted (zombie-1)",
    "webhook config repaired (nohook-1)",
    "flapping collapsed into one notice (flappy-1)",
    "provider outage and recovery (evo-b)",
    "webhook-driven recovery (phone-2)",
    "never-paired instance: one needs-QR notice, no restarts (fresh-1)",
    "deleted instance: outage closed as retired (gone-1)",
    "WAHA FAILED restarted and back (waha-failed-1)",
    "Z-API session restored and back (zapi-restore-1)",
    "silent provider: remediation ran, webhooks back (evo-c)",
    "daemon restarted after a long stop: no restart storm (shop-main & co.)",
    "re-pair link: QR shown, scanned, page says connected (logged-out-1)",
];

/// Sessions that stay healthy throughout: none may be restarted after the
/// daemon's restart.
const HEALTHY: [(&str, &str); 5] = [
    ("evo-a", "shop-main"),
    ("evo-a", "shop-support"),
    ("evo-b", "branch-1"),
    ("evo-b", "branch-2"),
    ("waha", "waha-shop"),
];

/// When the daemon is stopped (in poll periods from the start), and for how
/// many periods: three times `stale_webhook_after` (4 periods).
const STOP_AT: u64 = 14;
const STOPPED_FOR: u64 = 12;

/// The instances of `evo-c`, the provider whose webhook dispatcher gets stuck.
const SILENT_INSTANCES: [&str; 3] = ["store-1", "store-2", "store-3"];

/// The Z-API demo instances' tokens (fake, like the simulator).
const ZAPI_INSTANCES: [(&str, &str); 2] = [("zapi-shop", "zapi-demo-token-1"), ("zapi-restore-1", "zapi-demo-token-2")];

/// The simulators post webhooks to this address, so it must be a real port:
/// port 0 (or a taken default) is resolved to a free one now.
fn pick_listen(want: Option<std::net::SocketAddr>) -> std::net::SocketAddr {
    if let Some(a) = want {
        if a.port() != 0 {
            return a;
        }
        return std::net::TcpListener::bind(a).and_then(|l| l.local_addr()).unwrap_or(a);
    }
    let default: std::net::SocketAddr = ([127, 0, 0, 1], 8080).into();
    if std::net::TcpListener::bind(default).is_ok() {
        return default;
    }
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).unwrap_or(default)
}

/// Run the demo until Ctrl-C (or until done with `exit_when_done`).
///
/// The console shows the header, the `NOTICE` lines and the checklist; the
/// daemon's full log goes to `demo.log` in the demo's directory (kept when the
/// demo ends), and also to the console with `verbose`.
pub async fn run(opts: DemoOptions, shutdown: CancellationToken) -> Result<(), DemoError> {
    let dir = std::env::temp_dir().join(format!("wa-sentinel-demo-{}", uuid::Uuid::now_v7().simple()));
    let log_file = dir.join("demo.log");
    std::fs::create_dir_all(&dir)
        .and_then(|()| crate::logging::init_demo(&log_file, opts.verbose))
        .map_err(|e| DemoError::Files(log_file.clone(), e))?;
    crate::tls::install_crypto();
    let s = if opts.fast { 1 } else { 5 }; // seconds per poll
    let listen = pick_listen(opts.listen);
    let public = format!("http://{listen}");
    let admin = uuid::Uuid::new_v4().simple().to_string();
    let token_a = uuid::Uuid::new_v4().simple().to_string();
    let token_b = uuid::Uuid::new_v4().simple().to_string();
    let token_waha = uuid::Uuid::new_v4().simple().to_string();
    let token_zapi = uuid::Uuid::new_v4().simple().to_string();

    let a = Simulator::start(SimOptions {
        instances: vec![
            ("shop-main".into(), Behaviour::Open),
            ("shop-support".into(), Behaviour::Open),
            ("drop-1".into(), Behaviour::Open),
            ("logged-out-1".into(), Behaviour::Open),
            ("zombie-1".into(), Behaviour::ZombieOpen),
            ("nohook-1".into(), Behaviour::Open),
            ("flappy-1".into(), Behaviour::Open),
            ("phone-2".into(), Behaviour::Open),
            ("fresh-1".into(), Behaviour::Unpaired),
            ("gone-1".into(), Behaviour::Open),
        ],
        ..SimOptions::default()
    })
    .await
    .map_err(DemoError::Simulator)?;
    let b = Simulator::start(SimOptions {
        instances: vec![("branch-1".into(), Behaviour::Open), ("branch-2".into(), Behaviour::Open)],
        ..SimOptions::default()
    })
    .await
    .map_err(DemoError::Simulator)?;
    let c = Simulator::start(SimOptions {
        instances: SILENT_INSTANCES.iter().map(|n| (n.to_string(), Behaviour::Open)).collect(),
        ..SimOptions::default()
    })
    .await
    .map_err(DemoError::Simulator)?;
    let token_c = uuid::Uuid::new_v4().simple().to_string();
    // evo-c's remediation is harmless: it touches this file, and the demo
    // script "restarts" the simulator's dispatcher when it appears.
    let restarted = dir.join("evo-c.restarted");
    // Every instance but nohook-1 already has the right webhook config.
    for (sim, name, token) in [(&a, "evo-a", &token_a), (&b, "evo-b", &token_b), (&c, "evo-c", &token_c)] {
        let url = format!("{public}/webhooks/{name}/{token}");
        let row = json!({"url": url, "enabled": true, "events": ["MESSAGES_UPSERT", "MESSAGES_UPDATE", "CONNECTION_UPDATE", "QRCODE_UPDATED", "SEND_MESSAGE"],
                         "webhookByEvents": false, "webhookBase64": false, "headers": {}});
        let names: Vec<&str> = match name {
            "evo-a" => {
                vec!["shop-main", "shop-support", "drop-1", "logged-out-1", "zombie-1", "flappy-1", "phone-2", "gone-1"]
            }
            "evo-b" => vec!["branch-1", "branch-2"],
            _ => SILENT_INSTANCES.to_vec(),
        };
        for n in names {
            sim.set_webhook_config(n, Some(row.clone()));
        }
    }

    let waha =
        WahaSim::start(None, &[("waha-shop", WahaBehaviour::Working), ("waha-failed-1", WahaBehaviour::Working)])
            .await
            .map_err(DemoError::Simulator)?;
    let zapi_instances: Vec<(&str, &str, ZapiBehaviour)> =
        ZAPI_INSTANCES.iter().map(|(id, t)| (*id, *t, ZapiBehaviour::Connected)).collect();
    let zapi = ZapiSim::start(None, &zapi_instances).await.map_err(DemoError::Simulator)?;
    let waha_url = format!("{public}/webhooks/waha/{token_waha}");
    for name in ["waha-shop", "waha-failed-1"] {
        let hook = json!({"url": waha_url, "events": ["session.status", "message", "message.any", "message.ack"]});
        waha.set_config(name, json!({"metadata": {"demo": "true"}, "webhooks": [hook]}));
    }
    let zapi_url = format!("{public}/webhooks/zapi/{token_zapi}");
    for (id, _) in ZAPI_INSTANCES {
        for kind in ["connected", "disconnected", "received", "delivery", "message-status"] {
            zapi.set_callback(id, kind, &zapi_url);
        }
    }

    // The demo's own backend: a `webhook` notifier whose `pair_url` the script
    // opens as the customer would.
    let (links_tx, links_rx) = tokio::sync::mpsc::channel(4);
    let backend = backend(links_tx, shutdown.child_token()).await.map_err(DemoError::Simulator)?;

    let db_url = format!("sqlite://{}/demo.db", dir.display());
    // A config naming only the demo's database, for `report`, `status` and
    // `history` from another terminal while the demo runs.
    let report_config = dir.join("demo.toml");
    if let Err(e) = std::fs::write(&report_config, format!("[database]\nurl = \"{db_url}\"\n")) {
        tracing::warn!(error = %e, "cannot write the demo's report config");
    }
    let mut raw = RawConfig::default();
    raw.database.url = db_url.clone();
    raw.server.listen = listen.to_string();
    raw.server.public_url = Some(public.clone());
    raw.server.admin_token = Some(admin.clone());
    raw.supervisor.poll_schedule = format!("*/{s} * * * * *");
    raw.supervisor.webhook_audit_schedule = format!("*/{} * * * * *", 2 * s);
    raw.supervisor.down_after = 2;
    raw.supervisor.request_timeout = "2s".into();
    raw.supervisor.settle_delay = format!("{}ms", 400 * s);
    raw.supervisor.stale_webhook_after = format!("{}s", 4 * s);
    raw.restart.cooldown = format!("{}s", 4 * s);
    raw.restart.max_cooldown = format!("{}s", 16 * s);
    raw.alerts.flap_window = format!("{}s", 12 * s);
    raw.alerts.flap_threshold = 4;
    raw.alerts.retry_min_delay = "1s".into();
    for (name, sim, token) in [("evo-a", &a, &token_a), ("evo-b", &b, &token_b)] {
        raw.providers.push(RawProvider {
            name: name.into(),
            kind: "evolution".into(),
            base_url: sim.base_url(),
            api_version: Some("auto".into()),
            api_key: Some(sim.api_key().into()),
            webhook_token: Some(token.clone()),
            discover: true,
            default_tenant: Some(if name == "evo-a" { "acme".into() } else { "globex".into() }),
            ..Default::default()
        });
    }
    raw.providers.push(RawProvider {
        name: "evo-c".into(),
        kind: "evolution".into(),
        base_url: c.base_url(),
        api_version: Some("auto".into()),
        api_key: Some(c.api_key().into()),
        webhook_token: Some(token_c),
        discover: true,
        default_tenant: Some("hooli".into()),
        silent_after: Some(format!("{}s", 3 * s)),
        remediate_command: Some(vec!["touch".into(), restarted.display().to_string()]),
        remediate_timeout: Some("10s".into()),
        remediate_cooldown: Some("10m".into()),
        remediate_max_attempts: Some(1),
        ..Default::default()
    });
    raw.providers.push(RawProvider {
        name: "waha".into(),
        kind: "waha".into(),
        base_url: waha.base_url(),
        webhook_token: Some(token_waha),
        discover: true,
        default_tenant: Some("initech".into()),
        ..Default::default()
    });
    raw.providers.push(RawProvider {
        name: "zapi".into(),
        kind: "zapi".into(),
        base_url: zapi.base_url(),
        webhook_token: Some(token_zapi),
        ..Default::default()
    });
    for (id, token) in ZAPI_INSTANCES {
        raw.instances.push(RawInstance {
            provider: "zapi".into(),
            name: id.into(),
            tenant: Some("umbrella".into()),
            token: Some(token.into()),
            ..Default::default()
        });
    }
    // The SaaS application's side: a subscriber that verifies each event's
    // signature and shows it on the console (`EVENT …` lines).
    let subscriber_secret = uuid::Uuid::new_v4().simple().to_string();
    let subscriber =
        console_subscriber(subscriber_secret.clone(), shutdown.child_token()).await.map_err(DemoError::Simulator)?;
    raw.subscribers.push(crate::config::raw::RawSubscriber {
        name: "app".into(),
        url: Some(format!("http://{subscriber}/wa-sentinel/events")),
        secret: Some(subscriber_secret),
        ..Default::default()
    });
    raw.notifiers.push(RawNotifier { name: "log".into(), kind: "log".into(), ..Default::default() });
    raw.notifiers.push(RawNotifier {
        name: "backend".into(),
        kind: "webhook".into(),
        url: Some(backend),
        kinds: Some(vec!["instance_logged_out".into()]),
        ..Default::default()
    });
    let cfg = config::validate(raw, &|_| "demo".into()).map_err(|e| DemoError::Config(e.to_string()))?;

    println!("wa-sentinel demo");
    println!("  status page : {public}/login   (sign in with the admin token; actions need this sign-in)");
    println!("  admin token : {admin}");
    println!("  admin API   : curl -H 'Authorization: Bearer {admin}' {public}/api/instances");
    println!("  database    : {}", dir.display());
    println!("  report      : wa-sentinel --config {} report --since 1h", report_config.display());
    println!(
        "  daemon log  : {}{}",
        log_file.display(),
        if opts.verbose { " (and below)" } else { "   (--verbose: also here)" }
    );
    println!("  notices appear on the console as `NOTICE ...` lines, and the events an application");
    println!("  subscribed to (signature checked) as `EVENT ...` lines; Ctrl-C to stop.");
    println!();

    let stop_daemon = shutdown.child_token();
    let restarted_at = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let daemon = tokio::spawn(daemons(cfg, s, stop_daemon.clone(), restarted_at.clone()));
    let script = tokio::spawn(script(a, b, s, links_rx, shutdown.child_token()));
    let silent = tokio::spawn(silent_server(c, restarted, s, shutdown.child_token()));
    let others = tokio::spawn(other_kinds(waha, zapi, s, shutdown.child_token()));

    let limit = Duration::from_secs(if opts.fast { 90 } else { 300 });
    let stale_ms = 4 * s as i64 * 1000;
    let outcome = watch(&db_url, &shutdown, opts.exit_when_done, limit, &restarted_at, stale_ms).await;
    stop_daemon.cancel();
    script.abort();
    silent.abort();
    others.abort();
    let daemon_result = daemon.await;
    remove_database(&dir);
    println!("daemon log kept: {}", log_file.display());
    if let Ok(Err(e)) = daemon_result {
        return Err(e.into());
    }
    outcome
}

/// The daemon, stopped after [`STOP_AT`] periods for [`STOPPED_FOR`] (three
/// times `stale_webhook_after`: every session's last webhook is then older
/// than a zombie's), then started again on the same database — as an upgrade
/// or a reboot would. `restarted_at` gets the moment of the second start.
async fn daemons(
    cfg: crate::config::Config,
    s: u64,
    shutdown: CancellationToken,
    restarted_at: Arc<std::sync::atomic::AtomicI64>,
) -> Result<(), crate::daemon::DaemonError> {
    let (_no_reloads, reload) = tokio::sync::mpsc::channel(1);
    let first = shutdown.child_token();
    let signals = crate::daemon::Signals { shutdown: first.clone(), reload };
    let mut running = tokio::spawn(crate::daemon::run(cfg.clone(), signals, None));
    tokio::select! {
        r = &mut running => return r.unwrap_or(Ok(())),
        _ = tokio::time::sleep(Duration::from_secs(STOP_AT * s)) => {}
    }
    println!("  … stopping the daemon for {} s, then starting it again on the same database", STOPPED_FOR * s);
    first.cancel();
    running.await.unwrap_or(Ok(()))?;
    tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        _ = tokio::time::sleep(Duration::from_secs(STOPPED_FOR * s)) => {}
    }
    restarted_at.store(crate::clock::now().0, std::sync::atomic::Ordering::SeqCst);
    println!("  … the daemon runs again");
    let (_no_reloads, reload) = tokio::sync::mpsc::channel(1);
    let signals = crate::daemon::Signals { shutdown, reload };
    crate::daemon::run(cfg, signals, None).await
}

/// The database is throw-away; the log stays for reading after the demo.
fn remove_database(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("demo.db") || name == "demo.toml" {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
