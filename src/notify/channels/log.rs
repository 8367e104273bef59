//! The console: one structured tracing event per notice. The default notifier
//! when none is configured, so `demo` shows notices on the terminal.

use super::http::DeliveryError;
use super::{Channel, Rendered};
use crate::domain::{Notice, Severity};

pub struct LogChannel {
    name: String,
}

impl LogChannel {
    pub fn new(name: String) -> Self {
        LogChannel { name }
    }
}

impl Channel for LogChannel {
    async fn send(&self, notice: &Notice, text: &Rendered) -> Result<(), DeliveryError> {
        let (kind, key, notifier) = (notice.kind.as_str(), notice.dedup_key.as_str(), self.name.as_str());
        let (cause, code) = (notice.cause.as_deref(), notice.code);
        match notice.severity() {
            Severity::Critical => {
                tracing::warn!(target: "wa_sentinel::notice", notifier, kind, cause, code, dedup_key = key, "NOTICE {}", text.summary)
            }
            _ => {
                tracing::info!(target: "wa_sentinel::notice", notifier, kind, cause, code, dedup_key = key, "NOTICE {}", text.summary)
            }
        }
        Ok(())
    }
}
