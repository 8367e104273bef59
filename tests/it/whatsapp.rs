//! The `whatsapp` notifier (rule 10): notices as texts through an ops
//! instance on each provider kind, digests, per-instance pacing, the
//! fallback when the ops instance cannot deliver (its outage, its
//! provider's, a refused send, a notice about itself), and sends whose
//! answer was lost: looked up before sending again where the provider can
//! tell. Worker-level here, against the simulators, wiremock and real
//! SQLite/PostgreSQL; the real binary in [`process`].

mod process;

use std::collections::BTreeMap;
use std::time::Duration;

use wa_sentinel::config::{self, Config, Language, RawConfig};
use wa_sentinel::domain::health::{Ctx, Observation};
use wa_sentinel::domain::notice::dedup_key;
use wa_sentinel::domain::{InstanceKey, Notice, NoticeKind, Policy, ProviderStatus, Ts, step};
use wa_sentinel::notify::chat;
use wa_sentinel::notify::route;
use wa_sentinel::notify::worker::{DeliveryPolicy, OutboxWorker};
use wa_sentinel::sim::evolution::{Behaviour, SimOptions, Simulator};
use wa_sentinel::store::Store;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::it::common::{TestDb, idempotency_keys, ok_sink};
use crate::on_both_backends;

on_both_backends!(
    the_ops_instance_in_an_outage_hands_every_notice_to_the_fallback_exactly_once,
    notices_arrive_as_texts_to_every_configured_number_with_their_message_ids,
);

pub const TO: &str = "5511988887777";
pub const GROUP: &str = "120363025246125486@g.us";

