//! Webhook configs with one URL slot per event kind (W-API and Z-API): which
//! slots the sentinel manages, the URL each gets, and the diff-write-read-back
//! repair that both providers share.
//!
//! Slots are derived from the desired (Evolution style) event names:
//! `CONNECTION_UPDATE` → connected + disconnected, `MESSAGES_UPSERT` →
//! received, `SEND_MESSAGE` → delivery, `MESSAGES_UPDATE` → message-status,
//! `PRESENCE_UPDATE` → chat-presence; slot names themselves (`RECEIVED`,
//! `message-status`) are accepted too; nothing mapped → connected,
//! disconnected, received. Slots the sentinel does not manage are never
//! touched. With `by_events` each slot gets `<url>/<kind>`.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use super::{InstanceRef, ProviderError, WebhookRepair, WebhookSettings, redact_url};
use crate::config::DesiredWebhook;

/// One webhook slot: `kind` (the URL suffix of `update-webhook-<kind>`), the
/// field of the provider's instance read that holds its URL, and the event
/// (W-API `event`, Z-API `type`) the provider posts to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub kind: &'static str,
    pub field: &'static str,
    pub event: &'static str,
}

/// The slot kinds the sentinel manages for these desired events (module docs).
pub fn wanted_kinds(desired: &DesiredWebhook) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = Vec::new();
    for e in &desired.events {
        let c = e.trim().replace(['.', '-'], "_").to_uppercase();
        let add: &[&'static str] = match c.as_str() {
            "CONNECTION_UPDATE" => &["connected", "disconnected"],
            "MESSAGES_UPSERT" | "RECEIVED" => &["received"],
            "SEND_MESSAGE" | "DELIVERY" => &["delivery"],
            "MESSAGES_UPDATE" | "MESSAGE_STATUS" => &["message-status"],
            "PRESENCE_UPDATE" | "CHAT_PRESENCE" => &["chat-presence"],
            "CONNECTED" => &["connected"],
            "DISCONNECTED" => &["disconnected"],
            _ => &[],
        };
        kinds.extend(add);
    }
    if kinds.is_empty() {
        kinds = vec!["connected", "disconnected", "received"];
    }
    kinds
}

/// `table` filtered to the wanted kinds, in the table's order.
pub fn wanted_slots(table: &[Slot], desired: &DesiredWebhook) -> Vec<Slot> {
    let kinds = wanted_kinds(desired);
    table.iter().filter(|s| kinds.contains(&s.kind)).copied().collect()
}

/// The URL registered in one slot: the desired URL, or `<url>/<kind>` (the
/// kind added as a path segment, before any query) with `by_events`.
pub fn kind_url(desired_url: &str, kind: &str, by_events: bool) -> String {
    if !by_events {
        return desired_url.to_string();
    }
    match reqwest::Url::parse(desired_url) {
        Ok(mut u) if !u.cannot_be_a_base() => {
            if let Ok(mut p) = u.path_segments_mut() {
                p.pop_if_empty().push(kind);
            }
            u.to_string()
        }
        _ => format!("{}/{}", desired_url.trim_end_matches('/'), kind),
    }
}

/// The URL in one slot of an instance read; `""` = unset.
pub fn slot_value<'a>(j: &'a Value, slot: &Slot) -> &'a str {
    j.get(slot.field).and_then(Value::as_str).unwrap_or("")
}

/// An instance read → normalised settings: `events` holds the slot kinds that
/// have a URL, `url` the first set slot's URL (in table order), `by_events`
/// true when the set slots do not share one URL; `None` when no slot is set.
pub fn settings(table: &[Slot], j: &Value) -> Option<WebhookSettings> {
    let set: Vec<(Slot, &str)> = table.iter().map(|s| (*s, slot_value(j, s))).filter(|(_, u)| !u.is_empty()).collect();
    let (_, first) = set.first()?;
    Some(WebhookSettings {
        enabled: true,
        url: Some(first.to_string()),
        events: set.iter().map(|(s, _)| s.kind.to_string()).collect(),
        by_events: set.iter().any(|(_, u)| u != first),
        base64: false,
    })
}

/// A written slot whose read-back differs: what came back, what was written.
#[derive(Debug, Clone)]
pub struct Unmatched {
    pub slot: Slot,
    pub got: String,
    pub wanted: String,
}

