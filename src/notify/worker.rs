//! The outbox worker: claims due notices, delivers them through their
//! notifier, and marks each delivered, retried later (exponential backoff with
//! jitter from `backon`, or the receiver's `Retry-After`) or dead once older
//! than `delivery_max_age`. Delivery never runs inside the poll loop or the
//! webhook handler: they commit outbox rows and [`OutboxWorker::wake`] it.
//!
//! Per notifier, notices go out in order: after a failure, that notifier's
//! later rows in the same batch wait for the next round, so a recovery never
//! overtakes its down notice.
//!
//! A claim is a lease (`DeliveryPolicy::lease`, renewed from the current
//! clock before every delivery); only its holder records an outcome, so with
//! several replicas (or the two generations of a config reload) a notice is
//! sent once even behind a slow notifier.
//!
//! A `whatsapp` notifier's claimed rows are delivered together by
//! `whatsapp::deliver` (digests, pacing, hand-over to a fallback,
//! message ids kept per recipient).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::channels::{DeliveryError, Notifier};
use super::render::render;
use super::whatsapp;
use crate::config::{Config, Language};
use crate::domain::{Notice, Ts};
use crate::store::{OutboxRow, Store, StoreError};

/// How deliveries are retried.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub max_age: Duration,
    /// Bound on one delivery.
    pub timeout: Duration,
    /// Rows claimed per round.
    pub batch: u32,
    /// Look for due rows at least this often (a wake-up comes sooner).
    pub idle_poll: Duration,
}

impl DeliveryPolicy {
    pub fn from_config(cfg: &Config) -> Self {
        DeliveryPolicy {
            min_delay: cfg.alerts.retry_min_delay,
            max_delay: cfg.alerts.retry_max_delay,
            max_age: cfg.alerts.delivery_max_age,
            timeout: Duration::from_secs(10),
            batch: 64,
            idle_poll: Duration::from_secs(1),
        }
    }

    /// How long a claim holds a row: three delivery timeouts, renewed before
    /// each delivery, so a delivery (bounded by `timeout`) never outlives it.
    pub fn lease(&self) -> Duration {
        self.timeout * 3
    }

    /// The wait before attempt `attempts + 1`, after `attempts` failures (>= 1).
    pub fn delay(&self, attempts: u32) -> Duration {
        backon::ExponentialBuilder::new()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(attempts.saturating_sub(1) as usize)
            .unwrap_or(self.max_delay)
    }
}

/// The clock, read at every step of a drain.
pub(super) type Clock = Arc<dyn Fn() -> Ts + Send + Sync>;

struct Inner {
    store: Store,
    notifiers: HashMap<String, Notifier>,
    /// Event subscribers, by their outbox name (`subscriber:<name>`).
    subscribers: HashMap<String, super::subscriber::SubscriberChannel>,
    /// The notifiers this worker delivers for (it claims nothing else).
    names: Vec<String>,
    lang: Language,
    policy: DeliveryPolicy,
    wake: Notify,
    /// When the last message went through each `whatsapp` notifier's instance.
    pace: whatsapp::Pace,
}

/// Cheap to clone; every clone wakes and drains the same worker state.
#[derive(Clone)]
pub struct OutboxWorker {
    inner: Arc<Inner>,
}

/// What one drain did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    pub delivered: u32,
    pub failed: u32,
    pub dead: u32,
    /// Handed to the notifier's fallback (`whatsapp` notifiers).
    pub handed_over: u32,
}

impl OutboxWorker {
    /// Build every configured notifier; a notifier that cannot be built is an error naming it.
    pub fn new(store: Store, cfg: &Config, policy: DeliveryPolicy) -> Result<Self, String> {
        let mut notifiers = HashMap::new();
        for n in &cfg.notifiers {
            let built = Notifier::new(n, cfg, policy.timeout)
                .map_err(|e| format!("notifier `{}` ({}): {e}", n.name, n.kind_name()))?;
            notifiers.insert(n.name.clone(), built);
        }
        let mut subscribers = HashMap::new();
        for s in &cfg.subscribers {
            let built = super::subscriber::SubscriberChannel::new(s, policy.timeout)
                .map_err(|e| format!("subscriber `{}`: {e}", s.name))?;
            subscribers.insert(s.outbox_name(), built);
        }
        Ok(OutboxWorker {
            inner: Arc::new(Inner {
                store,
                names: notifiers.keys().chain(subscribers.keys()).cloned().collect(),
                notifiers,
                subscribers,
                lang: cfg.alerts.language,
                policy,
                wake: Notify::new(),
                pace: whatsapp::Pace::default(),
            }),
        })
    }

