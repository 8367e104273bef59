//! Availability reports: per instance and per tenant, over a window, from
//! the one function of [`crate::domain::availability`] — the same numbers as
//! the status page. `wa-sentinel report` prints them as a table, CSV or JSON;
//! `/api/report` returns the same JSON. The JSON shape is stable (README,
//! "Availability reports"): fields are only ever added.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::domain::Ts;
use crate::domain::availability::{Availability, Reconnects, availability, reconnects};
use crate::domain::time::{duration_ms, human_duration};
use crate::store::{HistoryFilter, InstanceHistory, Result, Store};

/// The JSON version: bumped only if a field changes meaning or goes away.
pub const REPORT_VERSION: u32 = 1;

/// What a report covers.
#[derive(Debug, Clone)]
pub struct ReportQuery {
    pub from: Ts,
    pub to: Ts,
    pub tenant: Option<String>,
    pub provider: Option<String>,
}

/// One instance's line.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceLine {
    pub provider: String,
    pub instance: String,
    pub tenant: String,
    /// Still listed (false: retired during or after the window).
    pub present: bool,
    #[serde(flatten)]
    pub figures: Availability,
    /// Time to reconnect after the outages only a person could end.
    #[serde(flatten)]
    pub reconnects: Reconnects,
}

/// One tenant's line: its instances' figures summed.
#[derive(Debug, Clone, Serialize)]
pub struct TenantLine {
    pub tenant: String,
    pub instances: u32,
    #[serde(flatten)]
    pub figures: Availability,
    #[serde(flatten)]
    pub reconnects: Reconnects,
}

/// A whole report (the JSON of `report --format json` and `/api/report`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    #[serde(serialize_with = "crate::domain::time::serialize_rfc3339")]
    pub from: Ts,
    #[serde(serialize_with = "crate::domain::time::serialize_rfc3339")]
    pub to: Ts,
    #[serde(serialize_with = "crate::domain::time::serialize_rfc3339")]
    pub generated_at: Ts,
    pub tenant: Option<String>,
    pub provider: Option<String>,
    pub instances: Vec<InstanceLine>,
    pub tenants: Vec<TenantLine>,
    /// Every instance of the report summed.
    pub total: Availability,
    /// Every instance's time to reconnect after a needs-a-person outage.
    pub total_reconnects: Reconnects,
}

/// Build the report of `q` as known at `now` (instances that existed in the
/// window, retired ones included).
pub async fn build(store: &Store, q: &ReportQuery, now: Ts) -> Result<Report> {
    let f = HistoryFilter {
        provider: q.provider.clone(),
        tenant: q.tenant.clone(),
        include_retired: true,
        instance_id: None,
    };
    let rows = store.histories(&f, q.from, q.to).await?;
    Ok(from_histories(&rows, q, now))
}

/// The report of `q` from histories read for a window that covers `q`'s
/// (the status page reads 30 days once and reports 24 h and 30 d from it):
/// only the instances that existed during `q`'s window count, as in
/// [`Store::histories`], and only those of `q`'s tenant and provider.
pub fn from_histories(rows: &[InstanceHistory], q: &ReportQuery, now: Ts) -> Report {
    let mut instances = Vec::with_capacity(rows.len());
    let mut tenants: BTreeMap<String, TenantLine> = BTreeMap::new();
    let mut total = Availability::default();
    let mut total_reconnects = Reconnects::default();
    let wanted = |r: &&InstanceHistory| {
        r.history.created_at < q.to
            && r.history.retired_at.is_none_or(|t| t > q.from)
            && q.tenant.as_ref().is_none_or(|t| *t == r.tenant)
            && q.provider.as_ref().is_none_or(|p| *p == r.key.provider)
    };
    for r in rows.iter().filter(wanted) {
        let figures = availability(&r.history, q.from, q.to, now);
        let again = reconnects(&r.history, q.from, q.to, now);
        let t = tenants.entry(r.tenant.clone()).or_insert_with(|| TenantLine {
            tenant: r.tenant.clone(),
            instances: 0,
            figures: Availability::default(),
            reconnects: Reconnects::default(),
        });
        t.instances += 1;
        t.figures.add(&figures);
        t.reconnects.add(&again);
        total.add(&figures);
        total_reconnects.add(&again);
        instances.push(InstanceLine {
            provider: r.key.provider.clone(),
            instance: r.key.name.clone(),
            tenant: r.tenant.clone(),
            present: r.present,
            figures,
            reconnects: again,
        });
    }
    Report {
        version: REPORT_VERSION,
        from: q.from,
        to: q.to,
        generated_at: now,
        tenant: q.tenant.clone(),
        provider: q.provider.clone(),
        instances,
        tenants: tenants.into_values().collect(),
        total,
        total_reconnects,
    }
}

/// `99.95%`, or `—` when nothing was counted. Truncated, in integers: 99.999…
/// must not read as 100%.
pub fn percent(a: &Availability) -> String {
    let counted = i128::from(a.observed_ms - a.maintenance_ms);
    if counted <= 0 {
        return "—".to_string();
    }
    let basis_points = i128::from(a.connected_ms) * 10_000 / counted;
    format!("{}.{:02}%", basis_points / 100, basis_points % 100)
}

fn dur(ms: i64) -> String {
    human_duration(std::time::Duration::from_millis(ms.max(0) as u64))
}

fn opt_dur(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_string(), dur)
}

