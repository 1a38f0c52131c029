//! The Milvus collection behind the vector-index seam: searches with the filters pushed down,
//! and, after an indexing run, a push of what changed.

use clipsight_indexer::{Embedding, ModelId};

use std::sync::Arc;

use super::client::Patience;
use super::expr::Pushdown;
use super::{push, Collection, Milvus, PushSummary};
use crate::ann::{AnnError, Hit, IndexKind, VectorIndex, VectorWriter};
use crate::filters::Filters;
use crate::store::{ImageId, Store};

/// The most rows one Milvus search returns (its `topk` limit).
const MAX_LIMIT: usize = 16_384;

/// A library's rows in its model's collection, ranked by the server; hits name the local
/// images they were pushed from. Opening it sends nothing: each call finds the collection (and
/// fails as unavailable while the server is away), so a server that comes back is used again
/// without reopening anything.
pub struct MilvusIndex {
    milvus: Arc<Milvus>,
    model: ModelId,
    store: Store,
    /// This library's id: only its rows are searched (their records are here to show).
    origin: String,
}

impl MilvusIndex {
    /// The rows `store` pushed of `model`'s vectors to `milvus`.
    pub fn new(milvus: Arc<Milvus>, model: ModelId, store: Store) -> Result<Self, AnnError> {
        let origin = store.library_id()?.unwrap_or_default();
        Ok(Self { milvus, model, store, origin })
    }

    fn collection(&self) -> Result<Option<Collection>, AnnError> {
        Ok(self.milvus.collection(self.model, None, Patience::Read)?)
    }
}

impl VectorIndex for MilvusIndex {
    fn kind(&self) -> IndexKind {
        IndexKind::Graph
    }

    fn count(&self) -> Result<usize, AnnError> {
        let Some(collection) = self.collection()? else { return Ok(0) };
        Ok(collection.count(&Pushdown::of(&Filters::default(), Some(&self.origin)).expr)?)
    }

    fn search(&self, queries: &[&[f32]], k: usize, filters: &Filters) -> Result<Vec<Vec<Hit>>, AnnError> {
        let Some(collection) = self.collection()? else { return Ok(vec![Vec::new(); queries.len()]) };
        let pushdown = Pushdown::of(filters, Some(&self.origin));
        let fields = pushdown.fields();
        // Rows checked here may be rejected: ask for more until k pass or the rows run out.
        let mut limit = if pushdown.exact() { k } else { (k * 4).max(64) }.clamp(1, MAX_LIMIT);
        loop {
            let answers = collection.search(queries, limit, &pushdown.expr, &fields)?;
            let mut all = Vec::with_capacity(answers.len());
            let mut short = false;
            for found in &answers {
                let mut hits = Vec::with_capacity(k.min(found.keys.len()));
                for (i, (&key, &score)) in found.keys.iter().zip(&found.scores).enumerate() {
                    if !pushdown.accepts(found, i) {
                        continue;
                    }
                    if let Some(id) = self.store.remote_image(collection.name(), key)? {
                        hits.push(Hit::new(id, score));
                    }
                }
                hits.sort_by(crate::ann::by_rank);
                hits.truncate(k);
                short |= hits.len() < k && found.keys.len() == limit;
                all.push(hits);
            }
            if !short || limit == MAX_LIMIT {
                return Ok(all);
            }
            limit = (limit * 4).min(MAX_LIMIT);
        }
    }
}

/// Pushes `store`'s `model` vectors to their collection in `milvus` (created when missing).
pub fn push_library(milvus: &Arc<Milvus>, store: &Store, model: ModelId, progress: &mut dyn FnMut(usize, usize)) -> Result<PushSummary, AnnError> {
    let dim = crate::ann::dim_of(store, model)?;
    match milvus.collection(model, dim, Patience::Write)? {
        Some(collection) => push(store, &collection, model, progress),
        None => Ok(PushSummary::default()), // nothing embedded here, and no collection to clean
    }
}

/// Pushes a library's changes to its collection after each indexing run.
pub struct MilvusWriter {
    milvus: Arc<Milvus>,
    store: Store,
    model: ModelId,
}

impl MilvusWriter {
    /// The writer of `store`'s `model` vectors to `milvus`.
    pub fn new(milvus: Arc<Milvus>, store: Store, model: ModelId) -> Self {
        Self { milvus, store, model }
    }
}

impl VectorWriter for MilvusWriter {
    fn wants_vectors(&self) -> bool {
        false
    }

    /// Sends everything that differs from what was last sent (not only this run's changes):
    /// an earlier push cut short by an outage or a crash is completed too.
    fn apply(&mut self, _added: &[(ImageId, Embedding)], _removed: &[ImageId]) -> Result<(), AnnError> {
        let summary = push_library(&self.milvus, &self.store, self.model, &mut |_, _| {})?;
        tracing::info!("{}: {} rows sent, {} removed, {} unchanged", self.milvus.address(), summary.sent, summary.removed, summary.unchanged);
        Ok(())
    }
}
