//! The generic webhook: the notice JSON (docs/http-api.md#notices), `Idempotency-Key: <dedup_key>` (so
//! at-least-once delivery is exactly-once for the receiver), and, with a
//! configured secret, `X-Wa-Sentinel-Signature: sha256=<hex HMAC-SHA256 of the body>`.

use hmac::{KeyInit, Mac};

use super::http::{DeliveryError, post_bytes};
use super::{Channel, Rendered};
use crate::config::{Language, Secret};
use crate::domain::Notice;

pub struct WebhookChannel {
    client: reqwest::Client,
    url: Secret,
    secret: Option<Secret>,
    lang: Language,
}

impl WebhookChannel {
    pub fn new(client: reqwest::Client, url: Secret, secret: Option<Secret>, lang: Language) -> Self {
        WebhookChannel { client, url, secret, lang }
    }
}

/// `sha256=<lowercase hex>` of HMAC-SHA256(secret, body).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + tag.len() * 2);
    hex.push_str("sha256=");
    for b in tag {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

impl Channel for WebhookChannel {
    async fn send(&self, notice: &Notice, _text: &Rendered) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(&crate::notify::render::payload(notice, self.lang)).expect("JSON serialises");
        let mut headers = vec![("Idempotency-Key", notice.dedup_key.clone())];
        if let Some(s) = &self.secret {
            headers.push(("X-Wa-Sentinel-Signature", signature(s.expose().as_bytes(), &body)));
        }
        post_bytes(&self.client, self.url.expose(), body, &headers).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hmac_sha256_matches_rfc_4231_test_case_2() {
        assert_eq!(
            super::signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
