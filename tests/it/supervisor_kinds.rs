//! The supervisor rules (docs/rules.md) for the WAHA and Z-API kinds, on SQLite and
//! PostgreSQL alike: the real engine and receiver against the WAHA and Z-API
//! simulators — every instance polled every cycle, recovery under the
//! cooldown with the kind's own call, needs-human never restarted, one
//! down-class notice per outage, webhook recovery under a second, the audit
//! that repairs once and leaves correct configs alone (a WAHA config write
//! restarts the session) — and a test that no Z-API token reaches anything a
//! user can read.

use std::io::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use wa_sentinel::config::raw::{RawInstance, RawNotifier, RawProvider};
use wa_sentinel::config::{self, RawConfig};
use wa_sentinel::domain::{Health, InstanceKey, Ts};
use wa_sentinel::notify::worker::{DeliveryPolicy, OutboxWorker};
use wa_sentinel::server;
use wa_sentinel::sim::Delivery;
use wa_sentinel::sim::waha::{WahaBehaviour, WahaEvent, WahaSim};
use wa_sentinel::sim::zapi::{ZapiBehaviour, ZapiEvent, ZapiSim};
use wa_sentinel::store::Store;
use wa_sentinel::supervisor::Supervisor;
use wa_sentinel::supervisor::scheduler::Ticks;

use crate::on_both_backends;

const MIN: i64 = 60_000;
const HOOK: &str = "hooktoken";
const ADMIN: &str = "admin-secret";

/// A Z-API instance token, derived from its id so tests can grep for it.
fn ztoken(id: &str) -> String {
    format!("ZTOK-{id}-5e3f9a")
}

enum Sim {
    Waha(WahaSim),
    Zapi(ZapiSim),
}

