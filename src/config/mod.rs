//! Configuration: figment layering (built-in defaults → `config.toml` →
//! `WA_SENTINEL_<SECTION>__<KEY>` environment variables), then validation of
//! the raw shapes ([`raw`]) into ready-to-use types. Every problem names where
//! the value came from, the key, and why it is wrong; all problems are reported
//! at once.

pub mod events;
pub mod raw;
pub mod recipients;
mod redact;
pub mod secret;
mod tenancy;
mod validate;
mod validate_notifiers;
mod validate_providers;

pub use redact::{redact_url_password, redacted_toml};
pub use tenancy::{SqlSource, SubscriberConfig, TenantsConfig};

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

use crate::domain::provider::{ProviderCause, ProviderPolicy, RemediationPolicy};
use crate::domain::{NoticeKind, Policy};
pub use raw::RawConfig;
pub use secret::Secret;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub server: ServerConfig,
    pub supervisor: SupervisorConfig,
    pub policy: Policy,
    pub alerts: AlertsConfig,
    pub webhook: DesiredWebhook,
    pub selfcheck: SelfcheckConfig,
    pub log: LogConfig,
    pub pairing: PairingConfig,
    pub providers: Vec<ProviderConfig>,
    pub instances: Vec<InstanceConfig>,
    pub notifiers: Vec<NotifierConfig>,
    /// Tenant sources beyond the config (the application's database).
    pub tenants: TenantsConfig,
    /// Application endpoints that receive every event.
    pub subscribers: Vec<SubscriberConfig>,
    /// The raw, layered values, for `check-config` (secrets redacted there).
    pub raw: RawConfig,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The admin listener: with it, `listen` serves only webhooks and health.
    pub admin_listen: Option<SocketAddr>,
    /// Base of the webhook URL pushed to providers; without it the audit cannot run.
    pub public_url: Option<String>,
    /// Without it the admin API and the status page are disabled, not open.
    pub admin_token: Option<Secret>,
    /// Read-only access to `GET /api/events`.
    pub events_token: Option<Secret>,
    pub max_body: usize,
}

#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    pub poll_schedule: String,
    pub webhook_audit_schedule: String,
    pub request_timeout: Duration,
    pub concurrency: usize,
    pub per_provider_concurrency: usize,
    pub recovery_concurrency: usize,
    pub settle_delay: Duration,
    pub retention: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    En,
    PtBr,
}

#[derive(Debug, Clone)]
pub struct AlertsConfig {
    pub group_provider_outage: bool,
    pub language: Language,
    pub retry_min_delay: Duration,
    pub retry_max_delay: Duration,
    pub delivery_max_age: Duration,
}

/// Re-pair links (`[pairing]`): see [`crate::domain::pairing`].
#[derive(Debug, Clone)]
pub struct PairingConfig {
    /// Links are minted (needs `server.public_url`, the base of every link).
    pub enabled: bool,
    pub link_ttl: Duration,
    /// The causes whose down notice carries a link.
    pub causes: Vec<crate::domain::health::Cause>,
}

/// Watching the watcher (`[selfcheck]`).
#[derive(Debug, Clone)]
pub struct SelfcheckConfig {
    /// Pinged (GET) after every healthy poll cycle: a dead-man's switch.
    pub heartbeat_url: Option<Secret>,
    /// With every provider failing and no webhook for this long, suspect our own network.
    pub quiet_after: Duration,
}

/// `[log]`: see [`crate::logging`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
    /// `EnvFilter` directives; `RUST_LOG` replaces them when set.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The webhook config the audit enforces on every instance.
#[derive(Debug, Clone)]
pub struct DesiredWebhook {
    pub events: Vec<String>,
    pub by_events: bool,
    pub base64: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Evolution,
    Wapi,
    /// devlikeapro/waha, self-hosted (`X-Api-Key`, sessions by name).
    Waha,
    /// z-api.io, hosted (instance id and token in the URL path).
    Zapi,
}

impl ProviderKind {
    /// The `kind` value in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Evolution => "evolution",
            ProviderKind::Wapi => "wapi",
            ProviderKind::Waha => "waha",
            ProviderKind::Zapi => "zapi",
        }
    }
}

/// Z-API's one public endpoint, the default `base_url` of a `zapi` provider.
pub const ZAPI_BASE_URL: &str = "https://api.z-api.io";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    Auto,
    V1,
    V2,
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    pub api_version: ApiVersion,
    pub api_key: Option<Secret>,
    pub webhook_token: Secret,
    pub discover: bool,
    pub default_tenant: String,
    pub webhook_body_key: String,
    /// Evolution v2 header auth accepted besides the path token.
    pub webhook_bearer: Option<Secret>,
    pub webhook_jwt_key: Option<Secret>,
    /// WAHA: `hmac.key` of the session webhook; verifies inbound `X-Webhook-Hmac`.
    pub webhook_hmac_key: Option<Secret>,
    /// Z-API: the account security token (`Client-Token` header).
    pub client_token: Option<Secret>,
    /// Silence detection and the remediation hook.
    pub health: ProviderPolicy,
    /// Tenant from the instance's name (`tenant_pattern`).
    pub tenant_pattern: Option<crate::domain::tenancy::TenantPattern>,
}

