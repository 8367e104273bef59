//! What availability is computed from ([`crate::domain::availability`]): for
//! each instance of a window, its lifetime, its outages, its provider's
//! outages (silent ones apart) and its maintenance windows
//! (`maintenance_windows`, written with each maintenance change and pruned by
//! their end, so a window that began before the retention cut is still whole).

use std::collections::HashMap;

use super::{Db, Result, Store};
use crate::domain::availability::{History, OutageEnd, Span};
use crate::domain::health::Cause;
use crate::domain::notice::RecoveredBy;
use crate::domain::pairing::PAIRABLE;
use crate::domain::provider::ProviderCause;
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
type OutageSql = (Option<String>, String, i64, Option<i64>, String, Option<String>, bool);
type WindowSql = (String, i64, i64);

impl Store {
    /// The instances that existed during `[from, to)` (filtered), ordered by
    /// provider and name, each with what its availability depends on.
    pub async fn histories(&self, f: &HistoryFilter, from: Ts, to: Ts) -> Result<Vec<InstanceHistory>> {
        let (instances, outages, windows): (Vec<InstanceSql>, Vec<OutageSql>, Vec<WindowSql>) = on_pool!(self, p => {
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
                    "SELECT instance_id, provider, started_at, ended_at, cause, recovered_by, via_link FROM outages \
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
                    "SELECT instance_id, provider, started_at, ended_at, cause, recovered_by, via_link FROM outages \
                     WHERE started_at < $1 AND (ended_at IS NULL OR ended_at > $2) AND ($3 IS NULL OR provider = $3)",
                )
                .bind(to.0)
                .bind(from.0)
                .bind(f.provider.as_deref())
                .fetch_all(p)
                .await?,
            };
            // Maintenance windows that overlap the window (one set before
            // `from` may still be running). They are few (operator actions).
            let w = sqlx::query_as(
                "SELECT instance_id, started_at, ended_at FROM maintenance_windows \
                 WHERE started_at < $1 AND ended_at > $2 AND ($3 IS NULL OR provider = $3) \
                 AND ($4 IS NULL OR instance_id = $4)",
            )
            .bind(to.0)
            .bind(from.0)
            .bind(f.provider.as_deref())
            .bind(f.instance_id.as_deref())
            .fetch_all(p)
            .await?;
            (i, o, w)
        });
        let mut own: HashMap<String, Vec<Span>> = HashMap::new();
        let mut of_provider: HashMap<String, Vec<Span>> = HashMap::new();
        let mut silences: HashMap<String, Vec<Span>> = HashMap::new();
        let mut ends: HashMap<String, Vec<OutageEnd>> = HashMap::new();
        for (instance_id, provider, start, end, cause, recovered_by, via_link) in outages {
            let span = Span { start: Ts(start), end: end.map(Ts) };
            match instance_id {
                Some(id) => {
                    if let (Some(e), Some(by)) = (end, recovered_by.as_deref())
                        && by != RecoveredBy::Retired.as_str()
                    {
                        let needs_person = Cause::parse(&cause).is_some_and(|c| PAIRABLE.contains(&c));
                        ends.entry(id.clone()).or_default().push(OutageEnd {
                            start: Ts(start),
                            end: Ts(e),
                            needs_person,
                            via_link,
                        });
                    }
                    own.entry(id).or_default().push(span)
                }
                None if cause == ProviderCause::Silent.column() => silences.entry(provider).or_default().push(span),
                None => of_provider.entry(provider).or_default().push(span),
            }
        }
        let mut maintenance: HashMap<String, Vec<Span>> = HashMap::new();
        for (instance_id, start, end) in windows {
            maintenance.entry(instance_id).or_default().push(Span { start: Ts(start), end: Some(Ts(end)) });
        }
        Ok(instances
            .into_iter()
            .map(|(id, provider, name, tenant, created_at, retired_at, present)| {
                let history = History {
                    created_at: Ts(created_at),
                    retired_at: retired_at.map(Ts).filter(|_| !present),
                    outages: own.remove(&id).unwrap_or_default(),
                    provider_outages: of_provider.get(&provider).cloned().unwrap_or_default(),
                    provider_silences: silences.get(&provider).cloned().unwrap_or_default(),
                    maintenance: maintenance.remove(&id).unwrap_or_default(),
                    ends: ends.remove(&id).unwrap_or_default(),
                };
                InstanceHistory { id, key: InstanceKey::new(provider, name), tenant, present, history }
            })
            .collect())
    }
}
