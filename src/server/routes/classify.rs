//! `/api/classify` and `/api/matrix`: zero-shot classification and image × text similarities.

use actix_multipart::Multipart;
use actix_web::{post, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::server::error::{ApiError, ErrorBody};
use crate::library::Library;
use crate::server::upload::{self, UploadLimit};
use crate::library::views::{ClassifyResponse, MatrixResponse};
use crate::library::ImageRef;
use crate::server::params::{language, MatrixRequest};

/// The multipart body of `POST /api/classify`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)] // the schema lists exactly these fields
#[allow(dead_code)] // describes the form that `upload::read_form` reads
pub struct ClassifyForm {
    /// The image file.
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
    /// 2 to 256 labels: comma-separated in one field, or one field per label.
    #[schema(schema_with = labels_schema)]
    labels: String,
    /// The labels' language: a BCP-47 tag (`zh-CN`) or a FLORES-200 code (`zho_Hans`), read by
    /// models that take one (NLLB-CLIP); an unknown tag is English.
    #[schema(max_length = 64)]
    lang: Option<String>,
}

/// `labels`: one string holding two labels or more (`a dog,a cat`), or the field repeated, each
/// holding one label or more. JSON Schema cannot count to the limit of 256; the server answers 400
/// past it.
fn labels_schema() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
    let text = |pattern: &str| ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern));
    OneOfBuilder::new()
        .item(text(r"[^,\s]\s*,\s*[^,\s]"))
        .item(ArrayBuilder::new().items(text(r"[^,\s]")).min_items(Some(2)))
        .description(Some("2 to 256 labels: comma-separated in one field (`a dog,a cat`), or one field per label"))
        .build()
        .into()
}

/// Most labels one request may score.
const MAX_LABELS: usize = 256;

/// Zero-shot classification: multipart `image` file + `labels` (comma-separated, or one field per
/// label) and optionally their `lang` → each label's probability as the model scores it: a
/// softmax over the labels at the model's logit scale (CLIP-trained; they sum to 1), or each
/// label's own sigmoid with the model's scale and bias (SigLIP-trained; independent). The
/// response's `scoring` says which.
#[utoipa::path(
    tag = "image-to-text",
    request_body(content = ClassifyForm, content_type = "multipart/form-data", description = "Fields `image` (file), `labels` (comma-separated, or repeated) and optionally `lang`"),
    responses(
        (status = 200, description = "Probabilities per label", body = ClassifyResponse),
        (status = 400, description = "Fewer than two labels, no image, or a `lang` over 64 characters", body = ErrorBody),
        (status = 413, description = "Too large", body = ErrorBody),
        (status = 415, description = "Not an image", body = ErrorBody),
        (status = 422, description = "A corrupt image", body = ErrorBody),
    )
)]
#[post("/classify")]
pub async fn classify(library: web::Data<Library>, limit: web::Data<UploadLimit>, payload: Multipart) -> Result<web::Json<ClassifyResponse>, ApiError> {
    let form = upload::read_form(payload, limit.0, &["labels", "lang"]).await?;
    let language = language(form.fields.get("lang").map(String::as_str))?;
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
            let embedding = library.embed_bytes(&bytes)?;
            library.classify(&embedding, labels, language)
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
    let images: Vec<ImageRef> = body.images.iter().map(|id| ImageRef::Id(id.0)).collect();
    Ok(web::Json(web::block(move || library.matrix(&images, &body.texts)).await??))
}
