//! The status page at `/`: server-rendered HTML, no JavaScript framework,
//! refreshes itself every 15 s, readable on a phone. Counts by health, every
//! instance (tenant, provider, health, since, last webhook, last recovery
//! attempt, open outage), a tenant filter, recent outages. Same credential as
//! the API: HTTP Basic with the admin token as password, or a login form that
//! starts a server-side session ([`super::login`]: random cookie, 12 h,
//! revocable; failed credentials limited per client address).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::IpAddr;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::AppState;
use super::auth::basic_password;
use super::login::{self, ClientAddr};
use crate::config::Secret;
use crate::domain::time::human_duration;
use crate::domain::{Health, Ts};
use crate::store::InstanceFilter;

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(page)).route("/login", post(login))
}

/// May this request see the page? A live session, else a Basic password
/// (failures counted per address); otherwise the answer to send instead.
async fn page_access(app: &AppState, token: &Secret, headers: &HeaderMap, ip: IpAddr) -> Result<(), Response> {
    let sup = app.sup();
    if let Some(value) = login::session_from(headers) {
        match sup.store().session_valid(&login::session_id(value), &login::admin_fingerprint(token), sup.now()).await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "status page: cannot check the session"),
        }
    }
    let Some(password) = basic_password(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())) else {
        return Err(login_form(StatusCode::UNAUTHORIZED, "Sign in with the admin token."));
    };
    app.guard.check(ip).map_err(too_many)?;
    if token.matches(password.as_bytes()) {
        return Ok(());
    }
    app.guard.failed(ip).map_err(too_many)?;
    Err(login_form(StatusCode::UNAUTHORIZED, "Wrong token."))
}

/// 429 for an address with too many failed sign-ins.
fn too_many(wait: std::time::Duration) -> Response {
    let secs = login::retry_after_secs(wait);
    let body = format!("<h1>wa-sentinel</h1><p>Too many failed sign-ins from this address: try again in {secs} s.</p>");
    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, secs.to_string())], Html(shell("wa-sentinel", &body, false)))
        .into_response()
}

