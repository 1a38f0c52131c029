//! Queries over stored embeddings: parse (the query language) → embed and combine the terms into
//! one unit vector → rank the stored images (filters applied during the scan, so `k` results come
//! back whenever `k` images match) → page.
//!
//! Ranking is an exact scan over the model's embeddings; ties are ordered by image id, so
//! results are stable.

pub mod query;

use clipsight_indexer::pipeline::prepare_file;
use clipsight_indexer::{Clip, ClipError, Embedding};

use crate::ann::{rank, Hit};
use crate::keywords::Scope;
use crate::store::{FileRecord, ImageId, Store, StoreError};
pub use query::{parse, Filters, Query, QueryError, Term, TermKind};

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
}

/// Which rankings a query uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Cosine similarity of CLIP embeddings only.
    Vector,
    /// BM25 over file names, folders, EXIF and automatic tags only.
    Keyword,
    /// Both, fused by reciprocal rank fusion when the file system or EXIF words match anything
    /// (automatic tags are left to keyword mode: see [`Scope::Metadata`]).
    #[default]
    Hybrid,
}

/// The indexes available to a query. Without a graph the vector ranking is an exact scan;
/// without keywords hybrid mode is the vector ranking.
#[derive(Clone, Copy, Default)]
pub struct Rankers<'a> {
    /// The HNSW graph, when the library is large enough to have one.
    pub graph: Option<&'a crate::ann::AnnIndex>,
    /// A flat copy of the vectors (see [`crate::ann::flat`]) for an exact scan without reading
    /// RocksDB, used when there is no graph (yet).
    pub vectors: Option<&'a crate::ann::FlatVectors>,
    /// The keyword index.
    pub keywords: Option<&'a crate::keywords::Keywords>,
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self { k: 10, offset: 0, min_score: None, allow_files: false, mode: Mode::Hybrid }
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
}

/// Runs a parsed query: vector ranking, keyword ranking, or both fused (see [`Mode`]).
pub fn run(store: &Store, clip: &Clip, query: &Query, options: SearchOptions, rankers: Rankers<'_>) -> Result<Vec<Hit>, SearchError> {
    let vector = query_vector(store, clip, query, options.allow_files)?;
    run_with_vector(store, clip, vector, query, options, rankers)
}

