//! v1: the initial schema. Column families `meta`, `files`, `embeddings`, `thumbs`, `jobs`
//! exist (RocksDB creates them at open); nothing to transform.

use rocksdb::{WriteBatch, DB};

use crate::MigrationError;

pub(crate) fn apply(_db: &DB, _batch: &mut WriteBatch) -> Result<(), MigrationError> {
    Ok(())
}
