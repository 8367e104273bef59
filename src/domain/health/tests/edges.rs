//! The edges of the rules: causes that never downgrade, the lifecycle,
//! maintenance, silence measured only while watched, attempts that send
//! nothing.

use super::*;

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
