//! Round trips: the real client against the in-process Evolution simulator.

use super::SentExt;
use std::time::Duration;

use serde_json::json;
use wa_sentinel::config::{ApiVersion, ProviderKind};
use wa_sentinel::domain::{ProviderStatus, RecoveryKind, WebhookSignal};
use wa_sentinel::providers::Provider as _;
use wa_sentinel::providers::{ErrorClass, InstanceRef, ProviderClient, WebhookRepair, parse_inbound};
use wa_sentinel::sim::Delivery;
use wa_sentinel::sim::evolution::{Behaviour, SimEvent, SimOptions, Simulator};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{desired, evo_cfg, fixture_json};

async fn sim(instances: &[(&str, Behaviour)]) -> Simulator {
    Simulator::start(SimOptions {
        instances: instances.iter().map(|(n, b)| (n.to_string(), *b)).collect(),
        ..SimOptions::default()
    })
    .await
    .expect("simulator starts")
}

fn client(s: &Simulator) -> ProviderClient {
    ProviderClient::new(&s.provider_config("sim"), Duration::from_secs(5)).unwrap()
}

fn i(name: &str) -> InstanceRef {
    InstanceRef::named(name)
}

#[tokio::test]
async fn status_of_every_behaviour() {
    let s = sim(&[
        ("open", Behaviour::Open),
        ("zombie", Behaviour::ZombieOpen),
        ("transient", Behaviour::ClosedTransient { reason: 428 }),
        ("loggedout", Behaviour::LoggedOut),
        ("banned", Behaviour::Banned),
        ("qr", Behaviour::ConnectingWithQr),
        ("replaced", Behaviour::Replaced),
        ("unpaired", Behaviour::Unpaired),
    ])
    .await;
    let c = client(&s);
    let cases = [
        ("open", ProviderStatus::Connected),
        ("zombie", ProviderStatus::Connected),
        // Faithful to v2: transient closes leave no reason in the DB.
        ("transient", ProviderStatus::Disconnected { reason: None }),
        ("loggedout", ProviderStatus::LoggedOut { reason: Some(401) }),
        ("banned", ProviderStatus::LoggedOut { reason: Some(403) }),
        ("qr", ProviderStatus::Connecting { qr_pending: false }),
        ("replaced", ProviderStatus::Disconnected { reason: None }),
        ("unpaired", ProviderStatus::Unpaired),
        ("nope", ProviderStatus::NotFound),
    ];
    for (name, want) in cases {
        assert_eq!(c.status(&i(name)).await.unwrap().status, want, "{name}");
    }
    assert_eq!(s.calls("GET", "/"), 0, "a status call needs no version");
    assert_eq!(s.calls("GET", "/instance/fetchInstances"), 5, "follow-up only for the five closed ones");
    let names: Vec<String> = c.list_instances().await.unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(names, ["banned", "loggedout", "open", "qr", "replaced", "transient", "unpaired", "zombie"]);
}

#[tokio::test]
async fn reconnect_revives_a_transient_close_with_one_connect() {
    let s = sim(&[("a", Behaviour::ClosedTransient { reason: 408 })]).await;
    let c = client(&s);
    let d = c.recover(&i("a"), RecoveryKind::Reconnect).await.unwrap().sent();
    assert_eq!(d, "GET /instance/connect/a -> 200 state=open");
    assert_eq!(c.status(&i("a")).await.unwrap().status, ProviderStatus::Connected);
    assert_eq!(s.calls("GET", "/instance/connect/a"), 1);
    assert_eq!(s.calls("POST", "/instance/restart/a"), 0);
    assert_eq!(s.behaviour("a"), Some(Behaviour::Open));
}

#[tokio::test]
async fn v2_restart_on_a_closed_session_is_a_no_op_failure() {
    let s = sim(&[("a", Behaviour::ClosedTransient { reason: 428 })]).await;
    let e = client(&s).recover(&i("a"), RecoveryKind::Restart).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::BadResponse);
    assert!(e.detail.contains("[object Object]"), "{e}");
    assert_eq!(s.behaviour("a"), Some(Behaviour::ClosedTransient { reason: 428 }));
    assert_eq!(s.calls("POST", "/instance/restart/a"), 1);
}

