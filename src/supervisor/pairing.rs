//! Re-pair links around the core ([`crate::domain::pairing`]): a link minted
//! for the down notice of an outage only a QR scan can end (in the
//! transaction that queues the notice), links minted and revoked on demand,
//! the provider calls the public page proxies, and the one start a session
//! may need before it hands out a QR code — made through the same committed
//! step as a manual restart, so `last_restart_attempt` is committed first
//! and the instance's cooldown holds (rule 4).

use std::sync::Arc;
use std::time::Duration;

use super::requests::{Actor, ProviderAction};
use super::{Supervisor, SupervisorError};
use crate::domain::health::{Action, Cause, Change, Observation, StepOutput};
use crate::domain::pairing::gets_link;
use crate::domain::{Health, InstanceKey, Ts};
use crate::providers::pairing::{CodeAnswer, QrAnswer, Started};
use crate::store::{InstanceRecord, NewPairLink};

/// The longest a link may live (a credential to the customer's account).
pub const MAX_LINK_TTL: Duration = Duration::from_secs(7 * 86_400);

/// A link minted on demand. The URL holds the token: show it once, store it
/// nowhere.
#[derive(Debug, Clone)]
pub struct MintedLink {
    pub id: String,
    pub url: String,
    pub expires_at: Ts,
}

/// What became of a start the page asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// Called here; the provider's answer.
    Started(Started),
    /// Refused by the state machine (inside the cooldown), and why.
    Refused(String),
    /// This replica does not lead the provider: its leader makes the call at
    /// the start of its next cycle.
    Queued,
}

impl Supervisor {
    /// `server.public_url` when links are on (`pairing.enabled`).
    pub fn pairing_base(&self) -> Option<&str> {
        self.cfg.server.public_url.as_deref().filter(|_| self.cfg.pairing.enabled)
    }

    /// Give every down notice of `out` whose cause a QR scan ends a fresh
    /// link; the rows to insert with the step's commit.
    pub(super) fn links_for_notices(&self, r: &InstanceRecord, out: &mut StepOutput, now: Ts) -> Vec<NewPairLink> {
        let Some(base) = self.pairing_base() else { return Vec::new() };
        let mut links = Vec::new();
        for a in &mut out.actions {
            let Action::Notify(n) = a else { continue };
            let cause = n.cause.as_deref().and_then(Cause::parse);
            if !n.kind.is_down_class() || n.instance.is_none() || !gets_link(cause, &self.cfg.pairing.causes) {
                continue;
            }
            let token = crate::pairing::new_token();
            links.push(NewPairLink {
                id: uuid::Uuid::now_v7().to_string(),
                token_hash: crate::pairing::token_hash(&token),
                instance_id: r.id.clone(),
                provider: r.key.provider.clone(),
                outage_id: n.outage_id.clone(),
                created_by: "notice".into(),
                created_at: now,
                expires_at: now.plus(self.cfg.pairing.link_ttl),
            });
            n.pair_url = Some(crate::pairing::url(base, &token));
        }
        links
    }

    /// A link for `key` now (`pair-link`, the API, the instance page), valid
    /// for `ttl` (default `pairing.link_ttl`), bound to its open outage if any.
    pub async fn mint_pair_link(
        &self,
        key: &InstanceKey,
        ttl: Option<Duration>,
        by: &str,
    ) -> Result<MintedLink, SupervisorError> {
        let Some(base) = self.pairing_base() else {
            return Err(SupervisorError::Refused(
                "re-pair links are off: set server.public_url (the base of every link) and leave pairing.enabled on"
                    .into(),
            ));
        };
        let ttl = ttl.unwrap_or(self.cfg.pairing.link_ttl);
        if ttl.is_zero() || ttl > MAX_LINK_TTL {
            return Err(SupervisorError::Refused("a link lives more than 0s and at most 7d".into()));
        }
        if !self.providers.contains_key(&key.provider) {
            return Err(SupervisorError::UnknownProvider(key.provider.clone()));
        }
        let rec = self.store.instance(key).await?.ok_or_else(|| SupervisorError::UnknownInstance(key.clone()))?;
        match rec.state.health {
            Health::Connected => {
                return Err(SupervisorError::Refused(format!("{key} is connected: there is nothing to pair")));
            }
            Health::Missing => {
                return Err(SupervisorError::Refused(format!(
                    "{key} does not exist on the provider: create it there first"
                )));
            }
            _ => {}
        }
        let now = self.now();
        let token = crate::pairing::new_token();
        let link = NewPairLink {
            id: uuid::Uuid::now_v7().to_string(),
            token_hash: crate::pairing::token_hash(&token),
            instance_id: rec.id.clone(),
            provider: key.provider.clone(),
            outage_id: rec.state.outage.as_ref().map(|o| o.id.clone()),
            created_by: by.to_string(),
            created_at: now,
            expires_at: now.plus(ttl),
        };
        self.store.pair_link_create(&link).await?;
        crate::events::pair_link(key, "issued", by);
        Ok(MintedLink { id: link.id, url: crate::pairing::url(base, &token), expires_at: link.expires_at })
    }

