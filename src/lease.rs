//! Who supervises (SPEC §8). Every replica serves webhooks and delivers the
//! outbox; exactly one — the holder of the `supervisor` lease on PostgreSQL —
//! polls, recovers and audits. The holder renews every third of the lease
//! period; if it dies, another replica takes over within one period. Recovery
//! state (`last_restart_attempt`) lives in the database, so a takeover never
//! repeats a recovery inside its cooldown.
//!
//! SQLite supports one process: an exclusive lock on `<database>.lock` makes a
//! second process on the same file refuse to start (the OS drops the lock when
//! a process dies, even by SIGKILL).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::Store;
use crate::supervisor::scheduler::Ticks;

pub const LEASE: &str = "supervisor";

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

/// Hold or chase the lease until `shutdown`; flips `ticks.leader`. `on_follow`
/// runs each round while another replica leads (to refresh local caches).
pub async fn run(
    store: Store,
    holder: String,
    ttl: Duration,
    ticks: Arc<Ticks>,
    shutdown: CancellationToken,
    on_follow: impl Fn() -> tokio::task::JoinHandle<()> + Send + 'static,
) {
    let every = ttl / 3;
    loop {
        let held = match store.try_lease(LEASE, &holder, ttl, crate::clock::now()).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the supervisor lease; standing down until it can");
                false
            }
        };
        let was = ticks.leader.swap(held, Ordering::SeqCst);
        match (was, held) {
            (false, true) => {
                tracing::info!(%holder, "took the supervisor lease: this replica polls, recovers and audits");
                crate::systemd::status("leader");
            }
            (true, false) => {
                tracing::warn!(%holder, "lost the supervisor lease: serving webhooks only");
                crate::systemd::status("follower");
            }
            _ => {}
        }
        if !held {
            let _ = on_follow().await;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    if ticks.leader.swap(false, Ordering::SeqCst) {
        let _ = store.release_lease(LEASE, &holder).await;
        tracing::info!("released the supervisor lease");
    }
}
