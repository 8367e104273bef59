//! Which webhook event names each provider kind accepts, so that
//! `check-config` names a bad `webhook.events` entry instead of every audit
//! failing later with the provider's 400 (observed on a real Evolution 2.3.6:
//! `CONNECTION_UPDATES` → `webhook.events[5] is not one of enum values …`).
//!
//! Sources (`providers/evolution-api.md`, "Full list of configurable events"):
//! v2 — `EventController.events`, the webhook JSON-schema enum (2.3.7 adds
//! `MESSAGING_HISTORY_SET`); v1 — `validate.schema.ts::webhookSchema`.
//! W-API has no event list to reject: its events only choose which of its six
//! URL slots are written (see `providers::wapi::wanted_slots`).

use super::{ApiVersion, ProviderConfig, ProviderKind};

/// Evolution API v2 (2.2–2.3.6; 2.3.7 adds [`EVOLUTION_V2_3_7`]).
pub const EVOLUTION_V2: &[&str] = &[
    "APPLICATION_STARTUP",
    "QRCODE_UPDATED",
    "MESSAGES_SET",
    "MESSAGES_UPSERT",
    "MESSAGES_EDITED",
    "MESSAGES_UPDATE",
    "MESSAGES_DELETE",
    "SEND_MESSAGE",
    "SEND_MESSAGE_UPDATE",
    "CONTACTS_SET",
    "CONTACTS_UPSERT",
    "CONTACTS_UPDATE",
    "PRESENCE_UPDATE",
    "CHATS_SET",
    "CHATS_UPSERT",
    "CHATS_UPDATE",
    "CHATS_DELETE",
    "GROUPS_UPSERT",
    "GROUP_UPDATE",
    "GROUP_PARTICIPANTS_UPDATE",
    "CONNECTION_UPDATE",
    "LABELS_EDIT",
    "LABELS_ASSOCIATION",
    "CALL",
    "TYPEBOT_START",
    "TYPEBOT_CHANGE_STATUS",
    "REMOVE_INSTANCE",
    "LOGOUT_INSTANCE",
    "INSTANCE_CREATE",
    "INSTANCE_DELETE",
    "STATUS_INSTANCE",
];

/// Added by Evolution API 2.3.7 to the v2 list.
pub const EVOLUTION_V2_3_7: &[&str] = &["MESSAGING_HISTORY_SET"];

/// Evolution API v1 (1.7–1.8).
pub const EVOLUTION_V1: &[&str] = &[
    "APPLICATION_STARTUP",
    "QRCODE_UPDATED",
    "MESSAGES_SET",
    "MESSAGES_UPSERT",
    "MESSAGES_UPDATE",
    "MESSAGES_DELETE",
    "SEND_MESSAGE",
    "CONTACTS_SET",
    "CONTACTS_UPSERT",
    "CONTACTS_UPDATE",
    "PRESENCE_UPDATE",
    "CHATS_SET",
    "CHATS_UPSERT",
    "CHATS_UPDATE",
    "CHATS_DELETE",
    "GROUPS_UPSERT",
    "GROUP_UPDATE",
    "GROUP_PARTICIPANTS_UPDATE",
    "CONNECTION_UPDATE",
    "LABELS_EDIT",
    "LABELS_ASSOCIATION",
    "CALL",
    "NEW_JWT_TOKEN",
    "TYPEBOT_START",
    "TYPEBOT_CHANGE_STATUS",
    "CHAMA_AI_ACTION",
];

/// Why provider `p` would reject event `e`, if it would.
pub fn rejection(p: &ProviderConfig, e: &str) -> Option<String> {
    let (v1, v2) = (EVOLUTION_V1.contains(&e), EVOLUTION_V2.contains(&e) || EVOLUTION_V2_3_7.contains(&e));
    match (p.kind, p.api_version) {
        (ProviderKind::Evolution, ApiVersion::V2) if !v2 => Some(not_listed(p, e, "Evolution API v2")),
        (ProviderKind::Evolution, ApiVersion::V1) if !v1 => Some(not_listed(p, e, "Evolution API v1")),
        (ProviderKind::Evolution, ApiVersion::Auto) => match (v1, v2) {
            (true, true) => None,
            (false, false) => Some(not_listed(p, e, "Evolution API (v1 or v2)")),
            (false, true) => Some(format!(
                "`{e}` exists in Evolution API v2 only, and provider `{}` may be v1 (api_version = \"auto\"): \
                 pin its api_version = \"v2\" or drop the event",
                p.name
            )),
            (true, false) => Some(format!(
                "`{e}` exists in Evolution API v1 only, and provider `{}` may be v2 (api_version = \"auto\"): \
                 pin its api_version = \"v1\" or drop the event",
                p.name
            )),
        },
        _ => None,
    }
}

fn not_listed(p: &ProviderConfig, e: &str, what: &str) -> String {
    let near = EVOLUTION_V2
        .iter()
        .chain(EVOLUTION_V1)
        .find(|k| e.starts_with(*k) || k.starts_with(e))
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    format!("`{e}` is not an event {what} accepts (provider `{}`){near}", p.name)
}
