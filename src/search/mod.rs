//! Queries over stored embeddings: parse (the query language) → embed and combine the terms into
//! one unit vector → rank the stored images (filters applied during the scan, so `k` results come
//! back whenever `k` images match) → page.
//!
//! Vectors are ranked by whichever [`VectorIndex`] the caller's snapshot holds; ties are
//! ordered by image id, so results are stable.

pub mod query;
pub mod relevance;

use clipsight_indexer::clip::{Family, Language};
use clipsight_indexer::pipeline::prepare_file;
use clipsight_indexer::{ClipError, Embedding, Encoder, ModelId};

use crate::ann::{AnnError, Hit, IndexKind, VectorIndex};
use crate::keywords::Scope;
use crate::store::{ImageId, Store, StoreError};
pub use crate::filters::Filters;
pub use query::{parse, Query, QueryError, Term, TermKind};
pub use relevance::Background;

/// Relevant hits counted exactly per query, at most (more are reported as "more than").
pub const COUNT_LIMIT: usize = 1000;

/// Results a date order reads, at most: the best this many by score (in id order for a query
/// without text or images), of which the relevant ones are ordered by date.
pub const DATE_LIMIT: usize = 10_000;

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
    /// Return only the hits judged relevant (see [`relevance`]).
    pub relevant_only: bool,
    /// The order of the relevant hits.
    pub sort: Sort,
}

/// How relevant hits are ordered; the less relevant rest always follows by score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Best first.
    #[default]
    Score,
    /// By capture date (EXIF; images without one after the dated), newest first.
    Newest,
    /// By capture date, oldest first.
    Oldest,
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
    /// The library's background vectors, that each query's relevance cutoff is read against.
    pub background: &'a Background,
}

/// One result and whether it is relevant to the query.
#[derive(Debug, Clone)]
pub struct Found {
    /// The image and its score.
    pub hit: Hit,
    /// Whether it scores at or above the query's relevance cutoff (always, for a query
    /// without a vector: keywords or filters alone).
    pub relevant: bool,
}

