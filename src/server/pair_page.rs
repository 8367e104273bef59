//! The re-pair page, on the public listener: `GET /pair/{token}` shows the
//! provider's current QR code (`/pair/{token}/qr.png`, same origin, never
//! cached) and a form for a pairing code (`POST /pair/{token}/code`);
//! `/pair/style.css` is its stylesheet. Customers are not operators: these
//! routes need no admin credential, the link's token is the credential, and
//! they expose nothing else (no provider URL, key or instance token reaches
//! the browser: every provider call is made here).
//!
//! - **Tokens**: 256 random bits; looked up by their SHA-256. A malformed,
//!   unknown or tampered token is 404; an expired or revoked link 410 with a
//!   line to ask for a new one ([`crate::domain::pairing::link_state`]).
//! - **Provider calls**: one QR read per link at most every
//!   [`QR_CACHE`], shared by every view in between (a burst of reloads costs
//!   the provider one call); the one start a session may need goes through
//!   the supervisor's committed recovery step, under the instance's cooldown
//!   ([`crate::supervisor::Supervisor::pair_start`]).
//! - **Pairing codes**: the form carries a token derived from the link with
//!   an HMAC (no session exists for customers), must come from this origin
//!   (`Origin`, `Sec-Fetch-Site` when the browser sends them), and is limited
//!   per link and per client address (`governor`).
//! - **Audit**: every view and every code request is an event on the
//!   instance's timeline (the number masked, never the code).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use governor::clock::Clock;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::body::{BodyError, is_form, read_limited};
use super::html::CSP;
use super::login::ClientAddr;
use super::pair_html::{self, CodeNote, View, Wait};
use crate::config::{Language, ProviderKind};
use crate::domain::pairing::{
    LinkState, QR_CACHE, link_state, masked_phone, normalize_phone, qr_lifetime, refresh_after,
};
use crate::domain::{Health, InstanceKey, Ts};
use crate::providers::pairing::{CodeAnswer, QrAnswer, Started};
use crate::store::{InstanceRecord, PairLinkRecord};
use crate::supervisor::SupervisorError;
use crate::supervisor::pairing::StartOutcome;

/// The code form's body is two short fields.
const FORM_MAX_BODY: usize = 1024;

/// Pairing codes per link: three at once, then one every two minutes.
const CODES_PER_LINK: u32 = 3;
const CODE_PERIOD_PER_LINK: Duration = Duration::from_secs(120);
/// Pairing codes per client address: ten at once, then one every 30 s.
const CODES_PER_ADDRESS: u32 = 10;
const CODE_PERIOD_PER_ADDRESS: Duration = Duration::from_secs(30);

/// Above this many cached links, the stale ones are dropped.
const CACHE_MAX: usize = 1_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/pair/style.css", get(stylesheet))
        .route("/pair/{token}", get(page))
        .route("/pair/{token}/qr.png", get(qr_png))
        .route("/pair/{token}/code", post(code))
}

/// What the page shows of a link's QR code, as last read.
#[derive(Debug, Clone)]
enum QrView {
    Connected,
    Image(Arc<Vec<u8>>),
    Waiting(Wait),
}

#[derive(Debug)]
struct Cached {
    at: Instant,
    view: QrView,
}

type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// The page's memory, kept across config reloads: each link's last QR read
/// and the pairing-code limits.
pub struct PairState {
    qr: Mutex<HashMap<String, Slot>>,
    per_link: governor::DefaultKeyedRateLimiter<String>,
    per_address: governor::DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for PairState {
    fn default() -> Self {
        let quota = |n: u32, period: Duration| {
            governor::Quota::with_period(period)
                .expect("a positive period")
                .allow_burst(NonZeroU32::new(n).expect("a positive burst"))
        };
        PairState {
            qr: Mutex::new(HashMap::new()),
            per_link: governor::RateLimiter::keyed(quota(CODES_PER_LINK, CODE_PERIOD_PER_LINK)),
            per_address: governor::RateLimiter::keyed(quota(CODES_PER_ADDRESS, CODE_PERIOD_PER_ADDRESS)),
        }
    }
}

impl PairState {
    fn slot(&self, link: &str) -> Slot {
        let mut map = self.qr.lock().expect("the QR cache lock is never poisoned");
        if map.len() > CACHE_MAX {
            map.retain(|_, s| s.try_lock().map_or(true, |c| c.as_ref().is_some_and(|c| c.at.elapsed() < QR_CACHE)));
        }
        map.entry(link.to_string()).or_default().clone()
    }

