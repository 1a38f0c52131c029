//! The server's derived indexes (HNSW graph, tantivy keywords): loaded in the background so the
//! server answers at once — by exact scan and vectors only until they are ready — and swapped
//! in atomically when an indexing job changes the library.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use clipsight_indexer::ModelId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ann::{self, AnnIndex, AnnParams};
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

/// The current graph and keyword index, replaced whole when a newer one is ready.
pub struct Derived {
    graph: RwLock<(GraphState, Option<Arc<AnnIndex>>)>,
    keywords: RwLock<Option<Arc<Keywords>>>,
}

impl Default for Derived {
    /// Loading until the first [`Derived::refresh`] has decided (exact scan meanwhile).
    fn default() -> Self {
        Self { graph: RwLock::new((GraphState::Loading, None)), keywords: RwLock::new(None) }
    }
}

impl Derived {
    /// The graph to search with, if one is ready.
    pub fn graph(&self) -> Option<Arc<AnnIndex>> {
        self.graph.read().expect("graph lock").1.clone()
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
