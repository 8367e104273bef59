//! The notification channels (docs/http-api.md#notices), each a small module behind one trait,
//! [`Channel`]; [`Notifier`] holds whichever one a `[[notifiers]]` entry names.

mod discord;
mod email;
mod http;
mod log;
mod slack;
mod telegram;
mod webhook;

use std::future::Future;
use std::time::Duration;

pub use http::DeliveryError;
pub(crate) use http::post_bytes;
pub use webhook::signature as webhook_signature;

use super::render::Rendered;
use super::whatsapp::WhatsAppChannel;
use crate::config::{Config, NotifierConfig, NotifierTarget};
use crate::domain::Notice;

/// `s` cut to at most `max` characters, ending in `…` when cut. Characters
/// are counted as UTF-16 code units, the strictest way the channels count
/// (Discord measures JavaScript string lengths), so the result fits whichever
/// way a channel counts.
pub fn clip(s: &str, max: usize) -> String {
    if s.encode_utf16().count() <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 1; // the ellipsis
    for c in s.chars() {
        used += c.len_utf16();
        if used > max {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// One way of telling people.
pub trait Channel {
    /// Deliver one notice. A retried delivery is called with the same notice
    /// (same dedup key).
    fn send(&self, notice: &Notice, text: &Rendered) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}

/// A configured notifier, ready to send.
pub enum Notifier {
    Webhook(webhook::WebhookChannel),
    Slack(slack::SlackChannel),
    Discord(discord::DiscordChannel),
    Telegram(telegram::TelegramChannel),
    Email(email::EmailChannel),
    /// Delivered a group at a time by the outbox worker (`notify::whatsapp`).
    WhatsApp(Box<WhatsAppChannel>),
    Log(log::LogChannel),
}

impl Notifier {
    /// Build the channel of one `[[notifiers]]` entry of `all`. `timeout` bounds each delivery.
    pub fn new(cfg: &NotifierConfig, all: &Config, timeout: Duration) -> Result<Notifier, DeliveryError> {
        let lang = all.alerts.language;
        crate::tls::install_crypto();
        let client = || {
            let tls = crate::tls::client_config().map_err(DeliveryError::permanent)?;
            reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .timeout(timeout)
                .user_agent(concat!("wa-sentinel/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| DeliveryError::permanent(format!("cannot build the HTTP client: {e}")))
        };
        Ok(match &cfg.target {
            NotifierTarget::Webhook { url, secret } => {
                Notifier::Webhook(webhook::WebhookChannel::new(client()?, url.clone(), secret.clone(), lang))
            }
            NotifierTarget::Slack { url } => Notifier::Slack(slack::SlackChannel::new(client()?, url.clone())),
            NotifierTarget::Discord { url } => Notifier::Discord(discord::DiscordChannel::new(client()?, url.clone())),
            NotifierTarget::Telegram { bot_token, chat_id, api_base } => Notifier::Telegram(
                telegram::TelegramChannel::new(client()?, bot_token.clone(), chat_id.clone(), api_base.clone()),
            ),
            NotifierTarget::Email { .. } => Notifier::Email(email::EmailChannel::new(&cfg.target, timeout)?),
            NotifierTarget::WhatsApp { .. } => Notifier::WhatsApp(Box::new(WhatsAppChannel::new(cfg, all, timeout)?)),
            NotifierTarget::Log => Notifier::Log(log::LogChannel::new(cfg.name.clone())),
        })
    }

    pub async fn send(&self, notice: &Notice, text: &Rendered) -> Result<(), DeliveryError> {
        match self {
            Notifier::Webhook(c) => c.send(notice, text).await,
            Notifier::Slack(c) => c.send(notice, text).await,
            Notifier::Discord(c) => c.send(notice, text).await,
            Notifier::Telegram(c) => c.send(notice, text).await,
            Notifier::Email(c) => c.send(notice, text).await,
            Notifier::WhatsApp(_) => Err(DeliveryError::permanent(
                "a whatsapp notifier delivers through its outbox worker's group delivery, not one notice at a time",
            )),
            Notifier::Log(c) => c.send(notice, text).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn clip_counts_utf16_units_and_marks_the_cut() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("abcdefghij", 10), "abcdefghij");
        assert_eq!(clip("abcdefghijk", 10), "abcdefghi…");
        // An emoji is two UTF-16 units: it does not fit in the last one.
        let cut = clip("abcdefgh😀xyz", 10);
        assert_eq!(cut, "abcdefgh…");
        assert!(cut.encode_utf16().count() <= 10);
    }
}
