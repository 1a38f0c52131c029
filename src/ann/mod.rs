//! Approximate nearest-neighbour search over stored embeddings: one HNSW graph (hnsw_rs, dot
//! product on unit vectors) per model, persisted next to the RocksDB data.
//!
//! The graph is derived data: it records the store's embedding epoch it reflects in a manifest,
//! is loaded when that matches, and rebuilt from RocksDB when it does not (or when it is missing).
//! Deleted images are tombstones filtered during the search until the graph is rebuilt.
//!
//! ```text
//! DATA/ann/<model-id>/manifest.json   {model, epoch, count, max_id, m, ef_construction, tombstones}
//! DATA/ann/<model-id>/graph.hnsw.graph, graph.hnsw.data
//! DATA/ann/<model-id>/vectors.f32         the same vectors, flat, for exact scans (see [`flat`])
//! DATA/ann/<model-id>/vectors.sketch      two bits per rotated dimension, scanned first at a cold start (see [`sketch`])
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use clipsight_indexer::{Embedding, ModelId};
use hnsw_rs::prelude::{AnnT, DistDot, Hnsw, HnswIo, ReloadOptions};
use serde::{Deserialize, Serialize};

use crate::store::{ImageId, Store, StoreError};

pub mod bench;
mod flat;
mod hit;
mod index;
pub mod milvus;
mod moments;
mod sketch;

use flat::FlatVectors;
use sketch::Sketch;
pub use hit::{by_rank, rank, Hit, MomentScore};
pub use moments::{stored_video_hit, MomentIndex, MAX_LISTED_MOMENTS, MOMENT_MARGIN};
pub use index::{browse, graph_of, open_index, writer, IndexKind, Use, VectorIndex, VectorWriter};
pub(crate) use index::dim_of;
pub use milvus::VectorHome;

/// Libraries with fewer embeddings than this are scanned exactly: below it a scan is as fast as
/// the graph and needs no build. Measured with `clipsight bench ann` (512-d, one thread): at 20k
/// the exact scan answered 138 q/s and the graph 98-106 q/s at ef 128; the scan's cost grows
/// linearly, the graph's barely, so they meet near 50k.
pub const EXACT_BELOW: usize = 50_000;

/// The exact-scan threshold: [`EXACT_BELOW`], or `CLIPSIGHT_EXACT_BELOW` when set (to exercise
/// the graph on small libraries in tests, or to tune on unusual hardware).
pub fn exact_below() -> usize {
    std::env::var("CLIPSIGHT_EXACT_BELOW").ok().and_then(|v| v.parse().ok()).unwrap_or(EXACT_BELOW)
}

/// Libraries from this many vectors answer from the [`sketch`] (re-ranked exactly) until their
/// graph is loaded, and a CLI search reads the sketch instead of the whole flat copy: their flat
/// copy (200 MB at 100,000 512-d vectors) takes a second or more to read from a cold disk of
/// 200 MB/s, the sketch a fifteenth of that.
pub const SKETCH_FROM: usize = 100_000;

/// The sketch threshold: [`SKETCH_FROM`], or `CLIPSIGHT_SKETCH_FROM` when set (to exercise the
/// sketch on small libraries in tests).
pub fn sketch_from() -> usize {
    std::env::var("CLIPSIGHT_SKETCH_FROM").ok().and_then(|v| v.parse().ok()).unwrap_or(SKETCH_FROM)
}

/// The sketch's candidates re-ranked exactly for `k` hits among `rows` vectors: 5·√rows (1,581
/// at 100,000; 5,000 at a million), never under 40 per hit. Chosen by measurement at a million
/// (two-bit sketch): `bench ann --no-graph --power-law 0.5` (unclustered, the hard synthetic
/// case) gave recall@10 1.000 from 1,600 candidates; the text queries of a random-weight
/// ViT-B/32 against `bench query`'s library, harder still (the 10th score 0.190, the 1,000th
/// 0.143), 0.95 with 1,000, 0.98 with 2,000, 1.00 with 5,000. Re-ranking reads one page per
/// candidate: 20 MB at a million, 0.1 s from a 200 MB/s disk.
pub fn sketch_candidates(k: usize, rows: usize) -> usize {
    (k * 40).max((5.0 * (rows as f64).sqrt()) as usize)
}

