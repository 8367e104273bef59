//! The `scale` and `replicas` scenarios: 100,000 instances over 20 providers, and three replicas sharing them.

use super::*;

/// One `scale` run's figures.
pub(crate) struct ScaleRun {
    /// Per provider, the median of its steady cycles (ms).
    pub(crate) took_ms: Vec<(String, f64)>,
    /// Daemon CPU over the measured periods, as a share of one core (the
    /// busiest replica's with several).
    pub(crate) cpu_share: f64,
    /// Per replica: CPU share and the providers it polled while measured.
    pub(crate) replicas: Vec<(f64, usize)>,
    /// Providers polled by more than one replica in one period (must be 0).
    pub(crate) doubled: usize,
    pub(crate) hwm: f64,
    pub(crate) hwm_first: f64,
    pub(crate) first_ms: u64,
    pub(crate) pg: Option<PgWrites>,
}

pub(crate) fn scale_config(db: &str, port: u16, sims: &[Simulator], schedule: &str) -> String {
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
pub(crate) fn provider_cycles(log: &str) -> Vec<(String, u64, u64)> {
    log.lines()
        .filter(|l| l.contains("poll cycle done"))
        .filter_map(|l| {
            let p = l.split("provider=").nth(1)?;
            let p: String = p.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
            Some((p, field(l, "took_ms").unwrap_or(0), field(l, "polled").unwrap_or(0)))
        })
        .collect()
}

pub(crate) async fn scale_run(size: &Size, n: usize, pg: Option<&PgBench>, replicas: usize) -> Result<ScaleRun> {
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

pub(crate) fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub(crate) async fn scale(size: &Size, pg_url: Option<&str>, rep: &mut Report) -> Result<()> {
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
pub(crate) async fn scale_replicas(size: &Size, pg_url: Option<&str>, rep: &mut Report) -> Result<()> {
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
