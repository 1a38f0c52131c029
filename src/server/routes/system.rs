//! Library-wide routes: stats, facets, health, metrics and the OpenAPI document.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::server::derived::GraphState;
use crate::server::error::{ApiError, ErrorBody};
use crate::server::jobs::Job;
use crate::server::library::Library;
use crate::server::metrics::Metrics;
use crate::server::views::Facets;

/// The library at a glance.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    /// Images in the library.
    pub images: usize,
    /// The model's id (hex).
    pub model: String,
    /// Embedding dimension.
    pub dim: usize,
    /// Indexed folders.
    pub roots: Vec<String>,
    /// Whether an indexing job is queued or running.
    pub indexing: bool,
    /// The running job.
    pub job: Option<Job>,
    /// How vector queries are answered.
    pub graph: GraphState,
    /// Whether this server may index (false while another process owns the library).
    pub writable: bool,
}

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
    Ok(web::Json(
        web::block(move || -> Result<Stats, ApiError> {
            Ok(Stats {
                images: library.image_count()?,
                model: library.clip().id().to_hex(),
                dim: library.clip().dim(),
                roots: library.store().roots()?.iter().map(|r| r.display().to_string()).collect(),
                indexing: library.jobs().busy(),
                job: library.jobs().running(),
                graph: library.graph_state(),
                writable: library.writable(),
            })
        })
        .await??,
    ))
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
pub async fn openapi(doc: web::Data<utoipa::openapi::OpenApi>) -> HttpResponse {
    HttpResponse::Ok().json(doc.get_ref())
}

/// Prometheus metrics (text exposition format), outside `/api`.
pub async fn metrics(library: web::Data<Library>, metrics: web::Data<Metrics>) -> Result<HttpResponse, ApiError> {
    let images = web::block(move || library.image_count().map(|n| (n, library.jobs().busy()))).await??;
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(metrics.render(images.0, images.1)))
}
