//! Instances have a lifecycle (rule 14, docs/rules.md). Retiring one — deleted on the
//! provider, removed from the config, or its provider removed — closes its
//! open outage (`recovered_by = "retired"`) with one final notice to whoever
//! was told about that outage, in the transaction that marks it absent. A new
//! instance under an old name then gets a fresh row (no inherited outage,
//! budget or cooldown).

use std::sync::Arc;

use super::{Supervisor, SupervisorError};
use crate::domain::health::{Ctx, Observation};
use crate::domain::step;
use crate::store::{InstanceRecord, StoreError};

impl Supervisor {
    /// Retire `rec`; `why` is recorded in the audit log.
    pub(super) async fn retire(self: &Arc<Self>, rec: InstanceRecord, why: &str) -> Result<(), SupervisorError> {
        let key = rec.key.clone();
        let mut rec = Some(rec);
        for _ in 0..8 {
            let r = match rec.take() {
                Some(r) => r,
                None => match self.store.instance(&key).await? {
                    Some(r) => r,
                    None => return Ok(()), // already retired by someone else
                },
            };
            let now = self.now();
            let id = uuid::Uuid::now_v7().to_string();
            let ctx = Ctx { now, key: &key, tenant: &r.tenant, new_id: &id, may_recover: false, watching_since: now };
            let out = step(&r.state, Observation::Retired, &ctx, &self.cfg.policy);
            // The closing notice goes to exactly the notifiers that were told
            // about the outage, whatever their filters say now.
            let mut outbox = Vec::new();
            for n in out.notices() {
                let Some(outage) = &n.outage_id else { continue };
                let told = self.store.notifiers_told(outage).await?;
                outbox.extend(
                    self.cfg
                        .notifiers
                        .iter()
                        .filter(|c| told.contains(&c.name))
                        .map(|c| crate::notify::entry(n, &c.name)),
                );
            }
            let prev_cause = r.state.outage.as_ref().map(|o| o.cause.as_str());
            let events = crate::domain::stream::of_step(&out.changes, &out.state, prev_cause, &key, &r.tenant, now);
            let stream = self.stream_outs(events);
            match self.store.commit_step_and(&r, &out, &outbox, now, true, &stream).await {
                Ok(_) => {
                    self.streamed(&stream);
                    self.index.remove(&key);
                    for c in &out.changes {
                        crate::events::change(&key, &r.tenant, c);
                    }
                    tracing::info!(instance = %key, why, "instance retired");
                    let ev = serde_json::json!({ "why": why });
                    self.store.record_event(Some(&r.id), &key.provider, "instance_retired", &ev, now).await?;
                    if !outbox.is_empty() {
                        self.wake_outbox();
                    }
                    return Ok(());
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(SupervisorError::Refused(format!("{key}: kept changing concurrently; not retired this cycle")))
    }
}
