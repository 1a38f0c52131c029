//! v7: column family `remote` (collection name ‖ 0 ‖ row key → the local image and the
//! fingerprint of what was copied), which a library pushing to a remote vector store (Milvus)
//! keeps to send only what changed. It starts empty; RocksDB creates it at open.

use rocksdb::{WriteBatch, DB};

use crate::MigrationError;

pub(crate) fn apply(_db: &DB, _batch: &mut WriteBatch) -> Result<(), MigrationError> {
    Ok(())
}
