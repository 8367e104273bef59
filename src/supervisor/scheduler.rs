//! The cron scheduler (tokio-cron-scheduler) driving the poll cycle, the
//! webhook audit and retention. Cron-expression jobs only (`Job::new_async`):
//! `new_repeated_async` stops firing once its next tick drifts into the past
//! (upstream bug #113). The scheduler has no overlap protection, so each job
//! body holds a try-lock: a tick that finds the previous run still going is
//! skipped and counted (`wa_sentinel_ticks_skipped_total{job}`) — ticks never
//! overlap and never pile up. Schedules are UTC.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use tokio::sync::Mutex;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use super::Supervisor;

/// Retention runs once a day at 03:17 UTC.
const RETENTION_SCHEDULE: &str = "0 17 3 * * *";

/// A pipeline running longer than this is reported as stalled; when every
/// running pipeline is stalled and none finished for as long, the watchdog
/// stops. A slow provider alone never gets there: every call is bounded by
/// `request_timeout` and the breaker cuts a hanging provider short.
pub const STALL_MS: i64 = 30 * 60_000;

/// Shared with `/readyz`, `/metrics` and the systemd watchdog; survives
/// config reloads (one per process).
#[derive(Debug, Default)]
pub struct Ticks {
    /// When any job last fired (Unix ms), 0 before the first tick.
    pub last_tick: AtomicI64,
    /// This process leads every provider (SQLite: one process). Otherwise each
    /// provider's `leader` flag says (PostgreSQL: the replicas share them).
    pub lead_all: AtomicBool,
    /// This replica's `replica:<holder>` name, once its lease task started
    /// PostgreSQL: its own published view is not "another replica's".
    pub holder: std::sync::OnceLock<String>,
    /// One entry per provider, created on first use.
    providers: std::sync::Mutex<HashMap<String, Arc<ProviderProgress>>>,
}

/// One provider's poll pipeline, as readiness, metrics and the watchdog see it.
#[derive(Debug, Default)]
pub struct ProviderProgress {
    /// This replica holds the provider's lease: it polls, recovers and audits it.
    pub leader: AtomicBool,
    /// When this replica last took the provider's lease (Unix ms; 0: never,
    /// or it leads without a lease): its watch of the provider began then.
    pub led_since: AtomicI64,
    /// Held while the provider's pipeline runs: two pipelines of one provider
    /// never overlap, not even across a config reload's two generations.
    pub lock: Arc<Mutex<()>>,
    /// When the running pipeline started (Unix ms), 0 when none runs.
    pub started: AtomicI64,
    /// When the last pipeline finished (Unix ms), 0 before the first.
    pub finished: AtomicI64,
    /// The circuit breaker was open at the end of the last pipeline.
    pub breaker_open: AtomicBool,
    /// The last instance an open breaker's cycle called: the next half-open
    /// probes start after it, so they rotate over the provider's instances.
    pub probe_after: std::sync::Mutex<Option<String>>,
    /// The provider's state after its last pipeline, in operator words
    /// (`ok`, `unreachable`, `unauthorized`, …).
    pub state: std::sync::Mutex<String>,
}

impl ProviderProgress {
    pub fn state(&self) -> String {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_state(&self, s: impl Into<String>) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = s.into();
    }
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
            if !ticks.leads_any() {
                return;
            }
            guarded(name, &lock, run()).await;
        })
    })
}

impl Ticks {
    /// Does this process lead `provider` (poll, recover, audit, decide)?
    pub fn leads(&self, provider: &str) -> bool {
        self.lead_all.load(Ordering::Relaxed) || self.provider(provider).leader.load(Ordering::Relaxed)
    }

    /// Does this process lead any provider? (Jobs of a pure follower idle.)
    pub fn leads_any(&self) -> bool {
        self.lead_all.load(Ordering::Relaxed)
            || self.all_providers().iter().any(|(_, p)| p.leader.load(Ordering::Relaxed))
    }

    /// The progress entry of `provider`.
    pub fn provider(&self, provider: &str) -> Arc<ProviderProgress> {
        self.providers.lock().unwrap_or_else(|p| p.into_inner()).entry(provider.to_string()).or_default().clone()
    }

    /// Every provider seen so far, by name.
    pub fn all_providers(&self) -> Vec<(String, Arc<ProviderProgress>)> {
        let mut v: Vec<_> = self
            .providers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Providers whose running pipeline started more than `limit_ms` ago.
    pub fn stalled(&self, now_ms: i64, limit_ms: i64) -> Vec<String> {
        self.all_providers()
            .into_iter()
            .filter(|(_, p)| {
                let s = p.started.load(Ordering::Relaxed);
                s != 0 && now_ms - s > limit_ms
            })
            .map(|(n, _)| n)
            .collect()
    }

    /// Is the process wedged? Pipelines are running, every one of them for
    /// longer than `limit_ms`, and none finished within `limit_ms`. One slow or
    /// hanging provider next to a lively one never is (rule 15, docs/rules.md).
    pub fn wedged(&self, now_ms: i64, limit_ms: i64) -> bool {
        let all = self.all_providers();
        let running: Vec<_> = all.iter().filter(|(_, p)| p.started.load(Ordering::Relaxed) != 0).collect();
        !running.is_empty()
            && running.iter().all(|(_, p)| now_ms - p.started.load(Ordering::Relaxed) > limit_ms)
            && all.iter().all(|(_, p)| now_ms - p.finished.load(Ordering::Relaxed) > limit_ms)
    }
}

impl Scheduler {
    /// Register the jobs and start ticking.
    pub async fn start(sup: Arc<Supervisor>, ticks: Arc<Ticks>) -> Result<Scheduler, JobSchedulerError> {
        let sched = JobScheduler::new().await?;
        let cfg = sup.config().supervisor.clone();

        // The poll job only starts one pipeline per provider whose previous
        // pipeline has finished (per-provider locks in `Ticks`), and returns:
        // a slow provider never delays another, nor the next tick.
        let s = sup.clone();
        let poll = move || {
            let s = s.clone();
            async move { s.poll_tick() }
        };
        sched.add(job(&cfg.poll_schedule, "poll", ticks.clone(), Arc::default(), poll.clone())?).await?;
        // A first cycle right away: an operator who starts the daemon wants a
        // verdict now, not at the next tick.
        sup.poll_tick(); // only the providers this process leads

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
