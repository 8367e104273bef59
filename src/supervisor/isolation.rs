//! Self-protection: when wa-sentinel itself seems cut off, provider verdicts
//! are held and one `sentinel_isolated` notice goes out; the heartbeat URL is
//! pinged after healthy cycles.

use std::collections::HashMap;

use super::{Supervisor, SupervisorError};
use crate::domain::provider::CycleSummary;
use crate::domain::{Notice, NoticeKind, ProviderErrorKind, Ts};

impl Supervisor {
    /// Self-protection (Gatus' connectivity-check idea): with at least two
    /// providers, all of them failing every call while the receiver has had no
    /// webhook for `selfcheck.quiet_after` means *we* are probably cut off.
    pub(super) fn isolated(
        &self,
        summaries: &HashMap<String, (CycleSummary, HashMap<ProviderErrorKind, u32>)>,
        now: Ts,
    ) -> bool {
        let all_failed =
            summaries.len() >= 2 && summaries.values().all(|(s, _)| s.calls > 0 && s.provider_errors == s.calls);
        let quiet = self.index.last_traffic().is_none_or(|t| now.since(t) >= self.cfg.selfcheck.quiet_after);
        all_failed && quiet
    }

    /// One `sentinel_isolated` notice per episode (the episode lives in memory:
    /// a restart during an isolation may announce it once more).
    pub(super) async fn announce_isolation(&self, now: Ts) -> Result<u32, SupervisorError> {
        let id = {
            let mut g = self.isolation.lock().expect("isolation lock");
            if g.is_some() {
                return Ok(0);
            }
            let id = uuid::Uuid::now_v7().to_string();
            *g = Some(id.clone());
            id
        };
        tracing::error!(episode = %id, "no provider answers and no webhook arrives: suspecting our own network; provider verdicts held");
        let quiet = crate::domain::time::human_duration(self.cfg.selfcheck.quiet_after);
        let n = Notice {
            kind: NoticeKind::SentinelIsolated,
            provider: "wa-sentinel".into(),
            instance: None,
            tenant: None,
            outage_id: id.clone(),
            started_at: now,
            at: now,
            reason: format!("{} providers unreachable, no webhook for {quiet}", self.providers.len()),
            restart_attempts: 0,
            max_attempts: 0,
            recovered_by: None,
            sequence: 0,
            dedup_key: crate::domain::notice::dedup_key(&id, NoticeKind::SentinelIsolated, 0),
        };
        let outbox = self.route(&[&n]);
        self.store.enqueue(&outbox, now).await?;
        self.store
            .record_event(None, "wa-sentinel", "sentinel_isolated", &serde_json::json!({"episode": id}), now)
            .await?;
        Ok(1)
    }

    /// The dead-man's switch: tell `selfcheck.heartbeat_url` this cycle was healthy.
    pub(super) async fn heartbeat(&self) {
        let Some(url) = &self.cfg.selfcheck.heartbeat_url else { return };
        let res = self.http.get(url.expose()).send().await;
        match res {
            Ok(r) if r.status().is_success() => tracing::debug!("heartbeat sent"),
            Ok(r) => tracing::warn!(status = %r.status(), "heartbeat URL answered an error"),
            Err(e) => tracing::warn!(error = %e.without_url(), "heartbeat failed"),
        }
    }
}
