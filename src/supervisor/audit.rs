//! The webhook audit (rule 8): read each instance's webhook config, re-apply
//! the desired one where it is missing, disabled, elsewhere or lacks events.
//! An instance in maintenance is hands-off (rule 16): its drift is read and
//! reported (event `webhook_drift`, `webhook_ok = false` on the status page)
//! but not written; the first audit after maintenance repairs it.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tracing::Instrument;

use super::{Supervisor, SupervisorError};
use crate::domain::gate::gate;
use crate::domain::{Health, InstanceKey, Notice, NoticeKind};
use crate::providers::{Provider, ProviderError, WebhookRepair};
use crate::store::InstanceFilter;

impl Supervisor {
    /// Read every instance's webhook config and re-apply the desired one where it
    /// is missing, disabled, elsewhere, or lacks events (rule 8). Operator-added
    /// events are kept by the providers' diff-based apply.
    pub async fn webhook_audit(self: &Arc<Self>) -> Result<AuditReport, SupervisorError> {
        let Some(base) = self.cfg.server.public_url.clone() else {
            tracing::debug!("webhook audit skipped: server.public_url is not set");
            return Ok(AuditReport::default());
        };
        let records = self.store.instances(&InstanceFilter::default()).await?;
        let mut set = tokio::task::JoinSet::new();
        // Bounded like the poll: at most `concurrency` audit tasks exist at once.
        let live = Arc::new(Semaphore::new(self.cfg.supervisor.concurrency.max(1)));
        // Each provider's instances are audited by its leader only.
        for rec in records.into_iter().filter(|r| r.state.health != Health::Missing && self.leads(&r.key.provider)) {
            let Some(h) = self.providers.get(&rec.key.provider).cloned() else { continue };
            let p = self.cfg.providers.iter().find(|p| p.name == rec.key.provider).expect("configured").clone();
            let url = format!("{base}/webhooks/{}/{}", p.name, p.webhook_token.expose());
            let me = self.clone();
            let span = tracing::info_span!("audit", provider = %rec.key.provider, instance = %rec.key.name);
            let slot = live.clone().acquire_owned().await.expect("never closed");
            set.spawn(
                async move {
                    let _slot = slot;
                    let may_write = gate(rec.state.maintenance_until, me.now(), true).act;
                    let res = {
                        let _p = h.calls.acquire().await.expect("open");
                        let _g = me.global.acquire().await.expect("open");
                        let inst = me.instance_ref(&rec.key);
                        if may_write {
                            h.client.apply_webhook(&inst, &url, &me.cfg.webhook).await.map(Audited::Applied)
                        } else {
                            h.client.check_webhook(&inst, &url, &me.cfg.webhook).await.map(Audited::Held)
                        }
                    };
                    (rec, res)
                }
                .instrument(span),
            );
        }
        let mut report = AuditReport::default();
        let mut notices = Vec::new();
        while let Some(j) = set.join_next().await {
            let (rec, res) = j.expect("audit task does not panic");
            let now = self.now();
            let (ok, kind, detail) = match &res {
                Ok(Audited::Applied(WebhookRepair::AlreadyOk)) => {
                    report.ok += 1;
                    (true, None, String::new())
                }
                Ok(Audited::Held(reasons)) if reasons.is_empty() => {
                    report.ok += 1;
                    (true, None, String::new())
                }
                Ok(Audited::Held(reasons)) => {
                    report.drifted += 1;
                    (
                        false,
                        Some("webhook_drift"),
                        format!("{}; not repaired: the instance is in maintenance", reasons.join("; ")),
                    )
                }
                Ok(Audited::Applied(WebhookRepair::Repaired { reasons })) => {
                    report.repaired += 1;
                    (true, Some("webhook_repaired"), reasons.join("; "))
                }
                Ok(Audited::Applied(WebhookRepair::Mismatch { detail })) => {
                    report.mismatched += 1;
                    (false, Some("webhook_mismatch"), detail.clone())
                }
                Err(e) => {
                    report.failed += 1;
                    (false, Some("webhook_audit_failed"), audit_failure(e))
                }
            };
            self.store.set_webhook_check(&rec.id, ok, now).await?;
            if let Some(kind) = kind {
                crate::events::webhook_audit(&rec.key, kind, &detail);
                self.store
                    .record_event(Some(&rec.id), &rec.key.provider, kind, &serde_json::json!({"detail": detail}), now)
                    .await?;
            }
            if kind == Some("webhook_repaired") {
                metrics::counter!("wa_sentinel_webhook_repairs_total", "provider" => rec.key.provider.clone())
                    .increment(1);
                notices.push(Notice {
                    kind: NoticeKind::WebhookRepaired,
                    provider: rec.key.provider.clone(),
                    instance: Some(rec.key.name.clone()),
                    tenant: Some(rec.tenant.clone()),
                    outage_id: None,
                    started_at: now,
                    at: now,
                    reason: detail,
                    cause: None,
                    code: None,
                    restart_attempts: 0,
                    max_attempts: 0,
                    recovered_by: None,
                    sequence: 0,
                    dedup_key: crate::domain::notice::repair_dedup_key(&rec.id, now),
                    remediation: None,
                    pair_url: None,
                });
            }
        }
        let refs: Vec<&Notice> = notices.iter().collect();
        let outbox = self.route(&refs);
        if !outbox.is_empty() {
            self.store.enqueue(&outbox, self.now()).await?;
            self.wake_outbox();
        }
        tracing::info!(
            ok = report.ok,
            repaired = report.repaired,
            mismatched = report.mismatched,
            failed = report.failed,
            drifted = report.drifted,
            "webhook audit done"
        );
        Ok(report)
    }
}

