//! An indexing run: walk the roots, work out what changed against the store, embed what needs it
//! (through the indexer's pipeline) and commit batch by batch, so an interrupted run resumes.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clipsight_indexer::pipeline::{self, ContentHash, IndexedImage, KnownContent, Outcome, PipelineOptions, StageTimes};
use clipsight_indexer::walk::{self, Candidate, WalkOptions};
use clipsight_indexer::{Clip, ModelId};
use serde::Serialize;

use crate::store::{path_to_bytes, FileRecord, ImageId, Store, StoreError};

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// Folders to index.
    pub roots: Vec<PathBuf>,
    /// Include hidden files and folders.
    pub hidden: bool,
    /// Re-embed every file, changed or not.
    pub full: bool,
    /// Images per encoder batch and per database commit.
    pub batch_size: usize,
    /// Tags scored for automatic tagging (see [`crate::describe::vocabulary_words`]).
    pub tag_vocabulary: Vec<String>,
    /// Set to true to end the run early (after the images in flight are committed); the run
    /// then returns [`IndexError::Stopped`] and the next one resumes.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// A file that could not be indexed, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileError {
    /// The path (lossy for non-UTF-8 names).
    pub path: String,
    /// The reason.
    pub error: String,
}

/// A file indexed despite a problem with it (an EXIF date that is not a date), and the problem.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileWarning {
    /// The path (lossy for non-UTF-8 names).
    pub path: String,
    /// What was wrong and what was done about it.
    pub warning: String,
}

/// What a run did; printed by `clipsight index --json`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct IndexSummary {
    /// Image files found under the roots.
    pub scanned: usize,
    /// Files embedded (or given an existing embedding of identical content).
    pub indexed: usize,
    /// Files already in the library, unchanged.
    pub unchanged: usize,
    /// Files recognised at a new path by their content.
    pub moved: usize,
    /// Records removed because their files are gone.
    pub removed: usize,
    /// Files that could not be indexed.
    pub failed: usize,
    /// The failures, with reasons.
    pub errors: Vec<FileError>,
    /// Files indexed with a problem in their metadata.
    pub warnings: Vec<FileWarning>,
    /// Wall time of the run.
    pub elapsed_s: f64,
    /// Files indexed per second of wall time.
    pub images_per_s: f64,
    /// Seconds spent per pipeline stage (summed over threads).
    #[serde(skip)]
    pub stages_s: Vec<(&'static str, f64)>,
}

