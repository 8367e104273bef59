//! `wa-sentinel run`: the long-running daemon.
//!
//! Start-up: open and migrate the database; on SQLite take the single-process
//! lock; bind the listener; start a *generation* (outbox worker, supervisor,
//! scheduler) for the current config; tell systemd `READY=1`. On PostgreSQL a
//! lease decides which replica's scheduler actually supervises.
//!
//! SIGHUP reloads the config: a valid one starts a new generation and swaps
//! it into the receiver (in-flight requests finish on the old one); an invalid
//! one is rejected with a log line and the old generation keeps running.
//! `database.url`, `server.listen` and `server.admin_listen` changes need a
//! restart (logged). With `server.admin_listen` a second listener serves the
//! admin surface and the first only webhooks and health.
//!
//! SIGTERM/SIGINT: stop accepting webhooks and let in-flight requests finish,
//! stop ticking, let in-flight provider calls finish within a grace period
//! (their state is committed first, so abandoning them is safe), flush the
//! coalesced `last_webhook_at`, give one last chance to the outbox, exit 0.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::notify::worker::{DeliveryPolicy, OutboxWorker};
use crate::server::Surface;
use crate::store::{Backend, Store, StoreError};
use crate::supervisor::scheduler::{Scheduler, Ticks};
use crate::supervisor::{Supervisor, SupervisorError};

/// How long shutdown waits for in-flight requests, and again for provider calls.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The supervisor lease period on PostgreSQL.
pub const LEASE_TTL: Duration = Duration::from_secs(15);

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
    #[error("{0}")]
    AlreadyRunning(String),
}

/// Signals from the outside world.
pub struct Signals {
    /// Cancelled on SIGTERM or SIGINT.
    pub shutdown: CancellationToken,
    /// One message per SIGHUP.
    pub reload: mpsc::Receiver<()>,
}

/// Listen for SIGTERM, SIGINT and SIGHUP.
pub fn signals() -> Signals {
    let shutdown = CancellationToken::new();
    let (tx, reload) = mpsc::channel(4);
    let t = shutdown.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM received"); break; }
                _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT received"); break; }
                _ = hup.recv() => { let _ = tx.try_send(()); }
            }
        }
        t.cancel();
    });
    Signals { shutdown, reload }
}

/// A token cancelled on SIGTERM or SIGINT (commands that do not reload).
pub fn shutdown_on_signals() -> CancellationToken {
    signals().shutdown
}

/// Everything that a config reload replaces.
struct Generation {
    sup: Arc<Supervisor>,
    outbox: OutboxWorker,
    outbox_stop: CancellationToken,
    outbox_task: tokio::task::JoinHandle<()>,
    sched: Scheduler,
    /// Reads the application's database (`[tenants]`), when configured.
    tenant_source: CancellationToken,
}

impl Generation {
    async fn start(cfg: Config, store: &Store, ticks: &Arc<Ticks>) -> Result<Generation, DaemonError> {
        let cfg = Arc::new(cfg);
        let outbox =
            OutboxWorker::new(store.clone(), &cfg, DeliveryPolicy::from_config(&cfg)).map_err(DaemonError::Notifier)?;
        let sup = Supervisor::new(cfg.clone(), store.clone(), Some(outbox.clone()), Arc::new(crate::clock::now))?;
        sup.attach_ticks(ticks.clone());
        // The receiver must know every instance before it takes over.
        sup.refresh_index().await?;
        let outbox_stop = CancellationToken::new();
        let outbox_task = tokio::spawn(outbox.clone().run(outbox_stop.clone()));
        let sched = match Scheduler::start(sup.clone(), ticks.clone()).await {
            Ok(s) => s,
            Err(e) => {
                outbox_stop.cancel();
                return Err(DaemonError::Scheduler(e.to_string()));
            }
        };
        let tenant_source = CancellationToken::new();
        if let Some(src) = cfg.tenants.source.clone() {
            tokio::spawn(crate::supervisor::tenant_source::run(sup.clone(), src, tenant_source.clone()));
        }
        Ok(Generation { sup, outbox, outbox_stop, outbox_task, sched, tenant_source })
    }

    /// Stop ticking, let in-flight provider calls finish, stop delivering.
    async fn stop(self) {
        self.tenant_source.cancel();
        self.sched.shutdown().await;
        if !self.sup.drain(SHUTDOWN_GRACE).await {
            tracing::warn!("in-flight provider calls did not finish within the grace period; their state is committed");
        }
        self.outbox_stop.cancel();
        let _ = self.outbox_task.await;
        if let Err(e) = tokio::time::timeout(Duration::from_secs(5), self.outbox.drain(crate::clock::now)).await {
            tracing::warn!(error = %e, "final outbox round timed out; pending notices stay queued");
        }
    }
}

