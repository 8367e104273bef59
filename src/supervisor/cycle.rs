//! The poll cycle (rules 1, 2 and 15, docs/rules.md): one independent pipeline per
//! provider. Each has its own queue (its present instances, disconnected ones
//! included), its own concurrency — its fair share of `supervisor.concurrency`,
//! at most `per_provider_concurrency` — a circuit breaker
//! ([`crate::domain::breaker`]), and its own verdict (`provider_step`), decided
//! as soon as its own polls are done. A scheduler tick starts the pipeline of
//! every provider whose previous one has finished and returns at once: a slow
//! or hanging provider never delays another provider's polls, verdicts or
//! notices, nor the watchdog.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tracing::Instrument;

use super::scheduler::ProviderProgress;
use super::{ProviderHandle, Supervisor, SupervisorError};
use crate::config::ProviderConfig;
use crate::domain::breaker::{Breaker, DEFAULT_PROBES, DEFAULT_THRESHOLD};
use crate::domain::gate::gate;
use crate::domain::health::{Action, Observation, Settled};
use crate::domain::provider::{
    CycleSummary, ProviderCause, ProviderInput, ProviderState, Webhooks, holds_instance_silence, provider_step,
    version_probe_due,
};
use crate::domain::{Health, InstanceKey, Notice, ProviderErrorKind, ProviderStatus};
use crate::live::LiveIndex;
use crate::providers::Provider;
use crate::store::{InstanceFilter, InstanceRecord, Store};

/// What one poll cycle did (one provider's pipeline, or the sum over several),
/// for logs, metrics and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CycleReport {
    pub polled: u32,
    pub provider_errors: u32,
    pub committed: u32,
    pub unchanged: u32,
    pub recoveries: u32,
    pub notices: u32,
    /// Instances not called because the provider's circuit breaker was open.
    pub held: u32,
    /// Polls that found a settled instance open: decided from the index,
    /// with no record read and no step (the poll's fast path).
    pub settled: u32,
}

/// One instance to poll: which, at which row version, and either its full
/// record or — when the index saw that very version settled — what the
/// poll's fast path needs instead (a settled instance found open
/// costs no record read and no step).
struct Item {
    key: InstanceKey,
    id: String,
    version: i64,
    rec: Option<InstanceRecord>,
    settled: Option<Settled>,
}

/// A provider's poll queue, read from the store a page at a time (by name):
/// a cycle never holds every instance record at once. A page reads ids and
/// versions; full records only of the instances the fast path cannot take.
struct Queue<'a> {
    store: &'a Store,
    index: &'a LiveIndex,
    provider: &'a str,
    page: std::collections::VecDeque<Item>,
    after: Option<String>,
    done: bool,
    /// Where the queue started (after this name): once the end is reached it
    /// wraps around to the first name and stops at this one.
    start: Option<String>,
    wrapped: bool,
}

impl<'a> Queue<'a> {
    const PAGE: u32 = 256;

    /// Every instance of `provider` once, by name, starting after `start`
    /// (a half-open breaker's probes rotate: `None` starts at the first).
    fn new(store: &'a Store, index: &'a LiveIndex, provider: &'a str, start: Option<String>) -> Self {
        let after = start.clone();
        Queue { store, index, provider, page: Default::default(), after, done: false, start, wrapped: false }
    }

    async fn next(&mut self) -> Result<Option<Item>, SupervisorError> {
        if self.page.is_empty() && self.done && !self.wrapped && self.start.is_some() {
            // The names after the start are done: the ones up to it remain.
            (self.wrapped, self.done, self.after) = (true, false, None);
        }
        if self.page.is_empty() && !self.done {
            let mut rows = self.store.poll_page(self.provider, self.after.as_deref(), Self::PAGE).await?;
            self.done = rows.len() < Self::PAGE as usize;
            self.after = rows.last().map(|r| r.name.clone());
            if let Some(start) = self.start.as_deref().filter(|_| self.wrapped) {
                let before = rows.len();
                rows.retain(|r| r.name.as_str() <= start);
                self.done |= rows.len() < before;
            }
            let items: Vec<Item> = rows
                .into_iter()
                .map(|r| Item {
                    // The same row (a re-created instance has a new id) at the same version.
                    settled: self
                        .index
                        .get(self.provider, &r.name)
                        .filter(|e| e.id == r.id)
                        .and_then(|e| e.settled_at(r.version)),
                    key: InstanceKey::new(self.provider, r.name),
                    id: r.id,
                    version: r.version,
                    rec: None,
                })
                .collect();
            let ids: Vec<&str> = items.iter().filter(|i| i.settled.is_none()).map(|i| i.id.as_str()).collect();
            let mut full: HashMap<String, InstanceRecord> =
                self.store.instances_by_ids(&ids).await?.into_iter().map(|r| (r.id.clone(), r)).collect();
            for mut item in items {
                if item.settled.is_none() {
                    // Retired between the two reads: nothing to poll.
                    let Some(rec) = full.remove(&item.id) else { continue };
                    item.version = rec.version;
                    item.rec = Some(rec);
                }
                self.page.push_back(item);
            }
        }
        Ok(self.page.pop_front())
    }
}

