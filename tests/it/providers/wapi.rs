//! W-API contract tests: Bearer token + `instanceId` on every call, status
//! with the qr-code tie-break, restart, webhook slots, integrator discovery.

use super::SentExt;
use std::time::Duration;

use serde_json::json;
use wa_sentinel::config::Secret;
use wa_sentinel::domain::{ProviderStatus, RecoveryKind};
use wa_sentinel::providers::Provider as _;
use wa_sentinel::providers::{ErrorClass, InstanceRef, ProviderClient, WebhookRepair, WebhookSettings};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer};

use super::{WAPI_INTEGRATOR, WAPI_TOKEN, desired, fixture_json, json_body, json_fixture, wapi_cfg};

const ID: &str = "3B6XIW-ZTS923-GEAY6V";
const BEARER: &str = "Bearer wapi-instance-token-xyz";

fn inst() -> InstanceRef {
    InstanceRef { name: ID.into(), token: Some(Secret::literal(WAPI_TOKEN)) }
}

fn client(server: &MockServer, integrator: bool, body_key: &str) -> ProviderClient {
    ProviderClient::new(&wapi_cfg(&server.uri(), integrator, body_key), Duration::from_secs(5)).unwrap()
}

fn call(m: &str, p: &str) -> wiremock::MockBuilder {
    Mock::given(method(m)).and(path(p)).and(query_param("instanceId", ID)).and(header("authorization", BEARER))
}

#[tokio::test]
async fn connected_status_needs_no_qr_call() {
    let server = MockServer::start().await;
    call("GET", "/instance/status-instance")
        .respond_with(json_fixture(200, "wapi/status-instance.connected.json"))
        .expect(1)
        .mount(&server)
        .await;
    call("GET", "/instance/qr-code").respond_with(json_body(200, "{}")).expect(0).mount(&server).await;
    let r = client(&server, false, "value").status(&inst()).await.unwrap();
    assert_eq!(r.status, ProviderStatus::Connected);
}

#[tokio::test]
async fn disconnected_with_qr_on_offer_is_logged_out() {
    let server = MockServer::start().await;
    call("GET", "/instance/status-instance")
        .respond_with(json_fixture(200, "wapi/status-instance.disconnected.json"))
        .expect(1)
        .mount(&server)
        .await;
    call("GET", "/instance/qr-code")
        .and(query_param("image", "disable"))
        .respond_with(json_fixture(200, "wapi/qr-code.image-disable.json"))
        .expect(1)
        .mount(&server)
        .await;
    let r = client(&server, false, "value").status(&inst()).await.unwrap();
    assert_eq!(r.status, ProviderStatus::LoggedOut { reason: None });
    assert!(r.raw.contains("QR offered"), "{}", r.raw);
    assert!(!r.raw.contains("iVBOR"), "the QR image is not logged");
}

