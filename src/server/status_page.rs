//! The status page at `/`: server-rendered HTML, no JavaScript, refreshes
//! itself every 15 s, readable on a phone. Counts by health; per tenant, its
//! 24 h / 30 d availability and uptime bar; every instance (tenant, provider,
//! health, since, last webhook, last recovery attempt, open outage) with a
//! 90-segment uptime bar (24 h, or 7 d / 30 d) and its 24 h / 30 d
//! availability, linking to its own page ([`super::instance_page`]); a tenant
//! filter; instances retired in the last 30 days; recent outages. The figures
//! come from [`crate::domain::availability`], the function behind
//! `wa-sentinel report`; a tenant's are [`crate::report::from_histories`]'s
//! lines, retired instances of the window included, as in the report.
//!
//! Same credential as the API: HTTP Basic with the admin token as password,
//! or a login form that starts a server-side session ([`super::login`]:
//! random cookie, 12 h, revocable; failed credentials limited per client
//! address; [`super::admin_access`]). Every answer carries
//! `Content-Security-Policy: default-src 'self'` (the stylesheet is
//! `/status.css`; there is no script at all). Rendered with maud: every name
//! a provider or an operator chose is escaped by the template.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;

use super::AppState;
use super::admin_access::{disabled, page_access, unavailable};
use super::html::{self, SEGMENTS, ago, bar, instance_href, respond, shell};
use super::login::ClientAddr;
use super::uptime::{DAY_MS, Figures, MONTH_MS, Range, range_switch};
use crate::domain::availability::{State as Seg, availability, segments};
use crate::domain::time::human_duration;
use crate::domain::{Health, Ts};
use crate::report::{self, ReportQuery, percent};
use crate::store::{HistoryFilter, InstanceFilter, InstanceHistory, InstanceRecord, OutageRecord, ProviderOverview};

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(page))
}

#[derive(Deserialize)]
pub struct PageQuery {
    tenant: Option<String>,
    range: Option<String>,
}

async fn page(
    State(app): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let sup = app.sup();
    let Some(token) = &sup.config().server.admin_token else { return disabled() };
    if let Err(answer) = page_access(&app, token, &headers, ip).await {
        return answer;
    }
    let sup = app.sup();
    let store = sup.store();
    let now = sup.now();
    let all = match store.instances(&InstanceFilter::default()).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "status page: database error");
            return unavailable();
        }
    };
    // 30 days of every instance that existed in them, retired ones included:
    // the tenant figures are the report's (one function, one answer), and
    // each present instance's bar and figures come from the same histories.
    let all_filter = HistoryFilter { include_retired: true, ..HistoryFilter::default() };
    let histories = match store.histories(&all_filter, Ts(now.0 - MONTH_MS), now).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "status page: database error");
            return unavailable();
        }
    };
    let outages = store.outages(None, false, 20).await.unwrap_or_default();
    let providers: Vec<(String, String)> =
        sup.config().providers.iter().map(|p| (p.name.clone(), p.kind.as_str().to_string())).collect();
    let overview = store.provider_overview(&providers, &|p| sup.index().last_webhook_of(p)).await.unwrap_or_default();
    let view = View {
        now,
        range: Range::parse(q.range.as_deref()),
        tenant: q.tenant.filter(|t| !t.is_empty()),
        all: &all,
        histories: &histories,
    };
    respond(StatusCode::OK, shell("wa-sentinel status", view.render(&overview, &outages), true))
}

/// Everything the page shows, read once.
struct View<'a> {
    now: Ts,
    range: Range,
    /// The tenant filter, if any.
    tenant: Option<String>,
    /// Every present instance.
    all: &'a [InstanceRecord],
    /// 30 days of every instance, retired ones of the window included.
    histories: &'a [InstanceHistory],
}

