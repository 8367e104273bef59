//! Judgments that must hold across restarts, partial failures and time: no
//! restart storm after a partition, no provider outage made of one instance's
//! errors, no attempt counted that sent nothing, verdicts held while the
//! provider is down. The real engine against the simulator, on SQLite and
//! PostgreSQL alike.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use wa_sentinel::domain::Health;
use wa_sentinel::sim::evolution::{Behaviour, SimEvent};
use wa_sentinel::store::Store;
use wa_sentinel::supervisor::scheduler::Ticks;

use crate::it::supervisor::Rig;
use crate::on_both_backends;

/// Two open sessions `a` and `b`, zombies after 10 minutes without a
/// webhook, one failed poll enough for an outage.
async fn two_sessions_quiet_for_ten_minutes_are_zombies(store: Store) -> Rig {
    Rig::new(store, &[("a", Behaviour::Open), ("b", Behaviour::Open)], |r| {
        r.supervisor.down_after = 1;
        r.supervisor.stale_webhook_after = "10m".into();
    })
    .await
}

/// A cycle, a webhook from each session, another cycle.
async fn both_speak(rig: &Rig, url: &str) {
    rig.cycle().await;
    for n in ["a", "b"] {
        rig.sim.post_webhook(n, SimEvent::MessagesUpsert, Some(url)).await.unwrap();
    }
    wa_sentinel::server::flush(&rig.sup).await;
    rig.cycle().await;
}

/// `n` minutes, a cycle each.
async fn minutes(rig: &Rig, n: usize) {
    for _ in 0..n {
        rig.advance(1);
        rig.cycle().await;
    }
}

/// a speaks again; b stays quiet for the rest of a whole watched period
/// (3 minutes of it have passed): b alone is a zombie, restarted once.
async fn then_only_the_quiet_one_is_a_zombie(rig: &Rig, url: &str) {
    rig.sim.post_webhook("a", SimEvent::MessagesUpsert, Some(url)).await.unwrap();
    wa_sentinel::server::flush(&rig.sup).await;
    minutes(rig, 9).await;
    assert_eq!((rig.restarts("a"), rig.restarts("b")), (0, 1));
}

on_both_backends!(a_provider_partition_longer_than_stale_webhook_after_restarts_no_session);

/// Silence is measured only while watched: after a partition of 30 minutes
/// (three times `stale_webhook_after`) the sessions found open are not
/// zombies; one that stays quiet is, a whole period after the partition ended.
async fn a_provider_partition_longer_than_stale_webhook_after_restarts_no_session(store: Store) {
    let rig = two_sessions_quiet_for_ten_minutes_are_zombies(store).await;
    let url = rig.receiver().await;
    both_speak(&rig, &url).await;
    rig.sim.set_down(true);
    minutes(&rig, 30).await;
    assert_eq!(rig.notice_kinds().await, vec!["provider_unreachable"]);
    rig.sim.set_down(false);
    minutes(&rig, 3).await;
    assert_eq!((rig.restarts("a"), rig.restarts("b")), (0, 0), "no session restarted after the partition");
    assert_eq!(rig.health("a").await, Health::Connected);
    then_only_the_quiet_one_is_a_zombie(&rig, &url).await;
}

on_both_backends!(a_leader_hand_over_restarts_no_session_whose_silence_began_before_it);

/// A replica that takes a provider's lease over has watched it only since
/// then: sessions whose last webhook came half an hour earlier, while another
/// replica led the provider, are not zombies; one that stays quiet is, a
/// whole `stale_webhook_after` after the lease was taken.
async fn a_leader_hand_over_restarts_no_session_whose_silence_began_before_it(store: Store) {
    let rig = two_sessions_quiet_for_ten_minutes_are_zombies(store).await;
    let ticks = Arc::new(Ticks::default());
    rig.sup.attach_ticks(ticks.clone());
    let evo = ticks.provider("evo");
    let take_the_lease = || {
        evo.leader.store(true, Ordering::SeqCst);
        evo.led_since.store(rig.clock.load(Ordering::SeqCst), Ordering::SeqCst);
    };
    take_the_lease();
    let url = rig.receiver().await;
    both_speak(&rig, &url).await;
    // Another replica leads the provider for half an hour; this one polls nothing.
    evo.leader.store(false, Ordering::SeqCst);
    rig.advance(30);
    take_the_lease();
    minutes(&rig, 3).await;
    assert_eq!((rig.restarts("a"), rig.restarts("b")), (0, 0), "no session restarted after the hand-over");
    then_only_the_quiet_one_is_a_zombie(&rig, &url).await;
}

on_both_backends!(instances_answering_500_are_their_own_problem_and_the_provider_stays_up);

