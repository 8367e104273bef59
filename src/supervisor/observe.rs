//! Every observation goes the same way: load the instance, `step` it, commit
//! the new state with its outage rows, events and outbox rows in one
//! transaction, and only then act (start recovery actions, wake the outbox).

use std::sync::Arc;

use tracing::Instrument;

use super::{Supervisor, SupervisorError};
use crate::domain::health::{Action, Change, Ctx, Observation};
use crate::domain::{Health, InstanceKey, Notice, StepOutput, step};
use crate::store::{CommitExtras, InstanceRecord, StoreError};

impl Supervisor {
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
    /// `seen_version` is the row version a poll's call started from: if a
    /// concurrent writer (a webhook, another poll) committed since, the poll's
    /// answer is older than what is stored and is dropped rather than replayed
    /// over it (the next cycle asks again).
    pub(super) async fn observe_with(
        self: &Arc<Self>,
        key: &InstanceKey,
        obs: Observation,
        rec: Option<InstanceRecord>,
        spawn_recoveries: bool,
        seen_version: Option<i64>,
    ) -> Result<Option<StepOutput>, SupervisorError> {
        // While the provider is in an outage (unreachable, unlicensed) its
        // instances' verdicts are held — for webhooks too: a `connecting` at
        // the server's boot must not order a recovery call that can only fail
        // and spend an attempt (rule 2). Proof of life still counts.
        if let Observation::Webhook(sig) = &obs
            && sig.says_down()
            && self.provider_outage_open(&key.provider).await?
        {
            tracing::debug!(instance = %key, "webhook during the provider's outage: its verdict is held");
            return Ok(None);
        }
        let mut rec = rec;
        for _ in 0..8 {
            let r = match rec.take() {
                Some(r) => r,
                None => self.store.instance(key).await?.ok_or_else(|| SupervisorError::UnknownInstance(key.clone()))?,
            };
            if seen_version.is_some_and(|v| v != r.version) {
                tracing::debug!(instance = %key, "a newer state was committed while the poll ran: its answer is dropped");
                self.index.set_state(key, &r.state, r.version);
                return Ok(None);
            }
            let now = self.now();
            let id = uuid::Uuid::now_v7().to_string();
            let ctx = Ctx {
                now,
                key,
                tenant: &r.tenant,
                new_id: &id,
                may_recover: self.leads(&key.provider),
                watching_since: self.watching_since(&key.provider),
            };
            let mut out = step(&r.state, obs.clone(), &ctx, self.policy_for(&key.provider));
            if out.state == r.state && out.actions.is_empty() && out.changes.is_empty() {
                self.index.set_state(key, &r.state, r.version); // a stale cache heals here
                return Ok(None); // nothing to write: healthy instances cost no write
            }
            // A down notice that only a QR scan can answer carries a fresh
            // re-pair link, stored in the transaction that queues the notice.
            let links = self.links_for_notices(&r, &mut out, now);
            let notices: Vec<&Notice> = out.notices().collect();
            let mut outbox = self.route(&notices);
            self.add_told(&notices, &mut outbox).await?;
            let prev_cause = r.state.outage.as_ref().map(|o| o.cause.as_str());
            let events = crate::domain::stream::of_step(&out.changes, &out.state, prev_cause, key, &r.tenant, now);
            let stream = self.stream_outs(events);
            let extras = CommitExtras { links: &links, stream: &stream };
            match self.store.commit_step_with(&r, &out, &outbox, &extras, now, false).await {
                Ok(_) => {
                    for _ in &links {
                        crate::events::pair_link(key, "issued", "notice");
                    }
                    self.after_commit(&r, &out, spawn_recoveries);
                    self.streamed(&stream);
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

    /// An outage's closing notice also goes to whoever was told of its
    /// start, whatever the routes say now (the instance may have moved to
    /// another tenant, a filter may have changed): a receiver that opened an
    /// incident must be able to close it.
    pub(super) async fn add_told(
        &self,
        notices: &[&Notice],
        outbox: &mut Vec<crate::store::OutboxEntry>,
    ) -> Result<(), SupervisorError> {
        use crate::domain::NoticeKind;
        for n in
            notices.iter().filter(|n| matches!(n.kind, NoticeKind::InstanceRecovered | NoticeKind::InstanceRetired))
        {
            let Some(outage) = &n.outage_id else { continue };
            for told in self.store.notifiers_told(outage).await? {
                let configured = self.cfg.notifiers.iter().any(|c| c.name == told);
                let routed = outbox.iter().any(|e| e.dedup_key == n.dedup_key && e.notifier == told);
                if configured && !routed {
                    outbox.push(crate::notify::entry(n, &told));
                }
            }
        }
        Ok(())
    }

    /// Is an outage of `provider` that holds instance verdicts open (any but
    /// a silent one, whose sessions answer)?
    async fn provider_outage_open(&self, provider: &str) -> Result<bool, SupervisorError> {
        let st = self.store.provider_state(provider).await?;
        Ok(st.outage.is_some_and(|o| o.cause != crate::domain::provider::ProviderCause::Silent))
    }

    /// After the commit: log what happened, count it, and start the actions.
    fn after_commit(self: &Arc<Self>, r: &InstanceRecord, out: &StepOutput, spawn_recoveries: bool) {
        self.index.set_state(&r.key, &out.state, r.version + 1);
        for c in &out.changes {
            crate::events::change(&r.key, &r.tenant, c);
            if let Change::HealthChanged { from, to, .. } = c
                && (*from == Health::Missing || *to == Health::Missing)
            {
                self.missing_moved(&r.key.provider);
            }
        }
        let mut notified = false;
        for a in &out.actions {
            match a {
                Action::Notify(_) => notified = true,
                Action::Recover { .. } if !spawn_recoveries => {}
                Action::Recover { kind, attempt, previous } => {
                    let me = self.clone();
                    let order = super::recovery::Order {
                        kind: *kind,
                        attempt: *attempt,
                        scheduled_at: out.state.last_restart_attempt,
                        previous: *previous,
                    };
                    let (key, id) = (r.key.clone(), r.id.clone());
                    let span = tracing::info_span!("recover", provider = %key.provider, instance = %key.name);
                    self.tasks.spawn(async move { me.recover(&id, &key, order, true).await }.instrument(span));
                }
            }
        }
        if notified {
            self.wake_outbox();
        }
    }
}
