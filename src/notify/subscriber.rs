//! Delivery of the event stream to a `[[subscribers]]` endpoint: one POST of
//! one event's JSON per outbox row, in order (the worker never lets a row
//! overtake an earlier one of the same subscriber), signed the way payment
//! providers sign webhooks:
//!
//! `X-Wa-Sentinel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`
//!
//! The timestamp inside the MAC lets a receiver refuse replays older than a
//! few minutes; the raw body (not a re-serialisation) is what is signed.

use hmac::{KeyInit, Mac};

use super::channels::{DeliveryError, post_bytes};
use crate::config::{Secret, SubscriberConfig};

/// `t=<t>,v1=<lowercase hex of HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// A receiver's check of [`signature`]: the header parses, its MAC matches
/// the raw body (in constant time), and its time is within `tolerance_s` of
/// `now_s`. The test suite verifies every delivery with it; the docs show
/// the same check in a few lines of Python.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now_s: i64, tolerance_s: i64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = Some(v),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    if (now_s - t).abs() > tolerance_s {
        return false;
    }
    let want = signature(secret, t, body);
    let want_v1 = want.rsplit_once("v1=").map_or("", |(_, h)| h);
    subtle::ConstantTimeEq::ct_eq(want_v1.as_bytes(), v1.as_bytes()).into()
}

/// One subscriber, ready to deliver.
pub struct SubscriberChannel {
    client: reqwest::Client,
    url: Secret,
    secret: Secret,
}

impl SubscriberChannel {
    pub fn new(cfg: &SubscriberConfig, timeout: std::time::Duration) -> Result<SubscriberChannel, DeliveryError> {
        crate::tls::install_crypto();
        let tls = crate::tls::client_config().map_err(DeliveryError::permanent)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(timeout)
            .user_agent(concat!("wa-sentinel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DeliveryError::permanent(format!("cannot build the HTTP client: {e}")))?;
        Ok(SubscriberChannel { client, url: cfg.url.clone(), secret: cfg.secret.clone() })
    }

    /// POST one event (its stored JSON, byte for byte), signed at `now_s`.
    pub async fn send(&self, dedup_key: &str, payload: &str, now_s: i64) -> Result<(), DeliveryError> {
        let body = payload.as_bytes().to_vec();
        let headers = [
            ("X-Wa-Sentinel-Signature", signature(self.secret.expose().as_bytes(), now_s, &body)),
            ("Idempotency-Key", dedup_key.to_string()),
        ];
        post_bytes(&self.client, self.url.expose(), body, &headers).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_tampered_body_or_an_old_time_does_not() {
        let body = br#"{"seq":1,"event":"health_changed"}"#;
        let h = signature(b"s3cret", 1_800_000_000, body);
        assert!(h.starts_with("t=1800000000,v1=") && h.len() == "t=1800000000,v1=".len() + 64, "{h}");
        assert!(verify(b"s3cret", &h, body, 1_800_000_010, 300));
        assert!(!verify(b"s3cret", &h, br#"{"seq":2,"event":"health_changed"}"#, 1_800_000_010, 300));
        assert!(!verify(b"other", &h, body, 1_800_000_010, 300));
        assert!(!verify(b"s3cret", &h, body, 1_800_001_000, 300), "a replay older than the tolerance");
        assert!(!verify(b"s3cret", "v1=abc", body, 1_800_000_000, 300));
    }

    /// The MAC is HMAC-SHA256 over "<t>.<body>", nothing else (a value
    /// computed by another implementation).
    #[test]
    fn the_mac_is_hmac_sha256_of_time_dot_body() {
        // Computed apart: python3 -c 'import hmac,hashlib; print(hmac.new(b"Jefe", b"42.{}", hashlib.sha256).hexdigest())'
        assert_eq!(
            signature(b"Jefe", 42, b"{}"),
            "t=42,v1=180dba890623065f7b45ce89af52812f5dfec8d19f22357bd915726bb20c8be3"
        );
    }
}
