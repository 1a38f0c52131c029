//! The library's RocksDB database: the only code that touches RocksDB.
//!
//! Layout of a data directory:
//! ```text
//! DATA/db/           RocksDB (column families in clipsight_migrations::cf)
//! DATA/writer.lock   held (flock) by the one process allowed to write; contains its pid
//! ```
//! Writes that belong together go through one [`Changes`] (a RocksDB WriteBatch).

mod records;
mod remote;
#[cfg(test)]
pub mod test_support;

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clipsight_indexer::{Embedding, ModelId};
use clipsight_migrations::{cf, COLUMN_FAMILIES};
use rocksdb::{ColumnFamily, IteratorMode, Options, WriteBatch, DB};

pub use remote::RemoteRow;
pub use records::{path_from_bytes, path_to_bytes, AnnotationRecord, CaptureDate, CompanionRecord, ExifMeta, FileRecord, ImageId, VideoRecord};

const NEXT_ID_KEY: &[u8] = b"next_image_id";
const ROOTS_KEY: &[u8] = b"roots";
const ACTIVE_MODEL_KEY: &[u8] = b"active_model";
const RUN_KEY: &[u8] = b"index_run";
const MODEL_PREFIX: &[u8] = b"model:";
const EPOCH_KEY: &[u8] = b"epoch";
/// The number of records as of an epoch: epoch (u64 BE) then count (u64 BE).
const FILE_COUNT_KEY: &[u8] = b"file_count";

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the writer lock.
    #[error("library {} is in use by pid {pid}; wait for it to finish or stop it", dir.display())]
    InUse {
        /// The data directory.
        dir: PathBuf,
        /// The process holding the lock (0 when unknown).
        pid: u32,
    },
    /// There is no library in the directory (read-only open).
    #[error("no library at {}; create one with `clipsight index PHOTOS_DIR`", .0.display())]
    Missing(PathBuf),
    /// The schema could not be brought up to date.
    #[error(transparent)]
    Migration(#[from] clipsight_migrations::MigrationError),
    /// A read-only open found an older schema.
    #[error("library {} needs a schema upgrade; run any writing command (e.g. `clipsight index`) once", .0.display())]
    NeedsUpgrade(PathBuf),
    /// RocksDB failed.
    #[error("database error: {0}")]
    Db(#[from] rocksdb::Error),
    /// File system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Stored bytes could not be decoded.
    #[error("corrupt library data: {0}")]
    Corrupt(String),
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How a library is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The single writer: takes the lock, creates and migrates as needed.
    ReadWrite,
    /// A reader: no lock, sees the state at open time; works while a writer runs.
    ReadOnly,
}

/// An open library database. Clones share the one open database (and writer lock): the derived
/// indexes that evaluate filters against records hold a clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<DB>,
    dir: PathBuf,
    /// The writer lock; `None` for a read-only store.
    writer_lock: Option<Arc<File>>,
    /// Held while a commit reads the epoch and writes the next, so two threads committing at
    /// once (a front end's mirror and a search copying rows) never write the same epoch.
    epoch_lock: Arc<std::sync::Mutex<()>>,
}

