//! Wall-clock instants as Unix milliseconds.
//!
//! Both databases store instants as `BIGINT` milliseconds, so one type serves
//! the core, the store and the wire formats; conversion to RFC 3339 happens
//! only at the edges that show time to people.

use std::time::Duration;

/// An instant, in milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Ts(pub i64);

impl Ts {
    /// The instant `d` after `self` (saturating).
    pub fn plus(self, d: Duration) -> Ts {
        Ts(self.0.saturating_add(duration_ms(d)))
    }

    /// How long from `earlier` to `self`; zero when `earlier` is later.
    pub fn since(self, earlier: Ts) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// RFC 3339 in UTC with second precision, e.g. `2026-11-21T10:00:00Z`.
    pub fn rfc3339(self) -> String {
        match chrono::DateTime::from_timestamp_millis(self.0) {
            Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            None => format!("@{}ms", self.0),
        }
    }

    /// RFC 3339 UTC with milliseconds (`2026-12-05T10:00:00.123Z`): for the
    /// event stream, whose consumers measure delays.
    pub fn rfc3339_millis(self) -> String {
        match chrono::DateTime::from_timestamp_millis(self.0) {
            Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            None => format!("@{}ms", self.0),
        }
    }
}

/// Serde: an instant as RFC 3339 UTC text, the one time format of every JSON
/// a user reads (`status --json`, `history --json`, `/api/*`).
pub fn serialize_rfc3339<S: serde::Serializer>(t: &Ts, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.rfc3339())
}

/// Serde: an optional instant as RFC 3339 UTC text or `null`.
pub fn serialize_opt_rfc3339<S: serde::Serializer>(t: &Option<Ts>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.rfc3339()),
        None => s.serialize_none(),
    }
}

/// Milliseconds in `d`, saturating at `i64::MAX`.
pub fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A short human form of a duration: `45s`, `12m`, `3h 5m`, `2d 4h`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc_seconds() {
        assert_eq!(Ts(1_763_719_200_000).rfc3339(), "2025-11-21T10:00:00Z");
    }

    #[test]
    fn since_never_negative() {
        assert_eq!(Ts(5).since(Ts(10)), Duration::ZERO);
        assert_eq!(Ts(10).since(Ts(5)), Duration::from_millis(5));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(Duration::from_secs(45)), "45s");
        assert_eq!(human_duration(Duration::from_secs(12 * 60)), "12m");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600 + 300)), "3h 5m");
        assert_eq!(human_duration(Duration::from_secs(2 * 86_400 + 4 * 3600)), "2d 4h");
    }
}
