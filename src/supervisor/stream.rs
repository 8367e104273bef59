//! The event stream at the edge: which subscribers an event goes to, the
//! application database's tenant mapping, and waking long polls after a
//! commit.

use std::sync::atomic::Ordering;

use super::Supervisor;
use crate::domain::stream::StreamEvent;
use crate::domain::tenancy::SqlMapping;
use crate::store::StreamOut;

impl Supervisor {
    /// Each event with the subscribers that take it (a tenant change goes
    /// to the subscribers of the tenant it left and of the one it joined).
    pub(super) fn stream_outs(&self, events: Vec<StreamEvent>) -> Vec<StreamOut> {
        events
            .into_iter()
            .map(|event| {
                let subscribers = self
                    .cfg
                    .subscribers
                    .iter()
                    .filter(|s| {
                        s.accepts(event.event, &event.tenant)
                            || (event.event == "tenant_changed"
                                && event.from.as_deref().is_some_and(|t| s.accepts(event.event, t)))
                    })
                    .map(|s| s.name.clone())
                    .collect();
                StreamOut { event, subscribers }
            })
            .collect()
    }

    /// After a commit that appended `stream`: wake long polls, and the
    /// outbox worker when a subscriber has something to receive.
    pub(super) fn streamed(&self, stream: &[StreamOut]) {
        if stream.is_empty() {
            return;
        }
        self.stream_notify.notify_waiters();
        if stream.iter().any(|s| !s.subscribers.is_empty()) {
            self.wake_outbox();
        }
    }

    /// Wait until a commit of this process appends to the stream (or
    /// `limit` passes); a long poll re-reads the stream either way, so
    /// events committed by other replicas are found at the next wake-up.
    pub async fn stream_changed(&self, limit: std::time::Duration) {
        let _ = tokio::time::timeout(limit, self.stream_notify.notified()).await;
    }

    /// A new read of the application's database (`[tenants]`): the next
    /// inventory merge of every provider applies it when it changed.
    pub fn set_sql_tenants(&self, mapping: SqlMapping) {
        if *self.sql_tenants.load_full() != mapping {
            self.sql_tenants.store(std::sync::Arc::new(mapping));
            self.sql_generation.fetch_add(1, Ordering::SeqCst);
        }
    }
}
