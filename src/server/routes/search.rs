//! `/api/search`: text (query language), structured and upload queries.

use actix_multipart::Multipart;
use actix_web::{get, post, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::search::{self, Mode, Query, SearchOptions, Term, TermKind};
use crate::server::error::{ApiError, ErrorBody};
use crate::server::json::WholeNumber;
use crate::library::Library;
use crate::server::upload::{self, UploadLimit};
use crate::library::views::SearchResponse;
use crate::server::params::{language, sort, DateOrder, Page, SortKey};

/// Query-string parameters of `GET /api/search`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The query language: `"red car" -night 2:sunset +img:ID folder:trips after:2019-01-01
    /// before:2020-01-01 camera:canon type:png` (`type:photo`, `type:video`, a format) and
    /// `near:LAT,LON,KM`. Empty: browse the library in id order.
    q: Option<String>,
    /// Results to return (1–1000, default 20).
    #[param(minimum = 1, maximum = 1000)]
    k: Option<usize>,
    /// Results to skip (at most 100000).
    #[param(maximum = 100000)]
    offset: Option<usize>,
    /// `hybrid` (default), `vector` or `keyword`.
    #[param(inline)]
    mode: Option<Mode>,
    /// Drop results scoring below this: the cosine (−1…1) in vector and hybrid mode, the BM25
    /// score in keyword mode.
    min_score: Option<f64>,
    /// The language of the query's texts: a BCP-47 tag (`zh-CN`, `es`) or a FLORES-200 code
    /// (`zho_Hans`). Written before the text for models that read one (NLLB-CLIP; the response's
    /// `lang` says which code), ignored by the others; an unknown tag is English.
    #[param(max_length = 64)]
    lang: Option<String>,
    /// Only the relevant results (all of them, paged): those at or above the query's own
    /// relevance cutoff (see `relevant` in the results).
    relevant: Option<bool>,
    /// Order of the relevant results: `score` (default) or `date` (capture date; the less
    /// relevant rest follows by score).
    #[param(inline)]
    sort: Option<SortKey>,
    /// With `sort=date`: `newest` (default) or `oldest` first (ignored otherwise).
    #[param(inline)]
    order: Option<DateOrder>,
}

/// A structured query: the query language and/or explicit weighted terms.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    /// A query in the query language (terms and filters); optional.
    q: Option<String>,
    /// Weighted terms added to those of `q`.
    #[serde(default)]
    terms: Vec<TermBody>,
    /// Results to return (1–1000, default 20).
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    k: Option<WholeNumber>,
    /// Results to skip (at most 100000).
    #[schema(value_type = Option<u64>, maximum = 100000)]
    offset: Option<WholeNumber>,
    /// `hybrid` (default), `vector` or `keyword`.
    #[schema(inline)]
    mode: Option<Mode>,
    /// Drop results scoring below this: the cosine (−1…1) in vector and hybrid mode, the BM25
    /// score in keyword mode.
    min_score: Option<f64>,
    /// The language of the query's texts: a BCP-47 tag (`zh-CN`, `es`) or a FLORES-200 code
    /// (`zho_Hans`). Written before the text for models that read one (NLLB-CLIP; the response's
    /// `lang` says which code), ignored by the others; an unknown tag is English.
    #[schema(max_length = 64)]
    lang: Option<String>,
    /// Only the relevant results (all of them, paged): those at or above the query's own
    /// relevance cutoff (see `relevant` in the results).
    relevant: Option<bool>,
    /// Order of the relevant results: `score` (default) or `date` (capture date; the less
    /// relevant rest follows by score).
    #[schema(inline)]
    sort: Option<SortKey>,
    /// With `sort=date`: `newest` (default) or `oldest` first (ignored otherwise).
    #[schema(inline)]
    order: Option<DateOrder>,
}

