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

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::admin_access::{body_refused, disabled, forbidden, page_access, unavailable};
use super::body::{ADMIN_MAX_BODY, BodyError, is_form, read_limited};
use super::html::{ago, bar, dur_ms, instance_href, message, respond, seg, shell};
use super::login::{self, ClientAddr};
use super::uptime::{Figures, MONTH_MS, Range, histories_by_id, range_switch};
use crate::domain::availability::reconnects;
use crate::domain::health::Observation;
use crate::domain::time::human_duration;
use crate::domain::{Health, InstanceKey, Ts};
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
    format!("{}?id={}", instance_href(&key.provider, &key.name), seg(id))
}

/// The records kept under `key` other than `shown`, as links (nothing when none).
fn other_records(key: &InstanceKey, records: &[RecordRef], shown: &str, now: Ts) -> Markup {
    let others: Vec<&RecordRef> = records.iter().filter(|x| x.id != shown).collect();
    html! {
        @if !others.is_empty() {
            div.note {
                "Other records of this name: "
                @for (i, x) in others.iter().enumerate() {
                    @if i > 0 { " · " }
                    @if x.present {
                        a href=(instance_href(&key.provider, &key.name)) { "the current record" }
                    } @else {
                        a href=(record_href(key, &x.id)) { "a retired record" }
                        " (created " (x.created_at.rfc3339()) " UTC"
                        @if let Some(t) = x.retired_at { ", retired " (ago(now, Some(t))) }
                        ")"
                    }
                }
                "."
            }
        }
    }
}

fn not_found(key: &InstanceKey, records: &[RecordRef], now: Ts) -> Response {
    message(
        StatusCode::NOT_FOUND,
        html! {
            p { "No current instance " (key.to_string()) "." }
            (other_records(key, records, "", now))
            p { a href="/" { "All instances" } }
        },
    )
}

/// One event's detail as `key: value` pairs, in words (an observation
/// stored as `Debug` text by an older release included); the template
/// escapes it.
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
                serde_json::Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join(" · "),
        _ => detail.to_string(),
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
) -> crate::store::Result<Result<Markup, Vec<RecordRef>>> {
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
    let repaired = history.map(|h| reconnects(&h.history, Ts(now.0 - MONTH_MS), now, now)).unwrap_or_default();
    // This record's history only: a name deleted and created again has a
    // record per life, each with its own outages, events and notices.
    let outages = store.outages_of_record(&r.id, 50).await?;
    let events = store.events(&r.id, 200).await?;
    let outage_ids: Vec<String> = outages.iter().map(|o| o.id.clone()).collect();
    let notices = store.notices_of(&r.id, &outage_ids, 100).await?;
    let links = store.pair_links_of(&r.id, 20).await?;
    let pairing = sup.pairing_base().is_some();
    let retired_at = records.iter().find(|x| x.id == r.id).and_then(|x| x.retired_at);
    let shown_action = q.action.and_then(|id| events.iter().find(|e| e.id == id && e.kind == "operator_action"));
    let keep = q.id.as_deref().map(|id| format!("&id={}", seg(id))).unwrap_or_default();
    let none = || "—".to_string();
    let m = &figures.month;

    let body = html! {
        div.muted { a href="/" { "← all instances" } " · updated " (now.rfc3339()) " UTC · refreshes every 15 s" }
        h1 { (key.to_string()) @if !r.present { " " span.muted { "(retired record)" } } }
        @if !r.present {
            div.note {
                "This record was retired" @if let Some(t) = retired_at { " " (ago(now, Some(t))) }
                ": the instance was deleted on the provider or removed from the configuration. Its history is kept; \
                 nothing is polled or done for it any more."
            }
        }
        (other_records(key, &records, &r.id, now))
        @if let Some(e) = shown_action { (action_note(e)) }
        (summary(&r, now, &sup.config().policy))
        h2 { "Availability" }
        div.card {
            (bar(&figures.bar, Ts(now.0 - range.ms()), now, true))
            div {
                "24 h: " b { (percent(&figures.day)) } " · 30 d: " b { (percent(m)) }
                " · outages 30 d: " (m.outages) " · down 30 d: " (dur_ms(m.down_ms))
                " · MTTR 30 d: " (m.mttr_ms.map_or_else(none, dur_ms))
                " · provider down 30 d: " (dur_ms(m.provider_down_ms))
                " · provider silent 30 d: " (dur_ms(m.provider_silent_ms))
                " · maintenance 30 d: " (dur_ms(m.maintenance_ms))
            }
            (range_switch(range, &keep))
        }
        div.card {
            "Needs-a-person outages reconnected 30 d: " b { (repaired.needs_person_reconnects) }
            " · time to reconnect: median " (repaired.reconnect_median_ms.map_or_else(none, dur_ms))
            ", max " (repaired.reconnect_max_ms.map_or_else(none, dur_ms))
            " · through a re-pair link: " (repaired.reconnects_via_link)
            " · other outages' MTTR 30 d: " (repaired.other_mttr_ms.map_or_else(none, dur_ms))
        }
        @if r.present {
            (actions(&r, session, now, pairing))
        } @else {
            h2 { "Actions" }
            div.note { "A retired record cannot be acted on." }
        }
        h2 { "Outages" }
        div.wrap { table {
            thead { tr {
                th { "Started" } th { "Duration" } th { "Cause" } th { "Reason" } th { "Restarts" } th { "Ended by" }
                th { "Notified" }
            } }
            tbody {
                @for o in &outages {
                    tr {
                        td { (o.started_at.rfc3339()) }
                        td { (human_duration(o.ended_at.unwrap_or(now).since(o.started_at))) @if o.ended_at.is_none() { "+" } }
                        td { (o.cause) }
                        td { (o.reason) }
                        td { (o.restart_attempts) }
                        td { (o.recovered_by.as_deref().unwrap_or("(open)")) }
                        td { @if o.notified { "yes" } @else { "no" } }
                    }
                }
                @if outages.is_empty() { tr { td.muted colspan="7" { "No outage on record." } } }
            }
        } }
        (super::pair_links_html::section(&links, r.state.health == Health::Connected, now, pairing))
        (timeline(&events, &notices))
    };
    Ok(Ok(shell(&format!("wa-sentinel: {key}"), body, q.action.is_none())))
}

