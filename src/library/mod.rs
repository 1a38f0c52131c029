//! The library layer: one open library — its store, its model, the snapshot of its derived
//! indexes, its indexing jobs — and every operation the front ends offer, with results as views
//! and failures as [`LibraryError`]. The CLI and the REST API both call it and only translate:
//! arguments or requests in, text, JSON or HTTP out (qdrant's shared layer under REST and gRPC).
//!
//! ```text
//! CLI command ─┐                           ┌─ store (RocksDB)
//!              ├─ Library ─ operation ─────┼─ snapshot: vector index + keyword index
//! REST route ──┘      │                    └─ encoder (CLIP, text cache)
//!                     └─ jobs: one worker thread indexes, then swaps the snapshot
//! ```
//! Everything here is blocking; the server runs it off its async workers.

mod error;
pub mod jobs;
mod snapshot;
mod text_cache;
pub mod views;
pub mod watch;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clipsight_indexer::clip::Language;
use clipsight_indexer::{Embedding, Encoder, ModelId};

pub use error::LibraryError;
pub use jobs::{Job, JobState, Jobs, Trigger};
pub use snapshot::GraphState;
use snapshot::Current;
use text_cache::TextCache;
use views::{ClassifyResponse, DescribeResponse, Facets, HitView, ImageView, LabelProbability, MatrixResponse, ModelStats, SearchResponse, Stats};

use crate::ann::{Use, VectorHome};
use crate::describe;
use crate::index::{self, IndexOptions, IndexSummary};
use crate::search::{self, Query, SearchOptions};
use crate::store::{ImageId, Store};
use crate::sync::lock;

/// Longest side of the previews [`Library::preview`] renders.
pub const PREVIEW_SIZE: u32 = 2048;
/// The longest a video's preview frame may take to read.
pub const PREVIEW_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

type Result<T, E = LibraryError> = std::result::Result<T, E>;

/// How indexing runs.
#[derive(Debug, Clone)]
pub struct IndexSettings {
    /// Roots to index besides the library's own (given on the command line, or `--watch`).
    pub roots: Vec<PathBuf>,
    /// Include hidden files.
    pub hidden: bool,
    /// Images per encoder batch.
    pub batch_size: usize,
    /// Automatic-tag vocabulary.
    pub tag_vocabulary: Vec<String>,
    /// How videos are sampled, and each file's time budget.
    pub video: clipsight_indexer::video::VideoOptions,
    /// Whether a RAW+JPEG pair or a Live Photo is one item listing both files.
    pub pairs: clipsight_indexer::pairs::Pairing,
    /// The part of the files this library indexes (`--shard I/N`).
    pub shard: index::Shard,
}

/// An image given to an operation: one of the library's, or a file on this machine (the CLI).
#[derive(Debug, Clone)]
pub enum ImageRef {
    /// An indexed image.
    Id(u64),
    /// An image file, embedded on the spot.
    File(PathBuf),
}

/// A value computed from the store, kept until the store's epoch changes.
struct EpochCache<T>(Mutex<Option<(u64, T)>>);

impl<T: Clone> EpochCache<T> {
    fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// The cached value, or `compute`'s under the lock: concurrent callers at a new epoch wait
    /// for one computation instead of each starting their own.
    fn get_or(&self, store: &Store, compute: impl FnOnce() -> Result<T>) -> Result<T> {
        let epoch = store.epoch()?;
        let mut cached = lock(&self.0);
        if let Some((e, value)) = cached.as_ref() {
            if *e == epoch {
                return Ok(value.clone());
            }
        }
        let value = compute()?;
        *cached = Some((epoch, value.clone()));
        Ok(value)
    }
}

/// How long a server's worker waits for the first search before loading a large library's
/// graph ([`Current::wait_for_first_answer`]).
const FIRST_ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// An open library.
pub struct Library {
    store: Store,
    /// Where the vectors are searched and pushed.
    home: VectorHome,
    encoder: TextCache,
    current: Current,
    jobs: Jobs,
    settings: IndexSettings,
    writable: bool,
    facets: EpochCache<Facets>,
    count: EpochCache<usize>,
    /// The background vectors relevance cutoffs are read against (see [`search::relevance`]).
    background: EpochCache<Arc<search::Background>>,
    model_stats: EpochCache<Vec<ModelStats>>,
    stop: Arc<AtomicBool>,
}

