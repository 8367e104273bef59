//! Z-API contract tests over every copied fixture (`tests/fixtures/zapi/`):
//! credentials in the path and never in an error, `Client-Token`, status
//! mapping, restore-session vs restart, the slot audit, inbound parsing,
//! property tests of the parser, and round trips against the Z-API simulator.

use super::SentExt;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;
use wa_sentinel::config::{ProviderConfig, ProviderKind, Secret};
use wa_sentinel::domain::{ProviderStatus, RecoveryKind, Ts, WebhookSignal};
use wa_sentinel::providers::{
    ErrorClass, InboundError, InstanceRef, Provider as _, ProviderClient, WebhookRepair, WebhookSettings, parse_inbound,
};
use wa_sentinel::sim::Delivery;
use wa_sentinel::sim::zapi::{ZapiBehaviour, ZapiEvent, ZapiSim};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::inbound::json_value;
use super::{NoHeader, desired, fixture, fixture_json, json_body, json_fixture};

const ID: &str = "3C67AB641C8AA0412F6A2242B4E23AC7";
const TOKEN: &str = "F0E1D2C3B4A5968778695A4B3C2D1E0F";
const CLIENT: &str = "zapi-account-security-token";
const WANT: &str = "https://sentinel.example.com/webhooks/zapi/hooktok";

fn cfg(base_url: &str, client_token: Option<&str>) -> ProviderConfig {
    ProviderConfig {
        client_token: client_token.map(Secret::literal),
        ..ProviderConfig::new("zapi", ProviderKind::Zapi, base_url, Secret::literal("hooktok"))
    }
}

fn client(server: &MockServer) -> ProviderClient {
    ProviderClient::new(&cfg(&server.uri(), Some(CLIENT)), Duration::from_secs(5)).unwrap()
}

fn inst() -> InstanceRef {
    InstanceRef { name: ID.into(), token: Some(Secret::literal(TOKEN)) }
}

fn call(m: &str, method_path: &str) -> wiremock::MockBuilder {
    Mock::given(method(m))
        .and(path(format!("/instances/{ID}/token/{TOKEN}/{method_path}")))
        .and(header("client-token", CLIENT))
}