impl Store {
    /// Opens (or, read-write, creates) the library in `dir`.
    pub fn open(dir: &Path, mode: OpenMode) -> Result<Self> {
        let db_path = dir.join("db");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_keep_log_file_num(3);
        match mode {
            OpenMode::ReadWrite => {
                std::fs::create_dir_all(dir).map_err(io(dir))?;
                let lock = acquire_lock(dir)?;
                let db = DB::open_cf(&opts, &db_path, COLUMN_FAMILIES)?;
                let report = clipsight_migrations::migrate(&db)?;
                if report.from != report.to && report.from != 0 {
                    tracing::info!("library upgraded from schema v{} to v{}", report.from, report.to);
                }
                Ok(Self { db: Arc::new(db), dir: dir.to_path_buf(), writer_lock: Some(Arc::new(lock)), epoch_lock: Arc::default() })
            }
            OpenMode::ReadOnly => {
                if !db_path.join("CURRENT").is_file() {
                    return Err(StoreError::Missing(dir.to_path_buf()));
                }
                // A library of an older schema may lack column families this one opens.
                let existing = DB::list_cf(&opts, &db_path)?;
                if COLUMN_FAMILIES.iter().any(|name| !existing.iter().any(|e| e == name)) {
                    return Err(StoreError::NeedsUpgrade(dir.to_path_buf()));
                }
                let db = DB::open_cf_for_read_only(&opts, &db_path, COLUMN_FAMILIES, false)?;
                let version = clipsight_migrations::schema_version(&db)?;
                if version > clipsight_migrations::LATEST {
                    return Err(clipsight_migrations::MigrationError::TooNew {
                        found: version,
                        supported: clipsight_migrations::LATEST,
                    }
                    .into());
                }
                if version < clipsight_migrations::LATEST {
                    return Err(StoreError::NeedsUpgrade(dir.to_path_buf()));
                }
                Ok(Self { db: Arc::new(db), dir: dir.to_path_buf(), writer_lock: None, epoch_lock: Arc::default() })
            }
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn cf(&self, name: &'static str) -> &ColumnFamily {
        self.db.cf_handle(name).expect("all column families are opened")
    }

    fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(cf::META), key)?)
    }

    /// The record of one image.
    pub fn file(&self, id: ImageId) -> Result<Option<FileRecord>> {
        self.db
            .get_cf(self.cf(cf::FILES), id.to_key())?
            .map(|b| decode_record(id, &b))
            .transpose()
    }

    /// The image stored under `path`.
    pub fn id_by_path(&self, path: &[u8]) -> Result<Option<ImageId>> {
        Ok(self.db.get_cf(self.cf(cf::PATHS), path)?.and_then(|b| ImageId::from_key(&b)))
    }

    /// Images whose content hash is `hash`.
    pub fn ids_by_hash(&self, hash: &[u8; 32]) -> Result<Vec<ImageId>> {
        let mut out = Vec::new();
        for item in self.db.prefix_iterator_cf(self.cf(cf::HASHES), hash) {
            let (key, _) = item?;
            if !key.starts_with(hash) {
                break;
            }
            out.extend(ImageId::from_key(&key[32..]));
        }
        Ok(out)
    }

    /// Every file record, by id.
    pub fn files(&self) -> impl Iterator<Item = Result<(ImageId, FileRecord)>> + '_ {
        self.db.iterator_cf(self.cf(cf::FILES), IteratorMode::Start).map(|item| {
            let (k, v) = item?;
            let id = ImageId::from_key(&k).ok_or_else(|| StoreError::Corrupt("bad file key".into()))?;
            Ok((id, decode_record(id, &v)?))
        })
    }

    /// Number of file records. Counted once per epoch (a key scan: ~30 ms per 100,000 records)
    /// and remembered in the library when this process is its writer, so that readers — a CLI
    /// search's `total_images`, a server starting — find it without scanning.
    pub fn count_files(&self) -> Result<usize> {
        let epoch = self.epoch()?;
        if let Some(known) = self.get_meta(FILE_COUNT_KEY)? {
            if known.len() == 16 && known[..8] == epoch.to_be_bytes() {
                return Ok(u64::from_be_bytes(known[8..].try_into().expect("8 bytes")) as usize);
            }
        }
        let count = self.keys(cf::FILES, Vec::new()).try_fold(0, |n, key| key.map(|_| n + 1))?;
        if self.writer_lock.is_some() {
            let known = [epoch.to_be_bytes(), (count as u64).to_be_bytes()].concat();
            self.db.put_cf(self.cf(cf::META), FILE_COUNT_KEY, known)?;
        }
        Ok(count)
    }

    /// The keys of `cf` that start with `prefix`, in order, without reading their values into
    /// memory (counting 100,000 records this way takes a fraction of a full iteration).
    fn keys(&self, cf: &'static str, prefix: Vec<u8>) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
        let mut raw = self.db.raw_iterator_cf(self.cf(cf));
        raw.seek(&prefix);
        let mut done = false;
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            match raw.key() {
                Some(key) if key.starts_with(&prefix) => {
                    let key = key.to_vec();
                    raw.next();
                    Some(Ok(key))
                }
                Some(_) => {
                    done = true;
                    None
                }
                None => {
                    done = true;
                    raw.status().err().map(|e| Err(e.into()))
                }
            }
        })
    }

    /// The embedding of an image under `model`.
    pub fn embedding(&self, model: ModelId, id: ImageId) -> Result<Option<Embedding>> {
        self.db
            .get_cf(self.cf(cf::EMBEDDINGS), embedding_key(model, id))?
            .map(|b| Embedding::from_le_bytes(&b).ok_or_else(|| StoreError::Corrupt(format!("embedding of {id}"))))
            .transpose()
    }

    /// All embeddings of `model`, by id.
    pub fn embeddings(&self, model: ModelId) -> impl Iterator<Item = Result<(ImageId, Embedding)>> + '_ {
        self.per_image_of(cf::EMBEDDINGS, model, |id, v| Embedding::from_le_bytes(v).ok_or_else(|| StoreError::Corrupt(format!("embedding of {id}"))))
    }

    /// At most `n` embeddings of `model`, from seeks spread evenly over the range of its ids
    /// (one seek each, so a sample of a million-image library costs `n` reads, not a scan). Ids
    /// follow the walk's order, so an even spread of ids is a spread over folders and dates; a
    /// range with large gaps (many images removed) yields fewer, and all of a library of at
    /// most `n` images is taken only when its ids are dense.
    pub fn spread_embeddings(&self, model: ModelId, n: usize) -> Result<Vec<(ImageId, Embedding)>> {
        let mut raw = self.db.raw_iterator_cf(self.cf(cf::EMBEDDINGS));
        let id_at = |key: Option<&[u8]>| key.filter(|k| k.starts_with(&model.0)).and_then(|k| ImageId::from_key(&k[16..])).map(|id| id.0);
        raw.seek(embedding_key(model, ImageId(0)));
        let Some(first) = id_at(raw.key()) else { return raw.status().map(|()| Vec::new()).map_err(Into::into) };
        raw.seek_for_prev(embedding_key(model, ImageId(u64::MAX)));
        let last = id_at(raw.key()).unwrap_or(first);
        let mut out: Vec<(ImageId, Embedding)> = Vec::with_capacity(n);
        for i in 0..n as u64 {
            let from = first + ((last - first) as u128 + 1).saturating_mul(i as u128).checked_div(n as u128).unwrap_or(0) as u64;
            if out.last().is_some_and(|(id, _)| id.0 >= from) {
                continue;
            }
            raw.seek(embedding_key(model, ImageId(from)));
            let (Some(k), Some(v)) = (raw.key(), raw.value()) else { break };
            if !k.starts_with(&model.0) {
                break;
            }
            let id = ImageId::from_key(&k[16..]).ok_or_else(|| StoreError::Corrupt("bad embedding key".into()))?;
            let e = Embedding::from_le_bytes(v).ok_or_else(|| StoreError::Corrupt(format!("embedding of {id}")))?;
            out.push((id, e));
        }
        raw.status()?;
        Ok(out)
    }

    /// The values of a `ModelId ‖ ImageId`-keyed column family for `model`, by id, decoded.
    fn per_image_of<T>(&self, name: &'static str, model: ModelId, decode: impl Fn(ImageId, &[u8]) -> Result<T> + 'static) -> impl Iterator<Item = Result<(ImageId, T)>> + '_ {
        self.db
            .prefix_iterator_cf(self.cf(name), model.0)
            .take_while(move |item| item.as_ref().map_or(true, |(k, _)| k.starts_with(&model.0)))
            .map(move |item| {
                let (k, v) = item?;
                let id = ImageId::from_key(&k[16..]).ok_or_else(|| StoreError::Corrupt(format!("bad key in {name}")))?;
                Ok((id, decode(id, &v)?))
            })
    }

    /// A video's facts (`None` for a photo).
    pub fn video(&self, id: ImageId) -> Result<Option<VideoRecord>> {
        self.db
            .get_cf(self.cf(cf::VIDEOS), id.to_key())?
            .map(|b| postcard::from_bytes(&b).map_err(|e| StoreError::Corrupt(format!("video record of {id}: {e}"))))
            .transpose()
    }

    /// The embeddings of a video's moments under `model`, in the order of
    /// [`VideoRecord::moments_ms`] (`None` for a photo).
    pub fn moments(&self, model: ModelId, id: ImageId) -> Result<Option<Vec<Embedding>>> {
        self.db.get_cf(self.cf(cf::MOMENTS), embedding_key(model, id))?.map(|b| decode_moments(id, &b)).transpose()
    }

    /// Every video's moment embeddings under `model`, by id.
    pub fn all_moments(&self, model: ModelId) -> impl Iterator<Item = Result<(ImageId, Vec<Embedding>)>> + '_ {
        self.per_image_of(cf::MOMENTS, model, decode_moments)
    }

    /// Number of videos (a key scan: nothing is decoded).
    pub fn count_videos(&self) -> Result<usize> {
        self.keys(cf::VIDEOS, Vec::new()).try_fold(0, |n, key| key.map(|_| n + 1))
    }

    /// The JPEG thumbnail of an image.
    pub fn thumbnail(&self, id: ImageId) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(cf::THUMBS), id.to_key())?)
    }

    /// Ids that have a thumbnail (for consistency checks).
    pub fn thumbnail_ids(&self) -> impl Iterator<Item = Result<ImageId>> + '_ {
        self.ids_of(cf::THUMBS)
    }

    /// Ids that have annotations (for consistency checks).
    pub fn annotation_ids(&self) -> impl Iterator<Item = Result<ImageId>> + '_ {
        self.ids_of(cf::ANNOTATIONS)
    }

    /// The ImageId keys of a column family keyed by image.
    fn ids_of(&self, cf: &'static str) -> impl Iterator<Item = Result<ImageId>> + '_ {
        self.db.iterator_cf(self.cf(cf), IteratorMode::Start).map(move |item| {
            let (k, _) = item?;
            ImageId::from_key(&k).ok_or_else(|| StoreError::Corrupt(format!("bad key in {cf}")))
        })
    }

    /// The path index: (path bytes, image id) pairs (for consistency checks).
    pub fn path_entries(&self) -> impl Iterator<Item = Result<(Vec<u8>, ImageId)>> + '_ {
        self.db.iterator_cf(self.cf(cf::PATHS), IteratorMode::Start).map(|item| {
            let (k, v) = item?;
            let id = ImageId::from_key(&v).ok_or_else(|| StoreError::Corrupt("bad path entry".into()))?;
            Ok((k.to_vec(), id))
        })
    }

    /// Roots the library was built from.
    pub fn roots(&self) -> Result<Vec<PathBuf>> {
        Ok(match self.get_meta(ROOTS_KEY)? {
            None => Vec::new(),
            Some(b) => postcard::from_bytes::<Vec<Vec<u8>>>(&b)
                .map_err(|e| StoreError::Corrupt(format!("roots: {e}")))?
                .iter()
                .map(|p| path_from_bytes(p))
                .collect(),
        })
    }

    /// The model whose embeddings queries use.
    pub fn active_model(&self) -> Result<Option<ModelId>> {
        Ok(self.get_meta(ACTIVE_MODEL_KEY)?.and_then(|b| Some(ModelId(b.as_slice().try_into().ok()?))))
    }

    /// Stored text embeddings of `model` of one kind (`b'c'` corpus captions, `b'v'` vocabulary).
    pub fn texts(&self, model: ModelId, kind: u8) -> Result<Vec<(String, Embedding)>> {
        let prefix = [&model.0[..], &[kind]].concat();
        let mut out = Vec::new();
        for item in self.db.prefix_iterator_cf(self.cf(cf::TEXTS), &prefix) {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            let text = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            let e = Embedding::from_le_bytes(&v).ok_or_else(|| StoreError::Corrupt(format!("text embedding {text:?}")))?;
            out.push((text, e));
        }
        Ok(out)
    }

    /// What people wrote about an image (empty when nothing was).
    pub fn annotations(&self, id: ImageId) -> Result<AnnotationRecord> {
        Ok(match self.db.get_cf(self.cf(cf::ANNOTATIONS), id.to_key())? {
            None => AnnotationRecord::default(),
            Some(b) => postcard::from_bytes(&b).map_err(|e| StoreError::Corrupt(format!("annotations of {id}: {e}")))?,
        })
    }

    /// Automatic tags of an image.
    pub fn tags(&self, id: ImageId) -> Result<Vec<String>> {
        Ok(match self.db.get_cf(self.cf(cf::TAGS), id.to_key())? {
            None => Vec::new(),
            Some(b) => postcard::from_bytes(&b).map_err(|e| StoreError::Corrupt(format!("tags of {id}: {e}")))?,
        })
    }

    /// The images embedded with `model` that have no automatic tags recorded (not even an empty
    /// list): what a run that embedded before its tag vocabulary was ready still has to tag.
    pub fn untagged(&self, model: ModelId) -> Result<Vec<ImageId>> {
        let tagged: std::collections::HashSet<Vec<u8>> = self.keys(cf::TAGS, Vec::new()).collect::<Result<_>>()?;
        self.embedding_ids(model).filter(|id| id.as_ref().map_or(true, |id| !tagged.contains(id.to_key().as_slice()))).collect()
    }

    /// Every model that has embeddings in this library.
    pub fn models(&self) -> Result<Vec<ModelId>> {
        let mut out = Vec::new();
        for item in self.db.prefix_iterator_cf(self.cf(cf::META), MODEL_PREFIX) {
            let (k, _) = item?;
            if !k.starts_with(MODEL_PREFIX) {
                break;
            }
            out.extend(k[MODEL_PREFIX.len()..].try_into().ok().map(ModelId));
        }
        Ok(out)
    }

    /// Whether an indexing run started and did not finish (it is resumed by running again).
    pub fn interrupted_run(&self) -> Result<bool> {
        Ok(self.db.get_cf(self.cf(cf::JOBS), RUN_KEY)?.is_some())
    }

    /// A counter bumped by every commit that adds, changes or deletes images or embeddings:
    /// derived indexes (the ANN graph, the keyword index) record the epoch they reflect.
    pub fn epoch(&self) -> Result<u64> {
        Ok(self.get_meta(EPOCH_KEY)?.and_then(|b| Some(u64::from_be_bytes(b.as_slice().try_into().ok()?))).unwrap_or(0))
    }

    /// Number of embeddings stored for `model` (a key scan: nothing is decoded).
    pub fn count_embeddings(&self, model: ModelId) -> Result<usize> {
        self.embedding_ids(model).try_fold(0, |n, id| id.map(|_| n + 1))
    }

    /// The ids of the images embedded with `model`, ascending (keys only: nothing is decoded).
    pub fn embedding_ids(&self, model: ModelId) -> impl Iterator<Item = Result<ImageId>> + '_ {
        self.keys(cf::EMBEDDINGS, model.0.to_vec())
            .map(|key| ImageId::from_key(&key?[16..]).ok_or_else(|| StoreError::Corrupt("bad embedding key".into())))
    }

    /// The next unused image id.
    pub fn next_image_id(&self) -> Result<ImageId> {
        Ok(self.get_meta(NEXT_ID_KEY)?.and_then(|b| ImageId::from_key(&b)).unwrap_or(ImageId(1)))
    }

    /// Starts a set of changes to be committed atomically.
    pub fn changes(&self) -> Changes<'_> {
        Changes { store: self, batch: WriteBatch::default(), bumps_epoch: false }
    }

    /// Whether this process holds the library's writer lock (the only one that may change
    /// derived files in place).
    pub fn is_writer(&self) -> bool {
        self.writer_lock.is_some()
    }

    /// Flushes memtables to disk (at shutdown, so reopening is fast).
    pub fn flush(&self) -> Result<()> {
        if self.writer_lock.is_none() {
            return Ok(()); // a reader has nothing to flush
        }
        for name in COLUMN_FAMILIES {
            self.db.flush_cf(self.cf(name))?;
        }
        Ok(())
    }
}

