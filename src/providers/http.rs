//! The HTTP plumbing shared by the provider clients, and [`classify`]: the one
//! place where an HTTP outcome becomes `Ok(json)` or an [`ErrorClass`].
//!
//! Rules: connect error, timeout → `Unreachable`; 5xx → `ServerError`;
//! 401/403 → `Unauthorized`; 404 → `InstanceNotFound` (except Express's
//! "Cannot GET /x" route miss, which means we speak the wrong API version →
//! `BadResponse`); HTML, empty, unparsable or truncated bodies →
//! `BadResponse`; a 2xx whose JSON has `"error": true` → a failure
//! (`BadResponse` unless its message says "not found" / "unauthorized");
//! Evolution 2.4 `503 LICENSE_REQUIRED` → `Unlicensed`.

use std::time::Duration;

use serde_json::Value;

use super::{ErrorClass, ProviderError, install_crypto, truncate};

/// One provider's HTTP client: base URL plus a pooled `reqwest::Client`.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    base: reqwest::Url,
}

impl Http {
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, ProviderError> {
        install_crypto();
        let base = reqwest::Url::parse(base_url)
            .map_err(|e| ProviderError::new(ErrorClass::BadResponse, format!("invalid base_url: {e}")))?;
        let tls = crate::tls::client_config().map_err(|e| ProviderError::new(ErrorClass::Unreachable, e))?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            // A provider API does not redirect; following redirects would also
            // re-parse every request's URL (measured: 4 % of a poll).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("wa-sentinel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::new(ErrorClass::Unreachable, format!("cannot build HTTP client: {e}")))?;
        Ok(Http { client, base })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// `base` + path segments, each percent-encoded (instance names may hold
    /// spaces or slashes).
    pub fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut u = self.base.clone();
        if let Ok(mut p) = u.path_segments_mut() {
            p.pop_if_empty().extend(segments);
        }
        u
    }

    /// Send, and parse a 2xx answer straight from its bytes into `T` — no
    /// `serde_json::Value` tree (a discovery answer of thousands of rows is
    /// megabytes, and every provider discovers at once). An answer that is not
    /// a `T` is classified like any other (`{"error": true}`, HTML, …).
    /// Answers up to [`MAX_LIST_REPLY`] are read.
    pub async fn send_typed<T: serde::de::DeserializeOwned>(
        &self,
        rb: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T, ProviderError> {
        let resp = rb.send().await.map_err(|e| transport_error(what, e))?;
        let status = resp.status().as_u16();
        let body = read_capped_bytes(resp, what, status, MAX_LIST_REPLY).await?;
        if (200..300).contains(&status)
            && let Ok(t) = serde_json::from_slice::<T>(&body)
        {
            return Ok(t);
        }
        let text = String::from_utf8_lossy(&body);
        match classify(status, &text) {
            Ok(_) => Err(ProviderError::new(
                ErrorClass::BadResponse,
                format!("{what}: HTTP {status}: an answer of an unexpected shape: {}", truncate(&text, 120)),
            )),
            Err(mut e) => {
                e.detail = format!("{what}: {}", e.detail);
                Err(e)
            }
        }
    }

    /// Send and classify. `what` names the call in error details
    /// (`GET /instance/connect/x`); it must not contain secrets.
    pub async fn send(&self, rb: reqwest::RequestBuilder, what: &str) -> Result<Reply, ProviderError> {
        let resp = rb.send().await.map_err(|e| transport_error(what, e))?;
        let status = resp.status().as_u16();
        let body = read_capped(resp, what, status).await?;
        reply_of(status, body, what)
    }

    /// Send and read the status and the body's bytes (at most
    /// [`MAX_REPLY`]), not classified yet: a caller that can read the usual
    /// answer straight from the bytes, and [`reply_of`] for the rest.
    pub async fn send_bytes(&self, rb: reqwest::RequestBuilder, what: &str) -> Result<(u16, Vec<u8>), ProviderError> {
        let resp = rb.send().await.map_err(|e| transport_error(what, e))?;
        let status = resp.status().as_u16();
        Ok((status, read_capped_bytes(resp, what, status, MAX_REPLY).await?))
    }
}

/// An answer's status and text, classified ([`classify`]); an error's detail
/// starts with `what`.
pub fn reply_of(status: u16, body: String, what: &str) -> Result<Reply, ProviderError> {
    match classify(status, &body) {
        Ok(json) => Ok(Reply { status, body, json }),
        Err(mut e) => {
            e.detail = format!("{what}: {}", e.detail);
            Err(e)
        }
    }
}

/// An answer's bytes as text; bytes that are not UTF-8 are replaced, not refused.
pub fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An answer read as bytes, whatever its status ([`Http::send_raw`]).
#[derive(Debug, Clone)]
pub struct RawReply {
    pub status: u16,
    /// The `Content-Type` without parameters, lowercased (`image/png`).
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl RawReply {
    /// The body as text (lossy), for [`classify`].
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

impl Http {
    /// Send and read the answer's bytes (at most [`MAX_REPLY`]) whatever its
    /// status: for answers that may be an image (a QR code) rather than JSON.
    /// Only a transport failure or an oversized answer is an error here; the
    /// caller classifies the rest.
    pub async fn send_raw(&self, rb: reqwest::RequestBuilder, what: &str) -> Result<RawReply, ProviderError> {
        let resp = rb.send().await.map_err(|e| transport_error(what, e))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let bytes = read_capped_bytes(resp, what, status, MAX_REPLY).await?;
        Ok(RawReply { status, content_type, bytes })
    }
}

/// Provider answers larger than this are refused: a broken or hostile server
/// must not make the daemon buffer without bound.
pub const MAX_REPLY: usize = 4 * 1024 * 1024;

/// Listing answers (discovery) may be this large: 32 MiB is some 30,000
/// Evolution instances of about 1 KiB each.
pub const MAX_LIST_REPLY: usize = 32 * 1024 * 1024;

pub(super) async fn read_capped(resp: reqwest::Response, what: &str, status: u16) -> Result<String, ProviderError> {
    let buf = read_capped_bytes(resp, what, status, MAX_REPLY).await?;
    Ok(match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

async fn read_capped_bytes(
    mut resp: reqwest::Response,
    what: &str,
    status: u16,
    cap: usize,
) -> Result<Vec<u8>, ProviderError> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if buf.len() + c.len() > cap {
                    return Err(ProviderError::new(
                        ErrorClass::BadResponse,
                        format!("{what}: HTTP {status}: answer larger than {} MiB", cap / 1024 / 1024),
                    ));
                }
                buf.extend_from_slice(&c);
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Err(transport_error(what, e)),
            Err(_) => {
                return Err(ProviderError::new(
                    ErrorClass::BadResponse,
                    format!("{what}: HTTP {status}: body cut short"),
                ));
            }
        }
    }
    Ok(buf)
}

/// A classified successful answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub json: Value,
}

pub(super) fn transport_error(what: &str, e: reqwest::Error) -> ProviderError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // `without_url`: the URL is ours, but keep error text uniform and short.
    ProviderError::new(ErrorClass::Unreachable, format!("{what}: {kind}: {}", e.without_url()))
}