    /// New outbox rows were committed: deliver them now rather than at the next idle poll.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Deliver until cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(self.inner.policy.idle_poll) => {}
            }
            if let Err(e) = self.drain(crate::clock::now).await {
                tracing::warn!(error = %e, "outbox delivery round failed; retrying");
            }
        }
    }

    /// Claim and deliver everything due now; returns what happened. `now` is
    /// read again at every step (claims are renewed from the current clock).
    pub async fn drain(
        &self,
        now: impl Fn() -> Ts + Send + Sync + 'static,
    ) -> Result<DrainReport, crate::store::StoreError> {
        let clock: Clock = Arc::new(now);
        let mut total = DrainReport::default();
        loop {
            let p = &self.inner.policy;
            let rows = self.inner.store.claim_outbox(clock(), p.lease(), p.batch, &self.inner.names).await?;
            if rows.is_empty() {
                break;
            }
            let n = rows.len();
            let mut by_notifier: BTreeMap<String, Vec<OutboxRow>> = BTreeMap::new();
            for r in rows {
                by_notifier.entry(r.notifier.clone()).or_default().push(r);
            }
            let mut set = tokio::task::JoinSet::new();
            for (_, group) in by_notifier {
                let (me, clock) = (self.clone(), clock.clone());
                set.spawn(async move { me.deliver_group(group, clock).await });
            }
            let (mut progressed, mut handed) = (false, false);
            while let Some(res) = set.join_next().await {
                let r = res.expect("delivery task does not panic")?;
                progressed |= r.delivered + r.dead + r.handed_over > 0;
                // A notice handed over is a new row for the fallback: claim again.
                handed |= r.handed_over > 0;
                total.delivered += r.delivered;
                total.failed += r.failed;
                total.dead += r.dead;
                total.handed_over += r.handed_over;
            }
            if !progressed || (n < p.batch as usize && !handed) {
                break;
            }
        }
        let before = Ts(clock().0 - crate::domain::time::duration_ms(self.inner.policy.max_age));
        if let Ok(n) = self.inner.store.outbox_expire_unknown(&self.inner.names, before).await
            && n > 0
        {
            tracing::error!(rows = n, "notices for notifiers no longer configured marked dead");
            metrics::counter!("wa_sentinel_notifications_total", "notifier" => "unknown", "kind" => "any", "result" => "dead").increment(n);
        }
        if let Ok(pending) = self.inner.store.outbox_count("pending").await {
            metrics::gauge!("wa_sentinel_outbox_pending").set(pending as f64);
        }
        Ok(total)
    }

    /// Deliver one notifier's claimed rows in order. Before each row the
    /// claim on it and on every later row is renewed from the current clock,
    /// so a slow notifier never lets the lease of rows still waiting run out;
    /// a row already taken over by another worker (this one stalled past the
    /// lease) ends the group, its later rows left to that worker.
    async fn deliver_group(&self, rows: Vec<OutboxRow>, clock: Clock) -> Result<DrainReport, crate::store::StoreError> {
        let store = &self.inner.store;
        let policy = &self.inner.policy;
        if let Some(Notifier::WhatsApp(ch)) = rows.first().and_then(|r| self.inner.notifiers.get(&r.notifier)) {
            let cx = whatsapp::Cx { store, clock: &clock, policy, pace: &self.inner.pace };
            return whatsapp::deliver(ch, rows, &cx).await;
        }
        let mut rep = DrainReport::default();
        for (i, row) in rows.iter().enumerate() {
            let rest: Vec<i64> = rows[i..].iter().map(|r| r.id).collect();
            let held = store.outbox_renew_claim(&row.claim_token, &rest, clock().plus(policy.lease())).await?;
            if !held.contains(&row.id) {
                tracing::warn!(notifier = %row.notifier, dedup_key = %row.dedup_key, "outbox claim taken over by another worker before delivery; leaving this notifier's rows to it");
                store.outbox_release(&row.claim_token, &held).await?;
                break;
            }
            let outcome = self.deliver(row).await;
            let now = clock();
            let (recorded, retry_later) = match outcome {
                Ok(()) => (record_delivered(store, row, now, &mut rep).await?, false),
                Err(e) => match record_failure(store, policy, row, &e, now, &mut rep).await? {
                    Some(retry_later) => (true, retry_later),
                    None => (false, false),
                },
            };
            if !recorded {
                // The lease ran out while this worker was sending (a stalled
                // process): the row belongs to another worker now, which
                // decides its fate; this outcome is dropped.
                tracing::warn!(notifier = %row.notifier, dedup_key = %row.dedup_key, "outbox claim taken over during delivery; this worker's outcome was not recorded");
                let later: Vec<i64> = rows[i + 1..].iter().map(|r| r.id).collect();
                store.outbox_release(&row.claim_token, &later).await?;
                break;
            }
            if retry_later {
                // Later rows of this notifier wait behind the failed one.
                let later: Vec<i64> = rows[i + 1..].iter().map(|r| r.id).collect();
                store.outbox_release(&row.claim_token, &later).await?;
                break;
            }
        }
        Ok(rep)
    }

    async fn deliver(&self, row: &OutboxRow) -> Result<(), DeliveryError> {
        let timeout = self.inner.policy.timeout;
        if let Some(sub) = self.inner.subscribers.get(&row.notifier) {
            let now_s = crate::clock::now().0 / 1000;
            return tokio::time::timeout(timeout, sub.send(&row.dedup_key, &row.payload, now_s))
                .await
                .unwrap_or_else(|_| Err(DeliveryError::transient(format!("no answer within {}s", timeout.as_secs()))));
        }
        // `whatsapp` notifiers deliver whole groups (`whatsapp::deliver`).
        let Some(notifier) = self.inner.notifiers.get(&row.notifier) else {
            return Err(DeliveryError::permanent(format!("notifier `{}` is no longer configured", row.notifier)));
        };
        let notice: Notice = serde_json::from_str(&row.payload)
            .map_err(|e| DeliveryError::permanent(format!("stored notice is not understood: {e}")))?;
        let text = render(&notice, self.inner.lang);
        // Bound every channel (SMTP's timeout is per command), so one
        // delivery always fits well inside the claim's lease.
        tokio::time::timeout(timeout, notifier.send(&notice, &text))
            .await
            .unwrap_or_else(|_| Err(DeliveryError::transient(format!("no answer within {}s", timeout.as_secs()))))
    }
}

