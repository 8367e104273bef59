//! Instance identity and health.

use std::fmt;

/// An instance is named by its provider and its name on that provider —
/// never by "the first tenant" (rule 9, docs/rules.md).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct InstanceKey {
    pub provider: String,
    pub name: String,
}

impl InstanceKey {
    pub fn new(provider: impl Into<String>, name: impl Into<String>) -> Self {
        Self { provider: provider.into(), name: name.into() }
    }
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.name)
    }
}

/// What wa-sentinel believes about an instance right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Not observed yet, or its provider cannot be reached: no verdict.
    Unknown,
    /// Session open and (if `stale_webhook_after` is set) webhooks flowing.
    Connected,
    /// Session open but silent for longer than `stale_webhook_after` (a zombie).
    Degraded,
    /// Reconnecting, or waiting for a QR scan.
    Connecting,
    /// Closed for a reason a recovery action can fix.
    Disconnected,
    /// Logged out or banned: only a person with the phone can fix it.
    LoggedOut,
    /// The provider says the instance does not exist.
    Missing,
}

impl Health {
    pub const ALL: [Health; 7] = [
        Health::Unknown,
        Health::Connected,
        Health::Degraded,
        Health::Connecting,
        Health::Disconnected,
        Health::LoggedOut,
        Health::Missing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Connected => "connected",
            Health::Degraded => "degraded",
            Health::Connecting => "connecting",
            Health::Disconnected => "disconnected",
            Health::LoggedOut => "logged_out",
            Health::Missing => "missing",
        }
    }

    pub fn parse(s: &str) -> Option<Health> {
        Health::ALL.into_iter().find(|h| h.as_str() == s)
    }

    /// A bad observation: counts towards `down_after`.
    pub fn is_bad(self) -> bool {
        !matches!(self, Health::Connected | Health::Unknown)
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_round_trips_through_text() {
        for h in Health::ALL {
            assert_eq!(Health::parse(h.as_str()), Some(h));
        }
        assert_eq!(Health::parse("open"), None);
    }
}
