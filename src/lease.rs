//! Who supervises what (SPEC §8). Every replica serves webhooks and delivers
//! the outbox. On PostgreSQL the replicas *share* the providers: each one
//! heartbeats a `replica:<holder>` lease, and every round each computes the
//! same plan ([`crate::domain::assignment`]) from the live replicas and each
//! provider's instance count, then holds the `provider:<name>` leases the plan
//! gives it. A provider's leader polls it, recovers its instances, audits
//! their webhooks and decides its verdicts; the others leave it alone. The
//! lease makes sure a provider never has two leaders while the plan changes
//! hands: a replica gives a provider up only between two of its cycles, and
//! the new leader takes it at its next round. A killed replica's heartbeat
//! and leases expire after one period; the plan then moves its providers.
//! Recovery state (`last_restart_attempt`) lives in the database, so a
//! takeover never repeats a recovery inside its cooldown.
//!
//! SQLite supports one process: an exclusive lock on `<database>.lock` makes a
//! second process on the same file refuse to start (the OS drops the lock when
//! a process dies, even by SIGKILL), and that process leads every provider.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::Store;
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

/// Share the providers with the other replicas until `shutdown`; flips each
/// provider's `leader` flag in `ticks`. `providers` gives the configured
/// provider names (a reload may change them); `on_follow` runs each round
/// with the providers another replica leads (to refresh their part of the
/// receiver's index).
pub async fn run(
    store: Store,
    holder: String,
    ttl: Duration,
    ticks: Arc<Ticks>,
    providers: impl Fn() -> Vec<String> + Send + 'static,
    shutdown: CancellationToken,
    on_follow: impl Fn(Vec<String>) -> tokio::task::JoinHandle<()> + Send + 'static,
) {
    let every = ttl / 3;
    let mut led_before: Option<Vec<String>> = None;
    loop {
        let names = providers();
        let led = match round(&store, &holder, ttl, &ticks, &names).await {
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
        if led_before.as_ref() != Some(&led) {
            tracing::info!(%holder, led = ?led, of = names.len(), "provider leadership changed");
            crate::systemd::status(&format!("leading {} of {} providers", led.len(), names.len()));
            led_before = Some(led.clone());
        }
        let followed: Vec<String> = names.iter().filter(|n| !led.contains(n)).cloned().collect();
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

/// One round: heartbeat, plan, then take, keep or hand over each provider's
/// lease. Returns the providers this replica leads now.
async fn round(
    store: &Store,
    holder: &str,
    ttl: Duration,
    ticks: &Ticks,
    names: &[String],
) -> Result<Vec<String>, crate::store::StoreError> {
    let now = crate::clock::now();
    store.try_lease(&replica_lease(holder), holder, ttl, now).await?;
    let replicas: Vec<String> = store
        .live_lease_holders("replica:", now)
        .await?
        .into_iter()
        .chain(std::iter::once(holder.to_string()))
        .collect();
    let counts = store.instance_counts().await?;
    let sized: Vec<(String, u64)> = names
        .iter()
        .map(|n| (n.clone(), counts.iter().find(|(p, _)| p == n).map_or(0, |c| c.1.max(0) as u64)))
        .collect();
    let plan = crate::domain::assignment::assign(&replicas, &sized);
    let mut led = Vec::new();
    for name in names {
        let p = ticks.provider(name);
        let mine = plan.get(name).is_some_and(|r| r == holder);
        let busy = p.started.load(Ordering::SeqCst) != 0;
        let lease = provider_lease(name);
        if mine {
            let held = store.try_lease(&lease, holder, ttl, now).await?;
            if held && !p.leader.swap(true, Ordering::SeqCst) {
                // Taken just now: what happened before was watched by another
                // replica (or nobody); silences are measured from here.
                p.led_since.store(now.0, Ordering::SeqCst);
            }
            p.leader.store(held, Ordering::SeqCst);
            if held {
                led.push(name.clone());
            }
        } else {
            // The plan gave it to another replica: start nothing new for it at
            // once, keep the lease only until a running cycle ends, then hand
            // it over (never two leaders at a time).
            p.leader.store(false, Ordering::SeqCst);
            if busy {
                store.renew_lease(&lease, holder, ttl, now).await?;
            } else {
                store.release_lease(&lease, holder).await?;
            }
        }
    }
    Ok(led)
}
