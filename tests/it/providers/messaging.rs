//! Sending a text through an instance (the `whatsapp` notifier): each
//! provider's request pinned to its fixture (exact body, auth, call count),
//! the message id read from every answer shape, which failures may have sent
//! the message and which cannot have, looking back at what an instance sent,
//! and round trips against the simulators.

use std::time::Duration;

use serde_json::json;
use wa_sentinel::config::{ApiVersion, ProviderConfig, ProviderKind, Secret};
use wa_sentinel::domain::Ts;
use wa_sentinel::providers::messaging::{Accepted, Messenger, SentMessage};
use wa_sentinel::providers::{ErrorClass, InstanceRef};
use wa_sentinel::sim::evolution::{Behaviour, SimOptions, Simulator};
use wa_sentinel::sim::waha::{WahaBehaviour, WahaSim};
use wa_sentinel::sim::zapi::{ZapiBehaviour, ZapiSim};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{EVO_KEY, NoHeader, WAPI_TOKEN, evo_cfg, fixture_json, json_body, json_fixture, wapi_cfg};

const WAHA_KEY: &str = "waha-api-key-123";
const ZAPI_ID: &str = "3C67AB641C8AA0412F6A2242B4E23AC7";
const ZAPI_TOKEN: &str = "F0E1D2C3B4A5968778695A4B3C2D1E0F";
const ZAPI_CLIENT: &str = "zapi-account-security-token";
const WAPI_ID: &str = "3B6XIW-ZTS923-GEAY6V";

fn str_of<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("no string `{k}` in {v}"))
}

fn evolution(server: &MockServer, version: ApiVersion) -> Messenger {
    Messenger::new(&evo_cfg(&server.uri(), version), InstanceRef::named("loja-centro"), Duration::from_secs(2)).unwrap()
}

fn waha_cfg(base_url: &str) -> ProviderConfig {
    ProviderConfig {
        api_key: Some(Secret::literal(WAHA_KEY)),
        ..ProviderConfig::new("waha", ProviderKind::Waha, base_url, Secret::literal("hook-token"))
    }
}

fn waha(server: &MockServer) -> Messenger {
    Messenger::new(&waha_cfg(&server.uri()), InstanceRef::named("default"), Duration::from_secs(2)).unwrap()
}

fn zapi(base_url: &str) -> Messenger {
    let cfg = ProviderConfig {
        client_token: Some(Secret::literal(ZAPI_CLIENT)),
        ..ProviderConfig::new("zapi", ProviderKind::Zapi, base_url, Secret::literal("hook-token"))
    };
    let inst = InstanceRef { name: ZAPI_ID.into(), token: Some(Secret::literal(ZAPI_TOKEN)) };
    Messenger::new(&cfg, inst, Duration::from_secs(2)).unwrap()
}

fn wapi(server: &MockServer) -> Messenger {
    let inst = InstanceRef { name: WAPI_ID.into(), token: Some(Secret::literal(WAPI_TOKEN)) };
    Messenger::new(&wapi_cfg(&server.uri(), false, "value"), inst, Duration::from_secs(2)).unwrap()
}

// ------------------------------------------------------------------ Evolution

#[tokio::test]
async fn evolution_v2_sends_the_fixture_body_once_and_keeps_key_id() {
    for (req, to) in [("v2-sendText-request.json", "5511987654321"), ("v2-sendText-request-group.json", "")] {
        let server = MockServer::start().await;
        let want = fixture_json(&format!("evolution/{req}"));
        // The group fixture omits `delay`; the body sent always has it.
        let mut exact = want.clone();
        exact["delay"] = json!(0);
        Mock::given(method("POST"))
            .and(path("/message/sendText/loja-centro"))
            .and(header("apikey", EVO_KEY))
            .and(body_json(&exact))
            .respond_with(json_fixture(201, "evolution/v2-sendText-response-201.json"))
            .expect(1)
            .mount(&server)
            .await;
        let to = if to.is_empty() { str_of(&want, "number") } else { to };
        let got = evolution(&server, ApiVersion::V2).send_text(to, str_of(&want, "text")).await.unwrap();
        assert_eq!(got, Accepted { id: Some("3EB08EE80DB4E276AFE85B83CCE531B53AF65F4B".into()) }, "{req}");
    }
}