impl ProviderConfig {
    /// A provider with only the required settings; everything optional off
    /// (no keys, no discovery, tenant `default`). For simulators and tests.
    pub fn new(name: &str, kind: ProviderKind, base_url: &str, webhook_token: Secret) -> Self {
        ProviderConfig {
            name: name.to_string(),
            kind,
            base_url: base_url.to_string(),
            api_version: ApiVersion::Auto,
            api_key: None,
            webhook_token,
            discover: false,
            default_tenant: "default".into(),
            webhook_body_key: "value".into(),
            webhook_bearer: None,
            webhook_jwt_key: None,
            webhook_hmac_key: None,
            client_token: None,
            health: ProviderPolicy::default(),
            tenant_pattern: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct InstanceConfig {
    pub provider: String,
    pub name: String,
    pub tenant: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub token: Option<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    StartTls,
    Tls,
    None,
}

#[derive(Debug, Clone)]
pub enum NotifierTarget {
    Webhook {
        url: Secret,
        secret: Option<Secret>,
    },
    Slack {
        url: Secret,
    },
    Discord {
        url: Secret,
    },
    Telegram {
        bot_token: Secret,
        chat_id: String,
        api_base: String,
    },
    Email {
        host: String,
        port: u16,
        tls: SmtpTls,
        username: Option<String>,
        password: Option<Secret>,
        from: String,
        to: Vec<String>,
    },
    /// WhatsApp messages through an instance wa-sentinel watches.
    WhatsApp {
        provider: String,
        instance: String,
        /// E.164 digits (no `+`) or group ids in the provider's form.
        to: Vec<String>,
        /// Notices queued within this long go out as one digest (zero: none).
        digest_window: Duration,
        /// The least time between two messages through the instance.
        min_gap: Duration,
    },
    Log,
}

#[derive(Debug, Clone)]
pub struct NotifierConfig {
    pub name: String,
    pub target: NotifierTarget,
    /// `None` = every tenant (`"*"`).
    pub tenants: Option<Vec<String>>,
    /// `None` = every kind (`"*"`).
    pub kinds: Option<Vec<NoticeKind>>,
    /// Takes notices that belong to no tenant (provider-wide ones,
    /// `sentinel_isolated`). A tenant-scoped notifier does not by default:
    /// they would tell its tenant that other tenants are affected.
    pub provider_notices: bool,
    /// The notifier that gets what this one cannot deliver (`whatsapp`).
    pub fallback: Option<String>,
    /// Routed nothing: takes only what other notifiers hand over.
    pub fallback_only: bool,
}

impl NotifierConfig {
    pub fn kind_name(&self) -> &'static str {
        match self.target {
            NotifierTarget::Webhook { .. } => "webhook",
            NotifierTarget::Slack { .. } => "slack",
            NotifierTarget::Discord { .. } => "discord",
            NotifierTarget::Telegram { .. } => "telegram",
            NotifierTarget::Email { .. } => "email",
            NotifierTarget::WhatsApp { .. } => "whatsapp",
            NotifierTarget::Log => "log",
        }
    }

    /// Does this notifier take this notice? (`tenants` and `kinds` filters, docs/configuration.md.)
    /// Notices with no tenant (provider-wide) go where `provider_notices` says.
    /// A `fallback_only` notifier takes nothing: it gets only what another
    /// notifier hands over.
    pub fn accepts(&self, kind: NoticeKind, tenant: Option<&str>) -> bool {
        if self.fallback_only {
            return false;
        }
        let kind_ok = self.kinds.as_ref().is_none_or(|ks| ks.contains(&kind));
        let tenant_ok = match (&self.tenants, tenant) {
            (_, None) => self.provider_notices,
            (None, Some(_)) => true,
            (Some(ts), Some(t)) => ts.iter().any(|x| x == t),
        };
        kind_ok && tenant_ok
    }
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the value came from: the file, an environment variable, or "default".
    pub origin: String,
    /// Dotted key, e.g. `supervisor.down_after` or `providers[1].name`.
    pub key: String,
    pub why: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: `{}`: {}", self.origin, self.key, self.why)
    }
}

#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.problems.len())?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    fn one(origin: impl Into<String>, key: impl Into<String>, why: impl Into<String>) -> Self {
        ConfigError { problems: vec![Problem { origin: origin.into(), key: key.into(), why: why.into() }] }
    }
}

/// The config path: `--config`, else `WA_SENTINEL_CONFIG`, else `./config.toml`.
pub fn default_path() -> PathBuf {
    std::env::var_os("WA_SENTINEL_CONFIG").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("config.toml"))
}

