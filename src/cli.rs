//! The commands behind the binary (docs/cli.md). Each command is a small function
//! over the library; this is the only place that uses `anyhow`. The grammar
//! itself is in `args` (shared with `build.rs`).

mod args;

pub use args::{Cli, Command, ReportFormat};

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{CommandFactory, FromArgMatches};

use crate::config::{self, Config};
use crate::domain::health::Observation;
use crate::domain::time::human_duration;
use crate::domain::{InstanceKey, Ts};
use crate::store::{InstanceFilter, InstanceRecord, Store};
use crate::supervisor::Supervisor;

/// `0.1.0 (commit 3e50c55a1b2c)`: the commit comes from `build.rs` (git, or
/// the `.git-commit` file that `git archive` fills in; `unknown` otherwise).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("WA_SENTINEL_COMMIT"), ")");

/// The clap command with its version: the one the binary parses and the one
/// `build.rs` renders as man pages and completions.
pub fn command() -> clap::Command {
    Cli::command().version(VERSION)
}

/// Parse the process arguments (exits 2 with clap's message on bad usage).
pub fn parse() -> Cli {
    Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit())
}

pub use crate::clock::now;

const EXIT_USAGE: u8 = 2;

/// Load the config or print every problem and return exit code 2.
fn load_config(cli: &Cli) -> Result<Config, ExitCode> {
    let path = cli.config.clone().unwrap_or_else(config::default_path);
    config::load(Some(&path)).map_err(|e| {
        eprint!("{e}");
        ExitCode::from(EXIT_USAGE)
    })
}

async fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&cfg.database.url, cfg.database.max_connections).await?;
    store.migrate().await.context("applying database migrations")?;
    Ok(store)
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Demo { fast, exit_when_done, listen, verbose } = cli.command {
        let opts = crate::demo::DemoOptions { fast, exit_when_done, listen, verbose };
        crate::demo::run(opts, crate::daemon::shutdown_on_signals()).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let cfg = match load_config(&cli) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if let Err(e) = crate::logging::init(&cfg.log) {
        eprintln!("warning: logging is not set up: {e}");
    }
    match cli.command {
        Command::CheckConfig { check_sources } => {
            println!("# effective configuration (secrets redacted)");
            print!("{}", config::redacted_toml(&cfg.raw));
            eprintln!(
                "config OK: {} provider(s), {} instance(s), {} notifier(s), {} subscriber(s)",
                cfg.providers.len(),
                cfg.instances.len(),
                cfg.notifiers.len(),
                cfg.subscribers.len()
            );
            if check_sources {
                match &cfg.tenants.source {
                    None => eprintln!("tenant source: none configured ([tenants] source_url_env)"),
                    Some(src) => match crate::supervisor::tenant_source::read(src).await {
                        Ok(r) => eprintln!(
                            "tenant source OK: {} mapping(s){}",
                            r.mapping.len(),
                            if r.skipped > 0 {
                                format!(", {} row(s) skipped (no instance or an invalid tenant)", r.skipped)
                            } else {
                                String::new()
                            }
                        ),
                        Err(e) => {
                            eprintln!("tenants.source_url: {e}");
                            return Ok(ExitCode::from(2));
                        }
                    },
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Tenants { json, provider, tenant } => {
            let store = open_store(&cfg).await?;
            let rows = store.instances(&InstanceFilter { provider, tenant, ..Default::default() }).await?;
            if json {
                let v: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "provider": r.key.provider, "instance": r.key.name,
                            "tenant": r.tenant, "source": r.tenant_source,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", tenants_table(&rows));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            open_store(&cfg).await?;
            eprintln!("migrations applied to {}", config::redact_url_password(&cfg.database.url));
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => {
            let path = cli.config.clone().unwrap_or_else(config::default_path);
            crate::daemon::run(cfg, crate::daemon::signals(), Some(path)).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { json, provider, tenant } => {
            let store = open_store(&cfg).await?;
            let names: Vec<(String, String)> = cfg
                .providers
                .iter()
                .filter(|p| provider.as_ref().is_none_or(|want| *want == p.name))
                .map(|p| (p.name.clone(), p.kind.as_str().to_string()))
                .collect();
            let rows = store.instances(&InstanceFilter { provider, tenant, ..Default::default() }).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows.iter().map(crate::server::instance_json).collect::<Vec<_>>())?
                );
            } else {
                let overview = store.provider_overview(&names, &|_| None).await?;
                print!("{}", provider_table(&overview, now()));
                println!();
                print!("{}", status_table(&rows, now()));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::History { instance, json, limit } => {
            let store = open_store(&cfg).await?;
            let key = instance.as_deref().map(parse_key).transpose()?;
            let rows = store.outages(key.as_ref(), false, limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", history_table(&rows, now()));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Maintenance { instance, duration, off } => {
            let key = parse_key(&instance)?;
            let until = if off {
                None
            } else {
                let d = config::parse_duration(duration.as_deref().unwrap_or_default())
                    .map_err(|e| anyhow::anyhow!("--for: {e}"))?;
                Some(now().plus(d))
            };
            let sup = supervisor(cfg).await?;
            let out = sup.observe(&key, Observation::Maintenance(until), None).await?;
            match until {
                Some(u) => println!("{key}: maintenance until {}", u.rfc3339()),
                None => println!("{key}: maintenance ended"),
            }
            for n in out.iter().flat_map(|o| o.notices()) {
                println!("queued notice: {} ({})", n.kind, n.dedup_key);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { since, until, tenant, provider, format } => {
            let now = now();
            let window =
                crate::report::parse_instant(&since, now).map_err(|e| format!("--since: {e}")).and_then(|from| {
                    let to = match until.as_deref() {
                        Some(u) => crate::report::parse_instant(u, now).map_err(|e| format!("--until: {e}"))?,
                        None => now,
                    };
                    if to <= from {
                        return Err("the window is empty: --until must be later than --since".to_string());
                    }
                    Ok((from, to))
                });
            let (from, to) = match window {
                Ok(w) => w,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(EXIT_USAGE));
                }
            };
            let store = open_store(&cfg).await?;
            let q = crate::report::ReportQuery { from, to, tenant, provider };
            let r = crate::report::build(&store, &q, now).await?;
            match format {
                ReportFormat::Table => print!("{}", crate::report::table(&r)),
                ReportFormat::Csv => print!("{}", crate::report::csv(&r)),
                ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&r)?),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::LogoutAll => {
            let n = open_store(&cfg).await?.sessions_revoke_all().await?;
            println!("{n} status-page session(s) ended");
            Ok(ExitCode::SUCCESS)
        }
        Command::PairLink { instance, duration, revoke } => {
            let key = parse_key(&instance)?;
            let ttl = match duration.as_deref() {
                Some(d) => Some(config::parse_duration(d).map_err(|e| anyhow::anyhow!("--for: {e}"))?),
                None => None,
            };
            let sup = supervisor(cfg).await?;
            if revoke {
                let n = sup.revoke_pair_links(&key, "cli").await?;
                println!("{key}: {n} re-pair link(s) revoked");
            } else {
                let link = sup.mint_pair_link(&key, ttl, "cli").await?;
                println!("{}", link.url);
                println!("{key}: works until {} UTC; send it to whoever holds the phone", link.expires_at.rfc3339());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Restart { instance, force } => {
            let key = parse_key(&instance)?;
            let sup = supervisor(cfg).await?;
            let msg = sup.manual_restart(&key, force).await?;
            println!("{msg}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { .. } => unreachable!("handled above"),
    }
}

/// `provider/name` → key, with a message that says what was expected.
pub fn parse_key(s: &str) -> anyhow::Result<InstanceKey> {
    match s.split_once('/') {
        Some((p, n)) if !p.is_empty() && !n.is_empty() => Ok(InstanceKey::new(p, n)),
        _ => bail!("`{s}`: expected PROVIDER/INSTANCE, e.g. evo-main/tenant_1_inst_1"),
    }
}

/// A supervisor for one-shot commands (no scheduler, no outbox worker: the
/// running daemon delivers what they queue).
async fn supervisor(cfg: Config) -> anyhow::Result<std::sync::Arc<Supervisor>> {
    let store = open_store(&cfg).await?;
    Ok(Supervisor::new(std::sync::Arc::new(cfg), store, None, std::sync::Arc::new(crate::clock::now))?)
}

fn ts_or_dash(t: Option<Ts>) -> String {
    t.map(Ts::rfc3339).unwrap_or_else(|| "-".into())
}

/// The provider header of `status`: state (ok, unreachable, unlicensed,
/// silent), last webhook from any instance, version, last remediation.
pub fn provider_table(rows: &[crate::store::ProviderOverview], now: Ts) -> String {
    let mut out = format!(
        "{:<20} {:<10} {:<20} {:<21} {:<12} {}\n",
        "PROVIDER", "KIND", "STATE", "LAST WEBHOOK", "VERSION", "LAST REMEDIATION"
    );
    for p in rows {
        let state = match p.since {
            Some(t) => format!("{} ({})", p.state, human_duration(now.since(t))),
            None => p.state.to_string(),
        };
        let remediation = match &p.remediation {
            Some(r) => format!(
                "{} `{}`: {}",
                r.at.rfc3339(),
                r.command,
                r.result.as_deref().unwrap_or("running or no result recorded")
            ),
            None => "-".into(),
        };
        out.push_str(&format!(
            "{:<20} {:<10} {:<20} {:<21} {:<12} {}\n",
            p.name,
            p.kind,
            state,
            ts_or_dash(p.last_webhook),
            p.version.as_deref().unwrap_or("-"),
            remediation
        ));
    }
    out
}

/// The `status` table, one line per instance.
pub fn status_table(rows: &[InstanceRecord], now: Ts) -> String {
    let mut out = format!(
        "{:<36} {:<16} {:<13} {:<10} {:<21} {:<21} {}\n",
        "INSTANCE", "TENANT", "HEALTH", "SINCE", "LAST WEBHOOK", "LAST RESTART", "OPEN OUTAGE"
    );
    for r in rows {
        let outage = match &r.state.outage {
            Some(o) => format!(
                "{} ({} ago, {} restart(s))",
                o.cause.as_str(),
                human_duration(now.since(o.started_at)),
                o.restart_attempts
            ),
            None => "-".into(),
        };
        let health = if r.state.in_maintenance(now) {
            format!("{}*", r.state.health.as_str())
        } else {
            r.state.health.as_str().to_string()
        };
        out.push_str(&format!(
            "{:<36} {:<16} {:<13} {:<10} {:<21} {:<21} {}\n",
            r.key.to_string(),
            r.tenant,
            health,
            human_duration(now.since(r.state.health_since)),
            ts_or_dash(r.state.last_webhook_at),
            ts_or_dash(r.state.last_restart_attempt),
            outage
        ));
    }
    if rows.iter().any(|r| r.state.in_maintenance(now)) {
        out.push_str("* in maintenance\n");
    }
    if rows.is_empty() {
        out.push_str("(no instances yet: they appear after the first poll cycle of `wa-sentinel run`)\n");
    }
    out
}

/// The `history` table, one line per outage.
pub fn history_table(rows: &[crate::store::OutageRecord], now: Ts) -> String {
    let mut out = format!(
        "{:<21} {:<10} {:<36} {:<20} {:<8} {:<10} {}\n",
        "STARTED", "DURATION", "INSTANCE", "CAUSE", "RESTARTS", "RECOVERED", "REASON"
    );
    for o in rows {
        let who = match &o.instance {
            Some(n) => format!("{}/{}", o.provider, n),
            None => format!("{} (provider)", o.provider),
        };
        let dur = human_duration(o.ended_at.unwrap_or(now).since(o.started_at));
        out.push_str(&format!(
            "{:<21} {:<10} {:<36} {:<20} {:<8} {:<10} {}\n",
            o.started_at.rfc3339(),
            if o.ended_at.is_some() { dur } else { format!("{dur}+") },
            who,
            o.cause,
            o.restart_attempts,
            o.recovered_by.as_deref().unwrap_or("(open)"),
            o.reason
        ));
    }
    out
}

/// `wa-sentinel tenants`: one line per instance.
fn tenants_table(rows: &[crate::store::InstanceRecord]) -> String {
    let mut out = format!("{:<40} {:<24} {}\n", "INSTANCE", "TENANT", "SOURCE");
    for r in rows {
        out.push_str(&format!("{:<40} {:<24} {}\n", r.key.to_string(), r.tenant, r.tenant_source));
    }
    if rows.is_empty() {
        out.push_str("(no instances)\n");
    }
    out
}
