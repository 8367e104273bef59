//! The `latency` scenario: webhook to notice at a local sink.

use super::*;

#[derive(Debug)]
pub(crate) struct Arrival {
    pub(crate) kind: String,
    pub(crate) instance: String,
    pub(crate) at: Instant,
}

pub(crate) async fn sink() -> Result<(String, mpsc::UnboundedReceiver<Arrival>)> {
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

pub(crate) async fn wait_notice(
    rx: &mut mpsc::UnboundedReceiver<Arrival>,
    kind: &str,
    instance: &str,
) -> Result<Instant> {
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

pub(crate) async fn latency(size: &Size, rep: &mut Report) -> Result<()> {
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
