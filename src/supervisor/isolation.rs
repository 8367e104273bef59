//! Self-protection: when wa-sentinel itself seems cut off, provider verdicts
//! are held and one `sentinel_isolated` notice goes out; the heartbeat URL is
//! pinged after healthy cycles.

use std::time::Duration;

use super::{Supervisor, SupervisorError};
use crate::domain::{Notice, NoticeKind, Ts};

impl Supervisor {
    /// Self-protection (Gatus' connectivity-check idea): with at least two
    /// providers, all of them failing every call while the receiver has had no
    /// webhook for `selfcheck.quiet_after` means *we* are probably cut off.
    pub(super) fn isolated(&self, now: Ts) -> bool {
        let summaries = self.summaries.lock().expect("summaries lock");
        let all_failed =
            summaries.len() >= 2 && summaries.values().all(|s| s.calls > 0 && s.provider_errors == s.calls);
        all_failed && self.receiver_quiet(now)
    }

    /// No webhook reached the receiver for `selfcheck.quiet_after`.
    pub(super) fn receiver_quiet(&self, now: Ts) -> bool {
        self.index.last_traffic().is_none_or(|t| now.since(t) >= self.cfg.selfcheck.quiet_after)
    }

    /// Wait until the other providers' running pipelines have finished, at
    /// most one `request_timeout` and a second: the self-isolation check
    /// compares one round of every provider, and a hanging provider (whose
    /// breaker bounds its cycle) cannot hold this one back for long.
    pub(super) async fn await_other_pipelines(&self, me: &str) {
        let deadline = tokio::time::Instant::now() + self.cfg.supervisor.request_timeout + Duration::from_secs(1);
        let busy = || {
            self.cfg
                .providers
                .iter()
                .filter(|p| p.name != me)
                .any(|p| self.ticks().provider(&p.name).started.load(std::sync::atomic::Ordering::Relaxed) != 0)
        };
        while busy() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
            outage_id: Some(id.clone()),
            started_at: now,
            at: now,
            reason: format!("{} providers unreachable, no webhook for {quiet}", self.providers.len()),
            cause: None,
            code: None,
            restart_attempts: 0,
            max_attempts: 0,
            recovered_by: None,
            sequence: 0,
            dedup_key: crate::domain::notice::dedup_key(&id, NoticeKind::SentinelIsolated, 0),
            remediation: None,
            pair_url: None,
        };
        let outbox = self.route(&[&n]);
        self.store.enqueue(&outbox, now).await?;
        self.store
            .record_event(None, "wa-sentinel", "sentinel_isolated", &serde_json::json!({"episode": id}), now)
            .await?;
        Ok(1)
    }

    /// The dead-man's switch: tell `selfcheck.heartbeat_url` a cycle was healthy
    /// (at most once per 10 s, however many providers finish their cycles).
    pub(super) async fn heartbeat(&self) {
        let Some(url) = &self.cfg.selfcheck.heartbeat_url else { return };
        let now = self.now().0;
        let last = self.last_heartbeat.load(std::sync::atomic::Ordering::Relaxed);
        if now - last < 10_000
            || self
                .last_heartbeat
                .compare_exchange(last, now, std::sync::atomic::Ordering::AcqRel, std::sync::atomic::Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let res = self.http.get(url.expose()).send().await;
        match res {
            Ok(r) if r.status().is_success() => tracing::debug!("heartbeat sent"),
            Ok(r) => tracing::warn!(status = %r.status(), "heartbeat URL answered an error"),
            Err(e) => tracing::warn!(error = %e.without_url(), "heartbeat failed"),
        }
    }
}
