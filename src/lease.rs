//! Who supervises what (docs/operations.md "Several replicas"). Every
//! replica serves webhooks and delivers the outbox. On PostgreSQL the
//! replicas *share* the providers through one plan stored in the database
//! (`leadership_plan`, one version for all): every round each replica
//! publishes what it configures (`replica_views`), heartbeats a
//! `replica:<holder>` lease, reads the shared snapshot, writes a new plan
//! version only when the membership or a provider's place must change
//! (compare-and-set), and takes, keeps or hands over the `provider:<name>`
//! leases as [`crate::domain::leadership`] decides. A provider's leader polls
//! it, recovers its instances, audits their webhooks and decides its
//! verdicts; the others leave it alone. The lease makes sure a provider never
//! has two leaders while the plan changes hands: a replica gives a provider
//! up only between two of its cycles, and the new leader takes it at its
//! next round. A killed replica's heartbeat and leases expire after one TTL;
//! the plan then moves its providers. The safety net: a provider without a
//! live lease for a whole TTL is taken by any live replica that configures
//! it. Recovery state (`last_restart_attempt`) lives in the database, so a
//! takeover never repeats a recovery inside its cooldown.
//!
//! SQLite supports one process: an exclusive lock on `<database>.lock` makes a
//! second process on the same file refuse to start (the OS drops the lock when
//! a process dies, even by SIGKILL), and that process leads every provider.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::domain::InstanceKey;
pub use crate::domain::leadership::Memory;
use crate::domain::leadership::{self, LeaseAction, Views};
use crate::store::{Store, StoreError};
use crate::supervisor::scheduler::Ticks;

/// The heartbeat lease of one replica.
fn replica_lease(holder: &str) -> String {
    format!("replica:{holder}")
}

/// The leadership lease of one provider.
fn provider_lease(provider: &str) -> String {
    format!("provider:{provider}")
}

/// Take the SQLite single-process lock, or explain who holds it.
pub fn lock_sqlite(db: &Path) -> Result<File, String> {
    let path = db.with_extension(match db.extension() {
        Some(e) => format!("{}.lock", e.to_string_lossy()),
        None => "lock".into(),
    });
    let f = File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "another wa-sentinel process is already running on the SQLite database {} (lock {} is held). \
             SQLite supports one process; to run several replicas use PostgreSQL (database.url = \"postgres://…\")",
            db.display(),
            path.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

/// What this replica configures: the providers it can lead and the
/// `[[instances]]` it keeps, published at every round (`replica_views`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    pub providers: BTreeSet<String>,
    pub instances: BTreeSet<InstanceKey>,
}

impl Local {
    pub fn of(cfg: &Config) -> Local {
        Local {
            providers: cfg.providers.iter().map(|p| p.name.clone()).collect(),
            instances: cfg.instances.iter().map(|i| InstanceKey::new(&i.provider, &i.name)).collect(),
        }
    }
}

