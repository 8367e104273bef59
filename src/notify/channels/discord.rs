//! Discord webhook with one embed: colour by severity, fields for the facts.
//! Texts are cut to the embed limits (title 256 characters, description
//! 4,096; field values to 256, which keeps the whole embed under Discord's
//! 6,000): Discord answers 400 to a message with one field over.

use super::http::{DeliveryError, post_json};
use super::{Channel, Rendered, clip};
use crate::config::Secret;
use crate::domain::{Notice, Severity};

pub struct DiscordChannel {
    client: reqwest::Client,
    url: Secret,
}

impl DiscordChannel {
    pub fn new(client: reqwest::Client, url: Secret) -> Self {
        DiscordChannel { client, url }
    }
}

/// Embed limits (Discord's documentation, "Embed Limits").
const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 4096;
/// A field value may be 1,024; 256 keeps title + description + fields +
/// footer under the 6,000 of a whole embed, whatever the names are.
const FIELD_MAX: usize = 256;

pub fn body(notice: &Notice, text: &Rendered) -> serde_json::Value {
    let color = match notice.severity() {
        Severity::Critical => 0xE0_1E_5A,
        Severity::Warning => 0xEC_B2_2E,
        Severity::Info => 0x2E_B6_7D,
    };
    let mut fields =
        vec![serde_json::json!({"name": "provider", "value": clip(&notice.provider, FIELD_MAX), "inline": true})];
    if let Some(i) = &notice.instance {
        fields.push(serde_json::json!({"name": "instance", "value": clip(i, FIELD_MAX), "inline": true}));
    }
    if let Some(t) = &notice.tenant {
        fields.push(serde_json::json!({"name": "tenant", "value": clip(t, FIELD_MAX), "inline": true}));
    }
    // The machine-readable cause and WhatsApp code, as in the webhook JSON.
    if let Some(c) = &notice.cause {
        fields.push(serde_json::json!({"name": "cause", "value": clip(c, FIELD_MAX), "inline": true}));
    }
    if let Some(c) = notice.code {
        fields.push(serde_json::json!({"name": "code", "value": c.to_string(), "inline": true}));
    }
    serde_json::json!({
        "embeds": [{
            "title": clip(&text.title, TITLE_MAX),
            "description": clip(&text.body, DESCRIPTION_MAX),
            "color": color,
            "fields": fields,
            "footer": {"text": clip(&notice.dedup_key, FIELD_MAX)},
            "timestamp": notice.at.rfc3339(),
        }]
    })
}

impl Channel for DiscordChannel {
    async fn send(&self, notice: &Notice, text: &Rendered) -> Result<(), DeliveryError> {
        post_json(&self.client, self.url.expose(), &body(notice, text), &[]).await
    }
}
