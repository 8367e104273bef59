//! Error classification: every Evolution error fixture, the W-API error
//! bodies, and transport failures (refused connection, timeout).

use std::time::Duration;

use wa_sentinel::config::ApiVersion;
use wa_sentinel::domain::{ProviderErrorKind, ProviderStatus, RecoveryKind};
use wa_sentinel::providers::Provider as _;
use wa_sentinel::providers::{ErrorClass, InstanceRef, ProviderClient};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{EVO_KEY, evo, evo_cfg, json_body, json_fixture};

/// Serve `resp` for `GET /instance/connect/sales-bot` and return the error.
async fn connect_error(resp: ResponseTemplate) -> wa_sentinel::providers::ProviderError {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/instance/connect/sales-bot"))
        .respond_with(resp)
        .expect(1)
        .mount(&server)
        .await;
    let r = evo(&server.uri(), ApiVersion::V2).recover(&InstanceRef::named("sales-bot"), RecoveryKind::Reconnect).await;
    let e = r.expect_err("must fail");
    assert!(!e.to_string().contains(EVO_KEY), "no secret in errors");
    e
}

#[tokio::test]
async fn every_evolution_error_fixture_classifies() {
    let cases = [
        ("error-400-invalid-integration-v2.json", 400, ErrorClass::BadResponse, "Invalid integration"),
        ("error-400-not-connected.json", 400, ErrorClass::BadResponse, "is not connected"),
        ("error-400-v1-webhook-invalid-url.json", 400, ErrorClass::BadResponse, "Invalid \"url\" property"),
        ("error-400-validation-v1-webhook-url-empty.json", 400, ErrorClass::BadResponse, "cannot be empty"),
        (
            "error-400-validation-v2-flat-body-sent-to-v2.json",
            400,
            ErrorClass::BadResponse,
            "instance requires property \"webhook\"",
        ),
        ("error-400-validation-v2-webhook-set.json", 400, ErrorClass::BadResponse, "webhook.events[1]"),
        ("error-401-unauthorized.json", 401, ErrorClass::Unauthorized, "Unauthorized"),
        // Only create answers 403 here; any 403 is an auth-class failure for us.
        ("error-403-name-in-use.json", 403, ErrorClass::Unauthorized, "already in use"),
        ("error-404-fetchInstances-name-not-found-v2.json", 404, ErrorClass::InstanceNotFound, "not found"),
        ("error-404-instance-not-found.json", 404, ErrorClass::InstanceNotFound, "does not exist"),
        ("error-404-route-not-found.json", 404, ErrorClass::BadResponse, "Cannot PUT"),
        ("error-500-connection-closed.json", 500, ErrorClass::ServerError, "Connection Closed"),
        ("error-500-fetchInstances-name-not-found-v1.json", 500, ErrorClass::ServerError, "not found"),
        ("error-500-v2-webhook-set-enabled-without-events.json", 500, ErrorClass::ServerError, "reading 'length'"),
        ("error-503-license-required-v2.4.0-rc2.json", 503, ErrorClass::Unlicensed, "LICENSE_REQUIRED"),
    ];
    for (fx, status, class, text) in cases {
        let e = connect_error(json_fixture(status, &format!("evolution/{fx}"))).await;
        assert_eq!(e.class, class, "{fx}: {e}");
        assert!(e.detail.contains(text), "{fx}: detail {:?} lacks {text:?}", e.detail);
        assert!(e.detail.starts_with("GET /instance/connect/sales-bot: HTTP"), "{}", e.detail);
    }
}

