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
//! address). Every answer carries `Content-Security-Policy: default-src
//! 'self'` (the stylesheet is `/status.css`; there is no script at all).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::IpAddr;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::AppState;
use super::auth::basic_password;
use super::body::{ADMIN_MAX_BODY, BodyError, is_form, read_limited};
use super::html::{self, SEGMENTS, ago, bar, esc, instance_href, respond, shell};
use super::login::{self, ClientAddr};
use crate::config::Secret;
use crate::domain::availability::{Availability, History, State as Seg, availability, segments};
use crate::domain::time::human_duration;
use crate::domain::{Health, Ts};
use crate::report::{self, ReportQuery, percent};
use crate::store::{HistoryFilter, InstanceFilter, InstanceHistory};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/login", get(login_page).post(login))
        .route("/status.css", get(stylesheet))
        .merge(super::instance_page::routes())
        .layer(axum::extract::DefaultBodyLimit::max(ADMIN_MAX_BODY))
}

/// `/status.css` (no credential: it holds nothing but style).
async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=300")],
        html::stylesheet(),
    )
        .into_response()
}

/// Who is looking: signed in with the form (a session, which may take
/// actions) or with HTTP Basic (which may only look: a browser sends Basic
/// credentials with any cross-site request, and there is no session to bind
/// a CSRF token to).
pub struct Viewer {
    /// The session cookie's value, when signed in with the form.
    pub session: Option<String>,
}

/// May this request see the page? A live session, else a Basic password
/// (failures counted per address); otherwise the answer to send instead.
pub async fn page_access(app: &AppState, token: &Secret, headers: &HeaderMap, ip: IpAddr) -> Result<Viewer, Response> {
    let sup = app.sup();
    if let Some(value) = login::session_from(headers) {
        match sup.store().session_valid(&login::session_id(value), &login::admin_fingerprint(token), sup.now()).await {
            Ok(true) => return Ok(Viewer { session: Some(value.to_string()) }),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "status page: cannot check the session"),
        }
    }
    let Some(password) = basic_password(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())) else {
        return Err(login_form(StatusCode::UNAUTHORIZED, "Sign in with the admin token."));
    };
    app.guard.check(ip).map_err(too_many)?;
    if token.matches(password.as_bytes()) {
        return Ok(Viewer { session: None });
    }
    app.guard.failed(ip).map_err(too_many)?;
    Err(login_form(StatusCode::UNAUTHORIZED, "Wrong token."))
}

/// 429 for an address with too many failed sign-ins.
pub fn too_many(wait: std::time::Duration) -> Response {
    let secs = login::retry_after_secs(wait);
    let body = format!("<h1>wa-sentinel</h1><p>Too many failed sign-ins from this address: try again in {secs} s.</p>");
    let mut r = respond(StatusCode::TOO_MANY_REQUESTS, shell("wa-sentinel", &body, false));
    r.headers_mut().insert(header::RETRY_AFTER, secs.into());
    r
}

fn login_form(status: StatusCode, note: &str) -> Response {
    let mut r = login_form_page(status, note);
    r.headers_mut().insert(header::WWW_AUTHENTICATE, "Basic realm=\"wa-sentinel\"".parse().expect("a valid header"));
    r
}

/// `GET /login`: the form alone (no Basic challenge, so a browser shows the form).
async fn login_page() -> Response {
    login_form_page(StatusCode::OK, "Sign in with the admin token.")
}

