//! wa-sentinel keeps WhatsApp instances on Evolution API (v1, v2), W-API,
//! WAHA and Z-API alive: it polls every instance, recovers sessions under a
//! persisted cooldown, repairs webhook configs, tells operators once per
//! outage, and receives provider webhooks to notice recoveries the moment
//! they happen.
//!
//! # Layout
//!
//! - [`domain`]: the pure core — health, outages, recovery eligibility, notices.
//!   Plain functions with the clock passed in; no IO.
//! - [`config`]: figment loading (defaults → `config.toml` → `WA_SENTINEL_*`),
//!   validation into ready-to-use types, secrets read raw through `*_env`/`*_file`.
//! - [`store`]: the only SQL — SQLite (embedded default) and PostgreSQL, with
//!   migrations; a state change and its outbox rows commit in one transaction.
//! - [`providers`]: the Evolution API, W-API, WAHA and Z-API clients and
//!   webhook parsing.
//! - [`sim`]: in-process Evolution, WAHA and Z-API simulators with scripted
//!   misbehaviour, for `demo`, the tests and the benchmarks.
//! - [`supervisor`]: the poll cycle, recovery actions, webhook audit, retention,
//!   and the cron scheduler that drives them.
//! - [`pairing`]: re-pair links at the edge — tokens, their URL, the page's form
//!   token, QR strings drawn as PNG.
//! - [`report`]: availability reports per instance and tenant (`report`, `/api/report`).
//! - [`live`]: the in-memory instance index read by the webhook hot path.
//! - [`events`]: each observable event's log line and metrics, in one place.
//! - [`server`]: the HTTP listener — webhooks, health, metrics, admin API, status page.
//! - [`notify`]: routing notices to notifiers (outbox rows), rendering, delivery.
//! - [`daemon`]: `run`, the long-running process; [`demo`]: the same against
//!   scripted simulators, with no setup.
//! - [`lease`]: which replica supervises (PostgreSQL lease; SQLite file lock);
//!   [`systemd`]: readiness, status and watchdog notifications.
//! - [`cli`]: the commands behind the binary; [`clock`], [`tls`] and
//!   [`logging`] are the process-wide edges (wall clock, rustls provider,
//!   where log lines go and their format).

#![forbid(unsafe_code)]

pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod domain;
pub mod events;
pub mod lease;
pub mod live;
pub mod logging;
pub mod metrics_catalog;
pub mod notify;
pub mod pairing;
pub mod providers;
pub mod report;
pub mod server;
pub mod sim;
pub mod store;
pub mod supervisor;
pub mod systemd;
pub mod tls;
