//! The state every request shares: the store, the model, the derived indexes and the job queue,
//! with the operations the routes call. Everything here is blocking; routes run it off the
//! async workers (`web::block`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clipsight_indexer::{Clip, Embedding};

use super::derived::{Derived, GraphState};
use super::error::ApiError;
use super::jobs::{Jobs, Trigger};
use super::views::{ClassifyResponse, DescribeResponse, Facets, HitView, ImageView, LabelProbability, MatrixResponse, SearchResponse};
use crate::describe;
use crate::index::{self, IndexOptions};
use crate::search::{self, Query, SearchOptions};
use crate::store::{ImageId, Store};

/// How indexing jobs run.
#[derive(Debug, Clone)]
pub struct IndexSettings {
    /// Roots to index besides the library's own (the `--watch` roots).
    pub roots: Vec<PathBuf>,
    /// Include hidden files.
    pub hidden: bool,
    /// Images per encoder batch.
    pub batch_size: usize,
    /// Automatic-tag vocabulary.
    pub tag_vocabulary: Vec<String>,
}

/// The library being served.
pub struct Library {
    store: Store,
    clip: Clip,
    derived: Derived,
    jobs: Jobs,
    settings: IndexSettings,
    writable: bool,
    facets: Mutex<Option<(u64, Facets)>>,
    count: Mutex<Option<(u64, usize)>>,
    stop: Arc<AtomicBool>,
    text_cache: Mutex<lru::LruCache<String, Embedding>>,
}

/// Text embeddings kept by the server.
const TEXT_CACHE_ENTRIES: usize = 4096;

