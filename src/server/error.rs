//! The one error shape every route returns: `{"error":{"code","message"}}` with a fitting status.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::search::SearchError;

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

impl From<SearchError> for ApiError {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::Query(q) => Self::bad_request("bad_query", q.to_string()),
            SearchError::UnknownImage(id) => Self::not_found(format!("no image with id {id} in this library")),
            SearchError::File(m) => Self::bad_request("bad_query", m),
            other => Self::internal(other),
        }
    }
}

impl From<crate::search::QueryError> for ApiError {
    fn from(e: crate::search::QueryError) -> Self {
        Self::bad_request("bad_query", format!("bad query: {e}"))
    }
}

/// The blocking pool reports a panicked task only as "shut down unexpectedly"; the panic itself
/// was printed by the panic hook, on the pool's thread.
impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        Self::panicked()
    }
}

/// The text of a panic's payload (`panic!` with a literal or a formatted message).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str)).unwrap_or("(no message)")
}

/// Logs a 5xx response with its method, route and cause.
pub fn log_server_error(res: &actix_web::dev::ServiceResponse) {
    if res.status().is_server_error() {
        let request = res.request();
        let route = request.match_pattern().unwrap_or_else(|| request.path().to_string());
        let cause = res.response().error().map(ToString::to_string).unwrap_or_default();
        tracing::error!("{} {route} → {}: {cause}", request.method(), res.status().as_u16());
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::internal(e)
    }
}

impl From<clipsight_indexer::ClipError> for ApiError {
    fn from(e: clipsight_indexer::ClipError) -> Self {
        Self::internal(e)
    }
}

impl From<crate::describe::DescribeError> for ApiError {
    fn from(e: crate::describe::DescribeError) -> Self {
        Self::internal(e)
    }
}

/// Turns extractor failures (bad JSON, bad query string, bad path segment) into JSON 4xx errors.
pub fn extractor_error(code: &'static str, error: impl std::fmt::Display, status: StatusCode) -> actix_web::Error {
    ApiError::new(status, code, error.to_string()).into()
}