#[tokio::test]
async fn evolution_v1_sends_text_message_with_options_and_keeps_key_id() {
    let server = MockServer::start().await;
    let fx = fixture_json("evolution/v1-sendText-request.json");
    let text = fx["textMessage"]["text"].as_str().unwrap();
    // The fixture's shape with wa-sentinel's options: no typing delay.
    let mut exact = fx.clone();
    exact["options"] = json!({"delay": 0, "linkPreview": false});
    Mock::given(method("POST"))
        .and(path("/message/sendText/loja-centro"))
        .and(header("apikey", EVO_KEY))
        .and(body_json(&exact))
        .respond_with(json_fixture(201, "evolution/v1-sendText-response-201.json"))
        .expect(1)
        .mount(&server)
        .await;
    let got = evolution(&server, ApiVersion::V1).send_text("5511987654321", text).await.unwrap();
    assert_eq!(got.id.as_deref(), Some("BAE594145F4C59B4"));
}

#[tokio::test]
async fn evolution_answers_with_an_error_mean_nothing_was_sent() {
    for (status, fx) in [
        (400, "evolution/v2-sendText-error-400-connection-closed.json"),
        (400, "evolution/v2-sendText-error-400-not-on-whatsapp.json"),
        (500, "evolution/error-500-connection-closed.json"),
        (401, "evolution/error-401-unauthorized.json"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(json_fixture(status, fx)).expect(1).mount(&server).await;
        let e = evolution(&server, ApiVersion::V2).send_text("5511987654321", "hi").await.unwrap_err();
        assert!(!e.may_have_sent, "{fx}: {e}");
        assert!(e.error.detail.contains("POST /message/sendText/loja-centro"), "{fx}: {e}");
    }
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json_fixture(400, "evolution/v2-sendText-error-400-not-on-whatsapp.json"))
        .mount(&server)
        .await;
    let e = evolution(&server, ApiVersion::V2).send_text("5511900000000", "hi").await.unwrap_err();
    assert!(e.error.detail.contains("\"exists\":false"), "the object in `message` is kept: {e}");
}

#[tokio::test]
async fn a_timeout_or_a_gateway_timeout_may_have_sent_a_refused_connection_cannot() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/message/sendText/slow"))
        .respond_with(json_fixture(201, "evolution/v2-sendText-response-201.json").set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/message/sendText/gw"))
        .respond_with(ResponseTemplate::new(504).set_body_string("<html>504 Gateway Time-out</html>"))
        .mount(&server)
        .await;
    let cfg = evo_cfg(&server.uri(), ApiVersion::V2);
    let m = |i: &str| Messenger::new(&cfg, InstanceRef::named(i), Duration::from_millis(500)).unwrap();
    let e = m("slow").send_text("5511987654321", "hi").await.unwrap_err();
    assert!(e.may_have_sent && e.error.class == ErrorClass::Unreachable, "{e:?}");
    let e = m("gw").send_text("5511987654321", "hi").await.unwrap_err();
    assert!(e.may_have_sent && e.error.class == ErrorClass::ServerError, "{e:?}");
    let closed = Messenger::new(
        &evo_cfg("http://127.0.0.1:9", ApiVersion::V2),
        InstanceRef::named("x"),
        Duration::from_millis(500),
    )
    .unwrap();
    let e = closed.send_text("5511987654321", "hi").await.unwrap_err();
    assert!(!e.may_have_sent, "connection refused: nothing left this machine: {e:?}");
}

