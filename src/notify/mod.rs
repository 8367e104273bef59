//! Notifications: which notifier gets which notice (routing by tenant and
//! kind, SPEC §2), as outbox rows written in the same transaction as the state
//! change that caused them, then rendering ([`render`]) and delivery through
//! the channels ([`channels`]) by the outbox worker ([`worker`]).

pub mod channels;
pub mod render;
pub mod worker;

use crate::config::NotifierConfig;
use crate::domain::Notice;
use crate::store::OutboxEntry;

/// One outbox row per (notice, matching notifier); each keeps the notice's
/// dedup key, so a replay can never queue it twice for the same notifier.
pub fn route<'a>(notifiers: &[NotifierConfig], notices: impl IntoIterator<Item = &'a Notice>) -> Vec<OutboxEntry> {
    let mut out = Vec::new();
    for n in notices {
        let payload = serde_json::to_string(n).expect("a notice serialises");
        for target in notifiers.iter().filter(|t| t.accepts(n.kind, n.tenant.as_deref())) {
            out.push(OutboxEntry {
                dedup_key: n.dedup_key.clone(),
                notifier: target.name.clone(),
                kind: n.kind.as_str().to_string(),
                payload: payload.clone(),
            });
        }
    }
    out
}
