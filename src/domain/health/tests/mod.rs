//! Tests of [`super::step`], one per behaviour rule (docs/rules.md), plus property
//! tests of its invariants over random observation sequences.

use std::collections::HashMap;
use std::time::Duration;

use super::*;
use crate::domain::notice::RecoveredBy;

const MIN: i64 = 60_000;

/// Drives one instance through observations, keeping every output.
struct Sim {
    key: InstanceKey,
    policy: Policy,
    state: InstanceState,
    now: Ts,
    /// Since when the provider has been watched without a gap.
    watch: Ts,
    next_id: u32,
    notices: Vec<Notice>,
    recoveries: Vec<(Ts, RecoveryKind, u32)>,
    changes: Vec<Change>,
}

impl Sim {
    fn new(policy: Policy) -> Sim {
        Sim {
            key: InstanceKey::new("evo", "inst"),
            policy,
            state: InstanceState::new(Ts(0)),
            now: Ts(0),
            watch: Ts(0),
            next_id: 0,
            notices: vec![],
            recoveries: vec![],
            changes: vec![],
        }
    }

    fn at(&mut self, minutes: i64) -> &mut Self {
        self.now = Ts(minutes * MIN);
        self
    }

    fn obs(&mut self, o: Observation) -> StepOutput {
        self.next_id += 1;
        let id = format!("id{}", self.next_id);
        let ctx = Ctx {
            now: self.now,
            key: &self.key,
            tenant: "t1",
            new_id: &id,
            may_recover: true,
            watching_since: self.watch,
        };
        let out = step(&self.state, o, &ctx, &self.policy);
        for a in &out.actions {
            match a {
                Action::Notify(n) => self.notices.push((**n).clone()),
                Action::Recover { kind, attempt, .. } => self.recoveries.push((self.now, *kind, *attempt)),
            }
        }
        self.changes.extend(out.changes.iter().cloned());
        self.state = out.state.clone();
        out
    }

    fn poll(&mut self, st: ProviderStatus) -> StepOutput {
        self.obs(Observation::Polled(st))
    }

    fn kinds(&self) -> Vec<NoticeKind> {
        self.notices.iter().map(|n| n.kind).collect()
    }
}

fn closed(reason: u16) -> ProviderStatus {
    ProviderStatus::Disconnected { reason: Some(reason) }
}

#[test]
fn rule3_outage_opens_after_down_after_consecutive_bad_polls() {
    let mut s = Sim::new(Policy { down_after: 3, ..Policy::default() });
    s.at(0).poll(ProviderStatus::Connected);
    s.at(1).poll(closed(428));
    s.at(2).poll(closed(428));
    assert!(s.state.outage.is_none(), "two bad polls are not yet an outage with down_after = 3");
    s.at(3).poll(closed(428));
    let o = s.state.outage.as_ref().expect("third bad poll opens the outage");
    assert_eq!(o.cause, Cause::Disconnected);
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceDown]);
    assert_eq!(s.notices[0].restart_attempts, 1, "the down notice says the first restart was sent");
}

#[test]
fn rule3_a_close_webhook_opens_the_outage_at_once() {
    let mut s = Sim::new(Policy { down_after: 5, ..Policy::default() });
    s.at(0).poll(ProviderStatus::Connected);
    s.at(1).obs(Observation::Webhook(WebhookSignal::Closed { reason: Some(428) }));
    assert!(s.state.outage.is_some());
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceDown]);
}

#[test]
fn a_good_poll_between_bad_ones_resets_the_count() {
    let mut s = Sim::new(Policy::default());
    s.at(0).poll(closed(428));
    s.at(1).poll(ProviderStatus::Connected);
    s.at(2).poll(closed(428));
    assert!(s.state.outage.is_none());
}

