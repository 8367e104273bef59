//! The supervisor engine end to end (rules 1–9, docs/rules.md): the real engine
//! against the Evolution simulator and a real database, one test per rule, on
//! SQLite and PostgreSQL alike.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::json;
use wa_sentinel::config::raw::{RawInstance, RawProvider};
use wa_sentinel::config::{self, RawConfig};
use wa_sentinel::domain::{Health, InstanceKey, Ts};
use wa_sentinel::sim::evolution::{Behaviour, SimOptions, Simulator};
use wa_sentinel::store::{InstanceFilter, Store};
use wa_sentinel::supervisor::Supervisor;

use crate::on_both_backends;

const MIN: i64 = 60_000;

pub struct Rig {
    pub sim: Simulator,
    pub sup: Arc<Supervisor>,
    pub store: Store,
    pub clock: Arc<AtomicI64>,
}

impl Rig {
    pub async fn new(store: Store, instances: &[(&str, Behaviour)], tweak: impl FnOnce(&mut RawConfig)) -> Rig {
        let sim = Simulator::start(SimOptions {
            instances: instances.iter().map(|(n, b)| (n.to_string(), *b)).collect(),
            ..SimOptions::default()
        })
        .await
        .unwrap();
        let mut raw = RawConfig::default();
        raw.providers.push(RawProvider {
            name: "evo".into(),
            kind: "evolution".into(),
            base_url: sim.base_url(),
            api_version: Some("v2".into()),
            api_key: Some(sim.api_key().into()),
            webhook_token: Some("hooktoken".into()),
            discover: true,
            default_tenant: Some("unassigned".into()),
            ..Default::default()
        });
        raw.server.public_url = Some("https://sentinel.example.com".into());
        raw.supervisor.request_timeout = "2s".into();
        raw.supervisor.settle_delay = "0s".into();
        tweak(&mut raw);
        let cfg = config::validate(raw, &|_| "test".into()).expect("valid config");
        let clock = Arc::new(AtomicI64::new(1_800_000_000_000));
        let c = clock.clone();
        let sup = Supervisor::new(Arc::new(cfg), store.clone(), None, Arc::new(move || Ts(c.load(Ordering::SeqCst))))
            .unwrap();
        Rig { sim, sup, store, clock }
    }

    pub fn advance(&self, minutes: i64) {
        self.clock.fetch_add(minutes * MIN, Ordering::SeqCst);
    }

