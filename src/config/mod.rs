//! Configuration: figment layering (built-in defaults → `config.toml` →
//! `WA_SENTINEL_<SECTION>__<KEY>` environment variables), then validation of
//! the raw shapes ([`raw`]) into ready-to-use types. Every problem names where
//! the value came from, the key, and why it is wrong; all problems are reported
//! at once.

pub mod events;
pub mod raw;
pub mod recipients;
pub mod secret;
mod tenancy;

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

    fn config(&mut self, r: &RawConfig) -> Option<Config> {
        // [database]
        let db_url = r.database.url.trim().to_string();
        if !(db_url.starts_with("sqlite:") || db_url.starts_with("postgres://") || db_url.starts_with("postgresql://"))
        {
            self.bad("database.url", "must start with sqlite:, postgres:// or postgresql://");
        }
        self.at_least("database.max_connections", r.database.max_connections, 1);

        // [server]
        let listen = r.server.listen.parse::<SocketAddr>().unwrap_or_else(|e| {
            self.bad("server.listen", format!("`{}` is not an address like 127.0.0.1:8080: {e}", r.server.listen));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let admin_listen = r.server.admin_listen.as_ref().and_then(|a| match a.parse::<SocketAddr>() {
            Ok(addr) if addr == listen => {
                self.bad(
                    "server.admin_listen",
                    format!("`{a}` is server.listen too: give the admin surface its own address"),
                );
                None
            }
            Ok(addr) => Some(addr),
            Err(e) => {
                self.bad("server.admin_listen", format!("`{a}` is not an address like 127.0.0.1:8081: {e}"));
                None
            }
        });
        let public_url = r.server.public_url.as_ref().map(|u| u.trim_end_matches('/').to_string());
        if let Some(u) = &public_url {
            self.url("server.public_url", u);
        }
        let admin_token = self.secret(
            "server.admin_token",
            "admin_token",
            &r.server.admin_token,
            &r.server.admin_token_env,
            &r.server.admin_token_file,
        );
        let events_token = self.secret(
            "server.events_token",
            "events_token",
            &r.server.events_token,
            &r.server.events_token_env,
            &r.server.events_token_file,
        );
        let max_body = match r.server.max_body.parse::<bytesize::ByteSize>() {
            Ok(b) if b.as_u64() >= 1024 => b.as_u64() as usize,
            Ok(_) => {
                self.bad("server.max_body", "must be at least 1KiB");
                0
            }
            Err(e) => {
                self.bad("server.max_body", format!("`{}` is not a size like \"2MiB\": {e}", r.server.max_body));
                0
            }
        };

        // [supervisor]
        let s = &r.supervisor;
        for (key, expr) in [
            ("supervisor.poll_schedule", &s.poll_schedule),
            ("supervisor.webhook_audit_schedule", &s.webhook_audit_schedule),
        ] {
            if let Err(e) = check_cron(expr) {
                self.bad(key, e);
            }
        }
        let supervisor = SupervisorConfig {
            poll_schedule: s.poll_schedule.clone(),
            webhook_audit_schedule: s.webhook_audit_schedule.clone(),
            request_timeout: self.positive_duration("supervisor.request_timeout", &s.request_timeout),
            concurrency: self.at_least("supervisor.concurrency", s.concurrency, 1) as usize,
            per_provider_concurrency: self.at_least(
                "supervisor.per_provider_concurrency",
                s.per_provider_concurrency,
                1,
            ) as usize,
            recovery_concurrency: self.at_least("supervisor.recovery_concurrency", s.recovery_concurrency, 1) as usize,
            settle_delay: self.duration("supervisor.settle_delay", &s.settle_delay),
            retention: self.duration("supervisor.retention", &s.retention),
        };

        // [restart] + [alerts] -> Policy
        let rs = &r.restart;
        let al = &r.alerts;
        if !(rs.backoff_factor.is_finite() && rs.backoff_factor >= 1.0) {
            self.bad("restart.backoff_factor", format!("must be a number >= 1.0, got {}", rs.backoff_factor));
        }
        if al.flap_threshold == 1 {
            self.bad("alerts.flap_threshold", "must be 0 (off) or at least 2: one transition is not flapping");
        }
        let policy = Policy {
            down_after: self.at_least("supervisor.down_after", s.down_after, 1),
            stale_webhook_after: self.duration("supervisor.stale_webhook_after", &s.stale_webhook_after),
            cooldown: self.positive_duration("restart.cooldown", &rs.cooldown),
            max_attempts_per_outage: rs.max_attempts_per_outage,
            backoff_factor: rs.backoff_factor,
            max_cooldown: self.positive_duration("restart.max_cooldown", &rs.max_cooldown),
            reset_after: self.duration("restart.reset_after", &rs.reset_after),
            flap_window: self.positive_duration("alerts.flap_window", &al.flap_window),
            flap_threshold: al.flap_threshold,
            reminder_every: self.duration("alerts.reminder_every", &al.reminder_every),
            replaced_limit: 2,
        };
        let language = match al.language.as_str() {
            "en" => Language::En,
            "pt-BR" | "pt-br" | "pt_BR" => Language::PtBr,
            other => {
                self.bad("alerts.language", format!("`{other}`: must be \"en\" or \"pt-BR\""));
                Language::En
            }
        };

        // [webhook]
        if r.webhook.events.is_empty() {
            self.bad("webhook.events", "must name at least one event (e.g. \"CONNECTION_UPDATE\")");
        }
        for (i, e) in r.webhook.events.iter().enumerate() {
            if e.is_empty() || !e.bytes().all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit()) {
                self.bad(
                    format!("webhook.events[{i}]"),
                    format!("`{e}`: events are UPPER_SNAKE_CASE, e.g. MESSAGES_UPSERT"),
                );
            }
        }

        let heartbeat_url = self.secret(
            "selfcheck.heartbeat_url",
            "heartbeat_url",
            &r.selfcheck.heartbeat_url,
            &r.selfcheck.heartbeat_url_env,
            &r.selfcheck.heartbeat_url_file,
        );
        if let Some(u) = &heartbeat_url {
            self.url("selfcheck.heartbeat_url", u.expose());
        }
        let selfcheck = SelfcheckConfig {
            heartbeat_url,
            quiet_after: self.positive_duration("selfcheck.quiet_after", &r.selfcheck.quiet_after),
        };
        let log = self.log(&r.log);
        let pairing = self.pairing(&r.pairing, public_url.is_some());
        let providers = self.providers(&r.providers);
        // Each provider kind accepts its own event names: name
        // the bad entry now rather than fail every audit with a 400 later.
        for (i, e) in r.webhook.events.iter().enumerate() {
            if let Some(why) = providers.iter().find_map(|p| events::rejection(p, e)) {
                self.bad(format!("webhook.events[{i}]"), why);
            }
        }
        let instances = self.instances(&r.instances, &providers);
        let mut notifiers = self.notifiers(&r.notifiers, &providers, &instances);
        if r.notifiers.is_empty() {
            // With nothing configured, notices still show up: on the console.
            notifiers.push(NotifierConfig {
                name: "log".into(),
                target: NotifierTarget::Log,
                tenants: None,
                kinds: None,
                provider_notices: true,
                fallback: None,
                fallback_only: false,
            });
        }

        Some(Config {
            database: DatabaseConfig { url: db_url, max_connections: r.database.max_connections },
            server: ServerConfig { listen, admin_listen, public_url, admin_token, events_token, max_body },
            supervisor,
            policy,
            alerts: AlertsConfig {
                group_provider_outage: al.group_provider_outage,
                language,
                retry_min_delay: self.positive_duration("alerts.retry_min_delay", &al.retry_min_delay),
                retry_max_delay: self.positive_duration("alerts.retry_max_delay", &al.retry_max_delay),
                delivery_max_age: self.positive_duration("alerts.delivery_max_age", &al.delivery_max_age),
            },
            webhook: DesiredWebhook {
                events: r.webhook.events.clone(),
                by_events: r.webhook.by_events,
                base64: r.webhook.base64,
            },
            selfcheck,
            log,
            pairing,
            providers,
            instances,
            notifiers,
            tenants: self.tenants(&r.tenants),
            subscribers: self.subscribers(&r.subscribers),
            raw: r.clone(),
        })
    }

    fn pairing(&mut self, r: &raw::RawPairing, has_public_url: bool) -> PairingConfig {
        use crate::domain::pairing::PAIRABLE;
        if r.enabled == Some(true) && !has_public_url {
            self.bad(
                "pairing.enabled",
                "needs server.public_url: every link is <public_url>/pair/<token>; set it, or pairing.enabled = false",
            );
        }
        let link_ttl = self.positive_duration("pairing.link_ttl", &r.link_ttl);
        if link_ttl > Duration::from_secs(7 * 86_400) {
            self.bad("pairing.link_ttl", "at most 7d: a link is a credential to the customer's WhatsApp account");
        }
        let mut causes = Vec::new();
        for (i, c) in r.causes.iter().enumerate() {
            match crate::domain::health::Cause::parse(c).filter(|c| PAIRABLE.contains(c)) {
                Some(c) if !causes.contains(&c) => causes.push(c),
                Some(_) => {}
                None => self.bad(
                    format!("pairing.causes[{i}]"),
                    format!("`{c}`: a QR scan can end only logged_out, needs_qr and needs_human outages"),
                ),
            }
        }
        PairingConfig { enabled: r.enabled.unwrap_or(has_public_url) && has_public_url, link_ttl, causes }
    }

    fn log(&mut self, r: &raw::RawLog) -> LogConfig {
        let format = match r.format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                self.bad("log.format", format!("`{other}`: must be \"text\" or \"json\""));
                LogFormat::Text
            }
        };
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&r.level) {
            self.bad(
                "log.level",
                format!("`{}` is not a log filter like \"info\" or \"info,sqlx=debug\": {e}", r.level),
            );
        }
        LogConfig { format, level: r.level.clone() }
    }

    fn providers(&mut self, raws: &[raw::RawProvider]) -> Vec<ProviderConfig> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (i, p) in raws.iter().enumerate() {
            let k = |f: &str| format!("providers[{i}].{f}");
            if !is_url_safe_name(&p.name) {
                self.bad(k("name"), format!("`{}`: use lowercase letters, digits, `_` and `-` only", p.name));
            } else if !seen.insert(p.name.clone()) {
                self.bad(k("name"), format!("`{}` is used by another provider; names must be unique", p.name));
            }
            let kind = match p.kind.as_str() {
                "evolution" => ProviderKind::Evolution,
                "wapi" => ProviderKind::Wapi,
                "waha" => ProviderKind::Waha,
                "zapi" => ProviderKind::Zapi,
                other => {
                    self.bad(k("kind"), format!("`{other}`: must be \"evolution\", \"wapi\", \"waha\" or \"zapi\""));
                    continue;
                }
            };
            let base_url = match (kind, p.base_url.trim()) {
                (ProviderKind::Zapi, "") => ZAPI_BASE_URL.to_string(),
                (_, "") => {
                    self.bad(k("base_url"), "required: the provider's address, e.g. \"http://127.0.0.1:8080\"");
                    String::new()
                }
                (_, u) => {
                    self.url(&k("base_url"), u);
                    u.trim_end_matches('/').to_string()
                }
            };
            let api_version = match (kind, p.api_version.as_deref()) {
                (ProviderKind::Evolution, None | Some("auto")) => ApiVersion::Auto,
                (ProviderKind::Evolution, Some("v1")) => ApiVersion::V1,
                (ProviderKind::Evolution, Some("v2")) => ApiVersion::V2,
                (ProviderKind::Evolution, Some(other)) => {
                    self.bad(k("api_version"), format!("`{other}`: must be \"auto\", \"v1\" or \"v2\""));
                    ApiVersion::Auto
                }
                (_, None) => ApiVersion::Auto,
                (_, Some(_)) => {
                    self.bad(k("api_version"), "only Evolution providers have an api_version");
                    ApiVersion::Auto
                }
            };
            let api_key = self.secret(&k("api_key"), "api_key", &p.api_key, &p.api_key_env, &p.api_key_file);
            if kind == ProviderKind::Evolution && api_key.is_none() && !self.has_problem(&k("api_key")) {
                self.bad(k("api_key"), "Evolution needs its global API key: set `api_key_env` or `api_key_file`");
            }
            if kind == ProviderKind::Zapi && api_key.is_some() {
                self.bad(
                    k("api_key"),
                    "Z-API has no server key: put each instance token in [[instances]] `token_env` and the \
                     account security token in `client_token_env`",
                );
            }
            if kind != ProviderKind::Wapi && p.webhook_body_key.is_some() {
                self.bad(k("webhook_body_key"), "only W-API providers use webhook_body_key");
            }
            let webhook_token = self.secret(
                &k("webhook_token"),
                "webhook_token",
                &p.webhook_token,
                &p.webhook_token_env,
                &p.webhook_token_file,
            );
            let webhook_token = match webhook_token {
                Some(t) => t,
                None => {
                    if !self.has_problem(&k("webhook_token")) {
                        self.bad(
                            k("webhook_token"),
                            "the receiver URL needs a secret token: set `webhook_token_env` or `webhook_token_file`",
                        );
                    }
                    continue;
                }
            };
            let webhook_bearer = self.secret(
                &k("webhook_bearer"),
                "webhook_bearer",
                &p.webhook_bearer,
                &p.webhook_bearer_env,
                &p.webhook_bearer_file,
            );
            let webhook_jwt_key = self.secret(
                &k("webhook_jwt_key"),
                "webhook_jwt_key",
                &p.webhook_jwt_key,
                &p.webhook_jwt_key_env,
                &p.webhook_jwt_key_file,
            );
            if kind != ProviderKind::Evolution && (webhook_bearer.is_some() || webhook_jwt_key.is_some()) {
                self.bad(
                    k("webhook_bearer"),
                    format!(
                        "{} sends no Bearer headers; only Evolution v2 uses webhook_bearer / webhook_jwt_key",
                        kind.as_str()
                    ),
                );
            }
            let webhook_hmac_key = self.secret(
                &k("webhook_hmac_key"),
                "webhook_hmac_key",
                &p.webhook_hmac_key,
                &p.webhook_hmac_key_env,
                &p.webhook_hmac_key_file,
            );
            if kind != ProviderKind::Waha && webhook_hmac_key.is_some() {
                self.bad(k("webhook_hmac_key"), "only WAHA signs its webhooks (HMAC-SHA512); remove webhook_hmac_key*");
            }
            let client_token = self.secret(
                &k("client_token"),
                "client_token",
                &p.client_token,
                &p.client_token_env,
                &p.client_token_file,
            );
            if kind != ProviderKind::Zapi && client_token.is_some() {
                self.bad(k("client_token"), "only Z-API uses a Client-Token; remove client_token*");
            }
            if p.discover && kind == ProviderKind::Wapi && api_key.is_none() {
                self.bad(k("discover"), "W-API discovery needs the integrator token in `api_key_env`/`api_key_file`");
            }
            if p.discover && kind == ProviderKind::Zapi {
                self.bad(k("discover"), "Z-API has no API to list instances: list each one under [[instances]]");
            }
            let health = self.provider_health(p, &k);
            let default_tenant = p.default_tenant.clone().unwrap_or_else(|| "unassigned".into());
            if default_tenant.trim().is_empty() {
                self.bad(k("default_tenant"), "must not be empty");
            }
            out.push(ProviderConfig {
                name: p.name.clone(),
                kind,
                base_url,
                api_version,
                api_key,
                webhook_token,
                discover: p.discover,
                default_tenant,
                webhook_body_key: p.webhook_body_key.clone().unwrap_or_else(|| "value".into()),
                webhook_bearer,
                webhook_jwt_key,
                webhook_hmac_key,
                client_token,
                health,
                tenant_pattern: self.tenant_pattern(&k("tenant_pattern"), p.tenant_pattern.as_deref()),
            });
        }
        out
    }

    /// `silent_after`, `silent_min_instances` and the `remediate_*` keys of one provider.
    fn provider_health(&mut self, p: &raw::RawProvider, k: &dyn Fn(&str) -> String) -> ProviderPolicy {
        let silent_after = self.duration(&k("silent_after"), p.silent_after.as_deref().unwrap_or("15m"));
        let silent_min_instances = self.at_least(&k("silent_min_instances"), p.silent_min_instances.unwrap_or(3), 1);
        let Some(command) = &p.remediate_command else {
            for (key, set) in [
                ("remediate_timeout", p.remediate_timeout.is_some()),
                ("remediate_cooldown", p.remediate_cooldown.is_some()),
                ("remediate_max_attempts", p.remediate_max_attempts.is_some()),
                ("remediate_on", p.remediate_on.is_some()),
                ("remediate_env", p.remediate_env.is_some()),
            ] {
                if set {
                    self.bad(k(key), "has no effect without `remediate_command`");
                }
            }
            return ProviderPolicy { silent_after, silent_min_instances, remediation: None };
        };
        if command.first().is_none_or(|c| c.trim().is_empty()) {
            self.bad(
                k("remediate_command"),
                "must be an argv list with the program first, e.g. [\"/usr/bin/systemctl\", \"restart\", \"evolution-api\"]",
            );
        }
        let timeout = self.positive_duration(&k("remediate_timeout"), p.remediate_timeout.as_deref().unwrap_or("60s"));
        let cooldown =
            self.positive_duration(&k("remediate_cooldown"), p.remediate_cooldown.as_deref().unwrap_or("30m"));
        let max_attempts = self.at_least(&k("remediate_max_attempts"), p.remediate_max_attempts.unwrap_or(2), 1);
        if !self.has_problem(&k("remediate_timeout"))
            && !self.has_problem(&k("remediate_cooldown"))
            && timeout >= cooldown
        {
            self.bad(
                k("remediate_timeout"),
                format!(
                    "{} is not shorter than remediate_cooldown ({}): a run could still be going when the next is due; \
                     make the timeout shorter than the cooldown",
                    crate::domain::time::human_duration(timeout),
                    crate::domain::time::human_duration(cooldown)
                ),
            );
        }
        let env = p.remediate_env.clone().unwrap_or_default();
        for (i, name) in env.iter().enumerate() {
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.bad(
                    format!("{}[{i}]", k("remediate_env")),
                    format!("`{name}` is not an environment variable name (letters, digits, `_`)"),
                );
            }
        }
        let mut on = Vec::new();
        for (i, c) in p.remediate_on.clone().unwrap_or_else(|| vec!["silent".into()]).iter().enumerate() {
            match ProviderCause::parse(c) {
                Some(cause @ (ProviderCause::Silent | ProviderCause::Unreachable)) if !on.contains(&cause) => {
                    on.push(cause)
                }
                Some(ProviderCause::Silent | ProviderCause::Unreachable) => {}
                _ => self.bad(
                    format!("{}[{i}]", k("remediate_on")),
                    format!("`{c}`: must be \"silent\" or \"unreachable\""),
                ),
            }
        }
        if on.contains(&ProviderCause::Silent) && silent_after.is_zero() {
            self.bad(k("remediate_on"), "names `silent`, but silence detection is off (`silent_after = \"0s\"`)");
        }
        let remediation = RemediationPolicy { command: command.clone(), timeout, cooldown, max_attempts, on, env };
        ProviderPolicy { silent_after, silent_min_instances, remediation: Some(remediation) }
    }

    fn has_problem(&self, key: &str) -> bool {
        self.problems.iter().any(|p| p.key == key)
    }

    fn instances(&mut self, raws: &[raw::RawInstance], providers: &[ProviderConfig]) -> Vec<InstanceConfig> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (i, r) in raws.iter().enumerate() {
            let k = |f: &str| format!("instances[{i}].{f}");
            let Some(p) = providers.iter().find(|p| p.name == r.provider) else {
                self.bad(k("provider"), format!("`{}` is not the name of a configured provider", r.provider));
                continue;
            };
            if r.name.trim().is_empty() || r.name.contains('/') {
                self.bad(k("name"), format!("`{}`: must be non-empty and contain no `/`", r.name));
            } else if !seen.insert((r.provider.clone(), r.name.clone())) {
                self.bad(k("name"), format!("`{}/{}` is listed twice", r.provider, r.name));
            }
            if r.tenant.as_deref().is_some_and(|t| t.trim().is_empty()) {
                self.bad(k("tenant"), "must not be empty");
            }
            let token = self.secret(&k("token"), "token", &r.token, &r.token_env, &r.token_file);
            match p.kind {
                ProviderKind::Wapi if token.is_none() && !p.discover && !self.has_problem(&k("token")) => {
                    self.bad(k("token"), "a W-API instance needs its Bearer token: set `token_env` or `token_file`")
                }
                ProviderKind::Zapi if token.is_none() && !self.has_problem(&k("token")) => self.bad(
                    k("token"),
                    "a Z-API instance needs its instance token (it goes in the URL path): set `token_env` or `token_file`",
                ),
                ProviderKind::Evolution | ProviderKind::Waha if token.is_some() => self.bad(
                    k("token"),
                    format!("{} instances use the provider's API key; remove `token*`", p.kind.as_str()),
                ),
                _ => {}
            }
            out.push(InstanceConfig {
                provider: r.provider.clone(),
                name: r.name.clone(),
                tenant: r.tenant.clone(),
                labels: r.labels.clone(),
                token,
            });
        }
        out
    }

    fn notifiers(
        &mut self,
        raws: &[raw::RawNotifier],
        providers: &[ProviderConfig],
        instances: &[InstanceConfig],
    ) -> Vec<NotifierConfig> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (i, n) in raws.iter().enumerate() {
            let k = |f: &str| format!("notifiers[{i}].{f}");
            if !is_url_safe_name(&n.name) {
                self.bad(k("name"), format!("`{}`: use lowercase letters, digits, `_` and `-` only", n.name));
            } else if !seen.insert(n.name.clone()) {
                self.bad(k("name"), format!("`{}` is used by another notifier; names must be unique", n.name));
            }
            let tenants = match &n.tenants {
                None => None,
                Some(ts) if ts.iter().any(|t| t == "*") => None,
                Some(ts) if ts.is_empty() => {
                    self.bad(k("tenants"), "an empty list matches nothing; use [\"*\"] for every tenant");
                    None
                }
                Some(ts) => Some(ts.clone()),
            };
            let kinds = match &n.kinds {
                None => None,
                Some(ks) if ks.iter().any(|t| t == "*") => None,
                Some(ks) => Some(
                    ks.iter()
                        .enumerate()
                        .filter_map(|(j, s)| {
                            let parsed = NoticeKind::parse(s);
                            if parsed.is_none() {
                                let known: Vec<_> = NoticeKind::ALL.iter().map(|k| k.as_str()).collect();
                                self.bad(
                                    format!("notifiers[{i}].kinds[{j}]"),
                                    format!("`{s}` is not a notice kind ({})", known.join(", ")),
                                );
                            }
                            parsed
                        })
                        .collect(),
                ),
            };
            let url = self.secret(&k("url"), "url", &n.url, &n.url_env, &n.url_file);
            let secret = self.secret(&k("secret"), "secret", &n.secret, &n.secret_env, &n.secret_file);
            let bot_token =
                self.secret(&k("bot_token"), "bot_token", &n.bot_token, &n.bot_token_env, &n.bot_token_file);
            let password = self.secret(&k("password"), "password", &n.password, &n.password_env, &n.password_file);
            if let Some(u) = &url {
                self.url(&k("url"), u.expose());
            }
            // Keys that belong to other kinds are mistakes, not decoration.
            let used: &[&str] = match n.kind.as_str() {
                "webhook" => &["url", "secret"],
                "slack" | "discord" => &["url"],
                "telegram" => &["bot_token", "chat_id", "api_base"],
                "email" => &["smtp_host", "smtp_port", "smtp_tls", "username", "password", "from", "to"],
                "whatsapp" => &["provider", "instance", "to", "fallback", "digest_window", "min_gap"],
                "log" => &[],
                other => {
                    self.bad(
                        k("kind"),
                        format!("`{other}`: must be one of webhook, slack, discord, telegram, email, whatsapp, log"),
                    );
                    continue;
                }
            };
            let present = [
                ("url", url.is_some()),
                ("secret", secret.is_some()),
                ("bot_token", bot_token.is_some()),
                ("chat_id", n.chat_id.is_some()),
                ("api_base", n.api_base.is_some()),
                ("smtp_host", n.smtp_host.is_some()),
                ("smtp_port", n.smtp_port.is_some()),
                ("smtp_tls", n.smtp_tls.is_some()),
                ("username", n.username.is_some()),
                ("password", password.is_some()),
                ("from", n.from.is_some()),
                ("to", n.to.is_some()),
                ("provider", n.provider.is_some()),
                ("instance", n.instance.is_some()),
                ("fallback", n.fallback.is_some()),
                ("digest_window", n.digest_window.is_some()),
                ("min_gap", n.min_gap.is_some()),
            ];
            for (field, is_set) in present {
                if is_set && !used.contains(&field) {
                    self.bad(k(field), format!("not used by a `{}` notifier", n.kind));
                }
            }
            let missing = |v: &mut Self, field: &str| {
                if !v.has_problem(&k(field)) {
                    v.bad(k(field), format!("required for a `{}` notifier", n.kind));
                }
            };
            let target = match n.kind.as_str() {
                "webhook" => match url {
                    Some(url) => NotifierTarget::Webhook { url, secret },
                    None => {
                        missing(self, "url");
                        continue;
                    }
                },
                "slack" | "discord" => match url {
                    Some(url) if n.kind == "slack" => NotifierTarget::Slack { url },
                    Some(url) => NotifierTarget::Discord { url },
                    None => {
                        missing(self, "url");
                        continue;
                    }
                },
                "telegram" => match (bot_token, &n.chat_id) {
                    (Some(bot_token), Some(chat_id)) => {
                        let api_base = n.api_base.clone().unwrap_or_else(|| "https://api.telegram.org".into());
                        self.url(&k("api_base"), &api_base);
                        NotifierTarget::Telegram { bot_token, chat_id: chat_id.clone(), api_base }
                    }
                    (b, c) => {
                        if b.is_none() {
                            missing(self, "bot_token");
                        }
                        if c.is_none() {
                            missing(self, "chat_id");
                        }
                        continue;
                    }
                },
                "email" => {
                    let tls = match n.smtp_tls.as_deref().unwrap_or("starttls") {
                        "starttls" => SmtpTls::StartTls,
                        "tls" => SmtpTls::Tls,
                        "none" => SmtpTls::None,
                        other => {
                            self.bad(k("smtp_tls"), format!("`{other}`: must be \"starttls\", \"tls\" or \"none\""));
                            SmtpTls::StartTls
                        }
                    };
                    let (Some(host), Some(from), Some(to)) = (&n.smtp_host, &n.from, &n.to) else {
                        for (f, set) in
                            [("smtp_host", n.smtp_host.is_some()), ("from", n.from.is_some()), ("to", n.to.is_some())]
                        {
                            if !set {
                                missing(self, f);
                            }
                        }
                        continue;
                    };
                    if to.is_empty() {
                        self.bad(k("to"), "must list at least one address");
                    }
                    if password.is_some() != n.username.is_some() {
                        self.bad(k("username"), "give both `username` and a `password*`, or neither");
                    }
                    let port = n.smtp_port.unwrap_or(match tls {
                        SmtpTls::StartTls => 587,
                        SmtpTls::Tls => 465,
                        SmtpTls::None => 25,
                    });
                    NotifierTarget::Email {
                        host: host.clone(),
                        port,
                        tls,
                        username: n.username.clone(),
                        password,
                        from: from.clone(),
                        to: to.clone(),
                    }
                }
                "whatsapp" => match self.whatsapp(i, n, providers, instances) {
                    Some(t) => t,
                    None => continue,
                },
                _ => NotifierTarget::Log,
            };
            let provider_notices = n.provider_notices.unwrap_or(tenants.is_none());
            out.push(NotifierConfig {
                name: n.name.clone(),
                target,
                tenants,
                kinds,
                provider_notices,
                fallback: n.fallback.clone(),
                fallback_only: n.fallback_only.unwrap_or(false),
            });
        }
        self.fallbacks(raws);
        out
    }

    /// A `whatsapp` notifier's target: a configured provider, an instance of
    /// it listed in `[[instances]]` (wa-sentinel must watch the instance it
    /// sends through), recipients in that provider's forms, its pacing.
    fn whatsapp(
        &mut self,
        i: usize,
        n: &raw::RawNotifier,
        providers: &[ProviderConfig],
        instances: &[InstanceConfig],
    ) -> Option<NotifierTarget> {
        let k = |f: &str| format!("notifiers[{i}].{f}");
        let Some(pname) = &n.provider else {
            self.bad(k("provider"), "required for a `whatsapp` notifier: the provider that sends its messages");
            return None;
        };
        let Some(p) = providers.iter().find(|p| &p.name == pname) else {
            self.bad(k("provider"), format!("`{pname}` is not the name of a configured provider"));
            return None;
        };
        let Some(iname) = &n.instance else {
            self.bad(k("instance"), "required for a `whatsapp` notifier: the instance that sends its messages");
            return None;
        };
        match instances.iter().find(|x| &x.provider == pname && &x.name == iname) {
            None => self.bad(
                k("instance"),
                format!(
                    "`{iname}` is not listed in [[instances]] under provider `{pname}`: list it there, so                      wa-sentinel watches the instance it sends through"
                ),
            ),
            Some(x) if p.kind == ProviderKind::Wapi && x.token.is_none() => self.bad(
                k("instance"),
                format!("a W-API instance sends with its own Bearer token: set `token_env` on `{iname}` in [[instances]]"),
            ),
            Some(_) => {}
        }
        let mut to = Vec::new();
        match &n.to {
            None => self.bad(k("to"), "required for a `whatsapp` notifier: the numbers or groups to tell"),
            Some(list) if list.is_empty() => self.bad(k("to"), "must list at least one number or group"),
            Some(list) => {
                for (j, r) in list.iter().enumerate() {
                    match recipients::recipient(p.kind, r) {
                        Ok(norm) => to.push(norm),
                        Err(why) => self.bad(format!("notifiers[{i}].to[{j}]"), why),
                    }
                }
            }
        }
        let digest_window = self.duration(&k("digest_window"), n.digest_window.as_deref().unwrap_or("5s"));
        if digest_window > Duration::from_secs(60) {
            self.bad(k("digest_window"), "must be at most 1m: a notice waits that long before it is sent");
        }
        let min_gap = self.duration(&k("min_gap"), n.min_gap.as_deref().unwrap_or("3s"));
        if min_gap > Duration::from_secs(60) {
            self.bad(k("min_gap"), "must be at most 1m: every notice behind the first waits that long per message");
        }
        Some(NotifierTarget::WhatsApp { provider: pname.clone(), instance: iname.clone(), to, digest_window, min_gap })
    }

    /// Across notifiers: each `fallback` names another notifier, the chains
    /// end (no cycle), and each `fallback_only` notifier is someone's fallback.
    fn fallbacks(&mut self, raws: &[raw::RawNotifier]) {
        let index = |name: &str| raws.iter().position(|n| n.name == name);
        for (i, n) in raws.iter().enumerate() {
            let Some(f) = &n.fallback else { continue };
            if f == &n.name {
                self.bad(format!("notifiers[{i}].fallback"), "a notifier cannot be its own fallback");
            } else if index(f).is_none() {
                self.bad(format!("notifiers[{i}].fallback"), format!("`{f}` is not the name of another notifier"));
            }
        }
        let mut reported: HashSet<usize> = HashSet::new();
        for start in 0..raws.len() {
            let mut chain = vec![start];
            let mut at = start;
            while let Some(next) = raws[at].fallback.as_deref().and_then(index).filter(|&j| j != at) {
                if let Some(pos) = chain.iter().position(|&c| c == next) {
                    let cycle = &chain[pos..];
                    if cycle.iter().all(|c| !reported.contains(c)) {
                        reported.extend(cycle.iter().copied());
                        let first = *cycle.iter().min().expect("a cycle has members");
                        let names: Vec<&str> = cycle.iter().chain([&next]).map(|&c| raws[c].name.as_str()).collect();
                        self.bad(
                            format!("notifiers[{first}].fallback"),
                            format!(
                                "{}: fallbacks form a cycle, so a notice none of them can deliver would never settle;                                  end the chain with a notifier that has no fallback",
                                names.join(" → ")
                            ),
                        );
                    }
                    break;
                }
                chain.push(next);
                at = next;
            }
        }
        for (i, n) in raws.iter().enumerate() {
            if n.fallback_only == Some(true) && !raws.iter().any(|o| o.fallback.as_deref() == Some(&n.name)) {
                self.bad(
                    format!("notifiers[{i}].fallback_only"),
                    format!("no notifier names `{}` as its `fallback`, so it would receive nothing", n.name),
                );
            }
        }
    }
}