#[test]
fn rule4_transient_drop_gets_reconnect_once_per_growing_cooldown_then_exhausted_once() {
    let mut s = Sim::new(Policy::default()); // cooldown 30m, x2, max 3 attempts
    s.at(0).poll(ProviderStatus::Connected);
    for m in 1..=600 {
        s.at(m).poll(closed(428));
    }
    let times: Vec<i64> = s.recoveries.iter().map(|(t, _, _)| t.0 / MIN).collect();
    // opens at minute 2, then after 30m, then after 60m more; then exhausted.
    assert_eq!(times, vec![2, 32, 92]);
    assert!(s.recoveries.iter().all(|(_, k, _)| *k == RecoveryKind::Reconnect));
    assert_eq!(s.recoveries.iter().map(|r| r.2).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceDown, NoticeKind::RestartExhausted]);
    let exhausted_at = s.notices[1].at.0 / MIN;
    assert_eq!(exhausted_at, 92 + 120, "exhaustion is declared when a 4th attempt would have been due");
}

#[test]
fn rule4_last_restart_attempt_is_set_by_the_step_that_orders_the_restart() {
    let mut s = Sim::new(Policy { down_after: 1, ..Policy::default() });
    let out = s.at(5).poll(closed(428));
    assert!(out.actions.iter().any(|a| matches!(a, Action::Recover { .. })));
    assert_eq!(out.state.last_restart_attempt, Some(Ts(5 * MIN)), "persisted before the provider is called");
    assert_eq!(out.state.restart_attempts, 1);
}

#[test]
fn rule5_logged_out_gets_one_notice_and_no_restart() {
    let mut s = Sim::new(Policy::default());
    s.at(0).poll(ProviderStatus::Connected);
    for m in 1..100 {
        s.at(m).poll(ProviderStatus::LoggedOut { reason: Some(401) });
    }
    assert!(s.recoveries.is_empty());
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceLoggedOut]);
    assert_eq!(s.state.health, Health::LoggedOut);
    // The renderer gets the cause and the code, not only prose.
    assert_eq!((s.notices[0].cause.as_deref(), s.notices[0].code), (Some("logged_out"), Some(401)));
}

#[test]
fn rule5_logout_webhook_is_a_down_signal_at_once() {
    let mut s = Sim::new(Policy { down_after: 3, ..Policy::default() });
    s.at(0).poll(ProviderStatus::Connected);
    s.at(1).obs(Observation::Webhook(WebhookSignal::LoggedOut { reason: Some(401) }));
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceLoggedOut]);
    assert!(s.recoveries.is_empty());
}

#[test]
fn waiting_for_qr_is_announced_as_logged_out_and_never_restarted() {
    let mut s = Sim::new(Policy::default());
    for m in 0..50 {
        s.at(m).poll(ProviderStatus::Connecting { qr_pending: true });
    }
    assert!(s.recoveries.is_empty());
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceLoggedOut]);
    assert_eq!(s.state.outage.as_ref().unwrap().cause, Cause::NeedsQr);
    assert_eq!((s.notices[0].cause.as_deref(), s.notices[0].code), (Some("needs_qr"), None));
}

#[test]
fn missing_instance_is_announced_once() {
    let mut s = Sim::new(Policy::default());
    for m in 0..50 {
        s.at(m).poll(ProviderStatus::NotFound);
    }
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceMissing]);
    assert!(s.recoveries.is_empty());
    assert_eq!(s.state.health, Health::Missing);
}

#[test]
fn repeated_440_from_real_webhooks_stops_restarts_and_says_why() {
    // What a real server sends when two consumers share a session: a close
    // webhook with statusReason 440, Evolution's own reconnect (`open`), and
    // the next 440 — the session opens in between every time.
    let mut s = Sim::new(Policy { down_after: 2, ..Policy::default() }); // cooldown 30m
    s.at(0).poll(ProviderStatus::Connected);
    s.at(1).obs(Observation::Webhook(WebhookSignal::Closed { reason: Some(440) }));
    assert_eq!(s.recoveries.len(), 1, "one 440 is a transient drop: reconnect");
    s.at(2).poll(closed(440)); // the poll sees the same close: not a second 440
    s.at(3).obs(Observation::Webhook(WebhookSignal::Open));
    assert!(s.state.outage.is_none());
    s.at(4).obs(Observation::Webhook(WebhookSignal::Closed { reason: Some(440) }));
    assert_eq!(s.state.outage.as_ref().unwrap().cause, Cause::Replaced, "a second 440 within the window");
    for m in 5..30 {
        s.at(m).poll(closed(440));
    }
    assert_eq!(s.recoveries.len(), 1, "repeated 440: two consumers share the session, no more restarts");
    assert_eq!(s.state.outage.as_ref().unwrap().cause, Cause::Replaced);
    assert!(s.notices.last().unwrap().reason.contains("replaced"), "{:?}", s.notices.last().unwrap().reason);
}