/// Share the providers with the other replicas until `shutdown`; flips each
/// provider's `leader` flag in `ticks`. `local` gives what this replica
/// configures (a reload may change it); `on_follow` runs each round with the
/// configured providers another replica leads (to refresh their part of the
/// receiver's index).
pub async fn run(
    store: Store,
    holder: String,
    ttl: Duration,
    ticks: Arc<Ticks>,
    local: impl Fn() -> Local + Send + 'static,
    shutdown: CancellationToken,
    on_follow: impl Fn(Vec<String>) -> tokio::task::JoinHandle<()> + Send + 'static,
) {
    let every = ttl / 3;
    let mut led_before: Option<Vec<String>> = None;
    let mut memory = Memory::default();
    loop {
        let mine = local();
        let led = match round(&store, &holder, ttl, &ticks, &mine, &mut memory).await {
            Ok(led) => led,
            Err(e) => {
                // Without the database nobody can prove a lease: stand down.
                tracing::warn!(error = %e, "cannot renew the provider leases; standing down until it can");
                for (_, p) in ticks.all_providers() {
                    p.leader.store(false, Ordering::SeqCst);
                }
                Vec::new()
            }
        };
        let of = mine.providers.len();
        if led_before.as_ref() != Some(&led) {
            tracing::info!(%holder, led = ?led, of, "provider leadership changed");
            crate::systemd::status(&format!("leading {} of {of} providers", led.len()));
            led_before = Some(led.clone());
        }
        let followed: Vec<String> = mine.providers.iter().filter(|n| !led.contains(n)).cloned().collect();
        if !followed.is_empty() {
            let _ = on_follow(followed).await;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    for (name, p) in ticks.all_providers() {
        if p.leader.swap(false, Ordering::SeqCst) {
            let _ = store.release_lease(&provider_lease(&name), &holder).await;
        }
    }
    let _ = store.release_lease(&replica_lease(&holder), &holder).await;
    tracing::info!("released the provider leases");
}

/// One round: publish this replica's view and heartbeat, read the shared
/// snapshot (live replicas and their views, the plan, the provider leases),
/// write a new plan version when [`leadership::next_plan`] says so
/// (compare-and-set: a replica that loses follows the winner's), then take,
/// keep, hand over or rescue each provider's lease as
/// [`leadership::lease_actions`] decides. Returns the providers this replica
/// leads now.
pub async fn round(
    store: &Store,
    holder: &str,
    ttl: Duration,
    ticks: &Ticks,
    local: &Local,
    memory: &mut Memory,
) -> Result<Vec<String>, StoreError> {
    let now = crate::clock::now();
    store.publish_view(holder, &local.providers, &local.instances, now).await?;
    // The heartbeat is taken here only when it is not live (this replica's
    // first round, or after a stall), so the plan counts a joining replica
    // at once; it is extended only at the end of the round, after the
    // provider leases: a replica that dies mid-round leaves no heartbeat
    // that outlives its leases.
    let heartbeat = replica_lease(holder);
    store.start_lease(&heartbeat, holder, ttl, now).await?;
    let mut live: Views = store.live_views(now).await?.into_iter().map(|v| (v.holder, v.providers)).collect();
    live.insert(holder.to_string(), local.providers.clone());
    let counts: BTreeMap<String, u64> =
        store.instance_counts().await?.into_iter().map(|(p, n)| (p, n.max(0) as u64)).collect();
    let current = store.leadership_plan().await?;
    let plan = match leadership::next_plan(current.as_ref(), &live, &counts) {
        Some(next) => {
            if store.write_plan(current.as_ref().map(|p| p.version), &next, holder, now).await? {
                tracing::info!(version = next.version, replicas = ?next.members, leaders = ?next.leaders, "wrote a new leadership plan");
                Some(next)
            } else {
                // Another replica wrote first: follow its version.
                store.leadership_plan().await?
            }
        }
        None => current,
    };
    let plan = plan.ok_or_else(|| StoreError::Corrupt("the leadership plan is missing after a write".into()))?;
    let leases: BTreeMap<String, String> = store
        .live_leases("provider:", now)
        .await?
        .into_iter()
        .filter_map(|(name, h)| name.strip_prefix("provider:").map(|p| (p.to_string(), h)))
        .collect();
    let busy: BTreeSet<String> = ticks
        .all_providers()
        .into_iter()
        .filter(|(_, p)| p.started.load(Ordering::SeqCst) != 0)
        .map(|(n, _)| n)
        .collect();
    let ttl_ms = crate::domain::time::duration_ms(ttl);
    let view = leadership::Round {
        me: holder,
        known: &local.providers,
        plan: &plan,
        leases: &leases,
        busy: &busy,
        now_ms: now.0,
        ttl_ms,
    };
    let actions = leadership::lease_actions(&view, memory);
    let mut led = Vec::new();
    for (name, action) in actions {
        let p = ticks.provider(&name);
        let lease = provider_lease(&name);
        match action {
            LeaseAction::Take | LeaseAction::Rescue => {
                let held = store.try_lease(&lease, holder, ttl, now).await?;
                if !held {
                    p.leader.store(false, Ordering::SeqCst);
                    continue;
                }
                if action == LeaseAction::Rescue {
                    memory.rescued(&name, plan.version, now.0);
                    tracing::warn!(provider = %name, plan = plan.version, "took over a provider that had no leader for a whole lease period; keeping it until the plan changes or for a lease period");
                }
                if !p.leader.swap(true, Ordering::SeqCst) {
                    // Taken just now: what happened before was watched by
                    // another replica (or nobody); silences are measured from here.
                    p.led_since.store(now.0, Ordering::SeqCst);
                }
                led.push(name);
            }
            // Another replica should lead it: start nothing new for it at
            // once, keep the lease only until a running cycle ends, then hand
            // it over (never two leaders at a time).
            LeaseAction::Renew => {
                p.leader.store(false, Ordering::SeqCst);
                store.renew_lease(&lease, holder, ttl, now).await?;
            }
            LeaseAction::Release => {
                p.leader.store(false, Ordering::SeqCst);
                store.release_lease(&lease, holder).await?;
            }
        }
    }
    for (name, p) in ticks.all_providers() {
        if !led.contains(&name) {
            p.leader.store(false, Ordering::SeqCst);
        }
    }
    // Renewed last, so a replica's heartbeat never outlives its provider
    // leases by more than a round's own duration: whoever sees it gone can
    // take its providers at once.
    store.renew_lease(&heartbeat, holder, ttl, now).await?;
    Ok(led)
}