/// The table form (`--format table`).
pub fn table(r: &Report) -> String {
    let mut out = format!("availability from {} to {}\n\n", r.from.rfc3339(), r.to.rfc3339());
    let head = |first: &str| {
        format!(
            "{first:<40} {:>9} {:>7} {:>10} {:>8} {:>10} {:>10} {:>9} {:>11} {:>10} {:>9} {:>9} {:>9} {:>8}\n",
            "AVAIL",
            "OUTAGES",
            "DOWN",
            "MTTR",
            "LONGEST",
            "PROVIDER",
            "PROV.OUT",
            "MAINTENANCE",
            "SILENT",
            "RE-PAIRED",
            "TTR MED",
            "TTR MAX",
            "VIA LINK"
        )
    };
    let line = |first: &str, a: &Availability, rc: &Reconnects| {
        format!(
            "{first:<40} {:>9} {:>7} {:>10} {:>8} {:>10} {:>10} {:>9} {:>11} {:>10} {:>9} {:>9} {:>9} {:>8}\n",
            percent(a),
            a.outages,
            dur(a.down_ms),
            opt_dur(a.mttr_ms),
            opt_dur(a.longest_outage_ms),
            dur(a.provider_down_ms),
            a.provider_outages,
            dur(a.maintenance_ms),
            dur(a.provider_silent_ms),
            rc.needs_person_reconnects,
            opt_dur(rc.reconnect_median_ms),
            opt_dur(rc.reconnect_max_ms),
            rc.reconnects_via_link
        )
    };
    out.push_str(&head("INSTANCE"));
    for i in &r.instances {
        let retired = if i.present { "" } else { " (retired)" };
        out.push_str(&line(&format!("{}/{}{retired}", i.provider, i.instance), &i.figures, &i.reconnects));
    }
    if r.instances.is_empty() {
        out.push_str("(no instances in this window)\n");
    }
    out.push('\n');
    out.push_str(&head("TENANT"));
    for t in &r.tenants {
        out.push_str(&line(&format!("{} ({} instance(s))", t.tenant, t.instances), &t.figures, &t.reconnects));
    }
    out.push_str(&line("all", &r.total, &r.total_reconnects));
    out.push_str(
        "\nRE-PAIRED: outages only a person could end (logged out, waiting for a QR scan) that ended with the \
         session back; TTR: their time from start to reconnection; VIA LINK: of those, ended after their re-pair \
         link was opened. MTTR counts every outage.\n",
    );
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// The CSV form (`--format csv`): one row per instance, then one per tenant
/// (`scope` = `instance` or `tenant`); durations in milliseconds, the share as
/// a fraction (empty when nothing was counted).
pub fn csv(r: &Report) -> String {
    let mut out = String::from(
        "scope,provider,instance,tenant,instances,availability,observed_ms,connected_ms,maintenance_ms,down_ms,\
         outages,mttr_ms,longest_outage_ms,provider_down_ms,provider_outages,provider_silent_ms,\
         needs_person_reconnects,reconnect_median_ms,reconnect_max_ms,reconnects_via_link,other_mttr_ms\n",
    );
    #[allow(clippy::too_many_arguments)]
    fn row(
        out: &mut String,
        scope: &str,
        provider: &str,
        instance: &str,
        tenant: &str,
        n: u32,
        a: &Availability,
        rc: &Reconnects,
    ) {
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{scope},{},{},{},{n},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(provider),
            csv_field(instance),
            csv_field(tenant),
            a.availability.map(|x| format!("{x:.6}")).unwrap_or_default(),
            a.observed_ms,
            a.connected_ms,
            a.maintenance_ms,
            a.down_ms,
            a.outages,
            opt(a.mttr_ms),
            opt(a.longest_outage_ms),
            a.provider_down_ms,
            a.provider_outages,
            a.provider_silent_ms,
            rc.needs_person_reconnects,
            opt(rc.reconnect_median_ms),
            opt(rc.reconnect_max_ms),
            rc.reconnects_via_link,
            opt(rc.other_mttr_ms)
        );
    }
    for i in &r.instances {
        row(&mut out, "instance", &i.provider, &i.instance, &i.tenant, 1, &i.figures, &i.reconnects);
    }
    for t in &r.tenants {
        row(&mut out, "tenant", "", "", &t.tenant, t.instances, &t.figures, &t.reconnects);
    }
    out
}

/// `--since`/`--until`: a duration back from `now` (`30d`, `1h`) or an
/// RFC 3339 instant (`2026-11-01T00:00:00Z`).
pub fn parse_instant(s: &str, now: Ts) -> std::result::Result<Ts, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(Ts(t.timestamp_millis()));
    }
    match humantime::parse_duration(s.trim()) {
        Ok(d) => Ok(Ts(now.0.saturating_sub(duration_ms(d)))),
        Err(_) => Err(format!("`{s}` is neither a duration back from now (30d, 12h) nor an RFC 3339 instant")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_durations_back_or_rfc3339() {
        let now = Ts(10 * 86_400_000);
        assert_eq!(parse_instant("1d", now), Ok(Ts(9 * 86_400_000)));
        assert_eq!(parse_instant("1970-01-02T00:00:00Z", now), Ok(Ts(86_400_000)));
        assert!(parse_instant("yesterday", now).is_err());
    }

    #[test]
    fn a_share_never_rounds_up_to_a_hundred() {
        let a = |connected_ms, observed_ms, maintenance_ms| Availability {
            connected_ms,
            observed_ms,
            maintenance_ms,
            ..Availability::default()
        };
        assert_eq!(percent(&a(99_999, 100_000, 0)), "99.99%");
        assert_eq!(percent(&a(9_995, 10_010, 10)), "99.95%");
        assert_eq!(percent(&a(100, 100, 0)), "100.00%");
        assert_eq!(percent(&a(0, 100, 100)), "—");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
