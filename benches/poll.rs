//! The `poll` and `writes` scenarios: steady-state poll cycles of one provider.

use super::*;

pub(crate) struct PollRun {
    pub(crate) took_ms: Vec<f64>,
    pub(crate) cpu_s: Vec<f64>,
    pub(crate) changed: Vec<u64>,
    pub(crate) hwm: f64,
    /// VmHWM right after the first cycle (inventory insert), MiB.
    pub(crate) hwm_first: f64,
    /// VmRSS after the last steady cycle, MiB.
    pub(crate) rss_end: f64,
    /// CPU seconds per cycle of the bench process itself (simulator, sampling).
    pub(crate) self_cpu_s: Vec<f64>,
    pub(crate) first_ms: u64,
    /// Per steady cycle, PostgreSQL only.
    pub(crate) pg: Option<PgWrites>,
}

pub(crate) struct PgWrites {
    pub(crate) cycles: usize,
    pub(crate) xacts: f64,
    pub(crate) ins: f64,
    pub(crate) upd: f64,
    pub(crate) del: f64,
    /// (table, inserted, updated, deleted) per cycle, tables with any write.
    pub(crate) tables: Vec<(String, f64, f64, f64)>,
}

#[derive(Clone)]
pub(crate) struct PgSample {
    pub(crate) db: [i64; 4],
    pub(crate) tables: std::collections::BTreeMap<String, [i64; 3]>,
}

impl PgWrites {
    /// The writes per cycle between samples `a` and `b`, `cycles` apart,
    /// less `own_xacts` transactions per cycle that the sampling itself made.
    pub(crate) fn between(a: &PgSample, b: &PgSample, cycles: usize, own_xacts: f64) -> PgWrites {
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

pub(crate) async fn pg_sample(p: &PgBench, own: &sqlx::PgPool) -> Result<PgSample> {
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
pub(crate) async fn poll_run(
    size: &Size,
    n: usize,
    pg: Option<&PgBench>,
    cycles: usize,
    pg_cycles: usize,
) -> Result<PollRun> {
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

pub(crate) async fn poll(size: &Size, pg_url: Option<&str>, rep: &mut Report, with_writes: bool) -> Result<()> {
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

pub(crate) fn sqlite_writes_note(rep: &mut Report) {
    rep.note(
        "writes SQLite: not measured (SQLite exposes no cheap per-database write counters across processes); \
         by design (src/supervisor/mod.rs `poll_cycle`, src/store/mod.rs `touch_health_checks`) an unchanged \
         instance costs no write of its own: `observe` returns before `commit_step` when the state did not change, \
         and `last_health_check` is set for all of them in one `UPDATE … WHERE id IN (…)` per 500 instances",
    );
}
