//! `wa-sentinel run`: the long-running daemon. Opens and migrates the
//! database, starts the outbox worker, the supervisor and its scheduler, and
//! runs until the shutdown token fires; then stops ticking, lets in-flight
//! provider calls finish within a grace period (their state is already
//! committed, and undelivered notices wait in the outbox), and exits.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::notify::worker::{DeliveryPolicy, OutboxWorker};
use crate::store::{Store, StoreError};
use crate::supervisor::scheduler::{Scheduler, Ticks};
use crate::supervisor::{Supervisor, SupervisorError};

/// How long shutdown waits for in-flight provider calls.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    #[error("cannot build a notifier: {0}")]
    Notifier(String),
    #[error("cannot start the scheduler: {0}")]
    Scheduler(String),
    #[error("cannot listen on {0} (server.listen): is another process using it?")]
    Listen(String),
}

/// Run until `shutdown` is cancelled.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<(), DaemonError> {
    crate::tls::install_crypto();
    let cfg = Arc::new(cfg);
    let store = Store::connect(&cfg.database.url, cfg.database.max_connections).await?;
    store.migrate().await?;
    tracing::info!(database = %crate::config::redact_url_password(&cfg.database.url), "database ready");

    let outbox =
        OutboxWorker::new(store.clone(), &cfg, DeliveryPolicy::from_config(&cfg)).map_err(DaemonError::Notifier)?;
    let outbox_task = tokio::spawn(outbox.clone().run(shutdown.child_token()));

    let sup = Supervisor::new(cfg.clone(), store.clone(), Some(outbox.clone()), Arc::new(crate::clock::now))?;
    let ticks = Arc::new(Ticks::default());
    ticks.leader.store(true, Ordering::Relaxed);
    let listener = tokio::net::TcpListener::bind(cfg.server.listen)
        .await
        .map_err(|e| DaemonError::Listen(format!("{}: {e}", cfg.server.listen)))?;
    let addr = listener.local_addr().map_err(|e| DaemonError::Listen(e.to_string()))?;
    // The listener stops first on shutdown; the flusher last, after in-flight requests.
    let stop_http = CancellationToken::new();
    let stop_flush = CancellationToken::new();
    let state = crate::server::start_background(sup.clone(), ticks.clone(), stop_flush.clone());
    let http = tokio::spawn(crate::server::serve(listener, state, stop_http.clone()));
    tracing::info!(%addr, "listening");
    if cfg.server.admin_token.is_some() {
        tracing::info!("status page: http://{addr}/ (sign in with the admin token)");
    }
    let sched =
        Scheduler::start(sup.clone(), ticks.clone()).await.map_err(|e| DaemonError::Scheduler(e.to_string()))?;
    tracing::info!(
        providers = cfg.providers.len(),
        notifiers = cfg.notifiers.len(),
        poll = %cfg.supervisor.poll_schedule,
        "wa-sentinel running"
    );

    shutdown.cancelled().await;
    tracing::info!("shutting down: no new webhooks; finishing in-flight requests");
    stop_http.cancel();
    match tokio::time::timeout(SHUTDOWN_GRACE, http).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "listener stopped with an error"),
        Err(_) => tracing::warn!("in-flight requests did not finish within the grace period"),
        _ => {}
    }
    stop_flush.cancel();
    crate::server::flush(&sup).await;
    sched.shutdown().await;
    if !sup.drain(SHUTDOWN_GRACE).await {
        tracing::warn!("in-flight provider calls did not finish within the grace period; their state is committed");
    }
    let _ = outbox_task.await;
    // One last delivery round for notices committed during the drain.
    if let Err(e) = tokio::time::timeout(Duration::from_secs(5), outbox.drain(crate::clock::now)).await {
        tracing::warn!(error = %e, "final outbox round timed out; pending notices stay queued");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// A token cancelled on SIGTERM or SIGINT.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        }
        t.cancel();
    });
    token
}