/// Record a delivery (only the claim's holder can): false when the row was
/// taken over meanwhile.
pub(super) async fn record_delivered(
    store: &Store,
    row: &OutboxRow,
    now: Ts,
    rep: &mut DrainReport,
) -> Result<bool, StoreError> {
    let recorded = store.outbox_delivered(row, now).await?;
    if recorded {
        metrics::counter!("wa_sentinel_notifications_total", "notifier" => row.notifier.clone(), "kind" => row.kind.clone(), "result" => "delivered").increment(1);
        tracing::debug!(notifier = %row.notifier, dedup_key = %row.dedup_key, "notice delivered");
        rep.delivered += 1;
    }
    Ok(recorded)
}

/// Record a failed attempt: retried after the backoff (or the receiver's
/// `Retry-After`), or dead when it can never work or the notice would be
/// older than `delivery_max_age`. `None` when the row was taken over
/// meanwhile (nothing written); else whether it will be retried.
pub(super) async fn record_failure(
    store: &Store,
    policy: &DeliveryPolicy,
    row: &OutboxRow,
    e: &DeliveryError,
    now: Ts,
    rep: &mut DrainReport,
) -> Result<Option<bool>, StoreError> {
    let attempts = u32::try_from(row.attempts + 1).unwrap_or(u32::MAX);
    let age = now.since(Ts(row.created_at));
    let wait = e.retry_after.unwrap_or_default().max(policy.delay(attempts));
    let give_up = e.permanent || age + wait > policy.max_age;
    let next = (!give_up).then(|| now.plus(wait));
    if !store.outbox_failed(row, &e.detail, next).await? {
        return Ok(None);
    }
    let result = if give_up { "dead" } else { "retry" };
    metrics::counter!("wa_sentinel_notifications_total", "notifier" => row.notifier.clone(), "kind" => row.kind.clone(), "result" => result).increment(1);
    if give_up {
        tracing::error!(notifier = %row.notifier, dedup_key = %row.dedup_key, attempts, error = %e.detail, "notice dead: giving up");
        rep.dead += 1;
    } else {
        tracing::warn!(notifier = %row.notifier, dedup_key = %row.dedup_key, attempts, retry_in = ?wait, error = %e.detail, "notice delivery failed; will retry");
        rep.failed += 1;
    }
    Ok(Some(!give_up))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_with_jitter_and_stay_capped() {
        let p = DeliveryPolicy {
            min_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            max_age: Duration::from_secs(3600),
            timeout: Duration::from_secs(1),
            batch: 1,
            idle_poll: Duration::from_secs(1),
        };
        let d1 = p.delay(1);
        assert!(d1 >= Duration::from_secs(2) && d1 <= Duration::from_secs(4), "{d1:?}");
        let d4 = p.delay(4);
        assert!(d4 >= Duration::from_secs(16), "{d4:?}");
        assert!(p.delay(30) <= Duration::from_secs(120), "capped (jitter may add up to the delay again)");
    }
}
