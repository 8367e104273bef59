//! The demo's stand-ins for the SaaS application: a backend that takes the
//! notice JSON of a `webhook` notifier (and hands on the re-pair link it
//! carries), and an event-stream subscriber that checks each signature and
//! prints the event.

use super::*;

/// The demo's backend: takes the notice JSON of the `webhook` notifier and
/// hands on the re-pair link of `logged-out-1`'s down notice. Returns its URL.
pub(super) async fn backend(
    links: tokio::sync::mpsc::Sender<String>,
    stop: CancellationToken,
) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}/notices", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/notices",
        axum::routing::post(move |body: axum::body::Bytes| {
            let links = links.clone();
            async move {
                let n: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if n["instance"] == "logged-out-1"
                    && let Some(url) = n["pair_url"].as_str()
                {
                    let _ = links.try_send(url.to_string());
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
    });
    Ok(url)
}

/// A SaaS application's endpoint, as `[[subscribers]]` posts to it: each
/// event's signature is checked, and the event shown on one line.
pub(super) async fn console_subscriber(
    secret: String,
    stop: CancellationToken,
) -> std::io::Result<std::net::SocketAddr> {
    use axum::http::{HeaderMap, StatusCode};
    let app = axum::Router::new().route(
        "/wa-sentinel/events",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let secret = secret.clone();
            async move {
                let sig = headers.get("x-wa-sentinel-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
                let now_s = crate::clock::now().0 / 1000;
                if !crate::notify::subscriber::verify(secret.as_bytes(), sig, body.as_bytes(), now_s, 300) {
                    println!("EVENT refused: bad signature");
                    return StatusCode::UNAUTHORIZED;
                }
                if let Ok(e) = serde_json::from_str::<serde_json::Value>(&body) {
                    let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
                    let change = match s("event").as_str() {
                        "health_changed" | "tenant_changed" => format!("{} → {}", s("from"), s("to")),
                        "outage_opened" => format!("cause {}", s("cause")),
                        "outage_closed" => format!("recovered by {}", s("recovered_by")),
                        _ => String::new(),
                    };
                    println!("EVENT #{} {} {}/{} {change}", e["seq"], s("event"), s("provider"), s("instance"));
                }
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    });
    Ok(addr)
}
