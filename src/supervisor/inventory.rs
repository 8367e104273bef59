//! Inventory: which instances exist and whose they are. Configured instances
//! and discovered ones are merged on every cycle; the tenant comes from the
//! explicit `[[instances]]` mapping first, else the provider's
//! `default_tenant` — never from "the first tenant" (SPEC §5 rule 9).

use std::collections::{BTreeMap, HashMap};

use crate::config::Config;
use crate::domain::InstanceKey;
use crate::store::InstanceRecord;

/// One instance the daemon should know about.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub key: InstanceKey,
    pub tenant: String,
    pub labels: BTreeMap<String, String>,
    /// `config` or `discovered`.
    pub source: &'static str,
}

/// Merge the config with what discovery returned (`None`: discovery off or it
/// failed this cycle — then nothing is concluded from absence).
pub fn wanted(cfg: &Config, discovered: &HashMap<String, Option<Vec<String>>>) -> Vec<Wanted> {
    let mut out: BTreeMap<InstanceKey, Wanted> = BTreeMap::new();
    for p in &cfg.providers {
        if let Some(Some(names)) = discovered.get(&p.name) {
            for n in names {
                let key = InstanceKey::new(&p.name, n);
                out.insert(
                    key.clone(),
                    Wanted { key, tenant: p.default_tenant.clone(), labels: BTreeMap::new(), source: "discovered" },
                );
            }
        }
    }
    for i in &cfg.instances {
        let Some(p) = cfg.providers.iter().find(|p| p.name == i.provider) else { continue };
        let key = InstanceKey::new(&i.provider, &i.name);
        out.insert(
            key.clone(),
            Wanted {
                key,
                tenant: i.tenant.clone().unwrap_or_else(|| p.default_tenant.clone()),
                labels: i.labels.clone(),
                source: "config",
            },
        );
    }
    out.into_values().collect()
}

/// What to change in the store so it matches `wanted`.
#[derive(Debug, Default, PartialEq)]
pub struct InventoryDiff {
    /// New instances, or ones whose tenant, labels or source changed, or that come back.
    pub upsert: Vec<Wanted>,
    /// Ids of stored instances to stop polling.
    pub retire: Vec<String>,
}

/// Compare the stored instances with the wanted ones. A stored instance that
/// is no longer wanted is retired when its provider is gone from the config,
/// when it came from the config and its provider does not discover, or when
/// discovery stopped listing it and it has already been seen missing (so its
/// `instance_missing` notice went out first). Otherwise it keeps being polled.
pub fn diff(
    cfg: &Config,
    stored: &[InstanceRecord],
    wanted: &[Wanted],
    discovered: &HashMap<String, Option<Vec<String>>>,
) -> InventoryDiff {
    let by_key: HashMap<&InstanceKey, &InstanceRecord> = stored.iter().map(|r| (&r.key, r)).collect();
    let wanted_keys: HashMap<&InstanceKey, &Wanted> = wanted.iter().map(|w| (&w.key, w)).collect();
    let mut d = InventoryDiff::default();
    for w in wanted {
        match by_key.get(&w.key) {
            Some(r) if r.present && r.tenant == w.tenant && r.labels == w.labels && r.source == w.source => {}
            _ => d.upsert.push(w.clone()),
        }
    }
    for r in stored.iter().filter(|r| r.present && !wanted_keys.contains_key(&r.key)) {
        let provider = cfg.providers.iter().find(|p| p.name == r.key.provider);
        let retire = match provider {
            None => true,
            Some(p) if !p.discover => true,
            Some(p) => {
                let listing_ok = matches!(discovered.get(&p.name), Some(Some(_)));
                listing_ok && r.state.health == crate::domain::Health::Missing
            }
        };
        if retire {
            d.retire.push(r.id.clone());
        }
    }
    d
}