/// Changes committed together in one RocksDB write batch.
pub struct Changes<'a> {
    store: &'a Store,
    batch: WriteBatch,
    bumps_epoch: bool,
}

impl Changes<'_> {
    /// Stores a new or updated image: record, indexes, thumbnail and its embedding for `model`.
    pub fn put_image(&mut self, id: ImageId, record: &FileRecord, model: ModelId, embedding: &Embedding, thumbnail: &[u8]) {
        self.put_record(id, record);
        let s = self.store;
        self.bumps_epoch = true;
        self.batch.put_cf(s.cf(cf::EMBEDDINGS), embedding_key(model, id), embedding.to_le_bytes());
        self.batch.put_cf(s.cf(cf::THUMBS), id.to_key(), thumbnail);
    }

    /// Stores a video's facts and its moment embeddings under `model` (after [`Changes::put_image`]
    /// of its record, thumbnail and mean embedding). A video without moments (all blank) is
    /// listed but never found by a vector.
    pub fn put_video(&mut self, id: ImageId, video: &VideoRecord, model: ModelId, moments: &[Embedding]) {
        let s = self.store;
        self.bumps_epoch = true;
        self.batch.put_cf(s.cf(cf::VIDEOS), id.to_key(), postcard::to_stdvec(video).expect("video records serialise"));
        if moments.is_empty() {
            self.batch.delete_cf(s.cf(cf::MOMENTS), embedding_key(model, id));
        } else {
            self.batch.put_cf(s.cf(cf::MOMENTS), embedding_key(model, id), encode_moments(moments));
        }
    }

    /// Forgets that an image was a video (its file became a photo), under every model.
    pub fn delete_video(&mut self, id: ImageId) -> Result<()> {
        let models = self.store.models()?;
        let s = self.store;
        self.bumps_epoch = true;
        self.batch.delete_cf(s.cf(cf::VIDEOS), id.to_key());
        for model in models {
            self.batch.delete_cf(s.cf(cf::MOMENTS), embedding_key(model, id));
        }
        Ok(())
    }

    /// Writes a record and its path and hash index entries.
    pub fn put_record(&mut self, id: ImageId, record: &FileRecord) {
        let s = self.store;
        self.bumps_epoch = true;
        self.batch.put_cf(s.cf(cf::FILES), id.to_key(), record.encode());
        self.batch.put_cf(s.cf(cf::PATHS), &record.path, id.to_key());
        self.batch.put_cf(s.cf(cf::HASHES), hash_key(&record.hash, id), b"");
    }

    /// Removes the index entries of a record that is about to be replaced or deleted.
    pub fn unindex_record(&mut self, id: ImageId, record: &FileRecord) {
        let s = self.store;
        self.batch.delete_cf(s.cf(cf::PATHS), &record.path);
        self.batch.delete_cf(s.cf(cf::HASHES), hash_key(&record.hash, id));
    }

    /// Deletes an image everywhere: record, indexes, thumbnail, the embeddings of every model
    /// (fails, deleting nothing, when the models cannot be listed).
    pub fn delete_image(&mut self, id: ImageId, record: &FileRecord) -> Result<()> {
        let models = self.store.models()?;
        self.delete_video(id)?;
        self.unindex_record(id, record);
        let s = self.store;
        self.batch.delete_cf(s.cf(cf::FILES), id.to_key());
        self.batch.delete_cf(s.cf(cf::THUMBS), id.to_key());
        self.batch.delete_cf(s.cf(cf::TAGS), id.to_key());
        self.batch.delete_cf(s.cf(cf::ANNOTATIONS), id.to_key());
        self.bumps_epoch = true;
        for model in models {
            self.batch.delete_cf(s.cf(cf::EMBEDDINGS), embedding_key(model, id));
        }
        Ok(())
    }

    /// Stores a text embedding of `model` (`kind` b'c' corpus caption, b'v' vocabulary entry).
    pub fn put_text(&mut self, model: ModelId, kind: u8, text: &str, embedding: &Embedding) {
        let key = [&model.0[..], &[kind], text.as_bytes()].concat();
        self.batch.put_cf(self.store.cf(cf::TEXTS), key, embedding.to_le_bytes());
    }

    /// Deletes every stored text of `model` of one kind.
    pub fn delete_texts(&mut self, model: ModelId, kind: u8) {
        let from = [&model.0[..], &[kind]].concat();
        let to = [&model.0[..], &[kind + 1]].concat();
        self.batch.delete_range_cf(self.store.cf(cf::TEXTS), from, to);
    }

    /// Replaces what people wrote about an image (an empty record is not kept).
    pub fn put_annotations(&mut self, id: ImageId, annotations: &AnnotationRecord) {
        self.bumps_epoch = true;
        let cf = self.store.cf(cf::ANNOTATIONS);
        if annotations.is_empty() {
            self.batch.delete_cf(cf, id.to_key());
        } else {
            self.batch.put_cf(cf, id.to_key(), postcard::to_stdvec(annotations).expect("annotations serialise"));
        }
    }

    /// Replaces the automatic tags of an image.
    pub fn put_tags(&mut self, id: ImageId, tags: &[String]) {
        self.bumps_epoch = true;
        self.batch.put_cf(self.store.cf(cf::TAGS), id.to_key(), postcard::to_stdvec(tags).expect("tags serialise"));
    }

    /// Records the next unused image id.
    pub fn set_next_image_id(&mut self, id: ImageId) {
        self.batch.put_cf(self.store.cf(cf::META), NEXT_ID_KEY, id.to_key());
    }

    /// Records the library's roots.
    pub fn set_roots(&mut self, roots: &[PathBuf]) {
        let bytes: Vec<Vec<u8>> = roots.iter().map(|r| path_to_bytes(r)).collect();
        self.batch.put_cf(self.store.cf(cf::META), ROOTS_KEY, postcard::to_stdvec(&bytes).expect("serialises"));
    }

    /// Records the model queries use (and remembers that it has embeddings here).
    pub fn set_active_model(&mut self, model: ModelId) {
        let meta = self.store.cf(cf::META);
        self.batch.put_cf(meta, ACTIVE_MODEL_KEY, model.0);
        self.batch.put_cf(meta, [MODEL_PREFIX, &model.0].concat(), b"");
    }

    /// Marks an indexing run as started (`true`) or finished (`false`).
    pub fn set_run_in_progress(&mut self, running: bool) {
        let jobs = self.store.cf(cf::JOBS);
        if running {
            self.batch.put_cf(jobs, RUN_KEY, b"1");
        } else {
            self.batch.delete_cf(jobs, RUN_KEY);
        }
    }

    /// Applies all changes atomically.
    pub fn commit(mut self) -> Result<()> {
        let _epoch = crate::sync::lock(&self.store.epoch_lock);
        if self.bumps_epoch {
            let next = self.store.epoch()? + 1;
            self.batch.put_cf(self.store.cf(cf::META), EPOCH_KEY, next.to_be_bytes());
        }
        Ok(self.store.db.write(self.batch)?)
    }
}