#[tokio::test]
async fn v1_style_put_restart_is_a_route_miss_on_v2() {
    let s = sim(&[("a", Behaviour::ZombieOpen)]).await;
    let c = ProviderClient::new(&evo_cfg(&s.base_url(), ApiVersion::V1), Duration::from_secs(5)).unwrap();
    let e = c.recover(&i("a"), RecoveryKind::Restart).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::BadResponse);
    assert!(e.detail.contains("Cannot PUT /instance/restart/a"), "{e}");
}

#[tokio::test]
async fn zombie_is_silent_until_restarted() {
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&hooks)
        .await;
    let s = sim(&[("z", Behaviour::ZombieOpen)]).await;
    let target = format!("{}/hooks", hooks.uri());
    let d = s.post_webhook("z", SimEvent::MessagesUpsert, Some(&target)).await.unwrap();
    assert_eq!(d, Delivery::Suppressed("zombie session sends no webhooks"));
    let desc = client(&s).recover(&i("z"), RecoveryKind::Restart).await.unwrap().sent();
    assert_eq!(desc, "POST /instance/restart/z -> 200 state=open");
    assert_eq!(s.behaviour("z"), Some(Behaviour::Open));
    assert_eq!(s.post_webhook("z", SimEvent::MessagesUpsert, Some(&target)).await.unwrap(), Delivery::Sent(200));
}

#[tokio::test]
async fn auth_guard_order_404_before_401() {
    let s = sim(&[("a", Behaviour::Open)]).await;
    let mut cfg = s.provider_config("sim");
    cfg.api_key = Some(wa_sentinel::config::Secret::literal("wrong"));
    cfg.api_version = ApiVersion::V2;
    let c = ProviderClient::new(&cfg, Duration::from_secs(5)).unwrap();
    assert_eq!(c.status(&i("a")).await.unwrap_err().class, ErrorClass::Unauthorized);
    assert_eq!(c.status(&i("ghost")).await.unwrap().status, ProviderStatus::NotFound);
}

#[tokio::test]
async fn webhook_set_find_round_trip_and_idempotence() {
    let s = sim(&[("a", Behaviour::Open)]).await;
    let c = client(&s);
    assert_eq!(c.webhook(&i("a")).await.unwrap(), None, "literal null when unset");
    let want = desired(&["CONNECTION_UPDATE", "MESSAGES_UPSERT"], true);
    let url = "http://127.0.0.1:9/hooks/evolution/secret-token";
    let r = c.apply_webhook(&i("a"), url, &want).await.unwrap();
    assert_eq!(r, WebhookRepair::Repaired { reasons: vec!["no webhook configured".into()] });
    let got = c.webhook(&i("a")).await.unwrap().expect("configured");
    assert!(got.enabled && got.by_events);
    assert_eq!(got.url.as_deref(), Some(url));
    assert_eq!(got.events, ["CONNECTION_UPDATE", "MESSAGES_UPSERT"]);
    assert_eq!(c.apply_webhook(&i("a"), url, &want).await.unwrap(), WebhookRepair::AlreadyOk);
    assert_eq!(s.calls("POST", "/webhook/set/a"), 1, "second apply writes nothing");
}

#[tokio::test]
async fn repair_keeps_operator_events_and_headers() {
    let s = sim(&[("a", Behaviour::Open)]).await;
    let mut row = fixture_json("evolution/v2-webhook-find-configured.json");
    row["url"] = json!("https://operator.example.com/old");
    row["events"] = json!(["CALL", "CONNECTION_UPDATE"]);
    s.set_webhook_config("a", Some(row));
    let c = client(&s);
    let want = desired(&["CONNECTION_UPDATE", "QRCODE_UPDATED"], false);
    let r = c.apply_webhook(&i("a"), "http://127.0.0.1:9/hooks/x", &want).await.unwrap();
    let WebhookRepair::Repaired { reasons } = r else { panic!("want Repaired, got {r:?}") };
    assert_eq!(reasons, ["points at another URL (https://operator.example.com/old)", "missing events QRCODE_UPDATED"]);
    let stored = s.webhook_config("a").unwrap();
    assert_eq!(stored["events"], json!(["CALL", "CONNECTION_UPDATE", "QRCODE_UPDATED"]));
    assert_eq!(stored["headers"]["x-supervisor-node"], json!("node-a"), "operator headers kept");
}

