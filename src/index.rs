//! An indexing run: walk the roots, work out what changed against the store, embed what needs it
//! (through the indexer's pipeline) and commit batch by batch, so an interrupted run resumes.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clipsight_indexer::pipeline::{self, ContentHash, IndexedImage, KnownContent, Outcome, PipelineOptions, StageTimes};
use clipsight_indexer::annotations::{read_sidecars, Annotations};
use clipsight_indexer::pairs::{self, Pairing};
use clipsight_indexer::walk::{self, Candidate, WalkOptions};
use clipsight_indexer::{Encoder, ModelId};
use serde::Serialize;

use clipsight_indexer::format::MediaKind;

use crate::store::{path_to_bytes, AnnotationRecord, CompanionRecord, FileRecord, ImageId, Store, StoreError, VideoRecord};

/// One of `count` disjoint parts of the files, by a hash of their path (`--shard I/N`): several
/// indexers over one big folder, each taking its part, feed one shared collection. A file
/// renamed into another part leaves this one (its record is removed here) and is indexed there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This part, 0-based.
    pub index: u32,
    /// Parts in all.
    pub count: u32,
}

impl Default for Shard {
    /// All the files.
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl Shard {
    /// Whether the file at `path` is in this part (by the same hash as its row key).
    pub fn contains(&self, path: &[u8]) -> bool {
        self.count <= 1 || crate::ann::milvus::row_key(path) % u64::from(self.count) == u64::from(self.index)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = s.split_once('/').and_then(|(i, n)| Some((i.parse::<u32>().ok()?, n.parse::<u32>().ok()?)));
        match parsed {
            Some((index, count)) if count >= 1 && index < count => Ok(Self { index, count }),
            _ => Err(format!("{s:?} is not I/N with 0 ≤ I < N (e.g. 0/4)")),
        }
    }
}

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
    /// How videos are sampled into moments, and each file's time budget.
    pub video: clipsight_indexer::video::VideoOptions,
    /// Whether a RAW+JPEG pair or a Live Photo is one item listing both files.
    pub pairs: Pairing,
    /// Where the vectors go besides the store (the local graph, or a Milvus collection).
    pub home: crate::ann::VectorHome,
    /// The part of the files this library indexes.
    pub shard: Shard,
}

/// A file that could not be indexed, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FileError {
    /// The path (lossy for non-UTF-8 names).
    pub path: String,
    /// The reason.
    pub error: String,
}

/// A file indexed despite a problem with it (an EXIF date that is not a date), and the problem.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FileWarning {
    /// The path (lossy for non-UTF-8 names).
    pub path: String,
    /// What was wrong and what was done about it.
    pub warning: String,
}

/// What a run did; printed by `clipsight index --json`, and a finished job's summary.
#[derive(Debug, Clone, Serialize, Default, utoipa::ToSchema)]
pub struct IndexSummary {
    /// Image files found under the roots.
    pub scanned: usize,
    /// Files embedded (or given an existing embedding of identical content).
    pub indexed: usize,
    /// Files already in the library, unchanged.
    pub unchanged: usize,
    /// Files recognised at a new path by their content.
    pub moved: usize,
    /// Records removed because their files are gone (or are now listed beside another file).
    pub removed: usize,
    /// Files listed beside another file of the same picture (a RAW beside its JPEG twin, a Live
    /// Photo's motion video) instead of being items of their own.
    pub companions: usize,
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
    /// Seconds from the start of the run until its first new embedding was committed, when it
    /// committed one: from then on searches find the run's photos (automatic tags may follow).
    pub searchable_after_s: Option<f64>,
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

/// Indexes `options.roots` into `store` with `encoder`: plan (walk, compare with the store),
/// embed and commit batch by batch, finish (removals, the vector index). `progress(done,
/// total)` is called as files complete.
pub fn run(store: &Store, encoder: &dyn Encoder, options: &IndexOptions, progress: impl FnMut(usize, usize)) -> Result<IndexSummary, IndexError> {
    let started = Instant::now();
    let model = encoder.id();
    // A stopped or crashed run may have left photos untagged (see [`tag_untagged`]).
    let resumed = store.interrupted_run()?;
    let mut plan = plan(store, model, options)?;
    let mut vectors = crate::ann::writer(&options.home, store, model)?;
    let times = StageTimes::default();
    let run = embed_and_commit(store, encoder, options, &mut plan, vectors.wants_vectors(), &times, progress)?;
    if options.stop.as_ref().is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
        // The run-in-progress marker stays set; removals wait for a complete walk.
        vectors.apply(&run.added, &[])?;
        return Err(IndexError::Stopped { indexed: plan.summary.indexed });
    }
    let tagging = Instant::now();
    if resumed || (!run.tagged_inline && run.first_embedding_at.is_some()) {
        tag_untagged(store, encoder, options)?;
    }
    let tag_s = tagging.elapsed().as_secs_f64();
    let mut summary = finish(store, plan, vectors.as_mut(), &run.added)?;
    summary.searchable_after_s = run.first_embedding_at.map(|at| at.duration_since(started).as_secs_f64());
    summary.elapsed_s = started.elapsed().as_secs_f64();
    summary.images_per_s = if summary.elapsed_s > 0.0 { summary.indexed as f64 / summary.elapsed_s } else { 0.0 };
    summary.stages_s = times.seconds();
    summary.stages_s.push(("commit", run.commit_s));
    summary.stages_s.push(("tags", tag_s));
    Ok(summary)
}

