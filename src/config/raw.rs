//! The configuration exactly as written (docs/configuration.md): serde shapes with the
//! built-in defaults. Durations, sizes and URLs stay strings here so that
//! validation ([`super::validate`]) can name the key of any bad value.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub database: RawDatabase,
    pub server: RawServer,
    pub supervisor: RawSupervisor,
    pub restart: RawRestart,
    pub alerts: RawAlerts,
    pub webhook: RawWebhook,
    pub selfcheck: RawSelfcheck,
    pub log: RawLog,
    pub pairing: RawPairing,
    pub providers: Vec<RawProvider>,
    pub instances: Vec<RawInstance>,
    pub notifiers: Vec<RawNotifier>,
    pub tenants: RawTenants,
    pub subscribers: Vec<RawSubscriber>,
}

/// `[tenants]`: the SaaS application's own database as a tenant source.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTenants {
    /// The application's PostgreSQL (read only). The URL holds a password:
    /// prefer `source_url_env` or `source_url_file`.
    pub source_url: Option<String>,
    pub source_url_env: Option<String>,
    pub source_url_file: Option<PathBuf>,
    /// Columns `instance` and `tenant` (and optionally `provider`).
    pub query: String,
    pub refresh: String,
    pub statement_timeout: String,
}

impl Default for RawTenants {
    fn default() -> Self {
        RawTenants {
            source_url: None,
            source_url_env: None,
            source_url_file: None,
            query: "SELECT instance_name AS instance, tenant_id AS tenant FROM whatsapp_instances".into(),
            refresh: "5m".into(),
            statement_timeout: "5s".into(),
        }
    }
}

/// `[[subscribers]]`: an application endpoint that receives every event.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubscriber {
    pub name: String,
    pub url: Option<String>,
    pub url_env: Option<String>,
    pub url_file: Option<PathBuf>,
    /// HMAC-SHA256 key of `X-Wa-Sentinel-Signature`.
    pub secret: Option<String>,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// Event kinds (default: all).
    pub events: Option<Vec<String>>,
    /// Tenants (default `["*"]`: all).
    pub tenants: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDatabase {
    pub url: String,
    pub max_connections: u32,
}