#[test]
fn replaced_closes_far_apart_are_each_a_transient_drop() {
    let p = Policy { down_after: 2, cooldown: Duration::from_secs(60), ..Policy::default() };
    let mut s = Sim::new(p);
    s.at(0).poll(ProviderStatus::Connected);
    s.at(1).obs(Observation::Webhook(WebhookSignal::Closed { reason: Some(440) }));
    s.at(2).obs(Observation::Webhook(WebhookSignal::Open));
    s.at(100).obs(Observation::Webhook(WebhookSignal::Closed { reason: Some(440) }));
    assert_eq!(s.state.outage.as_ref().unwrap().cause, Cause::Disconnected, "the last 440 was 99 minutes ago");
    assert_eq!(s.recoveries.len(), 2);
}

#[test]
fn rule2_provider_errors_make_the_instance_unknown_and_open_nothing() {
    let mut s = Sim::new(Policy { down_after: 1, ..Policy::default() });
    s.at(0).poll(ProviderStatus::Connected);
    for m in 1..20 {
        let out = s.at(m).obs(Observation::ProviderFailed(ProviderErrorKind::Unreachable));
        assert!(out.actions.is_empty());
    }
    assert_eq!(s.state.health, Health::Unknown);
    assert!(s.state.outage.is_none());
    assert_eq!(s.state.consecutive_failures, 0);
}

#[test]
fn rule2_instance_still_down_after_the_provider_returns_gets_its_own_notice_and_a_recovered_one_none() {
    // Down instance behind a provider outage: notice only once the provider answers again.
    let mut s = Sim::new(Policy::default());
    s.at(0).poll(ProviderStatus::Connected);
    s.at(1).obs(Observation::ProviderFailed(ProviderErrorKind::Unreachable));
    s.at(2).obs(Observation::ProviderFailed(ProviderErrorKind::Unreachable));
    s.at(3).poll(closed(428));
    s.at(4).poll(closed(428));
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceDown]);

    let mut r = Sim::new(Policy::default());
    r.at(0).poll(ProviderStatus::Connected);
    r.at(1).obs(Observation::ProviderFailed(ProviderErrorKind::Unreachable));
    r.at(2).poll(ProviderStatus::Connected);
    assert!(r.notices.is_empty());
}

#[test]
fn rule7_any_webhook_recovers_a_down_instance_at_once() {
    let mut s = Sim::new(Policy::default());
    s.at(0).poll(ProviderStatus::Connected);
    s.at(1).poll(closed(428));
    s.at(2).poll(closed(428));
    let out = s.at(3).obs(Observation::Webhook(WebhookSignal::Alive));
    assert_eq!(out.state.health, Health::Connected);
    assert!(out.state.outage.is_none());
    assert!(out.changes.contains(&Change::OutageClosed { id: "id3".into(), recovered_by: RecoveredBy::Webhook }));
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceDown, NoticeKind::InstanceRecovered]);
    assert_eq!(s.notices[1].recovered_by, Some(RecoveredBy::Webhook));
    assert_eq!(s.notices[1].dedup_key, "outage:id3:instance_recovered");
    assert_eq!(s.state.last_webhook_at, Some(Ts(3 * MIN)));
}

#[test]
fn rule7_webhook_on_an_unknown_instance_marks_it_connected_without_notice() {
    let mut s = Sim::new(Policy::default());
    s.at(0).obs(Observation::ProviderFailed(ProviderErrorKind::Unreachable));
    s.at(1).obs(Observation::Webhook(WebhookSignal::Alive));
    assert_eq!(s.state.health, Health::Connected);
    assert!(s.notices.is_empty());
}

