//! Library-wide routes: stats, facets, health, metrics and the OpenAPI document.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::library::views::{Facets, Stats};
use crate::library::Library;
use crate::server::error::{ApiError, ErrorBody};
use crate::server::metrics::Metrics;

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the server answers.
    pub status: String,
}

/// Library size, model, folders, indexing state.
#[utoipa::path(tag = "system", responses((status = 200, description = "Stats", body = Stats), (status = 500, description = "Store failure", body = ErrorBody)))]
#[get("/stats")]
pub async fn stats(library: web::Data<Library>) -> Result<web::Json<Stats>, ApiError> {
    Ok(web::Json(web::block(move || library.stats()).await??))
}

/// Folders, cameras, formats and the date range present, for filter chips.
#[utoipa::path(tag = "system", responses((status = 200, description = "Facet values", body = Facets)))]
#[get("/facets")]
pub async fn facets(library: web::Data<Library>) -> Result<web::Json<Facets>, ApiError> {
    Ok(web::Json(web::block(move || library.facets()).await??))
}

/// Liveness probe.
#[utoipa::path(tag = "system", responses((status = 200, description = "The server is up", body = Health)))]
#[get("/health")]
pub async fn health() -> web::Json<Health> {
    web::Json(Health { status: "ok".into() })
}

/// This document.
#[utoipa::path(tag = "system", responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json")))]
#[get("/openapi.json")]
pub async fn openapi(docs: web::Data<crate::server::openapi::Documents>, access: web::Data<crate::auth::AccessControl>) -> HttpResponse {
    HttpResponse::Ok().json(docs.get(access.anonymous()))
}

/// Prometheus metrics (text exposition format), outside `/api`.
pub async fn metrics(library: web::Data<Library>, metrics: web::Data<Metrics>) -> Result<HttpResponse, ApiError> {
    let images = web::block(move || library.image_count().map(|n| (n, library.jobs().busy()))).await??;
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(metrics.render(images.0, images.1)))
}