impl CycleReport {
    fn add(&mut self, o: &CycleReport) {
        self.polled += o.polled;
        self.provider_errors += o.provider_errors;
        self.committed += o.committed;
        self.unchanged += o.unchanged;
        self.recoveries += o.recoveries;
        self.notices += o.notices;
        self.held += o.held;
        self.settled += o.settled;
    }
}

impl Supervisor {
    /// One status call, as an observation. The provider's own permit comes
    /// first: a hanging provider's calls wait on its permits, never on the
    /// global ones another provider needs.
    pub(super) async fn poll_one(&self, h: &ProviderHandle, key: &InstanceKey) -> Observation {
        self.poll_one_detailed(h, key).await.0
    }

    /// [`Supervisor::poll_one`], with the error's text when the call failed.
    async fn poll_one_detailed(&self, h: &ProviderHandle, key: &InstanceKey) -> (Observation, Option<String>) {
        let _p = h.calls.acquire().await.expect("semaphore never closed");
        let _g = self.global.acquire().await.expect("semaphore never closed");
        let started = Instant::now();
        let res = h.client.status(&self.instance_ref(key)).await;
        h.poll_metrics.duration().record(started.elapsed().as_secs_f64());
        let (obs, result, error) = match res {
            Ok(r) => (Observation::Polled(r.status), "ok", None),
            Err(e) => match (e.instance_status(), e.provider_kind()) {
                (Some(st), _) => (Observation::Polled(st), "ok", None),
                (None, Some(kind)) => {
                    tracing::debug!(instance = %key, error = %e, "status call failed");
                    (Observation::ProviderFailed(kind), kind.as_str(), Some(e.detail.clone()))
                }
                (None, None) => (
                    Observation::ProviderFailed(ProviderErrorKind::BadResponse),
                    "bad_response",
                    Some(e.detail.clone()),
                ),
            },
        };
        h.poll_metrics.result(&key.provider, result).increment(1);
        (obs, error)
    }

    /// A scheduler tick: start the pipeline of every provider whose previous
    /// pipeline has finished (a busy one is skipped and counted), and return.
    pub fn poll_tick(self: &Arc<Self>) {
        for run in self.startable_pipelines() {
            self.pipelines.spawn(async move {
                if let Err(e) = run.await {
                    tracing::error!(error = %e, "poll cycle failed");
                }
            });
        }
    }

    /// Every provider's pipeline once, waited for (tests, one-shot commands).
    /// A provider whose pipeline is still running is skipped.
    pub async fn poll_cycle(self: &Arc<Self>) -> Result<CycleReport, SupervisorError> {
        let mut set = tokio::task::JoinSet::new();
        for run in self.startable_pipelines() {
            set.spawn(run);
        }
        let mut total = CycleReport::default();
        while let Some(r) = set.join_next().await {
            total.add(&r.expect("pipeline task does not panic")?);
        }
        Ok(total)
    }