#[tokio::test]
async fn simulator_validates_webhook_set_like_v2() {
    let s = sim(&[("sales-bot", Behaviour::Open)]).await;
    let http = reqwest::Client::new();
    let set = |body: serde_json::Value| {
        http.post(format!("{}/webhook/set/sales-bot", s.base_url())).header("apikey", s.api_key()).json(&body).send()
    };
    let r = set(fixture_json("evolution/v1-webhook-set-request.json")).await.unwrap();
    assert_eq!(r.status(), 400);
    let got: serde_json::Value = r.json().await.unwrap();
    assert_eq!(got, fixture_json("evolution/error-400-validation-v2-flat-body-sent-to-v2.json"));
    let mut no_events = fixture_json("evolution/v2-webhook-set-request.json");
    no_events["webhook"].as_object_mut().unwrap().remove("events");
    let r = set(no_events).await.unwrap();
    assert_eq!(r.status(), 500);
    let got: serde_json::Value = r.json().await.unwrap();
    assert_eq!(got, fixture_json("evolution/error-500-v2-webhook-set-enabled-without-events.json"));
    let mut bad_event = fixture_json("evolution/v2-webhook-set-request.json");
    bad_event["webhook"]["events"] = json!(["CONNECTION_UPDATE", "NOPE"]);
    let r = set(bad_event).await.unwrap();
    let got: serde_json::Value = r.json().await.unwrap();
    assert_eq!(got, fixture_json("evolution/error-400-validation-v2-webhook-set.json"));

    // A valid set answers 201 with the stored row, as in the fixture.
    let r = set(fixture_json("evolution/v2-webhook-set-request.json")).await.unwrap();
    assert_eq!(r.status(), 201);
    let row: serde_json::Value = r.json().await.unwrap();
    let want = fixture_json("evolution/v2-webhook-set-response.json");
    for k in ["url", "headers", "enabled", "events", "webhookByEvents", "webhookBase64"] {
        assert_eq!(row[k], want[k], "{k}");
    }
    // The jwt request turns by-events on and keeps its headers.
    set(fixture_json("evolution/v2-webhook-set-request-jwt.json")).await.unwrap();
    let c = client(&s);
    let w = c.webhook(&i("sales-bot")).await.unwrap().unwrap();
    assert!(w.by_events);
    assert_eq!(w.events, ["CONNECTION_UPDATE", "QRCODE_UPDATED"]);
    // Disabling stores `events: []`; the URL stays, so it reads as disabled.
    let r = set(fixture_json("evolution/v2-webhook-set-request-disable.json")).await.unwrap();
    assert_eq!(r.status(), 201);
    let w = c.webhook(&i("sales-bot")).await.unwrap().unwrap();
    assert!(!w.enabled && w.events.is_empty());
    assert_eq!(s.webhook_config("sales-bot").unwrap()["headers"], json!({"jwt_key": "shared-hs256-secret"}));
}

