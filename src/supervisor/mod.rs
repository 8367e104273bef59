//! The supervisor: the poll cycle, recovery actions, the webhook audit and
//! retention — rules 1–9 (docs/rules.md) at the edges, around the pure core.
//!
//! Every observation goes the same way: load the instance, `step` it, commit
//! the new state with its outage rows, events and outbox rows in one
//! transaction, and only then act (call the provider, wake the outbox worker).
//! `last_restart_attempt` is therefore committed before any recovery call, so
//! a crash can never cause a restart storm.
//!
//! Each job has its own file: [`observe`](self) (step, commit, act),
//! `cycle` (the poll cycle and provider verdicts), `recovery` (recovery calls
//! and manual restarts), [`requests`] (status-page actions for a provider's
//! leader), `audit` (the webhook audit), `discovery` (inventory
//! at the edge; the pure merge is [`inventory`]), `isolation`
//! (self-protection and the heartbeat), `retention`, and [`scheduler`].

mod audit;
mod cycle;
mod discovery;
pub mod episodes;
pub mod inventory;
mod isolation;
mod lifecycle;
mod observe;
pub mod pairing;
pub(crate) mod recovery;
mod remediation;
pub mod requests;
mod retention;
pub mod scheduler;
mod stream;
pub mod tenant_source;

pub use audit::AuditReport;
pub use cycle::CycleReport;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ProviderKind, Secret};
use crate::domain::provider::CycleSummary;
use crate::domain::{InstanceKey, Notice, Ts};
use crate::live::LiveIndex;
use crate::notify::route;
use crate::notify::worker::OutboxWorker;
use crate::providers::{InstanceRef, ProviderClient, ProviderError};
use crate::store::{OutboxEntry, Store, StoreError};
use crate::supervisor::scheduler::Ticks;

/// The clock, injectable for tests.
pub type Clock = Arc<dyn Fn() -> Ts + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("provider `{provider}`: {source}")]
    Provider { provider: String, source: ProviderError },
    #[error("{0}")]
    Refused(String),
    #[error("unknown instance {0}: see `wa-sentinel status`")]
    UnknownInstance(InstanceKey),
    #[error("unknown provider `{0}`: it is not in the configuration")]
    UnknownProvider(String),
}

struct ProviderHandle {
    client: ProviderClient,
    kind: ProviderKind,
    /// Status and audit calls in flight to this provider.
    calls: Semaphore,
    /// Recovery actions in flight to this provider.
    recoveries: Semaphore,
    /// The poll's metric handles.
    poll_metrics: PollMetrics,
}

/// The results `wa_sentinel_polls_total` counts, `ok` and every provider error kind.
const POLL_RESULTS: [&str; 6] = ["ok", "unreachable", "server_error", "unauthorized", "bad_response", "unlicensed"];

/// A provider's poll metric handles, each registered on its first use (a
/// series appears when it first counts, as before): `counter!` with labels
/// builds, hashes and looks up its key on every call.
#[derive(Default)]
struct PollMetrics {
    duration: std::sync::OnceLock<metrics::Histogram>,
    results: [std::sync::OnceLock<metrics::Counter>; POLL_RESULTS.len()],
}

impl PollMetrics {
    fn duration(&self) -> &metrics::Histogram {
        self.duration.get_or_init(|| metrics::histogram!("wa_sentinel_poll_duration_seconds"))
    }

    /// `wa_sentinel_polls_total{provider, result}`.
    fn result(&self, provider: &str, result: &'static str) -> &metrics::Counter {
        let i = POLL_RESULTS.iter().position(|r| *r == result).unwrap_or(0);
        self.results[i].get_or_init(|| {
            metrics::counter!("wa_sentinel_polls_total", "provider" => provider.to_string(), "result" => POLL_RESULTS[i])
        })
    }
}

