//! The supervisor: the poll cycle, recovery actions, the webhook audit and
//! retention — SPEC §5 rules 1–9 at the edges, around the pure core.
//!
//! Every observation goes the same way: load the instance, `step` it, commit
//! the new state with its outage rows, events and outbox rows in one
//! transaction, and only then act (call the provider, wake the outbox worker).
//! `last_restart_attempt` is therefore committed before any recovery call, so
//! a crash can never cause a restart storm.

pub mod inventory;
pub mod scheduler;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::{Config, ProviderKind, Secret};
use crate::domain::health::{Action, Change, Ctx, Observation};
use crate::domain::provider::{CycleSummary, provider_step};
use crate::domain::{Health, InstanceKey, Notice, NoticeKind, ProviderErrorKind, RecoveryKind, StepOutput, Ts, step};
use crate::live::LiveIndex;
use crate::notify::route;
use crate::notify::worker::OutboxWorker;
use crate::providers::{InstanceRef, Provider, ProviderClient, ProviderError, WebhookRepair};
use crate::store::{InstanceFilter, InstanceRecord, OutboxEntry, Store, StoreError};

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
}

/// What one poll cycle did, for logs, metrics and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CycleReport {
    pub polled: u32,
    pub provider_errors: u32,
    pub committed: u32,
    pub unchanged: u32,
    pub recoveries: u32,
    pub notices: u32,
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
    /// The process's tick state; absent for one-shot CLI commands and tests,
    /// which count as the leader.
    ticks: std::sync::OnceLock<Arc<crate::supervisor::scheduler::Ticks>>,
    /// Instances whose W-API token comes from the config (discovery may not replace it).
    configured_tokens: std::collections::HashSet<InstanceKey>,
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
                }),
            );
        }
        let tokens: HashMap<InstanceKey, Secret> = cfg
            .instances
            .iter()
            .filter_map(|i| i.token.clone().map(|t| (InstanceKey::new(&i.provider, &i.name), t)))
            .collect();
        let configured_tokens = tokens.keys().cloned().collect();
        Ok(Arc::new(Supervisor {
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
            configured_tokens,
            http: reqwest::Client::builder()
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

    /// Attach the daemon's tick state (leadership, cycle tracking).
    pub fn attach_ticks(&self, ticks: Arc<crate::supervisor::scheduler::Ticks>) {
        let _ = self.ticks.set(ticks);
    }

    /// Does this process supervise? Followers record what they see and leave
    /// recovery actions to the leader (SPEC §8).
    pub fn is_leader(&self) -> bool {
        self.ticks.get().is_none_or(|t| t.leader.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub fn index(&self) -> &Arc<LiveIndex> {
        &self.index
    }

    pub fn now(&self) -> Ts {
        (self.clock)()
    }

    /// Wait until every recovery action and verification poll started so far has finished.
    pub async fn wait_idle(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        self.tasks.reopen();
    }

    fn instance_ref(&self, key: &InstanceKey) -> InstanceRef {
        let token = self.tokens.lock().expect("tokens lock").get(key).cloned();
        InstanceRef { name: key.name.clone(), token }
    }

    fn wake_outbox(&self) {
        if let Some(w) = &self.outbox {
            w.wake();
        }
    }

    /// Notices → outbox rows. `webhook_repaired` is off by default: it goes only
    /// to notifiers that name it in `kinds`.
    fn route(&self, notices: &[&Notice]) -> Vec<OutboxEntry> {
        let explicit: Vec<_> = self
            .cfg
            .notifiers
            .iter()
            .filter(|n| n.kinds.as_ref().is_some_and(|k| k.contains(&NoticeKind::WebhookRepaired)))
            .cloned()
            .collect();
        let (repairs, rest): (Vec<&Notice>, Vec<&Notice>) =
            notices.iter().partition(|n| n.kind == NoticeKind::WebhookRepaired);
        let mut out = route(&self.cfg.notifiers, rest);
        out.extend(route(&explicit, repairs));
        out
    }

    // ------------------------------------------------------------ observations

    /// Step one instance with one observation, commit, then act. `rec` is a
    /// fresh read when the caller has one; on a concurrent change the instance
    /// is reloaded and stepped again. Returns the committed step.
    pub async fn observe(
        self: &Arc<Self>,
        key: &InstanceKey,
        obs: Observation,
        rec: Option<InstanceRecord>,
    ) -> Result<Option<StepOutput>, SupervisorError> {
        self.observe_with(key, obs, rec, true, None).await
    }

    /// [`Supervisor::observe`]; with `spawn_recoveries = false` the caller runs
    /// the recovery actions itself (a manual restart reports their outcome).
    /// `observed_at` is when a poll's call started: if a concurrent writer
    /// changed the instance after that, the poll's answer is older than what
    /// is stored and is dropped rather than replayed over it.
    async fn observe_with(
        self: &Arc<Self>,
        key: &InstanceKey,
        obs: Observation,
        rec: Option<InstanceRecord>,
        spawn_recoveries: bool,
        observed_at: Option<Ts>,
    ) -> Result<Option<StepOutput>, SupervisorError> {
        let mut rec = rec;
        for attempt in 0..8 {
            let r = match rec.take() {
                Some(r) => r,
                None => self.store.instance(key).await?.ok_or_else(|| SupervisorError::UnknownInstance(key.clone()))?,
            };
            if attempt > 0
                && let Some(t) = observed_at
                && (r.state.health_since > t || r.state.last_webhook_at.is_some_and(|w| w > t))
            {
                self.index.set_health(key, r.state.health, r.version);
                return Ok(None);
            }
            let now = self.now();
            let id = uuid::Uuid::now_v7().to_string();
            let ctx = Ctx { now, key, tenant: &r.tenant, new_id: &id, may_recover: self.is_leader() };
            let out = step(&r.state, obs.clone(), &ctx, &self.cfg.policy);
            if out.state == r.state && out.actions.is_empty() && out.changes.is_empty() {
                self.index.set_health(key, r.state.health, r.version); // a stale cache heals here
                return Ok(None); // nothing to write: healthy instances cost no write
            }
            let notices: Vec<&Notice> = out.notices().collect();
            let outbox = self.route(&notices);
            match self.store.commit_step(&r, &out, &outbox, now).await {
                Ok(_) => {
                    self.after_commit(&r, &out, spawn_recoveries);
                    return Ok(Some(out));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(SupervisorError::Refused(format!(
            "{key}: the instance kept changing concurrently; giving up this observation"
        )))
    }

    /// After the commit: log what happened, count it, and start the actions.
    fn after_commit(self: &Arc<Self>, r: &InstanceRecord, out: &StepOutput, spawn_recoveries: bool) {
        self.index.set_health(&r.key, out.state.health, r.version + 1);
        for c in &out.changes {
            crate::events::change(&r.key, &r.tenant, c);
        }
        let mut notified = false;
        for a in &out.actions {
            match a {
                Action::Notify(_) => notified = true,
                Action::Recover { .. } if !spawn_recoveries => {}
                Action::Recover { kind, attempt } => {
                    let me = self.clone();
                    let (key, kind, attempt) = (r.key.clone(), *kind, *attempt);
                    let id = r.id.clone();
                    let span = tracing::info_span!("recover", provider = %key.provider, instance = %key.name);
                    self.tasks.spawn(async move { me.recover(&id, &key, kind, attempt, true).await }.instrument(span));
                }
            }
        }
        if notified {
            self.wake_outbox();
        }
    }

    /// Call the provider's recovery endpoint (the state is already committed),
    /// record the outcome, and verify with a poll after `settle_delay`.
    async fn recover(
        self: &Arc<Self>,
        id: &str,
        key: &InstanceKey,
        kind: RecoveryKind,
        attempt: u32,
        verify: bool,
    ) -> Result<String, SupervisorError> {
        let Some(h) = self.providers.get(&key.provider).cloned() else {
            return Err(SupervisorError::UnknownProvider(key.provider.clone()));
        };
        let result = {
            let _permit = h.recoveries.acquire().await.expect("semaphore never closed");
            h.client.recover(&self.instance_ref(key), kind).await
        };
        let now = self.now();
        let (outcome, detail) = match &result {
            Ok(d) => ("sent", d.clone()),
            Err(e) => ("failed", e.to_string()),
        };
        metrics::counter!("wa_sentinel_restarts_total", "provider" => key.provider.clone(), "result" => outcome)
            .increment(1);
        crate::events::recovery(key, kind, attempt, outcome, &detail);
        let ev = serde_json::json!({"action": kind.as_str(), "attempt": attempt, "outcome": outcome, "detail": detail});
        self.store.record_event(Some(id), &key.provider, "recovery_result", &ev, now).await?;
        if verify {
            tokio::time::sleep(self.cfg.supervisor.settle_delay).await;
            let obs = self.poll_one(&h, key).await;
            let out = self.observe(key, obs.clone(), None).await?;
            let ev = serde_json::json!({"observation": format!("{obs:?}"), "health": out.as_ref().map(|o| o.state.health.as_str())});
            self.store.record_event(Some(id), &key.provider, "recovery_verified", &ev, self.now()).await?;
        }
        result.map_err(|source| SupervisorError::Provider { provider: key.provider.clone(), source })
    }

    /// One status call, as an observation.
    async fn poll_one(&self, h: &ProviderHandle, key: &InstanceKey) -> Observation {
        let _g = self.global.acquire().await.expect("semaphore never closed");
        let _p = h.calls.acquire().await.expect("semaphore never closed");
        let started = Instant::now();
        let res = h.client.status(&self.instance_ref(key)).await;
        metrics::histogram!("wa_sentinel_poll_duration_seconds").record(started.elapsed().as_secs_f64());
        let (obs, result) = match res {
            Ok(r) => (Observation::Polled(r.status), "ok"),
            Err(e) => match (e.instance_status(), e.provider_kind()) {
                (Some(st), _) => (Observation::Polled(st), "ok"),
                (None, Some(kind)) => {
                    tracing::debug!(instance = %key, error = %e, "status call failed");
                    (Observation::ProviderFailed(kind), kind.as_str())
                }
                (None, None) => (Observation::ProviderFailed(ProviderErrorKind::BadResponse), "bad_response"),
            },
        };
        metrics::counter!("wa_sentinel_polls_total", "provider" => key.provider.clone(), "result" => result)
            .increment(1);
        obs
    }

    // ------------------------------------------------------------ inventory

    /// Merge configured and discovered instances into the store.
    pub async fn sync_inventory(&self) -> Result<Vec<InstanceRecord>, SupervisorError> {
        let mut discovered: HashMap<String, Option<Vec<String>>> = HashMap::new();
        for p in self.cfg.providers.iter().filter(|p| p.discover) {
            let h = &self.providers[&p.name];
            match h.client.list_instances().await {
                Ok(list) => {
                    let mut tokens = self.tokens.lock().expect("tokens lock");
                    for d in &list {
                        let key = InstanceKey::new(&p.name, &d.name);
                        // A rotated token is picked up; one set in the config wins.
                        if let Some(t) = &d.token
                            && !self.configured_tokens.contains(&key)
                        {
                            tokens.insert(key, t.clone());
                        }
                    }
                    discovered.insert(p.name.clone(), Some(list.into_iter().map(|d| d.name).collect()));
                }
                Err(e) => {
                    tracing::warn!(provider = %p.name, error = %e, "discovery failed; keeping the known instances");
                    discovered.insert(p.name.clone(), None);
                }
            }
        }
        let wanted = inventory::wanted(&self.cfg, &discovered);
        let filter = InstanceFilter { include_absent: true, ..Default::default() };
        let stored = self.store.instances(&filter).await?;
        let d = inventory::diff(&self.cfg, &stored, &wanted, &discovered);
        let now = self.now();
        for w in &d.upsert {
            self.store.ensure_instance(&w.key, &w.tenant, &w.labels, w.source, now).await?;
        }
        for id in &d.retire {
            self.store.set_present(id, false).await?;
        }
        let present = if d.upsert.is_empty() && d.retire.is_empty() {
            stored.into_iter().filter(|r| r.present).collect()
        } else {
            self.store.instances(&InstanceFilter::default()).await?
        };
        self.index.refresh(&present);
        Ok(present)
    }

    /// Reload the receiver's index from the database (followers, reloads).
    pub async fn refresh_index(&self) -> Result<(), SupervisorError> {
        let present = self.store.instances(&InstanceFilter::default()).await?;
        self.index.refresh(&present);
        Ok(())
    }

    // ------------------------------------------------------------ poll cycle

    /// Poll every known instance once — whatever its stored health (rule 1) —
    /// and commit what changed. Recovery actions run in the background
    /// ([`Supervisor::wait_idle`] waits for them).
    pub async fn poll_cycle(self: &Arc<Self>) -> Result<CycleReport, SupervisorError> {
        let started = Instant::now();
        let records = self.sync_inventory().await?;
        let inventory_ms = started.elapsed().as_millis() as u64;
        let mut set = tokio::task::JoinSet::new();
        // At most `concurrency` polls exist at a time (each task is ~17 KiB):
        // memory stays flat whatever the number of instances.
        let cap = self.cfg.supervisor.concurrency.max(1);
        let mut pending = records.into_iter();
        let spawn_next = |set: &mut tokio::task::JoinSet<_>, pending: &mut std::vec::IntoIter<InstanceRecord>| {
            for rec in pending.by_ref() {
                let Some(h) = self.providers.get(&rec.key.provider).cloned() else { continue };
                let me = self.clone();
                let span = tracing::info_span!("poll", provider = %rec.key.provider, instance = %rec.key.name);
                set.spawn(
                    async move {
                        let asked_at = me.now();
                        let obs = me.poll_one(&h, &rec.key).await;
                        let failed = match &obs {
                            Observation::ProviderFailed(k) => Some(*k),
                            _ => None,
                        };
                        let key = rec.key.clone();
                        let id = rec.id.clone();
                        let res = me.observe_with(&key, obs, Some(rec), true, Some(asked_at)).await;
                        (key, id, failed, res)
                    }
                    .instrument(span),
                );
                return;
            }
        };
        for _ in 0..cap {
            spawn_next(&mut set, &mut pending);
        }
        let mut report = CycleReport::default();
        let mut summaries: HashMap<String, (CycleSummary, HashMap<ProviderErrorKind, u32>)> = HashMap::new();
        let mut untouched = Vec::new();
        while let Some(joined) = set.join_next().await {
            spawn_next(&mut set, &mut pending);
            let (key, id, failed, res) = joined.expect("poll task does not panic");
            report.polled += 1;
            let entry = summaries.entry(key.provider.clone()).or_default();
            entry.0.calls += 1;
            if let Some(k) = failed {
                report.provider_errors += 1;
                entry.0.provider_errors += 1;
                *entry.1.entry(k).or_default() += 1;
            }
            match res {
                Ok(Some(out)) => {
                    report.committed += 1;
                    report.recoveries +=
                        out.actions.iter().filter(|a| matches!(a, Action::Recover { .. })).count() as u32;
                    report.notices += out.notices().count() as u32;
                }
                Ok(None) => {
                    report.unchanged += 1;
                    untouched.push(id);
                }
                Err(e) => tracing::warn!(instance = %key, error = %e, "cannot record the observation"),
            }
        }
        let polls_ms = started.elapsed().as_millis() as u64 - inventory_ms;
        let now = self.now();
        // The batched `last_health_check` write and the gauges' aggregates are
        // independent round trips: overlap them.
        let (touched, ()) = tokio::join!(self.store.touch_health_checks(&untouched, now), self.export_gauges());
        touched?;
        let isolated = self.isolated(&summaries, now);
        if isolated {
            // Every provider failing while nobody reaches our receiver either:
            // our own network is the likelier culprit. Hold provider verdicts.
            report.notices += self.announce_isolation(now).await?;
        } else {
            self.isolation.lock().expect("isolation lock").take().inspect(|id| {
                tracing::info!(episode = %id, "wa-sentinel reaches its providers again");
            });
            for (provider, (mut summary, kinds)) in summaries {
                summary.error = kinds.into_iter().max_by_key(|(_, n)| *n).map(|(k, _)| k);
                report.notices += self.provider_cycle(&provider, summary, now).await?;
            }
            if report.polled > report.provider_errors {
                self.heartbeat().await;
            }
        }
        if report.notices > 0 {
            self.wake_outbox();
        }
        metrics::histogram!("wa_sentinel_poll_cycle_seconds").record(started.elapsed().as_secs_f64());
        tracing::info!(
            polled = report.polled,
            changed = report.committed,
            provider_errors = report.provider_errors,
            recoveries = report.recoveries,
            notices = report.notices,
            inventory_ms,
            polls_ms,
            took_ms = started.elapsed().as_millis() as u64,
            "poll cycle done"
        );
        Ok(report)
    }

    /// Self-protection (Gatus' connectivity-check idea): with at least two
    /// providers, all of them failing every call while the receiver has had no
    /// webhook for `selfcheck.quiet_after` means *we* are probably cut off.
    fn isolated(&self, summaries: &HashMap<String, (CycleSummary, HashMap<ProviderErrorKind, u32>)>, now: Ts) -> bool {
        let all_failed =
            summaries.len() >= 2 && summaries.values().all(|(s, _)| s.calls > 0 && s.provider_errors == s.calls);
        let quiet = self.index.last_traffic().is_none_or(|t| now.since(t) >= self.cfg.selfcheck.quiet_after);
        all_failed && quiet
    }

    /// One `sentinel_isolated` notice per episode (the episode lives in memory:
    /// a restart during an isolation may announce it once more).
    async fn announce_isolation(&self, now: Ts) -> Result<u32, SupervisorError> {
        let id = {
            let mut g = self.isolation.lock().expect("isolation lock");
            if g.is_some() {
                return Ok(0);
            }
            let id = uuid::Uuid::now_v7().to_string();
            *g = Some(id.clone());
            id
        };
        tracing::error!(episode = %id, "no provider answers and no webhook arrives: suspecting our own network; provider verdicts held");
        let quiet = crate::domain::time::human_duration(self.cfg.selfcheck.quiet_after);
        let n = Notice {
            kind: NoticeKind::SentinelIsolated,
            provider: "wa-sentinel".into(),
            instance: None,
            tenant: None,
            outage_id: id.clone(),
            started_at: now,
            at: now,
            reason: format!("{} providers unreachable, no webhook for {quiet}", self.providers.len()),
            restart_attempts: 0,
            max_attempts: 0,
            recovered_by: None,
            sequence: 0,
            dedup_key: crate::domain::notice::dedup_key(&id, NoticeKind::SentinelIsolated, 0),
        };
        let outbox = self.route(&[&n]);
        self.store.enqueue(&outbox, now).await?;
        self.store
            .record_event(None, "wa-sentinel", "sentinel_isolated", &serde_json::json!({"episode": id}), now)
            .await?;
        Ok(1)
    }

    /// The dead-man's switch: tell `selfcheck.heartbeat_url` this cycle was healthy.
    async fn heartbeat(&self) {
        let Some(url) = &self.cfg.selfcheck.heartbeat_url else { return };
        let res = self.http.get(url.expose()).send().await;
        match res {
            Ok(r) if r.status().is_success() => tracing::debug!("heartbeat sent"),
            Ok(r) => tracing::warn!(status = %r.status(), "heartbeat URL answered an error"),
            Err(e) => tracing::warn!(error = %e.without_url(), "heartbeat failed"),
        }
    }

    async fn provider_cycle(&self, provider: &str, summary: CycleSummary, now: Ts) -> Result<u32, SupervisorError> {
        let prev = self.store.provider_state(provider).await?;
        let id = uuid::Uuid::now_v7().to_string();
        let out = provider_step(&prev, summary, provider, now, &id, &self.cfg.policy);
        if out.state == prev {
            return Ok(0);
        }
        // With `group_provider_outage = false`, every instance of the provider
        // gets its own copy (routed by its tenant) instead of one provider notice.
        let expanded: Vec<Notice> = if self.cfg.alerts.group_provider_outage || out.notices.is_empty() {
            out.notices.clone()
        } else {
            let instances = self
                .store
                .instances(&InstanceFilter { provider: Some(provider.to_string()), ..Default::default() })
                .await?;
            out.notices
                .iter()
                .flat_map(|n| {
                    instances.iter().map(move |r| Notice {
                        instance: Some(r.key.name.clone()),
                        tenant: Some(r.tenant.clone()),
                        dedup_key: format!("{}:{}", n.dedup_key, r.id),
                        ..n.clone()
                    })
                })
                .collect()
        };
        let notices: Vec<&Notice> = expanded.iter().collect();
        let outbox = self.route(&notices);
        self.store.commit_provider_step(provider, &out, &outbox, now).await?;
        for c in &out.changes {
            crate::events::provider_change(provider, c);
        }
        Ok(expanded.len() as u32)
    }

    /// `wa_sentinel_instances{provider,health}` and `wa_sentinel_outages_open{provider}`.
    async fn export_gauges(&self) {
        let Ok((health, open)) = self.store.gauge_counts().await else { return };
        for p in self.providers.keys() {
            for h in Health::ALL {
                let n = health.iter().find(|(pp, hh, _)| pp == p && hh == h.as_str()).map_or(0, |r| r.2);
                metrics::gauge!("wa_sentinel_instances", "provider" => p.clone(), "health" => h.as_str()).set(n as f64);
            }
            let n = open.iter().find(|(pp, _)| pp == p).map_or(0, |r| r.1);
            metrics::gauge!("wa_sentinel_outages_open", "provider" => p.clone()).set(n as f64);
        }
    }

    // ------------------------------------------------------------ manual control

    /// `restart PROVIDER/INSTANCE [--force]`: through the state machine (cooldown
    /// unless forced), committed, then the provider is called and the result recorded.
    pub async fn manual_restart(self: &Arc<Self>, key: &InstanceKey, force: bool) -> Result<String, SupervisorError> {
        if !self.providers.contains_key(&key.provider) {
            return Err(SupervisorError::UnknownProvider(key.provider.clone()));
        }
        let out = self.observe_with(key, Observation::ManualRestart { force }, None, false, None).await?;
        let out = out.ok_or_else(|| SupervisorError::Refused(format!("{key}: nothing to do")))?;
        if let Some(Change::RecoveryRefused { why }) =
            out.changes.iter().find(|c| matches!(c, Change::RecoveryRefused { .. }))
        {
            return Err(SupervisorError::Refused(format!("{key}: {why}")));
        }
        let rec = self.store.instance(key).await?.ok_or_else(|| SupervisorError::UnknownInstance(key.clone()))?;
        let ev = serde_json::json!({"force": force});
        self.store.record_event(Some(&rec.id), &key.provider, "manual_restart", &ev, self.now()).await?;
        let kind = out
            .actions
            .iter()
            .find_map(|a| match a {
                Action::Recover { kind, .. } => Some(*kind),
                _ => None,
            })
            .unwrap_or(RecoveryKind::Reconnect);
        let detail = self.recover(&rec.id, key, kind, 0, false).await?;
        Ok(format!("{key}: {} sent ({detail})", kind.as_str()))
    }

    // ------------------------------------------------------------ webhook audit

    /// Read every instance's webhook config and re-apply the desired one where it
    /// is missing, disabled, elsewhere, or lacks events (rule 8). Operator-added
    /// events are kept by the providers' diff-based apply.
    pub async fn webhook_audit(self: &Arc<Self>) -> Result<AuditReport, SupervisorError> {
        let Some(base) = self.cfg.server.public_url.clone() else {
            tracing::debug!("webhook audit skipped: server.public_url is not set");
            return Ok(AuditReport::default());
        };
        let records = self.store.instances(&InstanceFilter::default()).await?;
        let mut set = tokio::task::JoinSet::new();
        // Bounded like the poll: at most `concurrency` audit tasks exist at once.
        let live = Arc::new(Semaphore::new(self.cfg.supervisor.concurrency.max(1)));
        for rec in records.into_iter().filter(|r| r.state.health != Health::Missing) {
            let Some(h) = self.providers.get(&rec.key.provider).cloned() else { continue };
            let p = self.cfg.providers.iter().find(|p| p.name == rec.key.provider).expect("configured").clone();
            let url = format!("{base}/webhooks/{}/{}", p.name, p.webhook_token.expose());
            let me = self.clone();
            let span = tracing::info_span!("audit", provider = %rec.key.provider, instance = %rec.key.name);
            let slot = live.clone().acquire_owned().await.expect("never closed");
            set.spawn(
                async move {
                    let _slot = slot;
                    let res = {
                        let _g = me.global.acquire().await.expect("open");
                        let _p = h.calls.acquire().await.expect("open");
                        h.client.apply_webhook(&me.instance_ref(&rec.key), &url, &me.cfg.webhook).await
                    };
                    (rec, res)
                }
                .instrument(span),
            );
        }
        let mut report = AuditReport::default();
        let mut notices = Vec::new();
        while let Some(j) = set.join_next().await {
            let (rec, res) = j.expect("audit task does not panic");
            let now = self.now();
            let (ok, kind, detail) = match &res {
                Ok(WebhookRepair::AlreadyOk) => {
                    report.ok += 1;
                    (true, None, String::new())
                }
                Ok(WebhookRepair::Repaired { reasons }) => {
                    report.repaired += 1;
                    (true, Some("webhook_repaired"), reasons.join("; "))
                }
                Ok(WebhookRepair::Mismatch { detail }) => {
                    report.mismatched += 1;
                    (false, Some("webhook_mismatch"), detail.clone())
                }
                Err(e) => {
                    report.failed += 1;
                    (false, Some("webhook_audit_failed"), e.to_string())
                }
            };
            self.store.set_webhook_check(&rec.id, ok, now).await?;
            if let Some(kind) = kind {
                crate::events::webhook_audit(&rec.key, kind, &detail);
                self.store
                    .record_event(Some(&rec.id), &rec.key.provider, kind, &serde_json::json!({"detail": detail}), now)
                    .await?;
            }
            if kind == Some("webhook_repaired") {
                metrics::counter!("wa_sentinel_webhook_repairs_total", "provider" => rec.key.provider.clone())
                    .increment(1);
                let id = format!("webhook-{}-{}", rec.id, now.0);
                notices.push(Notice {
                    kind: NoticeKind::WebhookRepaired,
                    provider: rec.key.provider.clone(),
                    instance: Some(rec.key.name.clone()),
                    tenant: Some(rec.tenant.clone()),
                    outage_id: id.clone(),
                    started_at: now,
                    at: now,
                    reason: detail,
                    restart_attempts: 0,
                    max_attempts: 0,
                    recovered_by: None,
                    sequence: 0,
                    dedup_key: crate::domain::notice::dedup_key(&id, NoticeKind::WebhookRepaired, 0),
                });
            }
        }
        let refs: Vec<&Notice> = notices.iter().collect();
        let outbox = self.route(&refs);
        if !outbox.is_empty() {
            self.store.enqueue(&outbox, self.now()).await?;
            self.wake_outbox();
        }
        tracing::info!(
            ok = report.ok,
            repaired = report.repaired,
            mismatched = report.mismatched,
            failed = report.failed,
            "webhook audit done"
        );
        Ok(report)
    }

    // ------------------------------------------------------------ retention

    /// Delete events and closed outages older than `supervisor.retention`.
    pub async fn prune(&self) -> Result<(u64, u64), SupervisorError> {
        let keep = self.cfg.supervisor.retention;
        if keep.is_zero() {
            return Ok((0, 0));
        }
        let before = Ts(self.now().0 - crate::domain::time::duration_ms(keep));
        Ok(self.store.prune(before).await?)
    }

    /// Deadline helper for shutdown: wait for in-flight actions at most `grace`.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }

    /// W-API or Evolution, for the receiver.
    pub fn provider_kind(&self, name: &str) -> Option<ProviderKind> {
        self.providers.get(name).map(|h| h.kind)
    }
}

/// What one webhook audit did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AuditReport {
    pub ok: u32,
    pub repaired: u32,
    pub mismatched: u32,
    pub failed: u32,
}
