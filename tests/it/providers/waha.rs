//! WAHA contract tests over every copied fixture (`tests/fixtures/waha/`):
//! `X-Api-Key` on every call, status mapping, discovery, recovery by status,
//! the webhook audit that never PUTs a correct config (a PUT restarts the
//! session), inbound parsing and HMAC vectors, property tests of the parser,
//! and round trips against the WAHA simulator.

use super::SentExt;
use std::time::Duration;
use wa_sentinel::providers::Recovered;

use proptest::prelude::*;
use serde_json::{Value, json};
use wa_sentinel::config::{ProviderConfig, ProviderKind, Secret};
use wa_sentinel::domain::{ProviderStatus, RecoveryKind, Ts, WebhookSignal};
use wa_sentinel::providers::{
    ErrorClass, InboundError, InstanceRef, Provider as _, ProviderClient, WebhookRepair, parse_inbound, waha,
};
use wa_sentinel::sim::Delivery;
use wa_sentinel::sim::waha::{WahaBehaviour, WahaEvent, WahaSim};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::inbound::json_value;
use super::{NoHeader, desired, fixture, fixture_json, json_body, json_fixture};

const KEY: &str = "waha-api-key-123";
const HMAC: &str = "fixture-secret";
/// The URL the fixtures' webhooks point at.
const URL: &str = "https://hooks.example.com/wa/waha/loja-centro";

fn cfg(base_url: &str, key: Option<&str>, hmac: Option<&str>) -> ProviderConfig {
    ProviderConfig {
        api_key: key.map(Secret::literal),
        discover: true,
        webhook_hmac_key: hmac.map(Secret::literal),
        ..ProviderConfig::new("waha", ProviderKind::Waha, base_url, Secret::literal("hook-token"))
    }
}

fn client(server: &MockServer, hmac: Option<&str>) -> ProviderClient {
    ProviderClient::new(&cfg(&server.uri(), Some(KEY), hmac), Duration::from_secs(5)).unwrap()
}

fn call(m: &str, p: &str) -> wiremock::MockBuilder {
    Mock::given(method(m)).and(path(p)).and(header("x-api-key", KEY))
}

fn s(name: &str) -> InstanceRef {
    InstanceRef::named(name)
}

/// The default desired events, as `[webhook] events` ships them.
fn default_events() -> wa_sentinel::config::DesiredWebhook {
    desired(&["MESSAGES_UPSERT", "MESSAGES_UPDATE", "CONNECTION_UPDATE", "QRCODE_UPDATED", "SEND_MESSAGE"], false)
}

#[tokio::test]
async fn every_session_fixture_maps_to_its_status_with_one_call() {
    let cases = [
        ("session.get.working.json", ProviderStatus::Connected),
        ("session.get.scan_qr_code.json", ProviderStatus::Connecting { qr_pending: true }),
        ("session.get.failed.json", ProviderStatus::Disconnected { reason: None }),
        ("session.get.stopped.json", ProviderStatus::NotLoaded),
        ("session.restart.response.json", ProviderStatus::Starting),
    ];
    for (fx, want) in cases {
        let server = MockServer::start().await;
        call("GET", "/api/sessions/loja-centro")
            .respond_with(json_fixture(200, &format!("waha/{fx}")))
            .expect(1)
            .mount(&server)
            .await;
        let r = client(&server, None).status(&s("loja-centro")).await.unwrap();
        assert_eq!(r.status, want, "{fx}");
        assert!(!r.raw.contains(HMAC), "the hmac key in the config is not kept: {}", r.raw);
    }
    // A status newer than the sentinel needs a person.
    let server = MockServer::start().await;
    let mut passkey = fixture_json("waha/session.get.working.json");
    passkey["status"] = json!("PASSKEY_REQUIRED");
    call("GET", "/api/sessions/x").respond_with(json_body(200, &passkey.to_string())).mount(&server).await;
    assert_eq!(client(&server, None).status(&s("x")).await.unwrap().status, ProviderStatus::NeedsHuman);
}

