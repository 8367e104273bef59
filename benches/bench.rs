//! wa-sentinel benchmarks: they print figures next to their goals; they are
//! not timed tests (the machine is shared and noisy).
//!
//! ```sh
//! cargo bench --bench bench -- all        # every scenario at full size, a markdown table
//! cargo bench --bench bench -- smoke      # every scenario at tiny size (< 60 s; .ci/run)
//! cargo bench --bench bench -- receiver|latency|poll|writes|claim|unauth|scale|replicas|events [--postgres URL | --no-postgres] [--poll-sizes 1000,10000] [--scale-sizes 100000,10000]
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
use wa_sentinel::providers::simulator::{Behaviour, SimOptions, Simulator};
use wa_sentinel::store::{OutboxEntry, Store};

mod events;

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

// ------------------------------------------------------------------ the daemon

/// The real daemon as a child process; killed on drop.
struct Daemon {
    child: Child,
    log: PathBuf,
    port: u16,
}

#[derive(Clone, Debug)]
struct Cycle {
    polled: u64,
    changed: u64,
    took_ms: u64,
}

struct DaemonConfig<'a> {
    db_url: &'a str,
    port: u16,
    sim: &'a Simulator,
    schedule: &'a str,
    sink: Option<&'a str>,
    supervisor_extra: &'a str,
    extra: &'a str,
}

