//! Evolution webhook bodies: the envelope `{event, instance, data, …}` read
//! without building a `Value` (this is the receiver's hot path), and the
//! signal each event gives about the session.

use serde_json::Value;

use super::{TERMINAL_REASONS, as_u16, canonical_kind};
use crate::domain::WebhookSignal;
use crate::providers::{Inbound, InboundError};

/// The envelope `{event, instance, data, …}`, borrowed from the body: only
/// the fields a signal needs are decoded, the rest (message contents, keys,
/// media) is skipped without allocating — this parse is the webhook hot path.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    // Not `&str`: a non-string `event`/`instance` is a missing field (400
    // naming it), not a malformed body.
    #[serde(borrow, default)]
    event: Option<Loose<'a>>,
    #[serde(borrow, default)]
    instance: Option<Loose<'a>>,
    #[serde(borrow, default)]
    data: Option<&'a serde_json::value::RawValue>,
}

/// A JSON value that matters only if it is a string: borrowed when it has no
/// escapes, anything else skipped without building a `Value`.
enum Loose<'a> {
    Str(std::borrow::Cow<'a, str>),
    Other,
}

impl<'a> Loose<'a> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Loose::Str(s) => Some(s),
            Loose::Other => None,
        }
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Loose<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Loose<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Loose::Str(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Loose::Str(std::borrow::Cow::Owned(v.to_string())))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The `data` fields of `connection.update` and `status.instance`.
#[derive(serde::Deserialize, Default)]
struct StateData {
    #[serde(default)]
    state: Option<Value>,
    #[serde(default)]
    status: Option<Value>,
    #[serde(rename = "statusReason", default)]
    status_reason: Option<Value>,
    #[serde(rename = "disconnectionReasonCode", default)]
    disconnection_reason_code: Option<Value>,
}

/// Parse an Evolution webhook body (envelope `{event, instance, data, …}`).
/// Fields of `data` with the wrong type read as absent.
pub fn parse_inbound(body: &[u8], path_event: Option<&str>) -> Result<Inbound, InboundError> {
    // serde would also accept a JSON array for a struct: only an object is an envelope.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(InboundError::Malformed("not a JSON object".into()));
    }
    // UTF-8 checked once over the whole body: `from_str` then skips the
    // per-string checks `from_slice` makes (measured: a third of the parse).
    let text = std::str::from_utf8(body).map_err(|e| InboundError::Malformed(format!("not UTF-8: {e}")))?;
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| InboundError::Malformed(e.to_string()))?;
    let event = match env.event.as_ref().and_then(Loose::as_str).filter(|s| !s.trim().is_empty()) {
        Some(e) => e.to_string(),
        // by-events suffix: kebab `messages-upsert` → dotted `messages.upsert`.
        None => match path_event.map(str::trim).filter(|s| !s.is_empty()) {
            Some(p) => p.to_lowercase().replace('-', "."),
            None => return Err(InboundError::MissingField("event")),
        },
    };
    let instance = env
        .instance
        .as_ref()
        .and_then(Loose::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(InboundError::MissingField("instance"))?
        .to_string();
    let state_data = || -> StateData {
        env.data.and_then(|raw| serde_json::from_str::<StateData>(raw.get()).ok()).unwrap_or_default()
    };
    let signal = match canonical_kind(&event) {
        "CONNECTION_UPDATE" => {
            let data = state_data();
            let state = data.state.as_ref().and_then(Value::as_str).ok_or(InboundError::MissingField("data.state"))?;
            let reason = data.status_reason.as_ref().and_then(as_u16);
            match state {
                "open" => WebhookSignal::Open,
                "connecting" => WebhookSignal::Connecting { qr_pending: false },
                // QR limit reached: an unpaired session waiting for a human.
                "refused" => WebhookSignal::Connecting { qr_pending: true },
                "close" => close_signal(reason),
                _ => WebhookSignal::Neutral,
            }
        }
        "QRCODE_UPDATED" => WebhookSignal::Connecting { qr_pending: true },
        "LOGOUT_INSTANCE" => WebhookSignal::LoggedOut { reason: None },
        "STATUS_INSTANCE" => {
            let data = state_data();
            let reason = data.disconnection_reason_code.as_ref().and_then(as_u16);
            match data.status.as_ref().and_then(Value::as_str).unwrap_or("") {
                "closed" | "close" => close_signal(reason),
                "open" | "connected" => WebhookSignal::Open,
                _ => WebhookSignal::Neutral,
            }
        }
        // Removal/creation/startup and the errors webhook say nothing about a
        // live session (a removed instance shows up as 404 on the next poll).
        "REMOVE_INSTANCE" | "INSTANCE_DELETE" | "INSTANCE_CREATE" | "APPLICATION_STARTUP" | "ERROR" => {
            WebhookSignal::Neutral
        }
        _ => WebhookSignal::Alive,
    };
    // `date_time` is local time labelled `Z`: not an instant to trust.
    Ok(Inbound { instance, event, signal, raw_len: body.len(), at: None })
}

fn close_signal(reason: Option<u16>) -> WebhookSignal {
    match reason {
        Some(c) if TERMINAL_REASONS.contains(&c) => WebhookSignal::LoggedOut { reason: Some(c) },
        r => WebhookSignal::Closed { reason: r },
    }
}
