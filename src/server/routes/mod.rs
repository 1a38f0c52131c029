//! One module per resource; [`api`] registers them all under `/api`, which also yields the
//! OpenAPI document, so the document cannot drift from the routes.

pub mod classify;
pub mod images;
pub mod jobs;
pub mod search;
pub mod session;
pub mod system;
pub mod web_ui;

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every `/api` route.
pub fn api(cfg: &mut ServiceConfig) {
    cfg.service(search::search_get)
        .service(search::search_post)
        .service(search::search_image)
        .service(images::image)
        .service(images::thumbnail)
        .service(images::preview)
        .service(images::file)
        .service(images::companion_file)
        .service(images::similar)
        .service(images::describe)
        .service(classify::classify)
        .service(classify::matrix)
        .service(jobs::index)
        .service(jobs::job)
        .service(system::stats)
        .service(system::facets)
        .service(system::health)
        .service(session::sign_in)
        .service(session::current)
        .service(session::sign_out)
        .service(system::openapi);
}