/// Ten instances whose status call answers `500 Connection Closed` (broken
/// session objects on the server) among twenty healthy ones, two calls at a
/// time: the provider is not unreachable, every healthy instance is polled
/// every cycle (a real drop among them is seen), and each broken instance
/// gets its own outage after `down_after`.
async fn instances_answering_500_are_their_own_problem_and_the_provider_stays_up(store: Store) {
    let mut instances: Vec<(String, Behaviour)> =
        (0..10).map(|i| (format!("a-broken-{i:02}"), Behaviour::Broken)).collect();
    instances.extend((0..20).map(|i| (format!("b-ok-{i:02}"), Behaviour::Open)));
    let refs: Vec<(&str, Behaviour)> = instances.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    let rig = Rig::new(store, &refs, |r| {
        r.supervisor.down_after = 2;
        r.supervisor.per_provider_concurrency = 2;
    })
    .await;
    for _ in 0..3 {
        rig.advance(1);
        rig.cycle().await;
    }
    assert_eq!(rig.sim.calls("GET", "/instance/connectionState/b-ok-19"), 3, "the healthy ones are polled");
    rig.sim.set_behaviour("b-ok-07", Behaviour::ClosedTransient { reason: 428 });
    for _ in 0..2 {
        rig.advance(1);
        rig.cycle().await;
    }
    let kinds = rig.notice_kinds().await;
    assert!(!kinds.iter().any(|k| k == "provider_unreachable"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "instance_down").count(), 11, "ten broken, one real drop: {kinds:?}");
    assert_eq!(rig.health("b-ok-00").await, Health::Connected);
    assert_eq!(rig.health("a-broken-03").await, Health::Disconnected);
    assert!(rig.connects("b-ok-07") >= 1, "the real drop is reconnected");
}

on_both_backends!(a_half_open_breaker_probes_other_instances_each_cycle);

/// A provider that stops answering (every call times out) opens the breaker;
/// the probes of the next cycles rotate over its instances instead of always
/// hitting the first ones by name.
async fn a_half_open_breaker_probes_other_instances_each_cycle(store: Store) {
    let names: Vec<String> = (0..12).map(|i| format!("n{i:02}")).collect();
    let refs: Vec<(&str, Behaviour)> = names.iter().map(|n| (n.as_str(), Behaviour::Open)).collect();
    let rig = Rig::new(store, &refs, |r| {
        r.supervisor.request_timeout = "1s".into();
        r.supervisor.per_provider_concurrency = 4;
    })
    .await;
    rig.cycle().await;
    rig.sim.set_latency(std::time::Duration::from_millis(1500));
    let calls = || -> Vec<u64> {
        names.iter().map(|n| rig.sim.calls("GET", &format!("/instance/connectionState/{n}"))).collect()
    };
    let mut probed = Vec::new();
    let mut before = calls();
    for _ in 0..3 {
        rig.advance(1);
        rig.cycle().await;
        let now = calls();
        let this: Vec<&str> =
            names.iter().zip(now.iter().zip(&before)).filter(|(_, (a, b))| a > b).map(|(n, _)| n.as_str()).collect();
        probed.push(this.join(","));
        before = now;
    }
    // The first cycle opens the breaker; the next two are half-open.
    assert_eq!(probed[1].split(',').count(), 3, "{probed:?}");
    assert_eq!(probed[2].split(',').count(), 3, "{probed:?}");
    assert_ne!(probed[1], probed[2], "the probes rotate: {probed:?}");
}

on_both_backends!(the_version_is_asked_at_start_after_an_outage_and_hourly_not_every_cycle);

/// Evolution's `GET /` makes the server call WhatsApp's servers: the version
/// is asked on the first cycle, after a provider outage ends, and hourly —
/// not every cycle.
async fn the_version_is_asked_at_start_after_an_outage_and_hourly_not_every_cycle(store: Store) {
    let rig = Rig::new(store, &[("a", Behaviour::Open)], |_| {}).await;
    let roots = || rig.sim.calls("GET", "/");
    rig.cycle().await;
    assert_eq!(roots(), 1, "asked on the first cycle");
    for _ in 0..30 {
        rig.advance(1);
        rig.cycle().await;
    }
    assert_eq!(roots(), 1, "not asked again within the hour");
    rig.advance(31);
    rig.cycle().await;
    assert_eq!(roots(), 2, "asked again after an hour");
    rig.sim.set_down(true);
    for _ in 0..3 {
        rig.advance(1);
        rig.cycle().await;
    }
    assert!(rig.notice_kinds().await.contains(&"provider_unreachable".to_string()));
    let before = roots();
    rig.sim.set_down(false);
    rig.advance(1);
    rig.cycle().await;
    assert_eq!(roots(), before + 1, "asked again once the provider answers after its outage");
    rig.advance(1);
    rig.cycle().await;
    assert_eq!(roots(), before + 1);
}

on_both_backends!(a_webhook_during_a_provider_outage_orders_no_recovery);

