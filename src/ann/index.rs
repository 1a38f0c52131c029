//! The vector-index seam: every way of ranking a library's vectors — the HNSW graph, the flat
//! vectors mapped from disk, a scan of the store — behind one trait, chosen in one place
//! ([`open_index`]), so searches, duplicates and both front ends never name a concrete index.
//!
//! The trait is shaped for an index that lives elsewhere (a distributed vector database): every
//! call can fail, searches take many query vectors at once (one round trip), and filters travel
//! as data ([`Filters`]) that a remote index translates into its own expressions, while the
//! local ones check each candidate's record in the store. Writes go through [`VectorWriter`].

use std::sync::{Arc, Mutex};

use clipsight_indexer::embedding::dot;
use clipsight_indexer::format::MediaKind;
use clipsight_indexer::{Embedding, ModelId};

use super::milvus::{MilvusIndex, MilvusWriter, VectorHome};
use super::{AnnError, AnnIndex, AnnParams, FlatVectors, Hit, Sketch};
use crate::filters::Filters;
use crate::store::{ImageId, Store, StoreError};

/// How an index answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// Exactly: every vector is compared with the query.
    Exact,
    /// Approximately, through a graph (recall below 1, measured by `bench ann`).
    Graph,
    /// Approximately, through a two-bit sketch whose best candidates are re-ranked exactly
    /// (recall below 1, measured by `bench ann`): a large library before its graph is loaded.
    Sketch,
}

/// A library's vectors for one model, ranked by cosine similarity with a query.
pub trait VectorIndex: Send + Sync {
    /// How this index answers.
    fn kind(&self) -> IndexKind;

    /// Images with a vector in this index.
    fn count(&self) -> Result<usize, AnnError>;

    /// For each query vector, the best `k` images that pass `filters`, best first (ties by id):
    /// `k` hits whenever `k` images pass. One answer per query, in order.
    fn search(&self, queries: &[&[f32]], k: usize, filters: &Filters) -> Result<Vec<Vec<Hit>>, AnnError>;

    /// Makes the stored embeddings and thumbnails of these images readable from the library
    /// before they are shown (a Milvus front end copies their rows when a keyword search found
    /// them); a local index searches the library's own, and has nothing to do.
    fn fetch_rows(&self, _ids: &[ImageId]) -> Result<(), AnnError> {
        Ok(())
    }

    /// `n` vectors spread over the index, where the library's store does not hold them all (a
    /// Milvus front end: the relevance background); `None` where a sample of the store is one.
    fn sample(&self, _n: usize) -> Result<Option<Vec<Embedding>>, AnnError> {
        Ok(None)
    }
}

/// Where an index's changes go after an indexing run commits to the store: the images added
/// (or re-embedded) and removed. The store stays the source of truth; a failed apply leaves a
/// derived index stale, which is rebuilt from the store when next opened.
pub trait VectorWriter {
    /// Whether [`VectorWriter::apply`] needs the added vectors (a run collects them only then).
    fn wants_vectors(&self) -> bool;

    /// Applies a committed run's changes.
    fn apply(&mut self, added: &[(ImageId, Embedding)], removed: &[ImageId]) -> Result<(), AnnError>;
}

/// What the caller is about to do, which decides how vectors are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Answer from this instant (a server starting): the flat copy of a fresh persisted graph
    /// when there is one (through its sketch from [`super::sketch_from`] vectors), else a scan
    /// of the store. Never builds or loads a graph.
    Immediate,
    /// Answer many queries (a server, once settled; duplicates): the graph when the library is
    /// large enough for one (loaded, or built and saved), else a scan of the store.
    Many,
    /// Answer one query (a CLI search): as [`Use::Immediate`] when there is a fresh graph (a
    /// sketch or flat scan costs well under a second at a million images from memory, loading
    /// the graph tens of seconds), else as for [`Use::Many`].
    One,
    /// Exactly, whatever the size: the store scan.
    Exact,
}

