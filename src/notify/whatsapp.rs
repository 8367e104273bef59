//! The `whatsapp` notifier: notices as WhatsApp messages through an "ops"
//! instance wa-sentinel watches, with a fallback notifier for when that
//! instance cannot deliver (rule 10, docs/rules.md).
//!
//! The outbox worker hands this module all of a notifier's claimed rows at
//! once (`deliver`), and:
//!
//! 1. asks where they may go ([`ops_channel::route`]): through the instance
//!    only while wa-sentinel believes it connected (no outage on it or its
//!    provider, not in maintenance); without a verdict yet they wait up to a
//!    minute; otherwise each row is handed to the fallback, once, with its
//!    dedup key, and settled as `handed_over` with the reason. A notice about
//!    the ops instance's own trouble always goes to the fallback;
//! 2. waits for the digest window: rows queued within `digest_window` of
//!    the oldest go out as one message per recipient;
//! 3. per recipient: if an earlier send's answer never came, looks back at
//!    what the instance sent (Evolution v2, WAHA) for the rows' references
//!    before sending again; keeps `min_gap` since the instance's last
//!    message (a pause of up to a second in place, a longer one by leaving
//!    the rest in the outbox until then); marks the send as on its way, sends, and records the
//!    provider's message id in each row ([`Receipts`]), so an accepted send
//!    is never repeated. A send the provider refuses hands the rows to the
//!    fallback; a send whose outcome is unknown is retried later, after
//!    checking;
//! 4. marks the rows delivered once every recipient has them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::channels::DeliveryError;
use super::chat;
use super::worker::{Clock, DeliveryPolicy, DrainReport, record_delivered, record_failure};
use crate::config::{Config, Language, NotifierConfig, NotifierTarget};
use crate::domain::ops_channel::{self, OpsFacts, OpsInstance, Route};
use crate::domain::{Health, InstanceKey, Notice, Ts};
use crate::providers::InstanceRef;
use crate::providers::messaging::Messenger;
use crate::store::{OutboxRow, Store, StoreError};

/// A configured `whatsapp` notifier, ready to send.
pub struct WhatsAppChannel {
    name: String,
    provider: String,
    instance: String,
    to: Vec<String>,
    digest_window: Duration,
    min_gap: Duration,
    fallback: Option<String>,
    lang: Language,
    messenger: Messenger,
}

impl WhatsAppChannel {
    /// Build from the notifier's entry and the config it names (its
    /// provider's credentials, its instance's token).
    pub fn new(n: &NotifierConfig, cfg: &Config, timeout: Duration) -> Result<Self, DeliveryError> {
        let NotifierTarget::WhatsApp { provider, instance, to, digest_window, min_gap } = &n.target else {
            return Err(DeliveryError::permanent("not a whatsapp notifier"));
        };
        let p = cfg.providers.iter().find(|p| &p.name == provider).ok_or_else(|| {
            DeliveryError::permanent(format!("provider `{provider}` is not configured; check `provider`"))
        })?;
        let token =
            cfg.instances.iter().find(|i| &i.provider == provider && &i.name == instance).and_then(|i| i.token.clone());
        let messenger = Messenger::new(p, InstanceRef { name: instance.clone(), token }, timeout)
            .map_err(|e| DeliveryError::permanent(format!("cannot build the client of provider `{provider}`: {e}")))?;
        Ok(WhatsAppChannel {
            name: n.name.clone(),
            provider: provider.clone(),
            instance: instance.clone(),
            to: to.clone(),
            digest_window: *digest_window,
            min_gap: *min_gap,
            fallback: n.fallback.clone(),
            lang: cfg.alerts.language,
            messenger,
        })
    }
}

/// What a `whatsapp` notifier recorded about one outbox row, by recipient
/// (the row's `receipts` column, JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Receipts(BTreeMap<String, Receipt>);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The provider's message id (absent when its answer carried none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When the provider took the message: never sent again after this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<i64>,
    /// A send began then and its answer has not come back: look before
    /// sending again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending_since: Option<i64>,
}