#[test]
fn recovery_after_restart_is_credited_to_the_restart() {
    let mut s = Sim::new(Policy { down_after: 1, ..Policy::default() });
    s.at(0).poll(closed(428));
    s.at(1).poll(ProviderStatus::Connected);
    assert_eq!(s.notices.last().unwrap().recovered_by, Some(RecoveredBy::Restart));
}

#[test]
fn connecting_webhooks_do_not_count_towards_down_after() {
    let mut s = Sim::new(Policy { down_after: 2, ..Policy::default() });
    s.at(0).poll(ProviderStatus::Connected);
    for _ in 0..100 {
        s.at(1).obs(Observation::Webhook(WebhookSignal::Connecting { qr_pending: false }));
    }
    assert!(s.state.outage.is_none());
    assert_eq!(s.state.health, Health::Connecting);
    s.at(1).obs(Observation::Webhook(WebhookSignal::Alive));
    assert!(s.notices.is_empty());
    assert!(s.state.flap_history.is_empty(), "an uncounted blip is not a flap transition");
}

#[test]
fn rule6_maintenance_silences_notices_and_restarts_but_not_polling() {
    let mut s = Sim::new(Policy { down_after: 1, ..Policy::default() });
    s.at(0).poll(ProviderStatus::Connected);
    s.at(1).obs(Observation::Maintenance(Some(Ts(60 * MIN))));
    for m in 2..59 {
        s.at(m).poll(closed(428));
    }
    assert!(s.notices.is_empty());
    assert!(s.recoveries.is_empty());
    assert!(s.state.outage.is_some(), "the outage is still recorded");
    // Maintenance ends by itself: the outage that nobody was told about is announced once.
    s.at(61).poll(closed(428));
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceDown]);
    assert_eq!(s.recoveries.len(), 1);
}

#[test]
fn ending_maintenance_never_reannounces_an_outage_already_notified() {
    let mut s = Sim::new(Policy { down_after: 1, ..Policy::default() });
    s.at(0).poll(closed(428));
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceDown]);
    s.at(1).obs(Observation::Maintenance(Some(Ts(30 * MIN))));
    s.at(2).poll(closed(428));
    s.at(3).obs(Observation::Maintenance(None));
    s.at(4).poll(closed(428));
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceDown]);
}

#[test]
fn rule6_flapping_collapses_into_one_notice() {
    let mut s = Sim::new(Policy { down_after: 1, flap_threshold: 4, ..Policy::default() });
    s.at(0).poll(ProviderStatus::Connected);
    for m in 1..=8 {
        let st = if m % 2 == 1 { closed(428) } else { ProviderStatus::Connected };
        s.at(m).poll(st);
    }
    let k = s.kinds();
    assert_eq!(k.iter().filter(|k| **k == NoticeKind::InstanceFlapping).count(), 1, "{k:?}");
    // Before the threshold: down + recovered per outage (the outage announced
    // before flapping started still gets its recovery); after: silence.
    assert_eq!(
        k,
        vec![
            NoticeKind::InstanceDown,
            NoticeKind::InstanceRecovered,
            NoticeKind::InstanceDown,
            NoticeKind::InstanceFlapping,
            NoticeKind::InstanceRecovered,
        ]
    );
    // After a quiet window the episode ends and normal notices resume.
    s.at(30).poll(ProviderStatus::Connected);
    assert!(s.state.flapping.is_none());
}