/// The index for `model` fit for `usage` — the one place that chooses: in `home`, the Milvus
/// collection, else the local index. `progress(inserted, total)` is called while a graph is
/// built. A library with videos gets their moments ([`MomentIndex`]) beside the index of its
/// photos (locally, whatever the home: the collection holds one row per item).
pub fn open_index(home: &VectorHome, store: &Store, model: ModelId, usage: Use, progress: &mut dyn FnMut(usize, usize)) -> Result<Arc<dyn VectorIndex>, AnnError> {
    let photos: Arc<dyn VectorIndex> = match home {
        VectorHome::Milvus(milvus) if usage != Use::Exact => Arc::new(MilvusIndex::new(milvus.clone(), model, store.clone())?),
        _ => open_photo_index(store, model, usage, progress)?,
    };
    Ok(match super::MomentIndex::load(store, model)? {
        Some(moments) => Arc::new(WithMoments { photos, moments, store: store.clone() }),
        None => photos,
    })
}

/// The index of every item's one vector (a video's: the mean of its moments).
fn open_photo_index(store: &Store, model: ModelId, usage: Use, progress: &mut dyn FnMut(usize, usize)) -> Result<Arc<dyn VectorIndex>, AnnError> {
    let scan = || Arc::new(StoreScan { store: store.clone(), model }) as Arc<dyn VectorIndex>;
    if matches!(usage, Use::Immediate | Use::One) {
        if let Some(vectors) = super::open_flat(store, model)? {
            // An unreadable sketch leaves the flat copy to answer (the next graph load rewrites it).
            let sketch = super::open_sketch(store, model, &vectors, super::sketch_from())
                .inspect_err(|e| tracing::warn!("cannot use the vector sketch ({e}); scanning the flat copy"))
                .ok()
                .flatten();
            if let Some(sketch) = sketch.as_ref().filter(|_| usage == Use::Immediate) {
                sketch.prefetch();
            }
            return Ok(Arc::new(Flat { vectors, sketch, store: store.clone() }));
        }
    }
    Ok(match usage {
        Use::Immediate | Use::Exact => scan(),
        Use::Many | Use::One => match super::open(store, model, AnnParams::default(), progress)? {
            Some(graph) => Arc::new(Graph { graph, store: store.clone() }),
            None => scan(),
        },
    })
}

/// An in-memory graph over `vectors` (not saved): for a one-off pass over a small set.
pub fn graph_of(store: &Store, vectors: &[(ImageId, Embedding)]) -> Arc<dyn VectorIndex> {
    Arc::new(Graph { graph: AnnIndex::build(vectors, AnnParams::default()), store: store.clone() })
}

/// Floats per vector of `model` in `store`, from any one of them (`None`: none yet).
pub(crate) fn dim_of(store: &Store, model: ModelId) -> Result<Option<usize>, AnnError> {
    Ok(store.embeddings(model).next().transpose()?.map(|(_, e)| e.as_slice().len()))
}

/// The writer for `model`'s derived index in `home`, opened before an indexing run commits
/// anything.
pub fn writer(home: &VectorHome, store: &Store, model: ModelId) -> Result<Box<dyn VectorWriter>, AnnError> {
    if let VectorHome::Milvus(milvus) = home {
        return Ok(Box::new(MilvusWriter::new(milvus.clone(), store.clone(), model)));
    }
    Ok(Box::new(PersistedGraph { store: store.clone(), model, start_epoch: store.epoch()?, exists: AnnIndex::manifest(&super::dir_of(store), model).is_some() }))
}

/// Images that pass `filters`, by ascending id, at most `limit` (a query without a vector:
/// filters alone). Answered from the store's records, which every library holds for each of its
/// images whatever the index (a Milvus front end mirrors them for every row).
pub fn browse(store: &Store, filters: &Filters, limit: usize) -> Result<Vec<Hit>, AnnError> {
    let mut hits = Vec::new();
    for item in store.files() {
        if hits.len() == limit {
            break;
        }
        let (id, record) = item?;
        if filters.is_empty() || filters.matches(&record) {
            hits.push(Hit::new(id, 0.0));
        }
    }
    Ok(hits)
}