#[tokio::test]
async fn a_waha_without_a_key_gets_no_key_header() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/sessions/loja-centro"))
        .and(NoHeader("x-api-key"))
        .respond_with(json_fixture(200, "waha/session.get.working.json"))
        .expect(1)
        .mount(&server)
        .await;
    let c = ProviderClient::new(&cfg(&server.uri(), None, None), Duration::from_secs(5)).unwrap();
    assert_eq!(c.status(&s("loja-centro")).await.unwrap().status, ProviderStatus::Connected);
    let shown =
        format!("{:?}", ProviderClient::new(&cfg(&server.uri(), Some(KEY), Some(HMAC)), Duration::from_secs(1)));
    assert!(!shown.contains(KEY) && !shown.contains(HMAC), "{shown}");
}

#[tokio::test]
async fn errors_classify_through_the_shared_rules() {
    let server = MockServer::start().await;
    call("GET", "/api/sessions/a").respond_with(json_fixture(401, "waha/error.401.json")).mount(&server).await;
    call("GET", "/api/sessions/gone").respond_with(json_fixture(404, "waha/error.404.json")).mount(&server).await;
    call("GET", "/api/sessions/html")
        .respond_with(ResponseTemplate::new(502).set_body_raw("<html>bad gateway</html>", "text/html"))
        .mount(&server)
        .await;
    call("GET", "/api/sessions/route")
        .respond_with(json_body(
            404,
            r#"{"statusCode":404,"message":"Cannot GET /api/sessions/route","error":"Not Found"}"#,
        ))
        .mount(&server)
        .await;
    let c = client(&server, None);
    let e = c.status(&s("a")).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized);
    assert!(!e.to_string().contains(KEY), "{e}");
    assert_eq!(c.status(&s("gone")).await.unwrap().status, ProviderStatus::NotFound);
    assert_eq!(c.status(&s("html")).await.unwrap_err().class, ErrorClass::ServerError);
    assert_eq!(
        c.status(&s("route")).await.unwrap_err().class,
        ErrorClass::BadResponse,
        "a route miss is not a missing session"
    );
}

#[tokio::test]
async fn discovery_lists_every_session_including_stopped_ones() {
    let server = MockServer::start().await;
    call("GET", "/api/sessions")
        .and(query_param("all", "true"))
        .respond_with(json_fixture(200, "waha/sessions.list.json"))
        .expect(1)
        .mount(&server)
        .await;
    let names: Vec<String> =
        client(&server, None).list_instances().await.unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(names, ["loja-centro", "loja-sul"]);
}

