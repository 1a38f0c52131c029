//! The server's derived indexes (HNSW graph, tantivy keywords): loaded in the background so the
//! server answers at once — by exact scan and vectors only until they are ready — and swapped
//! in atomically when an indexing job changes the library.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use clipsight_indexer::ModelId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ann::{self, AnnIndex, AnnParams, FlatVectors};
use crate::keywords::Keywords;
use crate::store::Store;

/// How vector queries are being answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GraphState {
    /// Exact scan: the library is small enough for it.
    Exact,
    /// Exact scan while the graph loads (or builds) in the background.
    Loading,
    /// Through the HNSW graph.
    Ready,
}

/// The current graph and keyword index, replaced whole when a newer one is ready, and the flat
/// vectors that answer exactly until the graph is in use.
pub struct Derived {
    graph: RwLock<(GraphState, Option<Arc<AnnIndex>>)>,
    vectors: RwLock<Option<Arc<FlatVectors>>>,
    keywords: RwLock<Option<Arc<Keywords>>>,
}

impl Derived {
    /// Loading until the first [`Derived::refresh`] has decided. Meanwhile queries scan the flat
    /// copy of a fresh persisted graph's vectors, mapped here (instant at any size), or the store.
    pub fn new(store: &Store, model: ModelId) -> Self {
        let vectors = ann::open_flat(store, model).unwrap_or_else(|e| {
            tracing::warn!("cannot map the flat vectors ({e}); scanning the store until the graph is loaded");
            None
        });
        Self { graph: RwLock::new((GraphState::Loading, None)), vectors: RwLock::new(vectors.map(Arc::new)), keywords: RwLock::new(None) }
    }

    /// The graph to search with, if one is ready.
    pub fn graph(&self) -> Option<Arc<AnnIndex>> {
        self.graph.read().expect("graph lock").1.clone()
    }

    /// The flat vectors to scan while no graph is in use, if mapped.
    pub fn vectors(&self) -> Option<Arc<FlatVectors>> {
        self.vectors.read().expect("vectors lock").clone()
    }

    /// How vector queries are answered now.
    pub fn graph_state(&self) -> GraphState {
        self.graph.read().expect("graph lock").0
    }

    /// The keyword index, if loaded.
    pub fn keywords(&self) -> Option<Arc<Keywords>> {
        self.keywords.read().expect("keywords lock").clone()
    }

    /// Loads (or rebuilds when stale) both indexes for the store's current state, keeping the
    /// old ones in service meanwhile. Blocking: call it from a background thread.
    pub fn refresh(&self, store: &Store, model: ModelId) {
        {
            let mut g = self.graph.write().expect("graph lock");
            if g.1.is_none() {
                g.0 = GraphState::Loading;
            }
        }
        let started = Instant::now();
        match ann::open(store, model, AnnParams::default(), &mut |_, _| {}) {
            Ok(graph) => {
                let state = if graph.is_some() { GraphState::Ready } else { GraphState::Exact };
                if let Some(g) = &graph {
                    tracing::info!("HNSW graph of {} points in use after {:.1}s", g.len(), started.elapsed().as_secs_f64());
                }
                *self.graph.write().expect("graph lock") = (state, graph.map(Arc::new));
                // The graph answers from now on (or the library is small enough to scan).
                *self.vectors.write().expect("vectors lock") = None;
            }
            Err(e) => {
                tracing::warn!("cannot open the HNSW graph ({e}); answering by exact scan");
                let mut g = self.graph.write().expect("graph lock");
                if g.1.is_none() {
                    g.0 = GraphState::Exact;
                }
            }
        }
        match Keywords::open(store) {
            Ok(k) => *self.keywords.write().expect("keywords lock") = Some(Arc::new(k)),
            Err(e) => tracing::warn!("cannot open the keyword index ({e}); hybrid search uses vectors only"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ExifMeta, FileRecord, ImageId, OpenMode};
    use clipsight_indexer::Embedding;

    /// A library of `n` images with a graph saved at its current epoch.
    fn library_with_saved_graph(dir: &std::path::Path, model: ModelId, n: u64) -> (Store, Vec<(ImageId, Embedding)>) {
        let store = Store::open(dir, OpenMode::ReadWrite).unwrap();
        let vectors: Vec<(ImageId, Embedding)> =
            (1..=n).map(|i| (ImageId(i), Embedding::normalized((0..8).map(|d| (i as f32 * 0.37 + d as f32 * 1.3).sin()).collect()))).collect();
        let mut changes = store.changes();
        for (id, e) in &vectors {
            let record = FileRecord {
                path: format!("/p/{id}.png").into_bytes(),
                size: 1,
                mtime_ns: 0,
                hash: [id.0 as u8; 32],
                width: 1,
                height: 1,
                format: "png".into(),
                exif: ExifMeta::default(),
                indexed_at: 0,
            };
            changes.put_image(*id, &record, model, e, &[]);
        }
        changes.commit().unwrap();
        AnnIndex::build(&vectors, AnnParams::default()).save(&ann::dir_of(&store), model, store.epoch().unwrap()).unwrap();
        (store, vectors)
    }

    #[test]
    fn a_fresh_persisted_graph_answers_at_once_through_its_flat_vectors_until_the_graph_decides() {
        let dir = tempfile::tempdir().unwrap();
        let model = ModelId([9; 16]);
        let (store, vectors) = library_with_saved_graph(dir.path(), model, 200);

        let derived = Derived::new(&store, model);
        assert_eq!(derived.graph_state(), GraphState::Loading);
        let flat = derived.vectors().expect("the flat vectors of a fresh graph are mapped at once");
        let query = vectors[17].1.as_slice();
        let hits = flat.search(query, 3, &|_| true);
        assert_eq!(hits[0].id, ImageId(18));
        assert!(hits[0].score > 0.999);

        // 200 images are below the graph threshold: refresh settles on the exact scan of the
        // store and releases the mapping.
        derived.refresh(&store, model);
        assert_eq!(derived.graph_state(), GraphState::Exact);
        assert!(derived.vectors().is_none());
    }

    #[test]
    fn flat_vectors_of_a_stale_graph_are_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let model = ModelId([9; 16]);
        let (store, _) = library_with_saved_graph(dir.path(), model, 50);
        let mut changes = store.changes();
        changes.delete_image(ImageId(1), &store.file(ImageId(1)).unwrap().unwrap());
        changes.commit().unwrap();
        assert!(Derived::new(&store, model).vectors().is_none(), "the library changed since the graph was saved");
    }
}