/// Errors that stop a run (a bad file does not).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A root does not exist.
    #[error("{}: {source}", path.display())]
    Root {
        /// The root.
        path: PathBuf,
        /// Why it is unusable.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] clipsight_indexer::ClipError),
    /// The tag vocabulary could not be prepared.
    #[error(transparent)]
    Describe(#[from] crate::describe::DescribeError),
    /// The ANN graph could not be updated.
    #[error(transparent)]
    Ann(#[from] crate::ann::AnnError),
    /// Stopped on request before the end; what was done is committed and the next run resumes.
    #[error("indexing stopped before the end ({indexed} images committed); the next run resumes")]
    Stopped {
        /// Images committed before the stop.
        indexed: usize,
    },
}

/// Indexes `options.roots` into `store` with `clip`. `progress(done, total)` is called as files
/// complete.
pub fn run(store: &Store, clip: &Clip, options: &IndexOptions, mut progress: impl FnMut(usize, usize)) -> Result<IndexSummary, IndexError> {
    let started = Instant::now();
    let model = clip.id();
    let roots = options
        .roots
        .iter()
        .map(|r| std::fs::canonicalize(r).map_err(|source| IndexError::Root { path: r.clone(), source }))
        .collect::<Result<Vec<_>, _>>()?;
    if store.interrupted_run()? {
        tracing::info!("resuming an interrupted indexing run");
    }
    let mut summary = IndexSummary::default();
    let mut begin = store.changes();
    let mut all_roots = store.roots()?;
    for r in &roots {
        if !all_roots.contains(r) {
            all_roots.push(r.clone());
        }
    }
    begin.set_roots(&all_roots);
    begin.set_active_model(model);
    begin.set_run_in_progress(true);
    begin.commit()?;
    let start_epoch = store.epoch()?;

    // What is on disk, and what of it is new or changed.
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut todo: Vec<Candidate> = Vec::new();
    for item in walk::walk(&roots, WalkOptions { hidden: options.hidden }) {
        match item {
            Err(issue) => summary.errors.push(FileError { path: issue.path.display().to_string(), error: issue.error }),
            Ok(c) => {
                summary.scanned += 1;
                let key = path_to_bytes(&c.path);
                if !seen.insert(key.clone()) {
                    continue; // reached twice through a symlink
                }
                if !options.full && is_unchanged(store, model, &key, &c)? {
                    summary.unchanged += 1;
                } else {
                    todo.push(c);
                }
            }
        }
    }
    // Records under these roots whose files were not found: moved (if their content turns up
    // elsewhere) or removed.
    let mut missing: HashMap<[u8; 32], Vec<(ImageId, FileRecord)>> = HashMap::new();
    for item in store.files() {
        let (id, record) = item?;
        let path = record.path();
        if roots.iter().any(|r| path.starts_with(r)) && !seen.contains(&record.path) {
            missing.entry(record.hash).or_default().push((id, record));
        }
    }

    let total = todo.len();
    // Automatic tags need the tag vocabulary embedded with this model (cached in the store).
    let vocabulary = if total > 0 {
        Some(crate::describe::Vocabulary::load(store, clip, &options.tag_vocabulary, true)?)
    } else {
        None
    };
    let known = Known { store, model, missing: missing.keys().copied().collect(), disabled: options.full };
    let times = StageTimes::default();
    let mut writer = BatchWriter {
        store,
        model,
        next_id: store.next_image_id()?,
        pending: Vec::new(),
        batch_size: options.batch_size.max(1),
        vocabulary: vocabulary.as_ref(),
        // Only collected when a persisted graph exists to be patched.
        added: crate::ann::AnnIndex::manifest(&crate::ann::dir_of(store), model).map(|_| Vec::new()),
        commit_s: 0.0,
    };
    let mut done = 0usize;
    let mut failure: Option<IndexError> = None;
    pipeline::run(clip, todo, &known, PipelineOptions { batch_size: options.batch_size, stop: options.stop.as_deref() }, &times, |outcome| {
        done += 1;
        progress(done, total);
        if failure.is_some() {
            return;
        }
        let result = match outcome {
            Outcome::Indexed(mut image) => {
                summary.indexed += 1;
                let path = image.file.path.display().to_string();
                summary.warnings.extend(std::mem::take(&mut image.warnings).into_iter().map(|warning| FileWarning { path: path.clone(), warning }));
                writer.push(Pending::Indexed(Box::new(image)))
            }
            Outcome::Known { file, hash } => match classify_known(store, model, &mut missing, &file, hash) {
                Ok(KnownKind::Moved(id, old)) => {
                    summary.moved += 1;
                    writer.push(Pending::Moved { id, old: Box::new(old), file, hash })
                }
                Ok(KnownKind::Touched(id, old)) => {
                    summary.unchanged += 1;
                    writer.push(Pending::Moved { id, old: Box::new(old), file, hash })
                }
                Ok(KnownKind::Copy(source)) => {
                    summary.indexed += 1;
                    writer.push(Pending::Copy { source, file, hash })
                }
                Err(e) => Err(e),
            },
            Outcome::Failed { path, error } => {
                summary.failed += 1;
                summary.errors.push(FileError { path: path.display().to_string(), error });
                Ok(())
            }
        };
        if let Err(e) = result {
            failure = Some(e);
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    writer.flush()?;
    if options.stop.as_ref().is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
        // The run-in-progress marker stays set; removals wait for a complete walk.
        if let Some(added) = &writer.added {
            crate::ann::update(store, model, start_epoch, added, &[])?;
        }
        return Err(IndexError::Stopped { indexed: summary.indexed });
    }

    let mut end = store.changes();
    let mut removed = Vec::new();
    for (_, records) in missing {
        for (id, record) in records {
            end.delete_image(id, &record);
            removed.push(id);
        }
    }
    summary.removed = removed.len();
    end.set_run_in_progress(false);
    end.commit()?;
    if let Some(added) = &writer.added {
        crate::ann::update(store, model, start_epoch, added, &removed)?;
    }

    summary.failed = summary.errors.len();
    summary.elapsed_s = started.elapsed().as_secs_f64();
    summary.images_per_s = if summary.elapsed_s > 0.0 { summary.indexed as f64 / summary.elapsed_s } else { 0.0 };
    summary.stages_s = times.seconds();
    summary.stages_s.push(("commit", writer.commit_s));
    Ok(summary)
}

fn is_unchanged(store: &Store, model: ModelId, path: &[u8], c: &Candidate) -> Result<bool, StoreError> {
    let Some(id) = store.id_by_path(path)? else { return Ok(false) };
    let Some(record) = store.file(id)? else { return Ok(false) };
    Ok(record.size == c.size && record.mtime_ns == c.mtime_ns && store.embedding(model, id)?.is_some())
}

/// Content the pipeline need not decode: it belongs to a missing record (a move) or already has
/// an embedding for this model (a duplicate or a touched file).
struct Known<'a> {
    store: &'a Store,
    model: ModelId,
    missing: HashSet<[u8; 32]>,
    disabled: bool,
}

impl KnownContent for Known<'_> {
    fn is_known(&self, hash: &ContentHash) -> bool {
        if self.disabled {
            return false;
        }
        self.missing.contains(&hash.0)
            || self.store.ids_by_hash(&hash.0).is_ok_and(|ids| {
                ids.iter().any(|id| self.store.embedding(self.model, *id).is_ok_and(|e| e.is_some()))
            })
    }
}

enum KnownKind {
    /// A missing record's file, found at a new path.
    Moved(ImageId, FileRecord),
    /// Same path, same content, new mtime.
    Touched(ImageId, FileRecord),
    /// New path with the content of an existing image.
    Copy(ImageId),
}

fn classify_known(
    store: &Store,
    model: ModelId,
    missing: &mut HashMap<[u8; 32], Vec<(ImageId, FileRecord)>>,
    file: &Candidate,
    hash: ContentHash,
) -> Result<KnownKind, IndexError> {
    if let Some(id) = store.id_by_path(&path_to_bytes(&file.path))? {
        if let Some(old) = store.file(id)? {
            if old.hash == hash.0 {
                return Ok(KnownKind::Touched(id, old));
            }
        }
    }
    if let Some(list) = missing.get_mut(&hash.0) {
        if let Some((id, old)) = list.pop() {
            if list.is_empty() {
                missing.remove(&hash.0);
            }
            return Ok(KnownKind::Moved(id, old));
        }
    }
    for id in store.ids_by_hash(&hash.0)? {
        if store.embedding(model, id)?.is_some() {
            return Ok(KnownKind::Copy(id));
        }
    }
    Err(IndexError::Store(StoreError::Corrupt(format!("content of {} vanished during the run", file.path.display()))))
}

enum Pending {
    Indexed(Box<IndexedImage>),
    Moved { id: ImageId, old: Box<FileRecord>, file: Candidate, hash: ContentHash },
    Copy { source: ImageId, file: Candidate, hash: ContentHash },
}

/// Groups outcomes into one atomic commit per batch.
struct BatchWriter<'a> {
    store: &'a Store,
    vocabulary: Option<&'a crate::describe::Vocabulary>,
    model: ModelId,
    next_id: ImageId,
    pending: Vec<Pending>,
    batch_size: usize,
    /// Embeddings written by this run, for patching a persisted ANN graph.
    added: Option<Vec<(ImageId, clipsight_indexer::Embedding)>>,
    /// Seconds spent building and committing batches.
    commit_s: f64,
}

impl BatchWriter<'_> {
    fn push(&mut self, p: Pending) -> Result<(), IndexError> {
        self.pending.push(p);
        if self.pending.len() >= self.batch_size {
            self.flush()?;
        }
        Ok(())
    }

    fn allocate(&mut self, path: &Path) -> Result<(ImageId, Option<FileRecord>), StoreError> {
        if let Some(id) = self.store.id_by_path(&path_to_bytes(path))? {
            return Ok((id, self.store.file(id)?));
        }
        let id = self.next_id;
        self.next_id = ImageId(id.0 + 1);
        Ok((id, None))
    }

    fn flush(&mut self) -> Result<(), IndexError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let result = self.write_pending();
        self.commit_s += started.elapsed().as_secs_f64();
        result
    }

    fn write_pending(&mut self) -> Result<(), IndexError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut changes = self.store.changes();
        for p in std::mem::take(&mut self.pending) {
            match p {
                Pending::Indexed(image) => {
                    let (id, previous) = self.allocate(&image.file.path)?;
                    if let Some(old) = previous {
                        changes.unindex_record(id, &old);
                    }
                    let record = FileRecord {
                        path: path_to_bytes(&image.file.path),
                        size: image.file.size,
                        mtime_ns: image.file.mtime_ns,
                        hash: image.hash.0,
                        width: image.width,
                        height: image.height,
                        format: walk::format_name(image.file.format).to_string(),
                        exif: image.exif.clone(),
                        indexed_at: now,
                    };
                    changes.put_image(id, &record, self.model, &image.embedding, &image.thumbnail);
                    if let Some(v) = self.vocabulary {
                        changes.put_tags(id, &v.auto_tags(&image.embedding));
                    }
                    if let Some(added) = &mut self.added {
                        added.push((id, image.embedding.clone()));
                    }
                }
                Pending::Moved { id, old, file, hash } => {
                    changes.unindex_record(id, &old);
                    let record = FileRecord { path: path_to_bytes(&file.path), size: file.size, mtime_ns: file.mtime_ns, hash: hash.0, ..*old };
                    changes.put_record(id, &record);
                }
                Pending::Copy { source, file, hash } => {
                    let (Some(src), Some(embedding)) = (self.store.file(source)?, self.store.embedding(self.model, source)?) else {
                        continue;
                    };
                    let thumbnail = self.store.thumbnail(source)?.unwrap_or_default();
                    let (id, previous) = self.allocate(&file.path)?;
                    if let Some(old) = previous {
                        changes.unindex_record(id, &old);
                    }
                    let record = FileRecord { path: path_to_bytes(&file.path), size: file.size, mtime_ns: file.mtime_ns, hash: hash.0, indexed_at: now, ..src };
                    changes.put_image(id, &record, self.model, &embedding, &thumbnail);
                    changes.put_tags(id, &self.store.tags(source)?);
                    if let Some(added) = &mut self.added {
                        added.push((id, embedding));
                    }
                }
            }
        }
        changes.set_next_image_id(self.next_id);
        changes.commit()?;
        Ok(())
    }
}