/// Mount the session read (`fx`) and count start/restart calls.
async fn recovery_server(fx: &str, starts: u64, restarts: u64, reads: u64) -> MockServer {
    let server = MockServer::start().await;
    call("GET", "/api/sessions/loja-centro").respond_with(json_fixture(200, fx)).expect(reads).mount(&server).await;
    call("POST", "/api/sessions/loja-centro/start")
        .respond_with(json_fixture(201, "waha/session.restart.response.json"))
        .expect(starts)
        .mount(&server)
        .await;
    call("POST", "/api/sessions/loja-centro/restart")
        .respond_with(json_fixture(201, "waha/session.restart.response.json"))
        .expect(restarts)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn reconnect_starts_a_stopped_session_and_restarts_a_failed_one() {
    let server = recovery_server("waha/session.get.failed.json", 0, 1, 1).await;
    let d = client(&server, None).recover(&s("loja-centro"), RecoveryKind::Reconnect).await.unwrap().sent();
    assert_eq!(d, "POST /api/sessions/loja-centro/restart -> 201 status=STARTING");
    let server = recovery_server("waha/session.get.stopped.json", 1, 0, 1).await;
    let d = client(&server, None).recover(&s("loja-centro"), RecoveryKind::Reconnect).await.unwrap().sent();
    assert_eq!(d, "POST /api/sessions/loja-centro/start -> 201 status=STARTING");
    // Starting, waiting for a QR, working: nothing is sent.
    for fx in
        ["waha/session.restart.response.json", "waha/session.get.scan_qr_code.json", "waha/session.get.working.json"]
    {
        let server = recovery_server(fx, 0, 0, 1).await;
        let d = client(&server, None).recover(&s("loja-centro"), RecoveryKind::Reconnect).await.unwrap();
        assert!(matches!(&d, Recovered::Skipped(t) if t.ends_with(": nothing sent")), "{fx}: {d:?}");
    }
    // The zombie: restart without reading first.
    let server = recovery_server("waha/session.get.working.json", 0, 1, 0).await;
    client(&server, None).recover(&s("loja-centro"), RecoveryKind::Restart).await.unwrap();
}

#[tokio::test]
async fn a_correct_config_is_never_put_across_many_audits() {
    let server = MockServer::start().await;
    call("GET", "/api/sessions/loja-centro")
        .respond_with(json_fixture(200, "waha/session.get.working.json"))
        .expect(51)
        .mount(&server)
        .await;
    Mock::given(method("PUT")).respond_with(json_body(200, "{}")).expect(0).mount(&server).await;
    let c = client(&server, Some(HMAC));
    // The fixture subscribes message, message.ack, session.status (ordered otherwise).
    let d = desired(&["CONNECTION_UPDATE", "MESSAGES_UPDATE", "MESSAGES_UPSERT"], false);
    for _ in 0..50 {
        assert_eq!(c.apply_webhook(&s("loja-centro"), URL, &d).await.unwrap(), WebhookRepair::AlreadyOk);
    }
    let got = c.webhook(&s("loja-centro")).await.unwrap().unwrap();
    assert_eq!((got.url.as_deref(), got.events.len()), (Some(URL), 3));
}

#[tokio::test]
async fn a_session_without_our_webhook_gets_it_in_one_put_and_is_read_back() {
    let server = MockServer::start().await;
    call("GET", "/api/sessions/loja-norte")
        .respond_with(json_fixture(200, "waha/session.get.stopped.json"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    let ours = json!({"url": URL, "events": ["session.status", "message", "message.any", "message.ack"], "hmac": {"key": HMAC}});
    let mut after = fixture_json("waha/session.get.stopped.json");
    after["config"]["webhooks"] = json!([ours]);
    call("GET", "/api/sessions/loja-norte")
        .respond_with(json_body(200, &after.to_string()))
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    // The whole config as read, webhooks replaced.
    call("PUT", "/api/sessions/loja-norte")
        .and(body_json(json!({"config": {"proxy": null, "debug": false, "webhooks": [ours]}})))
        .respond_with(json_fixture(200, "waha/session.restart.response.json"))
        .expect(1)
        .mount(&server)
        .await;
    let r = client(&server, Some(HMAC)).apply_webhook(&s("loja-norte"), URL, &default_events()).await.unwrap();
    let WebhookRepair::Repaired { reasons } = r else { panic!("want Repaired, got {r:?}") };
    assert!(reasons[0].starts_with("no webhook to https://hooks.example.com/wa/…"), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("restarts the session")), "{reasons:?}");
    assert!(reasons.iter().all(|r| !r.contains(HMAC) && !r.contains("loja-centro")), "{reasons:?}");
}

#[tokio::test]
async fn the_write_keeps_every_other_field_the_operator_set() {
    // The operator's config: metadata, retries, custom headers, no `session.status`.
    let mut operator = fixture_json("waha/session.update.request.json");
    operator["config"]["webhooks"][0]["events"] = json!(["message.ack", "message"]);
    operator["config"]["webhooks"]
        .as_array_mut()
        .unwrap()
        .push(json!({"url": "https://crm.example.com/hook", "events": ["*"], "hmac": null}));
    operator["config"]["noweb"] = json!({"store": {"enabled": true, "fullSync": false}});
    operator["status"] = json!("WORKING");
    let mut want = operator["config"].clone();
    want["webhooks"][0]["events"] = json!(["message.ack", "message", "session.status"]);
    let server = MockServer::start().await;
    call("GET", "/api/sessions/loja-centro")
        .respond_with(json_body(200, &operator.to_string()))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let mut after = operator.clone();
    after["config"] = want.clone();
    call("GET", "/api/sessions/loja-centro")
        .respond_with(json_body(200, &after.to_string()))
        .with_priority(2)
        .mount(&server)
        .await;
    call("PUT", "/api/sessions/loja-centro")
        .and(body_json(json!({"config": want})))
        .respond_with(json_body(200, "{}"))
        .expect(1)
        .mount(&server)
        .await;
    let d = desired(&["MESSAGES_UPSERT", "CONNECTION_UPDATE"], false);
    let r = client(&server, Some(HMAC)).apply_webhook(&s("loja-centro"), URL, &d).await.unwrap();
    assert!(
        matches!(&r, WebhookRepair::Repaired { reasons } if reasons[0] == "missing events session.status"),
        "{r:?}"
    );
}

/// WAHA with `WAHA_HTTP_STRICT_MODE=true` refuses any property its
/// `SessionUpdateRequest` does not declare (`{config}` only): the repair's
/// body is exactly the config, and the session is repaired.
struct StrictModeUpdate;

impl wiremock::Respond for StrictModeUpdate {
    fn respond(&self, r: &wiremock::Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let unknown: Vec<String> = body
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys())
            .filter(|k| *k != "config")
            .map(|k| format!("property {k} should not exist"))
            .collect();
        if unknown.is_empty() {
            json_fixture(200, "waha/session.restart.response.json")
        } else {
            ResponseTemplate::new(400)
                .set_body_json(json!({"message": unknown, "error": "Bad Request", "statusCode": 400}))
        }
    }
}

#[tokio::test]
async fn the_webhook_repair_sends_only_the_config_so_strict_mode_accepts_it() {
    let server = MockServer::start().await;
    call("GET", "/api/sessions/loja-norte")
        .respond_with(json_fixture(200, "waha/session.get.stopped.json"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let ours = json!({"url": URL, "events": ["session.status", "message", "message.any", "message.ack"]});
    let mut after = fixture_json("waha/session.get.stopped.json");
    after["config"]["webhooks"] = json!([ours]);
    call("GET", "/api/sessions/loja-norte")
        .respond_with(json_body(200, &after.to_string()))
        .with_priority(2)
        .mount(&server)
        .await;
    call("PUT", "/api/sessions/loja-norte").respond_with(StrictModeUpdate).expect(1).mount(&server).await;
    let r = client(&server, None).apply_webhook(&s("loja-norte"), URL, &default_events()).await;
    assert!(matches!(r, Ok(WebhookRepair::Repaired { .. })), "{r:?}");
    let put = server.received_requests().await.unwrap().into_iter().find(|r| r.method.as_str() == "PUT").unwrap();
    let sent: Value = serde_json::from_slice(&put.body).unwrap();
    assert_eq!(sent, json!({"config": {"proxy": null, "debug": false, "webhooks": [ours]}}), "exactly the config");
}

/// The simulator refuses unknown properties on `PUT /api/sessions/{s}` the
/// way strict mode does, naming each one.
#[tokio::test]
async fn the_simulator_refuses_unknown_session_update_properties_like_strict_mode() {
    let sim = WahaSim::start(None, &[("ok", WahaBehaviour::Working)]).await.unwrap();
    let http = reqwest::Client::new();
    let put = |body: Value| {
        let r = http.put(format!("{}/api/sessions/ok", sim.base_url())).json(&body);
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (code, body) = put(json!({"name": "ok", "config": {"webhooks": []}})).await;
    assert_eq!((code, body["message"].clone()), (400, json!(["property name should not exist"])));
    let (code, body) = put(
        json!({"config": {"webhooks": [{"url": "https://x.example/h", "events": ["message"], "secret": 1}], "x": 1}}),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        body["message"],
        json!(["config.property x should not exist", "config.webhooks.0.property secret should not exist"])
    );
    let (code, _) =
        put(json!({"config": {"metadata": {"any.key": "1"}, "proxy": null, "debug": false, "webhooks": []}})).await;
    assert_eq!(code, 200);
    assert_eq!(sim.config("ok").unwrap()["metadata"], json!({"any.key": "1"}));
}

#[tokio::test]
async fn a_read_back_that_still_differs_is_a_mismatch_without_secrets() {
    let server = MockServer::start().await;
    call("GET", "/api/sessions/loja-norte")
        .respond_with(json_fixture(200, "waha/session.get.stopped.json"))
        .expect(2)
        .mount(&server)
        .await;
    call("PUT", "/api/sessions/loja-norte").respond_with(json_body(200, "{}")).expect(1).mount(&server).await;
    let r = client(&server, Some(HMAC)).apply_webhook(&s("loja-norte"), URL, &default_events()).await.unwrap();
    let WebhookRepair::Mismatch { detail } = r else { panic!("want Mismatch, got {r:?}") };
    assert!(detail.contains("PUT /api/sessions/loja-norte") && detail.contains("no webhook to"), "{detail}");
    assert!(!detail.contains(HMAC) && !detail.contains("loja-centro"), "{detail}");
}

#[test]
fn every_webhook_fixture_maps_to_its_signal() {
    use WebhookSignal::*;
    let cases = [
        ("webhook.message.json", "message", Alive, Some(1_767_110_400_512)),
        ("webhook.session.status.working.json", "session.status", Open, Some(1_767_110_003_000)),
        ("webhook.session.status.failed.json", "session.status", Dropped, Some(1_767_113_000_000)),
        (
            "webhook.session.status.scan_qr_code.json",
            "session.status",
            Connecting { qr_pending: true },
            Some(1_767_113_065_000),
        ),
        ("webhook.session.status.legacy-2024.json", "session.status", Open, None),
    ];
    for (fx, event, signal, at) in cases {
        let body = fixture(&format!("waha/{fx}"));
        let got = parse_inbound(ProviderKind::Waha, body.as_bytes(), None).unwrap_or_else(|e| panic!("{fx}: {e}"));
        assert_eq!((got.instance.as_str(), got.event.as_str(), got.signal), ("loja-centro", event, signal), "{fx}");
        assert_eq!((got.at, got.raw_len), (at.map(Ts), body.len()), "{fx}");
    }
}

#[test]
fn inbound_names_what_is_missing_and_ignores_the_rest() {
    let p = |b: &str| parse_inbound(ProviderKind::Waha, b.as_bytes(), None);
    assert_eq!(p(r#"{"session":"a","payload":{}}"#).unwrap_err(), InboundError::MissingField("event"));
    assert_eq!(p(r#"{"event":"message","payload":{}}"#).unwrap_err(), InboundError::MissingField("session"));
    assert_eq!(
        p(r#"{"event":"session.status","session":"a","payload":{"name":"a"}}"#).unwrap_err(),
        InboundError::MissingField("payload.status")
    );
    assert_eq!(
        p(r#"{"event":"session.status","session":"a","payload":{"status":"PASSKEY_REQUIRED"}}"#).unwrap().signal,
        WebhookSignal::Neutral
    );
    assert_eq!(
        p(r#"{"event":"session.status","session":"a","payload":{"status":"STOPPED"}}"#).unwrap().signal,
        WebhookSignal::Dropped
    );
    assert_eq!(p(r#"{"event":"message.reaction","session":"a","payload":null}"#).unwrap().signal, WebhookSignal::Alive);
    assert_eq!(p(r#"{"event":"presence.update","session":"a"}"#).unwrap().signal, WebhookSignal::Neutral);
    assert!(matches!(p("[1]"), Err(InboundError::Malformed(_))));
}

#[test]
fn hmac_vectors_verify_over_the_raw_bytes() {
    let v = fixture_json("waha/hmac.doc-test-vector.json");
    let key = Secret::literal(v["key"].as_str().unwrap());
    let body = v["body"].as_str().unwrap().as_bytes();
    let mac = v["hmac"].as_str().unwrap();
    assert!(waha::verify_hmac(&key, body, mac));
    assert!(waha::verify_hmac(&key, body, &mac.to_uppercase()), "hex case does not matter");
    assert!(!waha::verify_hmac(&Secret::literal("other"), body, mac));
    let headers = fixture_json("waha/webhook.message.headers.json");
    let raw = fixture("waha/webhook.message.json");
    let sig = headers["X-Webhook-Hmac"].as_str().unwrap();
    assert!(waha::verify_hmac(&Secret::literal(HMAC), raw.as_bytes(), sig));
    let reserialised = serde_json::to_vec(&serde_json::from_str::<Value>(&raw).unwrap()).unwrap();
    assert!(!waha::verify_hmac(&Secret::literal(HMAC), &reserialised, sig), "the MAC is over the raw bytes");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(i) = parse_inbound(ProviderKind::Waha, &body, None) {
            prop_assert_eq!(i.raw_len, body.len());
        }
    }

    #[test]
    fn parser_accepts_or_names_what_is_wrong(v in json_value()) {
        match parse_inbound(ProviderKind::Waha, v.to_string().as_bytes(), None) {
            Ok(i) => prop_assert!(!i.instance.is_empty() && !i.event.is_empty()),
            Err(InboundError::MissingField(f)) => prop_assert!(!f.is_empty()),
            Err(InboundError::Malformed(m)) => prop_assert!(!v.is_object(), "object refused as malformed: {}", m),
        }
    }

    #[test]
    fn any_verified_signature_is_the_body_s_own(body in prop::collection::vec(any::<u8>(), 0..64), sig in "[0-9a-f]{0,130}") {
        // Random hex never verifies (a 1-in-2^512 chance aside).
        prop_assert!(!waha::verify_hmac(&Secret::literal(HMAC), &body, &sig));
    }
}

#[tokio::test]
async fn simulator_round_trip_status_recovery_audit_and_signed_webhooks() {
    let sim = WahaSim::start(
        Some(KEY),
        &[("ok", WahaBehaviour::Working), ("failed", WahaBehaviour::Failed), ("stopped", WahaBehaviour::Stopped)],
    )
    .await
    .unwrap();
    let mut pc = sim.provider_config("waha");
    pc.webhook_hmac_key = Some(Secret::literal(HMAC));
    let c = ProviderClient::new(&pc, Duration::from_secs(5)).unwrap();
    let names: Vec<String> = c.list_instances().await.unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(names, ["failed", "ok", "stopped"]);
    assert_eq!(c.status(&s("stopped")).await.unwrap().status, ProviderStatus::NotLoaded);
    c.recover(&s("stopped"), RecoveryKind::Reconnect).await.unwrap();
    c.recover(&s("failed"), RecoveryKind::Reconnect).await.unwrap();
    assert_eq!(sim.calls("POST", "/api/sessions/stopped/start"), 1);
    assert_eq!(sim.calls("POST", "/api/sessions/failed/restart"), 1);
    for n in ["stopped", "failed"] {
        assert_eq!(c.status(&s(n)).await.unwrap().status, ProviderStatus::Connected, "{n}");
    }
    // Audit: one PUT, then none; the operator's metadata survives.
    let receiver = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&receiver).await;
    let url = format!("{}/webhooks/waha/hook-token", receiver.uri());
    assert!(matches!(
        c.apply_webhook(&s("ok"), &url, &default_events()).await.unwrap(),
        WebhookRepair::Repaired { .. }
    ));
    for _ in 0..5 {
        assert_eq!(c.apply_webhook(&s("ok"), &url, &default_events()).await.unwrap(), WebhookRepair::AlreadyOk);
    }
    assert_eq!(sim.puts("ok"), 1);
    assert_eq!(sim.config("ok").unwrap()["metadata"], json!({"sim": "true"}));
    assert_eq!(sim.post_webhook("ok", WahaEvent::SessionStatus).await.unwrap(), Delivery::Sent(200));
    let got = receiver.received_requests().await.unwrap();
    let sig = got[0].headers.get("x-webhook-hmac").unwrap().to_str().unwrap();
    assert!(waha::verify_hmac(&Secret::literal(HMAC), &got[0].body, sig));
    assert!(got[0].headers.contains_key("x-webhook-request-id"));
    let parsed = parse_inbound(ProviderKind::Waha, &got[0].body, None).unwrap();
    assert_eq!((parsed.instance.as_str(), parsed.signal), ("ok", WebhookSignal::Open));
    // Faults: wrong key, outage.
    let bad = ProviderClient::new(&cfg(&sim.base_url(), Some("wrong"), None), Duration::from_secs(5)).unwrap();
    assert_eq!(bad.status(&s("ok")).await.unwrap_err().class, ErrorClass::Unauthorized);
    sim.set_latency(Duration::from_millis(1500));
    let impatient = ProviderClient::new(&pc, Duration::from_millis(300)).unwrap();
    assert_eq!(
        impatient.status(&s("ok")).await.unwrap_err().class,
        ErrorClass::Unreachable,
        "latency past the timeout"
    );
    sim.set_latency(Duration::ZERO);
    sim.set_down(true);
    assert_eq!(c.status(&s("ok")).await.unwrap_err().class, ErrorClass::ServerError);
}

/// The version, from `GET /api/server/version` with the key;
/// `None` when WAHA does not tell it (an older core, an error).
#[tokio::test]
async fn the_server_version_is_read_from_api_server_version() {
    let server = MockServer::start().await;
    call("GET", "/api/server/version")
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"version": "2025.5.1", "engine": "WEBJS", "tier": "CORE"})),
        )
        .mount(&server)
        .await;
    assert_eq!(client(&server, None).server_version().await.as_deref(), Some("2025.5.1"));
    let bare = MockServer::start().await;
    assert_eq!(client(&bare, None).server_version().await, None, "a 404 tells no version");
}