/// What a run has to do, from the walk and the store, before anything is embedded.
struct Plan {
    /// Files that are new or changed (or all of them, for a full run), with their companions'
    /// sidecars among their own.
    todo: Vec<Candidate>,
    /// The companions of the run's items, by the path bytes of the file each is listed beside.
    companions: HashMap<Vec<u8>, Vec<CompanionRecord>>,
    /// Records under the roots whose files were not found, by content: moved if their content
    /// turns up elsewhere, else removed at the end.
    missing: HashMap<[u8; 32], Vec<(ImageId, FileRecord)>>,
    /// Counts so far (scanned, unchanged, walk errors), completed by the later stages.
    summary: IndexSummary,
}

/// Marks the run as started (roots, model, the run-in-progress marker that makes an interrupted
/// run resume), walks the roots and compares what is on disk with the store.
fn plan(store: &Store, model: ModelId, options: &IndexOptions) -> Result<Plan, IndexError> {
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

    let mut walked: HashSet<Vec<u8>> = HashSet::new();
    let mut files: Vec<Candidate> = Vec::new();
    for item in walk::walk(&roots, WalkOptions { hidden: options.hidden }) {
        match item {
            Err(issue) => summary.errors.push(FileError { path: issue.path.display().to_string(), error: issue.error }),
            Ok(c) => {
                summary.scanned += 1;
                // A file reached twice through a symlink is one file.
                if walked.insert(path_to_bytes(&c.path)) {
                    files.push(c);
                }
            }
        }
    }
    // The files that are items: a companion's old record (indexed when it stood alone) goes.
    let mut items: HashSet<Vec<u8>> = HashSet::new();
    let mut todo: Vec<Candidate> = Vec::new();
    let mut companions = HashMap::new();
    for item in pairs::group(files, options.pairs) {
        let key = path_to_bytes(&item.primary.path);
        if !options.shard.contains(&key) {
            continue;
        }
        let listed: Vec<CompanionRecord> = item.companions.iter().map(CompanionRecord::of).collect();
        summary.companions += listed.len();
        if !options.full && is_unchanged(store, model, &key, &item.primary, &listed)? {
            summary.unchanged += 1;
        } else {
            todo.push(Candidate { sidecars: item.sidecars(), ..item.primary });
        }
        if !listed.is_empty() {
            companions.insert(key.clone(), listed);
        }
        items.insert(key);
    }
    let mut missing: HashMap<[u8; 32], Vec<(ImageId, FileRecord)>> = HashMap::new();
    for item in store.files() {
        let (id, record) = item?;
        let path = record.path();
        if roots.iter().any(|r| path.starts_with(r)) && !items.contains(&record.path) {
            missing.entry(record.hash).or_default().push((id, record));
        }
    }
    Ok(Plan { todo, companions, missing, summary })
}

/// What the embed-and-commit stage leaves for the end of the run.
struct Committed {
    /// Embeddings written, when the vector index wants them.
    added: Vec<(ImageId, clipsight_indexer::Embedding)>,
    /// Seconds spent building and committing batches.
    commit_s: f64,
    /// When the first new embedding was committed.
    first_embedding_at: Option<Instant>,
    /// Whether new embeddings were tagged as they were committed (the vocabulary was cached).
    tagged_inline: bool,
}

