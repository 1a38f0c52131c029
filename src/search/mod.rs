//! Queries over stored embeddings: parse (the query language) → embed and combine the terms into
//! one unit vector → rank the stored images (filters applied during the scan, so `k` results come
//! back whenever `k` images match) → page.
//!
//! Ranking is an exact scan over the model's embeddings; ties are ordered by image id, so
//! results are stable.

pub mod query;

use clipsight_indexer::pipeline::prepare_file;
use clipsight_indexer::{Clip, ClipError, Embedding};
use serde::Serialize;

use crate::store::{FileRecord, ImageId, Store, StoreError};
pub use query::{parse, Filters, Query, QueryError, Term, TermKind};

/// One ranked image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Hit {
    /// The image.
    pub id: ImageId,
    /// Cosine similarity with the query.
    pub score: f32,
}

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
}

/// How candidates are ranked.
#[derive(Clone, Copy)]
pub enum Ranker<'a> {
    /// Compare the query with every stored embedding.
    Exact,
    /// Walk the HNSW graph.
    Graph(&'a crate::ann::AnnIndex),
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self { k: 10, offset: 0, min_score: None, allow_files: false }
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
}

/// Runs a parsed query.
pub fn run(store: &Store, clip: &Clip, query: &Query, options: SearchOptions, ranker: Ranker<'_>) -> Result<Vec<Hit>, SearchError> {
    let vector = query_vector(store, clip, query, options.allow_files)?;
    let filters = &query.filters;
    let accept = |id: ImageId| -> Result<bool, StoreError> {
        if filters.is_empty() {
            return Ok(true);
        }
        Ok(store.file(id)?.is_some_and(|r| matches(filters, &r)))
    };
    if let (Ranker::Graph(ann), Some(v)) = (ranker, &vector) {
        let wanted = options.k + options.offset;
        let hits = ann.search(v.as_slice(), wanted, ann.params().ef_search.max(wanted), &|id| accept(id).unwrap_or(false));
        return Ok(hits
            .into_iter()
            .filter(|h| options.min_score.is_none_or(|m| h.score >= m))
            .skip(options.offset)
            .take(options.k)
            .collect());
    }
    let mut hits = Vec::new();
    for item in store.embeddings(clip.id()) {
        let (id, e) = item?;
        let score = vector.as_ref().map_or(0.0, |v| v.cosine(&e));
        if options.min_score.is_some_and(|m| score < m) || !accept(id)? {
            continue;
        }
        hits.push(Hit { id, score });
    }
    rank(&mut hits);
    Ok(hits.into_iter().skip(options.offset).take(options.k).collect())
}

/// The unit query vector of the terms (`None` for a filter-only query).
pub fn query_vector(store: &Store, clip: &Clip, query: &Query, allow_files: bool) -> Result<Option<Embedding>, SearchError> {
    let texts: Vec<&str> = query
        .terms
        .iter()
        .filter_map(|t| match &t.kind {
            TermKind::Text(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    let mut text_embeddings = clip.encode_texts(&texts)?.into_iter();
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
    let date = record.exif.date_taken.as_deref().map(|d| &d[..d.len().min(10)]);
    filters.folders.iter().all(in_folder)
        && filters.after.as_deref().is_none_or(|a| date.is_some_and(|d| d >= a))
        && filters.before.as_deref().is_none_or(|b| date.is_some_and(|d| d < b))
        && filters.camera.as_deref().is_none_or(|c| {
            let cam = format!("{} {}", record.exif.make.as_deref().unwrap_or(""), record.exif.model.as_deref().unwrap_or(""));
            cam.to_lowercase().contains(c)
        })
        && filters.format.as_deref().is_none_or(|f| record.format == f)
}

/// Sorts hits best first; equal scores by ascending id.
pub fn rank(hits: &mut [Hit]) {
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ExifMeta;

    #[test]
    fn ties_are_ordered_by_id() {
        let mut hits = vec![
            Hit { id: ImageId(3), score: 0.5 },
            Hit { id: ImageId(1), score: 0.5 },
            Hit { id: ImageId(2), score: 0.9 },
        ];
        rank(&mut hits);
        let ids: Vec<u64> = hits.iter().map(|h| h.id.0).collect();
        assert_eq!(ids, vec![2, 1, 3]);
    }

    fn record(path: &str, date: Option<&str>, make: Option<&str>, format: &str) -> FileRecord {
        FileRecord {
            path: path.as_bytes().to_vec(),
            size: 1,
            mtime_ns: 0,
            hash: [0; 32],
            width: 1,
            height: 1,
            format: format.into(),
            exif: ExifMeta { date_taken: date.map(String::from), make: make.map(String::from), ..Default::default() },
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
