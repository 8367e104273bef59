//! Evolution API contract tests: each REST fixture served by wiremock, each
//! request checked for method, path, `apikey` header, query and body.

use serde_json::json;
use wa_sentinel::config::ApiVersion;
use wa_sentinel::domain::{ProviderStatus, RecoveryKind};
use wa_sentinel::providers::Provider as _;
use wa_sentinel::providers::{ErrorClass, InstanceRef, WebhookRepair, WebhookSettings};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer};

use super::{EVO_KEY, NoHeader, desired, evo, fixture_json, json_body, json_fixture};

fn inst(name: &str) -> InstanceRef {
    InstanceRef::named(name)
}

async fn mount_state(server: &MockServer, name: &str, fixture: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/instance/connectionState/{name}")))
        .and(header("apikey", EVO_KEY))
        .respond_with(json_fixture(200, fixture))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn connection_state_open_and_connecting_both_versions() {
    for (v, prefix) in [(ApiVersion::V1, "v1"), (ApiVersion::V2, "v2")] {
        for (state, want) in
            [("open", ProviderStatus::Connected), ("connecting", ProviderStatus::Connecting { qr_pending: false })]
        {
            let server = MockServer::start().await;
            mount_state(&server, "sales-bot", &format!("evolution/{prefix}-connectionState-{state}.json")).await;
            let r = evo(&server.uri(), v).status(&inst("sales-bot")).await.expect("status");
            assert_eq!(r.status, want, "{prefix} {state}");
            assert!(r.raw.contains(state), "raw keeps the body: {}", r.raw);
        }
    }
}

#[tokio::test]
async fn v2_close_reads_terminal_reason_from_fetch_instances() {
    let server = MockServer::start().await;
    mount_state(&server, "support-line", "evolution/v2-connectionState-close.json").await;
    Mock::given(method("GET"))
        .and(path("/instance/fetchInstances"))
        .and(query_param("instanceName", "support-line"))
        .and(header("apikey", EVO_KEY))
        .respond_with(json_fixture(200, "evolution/v2-fetchInstances.json"))
        .expect(1)
        .mount(&server)
        .await;
    let r = evo(&server.uri(), ApiVersion::V2).status(&inst("support-line")).await.expect("status");
    assert_eq!(r.status, ProviderStatus::LoggedOut { reason: Some(401) });
    assert!(!r.raw.contains("0E9D8C7B"), "the fetchInstances body (tokens) is not kept in raw");
}

#[tokio::test]
async fn v2_close_with_db_status_open_is_a_transient_disconnect() {
    // sales-bot's row says connectionStatus=open with no reason code: a transient drop.
    let server = MockServer::start().await;
    mount_state(&server, "sales-bot", "evolution/v2-connectionState-close.json").await;
    Mock::given(method("GET"))
        .and(path("/instance/fetchInstances"))
        .and(query_param("instanceName", "sales-bot"))
        .respond_with(json_fixture(200, "evolution/v2-fetchInstances.json"))
        .expect(1)
        .mount(&server)
        .await;
    let r = evo(&server.uri(), ApiVersion::V2).status(&inst("sales-bot")).await.expect("status");
    assert_eq!(r.status, ProviderStatus::Disconnected { reason: None });
}

#[tokio::test]
async fn v2_close_with_failing_follow_up_degrades_to_unknown_reason() {
    let server = MockServer::start().await;
    mount_state(&server, "sales-bot", "evolution/v2-connectionState-close.json").await;
    Mock::given(method("GET"))
        .and(path("/instance/fetchInstances"))
        .respond_with(json_fixture(404, "evolution/error-404-fetchInstances-name-not-found-v2.json"))
        .expect(1)
        .mount(&server)
        .await;
    let r = evo(&server.uri(), ApiVersion::V2).status(&inst("sales-bot")).await.expect("status");
    assert_eq!(r.status, ProviderStatus::Disconnected { reason: None });
}

#[tokio::test]
async fn v1_close_makes_no_follow_up_call() {
    let server = MockServer::start().await;
    mount_state(&server, "sales-bot", "evolution/v1-connectionState-close.json").await;
    Mock::given(method("GET"))
        .and(path("/instance/fetchInstances"))
        .respond_with(json_fixture(200, "evolution/v1-fetchInstances-by-name.json"))
        .expect(0)
        .mount(&server)
        .await;
    let r = evo(&server.uri(), ApiVersion::V1).status(&inst("sales-bot")).await.expect("status");
    assert_eq!(r.status, ProviderStatus::Disconnected { reason: None });
}

#[tokio::test]
async fn missing_state_is_not_loaded_and_404_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/instance/connectionState/idle"))
        .respond_with(json_body(200, r#"{"instance":{"instanceName":"idle"}}"#))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/instance/connectionState/sales-bot"))
        .respond_with(json_fixture(404, "evolution/error-404-instance-not-found.json"))
        .expect(1)
        .mount(&server)
        .await;
    let c = evo(&server.uri(), ApiVersion::V2);
    assert_eq!(c.status(&inst("idle")).await.unwrap().status, ProviderStatus::NotLoaded);
    let nf = c.status(&inst("sales-bot")).await.unwrap();
    assert_eq!(nf.status, ProviderStatus::NotFound);
    assert!(nf.raw.contains("does not exist"), "{}", nf.raw);
}

#[tokio::test]
async fn instance_names_are_percent_encoded_in_paths() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/instance/connectionState/loja%20centro%2F2"))
        .respond_with(json_fixture(200, "evolution/v2-connectionState-open.json"))
        .expect(1)
        .mount(&server)
        .await;
    let r = evo(&server.uri(), ApiVersion::V2).status(&inst("loja centro/2")).await.unwrap();
    assert_eq!(r.status, ProviderStatus::Connected);
}

#[tokio::test]
async fn auto_version_asks_root_once_without_key_and_caches() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/"))
        .and(NoHeader("apikey"))
        .respond_with(json_body(200, r#"{"status":200,"message":"Welcome","version":"1.8.2","swagger":"x"}"#))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/instance/restart/sales-bot"))
        .and(header("apikey", EVO_KEY))
        .respond_with(json_fixture(200, "evolution/v1-restart-response.json"))
        .expect(2)
        .mount(&server)
        .await;
    let c = evo(&server.uri(), ApiVersion::Auto);
    for _ in 0..2 {
        let d = c.recover(&inst("sales-bot"), RecoveryKind::Restart).await.expect("restart");
        assert_eq!(d, "PUT /instance/restart/sales-bot -> 200 state=open");
    }
}

#[tokio::test]
async fn auto_version_without_version_field_falls_back_to_v2() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/"))
        .respond_with(json_body(200, r#"{"status":200}"#))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/instance/restart/sales-bot"))
        .respond_with(json_fixture(200, "evolution/v2-restart-response-when-open.json"))
        .expect(2)
        .mount(&server)
        .await;
    let c = evo(&server.uri(), ApiVersion::Auto);
    for _ in 0..2 {
        c.recover(&inst("sales-bot"), RecoveryKind::Restart).await.expect("restart");
    }
}

#[tokio::test]
async fn reconnect_uses_connect_in_both_versions() {
    let cases = [
        (ApiVersion::V2, "evolution/v2-connect-response-qr.json", "QR code issued"),
        (ApiVersion::V2, "evolution/v2-connect-response-pairing-code.json", "pairing code issued"),
        (ApiVersion::V2, "evolution/v2-connect-response-no-qr-yet.json", "count=0"),
        (ApiVersion::V1, "evolution/v1-connect-response-qr.json", "QR code issued"),
        (ApiVersion::V1, "evolution/v1-connectionState-open.json", "state=open"),
    ];
    for (v, fx, want) in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/instance/connect/sales-bot"))
            .and(header("apikey", EVO_KEY))
            .respond_with(json_fixture(200, fx))
            .expect(1)
            .mount(&server)
            .await;
        let d = evo(&server.uri(), v).recover(&inst("sales-bot"), RecoveryKind::Reconnect).await.expect(fx);
        assert!(d.starts_with("GET /instance/connect/sales-bot -> 200"), "{d}");
        assert!(d.contains(want), "{fx}: {d}");
        assert!(!d.contains("2@Xk3"), "the QR itself is never in the description");
    }
}

#[tokio::test]
async fn v2_restart_is_post_and_object_object_is_a_failure() {
    for (fx, want) in [
        ("evolution/v2-restart-response-when-open.json", Ok("state=open")),
        ("evolution/v2-restart-response-when-connecting-unpaired.json", Ok("count=0")),
        ("evolution/v2-restart-response-when-close.json", Err("[object Object]")),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/instance/restart/sales-bot"))
            .and(header("apikey", EVO_KEY))
            .respond_with(json_fixture(200, fx))
            .expect(1)
            .mount(&server)
            .await;
        let r = evo(&server.uri(), ApiVersion::V2).recover(&inst("sales-bot"), RecoveryKind::Restart).await;
        match (r, want) {
            (Ok(d), Ok(w)) => assert!(d.contains(w), "{fx}: {d}"),
            (Err(e), Err(w)) => {
                assert_eq!(e.class, ErrorClass::BadResponse);
                assert!(e.detail.contains(w), "{e}");
            }
            (r, w) => panic!("{fx}: got {r:?}, want {w:?}"),
        }
    }
}

#[tokio::test]
async fn webhook_find_both_versions() {
    let cases = [
        (ApiVersion::V2, "evolution/v2-webhook-find-none.json", None),
        (ApiVersion::V1, "evolution/v1-webhook-find-none.json", None),
        (
            ApiVersion::V2,
            "evolution/v2-webhook-find-configured.json",
            Some(WebhookSettings {
                enabled: true,
                url: Some("https://supervisor.example.com/hooks/evolution".into()),
                events: [
                    "QRCODE_UPDATED",
                    "MESSAGES_UPSERT",
                    "CONNECTION_UPDATE",
                    "LOGOUT_INSTANCE",
                    "REMOVE_INSTANCE",
                ]
                .map(String::from)
                .to_vec(),
                by_events: false,
                base64: false,
            }),
        ),
        (
            ApiVersion::V1,
            "evolution/v1-webhook-find-configured.json",
            Some(WebhookSettings {
                enabled: true,
                url: Some("https://supervisor.example.com/hooks/evolution".into()),
                events: ["QRCODE_UPDATED", "MESSAGES_UPSERT", "CONNECTION_UPDATE"].map(String::from).to_vec(),
                by_events: false,
                base64: false,
            }),
        ),
    ];
    for (v, fx, want) in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/webhook/find/sales-bot"))
            .and(header("apikey", EVO_KEY))
            .respond_with(json_fixture(200, fx))
            .expect(1)
            .mount(&server)
            .await;
        let got = evo(&server.uri(), v).webhook(&inst("sales-bot")).await.expect(fx);
        assert_eq!(got, want, "{fx}");
    }
}

const HOOK: &str = "https://supervisor.example.com/hooks/evolution";

/// Two reads of `webhook/find`: `first`, then `after` for the read-back.
async fn mount_find_sequence(server: &MockServer, first: &str, after: &str) {
    Mock::given(method("GET"))
        .and(path("/webhook/find/sales-bot"))
        .respond_with(json_fixture(200, first))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/webhook/find/sales-bot"))
        .respond_with(json_fixture(200, after))
        .with_priority(2)
        .mount(server)
        .await;
}

#[tokio::test]
async fn v2_apply_on_missing_config_sends_nested_body_and_verifies() {
    let server = MockServer::start().await;
    mount_find_sequence(&server, "evolution/v2-webhook-find-none.json", "evolution/v2-webhook-set-response.json").await;
    let want = desired(
        &["QRCODE_UPDATED", "MESSAGES_UPSERT", "CONNECTION_UPDATE", "LOGOUT_INSTANCE", "REMOVE_INSTANCE"],
        false,
    );
    // The fixture request minus the operator headers (there were none to keep).
    let mut body = fixture_json("evolution/v2-webhook-set-request.json");
    body["webhook"]["headers"] = json!({});
    Mock::given(method("POST"))
        .and(path("/webhook/set/sales-bot"))
        .and(header("apikey", EVO_KEY))
        .and(body_json(&body))
        .respond_with(json_fixture(201, "evolution/v2-webhook-set-response.json"))
        .expect(1)
        .mount(&server)
        .await;
    let r = evo(&server.uri(), ApiVersion::V2).apply_webhook(&inst("sales-bot"), HOOK, &want).await.expect("apply");
    assert_eq!(r, WebhookRepair::Repaired { reasons: vec!["no webhook configured".into()] });
}

#[tokio::test]
async fn v2_apply_adds_missing_events_keeping_operator_events_and_headers() {
    let server = MockServer::start().await;
    let mut after = fixture_json("evolution/v2-webhook-find-configured.json");
    after["events"].as_array_mut().unwrap().push(json!("STATUS_INSTANCE"));
    Mock::given(method("GET"))
        .and(path("/webhook/find/sales-bot"))
        .respond_with(json_fixture(200, "evolution/v2-webhook-find-configured.json"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/webhook/find/sales-bot"))
        .respond_with(json_body(200, &after.to_string()))
        .with_priority(2)
        .mount(&server)
        .await;
    let mut body = fixture_json("evolution/v2-webhook-set-request.json");
    body["webhook"]["events"].as_array_mut().unwrap().push(json!("STATUS_INSTANCE"));
    Mock::given(method("POST"))
        .and(path("/webhook/set/sales-bot"))
        .and(body_json(&body))
        .respond_with(json_body(201, &after.to_string()))
        .expect(1)
        .mount(&server)
        .await;
    let want = desired(&["CONNECTION_UPDATE", "STATUS_INSTANCE"], false);
    let r = evo(&server.uri(), ApiVersion::V2).apply_webhook(&inst("sales-bot"), HOOK, &want).await.unwrap();
    assert_eq!(r, WebhookRepair::Repaired { reasons: vec!["missing events STATUS_INSTANCE".into()] });
}

#[tokio::test]
async fn apply_writes_nothing_when_config_already_matches() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/webhook/find/sales-bot"))
        .respond_with(json_fixture(200, "evolution/v2-webhook-find-configured.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/webhook/set/sales-bot"))
        .respond_with(json_body(201, "{}"))
        .expect(0)
        .mount(&server)
        .await;
    let want = desired(&["CONNECTION_UPDATE", "messages.upsert"], false);
    let r = evo(&server.uri(), ApiVersion::V2).apply_webhook(&inst("sales-bot"), HOOK, &want).await.unwrap();
    assert_eq!(r, WebhookRepair::AlreadyOk);
}

#[tokio::test]
async fn apply_reports_mismatch_when_read_back_differs() {
    let server = MockServer::start().await;
    // Always reads "none": the write never shows up.
    Mock::given(method("GET"))
        .and(path("/webhook/find/sales-bot"))
        .respond_with(json_fixture(200, "evolution/v2-webhook-find-none.json"))
        .expect(3)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/webhook/set/sales-bot"))
        .respond_with(json_fixture(201, "evolution/v2-webhook-set-response.json"))
        .expect(1)
        .mount(&server)
        .await;
    let r = evo(&server.uri(), ApiVersion::V2)
        .apply_webhook(&inst("sales-bot"), HOOK, &desired(&["CONNECTION_UPDATE"], false))
        .await
        .unwrap();
    match r {
        WebhookRepair::Mismatch { detail } => assert!(detail.contains("no webhook configured"), "{detail}"),
        other => panic!("want Mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn v1_apply_sends_the_flat_body() {
    let server = MockServer::start().await;
    mount_find_sequence(&server, "evolution/v1-webhook-find-none.json", "evolution/v1-webhook-find-configured.json")
        .await;
    Mock::given(method("POST"))
        .and(path("/webhook/set/sales-bot"))
        .and(header("apikey", EVO_KEY))
        .and(body_json(fixture_json("evolution/v1-webhook-set-request.json")))
        .respond_with(json_fixture(201, "evolution/v1-webhook-set-response.json"))
        .expect(1)
        .mount(&server)
        .await;
    let want = desired(&["QRCODE_UPDATED", "MESSAGES_UPSERT", "CONNECTION_UPDATE"], false);
    let r = evo(&server.uri(), ApiVersion::V1).apply_webhook(&inst("sales-bot"), HOOK, &want).await.unwrap();
    assert_eq!(r, WebhookRepair::Repaired { reasons: vec!["no webhook configured".into()] });
}

#[tokio::test]
async fn discovery_reads_every_fetch_instances_shape() {
    let cases: [(&str, &[&str]); 5] = [
        ("evolution/v2-fetchInstances.json", &["sales-bot", "support-line"]),
        ("evolution/v1-fetchInstances-all.json", &["sales-bot", "support-line"]),
        ("evolution/v1-fetchInstances-by-name.json", &["sales-bot"]),
        ("evolution/v1-fetchInstances-instance-token.json", &["sales-bot"]),
        ("evolution/v1-fetchInstances-expose-enabled.json", &["support-line"]),
    ];
    for (fx, want) in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/instance/fetchInstances"))
            .and(header("apikey", EVO_KEY))
            .respond_with(json_fixture(200, fx))
            .expect(1)
            .mount(&server)
            .await;
        let got = evo(&server.uri(), ApiVersion::V2).list_instances().await.expect(fx);
        let names: Vec<&str> = got.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, want, "{fx}");
        assert!(got.iter().all(|d| d.token.is_none()), "Evolution discovery copies no tokens");
    }
}
