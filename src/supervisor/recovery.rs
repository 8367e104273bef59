//! Recovery actions: the provider call made after the attempt was committed
//! (rule 4), its outcome recorded, and a verification poll; and the manual
//! `restart` command through the same state machine.

use std::sync::Arc;

use super::{Supervisor, SupervisorError};
use crate::domain::health::{Action, Change, Observation};
use crate::domain::{InstanceKey, RecoveryKind, Ts};
use crate::providers::{Provider, Recovered};

/// One recovery call to make, as the committed step ordered it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Order {
    pub kind: RecoveryKind,
    /// 1-based within the outage; 0 for a manual restart.
    pub attempt: u32,
    /// When it was ordered (the committed `last_restart_attempt`).
    pub scheduled_at: Option<Ts>,
    /// The `last_restart_attempt` it replaced.
    pub previous: Option<Ts>,
}

impl Supervisor {
    /// Call the provider's recovery endpoint (the state is already committed),
    /// record the outcome, and verify with a poll after `settle_delay`. A call
    /// the client decided not to send is recorded as skipped and its attempt
    /// given back (no budget spent, no cooldown started).
    pub(super) async fn recover(
        self: &Arc<Self>,
        id: &str,
        key: &InstanceKey,
        order: Order,
        verify: bool,
    ) -> Result<Recovered, SupervisorError> {
        let Some(h) = self.providers.get(&key.provider).cloned() else {
            return Err(SupervisorError::UnknownProvider(key.provider.clone()));
        };
        let kind = order.kind;
        let result = {
            let _permit = h.recoveries.acquire().await.expect("semaphore never closed");
            h.client.recover(&self.instance_ref(key), kind).await
        };
        let now = self.now();
        let (outcome, detail) = match &result {
            Ok(Recovered::Sent(d)) => ("sent", d.clone()),
            Ok(Recovered::Skipped(d)) => ("skipped", d.clone()),
            Err(e) => ("failed", e.to_string()),
        };
        metrics::counter!("wa_sentinel_restarts_total", "provider" => key.provider.clone(), "result" => outcome)
            .increment(1);
        crate::events::recovery(key, kind, order.attempt, outcome, &detail);
        let ev = serde_json::json!({"action": kind.as_str(), "attempt": order.attempt, "outcome": outcome, "detail": detail});
        self.store.record_event(Some(id), &key.provider, "recovery_result", &ev, now).await?;
        if outcome == "skipped"
            && let Some(scheduled_at) = order.scheduled_at
        {
            let obs = Observation::RecoverySkipped { attempt: order.attempt, scheduled_at, previous: order.previous };
            self.observe_with(key, obs, None, false, None).await?;
        }
        if verify {
            tokio::time::sleep(self.cfg.supervisor.settle_delay).await;
            // The same staleness guard as the cycle's polls: a webhook-driven
            // recovery committed while this call ran wins over its answer.
            let seen = self.store.instance(key).await?.map(|r| r.version);
            let obs = self.poll_one(&h, key).await;
            let out = self.observe_with(key, obs.clone(), None, true, seen).await?;
            let ev = serde_json::json!({
                "observation": crate::domain::describe::observation(&obs),
                "health": out.as_ref().map(|o| o.state.health.as_str()),
            });
            self.store.record_event(Some(id), &key.provider, "recovery_verified", &ev, self.now()).await?;
        }
        result.map_err(|source| SupervisorError::Provider { provider: key.provider.clone(), source })
    }

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
        let (kind, previous) = out
            .actions
            .iter()
            .find_map(|a| match a {
                Action::Recover { kind, previous, .. } => Some((*kind, *previous)),
                _ => None,
            })
            .unwrap_or((RecoveryKind::Reconnect, None));
        let order = Order { kind, attempt: 0, scheduled_at: out.state.last_restart_attempt, previous };
        match self.recover(&rec.id, key, order, false).await? {
            Recovered::Sent(d) => Ok(format!("{key}: {} sent ({d})", kind.as_str())),
            Recovered::Skipped(d) => Ok(format!("{key}: nothing sent ({d}); no cooldown started")),
        }
    }
}
