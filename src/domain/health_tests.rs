//! Tests of [`super::step`], one per behaviour rule (docs/rules.md), plus property
//! tests of its invariants over random observation sequences.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;

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

// ------------------------------------------------------------------ properties

#[derive(Debug, Clone)]
enum Op {
    Poll(ProviderStatus),
    Fail(ProviderErrorKind),
    Hook(WebhookSignal),
    Maint(Option<i64>),
    Manual,
    Retire,
}

fn status() -> impl Strategy<Value = ProviderStatus> {
    let reason =
        prop_oneof![Just(None), Just(Some(401)), Just(Some(403)), Just(Some(428)), Just(Some(440)), Just(Some(515))];
    prop_oneof![
        4 => Just(ProviderStatus::Connected),
        1 => any::<bool>().prop_map(|q| ProviderStatus::Connecting { qr_pending: q }),
        3 => reason.clone().prop_map(|reason| ProviderStatus::Disconnected { reason }),
        1 => reason.prop_map(|reason| ProviderStatus::LoggedOut { reason }),
        1 => Just(ProviderStatus::NotFound),
        1 => Just(ProviderStatus::NotLoaded),
        1 => Just(ProviderStatus::Starting),
        1 => Just(ProviderStatus::Unpaired),
        1 => Just(ProviderStatus::NeedsHuman),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let err = prop_oneof![
        Just(ProviderErrorKind::Unreachable),
        Just(ProviderErrorKind::Unauthorized),
        Just(ProviderErrorKind::BadResponse),
        Just(ProviderErrorKind::Unlicensed)
    ];
    let sig = prop_oneof![
        Just(WebhookSignal::Alive),
        Just(WebhookSignal::Open),
        Just(WebhookSignal::Closed { reason: Some(440) }),
        any::<bool>().prop_map(|q| WebhookSignal::Connecting { qr_pending: q }),
        Just(WebhookSignal::Starting),
        Just(WebhookSignal::Closed { reason: Some(428) }),
        Just(WebhookSignal::LoggedOut { reason: Some(401) }),
        Just(WebhookSignal::Neutral),
    ];
    prop_oneof![
        6 => status().prop_map(Op::Poll),
        2 => err.prop_map(Op::Fail),
        3 => sig.prop_map(Op::Hook),
        1 => prop_oneof![Just(None), (1i64..120).prop_map(Some)].prop_map(Op::Maint),
        1 => Just(Op::Manual),
        1 => Just(Op::Retire),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    (1u32..4, 0u64..3, 1u64..90, 0u32..4, 0u32..6, 0u64..3).prop_map(|(down, stale, cd, max, flap, remind)| Policy {
        down_after: down,
        stale_webhook_after: Duration::from_secs(stale * 600),
        cooldown: Duration::from_secs(cd * 60),
        max_attempts_per_outage: max,
        flap_threshold: if flap == 1 { 0 } else { flap },
        reminder_every: Duration::from_secs(remind * 1800),
        ..Policy::default()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn step_invariants_hold_over_random_histories(
        p in policy(),
        ops in proptest::collection::vec((op(), 0i64..20), 1..120),
    ) {
        let mut s = Sim::new(p.clone());
        let mut per_outage: HashMap<String, (u32, u32)> = HashMap::new();
        let mut t = 0i64;
        for (o, dt) in ops {
            t += dt;
            s.at(t);
            let before = s.state.clone();
            // The poll's fast path, on every reachable state.
            if let Some(settled) = before.settled()
                && settled.open_poll_is_noop(s.now, s.watch, &p)
            {
                prop_assert!(open_poll_changes_nothing(&before, s.now, s.watch, &p), "settled {:?} changed", before);
            }
            let obs = match o {
                Op::Poll(st) => Observation::Polled(st),
                Op::Fail(k) => Observation::ProviderFailed(k),
                Op::Hook(sig) => Observation::Webhook(sig),
                Op::Maint(m) => Observation::Maintenance(m.map(|x| Ts((t + x) * MIN))),
                Op::Manual => Observation::ManualRestart { force: false },
                Op::Retire => Observation::Retired,
            };
            let is_provider_error = matches!(obs, Observation::ProviderFailed(_));
            let out = s.obs(obs);

            // Rule 12 is checked against the cause *before* the step: a bug that
            // rewrites the cause inside the step must not hide itself.
            let same_outage = matches!((&before.outage, &out.state.outage), (Some(b), Some(a)) if a.id == b.id);
            let cause_before = before.outage.as_ref().map(|o| o.cause);
            if same_outage {
                let (b, a) = (before.outage.as_ref().unwrap().cause, out.state.outage.as_ref().unwrap().cause);
                let contradicted = matches!(b, Cause::Missing | Cause::NeedsHuman);
                let refined = b == Cause::Silent && a == Cause::Disconnected;
                prop_assert!(a.rank() >= b.rank() || contradicted || refined, "cause downgraded: {:?} -> {:?}", b, a);
                if before.health != Health::Unknown && out.state.health != Health::Unknown {
                    prop_assert!(out.state.health_since <= before.health_since, "since moved inside an outage");
                }
            }
            for a in &out.actions {
                match a {
                    Action::Recover { attempt, .. } => {
                        // Never inside the (growing) cooldown of the previous attempt.
                        if let Some(prev) = before.last_restart_attempt {
                            let used = if *attempt > 0 {
                                out.state.restart_attempts.saturating_sub(1)
                            } else {
                                before.restart_attempts
                            };
                            let need = p.cooldown_after(used);
                            prop_assert!(s.now.since(prev) >= need, "restart inside the cooldown of {:?}", need);
                        }
                        if *attempt > 0 {
                            prop_assert!(
                                !matches!(cause_before, Some(Cause::LoggedOut | Cause::NeedsQr | Cause::Replaced)),
                                "automatic recovery of an outage whose cause was {:?}", cause_before
                            );
                            let cause = out.state.outage.as_ref().map(|o| o.cause);
                            prop_assert!(
                                matches!(cause, Some(Cause::Disconnected | Cause::Connecting | Cause::Silent)),
                                "automatic recovery for {:?}", cause
                            );
                            prop_assert!(!matches!(out.state.health, Health::LoggedOut | Health::Missing));
                            prop_assert!(*attempt <= p.max_attempts_per_outage);
                        }
                    }
                    Action::Notify(n) => {
                        let kind = n.kind;
                        let owed = matches!(kind, NoticeKind::InstanceRecovered | NoticeKind::InstanceRetired)
                            && before.outage.as_ref().is_some_and(|o| o.down_notified);
                        prop_assert!(owed || !out.state.in_maintenance(s.now), "notice {:?} in maintenance", kind);
                        let e = per_outage.entry(n.outage_id.clone().unwrap_or_default()).or_default();
                        if n.kind.is_down_class() { e.0 += 1; }
                        if matches!(n.kind, NoticeKind::InstanceRecovered | NoticeKind::InstanceRetired) {
                            prop_assert!(e.0 == 1, "recovered without a down notice");
                            e.1 += 1;
                        }
                        prop_assert!(e.0 <= 1, "two down-class notices for one outage: {:?}", &n.outage_id);
                        prop_assert!(e.1 <= 1, "two recovery notices for one outage: {:?}", &n.outage_id);
                    }
                }
            }
            if is_provider_error {
                let opened = out.changes.iter().any(|c| matches!(c, Change::OutageOpened { .. }));
                prop_assert!(!opened, "a provider error opened an outage");
                prop_assert_eq!(out.state.health, Health::Unknown);
                prop_assert_eq!(out.state.consecutive_failures, before.consecutive_failures);
                prop_assert!(out.actions.is_empty());
            }
            // Whoever was told an outage began is told it ended, maintenance or not (rule 16).
            for c in &out.changes {
                if let Change::OutageClosed { id, .. } = c
                    && before.outage.as_ref().is_some_and(|o| &o.id == id && o.down_notified)
                {
                    let told = out
                        .notices()
                        .any(|n| {
                            matches!(n.kind, NoticeKind::InstanceRecovered | NoticeKind::InstanceRetired)
                                && n.outage_id.as_deref() == Some(id)
                        });
                    prop_assert!(told, "announced outage {} closed without a recovery notice", id);
                }
            }
            // An open outage always belongs to an instance that is not known to be connected.
            if out.state.outage.is_some() {
                prop_assert!(out.state.health != Health::Connected);
            }
        }
    }
}

// ------------------------------------------- causes never downgrade

fn hook(s: &mut Sim, sig: WebhookSignal) -> StepOutput {
    s.obs(Observation::Webhook(sig))
}

#[test]
fn a_qr_webhook_then_a_plain_connecting_poll_keeps_needs_qr_and_never_reconnects() {
    let mut s = Sim::new(Policy { down_after: 1, ..Policy::default() });
    s.at(0).poll(ProviderStatus::Connected);
    hook(s.at(1), WebhookSignal::Connecting { qr_pending: true });
    assert_eq!(s.state.outage.as_ref().unwrap().cause, Cause::NeedsQr);
    for m in 2..120 {
        s.at(m).poll(ProviderStatus::Connecting { qr_pending: false });
        s.at(m).poll(ProviderStatus::Disconnected { reason: None });
    }
    assert_eq!(s.state.outage.as_ref().unwrap().cause, Cause::NeedsQr, "less information never replaces the cause");
    assert!(s.recoveries.is_empty(), "a session waiting for a QR is never reconnected");
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceLoggedOut]);
}

#[test]
fn a_logout_followed_by_polls_without_a_reason_stays_logged_out() {
    // v1 polls never carry a reason; v2's fetchInstances follow-up may fail.
    let mut s = Sim::new(Policy { down_after: 1, ..Policy::default() });
    s.at(0).poll(ProviderStatus::Connected);
    hook(s.at(1), WebhookSignal::LoggedOut { reason: Some(401) });
    for m in 2..200 {
        s.at(m).poll(ProviderStatus::Disconnected { reason: None });
        s.at(m).poll(ProviderStatus::NotLoaded);
    }
    let o = s.state.outage.as_ref().unwrap();
    assert_eq!(o.cause, Cause::LoggedOut);
    assert!(o.reason.contains("401"), "{}", o.reason);
    assert!(s.recoveries.is_empty(), "rule 5: never a reconnect for a logged-out session");
    assert_eq!(s.state.health, Health::LoggedOut);
}

#[test]
fn a_never_paired_instance_waits_for_a_qr_from_the_first_poll() {
    let mut s = Sim::new(Policy::default()); // down_after 2: needs-a-person needs no second look
    let out = s.at(0).poll(ProviderStatus::Unpaired);
    assert_eq!(out.state.outage.as_ref().map(|o| o.cause), Some(Cause::NeedsQr));
    for m in 1..300 {
        s.at(m).poll(ProviderStatus::Disconnected { reason: None });
        hook(s.at(m), WebhookSignal::Connecting { qr_pending: false });
        s.at(m).poll(ProviderStatus::Unpaired);
    }
    assert!(s.recoveries.is_empty(), "never a recovery call for a session that was never paired");
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceLoggedOut], "one notice that says a QR scan is needed");
    assert!(s.notices[0].reason.contains("QR"), "{}", s.notices[0].reason);
}