#[tokio::test]
async fn html_truncated_empty_and_error_true_bodies_are_bad_responses() {
    let html = ResponseTemplate::new(200).set_body_raw("<!DOCTYPE html><html><body>nginx</body></html>", "text/html");
    let e = connect_error(html).await;
    assert_eq!((e.class, e.provider_kind()), (ErrorClass::BadResponse, Some(ProviderErrorKind::BadResponse)));
    assert!(e.detail.contains("HTML"), "{e}");
    assert_eq!(connect_error(json_body(200, r#"{"instance":{"instanceName":"#)).await.class, ErrorClass::BadResponse);
    assert_eq!(connect_error(json_body(200, "")).await.class, ErrorClass::BadResponse);
    let e = connect_error(json_body(200, r#"{"error":true,"message":"[object Object]"}"#)).await;
    assert_eq!(e.class, ErrorClass::BadResponse);
    assert!(e.detail.contains("error:true"), "{e}");
}

#[tokio::test]
async fn gateway_errors_are_server_errors_not_unreachable() {
    for status in [500, 502, 503, 504] {
        let e = connect_error(ResponseTemplate::new(status).set_body_raw("<html>gateway</html>", "text/html")).await;
        assert_eq!(e.class, ErrorClass::ServerError, "{status}");
        assert_eq!(e.provider_kind(), Some(ProviderErrorKind::ServerError));
    }
}

#[tokio::test]
async fn connection_refused_is_unreachable() {
    // A port nothing listens on.
    let port = crate::it::common::free_port();
    let c = evo(&format!("http://127.0.0.1:{port}"), ApiVersion::V2);
    let e = c.status(&InstanceRef::named("sales-bot")).await.expect_err("nothing listens");
    assert_eq!(e.class, ErrorClass::Unreachable);
    assert!(e.detail.contains("connection failed"), "{e}");
    // Auto detection does not cache a failed probe: the error surfaces as is.
    let auto = evo(&format!("http://127.0.0.1:{port}"), ApiVersion::Auto);
    assert_eq!(auto.status(&InstanceRef::named("x")).await.unwrap_err().class, ErrorClass::Unreachable);
}

#[tokio::test]
async fn slow_answer_times_out_as_unreachable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/instance/connectionState/sales-bot"))
        .respond_with(json_fixture(200, "evolution/v2-connectionState-open.json").set_delay(Duration::from_millis(800)))
        .mount(&server)
        .await;
    let c = ProviderClient::new(&evo_cfg(&server.uri(), ApiVersion::V2), Duration::from_millis(100)).unwrap();
    let started = std::time::Instant::now();
    let e = c.status(&InstanceRef::named("sales-bot")).await.expect_err("times out");
    assert_eq!(e.class, ErrorClass::Unreachable);
    assert!(e.detail.contains("timed out"), "{e}");
    assert!(started.elapsed() < Duration::from_millis(700), "the per-call timeout applies");
}

#[tokio::test]
async fn status_maps_401_to_unauthorized_and_404_to_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/instance/connectionState/a"))
        .respond_with(json_fixture(401, "evolution/error-401-unauthorized.json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/instance/connectionState/b"))
        .respond_with(json_fixture(404, "evolution/error-404-instance-not-found.json"))
        .mount(&server)
        .await;
    let c = evo(&server.uri(), ApiVersion::V2);
    let e = c.status(&InstanceRef::named("a")).await.unwrap_err();
    assert_eq!(e.provider_kind(), Some(ProviderErrorKind::Unauthorized));
    assert_eq!(c.status(&InstanceRef::named("b")).await.unwrap().status, ProviderStatus::NotFound);
}

#[test]
fn a_404_without_the_providers_own_message_is_not_a_missing_instance() {
    use wa_sentinel::providers::http::classify;
    // A misrouted proxy must not turn every instance into `missing`.
    assert_eq!(classify(404, "<html><body>404 Not Found</body></html>").unwrap_err().class, ErrorClass::BadResponse);
    assert_eq!(classify(404, "").unwrap_err().class, ErrorClass::BadResponse);
    assert_eq!(classify(404, r#"{"message":"nope"}"#).unwrap_err().class, ErrorClass::BadResponse);
    let evo = r#"{"status":404,"error":"Not Found","response":{"message":["The \"x\" instance does not exist"]}}"#;
    assert_eq!(classify(404, evo).unwrap_err().class, ErrorClass::InstanceNotFound);
    assert_eq!(
        classify(404, r#"{"error":true,"message":"Instância não encontrada."}"#).unwrap_err().class,
        ErrorClass::InstanceNotFound
    );
}