impl Supervisor {
    /// Re-apply the desired webhook config to one instance now (an operator's
    /// action: maintenance does not hold it back, as it does not hold back a
    /// manual restart). Recorded like an audit's finding; returns what was done.
    pub async fn reapply_webhook(self: &Arc<Self>, key: &InstanceKey) -> Result<String, SupervisorError> {
        let Some(base) = self.cfg.server.public_url.clone() else {
            return Err(SupervisorError::Refused(
                "server.public_url is not set: there is no webhook URL to apply".to_string(),
            ));
        };
        let Some(h) = self.providers.get(&key.provider).cloned() else {
            return Err(SupervisorError::UnknownProvider(key.provider.clone()));
        };
        let rec = self.store.instance(key).await?.ok_or_else(|| SupervisorError::UnknownInstance(key.clone()))?;
        let p = self.cfg.providers.iter().find(|p| p.name == key.provider).expect("configured");
        let url = format!("{base}/webhooks/{}/{}", p.name, p.webhook_token.expose());
        let res = {
            let _p = h.calls.acquire().await.expect("open");
            h.client.apply_webhook(&self.instance_ref(key), &url, &self.cfg.webhook).await
        };
        let now = self.now();
        let (ok, kind, detail) = match &res {
            Ok(WebhookRepair::AlreadyOk) => (true, "webhook_ok", "already as desired".to_string()),
            Ok(WebhookRepair::Repaired { reasons }) => (true, "webhook_repaired", reasons.join("; ")),
            Ok(WebhookRepair::Mismatch { detail }) => (false, "webhook_mismatch", detail.clone()),
            Err(e) => (false, "webhook_audit_failed", audit_failure(e)),
        };
        self.store.set_webhook_check(&rec.id, ok, now).await?;
        if kind != "webhook_ok" {
            crate::events::webhook_audit(key, kind, &detail);
        }
        self.store
            .record_event(
                Some(&rec.id),
                &key.provider,
                kind,
                &serde_json::json!({"detail": detail, "manual": true}),
                now,
            )
            .await?;
        match res {
            Ok(_) if ok => Ok(format!("{key}: webhook config {}", detail)),
            Ok(_) => {
                Err(SupervisorError::Refused(format!("{key}: the provider kept another webhook config: {detail}")))
            }
            Err(source) => Err(SupervisorError::Provider { provider: key.provider.clone(), source }),
        }
    }
}

/// A failed audit call in words: whether the webhook config could not be
/// read (then nothing was compared: its state is unknown, not wrong) or
/// could not be written, and why. The failing call is the one the error
/// names (`GET /webhook/find/x: …`, `PUT /api/sessions/x: …`).
pub fn audit_failure(e: &ProviderError) -> String {
    let what = match e.detail.split_whitespace().next() {
        Some("GET") => "the webhook config could not be read",
        Some("PUT" | "POST") => "the webhook config could not be written",
        _ => "the webhook config could not be read or written",
    };
    let class = e.class.as_str().replace('_', " ");
    format!("{what} (provider {class}): {}; it is checked again at the next audit", e.detail)
}

/// What one webhook audit did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AuditReport {
    pub ok: u32,
    pub repaired: u32,
    pub mismatched: u32,
    pub failed: u32,
    /// Differs from the desired config, not written: the instance is in maintenance.
    pub drifted: u32,
}

/// What the audit did with one instance.
enum Audited {
    /// Read, compared, written where needed, read back.
    Applied(WebhookRepair),
    /// Only read (maintenance): why it differs, if it does.
    Held(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ErrorClass;

    #[test]
    fn a_failed_audit_says_whether_the_config_could_not_be_read_or_written_and_why() {
        let read = ProviderError::new(ErrorClass::Unreachable, "GET /webhook/find/a: connection failed: refused");
        assert_eq!(
            audit_failure(&read),
            "the webhook config could not be read (provider unreachable): GET /webhook/find/a: connection failed: \
             refused; it is checked again at the next audit"
        );
        let write = ProviderError::new(ErrorClass::BadResponse, "PUT /api/sessions/s: HTTP 400: property name …");
        assert!(audit_failure(&write).starts_with("the webhook config could not be written (provider bad response)"));
        let other = ProviderError::new(ErrorClass::Unauthorized, "HTTP 401");
        assert!(audit_failure(&other).starts_with("the webhook config could not be read or written"));
    }
}