/// Checks candidates against filters by reading their records; remembers the first store error
/// (a candidate that could not be read is rejected, and the search then fails with that error
/// rather than silently returning fewer images).
struct Accept<'a> {
    store: &'a Store,
    filters: &'a Filters,
    error: Mutex<Option<StoreError>>,
}

impl<'a> Accept<'a> {
    fn new(store: &'a Store, filters: &'a Filters) -> Self {
        Self { store, filters, error: Mutex::new(None) }
    }

    fn check(&self, id: ImageId) -> bool {
        if self.filters.is_empty() {
            return true;
        }
        match self.store.file(id) {
            Ok(record) => record.is_some_and(|r| self.filters.matches(&r)),
            Err(e) => {
                crate::sync::lock(&self.error).get_or_insert(e);
                false
            }
        }
    }

    fn finish<T>(self, value: T) -> Result<T, AnnError> {
        match self.error.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Some(e) => Err(e.into()),
            None => Ok(value),
        }
    }
}

/// The HNSW graph ([`AnnIndex`]).
struct Graph {
    graph: AnnIndex,
    store: Store,
}

impl VectorIndex for Graph {
    fn kind(&self) -> IndexKind {
        IndexKind::Graph
    }

    fn count(&self) -> Result<usize, AnnError> {
        Ok(self.graph.live())
    }

    fn search(&self, queries: &[&[f32]], k: usize, filters: &Filters) -> Result<Vec<Vec<Hit>>, AnnError> {
        let accept = Accept::new(&self.store, filters);
        let ef = self.graph.params().ef_search.max(k);
        let hits = queries.iter().map(|q| self.graph.search(q, k, ef, &|id| accept.check(id))).collect();
        accept.finish(hits)
    }
}

/// The flat vectors of a fresh persisted graph ([`FlatVectors`]): scanned exactly, or, with a
/// [`Sketch`], through the sketch whose best candidates are re-ranked exactly from them.
struct Flat {
    vectors: FlatVectors,
    sketch: Option<Sketch>,
    store: Store,
}

impl VectorIndex for Flat {
    fn kind(&self) -> IndexKind {
        if self.sketch.is_some() {
            IndexKind::Sketch
        } else {
            IndexKind::Exact
        }
    }

    fn count(&self) -> Result<usize, AnnError> {
        Ok(self.vectors.live())
    }

    fn search(&self, queries: &[&[f32]], k: usize, filters: &Filters) -> Result<Vec<Vec<Hit>>, AnnError> {
        let accept = Accept::new(&self.store, filters);
        let hits = queries
            .iter()
            .map(|q| match &self.sketch {
                None => self.vectors.search(q, k, &|id| accept.check(id)),
                Some(sketch) => {
                    let pass = |row: usize| self.vectors.live_id(row).is_some_and(|id| accept.check(id));
                    let mut rows: Vec<u32> = sketch.candidates(q, super::sketch_candidates(k, sketch.rows()), &pass).iter().map(|c| c.row).collect();
                    self.vectors.rerank(q, &mut rows, k)
                }
            })
            .collect();
        accept.finish(hits)
    }
}

/// An exact scan of the embeddings in the store: small libraries, and `--exact`.
struct StoreScan {
    store: Store,
    model: ModelId,
}

impl VectorIndex for StoreScan {
    fn kind(&self) -> IndexKind {
        IndexKind::Exact
    }

    fn count(&self) -> Result<usize, AnnError> {
        Ok(self.store.count_embeddings(self.model)?)
    }

