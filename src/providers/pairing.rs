//! Re-pairing calls: the provider's current QR code, a pairing code for a
//! phone number, and the one start a session needs before it hands out a
//! QR code. The public re-pair page proxies them, so no provider URL, API key
//! or instance token ever reaches the customer's browser
//! ([`crate::server`]'s pairing page; `docs/providers.md`, "Re-pairing").
//!
//! | kind | QR code | pairing code | start |
//! |---|---|---|---|
//! | Evolution v2/v1 | `GET /instance/connectionState/{i}`, then (only while `connecting`: side-effect free) `GET /instance/connect/{i}` → `base64` (a PNG data URL) or `code` | `GET /instance/connect/{i}?number=` → `pairingCode` (only a socket started with the number has one) | `close`: `GET /instance/connect/{i}[?number=]` starts a socket |
//! | WAHA | `GET /api/sessions/{s}`, then in `SCAN_QR_CODE` `GET /api/{s}/auth/qr` with `Accept: application/json` → `{mimetype, data}` (or PNG bytes, or `{value}`) | `POST /api/{s}/auth/request-code` `{phoneNumber}` → `{code}` | `STOPPED`: `start`, `FAILED`: `restart` |
//! | Z-API | `GET …/status`, then `GET …/qr-code/image` → `{value}` (a PNG data URL) | `GET …/phone-code/{phone}` → `{code}` | none |
//! | W-API | `GET /instance/qr-code?instanceId=&image=disable` → `{qrcode}` (a PNG data URL) | `GET /instance/pairing-code?instanceId=&phoneNumber=` → `{pairingCode}` | none |

use base64::Engine;
use serde_json::{Value, json};

use super::evolution::EvolutionClient;
use super::http::classify;
use super::waha::WahaClient;
use super::wapi::WapiClient;
use super::zapi::ZapiClient;
use super::{ErrorClass, InstanceRef, Provider, ProviderClient, ProviderError, Recovered, truncate};
use crate::domain::RecoveryKind;

/// What the provider says about its QR code now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrAnswer {
    /// The session is open: nothing to scan.
    Connected,
    /// The session must be started before it hands out a QR code (WAHA
    /// `STOPPED` or `FAILED`, an Evolution socket that is closed).
    NeedsStart(String),
    /// The provider is starting the session: a QR code comes shortly.
    Starting,
    /// The session is in a state only a person on the provider's side can
    /// resolve (WAHA `PASSKEY_REQUIRED`, an unknown status), named.
    NeedsPerson(String),
    /// No QR code right now, and why (not issued yet).
    NotReady(String),
    /// The provider's image, byte for byte (a PNG).
    Png(Vec<u8>),
    /// The QR string, to be drawn.
    Text(String),
}

/// What the provider says to a pairing-code request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeAnswer {
    Connected,
    NeedsStart(String),
    NotReady(String),
    /// The code the customer types on the phone (`WZYE-H1YY`, `WZYEH1YY`).
    Code(String),
}

/// What a start sent, and what its answer already held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartAnswer {
    /// What was called and what came back, for the audit log.
    pub detail: String,
    /// A QR code in the answer (Evolution's connect hands one out).
    pub qr: Option<QrAnswer>,
    /// A pairing code in the answer (Evolution's connect with a number).
    pub code: Option<String>,
}

/// The outcome of a start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    Sent(StartAnswer),
    /// Nothing was sent, and why (the provider needs no start, or the
    /// session is already on its way).
    Skipped(String),
}

impl ProviderClient {
    /// The instance's current QR code.
    pub async fn pairing_qr(&self, inst: &InstanceRef) -> Result<QrAnswer, ProviderError> {
        match self {
            ProviderClient::Evolution(c) => evolution_qr(c, inst).await,
            ProviderClient::Waha(c) => waha_qr(c, inst).await,
            ProviderClient::Zapi(c) => zapi_qr(c, inst).await,
            ProviderClient::Wapi(c) => wapi_qr(c, inst).await,
        }
    }