/// Above this share of tombstones the graph is rebuilt instead of patched.
pub const REBUILD_TOMBSTONE_RATIO: f64 = 0.2;

/// Layers hnsw_rs allocates (its `NB_LAYER_MAX`; `file_dump` refuses other values).
const MAX_LAYERS: usize = 16;

/// HNSW build and search parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnParams {
    /// Links per node (hnsw_rs `max_nb_connection`).
    pub m: usize,
    /// Candidate list size while building.
    pub ef_construction: usize,
    /// Candidate list size while searching (at least k).
    pub ef_search: usize,
}

impl Default for AnnParams {
    fn default() -> Self {
        // Measured with `bench ann --n 100000` (512-d CLIP-like data, one run, 2 cores):
        // M 16 / ef_construction 100 built in 130 s where M 24 / 200 took 350-470 s, and answered
        // twice as fast at the same ef (ef 64: 202-244 q/s vs 86-131) with recall@10 0.9985
        // (text-like queries) to 0.9995 (image-like); ef 128 reaches 1.000. ef_search 64 keeps a
        // text query's search far below its encoder's cost (tens of ms).
        Self { m: 16, ef_construction: 100, ef_search: 64 }
    }
}

/// Graphs of at least this many points search with ef ≥ [`LARGE_GRAPH_EF`].
pub const LARGE_GRAPH: usize = 250_000;

/// ef_search of large graphs. `bench ann --n 1000000` (M 16, ef_construction 100): ef 64 gave
/// recall@10 0.989 (image-like queries) and 0.981 (text-like), ef 128 gave 0.994 and 0.992 at
/// 138 and 128 q/s, 41x and 38x the exact scan's 3.4 q/s.
pub const LARGE_GRAPH_EF: usize = 128;

impl AnnParams {
    /// The ef_search to use on a graph of `points`: large graphs need a longer candidate list
    /// to keep recall@10 above 0.99.
    pub fn ef_search_for(&self, points: usize) -> usize {
        if points >= LARGE_GRAPH {
            self.ef_search.max(LARGE_GRAPH_EF)
        } else {
            self.ef_search
        }
    }
}

/// What a persisted graph reflects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Model id (hex).
    pub model: String,
    /// The store's embedding epoch the graph matches.
    pub epoch: u64,
    /// Points in the graph (tombstones included).
    pub count: usize,
    /// Largest image id inserted.
    pub max_id: u64,
    /// Build parameters.
    pub params: AnnParams,
    /// Images deleted since the build.
    pub tombstones: Vec<u64>,
}