impl Receipts {
    /// The stored JSON; a column that is not understood counts as no receipt
    /// (the row may then be sent again: logged).
    pub fn parse(raw: Option<&str>) -> Receipts {
        match raw.map(serde_json::from_str::<Receipts>) {
            None => Receipts::default(),
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "an outbox row's receipts are not understood; treated as none");
                Receipts::default()
            }
        }
    }

    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("receipts serialise")
    }

    /// The provider took the message for `to`.
    pub fn sent(&self, to: &str) -> bool {
        self.0.get(to).is_some_and(|r| r.sent_at.is_some())
    }

    /// A send to `to` whose answer never came began then.
    pub fn sending_since(&self, to: &str) -> Option<Ts> {
        self.0.get(to).filter(|r| r.sent_at.is_none()).and_then(|r| r.sending_since).map(Ts)
    }

    pub fn mark_sending(&mut self, to: &str, at: Ts) {
        let r = self.0.entry(to.to_string()).or_default();
        if r.sent_at.is_none() {
            r.sending_since = Some(at.0);
        }
    }

    pub fn mark_sent(&mut self, to: &str, id: Option<String>, at: Ts) {
        self.0.insert(to.to_string(), Receipt { id, sent_at: Some(at.0), sending_since: None });
    }

    pub fn clear_sending(&mut self, to: &str) {
        if !self.sent(to) {
            self.0.remove(to);
        }
    }

    /// The message id recorded for `to`.
    pub fn id(&self, to: &str) -> Option<&str> {
        self.0.get(to).and_then(|r| r.id.as_deref())
    }
}

/// When the last message went through each ops instance, in this process;
/// one async lock per instance, held across the pause and the send, so two
/// notifiers sharing an instance keep its gap too.
#[derive(Default)]
pub struct Pace(Mutex<HashMap<(String, String), Slot>>);

/// One instance's last message, locked across a pause and a send.
type Slot = Arc<tokio::sync::Mutex<Option<tokio::time::Instant>>>;

impl Pace {
    fn slot(&self, provider: &str, instance: &str) -> Slot {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.entry((provider.to_string(), instance.to_string())).or_default().clone()
    }
}

/// What a group delivery needs from the worker.
pub(super) struct Cx<'a> {
    pub store: &'a Store,
    pub clock: &'a Clock,
    pub policy: &'a DeliveryPolicy,
    pub pace: &'a Pace,
}

/// A pause for `min_gap` up to this long is waited out in the delivery;
/// a longer one defers the notices still to send.
const PAUSE_IN_PLACE: Duration = Duration::from_secs(1);

/// How far before an unanswered send, and after now, to look for it.
const LOOK_BACK_SLACK: Duration = Duration::from_secs(120);

/// What wa-sentinel believes about the ops instance and its provider.
async fn facts(store: &Store, provider: &str, instance: &str) -> Result<OpsFacts, StoreError> {
    let rec = store.instance(&InstanceKey::new(provider, instance)).await?;
    let ps = store.provider_state(provider).await?;
    Ok(OpsFacts {
        instance: rec.map(|r| OpsInstance {
            health: if r.present { r.state.health } else { Health::Missing },
            outage: r.state.outage.map(|o| o.cause.as_str().to_string()),
            maintenance_until: r.state.maintenance_until,
        }),
        provider_outage: ps.outage.map(|o| o.cause.as_str().to_string()),
    })
}

