//! The one error shape every route returns: `{"error":{"code","message"}}` with a fitting status.

use clipsight_indexer::video::VideoError;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use futures_util::FutureExt;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::library::LibraryError;

/// An error answered to the client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// The JSON body of an error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// A machine-readable code and a message for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case (e.g. `bad_query`, `not_found`, `payload_too_large`).
    pub code: String,
    /// What happened and, where possible, how to fix it.
    pub message: String,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    /// 400: the request is malformed.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500: our fault; the message names the cause (logged with the route by the server).
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", error.to_string())
    }

    /// 500 for a handler that panicked: a bug of ours, whose details are in the server's log,
    /// never in the response.
    pub fn panicked() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "an internal error occurred while answering this request; the server logged it and keeps serving")
    }

    /// The code, for tests and metrics.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(ErrorBody {
            error: ErrorDetail { code: self.code.to_string(), message: self.message.clone() },
        })
    }
}

/// The one place library errors become HTTP statuses.
impl From<LibraryError> for ApiError {
    fn from(e: LibraryError) -> Self {
        match e {
            LibraryError::NotFound(m) => Self::not_found(m),
            LibraryError::ReadOnly => Self::new(StatusCode::CONFLICT, "read_only", "another process is indexing this library; this server only reads it"),
            e @ LibraryError::OutsideRoots(_) => Self::new(StatusCode::FORBIDDEN, "outside_roots", e.to_string()),
            LibraryError::BadQuery(m) => Self::bad_request("bad_query", m),
            LibraryError::Image(e) => super::upload::prepare_error(e),
            LibraryError::Video(e @ (VideoError::Corrupt(_) | VideoError::NoVideoStream)) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "corrupt_video", e.to_string()),
            LibraryError::Video(e @ VideoError::OverBudget(_)) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "video_too_slow", e.to_string()),
            e @ LibraryError::NoRoots => Self::new(StatusCode::CONFLICT, "no_roots", e.to_string()),
            LibraryError::Unavailable(m) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", m),
            other => Self::internal(other),
        }
    }
}

impl From<crate::search::QueryError> for ApiError {
    fn from(e: crate::search::QueryError) -> Self {
        LibraryError::from(e).into()
    }
}

/// The blocking pool reports a panicked task (the panic itself was printed by the panic hook, on
/// the pool's thread) and a pool already shut down (the server is stopping) alike, as "shut down
/// unexpectedly": either way the request was not answered, which is what the client is told.
impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        Self::panicked()
    }
}

/// Middleware (`App::wrap_fn`): a handler that panics, or whose blocking task did, is answered
/// as a JSON 500 ([`ApiError::panicked`]) and logged with its route, and the worker keeps serving;
/// every other 5xx is logged with its route too. (The request must not be cloned before routing:
/// actix panics on a shared one, so the route is kept as text.)
pub fn answer_panics<S, B>(req: ServiceRequest, srv: &S) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let route = format!("{} {}", req.method(), req.path());
    let call = std::panic::catch_unwind(AssertUnwindSafe(|| srv.call(req)));
    async move {
        let outcome = match call {
            Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
            Err(panic) => Err(panic),
        };
        match outcome {
            Ok(res) => {
                let res = res?;
                log_server_error(&res);
                Ok(res)
            }
            Err(panic) => {
                tracing::error!("{route} → 500: the handler panicked: {}", panic_message(panic.as_ref()));
                Err(ApiError::panicked().into())
            }
        }
    }
}

/// The text of a panic's payload (`panic!` with a literal or a formatted message).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str)).unwrap_or("(no message)")
}

/// Logs a 5xx response with its method, route and cause.
fn log_server_error<B>(res: &ServiceResponse<B>) {
    if res.status().is_server_error() {
        let request = res.request();
        let route = request.match_pattern().unwrap_or_else(|| request.path().to_string());
        let cause = res.response().error().map(ToString::to_string).unwrap_or_default();
        tracing::error!("{} {route} → {}: {cause}", request.method(), res.status().as_u16());
    }
}

/// Turns extractor failures (bad JSON, bad query string, bad path segment) into JSON 4xx errors.
pub fn extractor_error(code: &'static str, error: impl std::fmt::Display, status: StatusCode) -> actix_web::Error {
    ApiError::new(status, code, error.to_string()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{test, web, App};

    #[actix_web::test]
    async fn a_panicking_handler_is_a_json_500_and_the_server_keeps_serving() {
        let app = test::init_service(
            App::new()
                .wrap_fn(answer_panics)
                .route("/async", web::get().to(|| async { panic!("boom in the handler") as &'static str }))
                .route("/blocking", web::get().to(|| async { web::block(|| panic!("boom in the pool") as &'static str).await.map_err(ApiError::from) }))
                .route("/fine", web::get().to(|| async { "fine" })),
        )
        .await;
        for route in ["/async", "/blocking"] {
            // The error is answered by actix as the response `error_response()` makes.
            let res = match test::try_call_service(&app, test::TestRequest::get().uri(route).to_request()).await {
                Ok(res) => res.into_parts().1,
                Err(e) => e.error_response(),
            };
            assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{route}");
            let bytes = actix_web::body::to_bytes(res.into_body()).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["error"]["code"], "internal", "{route}: {body}");
            assert!(body["error"]["message"].as_str().unwrap().contains("an internal error occurred"), "{route}: {body}");
            let fine = test::call_service(&app, test::TestRequest::get().uri("/fine").to_request()).await;
            assert_eq!(fine.status(), StatusCode::OK, "the server keeps serving after {route}");
        }
    }
}
