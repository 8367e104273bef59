//! Re-pairing on every provider kind: WAHA and Z-API numbers on their
//! simulators, W-API on wiremock over its fixtures, and the re-pairing calls
//! against every fixture shape of the QR and pairing-code answers.

use super::*;

/// WAHA and Z-API numbers waiting for a QR scan: each down notice carries a
/// link whose page shows the simulator's QR code byte for byte, hands out a
/// pairing code, and after the scan says only "connected". Neither provider
/// URL, API key, client token nor instance token reaches the browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waha_and_z_api_numbers_waiting_for_a_scan_get_a_link_with_their_qr_and_codes() {
    let waha = WahaSim::start(
        Some(WAHA_KEY),
        &[("waha-lost", WahaBehaviour::ScanQr), ("waha-passkey", WahaBehaviour::Passkey)],
    )
    .await
    .unwrap();
    let zapi =
        ZapiSim::start(Some(ZAPI_CLIENT), &[("ZAPI-LOST-1", ZAPI_TOKEN, ZapiBehaviour::NotConnected)]).await.unwrap();
    let providers = vec![
        RawProvider {
            name: "waha".into(),
            kind: "waha".into(),
            base_url: waha.base_url(),
            api_key: Some(WAHA_KEY.into()),
            webhook_token: Some("waha-hook".into()),
            discover: true,
            ..Default::default()
        },
        RawProvider {
            name: "zapi".into(),
            kind: "zapi".into(),
            base_url: zapi.base_url(),
            client_token: Some(ZAPI_CLIENT.into()),
            webhook_token: Some("zapi-hook".into()),
            ..Default::default()
        },
    ];
    let instances = vec![RawInstance {
        provider: "zapi".into(),
        name: "ZAPI-LOST-1".into(),
        token: Some(ZAPI_TOKEN.into()),
        ..Default::default()
    }];
    let rig = Rig::start(TestDb::sqlite().await, providers, instances, |_| {}).await;
    rig.sup.poll_cycle().await.unwrap();
    let secrets = [WAHA_KEY, ZAPI_TOKEN, ZAPI_CLIENT, ADMIN];
    for (name, base) in [("waha-lost", waha.base_url()), ("ZAPI-LOST-1", zapi.base_url())] {
        let url = rig.pair_url(name).await;
        let (code, body) = rig.page(&url).await;
        assert_eq!(code, 200, "{name}: {body}");
        assert!(body.contains("content=\"10\""), "{name}: a 20 s QR code, reloaded every 10 s: {body}");
        let (code, _, png) = rig.get(&format!("{url}/qr.png")).await;
        assert_eq!((code, png.as_slice()), (200, sim_qr_png()), "{name}: the provider's image, byte for byte");
        let (code, page) = rig.ask_code(&url, "5511987654321").await;
        assert_eq!(code, 200, "{name}: {page}");
        let shown = if name == "waha-lost" { "WZYE-H1YY" } else { SIM_PAIRING_CODE };
        assert!(page.contains(shown), "{name}: {page}");
        for b in [body.as_bytes(), &png, page.as_bytes()] {
            assert_no_secret(b, &[&secrets[..], &[host_of(&base).as_str()]].concat(), name);
        }
    }
    assert_eq!(waha.calls("GET", "/api/waha-lost/auth/qr"), 1, "one read for the page and its image");
    // A state wa-sentinel does not know (a passkey prompt): no link by
    // default (`pairing.causes`), a QR code may not help.
    let passkey = rig.notices().await.into_iter().find(|n| n["instance"] == "waha-passkey").expect("announced");
    assert_eq!((passkey["cause"].as_str(), &passkey["pair_url"]), (Some("needs_human"), &Value::Null));
    waha.scan("waha-lost");
    zapi.scan("ZAPI-LOST-1");
    rig.sup.poll_cycle().await.unwrap();
    for name in ["waha-lost", "ZAPI-LOST-1"] {
        let url = rig.pair_url(name).await;
        let (code, page) = rig.page(&url).await;
        assert!(code == 200 && page.contains("This number is connected") && !page.contains("qr.png"), "{name}: {page}");
    }
}

