//! Whose an instance is. A tenant can come from five places; one resolution
//! decides, in this order (the first that knows wins):
//!
//! 1. **config** — an explicit `[[instances]]` entry with a `tenant`: what the
//!    operator wrote by hand overrides everything learned;
//! 2. **api** — `PUT /api/instances/{provider}/{name}/tenant`: the SaaS
//!    application saying so, instance by instance, as it creates them;
//! 3. **sql** — the application's own database (`[tenants]` query): the
//!    application's table, read every `refresh`;
//! 4. **pattern** — the provider's `tenant_pattern` applied to the name
//!    (`tenant_2_inst_1` → `tenant_2`): a convention, the weakest statement
//!    about one instance that still names it;
//! 5. **default** — the provider's `default_tenant`.
//!
//! The API outranks the SQL source because it is the more recent, explicit
//! statement about one instance (the application calls it when it creates or
//! moves an instance; its table may lag a refresh behind); both outrank the
//! pattern, which is a guess from the name. Never "the first tenant".

use std::collections::HashMap;

/// Where an instance's tenant came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantSource {
    Config,
    Api,
    Sql,
    Pattern,
    Default,
}

impl TenantSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantSource::Config => "config",
            TenantSource::Api => "api",
            TenantSource::Sql => "sql",
            TenantSource::Pattern => "pattern",
            TenantSource::Default => "default",
        }
    }

    pub fn parse(s: &str) -> TenantSource {
        match s {
            "config" => TenantSource::Config,
            "api" => TenantSource::Api,
            "sql" => TenantSource::Sql,
            "pattern" => TenantSource::Pattern,
            _ => TenantSource::Default,
        }
    }
}

/// A provider's `tenant_pattern`: a regular expression with a named group
/// `tenant`, matched against instance names.
#[derive(Debug, Clone)]
pub struct TenantPattern(regex::Regex);

impl TenantPattern {
    /// Compile `src`; it must have a group named `tenant`.
    pub fn new(src: &str) -> Result<TenantPattern, String> {
        let re = regex::Regex::new(src).map_err(|e| format!("`{src}` is not a regular expression: {e}"))?;
        if !re.capture_names().flatten().any(|n| n == "tenant") {
            return Err(format!(
                "`{src}` has no group named `tenant`: write it as (?P<tenant>…), e.g. \"^(?P<tenant>[a-z0-9_]+)_inst_\\\\d+$\""
            ));
        }
        Ok(TenantPattern(re))
    }

    /// The tenant this name says, if it matches (and the group is not empty).
    pub fn tenant_of(&self, name: &str) -> Option<String> {
        let c = self.0.captures(name)?;
        c.name("tenant").map(|m| m.as_str().to_string()).filter(|t| valid_tenant(t).is_ok())
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialEq for TenantPattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

/// A tenant is 1 to 128 characters of letters, digits and `_ - . : @`: it
/// names notifier routes, report lines and URLs (`?tenant=`).
pub fn valid_tenant(t: &str) -> Result<(), String> {
    if t.is_empty() {
        return Err("the tenant is empty".into());
    }
    if t.chars().count() > 128 {
        return Err("the tenant is longer than 128 characters".into());
    }
    if let Some(c) = t.chars().find(|c| !(c.is_ascii_alphanumeric() || "_-.:@".contains(*c))) {
        return Err(format!("the tenant contains {c:?}: use letters, digits and _ - . : @"));
    }
    Ok(())
}

/// What the SQL source says: `(provider, instance) → tenant`, where a row
/// without a provider applies to an instance of that name on every provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqlMapping {
    pub by_provider: HashMap<(String, String), String>,
    pub any_provider: HashMap<String, String>,
}

impl SqlMapping {
    pub fn get(&self, provider: &str, name: &str) -> Option<&str> {
        self.by_provider
            .get(&(provider.to_string(), name.to_string()))
            .or_else(|| self.any_provider.get(name))
            .map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.by_provider.len() + self.any_provider.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The one resolution (see the module docs for the order).
pub fn resolve(
    config: Option<&str>,
    api: Option<&str>,
    sql: Option<&str>,
    pattern: Option<String>,
    default: &str,
) -> (String, TenantSource) {
    if let Some(t) = config {
        (t.to_string(), TenantSource::Config)
    } else if let Some(t) = api {
        (t.to_string(), TenantSource::Api)
    } else if let Some(t) = sql {
        (t.to_string(), TenantSource::Sql)
    } else if let Some(t) = pattern {
        (t, TenantSource::Pattern)
    } else {
        (default.to_string(), TenantSource::Default)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_pattern_names_the_tenant_and_must_have_the_group() {
        let p = TenantPattern::new(r"^(?P<tenant>[a-z0-9_]+)_inst_\d+$").unwrap();
        assert_eq!(p.tenant_of("tenant_2_inst_1").as_deref(), Some("tenant_2"));
        assert_eq!(p.tenant_of("shop-main"), None);
        let e = TenantPattern::new(r"^([a-z]+)_inst_\d+$").unwrap_err();
        assert!(e.contains("no group named `tenant`"), "{e}");
        assert!(TenantPattern::new("(").unwrap_err().contains("not a regular expression"));
    }

    #[test]
    fn tenants_are_short_plain_names() {
        assert!(valid_tenant("acme").is_ok() && valid_tenant("tenant_2").is_ok() && valid_tenant("a.b-c:d@e").is_ok());
        assert!(valid_tenant("").unwrap_err().contains("empty"));
        assert!(valid_tenant("a b").unwrap_err().contains("' '"));
        assert!(valid_tenant("<script>").is_err());
        assert!(valid_tenant(&"x".repeat(129)).unwrap_err().contains("128"));
    }

    #[test]
    fn a_provider_row_of_the_sql_source_wins_over_an_any_provider_row() {
        let mut m = SqlMapping::default();
        m.any_provider.insert("i1".into(), "generic".into());
        m.by_provider.insert(("evo".into(), "i1".into()), "specific".into());
        assert_eq!(m.get("evo", "i1"), Some("specific"));
        assert_eq!(m.get("waha", "i1"), Some("generic"));
        assert_eq!(m.get("evo", "i2"), None);
    }

    proptest! {
        /// The first source that knows wins, in the documented order, and the
        /// source named is the one whose tenant was taken.
        #[test]
        fn the_first_source_that_knows_wins(
            config in proptest::option::of("[a-z]{1,3}"),
            api in proptest::option::of("[a-z]{1,3}"),
            sql in proptest::option::of("[a-z]{1,3}"),
            pattern in proptest::option::of("[a-z]{1,3}"),
        ) {
            let (t, src) = resolve(config.as_deref(), api.as_deref(), sql.as_deref(), pattern.clone(), "dflt");
            let order = [
                (config, TenantSource::Config),
                (api, TenantSource::Api),
                (sql, TenantSource::Sql),
                (pattern, TenantSource::Pattern),
                (Some("dflt".to_string()), TenantSource::Default),
            ];
            let (want_t, want_src) = order.into_iter().find_map(|(v, s)| v.map(|v| (v, s))).unwrap();
            prop_assert_eq!(t, want_t);
            prop_assert_eq!(src, want_src);
        }
    }
}
