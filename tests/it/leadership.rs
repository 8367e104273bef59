//! Replicas that disagree — about instance counts while discovery changes
//! them, or about the configuration during a rolling reload — still lead
//! every provider exactly once (one shared plan, and the safety net), and
//! never retire what another live replica still configures. The lease rounds
//! of several replicas run here in one process against one real database.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use wa_sentinel::config::raw::{RawInstance, RawProvider};
use wa_sentinel::config::{self, RawConfig};
use wa_sentinel::domain::{InstanceKey, Ts};
use wa_sentinel::store::{InstanceFilter, NewInstance, Store};
use wa_sentinel::supervisor::Supervisor;
use wa_sentinel::supervisor::scheduler::Ticks;

use crate::it::common::TestDb;

const TTL: Duration = Duration::from_millis(900);
const PERIOD: Duration = Duration::from_millis(300);

/// One replica's configuration: its providers and `[[instances]]`.
fn raw(providers: &[&str], instances: &[(&str, &str)]) -> RawConfig {
    let mut raw = RawConfig::default();
    for p in providers {
        raw.providers.push(RawProvider {
            name: p.to_string(),
            kind: "evolution".into(),
            base_url: "http://127.0.0.1:9".into(),
            api_version: Some("v2".into()),
            api_key: Some("k".into()),
            webhook_token: Some(format!("hook-{p}")),
            discover: false,
            default_tenant: Some("unassigned".into()),
            ..Default::default()
        });
    }
    for (p, n) in instances {
        raw.instances.push(RawInstance {
            provider: p.to_string(),
            name: n.to_string(),
            tenant: Some("t1".into()),
            labels: BTreeMap::new(),
            token: None,
            token_env: None,
            token_file: None,
        });
    }
    raw
}

fn cfg(raw: RawConfig) -> config::Config {
    config::validate(raw, &|_| "test".into()).expect("valid config")
}

struct Replica {
    holder: String,
    ticks: Arc<Ticks>,
    cfg: config::Config,
    memory: wa_sentinel::lease::Memory,
    alive: bool,
}

impl Replica {
    fn new(holder: &str, cfg: config::Config) -> Replica {
        Replica { holder: holder.into(), ticks: Arc::default(), cfg, memory: Default::default(), alive: true }
    }

    async fn round(&mut self, store: &Store) -> Vec<String> {
        let local = wa_sentinel::lease::Local::of(&self.cfg);
        wa_sentinel::lease::round(store, &self.holder, TTL, &self.ticks, &local, &mut self.memory).await.unwrap()
    }

    fn leads(&self, provider: &str) -> bool {
        self.alive && self.ticks.provider(provider).leader.load(Ordering::SeqCst)
    }
}

/// Run every live replica's rounds, each on its own period and phase, for
/// `span`; return, per provider, the longest stretch without exactly one
/// leader, and panic the moment one has two.
async fn run_rounds(
    store: &Store,
    replicas: &mut [Replica],
    providers: &[&str],
    span: Duration,
) -> BTreeMap<String, Duration> {
    let start = Instant::now();
    let n = replicas.len() as u32;
    let mut next: Vec<Instant> = (0..n).map(|i| start + PERIOD * i / n).collect();
    let mut gap: BTreeMap<String, Duration> = BTreeMap::new();
    let mut unled_since: BTreeMap<String, Instant> = providers.iter().map(|p| (p.to_string(), start)).collect();
    while start.elapsed() < span {
        let (i, at) = next.iter().enumerate().min_by_key(|(_, t)| **t).map(|(i, t)| (i, *t)).unwrap();
        tokio::time::sleep_until(at.into()).await;
        if replicas[i].alive {
            replicas[i].round(store).await;
        }
        next[i] = at + PERIOD;
        let now = Instant::now();
        for p in providers {
            let leaders: Vec<&str> = replicas.iter().filter(|r| r.leads(p)).map(|r| r.holder.as_str()).collect();
            assert!(leaders.len() <= 1, "{p} has two leaders at once: {leaders:?}");
            if leaders.len() == 1 {
                if let Some(since) = unled_since.remove(*p) {
                    let g = gap.entry(p.to_string()).or_default();
                    *g = (*g).max(now - since);
                }
            } else {
                unled_since.entry(p.to_string()).or_insert(now);
            }
        }
    }
    let now = Instant::now();
    for (p, since) in unled_since {
        let g = gap.entry(p).or_default();
        *g = (*g).max(now - since);
    }
    gap
}