/// Escape text for HTML (instance names come from providers: never trust them).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;padding:12px;background:#f6f7f9;color:#1b1f24}\
h1{font-size:1.3em;margin:0 0 8px}h2{font-size:1.1em;margin:18px 0 6px}\
.counts{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}.count{background:#fff;border-radius:6px;padding:6px 10px;box-shadow:0 1px 2px #0002}\
.wrap{overflow-x:auto}table{border-collapse:collapse;width:100%;background:#fff;font-size:.9em}\
th,td{padding:6px 8px;border-bottom:1px solid #e3e5e8;text-align:left;white-space:nowrap}\
.h{display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;font-size:.85em}\
.connected{background:#2e8b57}.degraded,.connecting{background:#d08c00}.disconnected,.logged_out{background:#c0392b}\
.missing,.unknown{background:#7f8c8d}form{margin:6px 0}input,select,button{font-size:1em;padding:4px 6px}\
.muted{color:#6b7280;font-size:.85em}";

fn shell(title: &str, body: &str, refresh: bool) -> String {
    let meta = if refresh { "<meta http-equiv=\"refresh\" content=\"15\">" } else { "" };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{meta}\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        esc(title)
    )
}

fn login_form(status: StatusCode, note: &str) -> Response {
    let body = format!(
        "<h1>wa-sentinel</h1><p>{}</p><form method=\"post\" action=\"/login\">\
         <input type=\"password\" name=\"token\" placeholder=\"admin token\" autocomplete=\"current-password\" required> \
         <button type=\"submit\">Sign in</button></form>",
        esc(note)
    );
    (
        status,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"wa-sentinel\"")],
        Html(shell("wa-sentinel: sign in", &body, false)),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

async fn login(State(app): State<AppState>, ClientAddr(ip): ClientAddr, Form(f): Form<LoginForm>) -> Response {
    let sup = app.sup();
    let cfg = sup.config();
    let Some(token) = &cfg.server.admin_token else { return disabled() };
    if let Err(wait) = app.guard.check(ip) {
        return too_many(wait);
    }
    if !token.matches(f.token.as_bytes()) {
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
        return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable; retry later (the log has the detail)\n")
            .into_response();
    }
    let secure = cfg.server.public_url.as_deref().is_some_and(|u| u.starts_with("https://"));
    let cookie = login::session_cookie(&value, secure);
    (StatusCode::SEE_OTHER, [(header::SET_COOKIE, cookie), (header::LOCATION, "/".to_string())]).into_response()
}

fn disabled() -> Response {
    let body = "<h1>wa-sentinel</h1><p>The status page is disabled: set <code>server.admin_token_env</code> \
                (or <code>_file</code>) in the configuration to enable it.</p>";
    (StatusCode::FORBIDDEN, Html(shell("wa-sentinel", body, false))).into_response()
}

#[derive(Deserialize)]
pub struct PageQuery {
    tenant: Option<String>,
}

fn ago(now: Ts, t: Option<Ts>) -> String {
    match t {
        Some(t) => format!("{} ago", human_duration(now.since(t))),
        None => "—".to_string(),
    }
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
    let all = match store.instances(&InstanceFilter::default()).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "status page: database error");
            return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable; retry later (the log has the detail)\n")
                .into_response();
        }
    };
    let outages = store.outages(None, false, 20).await.unwrap_or_default();
    let now = app.sup().now();
    let tenant = q.tenant.filter(|t| !t.is_empty());
    let mut rows: Vec<_> = all.iter().filter(|r| tenant.as_ref().is_none_or(|t| &r.tenant == t)).collect();
    // Trouble first: what needs an operator is at the top of a phone screen.
    rows.sort_by_key(|r| (r.state.health == Health::Connected, r.key.clone()));

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
    b.push_str("<form method=\"get\" action=\"/\"><select name=\"tenant\"><option value=\"\">all tenants</option>");
    for t in tenants {
        let sel = if tenant.as_deref() == Some(t) { " selected" } else { "" };
        let _ = write!(b, "<option value=\"{0}\"{sel}>{0}</option>", esc(t));
    }
    b.push_str("</select> <button type=\"submit\">Filter</button></form>");

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

    b.push_str("<h2>Instances</h2><div class=\"wrap\"><table><thead><tr><th>Instance</th><th>Tenant</th><th>Provider</th>\
                <th>Health</th><th>Since</th><th>Last webhook</th><th>Last recovery</th><th>Open outage</th></tr></thead><tbody>");
    for r in &rows {
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
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><span class=\"h {h}\" title=\"{}\">{h}</span>{maint}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.key.name),
            esc(&r.tenant),
            esc(&r.key.provider),
            esc(&r.state.reason),
            ago(now, Some(r.state.health_since)),
            ago(now, r.state.last_webhook_at),
            ago(now, r.state.last_restart_attempt),
            outage
        );
    }
    b.push_str("</tbody></table></div>");

    b.push_str("<h2>Recent outages</h2><div class=\"wrap\"><table><thead><tr><th>Started</th><th>Duration</th><th>Instance</th>\
                <th>Cause</th><th>Restarts</th><th>Recovered by</th></tr></thead><tbody>");
    for o in outages.iter().filter(|o| tenant.is_none() || o.tenant == tenant) {
        let who = match &o.instance {
            Some(n) => format!("{}/{}", o.provider, n),
            None => format!("{} (provider)", o.provider),
        };
        let dur = human_duration(o.ended_at.unwrap_or(now).since(o.started_at));
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}{}</td><td>{}</td><td title=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&o.started_at.rfc3339()),
            dur,
            if o.ended_at.is_none() { "+" } else { "" },
            esc(&who),
            esc(&o.reason),
            esc(&o.cause),
            o.restart_attempts,
            esc(o.recovered_by.as_deref().unwrap_or("(open)"))
        );
    }
    b.push_str("</tbody></table></div>");
    Html(shell("wa-sentinel status", &b, true)).into_response()
}