#[test]
fn a_reconnect_loop_keeps_cause_and_since_and_writes_no_event_per_flip() {
    // The real server: every poll says `close`, the debounced `connecting`
    // webhooks (one per 5 s) keep coming.
    let mut s = Sim::new(Policy::default());
    s.at(0).poll(ProviderStatus::Connected);
    s.changes.clear();
    let mut t = 0;
    for i in 1..=120 {
        t = i * MIN / 12; // every 5 s for 10 minutes
        s.now = Ts(t);
        if i % 6 == 0 {
            s.poll(ProviderStatus::Disconnected { reason: Some(428) });
        } else {
            hook(&mut s, WebhookSignal::Connecting { qr_pending: false });
        }
    }
    let _ = t;
    let o = s.state.outage.clone().expect("an outage is open");
    assert_eq!(o.cause, Cause::Disconnected);
    assert_eq!(s.state.health_since, Ts(MIN / 2), "since = the first close, not the last flip");
    let health_changes = s.changes.iter().filter(|c| matches!(c, Change::HealthChanged { .. })).count();
    let cause_changes = s.changes.iter().filter(|c| matches!(c, Change::CauseChanged { .. })).count();
    assert!(health_changes <= 2, "{health_changes} health changes: one per flip?");
    assert_eq!(cause_changes, 0);
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceDown]);
}

