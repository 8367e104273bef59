//! Discord webhook with one embed: colour by severity, fields for the facts.

use super::http::{DeliveryError, post_json};
use super::{Channel, Rendered};
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

pub fn body(notice: &Notice, text: &Rendered) -> serde_json::Value {
    let color = match notice.severity() {
        Severity::Critical => 0xE0_1E_5A,
        Severity::Warning => 0xEC_B2_2E,
        Severity::Info => 0x2E_B6_7D,
    };
    let mut fields = vec![serde_json::json!({"name": "provider", "value": notice.provider, "inline": true})];
    if let Some(i) = &notice.instance {
        fields.push(serde_json::json!({"name": "instance", "value": i, "inline": true}));
    }
    if let Some(t) = &notice.tenant {
        fields.push(serde_json::json!({"name": "tenant", "value": t, "inline": true}));
    }
    serde_json::json!({
        "embeds": [{
            "title": text.title,
            "description": text.body,
            "color": color,
            "fields": fields,
            "footer": {"text": notice.dedup_key},
            "timestamp": notice.at.rfc3339(),
        }]
    })
}

impl Channel for DiscordChannel {
    async fn send(&self, notice: &Notice, text: &Rendered) -> Result<(), DeliveryError> {
        post_json(&self.client, self.url.expose(), &body(notice, text), &[]).await
    }
}
