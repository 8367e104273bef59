//! The supervisor engine end to end (SPEC §5 rules 1–9): the real engine
//! against the Evolution simulator and a real database, one test per rule, on
//! SQLite and PostgreSQL alike.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::json;
use wa_sentinel::config::raw::{RawInstance, RawProvider};
use wa_sentinel::config::{self, RawConfig};
use wa_sentinel::domain::{Health, InstanceKey, Ts};
use wa_sentinel::providers::simulator::{Behaviour, SimOptions, Simulator};
use wa_sentinel::store::{InstanceFilter, Store};
use wa_sentinel::supervisor::Supervisor;

use crate::on_both_backends;

const MIN: i64 = 60_000;

pub struct Rig {
    pub sim: Simulator,
    pub sup: Arc<Supervisor>,
    pub store: Store,
    clock: Arc<AtomicI64>,
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
    deleted_instance_is_reported_missing_once,
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

async fn deleted_instance_is_reported_missing_once(store: Store) {
    let rig = Rig::new(store, &[("gone", Behaviour::Open)], |_| {}).await;
    rig.cycle().await;
    rig.sim.remove_instance("gone");
    for _ in 0..4 {
        rig.advance(1);
        rig.cycle().await;
    }
    assert_eq!(rig.notice_kinds().await, vec!["instance_missing"]);
    let all = rig.store.instances(&InstanceFilter::default()).await.unwrap();
    assert!(all.is_empty(), "no longer listed and seen missing: retired from polling");
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
