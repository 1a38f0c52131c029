//! v5: column family `annotations` (ImageId → what people wrote about a photo: title,
//! description, keywords from its XMP/IPTC and its sidecars). It starts empty; photos indexed
//! before get theirs when their file or sidecar changes, or all at once with `index --full`.

use rocksdb::{WriteBatch, DB};

use crate::MigrationError;

pub(crate) fn apply(_db: &DB, _batch: &mut WriteBatch) -> Result<(), MigrationError> {
    Ok(())
}