/// Deliver one `whatsapp` notifier's claimed rows (all from one claim, in order).
pub(super) async fn deliver(
    ch: &WhatsAppChannel,
    rows: Vec<OutboxRow>,
    cx: &Cx<'_>,
) -> Result<DrainReport, StoreError> {
    let mut rep = DrainReport::default();
    let Some(token) = rows.first().map(|r| r.claim_token.clone()) else { return Ok(rep) };
    let mut live: Vec<(OutboxRow, Notice)> = Vec::new();
    for row in rows {
        match serde_json::from_str::<Notice>(&row.payload) {
            Ok(n) => live.push((row, n)),
            Err(e) => {
                let e = DeliveryError::permanent(format!("stored notice is not understood: {e}"));
                record_failure(cx.store, cx.policy, &row, &e, (cx.clock)(), &mut rep).await?;
            }
        }
    }
    let now = (cx.clock)();
    let facts = facts(cx.store, &ch.provider, &ch.instance).await?;
    let (away, mine): (Vec<_>, Vec<_>) =
        live.into_iter().partition(|(_, n)| ops_channel::about_itself(n, &ch.provider, &ch.instance));
    for (row, _) in &away {
        hand_over(ch, cx, row, "the notice is about the ops instance itself or its provider", &mut rep).await?;
    }
    let Some(oldest) = mine.iter().map(|(r, _)| Ts(r.created_at)).min() else { return Ok(rep) };
    let ids: Vec<i64> = mine.iter().map(|(r, _)| r.id).collect();
    match ops_channel::route(&facts, now, oldest) {
        Route::Send => {}
        Route::HandOver(why) => {
            for (row, _) in &mine {
                hand_over(ch, cx, row, &why, &mut rep).await?;
            }
            return Ok(rep);
        }
        Route::Wait(why) => {
            tracing::debug!(notifier = %ch.name, why, "notices wait for a verdict on the ops instance");
            cx.store.outbox_defer(&token, &ids, now.plus(ops_channel::WAIT_STEP)).await?;
            return Ok(rep);
        }
    }
    if let Some(due) = ops_channel::digest_due(oldest, ch.digest_window, now) {
        cx.store.outbox_defer(&token, &ids, due).await?;
        return Ok(rep);
    }
    let mut receipts: Vec<Receipts> = mine.iter().map(|(r, _)| Receipts::parse(r.receipts.as_deref())).collect();
    // With a digest window, everything claimed is one message per recipient;
    // without one, each notice is its own message.
    let batches: Vec<Vec<usize>> = if ch.digest_window.is_zero() {
        (0..mine.len()).map(|i| vec![i]).collect()
    } else {
        vec![(0..mine.len()).collect()]
    };
    let mut done = vec![false; mine.len()];
    for batch in &batches {
        for to in &ch.to {
            let undone = |done: &[bool]| -> Vec<(OutboxRow, Notice)> {
                mine.iter().zip(done).filter(|(_, d)| !**d).map(|(r, _)| r.clone()).collect()
            };
            // An earlier send to `to` never answered: look before sending again.
            let unknown: Vec<usize> =
                batch.iter().copied().filter(|&i| receipts[i].sending_since(to).is_some()).collect();
            if let Some(since) = unknown.iter().filter_map(|&i| receipts[i].sending_since(to)).min() {
                let from = Ts(since.0 - crate::domain::time::duration_ms(LOOK_BACK_SLACK));
                let until = (cx.clock)().plus(LOOK_BACK_SLACK);
                match ch.messenger.sent_between(to, from, until).await {
                    Ok(Some(found)) => {
                        for &i in &unknown {
                            let reference = chat::reference(&mine[i].1.dedup_key, to);
                            match found.iter().find(|m| m.text.contains(&reference)) {
                                Some(m) => {
                                    let id = Some(m.id.clone()).filter(|id| !id.is_empty());
                                    receipts[i].mark_sent(to, id, (cx.clock)());
                                }
                                None => receipts[i].clear_sending(to),
                            }
                        }
                    }
                    Ok(None) => {
                        tracing::warn!(notifier = %ch.name, provider = %ch.provider, "a send's answer never came and this provider cannot tell whether it went out: sending again (the recipient may get it twice)");
                        for &i in &unknown {
                            receipts[i].clear_sending(to);
                        }
                    }
                    Err(e) => {
                        let e = DeliveryError::transient(format!(
                            "an earlier send's answer never came, and asking the provider whether it went out \
                             failed ({e}); nothing is sent again until that can be checked"
                        ));
                        fail_all(cx, &undone(&done), &e, &mut rep).await?;
                        return Ok(rep);
                    }
                }
                if !save(cx, &token, &mine, &receipts, &unknown).await? {
                    return Ok(rep);
                }
            }
            let todo: Vec<usize> = batch.iter().copied().filter(|&i| !receipts[i].sent(to)).collect();
            if todo.is_empty() {
                continue;
            }
            let slot = cx.pace.slot(&ch.provider, &ch.instance);
            let mut last = slot.lock().await;
            let pause = ops_channel::pause(last.map(|t| t.elapsed()), ch.min_gap);
            if pause > PAUSE_IN_PLACE {
                // A longer pause would hold up the whole delivery round: the
                // rest waits in the outbox instead, in order, no attempt counted.
                let open: Vec<i64> = mine.iter().zip(&done).filter(|(_, d)| !**d).map(|((r, _), _)| r.id).collect();
                cx.store.outbox_defer(&token, &open, (cx.clock)().plus(pause)).await?;
                return Ok(rep);
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            // The claim holds every row not delivered yet for another lease.
            let open: Vec<i64> = mine.iter().zip(&done).filter(|(_, d)| !**d).map(|((r, _), _)| r.id).collect();
            let held = cx.store.outbox_renew_claim(&token, &open, (cx.clock)().plus(cx.policy.lease())).await?;
            if held.len() != open.len() {
                tracing::warn!(notifier = %ch.name, "outbox claim taken over before sending; leaving these notices to the other worker");
                cx.store.outbox_release(&token, &held).await?;
                return Ok(rep);
            }
            let at = (cx.clock)();
            for &i in &todo {
                receipts[i].mark_sending(to, at);
            }
            if !save(cx, &token, &mine, &receipts, &todo).await? {
                return Ok(rep);
            }
            let notices: Vec<&Notice> = todo.iter().map(|&i| &mine[i].1).collect();
            let text = chat::compose(&notices, ch.lang, to);
            let outcome = ch.messenger.send_text(to, &text).await;
            *last = Some(tokio::time::Instant::now());
            drop(last);
            match outcome {
                Ok(accepted) => {
                    let at = (cx.clock)();
                    for &i in &todo {
                        receipts[i].mark_sent(to, accepted.id.clone(), at);
                    }
                    if !save(cx, &token, &mine, &receipts, &todo).await? {
                        return Ok(rep);
                    }
                    tracing::debug!(notifier = %ch.name, notices = todo.len(), id = ?accepted.id, "whatsapp message sent");
                }
                Err(e) if !e.may_have_sent => {
                    for &i in &todo {
                        receipts[i].clear_sending(to);
                    }
                    save(cx, &token, &mine, &receipts, &todo).await?;
                    let why = format!("the provider refused the message: {e}");
                    for (row, _) in &undone(&done) {
                        hand_over(ch, cx, row, &why, &mut rep).await?;
                    }
                    return Ok(rep);
                }
                Err(e) => {
                    let e = DeliveryError::transient(format!(
                        "no answer to a send ({e}); before sending again wa-sentinel checks with the provider \
                         whether it went out, where the provider can tell"
                    ));
                    fail_all(cx, &undone(&done), &e, &mut rep).await?;
                    return Ok(rep);
                }
            }
        }
        for &i in batch {
            record_delivered(cx.store, &mine[i].0, (cx.clock)(), &mut rep).await?;
            done[i] = true;
        }
    }
    Ok(rep)
}

/// Write the receipts of rows `which`; false (and a log line) when the claim
/// was taken over meanwhile.
async fn save(
    cx: &Cx<'_>,
    token: &str,
    rows: &[(OutboxRow, Notice)],
    receipts: &[Receipts],
    which: &[usize],
) -> Result<bool, StoreError> {
    let writes: Vec<(i64, String)> = which.iter().map(|&i| (rows[i].0.id, receipts[i].json())).collect();
    let n = cx.store.outbox_set_receipts(token, &writes).await?;
    if n != writes.len() as u64 {
        tracing::warn!("outbox claim taken over during a whatsapp delivery; this worker stops here");
        return Ok(false);
    }
    Ok(true)
}

/// Every row failed this attempt (retried later, or dead by age).
async fn fail_all(
    cx: &Cx<'_>,
    rows: &[(OutboxRow, Notice)],
    e: &DeliveryError,
    rep: &mut DrainReport,
) -> Result<(), StoreError> {
    for (row, _) in rows {
        record_failure(cx.store, cx.policy, row, e, (cx.clock)(), rep).await?;
    }
    Ok(())
}

/// Hand one row to the notifier's fallback, or, with none configured, count
/// a failed attempt (the notice waits for the instance, at most
/// `delivery_max_age`).
async fn hand_over(
    ch: &WhatsAppChannel,
    cx: &Cx<'_>,
    row: &OutboxRow,
    why: &str,
    rep: &mut DrainReport,
) -> Result<(), StoreError> {
    let now = (cx.clock)();
    match &ch.fallback {
        Some(fallback) => {
            let detail = format!("handed to fallback {fallback}: {why}");
            if cx.store.outbox_hand_over(row, fallback, &detail, now).await? {
                crate::events::notice_handed_over(&ch.name, fallback, &row.kind, &row.dedup_key, why);
                rep.handed_over += 1;
            }
        }
        None => {
            let e = DeliveryError::transient(format!("not sent: {why}; this notifier has no `fallback`"));
            record_failure(cx.store, cx.policy, row, &e, now, rep).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_keep_a_sent_message_and_forget_an_unanswered_send_once_resolved() {
        let mut r = Receipts::default();
        r.mark_sending("a", Ts(10));
        assert_eq!(r.sending_since("a"), Some(Ts(10)));
        assert!(!r.sent("a"));
        r.mark_sent("a", Some("3EB0".into()), Ts(12));
        assert!(r.sent("a") && r.sending_since("a").is_none());
        r.mark_sending("a", Ts(20));
        r.clear_sending("a");
        assert_eq!(r.id("a"), Some("3EB0"), "a sent message is never unmarked");
        r.mark_sending("b", Ts(30));
        r.clear_sending("b");
        assert_eq!(r.sending_since("b"), None);
        let back = Receipts::parse(Some(&r.json()));
        assert_eq!(back, r);
        assert_eq!(r.json(), r#"{"a":{"id":"3EB0","sent_at":12}}"#);
        assert_eq!(Receipts::parse(Some("not json")), Receipts::default());
    }
}
