//! The `receiver` scenario: the daemon against a bare axum server, in-repo load and `wrk`.

use super::*;

pub(crate) struct Measured {
    pub(crate) rps: f64,
    pub(crate) cpu: f64,
}

pub(crate) async fn measure(
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
pub(crate) fn spread(v: &[f64]) -> (f64, f64) {
    v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(*x), hi.max(*x)))
}

/// The wrk script shipped in `benches/`.
pub(crate) const WRK_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/receiver.lua");

/// One `wrk -t1 -c32` run against `port` with `benches/receiver.lua`:
/// (req/s, non-2xx + socket errors).
pub(crate) async fn wrk_once(port: u16, instances: usize, dur: Duration) -> Result<(f64, u64)> {
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
pub(crate) async fn wrk_rounds(size: &Size, rep: &mut Report, port: u16, bare_port: u16) -> Result<()> {
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

pub(crate) async fn receiver(size: &Size, rep: &mut Report) -> Result<()> {
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
