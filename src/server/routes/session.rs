//! `/api/session`: signing in (a passphrase for a session cookie), who is signed in, signing out.

use std::time::UNIX_EPOCH;

use actix_web::http::{header, StatusCode};
use actix_web::{delete, get, post, web, HttpMessage, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{AccessControl, Anonymous, Role, Session, SignInError};
use crate::server::auth::{self, Caller};
use crate::server::error::{ApiError, ErrorBody};

/// A sign-in: a user's name and passphrase.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The user's name (`clipsight user add NAME`).
    pub user: String,
    /// The user's passphrase.
    pub passphrase: String,
}

/// How the caller is authenticated.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// The signed-in user or the token's name; null for an anonymous caller.
    pub user: Option<String>,
    /// What the caller may do.
    pub role: Role,
    /// `session` (a sign-in cookie), `token` (a bearer token) or `anonymous`.
    pub via: String,
    /// When the session ends (seconds since 1970); null unless `via` is `session`.
    pub expires_at: Option<u64>,
}

impl SessionView {
    fn of(caller: &Caller, anonymous: Anonymous) -> Self {
        match caller {
            Caller::Session(p, s) => Self { user: Some(p.name.clone()), role: p.role, via: "session".into(), expires_at: Some(unix_seconds(s)) },
            Caller::Token(p) => Self { user: Some(p.name.clone()), role: p.role, via: "token".into(), expires_at: None },
            Caller::Anonymous => Self {
                user: None,
                role: if anonymous == Anonymous::Everything { Role::Write } else { Role::Read },
                via: "anonymous".into(),
                expires_at: None,
            },
        }
    }
}

fn unix_seconds(session: &Session) -> u64 {
    session.expires_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Signs in: checks the passphrase (Argon2) and sets an `HttpOnly`, `SameSite=Strict` session
/// cookie (`Secure` behind TLS). Failures are throttled per client: after a few, the client is
/// locked out (429 with `Retry-After`) for a time that doubles with every further failure, and
/// even the right passphrase waits for the lock to end. Cross-site sign-ins are refused.
#[utoipa::path(
    tag = "session",
    request_body = SignIn,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = SessionView),
        (status = 401, description = "Wrong user or passphrase (`wrong_credentials`)", body = ErrorBody),
        (status = 403, description = "A cross-site request (`cross_site`)", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins from this client (`locked_out`); see Retry-After", body = ErrorBody),
    )
)]
#[post("/session")]
pub async fn sign_in(req: HttpRequest, access: web::Data<AccessControl>, body: web::Json<SignIn>) -> Result<HttpResponse, ApiError> {
    auth::same_origin(&req)?;
    let client = auth::client_address(&req);
    let SignIn { user, passphrase } = body.into_inner();
    let checker = access.clone();
    let outcome = web::block(move || checker.sign_in(client, &user, &passphrase)).await?;
    match outcome {
        Ok((id, session, principal)) => Ok(HttpResponse::Ok()
            .cookie(auth::session_cookie(&req, &id, access.session_ttl()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(SessionView::of(&Caller::Session(principal, session), access.anonymous()))),
        Err(SignInError::Wrong { locked_for: None }) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong_credentials", "wrong user or passphrase")),
        Err(SignInError::Wrong { locked_for: Some(wait) } | SignInError::Locked(wait)) => {
            let seconds = wait.as_secs_f64().ceil() as u64;
            let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "locked_out", format!("too many failed sign-ins from this address; try again in {seconds} s"));
            let mut response = actix_web::ResponseError::error_response(&error);
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(seconds.max(1)));
            Ok(response)
        }
    }
}

/// Who the caller is: the signed-in user, the token, or anonymous (and what it may do).
#[utoipa::path(tag = "session", responses((status = 200, description = "The caller", body = SessionView)))]
#[get("/session")]
pub async fn current(req: HttpRequest, access: web::Data<AccessControl>) -> web::Json<SessionView> {
    let caller = req.extensions().get::<Caller>().cloned().unwrap_or(Caller::Anonymous);
    web::Json(SessionView::of(&caller, access.anonymous()))
}

/// Signs out: ends the session and removes its cookie.
#[utoipa::path(tag = "session", responses((status = 204, description = "Signed out (also when there was no session)")))]
#[delete("/session")]
pub async fn sign_out(req: HttpRequest, access: web::Data<AccessControl>) -> HttpResponse {
    if let Some(cookie) = req.cookie(auth::COOKIE) {
        access.sign_out(cookie.value());
    }
    HttpResponse::NoContent().cookie(auth::removal_cookie(&req)).finish()
}
