//! Evolution API contract tests: each REST fixture served by wiremock, each
//! request checked for method, path, `apikey` header, query and body.

use super::SentExt;
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
async fn v1_close_asks_fetch_instances_only_whether_the_instance_was_ever_paired() {
    // v1 exposes no reason code; its row still tells a paired instance (`owner`) from a never-paired one.
    let server = MockServer::start().await;
    mount_state(&server, "sales-bot", "evolution/v1-connectionState-close.json").await;
    Mock::given(method("GET"))
        .and(path("/instance/fetchInstances"))
        .and(query_param("instanceName", "sales-bot"))
        .respond_with(json_fixture(200, "evolution/v1-fetchInstances-by-name.json"))
        .expect(1)
        .mount(&server)
        .await;
    let r = evo(&server.uri(), ApiVersion::V1).status(&inst("sales-bot")).await.expect("status");
    assert_eq!(r.status, ProviderStatus::Disconnected { reason: None });
}

/// A never-paired instance (`ownerJid` null on v2, no `owner` on
/// v1; observed on a real 2.3.6 server) is waiting for its first QR scan — not
/// a drop to reconnect.
#[tokio::test]
async fn close_of_a_never_paired_instance_is_unpaired_on_both_versions() {
    let mut v2 = fixture_json("evolution/v2-fetchInstances.json");
    v2[0]["ownerJid"] = serde_json::Value::Null;
    v2[0]["connectionStatus"] = json!("close");
    let v1 = json!([{"instance": {"instanceName": "sales-bot", "instanceId": "0b6e3f2a", "status": "close"}}]);
    for (version, state_fixture, rows) in [
        (ApiVersion::V2, "evolution/v2-connectionState-close.json", v2),
        (ApiVersion::V1, "evolution/v1-connectionState-close.json", v1),
    ] {
        let server = MockServer::start().await;
        mount_state(&server, "sales-bot", state_fixture).await;
        Mock::given(method("GET"))
            .and(path("/instance/fetchInstances"))
            .and(query_param("instanceName", "sales-bot"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(rows))
            .expect(1)
            .mount(&server)
            .await;
        let r = evo(&server.uri(), version).status(&inst("sales-bot")).await.expect("status");
        assert_eq!(r.status, ProviderStatus::Unpaired, "{version:?}");
    }
}

/// A terminal reason wins over a missing owner (Evolution may
/// clear the owner on logout): still logged out, not "never paired".
#[test]
fn a_logout_without_an_owner_stays_logged_out() {
    let mut rows = fixture_json("evolution/v2-fetchInstances.json");
    rows[1]["ownerJid"] = serde_json::Value::Null;
    let st = wa_sentinel::providers::evolution::close_status_from_rows(&rows, "support-line");
    assert_eq!(st, ProviderStatus::LoggedOut { reason: Some(401) });
}

/// After a reload every instance's first call wanted the
/// version: one `GET /` per provider, however many calls start at once.
#[tokio::test]
async fn concurrent_first_calls_probe_the_version_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/"))
        .respond_with(
            json_body(200, r#"{"status":200,"message":"Welcome","version":"2.3.6"}"#)
                .set_delay(std::time::Duration::from_millis(200)),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/instance/connect/sales-bot"))
        .respond_with(json_fixture(200, "evolution/v2-connect-response-qr.json"))
        .expect(6)
        .mount(&server)
        .await;
    let c = std::sync::Arc::new(evo(&server.uri(), ApiVersion::Auto));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let c = c.clone();
        set.spawn(async move { c.recover(&inst("sales-bot"), RecoveryKind::Reconnect).await });
    }
    while let Some(v) = set.join_next().await {
        v.unwrap().expect("connect");
    }
}

/// Discovery keeps Evolution's own id of each instance (v2 `id`, v1
/// `instanceId`): a recreated instance under the same name is told apart.
#[tokio::test]
async fn discovery_reports_the_provider_side_id() {
    for (version, fixture, first_id) in [
        (ApiVersion::V2, "evolution/v2-fetchInstances.json", "4f1c2a8e-9b3d-4e6a-8c71-2d5e9f0a1b37"),
        (ApiVersion::V1, "evolution/v1-fetchInstances-all.json", "0b6e3f2a-71c4-4d9e-a5b8-3c2d1e0f9a87"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/instance/fetchInstances"))
            .respond_with(json_fixture(200, fixture))
            .expect(1)
            .mount(&server)
            .await;
        let list = evo(&server.uri(), version).list_instances().await.expect("list");
        assert_eq!(list[0].name, "sales-bot");
        assert_eq!(list[0].provider_id.as_deref(), Some(first_id), "{version:?}");
    }
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
        let d = c.recover(&inst("sales-bot"), RecoveryKind::Restart).await.expect("restart").sent();
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
        c.recover(&inst("sales-bot"), RecoveryKind::Restart).await.expect("restart").sent();
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
        let d = evo(&server.uri(), v).recover(&inst("sales-bot"), RecoveryKind::Reconnect).await.expect(fx).sent();
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
            (Ok(d), Ok(w)) => assert!(d.detail().contains(w), "{fx}: {d:?}"),
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

/// `GET /` is asked for the version every time (an upgrade shows
/// at the next cycle), unlike the cached major version.
#[tokio::test]
async fn the_server_version_is_read_from_get_root_every_time() {
    let server = MockServer::start().await;
    let root = |v: &str| {
        Mock::given(method("GET"))
            .and(path("/"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({"status": 200, "version": v})))
            .up_to_n_times(1)
    };
    root("2.3.6").mount(&server).await;
    let c = evo(&server.uri(), ApiVersion::V2);
    assert_eq!(c.server_version().await.as_deref(), Some("2.3.6"));
    root("2.3.7").mount(&server).await;
    assert_eq!(c.server_version().await.as_deref(), Some("2.3.7"));
    assert_eq!(c.server_version().await, None, "no answer, no version");
}