    pub fn advance_ms(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    /// The real receiver (router, debounce, writer task) on a loopback port,
    /// driven by this rig's clock; returns its webhook URL for provider `evo`.
    pub async fn receiver(&self) -> String {
        let state = wa_sentinel::server::start_background(
            self.sup.clone(),
            Arc::new(wa_sentinel::supervisor::scheduler::Ticks::default()),
            tokio_util::sync::CancellationToken::new(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(wa_sentinel::server::serve(listener, state, tokio_util::sync::CancellationToken::new()));
        format!("http://{addr}/webhooks/evo/hooktoken")
    }

    /// One poll cycle, then wait for its recovery actions and verification polls.
    pub async fn cycle(&self) {
        self.sup.poll_cycle().await.unwrap();
        self.sup.wait_idle().await;
    }

    pub fn connects(&self, name: &str) -> u64 {
        self.sim.calls("GET", &format!("/instance/connect/{name}"))
    }

    pub fn restarts(&self, name: &str) -> u64 {
        self.sim.calls("POST", &format!("/instance/restart/{name}"))
    }

    pub async fn health(&self, name: &str) -> Health {
        self.store.instance(&InstanceKey::new("evo", name)).await.unwrap().unwrap().state.health
    }

    /// Outbox dedup keys, in order.
    pub async fn notices(&self) -> Vec<String> {
        self.store.outbox_all().await.unwrap().into_iter().map(|(k, _, _)| k).collect()
    }

    pub async fn notice_kinds(&self) -> Vec<String> {
        self.notices().await.iter().map(|k| k.rsplit(':').next().unwrap().to_string()).collect()
    }
}

on_both_backends!(
    rule1_every_instance_is_polled_every_cycle_including_disconnected_ones,
    rule2_provider_down_gives_one_provider_notice_no_instance_notices_no_restarts,
    rule3_outage_opens_after_down_after,
    rule4_closed_transient_instance_is_revived_by_connect_exactly_once_inside_the_cooldown,
    rule5_logged_out_and_banned_are_never_restarted,
    rule6_one_down_and_one_recovered_notice_per_outage,
    rule6_flapping_collapses_into_one_notice,
    rule8_webhook_missing_wrong_url_or_missing_events_repaired_once_then_left_alone,
    rule9_tenant_comes_from_the_mapping_never_from_a_guess,
    zombie_open_instance_is_restarted_not_reconnected,
    deleted_instance_is_reported_missing_then_retired,
    deleting_an_instance_in_an_outage_closes_the_outage_as_retired,
    a_recreated_instance_starts_with_a_fresh_record,
    a_never_paired_instance_gets_one_needs_qr_notice_and_no_recovery_call,
    ten_minutes_of_a_reconnect_loop_write_a_handful_of_events,
    the_audit_reports_but_never_rewrites_an_instance_in_maintenance,
    ungrouped_provider_notices_skip_instances_in_maintenance,
    a_verification_poll_older_than_a_webhook_recovery_is_dropped,
    webhook_repaired_notices_belong_to_no_outage,
    a_settled_instance_costs_no_record_read_and_a_newer_commit_is_never_skipped,
);

async fn rule1_every_instance_is_polled_every_cycle_including_disconnected_ones(store: Store) {
    let all = [
        ("open", Behaviour::Open),
        ("closed", Behaviour::ClosedTransient { reason: 428 }),
        ("loggedout", Behaviour::LoggedOut),
        ("banned", Behaviour::Banned),
        ("qr", Behaviour::ConnectingWithQr),
    ];
    let rig = Rig::new(store, &all, |_| {}).await;
    for round in 1..=3u64 {
        rig.cycle().await;
        rig.advance(1);
        for (name, _) in all {
            // At least once per cycle (a recovery's verification poll adds one).
            let calls = rig.sim.calls("GET", &format!("/instance/connectionState/{name}"));
            assert!(calls >= round, "{name} polled {calls} times in {round} rounds");
        }
    }
    assert_eq!(rig.health("loggedout").await, Health::LoggedOut);
    assert_eq!(rig.health("qr").await, Health::Connecting);
}

async fn rule2_provider_down_gives_one_provider_notice_no_instance_notices_no_restarts(store: Store) {
    let rig = Rig::new(store, &[("a", Behaviour::Open), ("b", Behaviour::ClosedTransient { reason: 428 })], |r| {
        r.supervisor.down_after = 2;
    })
    .await;
    rig.cycle().await; // discovers both; b's first bad poll
    rig.sim.set_down(true);
    for _ in 0..4 {
        rig.advance(1);
        rig.cycle().await;
    }
    assert_eq!(rig.health("a").await, Health::Unknown);
    assert_eq!(rig.health("b").await, Health::Unknown, "unknown, never disconnected");
    assert_eq!(rig.connects("b"), 0);
    assert_eq!(rig.notice_kinds().await, vec!["provider_unreachable"]);
    // The provider returns: one provider_recovered; b (still down) gets its own notice after down_after.
    rig.sim.set_down(false);
    rig.advance(1);
    rig.cycle().await;
    rig.advance(1);
    rig.cycle().await;
    let kinds = rig.notice_kinds().await;
    assert_eq!(kinds[0], "provider_unreachable");
    assert_eq!(kinds.iter().filter(|k| *k == "provider_recovered").count(), 1, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "instance_down").count(), 1, "{kinds:?}");
    assert!(
        rig.store.outages(Some(&InstanceKey::new("evo", "a")), false, 10).await.unwrap().is_empty(),
        "a never went down"
    );
    assert_eq!(rig.connects("b"), 1, "b is revived once the provider answers again");
}

async fn rule3_outage_opens_after_down_after(store: Store) {
    let rig = Rig::new(store, &[("b", Behaviour::ClosedTransient { reason: 428 })], |r| {
        r.supervisor.down_after = 3;
    })
    .await;
    for _ in 0..2 {
        rig.cycle().await;
        rig.advance(1);
    }
    assert!(rig.notices().await.is_empty());
    assert_eq!(rig.connects("b"), 0);
    rig.cycle().await;
    assert_eq!(rig.notice_kinds().await[0], "instance_down");
    assert_eq!(rig.connects("b"), 1);
}

async fn rule4_closed_transient_instance_is_revived_by_connect_exactly_once_inside_the_cooldown(store: Store) {
    let rig = Rig::new(store, &[("b", Behaviour::ClosedTransient { reason: 428 })], |r| {
        r.supervisor.down_after = 1;
        r.restart.cooldown = "30m".into();
    })
    .await;
    rig.cycle().await;
    assert_eq!(rig.connects("b"), 1, "reconnect: GET /instance/connect");
    assert_eq!(rig.restarts("b"), 0, "v2 POST /instance/restart is a no-op on a closed session");
    assert_eq!(rig.health("b").await, Health::Connected, "the verification poll saw it open");
    // It drops again within the cooldown: no second call.
    for _ in 0..10 {
        rig.sim.set_behaviour("b", Behaviour::ClosedTransient { reason: 428 });
        rig.advance(2);
        rig.cycle().await;
    }
    assert_eq!(rig.connects("b"), 1, "never inside the cooldown");
    rig.advance(31);
    rig.cycle().await;
    assert_eq!(rig.connects("b"), 2, "again once the cooldown has passed");
    let rec = rig.store.instance(&InstanceKey::new("evo", "b")).await.unwrap().unwrap();
    let kinds: Vec<String> = rig.store.events(&rec.id, 200).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&"recovery_result".to_string()) && kinds.contains(&"recovery_verified".to_string()));
}

