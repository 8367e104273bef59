//! The status poll's own HTTP client: a provider's one call made for every
//! instance every period, on hyper's pooled HTTP/1.1 connections with its URI
//! prefix and headers built once. reqwest's per-request machinery (request
//! builder, URL parsing, header map, redirect and proxy handling) is most of
//! a poll's cost otherwise; every other call keeps reqwest.
//!
//! Only for a plain `http://` base URL without credentials, query or
//! fragment, and when no proxy is configured in the environment (reqwest
//! would honour one): anything else — `https` with the shared rustls setup
//! included — stays on reqwest ([`LeanGet::for_base`] says `None`). What it
//! sends is what reqwest sends (`accept: */*`, the same `user-agent`, the
//! provider's headers), bounded by one timeout over the call and its body,
//! and its failures read as reqwest's do (`http::transport_error`'s
//! words: "timed out", "connection failed", "request failed").

use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::http::MAX_REPLY;
use super::{ErrorClass, ProviderError};

/// GET `{prefix}{name}` with fixed headers, for one provider.
#[derive(Debug)]
pub struct LeanGet {
    client: Client<HttpConnector, Empty<Bytes>>,
    /// `http://host:port/base/…/` up to the instance name.
    prefix: String,
    headers: HeaderMap,
    timeout: Duration,
}

/// An answer: the status and the whole body.
pub struct LeanReply {
    pub status: u16,
    pub body: Bytes,
}

/// Characters an instance name may have to be appended as is: what the URL
/// standard leaves unencoded in a path segment, minus anything that could
/// make it a dot segment (`.`/`..` are dropped by the URL builder reqwest
/// uses). Other names are built by [`super::http::Http::url`].
fn plain_segment(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

/// A proxy reqwest would use for plain http, from the environment.
fn env_proxy() -> bool {
    ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        .iter()
        .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))
}

impl LeanGet {
    /// For `url` (a built call URL whose last path segment is the instance
    /// name, with `marker` standing in for it): `None` unless the lean path
    /// may serve it (module docs).
    pub fn for_base(url: &reqwest::Url, marker: &str, extra: HeaderMap, timeout: Duration) -> Option<LeanGet> {
        if url.scheme() != "http"
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
            || env_proxy()
        {
            return None;
        }
        let prefix = url.as_str().strip_suffix(marker)?.to_string();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_timer(TokioTimer::new())
            .build(connector);
        let mut headers = HeaderMap::new();
        headers.insert(hyper::header::ACCEPT, HeaderValue::from_static("*/*"));
        headers.insert(
            hyper::header::USER_AGENT,
            HeaderValue::from_static(concat!("wa-sentinel/", env!("CARGO_PKG_VERSION"))),
        );
        for (k, v) in &extra {
            headers.insert(k.clone(), v.clone());
        }
        Some(LeanGet { client, prefix, headers, timeout })
    }

    /// Whether `name` can be appended to the prefix as is.
    pub fn serves(&self, name: &str) -> bool {
        plain_segment(name)
    }

    /// GET `{prefix}{name}`; `what` names the call in error details.
    pub async fn get(&self, name: &str, what: impl Fn() -> String) -> Result<LeanReply, ProviderError> {
        let mut uri = String::with_capacity(self.prefix.len() + name.len());
        uri.push_str(&self.prefix);
        uri.push_str(name);
        let uri = hyper::Uri::try_from(uri)
            .map_err(|e| ProviderError::new(ErrorClass::Unreachable, format!("{}: request failed: {e}", what())))?;
        let mut req = hyper::Request::new(Empty::new());
        *req.uri_mut() = uri;
        *req.headers_mut() = self.headers.clone();
        let call = async {
            let resp = self.client.request(req).await.map_err(|e| {
                let kind = if e.is_connect() { "connection failed" } else { "request failed" };
                ProviderError::new(ErrorClass::Unreachable, format!("{}: {kind}: {e}", what()))
            })?;
            let status = resp.status().as_u16();
            match Limited::new(resp.into_body(), MAX_REPLY).collect().await {
                Ok(b) => Ok(LeanReply { status, body: b.to_bytes() }),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ProviderError::new(
                    ErrorClass::BadResponse,
                    format!("{}: HTTP {status}: answer larger than {} MiB", what(), MAX_REPLY / 1024 / 1024),
                )),
                Err(_) => Err(ProviderError::new(
                    ErrorClass::BadResponse,
                    format!("{}: HTTP {status}: body cut short", what()),
                )),
            }
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(ProviderError::new(
                ErrorClass::Unreachable,
                format!("{}: timed out after {:?}", what(), self.timeout),
            )),
        }
    }
}

/// A header for [`LeanGet::for_base`], marked sensitive (redacted by `Debug`).
pub fn secret_header(name: &'static str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some((HeaderName::from_static(name), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_appended_as_is() {
        for ok in ["sales-bot", "inst_01", "a.b", "x~y", "A9"] {
            assert!(plain_segment(ok), "{ok}");
        }
        for no in ["", ".", "..", "a b", "a/b", "café", "a?b", "a#b", "a%20"] {
            assert!(!plain_segment(no), "{no}");
        }
    }

    #[test]
    fn the_lean_path_is_for_plain_http_only() {
        let t = Duration::from_secs(1);
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        let lean =
            LeanGet::for_base(&url("http://127.0.0.1:1/evo/instance/connectionState/X"), "X", HeaderMap::new(), t);
        if env_proxy() {
            assert!(lean.is_none());
            return;
        }
        assert_eq!(lean.expect("plain http").prefix, "http://127.0.0.1:1/evo/instance/connectionState/");
        for no in [
            "https://127.0.0.1:1/instance/connectionState/X",
            "http://u:p@127.0.0.1:1/instance/connectionState/X",
            "http://127.0.0.1:1/instance/connectionState/X?k=v",
        ] {
            assert!(LeanGet::for_base(&url(no), "X", HeaderMap::new(), t).is_none(), "{no}");
        }
    }
}