    fn search(&self, queries: &[&[f32]], k: usize, filters: &Filters) -> Result<Vec<Vec<Hit>>, AnnError> {
        let accept = Accept::new(&self.store, filters);
        let mut hits = vec![Vec::new(); queries.len()];
        for item in self.store.embeddings(self.model) {
            let (id, e) = item?;
            if accept.check(id) {
                for (q, out) in queries.iter().zip(&mut hits) {
                    out.push(Hit::new(id, dot(q, e.as_slice())));
                }
            }
        }
        for out in &mut hits {
            super::rank(out);
            out.truncate(k);
        }
        accept.finish(hits)
    }
}

/// Photos from their index, videos from their moments, merged into one ranking: a video counts
/// once, by its best moment, and never by the mean vector it has in the photos' index.
struct WithMoments {
    photos: Arc<dyn VectorIndex>,
    moments: super::MomentIndex,
    store: Store,
}

impl VectorIndex for WithMoments {
    fn kind(&self) -> IndexKind {
        self.photos.kind()
    }

    fn count(&self) -> Result<usize, AnnError> {
        self.photos.count()
    }

    fn search(&self, queries: &[&[f32]], k: usize, filters: &Filters) -> Result<Vec<Vec<Hit>>, AnnError> {
        let mut answers = match filters.of_kind(MediaKind::Photo) {
            Some(photos) => self.photos.search(queries, k, &photos)?,
            None => vec![Vec::new(); queries.len()],
        };
        if let Some(videos) = filters.of_kind(MediaKind::Video) {
            let accept = Accept::new(&self.store, &videos);
            for (q, hits) in queries.iter().zip(&mut answers) {
                hits.extend(self.moments.search(q, k, &|id| accept.check(id)));
                super::rank(hits);
                hits.truncate(k);
            }
            accept.finish(())?;
        }
        Ok(answers)
    }
}

/// Keeps the persisted graph in step with the store: patched with the run's changes, or rebuilt
/// when it fell behind or tombstones piled up. Without a graph (a small library) nothing is
/// kept; one is built when the library first needs it.
struct PersistedGraph {
    store: Store,
    model: ModelId,
    start_epoch: u64,
    exists: bool,
}

impl VectorWriter for PersistedGraph {
    fn wants_vectors(&self) -> bool {
        self.exists
    }

