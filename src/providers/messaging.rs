//! Sending a plain text through one instance, and reading back what that
//! instance sent (for the `whatsapp` notifier, `crate::notify::whatsapp`).
//!
//! One [`Messenger`] per ops instance, built from the provider's own config
//! and credentials: Evolution `apikey`, WAHA `X-Api-Key`, Z-API's path token
//! and `Client-Token`, W-API's Bearer instance token. The routes and bodies
//! are those of `tests/fixtures/<provider>/` (and `docs/providers.md`):
//!
//! | kind | send | id kept | look back |
//! |---|---|---|---|
//! | Evolution v2 | `POST /message/sendText/{i}` `{number, text, delay, linkPreview}` | `key.id` | `POST /chat/findMessages/{i}`, by `fromMe` and time window |
//! | Evolution v1 | same route, `{number, options, textMessage: {text}}` | `key.id` | none (v1 searches by message id only) |
//! | WAHA | `POST /api/sendText` `{session, chatId: <digits>@c.us, text, linkPreview}` | `id` (engine-dependent) | `GET /api/{s}/chats/{chatId}/messages?filter.fromMe=true&filter.timestamp.gte=` |
//! | Z-API | `POST …/send-text` `{phone, message, delayMessage}` | `messageId` | none |
//! | W-API | `POST /message/send-text?instanceId=` `{phone, message, delayMessage}` | `messageId` | none |
//!
//! None of them takes an idempotency key. A send that failed before the
//! request left (connection refused) or that the provider answered with an
//! error did not send anything ([`SendError::may_have_sent`] is false); a
//! timeout, a connection cut mid-request or a gateway's 502/504 may have
//! sent it. The caller looks back ([`Messenger::sent_between`]) before it
//! sends again, where the provider can tell.

use std::time::Duration;

use serde_json::{Value, json};

use super::evolution::{EvoVersion, EvolutionClient};
use super::http::{Http, classify, read_capped, transport_error};
use super::{ErrorClass, InstanceRef, ProviderError, truncate};
use crate::config::{ProviderConfig, ProviderKind, Secret};
use crate::domain::Ts;

/// The provider took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The provider's (WhatsApp's) message id, when its answer carries one
    /// (WAHA's WEBJS engine once answered an empty 201).
    pub id: Option<String>,
}

/// A send that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct SendError {
    pub error: ProviderError,
    /// The request may have reached the provider and been sent (a timeout, a
    /// connection cut mid-request, a gateway's 502/504): the outcome is not
    /// known. False when nothing can have been sent: the connection was
    /// refused, or the provider answered with an error.
    pub may_have_sent: bool,
}

/// One message the instance sent, as the provider lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub id: String,
    pub text: String,
}

/// Sends texts through one instance of one provider.
#[derive(Debug)]
pub struct Messenger {
    kind: ProviderKind,
    http: Http,
    api_key: Option<Secret>,
    client_token: Option<Secret>,
    inst: InstanceRef,
    /// Evolution: the version decides the body (v1 or v2).
    evolution: Option<EvolutionClient>,
}

/// How a recipient from the config is addressed by each provider: E.164
/// digits, or a group id in the provider's own form (`…@g.us`, Z-API's
/// `…-group`). WAHA wants a chat id: digits become `<digits>@c.us`.
pub fn chat_address(kind: ProviderKind, to: &str) -> String {
    match kind {
        ProviderKind::Waha if to.bytes().all(|b| b.is_ascii_digit()) => format!("{to}@c.us"),
        _ => to.to_string(),
    }
}

/// The message id of a send answer, wherever the provider put it: Evolution
/// and WAHA NOWEB (Baileys) `key.id`; WAHA `id` as a string or
/// `id._serialized` (WEBJS), or under `_data`; Z-API and W-API `messageId`.
pub fn message_id_of(v: &Value) -> Option<String> {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    s(v.get("messageId"))
        .or_else(|| s(v.get("id")))
        .or_else(|| s(v.get("id").and_then(|i| i.get("_serialized"))))
        .or_else(|| s(v.get("key").and_then(|k| k.get("id"))))
        .or_else(|| s(v.pointer("/_data/id/_serialized")))
        .or_else(|| s(v.pointer("/_data/key/id")))
}

