//! Inventory: which instances of one provider exist and whose they are — a
//! pure merge of the config with what discovery listed, and the diff against
//! the stored rows. The tenant is resolved once, over every place it can come
//! from ([`crate::domain::tenancy`]: config, API, the application's database,
//! the name's pattern, the provider's default) — never from "the first
//! tenant" (rule 9). Instances have a lifecycle (rule 14): what the
//! diff retires has its outage closed by the caller, and a recreated instance
//! (a new provider-side id under a known name) gets a fresh row.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::config::{Config, ProviderConfig};
use crate::domain::tenancy::{SqlMapping, TenantSource, resolve};
use crate::domain::{Health, InstanceKey};
use crate::store::InventoryRow;

/// One instance a provider listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    /// The provider's own id of the instance, when it has one (Evolution's uuid).
    pub provider_id: Option<String>,
}

/// One instance the daemon should know about.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub key: InstanceKey,
    pub tenant: String,
    pub labels: BTreeMap<String, String>,
    /// `config` or `discovered`.
    pub source: &'static str,
    pub provider_id: Option<String>,
    pub tenant_source: TenantSource,
}

/// What the application said about tenants, for one provider.
#[derive(Debug, Clone, Copy)]
pub struct TenantInputs<'a> {
    /// Assigned through the admin API: instance name → tenant.
    pub api: &'a HashMap<String, String>,
    /// The application's database (`[tenants]`).
    pub sql: &'a SqlMapping,
}

/// Merge provider `p`'s configured instances with what its discovery listed
/// (`None`: discovery off or failed this cycle — nothing is concluded from
/// absence), each with its tenant resolved from `tenants` and the config.
pub fn wanted(cfg: &Config, p: &ProviderConfig, listing: Option<&[Listed]>, tenants: TenantInputs<'_>) -> Vec<Wanted> {
    let ids: HashMap<&str, Option<&String>> =
        listing.unwrap_or_default().iter().map(|l| (l.name.as_str(), l.provider_id.as_ref())).collect();
    let tenant_of = |name: &str, configured: Option<&str>| {
        resolve(
            configured,
            tenants.api.get(name).map(String::as_str),
            tenants.sql.get(&p.name, name),
            p.tenant_pattern.as_ref().and_then(|re| re.tenant_of(name)),
            &p.default_tenant,
        )
    };
    let mut out: BTreeMap<InstanceKey, Wanted> = BTreeMap::new();
    for l in listing.unwrap_or_default() {
        let key = InstanceKey::new(&p.name, &l.name);
        let (tenant, tenant_source) = tenant_of(&l.name, None);
        let w = Wanted {
            key: key.clone(),
            tenant,
            labels: BTreeMap::new(),
            source: "discovered",
            provider_id: l.provider_id.clone(),
            tenant_source,
        };
        out.insert(key, w);
    }
    for i in cfg.instances.iter().filter(|i| i.provider == p.name) {
        let key = InstanceKey::new(&i.provider, &i.name);
        let (tenant, tenant_source) = tenant_of(&i.name, i.tenant.as_deref());
        let w = Wanted {
            key: key.clone(),
            tenant,
            labels: i.labels.clone(),
            source: "config",
            provider_id: ids.get(i.name.as_str()).copied().flatten().cloned(),
            tenant_source,
        };
        out.insert(key, w);
    }
    out.into_values().collect()
}

/// Why an instance the config no longer lists is retired.
pub const REMOVED_FROM_CONFIG: &str = "removed from the configuration";