async fn rule5_logged_out_and_banned_are_never_restarted(store: Store) {
    let rig = Rig::new(store, &[("lo", Behaviour::LoggedOut), ("ban", Behaviour::Banned)], |r| {
        r.supervisor.down_after = 1;
    })
    .await;
    for _ in 0..5 {
        rig.cycle().await;
        rig.advance(60);
    }
    for n in ["lo", "ban"] {
        assert_eq!(rig.connects(n) + rig.restarts(n), 0, "{n} restarted");
    }
    let mut kinds = rig.notice_kinds().await;
    kinds.sort();
    assert_eq!(kinds, vec!["instance_logged_out", "instance_logged_out"]);
}

async fn rule6_one_down_and_one_recovered_notice_per_outage(store: Store) {
    let rig = Rig::new(store, &[("b", Behaviour::Open)], |r| {
        r.supervisor.down_after = 2;
        r.restart.max_attempts_per_outage = 0; // let it stay down
    })
    .await;
    rig.cycle().await;
    rig.sim.set_behaviour("b", Behaviour::ClosedTransient { reason: 408 });
    for _ in 0..6 {
        rig.advance(1);
        rig.cycle().await;
    }
    rig.sim.set_behaviour("b", Behaviour::Open);
    for _ in 0..3 {
        rig.advance(1);
        rig.cycle().await;
    }
    let keys = rig.notices().await;
    let kinds: Vec<&str> = keys.iter().map(|k| k.rsplit(':').next().unwrap()).collect();
    assert_eq!(kinds, vec!["instance_down", "restart_exhausted", "instance_recovered"]);
    let outage = |k: &str| k.split(':').nth(1).unwrap().to_string();
    assert_eq!(outage(&keys[0]), outage(&keys[2]), "both name the same outage");
}

async fn rule6_flapping_collapses_into_one_notice(store: Store) {
    let rig = Rig::new(store, &[("f", Behaviour::Open)], |r| {
        r.supervisor.down_after = 1;
        r.alerts.flap_threshold = 4;
        r.restart.max_attempts_per_outage = 0;
    })
    .await;
    rig.cycle().await;
    for i in 0..12 {
        let b = if i % 2 == 0 { Behaviour::ClosedTransient { reason: 428 } } else { Behaviour::Open };
        rig.sim.set_behaviour("f", b);
        rig.advance(1);
        rig.cycle().await;
    }
    let kinds = rig.notice_kinds().await;
    assert_eq!(kinds.iter().filter(|k| *k == "instance_flapping").count(), 1, "{kinds:?}");
    assert!(kinds.iter().filter(|k| *k == "instance_down").count() <= 2, "{kinds:?}");
}