#[tokio::test]
async fn evolution_v2_looks_back_by_time_window_without_the_chat() {
    let server = MockServer::start().await;
    let (from, until) = (Ts(1_757_464_200_000), Ts(1_757_464_500_000));
    // The fixture's query, without `remoteJid`, with this window and page size.
    let mut want = fixture_json("evolution/v2-findMessages-request-by-chat.json");
    want["where"]["key"].as_object_mut().unwrap().remove("remoteJid");
    want["where"]["messageTimestamp"] = json!({"gte": "2025-09-10T00:30:00Z", "lte": "2025-09-10T00:35:00Z"});
    want["offset"] = json!(100);
    Mock::given(method("POST"))
        .and(path("/chat/findMessages/loja-centro"))
        .and(header("apikey", EVO_KEY))
        .and(body_json(&want))
        .respond_with(json_fixture(200, "evolution/v2-findMessages-response.json"))
        .expect(1)
        .mount(&server)
        .await;
    let got = evolution(&server, ApiVersion::V2).sent_between("5511987654321", from, until).await.unwrap();
    let text =
        fixture_json("evolution/v2-findMessages-response.json")["messages"]["records"][0]["message"]["conversation"]
            .as_str()
            .unwrap()
            .to_string();
    assert_eq!(got, Some(vec![SentMessage { id: "3EB08EE80DB4E276AFE85B83CCE531B53AF65F4B".into(), text }]));

    let empty = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json_fixture(200, "evolution/v2-findMessages-response-empty.json"))
        .expect(1)
        .mount(&empty)
        .await;
    assert_eq!(
        evolution(&empty, ApiVersion::V2).sent_between("5511987654321", from, until).await.unwrap(),
        Some(vec![])
    );

    // v1 finds messages by id only: it cannot tell, and is not asked.
    let v1 = MockServer::start().await;
    Mock::given(method("POST")).respond_with(json_body(200, "[]")).expect(0).mount(&v1).await;
    assert_eq!(evolution(&v1, ApiVersion::V1).sent_between("5511987654321", from, until).await.unwrap(), None);
}

// ------------------------------------------------------------------ WAHA

#[tokio::test]
async fn waha_sends_the_fixture_body_with_a_chat_id() {
    for (req, to) in
        [("sendText-request.json", "5511987654321"), ("sendText-request-group.json", "120363025246125486@g.us")]
    {
        let server = MockServer::start().await;
        let want = fixture_json(&format!("waha/{req}"));
        Mock::given(method("POST"))
            .and(path("/api/sendText"))
            .and(header("x-api-key", WAHA_KEY))
            .and(body_json(&want))
            .respond_with(json_fixture(201, "waha/sendText-response-noweb-wamessage.json"))
            .expect(1)
            .mount(&server)
            .await;
        let got = waha(&server).send_text(to, str_of(&want, "text")).await.unwrap();
        assert_eq!(got.id.as_deref(), Some("true_5511987654321@c.us_3EB075539C08D763E8A1F2"), "{req}");
    }
}

#[tokio::test]
async fn waha_message_ids_are_read_from_every_engines_answer() {
    for (fx, want) in [
        ("waha/sendText-response-noweb-legacy.json", Some("3EB08A6895830F110A5E4D")),
        ("waha/sendText-response-noweb-wamessage.json", Some("true_5511987654321@c.us_3EB075539C08D763E8A1F2")),
        ("waha/sendText-response-webjs.json", Some("true_5511987654321@c.us_3EB0378E606CA43FEF38D2")),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(json_fixture(201, fx)).expect(1).mount(&server).await;
        assert_eq!(waha(&server).send_text("5511987654321", "hi").await.unwrap().id.as_deref(), want, "{fx}");
    }
    // WEBJS 2025.6.5 answered an empty 201: sent, id unknown.
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(201)).expect(1).mount(&server).await;
    assert_eq!(waha(&server).send_text("5511987654321", "hi").await.unwrap(), Accepted { id: None });
}

#[tokio::test]
async fn waha_refusals_mean_nothing_was_sent() {
    for (status, fx) in
        [(422, "waha/sendText-error-422-session-not-working.json"), (500, "waha/sendText-error-500-gows-no-lid.json")]
    {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(json_fixture(status, fx)).expect(1).mount(&server).await;
        let e = waha(&server).send_text("5511987654321", "hi").await.unwrap_err();
        assert!(!e.may_have_sent, "{fx}: {e}");
    }
}

#[tokio::test]
async fn waha_looks_back_in_the_chat_since_the_send() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/default/chats/5511987654321@c.us/messages"))
        .and(header("x-api-key", WAHA_KEY))
        .and(query_param("filter.fromMe", "true"))
        .and(query_param("filter.timestamp.gte", "1758083400"))
        .and(query_param("downloadMedia", "false"))
        .and(query_param("limit", "100"))
        .respond_with(json_fixture(200, "waha/chat-messages-response.json"))
        .expect(1)
        .mount(&server)
        .await;
    let got = waha(&server)
        .sent_between("5511987654321", Ts(1_758_083_400_000), Ts(1_758_083_600_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, "true_5511987654321@c.us_3EB075539C08D763E8A1F2");
    assert!(got[0].text.contains("needs a QR scan"), "{got:?}");
}

