//! The HTTP surface (docs/http-api.md): provider webhooks, health and readiness,
//! Prometheus metrics, the admin JSON API, the status page and the public
//! re-pair page ([`pair_page`]) — on one listener, or split by [`Surface`]
//! between a public listener and `server.admin_listen`. [`router`] builds the routes; [`serve_surface`] runs
//! them until the shutdown future resolves, letting in-flight requests finish.

mod admin_access;
mod api;
mod application;
pub mod auth;
pub mod body;
mod deliveries;
mod html;
mod instance_page;
pub mod login;
mod ops;
mod pair_html;
mod pair_links_html;
pub mod pair_page;
mod status_page;
mod uptime;
pub mod webhooks;

pub use api::instance_json;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::supervisor::Supervisor;
use crate::supervisor::scheduler::Ticks;

/// The parts a config reload replaces together.
pub struct Core {
    pub sup: Arc<Supervisor>,
    pub writer: mpsc::Sender<webhooks::WriteRequest>,
    /// The webhook hot path's per-provider table (of this configuration).
    pub routes: webhooks::Routes,
}

impl Core {
    /// A supervisor with its own writer task (ends when the last sender is dropped).
    pub fn new(sup: Arc<Supervisor>) -> Core {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(webhooks::writer(sup.clone(), rx));
        let routes = webhooks::Routes::new(sup.config());
        Core { sup, writer: tx, routes }
    }
}

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    core: Arc<ArcSwap<Core>>,
    /// Failed admin sign-ins per client address (kept across reloads).
    pub guard: Arc<login::LoginGuard>,
    pub ticks: Arc<Ticks>,
    pub metrics: Option<PrometheusHandle>,
    /// When the process started (Unix ms), for readiness before the first tick.
    pub started: i64,
    /// Webhook deliveries already processed, by request id (kept across reloads).
    pub deliveries: Arc<deliveries::RecentDeliveries>,
    /// The re-pair page's QR reads and pairing-code limits (kept across reloads).
    pub pair: Arc<pair_page::PairState>,
}

/// Install the Prometheus recorder once per process; later calls get the same handle.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
            Ok(h) => {
                crate::metrics_catalog::describe();
                Some(h)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot install the metrics recorder; /metrics will be empty");
                None
            }
        })
        .clone()
}

impl AppState {
    /// The current supervisor (replaced by a config reload).
    pub fn sup(&self) -> Arc<Supervisor> {
        self.core.load().sup.clone()
    }

    /// The current core whole (one reference for a request's duration).
    pub fn core(&self) -> Arc<Core> {
        self.core.load_full()
    }

    /// Swap in a reloaded supervisor; requests already running finish on the old one.
    pub fn replace(&self, sup: Arc<Supervisor>) {
        self.core.store(Arc::new(Core::new(sup)));
    }
}

/// Start the writer task and the `last_webhook_at` flusher; returns the state
/// for the router. The flusher ends when `shutdown` fires, after one more flush.
pub fn start_background(sup: Arc<Supervisor>, ticks: Arc<Ticks>, shutdown: CancellationToken) -> AppState {
    let metrics = metrics_handle();
    let state = AppState {
        core: Arc::new(ArcSwap::from_pointee(Core::new(sup))),
        guard: Arc::new(login::LoginGuard::default()),
        ticks,
        metrics,
        started: crate::clock::now().0,
        deliveries: Arc::default(),
        pair: Arc::default(),
    };
    let st = state.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = shutdown.cancelled() => {
                    flush(&st.sup()).await;
                    break;
                }
            }
            flush(&st.sup()).await;
        }
    });
    state
}

/// Write coalesced `last_webhook_at` values in one batch.
pub async fn flush(sup: &Supervisor) {
    let dirty = sup.index().take_dirty();
    if dirty.is_empty() {
        return;
    }
    let rows: Vec<(String, crate::domain::Ts)> = dirty.iter().map(|e| (e.id.clone(), e.last_webhook())).collect();
    if let Err(e) = sup.store().flush_last_webhooks(&rows).await {
        tracing::warn!(error = %e, n = rows.len(), "cannot flush last_webhook_at; will retry");
        // Mark them dirty again so the next round retries (no lookup needed).
        for (entry, (_, t)) in dirty.iter().zip(&rows) {
            entry.touch(*t);
        }
    }
}

/// Which routes a listener serves. With `server.admin_listen` the public
/// listener (behind the reverse proxy) serves only what providers and probes
/// need, and the admin surface lives on an address of its own (loopback, a
/// VPN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Everything on one listener (no `admin_listen`).
    All,
    /// `/webhooks/*`, `/pair/*` (re-pair links: customers are not operators), `/healthz`, `/readyz`.
    Public,
    /// `/`, `/instances/*`, `/login`, `/status.css`, `/api/*`, `/metrics`, and `/healthz`, `/readyz`.
    Admin,
}

/// The router of every route.
pub fn app(state: AppState) -> Router {
    router(state, Surface::All)
}

/// The router of one surface.
pub fn router(state: AppState, surface: Surface) -> Router {
    let mut r = Router::new().route("/healthz", get(ops::healthz)).route("/readyz", get(ops::readyz));
    if surface != Surface::Admin {
        // The webhook handlers read their bodies themselves, after the token
        // check, bounded by `server.max_body` (reloadable).
        r = r
            .route("/webhooks/{provider}/{token}", post(webhooks::receive_plain))
            .route("/webhooks/{provider}/{token}/{*event}", post(webhooks::receive_event))
            .merge(pair_page::routes());
    }
    if surface != Surface::Public {
        r = r
            .route("/metrics", get(ops::metrics))
            .merge(api::routes())
            .merge(application::routes())
            .merge(admin_access::routes())
            .merge(status_page::routes())
            .merge(instance_page::routes());
    }
    r.with_state(state)
}

/// Serve every route until `shutdown` fires; in-flight requests finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_surface(listener, state, Surface::All, shutdown).await
}

/// Serve one surface until `shutdown` fires; in-flight requests finish first.
pub async fn serve_surface(
    listener: tokio::net::TcpListener,
    state: AppState,
    surface: Surface,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state, surface).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
