//! The `floor` scenario: what one poll costs the daemon next to what the same
//! status call costs a bare HTTP client, against the same simulators in the
//! same run.
//!
//! The setup is the `scale` one (providers of `n / scale_providers`
//! instances answering after 50 ms, `concurrency = 256`, at most 16 calls in
//! flight per provider, SQLite). Each round is one whole poll period,
//! measured from a tick boundary: the daemon's CPU over the period divided
//! by the polls whose cycle ended in it; in the same period, once every
//! provider's cycle is done and until shortly before the next tick, a bare
//! client (hyper-util's pooled legacy client, one thread, pre-built URIs and
//! header; it reads each answer's body and parses nothing) makes the same
//! `GET /instance/connectionState/{name}` calls, rotating over the same
//! names with as many calls in flight per simulator as the daemon, its
//! thread's own CPU (`/proc/thread-self/schedstat`) divided by its requests.

use super::*;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// One round's figures.
struct FloorRound {
    daemon_us: f64,
    daemon_share: f64,
    polls: u64,
    floor_us: f64,
    requests: u64,
}

/// CPU time of the calling thread, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let sched = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()));
    sched.unwrap_or_else(|| {
        // Without schedstat: utime + stime of the thread, in clock ticks.
        let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
        let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
        let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
        (ticks as f64 / clk_tck() * 1e9) as u64
    })
}

/// One simulator's status calls, pre-built.
struct Target {
    uris: Vec<hyper::Uri>,
    key: hyper::header::HeaderValue,
}

/// What the bare client did until a deadline: answered 200, other answers
/// or errors, its thread's CPU in nanoseconds.
type BareCount = (u64, u64, u64);

/// A run until a deadline, and where to send its count.
type BareJob = (Instant, std::sync::mpsc::Sender<BareCount>);

/// The bare client on its own thread (a current-thread runtime: every
/// connection task runs on it, so the thread's CPU is the client's).
struct BareClient {
    tx: std::sync::mpsc::Sender<BareJob>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BareClient {
    fn start(targets: Vec<Target>, in_flight: usize) -> Result<BareClient> {
        let (tx, rx) = std::sync::mpsc::channel::<BareJob>();
        let thread = std::thread::Builder::new().name("bare-client".into()).spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let mut http = HttpConnector::new();
            http.set_nodelay(true);
            let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(in_flight)
                .pool_idle_timeout(Duration::from_secs(300))
                .build(http);
            let targets = Arc::new(targets);
            let mut offset = 0usize;
            while let Ok((deadline, reply)) = rx.recv() {
                let t0 = thread_cpu_ns();
                let (ok, failed) = rt.block_on(run_bare(&client, &targets, in_flight, offset, deadline));
                let t1 = thread_cpu_ns();
                offset += (ok + failed) as usize;
                let _ = reply.send((ok, failed, t1 - t0));
            }
        })?;
        Ok(BareClient { tx, thread: Some(thread) })
    }

    /// Calls until `deadline`: (answered 200, other answers or errors, CPU ns).
    async fn run_until(&self, deadline: Instant) -> Result<BareCount> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.tx.send((deadline, tx)).map_err(|_| anyhow!("the bare client stopped"))?;
        tokio::task::spawn_blocking(move || rx.recv().map_err(|_| anyhow!("the bare client stopped"))).await?
    }
}

