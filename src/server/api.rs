//! The admin JSON API (`Authorization: Bearer <admin token>`): instances
//! (filter by provider, tenant, health), one instance with its recent events
//! and outages, open and past outages, restart, maintenance, and the
//! availability report (`/api/report`, the JSON of `wa-sentinel report`). Every error has
//! one JSON shape: `{"error": {"code": "...", "message": "..."}}`. Without an
//! admin token in the config, the API is disabled (403), not open.

use std::net::IpAddr;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::AppState;
use super::auth::bearer;
use super::body::{ADMIN_MAX_BODY, BodyError, is_json, read_limited};
use super::login::{self, ClientAddr};
use crate::domain::health::Observation;
use crate::domain::{Health, InstanceKey, Ts};
use crate::store::{InstanceFilter, InstanceRecord};
use crate::supervisor::SupervisorError;
use crate::supervisor::requests::{Actor, Carried, ProviderAction};

/// The HTTP edge's one error type.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// `Retry-After` seconds (429).
    retry_after: Option<u64>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    pub(super) fn retry_after(self, secs: u64) -> Self {
        ApiError { retry_after: Some(secs), ..self }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(json!({"error": {"code": self.code, "message": self.message}}))).into_response();
        if let Some(secs) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        r
    }
}

/// 5xx answers say what is wrong in operator words; the error itself (driver
/// messages, hostnames, SQL) goes to the log only.
impl From<SupervisorError> for ApiError {
    fn from(e: SupervisorError) -> Self {
        match e {
            SupervisorError::UnknownInstance(_) | SupervisorError::UnknownProvider(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            SupervisorError::Refused(_) => ApiError::new(StatusCode::CONFLICT, "refused", e.to_string()),
            SupervisorError::Provider { provider, source } => {
                tracing::warn!(%provider, error = %source, "admin API: provider call failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "provider_error",
                    format!(
                        "provider `{provider}` did not carry out the call ({}); the log has the detail",
                        source.class
                    ),
                )
            }
            SupervisorError::Store(e) => e.into(),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::warn!(error = %e, "admin API: database error");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database",
            "database unreachable or failing; retry later (the log has the detail)",
        )
    }
}

/// Proof that the request carries the admin token, judged from the head
/// alone: as an extractor it runs before any body extractor, so a stranger is
/// answered 401 (or 429) without a byte of its body being read or parsed.
pub struct Admin {
    /// The client's address (the actor of an action).
    pub ip: IpAddr,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let Ok(ClientAddr(ip)) = ClientAddr::from_request_parts(parts, app).await;
        authorize(app, &parts.headers, ip)?;
        Ok(Admin { ip })
    }
}

/// A JSON body, read (at most [`ADMIN_MAX_BODY`]) and parsed only after
/// [`Admin`] let the request in; rejections in the API's one error shape.
pub struct ApiJson<T>(pub T);

/// Like [`ApiJson`], but an empty body is `None` (`POST …/restart` takes an
/// optional `{"force": true}`).
pub struct MaybeJson<T>(pub Option<T>);

async fn json_body<T: DeserializeOwned>(req: Request) -> Result<Option<T>, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = read_limited(&parts.headers, body, ADMIN_MAX_BODY).await.map_err(|e| match e {
        BodyError::TooLarge => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string()),
        BodyError::Unreadable => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !is_json(&parts.headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ));
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("the body is not the JSON this route takes: {e}"))
    })
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &AppState) -> Result<Self, Self::Rejection> {
        json_body(req).await?.map(ApiJson).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "this route takes a JSON body; the body is empty")
        })
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for MaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &AppState) -> Result<Self, Self::Rejection> {
        json_body(req).await.map(MaybeJson)
    }
}

/// Check the admin Bearer token (constant time). A wrong token counts as a
/// failed sign-in of the client's address, like the status page's.
fn authorize(app: &AppState, headers: &HeaderMap, ip: IpAddr) -> Result<(), ApiError> {
    let sup = app.sup();
    let Some(token) = &sup.config().server.admin_token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "disabled",
            "the admin API is disabled: set server.admin_token_env (or _file) to enable it",
        ));
    };
    let unauthorized =
        || ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "send Authorization: Bearer <admin token>");
    let Some(b) = bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())) else {
        return Err(unauthorized());
    };
    app.guard.check(ip).map_err(rate_limited)?;
    if token.matches(b.as_bytes()) {
        return Ok(());
    }
    app.guard.failed(ip).map_err(rate_limited)?;
    Err(unauthorized())
}