fn decode_record(id: ImageId, bytes: &[u8]) -> Result<FileRecord> {
    FileRecord::decode(bytes).ok_or_else(|| StoreError::Corrupt(format!("record of image {id}")))
}

/// Moment embeddings as [`Changes::put_video`] writes them: the dimension (u32 little-endian),
/// then the vectors one after another (f32 little-endian).
fn encode_moments(moments: &[Embedding]) -> Vec<u8> {
    let dim = moments.first().map_or(0, Embedding::dim) as u32;
    let mut bytes = dim.to_le_bytes().to_vec();
    moments.iter().for_each(|e| bytes.extend(e.to_le_bytes()));
    bytes
}

/// Reads what [`encode_moments`] wrote.
fn decode_moments(id: ImageId, bytes: &[u8]) -> Result<Vec<Embedding>> {
    let corrupt = || StoreError::Corrupt(format!("moments of {id}"));
    let dim = u32::from_le_bytes(bytes.get(..4).ok_or_else(corrupt)?.try_into().expect("4 bytes")) as usize;
    let vectors = &bytes[4..];
    if dim == 0 || !vectors.len().is_multiple_of(dim * 4) {
        return Err(corrupt());
    }
    vectors.chunks_exact(dim * 4).map(|v| Embedding::from_le_bytes(v).ok_or_else(corrupt)).collect()
}

