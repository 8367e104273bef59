//! The `whatsapp` notifier's decisions: whether a notice may go through its
//! ops instance now, must wait for a verdict, or goes to the notifier's
//! fallback (rule 10, docs/rules.md); when a digest is due; how long to
//! pause between two messages through one instance.
//!
//! The ops instance shares fate with what it reports on, so a notice goes
//! through it only while wa-sentinel believes it connected: its health is
//! `connected`, it has no open outage, it is not in maintenance and its
//! provider has no open outage. A notice about the ops instance's own
//! trouble (or its provider's) never goes through it: a channel cannot
//! announce its own death.

use std::time::Duration;

use super::{Health, Notice, Severity, Ts};

/// What wa-sentinel believes about the ops instance and its provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsFacts {
    /// `None`: not known yet (not listed by the store, or retired).
    pub instance: Option<OpsInstance>,
    /// The cause of the provider's open outage (`unreachable`, `silent`, …).
    pub provider_outage: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsInstance {
    pub health: Health,
    /// The cause of the instance's open outage.
    pub outage: Option<String>,
    pub maintenance_until: Option<Ts>,
}

/// Where the notices waiting for a `whatsapp` notifier go now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Through the ops instance.
    Send,
    /// Not yet: no verdict on the ops instance (not checked yet, or bad but
    /// not declared down yet); ask again soon.
    Wait(String),
    /// To the fallback notifier, and why.
    HandOver(String),
}

/// How long notices wait for a verdict on the ops instance before they go to
/// the fallback anyway.
pub const VERDICT_GRACE: Duration = Duration::from_secs(60);

/// How soon notices that wait for a verdict are looked at again.
pub const WAIT_STEP: Duration = Duration::from_secs(5);

/// Where notices waiting since `oldest` go at `now`.
pub fn route(facts: &OpsFacts, now: Ts, oldest: Ts) -> Route {
    if let Some(cause) = &facts.provider_outage {
        return Route::HandOver(format!("its provider is in an outage ({cause})"));
    }
    let pending = |why: &str| {
        if now.since(oldest) >= VERDICT_GRACE {
            Route::HandOver(format!(
                "{why}, and notices have waited {} for a verdict",
                super::time::human_duration(now.since(oldest))
            ))
        } else {
            Route::Wait(why.to_string())
        }
    };
    let Some(i) = &facts.instance else {
        return pending("the ops instance is not known to wa-sentinel yet");
    };
    if let Some(cause) = &i.outage {
        return Route::HandOver(format!("the ops instance is in an outage ({cause})"));
    }
    if i.maintenance_until.is_some_and(|u| u > now) {
        return Route::HandOver("the ops instance is in maintenance".into());
    }
    match i.health {
        Health::Connected => Route::Send,
        Health::Unknown => pending("the ops instance has not been checked yet"),
        Health::LoggedOut | Health::Missing => Route::HandOver(format!("the ops instance is {}", i.health.as_str())),
        Health::Degraded | Health::Connecting | Health::Disconnected => {
            pending(&format!("the ops instance is {}", i.health.as_str()))
        }
    }
}

/// A notice about the ops instance's own trouble, or its provider's: it must
/// not go through the instance, whatever its state looks like right now.
/// Good news (a recovery, a retirement, a repaired webhook) may.
pub fn about_itself(n: &Notice, provider: &str, instance: &str) -> bool {
    let mine = n.provider == provider && n.instance.as_deref().is_none_or(|i| i == instance);
    mine && n.severity() != Severity::Info
}

/// Notices pile up into one digest: while the oldest of them (queued at
/// `oldest`) is younger than `window`, wait until it is not.
pub fn digest_due(oldest: Ts, window: Duration, now: Ts) -> Option<Ts> {
    let due = oldest.plus(window);
    (!window.is_zero() && due > now).then_some(due)
}