/// The effective configuration as TOML with every inline secret and the
/// database password redacted (`check-config`).
pub fn redacted_toml(raw: &RawConfig) -> String {
    let mut r = raw.clone();
    let red = |s: &mut Option<String>| {
        if s.is_some() {
            *s = Some("[redacted]".into());
        }
    };
    r.database.url = redact_url_password(&r.database.url);
    red(&mut r.server.admin_token);
    red(&mut r.server.events_token);
    red(&mut r.selfcheck.heartbeat_url);
    red(&mut r.tenants.source_url);
    for s in &mut r.subscribers {
        red(&mut s.url);
        red(&mut s.secret);
    }
    for p in &mut r.providers {
        red(&mut p.api_key);
        red(&mut p.webhook_token);
        red(&mut p.webhook_bearer);
        red(&mut p.webhook_jwt_key);
        red(&mut p.webhook_hmac_key);
        red(&mut p.client_token);
    }
    for i in &mut r.instances {
        red(&mut i.token);
    }
    for n in &mut r.notifiers {
        red(&mut n.url);
        red(&mut n.secret);
        red(&mut n.bot_token);
        red(&mut n.password);
    }
    toml::to_string_pretty(&r).unwrap_or_else(|e| format!("# cannot render the config: {e}\n"))
}

/// `postgres://user:pw@host/db` → `postgres://user:[redacted]@host/db`.
pub fn redact_url_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("[redacted]"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
