//! wa-sentinel benchmarks: they print figures next to their goals; they are
//! not timed tests (the machine is shared and noisy).
//!
//! ```sh
//! cargo bench --bench bench -- all        # every scenario at full size, a markdown table
//! cargo bench --bench bench -- smoke      # every scenario at tiny size (< 60 s; .ci/run)
//! cargo bench --bench bench -- receiver|latency|poll|writes|claim|unauth|scale|replicas|events|floor [--postgres URL | --no-postgres] [--poll-sizes 1000,10000] [--scale-sizes 100000,10000] [--floor-sizes 20000,100000]
//! ```
//!
//! The real daemon (`target/release/wa-sentinel`, built by cargo for this
//! bench) runs as a child process with a generated config; providers are the
//! in-process Evolution v2 [`Simulator`]. PostgreSQL parts use `--postgres URL`
//! (default `$WA_SENTINEL_TEST_POSTGRES`) and a fresh database per run; they
//! are skipped with a note when no URL is given.
//!
//! Scenarios:
//! - `receiver`: the daemon (SQLite, known instances) against a bare axum
//!   server (this executable re-invoked as `bare-server PORT`: reads the body,
//!   answers 200), measured alternately; closed-loop load from raw keep-alive
//!   HTTP/1.1 connections with pre-built ~1 KB `messages.upsert` requests;
//!   then a paced run at half the daemon's maximum rate for p50/p99.
//! - `latency`: webhook-to-notice: a `close` webhook, wait for `instance_down`
//!   at a local sink, then a `messages.upsert`, timed until `instance_recovered`
//!   arrives at the sink.
//! - `poll`: steady-state poll cycles against the simulator with 50 ms per
//!   call, concurrency 256: wall time vs ideal, CPU per cycle, peak RSS.
//! - `writes`: PostgreSQL `pg_stat_database` deltas per steady-state cycle.
//! - `claim`: one outbox claim (the library's `Store::claim_outbox`, no
//!   daemon) with 10,000 pending rows of one notifier behind a head that
//!   failed and waits for its retry; SQLite, and PostgreSQL when a URL is given.
//! - `unauth`: the daemon's peak RSS while 1,000 connections at once each post
//!   2 MiB (`server.max_body`) to a webhook URL with a wrong token.
//! - `scale`: 100,000 instances over 20 simulated providers (50 ms per call)
//!   at a 30 s period, and the same at 10,000: each provider's cycle against
//!   the ideal of its share of the concurrency, the daemon's CPU averaged over
//!   whole periods, peak RSS; SQLite, and PostgreSQL (with its writes per
//!   steady cycle) when a URL is given. `--scale-sizes 100000,10000`.
//!
//! - `floor` ([`floor`]): the `scale` setup at 20,000 and 100,000 instances
//!   (`--floor-sizes`), 3 periods: the daemon's CPU per poll next to a bare
//!   HTTP client's CPU per request, the same status calls against the same
//!   simulators in the same periods, and their ratio (median and spread).
//!
//! - `events` ([`events`]): the event stream to one local subscriber: the
//!   delivery rate of the first cycle's burst, and the delay from a change's
//!   commit to its delivery at 10,000 instances with 1 % changing per minute.
//!
//! `BENCH_DAEMON_WRAPPER="valgrind --tool=callgrind"` runs the daemon under a profiler
//! (stopped with SIGTERM so the profile is written).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use wa_sentinel::domain::Ts;
use wa_sentinel::sim::evolution::{Behaviour, SimOptions, Simulator};
use wa_sentinel::store::{OutboxEntry, Store};

mod claim;
mod daemon;
mod events;
mod floor;
mod latency;
mod load;
mod poll;
mod postgres;
mod receiver;
mod scale;
mod unauth;

use claim::*;
use daemon::*;
use latency::*;
use load::*;
use poll::*;
use postgres::*;
use receiver::*;
use scale::*;
use unauth::*;

const WEBHOOK_TOKEN: &str = "hooktoken";
const ADMIN_TOKEN: &str = "bench-admin";
const FIXTURE: &str = include_str!("../tests/fixtures/evolution/v2-webhook-messages-upsert.json");
const SIM_LATENCY: Duration = Duration::from_millis(50);
const POLL_CONCURRENCY: usize = 256;

// ------------------------------------------------------------------ sizes

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Full,
    Smoke,
}

struct Size {
    mode: Mode,
    recv_instances: usize,
    round: Duration,
    rounds: usize,
    conns: Vec<usize>,
    paced: Duration,
    latency_reps: usize,
    latency_instances: usize,
    poll_sizes: Vec<usize>,
    poll_schedule: &'static str,
    poll_period: Duration,
    steady_cycles: usize,
    writes_skip: usize,
    writes_cycles: usize,
    writes_instances: usize,
    claim_pending: usize,
    claim_reps: usize,
    unauth_posts: usize,
    /// Total instances of the `scale` runs, spread over `scale_providers`.
    scale_sizes: Vec<usize>,
    scale_providers: usize,
    scale_schedule: &'static str,
    scale_period: Duration,
    /// Whole periods measured after every provider's first (inserting) cycle.
    scale_periods: usize,
    /// The `replicas` scenario: this many instances (over `scale_providers`)
    /// shared by three replicas on one PostgreSQL.
    replica_instances: usize,
    /// The `events` scenario: instances, and how long 1 % of them per minute change.
    events_instances: usize,
    events_run: Duration,
    /// The `floor` scenario: total instances (over `scale_providers`), the
    /// poll schedule and its period, and how many periods are measured.
    floor_sizes: Vec<usize>,
    floor_schedule: &'static str,
    floor_period: Duration,
    floor_rounds: usize,
}