/// Errors saving or loading a graph.
#[derive(Debug, thiserror::Error)]
pub enum AnnError {
    /// File system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// hnsw_rs failed to dump or load.
    #[error("HNSW graph {}: {message}", path.display())]
    Graph {
        /// The graph directory.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Reading embeddings from the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The remote vector store could not be reached for as long as the call would wait.
    #[error("{0}")]
    Unavailable(String),
    /// The remote vector store refused a call.
    #[error("{0}")]
    Remote(String),
}

impl From<milvus::MilvusError> for AnnError {
    fn from(e: milvus::MilvusError) -> Self {
        match e {
            milvus::MilvusError::Unavailable { .. } => Self::Unavailable(e.to_string()),
            milvus::MilvusError::Refused { .. } => Self::Remote(e.to_string()),
        }
    }
}

/// Where a library keeps its graphs.
pub fn dir_of(store: &Store) -> PathBuf {
    store.dir().join("ann")
}

/// The manifest of the graph persisted for `model`, if any (what `check` compares with the store).
pub fn manifest(store: &Store, model: ModelId) -> Option<Manifest> {
    AnnIndex::manifest(&dir_of(store), model)
}

/// Builds and saves a graph of the library's vectors at its current epoch, whatever its size
/// (tests of what happens around a persisted graph).
#[cfg(test)]
pub(crate) fn save_graph(store: &Store, model: ModelId) {
    let vectors = store.embeddings(model).collect::<Result<Vec<_>, _>>().unwrap();
    AnnIndex::build(&vectors, AnnParams::default()).save(&dir_of(store), model, store.epoch().unwrap()).unwrap();
}

/// The graph for `model`: `None` for small libraries (exact scan), else the persisted graph when
/// it matches the store's epoch, else a fresh build from the store (saved for next time when the
/// directory is writable), reporting `progress(inserted, total)` while it builds.
fn open(store: &Store, model: ModelId, params: AnnParams, progress: &mut dyn FnMut(usize, usize)) -> Result<Option<AnnIndex>, AnnError> {
    let dir = dir_of(store);
    let epoch = store.epoch()?;
    let manifest = AnnIndex::manifest(&dir, model);
    // A fresh graph already tells the library's size; count (a full key scan) only otherwise.
    let fresh = manifest.as_ref().is_some_and(|m| m.epoch == epoch && m.params.m == params.m);
    let count = match &manifest {
        Some(m) if fresh => m.count.saturating_sub(m.tombstones.len()),
        _ => store.count_embeddings(model)?,
    };
    if count < exact_below() {
        return Ok(None);
    }
    let loaded = if fresh {
        heal_sketch(store, model, sketch_from());
        AnnIndex::load(&dir, model).map(|(index, _)| index).inspect_err(|e| tracing::warn!("{e}; rebuilding the graph")).ok()
    } else {
        None
    };
    let mut index = match loaded {
        Some(index) => index,
        None => rebuild(store, model, params, epoch, progress)?,
    };
    index.params.ef_search = params.ef_search_for(count);
    Ok(Some(index))
}

fn rebuild(store: &Store, model: ModelId, params: AnnParams, epoch: u64, progress: &mut dyn FnMut(usize, usize)) -> Result<AnnIndex, AnnError> {
    tracing::info!("building the HNSW graph for model {model}");
    let vectors = store.embeddings(model).collect::<Result<Vec<_>, _>>()?;
    let index = AnnIndex::build_with_progress(&vectors, params, progress);
    if let Err(e) = index.save(&dir_of(store), model, epoch) {
        tracing::warn!("cannot save the HNSW graph ({e}); it will be rebuilt next time");
    }
    Ok(index)
}

/// The flat copy of the persisted graph's vectors when that graph matches the store's current
/// epoch (an exact scan over it is then exact for the library), else `None`. Takes no time
/// beyond mapping the file: what a server uses while the graph itself loads.
fn open_flat(store: &Store, model: ModelId) -> Result<Option<FlatVectors>, AnnError> {
    let dir = dir_of(store);
    let Some(manifest) = AnnIndex::manifest(&dir, model) else { return Ok(None) };
    if manifest.epoch != store.epoch()? {
        return Ok(None);
    }
    let path = dir.join(model.to_hex()).join(flat::FILE_NAME);
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(FlatVectors::open(&path, manifest.tombstones.into_iter().collect())?))
}

/// The sketch of a fresh persisted graph's flat copy, when that copy has at least `from` rows
/// ([`sketch_from`]) and the sketch was written from its rows; `None` otherwise (a graph saved
/// before sketches existed gets one when it is next loaded: [`heal_sketch`]).
fn open_sketch(store: &Store, model: ModelId, flat: &FlatVectors, from: usize) -> Result<Option<Sketch>, AnnError> {
    if flat.rows() < from {
        return Ok(None);
    }
    let path = dir_of(store).join(model.to_hex()).join(sketch::FILE_NAME);
    if !path.exists() {
        return Ok(None);
    }
    let sketch = Sketch::open(&path)?;
    if (sketch.rows(), sketch.dim()) != (flat.rows(), flat.dim()) {
        return Err(AnnError::Graph { path, message: format!("a sketch of {} rows for {} flat rows", sketch.rows(), flat.rows()) });
    }
    Ok(Some(sketch))
}

