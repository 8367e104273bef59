//! Slack incoming webhook with Block Kit: a header, the body, and a context
//! line with the dedup key (`text` is the fallback for notifications).

use super::http::{DeliveryError, post_json};
use super::{Channel, Rendered};
use crate::config::Secret;
use crate::domain::{Notice, Severity};

pub struct SlackChannel {
    client: reqwest::Client,
    url: Secret,
}

impl SlackChannel {
    pub fn new(client: reqwest::Client, url: Secret) -> Self {
        SlackChannel { client, url }
    }
}

/// Slack treats `&`, `<` and `>` as control characters in text: escaped, an
/// instance named `<!channel>` cannot ping a channel or smuggle a link.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

pub fn body(notice: &Notice, text: &Rendered) -> serde_json::Value {
    let icon = match notice.severity() {
        Severity::Critical => ":red_circle:",
        Severity::Warning => ":warning:",
        Severity::Info => ":large_green_circle:",
    };
    serde_json::json!({
        "text": format!("{icon} {}", esc(&text.summary)),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": format!("{} — {}", text.title, notice.instance.as_deref().unwrap_or(&notice.provider))}},
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("{icon} {}", esc(&text.body))}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("`{}` · wa-sentinel", esc(&notice.dedup_key))}]}
        ]
    })
}

impl Channel for SlackChannel {
    async fn send(&self, notice: &Notice, text: &Rendered) -> Result<(), DeliveryError> {
        post_json(&self.client, self.url.expose(), &body(notice, text), &[]).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(super::esc("<!channel> & <https://x|y>"), "&lt;!channel&gt; &amp; &lt;https://x|y&gt;");
    }
}