    /// One future per provider whose previous pipeline has finished, each
    /// holding that provider's lock until it is done.
    fn startable_pipelines(
        self: &Arc<Self>,
    ) -> Vec<impl std::future::Future<Output = Result<CycleReport, SupervisorError>> + Send + 'static> {
        let mut out = Vec::new();
        for p in self.cfg.providers.iter().filter(|p| self.leads(&p.name)) {
            let progress = self.ticks().provider(&p.name);
            let Ok(guard) = progress.lock.clone().try_lock_owned() else {
                crate::events::pipeline_skipped(&p.name);
                continue;
            };
            let (me, p) = (self.clone(), p.clone());
            let span = tracing::info_span!("cycle", provider = %p.name);
            out.push(
                async move {
                    let _running = guard;
                    me.run_pipeline(&p, &progress).await
                }
                .instrument(span),
            );
        }
        out
    }

    async fn run_pipeline(
        self: &Arc<Self>,
        p: &ProviderConfig,
        progress: &ProviderProgress,
    ) -> Result<CycleReport, SupervisorError> {
        progress.started.store(crate::clock::now().0, Ordering::Relaxed);
        let res = async {
            self.retire_orphans().await?;
            // Actions asked for on replicas that do not lead this provider.
            if let Err(e) = self.run_requested_actions(&p.name).await {
                tracing::warn!(error = %e, "cannot carry out requested actions; they wait for the next cycle");
            }
            self.pipeline(p, progress).await
        }
        .await;
        progress.started.store(0, Ordering::Relaxed);
        progress.finished.store(crate::clock::now().0, Ordering::Relaxed);
        res
    }

    /// One provider's cycle: inventory, polls under its share of the
    /// concurrency and its circuit breaker, then its verdict.
    async fn pipeline(
        self: &Arc<Self>,
        p: &ProviderConfig,
        progress: &ProviderProgress,
    ) -> Result<CycleReport, SupervisorError> {
        let started = Instant::now();
        let h = self.providers[&p.name].clone();
        let was_open = progress.breaker_open.load(Ordering::Relaxed);
        // While the breaker is open, the probes go first: no discovery call
        // that would only time out.
        self.sync_provider(p, !was_open).await?;
        let inventory_ms = started.elapsed().as_millis() as u64;
        // Before any poll: is this provider as a whole silent? Then no
        // instance of it is judged a zombie on its own this cycle.
        let prev_state = self.store.provider_state(&p.name).await?;
        self.start_watch(&p.name, &prev_state);
        let hooks = self.provider_webhooks(&p.name).await?;
        self.hold_instance_silence(p, &prev_state, &hooks);

        let share = (self.cfg.supervisor.concurrency / self.providers.len().max(1)).max(1);
        let cap = self.cfg.supervisor.per_provider_concurrency.min(share).max(1);
        let mut breaker = Breaker::for_cycle(was_open, DEFAULT_THRESHOLD, DEFAULT_PROBES);
        // A half-open breaker's probes go to the instances after the last
        // probes (not always the first by name, which may be broken ones).
        let start = if was_open { progress.probe_after.lock().expect("probe lock").clone() } else { None };
        let mut queue = Queue::new(&self.store, &self.index, &p.name, start);
        // The name of the last instance called (its buffer reused: no allocation per poll).
        let mut last_issued: Option<String> = None;
        // Instances whose status call got a server error: judged once the
        // cycle tells whether the provider answered anyone at all.
        let mut server_errors: Vec<(InstanceKey, i64, String)> = Vec::new();
        let mut set = tokio::task::JoinSet::new();
        let mut report = CycleReport::default();
        let mut summary = CycleSummary::default();
        let mut kinds: HashMap<ProviderErrorKind, u32> = HashMap::new();
        let mut untouched = Vec::new();
        loop {
            // At most `cap` calls exist at a time (each task is ~17 KiB):
            // memory stays flat whatever the number of instances.
            while set.len() < cap && breaker.may_call() {
                let Some(item) = queue.next().await? else { break };
                breaker.issued();
                let last = last_issued.get_or_insert_with(String::new);
                last.clear();
                last.push_str(&item.key.name);
                let (me, h) = (self.clone(), h.clone());
                // A debug span: at the usual info level a poll costs no span of
                // its own (the pipeline's `cycle{provider}` span still frames
                // its events). The two large sub-futures are boxed, so the task
                // tokio moves around stays small (measured: spawning ~16 KiB
                // tasks was 10 % of a poll, in memcpy).
                let span = tracing::debug_span!("poll", provider = %item.key.provider, instance = %item.key.name);
                set.spawn(
                    async move {
                        let Item { key, id, version, rec, settled } = item;
                        let (obs, error) = Box::pin(me.poll_one_detailed(&h, &key)).await;
                        let failed = match &obs {
                            Observation::ProviderFailed(k) => Some(*k),
                            _ => None,
                        };
                        let open = obs == Observation::Polled(ProviderStatus::Connected);
                        // The fast path: what `step` would find is known to be
                        // nothing (`step_of_a_settled_open_poll_changes_nothing`).
                        let fast = settled.is_some_and(|s| {
                            let watching = me.watching_since(&key.provider);
                            open && s.open_poll_is_noop(me.now(), watching, me.policy_for(&key.provider))
                        });
                        let server_error = failed == Some(ProviderErrorKind::ServerError);
                        let res = if fast || server_error {
                            Ok(None)
                        } else {
                            Box::pin(me.observe_with(&key, obs, rec, true, Some(version))).await
                        };
                        let deferred = server_error.then(|| (version, error.unwrap_or_default()));
                        (key, id, failed, open, fast, deferred, res)
                    }
                    .instrument(span),
                );
            }
            let Some(joined) = set.join_next().await else { break };
            let (key, id, failed, open, fast, deferred, res) = joined.expect("poll task does not panic");
            report.settled += u32::from(fast);
            // Only a server not reached opens the breaker: any answer, a 5xx
            // included, proves it is there (and closes a half-open breaker).
            breaker.record(failed == Some(ProviderErrorKind::Unreachable));
            report.polled += 1;
            summary.calls += 1;
            summary.connected += u32::from(open);
            if let Some(k) = failed {
                report.provider_errors += 1;
                summary.provider_errors += 1;
                *kinds.entry(k).or_default() += 1;
            }
            if let Some((version, detail)) = deferred {
                server_errors.push((key, version, detail));
                continue;
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
        // Server errors: with at least one call of the cycle answered, the
        // provider is up and each such error is its instance's own problem
        // (counted towards its `down_after`); with none, the provider is
        // suspect and the instance `unknown` (rule 2).
        let answered = summary.calls > summary.provider_errors;
        for (key, version, detail) in server_errors {
            let obs = if answered {
                Observation::StatusFailed { detail }
            } else {
                Observation::ProviderFailed(ProviderErrorKind::ServerError)
            };
            match self.observe_with(&key, obs, None, true, Some(version)).await {
                Ok(Some(out)) => {
                    report.committed += 1;
                    report.recoveries +=
                        out.actions.iter().filter(|a| matches!(a, Action::Recover { .. })).count() as u32;
                    report.notices += out.notices().count() as u32;
                }
                Ok(None) => report.unchanged += 1,
                Err(e) => tracing::warn!(instance = %key, error = %e, "cannot record the observation"),
            }
        }
        // The breaker opened: the rest is held — `unknown`, not called (rule 2).
        while let Some(item) = queue.next().await? {
            report.held += 1;
            let obs = Observation::ProviderFailed(ProviderErrorKind::Unreachable);
            if let Err(e) = self.observe_with(&item.key, obs, item.rec, true, None).await {
                tracing::warn!(instance = %item.key, error = %e, "cannot record the held instance");
            }
        }
        let open = breaker.is_open();
        progress.breaker_open.store(open, Ordering::Relaxed);
        *progress.probe_after.lock().expect("probe lock") = if open { last_issued } else { None };
        metrics::gauge!("wa_sentinel_provider_breaker_open", "provider" => p.name.clone()).set(if open {
            1.0
        } else {
            0.0
        });
        if open && !was_open {
            tracing::warn!(
                provider = %p.name,
                consecutive = breaker.threshold(),
                held = report.held,
                "circuit breaker open: the provider does not answer; its other instances are held this cycle"
            );
        }
        let polls_ms = started.elapsed().as_millis() as u64 - inventory_ms;

        let now = self.now();
        // The batched `last_health_check` write and the gauges' aggregates are
        // independent round trips: overlap them.
        let (touched, ()) = tokio::join!(self.store.touch_health_checks(&untouched, now), self.export_gauges(&p.name));
        touched?;
        summary.error = kinds.into_iter().max_by_key(|(_, n)| *n).map(|(k, _)| k);
        self.summaries.lock().expect("summaries lock").insert(p.name.clone(), summary);
        if summary.calls > 0 && summary.provider_errors >= summary.calls && self.receiver_quiet(now) {
            // Maybe it is us, not them: let the other providers' running cycles
            // finish (bounded) so the self-isolation check sees this round.
            self.await_other_pipelines(&p.name).await;
        }
        let now = self.now();
        let mut provider_state = "ok";
        if self.isolated(now) {
            // Every provider failing while nobody reaches our receiver either:
            // our own network is the likelier culprit. Hold provider verdicts.
            report.notices += self.announce_isolation(now).await?;
        } else {
            self.isolation.lock().expect("isolation lock").take().inspect(|id| {
                tracing::info!(episode = %id, "wa-sentinel reaches its providers again");
                // Nothing was heard during the episode: silences start again.
                self.isolation_ended.store(now.0, Ordering::SeqCst);
            });
            // The version, where the API tells it: asked only of a provider that
            // answers, and only when it may have changed (`version_probe_due`).
            let answered = summary.calls > summary.provider_errors;
            let was_down = prev_state.outage.as_ref().is_some_and(|o| o.cause != ProviderCause::Silent);
            let version = if answered && self.version_due(&p.name, was_down, now) {
                h.client.server_version().await
            } else {
                None
            };
            // The stored webhook times were read before the polls; what this
            // process received since is in the index.
            let hooks = hooks.with_seen(self.index.last_webhook_of(&p.name));
            let input = ProviderInput {
                cycle: summary,
                hooks,
                version: version.as_deref(),
                provider: &p.name,
                now,
                new_id: &uuid::Uuid::now_v7().to_string(),
                remediation_running: self.remediating.lock().expect("remediating lock").contains(&p.name),
            };
            let (notices, state) = self.provider_cycle(p, &input).await?;
            report.notices += notices;
            provider_state = state;
            if summary.calls > summary.provider_errors {
                self.heartbeat().await;
            }
        }
        let state = match summary.error {
            _ if open => "unreachable (circuit breaker open)".to_string(),
            Some(k) if summary.calls > 0 && summary.provider_errors >= summary.calls => k.as_str().replace('_', " "),
            _ if provider_state == "silent" => "silent (no webhook from any instance)".to_string(),
            _ => "ok".to_string(),
        };
        // A silent provider answers: it is up (its silence is provider_silent's business).
        let up = state == "ok" || provider_state == "silent";
        metrics::gauge!("wa_sentinel_provider_up", "provider" => p.name.clone()).set(if up { 1.0 } else { 0.0 });
        let silent = provider_state == "silent";
        metrics::gauge!("wa_sentinel_provider_silent", "provider" => p.name.clone()).set(if silent {
            1.0
        } else {
            0.0
        });
        progress.set_state(state);
        if report.notices > 0 {
            self.wake_outbox();
        }
        let took = started.elapsed().as_secs_f64();
        metrics::histogram!("wa_sentinel_provider_cycle_seconds", "provider" => p.name.clone()).record(took);
        metrics::histogram!("wa_sentinel_poll_cycle_seconds").record(took);
        tracing::info!(
            provider = %p.name,
            polled = report.polled,
            held = report.held,
            settled = report.settled,
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

    /// What the receiver knows of `provider`'s webhooks: the latest one seen
    /// here or flushed by any replica, and whether any are expected.
    async fn provider_webhooks(&self, provider: &str) -> Result<Webhooks, SupervisorError> {
        let (stored, audit_ok) = self.store.provider_webhooks(provider).await?;
        let stored = Webhooks { last: stored, expected: audit_ok, watching_since: self.watching_since(provider) };
        Ok(stored.with_seen(self.index.last_webhook_of(provider)))
    }

    /// Ask the version now? Records the probe when it is due.
    fn version_due(&self, provider: &str, was_down: bool, now: crate::domain::Ts) -> bool {
        let mut probes = self.version_probes.lock().expect("probes lock");
        let due = version_probe_due(probes.get(provider).copied(), was_down, now);
        if due {
            probes.insert(provider.to_string(), now);
        }
        due
    }

    /// Before a cycle's polls: since when `provider` has been watched. An
    /// outage of the provider still open (unreachable, unlicensed) ends with
    /// this cycle at the earliest: nothing was heard during it.
    fn start_watch(&self, provider: &str, state: &ProviderState) {
        let outage_ended = match &state.outage {
            Some(o) if o.cause != ProviderCause::Silent => Some(self.now()),
            _ => state.quiet_since,
        };
        let since = self.watch(provider, outage_ended).since();
        self.watched_since.lock().expect("watch lock").insert(provider.to_string(), since);
    }

    /// Decide, before the polls, whether instance silence is held for `p`.
    fn hold_instance_silence(&self, p: &ProviderConfig, state: &ProviderState, hooks: &Webhooks) {
        let last_connected = self.summaries.lock().expect("summaries lock").get(&p.name).map_or(0, |s| s.connected);
        let hold = holds_instance_silence(
            state,
            last_connected,
            hooks,
            self.now(),
            self.cfg.policy.stale_webhook_after,
            &p.health,
        );
        let mut held = self.silence_held.lock().expect("silence lock");
        if hold {
            if held.insert(p.name.clone()) {
                tracing::warn!(provider = %p.name, "no webhook from any instance of this provider: instance silence is not judged, no zombie restarts");
            }
        } else if held.remove(&p.name) {
            tracing::info!(provider = %p.name, "webhooks from this provider again: instance silence is judged again");
        }
    }

    /// The provider's verdict for this cycle: committed, then its remediation
    /// started. Returns the notices queued and the provider's state name.
    async fn provider_cycle(
        self: &Arc<Self>,
        p: &ProviderConfig,
        input: &ProviderInput<'_>,
    ) -> Result<(u32, &'static str), SupervisorError> {
        let (provider, now) = (p.name.as_str(), input.now);
        let prev = self.store.provider_state(provider).await?;
        let out = provider_step(&prev, input, &self.cfg.policy, &p.health);
        if let Some(v) = &out.state.version {
            metrics::gauge!("wa_sentinel_provider_info", "provider" => provider.to_string(), "kind" => p.kind.as_str(), "version" => v.clone()).set(1.0);
            if let Some(old) = prev.version.as_ref().filter(|o| *o != v) {
                metrics::gauge!("wa_sentinel_provider_info", "provider" => provider.to_string(), "kind" => p.kind.as_str(), "version" => old.clone()).set(0.0);
            }
        }
        if out.state == prev {
            return Ok((0, prev.state_name()));
        }
        // With `group_provider_outage = false`, every instance of the provider
        // gets its own copy (routed by its tenant) instead of one provider notice.
        let expanded: Vec<Notice> = if self.cfg.alerts.group_provider_outage || out.notices.is_empty() {
            out.notices.clone()
        } else {
            // Instances in maintenance hear nothing (the one policy gate, rule 16).
            let instances: Vec<InstanceRecord> = self
                .store
                .instances(&InstanceFilter { provider: Some(provider.to_string()), ..Default::default() })
                .await?
                .into_iter()
                .filter(|r| gate(r.state.maintenance_until, now, true).speak)
                .collect();
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
        // Committed: now (and only now) the remediation command may run.
        if let (Some(run), Some(started)) = (out.remediate.clone(), out.state.last_remediation.as_ref().map(|r| r.at)) {
            let me = self.clone();
            let name = provider.to_string();
            self.remediating.lock().expect("remediating lock").insert(name.clone());
            let span = tracing::info_span!("remediate", provider = %name);
            self.tasks.spawn(async move { me.remediate(&name, run, started).await }.instrument(span));
        }
        Ok((expanded.len() as u32, out.state.state_name()))
    }

    /// `wa_sentinel_instances{provider,health}` and `wa_sentinel_outages_open{provider}`
    /// of one provider.
    async fn export_gauges(&self, provider: &str) {
        let Ok((health, open, need_person)) = self.store.gauge_counts_with_causes(provider).await else { return };
        for h in Health::ALL {
            let n = health.iter().find(|(hh, _)| hh == h.as_str()).map_or(0, |r| r.1);
            metrics::gauge!("wa_sentinel_instances", "provider" => provider.to_string(), "health" => h.as_str())
                .set(n as f64);
        }
        metrics::gauge!("wa_sentinel_outages_open", "provider" => provider.to_string()).set(open as f64);
        metrics::gauge!("wa_sentinel_instances_need_person", "provider" => provider.to_string())
            .set(need_person as f64);
    }
}
