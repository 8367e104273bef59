//! What the HTTP channels share: one POST with a JSON body, its outcome
//! classified ([`answer_error`]: worth a retry, or never deliverable),
//! `429`/`Retry-After` honoured, and no URL in any error (channel URLs carry
//! secrets: Slack/Discord webhook paths, Telegram bot tokens).

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
    let body = resp.bytes().await.unwrap_or_default();
    Err(answer_error(status.as_u16(), wait, &body))
}

/// How much of a receiver's answer a delivery error keeps (and the log shows).
pub const ANSWER_BYTES: usize = 512;

/// A non-2xx answer as a delivery error. 408, 425, 429 and 5xx say "not now":
/// retried. Any other 4xx says this message will never be accepted (Slack
/// `invalid_blocks`, Discord or Telegram 400 for a text over a limit, a
/// revoked webhook's 404, a wrong bot token's 401): retrying for
/// `delivery_max_age` would only hold every later notice of the notifier
/// back, so it is permanent. Other answers (3xx not followed) are retried.
pub fn answer_error(status: u16, retry_after: Option<Duration>, body: &[u8]) -> DeliveryError {
    let permanent = (400..500).contains(&status) && !matches!(status, 408 | 425 | 429);
    let first = String::from_utf8_lossy(&body[..body.len().min(ANSWER_BYTES)]);
    DeliveryError { detail: format!("HTTP {status}: {first}"), retry_after, permanent }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_not_now_answers_are_retried() {
        for code in [408, 425, 429, 500, 502, 503, 504, 599, 302] {
            assert!(!answer_error(code, None, b"").permanent, "{code} is worth a retry");
        }
        for code in [400, 401, 403, 404, 410, 413, 422] {
            assert!(answer_error(code, None, b"").permanent, "{code} never will be");
        }
    }

    #[test]
    fn the_detail_keeps_the_first_512_bytes_of_the_answer() {
        let body = format!("invalid_blocks{}", "x".repeat(2000));
        let e = answer_error(400, None, body.as_bytes());
        assert_eq!(e.detail, format!("HTTP 400: {}", &body[..ANSWER_BYTES]));
        assert_eq!(answer_error(429, Some(Duration::from_secs(3)), b"").retry_after, Some(Duration::from_secs(3)));
    }
}