async fn rule8_webhook_missing_wrong_url_or_missing_events_repaired_once_then_left_alone(store: Store) {
    let rig = Rig::new(
        store,
        &[("none", Behaviour::Open), ("elsewhere", Behaviour::Open), ("fewer", Behaviour::Open)],
        |_| {},
    )
    .await;
    rig.sup.sync_inventory().await.unwrap();
    let row = |url: &str, events: Vec<&str>| json!({"url": url, "enabled": true, "events": events, "webhookByEvents": false, "webhookBase64": false, "headers": {}});
    rig.sim.set_webhook_config("elsewhere", Some(row("https://old.example.com/hook", vec!["MESSAGES_UPSERT"])));
    rig.sim.set_webhook_config(
        "fewer",
        Some(row("https://sentinel.example.com/webhooks/evo/hooktoken", vec!["MESSAGES_UPSERT", "CHATS_UPSERT"])),
    );
    let first = rig.sup.webhook_audit().await.unwrap();
    assert_eq!((first.repaired, first.ok, first.failed, first.mismatched), (3, 0, 0, 0), "{first:?}");
    let desired = "https://sentinel.example.com/webhooks/evo/hooktoken";
    for n in ["none", "elsewhere", "fewer"] {
        let w = rig.sim.webhook_config(n).unwrap();
        assert_eq!(w["url"], desired, "{n}");
        assert_eq!(w["enabled"], true);
        let events: Vec<&str> = w["events"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
        for e in ["MESSAGES_UPSERT", "MESSAGES_UPDATE", "CONNECTION_UPDATE", "QRCODE_UPDATED", "SEND_MESSAGE"] {
            assert!(events.contains(&e), "{n} lacks {e}: {events:?}");
        }
    }
    let kept = rig.sim.webhook_config("fewer").unwrap();
    assert!(kept["events"].as_array().unwrap().iter().any(|e| e == "CHATS_UPSERT"), "operator event kept");
    let sets = rig.sim.calls("POST", "/webhook/set/none");
    let second = rig.sup.webhook_audit().await.unwrap();
    assert_eq!((second.repaired, second.ok), (0, 3));
    assert_eq!(rig.sim.calls("POST", "/webhook/set/none"), sets, "left alone once correct");
    assert!(rig.notices().await.is_empty(), "webhook_repaired notices are off by default");
}

async fn rule9_tenant_comes_from_the_mapping_never_from_a_guess(store: Store) {
    let rig = Rig::new(store, &[("mapped", Behaviour::Open), ("stranger", Behaviour::Open)], |r| {
        r.instances.push(RawInstance {
            provider: "evo".into(),
            name: "mapped".into(),
            tenant: Some("tenant_1".into()),
            labels: BTreeMap::from([("plan".into(), "pro".into())]),
            ..Default::default()
        });
    })
    .await;
    rig.cycle().await;
    let all = rig.store.instances(&InstanceFilter::default()).await.unwrap();
    let tenant = |n: &str| all.iter().find(|r| r.key.name == n).unwrap().tenant.clone();
    assert_eq!(tenant("mapped"), "tenant_1");
    assert_eq!(tenant("stranger"), "unassigned", "the provider's default_tenant, not another tenant");
}

async fn zombie_open_instance_is_restarted_not_reconnected(store: Store) {
    let rig = Rig::new(store, &[("z", Behaviour::ZombieOpen)], |r| {
        r.supervisor.down_after = 1;
        r.supervisor.stale_webhook_after = "10m".into();
    })
    .await;
    rig.cycle().await;
    assert_eq!(rig.health("z").await, Health::Connected);
    rig.advance(11);
    rig.cycle().await;
    assert_eq!(rig.restarts("z"), 1, "zombie: POST /instance/restart");
    assert_eq!(rig.connects("z"), 0);
    // No webhook came back before the verification poll: announced once, not restarted again.
    for _ in 0..5 {
        rig.advance(1);
        rig.cycle().await;
    }
    assert_eq!(rig.notice_kinds().await, vec!["instance_down"]);
    assert_eq!(rig.restarts("z"), 1);
}

///  (observed on a real server): a deleted instance is announced
/// missing, then retired — its outage closed, one final notice — and no
/// longer polled or counted.
async fn deleted_instance_is_reported_missing_then_retired(store: Store) {
    let rig = Rig::new(store, &[("gone", Behaviour::Open), ("stays", Behaviour::Open)], |_| {}).await;
    rig.cycle().await;
    rig.sim.remove_instance("gone");
    for _ in 0..4 {
        rig.advance(1);
        rig.cycle().await;
    }
    assert_eq!(rig.notice_kinds().await, vec!["instance_missing", "instance_retired"]);
    let all = rig.store.instances(&InstanceFilter::default()).await.unwrap();
    assert_eq!(all.len(), 1, "no longer listed and seen missing: retired from polling");
    assert!(rig.store.outages(None, true, 10).await.unwrap().is_empty(), "no outage left open");
    let (health, open) = rig.store.gauge_counts_of("evo").await.unwrap();
    assert_eq!(health.iter().map(|r| r.1).sum::<i64>(), 1, "gauges count present instances only");
    assert_eq!(open, 0);
    let calls = rig.sim.calls("GET", "/instance/connectionState/gone");
    rig.advance(1);
    rig.cycle().await;
    assert_eq!(rig.sim.calls("GET", "/instance/connectionState/gone"), calls, "not polled any more");
}

/// Deleting an instance that is in an outage used to change the
/// cause to `missing`, send nothing, and leave the outage open forever.
async fn deleting_an_instance_in_an_outage_closes_the_outage_as_retired(store: Store) {
    let rig = Rig::new(store, &[("down", Behaviour::LoggedOut)], |_| {}).await;
    rig.cycle().await;
    assert_eq!(rig.notice_kinds().await, vec!["instance_logged_out"]);
    rig.sim.remove_instance("down");
    for _ in 0..3 {
        rig.advance(1);
        rig.cycle().await;
    }
    assert_eq!(rig.notice_kinds().await, vec!["instance_logged_out", "instance_retired"]);
    let history = rig.store.outages(Some(&InstanceKey::new("evo", "down")), false, 10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].recovered_by.as_deref(), Some("retired"));
    assert!(history[0].ended_at.is_some());
}