pub fn cfg(toml: &str) -> Config {
    let raw: RawConfig = toml::from_str(toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    config::validate(raw, &|_| "test".into()).unwrap_or_else(|e| panic!("{e}\n{toml}"))
}

/// An Evolution provider `evo` on `sim` with the ops instance `ops` listed.
pub fn evo_toml(sim: &Simulator) -> String {
    format!(
        "[[providers]]\nname = \"evo\"\nkind = \"evolution\"\nbase_url = \"{}\"\napi_key = \"{}\"\n\
         webhook_token = \"tok\"\napi_version = \"v2\"\n[[instances]]\nprovider = \"evo\"\nname = \"ops\"\n",
        sim.base_url(),
        sim.api_key()
    )
}

/// A WhatsApp notifier on `evo`/`ops` with no digest, and its fallback: a
/// webhook notifier at `url` that carries only what is handed over to it.
fn wa_with_fallback(url: &str) -> String {
    format!(
        "[[notifiers]]\nname = \"wa\"\nkind = \"whatsapp\"\nprovider = \"evo\"\ninstance = \"ops\"\n\
         to = [\"{TO}\"]\nfallback = \"hook\"\ndigest_window = \"0s\"\n\
         [[notifiers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{url}\"\nfallback_only = true\n"
    )
}

fn policy(cfg: &Config, timeout: Duration) -> DeliveryPolicy {
    DeliveryPolicy {
        min_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(60),
        max_age: Duration::from_secs(3600),
        timeout,
        ..DeliveryPolicy::from_config(cfg)
    }
}

pub fn notice(kind: NoticeKind, provider: &str, instance: &str, outage: &str, at: Ts) -> Notice {
    Notice {
        kind,
        provider: provider.into(),
        instance: Some(instance.into()),
        tenant: Some("acme".into()),
        outage_id: Some(outage.into()),
        started_at: Ts(at.0 - 60_000),
        at,
        reason: "logged out (statusReason 401)".into(),
        cause: Some("logged_out".into()),
        code: Some(401),
        restart_attempts: 0,
        max_attempts: 3,
        recovered_by: None,
        sequence: 0,
        dedup_key: dedup_key(outage, kind, 0),
        remediation: None,
        pair_url: None,
    }
}

/// What wa-sentinel believes about an instance: it is known, and its last
/// poll said `status`.
async fn believe(store: &Store, provider: &str, name: &str, status: ProviderStatus, now: Ts) {
    let key = InstanceKey::new(provider, name);
    let rec = store.ensure_instance(&key, "ops", &BTreeMap::new(), "config", None, now).await.unwrap();
    let ctx = Ctx { now, key: &key, tenant: "ops", new_id: "ops-outage", may_recover: false, watching_since: now };
    let out = step(&rec.state, Observation::Polled(status), &ctx, &Policy { down_after: 1, ..Policy::default() });
    store.commit_step(&rec, &out, &[], now).await.unwrap();
}

async fn queue(store: &Store, cfg: &Config, notices: &[Notice], at: Ts) {
    store.enqueue(&route(&cfg.notifiers, notices), at).await.unwrap();
}

async fn sim(instances: &[(&str, Behaviour)]) -> Simulator {
    Simulator::start(SimOptions {
        instances: instances.iter().map(|(n, b)| (n.to_string(), *b)).collect(),
        ..SimOptions::default()
    })
    .await
    .unwrap()
}

async fn notices_arrive_as_texts_to_every_configured_number_with_their_message_ids(store: Store) {
    let sim = sim(&[("ops", Behaviour::Open)]).await;
    let cfg = cfg(&format!(
        "{}[[notifiers]]\nname = \"wa\"\nkind = \"whatsapp\"\nprovider = \"evo\"\ninstance = \"ops\"\n\
         to = [\"+{TO}\", \"{GROUP}\"]\ndigest_window = \"0s\"\nmin_gap = \"0s\"\n",
        evo_toml(&sim)
    ));
    let t0 = wa_sentinel::clock::now();
    believe(&store, "evo", "ops", ProviderStatus::Connected, t0).await;
    let n = notice(NoticeKind::InstanceLoggedOut, "evo", "loja-centro", "o1", t0);
    queue(&store, &cfg, std::slice::from_ref(&n), t0).await;
    let w = OutboxWorker::new(store.clone(), &cfg, policy(&cfg, Duration::from_secs(5))).unwrap();
    assert_eq!(w.drain(move || t0).await.unwrap().delivered, 1);
    let sent = sim.sent_messages();
    let got: Vec<(&str, &str)> = sent.iter().map(|m| (m.to.as_str(), m.text.as_str())).collect();
    let (a, b) = (chat::message(&n, Language::En, TO), chat::message(&n, Language::En, GROUP));
    assert_eq!(got, vec![(TO, a.as_str()), (GROUP, b.as_str())], "one text per recipient, in the notice's language");
    let rows = store.outbox_rows().await.unwrap();
    assert_eq!(rows[0].status, "delivered");
    let receipts: serde_json::Value = serde_json::from_str(rows[0].receipts.as_deref().unwrap()).unwrap();
    assert_eq!(receipts[TO]["id"], sent[0].id.as_str(), "the provider's message id is kept: {receipts}");
    assert_eq!(receipts[GROUP]["id"], sent[1].id.as_str());
    assert_eq!(w.drain(move || Ts(t0.0 + 3_600_000)).await.unwrap().delivered, 0);
    assert_eq!(sim.sent_messages().len(), 2, "a delivered notice is never sent again");
}

async fn the_ops_instance_in_an_outage_hands_every_notice_to_the_fallback_exactly_once(store: Store) {
    let sim = sim(&[("ops", Behaviour::LoggedOut)]).await;
    let sink = ok_sink().await;
    let cfg = cfg(&format!(
        "{}[[notifiers]]\nname = \"wa\"\nkind = \"whatsapp\"\nprovider = \"evo\"\ninstance = \"ops\"\n\
         to = [\"{TO}\"]\nfallback = \"mail\"\n\
         [[notifiers]]\nname = \"mail\"\nkind = \"webhook\"\nurl = \"{}\"\nfallback_only = true\n",
        evo_toml(&sim),
        sink.uri()
    ));
    let t0 = wa_sentinel::clock::now();
    believe(&store, "evo", "ops", ProviderStatus::LoggedOut { reason: Some(401) }, t0).await;
    let notices: Vec<Notice> = (0..3)
        .map(|i| notice(NoticeKind::InstanceLoggedOut, "evo", &format!("shop-{i}"), &format!("o{i}"), t0))
        .collect();
    queue(&store, &cfg, &notices, t0).await;
    assert_eq!(store.outbox_rows().await.unwrap().len(), 3, "a fallback_only notifier is routed nothing itself");
    let w = OutboxWorker::new(store.clone(), &cfg, policy(&cfg, Duration::from_secs(5))).unwrap();
    let rep = w.drain(move || t0).await.unwrap();
    assert_eq!((rep.handed_over, rep.delivered), (3, 3), "handed over, then delivered by the fallback: {rep:?}");
    for later in [1, 2] {
        w.drain(move || Ts(t0.0 + later * 3_600_000)).await.unwrap();
    }
    let keys = idempotency_keys(&sink).await;
    let want: Vec<String> = notices.iter().map(|n| n.dedup_key.clone()).collect();
    assert_eq!(keys, want, "each notice once, with its own dedup key, in order");
    assert!(sim.sent_messages().is_empty(), "nothing through the closed instance");
    for r in store.outbox_rows().await.unwrap().iter().filter(|r| r.notifier == "wa") {
        assert_eq!(r.status, "handed_over");
        assert_eq!(
            r.last_error.as_deref(),
            Some("handed to fallback mail: the ops instance is in an outage (logged_out)")
        );
    }
}

#[tokio::test]
async fn a_digest_for_twenty_simultaneous_drops_is_one_message_per_recipient() {
    let db = TestDb::sqlite().await;
    let sim = sim(&[("ops", Behaviour::Open)]).await;
    let cfg = cfg(&format!(
        "{}[[notifiers]]\nname = \"wa\"\nkind = \"whatsapp\"\nprovider = \"evo\"\ninstance = \"ops\"\n\
         to = [\"{TO}\", \"5511977776666\"]\ndigest_window = \"5s\"\nmin_gap = \"0s\"\n",
        evo_toml(&sim)
    ));
    let t0 = wa_sentinel::clock::now();
    believe(&db.store, "evo", "ops", ProviderStatus::Connected, t0).await;
    let notices: Vec<Notice> = (0..20)
        .map(|i| notice(NoticeKind::InstanceDown, "evo", &format!("shop-{i:02}"), &format!("o{i}"), t0))
        .collect();
    queue(&db.store, &cfg, &notices[..12], t0).await;
    queue(&db.store, &cfg, &notices[12..], Ts(t0.0 + 3_000)).await;
    let w = OutboxWorker::new(db.store.clone(), &cfg, policy(&cfg, Duration::from_secs(5))).unwrap();
    assert_eq!(w.drain(move || Ts(t0.0 + 3_000)).await.unwrap().delivered, 0, "the window is still open");
    assert!(sim.sent_messages().is_empty());
    assert_eq!(w.drain(move || Ts(t0.0 + 5_000)).await.unwrap().delivered, 20);
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 2, "one digest per recipient, not 40 messages");
    for m in &sent {
        assert!(m.text.starts_with("*wa-sentinel: 20 notices*"), "{}", m.text);
        for n in &notices {
            assert!(m.text.contains(&chat::reference(&n.dedup_key, &m.to)), "{} lacks {}", m.text, n.dedup_key);
        }
    }
}

