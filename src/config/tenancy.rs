//! Validation of what ties wa-sentinel into the SaaS application's workflow:
//! where tenants come from (`[[providers]] tenant_pattern`, `[tenants]`, the
//! application's database) and who follows the event stream
//! (`[[subscribers]]`).

use std::time::Duration;

use super::{Secret, Validator, raw};
use crate::domain::tenancy::{TenantPattern, valid_tenant};

/// `[tenants]`.
#[derive(Debug, Clone, Default)]
pub struct TenantsConfig {
    /// The application's database, when configured.
    pub source: Option<SqlSource>,
}

/// The application's PostgreSQL as a tenant source: read only, with a
/// statement timeout, every `refresh`.
#[derive(Debug, Clone)]
pub struct SqlSource {
    pub url: Secret,
    pub query: String,
    pub refresh: Duration,
    pub statement_timeout: Duration,
}

/// One `[[subscribers]]` entry.
#[derive(Debug, Clone)]
pub struct SubscriberConfig {
    pub name: String,
    pub url: Secret,
    pub secret: Secret,
    /// `None`: every kind.
    pub events: Option<Vec<String>>,
    /// `None`: every tenant.
    pub tenants: Option<Vec<String>>,
}

impl SubscriberConfig {
    /// The outbox's notifier name for this subscriber's deliveries.
    pub fn outbox_name(&self) -> String {
        format!("subscriber:{}", self.name)
    }

    /// Does this subscriber take an event of `kind` about `tenant`?
    pub fn accepts(&self, kind: &str, tenant: &str) -> bool {
        self.events.as_ref().is_none_or(|e| e.iter().any(|k| k == kind))
            && self.tenants.as_ref().is_none_or(|t| t.iter().any(|x| x == tenant))
    }
}

impl Validator<'_> {
    pub(super) fn tenant_pattern(&mut self, key: &str, src: Option<&str>) -> Option<TenantPattern> {
        match TenantPattern::new(src?) {
            Ok(p) => Some(p),
            Err(e) => {
                self.bad(key, e);
                None
            }
        }
    }

    pub(super) fn tenants(&mut self, t: &raw::RawTenants) -> TenantsConfig {
        let url = self.secret("tenants.source_url", "source_url", &t.source_url, &t.source_url_env, &t.source_url_file);
        let refresh = self.positive_duration("tenants.refresh", &t.refresh);
        let statement_timeout = self.positive_duration("tenants.statement_timeout", &t.statement_timeout);
        let Some(url) = url else { return TenantsConfig::default() };
        let u = url.expose();
        if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
            self.bad(
                "tenants.source_url",
                "must be a PostgreSQL URL (postgres://user:password@host/database): the application's database",
            );
        }
        if !t.query.trim().to_lowercase().starts_with("select") {
            self.bad(
                "tenants.query",
                "must be a SELECT with columns `instance` and `tenant` (and optionally `provider`)",
            );
        }
        TenantsConfig { source: Some(SqlSource { url, query: t.query.clone(), refresh, statement_timeout }) }
    }

    pub(super) fn subscribers(&mut self, raws: &[raw::RawSubscriber]) -> Vec<SubscriberConfig> {
        let mut out: Vec<SubscriberConfig> = Vec::new();
        for (i, s) in raws.iter().enumerate() {
            let k = |f: &str| format!("subscribers[{i}].{f}");
            if !super::is_url_safe_name(&s.name) {
                self.bad(k("name"), "must be lowercase letters, digits, `_` or `-`");
            }
            if out.iter().any(|o| o.name == s.name) {
                self.bad(k("name"), format!("`{}` is used by another subscriber", s.name));
            }
            let url = self.secret(&k("url"), "url", &s.url, &s.url_env, &s.url_file);
            if let Some(u) = &url {
                self.url(&k("url"), u.expose());
            } else {
                self.bad(k("url"), "is required (url_env, url_file or url)");
            }
            let secret = self.secret(&k("secret"), "secret", &s.secret, &s.secret_env, &s.secret_file);
            if secret.is_none() {
                self.bad(k("secret"), "is required (secret_env or secret_file): every delivery is signed with it");
            }
            if let Some(events) = &s.events {
                for (j, e) in events.iter().enumerate() {
                    if !crate::domain::stream::KINDS.contains(&e.as_str()) {
                        self.bad(
                            format!("{}[{j}]", k("events")),
                            format!("`{e}` is not an event: {}", crate::domain::stream::KINDS.join(", ")),
                        );
                    }
                }
            }
            let tenants = match &s.tenants {
                Some(t) if t.iter().any(|x| x == "*") => None,
                Some(t) => {
                    for (j, x) in t.iter().enumerate() {
                        if let Err(e) = valid_tenant(x) {
                            self.bad(format!("{}[{j}]", k("tenants")), e);
                        }
                    }
                    Some(t.clone())
                }
                None => None,
            };
            if let (Some(url), Some(secret)) = (url, secret) {
                out.push(SubscriberConfig { name: s.name.clone(), url, secret, events: s.events.clone(), tenants });
            }
        }
        out
    }
}
