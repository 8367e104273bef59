//! Provider-wide health: the outages that belong to a provider, not to its
//! instances (rule 2, docs/rules.md).
//!
//! - **Unreachable** (or **unlicensed**): every status call of a cycle fails
//!   with a provider error for `down_after` cycles. One `provider_unreachable`
//!   notice, one `provider_recovered` notice.
//! - **Silent**: at least `silent_min_instances` instances are connected by
//!   poll, yet no webhook from any of them arrived for `silent_after` — while
//!   webhooks are expected (some arrived in this process's life, or the audit
//!   says the provider's webhook configs point at us). That is the stuck
//!   webhook dispatcher of a server (Evolution issues #2257, #2401, #2665),
//!   not a fault of each session: one `provider_silent` notice, instance
//!   verdicts unchanged, and no per-instance zombie restarts meanwhile
//!   ([`holds_instance_silence`]). Webhooks flowing again close it.
//!
//! While an outage of a cause listed in `remediate_on` is open, the optional
//! remediation command runs: at once, then again after each `remediate_cooldown`,
//! at most `remediate_max_attempts` times per outage; then one
//! `remediation_exhausted`. The cooldown is the provider's, not the outage's:
//! a new outage inside the cooldown of the last run waits for it. The attempt
//! is part of the committed state, so it is written before the command runs.
//!
//! The provider's version (where its API tells it) is remembered: a change
//! between two probes is one `provider_version_changed` notice. Probes are
//! rare ([`version_probe_due`]).

use std::time::Duration;

use super::notice::{RecoveredBy, RemediationNote, dedup_key};
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
    /// Instances whose status call said `open` this cycle.
    pub connected: u32,
}

/// Why a provider is in an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderCause {
    /// Every status call failed (unreachable, unauthorized, bad answers).
    Unreachable,
    /// Every status call failed with Evolution ≥ 2.4's `503 LICENSE_REQUIRED`.
    Unlicensed,
    /// Sessions open, webhooks stopped for the whole server.
    Silent,
}

impl ProviderCause {
    pub const ALL: [ProviderCause; 3] = [ProviderCause::Unreachable, ProviderCause::Unlicensed, ProviderCause::Silent];

    /// The name in `remediate_on`, the status page and `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderCause::Unreachable => "unreachable",
            ProviderCause::Unlicensed => "unlicensed",
            ProviderCause::Silent => "silent",
        }
    }

    /// The `outages.cause` value of a provider outage.
    pub fn column(self) -> &'static str {
        match self {
            ProviderCause::Unreachable => "provider_unreachable",
            ProviderCause::Unlicensed => "provider_unlicensed",
            ProviderCause::Silent => "provider_silent",
        }
    }

    pub fn parse(s: &str) -> Option<ProviderCause> {
        ProviderCause::ALL.into_iter().find(|c| c.as_str() == s || c.column() == s)
    }
}

/// The optional remediation hook of a provider (`remediate_*` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemediationPolicy {
    /// argv, never run through a shell.
    pub command: Vec<String>,
    pub timeout: Duration,
    pub cooldown: Duration,
    /// Per provider outage (>= 1).
    pub max_attempts: u32,
    /// Which provider outage causes run it.
    pub on: Vec<ProviderCause>,
    /// Names of environment variables passed to the command on purpose; it
    /// gets a clean environment otherwise (never the daemon's secrets).
    pub env: Vec<String>,
}

