//! What the HTTP channels share: one POST with a JSON body, its outcome
//! classified, `429`/`Retry-After` honoured, and no URL in any error (channel
//! URLs carry secrets: Slack/Discord webhook paths, Telegram bot tokens).

use std::time::Duration;

/// A delivery that did not work; the outbox worker decides when to retry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{detail}")]
pub struct DeliveryError {
    pub detail: String,
    /// The receiver asked us to wait this long (HTTP 429 / 503 `Retry-After`).
    pub retry_after: Option<Duration>,
    /// Retrying cannot help (e.g. the channel cannot even be built).
    pub permanent: bool,
}

impl DeliveryError {
    pub fn transient(detail: impl Into<String>) -> Self {
        DeliveryError { detail: detail.into(), retry_after: None, permanent: false }
    }

    pub fn permanent(detail: impl Into<String>) -> Self {
        DeliveryError { detail: detail.into(), retry_after: None, permanent: true }
    }
}

/// `Retry-After`: delta-seconds or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = at.timestamp() - chrono::Utc::now().timestamp();
    Some(Duration::from_secs(wait.max(0) as u64))
}

/// POST `body` as JSON; 2xx is success.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    headers: &[(&str, String)],
) -> Result<(), DeliveryError> {
    let bytes = serde_json::to_vec(body).expect("JSON values serialise");
    post_bytes(client, url, bytes, headers).await
}

pub async fn post_bytes(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> Result<(), DeliveryError> {
    let mut req = client.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.map_err(|e| DeliveryError::transient(e.without_url().to_string()))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let wait = retry_after(resp.headers());
    let text = resp.text().await.unwrap_or_default();
    let snippet: String = text.chars().take(200).collect();
    Err(DeliveryError { detail: format!("HTTP {status}: {snippet}"), retry_after: wait, permanent: false })
}
