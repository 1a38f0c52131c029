//! v4: column families `videos` (ImageId → a video's facts) and `moments` (ModelId ‖ ImageId →
//! the embeddings of a video's moments). Both start empty; RocksDB creates them at open.

use rocksdb::{WriteBatch, DB};

use crate::MigrationError;

pub(crate) fn apply(_db: &DB, _batch: &mut WriteBatch) -> Result<(), MigrationError> {
    Ok(())
}