#[test]
fn a_logged_out_outage_ends_on_a_live_session_not_on_a_late_message() {
    let mut s = Sim::new(Policy::default());
    s.at(0).poll(ProviderStatus::Connected);
    hook(s.at(1), WebhookSignal::LoggedOut { reason: Some(401) });
    let out = hook(s.at(2), WebhookSignal::Alive); // a late message retry from the provider
    assert!(out.state.outage.is_some(), "a message is not a live session");
    assert_eq!(out.state.health, Health::LoggedOut);
    hook(s.at(3), WebhookSignal::LoggedOut { reason: Some(401) });
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceLoggedOut], "no recovered/logged-out pair");
    hook(s.at(4), WebhookSignal::Open);
    assert!(s.state.outage.is_none());
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceLoggedOut, NoticeKind::InstanceRecovered]);
}

#[test]
fn a_message_still_recovers_a_transient_outage_at_once() {
    let mut s = Sim::new(Policy::default());
    s.at(0).poll(ProviderStatus::Connected);
    hook(s.at(1), WebhookSignal::Closed { reason: Some(428) });
    hook(s.at(2), WebhookSignal::Alive);
    assert!(s.state.outage.is_none(), "rule 7");
}

#[test]
fn missing_is_contradicted_by_a_provider_that_lists_the_instance_again() {
    let mut s = Sim::new(Policy { down_after: 1, ..Policy::default() });
    s.at(0).poll(ProviderStatus::NotFound);
    assert_eq!(s.state.outage.as_ref().unwrap().cause, Cause::Missing);
    s.at(1).poll(closed(428));
    assert_eq!(s.state.outage.as_ref().unwrap().cause, Cause::Disconnected, "the provider says it exists");
    assert_eq!(s.recoveries.len(), 1);
}