/// A new instance under an old name — deleted and recreated
/// between two cycles (a new provider-side id), or seen again after it was
/// retired — starts with a fresh record: no inherited outage, budget or cooldown.
async fn a_recreated_instance_starts_with_a_fresh_record(store: Store) {
    let rig = Rig::new(store, &[("x", Behaviour::ClosedTransient { reason: 428 })], |r| {
        r.supervisor.down_after = 1;
        r.restart.max_attempts_per_outage = 1;
    })
    .await;
    rig.sim.set_behaviour("x", Behaviour::ClosedTransient { reason: 428 });
    rig.cycle().await; // reconnect 1/1: revived by the simulator
    rig.sim.set_behaviour("x", Behaviour::ClosedTransient { reason: 428 });
    rig.advance(1);
    rig.cycle().await; // down again, inside the cooldown: the budget is spent
    let old = rig.store.instance(&InstanceKey::new("evo", "x")).await.unwrap().unwrap();
    assert!(old.state.outage.is_some() && old.state.restart_attempts >= 1);

    // Deleted and recreated between two cycles: Evolution gives it a new id.
    rig.sim.remove_instance("x");
    rig.sim.add_instance("x", Behaviour::Open);
    rig.advance(1);
    rig.cycle().await;
    let new = rig.store.instance(&InstanceKey::new("evo", "x")).await.unwrap().unwrap();
    assert_ne!(new.id, old.id, "a fresh row");
    assert!(new.state.outage.is_none());
    assert_eq!(new.state.restart_attempts, 0);
    assert_eq!(new.state.last_restart_attempt, None);
    assert_eq!(new.state.health, Health::Connected);
    let old_history = rig.store.outages(Some(&InstanceKey::new("evo", "x")), false, 10).await.unwrap();
    assert_eq!(old_history[0].recovered_by.as_deref(), Some("retired"));

    // Retired (deleted and seen missing), then created again: fresh as well.
    rig.sim.remove_instance("x");
    for _ in 0..3 {
        rig.advance(1);
        rig.cycle().await;
    }
    assert!(rig.store.instance(&InstanceKey::new("evo", "x")).await.unwrap().is_none());
    rig.sim.add_instance("x", Behaviour::ClosedTransient { reason: 428 });
    rig.advance(1);
    rig.cycle().await;
    let third = rig.store.instance(&InstanceKey::new("evo", "x")).await.unwrap().unwrap();
    assert_ne!(third.id, new.id);
    assert_eq!(third.state.restart_attempts, 1, "its own first attempt, not attempt 2 of an old budget");
}

///  (observed on a real 2.3.6 server): a never-paired instance got
/// `instance_down` and three `GET /instance/connect` calls, each starting a
/// socket that loops `connecting`. Now: one needs-QR notice, no call, ever.
async fn a_never_paired_instance_gets_one_needs_qr_notice_and_no_recovery_call(store: Store) {
    let rig = Rig::new(store, &[("fresh", Behaviour::Unpaired)], |r| {
        r.supervisor.down_after = 1;
        r.restart.cooldown = "1m".into();
    })
    .await;
    for _ in 0..20 {
        rig.cycle().await;
        rig.advance(5);
    }
    assert_eq!(rig.connects("fresh"), 0, "never a recovery call");
    assert_eq!(rig.restarts("fresh"), 0);
    assert_eq!(rig.notice_kinds().await, vec!["instance_logged_out"]);
    let rec = rig.store.instance(&InstanceKey::new("evo", "fresh")).await.unwrap().unwrap();
    let o = rec.state.outage.expect("an open needs-QR outage");
    assert_eq!(o.cause.as_str(), "needs_qr");
    assert!(o.reason.contains("QR"), "{}", o.reason);
}

