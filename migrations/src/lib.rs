//! clipsight-migrations: the numbered schema versions of a clipsight library's RocksDB database
//! and the steps between them.
//!
//! The schema version lives in the `meta` column family under [`SCHEMA_VERSION_KEY`]. At open,
//! [`migrate`] applies every step above the stored version in order; each step commits its
//! changes and the new version number in one atomic write batch, so an interrupted upgrade resumes
//! cleanly. A database written by a newer clipsight is refused and left untouched.

mod m0001_initial;
mod m0002_path_and_hash_indexes;
mod m0003_texts_and_tags;
mod m0004_videos;
mod m0005_annotations;
mod m0006_companions;
mod m0007_remote_rows;

use rocksdb::DB;

/// Key in `meta` holding the schema version (u32, big-endian).
pub const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";

/// Column families of the current schema, with what each holds.
pub mod cf {
    /// Library-wide values: schema version, next image id, roots, active model.
    pub const META: &str = "meta";
    /// ImageId (u64 BE) → file record (v6: ending with its companion files).
    pub const FILES: &str = "files";
    /// Path bytes → ImageId (v2).
    pub const PATHS: &str = "paths";
    /// Content hash (32 bytes) ‖ ImageId → empty (v2).
    pub const HASHES: &str = "hashes";
    /// ModelId (16 bytes) ‖ ImageId → f32 little-endian vector.
    pub const EMBEDDINGS: &str = "embeddings";
    /// ImageId → JPEG thumbnail.
    pub const THUMBS: &str = "thumbs";
    /// Indexing progress: the marker of a run in progress (an interrupted run is resumed).
    pub const JOBS: &str = "jobs";
    /// ModelId ‖ kind byte ‖ text → f32 little-endian embedding (v3): caption corpora ('c') and the
    /// tag vocabulary ('v').
    pub const TEXTS: &str = "texts";
    /// ImageId → automatic tags, postcard `Vec<String>` (v3).
    pub const TAGS: &str = "tags";
    /// ImageId → a video's facts (duration, moment times), postcard (v4).
    pub const VIDEOS: &str = "videos";
    /// ModelId ‖ ImageId → a video's moment embeddings: the dimension (u32 little-endian), then
    /// the f32 little-endian vectors in the order of the moment times in `videos` (v4).
    pub const MOMENTS: &str = "moments";
    /// ImageId → a photo's annotations, postcard: those embedded in the file (XMP, IPTC) and
    /// those of its XMP sidecars, kept apart so a sidecar edit replaces only its part (v5).
    pub const ANNOTATIONS: &str = "annotations";
    /// Collection name ‖ 0 ‖ row key (u64 BE) → ImageId (u64 BE) ‖ 16-byte fingerprint: the rows
    /// this library has copied into a remote vector store, and from what (v7).
    pub const REMOTE: &str = "remote";
}

/// Every column family the latest schema uses (RocksDB needs them listed at open).
pub const COLUMN_FAMILIES: &[&str] =
    &[cf::META, cf::FILES, cf::PATHS, cf::HASHES, cf::EMBEDDINGS, cf::THUMBS, cf::JOBS, cf::TEXTS, cf::TAGS, cf::VIDEOS, cf::MOMENTS, cf::ANNOTATIONS, cf::REMOTE];

/// One schema step.
struct Migration {
    version: u32,
    name: &'static str,
    apply: fn(&DB, &mut rocksdb::WriteBatch) -> Result<(), MigrationError>,
}

/// The steps, in order. Version N is reached by applying steps 1..=N.
const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "initial", apply: m0001_initial::apply },
    Migration { version: 2, name: "path and hash indexes", apply: m0002_path_and_hash_indexes::apply },
    Migration { version: 3, name: "texts and tags", apply: m0003_texts_and_tags::apply },
    Migration { version: 4, name: "videos and their moments", apply: m0004_videos::apply },
    Migration { version: 5, name: "annotations", apply: m0005_annotations::apply },
    Migration { version: 6, name: "companion files", apply: m0006_companions::apply },
    Migration { version: 7, name: "remote rows", apply: m0007_remote_rows::apply },
];

/// The schema version this build writes.
pub const LATEST: u32 = 7;

/// Why a database could not be brought to the latest schema.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The database was written by a newer clipsight.
    #[error("this library has schema version {found}, newer than the {supported} this clipsight understands; upgrade clipsight (nothing was changed)")]
    TooNew {
        /// Version found on disk.
        found: u32,
        /// Latest version known here.
        supported: u32,
    },
    /// A column family is missing (the database was not opened with [`COLUMN_FAMILIES`]).
    #[error("column family {0} is missing")]
    MissingColumnFamily(&'static str),
    /// Stored data could not be understood.
    #[error("corrupt library data: {0}")]
    Corrupt(String),
    /// RocksDB failed.
    #[error("database error: {0}")]
    Db(#[from] rocksdb::Error),
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Version before.
    pub from: u32,
    /// Version after (always [`LATEST`]).
    pub to: u32,
}

/// The schema version stored in `db` (0 for a fresh database).
pub fn schema_version(db: &DB) -> Result<u32, MigrationError> {
    let meta = handle(db, cf::META)?;
    match db.get_cf(meta, SCHEMA_VERSION_KEY)? {
        None => Ok(0),
        Some(v) => {
            let bytes: [u8; 4] = v
                .as_slice()
                .try_into()
                .map_err(|_| MigrationError::Corrupt("schema version is not 4 bytes".into()))?;
            Ok(u32::from_be_bytes(bytes))
        }
    }
}

/// Brings `db` to [`LATEST`], one atomic step at a time.
pub fn migrate(db: &DB) -> Result<MigrationReport, MigrationError> {
    migrate_to(db, LATEST)
}

/// Brings `db` to `target` (≤ [`LATEST`]); used by tests to build databases of older versions.
pub fn migrate_to(db: &DB, target: u32) -> Result<MigrationReport, MigrationError> {
    let from = schema_version(db)?;
    if from > LATEST {
        return Err(MigrationError::TooNew { found: from, supported: LATEST });
    }
    for step in MIGRATIONS.iter().filter(|m| m.version > from && m.version <= target) {
        tracing::info!("migrating library schema to v{} ({})", step.version, step.name);
        let mut batch = rocksdb::WriteBatch::default();
        (step.apply)(db, &mut batch)?;
        batch.put_cf(handle(db, cf::META)?, SCHEMA_VERSION_KEY, step.version.to_be_bytes());
        db.write(batch)?;
    }
    Ok(MigrationReport { from, to: schema_version(db)? })
}

/// The handle of a column family that must exist.
pub fn handle<'a>(db: &'a DB, name: &'static str) -> Result<&'a rocksdb::ColumnFamily, MigrationError> {
    db.cf_handle(name).ok_or(MigrationError::MissingColumnFamily(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &std::path::Path) -> DB {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        DB::open_cf(&opts, path, COLUMN_FAMILIES).unwrap()
    }

    #[test]
    fn fresh_database_reaches_latest_version() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        assert_eq!(migrate(&db).unwrap(), MigrationReport { from: 0, to: LATEST });
        assert_eq!(migrate(&db).unwrap(), MigrationReport { from: LATEST, to: LATEST });
    }

    #[test]
    fn newer_schema_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        db.put_cf(handle(&db, cf::META).unwrap(), SCHEMA_VERSION_KEY, 99u32.to_be_bytes()).unwrap();
        let err = migrate(&db).unwrap_err();
        assert!(matches!(err, MigrationError::TooNew { found: 99, .. }), "{err}");
        assert_eq!(schema_version(&db).unwrap(), 99);
    }
}