    /// `Err(wait)` when this link or this address asked for too many codes.
    fn may_ask_code(&self, link: &str, ip: IpAddr) -> Result<(), Duration> {
        let wait = |e: governor::NotUntil<governor::clock::QuantaInstant>, now| e.wait_time_from(now);
        if let Err(e) = self.per_address.check_key(&ip) {
            return Err(wait(e, self.per_address.clock().now()));
        }
        if let Err(e) = self.per_link.check_key(&link.to_string()) {
            return Err(wait(e, self.per_link.clock().now()));
        }
        Ok(())
    }
}

/// The reader's language: the browser's first preference among English and
/// Portuguese, else `alerts.language`.
pub fn language(headers: &HeaderMap, default: Language) -> Language {
    let Some(accept) = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()) else { return default };
    let mut prefs: Vec<(f32, &str)> = accept
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';');
            let tag = it.next()?.trim();
            let q = it.find_map(|p| p.trim().strip_prefix("q=")?.parse::<f32>().ok()).unwrap_or(1.0);
            Some((q, tag))
        })
        .collect();
    prefs.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (q, tag) in prefs {
        let primary = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
        match primary.as_str() {
            _ if q <= 0.0 => {}
            "pt" => return Language::PtBr,
            "en" => return Language::En,
            _ => {}
        }
    }
    default
}

/// An HTML answer under the status page's policy, never cached, never
/// indexed. The URL is a credential: a referrer goes only to this origin
/// (the page loads nothing from elsewhere), and not `no-referrer`, under
/// which a browser posts the code form with `Origin: null`.
fn respond(status: StatusCode, html: String) -> Response {
    (
        status,
        [
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::HeaderName::from_static("x-robots-tag"), "noindex, nofollow"),
        ],
        html,
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=300")],
        pair_html::STYLE,
    )
        .into_response()
}

/// A link and its instance, as one request found them.
struct Found {
    link: PairLinkRecord,
    rec: InstanceRecord,
    state: LinkState,
    now: Ts,
}

/// The link behind `token`, or the answer to send instead (404, 410, 503).
async fn find(app: &AppState, token: &str, lang: Language) -> Result<Found, Response> {
    let sup = app.sup();
    if !crate::pairing::well_formed(token) || sup.pairing_base().is_none() {
        return Err(respond(StatusCode::NOT_FOUND, pair_html::unknown(lang)));
    }
    let store = sup.store();
    let unavailable = |e: crate::store::StoreError| {
        tracing::warn!(error = %e, "re-pair page: database error");
        respond(StatusCode::SERVICE_UNAVAILABLE, pair_html::unavailable(lang))
    };
    let Some(link) = store.pair_link_by_hash(&crate::pairing::token_hash(token)).await.map_err(unavailable)? else {
        return Err(respond(StatusCode::NOT_FOUND, pair_html::unknown(lang)));
    };
    let rec = store.instance_by_id(&link.instance_id).await.map_err(unavailable)?;
    let now = sup.now();
    // A retired record (deleted on the provider, removed from the config)
    // has nothing left to pair: like an expired link.
    let Some(rec) = rec.filter(|r| r.present) else {
        return Err(respond(StatusCode::GONE, pair_html::gone(lang, false)));
    };
    let state = link_state(&link.facts(), rec.state.health == Health::Connected, now);
    Ok(Found { link, rec, state, now })
}

