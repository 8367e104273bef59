//! The instance state machine: [`step`] takes the stored [`InstanceState`],
//! one [`Observation`], the clock and the [`Policy`], and returns the new state,
//! the [`Action`]s to take after the commit, and the [`Change`]s to record.
//!
//! It implements rules 2–7 (docs/rules.md): `down_after`, outage open/close, the
//! situation-specific recovery action under a growing cooldown and a per-outage
//! budget, logged-out/banned/missing → one notice and no restart, repeated 440
//! → no restart, flapping → one `instance_flapping`, maintenance, reminders, and
//! provider errors → `unknown`, never `disconnected`.
//!
//! Invariants (checked by the property tests below):
//! - never a recovery action inside the cooldown of `last_restart_attempt`;
//! - never a recovery action for a logged-out, missing or QR-waiting session;
//! - at most one down-class notice and one recovery notice per outage, and a
//!   recovery notice only after a down-class notice;
//! - no notice while in maintenance;
//! - a provider error never opens an outage nor marks an instance unhealthy.

//!
//! Layout: `state` (what is remembered: causes, outages, the instance's
//! state), `verdict` (what one observation says, before history), `machine`
//! (history applied: outages, recovery under cooldown, notices), and here the
//! observations, the changes and [`step`] itself.

mod machine;
mod state;
mod verdict;

pub use state::{Cause, Flapping, InstanceState, OutageState, RecoveryKind, Settled};
pub use verdict::status_code_in;

use machine::Machine;
#[cfg(test)]
use verdict::describe;
use verdict::{Verdict, classify_status};

use super::notice::RecoveredBy;
use super::{Health, InstanceKey, Notice, NoticeKind, Policy, ProviderErrorKind, ProviderStatus, Ts, WebhookSignal};

/// One thing learned about an instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// The provider's per-instance status call answered.
    Polled(ProviderStatus),
    /// The provider's status call failed: the provider is suspect, not the instance.
    ProviderFailed(ProviderErrorKind),
    /// This instance's status call failed with a server error while other
    /// calls of the same cycle were answered: the instance's own problem
    /// (a broken session object on the server). Counts like a bad poll.
    StatusFailed { detail: String },
    /// A webhook for this instance arrived.
    Webhook(WebhookSignal),
    /// An operator set (`Some`) or ended (`None`) maintenance.
    Maintenance(Option<Ts>),
    /// An operator asked for a restart (`restart PROVIDER/INSTANCE [--force]`).
    ManualRestart { force: bool },
    /// The recovery call ordered by attempt `attempt` (0: a manual one) sent
    /// nothing — the provider client found nothing it could do (a session
    /// that is starting, already open, waiting for a QR). The attempt is given
    /// back: it spends no budget and starts no cooldown. `scheduled_at` is
    /// when it was ordered and `previous` the `last_restart_attempt` before
    /// it ([`Action::Recover`]); nothing is given back if another attempt
    /// was ordered since.
    RecoverySkipped { attempt: u32, scheduled_at: Ts, previous: Option<Ts> },
    /// The instance was retired: deleted on the provider, removed from the
    /// config, or its provider removed (rule 14).
    Retired,
}

/// Who and when: the facts `step` needs besides state and observation.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    pub now: Ts,
    pub key: &'a InstanceKey,
    pub tenant: &'a str,
    /// A fresh identifier, used if this step opens an outage or a flapping episode.
    pub new_id: &'a str,
    /// False on a replica that does not hold the supervisor lease: it records
    /// what it sees, and leaves recovery actions to the leader's next poll.
    pub may_recover: bool,
    /// Since when the instance's provider has been watched without a gap
    /// ([`super::watch::Watch::since`]): its silence is not measured from
    /// earlier.
    pub watching_since: Ts,
}

/// What to do once the new state is committed.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Call the provider's recovery endpoint. `attempt` is 1-based within the outage
    /// (0 for a manual restart); `previous` is the `last_restart_attempt` this
    /// attempt replaced (given back if the call sends nothing).
    Recover { kind: RecoveryKind, attempt: u32, previous: Option<Ts> },
    /// Queue this notice in the outbox (same transaction as the state).
    /// Boxed: a notice is large and most actions are not notices.
    Notify(Box<Notice>),
}

