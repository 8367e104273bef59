//! Property tests of `step`: its invariants over random observation
//! sequences, and the poll's fast path held to `step` over random states.

use proptest::prelude::*;

use super::*;

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
