//! Inbound webhook parsing: every webhook fixture to its signal, by-events
//! suffixes, missing fields, and property tests that nothing panics.

use proptest::prelude::*;
use serde_json::{Value, json};
use wa_sentinel::config::ProviderKind;
use wa_sentinel::domain::WebhookSignal;
use wa_sentinel::providers::{InboundError, parse_inbound};

use super::{fixture, fixture_json};

#[test]
fn every_evolution_webhook_fixture_maps_to_its_signal() {
    use WebhookSignal::*;
    let cases = [
        ("v1-webhook-connection-update-close-loggedout-401.json", "connection.update", LoggedOut { reason: Some(401) }),
        ("v1-webhook-connection-update-connecting.json", "connection.update", Connecting { qr_pending: false }),
        ("v1-webhook-connection-update-open-expose-apikey.json", "connection.update", Open),
        ("v1-webhook-connection-update-open.json", "connection.update", Open),
        ("v1-webhook-connection-update-refused.json", "connection.update", Connecting { qr_pending: true }),
        ("v1-webhook-messages-upsert.json", "messages.upsert", Alive),
        ("v1-webhook-qrcode-updated.json", "qrcode.updated", Connecting { qr_pending: true }),
        ("v2-webhook-connection-update-close-forbidden-403.json", "connection.update", LoggedOut { reason: Some(403) }),
        ("v2-webhook-connection-update-close-loggedout-401.json", "connection.update", LoggedOut { reason: Some(401) }),
        ("v2-webhook-connection-update-connecting.json", "connection.update", Connecting { qr_pending: false }),
        ("v2-webhook-connection-update-open.json", "connection.update", Open),
        ("v2-webhook-connection-update-refused.json", "connection.update", Connecting { qr_pending: true }),
        ("v2-webhook-global-connection-update.json", "connection.update", Connecting { qr_pending: false }),
        ("v2-webhook-logout-instance.json", "logout.instance", LoggedOut { reason: None }),
        ("v2-webhook-messages-upsert.json", "messages.upsert", Alive),
        ("v2-webhook-qrcode-updated-limit-reached.json", "qrcode.updated", Connecting { qr_pending: true }),
        ("v2-webhook-qrcode-updated-pairing-code.json", "qrcode.updated", Connecting { qr_pending: true }),
        ("v2-webhook-qrcode-updated.json", "qrcode.updated", Connecting { qr_pending: true }),
        ("v2-webhook-status-instance-closed-401.json", "status.instance", LoggedOut { reason: Some(401) }),
        (
            "synthetic-webhook-connection-update-close-restart-required-515.json",
            "connection.update",
            Closed { reason: Some(515) },
        ),
    ];
    for (fx, event, signal) in cases {
        let body = fixture(&format!("evolution/{fx}"));
        let got = parse_inbound(ProviderKind::Evolution, body.as_bytes(), None).unwrap_or_else(|e| panic!("{fx}: {e}"));
        assert_eq!(got.instance, "sales-bot", "{fx}");
        assert_eq!(got.event, event, "{fx}");
        assert_eq!(got.signal, signal, "{fx}");
        assert_eq!(got.raw_len, body.len(), "{fx}");
    }
}

#[test]
fn every_wapi_webhook_fixture_maps_to_its_signal() {
    use WebhookSignal::*;
    let cases = [
        ("webhook.connected.json", "3B6XIW-ZTS923-GEAY6V", "webhookConnected", Open),
        ("webhook.delivery.json", "3B6XIW-ZTS923-GEAY6V", "webhookDelivery", Alive),
        ("webhook.disconnected.json", "3B6XIW-ZTS923-GEAY6V", "webhookDisconnected", Dropped),
        ("webhook.message-status.json", "3B6XIW-ZTS923-GEAY6V", "webhookStatus", Alive),
        ("webhook.received.group-lid.json", "LITE-8NDQT1-UWX43P", "webhookReceived", Alive),
        ("webhook.received.text.json", "3B6XIW-ZTS923-GEAY6V", "webhookReceived", Alive),
    ];
    for (fx, instance, event, signal) in cases {
        let body = fixture(&format!("wapi/{fx}"));
        let got = parse_inbound(ProviderKind::Wapi, body.as_bytes(), None).unwrap_or_else(|e| panic!("{fx}: {e}"));
        assert_eq!((got.instance.as_str(), got.event.as_str(), got.signal), (instance, event, signal), "{fx}");
    }
}

