//! History applied: one observation's verdict against the stored state —
//! outages opened and closed, causes refined, the recovery call under its
//! cooldown and budget, notices (once per outage), flapping and reminders.

use super::super::gate::{Gate, gate};
use super::super::notice::{RecoveredBy, dedup_key};
use super::super::{Health, Notice, NoticeKind, Policy, Ts};
use super::state::silent;
use super::verdict::{Verdict, status_code_in};
use super::{Action, Cause, Change, Ctx, Flapping, InstanceState, OutageState, RecoveryKind};

pub(super) struct Machine<'a, 'c> {
    pub(super) s: InstanceState,
    pub(super) ctx: &'a Ctx<'c>,
    pub(super) policy: &'a Policy,
    pub(super) actions: Vec<Action>,
    pub(super) changes: Vec<Change>,
}

impl Machine<'_, '_> {
    pub(super) fn now(&self) -> Ts {
        self.ctx.now
    }

    /// The policy gate for this instance now (maintenance, leadership).
    pub(super) fn gate(&self) -> Gate {
        gate(self.s.maintenance_until, self.now(), self.ctx.may_recover)
    }

    pub(super) fn suppressed(&self) -> Option<&'static str> {
        if let Gate { speak: false, why, .. } = self.gate() {
            why
        } else if self.s.flapping.is_some() {
            Some("flapping")
        } else {
            None
        }
    }

    pub(super) fn is_silent(&self) -> bool {
        silent(self.s.silence_from(), self.ctx.watching_since, self.now(), self.policy.stale_webhook_after)
    }

    pub(super) fn set_health(&mut self, health: Health, reason: String) {
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

    pub(super) fn record_transition(&mut self) {
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

    pub(super) fn expire_flapping(&mut self) {
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
    pub(super) fn notice(
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
    pub(super) fn notify_outage(&mut self, kind: NoticeKind, sequence: u32) -> bool {
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

    pub(super) fn apply(&mut self, v: Verdict, via: RecoveredBy) {
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
                    super::super::time::human_duration(self.policy.flap_window)
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
    pub(super) fn pending_rank(&self) -> u8 {
        match self.s.health {
            Health::Connecting => Cause::Connecting.rank(),
            Health::Disconnected | Health::Degraded => Cause::Disconnected.rank(),
            Health::LoggedOut | Health::Missing => Cause::LoggedOut.rank(),
            Health::Connected | Health::Unknown => 0,
        }
    }

    pub(super) fn note_replaced(&mut self) {
        let now = self.now();
        let recent = self.s.replaced_at.is_some_and(|t| now.since(t) < self.policy.flap_window);
        self.s.replaced_count = if recent { self.s.replaced_count.saturating_add(1) } else { 1 };
        self.s.replaced_at = Some(now);
    }

    pub(super) fn open_outage(&mut self, cause: Cause, reason: String) {
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

    pub(super) fn close_outage(&mut self, via: RecoveredBy) {
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
    pub(super) fn outage_duties(&mut self, allow_recovery: bool) {
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

    pub(super) fn manual_restart(&mut self, force: bool) {
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
    pub(super) fn refund(&mut self, attempt: u32, scheduled_at: Ts, previous: Option<Ts>) {
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