/// The link is done: the session is open. Recorded once, then the link only says so.
async fn connected(app: &AppState, f: &Found, lang: Language) -> Response {
    if f.link.connected_at.is_none()
        && let Err(e) = app.sup().store().pair_link_connected(&f.link.id, f.now).await
    {
        tracing::warn!(error = %e, "re-pair page: cannot record the link as done");
    }
    respond(StatusCode::OK, pair_html::connected(lang))
}

fn gone(f: &Found, lang: Language) -> Response {
    respond(StatusCode::GONE, pair_html::gone(lang, f.state == LinkState::Revoked))
}

/// One event on the instance's timeline (failures only logged: the page
/// must not fail because its audit line could not be written).
async fn audit(app: &AppState, f: &Found, kind: &str, detail: serde_json::Value) {
    let sup = app.sup();
    if let Err(e) = sup.store().record_event(Some(&f.rec.id), &f.rec.key.provider, kind, &detail, sup.now()).await {
        tracing::warn!(error = %e, kind, "re-pair page: cannot record the event");
    }
}

fn refresh_secs(app: &AppState, provider: &str) -> u64 {
    let evo = app.sup().provider_kind(provider) == Some(ProviderKind::Evolution);
    refresh_after(qr_lifetime(evo)).as_secs()
}

/// `GET /pair/{token}`.
async fn page(
    State(app): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let lang = language(&headers, app.sup().config().alerts.language);
    let f = match find(&app, &token, lang).await {
        Ok(f) => f,
        Err(answer) => return answer,
    };
    if let Err(e) = app.sup().store().pair_link_viewed(&f.link.id, f.now).await {
        tracing::warn!(error = %e, "re-pair page: cannot count the view");
    }
    audit(
        &app,
        &f,
        "pair_link_viewed",
        json!({"link": f.link.id, "address": ip.to_string(), "state": f.state.as_str()}),
    )
    .await;
    match f.state {
        LinkState::Expired | LinkState::Revoked => gone(&f, lang),
        LinkState::Connected => connected(&app, &f, lang).await,
        LinkState::Live => match qr_view(&app, &f, ip).await {
            QrView::Connected => connected(&app, &f, lang).await,
            QrView::Image(_) => live_page(&app, &f, &token, lang, &View::Qr, None),
            QrView::Waiting(w) => live_page(&app, &f, &token, lang, &View::Waiting(w), None),
        },
    }
}

fn live_page(app: &AppState, f: &Found, token: &str, lang: Language, view: &View, note: Option<&CodeNote>) -> Response {
    let refresh = refresh_secs(app, &f.rec.key.provider);
    let status = match note {
        Some(CodeNote::BadPhone) => StatusCode::BAD_REQUEST,
        Some(CodeNote::TooMany(_)) => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::OK,
    };
    let mut r = respond(status, pair_html::live(lang, token, view, refresh, Ts(f.link.expires_at), note));
    if let Some(CodeNote::TooMany(secs)) = note {
        r.headers_mut().insert(header::RETRY_AFTER, (*secs).into());
    }
    r
}

/// `GET /pair/{token}/qr.png`: the QR code the page shows, never cached.
async fn qr_png(
    State(app): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let lang = language(&headers, app.sup().config().alerts.language);
    let f = match find(&app, &token, lang).await {
        Ok(f) => f,
        Err(answer) => return no_image(answer.status()),
    };
    match f.state {
        LinkState::Expired | LinkState::Revoked => return no_image(StatusCode::GONE),
        LinkState::Connected => return no_image(StatusCode::NOT_FOUND),
        LinkState::Live => {}
    }
    match qr_view(&app, &f, ip).await {
        QrView::Image(png) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "no-store"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
            png.as_ref().clone(),
        )
            .into_response(),
        QrView::Connected => no_image(StatusCode::NOT_FOUND),
        QrView::Waiting(_) => {
            let mut r = no_image(StatusCode::SERVICE_UNAVAILABLE);
            r.headers_mut().insert(header::RETRY_AFTER, QR_CACHE.as_secs().into());
            r
        }
    }
}

