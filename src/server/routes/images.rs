//! `/api/images/{id}`: one image's metadata, thumbnail, original, similar images and description.

use actix_files::NamedFile;
use actix_web::http::header::{CacheControl, CacheDirective, ContentDisposition, DispositionType};
use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::server::error::{ApiError, ErrorBody};
use crate::library::{ImageRef, Library};
use crate::library::views::{DescribeResponse, ImageView, SearchResponse};
use crate::server::params::Page;

/// Parameters of `describe`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DescribeParams {
    /// Captions and tags to return (1–100, default 5).
    #[param(minimum = 1, maximum = 100)]
    k: Option<usize>,
}

/// Everything known about an image: path, size, format, EXIF, tags.
#[utoipa::path(
    tag = "images",
    params(("id" = u64, Path, description = "Image id")),
    responses(
        (status = 200, description = "The image's record", body = ImageView),
        (status = 404, description = "No such image", body = ErrorBody),
    )
)]
#[get("/images/{id}")]
pub async fn image(library: web::Data<Library>, id: web::Path<u64>) -> Result<web::Json<ImageView>, ApiError> {
    let id = id.into_inner();
    Ok(web::Json(web::block(move || library.image(id)).await??))
}

/// The image's thumbnail (JPEG, longest side 256 px).
#[utoipa::path(
    tag = "images",
    params(("id" = u64, Path, description = "Image id")),
    responses(
        (status = 200, description = "JPEG bytes", content_type = "image/jpeg"),
        (status = 404, description = "No such image", body = ErrorBody),
    )
)]
#[get("/images/{id}/thumbnail")]
pub async fn thumbnail(library: web::Data<Library>, id: web::Path<u64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    Ok(private_jpeg(web::block(move || library.thumbnail(id)).await??))
}

/// JPEG bytes the browser may keep for an hour, for this user only.
fn private_jpeg(bytes: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header(CacheControl(vec![CacheDirective::Private, CacheDirective::MaxAge(3600)]))
        .body(bytes)
}

/// Parameters of `preview`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewParams {
    /// For a video: the moment to show, seconds from the start (default its first moment);
    /// ignored for a photo.
    #[param(minimum = 0.0, maximum = 1e7)]
    t: Option<f64>,
}

/// A JPEG rendering of the original (longest side at most 2048 px, upright), for formats a
/// browser cannot show (HEIC, TIFF), or a video's frame at `t` seconds; the original stays at
/// `/file`.
#[utoipa::path(
    tag = "images",
    params(("id" = u64, Path, description = "Image id"), PreviewParams),
    responses(
        (status = 200, description = "JPEG bytes", content_type = "image/jpeg"),
        (status = 403, description = "The file resolves outside the indexed folders", body = ErrorBody),
        (status = 404, description = "No such image, or the file is gone", body = ErrorBody),
        (status = 413, description = "The file on disk is larger than the decoder's limits (`image_too_large`)", body = ErrorBody),
        (status = 415, description = "The file on disk is no longer an image clipsight reads (`not_an_image`)", body = ErrorBody),
        (status = 400, description = "`t` is not a number of seconds from 0 to 10,000,000 (`bad_parameter`)", body = ErrorBody),
        (status = 422, description = "The file on disk no longer decodes (`corrupt_image`, `corrupt_video`)", body = ErrorBody),
        (status = 503, description = "Reading the video's frame took longer than the per-file budget (`video_too_slow`)", body = ErrorBody),
    )
)]
#[get("/images/{id}/preview")]
pub async fn preview(library: web::Data<Library>, id: web::Path<u64>, params: web::Query<PreviewParams>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let at_s = params.t;
    if at_s.is_some_and(|t| !(0.0..=1e7).contains(&t)) {
        return Err(ApiError::bad_request("bad_parameter", "t must be a number of seconds from 0 to 10000000"));
    }
    Ok(private_jpeg(web::block(move || library.preview(id, at_s)).await??))
}