    /// A pairing code for `phone` (digits with the country code).
    pub async fn pairing_code(&self, inst: &InstanceRef, phone: &str) -> Result<CodeAnswer, ProviderError> {
        match self {
            ProviderClient::Evolution(c) => evolution_code(c, inst, phone).await,
            ProviderClient::Waha(c) => waha_code(c, inst, phone).await,
            ProviderClient::Zapi(c) => zapi_code(c, inst, phone).await,
            ProviderClient::Wapi(c) => wapi_code(c, inst, phone).await,
        }
    }

    /// Start the session so that it hands out a QR code (with `phone`, in
    /// pairing-code mode where the provider starts one that way). The caller
    /// has committed the attempt first (rule 4).
    pub async fn pairing_start(&self, inst: &InstanceRef, phone: Option<&str>) -> Result<Started, ProviderError> {
        match self {
            ProviderClient::Evolution(c) => evolution_start(c, inst, phone).await,
            ProviderClient::Waha(c) => match c.recover(inst, RecoveryKind::Reconnect).await? {
                Recovered::Sent(detail) => Ok(Started::Sent(StartAnswer { detail, qr: None, code: None })),
                Recovered::Skipped(why) => Ok(Started::Skipped(why)),
            },
            ProviderClient::Zapi(_) | ProviderClient::Wapi(_) => {
                Ok(Started::Skipped("the provider hands out QR codes without a start".into()))
            }
        }
    }
}

/// `data:image/png;base64,…` (or bare base64) → the PNG's bytes, if it is one.
pub fn png_of_data_url(s: &str) -> Option<Vec<u8>> {
    let b64 = match s.split_once(',') {
        Some((head, rest)) if head.starts_with("data:") && head.ends_with(";base64") => rest,
        Some(_) => return None,
        None => s,
    };
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    crate::pairing::is_png(&bytes).then_some(bytes)
}

fn non_empty<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn says_connected(v: &Value) -> bool {
    v.get("connected") == Some(&Value::Bool(true))
}

// ---- Evolution ------------------------------------------------------------

/// An Evolution connect answer: the connection state when already open, else
/// the QR object `{pairingCode, code, base64, count}` (`{"count": 0}` before
/// the first QR code).
pub fn evolution_connect_answer(v: &Value) -> QrAnswer {
    if v.get("instance").and_then(|i| i.get("state")).and_then(Value::as_str) == Some("open") {
        return QrAnswer::Connected;
    }
    if let Some(png) = non_empty(v, "base64").and_then(png_of_data_url) {
        return QrAnswer::Png(png);
    }
    match non_empty(v, "code") {
        Some(code) => QrAnswer::Text(code.to_string()),
        None => QrAnswer::NotReady("the provider has not issued a QR code yet".into()),
    }
}

async fn evolution_state(c: &EvolutionClient, name: &str) -> Result<String, ProviderError> {
    let what = format!("GET /instance/connectionState/{name}");
    let r = c.http.send(c.get(&["instance", "connectionState", name]), &what).await?;
    Ok(r.json.get("instance").and_then(|i| i.get("state")).and_then(Value::as_str).unwrap_or("close").to_string())
}

async fn evolution_connect(c: &EvolutionClient, name: &str, phone: Option<&str>) -> Result<Value, ProviderError> {
    let mut rb = c.get(&["instance", "connect", name]);
    if let Some(p) = phone {
        rb = rb.query(&[("number", p)]);
    }
    let what = format!("GET /instance/connect/{name}{}", if phone.is_some() { "?number=…" } else { "" });
    Ok(c.http.send(rb, &what).await?.json)
}

async fn evolution_qr(c: &EvolutionClient, inst: &InstanceRef) -> Result<QrAnswer, ProviderError> {
    // Connect starts a socket on a closed session: only a `connecting` one is
    // read this way (its QR object, side-effect free); a closed one needs the
    // start, which the caller makes once, under the cooldown.
    match evolution_state(c, &inst.name).await?.as_str() {
        "open" => Ok(QrAnswer::Connected),
        "connecting" => Ok(evolution_connect_answer(&evolution_connect(c, &inst.name, None).await?)),
        other => Ok(QrAnswer::NeedsStart(format!("the session is {}", truncate(other, 20)))),
    }
}

