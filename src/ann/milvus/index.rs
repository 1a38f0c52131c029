//! The Milvus collection behind the vector-index seam: searches with the filters pushed down,
//! and, after an indexing run, a push of what changed.

use clipsight_indexer::{Embedding, ModelId};

use std::sync::Arc;

use super::client::{Part, Patience};
use super::expr::Pushdown;
use super::{push, rows, Collection, Milvus, PullSummary, PushSummary};
use crate::ann::{AnnError, Hit, IndexKind, VectorIndex, VectorWriter};
use crate::filters::Filters;
use crate::store::{ImageId, Store};

/// The most rows one Milvus search returns (its `topk` limit).
const MAX_LIMIT: usize = 16_384;

/// A model's collection, ranked by the server, in one of two roles:
/// - on a machine that indexed (its library has pushed, so it has an id): that library's rows,
///   shown from its own records;
/// - on a front end whose library never indexed (it has no folders): every row, shown from the
///   row itself. The front end mirrors every row's record ([`MilvusIndex::mirror`]); a row's
///   thumbnail and vector are copied when it is first shown ([`VectorIndex::fetch_rows`]), and
///   a row a search returns that the mirror has not seen yet (or holds at another stamp) is
///   copied whole then. So the front end needs neither the indexers' disks nor their
///   libraries, and two front ends show the same rows alike.
///
/// Opening it sends nothing: each call finds the collection (and fails as unavailable while the
/// server is away), so a server that comes back is used again without reopening anything.
pub struct MilvusIndex {
    milvus: Arc<Milvus>,
    model: ModelId,
    store: Store,
    /// The indexing library's id; `None` on a front end.
    origin: Option<String>,
}

impl MilvusIndex {
    /// `model`'s collection in `milvus`, for the library in `store`: a front end when that
    /// library has no folders of its own (it never indexed), else the library's own rows (none
    /// before its first push).
    pub fn new(milvus: Arc<Milvus>, model: ModelId, store: Store) -> Result<Self, AnnError> {
        let origin = if store.roots()?.is_empty() { None } else { Some(store.library_id()?.unwrap_or_default()) };
        Ok(Self { milvus, model, store, origin })
    }

    fn collection(&self) -> Result<Option<Collection>, AnnError> {
        Ok(self.milvus.collection(self.model, None, Patience::Read)?)
    }

    /// Copies the rows of `found` that this front end has not mirrored, or holds at another stamp, into
    /// its library (`place` is the collection's [`Collection::place`]), under their row keys as
    /// image ids, recording each as the remote rows of an indexer are recorded: so both roles
    /// map a hit's key to an image the same way.
    fn copy_rows(&self, collection: &Collection, place: &str, found: &[rows::Found]) -> Result<(), AnnError> {
        let mut wanted: Vec<u64> = Vec::new();
        for f in found {
            let stamps = f.stamps.as_deref().unwrap_or_default();
            for (i, key) in f.keys.iter().enumerate() {
                if wanted.contains(key) {
                    continue;
                }
                let held = self.store.remote_row(place, *key)?.map(|r| r.fingerprint);
                if held.as_ref() != stamps.get(i) {
                    wanted.push(*key);
                }
            }
        }
        if !wanted.is_empty() && !self.store.is_writer() {
            tracing::warn!("{} rows of {} cannot be shown: this library is open read-only", wanted.len(), collection.name());
            return Ok(());
        }
        self.copy_whole(collection, &wanted)
    }

    /// Copies rows `keys` whole (record, vector and thumbnail) into this front end's library.
    fn copy_whole(&self, collection: &Collection, keys: &[u64]) -> Result<(), AnnError> {
        if !keys.is_empty() {
            super::pull::copy_rows(&self.store, &collection.place(), self.model, &collection.stored(keys, Part::Whole, false, Patience::Read)?, true)?;
        }
        Ok(())
    }

    /// Every row of the collection's record, on a front end (for its keyword index, facets
    /// and date order); nothing on an indexer, whose library is the source of the rows.
    pub fn mirror(&self) -> Result<Option<PullSummary>, AnnError> {
        let Some(collection) = self.collection()?.filter(|_| self.origin.is_none() && self.store.is_writer()) else { return Ok(None) };
        Ok(Some(super::pull::pull(&self.store, &collection, self.model, super::Depth::Records, &mut |_, _| {})?))
    }
}

impl VectorIndex for MilvusIndex {
    /// On a front end, `n` vectors read from the collection at keys spread over its mirror's
    /// (so every front end with the same mirror samples the same rows, whichever it has shown).
    fn sample(&self, n: usize) -> Result<Option<Vec<Embedding>>, AnnError> {
        if self.origin.is_some() {
            return Ok(None);
        }
        let Some(collection) = self.collection()? else { return Ok(Some(Vec::new())) };
        let keys: Vec<u64> = self.store.remote_rows(&collection.place()).map(|r| r.map(|r| r.key)).collect::<Result<_, _>>()?;
        let step = (keys.len() / n.max(1)).max(1);
        let picked: Vec<u64> = keys.into_iter().step_by(step).take(n).collect();
        let mut rows = collection.stored(&picked, Part::Vector, false, Patience::Read)?;
        rows.sort_by_key(|row| row.key);
        Ok(Some(rows.iter().filter_map(rows::Stored::embedding).collect()))
    }

    fn fetch_rows(&self, ids: &[ImageId]) -> Result<(), AnnError> {
        if self.origin.is_some() || !self.store.is_writer() {
            return Ok(());
        }
        let mut wanted = Vec::new();
        for id in ids {
            if self.store.embedding(self.model, *id)?.is_none() {
                wanted.push(id.0);
            }
        }
        let Some(collection) = self.collection()?.filter(|_| !wanted.is_empty()) else { return Ok(()) };
        self.copy_whole(&collection, &wanted)
    }

    fn kind(&self) -> IndexKind {
        IndexKind::Graph
    }

    fn count(&self) -> Result<usize, AnnError> {
        let Some(collection) = self.collection()? else { return Ok(0) };
        Ok(collection.count(&Pushdown::of(&Filters::default(), self.origin.as_deref()).expr)?)
    }

    fn search(&self, queries: &[&[f32]], k: usize, filters: &Filters) -> Result<Vec<Vec<Hit>>, AnnError> {
        let Some(collection) = self.collection()? else { return Ok(vec![Vec::new(); queries.len()]) };
        let place = collection.place();
        let pushdown = Pushdown::of(filters, self.origin.as_deref());
        let mut fields = pushdown.fields();
        if self.origin.is_none() {
            fields.push("stamp");
        }
        // Rows checked here may be rejected: ask for more until k pass or the rows run out.
        let mut limit = if pushdown.exact() { k } else { (k * 4).max(64) }.clamp(1, MAX_LIMIT);
        loop {
            let answers = collection.search(queries, limit, crate::ann::AnnParams::default().ef_search, &pushdown.expr, &fields)?;
            if self.origin.is_none() {
                self.copy_rows(&collection, &place, &answers)?;
            }
            let mut all = Vec::with_capacity(answers.len());
            let mut short = false;
            for found in &answers {
                let mut hits = Vec::with_capacity(k.min(found.keys.len()));
                for (i, (&key, &score)) in found.keys.iter().zip(&found.scores).enumerate() {
                    if !pushdown.accepts(found, i) {
                        continue;
                    }
                    // Rows this library pushed, or (a front end) copied: others are not shown.
                    if let Some(row) = self.store.remote_row(&place, key)? {
                        hits.push(Hit::new(row.image, score));
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
