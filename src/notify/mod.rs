//! Notifications: which notifier gets which notice (routing by tenant and
//! kind, docs/configuration.md), as outbox rows written in the same transaction as the state
//! change that caused them, then rendering ([`render`]) and delivery through
//! the channels ([`channels`]) by the outbox worker ([`worker`]).

pub mod channels;
pub mod chat;
pub mod render;
pub mod subscriber;
pub mod whatsapp;
pub mod worker;

use crate::config::NotifierConfig;
use crate::domain::Notice;
use crate::store::OutboxEntry;

/// One outbox row per (notice, matching notifier); each keeps the notice's
/// dedup key, so a replay can never queue it twice for the same notifier. A
/// `fallback_only` notifier matches nothing: it gets rows only when a
/// `whatsapp` notifier hands one over (`Store::outbox_hand_over`).
pub fn route<'a>(notifiers: &[NotifierConfig], notices: impl IntoIterator<Item = &'a Notice>) -> Vec<OutboxEntry> {
    let mut out = Vec::new();
    for n in notices {
        for target in notifiers.iter().filter(|t| t.accepts(n.kind, n.tenant.as_deref())) {
            out.push(entry(n, &target.name));
        }
    }
    out
}

/// The outbox row of one notice for one notifier.
pub fn entry(n: &Notice, notifier: &str) -> OutboxEntry {
    OutboxEntry {
        dedup_key: n.dedup_key.clone(),
        notifier: notifier.to_string(),
        kind: n.kind.as_str().to_string(),
        payload: serde_json::to_string(n).expect("a notice serialises"),
    }
}
