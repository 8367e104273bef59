//! The knobs of the behaviour rules, validated and ready to use.
//! Built from the `[supervisor]`, `[restart]` and `[alerts]` config sections.

use std::time::Duration;

/// Everything [`crate::domain::step`] needs besides state and observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Consecutive bad observations before an outage opens (>= 1).
    pub down_after: u32,
    /// An `open` instance with no webhook for this long is silent (zero: off).
    pub stale_webhook_after: Duration,
    /// Minimum time between recovery attempts of one instance.
    pub cooldown: Duration,
    /// Recovery attempts before one `restart_exhausted` notice and no more.
    pub max_attempts_per_outage: u32,
    /// The cooldown grows by this factor per attempt ...
    pub backoff_factor: f64,
    /// ... up to this.
    pub max_cooldown: Duration,
    /// The attempt counter carries over into a new outage unless the instance
    /// was connected at least this long in between.
    pub reset_after: Duration,
    /// Window and threshold for `instance_flapping`.
    pub flap_window: Duration,
    pub flap_threshold: u32,
    /// Re-notify while down (zero: once per outage).
    pub reminder_every: Duration,
    /// Consecutive 440 ("session replaced") observations after which restarts stop.
    pub replaced_limit: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            down_after: 2,
            stale_webhook_after: Duration::ZERO,
            cooldown: Duration::from_secs(30 * 60),
            max_attempts_per_outage: 3,
            backoff_factor: 2.0,
            max_cooldown: Duration::from_secs(4 * 3600),
            reset_after: Duration::from_secs(3600),
            flap_window: Duration::from_secs(10 * 60),
            flap_threshold: 4,
            reminder_every: Duration::ZERO,
            replaced_limit: 2,
        }
    }
}

impl Policy {
    /// The cooldown that must pass after the `attempts`-th attempt before the next:
    /// `cooldown * backoff_factor^(attempts-1)`, capped at `max_cooldown`.
    /// With no attempt yet in this budget, the base cooldown still applies to a
    /// `last_restart_attempt` left by an earlier outage.
    pub fn cooldown_after(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(64) as i32;
        let secs = self.cooldown.as_secs_f64() * self.backoff_factor.powi(exp);
        let cap = self.max_cooldown.max(self.cooldown);
        if !secs.is_finite() || secs >= cap.as_secs_f64() { cap } else { Duration::from_secs_f64(secs) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooldown_grows_then_caps() {
        let p = Policy::default();
        let m = |n| p.cooldown_after(n).as_secs() / 60;
        assert_eq!(m(0), 30);
        assert_eq!(m(1), 30);
        assert_eq!(m(2), 60);
        assert_eq!(m(3), 120);
        assert_eq!(m(4), 240);
        assert_eq!(m(5), 240);
        assert_eq!(m(u32::MAX), 240);
    }

    #[test]
    fn max_cooldown_below_cooldown_never_shortens_it() {
        let p = Policy { max_cooldown: Duration::from_secs(60), ..Policy::default() };
        assert_eq!(p.cooldown_after(1), Duration::from_secs(30 * 60));
    }
}
