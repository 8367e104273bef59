//! The binary's exit codes and messages (docs/cli.md), run as a real process.

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wa-sentinel"));
    c.env_remove("WA_SENTINEL_CONFIG");
    c
}

#[test]
fn check_config_on_the_shipped_config_exits_0() {
    let out =
        bin().args(["--config", concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml"), "check-config"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("[supervisor]"));
}

#[test]
fn a_broken_config_exits_2_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "[supervisor]\ndown_after = 0\n").unwrap();
    let out = bin().arg("--config").arg(&p).arg("check-config").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("supervisor.down_after"), "{err}");
}

#[test]
fn bad_usage_exits_2() {
    let out = bin().arg("no-such-command").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn migrate_status_history_and_maintenance_work_on_a_fresh_database() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, format!("[database]\nurl = \"sqlite://{}/db/s.db\"\n", dir.path().display())).unwrap();
    let run = |args: &[&str]| {
        let out = bin().arg("--config").arg(&cfg).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, _, err) = run(&["migrate"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(dir.path().join("db/s.db").exists(), "the SQLite file and its directory are created");
    let (code, out, _) = run(&["status", "--json"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), "[]");
    let (code, out, _) = run(&["history"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("STARTED"));
    let (code, _, err) = run(&["maintenance", "evo/ghost", "--for", "2h"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("evo/ghost") && err.contains("unknown instance"), "{err}");
    let (code, _, err) = run(&["maintenance", "nonsense", "--off"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("PROVIDER/INSTANCE"), "{err}");
}

/// `report` prints, as JSON, exactly what `report::build` (the
/// function behind the status page's figures and `/api/report`) computes;
/// the table and the CSV carry the same numbers; an empty window is bad usage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_prints_the_figures_of_the_one_function() {
    use std::collections::BTreeMap;

    use wa_sentinel::domain::health::{Ctx, Observation};
    use wa_sentinel::domain::{InstanceKey, Policy, ProviderStatus, Ts, step};
    use wa_sentinel::report::{ReportQuery, build};

    let db = crate::it::common::TestDb::sqlite().await;
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), format!("[database]\nurl = \"{}\"\n", db.url)).unwrap();
    let key = InstanceKey::new("evo", "shop,main");
    db.store.ensure_instance(&key, "acme", &BTreeMap::new(), "config", None, Ts(0)).await.unwrap();
    for (at, st) in [(1000, ProviderStatus::Disconnected { reason: None }), (7000, ProviderStatus::Connected)] {
        let rec = db.store.instance(&key).await.unwrap().unwrap();
        let ctx =
            Ctx { now: Ts(at), key: &key, tenant: "acme", new_id: "o1", may_recover: false, watching_since: Ts(0) };
        let out = step(&rec.state, Observation::Polled(st), &ctx, &Policy { down_after: 1, ..Policy::default() });
        db.store.commit_step(&rec, &out, &[], Ts(at)).await.unwrap();
    }
    let run = |args: &[&str]| {
        let out = bin().arg("--config").arg(cfg.path()).arg("report").args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let window = ["--since", "1970-01-01T00:00:00Z", "--until", "1970-01-01T00:00:10Z"];
    let json: serde_json::Value = serde_json::from_str(&run(&[&window[..], &["--format", "json"]].concat())).unwrap();
    let q = ReportQuery { from: Ts(0), to: Ts(10_000), tenant: None, provider: None };
    // Through JSON text, as the command's output was (serde_json's float
    // parsing is not correctly rounded: compare like with like).
    let text = serde_json::to_string(&build(&db.store, &q, Ts(20_000)).await.unwrap()).unwrap();
    let mut want: serde_json::Value = serde_json::from_str(&text).unwrap();
    want["generated_at"] = json["generated_at"].clone();
    assert_eq!(json, want);
    assert_eq!(json["instances"][0]["down_ms"], 6000);
    assert_eq!(json["instances"][0]["availability"], 0.4);
    let table = run(&window);
    assert!(table.contains("evo/shop,main") && table.contains("40.00%") && table.contains("6s"), "{table}");
    assert!(table.contains("acme (1 instance(s))"), "{table}");
    let csv = run(&[&window[..], &["--format", "csv", "--tenant", "acme"]].concat());
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("scope,provider,instance,tenant,instances,availability"), "{csv}");
    assert!(
        lines[1].starts_with("instance,evo,\"shop,main\",acme,1,0.400000,10000,4000,0,6000,1,6000,6000,0,0"),
        "{csv}"
    );
    assert!(lines[2].starts_with("tenant,,,acme,1,0.400000"), "{csv}");
    let out =
        bin().arg("--config").arg(cfg.path()).args(["report", "--since", "1h", "--until", "2h"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "an empty window");
    let out = bin().arg("--config").arg(cfg.path()).args(["report", "--since", "someday"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "bad usage");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
}

/// `--help` (and the man page, rendered from the same definitions) names
/// every provider kind wa-sentinel supervises.
#[test]
fn help_names_every_provider_kind() {
    for flag in ["-h", "--help"] {
        let out = bin().arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        for kind in ["Evolution API", "W-API", "WAHA", "Z-API"] {
            assert!(text.contains(kind), "{flag} does not name {kind}:\n{text}");
        }
    }
}