    /// Revoke every usable link of `key`; returns how many.
    pub async fn revoke_pair_links(&self, key: &InstanceKey, by: &str) -> Result<u64, SupervisorError> {
        let rec = self.store.instance(key).await?.ok_or_else(|| SupervisorError::UnknownInstance(key.clone()))?;
        let now = self.now();
        let n = self.store.pair_links_revoke(&rec.id, now).await?;
        let ev = serde_json::json!({"by": by, "links": n});
        self.store.record_event(Some(&rec.id), &key.provider, "pair_links_revoked", &ev, now).await?;
        crate::events::pair_link(key, "revoked", by);
        Ok(n)
    }

    fn handle(&self, provider: &str) -> Result<Arc<super::ProviderHandle>, SupervisorError> {
        self.providers.get(provider).cloned().ok_or_else(|| SupervisorError::UnknownProvider(provider.to_string()))
    }

    /// The instance's current QR code, from its provider (a status call's permit).
    pub async fn pair_qr(&self, key: &InstanceKey) -> Result<QrAnswer, SupervisorError> {
        let h = self.handle(&key.provider)?;
        let _permit = h.calls.acquire().await.expect("semaphore never closed");
        h.client
            .pairing_qr(&self.instance_ref(key))
            .await
            .map_err(|source| SupervisorError::Provider { provider: key.provider.clone(), source })
    }

    /// A pairing code for `phone` (digits), from the instance's provider.
    pub async fn pair_code(&self, key: &InstanceKey, phone: &str) -> Result<CodeAnswer, SupervisorError> {
        let h = self.handle(&key.provider)?;
        let _permit = h.calls.acquire().await.expect("semaphore never closed");
        h.client
            .pairing_code(&self.instance_ref(key), phone)
            .await
            .map_err(|source| SupervisorError::Provider { provider: key.provider.clone(), source })
    }

    /// Start `key`'s session so that it hands out a QR code (with `phone`,
    /// in pairing-code mode where the provider can). Through the committed
    /// step of a manual restart: refused inside the cooldown, and
    /// `last_restart_attempt` committed before the provider is called; a
    /// start that sends nothing gives its attempt back. Only the provider's
    /// leader calls it; another replica queues a restart for the leader.
    pub async fn pair_start(
        self: &Arc<Self>,
        key: &InstanceKey,
        phone: Option<&str>,
        address: &str,
    ) -> Result<StartOutcome, SupervisorError> {
        let h = self.handle(&key.provider)?;
        if !self.leads(&key.provider) {
            let actor = Actor { name: "re-pair link".into(), address: address.to_string() };
            self.provider_action(key, ProviderAction::Restart { force: false }, &actor).await?;
            return Ok(StartOutcome::Queued);
        }
        let out = self.observe_with(key, Observation::ManualRestart { force: false }, None, false, None).await?;
        let Some(out) = out else { return Ok(StartOutcome::Refused(format!("{key}: nothing to do"))) };
        if let Some(Change::RecoveryRefused { why }) =
            out.changes.iter().find(|c| matches!(c, Change::RecoveryRefused { .. }))
        {
            return Ok(StartOutcome::Refused(why.clone()));
        }
        let previous = out.actions.iter().find_map(|a| match a {
            Action::Recover { previous, .. } => Some(*previous),
            _ => None,
        });
        let Some(previous) = previous else { return Ok(StartOutcome::Refused(format!("{key}: nothing to do"))) };
        let rec = self.store.instance(key).await?.ok_or_else(|| SupervisorError::UnknownInstance(key.clone()))?;
        let result = {
            let _permit = h.recoveries.acquire().await.expect("semaphore never closed");
            h.client.pairing_start(&self.instance_ref(key), phone).await
        };
        let (outcome, detail) = match &result {
            Ok(Started::Sent(a)) => ("sent", a.detail.clone()),
            Ok(Started::Skipped(why)) => ("skipped", why.clone()),
            Err(e) => ("failed", e.to_string()),
        };
        metrics::counter!("wa_sentinel_restarts_total", "provider" => key.provider.clone(), "result" => outcome)
            .increment(1);
        crate::events::recovery(key, crate::domain::RecoveryKind::Reconnect, 0, outcome, &detail);
        let now = self.now();
        let ev =
            serde_json::json!({"action": "start for re-pairing", "attempt": 0, "outcome": outcome, "detail": detail});
        self.store.record_event(Some(&rec.id), &key.provider, "recovery_result", &ev, now).await?;
        if outcome == "skipped"
            && let Some(scheduled_at) = out.state.last_restart_attempt
        {
            let obs = Observation::RecoverySkipped { attempt: 0, scheduled_at, previous };
            self.observe_with(key, obs, None, false, None).await?;
        }
        result
            .map(StartOutcome::Started)
            .map_err(|source| SupervisorError::Provider { provider: key.provider.clone(), source })
    }
}
