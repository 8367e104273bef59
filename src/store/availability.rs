//! What availability is computed from ([`crate::domain::availability`]): for
//! each instance of a window, its lifetime, its outages, its provider's
//! outages and its maintenance windows. Maintenance has no table of its own:
//! every change is an audit event (`maintenance`, `{"until": …}`) committed
//! with the state, so a window runs from one event to its `until` or to the
//! next event of the instance, whichever comes first.

use std::collections::HashMap;

use super::{Db, Result, Store};
use crate::domain::availability::{History, Span};
use crate::domain::{InstanceKey, Ts};

/// Which instances a report or the status page covers.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub provider: Option<String>,
    pub tenant: Option<String>,
    /// Also retired instances that existed during the window (reports); the
    /// status page shows only present ones.
    pub include_retired: bool,
    /// Only this instance (by id): the page of one instance.
    pub instance_id: Option<String>,
}

/// One instance of a report, with its history over the window.
#[derive(Debug, Clone)]
pub struct InstanceHistory {
    pub id: String,
    pub key: InstanceKey,
    pub tenant: String,
    pub present: bool,
    pub history: History,
}

type InstanceSql = (String, String, String, String, i64, Option<i64>, bool);
type OutageSql = (Option<String>, String, i64, Option<i64>);
type EventSql = (Option<String>, i64, String);

impl Store {
    /// The instances that existed during `[from, to)` (filtered), ordered by
    /// provider and name, each with what its availability depends on.
    pub async fn histories(&self, f: &HistoryFilter, from: Ts, to: Ts) -> Result<Vec<InstanceHistory>> {
        let (instances, outages, events): (Vec<InstanceSql>, Vec<OutageSql>, Vec<EventSql>) = on_pool!(self, p => {
            let i = sqlx::query_as(
                "SELECT id, provider, name, tenant, created_at, retired_at, present FROM instances \
                 WHERE ($1 IS NULL OR provider = $1) AND ($2 IS NULL OR tenant = $2) AND created_at < $3 \
                 AND (present = TRUE OR ($4 = TRUE AND (retired_at IS NULL OR retired_at > $5))) \
                 AND ($6 IS NULL OR id = $6) ORDER BY provider, name, created_at",
            )
            .bind(f.provider.as_deref())
            .bind(f.tenant.as_deref())
            .bind(to.0)
            .bind(f.include_retired)
            .bind(from.0)
            .bind(f.instance_id.as_deref())
            .fetch_all(p)
            .await?;
            // One instance (its page): its own outages and its provider's,
            // through the instance index; otherwise every outage of the window.
            let o = match f.instance_id.as_deref() {
                Some(id) => sqlx::query_as(
                    "SELECT instance_id, provider, started_at, ended_at FROM outages \
                     WHERE (instance_id = $1 OR instance_id IS NULL) AND started_at < $2 \
                     AND (ended_at IS NULL OR ended_at > $3) AND ($4 IS NULL OR provider = $4)",
                )
                .bind(id)
                .bind(to.0)
                .bind(from.0)
                .bind(f.provider.as_deref())
                .fetch_all(p)
                .await?,
                None => sqlx::query_as(
                    "SELECT instance_id, provider, started_at, ended_at FROM outages \
                     WHERE started_at < $1 AND (ended_at IS NULL OR ended_at > $2) AND ($3 IS NULL OR provider = $3)",
                )
                .bind(to.0)
                .bind(from.0)
                .bind(f.provider.as_deref())
                .fetch_all(p)
                .await?,
            };
            // Maintenance events before the window too: one set before `from`
            // may still be running. They are few (operator actions and expiries).
            let e = sqlx::query_as(
                "SELECT instance_id, at, detail FROM events WHERE kind = 'maintenance' AND at < $1 \
                 AND instance_id IS NOT NULL AND ($2 IS NULL OR provider = $2) AND ($3 IS NULL OR instance_id = $3) \
                 ORDER BY instance_id, at, id",
            )
            .bind(to.0)
            .bind(f.provider.as_deref())
            .bind(f.instance_id.as_deref())
            .fetch_all(p)
            .await?;
            (i, o, e)
        });
        let mut own: HashMap<String, Vec<Span>> = HashMap::new();
        let mut of_provider: HashMap<String, Vec<Span>> = HashMap::new();
        for (instance_id, provider, start, end) in outages {
            let span = Span { start: Ts(start), end: end.map(Ts) };
            match instance_id {
                Some(id) => own.entry(id).or_default().push(span),
                None => of_provider.entry(provider).or_default().push(span),
            }
        }
        let mut maintenance: HashMap<String, Vec<(Ts, Option<Ts>)>> = HashMap::new();
        for (instance_id, at, detail) in events {
            let until = serde_json::from_str::<serde_json::Value>(&detail)
                .ok()
                .and_then(|v| v.get("until")?.as_str().and_then(parse_rfc3339));
            maintenance.entry(instance_id.unwrap_or_default()).or_default().push((Ts(at), until));
        }
        Ok(instances
            .into_iter()
            .map(|(id, provider, name, tenant, created_at, retired_at, present)| {
                let history = History {
                    created_at: Ts(created_at),
                    retired_at: retired_at.map(Ts).filter(|_| !present),
                    outages: own.remove(&id).unwrap_or_default(),
                    provider_outages: of_provider.get(&provider).cloned().unwrap_or_default(),
                    maintenance: maintenance_spans(maintenance.get(&id).map(Vec::as_slice).unwrap_or_default()),
                };
                InstanceHistory { id, key: InstanceKey::new(provider, name), tenant, present, history }
            })
            .collect())
    }
}

/// Maintenance events (in order) → windows: each runs from its event to its
/// `until`, cut short by the next event (which ends or replaces it).
pub fn maintenance_spans(events: &[(Ts, Option<Ts>)]) -> Vec<Span> {
    events
        .iter()
        .enumerate()
        .filter_map(|(i, (at, until))| {
            let until = (*until)?;
            let end = events.get(i + 1).map_or(until, |(next, _)| until.min(*next));
            (end > *at).then_some(Span { start: *at, end: Some(end) })
        })
        .collect()
}

fn parse_rfc3339(s: &str) -> Option<Ts> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| Ts(t.timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_runs_until_its_end_or_the_next_change() {
        let ev = [(Ts(10), Some(Ts(50))), (Ts(20), Some(Ts(30))), (Ts(30), None), (Ts(40), Some(Ts(45)))];
        let spans = maintenance_spans(&ev);
        let got: Vec<(i64, Option<i64>)> = spans.iter().map(|s| (s.start.0, s.end.map(|e| e.0))).collect();
        assert_eq!(got, vec![(10, Some(20)), (20, Some(30)), (40, Some(45))]);
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01Z"), Some(Ts(1000)));
    }
}