impl Unmatched {
    /// "`<field>` is \<got\> instead of \<wanted\>", URLs redacted.
    pub fn describe(&self) -> String {
        format!(
            "`{}` is {} instead of {}",
            self.slot.field,
            if self.got.is_empty() { "empty".to_string() } else { redact_url(&self.got) },
            redact_url(&self.wanted),
        )
    }
}

/// The calls a slot-per-kind provider offers.
pub trait SlotApi {
    /// The instance read that holds every slot's URL.
    fn read(&self, inst: &InstanceRef) -> impl Future<Output = Result<Value, ProviderError>> + Send;
    /// Set one slot.
    fn write(
        &self,
        inst: &InstanceRef,
        slot: Slot,
        url: &str,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send;
    /// The `Mismatch` text for slots whose read-back still differs.
    fn mismatch(&self, left: &[Unmatched]) -> String;
}

/// Read the slots and compare them with the desired ones: why they differ,
/// and the `(slot, url)` pairs to write (read-only: the maintenance audit).
pub async fn diff<A: SlotApi + Sync>(
    api: &A,
    table: &[Slot],
    inst: &InstanceRef,
    desired_url: &str,
    desired: &DesiredWebhook,
) -> Result<(Vec<String>, Vec<(Slot, String)>), ProviderError> {
    let current = api.read(inst).await?;
    let mut reasons = Vec::new();
    let mut to_write = Vec::new();
    for slot in wanted_slots(table, desired) {
        let url = kind_url(desired_url, slot.kind, desired.by_events);
        match slot_value(&current, &slot) {
            "" => reasons.push(format!("slot `{}` unset", slot.kind)),
            u if u == url => continue,
            u => reasons.push(format!("slot `{}` points at another URL ({})", slot.kind, redact_url(u))),
        }
        to_write.push((slot, url));
    }
    Ok((reasons, to_write))
}

/// [`diff`], write each managed slot that differs, read back (once more
/// after 300 ms: some providers save asynchronously).
pub async fn apply<A: SlotApi + Sync>(
    api: &A,
    table: &[Slot],
    inst: &InstanceRef,
    desired_url: &str,
    desired: &DesiredWebhook,
) -> Result<WebhookRepair, ProviderError> {
    let (reasons, written) = diff(api, table, inst, desired_url, desired).await?;
    if written.is_empty() {
        return Ok(WebhookRepair::AlreadyOk);
    }
    for (slot, url) in &written {
        api.write(inst, *slot, url).await?;
    }
    let mut left = unmatched(api, inst, &written).await?;
    if !left.is_empty() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        left = unmatched(api, inst, &written).await?;
    }
    if left.is_empty() {
        Ok(WebhookRepair::Repaired { reasons })
    } else {
        Ok(WebhookRepair::Mismatch { detail: api.mismatch(&left) })
    }
}

async fn unmatched<A: SlotApi>(
    api: &A,
    inst: &InstanceRef,
    written: &[(Slot, String)],
) -> Result<Vec<Unmatched>, ProviderError> {
    let after = api.read(inst).await?;
    Ok(written
        .iter()
        .filter(|(slot, url)| slot_value(&after, slot) != url)
        .map(|(slot, url)| Unmatched { slot: *slot, got: slot_value(&after, slot).to_string(), wanted: url.clone() })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_desired_events() {
        let d = DesiredWebhook {
            events: vec!["MESSAGES_UPSERT".into(), "CONNECTION_UPDATE".into(), "QRCODE_UPDATED".into()],
            by_events: false,
            base64: false,
        };
        assert_eq!(wanted_kinds(&d), vec!["received", "connected", "disconnected"]);
        let d = DesiredWebhook { events: vec!["QRCODE_UPDATED".into()], by_events: false, base64: false };
        assert_eq!(wanted_kinds(&d), vec!["connected", "disconnected", "received"], "nothing mapped: the default");
        assert_eq!(kind_url("https://h/x/tok?k=1", "message-status", true), "https://h/x/tok/message-status?k=1");
        assert_eq!(kind_url("https://h/x/", "connected", true), "https://h/x/connected");
        assert_eq!(kind_url("https://h/x/", "connected", false), "https://h/x/");
    }
}
