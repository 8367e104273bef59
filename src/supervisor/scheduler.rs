//! The cron scheduler (tokio-cron-scheduler) driving the poll cycle, the
//! webhook audit and retention. Cron-expression jobs only (`Job::new_async`):
//! `new_repeated_async` stops firing once its next tick drifts into the past
//! (upstream bug #113). The scheduler has no overlap protection, so each job
//! body holds a try-lock: a tick that finds the previous run still going is
//! skipped and counted (`wa_sentinel_ticks_skipped_total{job}`) — ticks never
//! overlap and never pile up. Schedules are UTC.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use tokio::sync::Mutex;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use super::Supervisor;

/// Retention runs once a day at 03:17 UTC.
const RETENTION_SCHEDULE: &str = "0 17 3 * * *";

/// Shared with `/readyz` and the systemd watchdog.
#[derive(Debug, Default)]
pub struct Ticks {
    /// When any job last fired (Unix ms), 0 before the first tick.
    pub last_tick: AtomicI64,
    /// When the last poll cycle finished (Unix ms).
    pub last_cycle: AtomicI64,
    /// Only the leader polls, recovers and audits (SPEC §8); followers tick idle.
    pub leader: AtomicBool,
    /// When the running poll cycle started (Unix ms), 0 when none runs: a cycle
    /// that never ends stops the watchdog and readiness.
    pub cycle_started: AtomicI64,
    /// One poll lock for the process: cycles never overlap, not even across a
    /// config reload's two generations.
    pub poll_lock: Arc<Mutex<()>>,
}

pub struct Scheduler {
    sched: JobScheduler,
    pub ticks: Arc<Ticks>,
}

/// Run `body` unless the previous run of `job` is still going.
async fn guarded<F: Future<Output = ()>>(job: &'static str, lock: &Mutex<()>, body: F) {
    match lock.try_lock() {
        Ok(_held) => body.await,
        Err(_) => crate::events::tick_skipped(job),
    }
}

fn job<F, Fut>(
    schedule: &str,
    name: &'static str,
    ticks: Arc<Ticks>,
    lock: Arc<Mutex<()>>,
    run: F,
) -> Result<Job, JobSchedulerError>
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Job::new_async(schedule, move |_id, _l| {
        let (lock, ticks, run) = (lock.clone(), ticks.clone(), run.clone());
        Box::pin(async move {
            ticks.last_tick.store(crate::clock::now().0, Ordering::Relaxed);
            if !ticks.leader.load(Ordering::Relaxed) {
                return;
            }
            guarded(name, &lock, run()).await;
        })
    })
}

impl Ticks {
    /// Is a poll cycle running for longer than `limit_ms`? (A hung cycle keeps
    /// its lock, every later tick is skipped, and nothing is polled.)
    pub fn cycle_stuck(&self, now_ms: i64, limit_ms: i64) -> bool {
        let started = self.cycle_started.load(Ordering::Relaxed);
        started != 0 && now_ms - started > limit_ms
    }
}

impl Scheduler {
    /// Register the jobs and start ticking.
    pub async fn start(sup: Arc<Supervisor>, ticks: Arc<Ticks>) -> Result<Scheduler, JobSchedulerError> {
        let sched = JobScheduler::new().await?;
        let cfg = sup.config().supervisor.clone();

        let s = sup.clone();
        let t = ticks.clone();
        let poll = move || {
            let (s, t) = (s.clone(), t.clone());
            async move {
                t.cycle_started.store(crate::clock::now().0, Ordering::Relaxed);
                if let Err(e) = s.poll_cycle().await {
                    tracing::error!(error = %e, "poll cycle failed");
                }
                t.cycle_started.store(0, Ordering::Relaxed);
                t.last_cycle.store(crate::clock::now().0, Ordering::Relaxed);
            }
        };
        let poll_lock = ticks.poll_lock.clone();
        sched.add(job(&cfg.poll_schedule, "poll", ticks.clone(), poll_lock.clone(), poll.clone())?).await?;
        // A first cycle right away, under the same lock: an operator who starts
        // the daemon wants a verdict now, not at the next tick.
        if ticks.leader.load(Ordering::Relaxed) {
            tokio::spawn(async move { guarded("poll", &poll_lock, poll()).await });
        }

        let s = sup.clone();
        sched
            .add(job(&cfg.webhook_audit_schedule, "webhook_audit", ticks.clone(), Arc::default(), move || {
                let s = s.clone();
                async move {
                    if let Err(e) = s.webhook_audit().await {
                        tracing::error!(error = %e, "webhook audit failed");
                    }
                }
            })?)
            .await?;

        let s = sup.clone();
        sched
            .add(job(RETENTION_SCHEDULE, "retention", ticks.clone(), Arc::default(), move || {
                let s = s.clone();
                async move {
                    match s.prune().await {
                        Ok((e, o)) => tracing::info!(events = e, outages = o, "retention: old rows deleted"),
                        Err(e) => tracing::error!(error = %e, "retention failed"),
                    }
                }
            })?)
            .await?;

        sched.start().await?;
        Ok(Scheduler { sched, ticks })
    }

    pub async fn shutdown(mut self) {
        if let Err(e) = self.sched.shutdown().await {
            tracing::warn!(error = %e, "scheduler shutdown");
        }
    }
}