fn bound() -> Duration {
    // The lease TTL, one round period, and the rounds' own database time.
    TTL + PERIOD + Duration::from_millis(250)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_with_different_provider_lists_lead_every_provider_within_ttl_and_a_round() {
    let Some(db) = TestDb::postgres().await else { return };
    // A rolling reload half done: `b` already has p3, `a` does not yet.
    let mut replicas =
        vec![Replica::new("a", cfg(raw(&["p1", "p2"], &[]))), Replica::new("b", cfg(raw(&["p1", "p2", "p3"], &[])))];
    let providers = ["p1", "p2", "p3"];
    let gap = run_rounds(&db.store, &mut replicas, &providers, TTL * 4).await;
    eprintln!("longest leaderless stretch per provider: {gap:?} (bound {:?})", bound());
    for p in providers {
        assert!(gap[p] <= bound(), "{p} led by nobody for {:?}: {gap:?}", gap[p]);
        let by: Vec<&str> = replicas.iter().filter(|r| r.leads(p)).map(|r| r.holder.as_str()).collect();
        assert_eq!(by.len(), 1, "{p} led by {by:?}");
    }
    assert!(replicas[1].leads("p3"), "only b knows p3, so b leads it");

    // `b` dies (no more rounds, its leases expire): `a` takes p1 and p2
    // within the TTL and a round; p3 is known to no live replica.
    let leaders = |rs: &[Replica], p: &str| rs.iter().filter(|r| r.leads(p)).count();
    replicas[1].alive = false;
    let gap = run_rounds(&db.store, &mut replicas, &["p1", "p2"], TTL * 3).await;
    eprintln!("after a replica died, longest leaderless stretch: {gap:?} (bound {:?})", bound());
    for p in ["p1", "p2"] {
        assert!(gap[p] <= bound(), "{p} led by nobody for {:?} after b died", gap[p]);
        assert_eq!(leaders(&replicas, p), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_instance_counts_never_move_a_provider_between_replicas() {
    let Some(db) = TestDb::postgres().await else { return };
    let both = || cfg(raw(&["p1", "p2", "p3", "p4"], &[]));
    let mut replicas = vec![Replica::new("a", both()), Replica::new("b", both())];
    let providers = ["p1", "p2", "p3", "p4"];
    run_rounds(&db.store, &mut replicas, &providers, TTL * 2).await;
    let who = |rs: &[Replica]| -> BTreeMap<String, String> {
        providers
            .iter()
            .map(|p| (p.to_string(), rs.iter().find(|r| r.leads(p)).map_or("-".into(), |r| r.holder.clone())))
            .collect()
    };
    let before = who(&replicas);
    assert!(before.values().all(|r| r != "-"), "{before:?}");
    // Discovery finds 50 instances on whichever providers `a` leads: weighed
    // by counts, the plan would now move them.
    let now = Ts(1_800_000_000_000);
    for (p, r) in &before {
        if r == "a" {
            for i in 0..50 {
                let key = InstanceKey::new(p, format!("n{i}"));
                let row = NewInstance {
                    key: &key,
                    tenant: "t",
                    labels: &BTreeMap::new(),
                    source: "discovered",
                    provider_id: None,
                    tenant_source: "default",
                };
                db.store.ensure_instances(&[row], now, &[]).await.unwrap();
            }
        }
    }
    let gap = run_rounds(&db.store, &mut replicas, &providers, TTL * 2).await;
    assert_eq!(who(&replicas), before, "a provider moved while only the counts changed");
    assert!(gap.values().all(|g| *g < PERIOD), "a provider was left without a leader: {gap:?}");
}

fn supervisor(store: &Store, cfg: config::Config, clock: &Arc<AtomicI64>) -> Arc<Supervisor> {
    let c = clock.clone();
    Supervisor::new(Arc::new(cfg), store.clone(), None, Arc::new(move || Ts(c.load(Ordering::SeqCst)))).unwrap()
}

async fn present(store: &Store) -> Vec<String> {
    let mut v: Vec<String> = store
        .instances(&InstanceFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.present)
        .map(|r| format!("{}/{}", r.key.provider, r.key.name))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_config_replica_does_not_retire_what_a_newer_config_added() {
    let Some(db) = TestDb::postgres().await else { return };
    let clock = Arc::new(AtomicI64::new(1_800_000_000_000));
    // `new` has p1 with x1 and x2, and a new provider p3 with y; `old` has
    // p1 with x1 only.
    let new_cfg = || cfg(raw(&["p1", "p3"], &[("p1", "x1"), ("p1", "x2"), ("p3", "y")]));
    let old_cfg = || cfg(raw(&["p1"], &[("p1", "x1")]));
    let mut new = Replica::new("new", new_cfg());
    let mut old = Replica::new("old", old_cfg());
    new.round(&db.store).await;
    old.round(&db.store).await;
    supervisor(&db.store, new_cfg(), &clock).sync_inventory().await.unwrap();
    assert_eq!(present(&db.store).await, ["p1/x1", "p1/x2", "p3/y"]);

    let old_sup = supervisor(&db.store, old_cfg(), &clock);
    old_sup.sync_inventory().await.unwrap();
    assert_eq!(
        present(&db.store).await,
        ["p1/x1", "p1/x2", "p3/y"],
        "the old config retired what a live replica's newer config has"
    );

    // Once no live replica has them any more (the new one stopped), removal
    // from the configuration retires them as before.
    db.store.release_lease("replica:new", "new").await.unwrap();
    old.round(&db.store).await;
    clock.fetch_add(10 * 60_000, Ordering::SeqCst);
    old_sup.sync_inventory().await.unwrap();
    assert_eq!(present(&db.store).await, ["p1/x1"]);
}

#[tokio::test]
async fn on_sqlite_the_one_process_retires_what_its_config_removed() {
    let db = TestDb::sqlite().await;
    let clock = Arc::new(AtomicI64::new(1_800_000_000_000));
    supervisor(&db.store, cfg(raw(&["p1", "p3"], &[("p1", "x1"), ("p1", "x2"), ("p3", "y")])), &clock)
        .sync_inventory()
        .await
        .unwrap();
    supervisor(&db.store, cfg(raw(&["p1"], &[("p1", "x1")])), &clock).sync_inventory().await.unwrap();
    assert_eq!(present(&db.store).await, ["p1/x1"]);
}

#[tokio::test]
async fn on_sqlite_the_plan_table_migrates_and_one_round_leads_every_provider() {
    let db = TestDb::sqlite().await;
    let mut only = Replica::new("only", cfg(raw(&["p1", "p2"], &[])));
    assert_eq!(only.round(&db.store).await, ["p1", "p2"]);
    let plan = db.store.leadership_plan().await.unwrap().expect("a plan was written");
    assert_eq!(plan.version, 1);
    assert!(plan.leaders.values().all(|r| r == "only"));
    // Nothing changed: the next round writes no new version.
    only.round(&db.store).await;
    assert_eq!(db.store.leadership_plan().await.unwrap().unwrap().version, 1);
}