impl Size {
    fn of(mode: Mode) -> Size {
        match mode {
            Mode::Full => Size {
                mode,
                recv_instances: 1000,
                round: Duration::from_secs(5),
                rounds: 3,
                conns: vec![32, 64],
                paced: Duration::from_secs(5),
                latency_reps: 200,
                latency_instances: 20,
                poll_sizes: vec![1000, 10_000],
                poll_schedule: "*/5 * * * * *",
                poll_period: Duration::from_secs(5),
                steady_cycles: 3,
                writes_skip: 3,
                writes_cycles: 6,
                writes_instances: 1000,
                claim_pending: 10_000,
                claim_reps: 200,
                unauth_posts: 1000,
                scale_sizes: vec![100_000, 10_000],
                scale_providers: 20,
                scale_schedule: "*/30 * * * * *",
                scale_period: Duration::from_secs(30),
                scale_periods: 3,
                replica_instances: 60_000,
                events_instances: 10_000,
                events_run: Duration::from_secs(180),
                floor_sizes: vec![20_000, 100_000],
                floor_schedule: "*/30 * * * * *",
                floor_period: Duration::from_secs(30),
                floor_rounds: 3,
            },
            Mode::Smoke => Size {
                mode,
                recv_instances: 50,
                round: Duration::from_millis(700),
                rounds: 1,
                conns: vec![8],
                paced: Duration::from_millis(700),
                latency_reps: 5,
                latency_instances: 3,
                poll_sizes: vec![50],
                poll_schedule: "*/1 * * * * *",
                poll_period: Duration::from_secs(1),
                steady_cycles: 2,
                writes_skip: 1,
                writes_cycles: 2,
                writes_instances: 50,
                claim_pending: 200,
                claim_reps: 20,
                unauth_posts: 20,
                scale_sizes: vec![200],
                scale_providers: 4,
                scale_schedule: "*/2 * * * * *",
                scale_period: Duration::from_secs(2),
                scale_periods: 2,
                replica_instances: 300,
                events_instances: 200,
                events_run: Duration::from_secs(3),
                floor_sizes: vec![200],
                floor_schedule: "*/1 * * * * *",
                floor_period: Duration::from_secs(1),
                floor_rounds: 3,
            },
        }
    }
}

// ------------------------------------------------------------------ report

struct Row {
    figure: String,
    measured: String,
    goal: String,
    met: Option<bool>,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
    /// Functional failures (non-2xx answers, missing notices): exit 1.
    failures: Vec<String>,
}

impl Report {
    fn row(
        &mut self,
        figure: impl Into<String>,
        measured: impl Into<String>,
        goal: impl Into<String>,
        met: Option<bool>,
    ) {
        let row = Row { figure: figure.into(), measured: measured.into(), goal: goal.into(), met };
        eprintln!("  {} = {}", row.figure, row.measured);
        self.rows.push(row);
    }

    fn note(&mut self, s: impl Into<String>) {
        let s = s.into();
        eprintln!("  note: {s}");
        self.notes.push(s);
    }

    fn print(&self, command: &str) {
        println!();
        println!("| figure | measured | goal | met? |");
        println!("|---|---|---|---|");
        for r in &self.rows {
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "—",
            };
            println!("| {} | {} | {} | {} |", r.figure, r.measured, r.goal, met);
        }
        println!();
        for n in &self.notes {
            println!("- {n}");
        }
        if !self.failures.is_empty() {
            println!();
            println!("FUNCTIONAL FAILURES:");
            for f in &self.failures {
                println!("- {f}");
            }
        }
        println!();
        println!("machine: {}", machine());
        println!("command: `{command}`");
    }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_kb = proc_field("/proc/meminfo", "MemTotal:").unwrap_or(0);
    format!("{cores} cores ({cpu}), {:.1} GiB RAM", mem_kb as f64 / 1024.0 / 1024.0)
}

// ------------------------------------------------------------------ /proc

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else { return 0 };
    // After the comm: state(3) ppid(4) … utime(14) stime(15); `rest` starts at field 3.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(14) + get(15)
}