// ------------------------------------------------- lifecycle

#[test]
fn retiring_closes_an_announced_outage_with_one_final_notice() {
    let mut s = Sim::new(Policy { down_after: 1, ..Policy::default() });
    s.at(0).poll(ProviderStatus::Connected);
    s.at(1).poll(closed(428));
    s.at(2).poll(ProviderStatus::NotFound);
    let out = s.at(3).obs(Observation::Retired);
    assert!(out.state.outage.is_none());
    assert!(out.changes.contains(&Change::OutageClosed { id: "id2".into(), recovered_by: RecoveredBy::Retired }));
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceDown, NoticeKind::InstanceRetired]);
    assert_eq!(s.notices[1].dedup_key, "outage:id2:instance_retired");
    assert!(out.actions.iter().all(|a| matches!(a, Action::Notify(_))));
}

#[test]
fn retiring_without_an_announced_outage_says_nothing() {
    let mut s = Sim::new(Policy { down_after: 1, ..Policy::default() });
    s.at(0).obs(Observation::Maintenance(Some(Ts(60 * MIN))));
    s.at(1).poll(closed(428)); // an outage nobody was told about
    let out = s.at(2).obs(Observation::Retired);
    assert!(out.state.outage.is_none());
    assert!(s.notices.is_empty());
    let mut r = Sim::new(Policy::default());
    r.at(0).poll(ProviderStatus::Connected);
    let out = r.at(1).obs(Observation::Retired);
    assert!(out.actions.is_empty());
}

// ------------------------------------------------ maintenance

#[test]
fn an_outage_announced_before_maintenance_gets_its_recovery_notice() {
    let mut s = Sim::new(Policy { down_after: 1, ..Policy::default() });
    s.at(0).poll(ProviderStatus::Connected);
    s.at(1).poll(closed(428));
    s.at(2).obs(Observation::Maintenance(Some(Ts(60 * MIN))));
    s.at(3).poll(ProviderStatus::Connected);
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceDown, NoticeKind::InstanceRecovered], "owed notices are paid");
}

#[test]
fn an_outage_that_began_and_ended_inside_maintenance_stays_silent() {
    let mut s = Sim::new(Policy { down_after: 1, ..Policy::default() });
    s.at(0).obs(Observation::Maintenance(Some(Ts(60 * MIN))));
    s.at(1).poll(closed(428));
    s.at(2).poll(ProviderStatus::Connected);
    s.at(61).poll(ProviderStatus::Connected);
    assert!(s.notices.is_empty());
    assert!(s.recoveries.is_empty());
}

/// A logout read "logged out: logged out (statusReason 401)".
/// The stored reason says each thing once and keeps the code for machines;
/// the notice carries the cause and the code for the renderer.
#[test]
fn reasons_say_each_thing_once_and_notices_carry_cause_and_code() {
    assert_eq!(describe("logged out", Some(401)), "logged out (statusReason 401)");
    assert_eq!(describe("connection closed", Some(515)), "connection closed: restart required (statusReason 515)");
    assert_eq!(describe("connection closed", None), "connection closed");
    for code in [401, 403, 428, 440, 515, 999] {
        assert_eq!(status_code_in(&describe("connection closed", Some(code))), Some(code));
    }
    assert_eq!(status_code_in("open"), None);
    let v = classify_status(ProviderStatus::LoggedOut { reason: Some(401) }, true);
    assert_eq!(v.reason, "logged out (statusReason 401)");
}

