//! Recently processed webhook deliveries, by the provider's request id (WAHA
//! `X-Webhook-Request-Id`): a retry of a delivery already answered 2xx is
//! acknowledged without being processed again. Bounded in entries and age,
//! so a flood of fresh ids only cycles the window.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Deliveries remembered at most.
const CAPACITY: usize = 10_000;
/// ... and for at most this long (providers retry within minutes).
const MAX_AGE: Duration = Duration::from_secs(15 * 60);
/// Longer ids are not remembered (a WAHA id is a 26-character ULID).
const MAX_ID_LEN: usize = 128;

/// The remembered keys, and the same keys oldest first with when they came.
#[derive(Debug, Default)]
struct Window {
    keys: HashSet<String>,
    order: VecDeque<(Instant, String)>,
}

#[derive(Debug, Default)]
pub struct RecentDeliveries {
    inner: Mutex<Window>,
}

fn key(provider: &str, id: &str) -> String {
    format!("{provider}\u{0}{id}")
}

impl RecentDeliveries {
    /// Was this delivery already processed (and answered 2xx)?
    pub fn seen(&self, provider: &str, id: &str) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        expire(&mut g, Instant::now());
        g.keys.contains(&key(provider, id))
    }

    /// Record a processed delivery. Only after a 2xx: a delivery that failed
    /// (503) must be processed when the provider retries it.
    pub fn remember(&self, provider: &str, id: &str) {
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return;
        }
        let k = key(provider, id);
        let now = Instant::now();
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        expire(&mut g, now);
        if g.keys.insert(k.clone()) {
            g.order.push_back((now, k));
        }
        while g.order.len() > CAPACITY {
            if let Some((_, old)) = g.order.pop_front() {
                g.keys.remove(&old);
            }
        }
    }
}

fn expire(g: &mut Window, now: Instant) {
    while g.order.front().is_some_and(|(t, _)| now.duration_since(*t) > MAX_AGE) {
        if let Some((_, old)) = g.order.pop_front() {
            g.keys.remove(&old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_per_provider_within_capacity() {
        let r = RecentDeliveries::default();
        assert!(!r.seen("waha", "a"));
        r.remember("waha", "a");
        assert!(r.seen("waha", "a"));
        assert!(!r.seen("other", "a"), "ids are per provider");
        for i in 0..CAPACITY {
            r.remember("waha", &format!("id{i}"));
        }
        assert!(!r.seen("waha", "a"), "the oldest falls out");
        r.remember("waha", &"x".repeat(MAX_ID_LEN + 1));
        assert!(!r.seen("waha", &"x".repeat(MAX_ID_LEN + 1)));
    }
}
