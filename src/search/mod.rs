//! Queries over stored embeddings: parse (the query language) → embed and combine the terms into
//! one unit vector → rank the stored images (filters applied during the scan, so `k` results come
//! back whenever `k` images match) → page.
//!
//! Vectors are ranked by whichever [`VectorIndex`] the caller's snapshot holds; ties are
//! ordered by image id, so results are stable.

pub mod query;

use clipsight_indexer::clip::Language;
use clipsight_indexer::pipeline::prepare_file;
use clipsight_indexer::{ClipError, Embedding, Encoder, ModelId};

use crate::ann::{AnnError, Hit, VectorIndex};
use crate::keywords::Scope;
use crate::store::{ImageId, Store, StoreError};
pub use crate::filters::Filters;
pub use query::{parse, Query, QueryError, Term, TermKind};

/// Paging and thresholds.
#[derive(Debug, Clone, Copy)]
pub struct SearchOptions {
    /// Results to return.
    pub k: usize,
    /// Results to skip first.
    pub offset: usize,
    /// Drop results scoring below this.
    pub min_score: Option<f32>,
    /// Whether `+file:PATH` terms may read the local disk (CLI yes, HTTP no).
    pub allow_files: bool,
    /// Which rankings to use.
    pub mode: Mode,
    /// The language of the query's texts, for models that read one.
    pub language: Option<Language>,
}

/// Which rankings a query uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Cosine similarity of CLIP embeddings only.
    Vector,
    /// BM25 over file names, folders, EXIF, what people wrote (XMP/IPTC titles, descriptions,
    /// keywords) and automatic tags only.
    Keyword,
    /// Both, fused by reciprocal rank fusion when the file system, EXIF or annotation words match anything
    /// (automatic tags are left to keyword mode: see [`Scope::Metadata`]).
    #[default]
    Hybrid,
}