impl Library {
    /// Opens `store` with `encoder`; `writable` is false when another process holds the writer
    /// lock (indexing then fails with [`LibraryError::ReadOnly`]). Queries are answered at once
    /// (see [`Use::Immediate`]); [`Library::load_indexes`] or the worker brings in the graph.
    pub fn new(store: Store, encoder: Box<dyn Encoder>, settings: IndexSettings, writable: bool, home: VectorHome) -> Result<Self> {
        let current = Current::immediate(&home, &store, encoder.id()).map_err(|e| LibraryError::Internal(e.to_string()))?;
        Ok(Self {
            store,
            home,
            encoder: TextCache::new(encoder),
            current,
            jobs: Jobs::default(),
            settings,
            writable,
            facets: EpochCache::new(),
            count: EpochCache::new(),
            background: EpochCache::new(),
            model_stats: EpochCache::new(),
            stop: Arc::default(),
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The model (with the library's text-embedding cache in front of it).
    pub fn encoder(&self) -> &dyn Encoder {
        &self.encoder
    }

    /// The job queue.
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// Whether this process may index (it holds the writer lock).
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Opens the derived indexes for `usage` (see [`Use`]) and puts them in service.
    pub fn load_indexes(&self, usage: Use, keywords: bool, progress: &mut dyn FnMut(usize, usize)) {
        self.current.refresh(&self.home, &self.store, self.encoder.id(), usage, keywords, progress);
    }

    /// Says, for the stats, that the indexes are being loaded: call it before handing the
    /// library to [`Library::work`]'s thread.
    pub fn mark_loading(&self) {
        self.current.mark_loading();
    }

    /// The worker loop of a server: loads the derived indexes, then runs queued jobs until the
    /// queue stops, reloading the indexes after each. Indexing and loading share this one
    /// thread, so they never race on the files.
    /// `before_loading` runs once the images are counted, before the indexes load (a server
    /// waits there for its text encoder).
    pub fn work(self: Arc<Self>, before_loading: impl FnOnce()) {
        // Count the images now (a key scan: about a second at a million) so the first search's
        // `total_images` finds it cached, or waits for this one scan instead of starting another.
        if let Err(e) = self.image_count() {
            tracing::warn!("cannot count the images: {e}");
        }
        before_loading();
        self.current.wait_for_first_answer(FIRST_ANSWER_WAIT);
        self.load_indexes(Use::Many, true, &mut |_, _| {});
        let mirror = self.mirror_every();
        // The epoch the indexes were loaded at: the mirror's changes and the rows a front end's
        // searches copied both move it, and its keyword index follows them at the next round.
        let mut loaded = self.store.epoch().ok();
        let mut wait = mirror.map(|_| std::time::Duration::ZERO);
        loop {
            match self.jobs.next_within(wait) {
                jobs::Next::Stopping => return,
                jobs::Next::Idle => {
                    wait = mirror;
                    self.mirror_rows();
                    let epoch = self.store.epoch().ok();
                    if epoch != loaded {
                        self.load_indexes(Use::Many, true, &mut |_, _| {});
                        loaded = epoch;
                    }
                }
                jobs::Next::Job(id) => {
                    let outcome = self.index(&[], false, |done, total| self.jobs.progress(id, done, total)).map_err(|e| e.to_string());
                    match &outcome {
                        Ok(s) => tracing::info!("indexing job {id}: {} indexed, {} removed, {} failed", s.indexed, s.removed, s.failed),
                        Err(e) => tracing::error!("indexing job {id} failed: {e}"),
                    }
                    self.jobs.finish(id, outcome);
                    self.load_indexes(Use::Many, true, &mut |_, _| {});
                }
            }
        }
    }

    /// How often a Milvus front end's worker brings its mirror of the rows' records up to date
    /// (`CLIPSIGHT_MILVUS_MIRROR_S`, default 30 s, from 1 s to a day); `None` for any other
    /// library. The first round starts once the indexes are loaded, so keyword search answers
    /// from the mirror a restarted front end already has while it catches up.
    fn mirror_every(&self) -> Option<std::time::Duration> {
        let front_end = matches!(self.home, VectorHome::Milvus(_)) && self.writable && self.store.roots().is_ok_and(|r| r.is_empty());
        let seconds: u64 = std::env::var("CLIPSIGHT_MILVUS_MIRROR_S").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
        front_end.then(|| std::time::Duration::from_secs(seconds.clamp(1, 86_400)))
    }

    /// Brings a Milvus front end's mirror of every row's record up to date (see
    /// [`crate::ann::milvus::Depth::Records`]); a change moves the store's epoch. A failure (the
    /// server away) is logged, and the next round tries again.
    fn mirror_rows(&self) {
        let VectorHome::Milvus(milvus) = &self.home else { return };
        let started = Instant::now();
        match crate::ann::milvus::MilvusIndex::new(milvus.clone(), self.encoder.id(), self.store.clone()).and_then(|index| index.mirror()) {
            Ok(Some(s)) => {
                // An idle front end checks every round: only a change is worth a line at info.
                let line = format!("mirror of {}: {} records copied, {} unchanged, {} removed in {:.1}s", milvus.address(), s.copied, s.unchanged, s.removed, started.elapsed().as_secs_f64());
                if s.copied + s.removed > 0 {
                    tracing::info!("{line}");
                } else {
                    tracing::debug!("{line}");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("cannot mirror the rows of {}: {e}", milvus.address()),
        }
    }

    /// Indexes `roots` (each then joins the library's roots), or, when none are given, the
    /// library's roots and the settings' (`--watch`); re-embeds every file when `full`. Flushes
    /// the store. `progress(done, total)` follows the run.
    pub fn index(&self, roots: &[PathBuf], full: bool, progress: impl FnMut(usize, usize)) -> Result<IndexSummary> {
        if !self.writable {
            return Err(LibraryError::ReadOnly);
        }
        let roots = if roots.is_empty() { self.known_roots()? } else { roots.to_vec() };
        if roots.is_empty() {
            return Err(LibraryError::NoRoots);
        }
        let options = IndexOptions {
            roots,
            hidden: self.settings.hidden,
            full,
            batch_size: self.settings.batch_size,
            tag_vocabulary: self.settings.tag_vocabulary.clone(),
            stop: Some(self.stop.clone()),
            video: self.settings.video,
            pairs: self.settings.pairs,
            home: self.home.clone(),
            shard: self.settings.shard,
        };
        let summary = index::run(&self.store, self.encoder.inner(), &options, progress).map_err(|e| match e {
            index::IndexError::Store(e) => LibraryError::Store(e),
            index::IndexError::Root { path, source } => LibraryError::BadQuery(format!("{}: {source}", path.display())),
            other => LibraryError::Internal(other.to_string()),
        })?;
        self.store.flush()?;
        Ok(summary)
    }

    /// The library's roots and the settings' roots, canonical, each once.
    fn known_roots(&self) -> Result<Vec<PathBuf>> {
        let mut roots = self.store.roots()?;
        for r in &self.settings.roots {
            let canonical = std::fs::canonicalize(r).unwrap_or_else(|_| r.clone());
            if !roots.contains(&canonical) {
                roots.push(canonical);
            }
        }
        Ok(roots)
    }

    /// Ends the worker: a running job stops after the images in flight, queued ones are dropped.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.jobs.stop();
    }

    /// Queues an indexing job for the worker.
    pub fn start_indexing(&self, trigger: Trigger) -> Result<Job> {
        if !self.writable {
            return Err(LibraryError::ReadOnly);
        }
        Ok(self.jobs.submit(trigger))
    }

    /// A job by id.
    pub fn job(&self, id: u64) -> Result<Job> {
        self.jobs.get(id).ok_or_else(|| LibraryError::NotFound(format!("no job {id}")))
    }

    /// Runs a parsed query (text terms, images, filters) against one snapshot of the indexes,
    /// or uses `vector` in place of the query's own vector when given (an upload).
    pub fn search(&self, query: &Query, vector: Option<Embedding>, options: SearchOptions) -> Result<SearchResponse> {
        let started = Instant::now();
        let snapshot = self.current.get();
        let keywords = match options.mode {
            search::Mode::Vector => None,
            // Hybrid ranks by vectors alone without a keyword index (logged when it failed to
            // open); a keyword search has nothing to answer with, and says so.
            search::Mode::Keyword if snapshot.keywords.is_none() => return Err(LibraryError::Internal("the keyword index could not be opened (see the log)".into())),
            _ => snapshot.keywords.as_deref(),
        };
        let vectors = snapshot.vectors.as_ref();
        let background = self.background.get_or(&self.store, || {
            let count = vectors.count().map_err(search::SearchError::from)?;
            Ok(Arc::new(match vectors.sample(search::relevance::BACKGROUND_SIZE).map_err(search::SearchError::from)? {
                Some(rows) => search::Background::new(rows, count),
                None => search::Background::sample(&self.store, self.encoder.id(), count)?,
            }))
        })?;
        let rankers = search::Rankers { vectors, keywords, background: &background };
        let vector = match vector {
            Some(v) => Some(v),
            None => search::query_vector(&self.store, &self.encoder, query, options)?,
        };
        let ranked = search::run_with_vector(&self.store, self.encoder.id(), vector, query, options, rankers)?;
        let shown: Vec<ImageId> = ranked.hits.iter().map(|f| f.hit.id).collect();
        vectors.fetch_rows(&shown).map_err(search::SearchError::from)?;
        let mut results = Vec::with_capacity(ranked.hits.len());
        for found in ranked.hits {
            results.extend(self.hit_view(found.hit.id, found.hit.score, &found.hit.moments)?.map(|view| view.relevant(found.relevant)));
        }
        let total_images = self.image_count()?;
        self.current.answered();
        Ok(SearchResponse {
            relevant_count: ranked.relevant_count,
            relevant_more: ranked.relevant_more,
            results,
            took_ms: started.elapsed().as_secs_f64() * 1000.0,
            total_images,
            indexing: self.jobs.busy(),
            lang: language_used(&self.encoder, options.language),
        })
    }

    /// Images like `image` (an indexed one, or a file), best first.
    pub fn similar(&self, image: ImageRef, options: SearchOptions) -> Result<SearchResponse> {
        let kind = match image {
            ImageRef::Id(id) => search::TermKind::Image(id),
            ImageRef::File(path) => search::TermKind::File(path.display().to_string()),
        };
        let query = Query { terms: vec![search::Term { weight: 1.0, kind }], filters: search::Filters::default() };
        self.search(&query, None, SearchOptions { mode: search::Mode::Vector, ..options })
    }

    /// Images in the library (a key scan, cached per store epoch: cheap on every query).
    pub fn image_count(&self) -> Result<usize> {
        self.count.get_or(&self.store, || match self.home {
            // A front end's library holds only the rows it has shown: the collection knows.
            VectorHome::Milvus(_) => self.current.get().vectors.count().map_err(|e| LibraryError::from(search::SearchError::from(e))),
            VectorHome::Local => Ok(self.store.count_files()?),
        })
    }

    /// The embedding of an image: an indexed one's stored embedding, or a file's, computed.
    pub fn embedding(&self, image: &ImageRef) -> Result<Embedding> {
        match image {
            ImageRef::Id(id) => self
                .store
                .embedding(self.encoder.id(), ImageId(*id))?
                .ok_or_else(|| LibraryError::NotFound(format!("no image with id {id} in this library"))),
            ImageRef::File(path) => Ok(embed_files(&self.encoder, std::slice::from_ref(path))?.remove(0)),
        }
    }

    /// The embedding of image bytes (an upload).
    pub fn embed_bytes(&self, bytes: &[u8]) -> Result<Embedding> {
        let prepared = clipsight_indexer::pipeline::prepare_bytes(&self.encoder, bytes)?;
        Ok(self.encoder.encode_images(&[prepared])?.remove(0))
    }

    /// Everything known about one image.
    pub fn image(&self, id: u64) -> Result<ImageView> {
        let record = self.store.file(ImageId(id))?.ok_or_else(|| LibraryError::NotFound(format!("no image with id {id}")))?;
        let tags = self.store.tags(ImageId(id))?;
        let annotations = self.store.annotations(ImageId(id))?.combined();
        Ok(ImageView::new(ImageId(id), &record, tags, annotations, self.store.video(ImageId(id))?.as_ref()))
    }

    /// An image's thumbnail (JPEG).
    pub fn thumbnail(&self, id: u64) -> Result<Vec<u8>> {
        self.store.thumbnail(ImageId(id))?.ok_or_else(|| LibraryError::NotFound(format!("no thumbnail for image {id}")))
    }

    /// The view of a ranked item (`None` when its record vanished meanwhile), with a video's
    /// facts and matching moments.
    fn hit_view(&self, id: ImageId, score: f32, moments: &[crate::ann::MomentScore]) -> Result<Option<HitView>> {
        let Some(record) = self.store.file(id)? else { return Ok(None) };
        let view = HitView::new(id, score, &record);
        Ok(Some(match self.store.video(id)? {
            Some(video) => view.with_video(&video, moments),
            None => view,
        }))
    }

    /// A JPEG rendering of an image's original, longest side at most [`PREVIEW_SIZE`], upright:
    /// for browsers that cannot show the file itself (HEIC, TIFF); for a video, its frame at
    /// `at_s` seconds (its first moment without). Decoded on each call (the HTTP layer lets the
    /// browser cache it).
    pub fn preview(&self, id: u64, at_s: Option<f64>) -> Result<Vec<u8>> {
        let path = self.original(id)?;
        if let Some(video) = self.store.video(ImageId(id))? {
            let at_s = at_s.unwrap_or_else(|| video.moments_ms.first().map_or(0.0, |ms| *ms as f64 / 1000.0));
            // A request waits for it: far less than a file may take to index.
            let frame = clipsight_indexer::video::frame_at(&path, at_s, self.settings.video.budget.min(PREVIEW_BUDGET))?;
            return Ok(clipsight_indexer::decode::jpeg_fitting(&frame, PREVIEW_SIZE, 85));
        }
        let bytes = std::fs::read(&path).map_err(|_| LibraryError::NotFound(format!("the file of image {id} cannot be read")))?;
        let decoded = clipsight_indexer::decode::decode_at_least(&bytes, PREVIEW_SIZE).map_err(|e| LibraryError::Image(e.into()))?;
        Ok(clipsight_indexer::decode::jpeg_fitting(&decoded.image, PREVIEW_SIZE, 85))
    }

    /// The on-disk path of an image's original, only when it resolves (symlinks followed) inside
    /// one of the library's roots.
    pub fn original(&self, id: u64) -> Result<PathBuf> {
        let record = self.store.file(ImageId(id))?.ok_or_else(|| LibraryError::NotFound(format!("no image with id {id}")))?;
        self.servable(id, &record.path())
    }

    /// The on-disk path of the `n`th file listed with an image (its RAW, a Live Photo's motion;
    /// [`ImageView::companions`]), under the same rule as [`Library::original`].
    pub fn companion(&self, id: u64, n: usize) -> Result<PathBuf> {
        let record = self.store.file(ImageId(id))?.ok_or_else(|| LibraryError::NotFound(format!("no image with id {id}")))?;
        let companion = record.companions.get(n).ok_or_else(|| LibraryError::NotFound(format!("image {id} has no companion file {n}")))?;
        self.servable(id, &companion.path())
    }

    /// `path` resolved (symlinks followed), when it is a file inside one of the library's roots.
    fn servable(&self, id: u64, path: &Path) -> Result<PathBuf> {
        let gone = || LibraryError::NotFound(format!("the file of image {id} is no longer on disk"));
        let real = std::fs::canonicalize(path).map_err(|_| gone())?;
        let roots = self.store.roots()?;
        // Roots are stored canonical, so a prefix test on the resolved path is exact.
        if !roots.iter().any(|root| real.starts_with(root)) {
            tracing::warn!("refused to serve {}: it resolves outside the indexed roots", real.display());
            return Err(LibraryError::OutsideRoots(id));
        }
        if !real.is_file() {
            return Err(gone());
        }
        Ok(real)
    }

    /// Image → text: the best corpus captions and tags of an image.
    pub fn describe(&self, image: &ImageRef, k: usize) -> Result<DescribeResponse> {
        let embedding = self.embedding(image)?;
        let captions = describe::best_captions(&self.store, &self.encoder, &embedding, k)?;
        // Not through the query cache: a first-time vocabulary would push users' queries out.
        let tags = describe::Vocabulary::current(&self.store, self.encoder.inner())?.score(&embedding);
        Ok(DescribeResponse {
            captions: captions.into_iter().map(Into::into).collect(),
            tags: tags.into_iter().take(k).map(Into::into).collect(),
        })
    }

    /// Zero-shot classification of an image over labels written in `language` (see [`classify`]).
    pub fn classify(&self, image: &Embedding, labels: Vec<String>, language: Option<Language>) -> Result<ClassifyResponse> {
        classify(&self.encoder, image, labels, language)
    }

    /// Cosines of images × texts (see [`matrix`]).
    pub fn matrix(&self, images: &[ImageRef], texts: &[String]) -> Result<MatrixResponse> {
        let rows = images.iter().map(|i| self.embedding(i)).collect::<Result<Vec<_>>>()?;
        matrix(&self.encoder, &rows, texts)
    }

    /// The library at a glance.
    pub fn stats(&self) -> Result<Stats> {
        let images = self.image_count()?;
        Ok(Stats {
            indexing: self.jobs.busy(),
            job: self.jobs.running(),
            graph: self.current.get().state,
            writable: self.writable,
            // Cached per epoch: the web UI polls the stats while a job runs.
            ..stats_with(&self.store, images, self.model_stats.get_or(&self.store, || model_stats(&self.store, images))?, Some((self.encoder.id(), self.encoder.dim())))?
        })
    }

    /// Groups of near-duplicate images (at least `threshold` similar), each image scored by its
    /// cosine with the group's first.
    pub fn duplicates(&self, threshold: f32) -> Result<Vec<Vec<HitView>>> {
        let model = self.encoder.id();
        let groups = crate::duplicates::groups(&self.store, model, threshold, self.current.get().vectors.as_ref())
            .map_err(|e| LibraryError::Internal(e.to_string()))?;
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let first = self.embedding(&ImageRef::Id(group[0].0))?;
            let mut views = Vec::with_capacity(group.len());
            for id in group {
                if let Some(e) = self.store.embedding(model, id)? {
                    views.extend(self.hit_view(id, first.cosine(&e), &[])?);
                }
            }
            out.push(views);
        }
        Ok(out)
    }

    /// Folder, camera, type and date values present in the library (cached per store epoch).
    pub fn facets(&self) -> Result<Facets> {
        self.facets.get_or(&self.store, || {
            // A library with no folders of its own (a front end's, a pulled one) names folders
            // from the file system's root.
            let roots = Some(self.store.roots()?).filter(|r| !r.is_empty()).unwrap_or_else(|| vec![PathBuf::from("/")]);
            let (mut folders, mut cameras, mut types, mut dates) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
            for item in self.store.files() {
                let (_, record) = item?;
                let path = record.path();
                if let Some(rel) = roots.iter().find_map(|r| path.strip_prefix(r).ok()).and_then(Path::parent) {
                    let mut prefix = PathBuf::new();
                    for part in rel.components() {
                        prefix.push(part);
                        folders.insert(prefix.to_string_lossy().into_owned());
                    }
                }
                cameras.extend(views::camera_name(&record.exif));
                types.extend(record.formats().map(String::from));
                dates.extend(record.exif.date_taken.map(|d| d.day()));
            }
            Ok(Facets {
                folders: folders.into_iter().collect(),
                cameras: cameras.into_iter().collect(),
                types: types.into_iter().collect(),
                date_min: dates.first().map(ToString::to_string),
                date_max: dates.last().map(ToString::to_string),
            })
        })
    }

    /// The model a library's queries must use: its active one, when this encoder has no
    /// embeddings in it, is an error worth a clear message.
    pub fn check_model(&self) -> Result<()> {
        let model = self.encoder.id();
        if self.store.active_model()?.is_some_and(|m| m != model) && self.store.embedding_ids(model).next().is_none() {
            return Err(LibraryError::BadQuery("the library was indexed with another model; pass that model with --model, or re-index with this one".into()));
        }
        Ok(())
    }

    /// The id of the model this library answers with.
    pub fn model(&self) -> ModelId {
        self.encoder.id()
    }
}

/// The library at a glance, from the store alone: `model` is the one this process answers with
/// (`None`: no model loaded, and `missing_embeddings` counts against the active model); no job,
/// no index loaded, not writable.
pub fn stats_of(store: &Store, images: usize, model: Option<(ModelId, usize)>) -> Result<Stats> {
    stats_with(store, images, model_stats(store, images)?, model)
}

/// Embeddings per model (a key scan of each).
fn model_stats(store: &Store, images: usize) -> Result<Vec<ModelStats>> {
    let mut models = Vec::new();
    for id in store.models()? {
        let embedded = store.count_embeddings(id)?;
        models.push(ModelStats { id: id.to_hex(), embedded, missing: images.saturating_sub(embedded) });
    }
    Ok(models)
}

fn stats_with(store: &Store, images: usize, models: Vec<ModelStats>, model: Option<(ModelId, usize)>) -> Result<Stats> {
    let active_model = store.active_model()?;
    let counted = model.map(|(id, _)| id).or(active_model).map(|m| m.to_hex());
    let missing_embeddings = models.iter().find(|m| Some(&m.id) == counted.as_ref()).map_or(images, |m| m.missing);
    Ok(Stats {
        images,
        videos: store.count_videos()?,
        model: model.map(|(id, _)| id.to_hex()),
        dim: model.map(|(_, dim)| dim),
        active_model: active_model.map(|m| m.to_hex()),
        missing_embeddings,
        models,
        roots: store.roots()?.iter().map(|r| r.display().to_string()).collect(),
        interrupted_run: store.interrupted_run()?,
        indexing: false,
        job: None,
        graph: GraphState::Unloaded,
        writable: false,
    })
}

// Operations that need a model but no library: the CLI runs them on files without opening one.

/// Embeddings of image files, in order; a file that cannot be read or decoded is an error that
/// names it.
pub fn embed_files(encoder: &dyn Encoder, paths: &[PathBuf]) -> Result<Vec<Embedding>> {
    let prepared = paths
        .iter()
        .map(|p| clipsight_indexer::pipeline::prepare_file(encoder, p).map_err(LibraryError::BadQuery))
        .collect::<Result<Vec<_>>>()?;
    Ok(encoder.encode_images(&prepared)?)
}

/// Zero-shot classification of an image over labels (at least two) written in `language`: each
/// label's probability as the model scores it (a softmax over the labels, or each label's own
/// sigmoid: see [`clipsight_indexer::clip::Scoring`]), and the most probable label.
pub fn classify(encoder: &dyn Encoder, image: &Embedding, labels: Vec<String>, language: Option<Language>) -> Result<ClassifyResponse> {
    check_labels(&labels)?;
    let (probs, best) = describe::zero_shot(encoder, image, &labels, language)?;
    Ok(ClassifyResponse {
        best: labels[best].clone(),
        labels: labels.into_iter().zip(probs).map(|(label, prob)| LabelProbability { label, prob }).collect(),
        scoring: encoder.scoring().name(),
        lang: language_used(encoder, language),
    })
}

/// The FLORES-200 code texts were embedded with, for a model that reads one (what responses
/// report as `lang`).
fn language_used(encoder: &dyn Encoder, language: Option<Language>) -> Option<String> {
    language.filter(|_| encoder.takes_language()).map(|l| l.code().to_string())
}

/// The language a BCP-47 tag or FLORES-200 code names (see [`Language::resolve`]); an unknown
/// one is English. Logged at debug level only: a browser in a language without a code asks with
/// it on every query, and the response's `lang` already says which code was used.
pub fn language(tag: &str) -> Language {
    let resolved = Language::resolve(tag);
    if !resolved.known {
        tracing::debug!("unknown language {tag:?}: texts are taken as English ({})", resolved.language);
    }
    resolved.language
}

/// Zero-shot classification needs at least two labels to choose between.
pub fn check_labels(labels: &[String]) -> Result<()> {
    if labels.len() < 2 {
        return Err(LibraryError::BadQuery("give at least two comma-separated labels (--labels), e.g. \"a dog,a cat,a bird\"".into()));
    }
    Ok(())
}

/// Cosines of image embeddings × texts, and the InfoNCE loss of the pairs when square.
pub fn matrix(encoder: &dyn Encoder, images: &[Embedding], texts: &[String]) -> Result<MatrixResponse> {
    let columns = encoder.encode_texts(&texts.iter().map(String::as_str).collect::<Vec<_>>())?;
    let similarity = crate::eval::similarity(images, &columns);
    let loss = crate::eval::info_nce(&similarity, encoder.scoring().scale());
    Ok(MatrixResponse { similarity, loss })
}

/// Small libraries for unit tests, with the model-free encoder.
#[cfg(test)]
pub(crate) mod test_support {
    use clipsight_indexer::HashEncoder;

    use super::*;
    use crate::store::OpenMode;

    /// Flat-coloured 40×30 PNGs named as given, in a library with a three-word tag vocabulary:
    /// indexed and its indexes loaded when `writable`, else opened as a reader would (nothing
    /// indexed). Returns (photos, data, library).
    pub fn library_of_colours(colours: &[(&str, [u8; 3])], writable: bool) -> (tempfile::TempDir, tempfile::TempDir, Library) {
        let (photos, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for (name, rgb) in colours {
            image::RgbImage::from_pixel(40, 30, image::Rgb(*rgb)).save(photos.path().join(name)).unwrap();
        }
        let settings = IndexSettings {
            roots: vec![photos.path().to_path_buf()],
            hidden: false,
            batch_size: 4,
            tag_vocabulary: vec!["red".into(), "green".into(), "blue".into()],
            video: Default::default(),
            pairs: Default::default(),
            shard: Default::default(),
        };
        let store = Store::open(data.path(), OpenMode::ReadWrite).unwrap();
        let library = Library::new(store, Box::new(HashEncoder::new(ModelId([5; 16]))), settings, writable, VectorHome::Local).unwrap();
        if writable {
            library.index(&[], false, |_, _| {}).unwrap();
            library.load_indexes(Use::Many, true, &mut |_, _| {});
        }
        (photos, data, library)
    }
}

#[cfg(test)]
mod tests {
    //! The operations every front end shares, over a library indexed with a model-free encoder.

    use clipsight_indexer::HashEncoder;

    use super::*;
    use crate::store::OpenMode;

    fn settings(roots: Vec<PathBuf>) -> IndexSettings {
        IndexSettings { roots, hidden: false, batch_size: 4, tag_vocabulary: vec!["red".into(), "green".into(), "blue".into()], video: Default::default(), pairs: Default::default(), shard: Default::default() }
    }

    /// A library of five flat-coloured photos (two identical), indexed.
    fn indexed() -> (tempfile::TempDir, tempfile::TempDir, Library) {
        let colours = [("red.png", [220, 10, 10]), ("green.png", [10, 220, 10]), ("blue.png", [10, 10, 220]), ("blue-again.png", [10, 10, 220]), ("grey.png", [128, 128, 128])];
        let (photos, data, library) = test_support::library_of_colours(&colours, true);
        assert_eq!(library.stats().unwrap().images, 5);
        (photos, data, library)
    }

    fn id_of(library: &Library, name: &str) -> u64 {
        let hits = library.search(&search::parse("type:png").unwrap(), None, SearchOptions { k: 10, ..Default::default() }).unwrap();
        hits.results.iter().find(|h| h.name == name).map(|h| h.id).unwrap()
    }

    #[test]
    fn similar_images_rank_an_image_and_its_twin_first_and_filters_apply() {
        let (_photos, _data, library) = indexed();
        let blue = id_of(&library, "blue.png");
        let found = library.similar(ImageRef::Id(blue), SearchOptions { k: 2, ..Default::default() }).unwrap();
        let names: BTreeSet<&str> = found.results.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, BTreeSet::from(["blue.png", "blue-again.png"]));
        assert_eq!(found.total_images, 5);
        let missing = library.similar(ImageRef::Id(999), SearchOptions::default());
        assert!(matches!(missing, Err(LibraryError::NotFound(_))), "{missing:?}");
        let bad = library.search(&search::parse("type:gif").unwrap(), None, SearchOptions::default()).unwrap();
        assert!(bad.results.is_empty(), "no gif in the library");
    }

    #[test]
    fn describe_classify_matrix_and_duplicates_answer_from_the_library() {
        let (_photos, _data, library) = indexed();
        describe::add_corpus(library.store(), library.encoder(), &["a red square".into(), "a blue square".into()], None).unwrap();
        let described = library.describe(&ImageRef::Id(id_of(&library, "red.png")), 2).unwrap();
        assert_eq!((described.captions.len(), described.tags.len()), (2, 2));

        let red = library.embedding(&ImageRef::Id(id_of(&library, "red.png"))).unwrap();
        let classified = library.classify(&red, vec!["a".into(), "b".into()], None).unwrap();
        assert!((classified.labels.iter().map(|l| l.prob).sum::<f32>() - 1.0).abs() < 1e-4);
        assert!(matches!(library.classify(&red, vec!["only one".into()], None), Err(LibraryError::BadQuery(_))));

        let m = library.matrix(&[ImageRef::Id(1), ImageRef::Id(2)], &["x".into(), "y".into()]).unwrap();
        assert_eq!((m.similarity.len(), m.similarity[0].len(), m.loss.is_some()), (2, 2, true));

        let groups = library.duplicates(0.999).unwrap();
        assert_eq!(groups.len(), 1, "the two blue photos");
        let names: BTreeSet<&str> = groups[0].iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, BTreeSet::from(["blue.png", "blue-again.png"]));
    }

    #[test]
    fn stats_have_one_shape_for_every_front_end() {
        let (_photos, _data, library) = indexed();
        let stats = library.stats().unwrap();
        assert_eq!((stats.images, stats.missing_embeddings, stats.interrupted_run, stats.writable), (5, 0, false, true));
        assert_eq!(stats.active_model, stats.model);
        assert_eq!(stats.dim, Some(12));
        assert_eq!(stats.models.len(), 1);
        assert_eq!((stats.models[0].embedded, stats.graph), (5, GraphState::Exact));
    }

    #[test]
    fn a_reader_cannot_index_and_a_library_without_folders_says_so() {
        let data = tempfile::tempdir().unwrap();
        let store = Store::open(data.path(), OpenMode::ReadWrite).unwrap();
        let library = Library::new(store.clone(), Box::new(HashEncoder::new(ModelId([5; 16]))), settings(Vec::new()), true, VectorHome::Local).unwrap();
        assert!(matches!(library.index(&[], false, |_, _| {}), Err(LibraryError::NoRoots)));
        let reader = Library::new(store, Box::new(HashEncoder::new(ModelId([5; 16]))), settings(Vec::new()), false, VectorHome::Local).unwrap();
        assert!(matches!(reader.start_indexing(Trigger::Api), Err(LibraryError::ReadOnly)));
        assert!(matches!(reader.index(&[], false, |_, _| {}), Err(LibraryError::ReadOnly)));
    }
}
