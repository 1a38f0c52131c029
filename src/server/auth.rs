//! Authentication over HTTP: the guard every request passes (deny by default: a route is open
//! only when listed as public), the extractor write routes take, the session cookie, and the
//! cross-site check. What callers may do is decided by [`AccessControl`]; this file reads it off
//! requests.
//!
//! ```text
//! request → credentials: Authorization: Bearer … | session cookie | none
//!         → cookie on an unsafe method: same-origin only (Sec-Fetch-Site, else Origin)
//!         → public route? → handler
//!         → anonymous: Everything (loopback, no credentials: only from this machine) | Read | Nothing (401; `/` → /signin)
//!         → handler; write routes also take [`CanWrite`]
//! ```

use std::future::{ready, Future, Ready};
use std::net::{IpAddr, Ipv4Addr};

use actix_web::body::EitherBody;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};

use super::error::ApiError;
use crate::auth::{AccessControl, Anonymous, Principal, Role, Session};

/// The session cookie's name.
pub const COOKIE: &str = "clipsight_session";

/// Operations anyone may call, whatever the server's access: `(method, path)`.
pub const PUBLIC_OPERATIONS: &[(&str, &str)] = &[("GET", "/api/health"), ("POST", "/api/session")];

/// The sign-in page.
pub const SIGN_IN_PAGE: &str = "/signin";

/// Who is calling, as the guard found out (in the request's extensions).
#[derive(Debug, Clone)]
pub enum Caller {
    /// No credentials.
    Anonymous,
    /// A bearer token.
    Token(Principal),
    /// A signed-in browser session.
    Session(Principal, Session),
}

impl Caller {
    /// The user or token, when authenticated.
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::Anonymous => None,
            Caller::Token(p) | Caller::Session(p, _) => Some(p),
        }
    }
}

/// Whether `method path` needs no authentication at all: the public operations, the sign-in
/// page, and the UI's scripts and styles (no photo, no library data).
pub fn is_public(method: &Method, path: &str) -> bool {
    PUBLIC_OPERATIONS.iter().any(|(m, p)| method.as_str() == *m && path == *p)
        || (method == Method::GET && (path == SIGN_IN_PAGE || super::routes::web_ui::is_public_asset(path.trim_start_matches('/'))))
}

/// Middleware (`App::wrap_fn`): identifies the caller and refuses what it may not see, before
/// any route runs. The caller goes into the request's extensions for [`CanWrite`] and the
/// session routes.
pub fn guard<S, B>(req: ServiceRequest, srv: &S) -> impl Future<Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let outcome = match req.app_data::<web::Data<AccessControl>>().cloned() {
        Some(access) => admit(req.request(), &access),
        None => Err(Box::new(ApiError::internal("no access control configured").error_response())),
    };
    let call = match outcome {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            Ok(srv.call(req))
        }
        Err(mut refusal) => {
            if refusal.status() == StatusCode::UNAUTHORIZED {
                // RFC 9110: a 401 names the scheme that would be accepted.
                refusal.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"clipsight\""));
            }
            Err(req.into_response(*refusal))
        }
    };
    async move {
        match call {
            Ok(fut) => fut.await.map(ServiceResponse::map_into_left_body),
            Err(refusal) => Ok(refusal.map_into_right_body()),
        }
    }
}

/// The caller, or the response that refuses it.
fn admit(req: &HttpRequest, access: &AccessControl) -> Result<Caller, Box<HttpResponse>> {
    let anonymous = access.anonymous();
    let public = is_public(req.method(), req.path());
    let caller = match identify(req, access, anonymous) {
        Ok(caller) => caller,
        Err(_) if public => Caller::Anonymous,
        Err(e) => return Err(Box::new(e.error_response())),
    };
    if matches!(caller, Caller::Session(..)) && !req.method().is_safe() {
        same_origin(req).map_err(|e| Box::new(e.error_response()))?;
    }
    if public || caller.principal().is_some() {
        return Ok(caller);
    }
    match anonymous {
        Anonymous::Everything => from_this_machine(req).map(|()| caller).map_err(|e| Box::new(e.error_response())),
        Anonymous::Read => Ok(caller),
        Anonymous::Nothing if req.method() == Method::GET && (req.path() == "/" || req.path() == "/index.html") => Err(Box::new(to_sign_in(req))),
        Anonymous::Nothing => Err(Box::new(unauthenticated(req).error_response())),
    }
}

/// Reads the credentials a request carries: a bearer token (wrong: 403, malformed: 401), else a
/// live session cookie, else none. A server whose anonymous callers may do everything has no
/// credentials to check.
fn identify(req: &HttpRequest, access: &AccessControl, anonymous: Anonymous) -> Result<Caller, ApiError> {
    if anonymous == Anonymous::Everything {
        return Ok(Caller::Anonymous);
    }
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let secret = value.to_str().ok().and_then(|h| h.strip_prefix("Bearer ")).ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "the Authorization header must be `Bearer TOKEN`")
        })?;
        return access.bearer(secret.trim()).map(Caller::Token).ok_or_else(|| ApiError::new(StatusCode::FORBIDDEN, "forbidden", "wrong token"));
    }
    Ok(req.cookie(COOKIE).and_then(|c| access.session(c.value())).map_or(Caller::Anonymous, |(p, s)| Caller::Session(p, s)))
}