/// The indexes one query reads, from one snapshot (see [`crate::library`]): a graph and a
/// keyword index of different library states are never mixed.
#[derive(Clone, Copy)]
pub struct Rankers<'a> {
    /// The vector index.
    pub vectors: &'a dyn VectorIndex,
    /// The keyword index; without one, hybrid mode is the vector ranking.
    pub keywords: Option<&'a crate::keywords::Keywords>,
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self { k: 10, offset: 0, min_score: None, allow_files: false, mode: Mode::Hybrid, language: None }
    }
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query does not parse.
    #[error("bad query: {0}")]
    Query(#[from] QueryError),
    /// `+img:ID` names an image the library does not have (for this model).
    #[error("no image with id {0} in this library")]
    UnknownImage(u64),
    /// `+file:` is not allowed here, or the file could not be read.
    #[error("{0}")]
    File(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ClipError),
    /// The keyword index failed.
    #[error(transparent)]
    Keywords(#[from] crate::keywords::KeywordError),
    /// The vector index failed.
    #[error(transparent)]
    Vectors(#[from] AnnError),
}

/// Runs a parsed query: vector ranking, keyword ranking, or both fused (see [`Mode`]).
pub fn run(store: &Store, encoder: &dyn Encoder, query: &Query, options: SearchOptions, rankers: Rankers<'_>) -> Result<Vec<Hit>, SearchError> {
    let vector = query_vector(store, encoder, query, options)?;
    run_with_vector(store, encoder.id(), vector, query, options, rankers)
}

/// Ranks with a query vector computed elsewhere (an uploaded image's embedding); the query's
/// text terms still drive keyword ranking and its filters still apply.
pub fn run_with_vector(
    store: &Store,
    model: ModelId,
    vector: Option<Embedding>,
    query: &Query,
    options: SearchOptions,
    rankers: Rankers<'_>,
) -> Result<Vec<Hit>, SearchError> {
    let filters = &query.filters;
    let wanted = options.k + options.offset;
    let words = keyword_text(query);
    let keyword_hits = |scope: Scope, limit: usize| -> Result<Vec<Hit>, SearchError> {
        let Some(keywords) = rankers.keywords.filter(|_| !words.is_empty()) else { return Ok(Vec::new()) };
        let mut hits = Vec::new();
        for (id, score) in keywords.search(&words, scope, limit)? {
            if filters.is_empty() || store.file(id)?.is_some_and(|r| filters.matches(&r)) {
                hits.push(Hit::new(id, score));
            }
        }
        Ok(hits)
    };
    let vector_hits = |limit: usize| -> Result<Vec<Hit>, SearchError> {
        Ok(match &vector {
            Some(v) => rankers.vectors.search(&[v.as_slice()], limit, filters)?.pop().unwrap_or_default(),
            None => crate::ann::browse(store, model, filters, limit)?,
        })
    };
    let hits = match options.mode {
        Mode::Keyword => keyword_hits(Scope::All, wanted)?,
        Mode::Vector => vector_hits(wanted)?,
        Mode::Hybrid => {
            let pool = (wanted * 4).max(100);
            let lexical = keyword_hits(Scope::Metadata, pool)?;
            let semantic = vector_hits(if lexical.is_empty() { wanted } else { pool })?;
            if lexical.is_empty() {
                semantic
            } else {
                let ids = |h: &[Hit]| h.iter().map(|h| h.id).collect::<Vec<_>>();
                let fused = crate::keywords::reciprocal_rank_fusion(&[ids(&semantic), ids(&lexical)]);
                let ranked: std::collections::HashMap<ImageId, &Hit> = semantic.iter().map(|h| (h.id, h)).collect();
                let mut out = Vec::with_capacity(fused.len());
                for (id, _) in fused {
                    // Report the cosine (comparable across queries) and a video's moments; the
                    // order is the fusion's. Only images found by keywords alone need their
                    // embedding (or a video its moments) read.
                    out.push(match (ranked.get(&id), &vector) {
                        (Some(hit), _) => (*hit).clone(),
                        (None, Some(v)) => match crate::ann::stored_video_hit(store, model, id, v.as_slice())? {
                            Some(video) => video,
                            None => Hit::new(id, store.embedding(model, id)?.map_or(0.0, |e| v.cosine(&e))),
                        },
                        (None, None) => Hit::new(id, 0.0),
                    });
                }
                out
            }
        }
    };
    Ok(hits
        .into_iter()
        .filter(|h| options.min_score.is_none_or(|m| h.score >= m))
        .skip(options.offset)
        .take(options.k)
        .collect())
}

/// The words keyword search looks for: the positive text terms.
fn keyword_text(query: &Query) -> String {
    query
        .terms
        .iter()
        .filter(|t| t.weight > 0.0)
        .filter_map(|t| match &t.kind {
            TermKind::Text(s) => Some(s.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The unit query vector of the terms (`None` for a filter-only query); texts are embedded in
/// `options.language`, and `+file:` terms read only where `options.allow_files`.
pub fn query_vector(store: &Store, encoder: &dyn Encoder, query: &Query, options: SearchOptions) -> Result<Option<Embedding>, SearchError> {
    let texts: Vec<&str> = query
        .terms
        .iter()
        .filter_map(|t| match &t.kind {
            TermKind::Text(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    let mut text_embeddings = if texts.is_empty() { Vec::new() } else { encoder.encode_texts_in(&texts, options.language)? }.into_iter();
    let mut parts: Vec<(f32, Embedding)> = Vec::new();
    for term in &query.terms {
        let e = match &term.kind {
            TermKind::Text(_) => text_embeddings.next().expect("one embedding per text"),
            TermKind::Image(id) => store.embedding(encoder.id(), ImageId(*id))?.ok_or(SearchError::UnknownImage(*id))?,
            TermKind::File(path) => {
                if !options.allow_files {
                    return Err(SearchError::File("+file: terms are only accepted on the command line".into()));
                }
                let prepared = prepare_file(encoder, std::path::Path::new(path)).map_err(SearchError::File)?;
                encoder.encode_images(&[prepared])?.remove(0)
            }
        };
        parts.push((term.weight, e));
    }
    Ok(Embedding::weighted_sum(parts.iter().map(|(w, e)| (*w, e))))
}

