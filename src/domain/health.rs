//! The instance state machine: [`step`] takes the stored [`InstanceState`],
//! one [`Observation`], the clock and the [`Policy`], and returns the new state,
//! the [`Action`]s to take after the commit, and the [`Change`]s to record.
//!
//! It implements SPEC §5 rules 2–7: `down_after`, outage open/close, the
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

use super::gate::{Gate, gate};
use super::notice::{RecoveredBy, dedup_key};
use super::status::reason_text;
use super::{Health, InstanceKey, Notice, NoticeKind, Policy, ProviderErrorKind, ProviderStatus, Ts, WebhookSignal};

/// Why an outage is open; decides the notice kind and the recovery action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Closed after a transient reason, or not loaded: reconnect.
    Disconnected,
    /// Stuck reconnecting without asking for a QR: reconnect.
    Connecting,
    /// Open but silent for `stale_webhook_after`: the zombie, restart it.
    Silent,
    /// Session replaced (440) repeatedly: two consumers share it, a restart makes it worse.
    Replaced,
    /// Waiting for a QR scan (unpaired).
    NeedsQr,
    /// The provider reports a state wa-sentinel does not know: a person must look.
    NeedsHuman,
    /// Logged out or banned.
    LoggedOut,
    /// Deleted on the provider.
    Missing,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Disconnected => "disconnected",
            Cause::Connecting => "connecting",
            Cause::Silent => "silent",
            Cause::Replaced => "replaced",
            Cause::NeedsQr => "needs_qr",
            Cause::NeedsHuman => "needs_human",
            Cause::LoggedOut => "logged_out",
            Cause::Missing => "missing",
        }
    }

    pub fn parse(s: &str) -> Option<Cause> {
        [
            Cause::Disconnected,
            Cause::Connecting,
            Cause::Silent,
            Cause::Replaced,
            Cause::NeedsQr,
            Cause::NeedsHuman,
            Cause::LoggedOut,
            Cause::Missing,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }

    /// How much a cause says (SPEC §5 rule 12): within an outage the cause only
    /// moves up this order — gone (missing: it supersedes a logout, and is what
    /// retires the instance) > terminal (logged out, banned) > needs a
    /// person (QR, unknown state) > replaced (440) > a transient close or a
    /// silent session > merely connecting. A less informative observation
    /// never replaces a more specific cause.
    pub fn rank(self) -> u8 {
        match self {
            Cause::Missing => 6,
            Cause::LoggedOut => 5,
            Cause::NeedsQr | Cause::NeedsHuman => 4,
            Cause::Replaced => 3,
            Cause::Disconnected | Cause::Silent => 2,
            Cause::Connecting => 1,
        }
    }

    /// Only a person can end it (rule 13): no recovery call, and only proof of
    /// a live session (`open`) ends the outage — not a late message (rule 7).
    pub fn needs_person(self) -> bool {
        matches!(self, Cause::LoggedOut | Cause::Missing | Cause::NeedsQr | Cause::NeedsHuman)
    }

    /// The recovery action for this situation (PROVIDERS.md, "Recovery actions"),
    /// or `None` where only a person can help.
    pub fn recovery(self) -> Option<RecoveryKind> {
        match self {
            Cause::Disconnected | Cause::Connecting => Some(RecoveryKind::Reconnect),
            Cause::Silent => Some(RecoveryKind::Restart),
            Cause::Replaced | Cause::NeedsQr | Cause::NeedsHuman | Cause::LoggedOut | Cause::Missing => None,
        }
    }

    /// The health an instance has while an outage of this cause is open.
    pub fn health(self) -> Health {
        match self {
            Cause::Disconnected | Cause::Replaced => Health::Disconnected,
            Cause::Connecting | Cause::NeedsQr => Health::Connecting,
            Cause::Silent => Health::Degraded,
            Cause::LoggedOut | Cause::NeedsHuman => Health::LoggedOut,
            Cause::Missing => Health::Missing,
        }
    }

    fn down_notice(self) -> NoticeKind {
        match self {
            Cause::NeedsQr | Cause::LoggedOut => NoticeKind::InstanceLoggedOut,
            Cause::Missing => NoticeKind::InstanceMissing,
            _ => NoticeKind::InstanceDown,
        }
    }
}