impl Drop for BareClient {
    fn drop(&mut self) {
        let (tx, _) = std::sync::mpsc::channel();
        self.tx = tx;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `in_flight` loops per target, each taking the next name in turn.
async fn run_bare(
    client: &Client<HttpConnector, Empty<Bytes>>,
    targets: &Arc<Vec<Target>>,
    in_flight: usize,
    offset: usize,
    deadline: Instant,
) -> (u64, u64) {
    let mut set = tokio::task::JoinSet::new();
    for t in 0..targets.len() {
        for w in 0..in_flight {
            let (client, targets) = (client.clone(), targets.clone());
            set.spawn(async move {
                let target = &targets[t];
                let (mut ok, mut failed) = (0u64, 0u64);
                let mut k = offset + w;
                while Instant::now() < deadline {
                    let mut req = hyper::Request::new(Empty::<Bytes>::new());
                    *req.uri_mut() = target.uris[k % target.uris.len()].clone();
                    req.headers_mut().insert("apikey", target.key.clone());
                    k += in_flight;
                    match client.request(req).await {
                        Ok(resp) => {
                            let good = resp.status() == hyper::StatusCode::OK;
                            match resp.into_body().collect().await {
                                Ok(_) if good => ok += 1,
                                _ => failed += 1,
                            }
                        }
                        Err(_) => failed += 1,
                    }
                }
                (ok, failed)
            });
        }
    }
    let (mut ok, mut failed) = (0, 0);
    while let Some(r) = set.join_next().await {
        if let Ok((o, f)) = r {
            ok += o;
            failed += f;
        }
    }
    (ok, failed)
}

/// Until `at` (wall clock, ms since the epoch).
async fn sleep_until_wall(at: u64) {
    let now = wall_ms();
    if at > now {
        tokio::time::sleep(Duration::from_millis(at - now)).await;
    }
}

async fn floor_run(size: &Size, n: usize, rep: &mut Report) -> Result<Vec<FloorRound>> {
    let tck = clk_tck();
    let dir = tempfile::tempdir()?;
    let providers = size.scale_providers;
    let per = n / providers;
    let mut sims = Vec::new();
    let mut targets = Vec::new();
    for p in 0..providers {
        let names: Vec<String> = (0..per).map(|i| format!("p{p:02}-{i:06}")).collect();
        let sim = Simulator::start(SimOptions {
            instances: names.iter().map(|n| (n.clone(), Behaviour::Open)).collect(),
            latency: SIM_LATENCY,
            ..SimOptions::default()
        })
        .await?;
        let base = sim.base_url();
        let uris = names
            .iter()
            .map(|n| format!("{}/instance/connectionState/{n}", base.trim_end_matches('/')).parse())
            .collect::<Result<Vec<hyper::Uri>, _>>()?;
        targets.push(Target { uris, key: hyper::header::HeaderValue::from_str(sim.api_key())? });
        sims.push(sim);
    }
    // As the daemon: its share of the concurrency, at most 16 per provider.
    let in_flight = (POLL_CONCURRENCY / providers).clamp(1, 16);
    let bare = BareClient::start(targets, in_flight)?;
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        scale_config(&format!("sqlite://{}/bench.db", dir.path().display()), free_port()?, &sims, size.floor_schedule),
    )?;
    let log = dir.path().join("daemon.log");
    let mut child = spawn_daemon(
        &cfg,
        &log,
        "info,sqlx=warn,tokio_cron_scheduler=warn,wa_sentinel::supervisor::cycle=info,wa_sentinel=warn",
    )?;
    let pid = child.id();
    let text = || strip_ansi(&std::fs::read_to_string(&log).unwrap_or_default());
    let res = async {
        let limit = Duration::from_secs(if size.mode == Mode::Smoke { 60 } else { 900 });
        let start = Instant::now();
        loop {
            if let Some(st) = child.try_wait()? {
                bail!("the daemon exited ({st}):\n{}", text());
            }
            let cs = provider_cycles(&text());
            let done: std::collections::BTreeSet<&String> =
                cs.iter().filter(|c| c.2 as usize == per).map(|c| &c.0).collect();
            if done.len() == providers {
                break;
            }
            if start.elapsed() > limit {
                bail!("{} of {providers} providers finished a first cycle within {limit:?}", done.len());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Warm the bare client's connections (not measured).
        bare.run_until(Instant::now() + Duration::from_millis(200)).await?;
        // One period unmeasured: the first after the inserting cycle steps
        // every instance once; the fast path takes settled ones from then on.
        let period = size.floor_period.as_millis() as u64;
        // The samples are taken this long after a tick, when every cycle has started.
        let lag = (period / 50).clamp(20, 200);
        sleep_until_wall((wall_ms() / period + 1) * period + lag).await;
        let mut rounds = Vec::new();
        for _ in 0..size.floor_rounds {
            let boundary = wall_ms() / period * period + period;
            sleep_until_wall(boundary + lag).await;
            let (seen, c0) = (provider_cycles(&text()).len(), cpu_ticks(pid));
            // Every provider's cycle of this period done: the bare client has the rest of it.
            let cycles_done = loop {
                if let Some(st) = child.try_wait()? {
                    bail!("the daemon exited ({st}):\n{}", text());
                }
                let cs = provider_cycles(&text());
                if cs.len() >= seen + providers || wall_ms() >= boundary + period {
                    break cs.len() - seen;
                }
                tokio::time::sleep(Duration::from_millis(if size.mode == Mode::Smoke { 5 } else { 50 })).await;
            };
            if cycles_done < providers {
                rep.note(format!(
                    "floor {n}: only {cycles_done} of {providers} provider cycles ended within the period; \
                     the bare client had no time of its own"
                ));
            }
            let margin = (period / 10).clamp(50, 1500);
            let left = (boundary + period).saturating_sub(wall_ms() + margin);
            let (ok, failed, cpu_ns) = bare.run_until(Instant::now() + Duration::from_millis(left)).await?;
            sleep_until_wall(boundary + period + lag).await;
            let c1 = cpu_ticks(pid);
            let window: Vec<(String, u64, u64)> = provider_cycles(&text()).split_off(seen);
            let polls: u64 = window.iter().map(|c| c.2).sum();
            // How many of them took the settled fast path, and how many committed a change.
            let lines: Vec<String> =
                text().lines().filter(|l| l.contains("poll cycle done")).skip(seen).map(str::to_string).collect();
            let settled: u64 = lines.iter().map(|l| field(l, "settled").unwrap_or(0)).sum();
            let changed: u64 = lines.iter().map(|l| field(l, "changed").unwrap_or(0)).sum();
            if failed > 0 {
                rep.failures.push(format!("floor {n}: the bare client got {failed} failed calls"));
            }
            if polls == 0 || ok == 0 {
                bail!("floor {n}: no polls ({polls}) or no bare requests ({ok}) in a period");
            }
            let cpu_s = (c1 - c0) as f64 / tck;
            let r = FloorRound {
                daemon_us: cpu_s / polls as f64 * 1e6,
                daemon_share: cpu_s / size.floor_period.as_secs_f64(),
                polls,
                floor_us: cpu_ns as f64 / 1000.0 / ok as f64,
                requests: ok,
            };
            eprintln!(
                "  round: daemon {:.1} µs/poll ({} polls, {settled} settled, {changed} changed, {:.1} % of a core), \
                 bare client {:.1} µs/request ({} requests): {:.2}x",
                r.daemon_us,
                r.polls,
                r.daemon_share * 100.0,
                r.floor_us,
                r.requests,
                r.daemon_us / r.floor_us
            );
            rounds.push(r);
        }
        Ok(rounds)
    }
    .await;
    let hwm = memory(pid).1;
    if std::env::var_os("BENCH_DAEMON_WRAPPER").is_some() {
        // Under a profiler: SIGTERM, so the profile gets written.
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(120) && !matches!(child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(bare);
    drop(sims);
    let rounds = res?;
    rep.note(format!("floor {n}: daemon peak RSS {hwm:.1} MiB"));
    Ok(rounds)
}

/// `median (min–max)` of `v`, with `digits` decimals and `unit`.
fn spread(v: &[f64], digits: usize, unit: &str) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.digits$}{unit} ({lo:.digits$}–{hi:.digits$})", median(v))
}

pub(crate) async fn floor(size: &Size, rep: &mut Report) -> Result<()> {
    for &n in &size.floor_sizes {
        let p = size.scale_providers;
        eprintln!(
            "== floor: {n} instances over {p} providers, SQLite, 50 ms per call, period {:?}, {} rounds",
            size.floor_period, size.floor_rounds
        );
        let rounds = floor_run(size, n, rep).await?;
        let col = |f: fn(&FloorRound) -> f64| rounds.iter().map(f).collect::<Vec<f64>>();
        let ratio = col(|r| r.daemon_us / r.floor_us);
        let k = rounds.len();
        rep.row(
            format!("floor {n} over {p} providers: daemon CPU per poll (median of {k} periods, min–max)"),
            format!(
                "{} µs; {} of a core",
                spread(&col(|r| r.daemon_us), 1, ""),
                spread(&col(|r| r.daemon_share * 100.0), 1, " %")
            ),
            "—",
            None,
        );
        rep.row(
            format!("floor {n}: bare client CPU per request, same calls in the same periods"),
            format!(
                "{} µs ({} requests per period, median)",
                spread(&col(|r| r.floor_us), 1, ""),
                median(&col(|r| r.requests as f64))
            ),
            "—",
            None,
        );
        let m = median(&ratio);
        rep.row(
            format!("floor {n}: daemon / bare client, CPU per call"),
            spread(&ratio, 2, "x"),
            "<= 2.5x",
            Some(m <= 2.5),
        );
    }
    Ok(())
}