/// Writes the sketch of a fresh graph of at least `from` points saved without a readable one (by
/// an older clipsight, below the threshold of its day, or damaged) from its flat copy, under a staging name renamed
/// into place. Only the library's writer does (no other process replaces the graph meanwhile).
/// Derived data: a failure is logged, and the flat copy keeps answering.
fn heal_sketch(store: &Store, model: ModelId, from: usize) {
    let dir = dir_of(store).join(model.to_hex());
    let path = dir.join(sketch::FILE_NAME);
    if !store.is_writer() {
        return;
    }
    let written = (|| -> Result<bool, AnnError> {
        let Some(flat) = open_flat(store, model)? else { return Ok(false) };
        if flat.rows() < from || (path.exists() && open_sketch(store, model, &flat, from).is_ok()) {
            return Ok(false);
        }
        // A staging file of a process killed while writing one is replaced.
        remove_staged(&dir, &[format!("{}.tmp-", sketch::FILE_NAME)]);
        let staging = dir.join(format!("{}.tmp-{}", sketch::FILE_NAME, std::process::id()));
        sketch::write(&staging, flat.dim(), flat.vectors_in_order())?;
        std::fs::rename(&staging, &path).map_err(|source| AnnError::Io { path: path.clone(), source })?;
        Ok(true)
    })();
    match written {
        Ok(true) => tracing::info!("wrote the vector sketch {}", path.display()),
        Ok(false) => {}
        Err(e) => tracing::warn!("cannot write the vector sketch ({e}); cold starts scan the flat copy"),
    }
}

/// Brings a persisted graph up to date after an indexing run that started at `start_epoch`:
/// inserts what was added, tombstones what was removed, or rebuilds when tombstones pile up.
/// Without a graph (small library) nothing is done; one is built on first use.
fn update(store: &Store, model: ModelId, start_epoch: u64, added: &[(ImageId, Embedding)], removed: &[ImageId]) -> Result<(), AnnError> {
    let dir = dir_of(store);
    let epoch = store.epoch()?;
    let Some(manifest) = AnnIndex::manifest(&dir, model) else { return Ok(()) };
    if manifest.epoch == epoch {
        return Ok(());
    }
    if manifest.epoch != start_epoch {
        // Changed by something we did not see: rebuild.
        rebuild(store, model, manifest.params, epoch, &mut |_, _| {})?;
        return Ok(());
    }
    let (mut index, _) = AnnIndex::load(&dir, model)?;
    for id in removed {
        index.remove(*id);
    }
    for (id, e) in added {
        index.insert(*id, e);
    }
    if index.tombstone_ratio() > REBUILD_TOMBSTONE_RATIO {
        rebuild(store, model, manifest.params, epoch, &mut |_, _| {})?;
    } else {
        index.save(&dir, model, epoch)?;
    }
    Ok(())
}

/// An HNSW graph over one model's embeddings.
struct AnnIndex {
    hnsw: Hnsw<'static, f32, DistDot>,
    params: AnnParams,
    max_id: u64,
    tombstones: HashSet<u64>,
}

impl AnnIndex {
    /// Builds a graph over `vectors` (inserted in parallel).
    pub fn build(vectors: &[(ImageId, Embedding)], params: AnnParams) -> Self {
        Self::build_with_progress(vectors, params, &mut |_, _| {})
    }

    /// Builds a graph, calling `progress(inserted, total)` as chunks of points go in.
    pub fn build_with_progress(vectors: &[(ImageId, Embedding)], params: AnnParams, progress: &mut dyn FnMut(usize, usize)) -> Self {
        const CHUNK: usize = 10_000;
        let capacity = vectors.len().max(1024);
        // hnsw_rs can only dump graphs allocated with its maximum layer count (16).
        let hnsw = Hnsw::new(params.m, capacity, MAX_LAYERS, params.ef_construction, DistDot);
        let data: Vec<(&[f32], usize)> = vectors.iter().map(|(id, e)| (e.as_slice(), id.0 as usize)).collect();
        for (i, chunk) in data.chunks(CHUNK).enumerate() {
            hnsw.parallel_insert_slice(&chunk.to_vec());
            progress((i * CHUNK + chunk.len()).min(data.len()), data.len());
        }
        let max_id = vectors.iter().map(|(id, _)| id.0).max().unwrap_or(0);
        Self { hnsw, params, max_id, tombstones: HashSet::new() }
    }

    /// Adds one image (for images indexed after the build).
    pub fn insert(&mut self, id: ImageId, embedding: &Embedding) {
        self.hnsw.insert_slice((embedding.as_slice(), id.0 as usize));
        self.tombstones.remove(&id.0);
        self.max_id = self.max_id.max(id.0);
    }

    /// Hides an image from results until the next rebuild.
    pub fn remove(&mut self, id: ImageId) {
        self.tombstones.insert(id.0);
    }

    /// Points in the graph, tombstones included.
    pub fn len(&self) -> usize {
        self.hnsw.get_nb_point()
    }