pub(super) fn rate_limited(wait: std::time::Duration) -> ApiError {
    let secs = login::retry_after_secs(wait);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many wrong admin tokens from this address; retry in {secs} s"),
    )
    .retry_after(secs)
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/instances", get(list))
        .route("/api/instances/{provider}/{name}", get(one))
        .route("/api/instances/{provider}/{name}/restart", post(restart))
        .route("/api/instances/{provider}/{name}/maintenance", post(maintenance))
        .route("/api/instances/{provider}/{name}/pair-link", post(pair_link).delete(revoke_pair_links))
        .route("/api/outages", get(outages))
        .route("/api/report", get(report))
        .route("/api/providers", get(providers))
        // Belt and braces: any body extractor added later is bounded too.
        .layer(axum::extract::DefaultBodyLimit::max(ADMIN_MAX_BODY))
}

/// `GET /api/providers`: each provider's state (`ok`, `unreachable`,
/// `unlicensed`, `silent`), open outage, last webhook, version and last
/// remediation — the status page's Providers section as JSON.
async fn providers(State(app): State<AppState>, _: Admin) -> Result<Response, ApiError> {
    let sup = app.sup();
    let names: Vec<(String, String)> =
        sup.config().providers.iter().map(|p| (p.name.clone(), p.kind.as_str().to_string())).collect();
    let overview = sup.store().provider_overview(&names, &|p| sup.index().last_webhook_of(p)).await?;
    Ok(Json(overview).into_response())
}

fn rfc(t: Option<Ts>) -> Option<String> {
    t.map(Ts::rfc3339)
}

/// The JSON form of one instance (also `status --json`).
pub fn instance_json(r: &InstanceRecord) -> serde_json::Value {
    json!({
        "provider": r.key.provider,
        "instance": r.key.name,
        "tenant": r.tenant,
        "tenant_source": r.tenant_source,
        "labels": r.labels,
        "health": r.state.health.as_str(),
        "reason": r.state.reason,
        "since": r.state.health_since.rfc3339(),
        "last_webhook_at": rfc(r.state.last_webhook_at),
        "last_health_check": rfc(r.last_health_check),
        "last_restart_attempt": rfc(r.state.last_restart_attempt),
        "restart_attempts": r.state.restart_attempts,
        "maintenance_until": rfc(r.state.maintenance_until),
        "webhook_ok": r.webhook_ok,
        "webhook_checked_at": rfc(r.webhook_checked_at),
        "open_outage": r.state.outage.as_ref().map(|o| json!({
            "id": o.id, "cause": o.cause.as_str(), "reason": o.reason, "started_at": o.started_at.rfc3339(),
            "restart_attempts": o.restart_attempts, "notified": o.down_notified,
        })),
    })
}

#[derive(Deserialize)]
struct ListQuery {
    provider: Option<String>,
    tenant: Option<String>,
    health: Option<String>,
}

async fn list(State(app): State<AppState>, _: Admin, Query(q): Query<ListQuery>) -> Result<Response, ApiError> {
    let health = match q.health.as_deref() {
        None => None,
        Some(h) => Some(Health::parse(h).ok_or_else(|| {
            let known: Vec<_> = Health::ALL.iter().map(|h| h.as_str()).collect();
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("health `{h}` is not one of {}", known.join(", ")),
            )
        })?),
    };
    let rows = app
        .sup()
        .store()
        .instances(&InstanceFilter { provider: q.provider, tenant: q.tenant, health, include_absent: false })
        .await?;
    Ok(Json(json!({"instances": rows.iter().map(instance_json).collect::<Vec<_>>()})).into_response())
}

async fn record(app: &AppState, provider: &str, name: &str) -> Result<InstanceRecord, ApiError> {
    let key = InstanceKey::new(provider, name);
    app.sup()
        .store()
        .instance(&key)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no instance {key}")))
}

async fn one(
    State(app): State<AppState>,
    _: Admin,
    Path((provider, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let r = record(&app, &provider, &name).await?;
    let events = app.sup().store().events(&r.id, 50).await?;
    // This record's outages (a name deleted and created again has a record per life).
    let outages = app.sup().store().outages_of_record(&r.id, 20).await?;
    let events: Vec<_> = events
        .into_iter()
        .map(|e| {
            let mut detail: serde_json::Value =
                serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::String(e.detail));
            crate::domain::describe::clean_detail(&mut detail);
            json!({"at": Ts(e.at).rfc3339(), "kind": e.kind, "detail": detail})
        })
        .collect();
    Ok(Json(json!({"instance": instance_json(&r), "events": events, "outages": outages})).into_response())
}

#[derive(Deserialize)]
struct OutageQuery {
    open: Option<bool>,
    limit: Option<u32>,
}

async fn outages(State(app): State<AppState>, _: Admin, Query(q): Query<OutageQuery>) -> Result<Response, ApiError> {
    let rows = app.sup().store().outages(None, q.open.unwrap_or(false), q.limit.unwrap_or(100).min(1000)).await?;
    Ok(Json(json!({"outages": rows})).into_response())
}

#[derive(Deserialize, Default)]
struct RestartBody {
    #[serde(default)]
    force: bool,
}

async fn restart(
    State(app): State<AppState>,
    Admin { ip }: Admin,
    Path((provider, name)): Path<(String, String)>,
    MaybeJson(body): MaybeJson<RestartBody>,
) -> Result<Response, ApiError> {
    let force = body.is_some_and(|b| b.force);
    // Like the status page: only the provider's leader calls it; a replica
    // that does not lead records the request for the leader (202).
    let actor = Actor { name: "api".to_string(), address: ip.to_string() };
    let key = InstanceKey::new(provider, name);
    match app.sup().provider_action(&key, ProviderAction::Restart { force }, &actor).await? {
        Carried::Done(msg) => Ok(Json(json!({"result": msg})).into_response()),
        Carried::Queued => Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "result": "queued",
                "message": format!(
                    "this replica does not lead provider `{}`: its leader carries the restart out at the start of its next poll cycle",
                    key.provider
                ),
            })),
        )
            .into_response()),
    }
}

