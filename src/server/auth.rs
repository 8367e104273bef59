//! Credentials at the HTTP edge, all compared in constant time: the webhook
//! path token, Evolution v2's optional `Authorization: Bearer` header (a static
//! token, or an HS256 JWT signed with the instance's `jwt_key`), and the admin
//! token (Bearer for the API, Basic or a cookie for the status page).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{KeyInit, Mac};

use crate::config::Secret;
use crate::domain::Ts;

/// `Authorization: Bearer <token>` → the token.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, rest) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// `Authorization: Basic base64(user:password)` → the password.
pub fn basic_password(header: Option<&str>) -> Option<String> {
    let h = header?.trim();
    let (scheme, rest) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    text.split_once(':').map(|(_, p)| p.to_string())
}

/// Verify an HS256 JWT: signature with `key`, `alg` = HS256, `exp` (if any) not passed.
pub fn verify_hs256(token: &str, key: &Secret, now: Ts) -> bool {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(header) = URL_SAFE_NO_PAD.decode(h) else { return false };
    let Ok(header) = serde_json::from_slice::<serde_json::Value>(&header) else { return false };
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return false;
    }
    let Ok(sig) = URL_SAFE_NO_PAD.decode(s) else { return false };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.expose().as_bytes()).expect("any key length");
    mac.update(h.as_bytes());
    mac.update(b".");
    mac.update(p.as_bytes());
    if mac.verify_slice(&sig).is_err() {
        return false;
    }
    let Ok(payload) = URL_SAFE_NO_PAD.decode(p) else { return false };
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(&payload) else { return false };
    match payload.get("exp").and_then(|e| e.as_i64()) {
        Some(exp) => exp * 1000 > now.0,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(key: &str, payload: &str) -> String {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let p = URL_SAFE_NO_PAD.encode(payload.as_bytes());
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("{h}.{p}").as_bytes());
        format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn hs256_tokens_like_evolution_signs_them() {
        let key = Secret::literal("shared-hs256-secret");
        let now = Ts(1_700_000_000_000);
        let good =
            sign("shared-hs256-secret", r#"{"iat":1700000000,"exp":1700000600,"app":"evolution","action":"webhook"}"#);
        assert!(verify_hs256(&good, &key, now));
        assert!(!verify_hs256(&good, &key, Ts(1_700_000_601_000)), "expired");
        assert!(!verify_hs256(&sign("other", r#"{"exp":1700000600}"#), &key, now), "wrong key");
        assert!(!verify_hs256("a.b", &key, now));
        assert!(!verify_hs256("", &key, now));
    }

    #[test]
    fn header_parsing() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(basic_password(Some(&format!("Basic {}", STANDARD.encode("admin:s3cret")))), Some("s3cret".into()));
        assert_eq!(basic_password(Some("Basic !!")), None);
    }
}