fn embedding_key(model: ModelId, id: ImageId) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(&model.0);
    key[16..].copy_from_slice(&id.to_key());
    key
}

fn hash_key(hash: &[u8; 32], id: ImageId) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(hash);
    key[32..].copy_from_slice(&id.to_key());
    key
}

/// Takes the writer lock of `dir`, or reports who holds it.
fn acquire_lock(dir: &Path) -> Result<File> {
    let path = dir.join("writer.lock");
    let io = |source| StoreError::Io { path: path.clone(), source };
    let mut file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            write!(file, "{}", std::process::id()).map_err(io)?;
            file.flush().map_err(io)?;
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Err(StoreError::InUse { dir: dir.to_path_buf(), pid: text.trim().parse().unwrap_or(0) })
        }
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str, hash: u8) -> FileRecord {
        FileRecord { size: 10, mtime_ns: 5, width: 4, height: 3, ..FileRecord::synthetic(path, [hash; 32], "png") }
    }

    /// A database in `dir` with these column families, migrated to schema `version` only.
    fn old_library(dir: &Path, families: &[&str], version: u32) -> DB {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let db = DB::open_cf(&opts, dir.join("db"), families).unwrap();
        clipsight_migrations::migrate_to(&db, version).unwrap();
        db
    }

    #[test]
    fn a_spread_sample_takes_embeddings_evenly_over_the_ids_and_all_of_a_small_library() {
        let dir = tempfile::tempdir().unwrap();
        let model = ModelId([3; 16]);
        let (store, vectors) = test_support::library_of(dir.path(), model, 100);
        let ids = |n| store.spread_embeddings(model, n).unwrap().into_iter().map(|(id, _)| id.0).collect::<Vec<_>>();
        assert_eq!(ids(4), [1, 26, 51, 76]);
        assert_eq!(ids(1000), (1..=100).collect::<Vec<_>>());
        let sample = store.spread_embeddings(model, 4).unwrap();
        assert_eq!(sample[1].1, vectors[25].1, "each with its embedding");
        assert!(store.spread_embeddings(ModelId([4; 16]), 4).unwrap().is_empty(), "another model has none");
    }

    #[test]
    fn a_v3_library_without_the_video_column_families_asks_for_an_upgrade_when_read_only() {
        let dir = tempfile::tempdir().unwrap();
        // v3 as it was written: without `videos` and `moments`.
        let v3: Vec<&str> = COLUMN_FAMILIES.iter().copied().filter(|c| *c != cf::VIDEOS && *c != cf::MOMENTS).collect();
        drop(old_library(dir.path(), &v3, 3));
        assert!(matches!(Store::open(dir.path(), OpenMode::ReadOnly), Err(StoreError::NeedsUpgrade(_))));
        drop(Store::open(dir.path(), OpenMode::ReadWrite).unwrap());
        let store = Store::open(dir.path(), OpenMode::ReadOnly).expect("upgraded, it opens read-only");
        assert_eq!(store.video(ImageId(1)).unwrap(), None);
    }

    #[test]
    fn a_v5_librarys_records_read_back_after_the_upgrade_with_no_companions() {
        let dir = tempfile::tempdir().unwrap();
        let before = record("/p/a.jpg", 1);
        {
            let db = old_library(dir.path(), COLUMN_FAMILIES, 5);
            // A v5 record is today's encoding without the trailing (empty) companion list.
            let v6 = before.encode();
            assert_eq!(v6.last(), Some(&0));
            db.put_cf(db.cf_handle(cf::FILES).unwrap(), ImageId(1).to_key(), &v6[..v6.len() - 1]).unwrap();
            assert!(FileRecord::decode(&v6[..v6.len() - 1]).is_none(), "v5 bytes are not a v6 record");
        }
        let store = Store::open(dir.path(), OpenMode::ReadWrite).unwrap();
        assert_eq!(store.file(ImageId(1)).unwrap(), Some(before));
    }

    #[test]
    fn a_v1_library_is_migrated_to_v2_with_path_and_hash_indexes() {
        let dir = tempfile::tempdir().unwrap();
        {
            // Build a v1 database the way v1 wrote it: records in `files`, no secondary indexes.
            let db = old_library(dir.path(), COLUMN_FAMILIES, 1);
            let files = db.cf_handle(cf::FILES).unwrap();
            db.put_cf(files, ImageId(1).to_key(), record("/p/a.png", 1).encode()).unwrap();
            db.put_cf(files, ImageId(2).to_key(), record("/p/b.png", 2).encode()).unwrap();
            assert_eq!(clipsight_migrations::schema_version(&db).unwrap(), 1);
        }
        let store = Store::open(dir.path(), OpenMode::ReadWrite).unwrap();
        assert_eq!(clipsight_migrations::schema_version(&store.db).unwrap(), clipsight_migrations::LATEST);
        assert_eq!(store.id_by_path(b"/p/b.png").unwrap(), Some(ImageId(2)));
        assert_eq!(store.ids_by_hash(&[1; 32]).unwrap(), vec![ImageId(1)]);
        assert_eq!(store.file(ImageId(1)).unwrap(), Some(record("/p/a.png", 1)));
    }

    #[test]
    fn a_second_writer_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path(), OpenMode::ReadWrite).unwrap();
        match Store::open(dir.path(), OpenMode::ReadWrite) {
            Err(e @ StoreError::InUse { .. }) => {
                assert!(e.to_string().contains(&format!("in use by pid {}", std::process::id())), "{e}")
            }
            other => panic!("expected InUse, got {:?}", other.err()),
        }
        // Readers keep working while the writer holds the lock.
        assert!(Store::open(dir.path(), OpenMode::ReadOnly).is_ok());
    }

    #[test]
    fn changes_commit_atomically_and_deletes_clean_every_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), OpenMode::ReadWrite).unwrap();
        let model = ModelId([9; 16]);
        let e = Embedding::normalized(vec![1.0, 2.0]);
        let mut c = store.changes();
        c.set_active_model(model);
        c.put_image(ImageId(1), &record("/x.png", 3), model, &e, b"jpg");
        c.set_next_image_id(ImageId(2));
        c.commit().unwrap();
        assert_eq!(store.embedding(model, ImageId(1)).unwrap(), Some(e));
        assert_eq!(store.next_image_id().unwrap(), ImageId(2));
        assert_eq!(store.models().unwrap(), vec![model]);
        let mut c = store.changes();
        c.delete_image(ImageId(1), &record("/x.png", 3)).unwrap();
        c.commit().unwrap();
        assert_eq!(store.count_files().unwrap(), 0);
        assert!(store.id_by_path(b"/x.png").unwrap().is_none());
        assert!(store.ids_by_hash(&[3; 32]).unwrap().is_empty());
        assert!(store.embeddings(model).next().is_none());
        assert!(store.thumbnail(ImageId(1)).unwrap().is_none());
    }

    #[test]
    fn the_writer_remembers_the_count_of_an_epoch_and_a_later_change_makes_it_count_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), OpenMode::ReadWrite).unwrap();
        let mut c = store.changes();
        c.put_record(ImageId(1), &record("/a.png", 1));
        c.put_record(ImageId(2), &record("/b.png", 2));
        c.commit().unwrap();
        assert_eq!(store.count_files().unwrap(), 2);
        let remembered = store.get_meta(FILE_COUNT_KEY).unwrap().unwrap();
        assert_eq!(remembered, [store.epoch().unwrap().to_be_bytes(), 2u64.to_be_bytes()].concat());
        let reader = Store::open(dir.path(), OpenMode::ReadOnly).unwrap();
        assert_eq!(reader.count_files().unwrap(), 2, "a reader finds the remembered count");

        let mut c = store.changes();
        c.delete_image(ImageId(1), &record("/a.png", 1)).unwrap();
        c.commit().unwrap();
        assert_eq!(Store::open(dir.path(), OpenMode::ReadOnly).unwrap().count_files().unwrap(), 1, "a stale count is not used");
        assert_eq!(store.count_files().unwrap(), 1);
    }

    #[test]
    fn non_utf8_paths_survive_the_round_trip() {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let p = std::path::Path::new(std::ffi::OsStr::from_bytes(b"/photos/caf\xe9.jpg"));
            assert_eq!(path_from_bytes(&path_to_bytes(p)), p);
        }
    }
}