/// Map an HTTP status and body to `Ok(json)` or a classified error.
pub fn classify(status: u16, body: &str) -> Result<Value, ProviderError> {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let msg = json.as_ref().map(message_of).unwrap_or_default();
    let shown = || {
        if !msg.is_empty() {
            msg.clone()
        } else if json.is_none() {
            describe_unparsable(body)
        } else {
            String::new()
        }
    };
    let err = |class, text: String| {
        let detail = if text.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {text}") };
        Err(ProviderError::new(class, detail))
    };
    // Z-API's security layer: `{"error": "null not allowed"}` (no Client-Token)
    // or `{"error": "<ip> not allowed"}` (IP allow-list), whatever the status.
    if let Some(text) =
        json.as_ref().and_then(|j| j.get("error")).and_then(Value::as_str).filter(|t| t.ends_with(" not allowed"))
    {
        return err(
            ErrorClass::Unauthorized,
            format!(
                "access refused ({}): the account's Client-Token is missing or wrong, or this IP is not on its allow-list",
                truncate(text, 80)
            ),
        );
    }
    match status {
        503 if json.as_ref().and_then(|j| j.get("code")).and_then(Value::as_str) == Some("LICENSE_REQUIRED") => {
            err(ErrorClass::Unlicensed, "LICENSE_REQUIRED: the Evolution install is not activated".into())
        }
        500..=599 => err(ErrorClass::ServerError, shown()),
        401 | 403 => err(ErrorClass::Unauthorized, shown()),
        404 if msg.starts_with("Cannot ") => {
            err(ErrorClass::BadResponse, format!("route not found ({msg}); is api_version right?"))
        }
        // Only the provider's own "instance does not exist" answer means missing:
        // an HTML or empty 404 from a misrouted proxy is a provider fault, not N
        // deleted instances.
        404 if class_from_message(&msg) == Some(ErrorClass::InstanceNotFound) => {
            err(ErrorClass::InstanceNotFound, shown())
        }
        404 => err(ErrorClass::BadResponse, format!("404 without an instance-not-found message: {}", shown())),
        200..=299 => match json {
            None => err(ErrorClass::BadResponse, describe_unparsable(body)),
            Some(j) if j.get("error") == Some(&Value::Bool(true)) => {
                let class = class_from_message(&msg).unwrap_or(ErrorClass::BadResponse);
                err(class, format!("error:true in a 2xx answer: {}", if msg.is_empty() { "no message" } else { &msg }))
            }
            Some(j) => Ok(j),
        },
        _ => err(ErrorClass::BadResponse, shown()),
    }
}

