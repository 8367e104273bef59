//! The page of one instance, `/instances/{provider}/{name}`: current health
//! and cause, since when, last webhook, attempts and cooldown remaining, its
//! uptime bar and 24 h / 30 d figures, its outages (duration, how each ended)
//! and its timeline (the audit events — recovery calls and their outcomes,
//! webhook repairs, maintenance, operator actions — and the notices sent with
//! their delivery state).
//!
//! **Records**: a name deleted on the provider and created again has a record
//! per life (a new row id). The page shows the present record's history only
//! and links the retired ones; `?id=<record id>` opens a retired record's
//! page (its outages, timeline and figures; no actions).
//!
//! **Actions** (`POST /instances/{provider}/{name}/{restart|maintenance|webhook|pair-link|pair-revoke}`):
//! restart (refused inside the cooldown unless `force` is ticked),
//! maintenance on for a duration / off, re-apply the webhook config, issue a
//! re-pair link (answered with a page that shows it once: only its hash is
//! stored) or revoke the usable ones. They go
//! through the supervisor's own paths (`manual_restart`, the `Maintenance`
//! observation, `reapply_webhook`), exactly as `wa-sentinel restart` and the
//! API do. Each needs a signed-in session (the `/login` form) and that
//! session's CSRF token (an HMAC of the cookie, compared in constant time);
//! HTTP Basic viewers may look but not act, since a browser sends Basic
//! credentials with any cross-site request. Each action, done or refused, is
//! an audit event `operator_action` with the actor (`status page`) and the
//! client address; the answer is a redirect back to the page, which shows
//! that event's outcome (`?action=<event id>`: nothing from the URL is echoed).
//!
//! **Replicas**: a provider call is made only by the replica that leads the
//! provider (docs/operations.md#several-replicas-postgresql). Single-process (SQLite, or a replica leading it) the
//! call is made at once; on a replica that does not lead the provider,
//! restart and webhook re-apply are recorded for the leader, which carries
//! them out at the start of its next poll cycle of that provider
//! ([`crate::supervisor::requests`]; the page says `queued`, and the leader's
//! outcome appears on the timeline). Maintenance is a database change only
//! and is done at once on every replica.

use std::fmt::Write;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::body::{ADMIN_MAX_BODY, BodyError, is_form, read_limited};
use super::html::{ago, bar, dur_ms, esc, instance_href, respond, shell};
use super::login::{self, ClientAddr};
use super::status_page::{
    Figures, Range, body_refused, disabled, histories_by_id, page_access, range_switch, unavailable,
};
use crate::domain::availability::reconnects;
use crate::domain::health::Observation;
use crate::domain::time::human_duration;
use crate::domain::{InstanceKey, Ts};
use crate::report::percent;
use crate::store::{EventRecord, HistoryFilter, InstanceRecord, NoticeRecord, RecordRef};
use crate::supervisor::SupervisorError;
use crate::supervisor::requests::{Actor, Carried, ProviderAction, REQUEST_TTL};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/instances/{provider}/{name}", get(page))
        .route("/instances/{provider}/{name}/{action}", post(act))
}

#[derive(Deserialize)]
pub struct PageQuery {
    range: Option<String>,
    /// The id of the `operator_action` event to show the outcome of.
    action: Option<i64>,
    /// One record of this name (a retired one); default: the present record.
    id: Option<String>,
}

/// The link to one record of an instance's name.
fn record_href(key: &InstanceKey, id: &str) -> String {
    format!("{}?id={}", instance_href(&key.provider, &key.name), super::html::seg(id))
}

/// The records kept under `key` other than `shown`, as links ("" when none).
fn other_records(key: &InstanceKey, records: &[RecordRef], shown: &str, now: Ts) -> String {
    let links: Vec<String> = records
        .iter()
        .filter(|x| x.id != shown)
        .map(|x| match x.retired_at {
            _ if x.present => {
                format!("<a href=\"{}\">the current record</a>", esc(&instance_href(&key.provider, &key.name)))
            }
            Some(t) => format!(
                "<a href=\"{}\">a retired record</a> (created {} UTC, retired {})",
                esc(&record_href(key, &x.id)),
                esc(&x.created_at.rfc3339()),
                ago(now, Some(t))
            ),
            None => format!(
                "<a href=\"{}\">a retired record</a> (created {} UTC)",
                esc(&record_href(key, &x.id)),
                esc(&x.created_at.rfc3339())
            ),
        })
        .collect();
    if links.is_empty() {
        return String::new();
    }
    format!("<div class=\"note\">Other records of this name: {}.</div>", links.join(" · "))
}

