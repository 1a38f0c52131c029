//! What this library has copied into remote collections (a Milvus store): per collection, each
//! row's key with the local image and the fingerprint of what was sent. A sync compares it with
//! the library to send only what changed and to remove what is gone; a remote hit's row key maps
//! back to the local image through it.

use clipsight_migrations::cf;
use rocksdb::WriteBatch;

use super::{Changes, ImageId, Result, Store, StoreError};

/// One copied row: its key in the remote collection, the image it came from, and a fingerprint
/// of the vector and fields sent (a change of either sends the row again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteRow {
    /// The row's primary key in the collection.
    pub key: u64,
    /// The local image.
    pub image: ImageId,
    /// Fingerprint of what was sent.
    pub fingerprint: [u8; 16],
}

fn row_key(collection: &str, key: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(collection.len() + 9);
    k.extend_from_slice(collection.as_bytes());
    k.push(0);
    k.extend_from_slice(&key.to_be_bytes());
    k
}

/// Meta key of the library's id, the `origin` of the rows it pushes.
const LIBRARY_ID_KEY: &[u8] = b"library_id";

impl Store {
    /// The library's id (16 hex digits), made when it first pushes to a remote store.
    pub fn library_id(&self) -> Result<Option<String>> {
        Ok(self.get_meta(LIBRARY_ID_KEY)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The library's id, made now (randomly) when it has none.
    pub fn ensure_library_id(&self) -> Result<String> {
        if let Some(id) = self.library_id()? {
            return Ok(id);
        }
        let id = format!("{:016x}", rand::random::<u64>());
        self.db.put_cf(self.cf(cf::META), LIBRARY_ID_KEY, id.as_bytes())?;
        Ok(id)
    }

    /// The rows recorded as copied into `collection`, by key.
    pub fn remote_rows(&self, collection: &str) -> impl Iterator<Item = Result<RemoteRow>> + '_ {
        let prefix = row_key(collection, 0)[..collection.len() + 1].to_vec();
        self.db
            .prefix_iterator_cf(self.cf(cf::REMOTE), prefix.clone())
            .take_while(move |item| item.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
            .map(|item| {
                let (k, v) = item?;
                decode(&k, &v).ok_or_else(|| StoreError::Corrupt("bad remote row".into()))
            })
    }

    /// `collection`'s row `key` as recorded here, when this library copied it.
    pub fn remote_row(&self, collection: &str, key: u64) -> Result<Option<RemoteRow>> {
        let k = row_key(collection, key);
        match self.db.get_pinned_cf(self.cf(cf::REMOTE), &k)? {
            Some(v) => decode(&k, &v).map(Some).ok_or_else(|| StoreError::Corrupt("bad remote row".into())),
            None => Ok(None),
        }
    }

    /// Records, in one write, rows the collection has accepted and keys it has removed.
    pub fn record_remote(&self, collection: &str, put: &[RemoteRow], removed: &[u64]) -> Result<()> {
        let mut batch = WriteBatch::default();
        for row in put {
            batch.put_cf(self.cf(cf::REMOTE), row_key(collection, row.key), encode(row));
        }
        for key in removed {
            batch.delete_cf(self.cf(cf::REMOTE), row_key(collection, *key));
        }
        Ok(self.db.write(batch)?)
    }
}

impl Changes<'_> {
    /// Records `row` of `collection` as copied here, with the images this batch writes (so an
    /// image copied from a collection is never left unrecorded by a crash).
    pub fn record_remote(&mut self, collection: &str, row: &RemoteRow) {
        self.batch.put_cf(self.store.cf(cf::REMOTE), row_key(collection, row.key), encode(row));
    }

    /// Forgets `collection`'s row `key`, with the images this batch deletes.
    pub fn forget_remote(&mut self, collection: &str, key: u64) {
        self.batch.delete_cf(self.store.cf(cf::REMOTE), row_key(collection, key));
    }
}

fn encode(row: &RemoteRow) -> Vec<u8> {
    let mut v = row.image.0.to_be_bytes().to_vec();
    v.extend_from_slice(&row.fingerprint);
    v
}

fn decode(k: &[u8], v: &[u8]) -> Option<RemoteRow> {
    let key = u64::from_be_bytes(k.get(k.len().checked_sub(8)?..)?.try_into().ok()?);
    let image = ImageId(u64::from_be_bytes(v.get(..8)?.try_into().ok()?));
    let fingerprint = v.get(8..24)?.try_into().ok()?;
    Some(RemoteRow { key, image, fingerprint })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::library_of;

    #[test]
    fn rows_are_kept_per_collection_and_removed_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = library_of(dir.path(), clipsight_indexer::ModelId([1; 16]), 0);
        let row = |key, image| RemoteRow { key, image: ImageId(image), fingerprint: [key as u8; 16] };
        store.record_remote("a", &[row(1, 10), row(u64::MAX >> 1, 11)], &[]).unwrap();
        store.record_remote("ab", &[row(1, 20)], &[]).unwrap();
        let rows = |c| store.remote_rows(c).collect::<Result<Vec<_>>>().unwrap();
        assert_eq!(rows("a"), vec![row(1, 10), row(u64::MAX >> 1, 11)]);
        assert_eq!(rows("ab"), vec![row(1, 20)], "a collection's name is not a prefix of another's");
        assert_eq!(store.remote_row("ab", 1).unwrap(), Some(row(1, 20)));
        store.record_remote("a", &[], &[1]).unwrap();
        assert_eq!(rows("a"), vec![row(u64::MAX >> 1, 11)]);
        assert_eq!(store.remote_row("a", 1).unwrap(), None);
    }
}