struct Rig {
    sim: Sim,
    provider: &'static str,
    sup: Arc<Supervisor>,
    store: Store,
    clock: Arc<AtomicI64>,
    base: String,
    stop: CancellationToken,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Rig {
    async fn waha(store: Store, sessions: &[(&str, WahaBehaviour)], tweak: impl FnOnce(&mut RawConfig)) -> Rig {
        let sim = WahaSim::start(Some("waha-key"), sessions).await.unwrap();
        let p = RawProvider {
            name: "waha".into(),
            kind: "waha".into(),
            base_url: sim.base_url(),
            api_key: Some("waha-key".into()),
            webhook_token: Some(HOOK.into()),
            webhook_hmac_key: Some("waha-hmac".into()),
            discover: true,
            ..Default::default()
        };
        Rig::new(store, Sim::Waha(sim), "waha", p, Vec::new(), tweak).await
    }

    async fn zapi(store: Store, instances: &[(&str, ZapiBehaviour)], tweak: impl FnOnce(&mut RawConfig)) -> Rig {
        let tokens: Vec<(String, String, ZapiBehaviour)> =
            instances.iter().map(|(id, b)| (id.to_string(), ztoken(id), *b)).collect();
        let triples: Vec<(&str, &str, ZapiBehaviour)> =
            tokens.iter().map(|(i, t, b)| (i.as_str(), t.as_str(), *b)).collect();
        let sim = ZapiSim::start(Some("zapi-client-token"), &triples).await.unwrap();
        let p = RawProvider {
            name: "zapi".into(),
            kind: "zapi".into(),
            base_url: sim.base_url(),
            client_token: Some("zapi-client-token".into()),
            webhook_token: Some(HOOK.into()),
            ..Default::default()
        };
        let listed = tokens
            .iter()
            .map(|(id, t, _)| RawInstance {
                provider: "zapi".into(),
                name: id.clone(),
                tenant: Some("tenant_9".into()),
                token: Some(t.clone()),
                ..Default::default()
            })
            .collect();
        Rig::new(store, Sim::Zapi(sim), "zapi", p, listed, tweak).await
    }

    async fn new(
        store: Store,
        sim: Sim,
        provider: &'static str,
        p: RawProvider,
        instances: Vec<RawInstance>,
        tweak: impl FnOnce(&mut RawConfig),
    ) -> Rig {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut raw = RawConfig::default();
        raw.providers.push(p);
        raw.instances = instances;
        raw.server.public_url = Some(base.clone());
        raw.server.admin_token = Some(ADMIN.into());
        raw.supervisor.request_timeout = "2s".into();
        raw.supervisor.settle_delay = "0s".into();
        raw.supervisor.down_after = 1;
        tweak(&mut raw);
        let cfg = config::validate(raw, &|_| "test".into()).expect("valid config");
        let stop = CancellationToken::new();
        let worker = OutboxWorker::new(store.clone(), &cfg, DeliveryPolicy::from_config(&cfg)).unwrap();
        tokio::spawn(worker.clone().run(stop.child_token()));
        let clock = Arc::new(AtomicI64::new(1_800_000_000_000));
        let c = clock.clone();
        let sup =
            Supervisor::new(Arc::new(cfg), store.clone(), Some(worker), Arc::new(move || Ts(c.load(Ordering::SeqCst))))
                .unwrap();
        let state = server::start_background(sup.clone(), Arc::new(Ticks::default()), stop.child_token());
        tokio::spawn(server::serve(listener, state, stop.child_token()));
        Rig { sim, provider, sup, store, clock, base, stop }
    }

    fn waha_sim(&self) -> &WahaSim {
        match &self.sim {
            Sim::Waha(s) => s,
            Sim::Zapi(_) => panic!("not a WAHA rig"),
        }
    }

    fn zapi_sim(&self) -> &ZapiSim {
        match &self.sim {
            Sim::Zapi(s) => s,
            Sim::Waha(_) => panic!("not a Z-API rig"),
        }
    }

    fn advance(&self, minutes: i64) {
        self.clock.fetch_add(minutes * MIN, Ordering::SeqCst);
    }

    async fn cycle(&self) {
        self.sup.poll_cycle().await.unwrap();
        self.sup.wait_idle().await;
    }

    /// `rounds` cycles, `minutes` apart.
    async fn cycles(&self, rounds: u32, minutes: i64) {
        for _ in 0..rounds {
            self.advance(minutes);
            self.cycle().await;
        }
    }

    async fn health(&self, name: &str) -> Health {
        self.store.instance(&InstanceKey::new(self.provider, name)).await.unwrap().unwrap().state.health
    }

    async fn notice_kinds(&self) -> Vec<String> {
        let rows = self.store.outbox_all().await.unwrap();
        rows.iter().map(|(k, _, _)| k.rsplit(':').next().unwrap().to_string()).collect()
    }

    /// WAHA: POSTs to `/api/sessions/{s}/{action}`.
    fn waha_action(&self, name: &str, action: &str) -> u64 {
        self.waha_sim().calls("POST", &format!("/api/sessions/{name}/{action}"))
    }

    /// Z-API: GETs of `/instances/{id}/token/{token}/{method}`.
    fn zapi_call(&self, id: &str, method: &str) -> u64 {
        let s = self.zapi_sim();
        s.calls("GET", &s.path(id, method))
    }
}

on_both_backends!(
    waha_every_session_is_polled_every_cycle_whatever_its_status,
    waha_failed_is_restarted_once_inside_the_cooldown_and_stopped_is_started,
    waha_failed_that_comes_back_asking_for_a_qr_is_never_restarted_again,
    waha_needs_human_and_starting_sessions_get_no_call,
    waha_a_session_starting_for_long_spends_no_attempt_and_is_started_once_stopped,
    waha_a_manual_restart_that_sends_nothing_starts_no_cooldown,
    waha_one_down_and_one_recovered_notice_per_outage,
    waha_webhook_recovers_a_session_in_under_a_second,
    waha_audit_repairs_once_and_never_puts_a_correct_config,
    zapi_every_instance_is_polled_every_cycle_whatever_its_status,
    zapi_restore_the_session_once_inside_the_cooldown,
    zapi_waiting_for_a_qr_is_never_restored_or_restarted,
    zapi_zombie_is_restarted_not_restored,
    zapi_one_down_and_one_recovered_notice_per_outage,
    zapi_webhook_recovers_an_instance_in_under_a_second,
    zapi_audit_repairs_once_then_leaves_the_slots_alone,
    zapi_refused_client_token_is_one_provider_notice,
    waha_receiver_checks_the_signature_and_acknowledges_repeated_deliveries,
    every_accepted_webhook_counts_as_the_last_webhook_whatever_its_event,
);

async fn waha_every_session_is_polled_every_cycle_whatever_its_status(store: Store) {
    let all = [
        ("ok", WahaBehaviour::Working),
        ("qr", WahaBehaviour::ScanQr),
        ("passkey", WahaBehaviour::Passkey),
        ("starting", WahaBehaviour::Starting),
        ("failed", WahaBehaviour::FailedLoggedOut),
    ];
    let rig = Rig::waha(store, &all, |_| {}).await;
    for round in 1..=3u64 {
        rig.cycles(1, 1).await;
        for (name, _) in all {
            let polls = rig.waha_sim().calls("GET", &format!("/api/sessions/{name}"));
            assert!(polls >= round, "{name} polled {polls} times in {round} rounds");
        }
    }
    assert_eq!(rig.waha_sim().calls("GET", "/api/sessions"), 3, "one discovery call per cycle");
}

async fn waha_failed_is_restarted_once_inside_the_cooldown_and_stopped_is_started(store: Store) {
    let rig = Rig::waha(store, &[("f", WahaBehaviour::Failed), ("s", WahaBehaviour::Stopped)], |r| {
        r.restart.cooldown = "30m".into();
    })
    .await;
    rig.cycle().await;
    assert_eq!((rig.waha_action("f", "restart"), rig.waha_action("f", "start")), (1, 0), "FAILED: restart");
    assert_eq!((rig.waha_action("s", "start"), rig.waha_action("s", "restart")), (1, 0), "STOPPED: start");
    assert_eq!(rig.health("f").await, Health::Connected, "the verification poll saw it WORKING");
    assert_eq!(rig.health("s").await, Health::Connected);
    for _ in 0..10 {
        rig.waha_sim().set_behaviour("f", WahaBehaviour::Failed);
        rig.cycles(1, 2).await;
    }
    assert_eq!(rig.waha_action("f", "restart"), 1, "never inside the cooldown");
    rig.cycles(1, 31).await;
    assert_eq!(rig.waha_action("f", "restart"), 2, "again once the cooldown has passed");
}

async fn waha_failed_that_comes_back_asking_for_a_qr_is_never_restarted_again(store: Store) {
    let rig = Rig::waha(store, &[("lo", WahaBehaviour::FailedLoggedOut)], |_| {}).await;
    rig.cycle().await;
    assert_eq!(rig.waha_action("lo", "restart"), 1, "one restart tells a drop from a logout");
    assert_eq!(rig.waha_sim().behaviour("lo"), Some(WahaBehaviour::ScanQr));
    rig.cycles(6, 60).await;
    assert_eq!(rig.waha_action("lo", "restart") + rig.waha_action("lo", "start"), 1, "a QR needs a person");
    assert_eq!(rig.health("lo").await, Health::Connecting);
    assert_eq!(rig.notice_kinds().await, vec!["instance_down"], "one down-class notice for the whole outage");
    let rec = rig.store.instance(&InstanceKey::new("waha", "lo")).await.unwrap().unwrap();
    assert_eq!(rec.state.outage.map(|o| o.cause.as_str()), Some("needs_qr"));
}

async fn waha_needs_human_and_starting_sessions_get_no_call(store: Store) {
    let rig = Rig::waha(
        store,
        &[("qr", WahaBehaviour::ScanQr), ("passkey", WahaBehaviour::Passkey), ("starting", WahaBehaviour::Starting)],
        |_| {},
    )
    .await;
    rig.cycles(8, 45).await;
    for n in ["qr", "passkey", "starting"] {
        assert_eq!(rig.waha_action(n, "restart") + rig.waha_action(n, "start"), 0, "{n} got a call");
    }
    assert_eq!(rig.waha_sim().calls_with("PUT"), 0);
    let mut kinds = rig.notice_kinds().await;
    kinds.retain(|k| k != "restart_exhausted");
    kinds.sort();
    // One down-class notice each, even though SCAN_QR_CODE repeats every cycle.
    assert_eq!(kinds, vec!["instance_down", "instance_down", "instance_logged_out"]);
    assert_eq!(rig.health("passkey").await, Health::LoggedOut, "needs a person");
}

/// A session the WAHA server keeps `STARTING` gets no call and spends no
/// attempt (never `restart_exhausted`); once it comes back `STOPPED` (as after
/// a restart of the WAHA server) it gets its `start` at once.
async fn waha_a_session_starting_for_long_spends_no_attempt_and_is_started_once_stopped(store: Store) {
    let rig = Rig::waha(store, &[("s", WahaBehaviour::Working)], |_| {}).await;
    rig.cycle().await;
    rig.waha_sim().set_behaviour("s", WahaBehaviour::Starting);
    rig.cycles(8, 45).await;
    assert_eq!(rig.waha_action("s", "restart") + rig.waha_action("s", "start"), 0);
    assert_eq!(rig.notice_kinds().await, vec!["instance_down"], "announced, never exhausted");
    let rec = rig.store.instance(&InstanceKey::new("waha", "s")).await.unwrap().unwrap();
    assert_eq!(rec.state.restart_attempts, 0);
    let events = rig.store.events(&rec.id, 200).await.unwrap();
    assert!(!events.iter().any(|e| e.kind == "recovery_scheduled"), "no attempt ordered");
    rig.waha_sim().set_behaviour("s", WahaBehaviour::Stopped);
    rig.cycles(1, 1).await;
    assert_eq!(rig.waha_action("s", "start"), 1, "a stopped session gets its start");
}

/// `wa-sentinel restart` of a session that is starting sends nothing, says
/// so, records the attempt as skipped and starts no cooldown.
async fn waha_a_manual_restart_that_sends_nothing_starts_no_cooldown(store: Store) {
    let rig = Rig::waha(store, &[("s", WahaBehaviour::Starting)], |_| {}).await;
    rig.cycle().await;
    let key = InstanceKey::new("waha", "s");
    let said = rig.sup.manual_restart(&key, false).await.unwrap();
    assert!(said.contains("nothing sent"), "{said}");
    let again = rig.sup.manual_restart(&key, false).await.unwrap();
    assert!(again.contains("nothing sent"), "not refused by a cooldown: {again}");
    assert_eq!(rig.waha_action("s", "restart") + rig.waha_action("s", "start"), 0);
    let rec = rig.store.instance(&key).await.unwrap().unwrap();
    assert_eq!(rec.state.last_restart_attempt, None);
    let events = rig.store.events(&rec.id, 200).await.unwrap();
    let skipped = events.iter().filter(|e| e.kind == "recovery_result" && e.detail.contains("\"skipped\"")).count();
    assert_eq!(skipped, 2, "{events:?}");
}

async fn waha_one_down_and_one_recovered_notice_per_outage(store: Store) {
    let rig = Rig::waha(store, &[("b", WahaBehaviour::Working)], |r| {
        r.restart.max_attempts_per_outage = 0; // let it stay down
    })
    .await;
    rig.cycle().await;
    rig.waha_sim().set_behaviour("b", WahaBehaviour::Failed);
    rig.cycles(6, 1).await;
    rig.waha_sim().set_behaviour("b", WahaBehaviour::Working);
    rig.cycles(3, 1).await;
    assert_eq!(rig.notice_kinds().await, vec!["instance_down", "restart_exhausted", "instance_recovered"]);
    assert_eq!(rig.waha_action("b", "restart"), 0);
}

async fn waha_webhook_recovers_a_session_in_under_a_second(store: Store) {
    let rig = Rig::waha(store, &[("w", WahaBehaviour::Working)], |r| {
        r.restart.max_attempts_per_outage = 0;
    })
    .await;
    rig.sup.sync_inventory().await.unwrap();
    assert_eq!(rig.sup.webhook_audit().await.unwrap().repaired, 1);
    rig.waha_sim().set_behaviour("w", WahaBehaviour::Failed);
    rig.cycles(2, 1).await;
    assert_eq!(rig.health("w").await, Health::Disconnected);
    // Someone fixed it by hand; WAHA says so, signed with the configured key.
    rig.waha_sim().set_behaviour("w", WahaBehaviour::Working);
    let t = Instant::now();
    let d = rig.waha_sim().post_webhook("w", WahaEvent::SessionStatus).await.unwrap();
    let took = t.elapsed();
    assert_eq!(d, Delivery::Sent(200));
    assert!(took < Duration::from_secs(1), "webhook to committed recovery took {took:?}");
    assert_eq!(rig.health("w").await, Health::Connected);
    let o = rig.store.outages(Some(&InstanceKey::new("waha", "w")), false, 5).await.unwrap();
    assert_eq!(o[0].recovered_by.as_deref(), Some("webhook"));
    // Messages keep it alive without a database write per message.
    assert_eq!(rig.waha_sim().post_webhook("w", WahaEvent::Message).await.unwrap(), Delivery::Sent(200));
}

async fn waha_audit_repairs_once_and_never_puts_a_correct_config(store: Store) {
    let rig = Rig::waha(
        store,
        &[("none", WahaBehaviour::Working), ("other", WahaBehaviour::Working), ("right", WahaBehaviour::Working)],
        |_| {},
    )
    .await;
    let sim = rig.waha_sim();
    let ours = format!("{}/webhooks/waha/{HOOK}", rig.base);
    let crm = json!({"url": "https://crm.example.com/hook", "events": ["message"], "customHeaders": [{"name": "X", "value": "1"}]});
    sim.set_config("other", json!({"metadata": {"tenant.id": "42"}, "proxy": null, "webhooks": [crm]}));
    sim.set_config(
        "right",
        json!({"webhooks": [{"url": ours, "events": ["message.ack", "message.any", "message", "session.status"],
                              "hmac": {"key": "waha-hmac"}, "retries": null}]}),
    );
    rig.sup.sync_inventory().await.unwrap();
    let first = rig.sup.webhook_audit().await.unwrap();
    assert_eq!((first.repaired, first.ok, first.failed, first.mismatched), (2, 1, 0, 0), "{first:?}");
    assert_eq!((sim.puts("none"), sim.puts("other"), sim.puts("right")), (1, 1, 0));
    let other = sim.config("other").unwrap();
    assert_eq!(other["metadata"], json!({"tenant.id": "42"}), "the rest of the config is kept");
    assert_eq!(other["webhooks"][0], crm, "the operator's webhook is kept");
    assert_eq!(other["webhooks"][1]["url"], json!(ours));
    for _ in 0..25 {
        let again = rig.sup.webhook_audit().await.unwrap();
        assert_eq!((again.repaired, again.ok), (0, 3));
    }
    assert_eq!(sim.calls_with("PUT"), 2, "a correct config is never PUT: that would restart the session");
}

async fn zapi_every_instance_is_polled_every_cycle_whatever_its_status(store: Store) {
    let all =
        [("OK1", ZapiBehaviour::Connected), ("RST", ZapiBehaviour::NeedsRestore), ("QR1", ZapiBehaviour::NotConnected)];
    let rig = Rig::zapi(store, &all, |r| r.restart.max_attempts_per_outage = 0).await;
    for round in 1..=3u64 {
        rig.cycles(1, 1).await;
        for (id, _) in all {
            assert!(rig.zapi_call(id, "status") >= round, "{id} not polled in round {round}");
        }
    }
    assert_eq!(rig.health("QR1").await, Health::Connecting);
    assert_eq!(rig.health("RST").await, Health::Disconnected);
}

async fn zapi_restore_the_session_once_inside_the_cooldown(store: Store) {
    let rig = Rig::zapi(store, &[("R1", ZapiBehaviour::NeedsRestore)], |r| r.restart.cooldown = "30m".into()).await;
    rig.cycle().await;
    assert_eq!((rig.zapi_call("R1", "restore-session"), rig.zapi_call("R1", "restart")), (1, 0));
    assert_eq!(rig.health("R1").await, Health::Connected);
    for _ in 0..10 {
        rig.zapi_sim().set_behaviour("R1", ZapiBehaviour::NeedsRestore);
        rig.cycles(1, 2).await;
    }
    assert_eq!(rig.zapi_call("R1", "restore-session"), 1, "never inside the cooldown");
    rig.cycles(1, 31).await;
    assert_eq!(rig.zapi_call("R1", "restore-session"), 2);
}

async fn zapi_waiting_for_a_qr_is_never_restored_or_restarted(store: Store) {
    let rig = Rig::zapi(store, &[("QR1", ZapiBehaviour::NotConnected)], |_| {}).await;
    rig.cycles(6, 60).await;
    assert_eq!(rig.zapi_call("QR1", "restore-session") + rig.zapi_call("QR1", "restart"), 0);
    assert_eq!(rig.notice_kinds().await, vec!["instance_logged_out"], "one notice, not one per poll");
}

async fn zapi_zombie_is_restarted_not_restored(store: Store) {
    let rig = Rig::zapi(store, &[("Z1", ZapiBehaviour::Zombie)], |r| {
        r.supervisor.stale_webhook_after = "10m".into();
    })
    .await;
    rig.cycle().await;
    assert_eq!(rig.health("Z1").await, Health::Connected);
    rig.cycles(1, 11).await;
    assert_eq!((rig.zapi_call("Z1", "restart"), rig.zapi_call("Z1", "restore-session")), (1, 0));
}

async fn zapi_one_down_and_one_recovered_notice_per_outage(store: Store) {
    let rig = Rig::zapi(store, &[("B1", ZapiBehaviour::Connected)], |r| r.restart.max_attempts_per_outage = 0).await;
    rig.cycle().await;
    rig.zapi_sim().set_behaviour("B1", ZapiBehaviour::NeedsRestore);
    rig.cycles(6, 1).await;
    rig.zapi_sim().set_behaviour("B1", ZapiBehaviour::Connected);
    rig.cycles(3, 1).await;
    assert_eq!(rig.notice_kinds().await, vec!["instance_down", "restart_exhausted", "instance_recovered"]);
}

async fn zapi_webhook_recovers_an_instance_in_under_a_second(store: Store) {
    let rig = Rig::zapi(store, &[("W1", ZapiBehaviour::Connected)], |r| r.restart.max_attempts_per_outage = 0).await;
    rig.sup.sync_inventory().await.unwrap();
    assert_eq!(rig.sup.webhook_audit().await.unwrap().repaired, 1);
    // The disconnect callback counts like a bad poll; the poll confirms.
    rig.zapi_sim().set_behaviour("W1", ZapiBehaviour::NeedsRestore);
    assert_eq!(rig.zapi_sim().post_webhook("W1", ZapiEvent::Disconnected).await.unwrap(), Delivery::Sent(200));
    assert_eq!(rig.health("W1").await, Health::Disconnected);
    rig.cycles(1, 1).await;
    rig.zapi_sim().set_behaviour("W1", ZapiBehaviour::Connected);
    let t = Instant::now();
    assert_eq!(rig.zapi_sim().post_webhook("W1", ZapiEvent::Connected).await.unwrap(), Delivery::Sent(200));
    let took = t.elapsed();
    assert!(took < Duration::from_secs(1), "webhook to committed recovery took {took:?}");
    assert_eq!(rig.health("W1").await, Health::Connected);
    let o = rig.store.outages(Some(&InstanceKey::new("zapi", "W1")), false, 5).await.unwrap();
    assert_eq!(o[0].recovered_by.as_deref(), Some("webhook"));
}

async fn zapi_audit_repairs_once_then_leaves_the_slots_alone(store: Store) {
    let rig = Rig::zapi(store, &[("A1", ZapiBehaviour::Connected), ("A2", ZapiBehaviour::Connected)], |_| {}).await;
    let ours = format!("{}/webhooks/zapi/{HOOK}", rig.base);
    rig.zapi_sim().set_callback("A2", "received", "https://old.example.com/hook");
    rig.zapi_sim().set_callback("A2", "chat-presence", "https://crm.example.com/presence");
    rig.sup.sync_inventory().await.unwrap();
    let first = rig.sup.webhook_audit().await.unwrap();
    assert_eq!((first.repaired, first.ok, first.failed), (2, 0, 0), "{first:?}");
    for id in ["A1", "A2"] {
        for kind in ["connected", "disconnected", "received", "message-status", "delivery"] {
            assert_eq!(rig.zapi_sim().callback(id, kind), ours, "{id} {kind}");
        }
    }
    assert_eq!(
        rig.zapi_sim().callback("A2", "chat-presence"),
        "https://crm.example.com/presence",
        "not ours: untouched"
    );
    let puts = rig.zapi_sim().calls_with("PUT");
    for _ in 0..10 {
        assert_eq!(rig.sup.webhook_audit().await.unwrap().ok, 2);
    }
    assert_eq!(rig.zapi_sim().calls_with("PUT"), puts, "left alone once correct");
}

async fn zapi_refused_client_token_is_one_provider_notice(store: Store) {
    let rig = Rig::zapi(store, &[("C1", ZapiBehaviour::Connected), ("C2", ZapiBehaviour::NeedsRestore)], |r| {
        r.providers[0].client_token = Some("wrong-client-token".into());
        r.supervisor.down_after = 2;
    })
    .await;
    rig.cycles(5, 1).await;
    assert_eq!(rig.notice_kinds().await, vec!["provider_unreachable"]);
    assert_eq!(rig.health("C2").await, Health::Unknown, "a configuration problem is not an instance outage");
    assert_eq!(rig.zapi_call("C2", "restore-session"), 0);
}

async fn waha_receiver_checks_the_signature_and_acknowledges_repeated_deliveries(store: Store) {
    let rig = Rig::waha(store, &[("loja-centro", WahaBehaviour::Working)], |r| {
        r.providers[0].webhook_hmac_key = Some("fixture-secret".into());
        r.supervisor.down_after = 2;
    })
    .await;
    rig.cycle().await;
    let fixture = |f: &str| std::fs::read(format!("{}/tests/fixtures/waha/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let headers: serde_json::Value = serde_json::from_slice(&fixture("webhook.message.headers.json")).unwrap();
    let sig = headers["X-Webhook-Hmac"].as_str().unwrap().to_string();
    let url = format!("{}/webhooks/waha/{HOOK}", rig.base);
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>, hmac: Option<&str>, id: Option<&str>| {
        let mut rb = http.post(&url).header("content-type", "application/json").body(body);
        if let Some(h) = hmac {
            rb = rb.header("X-Webhook-Hmac", h);
        }
        if let Some(i) = id {
            rb = rb.header("X-Webhook-Request-Id", i);
        }
        async move {
            let r = rb.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let message = fixture("webhook.message.json");
    assert_eq!(post(message.clone(), Some(&sig), None).await.0, 200, "signed over the raw bytes");
    let (code, text) = post(message.clone(), Some(&sig.replace('c', "d")), None).await;
    assert_eq!(code, 401, "{text}");
    assert!(text.contains("webhook_hmac_key"), "{text}");
    assert_eq!(post(message, None, None).await.0, 200, "older WAHA core images never sign");
    // A repeated delivery is acknowledged, not counted twice.
    let failed = fixture("webhook.session.status.failed.json");
    assert_eq!(post(failed.clone(), None, Some("01jgx9q2w3e4r5t6y7u8i9o0pb")).await.0, 200);
    let (code, text) = post(failed.clone(), None, Some("01jgx9q2w3e4r5t6y7u8i9o0pb")).await;
    assert_eq!((code, text.contains("duplicate")), (200, true), "{text}");
    let rec = rig.store.instance(&InstanceKey::new("waha", "loja-centro")).await.unwrap().unwrap();
    assert_eq!((rec.state.health, rec.state.consecutive_failures), (Health::Disconnected, 1));
    assert!(rec.state.outage.is_none(), "one delivery counts once towards down_after");
    assert_eq!(post(failed, None, Some("another-delivery")).await.0, 200);
    // The outage opens; the recovery it schedules finds the simulated session
    // WORKING and may already have closed it, so count outages, not the state.
    let outages = rig.store.outages(Some(&InstanceKey::new("waha", "loja-centro")), false, 10).await.unwrap();
    assert_eq!(outages.len(), 1, "a new delivery counts");
}

/// "Last webhook" (status page, `status`, the API) is the last webhook the
/// receiver accepted for the instance, whatever its event: a WAHA session
/// that only ever posts `session.status` (starting, waiting for a QR, a
/// status wa-sentinel does not know, failed) shows when it last did.
async fn every_accepted_webhook_counts_as_the_last_webhook_whatever_its_event(store: Store) {
    let sessions = [
        ("starting", WahaBehaviour::Starting),
        ("qr", WahaBehaviour::ScanQr),
        ("passkey", WahaBehaviour::Passkey),
        ("failed", WahaBehaviour::Failed),
    ];
    let rig = Rig::waha(store, &sessions, |r| r.restart.max_attempts_per_outage = 0).await;
    rig.sup.sync_inventory().await.unwrap();
    assert_eq!(rig.sup.webhook_audit().await.unwrap().repaired, 4);
    rig.cycle().await;
    let mut at = std::collections::BTreeMap::new();
    for (name, _) in sessions {
        rig.advance(1);
        let d = rig.waha_sim().post_webhook(name, WahaEvent::SessionStatus).await.unwrap();
        assert_eq!(d, Delivery::Sent(200), "{name}");
        at.insert(name, rig.sup.now());
    }
    server::flush(&rig.sup).await;
    for (name, _) in sessions {
        let rec = rig.store.instance(&InstanceKey::new("waha", name)).await.unwrap().unwrap();
        assert_eq!(rec.state.last_webhook_at, Some(at[name]), "{name}: its session.status is its last webhook");
    }
    let api: serde_json::Value =
        crate::it::common::admin_json(reqwest::Client::new().get(format!("{}/api/instances/waha/qr", rig.base)), ADMIN)
            .await;
    assert_eq!(api["instance"]["last_webhook_at"], json!(at["qr"].rfc3339()), "{api}");
}

/// A `MakeWriter` that keeps every log line.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything a user can read, after a run through every Z-API path (polls,
/// recoveries, the audit, webhooks, an outage, a provider that echoes request
/// paths in its errors): logs at TRACE level, events, notices, `/metrics`, the
/// status page and the API. No instance token may appear in any of them.
#[tokio::test(flavor = "current_thread")]
async fn no_zapi_token_reaches_anything_a_user_can_read() {
    let logs = Capture::default();
    let sink_logs = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink_logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Installed before any metric is recorded in this thread's test.
    let metrics = server::metrics_handle();

    let db = crate::it::common::TestDb::sqlite().await;
    let sink = crate::it::common::ok_sink().await;
    // A second Z-API account whose server echoes every request path in its errors.
    let echo = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(|req: &wiremock::Request| {
            wiremock::ResponseTemplate::new(502).set_body_string(format!("<html>Cannot GET {}</html>", req.url.path()))
        })
        .mount(&echo)
        .await;
    let echo_url = echo.uri();
    let sink_url = sink.uri();
    let ids = ["TOKA1", "TOKA2", "TOKA3"];
    let rig = Rig::zapi(
        db.store.clone(),
        &[
            (ids[0], ZapiBehaviour::NeedsRestore),
            (ids[1], ZapiBehaviour::Zombie),
            (ids[2], ZapiBehaviour::NotConnected),
        ],
        |r| {
            r.supervisor.stale_webhook_after = "10m".into();
            r.providers.push(RawProvider {
                name: "zapi-echo".into(),
                kind: "zapi".into(),
                base_url: echo_url,
                webhook_token: Some("echo-hook".into()),
                ..Default::default()
            });
            r.instances.push(RawInstance {
                provider: "zapi-echo".into(),
                name: "ECHO1".into(),
                token: Some(ztoken("ECHO1")),
                ..Default::default()
            });
            r.notifiers.push(RawNotifier {
                name: "sink".into(),
                kind: "webhook".into(),
                url: Some(sink_url),
                ..Default::default()
            });
        },
    )
    .await;
    rig.sup.sync_inventory().await.unwrap();
    rig.sup.webhook_audit().await.unwrap();
    rig.cycles(3, 1).await;
    for e in [ZapiEvent::Received, ZapiEvent::Disconnected, ZapiEvent::Connected, ZapiEvent::MessageStatus] {
        rig.zapi_sim().post_webhook(ids[0], e).await.unwrap();
    }
    rig.cycles(1, 11).await; // the zombie's restart
    rig.zapi_sim().set_down(true);
    rig.cycles(3, 1).await;
    rig.zapi_sim().set_down(false);
    rig.cycles(2, 31).await;
    rig.sup.manual_restart(&InstanceKey::new("zapi", ids[2]), true).await.unwrap();
    assert!(rig.zapi_call(ids[0], "restore-session") >= 1 && rig.zapi_call(ids[1], "restart") >= 1, "paths exercised");
    tokio::time::sleep(Duration::from_millis(1500)).await; // the outbox worker delivers

    let http = reqwest::Client::new();
    let mut readable = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(readable.contains("DEBUG") && readable.contains("TOKA1"), "the capture works and names instances");
    for r in rig.store.instances(&Default::default()).await.unwrap() {
        for e in rig.store.events(&r.id, 500).await.unwrap() {
            readable.push_str(&format!("{} {}\n", e.kind, e.detail));
        }
    }
    for req in sink.received_requests().await.unwrap() {
        readable.push_str(&String::from_utf8_lossy(&req.body));
    }
    readable.push_str(&metrics.map(|m| m.render()).unwrap_or_default());
    let page = http.get(format!("{}/", rig.base)).basic_auth("ops", Some(ADMIN)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    readable.push_str(&page.text().await.unwrap());
    for path in ["/api/instances", "/api/instances/zapi/TOKA1", "/api/instances/zapi-echo/ECHO1", "/api/outages"] {
        let r = http.get(format!("{}{path}", rig.base)).bearer_auth(ADMIN).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        readable.push_str(&r.text().await.unwrap());
    }
    assert!(readable.contains("[token]") || readable.contains("token/…"), "the echoing provider was reached");
    for id in ids.iter().chain(&["ECHO1"]) {
        let token = ztoken(id);
        assert!(!readable.contains(&token), "the token of {id} leaked:\n{}", context(&readable, &token));
    }
    assert!(!readable.contains("zapi-client-token"), "the Client-Token leaked");
}

fn context(text: &str, needle: &str) -> String {
    text.lines().filter(|l| l.contains(needle)).take(5).collect::<Vec<_>>().join("\n")
}
