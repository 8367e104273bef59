//! The binary's exit codes and messages (SPEC §1), run as a real process.

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
