//! Prometheus and Grafana as shipped: the alert rules pass
//! `promtool check rules` and their unit tests (`promtool test rules`), a live
//! daemon's `/metrics` passes `promtool check metrics`, every exported family
//! has a help text in `metrics_catalog`, and the rules and the dashboard name
//! only series that exist. Without promtool the promtool halves are skipped,
//! except under `CI=true`, where `.ci/run` installs Debian's `prometheus`.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use wa_sentinel::metrics_catalog::{SERIES, family_of};
use wa_sentinel::sim::evolution::Behaviour;

use super::receiver::{Live, TOKEN, upsert};

const ALERTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/prometheus/alerts.yml");
const ALERT_TESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/prometheus/alerts.test.yml");
const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/grafana/wa-sentinel.json");

fn promtool() -> Option<&'static str> {
    if std::process::Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return Some("promtool");
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but promtool (Debian: prometheus) is not installed");
    eprintln!("skipping: promtool is not installed (Debian package `prometheus`)");
    None
}

/// Every `wa_sentinel_…` name a text mentions.
fn series_named(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("wa_sentinel_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn rules_and_dashboard_name_only_exported_series() {
    let alerts = std::fs::read_to_string(ALERTS).unwrap();
    let dashboard = std::fs::read_to_string(DASHBOARD).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| p.len() >= 10), "a dashboard with panels");
    for (file, text) in [("alerts.yml", &alerts), ("wa-sentinel.json", &dashboard)] {
        let names = series_named(text);
        assert!(!names.is_empty(), "{file} names no series");
        for n in names {
            assert!(family_of(&n).is_some(), "{file} uses {n}, which wa-sentinel does not export");
        }
    }
    // Each alert the issue asks for is there.
    for alert in [
        "WaSentinelDown",
        "WaSentinelNotReady",
        "WaSentinelNoticesDead",
        "WaSentinelProviderUnreachable",
        "WaSentinelProviderSilent",
        "WaSentinelManyInstancesDown",
        "WaSentinelPollCyclesSkipped",
    ] {
        assert!(alerts.contains(&format!("alert: {alert}")), "{alert} missing");
    }
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let Some(promtool) = promtool() else { return };
    for args in [vec!["check", "rules", ALERTS], vec!["test", "rules", ALERT_TESTS]] {
        let out = std::process::Command::new(promtool).args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_metrics_pass_promtool_and_every_family_has_help() {
    let live = Live::start(&[("a", Behaviour::Open), ("b", Behaviour::LoggedOut)], |_| {}).await;
    live.post(&format!("/webhooks/evo/{TOKEN}"), upsert("a")).await;
    live.post(&format!("/webhooks/evo/{TOKEN}"), "not json").await;
    live.sup.poll_cycle().await.unwrap();
    let text = live.http.get(format!("{}/metrics", live.base)).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("wa_sentinel_ready 1"), "{text}");
    assert!(text.contains("wa_sentinel_provider_up{provider=\"evo\"} 1"), "{text}");
    // Every family exported has its help text, and is in the catalog.
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let sample = line.split(['{', ' ']).next().unwrap();
        let family = family_of(sample).unwrap_or_else(|| panic!("{sample} is exported but not in metrics_catalog"));
        assert!(text.contains(&format!("# HELP {family} ")), "no help text for {family}:\n{text}");
    }
    assert!(SERIES.len() >= 16);

    let Some(promtool) = promtool() else { return };
    let mut child = tokio::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n--- metrics:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
