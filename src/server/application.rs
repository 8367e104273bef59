//! What the SaaS application calls: tenants assigned instance by instance
//! (`PUT`/`DELETE /api/instances/{provider}/{name}/tenant`, admin token) and
//! the event stream (`GET /api/events`, the admin token or the read-only
//! `server.events_token`), with long polling.

use std::time::Duration;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::{Admin, ApiError, ApiJson, rate_limited};
use super::auth::bearer;
use super::login::ClientAddr;
use crate::domain::InstanceKey;
use crate::domain::tenancy::valid_tenant;

/// The longest a long poll is held.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Events per answer: the default and the most.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/instances/{provider}/{name}/tenant", put(assign).delete(unassign))
        .route("/api/events", get(events))
        .layer(axum::extract::DefaultBodyLimit::max(super::body::ADMIN_MAX_BODY))
}

#[derive(Deserialize)]
struct TenantBody {
    tenant: String,
}

fn known_provider(app: &AppState, provider: &str) -> Result<(), ApiError> {
    if app.sup().config().providers.iter().any(|p| p.name == provider) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_provider",
            format!("unknown provider `{provider}`: it is not in the configuration"),
        ))
    }
}

/// `PUT /api/instances/{provider}/{name}/tenant` `{"tenant": "acme"}`: the
/// instance (existing or not yet discovered) belongs to `acme` from the next
/// inventory merge of its provider on (one poll period at most).
async fn assign(
    State(app): State<AppState>,
    admin: Admin,
    Path((provider, name)): Path<(String, String)>,
    ApiJson(b): ApiJson<TenantBody>,
) -> Result<Response, ApiError> {
    known_provider(&app, &provider)?;
    let tenant = b.tenant.trim();
    valid_tenant(tenant).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_tenant", format!("tenant: {e}")))?;
    let sup = app.sup();
    let key = InstanceKey::new(provider, name);
    let now = sup.now();
    sup.store().set_tenant_assignment(&key, tenant, now).await?;
    audit(&app, &key, json!({"tenant": tenant, "actor": "api", "address": admin.ip.to_string()})).await?;
    Ok(Json(json!({
        "provider": key.provider, "instance": key.name, "tenant": tenant,
        "applies": "at the next poll cycle of the provider (also to an instance not discovered yet)",
    }))
    .into_response())
}

/// `DELETE /api/instances/{provider}/{name}/tenant`: the API's assignment
/// goes; the next source in the order decides again.
async fn unassign(
    State(app): State<AppState>,
    admin: Admin,
    Path((provider, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    known_provider(&app, &provider)?;
    let sup = app.sup();
    let key = InstanceKey::new(provider, name);
    let removed = sup.store().clear_tenant_assignment(&key).await?;
    if removed {
        audit(&app, &key, json!({"tenant": null, "actor": "api", "address": admin.ip.to_string()})).await?;
    }
    Ok(Json(json!({"provider": key.provider, "instance": key.name, "removed": removed})).into_response())
}

/// A `tenant_assigned` audit event: on the instance's timeline when it
/// exists, else on the provider's.
async fn audit(app: &AppState, key: &InstanceKey, mut detail: serde_json::Value) -> Result<(), ApiError> {
    let sup = app.sup();
    let store = sup.store();
    let id = store.instance(key).await?.map(|r| r.id);
    detail["instance"] = json!(key.name);
    store.record_event(id.as_deref(), &key.provider, "tenant_assigned", &detail, sup.now()).await?;
    tracing::info!(instance = %key, detail = %detail, "tenant assigned through the API");
    Ok(())
}

/// The admin token or the read-only events token, judged from the head.
pub struct EventsReader;

impl FromRequestParts<AppState> for EventsReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let Ok(ClientAddr(ip)) = ClientAddr::from_request_parts(parts, app).await;
        let sup = app.sup();
        let server = &sup.config().server;
        if server.admin_token.is_none() && server.events_token.is_none() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "disabled",
                "the event stream is disabled: set server.events_token_env (or server.admin_token_env)",
            ));
        }
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send Authorization: Bearer <events token or admin token>",
            )
        };
        let Some(b) = bearer(parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())) else {
            return Err(unauthorized());
        };
        app.guard.check(ip).map_err(rate_limited)?;
        let ok = [&server.admin_token, &server.events_token].into_iter().flatten().any(|t| t.matches(b.as_bytes()));
        if ok {
            return Ok(EventsReader);
        }
        app.guard.failed(ip).map_err(rate_limited)?;
        Err(unauthorized())
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    /// Events after this sequence number (default 0: from the oldest kept).
    after: Option<i64>,
    limit: Option<u32>,
    /// Hold the request until an event arrives or this passes (at most 60 s).
    wait: Option<String>,
}

/// `GET /api/events?after=<seq>&limit=<n>&wait=<duration>` →
/// `{"events": [...], "next": <seq>}`: the events after `after`, in order;
/// `next` is the `after` of the following call.
async fn events(
    State(app): State<AppState>,
    _: EventsReader,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let after = q.after.unwrap_or(0).max(0);
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let wait = match q.wait.as_deref() {
        None => Duration::ZERO,
        Some(w) => crate::config::parse_duration(w)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("wait: {e}")))?
            .min(MAX_WAIT),
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let sup = app.sup();
        let rows = sup.store().stream_after(after, limit).await?;
        let now = tokio::time::Instant::now();
        if !rows.is_empty() || now >= deadline {
            let next = rows.last().map_or(after, |r| r.0);
            let events: Vec<serde_json::Value> =
                rows.iter().filter_map(|(_, payload)| serde_json::from_str(payload).ok()).collect();
            return Ok(Json(json!({"events": events, "next": next})).into_response());
        }
        // Woken by this process's commits at once; other replicas' commits
        // are found at the next look, a second later at most.
        sup.stream_changed((deadline - now).min(Duration::from_secs(1))).await;
    }
}
