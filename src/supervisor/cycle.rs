//! The poll cycle (rule 1): every known instance polled once, whatever its
//! stored health; what changed committed; provider-wide verdicts; gauges.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use super::{ProviderHandle, Supervisor, SupervisorError};
use crate::domain::health::{Action, Observation};
use crate::domain::provider::{CycleSummary, provider_step};
use crate::domain::{Health, InstanceKey, Notice, ProviderErrorKind, Ts};
use crate::providers::Provider;
use crate::store::{InstanceFilter, InstanceRecord};

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

impl Supervisor {
    /// One status call, as an observation.
    pub(super) async fn poll_one(&self, h: &ProviderHandle, key: &InstanceKey) -> Observation {
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
}
