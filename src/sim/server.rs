//! The HTTP core of the WAHA and Z-API simulators ([`super::waha`],
//! [`super::zapi`]): a server on 127.0.0.1:0 that counts every request per
//! (method, path), injects latency, a failure rate (500) and a whole-server
//! outage (503 with an HTML body), hands everything else to a [`SimBackend`],
//! and stops when dropped. It also posts the simulated provider's webhooks.
//!
//! Backend state lives behind std mutexes that are never held across an await.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

/// One request, decoded for a backend.
#[derive(Debug)]
pub struct SimRequest {
    pub method: String,
    /// Path segments, percent-decoded.
    pub segs: Vec<String>,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl SimRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn query(&self, key: &str) -> Option<String> {
        query_param(&self.query, key)
    }

    pub fn segs(&self) -> Vec<&str> {
        self.segs.iter().map(String::as_str).collect()
    }
}

/// A text a simulated instance was asked to send, as the simulator recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMessage {
    pub instance: String,
    /// The recipient exactly as the request named it (`number`, `chatId`, `phone`).
    pub to: String,
    pub text: String,
    /// The message id the simulator answered with.
    pub id: String,
    pub at: crate::domain::Ts,
    /// Z-API: accepted while the instance was not connected, so held in its
    /// queue (Z-API sends such messages when the phone reconnects).
    pub queued: bool,
}

/// What a simulated provider answers.
pub trait SimBackend: Send + Sync + 'static {
    fn handle(&self, req: &SimRequest) -> Response;
}

/// A JSON answer.
pub fn json_reply(status: u16, body: serde_json::Value) -> Response {
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(body)).into_response()
}

/// Lock a backend's state; a panicking test thread must not wedge the server.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug)]
struct Faults {
    latency: Duration,
    failure_rate: f64,
    down: bool,
    calls: HashMap<(String, String), u64>,
    rng: u64,
}

impl Faults {
    /// xorshift64*: deterministic, good enough for a failure rate.
    fn fails(&mut self) -> bool {
        if self.failure_rate <= 0.0 {
            return false;
        }
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        ((self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64) < self.failure_rate
    }
}

struct Core {
    backend: Arc<dyn SimBackend>,
    faults: Mutex<Faults>,
}

/// A spawned axum server (every simulator's): stops gracefully, bounded, on
/// [`Serving::shutdown`], and at once when dropped.
#[derive(Debug)]
pub struct Serving {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Serving {
    pub fn spawn(listener: tokio::net::TcpListener, app: axum::Router) -> Serving {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let graceful = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = graceful.await {
                tracing::warn!(error = %e, "simulator server stopped with an error");
            }
        });
        Serving { stop: Some(stop), task }
    }

    /// Stop serving and wait for the server task; graceful shutdown can wait
    /// on idle keep-alive connections, so at most 2 s.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.task).await;
        self.task.abort();
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }
}

/// The running server. Dropping it stops serving.
pub struct SimServer {
    base_url: String,
    core: Arc<Core>,
    client: reqwest::Client,
    serving: Serving,
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl SimServer {
    /// Bind 127.0.0.1:0 and serve `backend` until dropped.
    pub async fn start(backend: Arc<dyn SimBackend>) -> std::io::Result<SimServer> {
        crate::tls::install_crypto();
        let core = Arc::new(Core {
            backend,
            faults: Mutex::new(Faults {
                latency: Duration::ZERO,
                failure_rate: 0.0,
                down: false,
                calls: HashMap::new(),
                rng: 0x9E37_79B9_7F4A_7C15,
            }),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let serving = Serving::spawn(listener, axum::Router::new().fallback(serve_one).with_state(core.clone()));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(SimServer { base_url, core, client, serving })
    }

    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn set_latency(&self, latency: Duration) {
        lock(&self.core.faults).latency = latency;
    }

    /// Probability in [0, 1] that a request answers 500.
    pub fn set_failure_rate(&self, rate: f64) {
        lock(&self.core.faults).failure_rate = rate.clamp(0.0, 1.0);
    }

    /// Whole-server outage: every request answers 503 with an HTML body.
    pub fn set_down(&self, down: bool) {
        lock(&self.core.faults).down = down;
    }

    /// Requests seen for (method, raw path), e.g. `("POST", "/api/sessions/a/restart")`.
    pub fn calls(&self, method: &str, path: &str) -> u64 {
        lock(&self.core.faults).calls.get(&(method.to_string(), path.to_string())).copied().unwrap_or(0)
    }

    /// Requests seen with this method, any path.
    pub fn calls_with(&self, method: &str) -> u64 {
        lock(&self.core.faults).calls.iter().filter(|((m, _), _)| m == method).map(|(_, n)| n).sum()
    }

    pub fn total_calls(&self) -> u64 {
        lock(&self.core.faults).calls.values().sum()
    }

    pub fn reset_calls(&self) {
        lock(&self.core.faults).calls.clear();
    }

    /// POST `body` (JSON) to `url` with `headers`; the receiver's status.
    pub async fn post(&self, url: &str, headers: &[(String, String)], body: Vec<u8>) -> Result<u16, String> {
        let mut rb = self.client.post(url).header(header::CONTENT_TYPE, "application/json").body(body);
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        let resp = rb.send().await.map_err(|e| format!("webhook POST failed: {}", e.without_url()))?;
        Ok(resp.status().as_u16())
    }

    /// Stop serving and wait (bounded) for the server task.
    pub async fn shutdown(self) {
        self.serving.shutdown().await;
    }
}

/// The injected latency, then the whole-server outage page (503, HTML) if down.
pub async fn delay_or_outage(latency: Duration, down: bool) -> Option<Response> {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    down.then(|| {
        Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header(header::CONTENT_TYPE, "text/html")
            .body(Body::from("<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"))
            .unwrap_or_default()
    })
}

async fn serve_one(State(core): State<Arc<Core>>, req: Request) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
    let (latency, down, fail) = {
        let mut f = lock(&core.faults);
        *f.calls.entry((method.clone(), path.clone())).or_insert(0) += 1;
        let fail = f.fails();
        (f.latency, f.down, fail)
    };
    if let Some(outage) = delay_or_outage(latency, down).await {
        return outage;
    }
    if fail {
        return json_reply(500, serde_json::json!({"statusCode": 500, "message": "Internal server error"}));
    }
    let segs = path.split('/').filter(|s| !s.is_empty()).map(pct_decode).collect();
    core.backend.handle(&SimRequest { method, segs, query, headers, body })
}

/// Percent-decode a path segment or query value (lossy on invalid UTF-8).
pub(super) fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// The percent-decoded value of `key` in a query string (`+` is a space).
pub(super) fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (pct_decode(k) == key).then(|| pct_decode(&v.replace('+', " ")))
    })
}
