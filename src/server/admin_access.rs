//! Who may see the admin pages (the status page, the instance pages): a
//! session started with the `/login` form, or HTTP Basic with the admin token
//! as password (failed credentials limited per client address, see
//! [`super::login`]); the sign-in form itself, and the short pages that
//! refuse a request in operator words. `/status.css` lives here too: it
//! holds nothing but style and needs no credential.

use std::net::IpAddr;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::html;
use serde::Deserialize;

use super::AppState;
use super::auth::basic_password;
use super::body::{ADMIN_MAX_BODY, BodyError, is_form, read_limited};
use super::html::{self, message, respond, shell};
use super::login::{self, ClientAddr};
use crate::config::Secret;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/status.css", get(stylesheet))
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
    let mut r = message(
        StatusCode::TOO_MANY_REQUESTS,
        html! { p { "Too many failed sign-ins from this address: try again in " (secs) " s." } },
    );
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
    let body = html! {
        h1 { "wa-sentinel" }
        p { (note) }
        form method="post" action="/login" {
            input type="password" name="token" placeholder="admin token" autocomplete="current-password" required;
            " "
            button type="submit" { "Sign in" }
        }
    };
    respond(status, shell("wa-sentinel: sign in", body, false))
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
    message(status, html! { p { (e.to_string()) "." } p { a href="/" { "Back" } } })
}

/// 503 in operator words (the error itself went to the log).
pub fn unavailable() -> Response {
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        html! { p { "Not available: database unreachable; retry later (the log has the detail)." } },
    )
}

/// 403 when no admin token is configured.
pub fn disabled() -> Response {
    message(
        StatusCode::FORBIDDEN,
        html! {
            p { "The status page is disabled: set " code { "server.admin_token_env" } " (or " code { "_file" } ") \
                 in the configuration to enable it." }
        },
    )
}

/// 403 for a request the page will not carry out, and why.
pub fn forbidden(why: &str) -> Response {
    message(StatusCode::FORBIDDEN, html! { p { (why) } p { a href="/" { "Back" } } })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn text(r: Response) -> String {
        let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.expect("a body");
        String::from_utf8(b.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn refusals_escape_what_they_quote() {
        let page = text(login_form_page(StatusCode::OK, "<script>alert(1)</script>")).await;
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !page.contains("<script>"), "{page}");
        assert!(page.contains("<input type=\"password\" name=\"token\""), "{page}");
        let page = text(forbidden("a \"quoted\" <b>reason</b>")).await;
        assert!(page.contains("a &quot;quoted&quot; &lt;b&gt;reason&lt;/b&gt;"), "{page}");
    }
}
