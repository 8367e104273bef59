//! What the real binary's log looks like (`[log]`, src/logging.rs): no escape
//! codes when piped, syslog priorities and no timestamps of its own under
//! journald, JSON lines that parse and carry instance, provider, tenant and
//! outage fields, colours on a terminal unless `NO_COLOR`, and the demo's
//! `--verbose`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::it::common::ok_sink;
use crate::it::process::{Daemon, daemon_config, wait_for};
use wa_sentinel::sim::evolution::{Behaviour, SimOptions, Simulator};

/// Run the daemon against one instance that is down until `outage opened`
/// is logged; return its stderr.
async fn daemon_log(extra_config: &str, journal_stream: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions {
        instances: vec![("b".into(), Behaviour::ClosedTransient { reason: 428 })],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let sink = ok_sink().await;
    let db = format!("sqlite://{}/logs.db", dir.path().display());
    let extra = format!("[[instances]]\nprovider = \"evo\"\nname = \"b\"\ntenant = \"acme\"\n{extra_config}");
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, daemon_config(&db, 0, &sim, &sink.uri(), "*/1 * * * * *", &extra)).unwrap();
    let log_path = cfg.with_extension("log");
    // Daemon::spawn truncates this file, keeping its inode: the stream journald would have given us.
    let f = std::fs::File::create(&log_path).unwrap().metadata().unwrap();
    let stream = format!("{}:{}", f.dev(), f.ino());
    let envs: Vec<(&str, &str)> = if journal_stream { vec![("JOURNAL_STREAM", &stream)] } else { vec![] };
    let mut daemon = Daemon::spawn(&cfg, &envs);
    let read = || std::fs::read_to_string(&log_path).unwrap_or_default();
    // The end of the first cycle too: the cycle's verdict (provider step,
    // version probe) runs after the poll that logs `outage opened`.
    let seen =
        wait_for(Duration::from_secs(30), || read().contains("outage opened") && read().contains("poll cycle done"))
            .await;
    daemon.kill9();
    let log = read();
    assert!(seen, "no `outage opened` in the log:\n{log}");
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_text_has_timestamps_fields_and_no_escape_codes() {
    let log = daemon_log("", false).await;
    assert!(!log.contains('\x1b'), "escape codes in piped output:\n{log}");
    let line = log.lines().find(|l| l.contains("outage opened")).unwrap();
    assert!(line.starts_with("20") && line.contains(" WARN "), "timestamp and level: {line}");
    for field in ["instance=evo/b", "provider=evo", "tenant=\"acme\"", "outage_id="] {
        assert!(line.contains(field), "`{field}` missing: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_journald_lines_carry_a_priority_and_no_timestamp() {
    let log = daemon_log("", true).await;
    assert!(!log.contains('\x1b'), "{log}");
    for line in log.lines().filter(|l| !l.is_empty()) {
        assert!(line.starts_with(['<']), "every line starts with a syslog priority: {line}");
        assert!(!line[3..].trim_start().starts_with("20"), "no timestamp of our own: {line}");
    }
    let line = log.lines().find(|l| l.contains("outage opened")).unwrap();
    assert!(line.starts_with("<4>"), "a warning is priority 4: {line}");
    assert!(log.lines().any(|l| l.starts_with("<6>")), "info is priority 6");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_parse_and_carry_the_fields() {
    let log = daemon_log("[log]\nformat = \"json\"\n", false).await;
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.iter().all(|v| v["timestamp"].is_string() && v["level"].is_string()), "{log}");
    let opened = lines.iter().find(|v| v["message"] == "outage opened").expect("outage opened");
    assert_eq!(opened["level"], "WARN");
    assert_eq!(opened["instance"], "evo/b");
    assert_eq!(opened["provider"], "evo");
    assert_eq!(opened["tenant"], "acme");
    assert!(opened["outage_id"].as_str().is_some_and(|id| id.len() == 36), "{opened}");
    let polled = lines.iter().find(|v| v["span"]["name"] == "cycle").expect("an event inside a provider's cycle span");
    assert_eq!(polled["span"]["provider"], "evo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_under_journald_drops_the_timestamp() {
    let log = daemon_log("[log]\nformat = \"json\"\n", true).await;
    for line in log.lines().filter(|l| !l.is_empty()) {
        let (prio, json) = line.split_at(3);
        assert!(prio.starts_with('<') && prio.ends_with('>'), "{line}");
        let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("timestamp").is_none(), "{line}");
    }
}

/// On a terminal (a pty from `script`), colours unless `NO_COLOR` is set.
#[test]
fn colours_on_a_terminal_only_without_no_color() {
    if Command::new("script").arg("--version").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true needs `script` (util-linux)");
        eprintln!("skipping: no `script` to make a pseudo-terminal");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    let db = format!("sqlite://{}/c.db", dir.path().display());
    std::fs::write(&cfg, format!("[database]\nurl = \"{db}\"\n[server]\nlisten = \"127.0.0.1:0\"\n")).unwrap();
    let on_tty = |no_color: Option<&str>| {
        let bin = env!("CARGO_BIN_EXE_wa-sentinel");
        let inner = format!("timeout -s INT 3 {bin} --config {} run", cfg.display());
        let mut c = Command::new("script");
        c.args(["-qec", &inner, "/dev/null"]).stdin(std::process::Stdio::null());
        c.env_remove("NO_COLOR").env_remove("RUST_LOG");
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        let out = c.output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let coloured = on_tty(None);
    assert!(coloured.contains("listening") && coloured.contains('\x1b'), "colours on a terminal:\n{coloured}");
    let plain = on_tty(Some("1"));
    assert!(plain.contains("listening") && !plain.contains('\x1b'), "NO_COLOR=1 means none:\n{plain}");
}

#[test]
fn demo_verbose_brings_the_log_back_to_the_console() {
    let out = Command::new(env!("CARGO_BIN_EXE_wa-sentinel"))
        .args(["demo", "--fast", "--exit-when-done", "--verbose", "--listen", "127.0.0.1:0"])
        .env_remove("WA_SENTINEL_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains(" INFO ") && stderr.contains("wa_sentinel::daemon"), "full log on stderr:\n{stderr}");
    assert!(!stderr.contains('\x1b'), "still no escape codes when piped");
    let log_path = stdout.lines().find_map(|l| l.strip_prefix("daemon log kept: ")).expect("log path printed");
    assert!(std::fs::read_to_string(log_path).unwrap().contains(" INFO "), "and in the file");
    let _ = std::fs::remove_dir_all(Path::new(log_path).parent().unwrap());
}

/// A `MakeWriter` that keeps every log line, for in-process log tests.
#[derive(Clone, Default)]
struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

/// While a provider is unreachable, its failing discovery is logged once
/// (WARN) when it starts failing and once (INFO) when it works again — not
/// every poll cycle; and a webhook audit that cannot reach the provider says
/// the config could not be read, and why, instead of calling it "not in the
/// desired state".
#[tokio::test(flavor = "current_thread")]
async fn an_unreachable_provider_s_discovery_is_logged_once_and_its_audit_says_it_could_not_read() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let live = crate::it::receiver::Live::start(&[("a", Behaviour::Open)], |r| {
        r.server.public_url = Some("http://sentinel.test".into());
    })
    .await;
    live.sup.poll_cycle().await.unwrap();
    lines.take();
    let count = |log: &str, what: &str| log.lines().filter(|l| l.contains(what)).count();

    live.sim.set_down(true);
    for _ in 0..4 {
        live.sup.poll_cycle().await.unwrap();
    }
    let down = lines.take();
    let warned: Vec<&str> = down.lines().filter(|l| l.contains(" WARN ") && l.contains("discovery")).collect();
    assert_eq!(warned.len(), 1, "one warning for the whole episode:\n{down}");
    assert!(warned[0].contains("provider=evo") && warned[0].contains("error="), "{}", warned[0]);

    live.sup.webhook_audit().await.unwrap();
    let audit = lines.take();
    assert_eq!(count(&audit, "not in the desired state"), 0, "{audit}");
    let line = audit.lines().find(|l| l.contains("instance=evo/a") && l.contains(" WARN ")).expect(&audit);
    assert!(line.contains("could not be read") && line.contains("server error"), "says what and why: {line}");

    live.sim.set_down(false);
    live.sup.poll_cycle().await.unwrap();
    live.sup.poll_cycle().await.unwrap();
    let back = lines.take();
    assert_eq!(count(&back, "discovery works again"), 1, "{back}");
    live.sim.set_down(true);
    live.sup.poll_cycle().await.unwrap();
    let again = lines.take();
    let warned = again.lines().filter(|l| l.contains(" WARN ") && l.contains("discovery")).count();
    assert_eq!(warned, 1, "a new episode, one warning: {again}");
}