/// Which provider call recovers the session (each provider maps it to its endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryKind {
    /// Revive a closed session (Evolution `GET /instance/connect`, W-API restart).
    Reconnect,
    /// Restart an open but silent session (Evolution v2 `POST /instance/restart`, v1 `PUT`).
    Restart,
}

impl RecoveryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryKind::Reconnect => "reconnect",
            RecoveryKind::Restart => "restart",
        }
    }
}

/// The open outage of an instance, as stored in the `outages` table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OutageState {
    pub id: String,
    pub started_at: Ts,
    pub cause: Cause,
    pub reason: String,
    /// Recovery attempts made during this outage.
    pub restart_attempts: u32,
    /// The down-class notice has been queued.
    pub down_notified: bool,
    /// `restart_exhausted` has been queued.
    pub exhausted_notified: bool,
    pub reminders_sent: u32,
    pub last_notice_at: Option<Ts>,
}

/// A flapping episode: started at the threshold-th transition, ends after a
/// quiet `flap_window`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Flapping {
    pub id: String,
    pub since: Ts,
}

/// The reason of a session found open.
const OPEN_REASON: &str = "open";

/// A connected instance with nothing pending (no outage, flapping,
/// maintenance or failure count): see [`InstanceState::settled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// Where its silence is measured from (`None`: it cannot be silent).
    pub silence_from: Option<Ts>,
}

impl Settled {
    /// Would a poll that finds the session open at `now` change nothing?
    /// Only if the instance does not turn silent (a zombie) by then, counting
    /// only time watched since `watching_since`.
    pub fn open_poll_is_noop(self, now: Ts, watching_since: Ts, policy: &Policy) -> bool {
        !silent(self.silence_from, watching_since, now, policy.stale_webhook_after)
    }
}

/// Silent (a zombie) at `now`: no webhook nor reopening since `from` for
/// `stale` of watched time (zero: silence is not judged). See [`super::watch`].
fn silent(from: Option<Ts>, watching_since: Ts, now: Ts, stale: std::time::Duration) -> bool {
    !stale.is_zero() && super::watch::quiet_for(from, watching_since, now).is_some_and(|q| q >= stale)
}

/// Everything the state machine remembers about one instance.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InstanceState {
    pub health: Health,
    /// Human reason for the current health ("connection closed (428)", "provider unreachable").
    pub reason: String,
    pub health_since: Ts,
    /// Consecutive bad *polled* (or terminal) observations.
    pub consecutive_failures: u32,
    /// When it last became connected / last stopped being connected.
    pub connected_at: Option<Ts>,
    pub disconnected_at: Option<Ts>,
    pub last_webhook_at: Option<Ts>,
    pub last_restart_attempt: Option<Ts>,
    /// Recovery attempts in the current budget (carries over between outages
    /// unless the instance stayed connected for `reset_after`).
    pub restart_attempts: u32,
    /// Fresh closes with reason 440 ("session replaced"), each within
    /// `flap_window` of the one before; the session may open in between.
    pub replaced_count: u32,
    /// When the last 440 close was seen.
    pub replaced_at: Option<Ts>,
    /// Instants of Connected <-> down transitions within the flap window.
    pub flap_history: Vec<Ts>,
    pub flapping: Option<Flapping>,
    pub maintenance_until: Option<Ts>,
    pub outage: Option<OutageState>,
}

impl InstanceState {
    /// A newly known instance: no verdict yet.
    pub fn new(now: Ts) -> Self {
        InstanceState {
            health: Health::Unknown,
            reason: "not checked yet".into(),
            health_since: now,
            consecutive_failures: 0,
            connected_at: None,
            disconnected_at: None,
            last_webhook_at: None,
            last_restart_attempt: None,
            restart_attempts: 0,
            replaced_count: 0,
            replaced_at: None,
            flap_history: Vec::new(),
            flapping: None,
            maintenance_until: None,
            outage: None,
        }
    }

