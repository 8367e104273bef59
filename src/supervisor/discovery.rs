//! Inventory at the edge, one provider at a time: its discovery call, the
//! pure merge of [`super::inventory`] written to the store (retirements first,
//! so a recreated name gets a fresh row), and the receiver's index refreshed
//! for that provider only. Instances of providers removed from the config are
//! retired once per config generation. Retirement because something was
//! removed from the configuration waits while another live replica still
//! configures it (its published view): a replica never retires by config what
//! it merely does not know.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::episodes::Episode;
use super::inventory::{self, Listed};
use super::{Supervisor, SupervisorError};
use crate::config::ProviderConfig;
use crate::domain::InstanceKey;
use crate::providers::Provider;
use crate::store::{InstanceFilter, InstanceRecord, NewInstance};

/// While another live replica still configures a provider this one no longer
/// has, its instances are looked at again this often.
const ORPHANS_AGAIN_MS: i64 = 60_000;

impl Supervisor {
    /// Bring provider `p`'s stored instances in line with its config and (when
    /// `discover` is set and allowed) its discovery listing. A failed discovery
    /// keeps the known instances. The receiver's index is rebuilt for this
    /// provider only when its inventory changed (or was never loaded): the
    /// committed steps keep each entry's health current.
    pub(super) async fn sync_provider(
        self: &Arc<Self>,
        p: &ProviderConfig,
        allow_discovery: bool,
    ) -> Result<(), SupervisorError> {
        let listing = if p.discover && allow_discovery { self.discover(p).await } else { None };
        // The tenants the application assigned (API, its database).
        let api = self.store.tenant_assignments(&p.name).await?;
        let sql = self.sql_tenants.load_full();
        let tenants_fp = tenants_fingerprint(&api, self.sql_generation.load(Ordering::SeqCst));
        // Nothing to merge when the listing and the tenants are the ones
        // already merged, no instance of this provider went missing or came
        // back since, and the index holds the provider: the common steady
        // cycle costs one small read.
        let fingerprint = (listing.as_deref().map(fingerprint), tenants_fp);
        let unchanged = self.synced.lock().expect("synced lock").get(&p.name) == Some(&fingerprint);
        let missing_moved = self.missing_moved.lock().expect("missing lock").remove(&p.name);
        if unchanged && !missing_moved && self.index.has_provider(&p.name) {
            return Ok(());
        }
        let tenants = inventory::TenantInputs { api: &api, sql: &sql };
        let wanted = inventory::wanted(&self.cfg, p, listing.as_deref(), tenants);
        let stored = self.store.inventory(Some(&p.name)).await?;
        let mut d = inventory::diff(p, &stored, &wanted, listing.is_some());
        let mut held = Vec::new();
        if d.retire.iter().any(|(_, why)| *why == inventory::REMOVED_FROM_CONFIG) {
            let (_, elsewhere) = self.configured_elsewhere().await?;
            held = inventory::hold_back(&mut d, &stored, &elsewhere);
        }
        let now = self.now();
        for (id, why) in &d.retire {
            if let Some(r) = self.store.instance_by_id(id).await? {
                self.retire(r, why).await?;
            }
        }
        let rows: Vec<NewInstance<'_>> = d
            .upsert
            .iter()
            .map(|w| NewInstance {
                key: &w.key,
                tenant: &w.tenant,
                labels: &w.labels,
                source: w.source,
                provider_id: w.provider_id.as_deref(),
                tenant_source: w.tenant_source.as_str(),
            })
            .collect();
        // A tenant that moved is an event for the application (and notices
        // from now on follow the new tenant).
        let moved: Vec<_> = d
            .upsert
            .iter()
            .filter_map(|w| {
                let old = stored.iter().find(|r| r.key == w.key && r.tenant != w.tenant)?;
                tracing::info!(instance = %w.key, from = %old.tenant, to = %w.tenant, source = w.tenant_source.as_str(), "tenant changed");
                Some(crate::domain::stream::StreamEvent::tenant_changed(
                    &w.key,
                    &old.tenant,
                    &w.tenant,
                    w.tenant_source.as_str(),
                    now,
                ))
            })
            .collect();
        let stream = self.stream_outs(moved);
        self.store.ensure_instances(&rows, now, &stream).await?;
        self.streamed(&stream);
        if !d.upsert.is_empty() || !d.retire.is_empty() {
            let present = self.store.inventory(Some(&p.name)).await?;
            self.index.refresh_provider(&p.name, &present);
        } else if !self.index.has_provider(&p.name) {
            self.index.refresh_provider(&p.name, &stored);
        }
        if held.is_empty() {
            self.synced.lock().expect("synced lock").insert(p.name.clone(), fingerprint);
        } else {
            // Not recorded as merged: the next cycle looks again.
            tracing::debug!(
                provider = %p.name,
                instances = ?held.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
                "not retiring instances removed from this configuration: another live replica still configures them"
            );
        }
        Ok(())
    }