/// Without a digest window each notice is its own message; two notifiers
/// that share an instance share its pace: a burst of six messages goes out
/// at least `min_gap` apart, however the two notifiers' deliveries overlap.
#[tokio::test]
async fn per_instance_pacing_holds_under_a_burst_across_notifiers_sharing_the_instance() {
    let db = TestDb::sqlite().await;
    let sim = sim(&[("ops", Behaviour::Open)]).await;
    let cfg = cfg(&format!(
        "{}[[notifiers]]\nname = \"wa-a\"\nkind = \"whatsapp\"\nprovider = \"evo\"\ninstance = \"ops\"\n\
         to = [\"{TO}\"]\ndigest_window = \"0s\"\nmin_gap = \"700ms\"\n\
         [[notifiers]]\nname = \"wa-b\"\nkind = \"whatsapp\"\nprovider = \"evo\"\ninstance = \"ops\"\n\
         to = [\"5511977776666\"]\ndigest_window = \"0s\"\nmin_gap = \"700ms\"\n",
        evo_toml(&sim)
    ));
    let t0 = wa_sentinel::clock::now();
    believe(&db.store, "evo", "ops", ProviderStatus::Connected, t0).await;
    let notices: Vec<Notice> =
        (0..3).map(|i| notice(NoticeKind::InstanceDown, "evo", &format!("shop-{i}"), &format!("o{i}"), t0)).collect();
    queue(&db.store, &cfg, &notices, t0).await;
    let w = OutboxWorker::new(db.store.clone(), &cfg, policy(&cfg, Duration::from_secs(5))).unwrap();
    assert_eq!(w.drain(move || t0).await.unwrap().delivered, 6);
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 6, "one message per notice and recipient");
    for n in &notices {
        assert_eq!(sent.iter().filter(|m| m.text.contains(&chat::reference(&n.dedup_key, &m.to))).count(), 2);
    }
    let mut at: Vec<i64> = sent.iter().map(|m| m.at.0).collect();
    at.sort_unstable();
    let gaps: Vec<i64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|&g| g >= 690), "gaps between messages through one instance: {gaps:?} ms");
}

