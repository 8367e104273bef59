//! Inventory at the edge, one provider at a time: its discovery call, the
//! pure merge of [`super::inventory`] written to the store (retirements first,
//! so a recreated name gets a fresh row), and the receiver's index refreshed
//! for that provider only. Instances of providers removed from the config are
//! retired once per config generation.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::inventory::{self, Listed};
use super::{Supervisor, SupervisorError};
use crate::config::ProviderConfig;
use crate::domain::InstanceKey;
use crate::providers::Provider;
use crate::store::{InstanceFilter, InstanceRecord};

impl Supervisor {
    /// Bring provider `p`'s stored instances in line with its config and (when
    /// `discover` is set and allowed) its discovery listing; returns its present
    /// instances. A failed discovery keeps the known instances.
    pub(super) async fn sync_provider(
        self: &Arc<Self>,
        p: &ProviderConfig,
        allow_discovery: bool,
    ) -> Result<Vec<InstanceRecord>, SupervisorError> {
        let listing = if p.discover && allow_discovery { self.discover(p).await } else { None };
        let wanted = inventory::wanted(&self.cfg, p, listing.as_deref());
        let filter = InstanceFilter { provider: Some(p.name.clone()), ..Default::default() };
        let stored = self.store.instances(&filter).await?;
        let d = inventory::diff(p, &stored, &wanted, listing.is_some());
        let now = self.now();
        for (id, why) in &d.retire {
            if let Some(r) = stored.iter().find(|r| &r.id == id) {
                self.retire(r.clone(), why).await?;
            }
        }
        for w in &d.upsert {
            self.store.ensure_instance(&w.key, &w.tenant, &w.labels, w.source, w.provider_id.as_deref(), now).await?;
        }
        let present =
            if d.upsert.is_empty() && d.retire.is_empty() { stored } else { self.store.instances(&filter).await? };
        self.index.refresh_provider(&p.name, &present);
        Ok(present)
    }

    /// One discovery call; `None` when it failed (nothing is concluded from absence).
    async fn discover(&self, p: &ProviderConfig) -> Option<Vec<Listed>> {
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
                Some(list.into_iter().map(|d| Listed { name: d.name, provider_id: d.provider_id }).collect())
            }
            Err(e) => {
                tracing::warn!(provider = %p.name, error = %e, "discovery failed; keeping the known instances");
                None
            }
        }
    }

    /// Retire the instances of providers that are no longer configured (once
    /// per config generation: only a reload or a restart removes a provider).
    pub(super) async fn retire_orphans(self: &Arc<Self>) -> Result<(), SupervisorError> {
        if self.orphans_checked.load(Ordering::Acquire) {
            return Ok(());
        }
        let all = self.store.instances(&InstanceFilter::default()).await?;
        for r in all.into_iter().filter(|r| !self.providers.contains_key(&r.key.provider)) {
            self.retire(r, "its provider was removed from the configuration").await?;
        }
        self.orphans_checked.store(true, Ordering::Release);
        Ok(())
    }

    /// Every provider's inventory at once (tests, one-shot commands); returns
    /// all present instances.
    pub async fn sync_inventory(self: &Arc<Self>) -> Result<Vec<InstanceRecord>, SupervisorError> {
        self.retire_orphans().await?;
        let mut all = Vec::new();
        for p in &self.cfg.providers {
            all.extend(self.sync_provider(p, true).await?);
        }
        Ok(all)
    }

    /// Reload the receiver's index from the database (followers, reloads).
    pub async fn refresh_index(&self) -> Result<(), SupervisorError> {
        let present = self.store.instances(&InstanceFilter::default()).await?;
        self.index.refresh(&present);
        Ok(())
    }
}