/// W-API (on wiremock, over its fixtures): the `qr-code` check tells a
/// logout, whose notice carries a link; the page serves the fixture's PNG
/// byte for byte and the fixture's pairing code, and no instance token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_w_api_instance_s_link_shows_its_qr_code_and_a_pairing_code() {
    use base64::Engine;
    let wapi = MockServer::start().await;
    let id = "3B6XIW-ZTS923-GEAY6V";
    Mock::given(method("GET"))
        .and(path("/instance/status-instance"))
        .respond_with(json_fixture(200, "wapi/status-instance.disconnected.json"))
        .mount(&wapi)
        .await;
    Mock::given(method("GET"))
        .and(path("/instance/qr-code"))
        .and(query_param("image", "disable"))
        .respond_with(json_fixture(200, "wapi/qr-code.image-disable.json"))
        .mount(&wapi)
        .await;
    Mock::given(method("GET"))
        .and(path("/instance/pairing-code"))
        .and(query_param("phoneNumber", "5511987654321"))
        .respond_with(json_fixture(200, "wapi/pairing-code-response.json"))
        .expect(1)
        .mount(&wapi)
        .await;
    let providers = vec![RawProvider {
        name: "wapi".into(),
        kind: "wapi".into(),
        base_url: wapi.uri(),
        webhook_token: Some("wapi-hook".into()),
        ..Default::default()
    }];
    let instances = vec![RawInstance {
        provider: "wapi".into(),
        name: id.into(),
        token: Some(WAPI_TOKEN.into()),
        ..Default::default()
    }];
    let rig = Rig::start(TestDb::sqlite().await, providers, instances, |_| {}).await;
    rig.sup.poll_cycle().await.unwrap();
    let url = rig.pair_url(id).await;
    let (code, _, png) = rig.get(&format!("{url}/qr.png")).await;
    let fixture = fixture_json("wapi/qr-code.image-disable.json");
    let b64 = fixture["qrcode"].as_str().unwrap().split_once(',').unwrap().1.to_string();
    assert_eq!(code, 200);
    assert_eq!(png, base64::engine::general_purpose::STANDARD.decode(b64).unwrap());
    let (code, page) = rig.ask_code(&url, "+55 11 98765 4321").await;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains(fixture_json("wapi/pairing-code-response.json")["pairingCode"].as_str().unwrap()), "{page}");
    assert_no_secret(page.as_bytes(), &[WAPI_TOKEN, &host_of(&wapi.uri())], "the page");
}

