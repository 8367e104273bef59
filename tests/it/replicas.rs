//!  with the real binary: replicas on one PostgreSQL *share* the
//! providers. Three replicas over six providers: each provider is polled by
//! exactly one replica, one recovery call and one notice per outage; SIGKILL
//! one replica and its providers are polled again within the lease TTL and a
//! period, still without a duplicate call or notice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use wa_sentinel::sim::evolution::{Behaviour, SimOptions, Simulator};

use crate::it::common::{TestDb, free_port, idempotency_keys, ok_sink};
use crate::it::process::{Daemon, wait_for};

fn log_of(cfg: &Path) -> String {
    std::fs::read_to_string(cfg.with_extension("log")).unwrap_or_default()
}

/// `provider → replicas` that logged a finished cycle of it after byte `from` of each log.
fn pollers(cfgs: &[PathBuf], from: &[usize]) -> BTreeMap<String, BTreeSet<usize>> {
    let mut out: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for (i, cfg) in cfgs.iter().enumerate() {
        let log = log_of(cfg);
        for line in log.get(from[i]..).unwrap_or("").lines().filter(|l| l.contains("poll cycle done")) {
            if let Some(p) = line.split("provider=").nth(1) {
                let p: String = p.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
                out.entry(p).or_default().insert(i);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_six_providers_and_take_over_a_killed_one() {
    let Some(db) = TestDb::postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut sims = Vec::new();
    for i in 0..6 {
        let mut instances = vec![(format!("p{i}-ok"), Behaviour::Open)];
        if i == 3 {
            instances.push(("p3-down".into(), Behaviour::ClosedTransient { reason: 428 }));
        }
        sims.push(Simulator::start(SimOptions { instances, ..SimOptions::default() }).await.unwrap());
    }
    let sink = ok_sink().await;
    let mut providers = String::new();
    for (i, s) in sims.iter().enumerate() {
        providers.push_str(&format!(
            "[[providers]]\nname = \"p{i}\"\nkind = \"evolution\"\nbase_url = \"{}\"\napi_version = \"v2\"\n\
             api_key = \"{}\"\nwebhook_token = \"t{i}\"\ndiscover = true\n",
            s.base_url(),
            s.api_key()
        ));
    }
    let mut daemons = Vec::new();
    let mut cfgs = Vec::new();
    for r in 0..3 {
        let cfg = dir.path().join(format!("r{r}.toml"));
        let text = format!(
            "[database]\nurl = \"{url}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n\
             [supervisor]\npoll_schedule = \"*/1 * * * * *\"\nrequest_timeout = \"2s\"\ndown_after = 1\nsettle_delay = \"0s\"\n\
             [restart]\ncooldown = \"30m\"\n[alerts]\nretry_min_delay = \"1s\"\n{providers}\
             [[notifiers]]\nname = \"sink\"\nkind = \"webhook\"\nurl = \"{sink}\"\n",
            url = db.url,
            port = free_port(),
            sink = sink.uri(),
        );
        std::fs::write(&cfg, text).unwrap();
        daemons.push(Some(Daemon::spawn(&cfg, &[])));
        cfgs.push(cfg);
    }
    // What a failure prints: the whole logs are longer than a CI report keeps,
    // so each replica's end, its plan and leadership lines and its warnings.
    let outline = |daemons: &mut Vec<Option<Daemon>>| {
        let mut out = String::new();
        for (i, c) in cfgs.iter().enumerate() {
            let ended = daemons[i].as_mut().and_then(|d| d.exited());
            out.push_str(&format!("---- replica {i} (exited: {ended:?})\n"));
            let log = log_of(c);
            let picked: Vec<&str> = log
                .lines()
                .filter(|l| {
                    ["leadership", "listening", "took over", " WARN ", " ERROR ", "rror"].iter().any(|k| l.contains(k))
                })
                .collect();
            for l in &picked[picked.len().saturating_sub(12)..] {
                out.push_str(&l.chars().take(220).collect::<String>());
                out.push('\n');
            }
        }
        out
    };
    let connects = || sims[3].calls("GET", "/instance/connect/p3-down");
    if !wait_for(Duration::from_secs(40), || connects() >= 1).await {
        panic!("nobody reconnected p3-down:\n{}", outline(&mut daemons));
    }

    // Steady state: the replicas' latest leadership lines cover the six
    // providers exactly once, two each (one provider has two instances, so the
    // plan balances instances 2+1 / 1+1 / 1+1... within one provider).
    let settled = || {
        let mut all = Vec::new();
        for c in &cfgs {
            let log = log_of(c);
            let Some(line) = log.lines().rev().find(|l| l.contains("provider leadership changed")) else {
                return false;
            };
            let led = line.split("led=[").nth(1).and_then(|r| r.split(']').next()).unwrap_or("");
            let led: Vec<String> =
                led.split(", ").filter(|p| !p.is_empty()).map(|p| p.trim_matches('"').to_string()).collect();
            if led.len() != 2 {
                return false;
            }
            all.extend(led);
        }
        let n = all.len();
        all.sort();
        all.dedup();
        n == 6 && all.len() == 6
    };
    // ... and stays so for two lease rounds (the plan moves once at start-up,
    // when discovery tells the instance counts it is weighed by).
    let lines = || cfgs.iter().map(|c| log_of(c).matches("provider leadership changed").count()).sum::<usize>();
    let mut stable = false;
    for _ in 0..6 {
        if !wait_for(Duration::from_secs(60), settled).await {
            panic!("the providers were never shared out:\n{}", outline(&mut daemons));
        }
        let before = lines();
        tokio::time::sleep(Duration::from_secs(11)).await;
        if lines() == before && settled() {
            stable = true;
            break;
        }
    }
    assert!(stable, "the plan kept moving:\n{}", outline(&mut daemons));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let from: Vec<usize> = cfgs.iter().map(|c| log_of(c).len()).collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let who = pollers(&cfgs, &from);
    assert_eq!(who.len(), 6, "every provider polled: {who:?}");
    let leadership = || {
        cfgs.iter()
            .map(|c| {
                log_of(c)
                    .lines()
                    .filter(|l| l.contains("leadership") || l.contains("poll cycle done"))
                    .map(|l| l.chars().take(160).collect::<String>())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    assert!(who.values().all(|r| r.len() == 1), "a provider polled by two replicas: {who:?}\n{}", leadership());
    assert_eq!(connects(), 1, "one recovery call for the outage");

    // Kill the replica that leads p0; its providers move within TTL + a period.
    let victim = *who["p0"].iter().next().unwrap();
    let moved: Vec<String> = who.iter().filter(|(_, r)| r.contains(&victim)).map(|(p, _)| p.clone()).collect();
    daemons[victim].take().unwrap().kill9();
    let killed_at = std::time::Instant::now();
    let from: Vec<usize> = cfgs.iter().map(|c| log_of(c).len()).collect();
    let taken = || {
        let who = pollers(&cfgs, &from);
        moved.iter().all(|p| who.get(p).is_some_and(|r| !r.is_empty() && !r.contains(&victim)))
    };
    if !wait_for(Duration::from_secs(40), taken).await {
        panic!("{moved:?} never taken over:\n{}", outline(&mut daemons));
    }
    let took = killed_at.elapsed();
    eprintln!("a killed replica's providers were polled again after {took:?}");
    assert!(took <= Duration::from_secs(15 + 1 + 4), "takeover took {took:?} (lease 15 s + a period)");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(connects(), 1, "no second recovery call inside the cooldown across the takeover");
    let mut keys = idempotency_keys(&sink).await;
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert!(n - keys.len() <= 1, "duplicates beyond the one delivery in flight at the kill: {keys:?}");
    assert_eq!(keys.iter().filter(|k| k.ends_with(":instance_down")).count(), 1, "{keys:?}");
}
