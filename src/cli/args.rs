//! The command-line grammar (clap derive), and nothing else: `build.rs`
//! includes this file to generate the man pages and shell completions, so it
//! may use only `clap` and `std`. The version string is set at run time
//! ([`super::command`]) because it comes from `build.rs`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "wa-sentinel",
    about = "Keeps WhatsApp instances on Evolution API, W-API, WAHA and Z-API alive.",
    long_about = "Keeps WhatsApp instances on Evolution API (v1, v2), W-API, WAHA and Z-API alive: polls every instance, \
                  recovers dead sessions under a persisted cooldown, repairs webhook configs, tells operators \
                  once per outage, and receives provider webhooks.\n\n\
                  Exit codes: 0 ok, 1 runtime failure, 2 bad usage or invalid config.\n\n\
                  Files (Debian package): /etc/wa-sentinel/config.toml, the config, every key documented; \
                  /etc/default/wa-sentinel, the service's secrets (environment variables named by *_env keys); \
                  /var/lib/wa-sentinel, the SQLite database.\n\n\
                  Environment: WA_SENTINEL_CONFIG, the config path; WA_SENTINEL_<SECTION>__<KEY>, one config key \
                  (e.g. WA_SENTINEL_SUPERVISOR__DOWN_AFTER=3); RUST_LOG, replaces log.level; NO_COLOR, no colours."
)]
pub struct Cli {
    /// Config file (default: $WA_SENTINEL_CONFIG, else ./config.toml).
    #[arg(long, global = true, value_name = "PATH", value_hint = clap::ValueHint::FilePath)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// How `report` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon: migrate, supervise, receive webhooks, until SIGTERM/SIGINT.
    Run,
    /// Everything on this machine with no setup: simulator, ephemeral SQLite, console notices.
    Demo {
        /// Compress the script to seconds (used by the tests).
        #[arg(long)]
        fast: bool,
        /// Exit once every scenario was observed (exit 1 if not in time).
        #[arg(long)]
        exit_when_done: bool,
        /// Listen address (default 127.0.0.1:8080, or a free port if taken).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Also show the daemon's full log on the console (it always goes to the demo's log file).
        #[arg(long, short)]
        verbose: bool,
    },
    /// Load and validate the config; print it with secrets redacted.
    CheckConfig {
        /// Also read the tenant source once (`[tenants]`, the application's database).
        #[arg(long)]
        check_sources: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Instances with provider, tenant, health, since, last webhook, last restart, open outage.
    Status {
        #[arg(long)]
        json: bool,
        #[arg(long)]
        provider: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Each instance's tenant and where it came from (config, api, sql, pattern, default).
    Tenants {
        #[arg(long)]
        json: bool,
        #[arg(long)]
        provider: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Outages, newest first.
    History {
        /// PROVIDER/INSTANCE (default: every instance and provider).
        instance: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Availability per instance and per tenant over a window: connected share, outages,
    /// time down, MTTR, longest outage, provider outages and maintenance apart.
    Report {
        /// Start of the window: a duration back from now (30d, 12h) or an RFC 3339 instant.
        #[arg(long, default_value = "30d", value_name = "WHEN")]
        since: String,
        /// End of the window (default: now); same forms as --since.
        #[arg(long, value_name = "WHEN")]
        until: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        provider: Option<String>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
    /// Manual recovery of one instance; respects the cooldown unless --force.
    Restart {
        /// PROVIDER/INSTANCE
        instance: String,
        #[arg(long)]
        force: bool,
    },
    /// End every status-page session: everyone signs in again with the admin token.
    LogoutAll,
    /// A re-pair link for an instance: the customer opens it and scans a fresh QR code.
    PairLink {
        /// PROVIDER/INSTANCE
        instance: String,
        /// How long the link works (default: pairing.link_ttl), e.g. 2h.
        #[arg(long = "for", value_name = "DURATION", conflicts_with = "revoke")]
        duration: Option<String>,
        /// Revoke every usable link of the instance instead.
        #[arg(long)]
        revoke: bool,
    },
    /// Silence an instance: no restarts, no notices, still polled.
    Maintenance {
        /// PROVIDER/INSTANCE
        instance: String,
        /// How long, e.g. 2h.
        #[arg(long = "for", value_name = "DURATION", conflicts_with = "off", required_unless_present = "off")]
        duration: Option<String>,
        /// End maintenance now.
        #[arg(long)]
        off: bool,
    },
}