fn summary(r: &InstanceRecord, now: Ts, policy: &crate::domain::Policy) -> Markup {
    let s = &r.state;
    let h = s.health.as_str();
    let cooldown = s.next_recovery_allowed(policy).filter(|t| *t > now);
    let maintenance = s.maintenance_until.filter(|u| *u > now);
    html! {
        div.card { dl {
            dt { "Health" } dd { span class={ "h " (h) } { (h) } " " (s.reason) }
            dt { "Cause" } dd { (s.outage.as_ref().map(|o| o.cause.as_str()).unwrap_or("—")) }
            dt { "Since" } dd { (s.health_since.rfc3339()) " UTC (" (ago(now, Some(s.health_since))) ")" }
            dt { "Tenant" } dd { (r.tenant) " " span.muted { "(from " (r.tenant_source) ")" } }
            dt { "Last webhook" } dd { (ago(now, s.last_webhook_at)) }
            dt { "Last poll" } dd { (ago(now, r.last_health_check)) }
            dt { "Recovery attempts" } dd {
                (s.outage.as_ref().map_or(0, |o| o.restart_attempts)) " in this outage · last " (ago(now, s.last_restart_attempt))
            }
            dt { "Cooldown left" } dd {
                @match cooldown {
                    Some(t) => { (human_duration(t.since(now))) " (until " (t.rfc3339()) " UTC)" }
                    None => "none",
                }
            }
            dt { "Maintenance" } dd {
                @match maintenance {
                    Some(u) => { "until " (u.rfc3339()) " UTC (" (human_duration(u.since(now))) " left)" }
                    None => "off",
                }
            }
            dt { "Webhook config" } dd {
                @match (r.webhook_ok, r.webhook_checked_at) {
                    (Some(true), t) => { "as desired (checked " (ago(now, t)) ")" }
                    (Some(false), t) => { b { "not as desired" } " (checked " (ago(now, t)) ")" }
                    (None, _) => "not checked yet",
                }
            }
        } }
    }
}

/// The outcome of an action, from its audit event.
fn action_note(e: &EventRecord) -> Markup {
    let d: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
    let outcome = d["outcome"].as_str().unwrap_or("");
    let class = match outcome {
        "done" => "note ok",
        "queued" => "note",
        _ => "note err",
    };
    html! {
        div class=(class) { b { (d["action"].as_str().unwrap_or("action")) } " " (outcome) ": " (d["message"].as_str().unwrap_or("")) }
    }
}