    /// The providers and instances that another live replica configures (its
    /// published view; this replica's own view is left out: its current
    /// config speaks for it). Nothing on SQLite, where one process runs.
    async fn configured_elsewhere(&self) -> Result<(BTreeSet<String>, BTreeSet<InstanceKey>), SupervisorError> {
        let me = self.ticks().holder.get().cloned();
        let mut providers = BTreeSet::new();
        let mut instances = BTreeSet::new();
        for v in self.store.live_views(self.now()).await? {
            if me.as_ref() != Some(&v.holder) {
                providers.extend(v.providers);
                instances.extend(v.instances);
            }
        }
        Ok((providers, instances))
    }

    /// Note that an instance of `provider` became missing or stopped being
    /// missing: the next inventory merge must run (it may retire it).
    pub(super) fn missing_moved(&self, provider: &str) {
        self.missing_moved.lock().expect("missing lock").insert(provider.to_string());
    }

    /// One discovery call; `None` when it failed (nothing is concluded from
    /// absence). A failure is logged once per episode: a warning when
    /// discovery starts failing, a line when it works again, and the cycles
    /// in between at debug level.
    async fn discover(&self, p: &ProviderConfig) -> Option<Vec<Listed>> {
        let h = &self.providers[&p.name];
        match h.client.list_instances().await {
            Ok(list) => {
                if self.discovery_failing.lock().expect("discovery lock").worked(&p.name) == Episode::Ended {
                    tracing::info!(provider = %p.name, "discovery works again");
                }
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
                match self.discovery_failing.lock().expect("discovery lock").failed(&p.name) {
                    Episode::Started => tracing::warn!(
                        provider = %p.name,
                        error = %e,
                        "discovery failed; keeping the known instances (said once until it works again)"
                    ),
                    _ => tracing::debug!(provider = %p.name, error = %e, "discovery still failing"),
                }
                None
            }
        }
    }

    /// Retire the instances of providers that are no longer configured —
    /// unless another live replica still configures the provider (a rolling
    /// reload, or a replica behind): those wait, and are looked at again a
    /// minute later. Once none is left, not again in this generation (only a
    /// reload or a restart removes a provider).
    pub(super) async fn retire_orphans(self: &Arc<Self>) -> Result<(), SupervisorError> {
        let now = self.now();
        if now.0 < self.orphans_next.load(Ordering::Acquire) {
            return Ok(());
        }
        let all = self.store.instances(&InstanceFilter::default()).await?;
        let orphans: Vec<InstanceRecord> =
            all.into_iter().filter(|r| !self.providers.contains_key(&r.key.provider)).collect();
        let mut waiting = BTreeSet::new();
        if !orphans.is_empty() {
            let (elsewhere, _) = self.configured_elsewhere().await?;
            for r in orphans {
                if elsewhere.contains(&r.key.provider) {
                    waiting.insert(r.key.provider.clone());
                } else {
                    self.retire(r, "its provider was removed from the configuration").await?;
                }
            }
        }
        if waiting.is_empty() {
            self.orphans_next.store(i64::MAX, Ordering::Release);
        } else {
            tracing::info!(
                providers = ?waiting,
                "not retiring the instances of providers removed from this configuration: another live replica still configures them (looking again in a minute)"
            );
            self.orphans_next.store(now.0 + ORPHANS_AGAIN_MS, Ordering::Release);
        }
        Ok(())
    }

    /// Every provider's inventory at once (tests, one-shot commands); returns
    /// all present instances.
    pub async fn sync_inventory(self: &Arc<Self>) -> Result<Vec<InstanceRecord>, SupervisorError> {
        self.retire_orphans().await?;
        let mut all = Vec::new();
        for p in &self.cfg.providers {
            self.sync_provider(p, true).await?;
            let filter = InstanceFilter { provider: Some(p.name.clone()), ..Default::default() };
            all.extend(self.store.instances(&filter).await?);
        }
        Ok(all)
    }

    /// Reload the parts of the receiver's index that belong to `providers`
    /// (those another replica leads: their health changes come from it).
    pub async fn refresh_index_of(&self, providers: &[String]) -> Result<(), SupervisorError> {
        for p in providers {
            let present = self.store.inventory(Some(p)).await?;
            self.index.refresh_provider(p, &present);
            // Its leader merges its inventory meanwhile: should this replica
            // lead it again, it merges afresh.
            self.synced.lock().expect("synced lock").remove(p);
        }
        Ok(())
    }

    /// Reload the receiver's index from the database (followers, reloads).
    pub async fn refresh_index(&self) -> Result<(), SupervisorError> {
        let present = self.store.inventory(None).await?;
        self.index.refresh(&present);
        Ok(())
    }
}

/// A fingerprint of a listing (names and ids, in the provider's order).
/// What the tenant inputs of a merge were: the API's assignments and the
/// generation of the application database's mapping.
fn tenants_fingerprint(api: &std::collections::HashMap<String, String>, sql_generation: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut entries: Vec<_> = api.iter().collect();
    entries.sort();
    entries.hash(&mut h);
    sql_generation.hash(&mut h);
    h.finish()
}

fn fingerprint(listing: &[Listed]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    listing.len().hash(&mut h);
    for l in listing {
        l.name.hash(&mut h);
        l.provider_id.hash(&mut h);
    }
    h.finish()
}