/// One weighted term: a text or an indexed image (documented as `oneOf`; read through
/// [`RawTerm`] so that a term with both or neither says so).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged, try_from = "RawTerm")]
pub enum TermBody {
    /// A text to embed.
    Text(TextTerm),
    /// An indexed image's embedding.
    Image(ImageTerm),
}

/// A weighted text term.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextTerm {
    /// Text to embed (not only white space).
    #[schema(pattern = r"\S")]
    text: String,
    /// Weight (default 1; negative subtracts; −100 to 100).
    #[schema(minimum = -100.0, maximum = 100.0)]
    weight: Option<f64>,
}

/// A weighted image term.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageTerm {
    /// An indexed image's id.
    #[schema(value_type = u64)]
    image: WholeNumber,
    /// Weight (default 1; negative subtracts; −100 to 100).
    #[schema(minimum = -100.0, maximum = 100.0)]
    weight: Option<f64>,
}

/// A term as written, before it is known to be a text or an image.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTerm {
    text: Option<String>,
    image: Option<WholeNumber>,
    weight: Option<f64>,
}

impl TryFrom<RawTerm> for TermBody {
    type Error = &'static str;

    fn try_from(raw: RawTerm) -> Result<Self, Self::Error> {
        match (raw.text, raw.image) {
            (Some(text), None) => Ok(Self::Text(TextTerm { text, weight: raw.weight })),
            (None, Some(image)) => Ok(Self::Image(ImageTerm { image, weight: raw.weight })),
            _ => Err("a term needs exactly one of \"text\" and \"image\""),
        }
    }
}

/// The multipart body of `POST /api/search/image`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)] // the schema lists exactly these fields
#[allow(dead_code)] // describes the form that `upload::read_form` reads
pub struct ImageUpload {
    /// The image file (JPEG, PNG, WebP, GIF, BMP or TIFF).
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
}

/// Parameters of `POST /api/search/image`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImageSearchParams {
    /// Results to return (1–1000, default 20).
    #[param(minimum = 1, maximum = 1000)]
    k: Option<usize>,
    /// Results to skip (at most 100000).
    #[param(maximum = 100000)]
    offset: Option<usize>,
    /// Filters in the query language (e.g. `folder:trips type:jpeg`); text terms are not allowed.
    q: Option<String>,
    /// Only the relevant results (all of them, paged): those at or above the query's own
    /// relevance cutoff (see `relevant` in the results).
    relevant: Option<bool>,
    /// Order of the relevant results: `score` (default) or `date` (capture date; the less
    /// relevant rest follows by score).
    #[param(inline)]
    sort: Option<SortKey>,
    /// With `sort=date`: `newest` (default) or `oldest` first (ignored otherwise).
    #[param(inline)]
    order: Option<DateOrder>,
}

/// What a request asks of its results' relevance and order.
struct Order {
    relevant: Option<bool>,
    sort: Option<SortKey>,
    order: Option<DateOrder>,
}

fn options(k: Option<usize>, offset: Option<usize>, mode: Option<Mode>, min_score: Option<f64>, lang: Option<&str>, order: Order) -> Result<SearchOptions, ApiError> {
    let (k, offset) = Page { k, offset }.resolve()?;
    if min_score.is_some_and(f64::is_nan) {
        return Err(ApiError::bad_request("bad_parameter", "min_score must be a number"));
    }
    Ok(SearchOptions {
        k,
        offset,
        min_score: min_score.map(|m| m as f32),
        allow_files: false,
        mode: mode.unwrap_or_default(),
        language: language(lang)?,
        relevant_only: order.relevant.unwrap_or(false),
        sort: sort(order.sort, order.order),
    })
}