/// Shared by the scheduler jobs, the receiver and the CLI.
pub struct Supervisor {
    cfg: Arc<Config>,
    store: Store,
    providers: HashMap<String, Arc<ProviderHandle>>,
    global: Semaphore,
    /// W-API instance tokens: from the config, refreshed by discovery.
    tokens: Mutex<HashMap<InstanceKey, Secret>>,
    outbox: Option<OutboxWorker>,
    clock: Clock,
    tasks: TaskTracker,
    /// The receiver's in-memory index, kept in step with every commit.
    index: Arc<LiveIndex>,
    /// The current self-isolation episode, if any.
    isolation: Mutex<Option<String>>,
    /// For the heartbeat.
    http: reqwest::Client,
    /// The process's tick state (attached by the daemon); absent for one-shot
    /// CLI commands and tests, which count as the leader and use `own_ticks`.
    ticks: std::sync::OnceLock<Arc<Ticks>>,
    own_ticks: Arc<Ticks>,
    /// Provider pipelines started by scheduler ticks (waited for on shutdown).
    pipelines: TaskTracker,
    /// Each provider's last cycle summary, for the self-isolation check.
    summaries: Mutex<HashMap<String, CycleSummary>>,
    /// Per provider, the fingerprint of the discovery listing last merged into
    /// the store (`None`: merged without a listing), and of the tenant inputs.
    synced: Mutex<HashMap<String, (Option<u64>, u64)>>,
    /// The application database's tenant mapping (`[tenants]`), as last read,
    /// and a number bumped whenever it changes.
    sql_tenants: arc_swap::ArcSwap<crate::domain::tenancy::SqlMapping>,
    sql_generation: std::sync::atomic::AtomicU64,
    /// Woken by every commit that appends to the event stream (long polls).
    stream_notify: tokio::sync::Notify,
    /// Providers with an instance that became missing or came back since the
    /// last merge (a missing, unlisted instance is retired by the next one).
    missing_moved: Mutex<std::collections::HashSet<String>>,
    /// Providers whose discovery is failing (logged once per episode).
    discovery_failing: Mutex<episodes::Episodes>,
    /// When to look for instances of providers no longer configured (Unix
    /// ms): 0 at first, never again once none is left, a minute later while
    /// another live replica still configures one (see `retire_orphans`).
    orphans_next: std::sync::atomic::AtomicI64,
    /// When the heartbeat URL was last pinged (Unix ms).
    last_heartbeat: std::sync::atomic::AtomicI64,
    /// Instances whose W-API token comes from the config (discovery may not replace it).
    configured_tokens: std::collections::HashSet<InstanceKey>,
    /// When this supervisor started watching: a provider silence is never
    /// measured from earlier.
    started_at: Ts,
    /// Providers whose instances' own silence is not judged now: the whole
    /// provider is silent (or as quiet as a zombie would be), so a zombie
    /// restart would hit every session for a server-side fault.
    silence_held: Mutex<std::collections::HashSet<String>>,
    /// Per provider, since when it has been watched without a gap (computed
    /// at the start of each of its cycles; see [`crate::domain::watch`]).
    watched_since: Mutex<HashMap<String, Ts>>,
    /// Providers whose remediation command is running now (one at a time).
    remediating: Mutex<std::collections::HashSet<String>>,
    /// When each provider's version was last asked (see `version_probe_due`).
    version_probes: Mutex<HashMap<String, Ts>>,
    /// When this process's last isolation episode ended (Unix ms, 0: none).
    isolation_ended: std::sync::atomic::AtomicI64,
    /// `cfg.policy` without instance staleness, for the held providers.
    policy_held: crate::domain::Policy,
    /// Test hook (`WA_SENTINEL_TEST_REMEDIATION_DELAY_MS`): wait this long
    /// between committing a remediation attempt and running it, so a test can
    /// kill the process in that window. Zero in production.
    remediation_delay: Duration,
}