/// How long to pause before the next message through an instance whose last
/// message went `since_last` ago (`None`: none yet).
pub fn pause(since_last: Option<Duration>, min_gap: Duration) -> Duration {
    since_last.map_or(Duration::ZERO, |s| min_gap.saturating_sub(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::NoticeKind;
    use proptest::prelude::*;

    const NOW: Ts = Ts(1_000_000_000);

    fn facts(health: Health, outage: Option<&str>, provider: Option<&str>) -> OpsFacts {
        OpsFacts {
            instance: Some(OpsInstance { health, outage: outage.map(str::to_string), maintenance_until: None }),
            provider_outage: provider.map(str::to_string),
        }
    }

    #[test]
    fn only_a_connected_instance_with_no_outage_anywhere_sends() {
        assert_eq!(route(&facts(Health::Connected, None, None), NOW, NOW), Route::Send);
        assert!(matches!(
            route(&facts(Health::Connected, None, Some("unreachable")), NOW, NOW),
            Route::HandOver(w) if w.contains("provider") && w.contains("unreachable")
        ));
        assert!(matches!(
            route(&facts(Health::LoggedOut, Some("logged_out"), None), NOW, NOW),
            Route::HandOver(w) if w.contains("outage (logged_out)")
        ));
        let mut m = facts(Health::Connected, None, None);
        m.instance.as_mut().unwrap().maintenance_until = Some(NOW.plus(Duration::from_secs(60)));
        assert!(matches!(route(&m, NOW, NOW), Route::HandOver(w) if w.contains("maintenance")));
    }

    #[test]
    fn without_a_verdict_notices_wait_a_minute_then_go_to_the_fallback() {
        let unknown = OpsFacts { instance: None, provider_outage: None };
        for f in [unknown, facts(Health::Unknown, None, None), facts(Health::Disconnected, None, None)] {
            assert!(matches!(route(&f, NOW, NOW), Route::Wait(_)), "{f:?}");
            let later = NOW.plus(VERDICT_GRACE);
            assert!(matches!(route(&f, later, NOW), Route::HandOver(w) if w.contains("waited 1m")), "{f:?}");
        }
    }

    #[test]
    fn a_notice_about_the_ops_instance_or_its_provider_is_about_itself_unless_good_news() {
        let n = |kind, provider: &str, instance: Option<&str>| Notice {
            kind,
            provider: provider.into(),
            instance: instance.map(str::to_string),
            tenant: None,
            outage_id: None,
            started_at: NOW,
            at: NOW,
            reason: String::new(),
            cause: None,
            code: None,
            restart_attempts: 0,
            max_attempts: 0,
            recovered_by: None,
            sequence: 0,
            dedup_key: "k".into(),
            remediation: None,
            pair_url: None,
        };
        assert!(about_itself(&n(NoticeKind::InstanceDown, "evo", Some("ops")), "evo", "ops"));
        assert!(about_itself(&n(NoticeKind::InstanceFlapping, "evo", Some("ops")), "evo", "ops"));
        assert!(about_itself(&n(NoticeKind::ProviderUnreachable, "evo", None), "evo", "ops"));
        assert!(!about_itself(&n(NoticeKind::InstanceRecovered, "evo", Some("ops")), "evo", "ops"));
        assert!(!about_itself(&n(NoticeKind::InstanceDown, "evo", Some("shop")), "evo", "ops"));
        assert!(!about_itself(&n(NoticeKind::ProviderUnreachable, "other", None), "evo", "ops"));
    }

    proptest! {
        /// Whatever the facts, a notice never goes through an instance that is
        /// not connected, or has an outage, or whose provider has one; and it
        /// never waits past the grace.
        #[test]
        fn never_through_an_instance_not_believed_connected(
            h in 0usize..7, outage in proptest::option::of("[a-z_]{1,12}"),
            provider in proptest::option::of("[a-z_]{1,12}"), known in any::<bool>(),
            waited_s in 0u64..600,
        ) {
            let health = Health::ALL[h];
            let f = OpsFacts {
                instance: known.then(|| OpsInstance { health, outage: outage.clone(), maintenance_until: None }),
                provider_outage: provider.clone(),
            };
            let oldest = Ts(NOW.0 - i64::try_from(waited_s * 1000).unwrap());
            let r = route(&f, NOW, oldest);
            if r == Route::Send {
                prop_assert!(known && health == Health::Connected && outage.is_none() && provider.is_none());
            }
            if matches!(r, Route::Wait(_)) {
                prop_assert!(Duration::from_secs(waited_s) < VERDICT_GRACE);
            }
        }

        #[test]
        fn a_digest_is_due_once_its_oldest_notice_is_window_old(
            age_ms in 0i64..20_000, window_ms in 0u64..10_000,
        ) {
            let window = Duration::from_millis(window_ms);
            let oldest = Ts(NOW.0 - age_ms);
            match digest_due(oldest, window, NOW) {
                Some(due) => prop_assert!(due > NOW && due == oldest.plus(window)),
                None => prop_assert!(window.is_zero() || Duration::from_millis(age_ms as u64) >= window),
            }
        }
    }

    #[test]
    fn the_pause_keeps_the_minimum_gap_between_messages() {
        let gap = Duration::from_secs(3);
        assert_eq!(pause(None, gap), Duration::ZERO);
        assert_eq!(pause(Some(Duration::from_secs(1)), gap), Duration::from_secs(2));
        assert_eq!(pause(Some(Duration::from_secs(5)), gap), Duration::ZERO);
    }
}