    fn apply(&mut self, added: &[(ImageId, Embedding)], removed: &[ImageId]) -> Result<(), AnnError> {
        if self.exists {
            super::update(&self.store, self.model, self.start_epoch, added, removed)?;
            self.start_epoch = self.store.epoch()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::library_of;

    /// The same questions asked of every implementation: they must agree (the graph within its
    /// recall, exact here on a small clustered set).
    fn implementations(store: &Store, model: ModelId, vectors: &[(ImageId, Embedding)]) -> Vec<(&'static str, Arc<dyn VectorIndex>)> {
        let graph = AnnIndex::build(vectors, AnnParams::default());
        graph.save(&super::super::dir_of(store), model, store.epoch().unwrap()).unwrap();
        let flat = open_index(&VectorHome::Local, store, model, Use::Immediate, &mut |_, _| {}).unwrap();
        // Too small for a sketch by default: one is written as for a graph saved without it.
        super::super::heal_sketch(store, model, 1);
        let vectors = super::super::open_flat(store, model).unwrap().unwrap();
        let sketch = super::super::open_sketch(store, model, &vectors, 1).unwrap().expect("the sketch was written");
        vec![
            ("graph", Arc::new(Graph { graph, store: store.clone() }) as Arc<dyn VectorIndex>),
            ("flat", flat),
            ("sketch", Arc::new(Flat { vectors, sketch: Some(sketch), store: store.clone() })),
            ("store scan", open_index(&VectorHome::Local, store, model, Use::Exact, &mut |_, _| {}).unwrap()),
        ]
    }

    /// `folder:even`: the even ids of [`library_of`].
    fn even() -> Filters {
        Filters { folders: vec!["even".into()], ..Filters::default() }
    }

    #[test]
    fn every_index_answers_batches_with_filters_alike() {
        let dir = tempfile::tempdir().unwrap();
        let model = ModelId([3; 16]);
        let (store, vectors) = library_of(dir.path(), model, 300);
        let filters = even();
        let queries: Vec<&[f32]> = vectors.iter().step_by(37).map(|(_, e)| e.as_slice()).collect();
        let mut answers = Vec::new();
        for (name, index) in implementations(&store, model, &vectors) {
            assert_eq!(index.count().unwrap(), 300, "{name}");
            let all = index.search(&queries, 5, &Filters::default()).unwrap();
            assert_eq!(all.len(), queries.len(), "{name}: one answer per query");
            for (q, hits) in vectors.iter().step_by(37).zip(&all) {
                assert_eq!(hits[0].id, q.0, "{name}: a stored vector finds itself first");
            }
            let even = index.search(&queries, 5, &filters).unwrap();
            assert!(even.iter().all(|hits| hits.len() == 5 && hits.iter().all(|h| h.id.0 % 2 == 0)), "{name}: filters applied, k filled");
            answers.push((name, even));
        }
        // The same images in the same order; scores equal up to float rounding (the graph
        // computes distances its own way). Images whose scores tie up to that rounding (ids 98 and
        // 200 score 0.99983144 and 0.9998315) may come in either order.
        let (first, rest) = answers.split_first().unwrap();
        for (name, even) in rest {
            for (a, b) in even.iter().flatten().zip(first.1.iter().flatten()) {
                let close = (a.score - b.score).abs() < 1e-5;
                let tie = (a.score - b.score).abs() < 1e-6;
                assert!((a.id == b.id || tie) && close, "{name} agrees with {}: {a:?} vs {b:?}", first.0);
            }
        }
    }

    #[test]
    fn a_filter_that_cannot_read_the_store_fails_the_search_instead_of_dropping_images() {
        let dir = tempfile::tempdir().unwrap();
        let model = ModelId([3; 16]);
        let (store, vectors) = library_of(dir.path(), model, 20);
        let index = open_index(&VectorHome::Local, &store, model, Use::Exact, &mut |_, _| {}).unwrap();
        let filters = even();
        let accept = Accept::new(&store, &filters);
        assert!(accept.check(ImageId(2)));
        assert!(!accept.check(ImageId(3)));
        *accept.error.lock().unwrap() = Some(StoreError::Corrupt("test".into()));
        assert!(accept.finish(()).is_err());
        assert_eq!(index.search(&[vectors[0].1.as_slice()], 3, &filters).unwrap()[0].len(), 3);
    }

    #[test]
    fn a_missing_or_damaged_sketch_is_rewritten_from_the_flat_copy() {
        let dir = tempfile::tempdir().unwrap();
        let model = ModelId([5; 16]);
        let (store, vectors) = library_of(dir.path(), model, 120);
        super::super::save_graph(&store, model);
        let path = super::super::dir_of(&store).join(model.to_hex()).join(super::super::sketch::FILE_NAME);
        assert!(!path.exists(), "120 vectors are below the default threshold");
        super::super::heal_sketch(&store, model, 1);
        assert!(path.is_file());
        std::fs::write(&path, b"damaged").unwrap();
        super::super::heal_sketch(&store, model, 1);
        let flat = super::super::open_flat(&store, model).unwrap().unwrap();
        let sketch = super::super::open_sketch(&store, model, &flat, 1).unwrap().expect("rewritten");
        let index = Flat { vectors: flat, sketch: Some(sketch), store: store.clone() };
        assert_eq!(index.search(&[vectors[7].1.as_slice()], 1, &Filters::default()).unwrap()[0][0].id, vectors[7].0);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().contains(".tmp-")).collect();
        assert!(leftovers.is_empty(), "no staging file is left behind");
    }

    #[test]
    fn browsing_lists_filtered_images_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let model = ModelId([3; 16]);
        let (store, _) = library_of(dir.path(), model, 20);
        let filters = even();
        let ids: Vec<u64> = browse(&store, &filters, 4).unwrap().iter().map(|h| h.id.0).collect();
        assert_eq!(ids, vec![2, 4, 6, 8]);
    }
}