impl Supervisor {
    pub fn new(
        cfg: Arc<Config>,
        store: Store,
        outbox: Option<OutboxWorker>,
        clock: Clock,
    ) -> Result<Arc<Self>, SupervisorError> {
        crate::tls::install_crypto();
        let mut providers = HashMap::new();
        for p in &cfg.providers {
            let client = ProviderClient::new(p, cfg.supervisor.request_timeout)
                .map_err(|source| SupervisorError::Provider { provider: p.name.clone(), source })?;
            providers.insert(
                p.name.clone(),
                Arc::new(ProviderHandle {
                    client,
                    kind: p.kind,
                    calls: Semaphore::new(cfg.supervisor.per_provider_concurrency),
                    recoveries: Semaphore::new(cfg.supervisor.recovery_concurrency),
                    poll_metrics: PollMetrics::default(),
                }),
            );
        }
        let tokens: HashMap<InstanceKey, Secret> = cfg
            .instances
            .iter()
            .filter_map(|i| i.token.clone().map(|t| (InstanceKey::new(&i.provider, &i.name), t)))
            .collect();
        let configured_tokens = tokens.keys().cloned().collect();
        let started_at = clock();
        let policy_held = crate::domain::Policy { stale_webhook_after: Duration::ZERO, ..cfg.policy.clone() };
        let remediation_delay = std::env::var("WA_SENTINEL_TEST_REMEDIATION_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::ZERO, Duration::from_millis);
        Ok(Arc::new(Supervisor {
            started_at,
            silence_held: Mutex::new(Default::default()),
            watched_since: Mutex::new(HashMap::new()),
            version_probes: Mutex::new(HashMap::new()),
            remediating: Mutex::new(Default::default()),
            isolation_ended: Default::default(),
            policy_held,
            remediation_delay,
            global: Semaphore::new(cfg.supervisor.concurrency),
            cfg,
            store,
            providers,
            tokens: Mutex::new(tokens),
            outbox,
            clock,
            tasks: TaskTracker::new(),
            index: Arc::new(LiveIndex::default()),
            isolation: Mutex::new(None),
            ticks: std::sync::OnceLock::new(),
            own_ticks: Arc::default(),
            pipelines: TaskTracker::new(),
            summaries: Mutex::new(HashMap::new()),
            synced: Mutex::new(HashMap::new()),
            sql_tenants: arc_swap::ArcSwap::from_pointee(Default::default()),
            sql_generation: Default::default(),
            stream_notify: tokio::sync::Notify::new(),
            missing_moved: Mutex::new(Default::default()),
            discovery_failing: Mutex::new(Default::default()),
            orphans_next: Default::default(),
            last_heartbeat: Default::default(),
            configured_tokens,
            http: reqwest::Client::builder()
                .tls_backend_preconfigured(crate::tls::client_config().map_err(SupervisorError::Refused)?)
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| SupervisorError::Refused(format!("cannot build the HTTP client: {e}")))?,
        }))
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Attach the daemon's tick state (leadership, per-provider progress).
    pub fn attach_ticks(&self, ticks: Arc<Ticks>) {
        let _ = self.ticks.set(ticks);
    }

    /// The process's tick state, or this supervisor's own when none is attached.
    pub fn ticks(&self) -> &Arc<Ticks> {
        self.ticks.get().unwrap_or(&self.own_ticks)
    }

    /// Does this process lead `provider`? Followers record what they see and
    /// leave recovery actions, audits and verdicts to its leader (docs/operations.md#several-replicas-postgresql).
    pub fn leads(&self, provider: &str) -> bool {
        self.ticks.get().is_none_or(|t| t.leads(provider))
    }

    pub fn index(&self) -> &Arc<LiveIndex> {
        &self.index
    }

    pub fn now(&self) -> Ts {
        (self.clock)()
    }

    /// The policy `step` uses for an instance of `provider`: without instance
    /// staleness while the provider's silence is held.
    pub(super) fn policy_for(&self, provider: &str) -> &crate::domain::Policy {
        if self.silence_held.lock().expect("silence lock").contains(provider) {
            &self.policy_held
        } else {
            &self.cfg.policy
        }
    }

    /// Since when `provider` has been watched without a gap, as its last cycle
    /// found; before its first cycle, since this process (or its lease) began.
    pub fn watching_since(&self, provider: &str) -> Ts {
        if let Some(t) = self.watched_since.lock().expect("watch lock").get(provider) {
            return *t;
        }
        self.watch(provider, None).since()
    }

    /// The watch of `provider`, with the end of its last outage if known.
    pub(super) fn watch(&self, provider: &str, outage_ended: Option<Ts>) -> crate::domain::watch::Watch {
        let led =
            self.ticks.get().map_or(0, |t| t.provider(provider).led_since.load(std::sync::atomic::Ordering::SeqCst));
        let iso = self.isolation_ended.load(std::sync::atomic::Ordering::SeqCst);
        crate::domain::watch::Watch {
            started: self.started_at,
            lease_taken: (led > 0).then_some(Ts(led)),
            outage_ended: outage_ended.max((iso > 0).then_some(Ts(iso))),
        }
    }

    /// Wait until every recovery action and verification poll started so far has finished.
    pub async fn wait_idle(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        self.tasks.reopen();
    }

    pub(super) fn instance_ref(&self, key: &InstanceKey) -> InstanceRef {
        let token = self.tokens.lock().expect("tokens lock").get(key).cloned();
        InstanceRef { name: key.name.clone(), token }
    }

    pub(super) fn wake_outbox(&self) {
        if let Some(w) = &self.outbox {
            w.wake();
        }
    }

    /// Notices → outbox rows. Opt-in kinds (`webhook_repaired`,
    /// `provider_version_changed`) are off by default: each goes only to
    /// notifiers that name it in `kinds`.
    pub(super) fn route(&self, notices: &[&Notice]) -> Vec<OutboxEntry> {
        let (opt_in, rest): (Vec<&Notice>, Vec<&Notice>) = notices.iter().partition(|n| n.kind.opt_in());
        let mut out = route(&self.cfg.notifiers, rest);
        for n in opt_in {
            let explicit: Vec<_> = self
                .cfg
                .notifiers
                .iter()
                .filter(|t| t.kinds.as_ref().is_some_and(|k| k.contains(&n.kind)))
                .cloned()
                .collect();
            out.extend(route(&explicit, [n]));
        }
        out
    }

    /// Deadline helper for shutdown: wait for running pipelines and in-flight
    /// actions at most `grace`.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.pipelines.close();
        self.tasks.close();
        tokio::time::timeout(grace, async {
            self.pipelines.wait().await;
            self.tasks.wait().await;
        })
        .await
        .is_ok()
    }

    /// W-API or Evolution, for the receiver.
    pub fn provider_kind(&self, name: &str) -> Option<ProviderKind> {
        self.providers.get(name).map(|h| h.kind)
    }
}