#[tokio::test]
async fn post_webhook_reaches_the_configured_url_with_a_parsable_body() {
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/evo/messages-upsert"))
        .and(header("x-supervisor-node", "node-a"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&hooks)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks/evo/connection-update"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&hooks)
        .await;
    let s = sim(&[("a", Behaviour::Open)]).await;
    let mut row = fixture_json("evolution/v2-webhook-find-configured.json");
    row["url"] = json!(format!("{}/hooks/evo", hooks.uri()));
    row["webhookByEvents"] = json!(true);
    row["events"] = json!(["MESSAGES_UPSERT", "CONNECTION_UPDATE"]);
    s.set_webhook_config("a", Some(row));
    assert_eq!(s.post_webhook("a", SimEvent::MessagesUpsert, None).await.unwrap(), Delivery::Sent(200));
    let closed = SimEvent::ConnectionUpdate { state: "close".into(), status_reason: 401 };
    assert_eq!(s.post_webhook("a", closed, None).await.unwrap(), Delivery::Sent(200));
    // Not in the configured events list: not sent.
    let d = s.post_webhook("a", SimEvent::LogoutInstance, None).await.unwrap();
    assert_eq!(d, Delivery::Suppressed("event not subscribed"));

    let got = hooks.received_requests().await.unwrap();
    assert_eq!(got.len(), 2);
    let upsert = parse_inbound(ProviderKind::Evolution, &got[0].body, Some("messages-upsert")).unwrap();
    assert_eq!((upsert.instance.as_str(), upsert.event.as_str()), ("a", "messages.upsert"));
    assert_eq!(upsert.signal, WebhookSignal::Alive);
    let close = parse_inbound(ProviderKind::Evolution, &got[1].body, Some("connection-update")).unwrap();
    assert_eq!(close.signal, WebhookSignal::LoggedOut { reason: Some(401) });
}

#[tokio::test]
async fn post_webhook_every_event_to_a_target() {
    let hooks = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(204)).expect(4).mount(&hooks).await;
    let s = sim(&[("a", Behaviour::ConnectingWithQr)]).await;
    let target = format!("{}/t", hooks.uri());
    assert_eq!(
        s.post_webhook("a", SimEvent::MessagesUpsert, None).await.unwrap(),
        Delivery::Suppressed("no webhook configured")
    );
    let events = [
        (SimEvent::ConnectionUpdate { state: "open".into(), status_reason: 200 }, WebhookSignal::Open),
        (SimEvent::MessagesUpsert, WebhookSignal::Alive),
        (SimEvent::QrcodeUpdated, WebhookSignal::Connecting { qr_pending: true }),
        (SimEvent::LogoutInstance, WebhookSignal::LoggedOut { reason: None }),
    ];
    for (ev, _) in &events {
        assert_eq!(s.post_webhook("a", ev.clone(), Some(&target)).await.unwrap(), Delivery::Sent(204));
    }
    let got = hooks.received_requests().await.unwrap();
    for (req, (ev, signal)) in got.iter().zip(&events) {
        let p = parse_inbound(ProviderKind::Evolution, &req.body, None).unwrap();
        assert_eq!((p.event.as_str(), p.signal), (ev.name(), *signal));
    }
    assert!(s.post_webhook("ghost", SimEvent::MessagesUpsert, Some(&target)).await.is_err());
}

#[tokio::test]
async fn injected_faults_classify_as_provider_errors() {
    let s = sim(&[("a", Behaviour::Open), ("b", Behaviour::LoggedOut)]).await;
    let c = client(&s);
    assert_eq!(c.status(&i("a")).await.unwrap().status, ProviderStatus::Connected);
    s.set_down(true);
    let e = c.status(&i("a")).await.unwrap_err();
    assert_eq!(
        (e.class, e.detail.contains("HTML") || e.detail.contains("503")),
        (ErrorClass::ServerError, true),
        "{e}"
    );
    s.set_down(false);
    s.set_failure_rate(1.0);
    assert_eq!(c.status(&i("a")).await.unwrap_err().class, ErrorClass::ServerError);
    s.set_failure_rate(0.0);
    s.set_latency(Duration::from_millis(400));
    let fast = ProviderClient::new(&s.provider_config("sim"), Duration::from_millis(100)).unwrap();
    assert_eq!(fast.status(&i("a")).await.unwrap_err().class, ErrorClass::Unreachable);
    s.set_latency(Duration::ZERO);
    // Behaviour changes at runtime.
    assert!(s.set_behaviour("a", Behaviour::Banned));
    assert_eq!(c.status(&i("a")).await.unwrap().status, ProviderStatus::LoggedOut { reason: Some(403) });
    let before = s.total_calls();
    assert!(before > 0);
    s.reset_calls();
    assert_eq!(s.total_calls(), 0);
    s.shutdown().await;
}

#[tokio::test]
async fn failure_rate_is_partial() {
    let s = sim(&[("a", Behaviour::Open)]).await;
    s.set_failure_rate(0.5);
    let mut cfg = s.provider_config("sim");
    cfg.api_version = ApiVersion::V2;
    let c = ProviderClient::new(&cfg, Duration::from_secs(5)).unwrap();
    let mut ok = 0;
    for _ in 0..40 {
        if c.status(&i("a")).await.is_ok() {
            ok += 1;
        }
    }
    assert!((5..=35).contains(&ok), "about half succeed: {ok}");
}