// ------------------------------------------------------------------ Z-API

#[tokio::test]
async fn zapi_sends_the_fixture_body_with_the_client_token_and_keeps_message_id() {
    for (req, to) in [("send-text-request.json", "5511987654321"), ("send-text-request-group.json", "")] {
        let server = MockServer::start().await;
        let mut want = fixture_json(&format!("zapi/{req}"));
        want["delayMessage"] = json!(1);
        Mock::given(method("POST"))
            .and(path(format!("/instances/{ZAPI_ID}/token/{ZAPI_TOKEN}/send-text")))
            .and(header("client-token", ZAPI_CLIENT))
            .and(body_json(&want))
            .respond_with(json_fixture(200, "zapi/send-text-response.json"))
            .expect(1)
            .mount(&server)
            .await;
        let to = if to.is_empty() { str_of(&want, "phone") } else { to };
        let got = zapi(&server.uri()).send_text(to, str_of(&want, "message")).await.unwrap();
        assert_eq!(got.id.as_deref(), Some("D241XXXX732339502B68"), "{req}");
    }
}

#[tokio::test]
async fn zapi_errors_never_carry_the_instance_token_and_z_api_cannot_look_back() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json_fixture(400, "zapi/error-client-token-not-configured.json"))
        .expect(1)
        .mount(&server)
        .await;
    let e = zapi(&server.uri()).send_text("5511987654321", "hi").await.unwrap_err();
    assert!(!e.may_have_sent, "{e}");
    assert!(e.error.detail.contains("client-token is not configured"), "{e}");
    assert!(!e.error.detail.contains(ZAPI_TOKEN), "{e}");
    let e = zapi("http://127.0.0.1:9").send_text("5511987654321", "hi").await.unwrap_err();
    assert!(!e.error.detail.contains(ZAPI_TOKEN) && !format!("{e:?}").contains(ZAPI_TOKEN), "{e:?}");
    assert_eq!(zapi(&server.uri()).sent_between("5511987654321", Ts(0), Ts(1)).await.unwrap(), None);
}

// ------------------------------------------------------------------ W-API

#[tokio::test]
async fn wapi_sends_the_fixture_body_with_the_bearer_token_and_keeps_message_id() {
    for (req, to) in [("send-text-request.json", "5511987654321"), ("send-text-request-group.json", "")] {
        let server = MockServer::start().await;
        let want = fixture_json(&format!("wapi/{req}"));
        Mock::given(method("POST"))
            .and(path("/message/send-text"))
            .and(query_param("instanceId", WAPI_ID))
            .and(header("authorization", format!("Bearer {WAPI_TOKEN}").as_str()))
            .and(body_json(&want))
            .respond_with(json_fixture(200, "wapi/send-text-response.json"))
            .expect(1)
            .mount(&server)
            .await;
        let to = if to.is_empty() { str_of(&want, "phone") } else { to };
        let got = wapi(&server).send_text(to, str_of(&want, "message")).await.unwrap();
        assert_eq!(got.id.as_deref(), Some("3EB0A1C2D3E4F5061728394A5B6C7D8E9F0A1B2C"), "{req}");
    }
}

#[tokio::test]
async fn wapi_error_true_is_a_refusal_even_inside_a_200_and_w_api_cannot_look_back() {
    for status in [200, 400] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(NoHeader("apikey"))
            .respond_with(json_fixture(status, "wapi/send-text-error.json"))
            .expect(1)
            .mount(&server)
            .await;
        let e = wapi(&server).send_text("5511987654321", "hi").await.unwrap_err();
        assert!(!e.may_have_sent, "{status}: {e}");
        assert!(e.error.detail.contains("Instância desconectada"), "{status}: {e}");
    }
    let server = MockServer::start().await;
    assert_eq!(wapi(&server).sent_between("5511987654321", Ts(0), Ts(1)).await.unwrap(), None);
}

