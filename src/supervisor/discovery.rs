//! Inventory at the edge: discovery calls, the merge of [`super::inventory`]
//! written to the store, and the receiver's index refreshed from it.

use std::collections::HashMap;

use super::{Supervisor, SupervisorError, inventory};
use crate::domain::InstanceKey;
use crate::providers::Provider;
use crate::store::{InstanceFilter, InstanceRecord};

impl Supervisor {
    /// Merge configured and discovered instances into the store.
    pub async fn sync_inventory(&self) -> Result<Vec<InstanceRecord>, SupervisorError> {
        let mut discovered: HashMap<String, Option<Vec<String>>> = HashMap::new();
        for p in self.cfg.providers.iter().filter(|p| p.discover) {
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
                    discovered.insert(p.name.clone(), Some(list.into_iter().map(|d| d.name).collect()));
                }
                Err(e) => {
                    tracing::warn!(provider = %p.name, error = %e, "discovery failed; keeping the known instances");
                    discovered.insert(p.name.clone(), None);
                }
            }
        }
        let wanted = inventory::wanted(&self.cfg, &discovered);
        let filter = InstanceFilter { include_absent: true, ..Default::default() };
        let stored = self.store.instances(&filter).await?;
        let d = inventory::diff(&self.cfg, &stored, &wanted, &discovered);
        let now = self.now();
        for w in &d.upsert {
            self.store.ensure_instance(&w.key, &w.tenant, &w.labels, w.source, now).await?;
        }
        for id in &d.retire {
            self.store.set_present(id, false).await?;
        }
        let present = if d.upsert.is_empty() && d.retire.is_empty() {
            stored.into_iter().filter(|r| r.present).collect()
        } else {
            self.store.instances(&InstanceFilter::default()).await?
        };
        self.index.refresh(&present);
        Ok(present)
    }

    /// Reload the receiver's index from the database (followers, reloads).
    pub async fn refresh_index(&self) -> Result<(), SupervisorError> {
        let present = self.store.instances(&InstanceFilter::default()).await?;
        self.index.refresh(&present);
        Ok(())
    }
}
