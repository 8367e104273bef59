//! The provider-wide outage: when every status call of a cycle fails with a
//! provider error (unreachable, unauthorized, unlicensed, bad response), the
//! provider — not its instances — is down. One `provider_unreachable` notice,
//! one `provider_recovered` notice (SPEC §5 rule 2).

use super::notice::dedup_key;
use super::{Notice, NoticeKind, Policy, ProviderErrorKind, Ts};

/// What one poll cycle saw of one provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CycleSummary {
    /// Status calls made.
    pub calls: u32,
    /// Of those, failed with a provider error.
    pub provider_errors: u32,
    /// The most frequent provider error, for the notice.
    pub error: Option<ProviderErrorKind>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProviderOutage {
    pub id: String,
    pub started_at: Ts,
    pub reason: String,
    pub notified: bool,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProviderState {
    /// Consecutive cycles in which every call failed.
    pub failed_cycles: u32,
    pub outage: Option<ProviderOutage>,
}

impl ProviderState {
    pub fn is_down(&self) -> bool {
        self.outage.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProviderChange {
    OutageOpened { id: String, reason: String },
    OutageClosed { id: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderStepOutput {
    pub state: ProviderState,
    pub notices: Vec<Notice>,
    pub changes: Vec<ProviderChange>,
}

/// Advance one provider by one cycle. (With `alerts.group_provider_outage =
/// false` the supervisor fans each notice out to the provider's instances.)
pub fn provider_step(
    prev: &ProviderState,
    cycle: CycleSummary,
    provider: &str,
    now: Ts,
    new_id: &str,
    policy: &Policy,
) -> ProviderStepOutput {
    let mut s = prev.clone();
    let mut notices = Vec::new();
    let mut changes = Vec::new();
    let notice = |kind, o: &ProviderOutage, cause: Option<ProviderErrorKind>| Notice {
        kind,
        cause: cause.map(|k| k.as_str().to_string()),
        code: None,
        provider: provider.to_string(),
        instance: None,
        tenant: None,
        outage_id: Some(o.id.clone()),
        started_at: o.started_at,
        at: now,
        reason: o.reason.clone(),
        restart_attempts: 0,
        max_attempts: 0,
        recovered_by: None,
        sequence: 0,
        dedup_key: dedup_key(&o.id, kind, 0),
    };
    if cycle.calls == 0 {
        return ProviderStepOutput { state: s, notices, changes };
    }
    if cycle.provider_errors >= cycle.calls {
        s.failed_cycles = s.failed_cycles.saturating_add(1);
        if s.outage.is_none() && s.failed_cycles >= policy.down_after {
            let kind = cycle.error.unwrap_or(ProviderErrorKind::Unreachable);
            let o = ProviderOutage {
                id: new_id.to_string(),
                started_at: now,
                reason: format!("every status call failed: {}", kind.as_str().replace('_', " ")),
                notified: true,
            };
            changes.push(ProviderChange::OutageOpened { id: o.id.clone(), reason: o.reason.clone() });
            notices.push(notice(NoticeKind::ProviderUnreachable, &o, Some(kind)));
            s.outage = Some(o);
        }
    } else {
        s.failed_cycles = 0;
        if let Some(o) = s.outage.take() {
            changes.push(ProviderChange::OutageClosed { id: o.id.clone() });
            if o.notified {
                notices.push(notice(NoticeKind::ProviderRecovered, &o, None));
            }
        }
    }
    ProviderStepOutput { state: s, notices, changes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> CycleSummary {
        CycleSummary { calls: 5, provider_errors: 5, error: Some(ProviderErrorKind::Unreachable) }
    }
    fn up() -> CycleSummary {
        CycleSummary { calls: 5, provider_errors: 1, error: Some(ProviderErrorKind::Unreachable) }
    }

    #[test]
    fn one_unreachable_and_one_recovered_notice_per_provider_outage() {
        let p = Policy::default(); // down_after = 2
        let mut s = ProviderState::default();
        let mut kinds = Vec::new();
        for (i, c) in [down(), down(), down(), down(), up(), up(), down()].into_iter().enumerate() {
            let out = provider_step(&s, c, "evo", Ts(i as i64 * 1000), &format!("id{i}"), &p);
            kinds.extend(out.notices.iter().map(|n| (n.kind, n.dedup_key.clone())));
            s = out.state;
        }
        assert_eq!(
            kinds,
            vec![
                (NoticeKind::ProviderUnreachable, "outage:id1:provider_unreachable".to_string()),
                (NoticeKind::ProviderRecovered, "outage:id1:provider_recovered".to_string()),
            ]
        );
        assert!(!s.is_down(), "one failed cycle after recovery is not yet an outage");
    }

    #[test]
    fn a_cycle_without_calls_changes_nothing() {
        let p = Policy { down_after: 1, ..Policy::default() };
        let out = provider_step(&ProviderState::default(), CycleSummary::default(), "evo", Ts(0), "x", &p);
        assert_eq!(out.state, ProviderState::default());
    }
}