    pub fn in_maintenance(&self, now: Ts) -> bool {
        self.maintenance_until.is_some_and(|u| u > now)
    }

    /// The state as far as a poll that finds the session open is concerned:
    /// `Some` when that poll can change nothing but the silence clock, which
    /// [`Settled::open_poll_is_noop`] then decides. This is the poll's fast
    /// path at scale (issue 17): a settled instance's poll skips reading its
    /// record and stepping it. `step_of_a_settled_open_poll_changes_nothing`
    /// (a property test over random histories and random states) holds the
    /// two to [`step`].
    pub fn settled(&self) -> Option<Settled> {
        let settled = self.health == Health::Connected
            && self.reason == OPEN_REASON
            && self.consecutive_failures == 0
            && self.outage.is_none()
            && self.flapping.is_none()
            && self.maintenance_until.is_none();
        settled.then(|| Settled { silence_from: self.silence_from() })
    }

    /// Where silence is measured from: the later of the last webhook and the
    /// moment the session (re)opened — a session that just opened is not
    /// silent (`None`: it cannot be).
    fn silence_from(&self) -> Option<Ts> {
        self.last_webhook_at.max(self.connected_at)
    }

    /// When the next automatic recovery action may be sent.
    pub fn next_recovery_allowed(&self, policy: &Policy) -> Option<Ts> {
        self.last_restart_attempt.map(|t| t.plus(policy.cooldown_after(self.restart_attempts)))
    }
}

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

/// What one observation says, before history is taken into account.
struct Verdict {
    health: Health,
    cause: Option<Cause>,
    reason: String,
    code: Option<u16>,
    /// Counts towards `down_after` (polls and QR requests; not a debounced `connecting` webhook).
    counted: bool,
    /// Opens an outage at once (terminal states, a `close` webhook).
    immediate: bool,
    /// Proof of a live session (a poll saying open, an `open` webhook), which
    /// is what ends an outage that needs a person; a message is not.
    live_session: bool,
    /// The provider is bringing the session up itself: no recovery call now.
    no_remedy: bool,
}

/// The stored, English reason: `what` and the code's meaning, without saying
/// the same words twice ("logged out (statusReason 401)", not "logged out:
/// logged out (…)"). [`status_code_in`] reads the code back.
fn describe(what: &str, code: Option<u16>) -> String {
    match code {
        Some(c) if reason_text(c) == what => format!("{what} (statusReason {c})"),
        Some(c) => format!("{what}: {} (statusReason {c})", reason_text(c)),
        None => what.to_string(),
    }
}

/// The code [`describe`] wrote into a reason, if any.
pub fn status_code_in(reason: &str) -> Option<u16> {
    let (_, tail) = reason.rsplit_once("(statusReason ")?;
    tail.strip_suffix(')')?.parse().ok()
}