async fn evolution_code(c: &EvolutionClient, inst: &InstanceRef, phone: &str) -> Result<CodeAnswer, ProviderError> {
    match evolution_state(c, &inst.name).await?.as_str() {
        "open" => Ok(CodeAnswer::Connected),
        "connecting" => {
            // A socket started with a number asks WhatsApp for a new code at
            // every QR event; one started without ignores the number.
            let v = evolution_connect(c, &inst.name, Some(phone)).await?;
            Ok(match (non_empty(&v, "pairingCode"), evolution_connect_answer(&v)) {
                (_, QrAnswer::Connected) => CodeAnswer::Connected,
                (Some(code), _) => CodeAnswer::Code(code.to_string()),
                (None, _) => CodeAnswer::NotReady(
                    "this server hands out a pairing code only to a session started with the number; scan the QR \
                     code instead"
                        .into(),
                ),
            })
        }
        other => Ok(CodeAnswer::NeedsStart(format!("the session is {}", truncate(other, 20)))),
    }
}

async fn evolution_start(
    c: &EvolutionClient,
    inst: &InstanceRef,
    phone: Option<&str>,
) -> Result<Started, ProviderError> {
    let v = evolution_connect(c, &inst.name, phone).await?;
    let qr = evolution_connect_answer(&v);
    let code = non_empty(&v, "pairingCode").map(str::to_string);
    let detail = format!(
        "GET /instance/connect/{}{} -> {}",
        inst.name,
        if phone.is_some() { "?number=…" } else { "" },
        match (&qr, &code) {
            (QrAnswer::Connected, _) => "already open",
            (_, Some(_)) => "a pairing code",
            (QrAnswer::Png(_) | QrAnswer::Text(_), _) => "a QR code",
            _ => "no QR code yet",
        }
    );
    Ok(Started::Sent(StartAnswer { detail, qr: Some(qr), code }))
}

// ---- WAHA -----------------------------------------------------------------

/// What a WAHA session status means for re-pairing, when it is not
/// `SCAN_QR_CODE` (the one status with a QR code).
fn waha_not_scanning(status: &str) -> QrAnswer {
    match status {
        "WORKING" => QrAnswer::Connected,
        "STOPPED" | "FAILED" => QrAnswer::NeedsStart(format!("the session is {status}")),
        "STARTING" => QrAnswer::Starting,
        other => QrAnswer::NeedsPerson(format!("the session is {}", truncate(other, 40))),
    }
}

async fn waha_status(c: &WahaClient, name: &str) -> Result<String, ProviderError> {
    let r = c.session(name).await?;
    Ok(r.json.get("status").and_then(Value::as_str).unwrap_or("").to_string())
}

/// A WAHA QR answer: PNG bytes (the default), `{mimetype, data}` (asked
/// with `Accept: application/json`), `{value}` (`?format=raw`), or a 422
/// naming the session's status.
pub fn waha_qr_answer(status: u16, content_type: &str, bytes: &[u8]) -> Result<QrAnswer, ProviderError> {
    if (200..300).contains(&status) && content_type.starts_with("image/") {
        return if crate::pairing::is_png(bytes) {
            Ok(QrAnswer::Png(bytes.to_vec()))
        } else {
            Err(ProviderError::new(ErrorClass::BadResponse, format!("a QR image that is not a PNG ({content_type})")))
        };
    }
    let text = String::from_utf8_lossy(bytes);
    if status == 422
        && let Ok(v) = serde_json::from_str::<Value>(&text)
        && let Some(s) = non_empty(&v, "status")
    {
        return Ok(match s {
            "SCAN_QR_CODE" => QrAnswer::Starting,
            other => waha_not_scanning(other),
        });
    }
    let v = classify(status, &text)?;
    if let Some(png) = non_empty(&v, "data").and_then(png_of_data_url) {
        return Ok(QrAnswer::Png(png));
    }
    match non_empty(&v, "value") {
        Some(code) => Ok(QrAnswer::Text(code.to_string())),
        None => Err(ProviderError::new(ErrorClass::BadResponse, "a QR answer with neither `data` nor `value`")),
    }
}