/// A gap longer than a second is not slept through: the next notice waits
/// in the outbox until the gap has passed, and the round goes on.
#[tokio::test]
async fn a_long_min_gap_leaves_the_next_message_in_the_outbox_until_it_is_due() {
    let db = TestDb::sqlite().await;
    let sim = sim(&[("ops", Behaviour::Open)]).await;
    let cfg = cfg(&format!(
        "{}[[notifiers]]\nname = \"wa\"\nkind = \"whatsapp\"\nprovider = \"evo\"\ninstance = \"ops\"\n\
         to = [\"{TO}\"]\ndigest_window = \"0s\"\nmin_gap = \"2s\"\n",
        evo_toml(&sim)
    ));
    let t0 = wa_sentinel::clock::now();
    believe(&db.store, "evo", "ops", ProviderStatus::Connected, t0).await;
    let notices: Vec<Notice> =
        (0..2).map(|i| notice(NoticeKind::InstanceDown, "evo", &format!("shop-{i}"), &format!("o{i}"), t0)).collect();
    queue(&db.store, &cfg, &notices, t0).await;
    let w = OutboxWorker::new(db.store.clone(), &cfg, policy(&cfg, Duration::from_secs(5))).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(w.drain(wa_sentinel::clock::now).await.unwrap().delivered, 1);
    assert!(started.elapsed() < Duration::from_secs(1), "the round did not wait out the gap");
    assert_eq!(w.drain(wa_sentinel::clock::now).await.unwrap().delivered, 0, "not due yet");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(w.drain(wa_sentinel::clock::now).await.unwrap().delivered, 1);
    let at: Vec<i64> = sim.sent_messages().iter().map(|m| m.at.0).collect();
    assert_eq!(at.len(), 2);
    assert!(at[1] - at[0] >= 2000, "{at:?}");
    assert_eq!(db.store.outbox_rows().await.unwrap()[1].attempts, 1, "the delivery only: the wait was no attempt");
}

#[tokio::test]
async fn notices_wait_for_a_verdict_on_the_ops_instance_then_go_to_the_fallback() {
    let db = TestDb::sqlite().await;
    let sim = sim(&[("ops", Behaviour::Open)]).await;
    let sink = ok_sink().await;
    let cfg = cfg(&format!("{}{}", evo_toml(&sim), wa_with_fallback(&sink.uri())));
    let t0 = wa_sentinel::clock::now();
    let n = notice(NoticeKind::InstanceDown, "evo", "shop", "o1", t0);
    queue(&db.store, &cfg, std::slice::from_ref(&n), t0).await;
    let w = OutboxWorker::new(db.store.clone(), &cfg, policy(&cfg, Duration::from_secs(5))).unwrap();
    // Never checked yet: the notice waits.
    assert_eq!(w.drain(move || Ts(t0.0 + 10_000)).await.unwrap(), Default::default());
    assert!(sink.received_requests().await.unwrap().is_empty() && sim.sent_messages().is_empty());
    // A minute without a verdict: the fallback gets it.
    let rep = w.drain(move || Ts(t0.0 + 61_000)).await.unwrap();
    assert_eq!((rep.handed_over, rep.delivered), (1, 1), "{rep:?}");
    assert_eq!(idempotency_keys(&sink).await, vec![n.dedup_key.clone()]);
    assert!(sim.sent_messages().is_empty());
}

