//! The browser UI: the files of `web/`, embedded in the binary.

use actix_web::http::header::{CacheControl, CacheDirective, ContentType};
use actix_web::{web, HttpResponse};
use rust_embed::RustEmbed;

use crate::server::error::ApiError;

/// `web/` at build time.
#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

/// `GET /`: the single page.
pub async fn index() -> HttpResponse {
    asset_response("index.html").unwrap_or_else(|| HttpResponse::Ok().content_type(ContentType::html()).body("clipsight: the web UI was not embedded"))
}

/// `GET /signin`: the sign-in page.
pub async fn sign_in() -> Result<HttpResponse, ApiError> {
    asset_response("signin.html").ok_or_else(|| ApiError::not_found("the sign-in page was not embedded"))
}

/// Whether `name` is a script, style sheet or icon of the UI: no photo and no library data,
/// needed before signing in. The pages themselves (`index.html`) are not.
pub fn is_public_asset(name: &str) -> bool {
    Assets::get(name).is_some_and(|file| !file.metadata.mimetype().starts_with("text/html"))
}

/// `GET /{file}`: a static asset, or a JSON 404.
pub async fn asset(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    asset_response(&name).ok_or_else(|| ApiError::not_found(format!("no route or file {name:?}")))
}

fn asset_response(name: &str) -> Option<HttpResponse> {
    let file = Assets::get(name)?;
    Some(
        HttpResponse::Ok()
            .content_type(file.metadata.mimetype())
            // Small files, versioned with the binary: revalidate rather than risk a stale UI.
            .insert_header(CacheControl(vec![CacheDirective::NoCache]))
            .body(file.data.into_owned()),
    )
}