/// Run until `signals.shutdown`; `config_path` is re-read on SIGHUP.
pub async fn run(cfg: Config, mut signals: Signals, config_path: Option<PathBuf>) -> Result<(), DaemonError> {
    crate::tls::install_crypto();
    let store = Store::connect(&cfg.database.url, cfg.database.max_connections).await?;
    let _sqlite_lock = match store.sqlite_path() {
        Some(path) => Some(crate::lease::lock_sqlite(&path).map_err(DaemonError::AlreadyRunning)?),
        None => None,
    };
    store.migrate().await?;
    tracing::info!(database = %crate::config::redact_url_password(&cfg.database.url), "database ready");

    let ticks = Arc::new(Ticks::default());
    // On SQLite this process supervises (it holds the file lock); on PostgreSQL
    // the lease task below decides.
    ticks.lead_all.store(store.backend() == Backend::Sqlite, Ordering::SeqCst);
    let (db_url, listen, admin_listen) = (cfg.database.url.clone(), cfg.server.listen, cfg.server.admin_listen);
    let admin = cfg.server.admin_token.is_some();
    // The recorder first: the poll keeps its metric handles from its first call.
    crate::server::metrics_handle();
    let mut current = Generation::start(cfg, &store, &ticks).await?;

    let bind = |addr: std::net::SocketAddr| async move {
        tokio::net::TcpListener::bind(addr).await.map_err(|e| DaemonError::Listen(format!("{addr}: {e}")))
    };
    let listener = bind(listen).await?;
    let addr = listener.local_addr().map_err(|e| DaemonError::Listen(e.to_string()))?;
    let admin_listener = match admin_listen {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let stop_http = CancellationToken::new();
    let stop_flush = CancellationToken::new();
    let state = crate::server::start_background(current.sup.clone(), ticks.clone(), stop_flush.clone());
    // With `server.admin_listen`, the public listener serves only webhooks and
    // health; the admin surface is served on its own address.
    let mut http = Vec::new();
    let page_addr = match admin_listener {
        Some(admin_l) => {
            let admin_addr = admin_l.local_addr().map_err(|e| DaemonError::Listen(e.to_string()))?;
            http.push(tokio::spawn(crate::server::serve_surface(
                listener,
                state.clone(),
                Surface::Public,
                stop_http.clone(),
            )));
            http.push(tokio::spawn(crate::server::serve_surface(
                admin_l,
                state.clone(),
                Surface::Admin,
                stop_http.clone(),
            )));
            tracing::info!(%addr, %admin_addr, "listening: webhooks and health on addr, the admin surface on admin_addr");
            admin_addr
        }
        None => {
            http.push(tokio::spawn(crate::server::serve_surface(
                listener,
                state.clone(),
                Surface::All,
                stop_http.clone(),
            )));
            tracing::info!(%addr, "listening");
            addr
        }
    };
    if admin {
        tracing::info!("status page: http://{page_addr}/ (sign in with the admin token)");
    }

    let stop_lease = CancellationToken::new();
    let lease_task = match store.backend() {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let holder = format!(
                "{}:{}:{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into()),
                std::process::id(),
                uuid::Uuid::now_v7().simple()
            );
            let st = state.clone();
            let refresh = move |followed: Vec<String>| {
                let sup = st.sup();
                tokio::spawn(async move {
                    if let Err(e) = sup.refresh_index_of(&followed).await {
                        tracing::warn!(error = %e, "cannot refresh the instance index");
                    }
                })
            };
            let st = state.clone();
            let local = move || crate::lease::Local::of(st.sup().config());
            // Retirement by configuration leaves out this replica's own
            // published view: its current config speaks for it.
            let _ = ticks.holder.set(holder.clone());
            Some(tokio::spawn(crate::lease::run(
                store.clone(),
                holder,
                LEASE_TTL,
                ticks.clone(),
                local,
                stop_lease.clone(),
                refresh,
            )))
        }
    };
    let started = crate::clock::now().0;
    crate::systemd::spawn_watchdog(ticks.clone(), started, signals.shutdown.clone());
    crate::systemd::ready(&format!("listening on {addr}"));
    tracing::info!(providers = current.sup.config().providers.len(), "wa-sentinel running");

    loop {
        tokio::select! {
            _ = signals.shutdown.cancelled() => break,
            Some(()) = signals.reload.recv() => {
                crate::systemd::reloading();
                let Some(path) = &config_path else {
                    tracing::warn!("SIGHUP ignored: no config file to reload");
                    continue;
                };
                match crate::config::load(Some(path)) {
                    Err(e) => tracing::error!(problems = %e.to_string().replace('\n', " "), "reload rejected: the new config is invalid; keeping the old one"),
                    Ok(new) => {
                        if new.database.url != db_url || new.server.listen != listen || new.server.admin_listen != admin_listen {
                            tracing::warn!("database.url, server.listen and server.admin_listen changes take effect only after a restart");
                        }
                        match Generation::start(new, &store, &ticks).await {
                            Ok(next) => {
                                state.replace(next.sup.clone());
                                crate::server::flush(&current.sup).await;
                                let old = std::mem::replace(&mut current, next);
                                old.stop().await;
                                tracing::info!(providers = current.sup.config().providers.len(), "config reloaded");
                            }
                            Err(e) => tracing::error!(error = %e, "reload rejected: cannot start with the new config; keeping the old one"),
                        }
                    }
                }
                crate::systemd::ready("running (config reloaded)");
            }
        }
    }

    crate::systemd::stopping();
    tracing::info!("shutting down: no new webhooks; finishing in-flight requests");
    stop_http.cancel();
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    for listener in http {
        match tokio::time::timeout_at(deadline, listener).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "listener stopped with an error"),
            Err(_) => tracing::warn!("in-flight requests did not finish within the grace period"),
            _ => {}
        }
    }
    stop_flush.cancel();
    crate::server::flush(&current.sup).await;
    // Stop supervising before giving up the lease, so two replicas never poll at once.
    current.stop().await;
    stop_lease.cancel();
    if let Some(t) = lease_task {
        let _ = t.await;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}