/// What to change in the store so that it matches `wanted`.
#[derive(Debug, Default, PartialEq)]
pub struct InventoryDiff {
    /// Stored rows to retire first, with why (for the audit log).
    pub retire: Vec<(String, &'static str)>,
    /// New instances, or ones whose tenant, labels, source or id changed.
    pub upsert: Vec<Wanted>,
}

/// Compare provider `p`'s present rows with the wanted ones. A row no longer
/// wanted is retired when it came from the config and the provider does not
/// discover (removed from the config), or when discovery answered and no
/// longer lists it *and* it has been seen missing (so `instance_missing` went
/// out first). A row whose provider-side id differs from the listed one is
/// a deleted-and-recreated instance: retired, and the new one inserted.
pub fn diff(p: &ProviderConfig, stored: &[InventoryRow], wanted: &[Wanted], listing_ok: bool) -> InventoryDiff {
    let by_key: HashMap<&InstanceKey, &InventoryRow> = stored.iter().map(|r| (&r.key, r)).collect();
    let wanted_keys: HashMap<&InstanceKey, &Wanted> = wanted.iter().map(|w| (&w.key, w)).collect();
    let mut d = InventoryDiff::default();
    for w in wanted {
        match by_key.get(&w.key) {
            None => d.upsert.push(w.clone()),
            Some(r) => {
                let recreated = matches!((&r.provider_id, &w.provider_id), (Some(a), Some(b)) if a != b);
                if recreated {
                    d.retire.push((r.id.clone(), "recreated on the provider under the same name (a new id)"));
                    d.upsert.push(w.clone());
                } else if r.tenant != w.tenant
                    || r.tenant_source != w.tenant_source.as_str()
                    || r.labels != w.labels
                    || r.source != w.source
                    || (r.provider_id.is_none() && w.provider_id.is_some())
                {
                    d.upsert.push(w.clone());
                }
            }
        }
    }
    for r in stored.iter().filter(|r| !wanted_keys.contains_key(&r.key)) {
        if !p.discover {
            d.retire.push((r.id.clone(), REMOVED_FROM_CONFIG));
        } else if listing_ok && r.health == Health::Missing {
            d.retire.push((r.id.clone(), "deleted on the provider"));
        }
    }
    d
}

/// Keep back the retirements "removed from the configuration" of instances
/// that another live replica still configures (`elsewhere`): a replica never
/// retires by config what another's config still has (a rolling reload, or
/// one replica behind). Returns the instances kept back; the next merge
/// looks again.
pub fn hold_back(
    d: &mut InventoryDiff,
    stored: &[InventoryRow],
    elsewhere: &BTreeSet<InstanceKey>,
) -> Vec<InstanceKey> {
    let mut held = Vec::new();
    d.retire.retain(|(id, why)| {
        let key = stored.iter().find(|r| r.id == *id).map(|r| &r.key);
        match key {
            Some(k) if *why == REMOVED_FROM_CONFIG && elsewhere.contains(k) => {
                held.push(k.clone());
                false
            }
            _ => true,
        }
    });
    held
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApiVersion, InstanceConfig, ProviderKind, Secret};

    fn provider(discover: bool) -> ProviderConfig {
        ProviderConfig {
            name: "evo".into(),
            kind: ProviderKind::Evolution,
            base_url: "http://127.0.0.1:1".into(),
            api_version: ApiVersion::V2,
            api_key: None,
            webhook_token: Secret::literal("t"),
            discover,
            default_tenant: "unassigned".into(),
            webhook_body_key: "value".into(),
            webhook_bearer: None,
            webhook_jwt_key: None,
            webhook_hmac_key: None,
            client_token: None,
            health: Default::default(),
            tenant_pattern: None,
        }
    }

    fn cfg(p: &ProviderConfig, instances: &[(&str, &str)]) -> Config {
        let mut c = crate::config::validate(crate::config::RawConfig::default(), &|_| "test".into()).expect("defaults");
        c.providers = vec![p.clone()];
        c.instances = instances
            .iter()
            .map(|(n, t)| InstanceConfig {
                provider: p.name.clone(),
                name: n.to_string(),
                tenant: Some(t.to_string()),
                labels: BTreeMap::new(),
                token: None,
            })
            .collect();
        c
    }

    fn stored(name: &str, id: &str, provider_id: Option<&str>, health: Health, source: &str) -> InventoryRow {
        InventoryRow {
            id: id.into(),
            key: InstanceKey::new("evo", name),
            tenant: if source == "config" { "t1".into() } else { "unassigned".into() },
            labels: BTreeMap::new(),
            source: source.into(),
            tenant_source: if source == "config" { "config".into() } else { "default".into() },
            provider_id: provider_id.map(str::to_string),
            health,
            version: 0,
            last_webhook_at: None,
        }
    }