impl RemediationPolicy {
    /// The command for people: argv joined by spaces, arguments with spaces quoted.
    pub fn display(&self) -> String {
        self.command
            .iter()
            .map(|a| if a.is_empty() || a.contains([' ', '"', '\'']) { format!("{a:?}") } else { a.clone() })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Per-provider knobs (`[[providers]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPolicy {
    /// No webhook for this long while sessions are open: silent (zero: off).
    pub silent_after: Duration,
    /// Connected instances needed before a silence means anything.
    pub silent_min_instances: u32,
    pub remediation: Option<RemediationPolicy>,
}

impl Default for ProviderPolicy {
    fn default() -> Self {
        ProviderPolicy { silent_after: Duration::from_secs(15 * 60), silent_min_instances: 3, remediation: None }
    }
}

/// What the receiver knows about a provider's webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Webhooks {
    /// The last webhook from any of its instances, if any.
    pub last: Option<Ts>,
    /// Webhooks are expected: some arrived in this process's life, or the
    /// audit found a webhook config pointing at us.
    pub expected: bool,
    /// Since when the provider has been watched without a gap
    /// ([`super::watch::Watch::since`]); a silence is never measured from
    /// earlier (a restart of wa-sentinel observes again before judging).
    pub watching_since: Ts,
}

impl Webhooks {
    /// These facts updated with `seen`, the latest webhook this process
    /// received (it may not be flushed to the database yet): one arriving
    /// since this process started watching makes webhooks expected.
    pub fn with_seen(self, seen: Option<Ts>) -> Webhooks {
        let last = self.last.max(seen);
        Webhooks { last, expected: self.expected || last.is_some_and(|t| t >= self.watching_since), ..self }
    }
}

/// The open outage of a provider, as stored in the `outages` table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProviderOutage {
    pub id: String,
    pub started_at: Ts,
    pub reason: String,
    pub notified: bool,
    pub cause: ProviderCause,
    /// Remediation runs during this outage.
    pub remediation_attempts: u32,
    /// `remediation_exhausted` has been queued.
    pub exhausted_notified: bool,
}

/// The last remediation run of a provider.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemediationRecord {
    pub at: Ts,
    pub command: String,
    /// `exit 0`, `killed after the 60s timeout`, ...; `None` while it runs
    /// (or if the process died between the commit and the result).
    pub result: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProviderState {
    /// Consecutive cycles in which every call failed.
    pub failed_cycles: u32,
    pub outage: Option<ProviderOutage>,
    /// A silence is measured from no earlier than this (set when the provider
    /// answers again after an unreachable outage: its webhooks need a moment).
    pub quiet_since: Option<Ts>,
    /// The last remediation run (its start is committed before it runs).
    pub last_remediation: Option<RemediationRecord>,
    /// The version the provider last reported.
    pub version: Option<String>,
}

impl ProviderState {
    pub fn is_down(&self) -> bool {
        self.outage.is_some()
    }

    /// `ok`, or the cause of the open outage.
    pub fn state_name(&self) -> &'static str {
        self.outage.as_ref().map_or("ok", |o| o.cause.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProviderChange {
    OutageOpened {
        id: String,
        cause: ProviderCause,
        reason: String,
    },
    OutageClosed {
        id: String,
        recovered_by: RecoveredBy,
    },
    CauseChanged {
        id: String,
        cause: ProviderCause,
        reason: String,
    },
    /// Run the remediation command (after the commit).
    RemediationScheduled {
        outage_id: String,
        attempt: u32,
        command: String,
    },
    VersionChanged {
        from: String,
        to: String,
    },
}

/// A provider's version is asked at most this often (and at start-up, and
/// after each of its outages ends).
pub const VERSION_PROBE_EVERY: Duration = Duration::from_secs(3600);

/// Is it time to ask the provider its version? Evolution's `GET /` makes the
/// server fetch WhatsApp Web's service worker from WhatsApp's servers on every
/// request (an outbound call and up to half a second of its time), so the
/// version is asked when it may have changed — the first cycle of this
/// process, the first answered cycle after a provider outage (an upgrade is
/// a restart) — and otherwise once an hour.
pub fn version_probe_due(last_probe: Option<Ts>, outage_just_ended: bool, now: Ts) -> bool {
    outage_just_ended || last_probe.is_none_or(|t| now.since(t) >= VERSION_PROBE_EVERY)
}

/// Run this after the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemediationRun {
    pub outage_id: String,
    pub cause: ProviderCause,
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderStepOutput {
    pub state: ProviderState,
    pub notices: Vec<Notice>,
    pub changes: Vec<ProviderChange>,
    pub remediate: Option<RemediationRun>,
}

/// Is the provider silent now? Sessions open by poll, webhooks expected, and
/// none for `silent_after` (measured from no earlier than `watching_since`
/// and `quiet_since`).
pub fn is_silent(
    cycle: &CycleSummary,
    hooks: &Webhooks,
    quiet_since: Option<Ts>,
    now: Ts,
    pp: &ProviderPolicy,
) -> bool {
    if pp.silent_after.is_zero() || !hooks.expected || cycle.connected < pp.silent_min_instances.max(1) {
        return false;
    }
    // Never heard since watching began counts as quiet since then.
    let watching = hooks.watching_since.max(quiet_since.unwrap_or(hooks.watching_since));
    super::watch::quiet_for(Some(hooks.last.unwrap_or(watching)), watching, now).is_some_and(|q| q >= pp.silent_after)
}

/// Are per-instance zombie restarts held for this provider? While the whole
/// provider is silent — or already quiet for half of `stale_webhook_after`,
/// with enough sessions open — one instance's silence says nothing about that
/// instance, and restarting every session for a server-side fault would only
/// hurt. The half: an instance is a zombie *alone* when some other instance
/// of its provider got a webhook well after it fell silent; instances of one
/// stuck server fall silent at different moments (each at its own last
/// message), and the quietest must not be restarted before the provider's
/// silence is even suspected. With silence detection off (`silent_after =
/// 0`) instances are judged alone, as before.
pub fn holds_instance_silence(
    state: &ProviderState,
    last_connected: u32,
    hooks: &Webhooks,
    now: Ts,
    stale_webhook_after: Duration,
    pp: &ProviderPolicy,
) -> bool {
    if pp.silent_after.is_zero() {
        return false;
    }
    if state.outage.as_ref().is_some_and(|o| o.cause == ProviderCause::Silent) {
        return true;
    }
    if stale_webhook_after.is_zero() {
        return false;
    }
    let early = ProviderPolicy { silent_after: (stale_webhook_after / 2).min(pp.silent_after), ..pp.clone() };
    let cycle = CycleSummary { connected: last_connected, ..CycleSummary::default() };
    is_silent(&cycle, hooks, state.quiet_since, now, &early)
}

/// Everything [`provider_step`] is told besides the previous state.
#[derive(Debug, Clone)]
pub struct ProviderInput<'a> {
    pub cycle: CycleSummary,
    pub hooks: Webhooks,
    /// The version reported this cycle (`None`: not known, keep the last).
    pub version: Option<&'a str>,
    pub provider: &'a str,
    pub now: Ts,
    /// A fresh identifier, used if this step opens an outage.
    pub new_id: &'a str,
    /// The remediation command of this provider is still running: no second
    /// run starts beside it.
    pub remediation_running: bool,
}

/// Advance one provider by one cycle. (With `alerts.group_provider_outage =
/// false` the supervisor fans each notice out to the provider's instances.)
pub fn provider_step(
    prev: &ProviderState,
    input: &ProviderInput<'_>,
    policy: &Policy,
    pp: &ProviderPolicy,
) -> ProviderStepOutput {
    let (cycle, now, provider) = (input.cycle, input.now, input.provider);
    let mut s = prev.clone();
    let mut notices = Vec::new();
    let mut changes = Vec::new();
    let base = |kind, reason: String| Notice {
        kind,
        cause: None,
        code: None,
        provider: provider.to_string(),
        instance: None,
        tenant: None,
        outage_id: None,
        started_at: now,
        at: now,
        reason,
        restart_attempts: 0,
        max_attempts: 0,
        recovered_by: None,
        sequence: 0,
        dedup_key: String::new(),
        remediation: None,
        pair_url: None,
    };
    let notice = |kind, o: &ProviderOutage, s: &ProviderState| Notice {
        outage_id: Some(o.id.clone()),
        started_at: o.started_at,
        restart_attempts: o.remediation_attempts,
        max_attempts: pp.remediation.as_ref().map_or(0, |r| r.max_attempts),
        dedup_key: dedup_key(&o.id, kind, 0),
        remediation: remediation_note(pp, o, s),
        ..base(kind, o.reason.clone())
    };
    if cycle.calls == 0 {
        return ProviderStepOutput { state: s, notices, changes, remediate: None };
    }
    if let Some(v) = input.version.filter(|v| !v.is_empty()) {
        match prev.version.as_deref() {
            Some(old) if old != v => {
                changes.push(ProviderChange::VersionChanged { from: old.to_string(), to: v.to_string() });
                notices.push(Notice {
                    dedup_key: format!("version:{provider}:{v}:{}", now.0),
                    ..base(NoticeKind::ProviderVersionChanged, format!("version {old} → {v}"))
                });
            }
            _ => {}
        }
        s.version = Some(v.to_string());
    }
    let all_failed = cycle.provider_errors >= cycle.calls;
    if all_failed {
        s.failed_cycles = s.failed_cycles.saturating_add(1);
        let kind = cycle.error.unwrap_or(ProviderErrorKind::Unreachable);
        let (cause, reason) = unreachable_cause(kind);
        if s.failed_cycles >= policy.down_after {
            match s.outage.as_mut() {
                None => {
                    let o = ProviderOutage {
                        id: input.new_id.to_string(),
                        started_at: now,
                        reason: reason.clone(),
                        notified: true,
                        cause,
                        remediation_attempts: 0,
                        exhausted_notified: false,
                    };
                    changes.push(ProviderChange::OutageOpened { id: o.id.clone(), cause, reason });
                    let mut n = notice(NoticeKind::ProviderUnreachable, &o, &s);
                    n.cause = Some(kind.as_str().to_string());
                    notices.push(n);
                    s.outage = Some(o);
                }
                // A silent server that stops answering altogether: the same
                // outage, now unreachable (one notice of each kind at most).
                Some(o) if o.cause == ProviderCause::Silent => {
                    o.cause = cause;
                    o.reason = reason.clone();
                    changes.push(ProviderChange::CauseChanged { id: o.id.clone(), cause, reason });
                    let o = o.clone();
                    let mut n = notice(NoticeKind::ProviderUnreachable, &o, &s);
                    n.cause = Some(kind.as_str().to_string());
                    notices.push(n);
                }
                Some(_) => {}
            }
        }
    } else {
        s.failed_cycles = 0;
        match s.outage.clone() {
            Some(o) if o.cause != ProviderCause::Silent => {
                // It answers again: its webhooks get a fresh `silent_after`.
                s.outage = None;
                s.quiet_since = Some(now);
                changes.push(ProviderChange::OutageClosed { id: o.id.clone(), recovered_by: RecoveredBy::Poll });
                if o.notified {
                    let mut n = notice(NoticeKind::ProviderRecovered, &o, &s);
                    n.recovered_by = Some(RecoveredBy::Poll);
                    notices.push(n);
                }
            }
            Some(o) if input.hooks.last.is_some_and(|w| w > o.started_at) => {
                s.outage = None;
                changes.push(ProviderChange::OutageClosed { id: o.id.clone(), recovered_by: RecoveredBy::Webhook });
                if o.notified {
                    let mut n = notice(NoticeKind::ProviderRecovered, &o, &s);
                    n.recovered_by = Some(RecoveredBy::Webhook);
                    n.reason = "webhooks flow again".into();
                    notices.push(n);
                }
            }
            Some(_) => {}
            None if is_silent(&cycle, &input.hooks, s.quiet_since, now, pp) => {
                let quiet_from = [input.hooks.last, Some(input.hooks.watching_since), s.quiet_since]
                    .into_iter()
                    .flatten()
                    .max()
                    .unwrap_or(now);
                let reason = format!(
                    "no webhook from any instance for {} while {} instance(s) are connected",
                    super::time::human_duration(now.since(quiet_from)),
                    cycle.connected
                );
                let o = ProviderOutage {
                    id: input.new_id.to_string(),
                    started_at: now,
                    reason: reason.clone(),
                    notified: true,
                    cause: ProviderCause::Silent,
                    remediation_attempts: 0,
                    exhausted_notified: false,
                };
                changes.push(ProviderChange::OutageOpened { id: o.id.clone(), cause: o.cause, reason });
                let mut n = notice(NoticeKind::ProviderSilent, &o, &s);
                n.cause = Some(o.cause.as_str().to_string());
                notices.push(n);
                s.outage = Some(o);
            }
            None => {}
        }
    }
    let remediate = if input.remediation_running {
        None
    } else {
        remediation_duties(&mut s, &mut notices, &mut changes, pp, now, &notice)
    };
    ProviderStepOutput { state: s, notices, changes, remediate }
}

/// The reason and cause of an unreachable provider.
fn unreachable_cause(kind: ProviderErrorKind) -> (ProviderCause, String) {
    match kind {
        ProviderErrorKind::Unlicensed => (
            ProviderCause::Unlicensed,
            "every status call answered 503 LICENSE_REQUIRED: the Evolution install needs activation".into(),
        ),
        k => (ProviderCause::Unreachable, format!("every status call failed: {}", k.as_str().replace('_', " "))),
    }
}

/// What the notice tells about the remediation: the run about to start
/// (`result: None`) or the last one and its result.
fn remediation_note(pp: &ProviderPolicy, o: &ProviderOutage, s: &ProviderState) -> Option<Box<RemediationNote>> {
    let r = pp.remediation.as_ref().filter(|r| r.on.contains(&o.cause))?;
    let last = s.last_remediation.as_ref().filter(|l| o.remediation_attempts > 0 && l.at >= o.started_at);
    Some(Box::new(RemediationNote {
        command: r.display(),
        attempt: o.remediation_attempts,
        max_attempts: r.max_attempts,
        result: last.and_then(|l| l.result.clone()),
    }))
}

/// With an outage of a listed cause open: run the command when the
/// provider's cooldown allows and the outage's budget lasts; once spent and
/// cooled down, one `remediation_exhausted`.
fn remediation_duties(
    s: &mut ProviderState,
    notices: &mut Vec<Notice>,
    changes: &mut Vec<ProviderChange>,
    pp: &ProviderPolicy,
    now: Ts,
    notice: &dyn Fn(NoticeKind, &ProviderOutage, &ProviderState) -> Notice,
) -> Option<RemediationRun> {
    let r = pp.remediation.as_ref()?;
    let o = s.outage.clone()?;
    if !r.on.contains(&o.cause) {
        return None;
    }
    let cooled = s.last_remediation.as_ref().is_none_or(|l| now.since(l.at) >= r.cooldown);
    if !cooled {
        return None;
    }
    if o.remediation_attempts < r.max_attempts {
        let attempt = o.remediation_attempts + 1;
        let command = r.display();
        s.last_remediation = Some(RemediationRecord { at: now, command: command.clone(), result: None });
        s.outage.as_mut().expect("open").remediation_attempts = attempt;
        changes.push(ProviderChange::RemediationScheduled { outage_id: o.id.clone(), attempt, command });
        return Some(RemediationRun { outage_id: o.id, cause: o.cause, attempt });
    }
    if !o.exhausted_notified {
        s.outage.as_mut().expect("open").exhausted_notified = true;
        let mut n = notice(NoticeKind::RemediationExhausted, &o, s);
        n.max_attempts = r.max_attempts;
        n.cause = Some(o.cause.as_str().to_string());
        notices.push(n);
    }
    None
}

#[cfg(test)]
#[path = "provider_tests.rs"]
mod tests;