// ------------------------------------------------------------------ simulators

#[tokio::test]
async fn the_evolution_simulator_records_sends_finds_them_and_refuses_a_closed_instance() {
    let sim = Simulator::start(SimOptions {
        instances: vec![("ops".into(), Behaviour::Open), ("shut".into(), Behaviour::LoggedOut)],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let m =
        |i: &str| Messenger::new(&sim.provider_config("sim"), InstanceRef::named(i), Duration::from_secs(5)).unwrap();
    let before = wa_sentinel::clock::now();
    let id = m("ops").send_text("5511988887777", "hello ws#abc123").await.unwrap().id.unwrap();
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].to.as_str(), sent[0].text.as_str(), sent[0].id.as_str()),
        ("5511988887777", "hello ws#abc123", id.as_str())
    );
    let after = Ts(wa_sentinel::clock::now().0 + 1000);
    let found = m("ops").sent_between("5511988887777", before, after).await.unwrap().unwrap();
    assert_eq!(found, vec![SentMessage { id, text: "hello ws#abc123".into() }]);
    sim.set_store_messages(false);
    assert_eq!(m("ops").sent_between("5511988887777", before, after).await.unwrap(), Some(vec![]));
    let e = m("shut").send_text("5511988887777", "hello").await.unwrap_err();
    assert!(!e.may_have_sent && e.error.detail.contains("Connection Closed"), "{e}");
    assert_eq!(sim.sent_messages().len(), 1, "nothing recorded for the closed instance");
    // v1 speaks the v1 body.
    sim.set_version("1.8.6");
    let v1 = Messenger::new(&sim.provider_config("sim1"), InstanceRef::named("ops"), Duration::from_secs(5)).unwrap();
    assert!(v1.send_text("5511988887777", "v1 text").await.unwrap().id.is_some());
    assert_eq!(sim.sent_messages()[1].text, "v1 text");
}

#[tokio::test]
async fn the_waha_simulator_records_sends_lists_them_and_refuses_a_session_not_working() {
    let sim = WahaSim::start(Some(WAHA_KEY), &[("ops", WahaBehaviour::Working), ("qr", WahaBehaviour::ScanQr)])
        .await
        .unwrap();
    let m = |s: &str| Messenger::new(&sim.provider_config("w"), InstanceRef::named(s), Duration::from_secs(5)).unwrap();
    let before = wa_sentinel::clock::now();
    let id = m("ops").send_text("5511988887777", "hello ws#abc123").await.unwrap().id.unwrap();
    assert_eq!(sim.sent_messages()[0].to, "5511988887777@c.us");
    let found = m("ops").sent_between("5511988887777", before, Ts(before.0 + 60_000)).await.unwrap().unwrap();
    assert_eq!(found, vec![SentMessage { id, text: "hello ws#abc123".into() }]);
    let e = m("qr").send_text("5511988887777", "hello").await.unwrap_err();
    assert!(!e.may_have_sent && e.error.detail.contains("not as expected"), "{e}");
    assert_eq!(sim.sent_messages().len(), 1);
}

#[tokio::test]
async fn the_zapi_simulator_queues_a_text_sent_through_a_disconnected_instance() {
    let sim = ZapiSim::start(
        Some(ZAPI_CLIENT),
        &[(ZAPI_ID, ZAPI_TOKEN, ZapiBehaviour::Connected), ("OTHER", "OTHERTOKEN", ZapiBehaviour::NotConnected)],
    )
    .await
    .unwrap();
    let m = zapi(&sim.base_url());
    assert!(m.send_text("5511988887777", "hello").await.unwrap().id.is_some());
    let other = Messenger::new(
        &sim.provider_config("z"),
        InstanceRef { name: "OTHER".into(), token: Some(Secret::literal("OTHERTOKEN")) },
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(other.send_text("5511988887777", "late").await.is_ok(), "Z-API accepts it and queues it");
    let sent = sim.sent_messages();
    assert_eq!(
        sent.iter().map(|m| (m.instance.as_str(), m.queued)).collect::<Vec<_>>(),
        [(ZAPI_ID, false), ("OTHER", true)]
    );
}