fn no_image(status: StatusCode) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store"), (header::CONTENT_TYPE, "text/plain; charset=utf-8")], "no QR code")
        .into_response()
}

/// The link's QR code, read at most once per [`QR_CACHE`]: concurrent views
/// wait for the one read in flight and share its answer.
async fn qr_view(app: &AppState, f: &Found, ip: IpAddr) -> QrView {
    let slot = app.pair.slot(&f.link.id);
    let mut cached = slot.lock().await;
    if let Some(c) = cached.as_ref().filter(|c| c.at.elapsed() < QR_CACHE) {
        return c.view.clone();
    }
    let view = read_qr(app, f, ip).await;
    *cached = Some(Cached { at: Instant::now(), view: view.clone() });
    view
}

fn image_of(answer: QrAnswer) -> Option<QrView> {
    match answer {
        QrAnswer::Connected => Some(QrView::Connected),
        QrAnswer::Png(png) => Some(QrView::Image(Arc::new(png))),
        QrAnswer::Text(code) => Some(match crate::pairing::qr_png(&code) {
            Ok(png) => QrView::Image(Arc::new(png)),
            Err(e) => {
                tracing::warn!(error = %e, "re-pair page: cannot draw the provider's QR string");
                QrView::Waiting(Wait::Provider)
            }
        }),
        QrAnswer::NotReady(_) | QrAnswer::NeedsStart(_) | QrAnswer::Starting | QrAnswer::NeedsPerson(_) => None,
    }
}

fn provider_failed(key: &InstanceKey, e: &SupervisorError) -> QrView {
    match e {
        SupervisorError::Provider { source, .. } => {
            tracing::warn!(instance = %key, error = %source, "re-pair page: the provider call failed");
        }
        other => tracing::warn!(instance = %key, error = %other, "re-pair page: cannot ask the provider"),
    }
    QrView::Waiting(Wait::Provider)
}

async fn read_qr(app: &AppState, f: &Found, ip: IpAddr) -> QrView {
    let sup = app.sup();
    let key = &f.rec.key;
    let answer = match sup.pair_qr(key).await {
        Ok(a) => a,
        Err(e) => return provider_failed(key, &e),
    };
    match answer {
        QrAnswer::NeedsPerson(_) => QrView::Waiting(Wait::NeedsPerson),
        QrAnswer::Starting => QrView::Waiting(Wait::Starting),
        QrAnswer::NotReady(_) => QrView::Waiting(Wait::NotIssued),
        QrAnswer::NeedsStart(_) => match start(app, f, None, ip).await {
            Ok((Some(view), _)) => view,
            Ok((None, wait)) => QrView::Waiting(wait),
            Err(e) => provider_failed(key, &e),
        },
        other => image_of(other).unwrap_or(QrView::Waiting(Wait::NotIssued)),
    }
}

/// The link's one start: claimed in the database (two views, two replicas,
/// one start), then made through the supervisor's committed step. Returns
/// the QR code its answer already held (Evolution's connect hands one out),
/// and what to say meanwhile.
async fn start(
    app: &AppState,
    f: &Found,
    phone: Option<&str>,
    ip: IpAddr,
) -> Result<(Option<QrView>, Wait), SupervisorError> {
    let sup = app.sup();
    if !sup.store().pair_link_claim_start(&f.link.id, f.now).await? {
        return Ok((None, Wait::Starting));
    }
    let (view, wait, outcome) = match sup.pair_start(&f.rec.key, phone, &ip.to_string()).await? {
        StartOutcome::Started(Started::Sent(a)) => (a.qr.and_then(image_of), Wait::Starting, a.detail),
        StartOutcome::Started(Started::Skipped(why)) => (None, Wait::Starting, format!("nothing sent: {why}")),
        StartOutcome::Queued => (None, Wait::Starting, "asked of the provider's leader".to_string()),
        StartOutcome::Refused(why) => (None, Wait::Cooldown, format!("refused: {why}")),
    };
    audit(app, f, "pair_start", json!({"link": f.link.id, "address": ip.to_string(), "outcome": outcome})).await;
    Ok((view, wait))
}