/// What happened, for the audit log (`events`) and the `outages` table.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    HealthChanged {
        from: Health,
        to: Health,
        reason: String,
    },
    OutageOpened {
        id: String,
        cause: Cause,
    },
    OutageClosed {
        id: String,
        recovered_by: RecoveredBy,
    },
    CauseChanged {
        id: String,
        cause: Cause,
    },
    RecoveryScheduled {
        kind: RecoveryKind,
        attempt: u32,
        manual: bool,
    },
    RecoveryRefused {
        why: String,
    },
    /// An ordered recovery call sent nothing: the attempt was given back.
    RecoverySkipped {
        attempt: u32,
    },
    FlappingStarted {
        id: String,
    },
    FlappingEnded {
        id: String,
    },
    MaintenanceSet {
        until: Option<Ts>,
    },
    NoticeSuppressed {
        kind: NoticeKind,
        why: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepOutput {
    pub state: InstanceState,
    pub actions: Vec<Action>,
    pub changes: Vec<Change>,
}

impl StepOutput {
    pub fn notices(&self) -> impl Iterator<Item = &Notice> {
        self.actions.iter().filter_map(|a| match a {
            Action::Notify(n) => Some(&**n),
            _ => None,
        })
    }
}

/// Advance one instance by one observation. Pure: same inputs, same outputs.
pub fn step(prev: &InstanceState, obs: Observation, ctx: &Ctx<'_>, policy: &Policy) -> StepOutput {
    let mut m = Machine { s: prev.clone(), ctx, policy, actions: Vec::new(), changes: Vec::new() };
    let now = ctx.now;
    if m.s.maintenance_until.is_some_and(|u| u <= now) {
        m.s.maintenance_until = None;
        m.changes.push(Change::MaintenanceSet { until: None });
    }
    m.expire_flapping();

    match obs {
        Observation::Maintenance(until) => {
            m.s.maintenance_until = until.filter(|u| *u > now);
            m.changes.push(Change::MaintenanceSet { until: m.s.maintenance_until });
            // Ending maintenance announces an outage that was never announced —
            // and never re-announces one that was.
            m.outage_duties(false);
        }
        Observation::ProviderFailed(kind) => {
            // Rule 2: no verdict on the instance; its outage (if any) stays as it is.
            let reason = format!("provider {}", kind.as_str().replace('_', " "));
            m.set_health(Health::Unknown, reason);
        }
        Observation::StatusFailed { detail } => {
            let v = Verdict {
                health: Health::Disconnected,
                cause: Some(Cause::Disconnected),
                reason: format!("its status call fails while the provider answers: {detail}"),
                code: None,
                counted: true,
                immediate: false,
                live_session: false,
                no_remedy: false,
            };
            m.apply(v, RecoveredBy::Poll);
        }
        Observation::Polled(st) => {
            let mut v = classify_status(st, true);
            // A session found open after it was seen closed has just (re)opened:
            // it cannot have been silent for long, and that ends its outage.
            // Only a session that stayed open (or whose state is not known)
            // can be a zombie; one already found silent stays so until a
            // webhook proves otherwise (a poll is no evidence of events).
            let reopened = m.s.health.is_bad() && m.s.health != Health::Degraded;
            let zombie = m.s.outage.as_ref().is_some_and(|o| o.cause == Cause::Silent);
            if v.health == Health::Connected && !reopened && (zombie || m.is_silent()) {
                v = Verdict {
                    health: Health::Degraded,
                    cause: Some(Cause::Silent),
                    reason: format!(
                        "open but no webhook for {}",
                        super::time::human_duration(policy.stale_webhook_after)
                    ),
                    code: None,
                    counted: true,
                    immediate: false,
                    live_session: false,
                    no_remedy: false,
                };
            }
            m.apply(v, RecoveredBy::Poll);
        }
        Observation::Webhook(sig) => match sig {
            WebhookSignal::Open | WebhookSignal::Alive => {
                m.s.last_webhook_at = Some(now);
                let mut v = classify_status(ProviderStatus::Connected, true);
                v.live_session = sig == WebhookSignal::Open;
                m.apply(v, RecoveredBy::Webhook);
            }
            WebhookSignal::Connecting { qr_pending } => {
                // A reconnect loop posts ~3 `connecting` a second: informative, but
                // only a poll (or a QR request) counts towards `down_after`.
                let v = classify_status(ProviderStatus::Connecting { qr_pending }, qr_pending);
                m.apply(v, RecoveredBy::Webhook);
            }
            WebhookSignal::Starting => {
                // Informative like `connecting`: only a poll counts.
                let v = classify_status(ProviderStatus::Starting, false);
                m.apply(v, RecoveredBy::Webhook);
            }
            WebhookSignal::Closed { reason } => {
                let mut v = classify_status(ProviderStatus::Disconnected { reason }, true);
                v.immediate = true;
                m.apply(v, RecoveredBy::Webhook);
            }
            WebhookSignal::Dropped => {
                let v = classify_status(ProviderStatus::Disconnected { reason: None }, true);
                m.apply(v, RecoveredBy::Webhook);
            }
            WebhookSignal::LoggedOut { reason } => {
                let v = classify_status(ProviderStatus::LoggedOut { reason }, true);
                m.apply(v, RecoveredBy::Webhook);
            }
            WebhookSignal::Neutral => {}
        },
        Observation::ManualRestart { force } => m.manual_restart(force),
        Observation::RecoverySkipped { attempt, scheduled_at, previous } => m.refund(attempt, scheduled_at, previous),
        Observation::Retired => m.close_outage(RecoveredBy::Retired),
    }
    StepOutput { state: m.s, actions: m.actions, changes: m.changes }
}

#[cfg(test)]
mod tests;