#[tokio::test]
async fn a_notice_about_the_ops_instance_itself_goes_to_the_fallback_and_its_recovery_through_it() {
    let db = TestDb::sqlite().await;
    let sim = sim(&[("ops", Behaviour::Open)]).await;
    let sink = ok_sink().await;
    let cfg = cfg(&format!("{}{}", evo_toml(&sim), wa_with_fallback(&sink.uri())));
    let t0 = wa_sentinel::clock::now();
    believe(&db.store, "evo", "ops", ProviderStatus::Connected, t0).await;
    let down = notice(NoticeKind::InstanceFlapping, "evo", "ops", "o1", t0);
    let back = notice(NoticeKind::InstanceRecovered, "evo", "ops", "o1", t0);
    queue(&db.store, &cfg, &[down.clone(), back.clone()], t0).await;
    let w = OutboxWorker::new(db.store.clone(), &cfg, policy(&cfg, Duration::from_secs(5))).unwrap();
    let rep = w.drain(move || t0).await.unwrap();
    assert_eq!((rep.handed_over, rep.delivered), (1, 2), "{rep:?}");
    assert_eq!(idempotency_keys(&sink).await, vec![down.dedup_key.clone()]);
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].text.contains(&chat::reference(&back.dedup_key, TO)), "{}", sent[0].text);
}

#[tokio::test]
async fn a_send_the_provider_refuses_hands_the_notice_to_the_fallback_once() {
    let db = TestDb::sqlite().await;
    let evo = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/message/sendText/ops"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            include_str!("../fixtures/evolution/v2-sendText-error-400-connection-closed.json"),
            "application/json",
        ))
        .expect(1)
        .mount(&evo)
        .await;
    let sink = ok_sink().await;
    let cfg = cfg(&format!(
        "[[providers]]\nname = \"evo\"\nkind = \"evolution\"\nbase_url = \"{}\"\napi_key = \"k\"\nwebhook_token = \"t\"\n\
         api_version = \"v2\"\n[[instances]]\nprovider = \"evo\"\nname = \"ops\"\n{}",
        evo.uri(),
        wa_with_fallback(&sink.uri())
    ));
    let t0 = wa_sentinel::clock::now();
    believe(&db.store, "evo", "ops", ProviderStatus::Connected, t0).await;
    let n = notice(NoticeKind::InstanceDown, "evo", "shop", "o1", t0);
    queue(&db.store, &cfg, std::slice::from_ref(&n), t0).await;
    let w = OutboxWorker::new(db.store.clone(), &cfg, policy(&cfg, Duration::from_secs(5))).unwrap();
    let rep = w.drain(move || t0).await.unwrap();
    assert_eq!((rep.handed_over, rep.delivered), (1, 1), "{rep:?}");
    w.drain(move || Ts(t0.0 + 3_600_000)).await.unwrap();
    assert_eq!(idempotency_keys(&sink).await, vec![n.dedup_key.clone()]);
    let wa = db.store.outbox_rows().await.unwrap().into_iter().find(|r| r.notifier == "wa").unwrap();
    assert_eq!(wa.status, "handed_over");
    let why = wa.last_error.unwrap();
    assert!(
        why.starts_with("handed to fallback hook: the provider refused the message")
            && why.contains("Connection Closed"),
        "{why}"
    );
}

/// A send whose answer never came (the provider took it, then the client
/// timed out) is found by its reference before anything is sent again.
#[tokio::test]
async fn a_send_whose_answer_was_lost_is_found_by_its_reference_and_never_repeated() {
    let db = TestDb::sqlite().await;
    let sim = sim(&[("ops", Behaviour::Open)]).await;
    sim.set_send_delay(Duration::from_secs(3));
    let cfg = cfg(&format!(
        "{}[[notifiers]]\nname = \"wa\"\nkind = \"whatsapp\"\nprovider = \"evo\"\ninstance = \"ops\"\n\
         to = [\"{TO}\"]\ndigest_window = \"0s\"\n",
        evo_toml(&sim)
    ));
    let t0 = wa_sentinel::clock::now();
    believe(&db.store, "evo", "ops", ProviderStatus::Connected, t0).await;
    let n = notice(NoticeKind::InstanceDown, "evo", "shop", "o1", t0);
    queue(&db.store, &cfg, std::slice::from_ref(&n), t0).await;
    let w = OutboxWorker::new(db.store.clone(), &cfg, policy(&cfg, Duration::from_secs(1))).unwrap();
    let rep = w.drain(move || t0).await.unwrap();
    assert_eq!((rep.failed, rep.delivered), (1, 0), "{rep:?}");
    assert_eq!(sim.sent_messages().len(), 1, "the provider took it; its answer came too late");
    let row = &db.store.outbox_rows().await.unwrap()[0];
    assert!(row.receipts.as_deref().unwrap().contains("sending_since"), "{row:?}");
    assert!(row.last_error.as_deref().unwrap().contains("checks with the provider"), "{row:?}");
    sim.set_send_delay(Duration::ZERO);
    let rep = w.drain(move || Ts(t0.0 + 60_000)).await.unwrap();
    assert_eq!(rep.delivered, 1, "{rep:?}");
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 1, "found by its reference, not sent again");
    let receipts: serde_json::Value =
        serde_json::from_str(db.store.outbox_rows().await.unwrap()[0].receipts.as_deref().unwrap()).unwrap();
    assert_eq!(receipts[TO]["id"], sent[0].id.as_str());
}