#[derive(Deserialize, Default)]
struct CodeForm {
    #[serde(default)]
    form: String,
    #[serde(default)]
    phone: String,
}

/// Did the form come from this origin? A browser says where a POST comes
/// from (`Origin`, `Sec-Fetch-Site`); either, when sent, must name this site.
fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site.is_some_and(|s| s != "same-origin") {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    match reqwest::Url::parse(public_url) {
        Ok(u) => origin.eq_ignore_ascii_case(u.origin().ascii_serialization().as_str()),
        Err(_) => false,
    }
}

/// `POST /pair/{token}/code`: a pairing code for a phone number.
async fn code(
    State(app): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let lang = language(&parts.headers, app.sup().config().alerts.language);
    let f = match find(&app, &token, lang).await {
        Ok(f) => f,
        Err(answer) => return answer,
    };
    match f.state {
        LinkState::Expired | LinkState::Revoked => return gone(&f, lang),
        LinkState::Connected => return connected(&app, &f, lang).await,
        LinkState::Live => {}
    }
    let public = app.sup().pairing_base().unwrap_or_default().to_string();
    if !same_origin(&parts.headers, &public) {
        tracing::warn!(client = %ip, "re-pair page: a code form from another site refused");
        return respond(StatusCode::FORBIDDEN, pair_html::forbidden(lang, &token));
    }
    let form = match read_limited(&parts.headers, body, FORM_MAX_BODY).await {
        Ok(bytes) if is_form(&parts.headers) => serde_urlencoded::from_bytes::<CodeForm>(&bytes).unwrap_or_default(),
        Ok(_) => CodeForm::default(),
        Err(BodyError::TooLarge) => return respond(StatusCode::PAYLOAD_TOO_LARGE, pair_html::forbidden(lang, &token)),
        Err(BodyError::Unreadable) => return respond(StatusCode::BAD_REQUEST, pair_html::forbidden(lang, &token)),
    };
    if !crate::pairing::form_token_matches(&token, &form.form) {
        return respond(StatusCode::FORBIDDEN, pair_html::forbidden(lang, &token));
    }
    let view = |v: &QrView| match v {
        QrView::Image(_) => View::Qr,
        QrView::Waiting(w) => View::Waiting(*w),
        QrView::Connected => View::Waiting(Wait::NotIssued),
    };
    let phone = match normalize_phone(&form.phone) {
        Ok(p) => p,
        Err(_) => {
            let v = qr_view(&app, &f, ip).await;
            return live_page(&app, &f, &token, lang, &view(&v), Some(&CodeNote::BadPhone));
        }
    };
    if let Err(wait) = app.pair.may_ask_code(&f.link.id, ip) {
        let secs = super::login::retry_after_secs(wait);
        audit(
            &app,
            &f,
            "pair_code_requested",
            json!({"link": f.link.id, "address": ip.to_string(), "phone": masked_phone(&phone), "outcome": "rate limited"}),
        )
        .await;
        let v = qr_view(&app, &f, ip).await;
        return live_page(&app, &f, &token, lang, &view(&v), Some(&CodeNote::TooMany(secs)));
    }
    if let Err(e) = app.sup().store().pair_link_code_asked(&f.link.id, f.now).await {
        tracing::warn!(error = %e, "re-pair page: cannot count the code request");
    }
    let sup = app.sup();
    let got: Result<Option<String>, SupervisorError> = match sup.pair_code(&f.rec.key, &phone).await {
        Ok(CodeAnswer::Code(c)) => Ok(Some(c)),
        Ok(CodeAnswer::Connected) => {
            audit(
                &app,
                &f,
                "pair_code_requested",
                json!({"link": f.link.id, "address": ip.to_string(),
                "phone": masked_phone(&phone), "outcome": "already connected"}),
            )
            .await;
            return connected(&app, &f, lang).await;
        }
        Ok(CodeAnswer::NeedsStart(_)) => start_for_code(&app, &f, &phone, ip).await,
        Ok(CodeAnswer::NotReady(_)) => Ok(None),
        Err(e) => Err(e),
    };
    let (note, outcome) = match got {
        Ok(Some(c)) => (CodeNote::Code(c), "code shown"),
        Ok(None) => (CodeNote::NoCode, "no code available"),
        Err(e) => {
            provider_failed(&f.rec.key, &e);
            (CodeNote::NoCode, "provider call failed")
        }
    };
    audit(
        &app,
        &f,
        "pair_code_requested",
        json!({"link": f.link.id, "address": ip.to_string(), "phone": masked_phone(&phone), "outcome": outcome}),
    )
    .await;
    let v = qr_view(&app, &f, ip).await;
    live_page(&app, &f, &token, lang, &view(&v), Some(&note))
}