/// The re-pairing calls against every fixture shape of the providers' QR
/// and pairing-code answers (wiremock, with call counts): Evolution reads a
/// QR code only from a `connecting` session and hands its PNG on byte for
/// byte, says "connected" for an open one and fails on a `{error: true}`
/// 200; WAHA's `{mimetype, data}`, `{value}` (drawn by the page) and 422
/// `WORKING`, its `request-code` and its 422 for the wrong status; Z-API's
/// `qr-code/image` and `phone-code`, asked after `status`.
#[tokio::test]
async fn re_pairing_calls_read_every_fixture_shape() {
    use base64::Engine;
    use wa_sentinel::config::{ApiVersion, ProviderConfig, ProviderKind, Secret};
    use wa_sentinel::providers::pairing::{CodeAnswer, QrAnswer};
    use wa_sentinel::providers::{ErrorClass, InstanceRef, ProviderClient};
    use wiremock::matchers::{body_json, header};
    let png_of = |rel: &str, field: &str| {
        let v = fixture_json(rel);
        let s = v[field].as_str().unwrap();
        base64::engine::general_purpose::STANDARD.decode(s.rsplit(',').next().unwrap()).unwrap()
    };
    let timeout = Duration::from_secs(5);

    // Evolution v2.
    let server = MockServer::start().await;
    let evo = crate::it::providers::evo(&server.uri(), ApiVersion::V2);
    let inst = InstanceRef::named("sales-bot");
    let state = |fx: &'static str| {
        Mock::given(method("GET")).and(path("/instance/connectionState/sales-bot")).respond_with(json_fixture(200, fx))
    };
    let connect = |fx: &'static str| {
        Mock::given(method("GET")).and(path("/instance/connect/sales-bot")).respond_with(json_fixture(200, fx))
    };
    state("evolution/v2-connectionState-close.json").up_to_n_times(1).mount(&server).await;
    assert!(matches!(evo.pairing_qr(&inst).await.unwrap(), QrAnswer::NeedsStart(_)), "closed: a start first");
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "and no connect: it would start a socket");
    state("evolution/v2-connectionState-connecting.json").mount(&server).await;
    connect("evolution/v2-connect-response-qr-png.json").up_to_n_times(1).mount(&server).await;
    let want = png_of("evolution/v2-connect-response-qr-png.json", "base64");
    assert_eq!(evo.pairing_qr(&inst).await.unwrap(), QrAnswer::Png(want));
    connect("evolution/v2-connect-response-already-open.json").up_to_n_times(1).mount(&server).await;
    assert_eq!(evo.pairing_qr(&inst).await.unwrap(), QrAnswer::Connected);
    connect("evolution/v2-connect-response-no-qr-yet.json").up_to_n_times(1).mount(&server).await;
    assert!(matches!(evo.pairing_qr(&inst).await.unwrap(), QrAnswer::NotReady(_)));
    connect("evolution/v2-connect-response-error-200.json").up_to_n_times(1).mount(&server).await;
    assert_eq!(evo.pairing_qr(&inst).await.unwrap_err().class, ErrorClass::BadResponse);
    Mock::given(method("GET"))
        .and(path("/instance/connect/sales-bot"))
        .and(query_param("number", "5511987654321"))
        .respond_with(json_fixture(200, "evolution/v2-connect-response-pairing-code-png.json"))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(evo.pairing_code(&inst, "5511987654321").await.unwrap(), CodeAnswer::Code("WZYEH1YY".into()));

    // WAHA.
    let server = MockServer::start().await;
    let cfg = ProviderConfig {
        api_key: Some(Secret::literal("waha-key")),
        ..ProviderConfig::new("waha", ProviderKind::Waha, &server.uri(), Secret::literal("hook"))
    };
    let waha = ProviderClient::new(&cfg, timeout).unwrap();
    let inst = InstanceRef::named("default");
    Mock::given(method("GET"))
        .and(path("/api/sessions/default"))
        .respond_with(json_fixture(200, "waha/session.get.scan_qr_code.json"))
        .mount(&server)
        .await;
    let qr = |fx: &'static str, status: u16| {
        Mock::given(method("GET"))
            .and(path("/api/default/auth/qr"))
            .and(header("accept", "application/json"))
            .and(header("x-api-key", "waha-key"))
            .respond_with(json_fixture(status, fx))
            .up_to_n_times(1)
    };
    qr("waha/auth-qr-base64-response.json", 200).mount(&server).await;
    assert_eq!(
        waha.pairing_qr(&inst).await.unwrap(),
        QrAnswer::Png(png_of("waha/auth-qr-base64-response.json", "data"))
    );
    qr("waha/auth-qr-raw-response.json", 200).mount(&server).await;
    let raw = fixture_json("waha/auth-qr-raw-response.json")["value"].as_str().unwrap().to_string();
    assert_eq!(waha.pairing_qr(&inst).await.unwrap(), QrAnswer::Text(raw.clone()));
    assert!(wa_sentinel::pairing::is_png(&wa_sentinel::pairing::qr_png(&raw).unwrap()), "the page can draw it");
    qr("waha/auth-qr-error-422-already-working.json", 422).mount(&server).await;
    assert_eq!(waha.pairing_qr(&inst).await.unwrap(), QrAnswer::Connected);
    let code = |fx: &'static str, status: u16| {
        Mock::given(method("POST"))
            .and(path("/api/default/auth/request-code"))
            .and(body_json(fixture_json("waha/auth-request-code-request.json")))
            .respond_with(json_fixture(status, fx))
            .up_to_n_times(1)
    };
    code("waha/auth-request-code-response.json", 201).mount(&server).await;
    assert_eq!(waha.pairing_code(&inst, "5511987654321").await.unwrap(), CodeAnswer::Code("WZYE-H1YY".into()));
    code("waha/auth-request-code-error-422-wrong-status.json", 422).mount(&server).await;
    assert!(
        matches!(waha.pairing_code(&inst, "5511987654321").await.unwrap(), CodeAnswer::NotReady(m) if m.contains("SCAN_QR_CODE"))
    );

    // Z-API.
    let server = MockServer::start().await;
    let cfg = ProviderConfig {
        client_token: Some(Secret::literal("client-token")),
        ..ProviderConfig::new("zapi", ProviderKind::Zapi, &server.uri(), Secret::literal("hook"))
    };
    let zapi = ProviderClient::new(&cfg, timeout).unwrap();
    let inst = InstanceRef { name: "3C2A".into(), token: Some(Secret::literal("inst-token")) };
    let call = |p: &str, fx: &'static str| {
        Mock::given(method("GET"))
            .and(path(format!("/instances/3C2A/token/inst-token/{p}")))
            .and(header("client-token", "client-token"))
            .respond_with(json_fixture(200, fx))
    };
    call("status", "zapi/status.not-connected.json").mount(&server).await;
    call("qr-code/image", "zapi/qr-code-image-response.json").up_to_n_times(1).mount(&server).await;
    assert_eq!(
        zapi.pairing_qr(&inst).await.unwrap(),
        QrAnswer::Png(png_of("zapi/qr-code-image-response.json", "value"))
    );
    call("qr-code/image", "zapi/qr-code-image-response-already-connected.UNCERTAIN.json").mount(&server).await;
    assert_eq!(zapi.pairing_qr(&inst).await.unwrap(), QrAnswer::Connected);
    call("phone-code/5511987654321", "zapi/phone-code-response.json").expect(1).mount(&server).await;
    assert_eq!(zapi.pairing_code(&inst, "5511987654321").await.unwrap(), CodeAnswer::Code("WZYEH1YY".into()));
}