impl View<'_> {
    fn render(&self, overview: &[ProviderOverview], outages: &[OutageRecord]) -> Markup {
        let now = self.now;
        let mut rows: Vec<&InstanceRecord> =
            self.all.iter().filter(|r| self.tenant.as_ref().is_none_or(|t| &r.tenant == t)).collect();
        // Trouble first: what needs an operator is at the top of a phone screen.
        rows.sort_by_key(|r| (r.state.health == Health::Connected, r.key.clone()));
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &rows {
            *counts.entry(r.state.health.as_str()).or_default() += 1;
        }
        let mut tenants: Vec<&str> = self.all.iter().map(|r| r.tenant.as_str()).collect();
        tenants.sort_unstable();
        tenants.dedup();
        let keep = self.tenant.as_deref().map(|t| format!("&tenant={}", html::seg(t))).unwrap_or_default();
        html! {
            h1 { "wa-sentinel" }
            div.muted { (rows.len()) " instance(s) · updated " (now.rfc3339()) " UTC · refreshes every 15 s" }
            div.counts {
                @for h in Health::ALL {
                    @if let Some(n) = counts.get(h.as_str()) {
                        span.count { span class={ "h " (h.as_str()) } { (h.as_str()) } " " (n) }
                    }
                }
            }
            form method="get" action="/" {
                input type="hidden" name="range" value=(self.range.as_str());
                select name="tenant" {
                    option value="" { "all tenants" }
                    @for t in tenants {
                        option value=(t) selected[self.tenant.as_deref() == Some(t)] { (t) }
                    }
                }
                " "
                button type="submit" { "Filter" }
            }
            (range_switch(self.range, &keep))
            (providers_table(overview, now))
            (self.tenants_table())
            (self.instances_table(&rows))
            (self.retired_table())
            (self.outages_table(outages))
        }
    }

    fn bar_from(&self) -> Ts {
        Ts(self.now.0 - self.range.ms())
    }

    /// Tenants: the report's lines over the last 24 h and 30 d (retired
    /// instances of the window included), and the worst of their bars.
    fn tenants_table(&self) -> Markup {
        let now = self.now;
        let month_q = ReportQuery { from: Ts(now.0 - MONTH_MS), to: now, tenant: self.tenant.clone(), provider: None };
        let month = report::from_histories(self.histories, &month_q, now);
        let day = report::from_histories(self.histories, &ReportQuery { from: Ts(now.0 - DAY_MS), ..month_q }, now);
        html! {
            h2 { "Tenants" }
            div.wrap { table {
                thead { tr {
                    th { "Tenant" } th { "Instances" } th { "Uptime (" (self.range.label()) ")" } th { "24 h" }
                    th { "30 d" } th { "Outages 30 d" } th { "Down 30 d" } th { "Provider silent 30 d" }
                } }
                tbody {
                    @for t in &month.tenants {
                        @let worst = self.worst_bar(&t.tenant);
                        @let retired = month.instances.iter().filter(|i| i.tenant == t.tenant && !i.present).count();
                        @let day_figures =
                            day.tenants.iter().find(|d| d.tenant == t.tenant).map(|d| d.figures).unwrap_or_default();
                        tr {
                            td { a href={ "/?tenant=" (html::seg(&t.tenant)) "&range=" (self.range.as_str()) } { (t.tenant) } }
                            td { (t.instances) @if retired > 0 { " " span.muted { "(" (retired) " retired)" } } }
                            td { (bar(&worst, self.bar_from(), now, false)) }
                            td { (percent(&day_figures)) }
                            td { (percent(&t.figures)) }
                            td { (t.figures.outages) }
                            td { (html::dur_ms(t.figures.down_ms)) }
                            td { (html::dur_ms(t.figures.provider_silent_ms)) }
                        }
                    }
                }
            } }
        }
    }

    /// The worst state of a tenant's instances in each segment of the bar.
    fn worst_bar(&self, tenant: &str) -> Vec<Seg> {
        let mut worst: Vec<Seg> = Vec::new();
        for h in self.histories.iter().filter(|h| h.tenant == tenant) {
            let bar = segments(&h.history, self.bar_from(), self.now, self.now, SEGMENTS);
            worst.resize(bar.len(), Seg::NoData);
            for (a, b) in worst.iter_mut().zip(&bar) {
                *a = (*a).max(*b);
            }
        }
        worst
    }

    fn instances_table(&self, rows: &[&InstanceRecord]) -> Markup {
        let now = self.now;
        let by_id: BTreeMap<&str, &InstanceHistory> = self.histories.iter().map(|h| (h.id.as_str(), h)).collect();
        html! {
            h2 { "Instances" }
            div.wrap { table {
                thead { tr {
                    th { "Instance" } th { "Health" } th { "Uptime (" (self.range.label()) ")" } th { "24 h" } th { "30 d" }
                    th { "Tenant" } th { "Provider" } th { "Since" } th { "Last webhook" } th { "Last recovery" }
                    th { "Open outage" }
                } }
                tbody {
                    @for r in rows {
                        @let f = by_id.get(r.id.as_str()).map(|h| Figures::of(&h.history, self.range, now)).unwrap_or_default();
                        @let h = r.state.health.as_str();
                        tr {
                            td { a href=(instance_href(&r.key.provider, &r.key.name)) { (r.key.name) } }
                            td {
                                span class={ "h " (h) } title=(r.state.reason) { (h) }
                                @if r.state.in_maintenance(now) { " " span.muted { "(maintenance)" } }
                            }
                            td { (bar(&f.bar, self.bar_from(), now, false)) }
                            td { (percent(&f.day)) }
                            td { (percent(&f.month)) }
                            td { (r.tenant) }
                            td { (r.key.provider) }
                            td { (ago(now, Some(r.state.health_since))) }
                            td { (ago(now, r.state.last_webhook_at)) }
                            td { (ago(now, r.state.last_restart_attempt)) }
                            td {
                                @match &r.state.outage {
                                    Some(o) => { (o.cause.as_str()) " · " (ago(now, Some(o.started_at))) " · " (o.restart_attempts) " restart(s)" }
                                    None => "—",
                                }
                            }
                        }
                    }
                }
            } }
        }
    }

    /// Retired in the window: counted in their tenant's figures above, and
    /// each record's own page keeps its history.
    fn retired_table(&self) -> Markup {
        let now = self.now;
        let retired: Vec<&InstanceHistory> = self
            .histories
            .iter()
            .filter(|h| !h.present && self.tenant.as_ref().is_none_or(|t| &h.tenant == t))
            .collect();
        html! {
            @if !retired.is_empty() {
                h2 { "Retired in the last 30 d" }
                div.wrap { table {
                    thead { tr {
                        th { "Instance" } th { "Tenant" } th { "Provider" } th { "Retired" } th { "30 d" }
                        th { "Outages 30 d" } th { "Down 30 d" }
                    } }
                    tbody {
                        @for h in retired {
                            @let f = availability(&h.history, Ts(now.0 - MONTH_MS), now, now);
                            tr {
                                td {
                                    a href={ (instance_href(&h.key.provider, &h.key.name)) "?id=" (html::seg(&h.id)) } { (h.key.name) }
                                    " " span.muted { "(retired)" }
                                }
                                td { (h.tenant) }
                                td { (h.key.provider) }
                                td { (ago(now, h.history.retired_at)) }
                                td { (percent(&f)) }
                                td { (f.outages) }
                                td { (html::dur_ms(f.down_ms)) }
                            }
                        }
                    }
                } }
            }
        }
    }

    fn outages_table(&self, outages: &[OutageRecord]) -> Markup {
        let now = self.now;
        html! {
            h2 { "Recent outages" }
            div.wrap { table {
                thead { tr {
                    th { "Started" } th { "Duration" } th { "Instance" } th { "Cause" } th { "Restarts" } th { "Recovered by" }
                } }
                tbody {
                    @for o in outages.iter().filter(|o| self.tenant.is_none() || o.tenant == self.tenant) {
                        tr {
                            td { (o.started_at.rfc3339()) }
                            td { (human_duration(o.ended_at.unwrap_or(now).since(o.started_at))) @if o.ended_at.is_none() { "+" } }
                            td {
                                @match &o.instance {
                                    // The page of the very record the outage belongs to (it may be retired).
                                    Some(n) => {
                                        a href={
                                            (instance_href(&o.provider, n))
                                            @if let Some(id) = &o.instance_id { "?id=" (html::seg(id)) }
                                        } { (o.provider) "/" (n) }
                                    }
                                    None => { (o.provider) " (provider)" }
                                }
                            }
                            td title=(o.reason) { (o.cause) }
                            td { (o.restart_attempts) }
                            td { (o.recovered_by.as_deref().unwrap_or("(open)")) }
                        }
                    }
                }
            } }
        }
    }
}

fn providers_table(overview: &[ProviderOverview], now: Ts) -> Markup {
    html! {
        h2 { "Providers" }
        div.wrap { table {
            thead { tr {
                th { "Provider" } th { "Kind" } th { "State" } th { "Last webhook" } th { "Version" } th { "Last remediation" }
            } }
            tbody {
                @for p in overview {
                    // The instance colours: ok reads as connected, silent as degraded, the rest as disconnected.
                    @let class = match p.state { "ok" => "connected", "silent" => "degraded", _ => "disconnected" };
                    tr {
                        td { (p.name) }
                        td { (p.kind) }
                        td {
                            span class={ "h " (class) } title=(p.reason.as_deref().unwrap_or("")) { (p.state) }
                            @if let Some(t) = p.since { " " (ago(now, Some(t))) }
                        }
                        td { (ago(now, p.last_webhook)) }
                        td { (p.version.as_deref().unwrap_or("—")) }
                        td {
                            @match &p.remediation {
                                Some(r) => {
                                    (ago(now, Some(r.at))) " · " code { (r.command) } " · "
                                    (r.result.as_deref().unwrap_or("running or no result recorded"))
                                }
                                None => "—",
                            }
                        }
                    }
                }
            }
        } }
    }
}