/// The text of a stored Evolution message (`conversation` or `extendedTextMessage.text`).
fn evolution_text(record: &Value) -> Option<String> {
    let m = record.get("message")?;
    m.get("conversation")
        .or_else(|| m.get("extendedTextMessage").and_then(|e| e.get("text")))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Answers larger than this from a send are refused (they are a few KiB).
const SEND_REPLY_LIMIT: usize = 64 * 1024;

impl Messenger {
    pub fn new(cfg: &ProviderConfig, inst: InstanceRef, timeout: Duration) -> Result<Self, ProviderError> {
        let evolution = match cfg.kind {
            ProviderKind::Evolution => Some(EvolutionClient::new(cfg, timeout)?),
            _ => None,
        };
        Ok(Messenger {
            kind: cfg.kind,
            http: Http::new(&cfg.base_url, timeout)?,
            api_key: cfg.api_key.clone(),
            client_token: cfg.client_token.clone(),
            inst,
            evolution,
        })
    }

    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    pub fn instance(&self) -> &str {
        &self.inst.name
    }

    fn header(rb: reqwest::RequestBuilder, name: &str, secret: Option<&Secret>) -> reqwest::RequestBuilder {
        match secret.and_then(|k| reqwest::header::HeaderValue::from_str(k.expose()).ok()) {
            Some(mut v) => {
                v.set_sensitive(true);
                rb.header(name, v)
            }
            None => rb,
        }
    }

    fn token(&self) -> Result<&Secret, ProviderError> {
        self.inst
            .token
            .as_ref()
            .or(match self.kind {
                ProviderKind::Wapi => self.api_key.as_ref(),
                _ => None,
            })
            .ok_or_else(|| {
                ProviderError::new(
                    ErrorClass::Unauthorized,
                    format!(
                        "no token configured for instance {}: set its `token_env` in [[instances]]",
                        self.inst.name
                    ),
                )
            })
    }

    /// Z-API: `{base}/instances/{id}/token/{token}/{method}`, described without the token.
    fn zapi(&self, method: reqwest::Method, path: &str) -> Result<(reqwest::RequestBuilder, String), ProviderError> {
        let token = self.token()?;
        let what = format!("{method} /instances/{}/token/…/{path}", self.inst.name);
        let url = self.http.url(&["instances", &self.inst.name, "token", token.expose(), path]);
        let rb = Self::header(self.http.client().request(method, url), "client-token", self.client_token.as_ref());
        Ok((rb, what))
    }

    /// Scrub the instance token from anything that may echo the URL back.
    fn scrub(&self, s: String) -> String {
        match (&self.inst.token, self.kind) {
            (Some(t), ProviderKind::Zapi) => s.replace(t.expose(), "[token]"),
            _ => s,
        }
    }

    /// Send `text` to `to` (a recipient as configured: digits or a group id).
    pub async fn send_text(&self, to: &str, text: &str) -> Result<Accepted, SendError> {
        let not_sent = |error: ProviderError| SendError { error, may_have_sent: false };
        let (rb, what) = match self.kind {
            ProviderKind::Evolution => {
                let evo = self.evolution.as_ref().expect("an Evolution messenger has its client");
                let v = evo.version().await.map_err(not_sent)?;
                let body = match v {
                    EvoVersion::V2 => json!({"number": to, "text": text, "delay": 0, "linkPreview": false}),
                    EvoVersion::V1 => json!({"number": to, "options": {"delay": 0, "linkPreview": false},
                                             "textMessage": {"text": text}}),
                };
                let url = self.http.url(&["message", "sendText", &self.inst.name]);
                let rb = Self::header(self.http.client().post(url), "apikey", self.api_key.as_ref()).json(&body);
                (rb, format!("POST /message/sendText/{}", self.inst.name))
            }
            ProviderKind::Waha => {
                let body = json!({"session": self.inst.name, "chatId": chat_address(self.kind, to), "text": text,
                                  "linkPreview": false});
                let url = self.http.url(&["api", "sendText"]);
                let rb = Self::header(self.http.client().post(url), "x-api-key", self.api_key.as_ref()).json(&body);
                (rb, "POST /api/sendText".to_string())
            }
            ProviderKind::Zapi => {
                let (rb, what) = self.zapi(reqwest::Method::POST, "send-text").map_err(not_sent)?;
                (rb.json(&json!({"phone": to, "message": text, "delayMessage": 1})), what)
            }
            ProviderKind::Wapi => {
                let token = self.token().map_err(not_sent)?;
                let rb = self
                    .http
                    .client()
                    .post(self.http.url(&["message", "send-text"]))
                    .query(&[("instanceId", self.inst.name.as_str())])
                    .bearer_auth(token.expose())
                    .json(&json!({"phone": to, "message": text, "delayMessage": 1}));
                (rb, format!("POST /message/send-text?instanceId={}", self.inst.name))
            }
        };
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => {
                // Refused before the request left: nothing was sent. Any
                // other transport failure (a timeout, a reset) may have sent it.
                let may_have_sent = !e.is_connect();
                let error = transport_error(&what, e);
                return Err(SendError {
                    error: ProviderError::new(error.class, self.scrub(error.detail)),
                    may_have_sent,
                });
            }
        };
        let status = resp.status().as_u16();
        let body = read_capped(resp, &what, status)
            .await
            .map_err(|e| SendError { error: ProviderError::new(e.class, self.scrub(e.detail)), may_have_sent: true })?;
        if (200..300).contains(&status) && body.trim().is_empty() {
            return Ok(Accepted { id: None });
        }
        let body = truncate(&body, SEND_REPLY_LIMIT);
        match classify(status, &body) {
            Ok(json) => Ok(Accepted { id: message_id_of(&json) }),
            Err(e) => Err(SendError {
                error: ProviderError::new(e.class, self.scrub(format!("{what}: {}", e.detail))),
                // A gateway that gave up waiting says nothing about the provider behind it.
                may_have_sent: matches!(status, 502 | 504),
            }),
        }
    }

    /// The messages this instance sent to `to` between `from` and `until`, as
    /// far as the provider stores them (Evolution v2 with
    /// `DATABASE_SAVE_DATA_NEW_MESSAGE`, WAHA engines that keep messages).
    /// `None`: this provider (or version) cannot tell.
    pub async fn sent_between(&self, to: &str, from: Ts, until: Ts) -> Result<Option<Vec<SentMessage>>, ProviderError> {
        match self.kind {
            ProviderKind::Evolution => {
                let evo = self.evolution.as_ref().expect("an Evolution messenger has its client");
                if evo.version().await? == EvoVersion::V1 {
                    return Ok(None);
                }
                // Not filtered by chat: Evolution may store the chat as `@lid`
                // or with a Brazilian number's ninth digit normalised away.
                // Every text carries a reference of its own recipient instead.
                let body = json!({
                    "where": {"key": {"fromMe": true},
                              "messageTimestamp": {"gte": from.rfc3339(), "lte": until.rfc3339()}},
                    "offset": 100, "page": 1,
                });
                let what = format!("POST /chat/findMessages/{}", self.inst.name);
                let url = self.http.url(&["chat", "findMessages", &self.inst.name]);
                let rb = Self::header(self.http.client().post(url), "apikey", self.api_key.as_ref()).json(&body);
                let r = self.http.send(rb, &what).await?;
                let records = r
                    .json
                    .pointer("/messages/records")
                    .and_then(Value::as_array)
                    .or_else(|| r.json.as_array())
                    .ok_or_else(|| {
                        ProviderError::new(
                            ErrorClass::BadResponse,
                            format!("{what}: no `messages.records` in the answer"),
                        )
                    })?;
                Ok(Some(
                    records
                        .iter()
                        .filter_map(|m| {
                            // `id` is the database row's; the WhatsApp id is `key.id`.
                            let id = m.pointer("/key/id").and_then(Value::as_str).unwrap_or_default().to_string();
                            Some(SentMessage { id, text: evolution_text(m)? })
                        })
                        .collect(),
                ))
            }
            ProviderKind::Waha => {
                let chat = chat_address(self.kind, to);
                let what = format!("GET /api/{}/chats/{chat}/messages", self.inst.name);
                let url = self.http.url(&["api", &self.inst.name, "chats", &chat, "messages"]);
                let since = (from.0 / 1000).to_string();
                let rb = Self::header(self.http.client().get(url), "x-api-key", self.api_key.as_ref()).query(&[
                    ("limit", "100"),
                    ("downloadMedia", "false"),
                    ("filter.fromMe", "true"),
                    ("filter.timestamp.gte", since.as_str()),
                ]);
                let r = self.http.send(rb, &what).await?;
                let list = r.json.as_array().ok_or_else(|| {
                    ProviderError::new(ErrorClass::BadResponse, format!("{what}: the answer is not a list"))
                })?;
                Ok(Some(
                    list.iter()
                        .filter(|m| m.get("timestamp").and_then(Value::as_i64).is_none_or(|t| t * 1000 <= until.0))
                        .filter_map(|m| {
                            let text = m.get("body").and_then(Value::as_str)?.to_string();
                            Some(SentMessage { id: message_id_of(m).unwrap_or_default(), text })
                        })
                        .collect(),
                ))
            }
            ProviderKind::Zapi | ProviderKind::Wapi => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_read_wherever_each_provider_puts_them() {
        let cases = [
            (json!({"key": {"id": "3EB0"}, "status": "PENDING"}), Some("3EB0")),
            (json!({"id": "true_5511@c.us_3EB0", "_data": {"key": {"id": "3EB0"}}}), Some("true_5511@c.us_3EB0")),
            (json!({"id": {"_serialized": "true_5511@c.us_AB"}}), Some("true_5511@c.us_AB")),
            (json!({"_data": {"id": {"_serialized": "x"}}}), Some("x")),
            (json!({"zaapId": "Z", "messageId": "M", "id": "M"}), Some("M")),
            (json!({"instanceId": "I", "messageId": "M2", "insertedId": "Q"}), Some("M2")),
            (json!({}), None),
        ];
        for (v, want) in cases {
            assert_eq!(message_id_of(&v).as_deref(), want, "{v}");
        }
    }

    #[test]
    fn waha_addresses_numbers_as_chat_ids_and_keeps_groups() {
        assert_eq!(chat_address(ProviderKind::Waha, "5511988887777"), "5511988887777@c.us");
        assert_eq!(chat_address(ProviderKind::Waha, "120363025246125486@g.us"), "120363025246125486@g.us");
        assert_eq!(chat_address(ProviderKind::Evolution, "5511988887777"), "5511988887777");
        assert_eq!(chat_address(ProviderKind::Zapi, "120363019502650977-group"), "120363019502650977-group");
    }
}
