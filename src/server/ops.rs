//! `/healthz` (the process answers), `/readyz` (database reachable, migrations
//! current, scheduler ticking; what is wrong in operator words, details in
//! the log) and `/metrics` (Prometheus text, docs/operations.md#metrics).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::supervisor::scheduler::STALL_MS;

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ticks older than this make the daemon unready (the poll schedule is at most
/// a few minutes in any sane config; followers tick too).
const TICK_STALE_MS: i64 = 5 * 60_000;

/// What keeps the daemon from being ready (empty: ready), and one line per
/// provider (reported, never a reason to be unready).
async fn readiness(app: &AppState) -> (Vec<String>, String) {
    let sup = app.sup();
    let store = sup.store();
    let mut problems = Vec::new();
    // Operator words only: the driver's error (hostnames, SQL) goes to the log.
    if let Err(e) = store.ping().await {
        tracing::warn!(error = %e, "not ready: database unreachable");
        problems.push("database unreachable".to_string());
    } else if !store.migrations_current().await.unwrap_or(false) {
        problems.push("database migrations are not current: run `wa-sentinel migrate`".to_string());
    }
    let now = sup.now().0;
    let last = app.ticks.last_tick.load(Ordering::Relaxed);
    let since = if last == 0 { now - app.started } else { now - last };
    if since > TICK_STALE_MS {
        problems.push(format!("scheduler has not ticked for {}s", since / 1000));
    }
    if app.ticks.wedged(now, STALL_MS) {
        problems.push("every running poll cycle has been stuck for 30 minutes".to_string());
    }
    // One line per provider: a provider that does not answer is reported here
    // (and in /metrics), but never makes wa-sentinel itself unready.
    let mut lines = String::new();
    for (name, p) in app.ticks.all_providers() {
        let started = p.started.load(Ordering::Relaxed);
        let slow = if started != 0 && now - started > TICK_STALE_MS {
            format!("; poll cycle running for {}s", (now - started) / 1000)
        } else {
            String::new()
        };
        let state = p.state();
        let state = if state.is_empty() { "not polled yet".to_string() } else { state };
        lines.push_str(&format!("provider {name}: {state}{slow}\n"));
    }
    (problems, lines)
}

pub async fn readyz(State(app): State<AppState>) -> Response {
    let (problems, lines) = readiness(&app).await;
    if problems.is_empty() {
        (StatusCode::OK, format!("ready\n{lines}")).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n{lines}", problems.join("; "))).into_response()
    }
}

pub async fn metrics(State(app): State<AppState>) -> Response {
    if let Ok(n) = app.sup().store().outbox_count("pending").await {
        metrics::gauge!("wa_sentinel_outbox_pending").set(n as f64);
    }
    // Readiness as a series, so that an alert does not need a probe of its own.
    let (problems, _) = readiness(&app).await;
    metrics::gauge!("wa_sentinel_ready").set(if problems.is_empty() { 1.0 } else { 0.0 });
    let body = app.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