impl Library {
    /// Serves `store` with `clip`; `writable` is false when another process holds the writer lock
    /// (indexing routes then answer 409).
    pub fn new(store: Store, clip: Clip, settings: IndexSettings, writable: bool) -> Self {
        let derived = Derived::new(&store, clip.id());
        Self {
            store,
            clip,
            derived,
            jobs: Jobs::default(),
            settings,
            writable,
            facets: Mutex::new(None),
            count: Mutex::new(None),
            stop: Arc::default(),
            text_cache: Mutex::new(lru::LruCache::new(std::num::NonZeroUsize::new(TEXT_CACHE_ENTRIES).expect("non-zero"))),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The model.
    pub fn clip(&self) -> &Clip {
        &self.clip
    }

    /// The job queue.
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// How vector queries are answered now.
    pub fn graph_state(&self) -> GraphState {
        self.derived.graph_state()
    }

    /// Whether this server may index (it holds the writer lock).
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The worker loop: loads the derived indexes, then runs queued jobs until the queue stops.
    /// Indexing and index loading share this one thread, so they never race on the files.
    pub fn work(self: Arc<Self>) {
        // Count the images now (a key scan: about a second at a million) so the first search's
        // `total_images` finds it cached, or waits for this one scan instead of starting another.
        if let Err(e) = self.image_count() {
            tracing::warn!("cannot count the images: {e}");
        }
        self.derived.refresh(&self.store, self.clip.id());
        while let Some(id) = self.jobs.next() {
            let outcome = self.index_once(id);
            if let Err(e) = &outcome {
                tracing::error!("indexing job {id} failed: {e}");
            }
            self.jobs.finish(id, outcome);
            self.derived.refresh(&self.store, self.clip.id());
        }
    }

    fn index_once(&self, job: u64) -> Result<serde_json::Value, String> {
        let mut roots = self.store.roots().map_err(|e| e.to_string())?;
        for r in &self.settings.roots {
            let canonical = std::fs::canonicalize(r).unwrap_or_else(|_| r.clone());
            if !roots.contains(&canonical) {
                roots.push(canonical);
            }
        }
        if roots.is_empty() {
            return Err("the library has no roots yet; run `clipsight index PHOTOS` or serve with --watch PHOTOS".into());
        }
        let options = IndexOptions {
            roots,
            hidden: self.settings.hidden,
            full: false,
            batch_size: self.settings.batch_size,
            tag_vocabulary: self.settings.tag_vocabulary.clone(),
            stop: Some(self.stop.clone()),
        };
        let summary = index::run(&self.store, &self.clip, &options, |done, total| self.jobs.progress(job, done, total))
            .map_err(|e| e.to_string())?;
        self.store.flush().map_err(|e| e.to_string())?;
        tracing::info!("indexing job {job}: {} indexed, {} removed, {} failed", summary.indexed, summary.removed, summary.failed);
        serde_json::to_value(&summary).map_err(|e| e.to_string())
    }

    /// Ends the worker: a running job stops after the images in flight, queued ones are dropped.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.jobs.stop();
    }

    /// Queues an indexing job (409 when another process owns the library).
    pub fn start_indexing(&self, trigger: Trigger) -> Result<super::jobs::Job, ApiError> {
        if !self.writable {
            return Err(ApiError::new(
                actix_web::http::StatusCode::CONFLICT,
                "read_only",
                "another process is indexing this library; this server only reads it",
            ));
        }
        Ok(self.jobs.submit(trigger))
    }

    /// Runs a parsed query (text terms, image ids, filters), or uses `vector` in place of the
    /// query's own vector when given (an upload).
    pub fn search(&self, query: &Query, vector: Option<Embedding>, options: SearchOptions) -> Result<SearchResponse, ApiError> {
        let started = Instant::now();
        let graph = self.derived.graph();
        let keywords = match options.mode {
            search::Mode::Vector => None,
            _ => self.derived.keywords(),
        };
        let vectors = self.derived.vectors();
        let rankers = search::Rankers { graph: graph.as_deref(), vectors: vectors.as_deref(), keywords: keywords.as_deref() };
        let vector = match vector {
            Some(v) => Some(v),
            None => search::query_vector_with(&self.store, &self.clip, query, false, &|texts| self.encode_texts(texts))?,
        };
        let hits = search::run_with_vector(&self.store, &self.clip, vector, query, options, rankers)?;
        let mut results = Vec::with_capacity(hits.len());
        for hit in hits {
            if let Some(record) = self.store.file(hit.id)? {
                results.push(HitView::new(hit.id, hit.score, &record));
            }
        }
        Ok(SearchResponse {
            results,
            took_ms: started.elapsed().as_secs_f64() * 1000.0,
            total_images: self.image_count()?,
            indexing: self.jobs.busy(),
        })
    }

    /// Text embeddings through a small LRU cache: a repeated query (paging, a shared link, the
    /// UI's search-as-you-type settling on the same words) skips the text encoder.
    fn encode_texts(&self, texts: &[&str]) -> Result<Vec<Embedding>, clipsight_indexer::ClipError> {
        let mut out: Vec<Option<Embedding>> = {
            let mut cache = self.text_cache.lock().expect("text cache lock");
            texts.iter().map(|t| cache.get(*t).cloned()).collect()
        };
        let missing: Vec<&str> = texts.iter().zip(&out).filter(|(_, e)| e.is_none()).map(|(t, _)| *t).collect();
        if !missing.is_empty() {
            let fresh = self.clip.encode_texts(&missing)?;
            let mut cache = self.text_cache.lock().expect("text cache lock");
            let mut fresh = missing.iter().zip(fresh);
            for slot in out.iter_mut().filter(|e| e.is_none()) {
                let (text, embedding) = fresh.next().expect("one embedding per missing text");
                cache.put((*text).to_string(), embedding.clone());
                *slot = Some(embedding);
            }
        }
        Ok(out.into_iter().map(|e| e.expect("filled")).collect())
    }

    /// Images in the library (a key scan, cached per store epoch: cheap on every query).
    pub fn image_count(&self) -> Result<usize, ApiError> {
        let epoch = self.store.epoch()?;
        let mut cached = self.count.lock().expect("count lock");
        match *cached {
            Some((e, n)) if e == epoch => Ok(n),
            _ => {
                let n = self.store.count_files()?;
                *cached = Some((epoch, n));
                Ok(n)
            }
        }
    }

    /// The embedding of uploaded image bytes (413 for too many pixels, 422 for corrupt data).
    pub fn embed_upload(&self, bytes: &[u8]) -> Result<Embedding, ApiError> {
        let prepared = clipsight_indexer::pipeline::prepare_bytes(&self.clip, bytes).map_err(super::upload::prepare_error)?;
        Ok(self.clip.encode_images(&[prepared])?.remove(0))
    }

    /// Everything known about one image.
    pub fn image(&self, id: u64) -> Result<ImageView, ApiError> {
        let record = self.store.file(ImageId(id))?.ok_or_else(|| ApiError::not_found(format!("no image with id {id}")))?;
        let tags = self.store.tags(ImageId(id))?;
        Ok(ImageView::new(ImageId(id), &record, tags))
    }

    /// An image's thumbnail (JPEG).
    pub fn thumbnail(&self, id: u64) -> Result<Vec<u8>, ApiError> {
        self.store.thumbnail(ImageId(id))?.ok_or_else(|| ApiError::not_found(format!("no thumbnail for image {id}")))
    }

    /// The on-disk path of an image's original, only when it resolves (symlinks followed) inside
    /// one of the library's roots.
    pub fn original(&self, id: u64) -> Result<PathBuf, ApiError> {
        let record = self.store.file(ImageId(id))?.ok_or_else(|| ApiError::not_found(format!("no image with id {id}")))?;
        let gone = || ApiError::not_found(format!("the file of image {id} is no longer on disk"));
        let real = std::fs::canonicalize(record.path()).map_err(|_| gone())?;
        let roots = self.store.roots()?;
        // Roots are stored canonical, so a prefix test on the resolved path is exact.
        if !roots.iter().any(|root| real.starts_with(root)) {
            tracing::warn!("refused to serve {}: it resolves outside the indexed roots", real.display());
            return Err(ApiError::new(actix_web::http::StatusCode::FORBIDDEN, "outside_roots", format!("the file of image {id} resolves outside the indexed folders")));
        }
        if !real.is_file() {
            return Err(gone());
        }
        Ok(real)
    }

    /// Image → text for an indexed image: best corpus captions and tags.
    pub fn describe(&self, id: u64, k: usize) -> Result<DescribeResponse, ApiError> {
        let embedding = self
            .store
            .embedding(self.clip.id(), ImageId(id))?
            .ok_or_else(|| ApiError::not_found(format!("no image with id {id} in this library")))?;
        let captions = describe::best_captions(&self.store, &self.clip, &embedding, k)?;
        let tags = describe::Vocabulary::current(&self.store, &self.clip)?.score(&embedding);
        Ok(DescribeResponse {
            captions: captions.into_iter().map(Into::into).collect(),
            tags: tags.into_iter().take(k).map(Into::into).collect(),
        })
    }

    /// Zero-shot classification of an image over labels.
    pub fn classify(&self, image: &Embedding, labels: Vec<String>) -> Result<ClassifyResponse, ApiError> {
        let (probs, best) = describe::zero_shot(&self.clip, image, &labels)?;
        Ok(ClassifyResponse {
            best: labels[best].clone(),
            labels: labels.into_iter().zip(probs).map(|(label, prob)| LabelProbability { label, prob }).collect(),
        })
    }

    /// Cosines of indexed images × texts, and the InfoNCE loss of the pairs when square.
    pub fn matrix(&self, images: &[u64], texts: &[String]) -> Result<MatrixResponse, ApiError> {
        let mut rows = Vec::with_capacity(images.len());
        for id in images {
            rows.push(
                self.store
                    .embedding(self.clip.id(), ImageId(*id))?
                    .ok_or_else(|| ApiError::not_found(format!("no image with id {id} in this library")))?,
            );
        }
        let columns = self.clip.encode_texts(texts)?;
        let similarity = crate::eval::similarity(&rows, &columns);
        let loss = crate::eval::info_nce(&similarity, self.clip.logit_scale());
        Ok(MatrixResponse { similarity, loss })
    }

    /// Folder, camera, type and date values present in the library (cached per store epoch).
    pub fn facets(&self) -> Result<Facets, ApiError> {
        let epoch = self.store.epoch()?;
        if let Some((e, f)) = self.facets.lock().expect("facets lock").as_ref() {
            if *e == epoch {
                return Ok(f.clone());
            }
        }
        let roots = self.store.roots()?;
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
            cameras.extend(super::views::camera_name(&record.exif));
            types.insert(record.format.clone());
            dates.extend(record.exif.date_taken.map(|d| d.day()));
        }
        let facets = Facets {
            folders: folders.into_iter().collect(),
            cameras: cameras.into_iter().collect(),
            types: types.into_iter().collect(),
            date_min: dates.first().map(ToString::to_string),
            date_max: dates.last().map(ToString::to_string),
        };
        *self.facets.lock().expect("facets lock") = Some((epoch, facets.clone()));
        Ok(facets)
    }
}