impl SearchBody {
    /// The query: `q` parsed, then `terms` appended.
    fn query(&self) -> Result<Query, ApiError> {
        let mut query = search::parse(self.q.as_deref().unwrap_or(""))?;
        for (i, t) in self.terms.iter().enumerate() {
            let (weight, kind) = match t {
                TermBody::Text(t) if !t.text.trim().is_empty() => (t.weight, TermKind::Text(t.text.clone())),
                TermBody::Text(_) => return Err(ApiError::bad_request("bad_query", format!("terms[{i}].text is empty"))),
                TermBody::Image(t) => (t.weight, TermKind::Image(t.image.0)),
            };
            let weight = weight.unwrap_or(1.0);
            if !(-100.0..=100.0).contains(&weight) {
                return Err(ApiError::bad_request("bad_query", format!("terms[{i}].weight must be between -100 and 100")));
            }
            query.terms.push(Term { weight: weight as f32, kind });
        }
        Ok(query)
    }
}

/// Text → image search with the query language.
#[utoipa::path(
    tag = "search",
    params(SearchParams),
    responses(
        (status = 200, description = "Ranked images", body = SearchResponse),
        (status = 400, description = "Malformed query (the message points at the token)", body = ErrorBody),
    )
)]
#[get("/search")]
pub async fn search_get(library: web::Data<Library>, params: web::Query<SearchParams>) -> Result<web::Json<SearchResponse>, ApiError> {
    let p = params.into_inner();
    let options = options(p.k, p.offset, p.mode, p.min_score, p.lang.as_deref(), Order { relevant: p.relevant, sort: p.sort, order: p.order })?;
    let query = search::parse(p.q.as_deref().unwrap_or(""))?;
    Ok(web::Json(web::block(move || library.search(&query, None, options)).await??))
}

/// Structured search: the query language plus weighted text and image terms.
#[utoipa::path(
    tag = "search",
    request_body = SearchBody,
    responses(
        (status = 200, description = "Ranked images", body = SearchResponse),
        (status = 400, description = "Malformed body or query", body = ErrorBody),
        (status = 404, description = "An image term names an unknown id", body = ErrorBody),
    )
)]
#[post("/search")]
pub async fn search_post(library: web::Data<Library>, body: web::Json<SearchBody>) -> Result<web::Json<SearchResponse>, ApiError> {
    let order = Order { relevant: body.relevant, sort: body.sort, order: body.order };
    let options = options(body.k.map(WholeNumber::count), body.offset.map(WholeNumber::count), body.mode, body.min_score, body.lang.as_deref(), order)?;
    let query = body.query()?;
    Ok(web::Json(web::block(move || library.search(&query, None, options)).await??))
}

/// Find similar images by upload (multipart/form-data, file field `image`).
#[utoipa::path(
    tag = "search",
    params(ImageSearchParams),
    request_body(content = ImageUpload, content_type = "multipart/form-data", description = "A field `image` holding the file"),
    responses(
        (status = 200, description = "Images most similar to the upload", body = SearchResponse),
        (status = 400, description = "No image field, or text terms in q", body = ErrorBody),
        (status = 413, description = "Larger than the upload limit, or too many pixels", body = ErrorBody),
        (status = 415, description = "Not an image", body = ErrorBody),
        (status = 422, description = "A corrupt image", body = ErrorBody),
    )
)]
#[post("/search/image")]
pub async fn search_image(
    library: web::Data<Library>,
    limit: web::Data<UploadLimit>,
    params: web::Query<ImageSearchParams>,
    payload: Multipart,
) -> Result<web::Json<SearchResponse>, ApiError> {
    let p = params.into_inner();
    let options = options(p.k, p.offset, Some(Mode::Vector), None, None, Order { relevant: p.relevant, sort: p.sort, order: p.order })?;
    let query = search::parse(p.q.as_deref().unwrap_or(""))?;
    if !query.terms.is_empty() {
        return Err(ApiError::bad_request("bad_query", "q may only hold filters here (folder:, after:, before:, camera:, type:)"));
    }
    let form = upload::read_form(payload, limit.0, &[]).await?;
    let bytes = form.image()?.to_vec();
    Ok(web::Json(
        web::block(move || {
            let vector = library.embed_bytes(&bytes)?;
            library.search(&query, Some(vector), options)
        })
        .await??,
    ))
}