/// The original file — only when it resolves inside an indexed folder (symlinks pointing
/// elsewhere are refused). Supports range requests.
#[utoipa::path(
    tag = "images",
    params(("id" = u64, Path, description = "Image id")),
    responses(
        (status = 200, description = "The file's bytes"),
        (status = 206, description = "The byte range asked for (`Range`: how browsers seek in a video)"),
        (status = 416, description = "The range asked for lies outside the file"),
        (status = 403, description = "The file resolves outside the indexed folders", body = ErrorBody),
        (status = 404, description = "No such image, or the file is gone", body = ErrorBody),
    )
)]
#[get("/images/{id}/file")]
pub async fn file(library: web::Data<Library>, id: web::Path<u64>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let path = web::block(move || library.original(id)).await??;
    serve_file(id, &path, &req).await
}

/// A file listed with the image (`companions[n]` of its record: its RAW, a Live Photo's motion
/// video) — only when it resolves inside an indexed folder. Supports range requests.
#[utoipa::path(
    tag = "images",
    params(("id" = u64, Path, description = "Image id"), ("n" = usize, Path, description = "Index in the image's `companions`")),
    responses(
        (status = 200, description = "The file's bytes"),
        (status = 206, description = "The byte range asked for (`Range`: how browsers seek in a video)"),
        (status = 416, description = "The range asked for lies outside the file"),
        (status = 403, description = "The file resolves outside the indexed folders", body = ErrorBody),
        (status = 404, description = "No such image or companion, or the file is gone", body = ErrorBody),
    )
)]
#[get("/images/{id}/companions/{n}/file")]
pub async fn companion_file(library: web::Data<Library>, path: web::Path<(u64, usize)>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (id, n) = path.into_inner();
    let path = web::block(move || library.companion(id, n)).await??;
    serve_file(id, &path, &req).await
}

/// A file of image `id` shown inline, with ranges, ETag and Last-Modified.
async fn serve_file(id: u64, path: &std::path::Path, req: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let named = NamedFile::open_async(path).await.map_err(|_| ApiError::not_found(format!("the file of image {id} cannot be read")))?;
    let disposition = ContentDisposition { disposition: DispositionType::Inline, parameters: named.content_disposition().parameters.clone() };
    Ok(named.set_content_disposition(disposition).use_etag(true).use_last_modified(true).into_response(req))
}

/// Images most similar to an indexed one ("more like this"); the image itself ranks first.
#[utoipa::path(
    tag = "images",
    params(("id" = u64, Path, description = "Image id"), Page),
    responses(
        (status = 200, description = "Ranked images", body = SearchResponse),
        (status = 404, description = "No such image", body = ErrorBody),
    )
)]
#[get("/images/{id}/similar")]
pub async fn similar(library: web::Data<Library>, id: web::Path<u64>, page: web::Query<Page>) -> Result<web::Json<SearchResponse>, ApiError> {
    let (k, offset) = page.resolve()?;
    let options = crate::search::SearchOptions { k, offset, ..Default::default() };
    let target = ImageRef::Id(id.into_inner());
    Ok(web::Json(web::block(move || library.similar(target, options)).await??))
}

/// Image → text: the closest captions of the library's corpus and the likeliest tags.
#[utoipa::path(
    tag = "images",
    params(("id" = u64, Path, description = "Image id"), DescribeParams),
    responses(
        (status = 200, description = "Captions and tags, best first", body = DescribeResponse),
        (status = 404, description = "No such image", body = ErrorBody),
    )
)]
#[get("/images/{id}/describe")]
pub async fn describe(library: web::Data<Library>, id: web::Path<u64>, params: web::Query<DescribeParams>) -> Result<web::Json<DescribeResponse>, ApiError> {
    let k = params.k.unwrap_or(5);
    if !(1..=100).contains(&k) {
        return Err(ApiError::bad_request("bad_parameter", "k must be between 1 and 100"));
    }
    let id = id.into_inner();
    Ok(web::Json(web::block(move || library.describe(&ImageRef::Id(id), k)).await??))
}