/// Ranks with a query vector computed elsewhere (an uploaded image's embedding, a cached text
/// embedding); the query's text terms still drive keyword ranking and its filters still apply.
pub fn run_with_vector(
    store: &Store,
    clip: &Clip,
    vector: Option<Embedding>,
    query: &Query,
    options: SearchOptions,
    rankers: Rankers<'_>,
) -> Result<Vec<Hit>, SearchError> {
    let filters = &query.filters;
    let accept = |id: ImageId| -> bool {
        filters.is_empty() || store.file(id).ok().flatten().is_some_and(|r| matches(filters, &r))
    };
    let wanted = options.k + options.offset;
    let words = keyword_text(query);
    let keyword_hits = |scope: Scope, limit: usize| -> Result<Vec<Hit>, SearchError> {
        let Some(keywords) = rankers.keywords.filter(|_| !words.is_empty()) else { return Ok(Vec::new()) };
        Ok(keywords
            .search(&words, scope, limit)?
            .into_iter()
            .filter(|(id, _)| accept(*id))
            .map(|(id, score)| Hit { id, score })
            .collect())
    };
    let hits = match options.mode {
        Mode::Keyword => keyword_hits(Scope::All, wanted)?,
        Mode::Vector => vector_hits(store, clip, vector.as_ref(), &accept, rankers, wanted)?,
        Mode::Hybrid => {
            let pool = (wanted * 4).max(100);
            let lexical = keyword_hits(Scope::Metadata, pool)?;
            let semantic = vector_hits(store, clip, vector.as_ref(), &accept, rankers, if lexical.is_empty() { wanted } else { pool })?;
            if lexical.is_empty() {
                semantic
            } else {
                let ids = |h: &[Hit]| h.iter().map(|h| h.id).collect::<Vec<_>>();
                let fused = crate::keywords::reciprocal_rank_fusion(&[ids(&semantic), ids(&lexical)]);
                let cosines: std::collections::HashMap<ImageId, f32> = semantic.iter().map(|h| (h.id, h.score)).collect();
                let mut out = Vec::with_capacity(fused.len());
                for (id, _) in fused {
                    // Report the cosine (comparable across queries); the order is the fusion's.
                    // Only images found by keywords alone need their embedding read.
                    let score = match (cosines.get(&id), &vector) {
                        (Some(c), _) => *c,
                        (None, Some(v)) => store.embedding(clip.id(), id)?.map_or(0.0, |e| v.cosine(&e)),
                        (None, None) => 0.0,
                    };
                    out.push(Hit { id, score });
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

/// The best `limit` images by cosine with `vector` (all accepted images, by id, when the query
/// has no vector): through the graph when there is one, else by an exact scan of the flat
/// vectors when they are mapped, else of the store.
fn vector_hits(
    store: &Store,
    clip: &Clip,
    vector: Option<&Embedding>,
    accept: &(dyn Fn(ImageId) -> bool + Sync),
    rankers: Rankers<'_>,
    limit: usize,
) -> Result<Vec<Hit>, SearchError> {
    match (rankers.graph, rankers.vectors, vector) {
        (Some(ann), _, Some(v)) => return Ok(ann.search(v.as_slice(), limit, ann.params().ef_search.max(limit), accept)),
        (None, Some(flat), Some(v)) => return Ok(flat.search(v.as_slice(), limit, accept)),
        _ => {}
    }
    let mut hits = Vec::new();
    for item in store.embeddings(clip.id()) {
        let (id, e) = item?;
        if accept(id) {
            hits.push(Hit { id, score: vector.map_or(0.0, |v| v.cosine(&e)) });
        }
    }
    rank(&mut hits);
    hits.truncate(limit);
    Ok(hits)
}

/// The unit query vector of the terms (`None` for a filter-only query).
pub fn query_vector(store: &Store, clip: &Clip, query: &Query, allow_files: bool) -> Result<Option<Embedding>, SearchError> {
    query_vector_with(store, clip, query, allow_files, &|texts| clip.encode_texts(texts))
}

/// Embeds texts for a query (the model's encoder, or a cache in front of it).
pub type TextEncoder<'a> = dyn Fn(&[&str]) -> Result<Vec<Embedding>, ClipError> + 'a;

/// [`query_vector`] with the text encoder supplied by the caller (the server's cached one).
pub fn query_vector_with(
    store: &Store,
    clip: &Clip,
    query: &Query,
    allow_files: bool,
    encode_texts: &TextEncoder<'_>,
) -> Result<Option<Embedding>, SearchError> {
    let texts: Vec<&str> = query
        .terms
        .iter()
        .filter_map(|t| match &t.kind {
            TermKind::Text(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    let mut text_embeddings = if texts.is_empty() { Vec::new() } else { encode_texts(&texts)? }.into_iter();
    let mut parts: Vec<(f32, Embedding)> = Vec::new();
    for term in &query.terms {
        let e = match &term.kind {
            TermKind::Text(_) => text_embeddings.next().expect("one embedding per text"),
            TermKind::Image(id) => store.embedding(clip.id(), ImageId(*id))?.ok_or(SearchError::UnknownImage(*id))?,
            TermKind::File(path) => {
                if !allow_files {
                    return Err(SearchError::File("+file: terms are only accepted on the command line".into()));
                }
                let prepared = prepare_file(clip, std::path::Path::new(path)).map_err(SearchError::File)?;
                clip.encode_images(&[prepared])?.remove(0)
            }
        };
        parts.push((term.weight, e));
    }
    Ok(Embedding::weighted_sum(parts.iter().map(|(w, e)| (*w, e))))
}

/// Whether a record passes the filters.
pub fn matches(filters: &Filters, record: &FileRecord) -> bool {
    let path = record.display_path();
    let in_folder = |folder: &String| {
        let needle = format!("/{folder}/");
        format!("/{}", path.trim_start_matches('/')).contains(&needle)
    };
    let day = record.exif.date_taken.map(|d| d.day());
    filters.folders.iter().all(in_folder)
        && filters.after.is_none_or(|a| day.is_some_and(|d| d >= a))
        && filters.before.is_none_or(|b| day.is_some_and(|d| d < b))
        && filters.camera.as_deref().is_none_or(|c| {
            let cam = format!("{} {}", record.exif.make.as_deref().unwrap_or(""), record.exif.model.as_deref().unwrap_or(""));
            cam.to_lowercase().contains(c)
        })
        && filters.format.as_deref().is_none_or(|f| record.format == f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CaptureDate, ExifMeta};

    fn record(path: &str, date: Option<&str>, make: Option<&str>, format: &str) -> FileRecord {
        FileRecord {
            path: path.as_bytes().to_vec(),
            size: 1,
            mtime_ns: 0,
            hash: [0; 32],
            width: 1,
            height: 1,
            format: format.into(),
            exif: ExifMeta { date_taken: date.and_then(CaptureDate::parse), make: make.map(String::from), ..Default::default() },
            indexed_at: 0,
        }
    }

    #[test]
    fn filters_match_folder_components_dates_camera_and_type() {
        let r = record("/photos/trips/2019/beach.jpg", Some("2019-06-01 10:00:00"), Some("Canon"), "jpeg");
        let q = |s: &str| parse(s).unwrap().filters;
        assert!(matches(&q("folder:trips/2019"), &r));
        assert!(!matches(&q("folder:trips/201"), &r), "whole components only");
        assert!(matches(&q("after:2019-01-01 before:2020-01-01"), &r));
        assert!(!matches(&q("after:2019-06-02"), &r));
        assert!(matches(&q("camera:canon type:jpg"), &r));
        assert!(!matches(&q("camera:nikon"), &r));
        assert!(!matches(&q("after:2000-01-01"), &record("/x.png", None, None, "png")), "no date, no match");
    }
}