/// On a real 2.3.6 server one instance in a reconnect
/// loop (every poll `close`, ~3 `connecting` webhooks a second) wrote 256
/// `health_changed`/`cause_changed` events in 16 minutes and its `since`
/// reset every 5 s. Ten minutes of the same through the real receiver now
/// write a handful: the outage, its notice, its recovery attempt.
async fn ten_minutes_of_a_reconnect_loop_write_a_handful_of_events(store: Store) {
    let rig = Rig::new(store, &[("loop", Behaviour::Open)], |_| {}).await; // down_after 2, cooldown 30m
    rig.cycle().await;
    let url = rig.receiver().await;
    let rec = rig.store.instance(&InstanceKey::new("evo", "loop")).await.unwrap().unwrap();
    let before = rig.store.events(&rec.id, 1000).await.unwrap().len();
    rig.sim.set_behaviour("loop", Behaviour::ReconnectLoop);
    let http = reqwest::Client::new();
    let connecting = json!({"event": "connection.update", "instance": "loop",
                            "data": {"instance": "loop", "state": "connecting", "statusReason": 200}});
    for second in 1..=600 {
        rig.advance_ms(1000);
        for _ in 0..3 {
            let r = http.post(&url).json(&connecting).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
        }
        if second % 30 == 0 {
            rig.cycle().await;
        }
    }
    let events = rig.store.events(&rec.id, 1000).await.unwrap();
    let kinds: Vec<&str> = events[..events.len() - before].iter().map(|e| e.kind.as_str()).collect();
    assert!(kinds.len() <= 8, "{} events in 10 minutes: {kinds:?}", kinds.len());
    // connected → connecting (the loop's first webhooks) → disconnected (the first `close` poll); no flips.
    assert!(kinds.iter().filter(|k| **k == "health_changed").count() <= 2, "{kinds:?}");
    assert!(!kinds.contains(&"cause_changed"), "{kinds:?}");
    let now = rig.store.instance(&InstanceKey::new("evo", "loop")).await.unwrap().unwrap();
    let o = now.state.outage.expect("an open outage");
    assert_eq!(o.cause.as_str(), "disconnected", "the cause is not `connecting`");
    assert!(now.state.health_since <= o.started_at, "since is the start of the outage, not the last flip");
    assert_eq!(rig.notice_kinds().await, vec!["instance_down"]);
    assert_eq!(rig.connects("loop"), 1, "one attempt inside the 30-minute cooldown");
}

on_both_backends!(self_protection_blames_our_own_network_when_every_provider_fails_and_nobody_calls);

async fn self_protection_blames_our_own_network_when_every_provider_fails_and_nobody_calls(store: Store) {
    let sim2 = Simulator::start(SimOptions { instances: vec![("x".into(), Behaviour::Open)], ..SimOptions::default() })
        .await
        .unwrap();
    let beat = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&beat)
        .await;
    let (base2, key2, beat_url) = (sim2.base_url(), sim2.api_key().to_string(), beat.uri());
    let rig = Rig::new(store, &[("a", Behaviour::Open)], move |r| {
        r.providers.push(RawProvider {
            name: "evo2".into(),
            kind: "evolution".into(),
            base_url: base2,
            api_version: Some("v2".into()),
            api_key: Some(key2),
            webhook_token: Some("t2".into()),
            discover: true,
            ..Default::default()
        });
        r.supervisor.down_after = 1;
        r.selfcheck.heartbeat_url = Some(beat_url);
    })
    .await;
    rig.cycle().await;
    assert_eq!(beat.received_requests().await.unwrap().len(), 1, "a healthy cycle pings the heartbeat");
    rig.sim.set_down(true);
    sim2.set_down(true);
    for _ in 0..3 {
        rig.advance(1);
        rig.cycle().await;
    }
    assert_eq!(rig.notice_kinds().await, vec!["sentinel_isolated"], "one notice about ourselves, no provider verdicts");
    assert_eq!(beat.received_requests().await.unwrap().len(), 1, "no heartbeat while cut off");
    // Back on the network: normal service, no leftover provider notices.
    rig.sim.set_down(false);
    sim2.set_down(false);
    rig.advance(1);
    rig.cycle().await;
    assert_eq!(rig.notice_kinds().await, vec!["sentinel_isolated"]);
    assert_eq!(beat.received_requests().await.unwrap().len(), 2);
}