#[derive(Deserialize)]
struct MaintenanceBody {
    /// e.g. "2h"
    #[serde(rename = "for")]
    duration: Option<String>,
    #[serde(default)]
    off: bool,
}

async fn maintenance(
    State(app): State<AppState>,
    _: Admin,
    Path((provider, name)): Path<(String, String)>,
    ApiJson(b): ApiJson<MaintenanceBody>,
) -> Result<Response, ApiError> {
    let until = match (b.off, b.duration.as_deref()) {
        (true, _) => None,
        (false, Some(d)) => {
            let d = crate::config::parse_duration(d)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("for: {e}")))?;
            Some(app.sup().now().plus(d))
        }
        (false, None) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "send {\"for\": \"2h\"} or {\"off\": true}",
            ));
        }
    };
    let key = InstanceKey::new(provider, name);
    app.sup().observe(&key, Observation::Maintenance(until), None).await?;
    Ok(Json(json!({"instance": key.to_string(), "maintenance_until": rfc(until)})).into_response())
}

#[derive(Deserialize)]
struct ReportParams {
    /// A duration back from now (`30d`) or an RFC 3339 instant; default 30d.
    since: Option<String>,
    until: Option<String>,
    tenant: Option<String>,
    provider: Option<String>,
}

/// `GET /api/report?since=30d&until=…&tenant=…&provider=…`: the JSON of
/// `wa-sentinel report --format json`, from the same function.
async fn report(State(app): State<AppState>, _: Admin, Query(q): Query<ReportParams>) -> Result<Response, ApiError> {
    let sup = app.sup();
    let now = sup.now();
    let bad = |what: &str, e: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("{what}: {e}"));
    let from = crate::report::parse_instant(q.since.as_deref().unwrap_or("30d"), now).map_err(|e| bad("since", e))?;
    let to = match q.until.as_deref() {
        Some(u) => crate::report::parse_instant(u, now).map_err(|e| bad("until", e))?,
        None => now,
    };
    if to <= from {
        return Err(bad("until", "must be later than since".into()));
    }
    let empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let query = crate::report::ReportQuery { from, to, tenant: empty(q.tenant), provider: empty(q.provider) };
    let r = crate::report::build(sup.store(), &query, now).await?;
    Ok(Json(r).into_response())
}

#[derive(Deserialize, Default)]
struct PairLinkBody {
    /// How long the link works, e.g. "2h" (default: `pairing.link_ttl`).
    #[serde(rename = "for")]
    duration: Option<String>,
}

/// `POST /api/instances/{provider}/{name}/pair-link` `{"for": "2h"}`: a
/// re-pair link for the customer. The URL holds the link's token and is
/// shown here only: the database keeps its hash.
async fn pair_link(
    State(app): State<AppState>,
    _: Admin,
    Path((provider, name)): Path<(String, String)>,
    MaybeJson(body): MaybeJson<PairLinkBody>,
) -> Result<Response, ApiError> {
    let ttl = match body.and_then(|b| b.duration) {
        Some(d) => Some(
            crate::config::parse_duration(&d)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("for: {e}")))?,
        ),
        None => None,
    };
    let key = InstanceKey::new(provider, name);
    let link = app.sup().mint_pair_link(&key, ttl, "api").await?;
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"url": link.url, "expires_at": link.expires_at.rfc3339(), "id": link.id})),
    )
        .into_response())
}

/// `DELETE /api/instances/{provider}/{name}/pair-link`: revoke every usable link.
async fn revoke_pair_links(
    State(app): State<AppState>,
    _: Admin,
    Path((provider, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let key = InstanceKey::new(provider, name);
    let n = app.sup().revoke_pair_links(&key, "api").await?;
    Ok(Json(json!({"instance": key.to_string(), "revoked": n})).into_response())
}