/// 401, saying whether a session cookie was sent (and is no longer valid) or nothing was.
fn unauthenticated(req: &HttpRequest) -> ApiError {
    let message = if req.cookie(COOKIE).is_some() {
        "your session has expired or was ended (signed out, server restarted): sign in again at /signin"
    } else {
        "sign in at /signin, or send `Authorization: Bearer TOKEN`"
    };
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// 303 to the sign-in page, which sends the browser back here afterwards.
fn to_sign_in(req: &HttpRequest) -> HttpResponse {
    let here = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
    HttpResponse::SeeOther().insert_header((header::LOCATION, format!("{SIGN_IN_PAGE}?next={next}"))).finish()
}

/// A cookie-authenticated request that changes something must come from this server's own
/// pages: `Sec-Fetch-Site` (every current browser sends it) must say same-origin, or, where it is
/// absent, `Origin` must be this server's. `SameSite=Strict` already keeps the cookie off
/// cross-site requests; this is the second lock.
pub fn same_origin(req: &HttpRequest) -> Result<(), ApiError> {
    let refused = || ApiError::new(StatusCode::FORBIDDEN, "cross_site", "a cross-site request cannot use this server's session; use the server's own page");
    if let Some(site) = req.headers().get("sec-fetch-site") {
        return if site == "same-origin" || site == "none" { Ok(()) } else { Err(refused()) };
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let info = req.connection_info();
        let own = format!("{}://{}", info.scheme(), info.host());
        return if origin.as_bytes() == own.as_bytes() { Ok(()) } else { Err(refused()) };
    }
    Ok(())
}

/// A server without credentials answers anonymous callers only from this machine: a request
/// that a proxy forwarded, or whose `Host` is not a loopback name (a web page that rebinds its
/// own domain to 127.0.0.1, a reverse proxy exposing the port), is refused.
fn from_this_machine(req: &HttpRequest) -> Result<(), ApiError> {
    let forwarded = ["forwarded", "x-forwarded-for", "x-real-ip"].iter().any(|h| req.headers().contains_key(*h));
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    if !forwarded && host.is_none_or(is_loopback_host) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "local_only",
        "this server has no users or tokens, so it answers only requests from this machine; add a user (`clipsight user add NAME`) or a token, or start it with --public",
    ))
}

/// `localhost`, `*.localhost`, or a loopback address, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let name = name.to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The client a sign-in is throttled as: the peer's address, or, when the peer is a proxy on
/// this machine, the address it forwarded (the last `X-Forwarded-For` entry, the one the proxy
/// itself added).
pub fn client_address(req: &HttpRequest) -> IpAddr {
    let peer = req.peer_addr().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    if !peer.is_loopback() {
        return peer;
    }
    req.headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|ip| ip.trim().parse().ok())
        .unwrap_or(peer)
}

/// The session cookie for `id` (`Secure` when the client reached us over TLS, directly or
/// through a proxy that says so in `X-Forwarded-Proto`/`Forwarded`).
pub fn session_cookie(req: &HttpRequest, id: &str, ttl: std::time::Duration) -> Cookie<'static> {
    Cookie::build(COOKIE, id.to_string())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(req.connection_info().scheme() == "https")
        .max_age(actix_web::cookie::time::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)))
        .finish()
}

/// The cookie that removes the session cookie.
pub fn removal_cookie(req: &HttpRequest) -> Cookie<'static> {
    let mut cookie = session_cookie(req, "", std::time::Duration::ZERO);
    cookie.make_removal();
    cookie
}

/// Proof that the caller may change the library (start indexing): write credentials, or an
/// anonymous caller of a server whose anonymous callers may do everything.
pub struct CanWrite;

impl FromRequest for CanWrite {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let caller = req.extensions().get::<Caller>().cloned().unwrap_or(Caller::Anonymous);
        let everything = req.app_data::<web::Data<AccessControl>>().is_some_and(|a| a.anonymous() == Anonymous::Everything);
        ready(match caller.principal() {
            Some(p) if p.role == Role::Write => Ok(CanWrite),
            Some(p) => Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("{:?} has read-only access", p.name))),
            None if everything => Ok(CanWrite),
            None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "this route needs write credentials: sign in, or send `Authorization: Bearer TOKEN`")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_loopback_names_and_addresses_only() {
        for host in ["localhost", "localhost:8080", "LOCALHOST", "photos.localhost:80", "127.0.0.1", "127.3.4.5:9", "[::1]:8080", "[::1]"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["example.com", "evil.com:8080", "localhost.evil.com", "192.168.1.10:8080", "[2001:db8::1]:80", "0.0.0.0", ""] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn public_means_health_sign_in_and_the_ui_assets_not_the_page_or_the_data() {
        assert!(is_public(&Method::GET, "/api/health"));
        assert!(is_public(&Method::POST, "/api/session"));
        assert!(is_public(&Method::GET, "/signin"));
        assert!(is_public(&Method::GET, "/app.css"));
        assert!(!is_public(&Method::DELETE, "/api/session"));
        assert!(!is_public(&Method::GET, "/api/session"));
        assert!(!is_public(&Method::GET, "/"));
        assert!(!is_public(&Method::GET, "/index.html"));
        assert!(!is_public(&Method::GET, "/api/images/1/thumbnail"));
        assert!(!is_public(&Method::GET, "/metrics"));
        assert!(!is_public(&Method::POST, "/api/health"));
    }
}