async fn waha_qr(c: &WahaClient, inst: &InstanceRef) -> Result<QrAnswer, ProviderError> {
    let status = waha_status(c, &inst.name).await?;
    if status != "SCAN_QR_CODE" {
        return Ok(waha_not_scanning(&status));
    }
    let what = format!("GET /api/{}/auth/qr", inst.name);
    // WAHA compares the header with exactly this value.
    let rb = c.req(reqwest::Method::GET, &["api", &inst.name, "auth", "qr"]).header("accept", "application/json");
    let r = c.http.send_raw(rb, &what).await?;
    waha_qr_answer(r.status, &r.content_type, &r.bytes)
        .map_err(|e| ProviderError::new(e.class, format!("{what}: {}", e.detail)))
}

async fn waha_code(c: &WahaClient, inst: &InstanceRef, phone: &str) -> Result<CodeAnswer, ProviderError> {
    let status = waha_status(c, &inst.name).await?;
    if status != "SCAN_QR_CODE" {
        return Ok(match waha_not_scanning(&status) {
            QrAnswer::Connected => CodeAnswer::Connected,
            QrAnswer::NeedsStart(why) => CodeAnswer::NeedsStart(why),
            QrAnswer::NotReady(why) | QrAnswer::NeedsPerson(why) => CodeAnswer::NotReady(why),
            QrAnswer::Starting => CodeAnswer::NotReady("the provider is starting the session".into()),
            QrAnswer::Png(_) | QrAnswer::Text(_) => CodeAnswer::NotReady(String::new()),
        });
    }
    let what = format!("POST /api/{}/auth/request-code", inst.name);
    let rb =
        c.req(reqwest::Method::POST, &["api", &inst.name, "auth", "request-code"]).json(&json!({"phoneNumber": phone}));
    let r = c.http.send_raw(rb, &what).await?;
    let text = r.text();
    if r.status == 422 {
        // Not in SCAN_QR_CODE any more, or an engine that cannot: its words.
        let why = serde_json::from_str::<Value>(&text).map(|v| super::http::message_of(&v)).unwrap_or_default();
        return Ok(CodeAnswer::NotReady(truncate(&why, 200)));
    }
    let v = classify(r.status, &text).map_err(|e| ProviderError::new(e.class, format!("{what}: {}", e.detail)))?;
    match non_empty(&v, "code") {
        Some(code) => Ok(CodeAnswer::Code(code.to_string())),
        None => Err(ProviderError::new(ErrorClass::BadResponse, format!("{what}: no `code` in the answer"))),
    }
}

// ---- Z-API ----------------------------------------------------------------

async fn zapi_connected(c: &ZapiClient, inst: &InstanceRef) -> Result<bool, ProviderError> {
    // Z-API does not document what its QR calls answer on a connected
    // instance: ask its status first, as its docs advise.
    Ok(says_connected(&c.call(reqwest::Method::GET, inst, &["status"], None).await?.json))
}

async fn zapi_qr(c: &ZapiClient, inst: &InstanceRef) -> Result<QrAnswer, ProviderError> {
    if zapi_connected(c, inst).await? {
        return Ok(QrAnswer::Connected);
    }
    let v = c.call(reqwest::Method::GET, inst, &["qr-code", "image"], None).await?.json;
    if says_connected(&v) {
        return Ok(QrAnswer::Connected);
    }
    Ok(match non_empty(&v, "value").and_then(png_of_data_url) {
        Some(png) => QrAnswer::Png(png),
        None => QrAnswer::NotReady("the provider has no QR code now".into()),
    })
}

async fn zapi_code(c: &ZapiClient, inst: &InstanceRef, phone: &str) -> Result<CodeAnswer, ProviderError> {
    if zapi_connected(c, inst).await? {
        return Ok(CodeAnswer::Connected);
    }
    let v = c.call(reqwest::Method::GET, inst, &["phone-code", phone], None).await?.json;
    match non_empty(&v, "code").or_else(|| non_empty(&v, "value")) {
        Some(code) => Ok(CodeAnswer::Code(code.to_string())),
        None if says_connected(&v) => Ok(CodeAnswer::Connected),
        None => Err(ProviderError::new(ErrorClass::BadResponse, "GET …/phone-code: no `code` in the answer")),
    }
}

// ---- W-API ----------------------------------------------------------------

