//! The `events` scenario: the event stream delivered to one local
//! subscriber (`[[subscribers]]`) by the real daemon on SQLite.
//!
//! 1. Throughput: the first poll cycle of N instances commits N
//!    `health_changed` events (unknown → connected) at once; their delivery
//!    rate is measured from the first arrival to the last.
//! 2. Delay: then 1 % of the instances change per minute (one drop every
//!    600 ms at 10,000, each reconnected by the daemon): the delay from each
//!    event's commit (its `at`, in milliseconds) to its arrival, p50 and p99.

use std::sync::{Arc, Mutex};

use super::*;

/// One event as the subscriber saw it.
#[derive(Clone, Copy)]
struct Got {
    seq: i64,
    /// The event's commit time and its arrival (Unix ms).
    at_ms: i64,
    arrived_ms: i64,
}

fn unix_ms() -> i64 {
    wa_sentinel::clock::now().0
}

fn at_ms(v: &Value) -> Option<i64> {
    let s = v.get("at")?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis())
}

async fn subscriber() -> Result<(String, Arc<Mutex<Vec<Got>>>)> {
    let got: Arc<Mutex<Vec<Got>>> = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |body: axum::body::Bytes| {
            let g = g.clone();
            async move {
                let arrived_ms = unix_ms();
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if let (Some(seq), Some(at)) = (v.get("seq").and_then(Value::as_i64), at_ms(&v)) {
                    g.lock().expect("events lock").push(Got { seq, at_ms: at, arrived_ms });
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}/events", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, got))
}

pub(super) async fn events(size: &Size, rep: &mut Report) -> Result<()> {
    let n = size.events_instances;
    let sim = simulator(n, SIM_LATENCY).await?;
    let (url, got) = subscriber().await?;
    let dir = tempfile::tempdir()?;
    let db = format!("sqlite://{}/events.db", dir.path().display());
    let extra = format!("[[subscribers]]\nname = \"bench\"\nurl = \"{url}\"\nsecret = \"bench-secret\"\n");
    let cfg = DaemonConfig {
        db_url: &db,
        port: free_port()?,
        sim: &sim,
        schedule: size.poll_schedule,
        sink: None,
        supervisor_extra: &format!(
            "down_after = 1\nsettle_delay = \"0s\"\nconcurrency = {POLL_CONCURRENCY}\nper_provider_concurrency = {POLL_CONCURRENCY}"
        ),
        extra: &extra,
    };
    let daemon = Daemon::spawn(dir.path(), &cfg)?;
    let count = || got.lock().expect("events lock").len();
    // 1. The first cycle's burst.
    let deadline = Instant::now() + Duration::from_secs(600);
    while count() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let burst: Vec<Got> = got.lock().expect("events lock").clone();
    if burst.len() < n {
        rep.failures.push(format!("events: {} of {n} first-cycle events arrived", burst.len()));
        drop(daemon);
        return Ok(());
    }
    let first = burst.iter().map(|g| g.arrived_ms).min().unwrap_or(0);
    let last = burst.iter().map(|g| g.arrived_ms).max().unwrap_or(0);
    let rate = n as f64 / ((last - first).max(1) as f64 / 1000.0);
    rep.row(
        format!("events: delivered per second to one subscriber (a burst of {n})"),
        format!("{rate:.0} /s"),
        "—",
        None,
    );

    // 2. 1 % of the instances per minute.
    let names = names(n);
    let run = size.events_run;
    // (At smoke size, faster: a few changes within the short run.)
    let every = Duration::from_millis((60_000 / (n / 100).max(1)) as u64).min(run / 3);
    let changes = (run.as_millis() / every.as_millis().max(1)) as usize;
    let start = Instant::now();
    for i in 0..changes {
        sim.set_behaviour(&names[(i * 37) % n], Behaviour::ClosedTransient { reason: 428 });
        tokio::time::sleep_until((start + every * (i as u32 + 1)).into()).await;
    }
    // Let the last changes be polled, reconnected and delivered.
    tokio::time::sleep(Duration::from_secs(15)).await;
    drop(daemon);
    let all: Vec<Got> = got.lock().expect("events lock").clone();
    let seqs: Vec<i64> = all.iter().map(|g| g.seq).collect();
    if seqs != (1..=seqs.len() as i64).collect::<Vec<_>>() {
        rep.failures.push("events: the subscriber's sequence has a gap or a repeat".into());
    }
    let mut delays: Vec<f64> = all[burst.len()..].iter().map(|g| (g.arrived_ms - g.at_ms) as f64).collect();
    delays.sort_by(f64::total_cmp);
    if delays.is_empty() {
        rep.failures.push("events: no event after the first cycle".into());
        return Ok(());
    }
    rep.row(
        format!("events: commit → delivery, p50 / p99 ({} events, {n} instances, 1 %/min changing)", delays.len()),
        format!("{:.0} ms / {:.0} ms", percentile(&delays, 50.0), percentile(&delays, 99.0)),
        "—",
        None,
    );
    Ok(())
}