fn classify_status(st: ProviderStatus, counted: bool) -> Verdict {
    let v = |health, cause, reason: String, code, immediate| Verdict {
        health,
        cause,
        reason,
        code,
        counted,
        immediate,
        live_session: health == Health::Connected,
        no_remedy: false,
    };
    match st {
        ProviderStatus::Connected => v(Health::Connected, None, OPEN_REASON.into(), None, false),
        ProviderStatus::Connecting { qr_pending: true } => {
            v(Health::Connecting, Some(Cause::NeedsQr), "waiting for a QR code scan".into(), None, false)
        }
        ProviderStatus::Connecting { qr_pending: false } => {
            v(Health::Connecting, Some(Cause::Connecting), "connecting".into(), None, false)
        }
        ProviderStatus::Disconnected { reason } => {
            v(Health::Disconnected, Some(Cause::Disconnected), describe("connection closed", reason), reason, false)
        }
        ProviderStatus::Starting => Verdict {
            no_remedy: true,
            ..v(Health::Connecting, Some(Cause::Connecting), "the provider is starting the session".into(), None, false)
        },
        ProviderStatus::NotLoaded => {
            v(Health::Disconnected, Some(Cause::Disconnected), "session not loaded on the provider".into(), None, false)
        }
        ProviderStatus::LoggedOut { reason } => {
            v(Health::LoggedOut, Some(Cause::LoggedOut), describe("logged out", reason), reason, true)
        }
        ProviderStatus::Unpaired => v(
            Health::Connecting,
            Some(Cause::NeedsQr),
            "never paired: waiting for its first QR code scan".into(),
            None,
            true,
        ),
        ProviderStatus::NeedsHuman => v(
            Health::LoggedOut,
            Some(Cause::NeedsHuman),
            "the provider reports a state that needs a person".into(),
            None,
            true,
        ),
        ProviderStatus::NotFound => {
            v(Health::Missing, Some(Cause::Missing), "instance does not exist on the provider".into(), None, true)
        }
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

struct Machine<'a, 'c> {
    s: InstanceState,
    ctx: &'a Ctx<'c>,
    policy: &'a Policy,
    actions: Vec<Action>,
    changes: Vec<Change>,
}

impl Machine<'_, '_> {
    fn now(&self) -> Ts {
        self.ctx.now
    }

    /// The policy gate for this instance now (maintenance, leadership).
    fn gate(&self) -> Gate {
        gate(self.s.maintenance_until, self.now(), self.ctx.may_recover)
    }

    fn suppressed(&self) -> Option<&'static str> {
        if let Gate { speak: false, why, .. } = self.gate() {
            why
        } else if self.s.flapping.is_some() {
            Some("flapping")
        } else {
            None
        }
    }

    fn is_silent(&self) -> bool {
        silent(self.s.silence_from(), self.ctx.watching_since, self.now(), self.policy.stale_webhook_after)
    }

    fn set_health(&mut self, health: Health, reason: String) {
        if health != self.s.health {
            self.changes.push(Change::HealthChanged { from: self.s.health, to: health, reason: reason.clone() });
            if self.s.health == Health::Connected {
                self.s.disconnected_at = Some(self.now());
            }
            if health == Health::Connected {
                self.s.connected_at = Some(self.now());
            }
            self.s.health = health;
            self.s.health_since = self.now();
        }
        self.s.reason = reason;
    }

    fn record_transition(&mut self) {
        let now = self.now();
        let window = self.policy.flap_window;
        self.s.flap_history.retain(|t| now.since(*t) < window);
        self.s.flap_history.push(now);
        if self.s.flapping.is_none()
            && self.policy.flap_threshold > 0
            && self.s.flap_history.len() as u32 >= self.policy.flap_threshold
        {
            let id = self.ctx.new_id.to_string();
            self.changes.push(Change::FlappingStarted { id: id.clone() });
            self.s.flapping = Some(Flapping { id: id.clone(), since: now });
            let n = self.notice(NoticeKind::InstanceFlapping, &id, now, self.s.reason.clone(), 0, None, 0);
            if let Gate { speak: false, why, .. } = self.gate() {
                let why = why.unwrap_or("maintenance");
                self.changes.push(Change::NoticeSuppressed { kind: NoticeKind::InstanceFlapping, why });
            } else {
                self.actions.push(Action::Notify(Box::new(n)));
            }
        }
    }

    fn expire_flapping(&mut self) {
        let now = self.now();
        if let Some(f) = &self.s.flapping {
            let last = self.s.flap_history.last().copied().unwrap_or(f.since);
            if now.since(last) >= self.policy.flap_window {
                self.changes.push(Change::FlappingEnded { id: f.id.clone() });
                self.s.flapping = None;
                self.s.flap_history.clear();
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn notice(
        &self,
        kind: NoticeKind,
        outage_id: &str,
        started_at: Ts,
        reason: String,
        attempts: u32,
        recovered_by: Option<RecoveredBy>,
        sequence: u32,
    ) -> Notice {
        Notice {
            kind,
            provider: self.ctx.key.provider.clone(),
            instance: Some(self.ctx.key.name.clone()),
            tenant: Some(self.ctx.tenant.to_string()),
            outage_id: Some(outage_id.to_string()),
            started_at,
            at: self.now(),
            code: status_code_in(&reason),
            cause: None,
            reason,
            restart_attempts: attempts,
            max_attempts: self.policy.max_attempts_per_outage,
            recovered_by,
            sequence,
            dedup_key: dedup_key(outage_id, kind, sequence),
            remediation: None,
            pair_url: None,
        }
    }

    /// Queue a notice about the open outage, unless silenced; returns whether it was queued.
    fn notify_outage(&mut self, kind: NoticeKind, sequence: u32) -> bool {
        if let Some(why) = self.suppressed() {
            self.changes.push(Change::NoticeSuppressed { kind, why });
            return false;
        }
        let o = self.s.outage.as_ref().expect("notify_outage needs an open outage");
        let mut n = self.notice(kind, &o.id, o.started_at, o.reason.clone(), o.restart_attempts, None, sequence);
        n.cause = Some(o.cause.as_str().to_string());
        self.actions.push(Action::Notify(Box::new(n)));
        let now = self.now();
        if let Some(o) = self.s.outage.as_mut() {
            o.last_notice_at = Some(now);
        }
        true
    }

    fn apply(&mut self, v: Verdict, via: RecoveredBy) {
        let was = self.s.health;
        let remedy = !v.no_remedy;
        if v.health == Health::Connected {
            // A life sign that is not a live session (a late message retry after
            // a logout) does not end an outage only a person can end (rule 7).
            if !v.live_session && self.s.outage.as_ref().is_some_and(|o| o.cause.needs_person()) {
                return;
            }
            let counted_down = was.is_bad() && self.s.consecutive_failures > 0;
            self.s.consecutive_failures = 0;
            self.set_health(Health::Connected, v.reason);
            if counted_down {
                self.record_transition();
            }
            self.close_outage(via);
            return;
        }

        if v.counted {
            // Saturates at `down_after`: once an outage may open, another bad poll
            // changes nothing (and costs no write).
            self.s.consecutive_failures = (self.s.consecutive_failures + 1).min(self.policy.down_after.max(1));
            if was == Health::Connected {
                self.record_transition();
            }
        }
        let mut cause = v.cause.expect("a bad verdict has a cause");
        let mut reason = v.reason;
        if v.code == Some(440) {
            // Count each fresh 440 close once (the poll that follows a 440 webhook
            // sees the same close); the session may reopen in between.
            if !was.is_bad() {
                self.note_replaced();
            }
            if cause == Cause::Disconnected && self.s.replaced_count >= self.policy.replaced_limit.max(1) {
                cause = Cause::Replaced;
                reason = format!(
                    "session replaced by another connection {} times within {}: two consumers share it, \
                     a restart makes it worse (statusReason 440)",
                    self.s.replaced_count,
                    super::time::human_duration(self.policy.flap_window)
                );
            }
        }

        match self.s.outage.as_mut() {
            Some(o) => {
                // Within an outage the cause only becomes more specific (rule 12),
                // unless the provider contradicts it: a "missing" instance that is
                // listed again, an unknown state that became a known one.
                let contradicted = match o.cause {
                    Cause::Missing => cause != Cause::Missing,
                    Cause::NeedsHuman => v.counted && cause != Cause::NeedsHuman,
                    _ => false,
                };
                let refines =
                    cause.rank() > o.cause.rank() || (o.cause == Cause::Silent && cause == Cause::Disconnected);
                if cause != o.cause && (refines || contradicted) {
                    o.cause = cause;
                    o.reason = reason;
                    let id = o.id.clone();
                    self.changes.push(Change::CauseChanged { id, cause });
                }
                // Health follows the outage's cause, not each observation, and
                // `since` stays the start of the outage: a reconnect loop's flips
                // are not events.
                let (health, reason, started) = {
                    let o = self.s.outage.as_ref().expect("open");
                    (o.cause.health(), o.reason.clone(), o.started_at)
                };
                if health != self.s.health {
                    let since = self.s.health_since.min(started);
                    self.set_health(health, reason);
                    self.s.health_since = since;
                }
            }
            None => {
                let opens = v.immediate
                    || cause.needs_person()
                    || (v.counted && self.s.consecutive_failures >= self.policy.down_after);
                if opens {
                    self.set_health(v.health, reason.clone());
                    self.open_outage(cause, reason);
                } else if cause.rank() >= self.pending_rank() {
                    self.set_health(v.health, reason);
                }
            }
        }
        self.outage_duties(remedy);
    }

    /// Before an outage opens: how specific the current bad health is, so a
    /// `connecting` blip does not replace a `close` (no event per flip).
    fn pending_rank(&self) -> u8 {
        match self.s.health {
            Health::Connecting => Cause::Connecting.rank(),
            Health::Disconnected | Health::Degraded => Cause::Disconnected.rank(),
            Health::LoggedOut | Health::Missing => Cause::LoggedOut.rank(),
            Health::Connected | Health::Unknown => 0,
        }
    }

    fn note_replaced(&mut self) {
        let now = self.now();
        let recent = self.s.replaced_at.is_some_and(|t| now.since(t) < self.policy.flap_window);
        self.s.replaced_count = if recent { self.s.replaced_count.saturating_add(1) } else { 1 };
        self.s.replaced_at = Some(now);
    }

    fn open_outage(&mut self, cause: Cause, reason: String) {
        // The attempt budget carries over from a recent outage: only a stretch of
        // `reset_after` connected in between resets it.
        let healthy_long = match (self.s.connected_at, self.s.disconnected_at) {
            (Some(c), Some(d)) if d >= c => d.since(c) >= self.policy.reset_after,
            _ => false,
        };
        if healthy_long {
            self.s.restart_attempts = 0;
        }
        let id = self.ctx.new_id.to_string();
        self.changes.push(Change::OutageOpened { id: id.clone(), cause });
        self.s.outage = Some(OutageState {
            id,
            started_at: self.now(),
            cause,
            reason,
            restart_attempts: 0,
            down_notified: false,
            exhausted_notified: false,
            reminders_sent: 0,
            last_notice_at: None,
        });
    }

    fn close_outage(&mut self, via: RecoveredBy) {
        let Some(o) = self.s.outage.take() else { return };
        let recovered_by = match via {
            RecoveredBy::Poll if o.restart_attempts > 0 => RecoveredBy::Restart,
            other => other,
        };
        self.changes.push(Change::OutageClosed { id: o.id.clone(), recovered_by });
        if !o.down_notified {
            return; // nobody was told it was down: no closing notice either
        }
        // Whoever was told it was down is told it ended: even in maintenance
        // (an owed notice is paid, rule 16) and even if flapping starts with
        // this very transition (a receiver may hold an open incident).
        let (kind, reason) = match recovered_by {
            RecoveredBy::Retired => (
                NoticeKind::InstanceRetired,
                format!(
                    "the instance is gone (deleted on the provider or removed from the configuration); it was down: {}",
                    o.reason
                ),
            ),
            _ => (NoticeKind::InstanceRecovered, format!("recovered by {} after {}", recovered_by.as_str(), o.reason)),
        };
        let mut n = self.notice(kind, &o.id, o.started_at, reason, o.restart_attempts, Some(recovered_by), 0);
        n.cause = Some(o.cause.as_str().to_string());
        n.code = status_code_in(&o.reason);
        self.actions.push(Action::Notify(Box::new(n)));
    }

    /// With an outage open: recovery under cooldown, the down notice, exhaustion, reminders.
    /// Recovery also needs the gate's leave to act (not in maintenance, leader).
    fn outage_duties(&mut self, allow_recovery: bool) {
        let now = self.now();
        let Some(o) = self.s.outage.clone() else { return };
        if !self.s.health.is_bad() {
            return; // unknown: the provider is suspect, hold everything back
        }
        let mut attempted_now = false;
        let mut exhausted_due = false;
        if allow_recovery
            && self.gate().act
            && let Some(kind) = o.cause.recovery()
        {
            let cooled = self.s.next_recovery_allowed(self.policy).is_none_or(|t| now >= t);
            if self.s.restart_attempts >= self.policy.max_attempts_per_outage {
                // Announced after the down notice below, so they arrive in order.
                exhausted_due = !o.exhausted_notified && cooled;
            } else if cooled {
                let previous = self.s.last_restart_attempt;
                self.s.restart_attempts += 1;
                self.s.last_restart_attempt = Some(now);
                let out = self.s.outage.as_mut().expect("open");
                out.restart_attempts += 1;
                let attempt = out.restart_attempts;
                self.changes.push(Change::RecoveryScheduled { kind, attempt, manual: false });
                self.actions.push(Action::Recover { kind, attempt, previous });
                attempted_now = true;
            }
        }

        let o = self.s.outage.clone().expect("open");
        if !o.down_notified {
            // A silent session is only announced once a restart did not bring its
            // events back (or no restart is possible any more).
            let ready = match o.cause {
                Cause::Silent => {
                    (o.restart_attempts > 0 && !attempted_now)
                        || self.s.restart_attempts >= self.policy.max_attempts_per_outage
                }
                _ => true,
            };
            if ready && self.notify_outage(o.cause.down_notice(), 0) {
                self.s.outage.as_mut().expect("open").down_notified = true;
            }
        }
        if exhausted_due && self.notify_outage(NoticeKind::RestartExhausted, 0) {
            self.s.outage.as_mut().expect("open").exhausted_notified = true;
        }
        let o = self.s.outage.clone().expect("open");
        if o.down_notified
            && !self.policy.reminder_every.is_zero()
            && o.last_notice_at.is_some_and(|t| now.since(t) >= self.policy.reminder_every)
        {
            let seq = o.reminders_sent + 1;
            if self.notify_outage(NoticeKind::Reminder, seq) {
                self.s.outage.as_mut().expect("open").reminders_sent = seq;
            }
        }
    }

    fn manual_restart(&mut self, force: bool) {
        let now = self.now();
        if self.s.health == Health::Missing {
            self.changes.push(Change::RecoveryRefused { why: "the instance does not exist on the provider".into() });
            return;
        }
        if !force && let Some(t) = self.s.next_recovery_allowed(self.policy).filter(|t| now < *t) {
            self.changes.push(Change::RecoveryRefused {
                why: format!(
                    "cooldown: last attempt {}, next allowed {} (use --force to override)",
                    self.s.last_restart_attempt.map(Ts::rfc3339).unwrap_or_default(),
                    t.rfc3339()
                ),
            });
            return;
        }
        let kind = match self.s.health {
            Health::Connected | Health::Degraded => RecoveryKind::Restart,
            _ => RecoveryKind::Reconnect,
        };
        let previous = self.s.last_restart_attempt.replace(now);
        self.changes.push(Change::RecoveryScheduled { kind, attempt: 0, manual: true });
        self.actions.push(Action::Recover { kind, attempt: 0, previous });
    }

    /// Give back an attempt whose call sent nothing (see
    /// [`Observation::RecoverySkipped`]).
    fn refund(&mut self, attempt: u32, scheduled_at: Ts, previous: Option<Ts>) {
        if self.s.last_restart_attempt != Some(scheduled_at) {
            return; // another attempt was ordered since: it stands
        }
        if attempt > 0 {
            let Some(o) = self.s.outage.as_mut().filter(|o| o.restart_attempts == attempt) else { return };
            o.restart_attempts -= 1;
            self.s.restart_attempts = self.s.restart_attempts.saturating_sub(1);
        }
        self.s.last_restart_attempt = previous;
        self.changes.push(Change::RecoverySkipped { attempt });
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
