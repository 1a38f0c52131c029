//! Multipart image uploads: size-limited while streaming, bounded in time, content-sniffed, and
//! decoded with the indexer's pixel limits.

use std::collections::HashMap;
use std::time::Duration;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use futures_util::StreamExt;

use super::error::ApiError;
use clipsight_indexer::decode::DecodeError;
use clipsight_indexer::pipeline::PrepareError;

/// Longest a client may take to send an upload; a slow client cannot hold a request forever.
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Size limit of one text field.
const MAX_FIELD_BYTES: usize = 64 * 1024;

/// The upload size limit in bytes (`--upload-limit-mb`).
#[derive(Debug, Clone, Copy)]
pub struct UploadLimit(pub usize);

/// Fields of a multipart form: the bytes of the `image` file and the text fields.
#[derive(Debug, Default)]
pub struct Form {
    /// The `image` field's bytes.
    pub image: Option<Vec<u8>>,
    /// Other fields, by name; repeated names are joined with commas.
    pub fields: HashMap<String, String>,
}

/// Reads a whole multipart form with the file field `image` and the text fields `fields`,
/// refusing any other field (400, as the route's documented form allows no other), more than
/// `limit` bytes (413) or a slower client than [`UPLOAD_TIMEOUT`] (408).
pub async fn read_form(payload: Multipart, limit: usize, fields: &[&str]) -> Result<Form, ApiError> {
    match actix_web::rt::time::timeout(UPLOAD_TIMEOUT, collect(payload, limit, fields)).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", "the upload took too long")),
    }
}

async fn collect(mut payload: Multipart, limit: usize, fields: &[&str]) -> Result<Form, ApiError> {
    let mut form = Form::default();
    let mut total = 0usize;
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(multipart_error)?;
        let name = field.name().unwrap_or_default().to_string();
        let is_image = name == "image";
        if !is_image && !fields.contains(&name.as_str()) {
            let known = std::iter::once("image").chain(fields.iter().copied()).collect::<Vec<_>>().join(", ");
            return Err(ApiError::bad_request("unknown_field", format!("the form has a field {name:?}; this route reads only {known}")));
        }
        // A file under a text field's name is read (and counted) but not kept.
        let ignored = !is_image && field.content_disposition().and_then(|cd| cd.get_filename()).is_some();
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(multipart_error)?;
            total += chunk.len();
            if total > limit {
                return Err(too_large(limit));
            }
            if ignored {
                continue;
            }
            if !is_image && bytes.len() + chunk.len() > MAX_FIELD_BYTES {
                return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("field {name:?} is longer than {MAX_FIELD_BYTES} bytes")));
            }
            bytes.extend_from_slice(&chunk);
        }
        if is_image {
            form.image = Some(bytes);
        } else if !ignored {
            let text = String::from_utf8(bytes).map_err(|_| ApiError::bad_request("bad_form", format!("field {name:?} is not UTF-8 text")))?;
            form.fields.entry(name).and_modify(|v| {
                v.push(',');
                v.push_str(&text);
            }).or_insert(text);
        }
    }
    Ok(form)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("uploads are limited to {} MB", limit / 1_000_000))
}

fn multipart_error(e: actix_multipart::MultipartError) -> ApiError {
    match e {
        actix_multipart::MultipartError::ContentTypeMissing | actix_multipart::MultipartError::ContentTypeIncompatible => {
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_multipart", "send the image as multipart/form-data with a field named \"image\"")
        }
        other => ApiError::bad_request("bad_form", format!("malformed multipart body: {other}")),
    }
}

impl Form {
    /// The uploaded image's bytes, sniffed: 400 without one, 415 when it is not an image format
    /// clipsight reads.
    pub fn image(&self) -> Result<&[u8], ApiError> {
        let bytes = self.image.as_deref().ok_or_else(|| ApiError::bad_request("missing_image", "the form has no \"image\" file field"))?;
        if bytes.is_empty() {
            return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_an_image", "the \"image\" field is empty"));
        }
        if clipsight_indexer::format::MediaFormat::sniff(bytes).is_none() {
            return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_an_image", "the upload is not an image clipsight reads (JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC, AVIF)"));
        }
        Ok(bytes)
    }
}

/// Maps a decode failure of an upload to its status: 413 for pixel limits, 422 for corrupt data.
pub fn prepare_error(e: PrepareError) -> ApiError {
    match e {
        PrepareError::Decode(DecodeError::TooLarge(m)) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "image_too_large", format!("image too large: {m}")),
        PrepareError::Decode(DecodeError::UnknownFormat) => ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_an_image", "unrecognised image format"),
        PrepareError::Decode(DecodeError::Video) => ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_an_image", "a video: find similar takes a picture (a frame of it will do)"),
        PrepareError::Decode(DecodeError::Corrupt(m)) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "corrupt_image", format!("corrupt image: {m}")),
        PrepareError::Preprocess(e) => ApiError::internal(e),
    }
}
