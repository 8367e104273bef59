//! The `outages` table, read for `history`, the API and the status page.

use super::records::OutageRow;
use super::{Db, OutageRecord, Result, Store};
use crate::domain::InstanceKey;

impl Store {
    /// Outages, newest first; optionally of one instance, optionally only open ones.
    pub async fn outages(
        &self,
        instance: Option<&InstanceKey>,
        open_only: bool,
        limit: u32,
    ) -> Result<Vec<OutageRecord>> {
        // One instance: through its key and the outages' instance index (an
        // `OR` over both cases would scan every outage: 109 ms at 30,000
        // outages on SQLite, against 0.1 ms).
        let rows: Vec<OutageRow> = match instance {
            Some(k) => on_pool!(self, p => {
                sqlx::query_as(concat!(
                    outage_select!(),
                    " WHERE o.instance_id IN (SELECT id FROM instances WHERE provider = $1 AND name = $2) \
                      AND ($3 = FALSE OR o.ended_at IS NULL) ORDER BY o.started_at DESC, o.id DESC LIMIT $4"
                ))
                .bind(k.provider.as_str())
                .bind(k.name.as_str())
                .bind(open_only)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
            }),
            None => on_pool!(self, p => {
                sqlx::query_as(concat!(
                    outage_select!(),
                    " WHERE ($1 = FALSE OR o.ended_at IS NULL) ORDER BY o.started_at DESC, o.id DESC LIMIT $2"
                ))
                .bind(open_only)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
            }),
        };
        rows.into_iter().map(OutageRow::into_record).collect()
    }

    /// The outages of one instance record (by id, not by name: a recreated
    /// instance's record does not show those of the retired one), newest first.
    pub async fn outages_of_record(&self, instance_id: &str, limit: u32) -> Result<Vec<OutageRecord>> {
        let rows: Vec<OutageRow> = on_pool!(self, p => {
            sqlx::query_as(concat!(
                outage_select!(),
                " WHERE o.instance_id = $1 ORDER BY o.started_at DESC, o.id DESC LIMIT $2"
            ))
            .bind(instance_id)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(OutageRow::into_record).collect()
    }
}