/// A `"error": true` answer whose message names a known situation.
fn class_from_message(msg: &str) -> Option<ErrorClass> {
    let m = msg.to_lowercase();
    if m.contains("does not exist") || m.contains("not found") || m.contains("não encontrada") {
        Some(ErrorClass::InstanceNotFound)
    } else if m.contains("unauthorized") || m.contains("token inválido") || m.contains("invalid token") {
        Some(ErrorClass::Unauthorized)
    } else {
        None
    }
}

fn describe_unparsable(body: &str) -> String {
    let t = body.trim_start();
    if t.is_empty() {
        "empty body".into()
    } else if t.starts_with('<') {
        format!("HTML instead of JSON: {}", truncate(t, 120))
    } else {
        format!("unparsable JSON: {}", truncate(t, 120))
    }
}

/// The human message of an error body: `response.message` or `message`
/// (Evolution, W-API, WAHA), which may be a string, an array or an array of
/// arrays; else a string `error` (Z-API's `{"error": "…"}`).
pub fn message_of(v: &Value) -> String {
    let m = v.get("response").and_then(|r| r.get("message")).or_else(|| v.get("message"));
    let mut parts = Vec::new();
    if let Some(m) = m {
        flatten(m, &mut parts, 0);
    }
    if parts.is_empty()
        && let Some(e) = v.get("error").and_then(Value::as_str)
    {
        parts.push(truncate(e, 200));
    }
    parts.join("; ")
}

fn flatten(v: &Value, out: &mut Vec<String>, depth: usize) {
    match v {
        Value::String(s) => out.push(s.clone()),
        // Depth cap: error bodies nest two levels; anything deeper is noise.
        Value::Array(a) if depth < 4 => a.iter().for_each(|x| flatten(x, out, depth + 1)),
        Value::Null => {}
        other => out.push(truncate(&other.to_string(), 200)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_flattening() {
        let v: Value = serde_json::from_str(r#"{"response":{"message":[["a","b"],["c"]]}}"#).unwrap();
        assert_eq!(message_of(&v), "a; b; c");
        let v: Value = serde_json::from_str(r#"{"response":{"message":"Unauthorized"}}"#).unwrap();
        assert_eq!(message_of(&v), "Unauthorized");
        let v: Value = serde_json::from_str(r#"{"error":true,"message":["x"]}"#).unwrap();
        assert_eq!(message_of(&v), "x");
    }

    #[test]
    fn classification_table() {
        let c = |s, b: &str| classify(s, b).map_err(|e| e.class);
        assert_eq!(c(500, "oops"), Err(ErrorClass::ServerError));
        assert_eq!(c(502, "<html>bad gateway</html>"), Err(ErrorClass::ServerError));
        assert_eq!(c(401, r#"{"response":{"message":"Unauthorized"}}"#), Err(ErrorClass::Unauthorized));
        assert_eq!(c(403, "{}"), Err(ErrorClass::Unauthorized));
        assert_eq!(
            c(404, r#"{"response":{"message":["The \"x\" instance does not exist"]}}"#),
            Err(ErrorClass::InstanceNotFound)
        );
        assert_eq!(
            c(404, r#"{"response":{"message":["Cannot PUT /instance/restart/x"]}}"#),
            Err(ErrorClass::BadResponse)
        );
        assert_eq!(c(200, "<!DOCTYPE html><html>"), Err(ErrorClass::BadResponse));
        assert_eq!(c(200, r#"{"instance":{"#), Err(ErrorClass::BadResponse));
        assert_eq!(c(200, ""), Err(ErrorClass::BadResponse));
        assert_eq!(c(200, r#"{"error":true,"message":"[object Object]"}"#), Err(ErrorClass::BadResponse));
        assert_eq!(
            c(200, r#"{"error":true,"message":"Instância não encontrada."}"#),
            Err(ErrorClass::InstanceNotFound)
        );
        assert_eq!(c(503, r#"{"code":"LICENSE_REQUIRED"}"#), Err(ErrorClass::Unlicensed));
        assert_eq!(c(503, r#"{"code":"OTHER"}"#), Err(ErrorClass::ServerError));
        assert_eq!(c(400, r#"{"response":{"message":[["bad"]]}}"#), Err(ErrorClass::BadResponse));
        assert!(c(200, "null").is_ok());
        // Z-API's security layer, at any status.
        assert_eq!(c(200, r#"{"error":"null not allowed"}"#), Err(ErrorClass::Unauthorized));
        assert_eq!(c(400, r#"{"error":"203.0.113.10 not allowed"}"#), Err(ErrorClass::Unauthorized));
        // WAHA (NestJS) bodies.
        assert_eq!(
            c(404, r#"{"statusCode":404,"message":"Session not found","error":"Not Found"}"#),
            Err(ErrorClass::InstanceNotFound)
        );
        assert_eq!(
            c(404, r#"{"statusCode":404,"message":"Cannot GET /api/x","error":"Not Found"}"#),
            Err(ErrorClass::BadResponse)
        );
        assert_eq!(c(401, r#"{"message":"Unauthorized","statusCode":401}"#), Err(ErrorClass::Unauthorized));
        assert!(c(200, r#"{"error":false,"message":"ok"}"#).is_ok());
    }
}