fn not_found(key: &InstanceKey, records: &[RecordRef], now: Ts) -> Response {
    let body = format!(
        "<h1>wa-sentinel</h1><p>No current instance {}.</p>{}<p><a href=\"/\">All instances</a></p>",
        esc(&key.to_string()),
        other_records(key, records, "", now)
    );
    respond(StatusCode::NOT_FOUND, shell("wa-sentinel", &body, false))
}

/// One event's detail as `key: value` pairs (escaped), in words (an
/// observation stored as `Debug` text by an older release included).
fn detail_text(detail: &str) -> String {
    let mut v = serde_json::from_str::<serde_json::Value>(detail);
    if let Ok(v) = &mut v {
        crate::domain::describe::clean_detail(v);
    }
    match v {
        Ok(serde_json::Value::Object(m)) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{}: {}", esc(k), esc(s)),
                other => format!("{}: {}", esc(k), esc(&other.to_string())),
            })
            .collect::<Vec<_>>()
            .join(" · "),
        _ => esc(detail),
    }
}

async fn page(
    State(app): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    Path((provider, name)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Response {
    let sup = app.sup();
    let Some(token) = &sup.config().server.admin_token else { return disabled() };
    let viewer = match page_access(&app, token, &headers, ip).await {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    let key = InstanceKey::new(provider, name);
    match render(&app, &key, viewer.session.as_deref(), &q).await {
        Ok(Ok(html)) => respond(StatusCode::OK, html),
        Ok(Err(records)) => not_found(&key, &records, app.sup().now()),
        Err(e) => {
            tracing::warn!(error = %e, "instance page: database error");
            unavailable()
        }
    }
}

/// The page of one record of `key`: the present one, or the one `?id=`
/// names (a retired record of the same name). `Err(records)` when there is
/// no such record: the records kept under the name, for the 404 page.
async fn render(
    app: &AppState,
    key: &InstanceKey,
    session: Option<&str>,
    q: &PageQuery,
) -> crate::store::Result<Result<String, Vec<RecordRef>>> {
    let sup = app.sup();
    let store = sup.store();
    let now = sup.now();
    let records = store.records_of(key).await?;
    let found = match q.id.as_deref() {
        Some(id) if records.iter().any(|x| x.id == id) => store.instance_by_id(id).await?,
        Some(_) => None,
        None => store.instance(key).await?,
    };
    let Some(r) = found else { return Ok(Err(records)) };
    let range = Range::parse(q.range.as_deref());
    let f = HistoryFilter {
        provider: Some(key.provider.clone()),
        instance_id: Some(r.id.clone()),
        include_retired: true,
        ..Default::default()
    };
    let histories = histories_by_id(store, f, now).await?;
    let history = histories.get(&r.id);
    let figures = history.map(|h| Figures::of(&h.history, range, now)).unwrap_or_default();
    let month_ago = Ts(now.0 - 30 * 86_400_000);
    let repaired = history.map(|h| reconnects(&h.history, month_ago, now, now)).unwrap_or_default();
    // This record's history only: a name deleted and created again has a
    // record per life, each with its own outages, events and notices.
    let outages = store.outages_of_record(&r.id, 50).await?;
    let events = store.events(&r.id, 200).await?;
    let outage_ids: Vec<String> = outages.iter().map(|o| o.id.clone()).collect();
    let notices = store.notices_of(&r.id, &outage_ids, 100).await?;

    let mut b = String::new();
    let _ = write!(
        b,
        "<div class=\"muted\"><a href=\"/\">← all instances</a> · updated {} UTC · refreshes every 15 s</div>\
         <h1>{}{}</h1>",
        esc(&now.rfc3339()),
        esc(&key.to_string()),
        if r.present { "" } else { " <span class=\"muted\">(retired record)</span>" }
    );
    if !r.present {
        let when = records.iter().find(|x| x.id == r.id).and_then(|x| x.retired_at);
        let _ = write!(
            b,
            "<div class=\"note\">This record was retired{}: the instance was deleted on the provider or removed \
             from the configuration. Its history is kept; nothing is polled or done for it any more.</div>",
            when.map(|t| format!(" {}", ago(now, Some(t)))).unwrap_or_default()
        );
    }
    b.push_str(&other_records(key, &records, &r.id, now));
    if let Some(id) = q.action
        && let Some(e) = events.iter().find(|e| e.id == id && e.kind == "operator_action")
    {
        b.push_str(&action_note(e));
    }
    b.push_str(&summary(&r, now, &sup.config().policy));
    let _ = write!(
        b,
        "<h2>Availability</h2><div class=\"card\">{}<div>24 h: <b>{}</b> · 30 d: <b>{}</b> · outages 30 d: {} · \
         down 30 d: {} · MTTR 30 d: {} · provider down 30 d: {} · provider silent 30 d: {} · maintenance 30 d: {}</div>{}</div>",
        bar(&figures.bar, Ts(now.0 - range.ms()), now, true),
        percent(&figures.day),
        percent(&figures.month),
        figures.month.outages,
        dur_ms(figures.month.down_ms),
        figures.month.mttr_ms.map_or_else(|| "—".to_string(), dur_ms),
        dur_ms(figures.month.provider_down_ms),
        dur_ms(figures.month.provider_silent_ms),
        dur_ms(figures.month.maintenance_ms),
        range_switch(range, &q.id.as_deref().map(|id| format!("&id={}", super::html::seg(id))).unwrap_or_default())
    );
    let _ = write!(
        b,
        "<div class=\"card\">Needs-a-person outages reconnected 30 d: <b>{}</b> · time to reconnect: median {}, \
         max {} · through a re-pair link: {} · other outages' MTTR 30 d: {}</div>",
        repaired.needs_person_reconnects,
        repaired.reconnect_median_ms.map_or_else(|| "—".to_string(), dur_ms),
        repaired.reconnect_max_ms.map_or_else(|| "—".to_string(), dur_ms),
        repaired.reconnects_via_link,
        repaired.other_mttr_ms.map_or_else(|| "—".to_string(), dur_ms),
    );
    let pairing = sup.pairing_base().is_some();
    if r.present {
        b.push_str(&actions(&r, session, now, pairing));
    } else {
        b.push_str("<h2>Actions</h2><div class=\"note\">A retired record cannot be acted on.</div>");
    }

    b.push_str(
        "<h2>Outages</h2><div class=\"wrap\"><table><thead><tr><th>Started</th><th>Duration</th><th>Cause</th>\
         <th>Reason</th><th>Restarts</th><th>Ended by</th><th>Notified</th></tr></thead><tbody>",
    );
    for o in &outages {
        let d = human_duration(o.ended_at.unwrap_or(now).since(o.started_at));
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{d}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&o.started_at.rfc3339()),
            if o.ended_at.is_none() { "+" } else { "" },
            esc(&o.cause),
            esc(&o.reason),
            o.restart_attempts,
            esc(o.recovered_by.as_deref().unwrap_or("(open)")),
            if o.notified { "yes" } else { "no" }
        );
    }
    if outages.is_empty() {
        b.push_str("<tr><td colspan=\"7\" class=\"muted\">No outage on record.</td></tr>");
    }
    b.push_str("</tbody></table></div>");

    let links = store.pair_links_of(&r.id, 20).await?;
    b.push_str(&super::pair_links_html::section(
        &links,
        r.state.health == crate::domain::Health::Connected,
        now,
        pairing,
    ));
    b.push_str(&timeline(&events, &notices));
    Ok(Ok(shell(&format!("wa-sentinel: {key}"), &b, q.action.is_none())))
}

fn summary(r: &InstanceRecord, now: Ts, policy: &crate::domain::Policy) -> String {
    let s = &r.state;
    let h = s.health.as_str();
    let cause = s.outage.as_ref().map(|o| o.cause.as_str()).unwrap_or("—");
    let cooldown = match s.next_recovery_allowed(policy).filter(|t| *t > now) {
        Some(t) => format!("{} (until {} UTC)", human_duration(t.since(now)), esc(&t.rfc3339())),
        None => "none".to_string(),
    };
    let maintenance = match s.maintenance_until.filter(|u| *u > now) {
        Some(u) => format!("until {} UTC ({} left)", esc(&u.rfc3339()), human_duration(u.since(now))),
        None => "off".to_string(),
    };
    let webhook = match (r.webhook_ok, r.webhook_checked_at) {
        (Some(true), t) => format!("as desired (checked {})", ago(now, t)),
        (Some(false), t) => format!("<b>not as desired</b> (checked {})", ago(now, t)),
        (None, _) => "not checked yet".to_string(),
    };
    format!(
        "<div class=\"card\"><dl>\
         <dt>Health</dt><dd><span class=\"h {h}\">{h}</span> {}</dd>\
         <dt>Cause</dt><dd>{}</dd>\
         <dt>Since</dt><dd>{} UTC ({})</dd>\
         <dt>Tenant</dt><dd>{} <span class=\"muted\">(from {})</span></dd>\
         <dt>Last webhook</dt><dd>{}</dd>\
         <dt>Last poll</dt><dd>{}</dd>\
         <dt>Recovery attempts</dt><dd>{} in this outage · last {}</dd>\
         <dt>Cooldown left</dt><dd>{cooldown}</dd>\
         <dt>Maintenance</dt><dd>{maintenance}</dd>\
         <dt>Webhook config</dt><dd>{webhook}</dd>\
         </dl></div>",
        esc(&s.reason),
        esc(cause),
        esc(&s.health_since.rfc3339()),
        ago(now, Some(s.health_since)),
        esc(&r.tenant),
        esc(&r.tenant_source),
        ago(now, s.last_webhook_at),
        ago(now, r.last_health_check),
        s.outage.as_ref().map_or(0, |o| o.restart_attempts),
        ago(now, s.last_restart_attempt),
    )
}

/// The outcome of an action, from its audit event.
fn action_note(e: &EventRecord) -> String {
    let d: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
    let outcome = d["outcome"].as_str().unwrap_or("");
    let class = match outcome {
        "done" => "note ok",
        "queued" => "note",
        _ => "note err",
    };
    format!(
        "<div class=\"{class}\"><b>{}</b> {}: {}</div>",
        esc(d["action"].as_str().unwrap_or("action")),
        esc(outcome),
        esc(d["message"].as_str().unwrap_or(""))
    )
}

fn actions(r: &InstanceRecord, session: Option<&str>, now: Ts, pairing: bool) -> String {
    let Some(session) = session else {
        return "<h2>Actions</h2><div class=\"note\">Signed in with HTTP Basic: you may look, not act. \
                <a href=\"/login\">Sign in with the form</a> to restart, set maintenance or re-apply the webhook \
                config from this page.</div>"
            .to_string();
    };
    let base = instance_href(&r.key.provider, &r.key.name);
    let csrf = format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", login::csrf_token(session));
    let maintenance = if r.state.in_maintenance(now) {
        format!(
            "<form method=\"post\" action=\"{0}/maintenance\">{csrf}<input type=\"hidden\" name=\"off\" value=\"1\">\
             <button type=\"submit\">End maintenance</button></form>",
            esc(&base)
        )
    } else {
        format!(
            "<form method=\"post\" action=\"{0}/maintenance\">{csrf}<label>Maintenance for \
             <select name=\"duration\"><option>30m</option><option selected>2h</option><option>8h</option>\
             <option>24h</option><option>7d</option></select></label> \
             <button type=\"submit\">Start maintenance</button></form>",
            esc(&base)
        )
    };
    format!(
        "<h2>Actions</h2><div class=\"actions\">\
         <form method=\"post\" action=\"{0}/restart\">{csrf}<label><input type=\"checkbox\" name=\"force\" value=\"1\"> \
         force (inside the cooldown)</label> <button type=\"submit\">Restart</button></form>\
         {maintenance}\
         <form method=\"post\" action=\"{0}/webhook\">{csrf}<button type=\"submit\">Re-apply webhook config</button></form>\
         {pair}</div>",
        esc(&base),
        pair = if pairing { super::pair_links_html::actions(&base, &csrf_value(session)) } else { String::new() }
    )
}

fn csrf_value(session: &str) -> String {
    login::csrf_token(session)
}

/// Events and notices, newest first.
fn timeline(events: &[EventRecord], notices: &[NoticeRecord]) -> String {
    let mut rows: Vec<(i64, String)> = events
        .iter()
        .map(|e| {
            (
                e.at,
                format!(
                    "<tr><td>{}</td><td>{}</td><td class=\"detail\">{}</td></tr>",
                    esc(&Ts(e.at).rfc3339()),
                    esc(&e.kind),
                    detail_text(&e.detail)
                ),
            )
        })
        .collect();
    for n in notices {
        let state = match n.status.as_str() {
            "delivered" => format!("delivered {}", n.delivered_at.map(|t| Ts(t).rfc3339()).unwrap_or_default()),
            "dead" => format!("dead after {} attempt(s): {}", n.attempts, n.last_error.as_deref().unwrap_or("")),
            "handed_over" => n.last_error.clone().unwrap_or_else(|| "handed to its fallback".into()),
            _ => format!("pending ({} attempt(s) so far)", n.attempts),
        };
        rows.push((
            n.created_at,
            format!(
                "<tr><td>{}</td><td>notice {}</td><td class=\"detail\">to {} · {}</td></tr>",
                esc(&Ts(n.created_at).rfc3339()),
                esc(&n.kind),
                esc(&n.notifier),
                esc(&state)
            ),
        ));
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out = String::from(
        "<h2>Timeline</h2><div class=\"wrap\"><table><thead><tr><th>At</th><th>What</th><th>Detail</th></tr></thead><tbody>",
    );
    for (_, row) in &rows {
        out.push_str(row);
    }
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"3\" class=\"muted\">Nothing recorded yet.</td></tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

#[derive(Deserialize, Default)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    force: Option<String>,
    duration: Option<String>,
    off: Option<String>,
}

fn forbidden(why: &str) -> Response {
    let body = format!("<h1>wa-sentinel</h1><p>{}</p><p><a href=\"/\">Back</a></p>", esc(why));
    respond(StatusCode::FORBIDDEN, shell("wa-sentinel", &body, false))
}

/// An action form. The session is judged from the request's head first: a
/// request without one is refused before a byte of its body is read; only
/// then is the form read (at most [`ADMIN_MAX_BODY`]) and its CSRF token
/// checked.
async fn act(
    State(app): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Path((provider, name, action)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let sup = app.sup();
    let Some(token) = &sup.config().server.admin_token else { return disabled() };
    let (parts, body) = req.into_parts();
    let viewer = match page_access(&app, token, &parts.headers, ip).await {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    let Some(session) = viewer.session else {
        return forbidden("Actions need a session: sign in with the form at /login (HTTP Basic may only look).");
    };
    // A body that is not a form carries no CSRF token either: refused below.
    let form = match read_limited(&parts.headers, body, ADMIN_MAX_BODY).await {
        Ok(bytes) if is_form(&parts.headers) => serde_urlencoded::from_bytes::<ActionForm>(&bytes).unwrap_or_default(),
        Ok(_) => ActionForm::default(),
        Err(e @ BodyError::TooLarge) => return body_refused(StatusCode::PAYLOAD_TOO_LARGE, e),
        Err(e @ BodyError::Unreadable) => return body_refused(StatusCode::BAD_REQUEST, e),
    };
    if !login::csrf_matches(&session, &form.csrf) {
        tracing::warn!(client = %ip, action, "status page: action refused, missing or wrong CSRF token");
        return forbidden("This form is out of date or did not come from this page: reload the page and try again.");
    }
    let key = InstanceKey::new(provider, name);
    let rec = match sup.store().instance(&key).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(&key, &[], sup.now()),
        Err(e) => {
            tracing::warn!(error = %e, "status page: database error");
            return unavailable();
        }
    };
    let actor = Actor { name: "status page".to_string(), address: ip.to_string() };
    let mut minted = None;
    let (detail, result) = perform(&app, &key, &action, &form, &actor, &mut minted).await;
    let (outcome, message) = match &result {
        Ok(Carried::Done(m)) => ("done", m.clone()),
        Ok(Carried::Queued) => (
            "queued",
            format!(
                "this replica does not lead provider `{}`: the request went to its leader, which carries it out at \
                 the start of its next poll cycle (the outcome appears on the timeline; unclaimed after {} it expires)",
                key.provider,
                human_duration(REQUEST_TTL)
            ),
        ),
        Err(SupervisorError::Refused(m)) => ("refused", m.clone()),
        Err(SupervisorError::Provider { provider, source }) => {
            tracing::warn!(%provider, error = %source, "status page: provider call failed");
            ("failed", format!("provider `{provider}` did not carry out the call ({})", source.class))
        }
        Err(e @ (SupervisorError::UnknownInstance(_) | SupervisorError::UnknownProvider(_))) => {
            ("refused", e.to_string())
        }
        Err(SupervisorError::Store(e)) => {
            tracing::warn!(error = %e, "status page: database error");
            return unavailable();
        }
    };
    crate::events::operator_action(&key, &action, outcome, &ip);
    let mut ev = json!({
        "action": action, "actor": "status page", "address": ip.to_string(), "outcome": outcome, "message": message,
    });
    if let (Some(m), serde_json::Value::Object(d)) = (ev.as_object_mut(), detail) {
        m.extend(d);
    }
    let now = sup.now();
    match sup.store().record_action_event(&rec.id, &key.provider, &ev, now).await {
        // A new link is shown once, here: it is stored only as a hash.
        Ok(_) if minted.is_some() => {
            let link = minted.expect("checked");
            let back = instance_href(&key.provider, &key.name);
            respond(StatusCode::OK, super::pair_links_html::minted(&key.to_string(), &link.url, link.expires_at, &back))
        }
        Ok(id) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("{}?action={id}", instance_href(&key.provider, &key.name)))],
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "status page: cannot record the action");
            unavailable()
        }
    }
}

