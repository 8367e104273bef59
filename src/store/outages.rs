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
        let rows: Vec<OutageRow> = on_pool!(self, p => {
            sqlx::query_as(concat!(
                outage_select!(),
                " WHERE ($1 IS NULL OR (o.provider = $1 AND i.name = $2)) \
                  AND ($3 = FALSE OR o.ended_at IS NULL) ORDER BY o.started_at DESC, o.id DESC LIMIT $4"
            ))
            .bind(instance.map(|k| k.provider.as_str()))
            .bind(instance.map(|k| k.name.as_str()))
            .bind(open_only)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(OutageRow::into_record).collect()
    }
}