fn login_form_page(status: StatusCode, note: &str) -> Response {
    let body = format!(
        "<h1>wa-sentinel</h1><p>{}</p><form method=\"post\" action=\"/login\">\
         <input type=\"password\" name=\"token\" placeholder=\"admin token\" autocomplete=\"current-password\" required> \
         <button type=\"submit\">Sign in</button></form>",
        esc(note)
    );
    respond(status, shell("wa-sentinel: sign in", &body, false))
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /login`: the form's body *is* the credential, so it is read — but
/// only from an address that is not locked out, at most [`ADMIN_MAX_BODY`],
/// and a body that carries no readable `token` (another content type, broken
/// form encoding) is a failed sign-in like a wrong token: counted, 401.
async fn login(State(app): State<AppState>, ClientAddr(ip): ClientAddr, req: Request) -> Response {
    let sup = app.sup();
    let cfg = sup.config();
    let Some(token) = &cfg.server.admin_token else { return disabled() };
    if let Err(wait) = app.guard.check(ip) {
        return too_many(wait);
    }
    let (parts, body) = req.into_parts();
    let given = match read_limited(&parts.headers, body, ADMIN_MAX_BODY).await {
        Ok(bytes) if is_form(&parts.headers) => serde_urlencoded::from_bytes::<LoginForm>(&bytes).ok(),
        Ok(_) => None,
        Err(e @ BodyError::TooLarge) => return body_refused(StatusCode::PAYLOAD_TOO_LARGE, e),
        Err(e @ BodyError::Unreadable) => return body_refused(StatusCode::BAD_REQUEST, e),
    };
    if !given.is_some_and(|f| token.matches(f.token.as_bytes())) {
        return match app.guard.failed(ip) {
            Ok(()) => login_form(StatusCode::UNAUTHORIZED, "Wrong token."),
            Err(wait) => too_many(wait),
        };
    }
    let value = login::new_session_value();
    let now = sup.now();
    let expires = now.plus(login::SESSION_TTL);
    if let Err(e) =
        sup.store().session_create(&login::session_id(&value), &login::admin_fingerprint(token), now, expires).await
    {
        tracing::warn!(error = %e, "status page: cannot record a session");
        return unavailable();
    }
    let secure = cfg.server.public_url.as_deref().is_some_and(|u| u.starts_with("https://"));
    let cookie = login::session_cookie(&value, secure);
    (StatusCode::SEE_OTHER, [(header::SET_COOKIE, cookie), (header::LOCATION, "/".to_string())]).into_response()
}

/// A body the admin surface does not read (too large, broken), as a page.
pub fn body_refused(status: StatusCode, e: BodyError) -> Response {
    let body = format!("<h1>wa-sentinel</h1><p>{}.</p><p><a href=\"/\">Back</a></p>", esc(&e.to_string()));
    respond(status, shell("wa-sentinel", &body, false))
}

/// 503 in operator words (the error itself went to the log).
pub fn unavailable() -> Response {
    let body = "<h1>wa-sentinel</h1><p>Not available: database unreachable; retry later (the log has the detail).</p>";
    respond(StatusCode::SERVICE_UNAVAILABLE, shell("wa-sentinel", body, false))
}

pub fn disabled() -> Response {
    let body = "<h1>wa-sentinel</h1><p>The status page is disabled: set <code>server.admin_token_env</code> \
                (or <code>_file</code>) in the configuration to enable it.</p>";
    respond(StatusCode::FORBIDDEN, shell("wa-sentinel", body, false))
}

#[derive(Deserialize)]
pub struct PageQuery {
    tenant: Option<String>,
    range: Option<String>,
}

const DAY_MS: i64 = 86_400_000;
const MONTH_MS: i64 = 30 * DAY_MS;

/// The span of the uptime bars: 24 h by default, or 7 d / 30 d.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Day,
    Week,
    Month,
}

impl Range {
    pub fn parse(s: Option<&str>) -> Range {
        match s {
            Some("7d") => Range::Week,
            Some("30d") => Range::Month,
            _ => Range::Day,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Range::Day => "24 h",
            Range::Week => "7 d",
            Range::Month => "30 d",
        }
    }

    pub fn ms(self) -> i64 {
        match self {
            Range::Day => DAY_MS,
            Range::Week => 7 * DAY_MS,
            Range::Month => MONTH_MS,
        }
    }
}

/// What the page shows of one instance's history: the 24 h and 30 d figures
/// and the uptime bar over the chosen range.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub day: Availability,
    pub month: Availability,
    pub bar: Vec<Seg>,
}

impl Figures {
    pub fn of(h: &History, range: Range, now: Ts) -> Figures {
        Figures {
            day: availability(h, Ts(now.0 - DAY_MS), now, now),
            month: availability(h, Ts(now.0 - MONTH_MS), now, now),
            bar: segments(h, Ts(now.0 - range.ms()), now, now, SEGMENTS),
        }
    }
}

/// The histories the page needs (30 days of every present instance), by instance id.
pub async fn histories_by_id(
    store: &crate::store::Store,
    f: HistoryFilter,
    now: Ts,
) -> crate::store::Result<BTreeMap<String, InstanceHistory>> {
    let rows = store.histories(&f, Ts(now.0 - MONTH_MS), now).await?;
    Ok(rows.into_iter().map(|h| (h.id.clone(), h)).collect())
}

/// The 24 h / 7 d / 30 d switch, keeping the other query parameters.
pub fn range_switch(range: Range, keep: &str) -> String {
    let mut out = String::from("<div class=\"ranges muted\">Uptime bars over ");
    for r in [Range::Day, Range::Week, Range::Month] {
        if r == range {
            let _ = write!(out, "<b>{}</b>", r.label());
        } else {
            let _ = write!(out, "<a href=\"?range={}{}\">{}</a>", r.as_str(), esc(keep), r.label());
        }
    }
    out.push_str("</div>");
    out.push_str(&html::legend());
    out
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
    let month_from = Ts(now.0 - MONTH_MS);
    let all_filter = HistoryFilter { include_retired: true, ..HistoryFilter::default() };
    let histories = match store.histories(&all_filter, month_from, now).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "status page: database error");
            return unavailable();
        }
    };
    let by_id: BTreeMap<&str, &InstanceHistory> = histories.iter().map(|h| (h.id.as_str(), h)).collect();
    let outages = store.outages(None, false, 20).await.unwrap_or_default();
    let range = Range::parse(q.range.as_deref());
    let tenant = q.tenant.filter(|t| !t.is_empty());
    let mut rows: Vec<_> = all.iter().filter(|r| tenant.as_ref().is_none_or(|t| &r.tenant == t)).collect();
    // Trouble first: what needs an operator is at the top of a phone screen.
    rows.sort_by_key(|r| (r.state.health == Health::Connected, r.key.clone()));
    let figures: Vec<Figures> = rows
        .iter()
        .map(|r| by_id.get(r.id.as_str()).map(|h| Figures::of(&h.history, range, now)).unwrap_or_default())
        .collect();

    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>wa-sentinel</h1><div class=\"muted\">{} instance(s) · updated {} UTC · refreshes every 15 s</div>",
        rows.len(),
        esc(&now.rfc3339())
    );
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        *counts.entry(r.state.health.as_str()).or_default() += 1;
    }
    b.push_str("<div class=\"counts\">");
    for h in Health::ALL {
        if let Some(n) = counts.get(h.as_str()) {
            let _ = write!(b, "<span class=\"count\"><span class=\"h {0}\">{0}</span> {1}</span>", h.as_str(), n);
        }
    }
    b.push_str("</div>");
    let mut tenants: Vec<&str> = all.iter().map(|r| r.tenant.as_str()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let _ = write!(
        b,
        "<form method=\"get\" action=\"/\"><input type=\"hidden\" name=\"range\" value=\"{}\">\
         <select name=\"tenant\"><option value=\"\">all tenants</option>",
        range.as_str()
    );
    for t in tenants {
        let sel = if tenant.as_deref() == Some(t) { " selected" } else { "" };
        let _ = write!(b, "<option value=\"{0}\"{sel}>{0}</option>", esc(t));
    }
    b.push_str("</select> <button type=\"submit\">Filter</button></form>");
    let keep = tenant.as_deref().map(|t| format!("&tenant={}", html::seg(t))).unwrap_or_default();
    b.push_str(&range_switch(range, &keep));

    let providers: Vec<(String, String)> =
        sup.config().providers.iter().map(|p| (p.name.clone(), p.kind.as_str().to_string())).collect();
    let overview = store.provider_overview(&providers, &|p| sup.index().last_webhook_of(p)).await.unwrap_or_default();
    b.push_str(
        "<h2>Providers</h2><div class=\"wrap\"><table><thead><tr><th>Provider</th><th>Kind</th><th>State</th>\
                <th>Last webhook</th><th>Version</th><th>Last remediation</th></tr></thead><tbody>",
    );
    for p in &overview {
        // The instance colours: ok reads as connected, silent as degraded, the rest as disconnected.
        let class = match p.state {
            "ok" => "connected",
            "silent" => "degraded",
            _ => "disconnected",
        };
        let since = p.since.map(|t| format!(" {}", ago(now, Some(t)))).unwrap_or_default();
        let remediation = match &p.remediation {
            Some(r) => format!(
                "{} · <code>{}</code> · {}",
                ago(now, Some(r.at)),
                esc(&r.command),
                esc(r.result.as_deref().unwrap_or("running or no result recorded"))
            ),
            None => "—".into(),
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td><span class=\"h {class}\" title=\"{}\">{}</span>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td></tr>",
            esc(&p.name),
            esc(&p.kind),
            esc(p.reason.as_deref().unwrap_or("")),
            p.state,
            since,
            ago(now, p.last_webhook),
            esc(p.version.as_deref().unwrap_or("—")),
            remediation
        );
    }
    b.push_str("</tbody></table></div>");

    // Tenants: the report's lines over the last 24 h and 30 d (retired
    // instances of the window included), and the worst of their bars.
    let month_q = ReportQuery { from: month_from, to: now, tenant: tenant.clone(), provider: None };
    let month = report::from_histories(&histories, &month_q, now);
    let day = report::from_histories(&histories, &ReportQuery { from: Ts(now.0 - DAY_MS), ..month_q.clone() }, now);
    let _ = write!(
        b,
        "<h2>Tenants</h2><div class=\"wrap\"><table><thead><tr><th>Tenant</th><th>Instances</th>\
         <th>Uptime ({})</th><th>24 h</th><th>30 d</th><th>Outages 30 d</th><th>Down 30 d</th>\
         <th>Provider silent 30 d</th></tr></thead><tbody>",
        range.label()
    );
    for t in &month.tenants {
        let of_tenant = |h: &&InstanceHistory| h.tenant == t.tenant;
        let mut worst: Vec<Seg> = Vec::new();
        for h in histories.iter().filter(of_tenant) {
            let bar = segments(&h.history, Ts(now.0 - range.ms()), now, now, SEGMENTS);
            worst.resize(bar.len(), Seg::NoData);
            for (a, b) in worst.iter_mut().zip(&bar) {
                *a = (*a).max(*b);
            }
        }
        let retired = month.instances.iter().filter(|i| i.tenant == t.tenant && !i.present).count();
        let retired =
            if retired > 0 { format!(" <span class=\"muted\">({retired} retired)</span>") } else { String::new() };
        let day_figures = day.tenants.iter().find(|d| d.tenant == t.tenant).map(|d| d.figures).unwrap_or_default();
        let _ = write!(
            b,
            "<tr><td><a href=\"/?tenant={}&amp;range={}\">{}</a></td><td>{}{retired}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&html::seg(&t.tenant)),
            range.as_str(),
            esc(&t.tenant),
            t.instances,
            bar(&worst, Ts(now.0 - range.ms()), now, false),
            percent(&day_figures),
            percent(&t.figures),
            t.figures.outages,
            html::dur_ms(t.figures.down_ms),
            html::dur_ms(t.figures.provider_silent_ms)
        );
    }
    b.push_str("</tbody></table></div>");

    let _ = write!(
        b,
        "<h2>Instances</h2><div class=\"wrap\"><table><thead><tr><th>Instance</th><th>Health</th>\
         <th>Uptime ({})</th><th>24 h</th><th>30 d</th><th>Tenant</th><th>Provider</th><th>Since</th>\
         <th>Last webhook</th><th>Last recovery</th><th>Open outage</th></tr></thead><tbody>",
        range.label()
    );
    for (r, f) in rows.iter().zip(&figures) {
        let h = r.state.health.as_str();
        let maint = if r.state.in_maintenance(now) { " <span class=\"muted\">(maintenance)</span>" } else { "" };
        let outage = match &r.state.outage {
            Some(o) => format!(
                "{} · {} · {} restart(s)",
                esc(o.cause.as_str()),
                ago(now, Some(o.started_at)),
                o.restart_attempts
            ),
            None => "—".into(),
        };
        let _ = write!(
            b,
            "<tr><td><a href=\"{}\">{}</a></td><td><span class=\"h {h}\" title=\"{}\">{h}</span>{maint}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&instance_href(&r.key.provider, &r.key.name)),
            esc(&r.key.name),
            esc(&r.state.reason),
            bar(&f.bar, Ts(now.0 - range.ms()), now, false),
            percent(&f.day),
            percent(&f.month),
            esc(&r.tenant),
            esc(&r.key.provider),
            ago(now, Some(r.state.health_since)),
            ago(now, r.state.last_webhook_at),
            ago(now, r.state.last_restart_attempt),
            outage
        );
    }
    b.push_str("</tbody></table></div>");

    // Retired in the window: counted in their tenant's figures above, and
    // each record's own page keeps its history.
    let retired: Vec<&InstanceHistory> =
        histories.iter().filter(|h| !h.present && tenant.as_ref().is_none_or(|t| &h.tenant == t)).collect();
    if !retired.is_empty() {
        b.push_str(
            "<h2>Retired in the last 30 d</h2><div class=\"wrap\"><table><thead><tr><th>Instance</th><th>Tenant</th>\
             <th>Provider</th><th>Retired</th><th>30 d</th><th>Outages 30 d</th><th>Down 30 d</th></tr></thead><tbody>",
        );
        for h in retired {
            let f = availability(&h.history, month_from, now, now);
            let href = format!("{}?id={}", instance_href(&h.key.provider, &h.key.name), html::seg(&h.id));
            let _ = write!(
                b,
                "<tr><td><a href=\"{}\">{}</a> <span class=\"muted\">(retired)</span></td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&href),
                esc(&h.key.name),
                esc(&h.tenant),
                esc(&h.key.provider),
                ago(now, h.history.retired_at),
                percent(&f),
                f.outages,
                html::dur_ms(f.down_ms)
            );
        }
        b.push_str("</tbody></table></div>");
    }

    b.push_str("<h2>Recent outages</h2><div class=\"wrap\"><table><thead><tr><th>Started</th><th>Duration</th><th>Instance</th>\
                <th>Cause</th><th>Restarts</th><th>Recovered by</th></tr></thead><tbody>");
    for o in outages.iter().filter(|o| tenant.is_none() || o.tenant == tenant) {
        let who = match &o.instance {
            // The page of the very record the outage belongs to (it may be retired).
            Some(n) => {
                let href = match &o.instance_id {
                    Some(id) => format!("{}?id={}", instance_href(&o.provider, n), html::seg(id)),
                    None => instance_href(&o.provider, n),
                };
                format!("<a href=\"{}\">{}/{}</a>", esc(&href), esc(&o.provider), esc(n))
            }
            None => format!("{} (provider)", esc(&o.provider)),
        };
        let dur = human_duration(o.ended_at.unwrap_or(now).since(o.started_at));
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}{}</td><td>{}</td><td title=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&o.started_at.rfc3339()),
            dur,
            if o.ended_at.is_none() { "+" } else { "" },
            who,
            esc(&o.reason),
            esc(&o.cause),
            o.restart_attempts,
            esc(o.recovered_by.as_deref().unwrap_or("(open)"))
        );
    }
    b.push_str("</tbody></table></div>");
    respond(StatusCode::OK, shell("wa-sentinel status", &b, true))
}
