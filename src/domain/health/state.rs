//! What the state machine remembers about one instance: why an outage is
//! open ([`Cause`]) and what that cause allows, the open outage, a flapping
//! episode, and the instance's whole state.

use super::super::{Health, NoticeKind, Policy, Ts};

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

    /// How much a cause says (rule 12, docs/rules.md): within an outage the cause only
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

    /// The recovery action for this situation (docs/providers.md, "Recovery actions"),
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

    pub(super) fn down_notice(self) -> NoticeKind {
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
pub(super) const OPEN_REASON: &str = "open";

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
pub(super) fn silent(from: Option<Ts>, watching_since: Ts, now: Ts, stale: std::time::Duration) -> bool {
    !stale.is_zero() && super::super::watch::quiet_for(from, watching_since, now).is_some_and(|q| q >= stale)
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
    /// path at scale: a settled instance's poll skips reading its
    /// record and stepping it. `step_of_a_settled_open_poll_changes_nothing`
    /// (a property test over random histories and random states) holds the
    /// two to [`step`](super::step).
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
    pub(super) fn silence_from(&self) -> Option<Ts> {
        self.last_webhook_at.max(self.connected_at)
    }

    /// When the next automatic recovery action may be sent.
    pub fn next_recovery_allowed(&self, policy: &Policy) -> Option<Ts> {
        self.last_restart_attempt.map(|t| t.plus(policy.cooldown_after(self.restart_attempts)))
    }
}
