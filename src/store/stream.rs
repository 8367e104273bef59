//! The event stream (`stream_events`, numbered by `stream_seq`): written with
//! the state change it reports (see `insert_stream!`), read back by
//! `GET /api/events`, pruned by retention.

use super::{Db, Result, Store};
use crate::domain::stream::StreamEvent;

/// One event to append, and the subscribers it goes to.
#[derive(Debug, Clone)]
pub struct StreamOut {
    pub event: StreamEvent,
    pub subscribers: Vec<String>,
}

impl Store {
    /// Up to `limit` events after `after`, in order, as their JSON text.
    pub async fn stream_after(&self, after: i64, limit: u32) -> Result<Vec<(i64, String)>> {
        let rows: Vec<(i64, String)> = on_pool!(self, p => {
            sqlx::query_as("SELECT seq, payload FROM stream_events WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
        });
        Ok(rows)
    }

    /// The number of the last event (0 before the first).
    pub async fn stream_last(&self) -> Result<i64> {
        let n: i64 = on_pool!(self, p => {
            sqlx::query_scalar("SELECT last FROM stream_seq WHERE name = ''").fetch_one(p).await?
        });
        Ok(n)
    }

    /// Append events outside any other change (a tenant assigned through the API).
    pub async fn append_stream(&self, stream: &[StreamOut]) -> Result<()> {
        if stream.is_empty() {
            return Ok(());
        }
        in_write_tx!(self, tx => {
            for s in stream {
                insert_stream!(tx, s);
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