on_both_backends!(ungrouped_provider_outage_tells_each_instance_and_its_tenant);

async fn ungrouped_provider_outage_tells_each_instance_and_its_tenant(store: Store) {
    let rig = Rig::new(store, &[("a", Behaviour::Open), ("b", Behaviour::Open)], |r| {
        r.supervisor.down_after = 1;
        r.alerts.group_provider_outage = false;
        r.instances.push(RawInstance {
            provider: "evo".into(),
            name: "a".into(),
            tenant: Some("t-a".into()),
            ..Default::default()
        });
    })
    .await;
    rig.cycle().await;
    rig.sim.set_down(true);
    rig.advance(1);
    rig.cycle().await;
    let rows = rig.store.outbox_all().await.unwrap();
    assert_eq!(rows.len(), 2, "one provider notice per instance: {rows:?}");
    assert!(rows.iter().all(|(k, _, _)| k.contains(":provider_unreachable:")));
    rig.sim.set_down(false);
    rig.advance(1);
    rig.cycle().await;
    let recovered =
        rig.store.outbox_all().await.unwrap().iter().filter(|(k, _, _)| k.contains(":provider_recovered:")).count();
    assert_eq!(recovered, 2);
}

/// Maintenance for `minutes` from the rig's now, through the state machine.
async fn maintain(rig: &Rig, name: &str, minutes: i64) {
    let until = rig.sup.now().0 + minutes * MIN;
    let obs = wa_sentinel::domain::health::Observation::Maintenance(Some(Ts(until)));
    rig.sup.observe(&InstanceKey::new("evo", name), obs, None).await.unwrap();
}

/// Maintenance is hands-off — the audit reads and reports the
/// drift but writes nothing; the first audit after maintenance repairs it.
async fn the_audit_reports_but_never_rewrites_an_instance_in_maintenance(store: Store) {
    let rig = Rig::new(store, &[("m", Behaviour::Open)], |_| {}).await;
    rig.sup.sync_inventory().await.unwrap();
    maintain(&rig, "m", 60).await;
    let r = rig.sup.webhook_audit().await.unwrap();
    assert_eq!((r.drifted, r.repaired), (1, 0), "{r:?}");
    assert_eq!(rig.sim.calls("POST", "/webhook/set/m"), 0, "no webhook write in maintenance");
    let rec = rig.store.instance(&InstanceKey::new("evo", "m")).await.unwrap().unwrap();
    assert_eq!(rec.webhook_ok, Some(false), "the status page shows the drift");
    let events = rig.store.events(&rec.id, 50).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "webhook_drift" && e.detail.contains("maintenance")), "{events:?}");
    rig.advance(61);
    let r = rig.sup.webhook_audit().await.unwrap();
    assert_eq!(r.repaired, 1, "repaired once maintenance ended: {r:?}");
    assert_eq!(rig.sim.calls("POST", "/webhook/set/m"), 1);
}

/// Provider notices fanned out per instance skip instances in maintenance.
async fn ungrouped_provider_notices_skip_instances_in_maintenance(store: Store) {
    let rig = Rig::new(store, &[("a", Behaviour::Open), ("quiet", Behaviour::Open)], |r| {
        r.supervisor.down_after = 1;
        r.alerts.group_provider_outage = false;
    })
    .await;
    rig.cycle().await;
    maintain(&rig, "quiet", 60).await;
    rig.sim.set_down(true);
    rig.advance(1);
    rig.cycle().await;
    let rows = rig.store.outbox_all().await.unwrap();
    let quiet = rig.store.instance(&InstanceKey::new("evo", "quiet")).await.unwrap().unwrap();
    assert_eq!(rows.len(), 1, "only the instance not in maintenance hears of it: {rows:?}");
    assert!(!rows[0].0.ends_with(&quiet.id), "{rows:?}");
}

