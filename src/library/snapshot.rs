//! The indexes a query reads, as one immutable snapshot: the vector index and the keyword index
//! of one library state, swapped whole when an indexing job changes the library, so a query
//! never mixes a new graph with old keywords (tantivy's one-searcher-per-query, over both).
//!
//! A server starts with a snapshot that answers at once — the flat copy of a fresh persisted
//! graph, or a scan of the store — while the graph loads in the background.

use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use clipsight_indexer::ModelId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ann::{self, IndexKind, Use, VectorIndex};
use crate::keywords::Keywords;
use crate::store::Store;
use crate::sync::{read, write};

/// How vector queries are being answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GraphState {
    /// Nothing decided: this process has not loaded the indexes and is not loading them (a CLI
    /// command that only reads the store, such as `clipsight stats`); queries scan exactly.
    Unloaded,
    /// Exact scan: the library is small enough for it.
    Exact,
    /// While the graph loads (or builds) in the background: an exact scan, or for a large
    /// library its sketch re-ranked exactly.
    Loading,
    /// Through the two-bit sketch, re-ranked exactly, without a graph (a CLI search of a large
    /// library).
    Sketch,
    /// Through the HNSW graph.
    Ready,
}

/// The indexes of one library state.
pub struct Snapshot {
    /// How vectors are ranked.
    pub vectors: Arc<dyn VectorIndex>,
    /// The keyword index (`None` when it could not be opened: hybrid search uses vectors only).
    pub keywords: Option<Arc<Keywords>>,
    /// How vector queries are answered.
    pub state: GraphState,
}

/// The current snapshot, replaced whole, and whether a search has been answered yet.
pub struct Current(RwLock<Arc<Snapshot>>, FirstAnswer);

/// Set once the first search has been answered; waited on by a server's worker before it loads
/// a large library's graph.
#[derive(Default)]
struct FirstAnswer {
    answered: Mutex<bool>,
    changed: Condvar,
}

impl FirstAnswer {
    fn set(&self) {
        let mut answered = crate::sync::lock(&self.answered);
        if !*answered {
            *answered = true;
            self.changed.notify_all();
        }
    }

    /// Whether it was set within `limit`.
    fn wait(&self, limit: Duration) -> bool {
        let answered = crate::sync::lock(&self.answered);
        let (answered, _) = self.changed.wait_timeout_while(answered, limit, |answered| !*answered).unwrap_or_else(std::sync::PoisonError::into_inner);
        *answered
    }
}

impl Current {
    /// A snapshot that answers at once (see [`Use::Immediate`]): `Unloaded` until
    /// [`Current::mark_loading`] or [`Current::refresh`].
    /// A derived file that cannot be read (a truncated flat copy, say) is logged and passed
    /// over for the store scan: the library still opens, and the next run rebuilds it.
    pub fn immediate(home: &ann::VectorHome, store: &Store, model: ModelId) -> Result<Self, ann::AnnError> {
        let vectors = ann::open_index(home, store, model, Use::Immediate, &mut |_, _| {}).or_else(|e| {
            tracing::warn!("cannot open the vector index ({e}); answering by exact scan");
            ann::open_index(home, store, model, Use::Exact, &mut |_, _| {})
        })?;
        Ok(Self(RwLock::new(Arc::new(Snapshot { vectors, keywords: None, state: GraphState::Unloaded })), FirstAnswer::default()))
    }

    /// Records that a search was answered.
    pub fn answered(&self) {
        self.1.set();
    }

    /// Waits until a search has been answered, at most `limit`, when the snapshot answers from
    /// a sketch (a large library that has not loaded its graph). Loading that graph reads
    /// gigabytes; on a cold disk its reads would queue ahead of the first query's (measured
    /// with `bench query --disk-mbps`), so it starts once that query is served — or after
    /// `limit`, when none comes.
    pub fn wait_for_first_answer(&self, limit: Duration) {
        if self.get().vectors.kind() == IndexKind::Sketch {
            self.1.wait(limit);
        }
    }

    /// Says that a [`Current::refresh`] is on its way (a server's worker), for the stats.
    pub fn mark_loading(&self) {
        let mut current = write(&self.0);
        if current.state == GraphState::Unloaded {
            *current = Arc::new(Snapshot { vectors: current.vectors.clone(), keywords: current.keywords.clone(), state: GraphState::Loading });
        }
    }

    /// The snapshot a query should read, for the whole query.
    pub fn get(&self) -> Arc<Snapshot> {
        read(&self.0).clone()
    }

