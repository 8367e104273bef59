//! Status-page actions that call a provider (restart, webhook re-apply).
//! Only a provider's leader calls it (docs/operations.md#several-replicas-postgresql): on the leader — and in a
//! single process, which leads every provider — the action is carried out at
//! once; on a replica that does not lead the provider it is recorded
//! (`action_requests`) and the leader carries it out at the start of its next
//! poll cycle of that provider, recording the outcome as an `operator_action`
//! audit event like the page does. A request not taken within
//! [`REQUEST_TTL`] expires: a restart must not arrive long after the click.

use std::sync::Arc;
use std::time::Duration;

use super::{Supervisor, SupervisorError};
use crate::domain::InstanceKey;
use crate::store::ActionRequest;

/// How long a recorded request waits for the leader before it expires.
pub const REQUEST_TTL: Duration = Duration::from_secs(5 * 60);

/// An action that calls the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderAction {
    Restart { force: bool },
    ReapplyWebhook,
}

impl ProviderAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderAction::Restart { .. } => "restart",
            ProviderAction::ReapplyWebhook => "webhook",
        }
    }
}

/// Who asked (recorded with the outcome).
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub address: String,
}

/// What became of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carried {
    /// Carried out here; the provider's answer.
    Done(String),
    /// Recorded for the provider's leader.
    Queued,
}

impl Supervisor {
    /// Carry out `action` on `key` now if this process leads its provider,
    /// else record it for the leader.
    pub async fn provider_action(
        self: &Arc<Self>,
        key: &InstanceKey,
        action: ProviderAction,
        actor: &Actor,
    ) -> Result<Carried, SupervisorError> {
        if self.leads(&key.provider) {
            return self.carry_out(key, action).await.map(Carried::Done);
        }
        let rec = self.store.instance(key).await?.ok_or_else(|| SupervisorError::UnknownInstance(key.clone()))?;
        let force = matches!(action, ProviderAction::Restart { force: true });
        let req = ActionRequest {
            id: uuid::Uuid::now_v7().to_string(),
            instance_id: rec.id,
            provider: key.provider.clone(),
            action: action.as_str().to_string(),
            force,
            actor: actor.name.clone(),
            address: actor.address.clone(),
            requested_at: self.now().0,
        };
        self.store.request_action(&req).await?;
        Ok(Carried::Queued)
    }

    async fn carry_out(self: &Arc<Self>, key: &InstanceKey, action: ProviderAction) -> Result<String, SupervisorError> {
        match action {
            ProviderAction::Restart { force } => self.manual_restart(key, force).await,
            ProviderAction::ReapplyWebhook => self.reapply_webhook(key).await,
        }
    }

    /// On the provider's leader: carry out the requests recorded for it by
    /// other replicas, oldest first, each with an `operator_action` event.
    /// Returns how many were carried out (expired ones are not).
    pub async fn run_requested_actions(self: &Arc<Self>, provider: &str) -> Result<u32, SupervisorError> {
        if !self.leads(provider) {
            return Ok(0);
        }
        let now = self.now();
        let expired_before = crate::domain::Ts(now.0 - crate::domain::time::duration_ms(REQUEST_TTL));
        let taken = self.store.take_action_requests(provider, now, expired_before).await?;
        let mut n = 0;
        for r in taken {
            // The request is bound to the record it was made for: after a
            // deletion and a re-creation under the same name, it must not hit
            // the new instance.
            let current = match self.store.instance_by_id(&r.instance_id).await? {
                Some(rec) => self.store.instance(&rec.key).await?.filter(|now| now.id == rec.id),
                None => None,
            };
            let Some(rec) = current else {
                let why = "the instance it was asked for was retired (deleted, or created again under its name): not carried out";
                self.store.finish_action_request(&r.id, "refused", why, self.now()).await?;
                continue;
            };
            let action = match r.action.as_str() {
                "restart" => ProviderAction::Restart { force: r.force },
                _ => ProviderAction::ReapplyWebhook,
            };
            let (outcome, message) = match self.carry_out(&rec.key, action).await {
                Ok(m) => ("done", m),
                Err(SupervisorError::Store(e)) => return Err(e.into()),
                Err(SupervisorError::Provider { provider, source }) => {
                    tracing::warn!(%provider, error = %source, "requested action: provider call failed");
                    ("failed", format!("provider `{provider}` did not carry out the call ({})", source.class))
                }
                Err(e) => ("refused", e.to_string()),
            };
            let now = self.now();
            self.store.finish_action_request(&r.id, outcome, &message, now).await?;
            let ev = serde_json::json!({
                "action": r.action, "actor": r.actor, "address": r.address, "outcome": outcome, "message": message,
                "force": r.force, "requested_at": crate::domain::Ts(r.requested_at).rfc3339(),
                "via": "request from a replica that does not lead the provider",
            });
            self.store.record_action_event(&rec.id, &rec.key.provider, &ev, now).await?;
            crate::events::requested_action(&rec.key, &r.action, outcome);
            n += 1;
        }
        Ok(n)
    }
}