    /// No tenant from the API or the application's database.
    fn none() -> TenantInputs<'static> {
        static EMPTY_API: std::sync::LazyLock<HashMap<String, String>> = std::sync::LazyLock::new(HashMap::new);
        static EMPTY_SQL: std::sync::LazyLock<SqlMapping> = std::sync::LazyLock::new(SqlMapping::default);
        TenantInputs { api: &EMPTY_API, sql: &EMPTY_SQL }
    }

    fn listed(name: &str, id: &str) -> Listed {
        Listed { name: name.into(), provider_id: Some(id.into()) }
    }

    #[test]
    fn tenant_comes_from_the_mapping_else_the_provider_default() {
        let p = provider(true);
        let c = cfg(&p, &[("a", "t1")]);
        let w = wanted(&c, &p, Some(&[listed("a", "ida"), listed("b", "idb")]), none());
        let t: Vec<(&str, &str, Option<&str>)> =
            w.iter().map(|w| (w.key.name.as_str(), w.tenant.as_str(), w.provider_id.as_deref())).collect();
        assert_eq!(t, vec![("a", "t1", Some("ida")), ("b", "unassigned", Some("idb"))]);
    }

    #[test]
    fn a_new_provider_side_id_under_a_known_name_is_a_new_instance() {
        let p = provider(true);
        let c = cfg(&p, &[]);
        let rows = [stored("x", "row1", Some("uuid-1"), Health::Disconnected, "discovered")];
        let w = wanted(&c, &p, Some(&[listed("x", "uuid-2")]), none());
        let d = diff(&p, &rows, &w, true);
        assert_eq!(d.retire.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), vec!["row1"]);
        assert_eq!(d.upsert.len(), 1);
        assert_eq!(d.upsert[0].provider_id.as_deref(), Some("uuid-2"));
    }

    #[test]
    fn an_unlisted_instance_is_retired_only_once_seen_missing_and_only_on_a_good_listing() {
        let p = provider(true);
        let c = cfg(&p, &[]);
        let rows = [
            stored("gone", "r1", None, Health::Missing, "discovered"),
            stored("quiet", "r2", None, Health::Connected, "discovered"),
        ];
        let w = wanted(&c, &p, Some(&[]), none());
        let d = diff(&p, &rows, &w, true);
        assert_eq!(d.retire, vec![("r1".to_string(), "deleted on the provider")]);
        let d = diff(&p, &rows, &wanted(&c, &p, None, none()), false);
        assert!(d.retire.is_empty(), "a failed discovery concludes nothing");
    }

    #[test]
    fn removing_an_instance_from_the_config_of_a_non_discovering_provider_retires_it() {
        let p = provider(false);
        let c = cfg(&p, &[("kept", "t1")]);
        let rows = [
            stored("kept", "r1", None, Health::Connected, "config"),
            stored("dropped", "r2", None, Health::Connected, "config"),
        ];
        let d = diff(&p, &rows, &wanted(&c, &p, None, none()), false);
        assert_eq!(d.retire, vec![("r2".to_string(), "removed from the configuration")]);
        assert!(d.upsert.is_empty());
    }

    #[test]
    fn an_instance_another_live_replica_still_configures_is_not_retired_by_config() {
        let p = provider(false);
        let c = cfg(&p, &[]);
        let rows = [
            stored("theirs", "r1", None, Health::Connected, "config"),
            stored("nobodys", "r2", None, Health::Connected, "config"),
            stored("gone", "r3", None, Health::Missing, "discovered"),
        ];
        let mut d = diff(&p, &rows, &wanted(&c, &p, None, none()), false);
        let elsewhere: BTreeSet<InstanceKey> = [InstanceKey::new("evo", "theirs")].into();
        let held = hold_back(&mut d, &rows, &elsewhere);
        assert_eq!(held, vec![InstanceKey::new("evo", "theirs")]);
        let ids: Vec<&str> = d.retire.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(ids, vec!["r2", "r3"]);
    }
}