    /// Opens the indexes for `usage` at the store's current state and swaps them in, keeping the
    /// old ones in service meanwhile. Blocking (it may build a graph): call it off the request
    /// path. `progress(inserted, total)` is called while a graph is built.
    /// Without `keywords` the snapshot holds no keyword index (a CLI command that ranks by
    /// vectors only need not open, or rebuild, it).
    pub fn refresh(&self, home: &ann::VectorHome, store: &Store, model: ModelId, usage: Use, keywords: bool, progress: &mut dyn FnMut(usize, usize)) {
        let started = Instant::now();
        let vectors = match ann::open_index(home, store, model, usage, progress) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("cannot open the vector index ({e}); answering by exact scan");
                match ann::open_index(home, store, model, Use::Exact, &mut |_, _| {}) {
                    Ok(v) => v,
                    Err(e) => return tracing::error!("cannot open even the exact scan ({e}); keeping the previous indexes"),
                }
            }
        };
        let state = match vectors.kind() {
            IndexKind::Graph => {
                tracing::info!("HNSW graph in use after {:.1}s", started.elapsed().as_secs_f64());
                GraphState::Ready
            }
            IndexKind::Exact => GraphState::Exact,
            IndexKind::Sketch => GraphState::Sketch,
        };
        let keywords = match keywords.then(|| Keywords::open(store)).transpose() {
            Ok(k) => k.map(Arc::new),
            Err(e) => {
                tracing::warn!("cannot open the keyword index ({e}); hybrid search uses vectors only");
                None
            }
        };
        *write(&self.0) = Arc::new(Snapshot { vectors, keywords, state });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::Filters;
    use crate::store::test_support::library_of;
    use crate::store::ImageId;

    #[test]
    fn the_first_answer_releases_a_waiting_worker_and_the_wait_is_bounded() {
        let gate = Arc::new(FirstAnswer::default());
        let started = Instant::now();
        assert!(!gate.wait(Duration::from_millis(50)), "nobody asked: the wait ends at its limit");
        assert!(started.elapsed() >= Duration::from_millis(50));
        let answering = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                gate.set();
            })
        };
        let started = Instant::now();
        assert!(gate.wait(Duration::from_secs(30)), "released by the answer");
        assert!(started.elapsed() < Duration::from_secs(30));
        answering.join().unwrap();
        assert!(gate.wait(Duration::ZERO), "and stays released");
    }

    #[test]
    fn a_fresh_persisted_graph_answers_at_once_exactly_until_the_refresh_decides() {
        let dir = tempfile::tempdir().unwrap();
        let model = ModelId([9; 16]);
        let (store, vectors) = library_of(dir.path(), model, 200);
        ann::save_graph(&store, model);

        let current = Current::immediate(&ann::VectorHome::Local, &store, model).unwrap();
        assert_eq!(current.get().state, GraphState::Unloaded);
        current.mark_loading();
        let first = current.get();
        assert_eq!(first.state, GraphState::Loading);
        let hits = first.vectors.search(&[vectors[17].1.as_slice()], 3, &Filters::default()).unwrap().remove(0);
        assert_eq!(hits[0].id, ImageId(18));
        assert!(hits[0].score > 0.999);

        // 200 images are below the graph threshold: the refresh settles on an exact scan, and a
        // query holding the first snapshot keeps it whole.
        current.refresh(&ann::VectorHome::Local, &store, model, Use::Many, true, &mut |_, _| {});
        assert_eq!(current.get().state, GraphState::Exact);
        assert!(current.get().keywords.is_some());
        assert_eq!(first.state, GraphState::Loading);
    }

    #[test]
    fn the_flat_vectors_of_a_stale_graph_are_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let model = ModelId([9; 16]);
        let (store, _) = library_of(dir.path(), model, 50);
        ann::save_graph(&store, model);
        let mut changes = store.changes();
        changes.delete_image(ImageId(1), &store.file(ImageId(1)).unwrap().unwrap()).unwrap();
        changes.commit().unwrap();
        // The scan of the store answers, so the deleted image is gone at once.
        let snapshot = Current::immediate(&ann::VectorHome::Local, &store, model).unwrap().get();
        assert_eq!(snapshot.vectors.count().unwrap(), 49, "the library changed since the graph was saved");
    }

    #[test]
    fn a_damaged_flat_copy_is_passed_over_for_the_store_scan() {
        let dir = tempfile::tempdir().unwrap();
        let model = ModelId([9; 16]);
        let (store, _) = library_of(dir.path(), model, 50);
        ann::save_graph(&store, model);
        let flat = ann::dir_of(&store).join(model.to_hex()).join("vectors.f32");
        std::fs::write(&flat, b"truncated").unwrap();
        let snapshot = Current::immediate(&ann::VectorHome::Local, &store, model).expect("the library still opens").get();
        assert_eq!(snapshot.vectors.count().unwrap(), 50);
    }
}