    /// True when the graph has no points.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Points that are not tombstones.
    pub fn live(&self) -> usize {
        self.len().saturating_sub(self.tombstones.len())
    }

    /// Fraction of points that are tombstones (rebuild when it grows large).
    pub fn tombstone_ratio(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.tombstones.len() as f64 / self.len() as f64
        }
    }

    /// The parameters the graph was built with.
    pub fn params(&self) -> AnnParams {
        self.params
    }

    /// The `k` nearest images to `query` that pass `accept`, best first. The filter runs inside
    /// the graph search, so `k` results come back whenever `k` accepted images exist nearby.
    pub fn search(&self, query: &[f32], k: usize, ef: usize, accept: &dyn Fn(ImageId) -> bool) -> Vec<Hit> {
        if k == 0 || self.is_empty() {
            return Vec::new();
        }
        let filter = |id: &usize| !self.tombstones.contains(&(*id as u64)) && accept(ImageId(*id as u64));
        let neighbours = self.hnsw.search_filter(query, k, ef.max(k), Some(&filter));
        let mut hits: Vec<Hit> = neighbours
            .into_iter()
            .map(|n| Hit::new(ImageId(n.d_id as u64), 1.0 - n.distance))
            .collect();
        rank(&mut hits);
        // A re-embedded image can sit in the graph twice (old and new vector): keep its best.
        let mut seen = HashSet::new();
        hits.retain(|h| seen.insert(h.id));
        hits
    }

    /// Writes the graph and its manifest under `dir/<model>/`, replacing an older one atomically
    /// enough for derived data (readers fall back to a rebuild if they catch the swap).
    pub fn save(&self, dir: &Path, model: ModelId, epoch: u64) -> Result<(), AnnError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AnnError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        remove_leftovers(dir, model);
        let target = dir.join(model.to_hex());
        let staging = dir.join(format!("{}.tmp-{}", model.to_hex(), std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).map_err(io(&staging))?;
        let basename = self
            .hnsw
            .file_dump(&staging, "graph")
            .map_err(|e| AnnError::Graph { path: staging.clone(), message: e.to_string() })?;
        if basename != "graph" {
            return Err(AnnError::Graph { path: staging, message: format!("unexpected dump name {basename}") });
        }
        let points: Vec<_> = self.hnsw.get_point_indexation().into_iter().collect();
        let dim = points.first().map_or(0, |p| p.get_v().len());
        flat::write(&staging.join(flat::FILE_NAME), dim, points.iter().map(|p| (p.get_origin_id() as u64, p.get_v())))?;
        if points.len() >= sketch_from() {
            sketch::write(&staging.join(sketch::FILE_NAME), dim, points.iter().map(|p| p.get_v()))?;
        }
        let mut tombstones: Vec<u64> = self.tombstones.iter().copied().collect();
        tombstones.sort_unstable();
        let manifest = Manifest { model: model.to_hex(), epoch, count: self.len(), max_id: self.max_id, params: self.params, tombstones };
        let manifest_path = staging.join("manifest.json");
        std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).expect("manifest serialises")).map_err(io(&manifest_path))?;
        let old = dir.join(format!("{}.old-{}", model.to_hex(), std::process::id()));
        if target.exists() {
            std::fs::rename(&target, &old).map_err(io(&target))?;
        }
        std::fs::rename(&staging, &target).map_err(io(&staging))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }

    /// The manifest of the graph saved for `model`, if any.
    pub fn manifest(dir: &Path, model: ModelId) -> Option<Manifest> {
        let text = std::fs::read_to_string(dir.join(model.to_hex()).join("manifest.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Loads the graph saved for `model`.
    pub fn load(dir: &Path, model: ModelId) -> Result<(Self, Manifest), AnnError> {
        let graph_dir = dir.join(model.to_hex());
        let manifest = Self::manifest(dir, model).ok_or_else(|| AnnError::Graph {
            path: graph_dir.clone(),
            message: "no readable manifest.json".into(),
        })?;
        // The loaded graph borrows its reader; the reader is leaked so the graph can be 'static.
        // A process loads a graph once (or after a rebuild), so this costs a few bytes.
        let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(&graph_dir, "graph")));
        io.set_options(ReloadOptions::default().set_mmap(true));
        let hnsw: Hnsw<'static, f32, DistDot> =
            io.load_hnsw().map_err(|e| AnnError::Graph { path: graph_dir.clone(), message: e.to_string() })?;
        let index = Self {
            hnsw,
            params: manifest.params,
            max_id: manifest.max_id,
            tombstones: manifest.tombstones.iter().copied().collect(),
        };
        Ok((index, manifest))
    }
}

