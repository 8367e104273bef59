//! The one policy gate (rule 16, docs/rules.md): may wa-sentinel *act* on an
//! instance (recovery calls, webhook config writes) and may it *speak* about
//! it (notices)? Polls, webhooks, the webhook audit and provider-wide fan-out
//! all ask here instead of checking maintenance on their own.
//!
//! Maintenance is hands-off: no action, no notice — but a notice already owed
//! (the recovery of an outage announced before maintenance began) is paid.

use super::Ts;

/// What the gate allows for one instance right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// Recovery calls and webhook config writes.
    pub act: bool,
    /// New notices (owed ones are always allowed).
    pub speak: bool,
    /// Why not, for the audit log.
    pub why: Option<&'static str>,
}

/// The gate of an instance whose maintenance ends at `maintenance_until`;
/// `leader` is false on a replica that does not supervise (it records what
/// it sees and speaks, but never acts).
pub fn gate(maintenance_until: Option<Ts>, now: Ts, leader: bool) -> Gate {
    if maintenance_until.is_some_and(|u| u > now) {
        return Gate { act: false, speak: false, why: Some("maintenance") };
    }
    if !leader {
        return Gate { act: false, speak: true, why: Some("not the leader") };
    }
    Gate { act: true, speak: true, why: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_is_hands_off_and_ends_by_itself() {
        assert_eq!(gate(Some(Ts(10)), Ts(5), true), Gate { act: false, speak: false, why: Some("maintenance") });
        assert_eq!(gate(Some(Ts(10)), Ts(10), true), Gate { act: true, speak: true, why: None });
        assert!(gate(None, Ts(5), true).act);
    }

    #[test]
    fn a_follower_speaks_but_never_acts() {
        let g = gate(None, Ts(5), false);
        assert!(!g.act && g.speak);
    }
}