#[tokio::test]
async fn disconnected_without_qr_is_a_plain_disconnect() {
    for qr in [json_body(200, r#"{"error":false,"instanceId":"x","connected":true}"#), json_body(500, "{}")] {
        let server = MockServer::start().await;
        call("GET", "/instance/status-instance")
            .respond_with(json_fixture(200, "wapi/status-instance.disconnected.json"))
            .mount(&server)
            .await;
        call("GET", "/instance/qr-code").respond_with(qr).expect(1).mount(&server).await;
        let r = client(&server, false, "value").status(&inst()).await.unwrap();
        assert_eq!(r.status, ProviderStatus::Disconnected { reason: None });
    }
}

#[tokio::test]
async fn error_bodies_classify() {
    let server = MockServer::start().await;
    call("GET", "/instance/status-instance")
        .respond_with(json_fixture(401, "wapi/error.401.json"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    call("GET", "/instance/status-instance")
        .respond_with(json_fixture(404, "wapi/error.404.json"))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    call("GET", "/instance/status-instance")
        .respond_with(json_body(200, r#"{"error":true,"message":"Falha interna"}"#))
        .with_priority(3)
        .mount(&server)
        .await;
    let c = client(&server, false, "value");
    let e = c.status(&inst()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized);
    assert!(e.detail.contains("Token inválido"), "{e}");
    assert!(!e.to_string().contains(WAPI_TOKEN));
    assert_eq!(c.status(&inst()).await.unwrap().status, ProviderStatus::NotFound);
    let e = c.status(&inst()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::BadResponse);
    assert!(e.detail.contains("Falha interna"), "{e}");
}

#[tokio::test]
async fn instance_without_token_falls_back_or_fails_cleanly() {
    let server = MockServer::start().await;
    let e = client(&server, false, "value").status(&InstanceRef::named(ID)).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized);
    Mock::given(method("GET"))
        .and(path("/instance/status-instance"))
        .and(header("authorization", format!("Bearer {WAPI_INTEGRATOR}").as_str()))
        .respond_with(json_fixture(200, "wapi/status-instance.connected.json"))
        .expect(1)
        .mount(&server)
        .await;
    let r = client(&server, true, "value").status(&InstanceRef::named(ID)).await.unwrap();
    assert_eq!(r.status, ProviderStatus::Connected);
}

#[tokio::test]
async fn both_recovery_kinds_call_restart() {
    let server = MockServer::start().await;
    call("GET", "/instance/restart")
        .respond_with(json_fixture(200, "wapi/restart.response.json"))
        .expect(2)
        .mount(&server)
        .await;
    let c = client(&server, false, "value");
    for kind in [RecoveryKind::Reconnect, RecoveryKind::Restart] {
        let d = c.recover(&inst(), kind).await.unwrap().sent();
        assert_eq!(d, format!("GET /instance/restart?instanceId={ID} -> 200 Instância reiniciada com sucesso."));
    }
}

#[tokio::test]
async fn webhook_slots_read_from_fetch_instance() {
    for fx in ["wapi/fetch-instance.connected.json", "wapi/fetch-instance.logged-out.json"] {
        let server = MockServer::start().await;
        call("GET", "/instance/fetch-instance").respond_with(json_fixture(200, fx)).expect(1).mount(&server).await;
        let got = client(&server, false, "value").webhook(&inst()).await.unwrap();
        let want = WebhookSettings {
            enabled: true,
            url: Some(format!("https://hooks.example.com/wa/wapi/{ID}/connected?k=s3cr3t")),
            events: ["connected", "disconnected", "delivery", "received", "message-status"].map(String::from).to_vec(),
            by_events: true,
            base64: false,
        };
        assert_eq!(got, Some(want), "{fx}");
    }
    let server = MockServer::start().await;
    call("GET", "/instance/fetch-instance")
        .respond_with(json_body(200, r#"{"instanceId":"x","webhookReceivedUrl":"","webhookConnectedUrl":""}"#))
        .mount(&server)
        .await;
    assert_eq!(client(&server, false, "value").webhook(&inst()).await.unwrap(), None);
}

const WANT_URL: &str = "https://sentinel.example.com/hooks/wapi/tok";

fn fetch_with(url: &str) -> serde_json::Value {
    let mut j = fixture_json("wapi/fetch-instance.connected.json");
    for f in ["webhookConnectedUrl", "webhookDisconnectedUrl", "webhookReceivedUrl"] {
        j[f] = json!(url);
    }
    j
}

#[tokio::test]
async fn apply_puts_each_differing_slot_with_the_body_key_and_verifies() {
    let server = MockServer::start().await;
    call("GET", "/instance/fetch-instance")
        .respond_with(json_fixture(200, "wapi/fetch-instance.connected.json"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    call("GET", "/instance/fetch-instance")
        .respond_with(json_body(200, &fetch_with(WANT_URL).to_string()))
        .with_priority(2)
        .mount(&server)
        .await;
    // The fixture request shape, with our URL.
    let mut body = fixture_json("wapi/webhook-update.request.json");
    body["value"] = json!(WANT_URL);
    for kind in ["connected", "disconnected", "received"] {
        call("PUT", &format!("/webhook/update-webhook-{kind}"))
            .and(body_json(&body))
            .respond_with(json_fixture(200, "wapi/webhook-update.response.json"))
            .expect(1)
            .mount(&server)
            .await;
    }
    for kind in ["delivery", "message-status", "chat-presence"] {
        call("PUT", &format!("/webhook/update-webhook-{kind}"))
            .respond_with(json_body(200, "{}"))
            .expect(0)
            .mount(&server)
            .await;
    }
    let d = desired(&["CONNECTION_UPDATE", "MESSAGES_UPSERT", "QRCODE_UPDATED"], false);
    let r = client(&server, false, "value").apply_webhook(&inst(), WANT_URL, &d).await.unwrap();
    let WebhookRepair::Repaired { reasons } = r else { panic!("want Repaired, got {r:?}") };
    assert_eq!(reasons.len(), 3);
    assert!(reasons[0].starts_with("slot `connected` points at another URL (https://hooks.example.com/wa/…)"));
    assert!(reasons.iter().all(|r| !r.contains("s3cr3t")), "webhook secrets are redacted");
}

#[tokio::test]
async fn apply_is_a_no_op_when_slots_match() {
    let server = MockServer::start().await;
    call("GET", "/instance/fetch-instance")
        .respond_with(json_body(200, &fetch_with(WANT_URL).to_string()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT")).respond_with(json_body(200, "{}")).expect(0).mount(&server).await;
    let d = desired(&["CONNECTION_UPDATE", "MESSAGES_UPSERT"], false);
    assert_eq!(
        client(&server, false, "value").apply_webhook(&inst(), WANT_URL, &d).await.unwrap(),
        WebhookRepair::AlreadyOk
    );
}

#[tokio::test]
async fn read_back_mismatch_names_body_key_and_slot() {
    let server = MockServer::start().await;
    // The provider ignores our key: the read-back never changes.
    call("GET", "/instance/fetch-instance")
        .respond_with(json_fixture(200, "wapi/fetch-instance.logged-out.json"))
        .expect(3)
        .mount(&server)
        .await;
    call("PUT", "/webhook/update-webhook-received")
        .and(body_json(json!({"urlWebhook": WANT_URL})))
        .respond_with(json_fixture(200, "wapi/webhook-update.response.json"))
        .expect(1)
        .mount(&server)
        .await;
    let d = desired(&["received"], false);
    let r = client(&server, false, "urlWebhook").apply_webhook(&inst(), WANT_URL, &d).await.unwrap();
    let WebhookRepair::Mismatch { detail } = r else { panic!("want Mismatch, got {r:?}") };
    assert!(detail.contains("body key `urlWebhook`"), "{detail}");
    assert!(detail.contains("update-webhook-received"), "{detail}");
    assert!(detail.contains("webhookReceivedUrl"), "{detail}");
    assert!(!detail.contains("s3cr3t") && !detail.contains("/tok"), "{detail}");
}

#[tokio::test]
async fn by_events_gives_each_slot_its_own_path() {
    let server = MockServer::start().await;
    call("GET", "/instance/fetch-instance")
        .respond_with(json_fixture(200, "wapi/fetch-instance.logged-out.json"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let mut after = fixture_json("wapi/fetch-instance.logged-out.json");
    after["webhookStatusUrl"] = json!(format!("{WANT_URL}/message-status"));
    call("GET", "/instance/fetch-instance")
        .respond_with(json_body(200, &after.to_string()))
        .with_priority(2)
        .mount(&server)
        .await;
    call("PUT", "/webhook/update-webhook-message-status")
        .and(body_json(json!({"value": format!("{WANT_URL}/message-status")})))
        .respond_with(json_fixture(200, "wapi/webhook-update.response.json"))
        .expect(1)
        .mount(&server)
        .await;
    let r =
        client(&server, false, "value").apply_webhook(&inst(), WANT_URL, &desired(&["MESSAGES_UPDATE"], true)).await;
    assert!(matches!(r, Ok(WebhookRepair::Repaired { .. })), "{r:?}");
}

#[tokio::test]
async fn discovery_uses_the_integrator_list() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/integrator/instances"))
        .and(query_param("pageSize", "100"))
        .and(query_param("page", "1"))
        .and(header("authorization", format!("Bearer {WAPI_INTEGRATOR}").as_str()))
        .respond_with(json_fixture(200, "wapi/integrator-instances.response.json"))
        .expect(1)
        .mount(&server)
        .await;
    let got = client(&server, true, "value").list_instances().await.unwrap();
    let pairs: Vec<(&str, Option<&str>)> =
        got.iter().map(|d| (d.name.as_str(), d.token.as_ref().map(|t| t.expose()))).collect();
    assert_eq!(
        pairs,
        vec![
            ("3B6XIW-ZTS923-GEAY6V", Some("REDACTED-INSTANCE-TOKEN")),
            ("LITE-8NDQT1-UWX43P", Some("REDACTED-INSTANCE-TOKEN-2"))
        ]
    );
    assert!(!format!("{got:?}").contains("REDACTED-INSTANCE-TOKEN"), "tokens stay redacted in Debug");
    // Without an integrator token there is nothing to discover, and no call.
    assert!(client(&server, false, "value").list_instances().await.unwrap().is_empty());
}