/// Carry out one action; returns the parameters to record and the outcome.
async fn perform(
    app: &AppState,
    key: &InstanceKey,
    action: &str,
    form: &ActionForm,
    actor: &Actor,
    minted: &mut Option<crate::supervisor::pairing::MintedLink>,
) -> (serde_json::Value, Result<Carried, SupervisorError>) {
    let sup = app.sup();
    match action {
        "pair-link" => {
            let d = form.duration.as_deref().unwrap_or("");
            let ttl = match crate::config::parse_duration(d) {
                Ok(d) => Some(d),
                Err(_) if d.is_empty() => None,
                Err(_) => {
                    return (json!({}), Err(SupervisorError::Refused(format!("`{d}` is not a duration like 2h"))));
                }
            };
            match sup.mint_pair_link(key, ttl, &actor.name).await {
                Ok(link) => {
                    let ev = json!({"link": link.id, "expires_at": link.expires_at.rfc3339()});
                    let msg = format!("{key}: re-pair link issued, works until {} UTC", link.expires_at.rfc3339());
                    *minted = Some(link);
                    (ev, Ok(Carried::Done(msg)))
                }
                Err(e) => (json!({}), Err(e)),
            }
        }
        "pair-revoke" => {
            let res = sup.revoke_pair_links(key, &actor.name).await;
            (json!({}), res.map(|n| Carried::Done(format!("{key}: {n} re-pair link(s) revoked"))))
        }
        "restart" => {
            let force = form.force.is_some();
            (json!({"force": force}), sup.provider_action(key, ProviderAction::Restart { force }, actor).await)
        }
        "webhook" => (json!({}), sup.provider_action(key, ProviderAction::ReapplyWebhook, actor).await),
        "maintenance" if form.off.is_some() => {
            let res = sup.observe(key, Observation::Maintenance(None), None).await;
            (json!({"until": null}), res.map(|_| Carried::Done(format!("{key}: maintenance ended"))))
        }
        "maintenance" => {
            let d = form.duration.as_deref().unwrap_or("");
            match crate::config::parse_duration(d) {
                Ok(d) if !d.is_zero() => {
                    let until = sup.now().plus(d);
                    let res = sup.observe(key, Observation::Maintenance(Some(until)), None).await;
                    (
                        json!({"until": until.rfc3339()}),
                        res.map(|_| Carried::Done(format!("{key}: in maintenance until {} UTC", until.rfc3339()))),
                    )
                }
                _ => (json!({}), Err(SupervisorError::Refused(format!("`{d}` is not a duration like 2h")))),
            }
        }
        other => (json!({}), Err(SupervisorError::Refused(format!("unknown action `{other}`")))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_escaped_pairs() {
        assert_eq!(detail_text(r#"{"why":"<b>","n":2,"x":null}"#), "n: 2 · why: &lt;b&gt;");
        assert_eq!(detail_text("not json <"), "not json &lt;");
    }

    #[test]
    fn the_outcome_shown_comes_from_the_event() {
        let e = EventRecord {
            id: 1,
            instance_id: None,
            provider: "evo".into(),
            at: 0,
            kind: "operator_action".into(),
            detail: r#"{"action":"restart","outcome":"refused","message":"cooldown <soon>"}"#.into(),
        };
        let n = action_note(&e);
        assert!(n.contains("note err") && n.contains("cooldown &lt;soon&gt;"), "{n}");
    }
}
