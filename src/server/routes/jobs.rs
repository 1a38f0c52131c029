//! `/api/index` and `/api/jobs/{id}`: re-scanning the library's folders in the background.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};

use crate::server::auth::CanWrite;
use crate::server::error::{ApiError, ErrorBody};
use crate::library::{Job, Library, Trigger};

/// Re-scans the library's folders (new, changed, moved and deleted files). Needs write
/// credentials when the server has users or tokens. A job already queued is returned instead of a second one.
#[utoipa::path(
    tag = "indexing",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "The queued job; poll /api/jobs/{id}", body = Job),
        (status = 401, description = "No credentials", body = ErrorBody),
        (status = 403, description = "Wrong token or read-only credentials", body = ErrorBody),
        (status = 409, description = "Another process owns the library", body = ErrorBody),
    )
)]
#[post("/index")]
pub async fn index(library: web::Data<Library>, _auth: CanWrite) -> Result<HttpResponse, ApiError> {
    let queued = library.start_indexing(Trigger::Api)?;
    Ok(HttpResponse::build(StatusCode::ACCEPTED).json(queued))
}

/// An indexing job's state and progress.
#[utoipa::path(
    tag = "indexing",
    params(("id" = u64, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 404, description = "No such job (finished jobs are kept for a while)", body = ErrorBody),
    )
)]
#[get("/jobs/{id}")]
pub async fn job(library: web::Data<Library>, id: web::Path<u64>) -> Result<web::Json<Job>, ApiError> {
    Ok(web::Json(library.job(id.into_inner())?))
}