/// The figment layers: defaults, the file (if given), the environment.
fn figment(file: Option<&Path>) -> Figment {
    let mut fig = Figment::from(Serialized::defaults(RawConfig::default()));
    if let Some(f) = file {
        fig = fig.merge(Toml::file_exact(f));
    }
    // Only `WA_SENTINEL_<SECTION>__<KEY>` is configuration; `WA_SENTINEL_CONFIG`,
    // secrets named by `*_env` keys and test settings are not.
    fig.merge(Env::prefixed("WA_SENTINEL_").filter(|k| k.as_str().contains("__")).split("__"))
}

/// Load and validate. `file = None` uses defaults and the environment only.
pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
    if let Some(f) = file
        && !f.is_file()
    {
        return Err(ConfigError::one(
            f.display().to_string(),
            "-",
            "config file not found; pass --config PATH or set WA_SENTINEL_CONFIG",
        ));
    }
    let fig = figment(file);
    let raw: RawConfig = fig.extract().map_err(|e| from_figment(e, file))?;
    validate(raw, &|key| origin_of(&fig, key, file))
}

/// Validate an already-parsed raw config (used by `demo` and tests too).
pub fn validate(raw: RawConfig, origin: &dyn Fn(&str) -> String) -> Result<Config, ConfigError> {
    let mut v = Validator { problems: Vec::new(), origin };
    let cfg = v.config(&raw);
    match cfg {
        Some(c) if v.problems.is_empty() => Ok(c),
        _ => Err(ConfigError { problems: v.problems }),
    }
}

fn origin_of(fig: &Figment, key: &str, file: Option<&Path>) -> String {
    let section = key.split(['.', '[']).next().unwrap_or(key);
    match fig.find_metadata(key).or_else(|| fig.find_metadata(section)) {
        Some(m) => match &m.source {
            Some(figment::Source::File(p)) => p.display().to_string(),
            Some(other) => other.to_string(),
            None if m.name.contains("environment") => "environment".into(),
            None => file.map(|f| f.display().to_string()).unwrap_or_else(|| "defaults".into()),
        },
        None => file.map(|f| f.display().to_string()).unwrap_or_else(|| "defaults".into()),
    }
}

fn from_figment(e: figment::Error, file: Option<&Path>) -> ConfigError {
    let problems = e
        .into_iter()
        .map(|e| {
            let origin = match e.metadata.as_ref().and_then(|m| m.source.as_ref()) {
                Some(figment::Source::File(p)) => p.display().to_string(),
                Some(s) => s.to_string(),
                None => match &e.metadata {
                    Some(m) if m.name.to_lowercase().contains("env") => {
                        format!("environment variable WA_SENTINEL_{}", e.path.join("__").to_uppercase())
                    }
                    _ => file.map(|f| f.display().to_string()).unwrap_or_else(|| "config".into()),
                },
            };
            let key = if e.path.is_empty() { "-".to_string() } else { e.path.join(".") };
            Problem { origin, key, why: e.kind.to_string() }
        })
        .collect();
    ConfigError { problems }
}

/// Parse `"30s"`, `"30m"`, `"2h"`, `"1d"`, `"0s"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration like \"30s\", \"30m\", \"2h\": {e}"))
}

/// Does this cron expression (with seconds) parse the way the scheduler parses it?
pub fn check_cron(expr: &str) -> Result<(), String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map(|_| ())
        .map_err(|e| format!("`{expr}` is not a cron expression with seconds (e.g. \"*/30 * * * * *\"): {e}"))
}

fn is_url_safe_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

struct Validator<'a> {
    problems: Vec<Problem>,
    origin: &'a dyn Fn(&str) -> String,
}

impl Validator<'_> {
    fn bad(&mut self, key: impl Into<String>, why: impl Into<String>) {
        let key = key.into();
        let origin = (self.origin)(&key);
        self.problems.push(Problem { origin, key, why: why.into() });
    }

    fn duration(&mut self, key: &str, s: &str) -> Duration {
        parse_duration(s).unwrap_or_else(|e| {
            self.bad(key, e);
            Duration::ZERO
        })
    }

    fn positive_duration(&mut self, key: &str, s: &str) -> Duration {
        let d = self.duration(key, s);
        if d.is_zero() && parse_duration(s).is_ok() {
            self.bad(key, "must be greater than zero");
        }
        d
    }

    fn at_least(&mut self, key: &str, v: u32, min: u32) -> u32 {
        if v < min {
            self.bad(key, format!("must be at least {min}, got {v}"));
        }
        v
    }

    fn secret(
        &mut self,
        key: &str,
        base: &str,
        lit: &Option<String>,
        env: &Option<String>,
        file: &Option<PathBuf>,
    ) -> Option<Secret> {
        match secret::resolve(base, lit.as_deref(), env.as_deref(), file.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                self.bad(key, e);
                None
            }
        }
    }

    fn url(&mut self, key: &str, s: &str) {
        match reqwest::Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(u) => self.bad(key, format!("`{s}`: scheme must be http or https, not {}", u.scheme())),
            Err(e) => self.bad(key, format!("`{s}` is not a URL: {e}")),
        }
    }

    fn has_problem(&self, key: &str) -> bool {
        self.problems.iter().any(|p| p.key == key)
    }
}