fn config_text(c: &DaemonConfig) -> String {
    let notifier = c
        .sink
        .map(|s| format!("[[notifiers]]\nname = \"sink\"\nkind = \"webhook\"\nurl = \"{s}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
[database]
url = "{db}"
[server]
listen = "127.0.0.1:{port}"
admin_token = "{ADMIN_TOKEN}"
[supervisor]
poll_schedule = "{schedule}"
request_timeout = "10s"
{sup_extra}
[alerts]
flap_threshold = 0
retry_min_delay = "1s"
[[providers]]
name = "evo"
kind = "evolution"
base_url = "{base}"
api_version = "v2"
api_key = "{key}"
webhook_token = "{WEBHOOK_TOKEN}"
discover = true
{notifier}
{extra}
"#,
        db = c.db_url,
        port = c.port,
        schedule = c.schedule,
        sup_extra = c.supervisor_extra,
        base = c.sim.base_url(),
        key = c.sim.api_key(),
        extra = c.extra,
    )
}

/// The daemon's command, under `BENCH_DAEMON_WRAPPER` (e.g. `valgrind
/// --tool=massif`) when set.
fn daemon_command() -> Command {
    let wrapper = std::env::var("BENCH_DAEMON_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    match words.next() {
        Some(w) => {
            let mut c = Command::new(w);
            c.args(words).arg(env!("CARGO_BIN_EXE_wa-sentinel"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_wa-sentinel")),
    }
}

/// `wa-sentinel --config cfg run`, its log (plain text, `rust_log`) to `log`.
/// `BENCH_DAEMON_WRAPPER="valgrind --tool=callgrind …"` runs it under a profiler.
fn spawn_daemon(cfg: &Path, log: &Path, rust_log: &str) -> Result<Child> {
    daemon_command()
        .arg("--config")
        .arg(cfg)
        .arg("run")
        .env_remove("WA_SENTINEL_CONFIG")
        .env("RUST_LOG", rust_log)
        .env("NO_COLOR", "1")
        // As the shipped systemd unit runs it (systemd/wa-sentinel.service).
        .env("MALLOC_ARENA_MAX", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .context("spawn wa-sentinel")
}

impl Daemon {
    fn spawn(dir: &Path, c: &DaemonConfig) -> Result<Daemon> {
        let cfg = dir.join("config.toml");
        std::fs::write(&cfg, config_text(c))?;
        let log = dir.join("daemon.log");
        let child = spawn_daemon(&cfg, &log, "info,sqlx=warn,tokio_cron_scheduler=warn")?;
        Ok(Daemon { child, log, port: c.port })
    }

    /// On SQLite in `dir`, no notifier, one poll cycle at start-up (then hourly).
    fn plain(dir: &Path, sim: &Simulator) -> Result<Daemon> {
        let db = format!("sqlite://{}/bench.db", dir.display());
        let cfg = DaemonConfig {
            db_url: &db,
            port: free_port()?,
            sim,
            schedule: "0 0 * * * *",
            sink: None,
            supervisor_extra: "",
            extra: "",
        };
        Daemon::spawn(dir, &cfg)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_text(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    fn tail(&self) -> String {
        let t = self.log_text();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }

    fn cycles(&self) -> Vec<Cycle> {
        self.log_text()
            .lines()
            .filter(|l| l.contains("poll cycle done"))
            .map(|l| Cycle {
                polled: field(l, "polled").unwrap_or(0),
                changed: field(l, "changed").unwrap_or(0),
                took_ms: field(l, "took_ms").unwrap_or(0),
            })
            .collect()
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(st) = self.child.try_wait()? {
            bail!("the daemon exited ({st}):\n{}", self.tail());
        }
        Ok(())
    }

    /// Wait for the listener and the first poll cycle that saw `n` instances.
    async fn ready(&mut self, n: usize, limit: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            self.check_alive()?;
            if self.cycles().iter().any(|c| c.polled as usize >= n) {
                break;
            }
            if start.elapsed() > limit {
                bail!("no poll cycle over {n} instances within {limit:?}:\n{}", self.tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        wait_tcp(self.port, limit).await
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Under a profiler, SIGTERM (graceful: the profile gets written); else SIGKILL.
        if std::env::var_os("BENCH_DAEMON_WRAPPER").is_some() {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(60) {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bare comparison server: this executable re-invoked as `bare-server PORT`.
struct Bare {
    child: Child,
    port: u16,
}

impl Bare {
    async fn spawn() -> Result<Bare> {
        let port = free_port()?;
        let child = Command::new(std::env::current_exe()?)
            .arg("bare-server")
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("spawn the bare server")?;
        let b = Bare { child, port };
        wait_tcp(port, Duration::from_secs(10)).await?;
        Ok(b)
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bare_server(port: u16) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        async fn ok(_body: axum::body::Bytes) -> axum::http::StatusCode {
            axum::http::StatusCode::OK
        }
        let app = axum::Router::new().route("/webhooks/{provider}/{token}", axum::routing::post(ok));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}

// ------------------------------------------------------------------ load generator

#[derive(Default)]
struct Load {
    ok: u64,
    non2xx: u64,
    errors: u64,
    elapsed: f64,
    /// Per-request latency, µs.
    lat_us: Vec<u32>,
}

impl Load {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed
    }

    fn merge(&mut self, o: Load) {
        self.ok += o.ok;
        self.non2xx += o.non2xx;
        self.errors += o.errors;
        self.lat_us.extend(o.lat_us);
    }

    fn latency_ms(&self) -> (f64, f64, f64) {
        let mut v: Vec<f64> = self.lat_us.iter().map(|u| f64::from(*u) / 1000.0).collect();
        v.sort_by(f64::total_cmp);
        (percentile(&v, 50.0), percentile(&v, 99.0), v.last().copied().unwrap_or(f64::NAN))
    }
}

/// A messages.upsert body shaped like the fixture, for `instance`.
fn upsert_body(instance: &str, n: usize) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(FIXTURE).expect("fixture is JSON");
    v["instance"] = json!(instance);
    v["data"]["key"]["id"] = json!(format!("3EB0{n:016X}"));
    serde_json::to_vec(&v).expect("serialises")
}

fn http_request(port: u16, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST /webhooks/evo/{WEBHOOK_TOKEN} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Pre-built requests: one per instance name, rotating.
fn requests(port: u16, instances: &[String]) -> Arc<Vec<Vec<u8>>> {
    Arc::new(instances.iter().enumerate().map(|(i, n)| http_request(port, &upsert_body(n, i))).collect())
}

/// One keep-alive HTTP/1.1 connection: send, read the whole response.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(port: u16) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::with_capacity(4096) })
    }

    /// Send one request; the response status.
    async fn call(&mut self, req: &[u8]) -> std::io::Result<u16> {
        self.stream.write_all(req).await?;
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).map_err(std::io::Error::other)?;
                let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| bad("status line"))?;
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                let total = end + 4 + len;
                while self.buf.len() < total {
                    let n = self.stream.read(&mut chunk).await?;
                    if n == 0 {
                        return Err(bad("closed mid-body"));
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                self.buf.drain(..total);
                return Ok(status);
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(bad("connection closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// Closed loop (`rate = None`: each connection sends as soon as its previous
/// answer is in) or paced (`rate`: requests/s in total, spread evenly over the
/// connections; latency is measured from the actual send).
async fn load(port: u16, reqs: Arc<Vec<Vec<u8>>>, conns: usize, dur: Duration, rate: Option<f64>) -> Load {
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let reqs = reqs.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Load::default();
            let mut conn = None;
            let mut k = c;
            let interval = rate.map(|r| Duration::from_secs_f64(conns as f64 / r));
            let mut next = interval.map(|i| tokio::time::Instant::from_std(start) + i.mul_f64(c as f64 / conns as f64));
            loop {
                if let (Some(n), Some(i)) = (next.as_mut(), interval) {
                    tokio::time::sleep_until(*n).await;
                    *n += i;
                }
                if Instant::now() >= deadline {
                    break;
                }
                if conn.is_none() {
                    match Conn::open(port).await {
                        Ok(cn) => conn = Some(cn),
                        Err(_) => {
                            out.errors += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let cn = conn.as_mut().expect("connected");
                let t0 = Instant::now();
                match cn.call(&reqs[k % reqs.len()]).await {
                    Ok(s) if (200..300).contains(&s) => {
                        out.ok += 1;
                        out.lat_us.push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    }
                    Ok(_) => out.non2xx += 1,
                    Err(_) => {
                        out.errors += 1;
                        conn = None;
                    }
                }
                k += conns;
            }
            out
        }));
    }
    let mut total = Load::default();
    for t in tasks {
        if let Ok(l) = t.await {
            total.merge(l);
        }
    }
    total.elapsed = start.elapsed().as_secs_f64();
    total
}

// ------------------------------------------------------------------ 1. receiver

struct Measured {
    rps: f64,
    cpu: f64,
}

async fn measure(
    pid: u32,
    port: u16,
    reqs: &Arc<Vec<Vec<u8>>>,
    conns: usize,
    dur: Duration,
    tck: f64,
) -> (Measured, Load) {
    let c0 = cpu_ticks(pid);
    let l = load(port, reqs.clone(), conns, dur, None).await;
    let cpu = (cpu_ticks(pid) - c0) as f64 / tck / l.elapsed;
    (Measured { rps: l.rps(), cpu }, l)
}

/// (min, max) of a sample.
fn spread(v: &[f64]) -> (f64, f64) {
    v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(*x), hi.max(*x)))
}

/// The wrk script shipped in `benches/`.
const WRK_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/receiver.lua");

/// One `wrk -t1 -c32` run against `port` with `benches/receiver.lua`:
/// (req/s, non-2xx + socket errors).
async fn wrk_once(port: u16, instances: usize, dur: Duration) -> Result<(f64, u64)> {
    let out = tokio::process::Command::new("wrk")
        .args(["-t1", "-c32", &format!("-d{}s", dur.as_secs().max(1)), "-s", WRK_SCRIPT])
        .arg(format!("http://127.0.0.1:{port}"))
        .args(["--", WEBHOOK_TOKEN, &instances.to_string(), "evo"])
        .output()
        .await
        .context("run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {text} {}", String::from_utf8_lossy(&out.stderr));
    }
    let num = |prefix: &str| -> Option<f64> {
        text.lines().find_map(|l| l.trim().strip_prefix(prefix)).and_then(|r| r.split_whitespace().next()?.parse().ok())
    };
    let rps = num("Requests/sec:").ok_or_else(|| anyhow!("no Requests/sec in wrk's output: {text}"))?;
    let non2xx = num("Non-2xx or 3xx responses:").unwrap_or(0.0) as u64;
    // "Socket errors: connect 0, read 0, write 0, timeout 0"
    let errors: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(|r| r.split(',').filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    Ok((rps, non2xx + errors))
}

/// The receiver against bare axum under `wrk`, alternating, `size.rounds`
/// pairs; skipped with a message when `wrk` is not installed.
async fn wrk_rounds(size: &Size, rep: &mut Report, port: u16, bare_port: u16) -> Result<()> {
    if std::process::Command::new("wrk").arg("--version").output().is_err() {
        rep.note("receiver: wrk is not installed (Debian: apt install wrk); the wrk figure is skipped");
        return Ok(());
    }
    let (mut ratios, mut drs, mut brs, mut bad) = (Vec::new(), Vec::new(), Vec::new(), 0u64);
    for round in 0..size.rounds.max(1) {
        let ((b, bb), (d, db)) = if round % 2 == 0 {
            let b = wrk_once(bare_port, size.recv_instances, size.round).await?;
            (b, wrk_once(port, size.recv_instances, size.round).await?)
        } else {
            let d = wrk_once(port, size.recv_instances, size.round).await?;
            (wrk_once(bare_port, size.recv_instances, size.round).await?, d)
        };
        eprintln!("  wrk round {round}: bare {b:.0} req/s, daemon {d:.0} req/s, ratio {:.2}, daemon bad {db}", d / b);
        bad += db + bb;
        ratios.push(d / b);
        drs.push(d);
        brs.push(b);
    }
    let ratio = median(&ratios);
    let (lo, hi) = spread(&ratios);
    rep.row(
        "receiver: daemon / bare, wrk -t1 -c32 (benches/receiver.lua)",
        format!(
            "{:.0} % (median of {} pairs, spread {:.0}–{:.0} %; daemon {:.0}, bare {:.0} req/s)",
            ratio * 100.0,
            ratios.len(),
            lo * 100.0,
            hi * 100.0,
            median(&drs),
            median(&brs)
        ),
        ">= 80 %",
        Some(ratio >= 0.80),
    );
    if bad > 0 {
        rep.failures.push(format!("receiver (wrk): {bad} non-2xx answers or socket errors"));
    }
    Ok(())
}

async fn receiver(size: &Size, rep: &mut Report) -> Result<()> {
    eprintln!("== receiver: {} instances, SQLite", size.recv_instances);
    let tck = clk_tck();
    let dir = tempfile::tempdir()?;
    let sim = simulator(size.recv_instances, Duration::ZERO).await?;
    let mut daemon = Daemon::plain(dir.path(), &sim)?;
    let port = daemon.port;
    daemon.ready(size.recv_instances, Duration::from_secs(120)).await?;
    let bare = Bare::spawn().await?;
    let names = names(size.recv_instances);
    let body_len = upsert_body(&names[0], 0).len();
    let d_reqs = requests(port, &names);
    let b_reqs = requests(bare.port, &names);

    // Warm-up both (connections, allocator, index).
    let _ = load(port, d_reqs.clone(), 8, Duration::from_millis(300), None).await;
    let _ = load(bare.port, b_reqs.clone(), 8, Duration::from_millis(300), None).await;

    // results[target][conn index] = per-round measurements. Rounds alternate
    // which target goes first, so a drift of the machine hits both alike; the
    // ratio is taken per round (same conditions) and reported as a median with
    // its spread.
    let mut results: Vec<Vec<Vec<Measured>>> =
        (0..2).map(|_| size.conns.iter().map(|_| Vec::new()).collect()).collect();
    let (mut d_non2xx, mut d_err, mut b_bad) = (0u64, 0u64, 0u64);
    for round in 0..size.rounds {
        for (ci, &c) in size.conns.iter().enumerate() {
            let (b, bl, d, dl) = if round % 2 == 0 {
                let (b, bl) = measure(bare.child.id(), bare.port, &b_reqs, c, size.round, tck).await;
                let (d, dl) = measure(daemon.pid(), port, &d_reqs, c, size.round, tck).await;
                (b, bl, d, dl)
            } else {
                let (d, dl) = measure(daemon.pid(), port, &d_reqs, c, size.round, tck).await;
                let (b, bl) = measure(bare.child.id(), bare.port, &b_reqs, c, size.round, tck).await;
                (b, bl, d, dl)
            };
            eprintln!(
                "  round {round} conns {c}: bare {:.0} req/s (cpu {:.2}), daemon {:.0} req/s (cpu {:.2}), ratio {:.2}, daemon non-2xx {} errors {}",
                b.rps,
                b.cpu,
                d.rps,
                d.cpu,
                d.rps / b.rps,
                dl.non2xx,
                dl.errors
            );
            d_non2xx += dl.non2xx;
            d_err += dl.errors;
            b_bad += bl.non2xx + bl.errors;
            results[0][ci].push(b);
            results[1][ci].push(d);
        }
    }
    daemon.check_alive()?;
    // Per target: the connection count with the best median.
    let best = |t: usize| -> (usize, f64, f64) {
        let mut best = (0, 0.0, 0.0);
        for (ci, ms) in results[t].iter().enumerate() {
            let rps = median(&ms.iter().map(|m| m.rps).collect::<Vec<_>>());
            let cpu = median(&ms.iter().map(|m| m.cpu).collect::<Vec<_>>());
            if rps > best.1 {
                best = (size.conns[ci], rps, cpu);
            }
        }
        best
    };
    let (bc, brps, bcpu) = best(0);
    let (dc, drps, dcpu) = best(1);
    // Per-round ratios at every connection count.
    let ratios: Vec<f64> = (0..size.conns.len())
        .flat_map(|ci| results[0][ci].iter().zip(&results[1][ci]).map(|(b, d)| d.rps / b.rps))
        .collect();
    let ratio = median(&ratios);
    let (rmin, rmax) = spread(&ratios);
    rep.row(
        "receiver: daemon req/s (median)",
        format!("{drps:.0} ({dc} conns, {body_len} B bodies, {} instances)", size.recv_instances),
        "—",
        None,
    );
    rep.row("receiver: bare axum req/s (median)", format!("{brps:.0} ({bc} conns)"), "—", None);
    rep.row(
        "receiver: daemon / bare, in-repo generator",
        format!(
            "{:.0} % (median of {} paired rounds, spread {:.0}–{:.0} %)",
            ratio * 100.0,
            ratios.len(),
            rmin * 100.0,
            rmax * 100.0
        ),
        ">= 80 %",
        Some(ratio >= 0.80),
    );
    rep.row(
        "receiver: non-2xx / errors (daemon, all rounds)",
        format!("{d_non2xx} / {d_err}"),
        "0",
        Some(d_non2xx == 0 && d_err == 0),
    );
    rep.row(
        "receiver: req/s per core (daemon CPU)",
        format!("{:.0} (daemon used {dcpu:.2} cores)", drps / dcpu),
        "—",
        None,
    );
    rep.row(
        "receiver: req/s per core (bare CPU)",
        format!("{:.0} (bare used {bcpu:.2} cores)", brps / bcpu),
        "—",
        None,
    );
    if d_non2xx > 0 || d_err > 0 {
        rep.failures.push(format!("receiver: {d_non2xx} non-2xx answers and {d_err} errors from the daemon"));
    }
    if b_bad > 0 {
        rep.failures.push(format!("receiver: {b_bad} non-2xx/errors from the bare server"));
    }
    wrk_rounds(size, rep, port, bare.port).await?;

    // Half of the daemon's own maximum rate, paced.
    let rate = drps / 2.0;
    let paced_conns = 32.min(dc);
    let l = load(port, d_reqs.clone(), paced_conns, size.paced, Some(rate)).await;
    let (p50, p99, max) = l.latency_ms();
    rep.row(
        "receiver: latency at half max rate (daemon)",
        format!("p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.1} ms at {:.0} req/s", l.rps()),
        "p99 <= 5 ms",
        Some(p99 <= 5.0),
    );
    if l.non2xx > 0 || l.errors > 0 {
        rep.failures.push(format!("receiver (paced): {} non-2xx, {} errors", l.non2xx, l.errors));
    }
    let lb = load(bare.port, b_reqs.clone(), paced_conns, size.paced, Some(rate)).await;
    let (bp50, bp99, bmax) = lb.latency_ms();
    rep.row(
        "receiver: latency at the same rate (bare, reference)",
        format!("p50 {bp50:.2} ms, p99 {bp99:.2} ms, max {bmax:.1} ms"),
        "—",
        None,
    );
    let (rss, hwm) = memory(daemon.pid());
    rep.row("receiver: daemon RSS after the load", format!("{rss:.1} MiB (peak {hwm:.1} MiB)"), "—", None);
    rep.note(format!(
        "receiver: closed loop, {} round(s) x {:?} per target and connection count ({:?}), alternating bare/daemon; \
         the load generator shares the cores with the server under test; per-core = req/s / (server CPU s / wall s)",
        size.rounds, size.round, size.conns
    ));
    drop(bare);
    drop(daemon);
    Ok(())
}

// ------------------------------------------------------------------ 2. latency

#[derive(Debug)]
struct Arrival {
    kind: String,
    instance: String,
    at: Instant,
}

async fn sink() -> Result<(String, mpsc::UnboundedReceiver<Arrival>)> {
    let (tx, rx) = mpsc::unbounded_channel::<Arrival>();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: axum::body::Bytes| {
            let at = Instant::now();
            let tx = tx.clone();
            async move {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let _ = tx.send(Arrival { kind: s("kind"), instance: s("instance"), at });
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, rx))
}

async fn wait_notice(rx: &mut mpsc::UnboundedReceiver<Arrival>, kind: &str, instance: &str) -> Result<Instant> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let a = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .map_err(|_| anyhow!("no {kind} for {instance} at the sink within 10 s"))?
            .ok_or_else(|| anyhow!("sink closed"))?;
        if a.kind == kind && a.instance == instance {
            return Ok(a.at);
        }
    }
}

async fn latency(size: &Size, rep: &mut Report) -> Result<()> {
    eprintln!("== latency: webhook to notice, {} repetitions", size.latency_reps);
    let dir = tempfile::tempdir()?;
    let sim = simulator(size.latency_instances, Duration::ZERO).await?;
    let (sink_url, mut rx) = sink().await?;
    let db = format!("sqlite://{}/bench.db", dir.path().display());
    let port = free_port()?;
    let cfg = DaemonConfig {
        db_url: &db,
        port,
        sim: &sim,
        schedule: "0 0 * * * *",
        sink: Some(&sink_url),
        supervisor_extra: "",
        // No restarts: the recovery must come from the webhook, not a verification poll.
        extra: "[restart]\nmax_attempts_per_outage = 0\n",
    };
    let mut daemon = Daemon::spawn(dir.path(), &cfg)?;
    daemon.ready(size.latency_instances, Duration::from_secs(60)).await?;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/webhooks/evo/{WEBHOOK_TOKEN}");
    let names = names(size.latency_instances);
    let mut lat = Vec::new();
    let mut down_lat = Vec::new();
    let mut failures = 0;
    for r in 0..size.latency_reps {
        let inst = &names[r % names.len()];
        let close = json!({"event": "connection.update", "instance": inst,
            "data": {"instance": inst, "state": "close", "statusReason": 428}, "date_time": "2025-10-22T14:03:27.901Z"});
        let t_close = Instant::now();
        let s = client.post(&url).json(&close).send().await?.status();
        if !s.is_success() {
            rep.failures.push(format!("latency: close webhook answered {s}"));
            failures += 1;
            continue;
        }
        match wait_notice(&mut rx, "instance_down", inst).await {
            Ok(at) => down_lat.push(at.duration_since(t_close).as_secs_f64() * 1000.0),
            Err(e) => {
                rep.failures.push(format!("latency: {e}"));
                failures += 1;
                continue;
            }
        }
        let body = upsert_body(inst, r);
        let t0 = Instant::now();
        let s = client.post(&url).header("content-type", "application/json").body(body).send().await?.status();
        if !s.is_success() {
            rep.failures.push(format!("latency: messages.upsert answered {s}"));
            failures += 1;
            continue;
        }
        match wait_notice(&mut rx, "instance_recovered", inst).await {
            Ok(at) => lat.push(at.duration_since(t0).as_secs_f64() * 1000.0),
            Err(e) => {
                rep.failures.push(format!("latency: {e}"));
                failures += 1;
            }
        }
        if failures > 3 {
            break;
        }
    }
    daemon.check_alive()?;
    lat.sort_by(f64::total_cmp);
    down_lat.sort_by(f64::total_cmp);
    let p99 = percentile(&lat, 99.0);
    rep.row(
        "latency: webhook → instance_recovered at the sink",
        format!(
            "p50 {:.1} ms, p99 {p99:.1} ms, max {:.1} ms (n = {})",
            percentile(&lat, 50.0),
            lat.last().copied().unwrap_or(f64::NAN),
            lat.len()
        ),
        "p99 < 200 ms",
        Some(p99 < 200.0 && lat.len() == size.latency_reps),
    );
    rep.row(
        "latency: close webhook → instance_down at the sink",
        format!("p50 {:.1} ms, p99 {:.1} ms", percentile(&down_lat, 50.0), percentile(&down_lat, 99.0)),
        "—",
        None,
    );
    Ok(())
}

// ------------------------------------------------------------------ PostgreSQL

/// A fresh database per run (so `pg_stat_database` sees only the daemon).
struct PgBench {
    admin: sqlx::PgPool,
    name: String,
    url: String,
}

impl PgBench {
    async fn create(base: &str) -> Result<PgBench> {
        let admin = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(base).await?;
        let name = format!("bench_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await?;
        let (head, query) = base.split_once('?').map_or((base, None), |(h, q)| (h, Some(q)));
        let prefix =
            head.rsplit_once('/').filter(|(p, _)| p.contains("://") && !p.ends_with('/')).map_or(head, |(p, _)| p);
        let url = match query {
            Some(q) => format!("{prefix}/{name}?{q}"),
            None => format!("{prefix}/{name}"),
        };
        Ok(PgBench { admin, name, url })
    }

    /// (xact_commit, tup_inserted, tup_updated, tup_deleted)
    async fn stats(&self) -> Result<[i64; 4]> {
        let (a, b, c, d): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database WHERE datname = $1",
        )
        .bind(&self.name)
        .fetch_one(&self.admin)
        .await?;
        Ok([a, b, c, d])
    }

    async fn drop_db(self) {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)))
            .execute(&self.admin)
            .await;
        self.admin.close().await;
    }
}

// ------------------------------------------------------------------ 3./4. poll scale and writes

struct PollRun {
    took_ms: Vec<f64>,
    cpu_s: Vec<f64>,
    changed: Vec<u64>,
    hwm: f64,
    /// VmHWM right after the first cycle (inventory insert), MiB.
    hwm_first: f64,
    /// VmRSS after the last steady cycle, MiB.
    rss_end: f64,
    /// CPU seconds per cycle of the bench process itself (simulator, sampling).
    self_cpu_s: Vec<f64>,
    first_ms: u64,
    /// Per steady cycle, PostgreSQL only.
    pg: Option<PgWrites>,
}

struct PgWrites {
    cycles: usize,
    xacts: f64,
    ins: f64,
    upd: f64,
    del: f64,
    /// (table, inserted, updated, deleted) per cycle, tables with any write.
    tables: Vec<(String, f64, f64, f64)>,
}

#[derive(Clone)]
struct PgSample {
    db: [i64; 4],
    tables: std::collections::BTreeMap<String, [i64; 3]>,
}

impl PgWrites {
    /// The writes per cycle between samples `a` and `b`, `cycles` apart,
    /// less `own_xacts` transactions per cycle that the sampling itself made.
    fn between(a: &PgSample, b: &PgSample, cycles: usize, own_xacts: f64) -> PgWrites {
        let k = cycles as f64;
        let d = |i: usize| (b.db[i] - a.db[i]) as f64 / k;
        let tables = b
            .tables
            .iter()
            .filter_map(|(t, v)| {
                let w = a.tables.get(t).copied().unwrap_or([0; 3]);
                let dt = |i: usize| (v[i] - w[i]) as f64 / k;
                (*v != w).then(|| (t.clone(), dt(0), dt(1), dt(2)))
            })
            .collect();
        PgWrites { cycles, xacts: d(0) - own_xacts, ins: d(1), upd: d(2), del: d(3), tables }
    }
}

async fn pg_sample(p: &PgBench, own: &sqlx::PgPool) -> Result<PgSample> {
    let db = p.stats().await?;
    let rows: Vec<(String, i64, i64, i64)> =
        sqlx::query_as("SELECT relname::text, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables")
            .fetch_all(own)
            .await?;
    Ok(PgSample { db, tables: rows.into_iter().map(|(t, a, b, c)| (t, [a, b, c])).collect() })
}

/// `cycles` steady cycles after the first; with PostgreSQL, writes are counted
/// over the last `pg_cycles` of them (earlier ones are skipped: PostgreSQL
/// reports statistics of idle connections up to 10 s late, and the first
/// cycle's inserts must not leak into the window).
async fn poll_run(size: &Size, n: usize, pg: Option<&PgBench>, cycles: usize, pg_cycles: usize) -> Result<PollRun> {
    let tck = clk_tck();
    let dir = tempfile::tempdir()?;
    let sim = simulator(n, SIM_LATENCY).await?;
    let db = match pg {
        Some(p) => p.url.clone(),
        None => format!("sqlite://{}/bench.db", dir.path().display()),
    };
    let port = free_port()?;
    let sup = format!("concurrency = {POLL_CONCURRENCY}\nper_provider_concurrency = {POLL_CONCURRENCY}");
    let cfg = DaemonConfig {
        db_url: &db,
        port,
        sim: &sim,
        schedule: size.poll_schedule,
        sink: None,
        supervisor_extra: &sup,
        extra: "",
    };
    let mut daemon = Daemon::spawn(dir.path(), &cfg)?;
    let start = Instant::now();
    let limit = Duration::from_secs(if size.mode == Mode::Smoke { 30 } else { 400 });
    let mut own: Option<sqlx::PgPool> = None;
    // (cycle, cpu ticks, pg stats) sampled as each cycle line appears.
    let mut samples: Vec<(Cycle, u64, Option<PgSample>)> = Vec::new();
    let mut self_ticks = Vec::new();
    let mut hwm_first = 0.0;
    while samples.len() < 1 + cycles {
        daemon.check_alive()?;
        let cs = daemon.cycles();
        if cs.len() > samples.len() {
            let ticks = cpu_ticks(daemon.pid());
            self_ticks.push(cpu_ticks(std::process::id()));
            if samples.is_empty() {
                hwm_first = memory(daemon.pid()).1;
            }
            let st = match pg {
                Some(p) if samples.len() + pg_cycles >= cycles => {
                    // Half a period after the cycle: every boundary at the same phase,
                    // so PostgreSQL's statistics reporting lag cancels out.
                    tokio::time::sleep(size.poll_period / 2).await;
                    if own.is_none() {
                        own = Some(sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&p.url).await?);
                    }
                    Some(pg_sample(p, own.as_ref().expect("connected")).await?)
                }
                _ => None,
            };
            // Cycles are seconds apart; more than one new line means we were slow.
            for c in &cs[samples.len()..] {
                samples.push((c.clone(), ticks, st.clone()));
            }
        }
        if start.elapsed() > limit {
            bail!("only {} poll cycles within {limit:?}:\n{}", samples.len(), daemon.tail());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (rss_end, hwm) = memory(daemon.pid());
    let self_cpu_s: Vec<f64> = self_ticks.windows(2).map(|w| (w[1] - w[0]) as f64 / tck).collect();
    let steady = &samples[1..];
    let took_ms: Vec<f64> = steady.iter().map(|s| s.0.took_ms as f64).collect();
    let changed: Vec<u64> = steady.iter().map(|s| s.0.changed).collect();
    let cpu_s: Vec<f64> = samples.windows(2).map(|w| (w[1].1 - w[0].1) as f64 / tck).collect();
    if let Some(c) = samples.iter().find(|s| s.0.polled as usize != n) {
        bail!("a cycle polled {} instances, expected {n}", c.0.polled);
    }
    let first_pg = samples.iter().find_map(|s| s.2.clone());
    let pg_writes = match (first_pg, samples.last().and_then(|s| s.2.clone())) {
        (Some(a), Some(b)) if pg_cycles > 0 => {
            // Our pg_stat_user_tables query runs on the daemon's database: one transaction per sample.
            Some(PgWrites::between(&a, &b, pg_cycles, 1.0))
        }
        _ => None,
    };
    if let Some(p) = own {
        p.close().await;
    }
    Ok(PollRun {
        took_ms,
        cpu_s,
        changed,
        hwm,
        hwm_first,
        rss_end,
        self_cpu_s,
        first_ms: samples[0].0.took_ms,
        pg: pg_writes,
    })
}

async fn poll(size: &Size, pg_url: Option<&str>, rep: &mut Report, with_writes: bool) -> Result<()> {
    let mut backends: Vec<Option<&str>> = vec![None];
    match pg_url {
        Some(u) => backends.push(Some(u)),
        None => rep.note("PostgreSQL parts skipped: no --postgres URL and WA_SENTINEL_TEST_POSTGRES unset"),
    }
    for backend in backends {
        let label = if backend.is_some() { "PostgreSQL" } else { "SQLite" };
        for &n in &size.poll_sizes {
            eprintln!(
                "== poll: {n} instances, {label}, {} ms per call, concurrency {POLL_CONCURRENCY}",
                SIM_LATENCY.as_millis()
            );
            let pgb = match backend {
                Some(u) => Some(PgBench::create(u).await?),
                None => None,
            };
            let want_writes = with_writes && pgb.is_some() && n == size.writes_instances;
            // With PostgreSQL writes counted: skip `writes_skip` steady cycles, count `writes_cycles`.
            let (cycles, pg_cycles) = if want_writes {
                (size.writes_skip + size.writes_cycles, size.writes_cycles)
            } else {
                (size.steady_cycles, 0)
            };
            let res = poll_run(size, n, pgb.as_ref(), cycles, pg_cycles).await;
            if let Some(p) = pgb {
                p.drop_db().await;
            }
            let r = res?;
            let ideal = n as f64 * SIM_LATENCY.as_secs_f64() / POLL_CONCURRENCY as f64 * 1000.0;
            let took = median(&r.took_ms);
            let ratio = took / ideal;
            let cpu = median(&r.cpu_s);
            let pct30 = cpu / 30.0 * 100.0;
            // What the cycle cannot beat: one discovery call, then ceil(n / concurrency) rounds of calls.
            let floor = (1 + n.div_ceil(POLL_CONCURRENCY)) as f64 * SIM_LATENCY.as_secs_f64() * 1000.0;
            rep.row(
                format!("poll {label} {n}: cycle wall time vs the structural floor"),
                format!("{:.2}x floor {floor:.0} ms (1 discovery call + ceil(n/256) rounds of 50 ms)", took / floor),
                "—",
                None,
            );
            rep.row(
                format!("poll {label} {n}: cycle wall time (median of {})", r.took_ms.len()),
                format!(
                    "{took:.0} ms = {ratio:.2}x ideal {ideal:.0} ms (first cycle, inserting the inventory: {} ms)",
                    r.first_ms
                ),
                "<= 1.25x ideal",
                Some(ratio <= 1.25),
            );
            rep.row(
                format!("poll {label} {n}: daemon CPU per cycle"),
                format!(
                    "{cpu:.3} s = {pct30:.2} % of one core at a 30 s period (bench process with the simulator: {:.3} s)",
                    median(&r.self_cpu_s)
                ),
                "< 5 %",
                Some(pct30 < 5.0),
            );
            rep.row(
                format!("poll {label} {n}: peak RSS (VmHWM)"),
                format!(
                    "{:.1} MiB (after the first cycle: {:.1} MiB; RSS after the last: {:.1} MiB)",
                    r.hwm, r.hwm_first, r.rss_end
                ),
                if n >= 10_000 { "< 64 MiB" } else { "—" },
                (n >= 10_000).then_some(r.hwm < 64.0),
            );
            if r.changed.iter().any(|c| *c > 0) {
                rep.note(format!("poll {label} {n}: steady cycles committed changes: {:?}", r.changed));
            }
            if let Some(w) = r.pg {
                let rows = w.ins + w.upd + w.del;
                rep.row(
                    format!("writes PostgreSQL {n} healthy: transactions per steady cycle (mean of {})", w.cycles),
                    format!("{:.1} (reads and the leader lease included)", w.xacts),
                    "close to nothing",
                    None,
                );
                let per_table: Vec<String> =
                    w.tables.iter().map(|(t, i, u, d)| format!("{t}: +{i:.0}/~{u:.0}/-{d:.0}")).collect();
                rep.row(
                    format!("writes PostgreSQL {n} healthy: rows written per steady cycle"),
                    format!(
                        "{rows:.0} (inserted {:.0}, updated {:.0}, deleted {:.0}; {})",
                        w.ins,
                        w.upd,
                        w.del,
                        per_table.join(", ")
                    ),
                    format!("no per-instance write beyond the batched last_health_check (<= {n} rows)"),
                    Some(rows <= n as f64 * 1.05 + 5.0),
                );
            }
        }
    }
    rep.note(format!(
        "poll: steady-state cycles only (the first cycle inserts the inventory), schedule `{}`; CPU per cycle is \
         measured between consecutive `poll cycle done` lines, so it includes the idle time between cycles \
         (an upper bound); the simulator runs in the bench process on the same cores",
        size.poll_schedule
    ));
    Ok(())
}

fn sqlite_writes_note(rep: &mut Report) {
    rep.note(
        "writes SQLite: not measured (SQLite exposes no cheap per-database write counters across processes); \
         by design (src/supervisor/mod.rs `poll_cycle`, src/store/mod.rs `touch_health_checks`) an unchanged \
         instance costs no write of its own: `observe` returns before `commit_step` when the state did not change, \
         and `last_health_check` is set for all of them in one `UPDATE … WHERE id IN (…)` per 500 instances",
    );
}

// ------------------------------------------------------------------ 5. outbox claim

/// Rows claimed per round, as the worker does (`DeliveryPolicy::batch`).
const CLAIM_BATCH: u32 = 64;

fn outbox_rows(n: usize, from: usize) -> Vec<OutboxEntry> {
    (from..from + n)
        .map(|i| OutboxEntry {
            dedup_key: format!("outage:{i:07}:instance_down"),
            notifier: "ops".into(),
            kind: "instance_down".into(),
            payload: "{}".into(),
        })
        .collect()
}

/// Claims of `store` at `now`, timed: `reps` of them, or as many as fit in
/// 30 s (at least 3). Milliseconds of each, and the rows each returned.
async fn time_claims(store: &Store, now: Ts, reps: usize) -> Result<(Vec<f64>, Vec<usize>)> {
    let notifiers = ["ops".to_string()];
    let (mut ms, mut got) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    let start = Instant::now();
    while ms.len() < reps && (ms.len() < 3 || start.elapsed() < Duration::from_secs(30)) {
        let t0 = Instant::now();
        let rows = store.claim_outbox(now, Duration::from_secs(30), CLAIM_BATCH, &notifiers).await?;
        ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        got.push(rows.len());
    }
    Ok((ms, got))
}

/// One claim with `n` pending rows of one notifier behind a head that failed
/// and waits for its retry (the notifier is down during a mass outage): the
/// claim finds nothing to take, and on SQLite holds the write lock meanwhile.
async fn claim_behind_failing_head(store: &Store, n: usize, reps: usize) -> Result<Vec<f64>> {
    let now = Ts(1_800_000_000_000);
    for chunk in outbox_rows(n, 0).chunks(1000) {
        store.enqueue(chunk, now).await?;
    }
    let notifiers = ["ops".to_string()];
    let head = store.claim_outbox(now, Duration::from_secs(30), 1, &notifiers).await?;
    let head = head.first().ok_or_else(|| anyhow!("the head row was not claimed"))?;
    store.outbox_failed(head, "HTTP 503", Some(Ts(now.0 + 3_600_000))).await?;
    let (ms, got) = time_claims(store, now, reps).await?;
    if got.iter().any(|&g| g != 0) {
        bail!("a claim took rows behind a head that waits for its retry");
    }
    Ok(ms)
}

async fn claim_scenario(store: &Store, backend: &str, size: &Size, rep: &mut Report) -> Result<()> {
    let n = size.claim_pending;
    eprintln!("== claim: {backend}, {n} pending rows behind a failing head");
    let mut ms = claim_behind_failing_head(store, n, size.claim_reps).await?;
    ms.sort_by(f64::total_cmp);
    let reps = ms.len();
    let p50 = percentile(&ms, 50.0);
    let goal_met = (backend == "SQLite" && size.mode == Mode::Full).then_some(p50 <= 5.0);
    rep.row(
        format!("claim: one outbox claim, {backend}, {n} pending rows behind a failing head (median of {reps})"),
        format!(
            "p50 {p50:.2} ms, p99 {:.2} ms, max {:.2} ms",
            percentile(&ms, 99.0),
            ms.last().copied().unwrap_or(0.0)
        ),
        if backend == "SQLite" { "≤ 5 ms at 10,000 rows" } else { "—" },
        goal_met,
    );
    Ok(())
}

async fn claim(size: &Size, pg_url: Option<&str>, rep: &mut Report) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!("sqlite://{}/claim.db", dir.path().display()), 4).await?;
    store.migrate().await?;
    claim_scenario(&store, "SQLite", size, rep).await?;
    store.close().await;
    match pg_url {
        Some(base) => {
            let pg = PgBench::create(base).await?;
            let store = Store::connect(&pg.url, 4).await?;
            store.migrate().await?;
            let res = claim_scenario(&store, "PostgreSQL", size, rep).await;
            store.close().await;
            pg.drop_db().await;
            res?;
        }
        None => rep.note("claim: PostgreSQL URL absent; SQLite only"),
    }
    Ok(())
}

// ------------------------------------------------------------------ 6. unauthenticated bodies

/// One POST of `body` with a wrong token: the answer's status, or what
/// happened instead.
async fn hostile_post(port: u16, body: Arc<Vec<u8>>) -> String {
    let stream = match TcpStream::connect(("127.0.0.1", port)).await {
        Ok(s) => s,
        Err(e) => return format!("connect failed ({:?})", e.kind()),
    };
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST /webhooks/evo/not-the-token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // Write and read at once: a server that answers before the body is in
    // (and then closes) must not leave the writer blocked. The write half is
    // handed back, not dropped: dropping it would half-close the connection,
    // which the server takes for a client gone away.
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        wr.write_all(&body).await?;
        Ok::<_, std::io::Error>(wr)
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let outcome = loop {
        match rd.read(&mut chunk).await {
            Ok(0) => break "closed without an answer".to_string(),
            Err(e) => break format!("{:?} before an answer", e.kind()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() >= 12 {
            break String::from_utf8_lossy(&buf[9..12]).into_owned();
        }
    };
    writer.abort();
    outcome
}

/// Peak RSS of the daemon while `posts` connections at once each post
/// `server.max_body` (2 MiB) to a webhook URL with a wrong token.
async fn unauth(size: &Size, rep: &mut Report) -> Result<()> {
    let posts = size.unauth_posts;
    let body_len = 2 * 1024 * 1024;
    eprintln!("== unauth: {posts} concurrent unauthenticated posts of {body_len} bytes");
    let dir = tempfile::tempdir()?;
    let sim = simulator(1, Duration::ZERO).await?;
    let mut daemon = Daemon::plain(dir.path(), &sim)?;
    let port = daemon.port;
    daemon.ready(1, Duration::from_secs(60)).await?;
    let (_, hwm_before) = memory(daemon.pid());
    let mut pad = br#"{"event":"messages.upsert","instance":"inst-00000","pad":""#.to_vec();
    pad.resize(body_len - 2, b'x');
    pad.extend_from_slice(b"\"}");
    let body = Arc::new(pad);
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..posts).map(|_| tokio::spawn(hostile_post(port, body.clone()))).collect();
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for t in tasks {
        let outcome = t.await.unwrap_or_else(|e| format!("task failed: {e}"));
        *codes.entry(outcome).or_default() += 1;
    }
    let took = t0.elapsed().as_secs_f64();
    daemon.check_alive()?;
    let (rss, hwm) = memory(daemon.pid());
    let answers: Vec<String> = codes.iter().map(|(c, n)| format!("{n} × {c}")).collect();
    rep.row(
        format!("unauth: daemon peak RSS (VmHWM), {posts} concurrent 2 MiB posts with a wrong token"),
        format!(
            "{hwm:.1} MiB (before the load {hwm_before:.1} MiB; RSS after {rss:.1} MiB); answers: {}; {took:.1} s",
            answers.join(", ")
        ),
        "—",
        None,
    );
    if codes.keys().any(|c| c.len() == 3 && c != "401") {
        rep.failures.push(format!("unauth: answers other than 401: {}", answers.join(", ")));
    }
    Ok(())
}

// ------------------------------------------------------------------ main

// ------------------------------------------------------------------ 7. scale

/// One `scale` run's figures.
struct ScaleRun {
    /// Per provider, the median of its steady cycles (ms).
    took_ms: Vec<(String, f64)>,
    /// Daemon CPU over the measured periods, as a share of one core (the
    /// busiest replica's with several).
    cpu_share: f64,
    /// Per replica: CPU share and the providers it polled while measured.
    replicas: Vec<(f64, usize)>,
    /// Providers polled by more than one replica in one period (must be 0).
    doubled: usize,
    hwm: f64,
    hwm_first: f64,
    first_ms: u64,
    pg: Option<PgWrites>,
}

fn scale_config(db: &str, port: u16, sims: &[Simulator], schedule: &str) -> String {
    let mut text = format!(
        "[database]\nurl = \"{db}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n\
         admin_token = \"{ADMIN_TOKEN}\"\n[supervisor]\npoll_schedule = \"{schedule}\"\nrequest_timeout = \"10s\"\n\
         concurrency = {POLL_CONCURRENCY}\nper_provider_concurrency = 16\n[alerts]\nflap_threshold = 0\n"
    );
    for (i, s) in sims.iter().enumerate() {
        text.push_str(&format!(
            "[[providers]]\nname = \"evo{i:02}\"\nkind = \"evolution\"\nbase_url = \"{}\"\napi_version = \"v2\"\n\
             api_key = \"{}\"\nwebhook_token = \"{WEBHOOK_TOKEN}\"\ndiscover = true\n",
            s.base_url(),
            s.api_key()
        ));
    }
    text
}

/// `(provider, took_ms)` of every `poll cycle done` line.
fn provider_cycles(log: &str) -> Vec<(String, u64, u64)> {
    log.lines()
        .filter(|l| l.contains("poll cycle done"))
        .filter_map(|l| {
            let p = l.split("provider=").nth(1)?;
            let p: String = p.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
            Some((p, field(l, "took_ms").unwrap_or(0), field(l, "polled").unwrap_or(0)))
        })
        .collect()
}

async fn scale_run(size: &Size, n: usize, pg: Option<&PgBench>, replicas: usize) -> Result<ScaleRun> {
    let tck = clk_tck();
    let dir = tempfile::tempdir()?;
    let per = n / size.scale_providers;
    let mut sims = Vec::new();
    for p in 0..size.scale_providers {
        sims.push(
            Simulator::start(SimOptions {
                instances: (0..per).map(|i| (format!("p{p:02}-{i:06}"), Behaviour::Open)).collect(),
                latency: SIM_LATENCY,
                ..SimOptions::default()
            })
            .await?,
        );
    }
    let db = match pg {
        Some(p) => p.url.clone(),
        None => format!("sqlite://{}/bench.db", dir.path().display()),
    };
    // One daemon per replica (same database, own listener and log).
    let mut children = Vec::new();
    let mut logs = Vec::new();
    for r in 0..replicas {
        let port = free_port()?;
        let cfg = dir.path().join(format!("config-{r}.toml"));
        std::fs::write(&cfg, scale_config(&db, port, &sims, size.scale_schedule))?;
        let log = dir.path().join(format!("daemon-{r}.log"));
        let child = spawn_daemon(
            &cfg,
            &log,
            "info,sqlx=warn,tokio_cron_scheduler=warn,wa_sentinel::supervisor::cycle=info,wa_sentinel=warn",
        )?;
        children.push(child);
        logs.push(log);
    }
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    let texts = || -> Vec<String> {
        logs.iter().map(|l| strip_ansi(&std::fs::read_to_string(l).unwrap_or_default())).collect()
    };
    let text = || texts().join("\n");
    let limit = Duration::from_secs(if size.mode == Mode::Smoke { 60 } else { 900 });
    let start = Instant::now();
    // Every provider's first cycle (it inserts the inventory).
    loop {
        for c in &mut children {
            if let Some(st) = c.try_wait()? {
                bail!("a daemon exited ({st}):\n{}", text());
            }
        }
        let cs = provider_cycles(&text());
        let done: std::collections::BTreeSet<&String> =
            cs.iter().filter(|c| c.2 as usize == per).map(|c| &c.0).collect();
        if done.len() == size.scale_providers {
            break;
        }
        if start.elapsed() > limit {
            for c in &mut children {
                let _ = c.kill();
            }
            bail!("{} of {} providers finished a first cycle within {limit:?}", done.len(), size.scale_providers);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first_ms = start.elapsed().as_millis() as u64;
    let hwm_first = pids.iter().map(|p| memory(*p).1).fold(0.0, f64::max);
    let seen: Vec<usize> = texts().iter().map(|t| provider_cycles(t).len()).collect();
    // Whole periods, measured from a tick boundary.
    let wait_boundary = size.scale_period.as_millis() as u64 - (wall_ms() % size.scale_period.as_millis() as u64);
    tokio::time::sleep(Duration::from_millis(wait_boundary + 200)).await;
    let own = match pg {
        Some(p) => Some(sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&p.url).await?),
        None => None,
    };
    let pg_a = match (pg, &own) {
        (Some(p), Some(o)) => Some(pg_sample(p, o).await?),
        _ => None,
    };
    let (c0, t0) = (pids.iter().map(|p| cpu_ticks(*p)).collect::<Vec<_>>(), Instant::now());
    tokio::time::sleep(size.scale_period * size.scale_periods as u32).await;
    let (c1, t1) = (pids.iter().map(|p| cpu_ticks(*p)).collect::<Vec<_>>(), Instant::now());
    let pg_b = match (pg, &own) {
        (Some(p), Some(o)) => Some(pg_sample(p, o).await?),
        _ => None,
    };
    let shares: Vec<f64> = c0.iter().zip(&c1).map(|(a, b)| (b - a) as f64 / tck / (t1 - t0).as_secs_f64()).collect();
    let cpu_share = shares.iter().copied().fold(0.0, f64::max);
    let hwm = pids.iter().map(|p| memory(*p).1).fold(0.0, f64::max);
    // Steady cycles of every replica; who polled what.
    let per_replica: Vec<Vec<(String, u64, u64)>> =
        texts().iter().zip(&seen).map(|(t, k)| provider_cycles(t).split_off(*k)).collect();
    let mut owners: std::collections::BTreeMap<&str, std::collections::BTreeSet<usize>> = Default::default();
    for (r, cs) in per_replica.iter().enumerate() {
        for c in cs {
            owners.entry(c.0.as_str()).or_default().insert(r);
        }
    }
    // A provider may move once between replicas (a handover); two owners in
    // every period would be double polling: count providers with more cycles
    // than periods (+1 for the edge).
    let doubled = owners
        .keys()
        .filter(|p| per_replica.iter().flatten().filter(|c| c.0 == **p).count() > size.scale_periods + 1)
        .count();
    let replicas_fig: Vec<(f64, usize)> =
        shares.iter().enumerate().map(|(r, s)| (*s, owners.values().filter(|o| o.contains(&r)).count())).collect();
    let steady: Vec<(String, u64, u64)> = per_replica.into_iter().flatten().collect();
    if std::env::var_os("BENCH_DAEMON_WRAPPER").is_some() {
        // Under a profiler: SIGTERM, so the profile gets written.
        for (pid, child) in pids.iter().zip(&mut children) {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(120) && !matches!(child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let mut by: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for (p, took, polled) in steady {
        if polled as usize != per {
            bail!("provider {p} polled {polled} instances, expected {per}");
        }
        by.entry(p).or_default().push(took as f64);
    }
    if by.len() != size.scale_providers {
        bail!("only {} providers finished a steady cycle", by.len());
    }
    let took_ms = by.into_iter().map(|(p, v)| (p, median(&v))).collect();
    let pg_writes = match (pg_a, pg_b) {
        (Some(a), Some(b)) => Some(PgWrites::between(&a, &b, size.scale_periods, 0.0)),
        _ => None,
    };
    if let Some(o) = own {
        o.close().await;
    }
    drop(sims);
    Ok(ScaleRun { took_ms, cpu_share, replicas: replicas_fig, doubled, hwm, hwm_first, first_ms, pg: pg_writes })
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

async fn scale(size: &Size, pg_url: Option<&str>, rep: &mut Report) -> Result<()> {
    let mut backends: Vec<Option<&str>> = vec![None];
    if let Some(u) = pg_url {
        backends.push(Some(u));
    }
    for backend in backends {
        let label = if backend.is_some() { "PostgreSQL" } else { "SQLite" };
        for &n in &size.scale_sizes {
            let p = size.scale_providers;
            eprintln!(
                "== scale: {n} instances over {p} providers, {label}, 50 ms per call, period {:?}",
                size.scale_period
            );
            let pgb = match backend {
                Some(u) => Some(PgBench::create(u).await?),
                None => None,
            };
            let res = scale_run(size, n, pgb.as_ref(), 1).await;
            if let Some(b) = pgb {
                b.drop_db().await;
            }
            let r = res?;
            // Each provider's share: concurrency / providers, at most per_provider_concurrency (16).
            let share = (POLL_CONCURRENCY / p).clamp(1, 16);
            let ideal = (n / p) as f64 * SIM_LATENCY.as_secs_f64() / share as f64 * 1000.0;
            let (slow_p, slow) = r.took_ms.iter().cloned().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap_or_default();
            let fast = r.took_ms.iter().map(|t| t.1).fold(f64::INFINITY, f64::min);
            rep.row(
                format!("scale {label} {n} over {p} providers: slowest provider's cycle (median of its steady cycles)"),
                format!(
                    "{slow:.0} ms ({slow_p}) = {:.2}x ideal {ideal:.0} ms (share {share} calls in flight; fastest provider {fast:.0} ms)",
                    slow / ideal
                ),
                "<= 1.25x ideal",
                Some(slow / ideal <= 1.25),
            );
            rep.row(
                format!("scale {label} {n}: daemon CPU averaged over {} whole periods", size.scale_periods),
                format!("{:.1} % of one core", r.cpu_share * 100.0),
                "< 10 %",
                Some(r.cpu_share < 0.10),
            );
            let goal = if n >= 100_000 { 160.0 } else { 64.0 };
            rep.row(
                format!("scale {label} {n}: peak RSS (VmHWM)"),
                format!(
                    "{:.1} MiB (after every provider's first, inserting cycle: {:.1} MiB, reached in {:.0} s)",
                    r.hwm,
                    r.hwm_first,
                    r.first_ms as f64 / 1000.0
                ),
                format!("< {goal:.0} MiB"),
                Some(r.hwm < goal),
            );
            if let Some(w) = r.pg {
                let per_table: Vec<String> =
                    w.tables.iter().map(|(t, i, u, d)| format!("{t}: +{i:.0}/~{u:.0}/-{d:.0}")).collect();
                rep.row(
                    format!("scale PostgreSQL {n}: writes per period, steady (mean of {})", w.cycles),
                    format!(
                        "{:.0} transactions; rows inserted {:.0}, updated {:.0}, deleted {:.0} ({})",
                        w.xacts,
                        w.ins,
                        w.upd,
                        w.del,
                        per_table.join(", ")
                    ),
                    format!("O(changed) + one batched touch per provider (<= {n} rows)"),
                    Some(w.ins + w.upd + w.del <= n as f64 * 1.05 + 50.0),
                );
            }
        }
    }
    Ok(())
}

/// Three replicas on one PostgreSQL share `replica_instances`
/// over `scale_providers` simulated providers: per-replica CPU and providers,
/// the slowest provider's cycle, and no provider polled twice in a period.
async fn scale_replicas(size: &Size, pg_url: Option<&str>, rep: &mut Report) -> Result<()> {
    let Some(url) = pg_url else {
        rep.note("replicas: no PostgreSQL URL (WA_SENTINEL_TEST_POSTGRES or --postgres); skipped");
        return Ok(());
    };
    let (n, p, replicas) = (size.replica_instances, size.scale_providers, 3);
    eprintln!("== replicas: {n} instances over {p} providers, {replicas} replicas on PostgreSQL");
    let pgb = PgBench::create(url).await?;
    let res = scale_run(size, n, Some(&pgb), replicas).await;
    pgb.drop_db().await;
    let r = res?;
    let share = (POLL_CONCURRENCY / p).clamp(1, 16);
    let ideal = (n / p) as f64 * SIM_LATENCY.as_secs_f64() / share as f64 * 1000.0;
    let slow = r.took_ms.iter().map(|t| t.1).fold(0.0, f64::max);
    let each: Vec<String> = r
        .replicas
        .iter()
        .enumerate()
        .map(|(i, (cpu, provs))| format!("replica {i}: {:.1} % of a core, {provs} providers", cpu * 100.0))
        .collect();
    rep.row(
        format!("replicas: {replicas} on one PostgreSQL, {n} instances over {p} providers: per replica"),
        each.join("; "),
        "each leads about 1/N of the providers",
        Some(r.replicas.iter().all(|(_, k)| *k >= 1)),
    );
    rep.row(
        format!("replicas {n}: slowest provider's cycle"),
        format!("{slow:.0} ms = {:.2}x ideal {ideal:.0} ms; peak RSS of a replica {:.1} MiB", slow / ideal, r.hwm),
        "<= 1.25x ideal",
        Some(slow / ideal <= 1.25),
    );
    rep.row(
        format!("replicas {n}: providers polled by two replicas in one period"),
        r.doubled.to_string(),
        "0",
        Some(r.doubled == 0),
    );
    if r.doubled > 0 {
        rep.failures.push(format!("replicas: {} providers polled twice per period", r.doubled));
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.first().map(String::as_str) == Some("bare-server") {
        let port = args.get(1).and_then(|p| p.parse().ok()).ok_or_else(|| anyhow!("bare-server PORT"))?;
        return bare_server(port);
    }
    let mut scenario = None;
    let mut pg_url = std::env::var("WA_SENTINEL_TEST_POSTGRES").ok().filter(|s| !s.is_empty());
    let (mut no_pg, mut poll_sizes, mut scale_sizes) = (false, None, None);
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
            "all" | "smoke" | "receiver" | "latency" | "poll" | "writes" | "claim" | "unauth" | "scale"
            | "replicas" | "events" => scenario = Some(a.clone()),
            other if other.starts_with('-') => {} // libtest-style flags cargo may pass
            other => {
                bail!(
                    "unknown scenario `{other}`: all | smoke | receiver | latency | poll | writes | claim | unauth | scale | replicas | events"
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