/// Runs the plan's files through the pipeline and commits the outcomes batch by batch: new and
/// changed files embedded, moved, touched and copied ones recognised by content.
fn embed_and_commit(
    store: &Store,
    encoder: &dyn Encoder,
    options: &IndexOptions,
    plan: &mut Plan,
    collect_vectors: bool,
    times: &StageTimes,
    mut progress: impl FnMut(usize, usize),
) -> Result<Committed, IndexError> {
    let model = encoder.id();
    let todo = std::mem::take(&mut plan.todo);
    let total = todo.len();
    // Images are tagged as they are committed when the tag vocabulary is already embedded with
    // this model; otherwise embedding it (1,200 words × templates) would delay the first
    // searchable photo by most of a minute, so [`tag_untagged`] tags them after the photos.
    let vocabulary = crate::describe::Vocabulary::cached(store, encoder, &options.tag_vocabulary)?;
    let known = Known { store, model, missing: plan.missing.keys().copied().collect(), disabled: options.full };
    let mut writer = BatchWriter {
        store,
        model,
        companions: &plan.companions,
        next_id: store.next_image_id()?,
        pending: Vec::new(),
        batch_size: options.batch_size.max(1),
        vocabulary: vocabulary.as_ref(),
        added: collect_vectors.then(Vec::new),
        commit_s: 0.0,
        first_embedding_at: None,
    };
    let mut done = 0usize;
    let mut failure: Option<IndexError> = None;
    pipeline::run(encoder, todo, &known, PipelineOptions { batch_size: options.batch_size, stop: options.stop.as_deref(), video: options.video }, times, |outcome| {
        done += 1;
        progress(done, total);
        if failure.is_some() {
            return;
        }
        // Sidecars are read whatever became of the file: a sidecar edit alone is a change.
        let sidecar_of = |file: &Candidate, warnings: &mut Vec<FileWarning>| {
            let (sidecar, problems) = read_sidecars(&file.sidecars);
            warnings.extend(problems.into_iter().map(|warning| FileWarning { path: file.path.display().to_string(), warning }));
            sidecar
        };
        let result = match outcome {
            Outcome::Indexed(mut image) => {
                plan.summary.indexed += 1;
                let path = image.file.path.display().to_string();
                plan.summary.warnings.extend(std::mem::take(&mut image.warnings).into_iter().map(|warning| FileWarning { path: path.clone(), warning }));
                let sidecar = sidecar_of(&image.file, &mut plan.summary.warnings);
                writer.push(Pending::Indexed { image, sidecar })
            }
            Outcome::Known { file, hash } => match classify_known(store, model, &mut plan.missing, &file, hash) {
                Ok(KnownKind::Moved(id, old)) => {
                    plan.summary.moved += 1;
                    let sidecar = sidecar_of(&file, &mut plan.summary.warnings);
                    writer.push(Pending::Moved { id, old: Box::new(old), file, hash, sidecar })
                }
                Ok(KnownKind::Touched(id, old)) => {
                    plan.summary.unchanged += 1;
                    let sidecar = sidecar_of(&file, &mut plan.summary.warnings);
                    writer.push(Pending::Moved { id, old: Box::new(old), file, hash, sidecar })
                }
                Ok(KnownKind::Copy(source)) => {
                    plan.summary.indexed += 1;
                    let sidecar = sidecar_of(&file, &mut plan.summary.warnings);
                    writer.push(Pending::Copy { source, file, hash, sidecar })
                }
                Err(e) => Err(e),
            },
            Outcome::Failed { path, error } => {
                plan.summary.failed += 1;
                plan.summary.errors.push(FileError { path: path.display().to_string(), error });
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
    Ok(Committed { added: writer.added.unwrap_or_default(), commit_s: writer.commit_s, first_embedding_at: writer.first_embedding_at, tagged_inline: vocabulary.is_some() })
}

/// Tags the images that have no automatic tags yet — embedded by this run, or by a stopped one,
/// before the tag vocabulary was embedded with this model — embedding the vocabulary first when
/// it must be. Committed in batches; an interrupted pass is finished by the next run.
fn tag_untagged(store: &Store, encoder: &dyn Encoder, options: &IndexOptions) -> Result<(), IndexError> {
    let model = encoder.id();
    let untagged = store.untagged(model)?;
    if untagged.is_empty() {
        return Ok(());
    }
    let vocabulary = match crate::describe::Vocabulary::cached(store, encoder, &options.tag_vocabulary)? {
        Some(cached) => cached,
        None => {
            // Only texts follow: the image tower's memory goes back before the text tower loads,
            // so a first run's peak holds one tower, not two (issue 19).
            encoder.release_image_tower();
            crate::describe::Vocabulary::embed(store, encoder, &options.tag_vocabulary, true)?
        }
    };
    for ids in untagged.chunks(1024) {
        let mut changes = store.changes();
        for &id in ids {
            if let Some(embedding) = store.embedding(model, id)? {
                changes.put_tags(id, &vocabulary.auto_tags(&embedding));
            }
        }
        changes.commit()?;
    }
    Ok(())
}

/// Ends a complete run: records still missing are removed, the marker cleared, and the vector
/// index given the run's changes.
fn finish(store: &Store, plan: Plan, vectors: &mut dyn crate::ann::VectorWriter, added: &[(ImageId, clipsight_indexer::Embedding)]) -> Result<IndexSummary, IndexError> {
    let Plan { mut summary, missing, .. } = plan;
    let mut end = store.changes();
    let mut removed = Vec::new();
    for (_, records) in missing {
        for (id, record) in records {
            end.delete_image(id, &record)?;
            removed.push(id);
        }
    }
    summary.removed = removed.len();
    end.set_run_in_progress(false);
    end.commit()?;
    store.count_files()?; // remembered for this epoch: readers need not count
    vectors.apply(added, &removed)?;
    summary.failed = summary.errors.len();
    Ok(summary)
}

/// Whether the file at `path` is stored as it is on disk, with the same companions, and embedded.
fn is_unchanged(store: &Store, model: ModelId, path: &[u8], c: &Candidate, companions: &[CompanionRecord]) -> Result<bool, StoreError> {
    let Some(id) = store.id_by_path(path)? else { return Ok(false) };
    let Some(record) = store.file(id)? else { return Ok(false) };
    Ok(record.size == c.size && record.mtime_ns == c.mtime_ns && record.companions == companions && store.embedding(model, id)?.is_some())
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
    Indexed { image: Box<IndexedImage>, sidecar: Annotations },
    Moved { id: ImageId, old: Box<FileRecord>, file: Candidate, hash: ContentHash, sidecar: Annotations },
    Copy { source: ImageId, file: Candidate, hash: ContentHash, sidecar: Annotations },
}

/// Groups outcomes into one atomic commit per batch.
struct BatchWriter<'a> {
    store: &'a Store,
    /// The companions each committed file is listed with ([`Plan::companions`]).
    companions: &'a HashMap<Vec<u8>, Vec<CompanionRecord>>,
    vocabulary: Option<&'a crate::describe::Vocabulary>,
    model: ModelId,
    next_id: ImageId,
    pending: Vec<Pending>,
    batch_size: usize,
    /// Embeddings written by this run, for patching a persisted ANN graph.
    added: Option<Vec<(ImageId, clipsight_indexer::Embedding)>>,
    /// Seconds spent building and committing batches.
    commit_s: f64,
    /// When the first batch with a new embedding was committed: the library became searchable.
    first_embedding_at: Option<Instant>,
}

impl BatchWriter<'_> {
    fn push(&mut self, p: Pending) -> Result<(), IndexError> {
        self.pending.push(p);
        if self.pending.len() >= self.batch_size {
            self.flush()?;
        }
        Ok(())
    }

    /// The companions the file at `path` is listed with in this run.
    fn companions_of(&self, path: &[u8]) -> Vec<CompanionRecord> {
        self.companions.get(path).cloned().unwrap_or_default()
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
        let mut embedded = false;
        for p in std::mem::take(&mut self.pending) {
            match p {
                Pending::Indexed { image, sidecar } => {
                    let (id, previous) = self.allocate(&image.file.path)?;
                    let previous_was_video = previous.as_ref().is_some_and(|old| old.kind() == MediaKind::Video);
                    if let Some(old) = previous {
                        changes.unindex_record(id, &old);
                    }
                    let path = path_to_bytes(&image.file.path);
                    let record = FileRecord {
                        companions: self.companions_of(&path),
                        path,
                        size: image.file.size,
                        mtime_ns: image.file.mtime_ns,
                        hash: image.hash.0,
                        width: image.width,
                        height: image.height,
                        format: image.file.format.name().to_string(),
                        exif: image.exif.clone(),
                        indexed_at: now,
                    };
                    changes.put_image(id, &record, self.model, &image.embedding, &image.thumbnail);
                    changes.put_annotations(id, &AnnotationRecord { embedded: image.annotations.clone(), sidecar });
                    match &image.video {
                        Some(video) => {
                            let facts = VideoRecord { duration_ms: video.duration_ms, moments_ms: video.moments.iter().map(|m| m.at_ms).collect() };
                            let moments: Vec<_> = video.moments.iter().map(|m| m.embedding.clone()).collect();
                            changes.put_video(id, &facts, self.model, &moments);
                        }
                        None if previous_was_video => changes.delete_video(id)?,
                        None => {}
                    }
                    embedded = true;
                    if let Some(v) = self.vocabulary {
                        changes.put_tags(id, &v.auto_tags(&image.embedding));
                    }
                    if let Some(added) = &mut self.added {
                        added.push((id, image.embedding.clone()));
                    }
                }
                Pending::Moved { id, old, file, hash, sidecar } => {
                    changes.unindex_record(id, &old);
                    let path = path_to_bytes(&file.path);
                    let record = FileRecord { companions: self.companions_of(&path), path, size: file.size, mtime_ns: file.mtime_ns, hash: hash.0, ..*old };
                    changes.put_record(id, &record);
                    changes.put_annotations(id, &AnnotationRecord { embedded: self.store.annotations(id)?.embedded, sidecar });
                }
                Pending::Copy { source, file, hash, sidecar } => {
                    let (Some(src), Some(embedding)) = (self.store.file(source)?, self.store.embedding(self.model, source)?) else {
                        continue;
                    };
                    let thumbnail = self.store.thumbnail(source)?.unwrap_or_default();
                    let (id, previous) = self.allocate(&file.path)?;
                    if let Some(old) = &previous {
                        changes.unindex_record(id, old);
                    }
                    let path = path_to_bytes(&file.path);
                    let record = FileRecord { companions: self.companions_of(&path), path, size: file.size, mtime_ns: file.mtime_ns, hash: hash.0, indexed_at: now, ..src };
                    changes.put_image(id, &record, self.model, &embedding, &thumbnail);
                    // The same content: the same embedded annotations and moments.
                    changes.put_annotations(id, &AnnotationRecord { embedded: self.store.annotations(source)?.embedded, sidecar });
                    match (self.store.video(source)?, self.store.moments(self.model, source)?) {
                        (Some(video), moments) => changes.put_video(id, &video, self.model, moments.unwrap_or_default().as_slice()),
                        _ if previous.is_some_and(|old| old.kind() == MediaKind::Video) => changes.delete_video(id)?,
                        _ => {}
                    }
                    embedded = true;
                    if let Some(v) = self.vocabulary {
                        changes.put_tags(id, &v.auto_tags(&embedding));
                    }
                    if let Some(added) = &mut self.added {
                        added.push((id, embedding));
                    }
                }
            }
        }
        changes.set_next_image_id(self.next_id);
        changes.commit()?;
        if embedded && self.first_embedding_at.is_none() {
            self.first_embedding_at = Some(Instant::now());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Planning, committing and resuming runs, with a model-free encoder: no ONNX Runtime.

    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use clipsight_indexer::HashEncoder;

    use super::*;
    use crate::store::OpenMode;

    fn png(path: &Path, rgb: [u8; 3]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::RgbImage::from_fn(32, 24, |x, y| image::Rgb([rgb[0] ^ (x as u8), rgb[1], rgb[2] ^ (y as u8)])).save(path).unwrap();
    }

    #[test]
    fn shards_split_the_files_into_disjoint_parts_that_cover_them_all() {
        let shards: Vec<Shard> = (0..3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        for n in 0..300 {
            let path = format!("/photos/{n}.jpg");
            assert_eq!(shards.iter().filter(|s| s.contains(path.as_bytes())).count(), 1, "{path}");
        }
        let sizes: Vec<usize> = shards.iter().map(|s| (0..300).filter(|n| s.contains(format!("/photos/{n}.jpg").as_bytes())).count()).collect();
        assert!(sizes.iter().all(|&n| n > 70), "roughly even: {sizes:?}");
        assert!(Shard::default().contains(b"/any"));
        for bad in ["3/3", "1", "a/b", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    fn options(root: &Path) -> IndexOptions {
        IndexOptions { roots: vec![root.to_path_buf()], hidden: false, full: false, batch_size: 2, tag_vocabulary: vec!["cat".into(), "dog".into()], stop: None, video: Default::default(), pairs: Pairing::Together, home: Default::default(), shard: Default::default() }
    }

    fn counts(s: &IndexSummary) -> [usize; 6] {
        [s.scanned, s.indexed, s.unchanged, s.moved, s.removed, s.failed]
    }

    #[test]
    fn a_run_tells_new_unchanged_moved_copied_changed_and_removed_files_apart() {
        let (photos, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let p = |name: &str| photos.path().join(name);
        for (name, rgb) in [("a.png", [200, 0, 0]), ("b.png", [0, 200, 0]), ("c.png", [0, 0, 200]), ("d.png", [90, 90, 90])] {
            png(&p(name), rgb);
        }
        std::fs::write(p("broken.png"), b"not a png").unwrap();
        let store = Store::open(data.path(), OpenMode::ReadWrite).unwrap();
        let encoder = HashEncoder::new(ModelId([7; 16]));

        let first = run(&store, &encoder, &options(photos.path()), |_, _| {}).unwrap();
        assert_eq!(counts(&first), [4, 4, 0, 0, 0, 1], "four new images; one file that is no image, reported");
        assert!(first.errors[0].path.ends_with("broken.png"));
        let a_id = store.id_by_path(&path_to_bytes(&std::fs::canonicalize(p("a.png")).unwrap())).unwrap().unwrap();

        let again = run(&store, &encoder, &options(photos.path()), |_, _| {}).unwrap();
        assert_eq!(counts(&again), [4, 0, 4, 0, 0, 1], "nothing changed (the broken file is tried again)");

        std::fs::create_dir(p("sub")).unwrap();
        std::fs::rename(p("a.png"), p("sub/a-moved.png")).unwrap();
        std::fs::copy(p("b.png"), p("b-copy.png")).unwrap();
        png(&p("c.png"), [250, 250, 0]);
        std::fs::remove_file(p("d.png")).unwrap();
        std::fs::remove_file(p("broken.png")).unwrap();
        let changed = run(&store, &encoder, &options(photos.path()), |_, _| {}).unwrap();
        assert_eq!(counts(&changed), [4, 2, 1, 1, 1, 0], "b unchanged; c changed and b's copy new; a moved; d removed");

        let moved = std::fs::canonicalize(p("sub/a-moved.png")).unwrap();
        assert_eq!(store.id_by_path(&path_to_bytes(&moved)).unwrap(), Some(a_id), "a moved file keeps its id");
        assert_eq!(store.count_files().unwrap(), 4);
        let report = crate::check::check(&store, encoder.id()).unwrap();
        assert!(report.problems.is_empty() && !report.interrupted_run, "{report:?}");
    }

    #[test]
    fn a_stopped_run_commits_what_it_did_and_the_next_run_resumes() {
        let (photos, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for i in 0..6u8 {
            png(&photos.path().join(format!("{i}.png")), [i * 40, 255 - i * 40, i]);
        }
        let store = Store::open(data.path(), OpenMode::ReadWrite).unwrap();
        let encoder = HashEncoder::new(ModelId([7; 16]));
        let stop = Arc::new(AtomicBool::new(true));
        let stopped = run(&store, &encoder, &IndexOptions { stop: Some(stop), ..options(photos.path()) }, |_, _| {});
        assert!(matches!(stopped, Err(IndexError::Stopped { .. })), "{stopped:?}");
        assert!(store.interrupted_run().unwrap(), "the marker stays until a run completes");
        let committed = store.count_files().unwrap();

        let resumed = run(&store, &encoder, &options(photos.path()), |_, _| {}).unwrap();
        assert_eq!(resumed.indexed + committed, 6, "what the stopped run committed is not redone");
        assert_eq!(resumed.removed, 0);
        assert!(!store.interrupted_run().unwrap());
        assert_eq!(store.count_embeddings(encoder.id()).unwrap(), 6);
    }

    /// A [`HashEncoder`] that records which tower was asked, in order.
    struct Recording {
        inner: HashEncoder,
        calls: std::sync::Mutex<Vec<&'static str>>,
    }

    impl Encoder for Recording {
        fn id(&self) -> ModelId {
            self.inner.id()
        }
        fn dim(&self) -> usize {
            self.inner.dim()
        }
        fn scoring(&self) -> clipsight_indexer::clip::Scoring {
            self.inner.scoring()
        }
        fn preprocess(&self) -> &clipsight_indexer::clip::PreprocessConfig {
            self.inner.preprocess()
        }
        fn encode_images(&self, images: &[clipsight_indexer::clip::PreparedImage]) -> Result<Vec<clipsight_indexer::Embedding>, clipsight_indexer::ClipError> {
            self.calls.lock().unwrap().push("images");
            self.inner.encode_images(images)
        }
        fn encode_texts_in(&self, texts: &[&str], language: Option<clipsight_indexer::clip::Language>) -> Result<Vec<clipsight_indexer::Embedding>, clipsight_indexer::ClipError> {
            self.calls.lock().unwrap().push("texts");
            self.inner.encode_texts_in(texts, language)
        }
        fn release_image_tower(&self) {
            self.calls.lock().unwrap().push("release images");
        }
        fn family(&self) -> Result<clipsight_indexer::clip::Family, clipsight_indexer::ClipError> {
            self.inner.family()
        }
    }

    #[test]
    fn photos_are_searchable_before_the_tag_vocabulary_is_embedded_and_are_tagged_in_the_same_run() {
        let (photos, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for i in 0..5u8 {
            png(&photos.path().join(format!("{i}.png")), [i * 50, 100, 255 - i * 50]);
        }
        let store = Store::open(data.path(), OpenMode::ReadWrite).unwrap();
        let encoder = Recording { inner: HashEncoder::new(ModelId([7; 16])), calls: Default::default() };
        let first = run(&store, &encoder, &options(photos.path()), |_, _| {}).unwrap();
        let calls = encoder.calls.lock().unwrap().clone();
        let first_text = calls.iter().position(|c| *c == "texts").expect("the vocabulary is embedded");
        assert!(calls[..first_text - 1].iter().all(|c| *c == "images") && !calls[first_text..].contains(&"images"), "every photo before the vocabulary: {calls:?}");
        assert_eq!(calls[first_text - 1], "release images", "the image tower is let go before the text tower loads: {calls:?}");
        let searchable = first.searchable_after_s.expect("the run committed embeddings");
        assert!(searchable <= first.elapsed_s, "{first:?}");
        assert!(store.untagged(encoder.id()).unwrap().is_empty(), "every photo tagged by the end of the run");

        // With the vocabulary cached, new photos are tagged as they are committed.
        png(&photos.path().join("new.png"), [9, 9, 9]);
        encoder.calls.lock().unwrap().clear();
        let second = run(&store, &encoder, &options(photos.path()), |_, _| {}).unwrap();
        assert_eq!(second.indexed, 1);
        assert_eq!(*encoder.calls.lock().unwrap(), vec!["images"], "the cached vocabulary is not embedded again");
        assert!(store.untagged(encoder.id()).unwrap().is_empty());
    }

    #[test]
    fn photos_a_stopped_run_left_untagged_are_tagged_by_the_next_run() {
        let (photos, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        png(&photos.path().join("a.png"), [200, 10, 10]);
        let store = Store::open(data.path(), OpenMode::ReadWrite).unwrap();
        let encoder = HashEncoder::new(ModelId([7; 16]));
        // What a run stopped between its photos and its tags leaves: an embedded, untagged image.
        let mut changes = store.changes();
        let record = FileRecord::synthetic("/elsewhere/x.png", [1; 32], "png");
        changes.put_image(ImageId(1), &record, encoder.id(), &encoder.encode_texts(&["x"]).unwrap().remove(0), b"");
        changes.set_next_image_id(ImageId(2));
        changes.set_run_in_progress(true);
        changes.commit().unwrap();
        // The vocabulary is cached, so only the interrupted run's marker can send the next run
        // looking for untagged photos.
        crate::describe::Vocabulary::load(&store, &encoder, &options(photos.path()).tag_vocabulary, true).unwrap();
        assert_eq!(store.untagged(encoder.id()).unwrap(), vec![ImageId(1)]);

        run(&store, &encoder, &options(photos.path()), |_, _| {}).unwrap();
        assert!(store.untagged(encoder.id()).unwrap().is_empty(), "the next run tags what was left");
    }

    /// Bytes a camera's RAW (Fujifilm's) and a QuickTime movie start with: enough for the walk to
    /// know them; as companions they are never decoded.
    const RAF: &[u8] = b"FUJIFILMCCD-RAW 0201FF383501";
    const MOV: &[u8] = b"\0\0\0\x14ftypqt  \0\0\0\0qt  \0\0\0\x08wide";

    fn companions_of(store: &Store, path: &Path) -> Vec<String> {
        let id = store.id_by_path(&path_to_bytes(&std::fs::canonicalize(path).unwrap())).unwrap().expect("an item");
        store.file(id).unwrap().unwrap().companions.iter().map(|c| c.path().file_name().unwrap().to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn a_raw_and_a_live_photo_are_listed_with_their_still_and_follow_its_files() {
        let (photos, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let p = |name: &str| photos.path().join(name);
        png(&p("IMG_1.png"), [200, 0, 0]);
        std::fs::write(p("IMG_1.RAF"), RAF).unwrap();
        png(&p("IMG_2.png"), [0, 200, 0]);
        std::fs::write(p("IMG_2.MOV"), MOV).unwrap();
        png(&p("lone.png"), [0, 0, 200]);
        let store = Store::open(data.path(), OpenMode::ReadWrite).unwrap();
        let encoder = HashEncoder::new(ModelId([7; 16]));

        let first = run(&store, &encoder, &options(photos.path()), |_, _| {}).unwrap();
        assert_eq!((counts(&first), first.companions), ([5, 3, 0, 0, 0, 0], 2), "three items; the RAW and the movie are listed, not decoded");
        assert_eq!(store.count_files().unwrap(), 3);
        assert_eq!(companions_of(&store, &p("IMG_1.png")), ["IMG_1.RAF"]);
        assert_eq!(companions_of(&store, &p("IMG_2.png")), ["IMG_2.MOV"]);
        let record = store.file(store.id_by_path(&path_to_bytes(&std::fs::canonicalize(p("IMG_1.png")).unwrap())).unwrap().unwrap()).unwrap().unwrap();
        assert!(crate::search::parse("type:raf").unwrap().filters.matches(&record), "type: finds a RAW listed with its twin");
        let again = run(&store, &encoder, &options(photos.path()), |_, _| {}).unwrap();
        assert_eq!(counts(&again), [5, 0, 3, 0, 0, 0], "nothing changed");

        // What darktable wrote beside the RAW belongs to the item: an edit of it rereads it.
        std::fs::write(p("IMG_1.RAF.xmp"), r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:subject><rdf:Bag><rdf:li>lighthouse</rdf:li></rdf:Bag></dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>"#).unwrap();
        let annotated = run(&store, &encoder, &options(photos.path()), |_, _| {}).unwrap();
        assert_eq!(counts(&annotated), [5, 0, 3, 0, 0, 0], "{annotated:?}");
        let still = store.id_by_path(&path_to_bytes(&std::fs::canonicalize(p("IMG_1.png")).unwrap())).unwrap().unwrap();
        assert_eq!(store.annotations(still).unwrap().combined().keywords, ["lighthouse"]);

        // A changed companion updates its item's record without re-embedding the still; one
        // that is gone leaves its item's list.
        std::fs::write(p("IMG_1.RAF"), [RAF, b"more bytes"].concat()).unwrap();
        std::fs::remove_file(p("IMG_2.MOV")).unwrap();
        let changed = run(&store, &encoder, &options(photos.path()), |_, _| {}).unwrap();
        assert_eq!(counts(&changed), [4, 0, 3, 0, 0, 0], "{changed:?}");
        let id = store.id_by_path(&path_to_bytes(&std::fs::canonicalize(p("IMG_1.png")).unwrap())).unwrap().unwrap();
        assert_eq!(store.file(id).unwrap().unwrap().companions[0].size, (RAF.len() + 10) as u64);
        assert!(companions_of(&store, &p("IMG_2.png")).is_empty());

        // Separate: the RAW is an item of its own (this one is only a header, so it is reported).
        let separate = run(&store, &encoder, &IndexOptions { pairs: Pairing::Separate, ..options(photos.path()) }, |_, _| {}).unwrap();
        assert_eq!((separate.failed, separate.companions), (1, 0), "{separate:?}");
        assert!(companions_of(&store, &p("IMG_1.png")).is_empty());
        let report = crate::check::check(&store, encoder.id()).unwrap();
        assert!(report.problems.is_empty(), "{report:?}");
    }

    #[test]
    fn a_full_run_re_embeds_everything_and_keeps_ids() {
        let (photos, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        png(&photos.path().join("x.png"), [1, 2, 3]);
        let store = Store::open(data.path(), OpenMode::ReadWrite).unwrap();
        let encoder = HashEncoder::new(ModelId([7; 16]));
        run(&store, &encoder, &options(photos.path()), |_, _| {}).unwrap();
        let full = run(&store, &encoder, &IndexOptions { full: true, ..options(photos.path()) }, |_, _| {}).unwrap();
        assert_eq!(counts(&full), [1, 1, 0, 0, 0, 0]);
        assert_eq!(store.files().map(|f| f.unwrap().0).collect::<Vec<_>>(), vec![ImageId(1)]);
    }
}
