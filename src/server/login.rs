//! Signing in to the admin surface: a limit on failed credentials per client
//! address, and server-side sessions for the status page.
//!
//! **Failed credentials** (the `/login` form, HTTP Basic on the status page,
//! a wrong Bearer token on the API) are counted per client address by a
//! `governor` keyed rate limiter: 10 a minute. The failure that finds the
//! budget spent locks the address out until a new attempt is allowed, and a
//! locked-out address gets 429 with `Retry-After` without its credential
//! being looked at (so guessing cannot go on at full speed behind the 429s).
//! Successful requests cost nothing. Behind a reverse proxy every client has
//! the proxy's address: serve the admin surface on `server.admin_listen`
//! (loopback, a VPN), where addresses are the operators' own.
//!
//! **Sessions**: signing in with the form creates a random 256-bit cookie
//! value; the database keeps only its SHA-256, the fingerprint of the admin
//! token that signed in (rotating the token ends every older session) and an
//! expiry 12 h later. The cookie is `HttpOnly`, `SameSite=Strict`, and
//! `Secure` when `server.public_url` is https. `wa-sentinel logout-all` ends
//! every session.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use governor::clock::Clock;
use hmac::{KeyInit, Mac};
use sha2::Digest;

use crate::config::Secret;

/// Failed credentials allowed per client address and minute.
pub const FAILURES_PER_MINUTE: u32 = 10;

/// How long a status-page session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "wa_sentinel_session";

/// Above this many tracked addresses, forgotten ones are dropped.
const TRACKED_MAX: usize = 10_000;

/// The peer address of a request (the listener records it); unspecified when
/// the router runs without a socket.
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        Ok(ClientAddr(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

/// Failed admin credentials per client address (see the module docs).
pub struct LoginGuard {
    failures: governor::DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses that spent their budget, and until when.
    locked: Mutex<HashMap<IpAddr, Instant>>,
}

impl Default for LoginGuard {
    fn default() -> Self {
        let per_minute = NonZeroU32::new(FAILURES_PER_MINUTE).expect("a positive constant");
        LoginGuard {
            failures: governor::RateLimiter::keyed(governor::Quota::per_minute(per_minute)),
            locked: Mutex::new(HashMap::new()),
        }
    }
}

impl LoginGuard {
    /// Before a credential is looked at: `Err(wait)` while the address is locked out.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let mut locked = self.locked.lock().expect("the lock map is never poisoned");
        match locked.get(&ip) {
            Some(until) if *until > Instant::now() => Err(*until - Instant::now()),
            Some(_) => {
                locked.remove(&ip);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// A credential was wrong. `Err(wait)` when this failure found the budget
    /// spent: the address is locked out for `wait`.
    pub fn failed(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.failures.len() > TRACKED_MAX {
            self.failures.retain_recent();
        }
        let Err(not_until) = self.failures.check_key(&ip) else { return Ok(()) };
        let wait = not_until.wait_time_from(self.failures.clock().now()).max(Duration::from_secs(1));
        let mut locked = self.locked.lock().expect("the lock map is never poisoned");
        if locked.len() > TRACKED_MAX {
            let now = Instant::now();
            locked.retain(|_, until| *until > now);
        }
        locked.insert(ip, Instant::now() + wait);
        tracing::warn!(client = %ip, retry_in = ?wait, "too many failed admin sign-ins from this address; refusing it for a while");
        Err(wait)
    }
}

/// `Retry-After` in whole seconds, rounded up.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh session cookie value: 32 bytes from the operating system's CSPRNG.
pub fn new_session_value() -> String {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).expect("the operating system provides random bytes");
    hex(&raw)
}

/// What the database stores for a cookie value (never the value itself).
pub fn session_id(value: &str) -> String {
    hex(&sha2::Sha256::digest(value.as_bytes()))
}

/// Which admin token a session belongs to: an HMAC keyed by the token, so
/// the database never holds the token, and a new token matches no old session.
pub fn admin_fingerprint(token: &Secret) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(token.expose().as_bytes()).expect("any key length");
    mac.update(b"wa-sentinel status page session");
    hex(&mac.finalize().into_bytes())
}

/// The `Set-Cookie` value of a new session.
pub fn session_cookie(value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}", SESSION_TTL.as_secs())
}

/// The CSRF token of a session: an HMAC of the session's cookie value, so it
/// is per session, needs no storage, and cannot be computed without the
/// cookie (which is `HttpOnly`: no page script, and no other site, reads it).
pub fn csrf_token(session_value: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(session_value.as_bytes()).expect("any key length");
    mac.update(b"wa-sentinel status page csrf");
    hex(&mac.finalize().into_bytes())
}

/// Does `given` match the session's CSRF token? (Constant time.)
pub fn csrf_matches(session_value: &str, given: &str) -> bool {
    use subtle::ConstantTimeEq;
    csrf_token(session_value).as_bytes().ct_eq(given.as_bytes()).into()
}

/// The session cookie a request carries, if any.
pub fn session_from(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find_map(|(k, v)| (k == SESSION_COOKIE).then_some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failure_that_finds_the_budget_spent_locks_the_address_out() {
        let g = LoginGuard::default();
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        for _ in 0..FAILURES_PER_MINUTE {
            assert!(g.check(a).is_ok());
            assert!(g.failed(a).is_ok());
        }
        let wait = g.failed(a).expect_err("the 11th failure in a minute");
        assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_secs(7), "{wait:?}");
        assert!(g.check(a).is_err(), "locked out: the next credential is not even looked at");
        assert!(g.check(b).is_ok() && g.failed(b).is_ok(), "per address");
    }

    #[test]
    fn sessions_are_random_and_stored_as_hashes() {
        let (v1, v2) = (new_session_value(), new_session_value());
        assert_ne!(v1, v2);
        assert_eq!(v1.len(), 64);
        assert_ne!(session_id(&v1), v1);
        assert_ne!(admin_fingerprint(&Secret::literal("a")), admin_fingerprint(&Secret::literal("b")));
        let c = session_cookie(&v1, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("; Secure"), "{c}");
        assert!(!session_cookie(&v1, false).contains("Secure"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("a=b; {SESSION_COOKIE}={v1}").parse().unwrap());
        assert_eq!(session_from(&h), Some(v1.as_str()));
    }

    #[test]
    fn csrf_tokens_belong_to_one_session() {
        let (v1, v2) = (new_session_value(), new_session_value());
        let t1 = csrf_token(&v1);
        assert_eq!(t1.len(), 64);
        assert!(csrf_matches(&v1, &t1));
        assert!(!csrf_matches(&v2, &t1), "another session's token");
        assert!(!csrf_matches(&v1, "") && !csrf_matches(&v1, &t1[..63]));
    }
}