fn actions(r: &InstanceRecord, session: Option<&str>, now: Ts, pairing: bool) -> Markup {
    let Some(session) = session else {
        return html! {
            h2 { "Actions" }
            div.note {
                "Signed in with HTTP Basic: you may look, not act. " a href="/login" { "Sign in with the form" }
                " to restart, set maintenance or re-apply the webhook config from this page."
            }
        };
    };
    let base = instance_href(&r.key.provider, &r.key.name);
    let csrf = login::csrf_token(session);
    html! {
        h2 { "Actions" }
        div.actions {
            form method="post" action={ (base) "/restart" } {
                input type="hidden" name="csrf" value=(csrf);
                label { input type="checkbox" name="force" value="1"; " force (inside the cooldown)" }
                " "
                button type="submit" { "Restart" }
            }
            @if r.state.in_maintenance(now) {
                form method="post" action={ (base) "/maintenance" } {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="off" value="1";
                    button type="submit" { "End maintenance" }
                }
            } @else {
                form method="post" action={ (base) "/maintenance" } {
                    input type="hidden" name="csrf" value=(csrf);
                    label {
                        "Maintenance for "
                        select name="duration" {
                            option { "30m" } option selected { "2h" } option { "8h" } option { "24h" } option { "7d" }
                        }
                    }
                    " "
                    button type="submit" { "Start maintenance" }
                }
            }
            form method="post" action={ (base) "/webhook" } {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Re-apply webhook config" }
            }
            @if pairing { (super::pair_links_html::actions(&base, &csrf)) }
        }
    }
}

/// What became of a notice, in words.
fn notice_state(n: &NoticeRecord) -> String {
    match n.status.as_str() {
        "delivered" => format!("delivered {}", n.delivered_at.map(|t| Ts(t).rfc3339()).unwrap_or_default()),
        "dead" => format!("dead after {} attempt(s): {}", n.attempts, n.last_error.as_deref().unwrap_or("")),
        "handed_over" => n.last_error.clone().unwrap_or_else(|| "handed to its fallback".into()),
        _ => format!("pending ({} attempt(s) so far)", n.attempts),
    }
}

/// Events and notices, newest first.
fn timeline(events: &[EventRecord], notices: &[NoticeRecord]) -> Markup {
    // (at, what, detail)
    let mut rows: Vec<(i64, String, String)> =
        events.iter().map(|e| (e.at, e.kind.clone(), detail_text(&e.detail))).collect();
    rows.extend(
        notices
            .iter()
            .map(|n| (n.created_at, format!("notice {}", n.kind), format!("to {} · {}", n.notifier, notice_state(n)))),
    );
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    html! {
        h2 { "Timeline" }
        div.wrap { table {
            thead { tr { th { "At" } th { "What" } th { "Detail" } } }
            tbody {
                @for (at, what, detail) in &rows {
                    tr { td { (Ts(*at).rfc3339()) } td { (what) } td.detail { (detail) } }
                }
                @if rows.is_empty() { tr { td.muted colspan="3" { "Nothing recorded yet." } } }
            }
        } }
    }
}

#[derive(Deserialize, Default)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    force: Option<String>,
    duration: Option<String>,
    off: Option<String>,
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
    fn details_are_pairs_in_words() {
        assert_eq!(detail_text(r#"{"why":"<b>","n":2,"x":null}"#), "n: 2 · why: <b>");
        assert_eq!(detail_text("not json <"), "not json <");
    }

    #[test]
    fn the_timeline_escapes_what_providers_and_events_said() {
        let e = EventRecord {
            id: 1,
            instance_id: None,
            provider: "evo".into(),
            at: 0,
            kind: "recovery<script>".into(),
            detail: r#"{"why":"<script>alert(1)</script>"}"#.into(),
        };
        let t = timeline(&[e], &[]).into_string();
        assert!(t.contains("why: &lt;script&gt;alert(1)&lt;/script&gt;"), "{t}");
        assert!(t.contains("recovery&lt;script&gt;") && !t.contains("<script>"), "{t}");
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
        let n = action_note(&e).into_string();
        assert!(n.contains("note err") && n.contains("cooldown &lt;soon&gt;"), "{n}");
    }
}