// ------------------------------------------- the poll's fast path

/// What `Supervisor::observe_with` checks before it skips a write.
fn open_poll_changes_nothing(state: &InstanceState, now: Ts, watching_since: Ts, policy: &Policy) -> bool {
    let key = InstanceKey::new("evo", "inst");
    let ctx = Ctx { now, key: &key, tenant: "t1", new_id: "x", may_recover: true, watching_since };
    let out = step(state, Observation::Polled(ProviderStatus::Connected), &ctx, policy);
    out.state == *state && out.actions.is_empty() && out.changes.is_empty()
}

fn opt_ts() -> impl Strategy<Value = Option<Ts>> {
    prop_oneof![Just(None), (0i64..200).prop_map(|m| Some(Ts(m * MIN)))]
}

/// Any state at all, biased towards settled ones (a random state is rarely settled).
fn any_state() -> impl Strategy<Value = InstanceState> {
    let health = prop_oneof![4 => Just(Health::Connected), 1 => proptest::sample::select(Health::ALL.to_vec())];
    let reason = prop_oneof![4 => Just("open".to_string()), 1 => Just("connecting".to_string())];
    let outage = prop_oneof![4 => Just(None), 1 => Just(Some(OutageState {
        id: "o1".into(),
        started_at: Ts(0),
        cause: Cause::Disconnected,
        reason: "connection closed".into(),
        restart_attempts: 0,
        down_notified: true,
        exhausted_notified: false,
        reminders_sent: 0,
        last_notice_at: None,
    }))];
    let flapping = prop_oneof![4 => Just(None), 1 => Just(Some(Flapping { id: "f1".into(), since: Ts(0) }))];
    (
        (health, reason, prop_oneof![4 => Just(0u32), 1 => 1u32..3], opt_ts(), opt_ts(), opt_ts()),
        (opt_ts(), 0u32..3, 0u32..2, opt_ts(), proptest::collection::vec((0i64..200).prop_map(|m| Ts(m * MIN)), 0..3)),
        (flapping, prop_oneof![4 => Just(None), 1 => opt_ts()], outage),
    )
        .prop_map(
            |(
                (health, reason, consecutive_failures, connected_at, disconnected_at, last_webhook_at),
                (last_restart_attempt, restart_attempts, replaced_count, replaced_at, flap_history),
                (flapping, maintenance_until, outage),
            )| InstanceState {
                health,
                reason,
                health_since: Ts(0),
                consecutive_failures,
                connected_at,
                disconnected_at,
                last_webhook_at,
                last_restart_attempt,
                restart_attempts,
                replaced_count,
                replaced_at,
                flap_history,
                flapping,
                maintenance_until,
                outage,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// A poll that finds a settled instance open, before its silence
    /// is due, is exactly the no-op `step` would have found — whatever else
    /// the state holds (restart budget, flap history, 440 counts).
    #[test]
    fn step_of_a_settled_open_poll_changes_nothing(
        state in any_state(), p in policy(), now in 0i64..400, watch in 0i64..400,
    ) {
        let (now, watch) = (Ts(now * MIN), Ts(watch.min(now) * MIN));
        if let Some(settled) = state.settled()
            && settled.open_poll_is_noop(now, watch, &p)
        {
            prop_assert!(open_poll_changes_nothing(&state, now, watch, &p), "settled {:?} changed at {:?}", state, now);
        }
    }
}

/// The fast path is taken where it matters: a connected instance whose
/// webhooks flow is settled, and stops being a no-op exactly when its
/// silence is due (then the full step runs and decides the zombie).
#[test]
fn a_connected_instance_is_settled_until_its_silence_is_due() {
    let p = Policy { stale_webhook_after: Duration::from_secs(30 * 60), ..Policy::default() };
    let mut s = Sim::new(p.clone());
    s.at(0).poll(ProviderStatus::Connected);
    s.at(5).obs(Observation::Webhook(WebhookSignal::Alive));
    let settled = s.state.settled().expect("a connected instance with webhooks is settled");
    assert_eq!(settled.silence_from, Some(Ts(5 * MIN)));
    assert!(settled.open_poll_is_noop(Ts(34 * MIN), Ts(0), &p));
    assert!(!settled.open_poll_is_noop(Ts(35 * MIN), Ts(0), &p), "silence due: the full step decides");
    assert!(!open_poll_changes_nothing(&s.state, Ts(35 * MIN), Ts(0), &p));
    assert!(settled.open_poll_is_noop(Ts(35 * MIN), Ts(10 * MIN), &p), "watched only since minute 10");
    s.at(36).poll(ProviderStatus::Disconnected { reason: Some(428) });
    assert!(s.state.settled().is_none(), "down: not settled");
}

// ------------------------------------------- silence is measured only while watched

/// A restart of wa-sentinel (or a lease taken, a partition ended) starts the
/// watch again: sessions whose last webhook is older than the gap are not
/// zombies until a whole `stale_webhook_after` of watching has passed.
#[test]
fn a_session_is_never_judged_silent_before_a_whole_stale_period_of_watching() {
    let p = Policy { down_after: 1, stale_webhook_after: Duration::from_secs(10 * 60), ..Policy::default() };
    let mut s = Sim::new(p);
    s.at(0).poll(ProviderStatus::Connected);
    s.at(1).obs(Observation::Webhook(WebhookSignal::Alive));
    // The daemon was stopped from minute 2 to minute 32 and starts watching again.
    s.watch = Ts(32 * MIN);
    for m in 32..42 {
        s.at(m).poll(ProviderStatus::Connected);
    }
    assert_eq!(s.state.health, Health::Connected, "silent for 9 watched minutes only");
    assert!(s.recoveries.is_empty() && s.notices.is_empty());
    // Webhooks resume: never a zombie.
    s.at(40).obs(Observation::Webhook(WebhookSignal::Alive));
    s.at(45).poll(ProviderStatus::Connected);
    assert_eq!(s.state.health, Health::Connected);
    // A real zombie is still found, a whole period after the watch began.
    let mut z = Sim::new(s.policy.clone());
    z.at(0).poll(ProviderStatus::Connected);
    z.watch = Ts(32 * MIN);
    z.at(41).poll(ProviderStatus::Connected);
    assert_eq!(z.state.health, Health::Connected);
    z.at(42).poll(ProviderStatus::Connected);
    assert_eq!(z.state.health, Health::Degraded, "ten watched minutes without a webhook");
    assert_eq!(z.recoveries, vec![(Ts(42 * MIN), RecoveryKind::Restart, 1)]);
}

/// A session closed for longer than `stale_webhook_after` and then found open
/// by a poll has just reopened: its outage ends, and it is not restarted again.
#[test]
fn a_poll_that_finds_a_closed_session_open_ends_its_outage() {
    let p = Policy { down_after: 1, stale_webhook_after: Duration::from_secs(10 * 60), ..Policy::default() };
    let mut s = Sim::new(p);
    s.at(0).poll(ProviderStatus::Connected);
    s.at(1).poll(closed(428));
    assert!(s.state.outage.is_some());
    for m in 2..40 {
        s.at(m).poll(closed(428));
    }
    let before = s.recoveries.len();
    s.at(40).poll(ProviderStatus::Connected);
    assert!(s.state.outage.is_none(), "open after a close: the outage ends");
    assert_eq!(s.state.health, Health::Connected);
    assert_eq!(s.kinds().last(), Some(&NoticeKind::InstanceRecovered));
    for m in 41..49 {
        s.at(m).poll(ProviderStatus::Connected);
    }
    assert_eq!(s.recoveries.len(), before, "no reconnect of a session that is open");
    assert_eq!(s.state.health, Health::Connected, "its silence counts from the reopening");
    // A logged-out session re-paired long after is recovered the same way.
    let mut l = Sim::new(s.policy.clone());
    l.at(0).poll(ProviderStatus::Connected);
    l.at(1).poll(ProviderStatus::LoggedOut { reason: Some(401) });
    l.at(60).poll(ProviderStatus::Connected);
    assert!(l.state.outage.is_none());
    assert_eq!(l.kinds(), vec![NoticeKind::InstanceLoggedOut, NoticeKind::InstanceRecovered]);
}

/// A zombie's outage is not ended by a poll (an open session is no evidence
/// of events), not even after a restart of wa-sentinel: only a webhook ends it.
#[test]
fn a_silent_outage_outlives_a_restart_of_the_watch() {
    let p = Policy { down_after: 1, stale_webhook_after: Duration::from_secs(10 * 60), ..Policy::default() };
    let mut s = Sim::new(p);
    s.at(0).poll(ProviderStatus::Connected);
    s.at(11).poll(ProviderStatus::Connected);
    assert_eq!(s.state.outage.as_ref().map(|o| o.cause), Some(Cause::Silent));
    s.watch = Ts(20 * MIN);
    s.at(21).poll(ProviderStatus::Connected);
    assert_eq!(s.state.outage.as_ref().map(|o| o.cause), Some(Cause::Silent));
    s.at(22).obs(Observation::Webhook(WebhookSignal::Alive));
    assert!(s.state.outage.is_none());
}

// ------------------------------------------- attempts that send nothing are not restarts

/// A session the provider is starting itself gets no call: its outage is
/// announced, but no attempt is spent, so once it turns into a state with a
/// real remedy (stopped → start) it gets that remedy at once.
#[test]
fn a_starting_session_spends_no_attempt_and_a_stopped_one_gets_its_start() {
    let mut s = Sim::new(Policy { down_after: 2, ..Policy::default() });
    s.at(0).poll(ProviderStatus::Connected);
    for m in 1..=200 {
        s.at(m).poll(ProviderStatus::Starting);
    }
    assert!(s.recoveries.is_empty(), "nothing to call while the provider starts the session");
    assert_eq!(s.kinds(), vec![NoticeKind::InstanceDown], "announced once, never exhausted");
    assert_eq!(s.notices[0].restart_attempts, 0, "the notice says no restart was sent");
    assert_eq!(s.state.restart_attempts, 0);
    assert_eq!(s.state.last_restart_attempt, None, "no cooldown started");
    s.at(201).poll(ProviderStatus::NotLoaded);
    assert_eq!(s.recoveries, vec![(Ts(201 * MIN), RecoveryKind::Reconnect, 1)]);
    // A `starting` webhook in between orders nothing either.
    let out = s.at(202).obs(Observation::Webhook(WebhookSignal::Starting));
    assert!(!out.actions.iter().any(|a| matches!(a, Action::Recover { .. })));
}

/// A call the provider client decided not to send gives its attempt back:
/// no budget spent, no cooldown started — unless another attempt was
/// ordered since.
#[test]
fn a_skipped_call_gives_its_attempt_back() {
    let mut s = Sim::new(Policy { down_after: 1, ..Policy::default() });
    s.at(0).poll(ProviderStatus::Connected);
    let out = s.at(1).poll(closed(428));
    let Some(Action::Recover { attempt: 1, previous: None, .. }) =
        out.actions.iter().find(|a| matches!(a, Action::Recover { .. }))
    else {
        panic!("attempt 1 ordered: {:?}", out.actions)
    };
    // A stale report (another attempt was ordered at another time) changes nothing.
    let stale = Observation::RecoverySkipped { attempt: 1, scheduled_at: Ts(0), previous: None };
    let out = s.at(1).obs(stale);
    assert!(out.changes.is_empty());
    let out = s.at(1).obs(Observation::RecoverySkipped { attempt: 1, scheduled_at: Ts(MIN), previous: None });
    assert_eq!(out.changes, vec![Change::RecoverySkipped { attempt: 1 }]);
    assert_eq!(s.state.restart_attempts, 0);
    assert_eq!(s.state.outage.as_ref().map(|o| o.restart_attempts), Some(0));
    assert_eq!(s.state.last_restart_attempt, None);
    // The next poll may order the attempt again at once: no cooldown ran.
    s.at(2).poll(closed(428));
    assert_eq!(s.recoveries.iter().map(|r| (r.0.0 / MIN, r.2)).collect::<Vec<_>>(), vec![(1, 1), (2, 1)]);
    // A manual restart that sent nothing starts no cooldown either.
    let mut m = Sim::new(Policy::default());
    m.at(0).poll(ProviderStatus::Connected);
    m.at(5).obs(Observation::ManualRestart { force: false });
    m.at(5).obs(Observation::RecoverySkipped { attempt: 0, scheduled_at: Ts(5 * MIN), previous: None });
    assert_eq!(m.state.last_restart_attempt, None);
    let out = m.at(6).obs(Observation::ManualRestart { force: false });
    assert!(out.actions.iter().any(|a| matches!(a, Action::Recover { .. })), "not refused by a cooldown");
}