/// Where the provider keeps no messages (Evolution without
/// `DATABASE_SAVE_DATA_NEW_MESSAGE`, Z-API, W-API) a lost answer means the
/// message is sent again: at least once, never silence.
#[tokio::test]
async fn where_the_provider_cannot_tell_a_lost_answer_means_one_more_send() {
    let db = TestDb::sqlite().await;
    let sim = sim(&[("ops", Behaviour::Open)]).await;
    sim.set_send_delay(Duration::from_secs(3));
    sim.set_store_messages(false);
    let cfg = cfg(&format!(
        "{}[[notifiers]]\nname = \"wa\"\nkind = \"whatsapp\"\nprovider = \"evo\"\ninstance = \"ops\"\n\
         to = [\"{TO}\"]\ndigest_window = \"0s\"\nmin_gap = \"0s\"\n",
        evo_toml(&sim)
    ));
    let t0 = wa_sentinel::clock::now();
    believe(&db.store, "evo", "ops", ProviderStatus::Connected, t0).await;
    queue(&db.store, &cfg, &[notice(NoticeKind::InstanceDown, "evo", "shop", "o1", t0)], t0).await;
    let w = OutboxWorker::new(db.store.clone(), &cfg, policy(&cfg, Duration::from_secs(1))).unwrap();
    assert_eq!(w.drain(move || t0).await.unwrap().failed, 1);
    sim.set_send_delay(Duration::ZERO);
    assert_eq!(w.drain(move || Ts(t0.0 + 60_000)).await.unwrap().delivered, 1);
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 2, "sent again");
    assert_eq!(sent[0].text, sent[1].text, "the same text and reference: a person sees the repeat");
}

/// W-API has no simulator: its send, end to end through the worker, against wiremock.
#[tokio::test]
async fn a_wapi_ops_instance_sends_the_notice_with_its_bearer_token() {
    let db = TestDb::sqlite().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/message/send-text"))
        .and(wiremock::matchers::query_param("instanceId", "3B6XIW-ZTS923-GEAY6V"))
        .and(wiremock::matchers::header("authorization", "Bearer wapi-ops-token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(include_str!("../fixtures/wapi/send-text-response.json"), "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let cfg = cfg(&format!(
        "[[providers]]\nname = \"wapi\"\nkind = \"wapi\"\nbase_url = \"{}\"\nwebhook_token = \"t\"\n\
         [[instances]]\nprovider = \"wapi\"\nname = \"3B6XIW-ZTS923-GEAY6V\"\ntoken = \"wapi-ops-token\"\n\
         [[notifiers]]\nname = \"wa\"\nkind = \"whatsapp\"\nprovider = \"wapi\"\ninstance = \"3B6XIW-ZTS923-GEAY6V\"\n\
         to = [\"{TO}\"]\ndigest_window = \"0s\"\n",
        server.uri()
    ));
    let t0 = wa_sentinel::clock::now();
    believe(&db.store, "wapi", "3B6XIW-ZTS923-GEAY6V", ProviderStatus::Connected, t0).await;
    let n = notice(NoticeKind::InstanceDown, "evo", "shop", "o1", t0);
    queue(&db.store, &cfg, std::slice::from_ref(&n), t0).await;
    let w = OutboxWorker::new(db.store.clone(), &cfg, policy(&cfg, Duration::from_secs(5))).unwrap();
    assert_eq!(w.drain(move || t0).await.unwrap().delivered, 1);
    let req = &server.received_requests().await.unwrap()[0];
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"phone": TO, "message": chat::message(&n, Language::En, TO), "delayMessage": 1})
    );
    let r = &db.store.outbox_rows().await.unwrap()[0];
    assert!(r.receipts.as_deref().unwrap().contains("3EB0A1C2D3E4F5061728394A5B6C7D8E9F0A1B2C"), "{r:?}");
}