#[test]
fn wapi_error_ack_and_phoneless_events_are_neutral() {
    let mut status = fixture_json("wapi/webhook.message-status.json");
    status["status"] = json!("ERROR");
    let got = parse_inbound(ProviderKind::Wapi, status.to_string().as_bytes(), None).unwrap();
    assert_eq!(got.signal, WebhookSignal::Neutral);
    let mut recv = fixture_json("wapi/webhook.received.text.json");
    recv["connectedPhone"] = json!("");
    assert_eq!(
        parse_inbound(ProviderKind::Wapi, recv.to_string().as_bytes(), None).unwrap().signal,
        WebhookSignal::Neutral
    );
    // No `event`, but the slot path names it.
    let mut conn = fixture_json("wapi/webhook.connected.json");
    conn.as_object_mut().unwrap().remove("event");
    let got = parse_inbound(ProviderKind::Wapi, conn.to_string().as_bytes(), Some("connected")).unwrap();
    assert_eq!((got.event.as_str(), got.signal), ("webhookConnected", WebhookSignal::Open));
    let mut disc = fixture_json("wapi/webhook.disconnected.json");
    disc.as_object_mut().unwrap().remove("event");
    let e = parse_inbound(ProviderKind::Wapi, disc.to_string().as_bytes(), None).unwrap_err();
    assert_eq!(e, InboundError::MissingField("event"));
    let e = parse_inbound(ProviderKind::Wapi, br#"{"event":"webhookConnected"}"#, None).unwrap_err();
    assert_eq!(e.to_string(), "webhook body lacks the field `instanceId`");
}

#[test]
fn evolution_by_events_suffix_names_a_missing_event() {
    let mut v = fixture_json("evolution/v2-webhook-messages-upsert.json");
    v.as_object_mut().unwrap().remove("event");
    let body = v.to_string();
    let got = parse_inbound(ProviderKind::Evolution, body.as_bytes(), Some("messages-upsert")).unwrap();
    assert_eq!((got.event.as_str(), got.signal), ("messages.upsert", WebhookSignal::Alive));
    let got = parse_inbound(ProviderKind::Evolution, body.as_bytes(), Some("connection-update"));
    assert_eq!(got.unwrap_err(), InboundError::MissingField("data.state"));
    assert_eq!(
        parse_inbound(ProviderKind::Evolution, body.as_bytes(), None).unwrap_err(),
        InboundError::MissingField("event")
    );
    // The body's own event wins over the suffix.
    let body = fixture("evolution/v2-webhook-logout-instance.json");
    let got = parse_inbound(ProviderKind::Evolution, body.as_bytes(), Some("messages-upsert")).unwrap();
    assert_eq!(got.signal, WebhookSignal::LoggedOut { reason: None });
}

#[test]
fn evolution_missing_instance_and_junk_are_refused() {
    let mut v = fixture_json("evolution/v2-webhook-connection-update-open.json");
    v.as_object_mut().unwrap().remove("instance");
    let e = parse_inbound(ProviderKind::Evolution, v.to_string().as_bytes(), None).unwrap_err();
    assert_eq!(e, InboundError::MissingField("instance"));
    assert_eq!(e.to_string(), "webhook body lacks the field `instance`");
    assert!(matches!(parse_inbound(ProviderKind::Evolution, b"<html>", None), Err(InboundError::Malformed(_))));
    assert!(matches!(parse_inbound(ProviderKind::Evolution, b"[1,2]", None), Err(InboundError::Malformed(_))));
    // Removal says nothing about a live session.
    let body = br#"{"event":"remove.instance","instance":"a","data":null}"#;
    assert_eq!(parse_inbound(ProviderKind::Evolution, body, None).unwrap().signal, WebhookSignal::Neutral);
    // statusReason as a string still counts.
    let body = br#"{"event":"connection.update","instance":"a","data":{"state":"close","statusReason":"428"}}"#;
    assert_eq!(
        parse_inbound(ProviderKind::Evolution, body, None).unwrap().signal,
        WebhookSignal::Closed { reason: Some(428) }
    );
}

/// Arbitrary JSON biased towards the fields every provider's parser reads.
pub(super) fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("event".to_string()),
        Just("instance".to_string()),
        Just("instanceId".to_string()),
        Just("data".to_string()),
        Just("state".to_string()),
        Just("statusReason".to_string()),
        Just("status".to_string()),
        Just("connectedPhone".to_string()),
        Just("disconnectionReasonCode".to_string()),
        Just("session".to_string()),
        Just("payload".to_string()),
        Just("type".to_string()),
        Just("momment".to_string()),
        "[a-zA-Z]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        prop_oneof![
            Just("connection.update".to_string()),
            Just("open".to_string()),
            Just("close".to_string()),
            Just("refused".to_string()),
            Just("webhookStatus".to_string()),
            Just("ERROR".to_string()),
            Just("5516993630000".to_string()),
            Just("session.status".to_string()),
            Just("WORKING".to_string()),
            Just("ConnectedCallback".to_string()),
            ".{0,20}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512), suffix in proptest::option::of(".{0,30}")) {
        for kind in [ProviderKind::Evolution, ProviderKind::Wapi] {
            if let Ok(i) = parse_inbound(kind, &body, suffix.as_deref()) {
                prop_assert_eq!(i.raw_len, body.len());
            }
        }
    }

    #[test]
    fn never_panics_on_json_ish_text(body in r#"[{}\[\]":,a-zA-Z0-9 ._\-]{0,300}"#) {
        for kind in [ProviderKind::Evolution, ProviderKind::Wapi] {
            let _ = parse_inbound(kind, body.as_bytes(), Some("messages-upsert"));
        }
    }

    #[test]
    fn structured_json_parses_or_names_what_is_wrong(v in json_value(), suffix in proptest::option::of("[a-z\\-]{0,20}")) {
        let body = v.to_string();
        for kind in [ProviderKind::Evolution, ProviderKind::Wapi] {
            match parse_inbound(kind, body.as_bytes(), suffix.as_deref()) {
                Ok(i) => prop_assert!(!i.instance.is_empty() && !i.event.is_empty()),
                Err(InboundError::MissingField(f)) => prop_assert!(!f.is_empty()),
                Err(InboundError::Malformed(m)) => prop_assert!(!v.is_object(), "object refused as malformed: {}", m),
            }
        }
    }
}