fn proc_field(path: &str, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(path).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// (VmRSS, VmHWM) in MiB.
fn memory(pid: u32) -> (f64, f64) {
    let p = format!("/proc/{pid}/status");
    let kb = |k| proc_field(&p, k).unwrap_or(0) as f64 / 1024.0;
    (kb("VmRSS:"), kb("VmHWM:"))
}

// ------------------------------------------------------------------ helpers

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            if it.peek() == Some(&'[') {
                it.next();
                for d in it.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn field(line: &str, key: &str) -> Option<u64> {
    let pat = format!("{key}=");
    let i = line.find(&pat)? + pat.len();
    line[i..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    percentile(&s, 50.0)
}

async fn wait_tcp(port: u16, limit: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("nothing listens on 127.0.0.1:{port} after {limit:?}")
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("inst-{i:05}")).collect()
}

async fn simulator(n: usize, latency: Duration) -> Result<Simulator> {
    Ok(Simulator::start(SimOptions {
        instances: names(n).into_iter().map(|n| (n, Behaviour::Open)).collect(),
        latency,
        ..SimOptions::default()
    })
    .await?)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.first().map(String::as_str) == Some("bare-server") {
        let port = args.get(1).and_then(|p| p.parse().ok()).ok_or_else(|| anyhow!("bare-server PORT"))?;
        return bare_server(port);
    }
    let mut scenario = None;
    let mut pg_url = std::env::var("WA_SENTINEL_TEST_POSTGRES").ok().filter(|s| !s.is_empty());
    let (mut no_pg, mut poll_sizes, mut scale_sizes, mut floor_sizes) = (false, None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--postgres" => pg_url = Some(it.next().ok_or_else(|| anyhow!("--postgres URL"))?.clone()),
            "--no-postgres" => no_pg = true,
            "--poll-sizes" => {
                let v = it.next().ok_or_else(|| anyhow!("--poll-sizes N[,N…]"))?;
                poll_sizes = Some(v.split(',').map(str::parse).collect::<Result<Vec<usize>, _>>()?);
            }
            "--scale-sizes" => {
                let v = it.next().ok_or_else(|| anyhow!("--scale-sizes N[,N…]"))?;
                scale_sizes = Some(v.split(',').map(str::parse).collect::<Result<Vec<usize>, _>>()?);
            }
            "--floor-sizes" => {
                let v = it.next().ok_or_else(|| anyhow!("--floor-sizes N[,N…]"))?;
                floor_sizes = Some(v.split(',').map(str::parse).collect::<Result<Vec<usize>, _>>()?);
            }
            "all" | "smoke" | "receiver" | "latency" | "poll" | "writes" | "claim" | "unauth" | "scale"
            | "replicas" | "events" | "floor" => scenario = Some(a.clone()),
            other if other.starts_with('-') => {} // libtest-style flags cargo may pass
            other => {
                bail!(
                    "unknown scenario `{other}`: all | smoke | receiver | latency | poll | writes | claim | unauth | scale | replicas | events | floor"
                )
            }
        }
    }
    let scenario = scenario.unwrap_or_else(|| "smoke".into());
    let mut size = Size::of(if scenario == "smoke" { Mode::Smoke } else { Mode::Full });
    if let Some(p) = poll_sizes {
        size.poll_sizes = p;
    }
    if let Some(s) = scale_sizes {
        size.scale_sizes = s;
    }
    if let Some(s) = floor_sizes {
        size.floor_sizes = s;
    }
    if no_pg {
        pg_url = None;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let started = Instant::now();
    let mut rep = Report::default();
    let pg = pg_url.as_deref();
    let res: Result<()> = rt.block_on(async {
        let all = scenario == "all" || scenario == "smoke";
        if all || scenario == "receiver" {
            receiver(&size, &mut rep).await?;
        }
        if all || scenario == "latency" {
            latency(&size, &mut rep).await?;
        }
        if all || scenario == "poll" {
            poll(&size, pg, &mut rep, true).await?;
            sqlite_writes_note(&mut rep);
        } else if scenario == "writes" {
            let w = Size { poll_sizes: vec![size.writes_instances], ..Size::of(size.mode) };
            match pg {
                Some(_) => poll(&w, pg, &mut rep, true).await?,
                None => rep.note("writes: PostgreSQL URL absent; nothing to measure"),
            }
            sqlite_writes_note(&mut rep);
        }
        if all || scenario == "claim" {
            claim(&size, pg, &mut rep).await?;
        }
        if all || scenario == "unauth" {
            unauth(&size, &mut rep).await?;
        }
        if all || scenario == "scale" {
            scale(&size, pg, &mut rep).await?;
        }
        if all || scenario == "replicas" {
            scale_replicas(&size, pg, &mut rep).await?;
        }
        if all || scenario == "events" {
            events::events(&size, &mut rep).await?;
        }
        if all || scenario == "floor" {
            floor::floor(&size, &mut rep).await?;
        }
        Ok(())
    });
    let cmd = match &pg_url {
        Some(_) => format!("WA_SENTINEL_TEST_POSTGRES=… cargo bench --bench bench -- {scenario}"),
        None => format!("cargo bench --bench bench -- {scenario}"),
    };
    rep.note(format!("took {:.0} s", started.elapsed().as_secs_f64()));
    rep.print(&cmd);
    if let Err(e) = res {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    if !rep.failures.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