impl Default for RawDatabase {
    fn default() -> Self {
        RawDatabase { url: "sqlite://data/wa-sentinel.db".into(), max_connections: 8 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: String,
    /// When set, the admin surface (`/`, `/login`, `/api/*`, `/metrics`) is
    /// served only here, and `listen` serves only webhooks and health.
    pub admin_listen: Option<String>,
    pub public_url: Option<String>,
    pub admin_token: Option<String>,
    pub admin_token_env: Option<String>,
    pub admin_token_file: Option<PathBuf>,
    /// A read-only token for `GET /api/events` (the admin token works too).
    pub events_token: Option<String>,
    pub events_token_env: Option<String>,
    pub events_token_file: Option<PathBuf>,
    pub max_body: String,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: "127.0.0.1:8080".into(),
            admin_listen: None,
            public_url: None,
            admin_token: None,
            admin_token_env: None,
            admin_token_file: None,
            events_token: None,
            events_token_env: None,
            events_token_file: None,
            max_body: "2MiB".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSupervisor {
    pub poll_schedule: String,
    pub webhook_audit_schedule: String,
    pub request_timeout: String,
    pub concurrency: u32,
    pub per_provider_concurrency: u32,
    /// Recovery actions in flight per provider (no thundering herd after a provider reboot).
    pub recovery_concurrency: u32,
    pub down_after: u32,
    pub stale_webhook_after: String,
    /// How long after a recovery action the verification poll runs.
    pub settle_delay: String,
    /// Events and closed outages older than this are deleted (0s: keep forever).
    pub retention: String,
}

impl Default for RawSupervisor {
    fn default() -> Self {
        RawSupervisor {
            poll_schedule: "*/30 * * * * *".into(),
            webhook_audit_schedule: "0 */5 * * * *".into(),
            request_timeout: "10s".into(),
            concurrency: 64,
            per_provider_concurrency: 16,
            recovery_concurrency: 4,
            down_after: 2,
            stale_webhook_after: "0s".into(),
            settle_delay: "10s".into(),
            retention: "30d".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRestart {
    pub cooldown: String,
    pub max_attempts_per_outage: u32,
    pub backoff_factor: f64,
    pub max_cooldown: String,
    /// Connected this long between outages resets the attempt budget.
    pub reset_after: String,
}

impl Default for RawRestart {
    fn default() -> Self {
        RawRestart {
            cooldown: "30m".into(),
            max_attempts_per_outage: 3,
            backoff_factor: 2.0,
            max_cooldown: "4h".into(),
            reset_after: "1h".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAlerts {
    pub flap_window: String,
    pub flap_threshold: u32,
    pub reminder_every: String,
    pub group_provider_outage: bool,
    /// `en` or `pt-BR`.
    pub language: String,
    /// Outbox delivery retries: exponential with jitter from this ...
    pub retry_min_delay: String,
    /// ... up to this between two attempts ...
    pub retry_max_delay: String,
    /// ... until the notice is this old; then it is marked dead (and counted).
    pub delivery_max_age: String,
}

impl Default for RawAlerts {
    fn default() -> Self {
        RawAlerts {
            flap_window: "10m".into(),
            flap_threshold: 4,
            reminder_every: "0s".into(),
            group_provider_outage: true,
            language: "en".into(),
            retry_min_delay: "2s".into(),
            retry_max_delay: "10m".into(),
            delivery_max_age: "24h".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWebhook {
    pub events: Vec<String>,
    pub by_events: bool,
    pub base64: bool,
}

impl Default for RawWebhook {
    fn default() -> Self {
        RawWebhook {
            events: ["MESSAGES_UPSERT", "MESSAGES_UPDATE", "CONNECTION_UPDATE", "QRCODE_UPDATED", "SEND_MESSAGE"]
                .map(String::from)
                .to_vec(),
            by_events: false,
            base64: false,
        }
    }
}

/// Watching the watcher: a dead-man's switch pinged after each healthy cycle,
/// and how long the receiver may be quiet before "no provider answers" is
/// blamed on wa-sentinel's own network.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSelfcheck {
    pub heartbeat_url: Option<String>,
    pub heartbeat_url_env: Option<String>,
    pub heartbeat_url_file: Option<PathBuf>,
    pub quiet_after: String,
}

impl Default for RawSelfcheck {
    fn default() -> Self {
        RawSelfcheck {
            heartbeat_url: None,
            heartbeat_url_env: None,
            heartbeat_url_file: None,
            quiet_after: "5m".into(),
        }
    }
}

/// Re-pair links: `<server.public_url>/pair/<token>`, a page where a customer
/// scans a fresh QR code (or asks for a pairing code) for a number only a
/// person can bring back.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPairing {
    /// Default: on when `server.public_url` is set.
    pub enabled: Option<bool>,
    /// How long a link lives.
    pub link_ttl: String,
    /// The outage causes whose down notice carries a link.
    pub causes: Vec<String>,
}

impl Default for RawPairing {
    fn default() -> Self {
        RawPairing { enabled: None, link_ttl: "24h".into(), causes: vec!["logged_out".into(), "needs_qr".into()] }
    }
}

/// How log lines look (`text` or `json`) and how much is logged.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub format: String,
    /// An `EnvFilter` directive string: `info`, `debug`, `info,wa_sentinel::supervisor=debug`.
    pub level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog { format: "text".into(), level: "info".into() }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: String,
    pub kind: String,
    /// Required, except for Z-API (default `https://api.z-api.io`).
    #[serde(default)]
    pub base_url: String,
    pub api_version: Option<String>,
    pub api_key: Option<String>,
    pub api_key_env: Option<String>,
    pub api_key_file: Option<PathBuf>,
    pub webhook_token: Option<String>,
    pub webhook_token_env: Option<String>,
    pub webhook_token_file: Option<PathBuf>,
    #[serde(default)]
    pub discover: bool,
    pub default_tenant: Option<String>,
    /// W-API: the JSON key of the webhook-update body (sources disagree; default `value`).
    pub webhook_body_key: Option<String>,
    /// Evolution v2 `webhook.headers` auth, accepted besides the path token:
    /// a static `Authorization: Bearer` token ...
    pub webhook_bearer: Option<String>,
    pub webhook_bearer_env: Option<String>,
    pub webhook_bearer_file: Option<PathBuf>,
    /// ... or the `jwt_key` that signs an HS256 JWT (Evolution 2.3+).
    pub webhook_jwt_key: Option<String>,
    pub webhook_jwt_key_env: Option<String>,
    pub webhook_jwt_key_file: Option<PathBuf>,
    /// WAHA: the `hmac.key` set in the session webhook config; inbound
    /// `X-Webhook-Hmac` (HMAC-SHA512 of the raw body) is verified with it.
    pub webhook_hmac_key: Option<String>,
    pub webhook_hmac_key_env: Option<String>,
    pub webhook_hmac_key_file: Option<PathBuf>,
    /// Z-API: the account security token, sent as the `Client-Token` header.
    pub client_token: Option<String>,
    pub client_token_env: Option<String>,
    pub client_token_file: Option<PathBuf>,
    /// No webhook from any instance for this long while sessions are open:
    /// the provider is silent (default `15m`; `0s` turns it off).
    pub silent_after: Option<String>,
    /// Connected instances needed before a silence counts (default 3).
    pub silent_min_instances: Option<u32>,
    /// The remediation hook: argv (never a shell), run when a provider outage
    /// of a cause in `remediate_on` opens and after each cooldown.
    pub remediate_command: Option<Vec<String>>,
    pub remediate_timeout: Option<String>,
    pub remediate_cooldown: Option<String>,
    pub remediate_max_attempts: Option<u32>,
    pub remediate_on: Option<Vec<String>>,
    /// Environment variables (by name) passed to the command on purpose; it
    /// runs with a clean environment otherwise.
    pub remediate_env: Option<Vec<String>>,
    /// A regular expression with a named group `tenant`, applied to the
    /// names of discovered instances.
    pub tenant_pattern: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawInstance {
    pub provider: String,
    pub name: String,
    pub tenant: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub token: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifier {
    pub name: String,
    pub kind: String,
    pub tenants: Option<Vec<String>>,
    pub kinds: Option<Vec<String>>,
    /// Notices that belong to no tenant (provider-wide, `sentinel_isolated`):
    /// default true for `tenants = ["*"]`, false for a tenant-scoped notifier.
    pub provider_notices: Option<bool>,
    pub url: Option<String>,
    pub url_env: Option<String>,
    pub url_file: Option<PathBuf>,
    /// `webhook`: HMAC-SHA256 signing secret.
    pub secret: Option<String>,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// `telegram`.
    pub bot_token: Option<String>,
    pub bot_token_env: Option<String>,
    pub bot_token_file: Option<PathBuf>,
    pub chat_id: Option<String>,
    pub api_base: Option<String>,
    /// `email`.
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    pub smtp_tls: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub from: Option<String>,
    /// `email`: addresses; `whatsapp`: E.164 numbers or group ids.
    pub to: Option<Vec<String>>,
    /// `whatsapp`: the configured provider, and the instance of it (listed
    /// in `[[instances]]`) that sends the notices.
    pub provider: Option<String>,
    pub instance: Option<String>,
    /// `whatsapp`: the notifier that gets what this one cannot deliver.
    pub fallback: Option<String>,
    /// Takes only what other notifiers hand over (default false).
    pub fallback_only: Option<bool>,
    /// `whatsapp`: notices queued within this long go out as one message
    /// (default `5s`; `0s`: one message per notice).
    pub digest_window: Option<String>,
    /// `whatsapp`: the least time between two messages through the instance
    /// (default `3s`).
    pub min_gap: Option<String>,
}
