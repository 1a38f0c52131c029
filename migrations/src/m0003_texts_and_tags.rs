//! v3: column families `texts` (caption corpora and tag-vocabulary embeddings, per model) and
//! `tags` (ImageId → automatic tags). Both start empty; RocksDB creates them at open.

use rocksdb::{WriteBatch, DB};

use crate::MigrationError;

pub(crate) fn apply(_db: &DB, _batch: &mut WriteBatch) -> Result<(), MigrationError> {
    Ok(())
}
