//! Telegram Bot API `sendMessage` to one chat. The bot token is part of the
//! URL, so errors never carry the URL. The text is cut to the 4,096
//! characters `sendMessage` takes (over it: 400 "message is too long").

use super::http::{DeliveryError, post_json};
use super::{Channel, Rendered, clip};
use crate::config::Secret;
use crate::domain::Notice;

pub struct TelegramChannel {
    client: reqwest::Client,
    bot_token: Secret,
    chat_id: String,
    api_base: String,
}

impl TelegramChannel {
    pub fn new(client: reqwest::Client, bot_token: Secret, chat_id: String, api_base: String) -> Self {
        TelegramChannel { client, bot_token, chat_id, api_base: api_base.trim_end_matches('/').to_string() }
    }
}

/// `sendMessage`: "Text of the message to be sent, 1-4096 characters".
const TEXT_MAX: usize = 4096;

pub fn body(chat_id: &str, text: &Rendered) -> serde_json::Value {
    serde_json::json!({
        "chat_id": chat_id,
        "text": clip(&format!("{}\n\n{}", text.title, text.body), TEXT_MAX),
        "disable_web_page_preview": true,
    })
}

impl Channel for TelegramChannel {
    async fn send(&self, _notice: &Notice, text: &Rendered) -> Result<(), DeliveryError> {
        let url = format!("{}/bot{}/sendMessage", self.api_base, self.bot_token.expose());
        post_json(&self.client, &url, &body(&self.chat_id, text), &[]).await
    }
}