async fn wapi_qr(c: &WapiClient, inst: &InstanceRef) -> Result<QrAnswer, ProviderError> {
    let what = format!("GET /instance/qr-code?instanceId={}", inst.name);
    let rb = c.req(reqwest::Method::GET, inst, &["instance", "qr-code"])?.query(&[("image", "disable")]);
    let v = c.http.send(rb, &what).await?.json;
    if says_connected(&v) {
        return Ok(QrAnswer::Connected);
    }
    Ok(match non_empty(&v, "qrcode").and_then(png_of_data_url) {
        Some(png) => QrAnswer::Png(png),
        None => QrAnswer::NotReady("the provider has no QR code now".into()),
    })
}

async fn wapi_code(c: &WapiClient, inst: &InstanceRef, phone: &str) -> Result<CodeAnswer, ProviderError> {
    let what = format!("GET /instance/pairing-code?instanceId={}", inst.name);
    let rb = c.req(reqwest::Method::GET, inst, &["instance", "pairing-code"])?.query(&[("phoneNumber", phone)]);
    let v = c.http.send(rb, &what).await?.json;
    match non_empty(&v, "pairingCode").or_else(|| non_empty(&v, "code")) {
        Some(code) => Ok(CodeAnswer::Code(code.to_string())),
        None if says_connected(&v) => Ok(CodeAnswer::Connected),
        None => Err(ProviderError::new(ErrorClass::BadResponse, format!("{what}: no `pairingCode` in the answer"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_1PX: &str =
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

    #[test]
    fn data_urls_give_their_png_and_nothing_else() {
        let png = png_of_data_url(&format!("data:image/png;base64,{PNG_1PX}")).unwrap();
        assert!(crate::pairing::is_png(&png));
        assert_eq!(png_of_data_url(PNG_1PX), Some(png));
        assert_eq!(png_of_data_url("data:image/png;base64,AAAA"), None, "not a PNG");
        assert_eq!(png_of_data_url("data:text/plain,hello"), None);
    }

    #[test]
    fn evolution_connect_answers() {
        let qr = json!({"pairingCode": null, "code": "2@abc", "base64": format!("data:image/png;base64,{PNG_1PX}"), "count": 1});
        assert!(matches!(evolution_connect_answer(&qr), QrAnswer::Png(_)));
        let code_only = json!({"pairingCode": null, "code": "2@abc", "count": 1});
        assert_eq!(evolution_connect_answer(&code_only), QrAnswer::Text("2@abc".into()));
        assert!(matches!(evolution_connect_answer(&json!({"count": 0})), QrAnswer::NotReady(_)));
        let open = json!({"instance": {"instanceName": "x", "state": "open"}});
        assert_eq!(evolution_connect_answer(&open), QrAnswer::Connected);
    }

    #[test]
    fn waha_qr_answers() {
        let png = png_of_data_url(PNG_1PX).unwrap();
        assert_eq!(waha_qr_answer(200, "image/png", &png).unwrap(), QrAnswer::Png(png.clone()));
        let json = format!(r#"{{"mimetype":"image/png","data":"{PNG_1PX}"}}"#);
        assert_eq!(waha_qr_answer(200, "application/json", json.as_bytes()).unwrap(), QrAnswer::Png(png));
        assert_eq!(
            waha_qr_answer(200, "application/json", br#"{"value":"2@raw"}"#).unwrap(),
            QrAnswer::Text("2@raw".into())
        );
        let status = |s: &str| {
            format!(
                r#"{{"error":"Session status is not as expected","session":"default","status":"{s}","expected":["SCAN_QR_CODE"]}}"#
            )
        };
        assert_eq!(waha_qr_answer(422, "application/json", status("WORKING").as_bytes()).unwrap(), QrAnswer::Connected);
        assert!(matches!(
            waha_qr_answer(422, "application/json", status("STOPPED").as_bytes()).unwrap(),
            QrAnswer::NeedsStart(_)
        ));
        assert_eq!(waha_qr_answer(500, "text/html", b"<html>").unwrap_err().class, ErrorClass::ServerError);
        assert!(waha_qr_answer(200, "image/png", b"GIF89a").is_err());
    }
}