/// A session that must be started first: started with the number (where
/// the provider can hand out a code that way), once per link.
async fn start_for_code(app: &AppState, f: &Found, phone: &str, ip: IpAddr) -> Result<Option<String>, SupervisorError> {
    let sup = app.sup();
    if !sup.store().pair_link_claim_start(&f.link.id, f.now).await? {
        return Ok(None);
    }
    let (code, outcome) = match sup.pair_start(&f.rec.key, Some(phone), &ip.to_string()).await? {
        StartOutcome::Started(Started::Sent(a)) => (a.code, a.detail),
        StartOutcome::Started(Started::Skipped(why)) => (None, format!("nothing sent: {why}")),
        StartOutcome::Queued => (None, "asked of the provider's leader".to_string()),
        StartOutcome::Refused(why) => (None, format!("refused: {why}")),
    };
    audit(app, f, "pair_start", json!({"link": f.link.id, "address": ip.to_string(), "outcome": outcome})).await;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_s_language_comes_from_the_browser_first() {
        let h = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_LANGUAGE, v.parse().unwrap());
            h
        };
        assert_eq!(language(&HeaderMap::new(), Language::PtBr), Language::PtBr);
        assert_eq!(language(&h("pt-BR,pt;q=0.9,en;q=0.8"), Language::En), Language::PtBr);
        assert_eq!(language(&h("en-US,en;q=0.9"), Language::PtBr), Language::En);
        assert_eq!(language(&h("de-DE,en;q=0.5,pt;q=0.7"), Language::En), Language::PtBr);
        assert_eq!(language(&h("de-DE"), Language::PtBr), Language::PtBr);
        assert_eq!(language(&h("pt;q=0,en"), Language::PtBr), Language::En);
    }

    #[test]
    fn a_code_form_must_come_from_this_site() {
        let h = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        let public = "https://sentinel.example.com";
        assert!(same_origin(&h(&[]), public), "an old browser sends neither");
        assert!(same_origin(
            &h(&[("origin", "https://sentinel.example.com"), ("sec-fetch-site", "same-origin")]),
            public
        ));
        assert!(!same_origin(&h(&[("origin", "https://evil.example")]), public));
        assert!(!same_origin(&h(&[("sec-fetch-site", "cross-site")]), public));
        assert!(!same_origin(&h(&[("origin", "null")]), public));
    }

    #[test]
    fn code_limits_hold_per_link_and_per_address() {
        let s = PairState::default();
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..CODES_PER_LINK {
            assert!(s.may_ask_code("link-a", ip).is_ok());
        }
        assert!(s.may_ask_code("link-a", ip).is_err(), "per link");
        assert!(s.may_ask_code("link-b", ip).is_ok(), "another link from the same address");
        let other = IpAddr::from([10, 0, 0, 2]);
        for i in 0..CODES_PER_ADDRESS {
            let r = s.may_ask_code(&format!("l{i}"), other);
            assert!(r.is_ok(), "{i}");
        }
        assert!(s.may_ask_code("fresh", other).is_err(), "per address");
    }
}