/// A page of results and how many relevant hits the query has in all.
#[derive(Debug, Clone, Default)]
pub struct Ranked {
    /// The page.
    pub hits: Vec<Found>,
    /// Relevant hits in all pages (`None` without a query vector), counted up to
    /// [`COUNT_LIMIT`] (or the page's end, or [`DATE_LIMIT`] for a date order).
    pub relevant_count: Option<usize>,
    /// Whether there are more relevant hits than `relevant_count` says.
    pub relevant_more: bool,
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self { k: 10, offset: 0, min_score: None, allow_files: false, mode: Mode::Hybrid, language: None, relevant_only: false, sort: Sort::Score }
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
pub fn run(store: &Store, encoder: &dyn Encoder, query: &Query, options: SearchOptions, rankers: Rankers<'_>) -> Result<Ranked, SearchError> {
    let vector = query_vector(store, encoder, query, options)?;
    run_with_vector(store, encoder.id(), vector, query, options, rankers)
}

/// Ranks with a query vector computed elsewhere (an uploaded image's embedding); the query's
/// text terms still drive keyword ranking and its filters still apply.
///
/// With a query vector, every hit is judged against the query's relevance cutoff (see
/// [`relevance`]): the vector ranking is read down to the cutoff (up to [`COUNT_LIMIT`], or
/// [`DATE_LIMIT`] for a date order) so that the relevant hits can be counted, ordered by date or
/// returned alone.
pub fn run_with_vector(
    store: &Store,
    model: ModelId,
    vector: Option<Embedding>,
    query: &Query,
    options: SearchOptions,
    rankers: Rankers<'_>,
) -> Result<Ranked, SearchError> {
    let filters = &query.filters;
    let wanted = options.k + options.offset;
    let by_score = options.sort == Sort::Score;
    let limit = if by_score { COUNT_LIMIT.max(wanted) } else { DATE_LIMIT };
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
    // Without a query vector every hit is relevant: it matched the words, or the filters alone.
    let all_relevant = |hits: Vec<Hit>| hits.into_iter().map(|hit| Found { hit, relevant: true }).collect::<Vec<_>>();
    let page_or_all = if by_score { wanted } else { limit };
    let (found, counted) = match (&vector, options.mode) {
        (_, Mode::Keyword) => (all_relevant(keyword_hits(Scope::All, page_or_all)?), false),
        (None, _) => (all_relevant(crate::ann::browse(store, filters, page_or_all)?), false),
        (Some(v), mode) => {
            let lexical = if mode == Mode::Hybrid { keyword_hits(Scope::Metadata, (wanted * 4).max(100))? } else { Vec::new() };
            let pool = if lexical.is_empty() { wanted } else { (wanted * 4).max(100) };
            let (mut semantic, cutoff) = down_to_cutoff(rankers, v, filters, pool, limit)?;
            let ranked = if lexical.is_empty() {
                semantic
            } else {
                // The fusion reads the vector ranking's first `pool` hits, however far it was
                // read for the cutoff; the rest follow in their order.
                let rest = semantic.split_off(pool.min(semantic.len()));
                let mut fused = fuse(store, model, rankers.vectors, v, semantic, &lexical)?;
                let seen: std::collections::HashSet<ImageId> = fused.iter().map(|h| h.id).collect();
                fused.extend(rest.into_iter().filter(|h| !seen.contains(&h.id)));
                fused
            };
            // In hybrid mode, an image whose metadata matched the words is relevant too.
            let matched: std::collections::HashSet<ImageId> = lexical.iter().map(|h| h.id).collect();
            (ranked.into_iter().map(|hit| Found { relevant: hit.score >= cutoff || matched.contains(&hit.id), hit }).collect(), true)
        }
    };
    let mut found: Vec<Found> = found.into_iter().filter(|f| options.min_score.is_none_or(|m| f.hit.score >= m)).collect();
    let relevant_count = counted.then(|| found.iter().filter(|f| f.relevant).count());
    let relevant_more = relevant_count.is_some_and(|n| n >= limit);
    relevant_first(store, &mut found, options.sort)?;
    if options.relevant_only {
        found.retain(|f| f.relevant);
    }
    Ok(Ranked { hits: found.into_iter().skip(options.offset).take(options.k).collect(), relevant_count, relevant_more })
}

/// The vector ranking of `v` (at least `pool` hits, read on fourfold up to `limit` until it
/// passes below the cutoff) and the query's relevance cutoff. The cutoff is read from the
/// library's [`relevance::CUTOFF_HITS`] best hits without the query's filters (a filter narrows
/// which images are shown, not which are relevant) and the background. An exact index scans
/// every vector whatever the count asked for, so it is asked for `limit` at once.
fn down_to_cutoff(rankers: Rankers<'_>, v: &Embedding, filters: &Filters, pool: usize, limit: usize) -> Result<(Vec<Hit>, f32), SearchError> {
    let search = |k: usize, filters: &Filters| -> Result<Vec<Hit>, SearchError> { Ok(rankers.vectors.search(&[v.as_slice()], k, filters)?.pop().unwrap_or_default()) };
    let scores = |hits: &[Hit]| -> Vec<f32> { hits.iter().take(relevance::CUTOFF_HITS).map(|h| h.score).collect() };
    let mut k = if rankers.vectors.kind() == IndexKind::Exact { limit } else { pool.max(relevance::CUTOFF_HITS) }.clamp(1, limit.max(1));
    let mut hits = search(k, filters)?;
    let top = if filters.is_empty() { scores(&hits) } else { scores(&search(relevance::CUTOFF_HITS, &Filters::default())?) };
    let cutoff = rankers.background.cutoff(v.as_slice(), &top);
    while hits.len() == k && k < limit && hits.last().is_some_and(|h| h.score >= cutoff) {
        k = (k * 4).min(limit);
        hits = search(k, filters)?;
    }
    Ok((hits, cutoff))
}

/// The vector and keyword rankings fused by reciprocal rank fusion; each hit reports its cosine
/// (comparable across queries, and what relevance is judged on) and a video's moments.
fn fuse(store: &Store, model: ModelId, vectors: &dyn VectorIndex, v: &Embedding, semantic: Vec<Hit>, lexical: &[Hit]) -> Result<Vec<Hit>, SearchError> {
    let ids = |h: &[Hit]| h.iter().map(|h| h.id).collect::<Vec<_>>();
    let fused = crate::keywords::reciprocal_rank_fusion(&[ids(&semantic), ids(lexical)]);
    let ranked: std::collections::HashMap<ImageId, Hit> = semantic.into_iter().map(|h| (h.id, h)).collect();
    let keywords_only: Vec<ImageId> = fused.iter().map(|(id, _)| *id).filter(|id| !ranked.contains_key(id)).collect();
    vectors.fetch_rows(&keywords_only)?;
    let mut out = Vec::with_capacity(fused.len());
    for (id, _) in fused {
        // Only images found by keywords alone need their embedding (or a video its moments) read.
        out.push(match ranked.get(&id) {
            Some(hit) => hit.clone(),
            None => match crate::ann::stored_video_hit(store, model, id, v.as_slice())? {
                Some(video) => video,
                None => Hit::new(id, store.embedding(model, id)?.map_or(0.0, |e| v.cosine(&e))),
            },
        });
    }
    Ok(out)
}

/// Relevant hits first (a stable partition: in hybrid mode the fused order interleaves them),
/// by capture date for a date order (`Oldest` or `Newest` first; ties, and images without a date
/// after the dated, by rank), then the rest in their order.
fn relevant_first(store: &Store, found: &mut Vec<Found>, sort: Sort) -> Result<(), SearchError> {
    let (relevant, rest): (Vec<Found>, Vec<Found>) = std::mem::take(found).into_iter().partition(|f| f.relevant);
    if sort == Sort::Score {
        found.extend(relevant);
        found.extend(rest);
        return Ok(());
    }
    let mut dated = Vec::with_capacity(relevant.len());
    for f in relevant {
        let date = store.file(f.hit.id)?.and_then(|r| r.exif.date_taken);
        dated.push((date, f));
    }
    // Stable: equal dates keep their rank order.
    dated.sort_by(|(a, _), (b, _)| match (a, b) {
        (Some(a), Some(b)) if sort == Sort::Oldest => a.cmp(b),
        (Some(a), Some(b)) => b.cmp(a),
        (a, b) => b.is_some().cmp(&a.is_some()),
    });
    found.extend(dated.into_iter().map(|(_, f)| f));
    found.extend(rest);
    Ok(())
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

/// Words up to which a query text is ensembled over prompt templates (see [`query_texts`]).
pub const ENSEMBLE_WORDS: usize = 2;

/// The embeddings of query texts as a search of one text term uses them (each text is a query
/// of its own). With an OpenAI-CLIP-family model, a short text (at most [`ENSEMBLE_WORDS`] words, in English or in no stated language: "dog",
/// "red car") is embedded inside each of the photo prompt templates CLIP's authors used for
/// zero-shot classification ([`crate::describe::TEMPLATES`], as the tags are) and the
/// embeddings averaged; longer texts, and every text for the other families, as typed. That is
/// where `clipsight eval` measured it to help (README, *Relevance*).
pub fn query_texts(encoder: &dyn Encoder, texts: &[&str], language: Option<Language>) -> Result<Vec<Embedding>, ClipError> {
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let family = encoder.family()?;
    let short = |t: &&str| is_ensembled(t, language, family);
    let (shorts, longs): (Vec<&str>, Vec<&str>) = texts.iter().copied().partition(short);
    let mut shorts = crate::describe::ensembled(encoder, &shorts, language)?.into_iter();
    let mut longs = if longs.is_empty() { Vec::new() } else { encoder.encode_texts_in(&longs, language)? }.into_iter();
    Ok(texts.iter().filter_map(|t| if short(t) { shorts.next() } else { longs.next() }).collect())
}

/// Whether [`query_texts`] ensembles `text`, written in `language`, for a model of `family`.
pub fn is_ensembled(text: &str, language: Option<Language>, family: Family) -> bool {
    family == Family::Clip && language.is_none_or(|l| l == Language::ENGLISH) && text.split_whitespace().count() <= ENSEMBLE_WORDS
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
    // A short query is ensembled; a query of several text terms ("red car" -night) is not.
    let mut text_embeddings = match texts.len() {
        0 => Vec::new(),
        1 => query_texts(encoder, &texts, options.language)?,
        _ => encoder.encode_texts_in(&texts, options.language)?,
    }
    .into_iter();
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