#[tokio::test]
async fn every_status_fixture_maps_with_one_call() {
    let cases = [
        ("status.connected.json", ProviderStatus::Connected),
        ("status.needs-restore.json", ProviderStatus::Disconnected { reason: None }),
        ("status.not-connected.json", ProviderStatus::Connecting { qr_pending: true }),
    ];
    for (fx, want) in cases {
        let server = MockServer::start().await;
        call("GET", "status").respond_with(json_fixture(200, &format!("zapi/{fx}"))).expect(1).mount(&server).await;
        assert_eq!(client(&server).status(&inst()).await.unwrap().status, want, "{fx}");
    }
    // `smartphoneConnected:false` alone is not an outage.
    let server = MockServer::start().await;
    call("GET", "status")
        .respond_with(json_body(200, r#"{"connected":true,"error":"","smartphoneConnected":false}"#))
        .mount(&server)
        .await;
    assert_eq!(client(&server).status(&inst()).await.unwrap().status, ProviderStatus::Connected);
}

#[tokio::test]
async fn no_client_token_configured_sends_none() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/instances/{ID}/token/{TOKEN}/status")))
        .and(NoHeader("client-token"))
        .respond_with(json_fixture(200, "zapi/status.connected.json"))
        .expect(1)
        .mount(&server)
        .await;
    let c = ProviderClient::new(&cfg(&server.uri(), None), Duration::from_secs(5)).unwrap();
    assert_eq!(c.status(&inst()).await.unwrap().status, ProviderStatus::Connected);
}

#[tokio::test]
async fn security_refusals_are_unauthorized_and_name_the_fix() {
    for (status, fx) in [(200, "zapi/error.client-token-missing.json"), (403, "zapi/error.ip-blocked.json")] {
        let server = MockServer::start().await;
        call("GET", "status").respond_with(json_fixture(status, fx)).expect(1).mount(&server).await;
        let e = client(&server).status(&inst()).await.unwrap_err();
        assert_eq!(e.class, ErrorClass::Unauthorized, "{fx}");
        assert!(e.detail.contains("Client-Token"), "{e}");
        assert!(!e.to_string().contains(TOKEN) && !e.to_string().contains(CLIENT), "{e}");
    }
}

#[tokio::test]
async fn the_instance_token_never_reaches_an_error_even_when_the_provider_echoes_the_path() {
    let server = MockServer::start().await;
    let echo = format!("<html>Cannot GET /instances/{ID}/token/{TOKEN}/status</html>");
    call("GET", "status")
        .respond_with(ResponseTemplate::new(502).set_body_raw(echo.clone(), "text/html"))
        .mount(&server)
        .await;
    call("GET", "restart")
        .respond_with(ResponseTemplate::new(400).set_body_raw(echo, "text/html"))
        .mount(&server)
        .await;
    call("GET", "me")
        .respond_with(json_body(200, &format!(r#"{{"error":true,"message":"token {TOKEN} expired"}}"#)))
        .mount(&server)
        .await;
    let c = client(&server);
    let errors = [
        c.status(&inst()).await.unwrap_err(),
        c.recover(&inst(), RecoveryKind::Restart).await.unwrap_err(),
        c.webhook(&inst()).await.unwrap_err(),
    ];
    for e in errors {
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(shown.contains("/token/") && (shown.contains("[token]") || shown.contains("…")), "{shown}");
    }
    // Transport errors carry no URL either.
    let dead = ProviderClient::new(&cfg("http://127.0.0.1:9", None), Duration::from_secs(2)).unwrap();
    let e = dead.status(&inst()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Unreachable);
    assert!(!format!("{e} {e:?}").contains(TOKEN), "{e}");
    // And a missing token is a configuration error naming the key.
    let e = client(&server).status(&InstanceRef::named(ID)).await.unwrap_err();
    assert!(e.detail.contains("token_env"), "{e}");
}

#[tokio::test]
async fn reconnect_restores_the_session_and_the_zombie_is_restarted() {
    let server = MockServer::start().await;
    call("GET", "restore-session")
        .respond_with(json_fixture(200, "zapi/restore-session.response.json"))
        .expect(1)
        .mount(&server)
        .await;
    call("GET", "restart").respond_with(json_fixture(200, "zapi/restart.response.json")).expect(1).mount(&server).await;
    let c = client(&server);
    let d = c.recover(&inst(), RecoveryKind::Reconnect).await.unwrap().sent();
    assert_eq!(d, format!("GET /instances/{ID}/token/…/restore-session -> 200"));
    let d = c.recover(&inst(), RecoveryKind::Restart).await.unwrap().sent();
    assert_eq!(d, format!("GET /instances/{ID}/token/…/restart -> 200"));
    // Nothing to discover, and no call for it.
    assert!(c.list_instances().await.unwrap().is_empty());
}

#[tokio::test]
async fn webhook_slots_are_read_from_me() {
    let server = MockServer::start().await;
    call("GET", "me").respond_with(json_fixture(200, "zapi/me.json")).expect(1).mount(&server).await;
    let got = client(&server).webhook(&inst()).await.unwrap();
    let want = WebhookSettings {
        enabled: true,
        url: Some(format!("https://hooks.example.com/wa/zapi/{ID}/connected?k=s3cr3t")),
        events: ["connected", "disconnected", "delivery", "received", "message-status"].map(String::from).to_vec(),
        by_events: true,
        base64: false,
    };
    assert_eq!(got, Some(want));
}

fn me_with(url: &str) -> String {
    let mut j = fixture_json("zapi/me.json");
    for f in ["connectedCallbackUrl", "disconnectedCallbackUrl", "receivedCallbackUrl"] {
        j[f] = json!(url);
    }
    j.to_string()
}

#[tokio::test]
async fn the_audit_puts_each_differing_slot_and_reads_back() {
    let server = MockServer::start().await;
    call("GET", "me")
        .respond_with(json_fixture(200, "zapi/me.json"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    call("GET", "me").respond_with(json_body(200, &me_with(WANT))).with_priority(2).expect(1).mount(&server).await;
    let mut body = fixture_json("zapi/update-webhook.request.json");
    body["value"] = json!(WANT);
    for kind in ["connected", "disconnected", "received"] {
        call("PUT", &format!("update-webhook-{kind}"))
            .and(body_json(&body))
            .respond_with(json_fixture(200, "zapi/update-webhook.response.json"))
            .expect(1)
            .mount(&server)
            .await;
    }
    for kind in ["delivery", "message-status", "chat-presence"] {
        call("PUT", &format!("update-webhook-{kind}"))
            .respond_with(json_body(200, "{}"))
            .expect(0)
            .mount(&server)
            .await;
    }
    let d = desired(&["CONNECTION_UPDATE", "MESSAGES_UPSERT", "QRCODE_UPDATED"], false);
    let r = client(&server).apply_webhook(&inst(), WANT, &d).await.unwrap();
    let WebhookRepair::Repaired { reasons } = r else { panic!("want Repaired, got {r:?}") };
    assert_eq!(reasons.len(), 3);
    assert!(reasons.iter().all(|r| !r.contains("s3cr3t") && !r.contains(TOKEN)), "{reasons:?}");
}

#[tokio::test]
async fn matching_slots_are_never_written() {
    let server = MockServer::start().await;
    call("GET", "me").respond_with(json_body(200, &me_with(WANT))).expect(20).mount(&server).await;
    Mock::given(method("PUT")).respond_with(json_body(200, "{}")).expect(0).mount(&server).await;
    let d = desired(&["CONNECTION_UPDATE", "MESSAGES_UPSERT"], false);
    let c = client(&server);
    for _ in 0..20 {
        assert_eq!(c.apply_webhook(&inst(), WANT, &d).await.unwrap(), WebhookRepair::AlreadyOk);
    }
}

#[tokio::test]
async fn a_read_back_that_still_differs_is_a_mismatch() {
    let server = MockServer::start().await;
    call("GET", "me").respond_with(json_fixture(200, "zapi/me.json")).expect(3).mount(&server).await;
    call("PUT", "update-webhook-received")
        .respond_with(json_fixture(200, "zapi/update-webhook.response.json"))
        .expect(1)
        .mount(&server)
        .await;
    let r = client(&server).apply_webhook(&inst(), WANT, &desired(&["received"], false)).await.unwrap();
    let WebhookRepair::Mismatch { detail } = r else { panic!("want Mismatch, got {r:?}") };
    assert!(detail.contains("update-webhook-received") && detail.contains("receivedCallbackUrl"), "{detail}");
    assert!(!detail.contains("s3cr3t") && !detail.contains("hooktok") && !detail.contains(TOKEN), "{detail}");
}

#[test]
fn every_webhook_fixture_maps_to_its_signal() {
    use WebhookSignal::*;
    let cases = [
        ("webhook.received.text.json", "ReceivedCallback", Alive, Some(1_767_110_400_000)),
        ("webhook.delivery.json", "DeliveryCallback", Alive, None),
        ("webhook.message-status.json", "MessageStatusCallback", Alive, Some(1_767_110_530_000)),
        ("webhook.connected.json", "ConnectedCallback", Open, Some(1_767_110_000_000)),
        // `momment` in seconds here: normalised.
        ("webhook.disconnected.json", "DisconnectedCallback", Dropped, Some(1_767_113_000_000)),
        ("webhook.presence.json", "PresenceChatCallback", Alive, None),
    ];
    for (fx, event, signal, at) in cases {
        let body = fixture(&format!("zapi/{fx}"));
        let got = parse_inbound(ProviderKind::Zapi, body.as_bytes(), None).unwrap_or_else(|e| panic!("{fx}: {e}"));
        assert_eq!((got.instance.as_str(), got.event.as_str(), got.signal), (ID, event, signal), "{fx}");
        assert_eq!((got.at, got.raw_len), (at.map(Ts), body.len()), "{fx}");
    }
}

#[test]
fn inbound_names_what_is_missing() {
    let mut v = fixture_json("zapi/webhook.connected.json");
    v.as_object_mut().unwrap().remove("type");
    let body = v.to_string();
    assert_eq!(
        parse_inbound(ProviderKind::Zapi, body.as_bytes(), None).unwrap_err(),
        InboundError::MissingField("type")
    );
    let got = parse_inbound(ProviderKind::Zapi, body.as_bytes(), Some("connected")).unwrap();
    assert_eq!((got.event.as_str(), got.signal), ("ConnectedCallback", WebhookSignal::Open), "named by its slot path");
    let e = parse_inbound(ProviderKind::Zapi, br#"{"type":"ReceivedCallback"}"#, None).unwrap_err();
    assert_eq!(e.to_string(), "webhook body lacks the field `instanceId`");
    let unknown = br#"{"type":"SomethingNew","instanceId":"x"}"#;
    assert_eq!(parse_inbound(ProviderKind::Zapi, unknown, None).unwrap().signal, WebhookSignal::Neutral);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512), suffix in proptest::option::of(".{0,30}")) {
        if let Ok(i) = parse_inbound(ProviderKind::Zapi, &body, suffix.as_deref()) {
            prop_assert_eq!(i.raw_len, body.len());
        }
    }

    #[test]
    fn parser_accepts_or_names_what_is_wrong(v in json_value(), suffix in proptest::option::of("[a-z\\-]{0,20}")) {
        match parse_inbound(ProviderKind::Zapi, v.to_string().as_bytes(), suffix.as_deref()) {
            Ok(i) => prop_assert!(!i.instance.is_empty() && !i.event.is_empty()),
            Err(InboundError::MissingField(f)) => prop_assert!(!f.is_empty()),
            Err(InboundError::Malformed(m)) => prop_assert!(!v.is_object(), "object refused as malformed: {}", m),
        }
    }
}

#[tokio::test]
async fn simulator_round_trip_status_recovery_audit_and_callbacks() {
    let sim = ZapiSim::start(
        Some(CLIENT),
        &[(ID, TOKEN, ZapiBehaviour::NeedsRestore), ("QRWAIT", "tok-qr", ZapiBehaviour::NotConnected)],
    )
    .await
    .unwrap();
    let c = ProviderClient::new(&sim.provider_config("zapi"), Duration::from_secs(5)).unwrap();
    assert_eq!(c.status(&inst()).await.unwrap().status, ProviderStatus::Disconnected { reason: None });
    c.recover(&inst(), RecoveryKind::Reconnect).await.unwrap();
    assert_eq!(sim.calls("GET", &sim.path(ID, "restore-session")), 1);
    assert_eq!(c.status(&inst()).await.unwrap().status, ProviderStatus::Connected);
    let qr = InstanceRef { name: "QRWAIT".into(), token: Some(Secret::literal("tok-qr")) };
    assert_eq!(c.status(&qr).await.unwrap().status, ProviderStatus::Connecting { qr_pending: true });
    // Audit: written once, then left alone; callbacks go to the slots.
    let receiver = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&receiver).await;
    let url = format!("{}/webhooks/zapi/hooktok", receiver.uri());
    let d = desired(&["CONNECTION_UPDATE", "MESSAGES_UPSERT"], false);
    assert!(matches!(c.apply_webhook(&inst(), &url, &d).await.unwrap(), WebhookRepair::Repaired { .. }));
    assert_eq!(c.apply_webhook(&inst(), &url, &d).await.unwrap(), WebhookRepair::AlreadyOk);
    assert_eq!(sim.calls_with("PUT"), 3, "connected, disconnected, received");
    assert_eq!(sim.callback(ID, "received"), url);
    assert_eq!(sim.post_webhook(ID, ZapiEvent::Received).await.unwrap(), Delivery::Sent(200));
    assert_eq!(
        sim.post_webhook(ID, ZapiEvent::Delivery).await.unwrap(),
        Delivery::Suppressed("no webhook configured for this slot")
    );
    let got = receiver.received_requests().await.unwrap();
    let parsed = parse_inbound(ProviderKind::Zapi, &got[0].body, None).unwrap();
    assert_eq!((parsed.instance.as_str(), parsed.signal), (ID, WebhookSignal::Alive));
    // Without the Client-Token the simulator refuses like Z-API.
    let bare = ProviderClient::new(&cfg(&sim.base_url(), None), Duration::from_secs(5)).unwrap();
    assert_eq!(bare.status(&inst()).await.unwrap_err().class, ErrorClass::Unauthorized);
    // Injected failures answer 500: a provider fault, never an instance status.
    sim.set_failure_rate(1.0);
    assert_eq!(c.status(&inst()).await.unwrap_err().class, ErrorClass::ServerError);
    sim.set_failure_rate(0.0);
    assert_eq!(c.status(&inst()).await.unwrap().status, ProviderStatus::Connected);
}
