//! Slack incoming webhook with Block Kit: a header, the body, and a context
//! line with the dedup key (`text` is the fallback for notifications). Texts
//! are cut to Block Kit's limits (header 150 characters, section text 3,000):
//! Slack refuses a whole message with one field over (`invalid_blocks`).

use super::http::{DeliveryError, post_json};
use super::{Channel, Rendered, clip};
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

/// Block Kit: a `header` block's text.
const HEADER_MAX: usize = 150;
/// Block Kit: a `section` block's text.
const SECTION_MAX: usize = 3000;

/// Slack treats `&`, `<` and `>` as control characters in text: escaped, an
/// instance named `<!channel>` cannot ping a channel or smuggle a link.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Escaped `s` within `max` characters, never ending inside an entity.
fn esc_clip(s: &str, max: usize) -> String {
    let mut out = clip(&esc(s), max);
    if out.ends_with('…')
        && let Some(amp) = out.rfind('&')
        && !out[amp..].contains(';')
    {
        out.truncate(amp);
        out.push('…');
    }
    out
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
            {"type": "header", "text": {"type": "plain_text", "text": clip(&format!("{} — {}", text.title, notice.instance.as_deref().unwrap_or(&notice.provider)), HEADER_MAX)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": esc_clip(&format!("{icon} {}", text.body), SECTION_MAX)}},
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

    #[test]
    fn a_cut_never_splits_an_entity() {
        assert_eq!(super::esc_clip("abcdef<g", 9), "abcdef…");
        assert_eq!(super::esc_clip("ab<", 9), "ab&lt;");
    }
}