/// While the provider's outage is open, a `connecting` webhook (the server
/// booting) orders no recovery call: it could only fail and spend an attempt.
async fn a_webhook_during_a_provider_outage_orders_no_recovery(store: Store) {
    // b's own outage is open (its reconnects do not help) when the provider goes down.
    let rig = Rig::new(store, &[("a", Behaviour::Open), ("b", Behaviour::ReconnectLoop)], |r| {
        r.supervisor.down_after = 1;
    })
    .await;
    let url = rig.receiver().await;
    rig.cycle().await;
    assert_eq!(rig.connects("b"), 1, "b's first reconnect");
    rig.sim.set_down(true);
    for _ in 0..40 {
        rig.advance(1);
        rig.cycle().await;
    }
    assert!(rig.notice_kinds().await.contains(&"provider_unreachable".to_string()));
    let attempts = |r: &wa_sentinel::store::InstanceRecord| r.state.restart_attempts;
    let key = wa_sentinel::domain::InstanceKey::new("evo", "b");
    let before = attempts(&rig.store.instance(&key).await.unwrap().unwrap());
    let booting = SimEvent::ConnectionUpdate { state: "connecting".into(), status_reason: 200 };
    rig.sim.post_webhook("b", booting, Some(&url)).await.unwrap();
    rig.sup.wait_idle().await;
    assert_eq!(attempts(&rig.store.instance(&key).await.unwrap().unwrap()), before, "no attempt spent");
    assert_eq!(rig.connects("b"), 1, "no call while the provider is down");
}

on_both_backends!(a_queued_restart_never_hits_an_instance_recreated_under_the_same_name);

/// A follower's restart request is bound to the record it was made for: once
/// the instance was deleted and created again under its name, the leader
/// refuses it instead of restarting the new one.
async fn a_queued_restart_never_hits_an_instance_recreated_under_the_same_name(store: Store) {
    let rig = Rig::new(store, &[("a", Behaviour::Open), ("b", Behaviour::Open)], |_| {}).await;
    rig.cycle().await;
    let key = wa_sentinel::domain::InstanceKey::new("evo", "a");
    let old = rig.store.instance(&key).await.unwrap().unwrap().id;
    rig.sim.remove_instance("a");
    for _ in 0..4 {
        rig.advance(1);
        rig.cycle().await;
    }
    rig.sim.add_instance("a", Behaviour::Open);
    rig.advance(1);
    rig.cycle().await;
    let new = rig.store.instance(&key).await.unwrap().expect("recreated").id;
    assert_ne!(old, new);
    let req = wa_sentinel::store::ActionRequest {
        id: "r1".into(),
        instance_id: old,
        provider: "evo".into(),
        action: "restart".into(),
        force: true,
        actor: "admin".into(),
        address: "10.0.0.9".into(),
        requested_at: rig.clock.load(std::sync::atomic::Ordering::SeqCst),
    };
    rig.store.request_action(&req).await.unwrap();
    rig.sup.run_requested_actions("evo").await.unwrap();
    rig.sup.wait_idle().await;
    assert_eq!(rig.restarts("a") + rig.connects("a"), 0, "the new instance was not touched");
}

on_both_backends!(a_follower_forwards_a_session_open_webhook_whatever_its_cached_view);

/// A replica that does not lead the provider still has `connected` in its
/// index while the leader has committed a close: a `connection.update` open
/// that reaches this replica ends the outage at once, not at the next poll.
async fn a_follower_forwards_a_session_open_webhook_whatever_its_cached_view(store: Store) {
    use wa_sentinel::domain::health::{Ctx, Observation};
    use wa_sentinel::domain::{InstanceKey, Policy, Ts, WebhookSignal, step};
    let rig = Rig::new(store, &[("a", Behaviour::Open)], |_| {}).await;
    let url = rig.receiver().await;
    rig.cycle().await;
    // From now on this process leads nothing: a follower.
    rig.sup.attach_ticks(std::sync::Arc::new(wa_sentinel::supervisor::scheduler::Ticks::default()));
    // The leader (another replica) commits a close of `a`.
    let key = InstanceKey::new("evo", "a");
    let rec = rig.store.instance(&key).await.unwrap().unwrap();
    let now = Ts(rig.clock.load(std::sync::atomic::Ordering::SeqCst));
    let ctx = Ctx { now, key: &key, tenant: &rec.tenant, new_id: "o-leader", may_recover: false, watching_since: now };
    let closed = Observation::Webhook(WebhookSignal::Closed { reason: Some(428) });
    let out = step(&rec.state, closed, &ctx, &Policy { down_after: 1, ..Policy::default() });
    rig.store.commit_step(&rec, &out, &[], now).await.unwrap();
    assert_eq!(rig.health("a").await, Health::Disconnected);
    // The session reopens and says so to this replica.
    let open = SimEvent::ConnectionUpdate { state: "open".into(), status_reason: 200 };
    rig.sim.post_webhook("a", open, Some(&url)).await.unwrap();
    assert_eq!(rig.health("a").await, Health::Connected, "recovered by the webhook, not left for a poll");
}
