//! What Evolution's status answers say: `connectionState` (read from its
//! bytes on the poll's usual path, through a JSON tree otherwise) and the
//! `fetchInstances` rows behind a `close` and behind discovery.

use serde_json::Value;

use super::{TERMINAL_REASONS, as_u16};
use crate::domain::ProviderStatus;
use crate::providers::{ErrorClass, ProviderError, truncate};

/// What a `connectionState` answer says: a status, or a `close` (or
/// `refused`) whose reason takes a second call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StateAnswer {
    Status(ProviderStatus),
    Closed,
}

/// A classified `connectionState` answer (`{"instance": {"state": …}}`) read.
pub(super) fn state_of(json: &Value, what: &str) -> Result<StateAnswer, ProviderError> {
    let inner = json.get("instance").filter(|i| i.is_object()).ok_or_else(|| {
        ProviderError::new(ErrorClass::BadResponse, format!("{what}: no `instance` object in the answer"))
    })?;
    Ok(match inner.get("state") {
        None | Some(Value::Null) => StateAnswer::Status(ProviderStatus::NotLoaded),
        Some(Value::String(s)) => match s.as_str() {
            "open" => StateAnswer::Status(ProviderStatus::Connected),
            "connecting" => StateAnswer::Status(ProviderStatus::Connecting { qr_pending: false }),
            "close" | "refused" => StateAnswer::Closed,
            other => {
                return Err(ProviderError::new(
                    ErrorClass::BadResponse,
                    format!("{what}: unknown state {:?}", truncate(other, 40)),
                ));
            }
        },
        Some(_) => {
            return Err(ProviderError::new(ErrorClass::BadResponse, format!("{what}: `state` is not a string")));
        }
    })
}

/// The usual `connectionState` answer read straight from its bytes, without
/// a `serde_json::Value`: exactly `{"instance": {"instanceName": "…",
/// "state": …}}` (either inner field may be missing; any order, any
/// whitespace), whose state is `open`, `connecting` or null/absent. Any other
/// body — another field, an `error`, a duplicate key, a `close` — is `None`
/// and goes through [`classify`](super::http::classify) and [`state_of`],
/// which agree with this on every body it takes (a property test holds it).
pub(super) fn fast_state(body: &[u8]) -> Option<ProviderStatus> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Answer<'a> {
        #[serde(borrow)]
        instance: Option<&'a serde_json::value::RawValue>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Inner<'a> {
        #[serde(borrow, default, rename = "instanceName")]
        _name: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow, default)]
        state: Option<std::borrow::Cow<'a, str>>,
    }
    // serde would also take a JSON array for a struct: only objects, at both levels.
    if body.iter().find(|c| !c.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let a: Answer<'_> = serde_json::from_slice(body).ok()?;
    let inner = a.instance?.get();
    if !inner.starts_with('{') {
        return None;
    }
    let a: Inner<'_> = serde_json::from_str(inner).ok()?;
    match a.state.as_deref() {
        None => Some(ProviderStatus::NotLoaded),
        Some("open") => Some(ProviderStatus::Connected),
        Some("connecting") => Some(ProviderStatus::Connecting { qr_pending: false }),
        Some(_) => None,
    }
}

/// fetchInstances rows (v2 `{name, ownerJid, connectionStatus,
/// disconnectionReasonCode}`, v1 `{instance: {instanceName, owner}}`, or a v1
/// single object) → the status of a `close`. A terminal reason wins; then an
/// instance with no owner was never paired and waits for its first QR scan
/// (observed on a real 2.3.6 server: restarting it only starts a socket that
/// loops `connecting`).
pub fn close_status_from_rows(json: &Value, name: &str) -> ProviderStatus {
    let rows: Vec<&Value> = match json {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let v1 = |r: &Value| r.get("instance").filter(|i| i.is_object()).cloned();
    let row = rows.into_iter().find(|r| {
        r.get("name").and_then(Value::as_str) == Some(name)
            || v1(r).and_then(|i| i.get("instanceName").and_then(Value::as_str).map(str::to_string)).as_deref()
                == Some(name)
    });
    let Some(row) = row else {
        return ProviderStatus::Disconnected { reason: None };
    };
    let row = v1(row).unwrap_or_else(|| row.clone());
    let code = row.get("disconnectionReasonCode").and_then(as_u16);
    let db_closed = row.get("connectionStatus").and_then(Value::as_str) == Some("close");
    let owned =
        ["ownerJid", "owner"].iter().any(|k| row.get(*k).and_then(Value::as_str).is_some_and(|o| !o.is_empty()));
    match code {
        Some(c) if db_closed && TERMINAL_REASONS.contains(&c) => ProviderStatus::LoggedOut { reason: Some(c) },
        _ if !owned => ProviderStatus::Unpaired,
        Some(c) if db_closed => ProviderStatus::Disconnected { reason: Some(c) },
        _ => ProviderStatus::Disconnected { reason: None },
    }
}

/// A fetchInstances answer: v2 rows, v1 `[{instance: …}]` (`.0`), or one v1
/// object (`.1`). Not an untagged enum: serde would buffer the whole answer
/// into its `Content` tree to try each variant (measured: 3 % of a cycle).
pub(super) struct FetchRows(pub(super) Option<Vec<FetchRow>>, pub(super) Option<FetchRow>);

impl<'de> serde::Deserialize<'de> for FetchRows {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FetchRows;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of instances or one instance")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<FetchRows, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(r) = seq.next_element()? {
                    v.push(r);
                }
                Ok(FetchRows(Some(v), None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<FetchRows, A::Error> {
                let one = serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(FetchRows(None, Some(one)))
            }
        }
        d.deserialize_any(V)
    }
}

/// The part of a fetchInstances row discovery needs (unknown fields skipped).
#[derive(serde::Deserialize)]
pub(super) struct FetchRow {
    name: Option<String>,
    id: Option<String>,
    instance: Option<FetchV1>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct FetchV1 {
    instance_name: Option<String>,
    instance_id: Option<String>,
}

impl FetchRow {
    pub(super) fn into_pair(self) -> Option<(String, Option<String>)> {
        let (v1_name, v1_id) = self.instance.map(|i| (i.instance_name, i.instance_id)).unwrap_or_default();
        let name = self.name.or(v1_name).filter(|n| !n.is_empty())?;
        Some((name, self.id.or(v1_id).filter(|i| !i.is_empty())))
    }
}

/// Instance names from fetchInstances: v2 rows with `name`, v1 `{instance:{instanceName}}`,
/// or a single v1 object.
pub fn instance_names(json: &Value) -> Vec<String> {
    instance_rows(json).into_iter().map(|(n, _)| n).collect()
}

/// `(name, Evolution's id)` of each fetchInstances row: v2 `id`, v1 `instance.instanceId`.
pub fn instance_rows(json: &Value) -> Vec<(String, Option<String>)> {
    let one = |r: &Value| -> Option<(String, Option<String>)> {
        let v1 = r.get("instance");
        let name = r
            .get("name")
            .and_then(Value::as_str)
            .or_else(|| v1.and_then(|i| i.get("instanceName")).and_then(Value::as_str))
            .filter(|s| !s.is_empty())?;
        let id = r
            .get("id")
            .and_then(Value::as_str)
            .or_else(|| v1.and_then(|i| i.get("instanceId")).and_then(Value::as_str))
            .filter(|s| !s.is_empty());
        Some((name.to_string(), id.map(str::to_string)))
    };
    match json {
        Value::Array(a) => a.iter().filter_map(one).collect(),
        Value::Object(_) => one(json).into_iter().collect(),
        _ => Vec::new(),
    }
}
