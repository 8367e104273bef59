//! Since when something has been watched without a gap — the one definition
//! both silence rules use (an instance that sends no webhook, a provider whose
//! instances all fell quiet).
//!
//! Silence can only be measured while someone was listening. A daemon that
//! was stopped for an hour, a replica that has just taken a provider's lease,
//! or a provider that was unreachable until a moment ago has not seen the
//! webhooks of that gap; counting the gap as silence would restart every
//! healthy session after each upgrade, restart, reload, hand-over or
//! partition. So a silence counts from the latest of the last thing heard and
//! the moment watching (re)started, and a verdict needs a whole threshold of
//! watched time.

use std::time::Duration;

use super::Ts;

/// The moments a provider's watch (re)started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    /// This process (or its configuration generation, after a reload) started.
    pub started: Ts,
    /// This replica took the provider's lease (`None`: it leads without one).
    pub lease_taken: Option<Ts>,
    /// The provider's last outage ended — or is ending now, when the cycle that
    /// judges began with one open — or this process's own isolation ended.
    pub outage_ended: Option<Ts>,
}

impl Watch {
    /// Watching without a gap since this instant.
    pub fn since(&self) -> Ts {
        [Some(self.started), self.lease_taken, self.outage_ended].into_iter().flatten().max().unwrap_or(self.started)
    }
}

/// How long something last heard at `last` has been quiet at `now`, counting
/// only time watched since `watching_since`. `None` when it was never heard
/// at all (nothing to be silent about).
pub fn quiet_for(last: Option<Ts>, watching_since: Ts, now: Ts) -> Option<Duration> {
    last.map(|l| now.since(l.max(watching_since)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watching_restarts_at_the_latest_moment() {
        let w = Watch { started: Ts(100), lease_taken: Some(Ts(300)), outage_ended: Some(Ts(200)) };
        assert_eq!(w.since(), Ts(300));
        let alone = Watch { started: Ts(100), lease_taken: None, outage_ended: None };
        assert_eq!(alone.since(), Ts(100));
    }

    #[test]
    fn silence_counts_only_watched_time() {
        // Heard at 10, watching since 50 (a restart): at 80, quiet for 30.
        assert_eq!(quiet_for(Some(Ts(10)), Ts(50), Ts(80)), Some(Duration::from_millis(30)));
        // Heard at 60, after watching began: quiet since then.
        assert_eq!(quiet_for(Some(Ts(60)), Ts(50), Ts(80)), Some(Duration::from_millis(20)));
        assert_eq!(quiet_for(None, Ts(50), Ts(80)), None);
    }
}