/// Removes staging and old copies that a process killed during [`AnnIndex::save`] left behind.
fn remove_leftovers(dir: &Path, model: ModelId) {
    let hex = model.to_hex();
    remove_staged(dir, &[format!("{hex}.tmp-"), format!("{hex}.old-")]);
}

/// Removes the entries of `dir` (files or directories) whose names start with one of
/// `prefixes`: what a process killed between writing and renaming left behind.
fn remove_staged(dir: &Path, prefixes: &[String]) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            let path = entry.path();
            let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clustered unit vectors, like image embeddings.
    fn clustered(n: usize, dim: usize, seed: u64) -> Vec<(ImageId, Embedding)> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as f64 / (1u64 << 31) as f64) as f32 - 0.5
        };
        let centres: Vec<Vec<f32>> = (0..8).map(|_| (0..dim).map(|_| next()).collect()).collect();
        (0..n)
            .map(|i| {
                let c = &centres[i % centres.len()];
                let v: Vec<f32> = c.iter().map(|x| x + 0.3 * next()).collect();
                (ImageId(i as u64 + 1), Embedding::normalized(v))
            })
            .collect()
    }

    #[test]
    fn large_graphs_search_with_a_longer_candidate_list() {
        let p = AnnParams::default();
        assert_eq!(p.ef_search_for(100_000), p.ef_search);
        assert_eq!(p.ef_search_for(LARGE_GRAPH), LARGE_GRAPH_EF.max(p.ef_search));
        assert_eq!(AnnParams { ef_search: 400, ..p }.ef_search_for(2_000_000), 400, "a longer list asked for is kept");
    }

    #[test]
    fn self_queries_and_duplicates_find_themselves_without_panicking() {
        let mut vectors = clustered(500, 32, 1);
        let dup = vectors[10].1.clone();
        vectors.push((ImageId(9999), dup.clone())); // a duplicate image
        let ann = AnnIndex::build(&vectors, AnnParams::default());
        for (id, e) in vectors.iter().step_by(25) {
            let hits = ann.search(e.as_slice(), 2, 64, &|_| true);
            assert!(hits.iter().any(|h| h.id == *id), "{id} finds itself");
            assert!(hits[0].score > 0.999);
        }
        let hits = ann.search(dup.as_slice(), 2, 64, &|_| true);
        let ids: HashSet<u64> = hits.iter().map(|h| h.id.0).collect();
        assert_eq!(ids, HashSet::from([11, 9999]));
    }

    #[test]
    fn tombstones_and_filters_are_applied_inside_the_search() {
        let vectors = clustered(400, 16, 2);
        let mut ann = AnnIndex::build(&vectors, AnnParams::default());
        let q = vectors[0].1.as_slice();
        ann.remove(ImageId(1));
        let hits = ann.search(q, 10, 64, &|id| id.0 % 2 == 0);
        assert_eq!(hits.len(), 10, "k results despite the filter");
        assert!(hits.iter().all(|h| h.id.0 % 2 == 0 && h.id.0 != 1));
    }

    #[test]
    fn a_saved_graph_reloads_with_its_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let vectors = clustered(300, 16, 3);
        let mut ann = AnnIndex::build(&vectors, AnnParams::default());
        ann.remove(ImageId(5));
        let model = ModelId([4; 16]);
        ann.save(dir.path(), model, 7).unwrap();
        let (loaded, manifest) = AnnIndex::load(dir.path(), model).unwrap();
        assert_eq!((manifest.epoch, manifest.count, manifest.tombstones.clone()), (7, 300, vec![5]));
        let q = vectors[42].1.as_slice();
        assert_eq!(loaded.search(q, 5, 64, &|_| true), ann.search(q, 5, 64, &|_| true));
        // Saving again replaces the old graph.
        ann.save(dir.path(), model, 8).unwrap();
        assert_eq!(AnnIndex::manifest(dir.path(), model).unwrap().epoch, 8);
    }
}
