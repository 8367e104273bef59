//! Request bodies on the admin surface (`/api/*`, `/login`, the status
//! page's action forms): read only after the credential was judged (the
//! handlers check it first), and never more than [`ADMIN_MAX_BODY`] — these
//! routes take a few fields, so a larger body is refused with 413 before it
//! is read (by its `Content-Length`) or as soon as it grows past the limit.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};

/// The largest body an admin route reads: its forms and JSON bodies are a
/// few dozen bytes.
pub const ADMIN_MAX_BODY: usize = 16 * 1024;

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than 16 KiB, the most an admin route reads")]
    TooLarge,
    #[error("the request body could not be read")]
    Unreadable,
}

/// Does the request announce a body over `max` bytes?
pub fn announces_more_than(headers: &HeaderMap, max: usize) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > max as u64)
}

/// The whole body, at most `max` bytes.
pub async fn read_limited(headers: &HeaderMap, body: Body, max: usize) -> Result<Bytes, BodyError> {
    if announces_more_than(headers, max) {
        return Err(BodyError::TooLarge);
    }
    match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, max)).await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Unreadable),
    }
}

/// Is the request's content type `application/json` (parameters allowed)?
pub fn is_json(headers: &HeaderMap) -> bool {
    content_type_is(headers, "application/json")
}

/// Is the request's content type `application/x-www-form-urlencoded`?
pub fn is_form(headers: &HeaderMap) -> bool {
    content_type_is(headers, "application/x-www-form-urlencoded")
}

fn content_type_is(headers: &HeaderMap, want: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(want))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_and_announced_lengths() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h) && !is_form(&h) && !announces_more_than(&h, 1));
        h.insert(header::CONTENT_TYPE, "Application/JSON; charset=utf-8".parse().unwrap());
        assert!(is_json(&h) && !is_form(&h));
        h.insert(header::CONTENT_LENGTH, "16385".parse().unwrap());
        assert!(announces_more_than(&h, ADMIN_MAX_BODY));
        h.insert(header::CONTENT_LENGTH, "16384".parse().unwrap());
        assert!(!announces_more_than(&h, ADMIN_MAX_BODY));
    }
}
