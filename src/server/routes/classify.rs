//! `/api/classify` and `/api/matrix`: zero-shot classification and image × text similarities.

use actix_multipart::Multipart;
use actix_web::{post, web};

use crate::server::error::{ApiError, ErrorBody};
use crate::server::library::Library;
use crate::server::upload::{self, UploadLimit};
use crate::server::views::{ClassifyResponse, MatrixRequest, MatrixResponse};

/// Most labels one request may score.
const MAX_LABELS: usize = 256;

/// Zero-shot classification: multipart `image` file + `labels` (comma-separated, or one field per
/// label) → the softmax of the model's scaled cosines.
#[utoipa::path(
    tag = "image-to-text",
    request_body(content_type = "multipart/form-data", description = "Fields `image` (file) and `labels` (comma-separated, or repeated)"),
    responses(
        (status = 200, description = "Probabilities per label", body = ClassifyResponse),
        (status = 400, description = "Fewer than two labels, or no image", body = ErrorBody),
        (status = 413, description = "Too large", body = ErrorBody),
        (status = 415, description = "Not an image", body = ErrorBody),
        (status = 422, description = "A corrupt image", body = ErrorBody),
    )
)]
#[post("/classify")]
pub async fn classify(library: web::Data<Library>, limit: web::Data<UploadLimit>, payload: Multipart) -> Result<web::Json<ClassifyResponse>, ApiError> {
    let form = upload::read_form(payload, limit.0).await?;
    let labels: Vec<String> = form
        .fields
        .get("labels")
        .map(|l| l.split(',').map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    if labels.len() < 2 || labels.len() > MAX_LABELS {
        return Err(ApiError::bad_request("bad_labels", format!("give between 2 and {MAX_LABELS} labels in the \"labels\" field, e.g. \"a dog,a cat\"")));
    }
    let bytes = form.image()?.to_vec();
    Ok(web::Json(
        web::block(move || {
            let embedding = library.embed_upload(&bytes)?;
            library.classify(&embedding, labels)
        })
        .await??,
    ))
}

/// Cosine similarities of indexed images × texts (and the InfoNCE loss of the pairs in order).
#[utoipa::path(
    tag = "image-to-text",
    request_body = MatrixRequest,
    responses(
        (status = 200, description = "The similarity matrix", body = MatrixResponse),
        (status = 400, description = "Empty or too large", body = ErrorBody),
        (status = 404, description = "An unknown image id", body = ErrorBody),
    )
)]
#[post("/matrix")]
pub async fn matrix(library: web::Data<Library>, body: web::Json<MatrixRequest>) -> Result<web::Json<MatrixResponse>, ApiError> {
    let body = body.into_inner();
    if body.images.is_empty() || body.texts.is_empty() || body.images.len() > MAX_LABELS || body.texts.len() > MAX_LABELS {
        return Err(ApiError::bad_request("bad_matrix", format!("give 1 to {MAX_LABELS} image ids and 1 to {MAX_LABELS} texts")));
    }
    Ok(web::Json(web::block(move || library.matrix(&body.images, &body.texts)).await??))
}