/// The verification poll after a recovery had no staleness
/// guard: a status read that started before a webhook-driven recovery
/// committed was applied on top of it (a spurious flap).
async fn a_verification_poll_older_than_a_webhook_recovery_is_dropped(store: Store) {
    let rig = Rig::new(store, &[("v", Behaviour::ClosedTransient { reason: 428 })], |r| {
        r.supervisor.down_after = 1;
        r.supervisor.settle_delay = "200ms".into();
    })
    .await;
    rig.sup.poll_cycle().await.unwrap(); // outage, reconnect sent, verification after 200 ms
    // The reconnect "did not take" and the provider is slow: the verification
    // poll will say `close`, 600 ms after it started...
    rig.sim.set_behaviour("v", Behaviour::ClosedTransient { reason: 428 });
    rig.sim.set_latency(std::time::Duration::from_millis(600));
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    // ...while, in between, a webhook proves the session alive.
    let key = InstanceKey::new("evo", "v");
    let alive = wa_sentinel::domain::health::Observation::Webhook(wa_sentinel::domain::WebhookSignal::Alive);
    rig.sup.observe(&key, alive, None).await.unwrap();
    rig.sup.wait_idle().await;
    let rec = rig.store.instance(&key).await.unwrap().unwrap();
    assert_eq!(rec.state.health, Health::Connected, "the older poll answer did not win");
    assert!(rec.state.outage.is_none());
    assert_eq!(rig.store.outages(Some(&key), false, 10).await.unwrap().len(), 1, "no spurious second outage");
}

/// A `webhook_repaired` notice belongs to no outage: `outage_id:
/// null` and a dedup key of its own namespace.
async fn webhook_repaired_notices_belong_to_no_outage(store: Store) {
    let rig = Rig::new(store, &[("w", Behaviour::Open)], |r| {
        r.notifiers.push(wa_sentinel::config::raw::RawNotifier {
            name: "repairs".into(),
            kind: "log".into(),
            kinds: Some(vec!["webhook_repaired".into()]),
            ..Default::default()
        });
    })
    .await;
    rig.sup.sync_inventory().await.unwrap();
    rig.sup.webhook_audit().await.unwrap();
    let rec = rig.store.instance(&InstanceKey::new("evo", "w")).await.unwrap().unwrap();
    let keys = rig.notices().await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with(&format!("webhook:{}:", rec.id)), "{keys:?}");
}

/// The poll's fast path: once an instance's settled state is cached for its
/// row version, a poll that finds it open reads no record and steps nothing;
/// but a commit by another writer (a webhook taken by another replica) bumps
/// the version, and the next poll reads and steps the record again.
async fn a_settled_instance_costs_no_record_read_and_a_newer_commit_is_never_skipped(store: Store) {
    use wa_sentinel::domain::health::{Ctx, Observation};
    use wa_sentinel::domain::{Policy, WebhookSignal, step};
    let rig = Rig::new(store, &[("a", Behaviour::Open), ("b", Behaviour::Open)], |_| {}).await;
    let first = rig.sup.poll_cycle().await.unwrap();
    assert_eq!((first.committed, first.settled), (2, 0), "unknown → connected: both stepped");
    rig.advance(1);
    let second = rig.sup.poll_cycle().await.unwrap();
    assert_eq!((second.settled, second.unchanged, second.committed), (2, 2, 0), "{second:?}");

    // Another writer commits a close of `a` (as a replica's receiver would).
    let key = InstanceKey::new("evo", "a");
    let rec = rig.store.instance(&key).await.unwrap().unwrap();
    let now = Ts(rig.clock.load(Ordering::SeqCst));
    let ctx =
        Ctx { now, key: &key, tenant: &rec.tenant, new_id: "o-foreign", may_recover: false, watching_since: Ts(0) };
    let closed = Observation::Webhook(WebhookSignal::Closed { reason: Some(428) });
    let out = step(&rec.state, closed, &ctx, &Policy { down_after: 1, ..Policy::default() });
    rig.store.commit_step(&rec, &out, &[], now).await.unwrap();
    assert_eq!(rig.health("a").await, Health::Disconnected);

    // The session is open again on the provider: the poll must see the newer
    // version and record the recovery, not trust the cached settled state.
    rig.advance(1);
    let third = rig.sup.poll_cycle().await.unwrap();
    assert_eq!(third.settled, 1, "only b is still settled at its cached version: {third:?}");
    assert_eq!(rig.health("a").await, Health::Connected);
    let a = rig.store.instance(&key).await.unwrap().unwrap();
    assert!(a.state.outage.is_none(), "the foreign outage is closed by the poll");
    rig.advance(1);
    assert_eq!(rig.sup.poll_cycle().await.unwrap().settled, 2, "a is settled again");
}