#[test]
fn silent_instance_is_restarted_and_announced_only_if_events_do_not_come_back() {
    let p = Policy { down_after: 1, stale_webhook_after: Duration::from_secs(10 * 60), ..Policy::default() };
    let mut s = Sim::new(p);
    s.at(0).poll(ProviderStatus::Connected);
    s.at(5).poll(ProviderStatus::Connected);
    assert_eq!(s.state.health, Health::Connected);
    s.at(11).poll(ProviderStatus::Connected);
    assert_eq!(s.state.health, Health::Degraded);
    assert_eq!(s.recoveries, vec![(Ts(11 * MIN), RecoveryKind::Restart, 1)]);
    assert!(s.notices.is_empty(), "not announced before the restart had a chance");
    s.at(12).poll(ProviderStatus::Connected);
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceDown]);

    // The same, but the restart brings webhooks back.
    let mut r = Sim::new(s.policy.clone());
    r.at(0).poll(ProviderStatus::Connected);
    r.at(11).poll(ProviderStatus::Connected);
    r.at(11).obs(Observation::Webhook(WebhookSignal::Alive));
    r.at(12).poll(ProviderStatus::Connected);
    assert!(r.notices.is_empty());
    assert_eq!(r.state.health, Health::Connected);
}

#[test]
fn reminders_repeat_while_down_with_their_own_keys() {
    let p = Policy {
        down_after: 1,
        reminder_every: Duration::from_secs(60 * 60),
        max_attempts_per_outage: 0,
        ..Policy::default()
    };
    let mut s = Sim::new(p);
    for m in 0..=150 {
        s.at(m).poll(ProviderStatus::LoggedOut { reason: Some(401) });
    }
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceLoggedOut, NoticeKind::Reminder, NoticeKind::Reminder]);
    assert_eq!(s.notices[2].dedup_key, "outage:id1:reminder:2");
}

#[test]
fn a_follower_records_the_outage_but_leaves_recovery_to_the_leader() {
    let mut s = Sim::new(Policy::default());
    s.at(0).poll(ProviderStatus::Connected);
    let id = "f1".to_string();
    let ctx = Ctx { now: Ts(MIN), key: &s.key, tenant: "t1", new_id: &id, may_recover: false, watching_since: Ts(0) };
    let out = step(&s.state, Observation::Webhook(WebhookSignal::Closed { reason: Some(428) }), &ctx, &s.policy);
    assert!(out.state.outage.is_some(), "the outage is recorded");
    assert!(out.notices().any(|n| n.kind == NoticeKind::InstanceDown), "and announced");
    assert!(!out.actions.iter().any(|a| matches!(a, Action::Recover { .. })), "but not acted on");
    assert_eq!(out.state.last_restart_attempt, None, "the cooldown is not consumed");
    s.state = out.state;
    let out = s.at(2).poll(closed(428));
    assert!(out.actions.iter().any(|a| matches!(a, Action::Recover { .. })), "the leader's next poll recovers it");
}

#[test]
fn manual_restart_respects_the_cooldown_unless_forced() {
    let mut s = Sim::new(Policy { down_after: 1, ..Policy::default() });
    s.at(0).poll(closed(428)); // automatic attempt at minute 0
    let out = s.at(5).obs(Observation::ManualRestart { force: false });
    assert!(matches!(out.changes.as_slice(), [Change::RecoveryRefused { .. }]));
    let out = s.at(5).obs(Observation::ManualRestart { force: true });
    assert!(out.actions.iter().any(|a| matches!(a, Action::Recover { kind: RecoveryKind::Reconnect, attempt: 0, .. })));
    assert_eq!(out.state.last_restart_attempt, Some(Ts(5 * MIN)));
}

#[test]
fn attempt_budget_carries_over_unless_healthy_for_reset_after() {
    let p =
        Policy { down_after: 1, cooldown: Duration::from_secs(60), max_attempts_per_outage: 2, ..Policy::default() };
    let mut s = Sim::new(p);
    s.at(0).poll(closed(428));
    s.at(2).poll(closed(428));
    s.at(3).poll(ProviderStatus::Connected); // 10 minutes healthy: not enough (reset_after = 1h)
    s.at(13).poll(closed(428));
    assert_eq!(s.recoveries.len(), 2, "budget of 2 already used");
    assert!(s.kinds().contains(&NoticeKind::RestartExhausted));
    s.at(14).poll(ProviderStatus::Connected);
    s.at(200).poll(closed(428)); // healthy for ~3h: fresh budget
    assert_eq!(s.recoveries.len(), 3);
}

mod edges;
mod properties;
