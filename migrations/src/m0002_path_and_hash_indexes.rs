//! v2: secondary indexes `paths` (path bytes → ImageId) and `hashes` (content hash ‖ ImageId),
//! built from the v1 file records, so lookups by path and by content no longer scan `files`.
//!
//! A file record (postcard encoding) begins with the path (varint length + bytes), then size
//! (varint), mtime (zigzag varint), then the 32-byte content hash. This step only reads that
//! prefix, so later additions to the record's tail do not affect it.

use rocksdb::{IteratorMode, WriteBatch, DB};

use crate::{cf, handle, MigrationError};

pub(crate) fn apply(db: &DB, batch: &mut WriteBatch) -> Result<(), MigrationError> {
    let files = handle(db, cf::FILES)?;
    let paths = handle(db, cf::PATHS)?;
    let hashes = handle(db, cf::HASHES)?;
    for item in db.iterator_cf(files, IteratorMode::Start) {
        let (id, record) = item?;
        let (path, hash) = record_prefix(&record)
            .ok_or_else(|| MigrationError::Corrupt(format!("file record {:?} is unreadable", id)))?;
        batch.put_cf(paths, path, &id);
        let mut key = hash.to_vec();
        key.extend_from_slice(&id);
        batch.put_cf(hashes, key, b"");
    }
    Ok(())
}

/// (path bytes, content hash) from the start of an encoded record.
fn record_prefix(record: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = varint(record)?;
    let path = rest.get(..len as usize)?;
    let rest = &rest[len as usize..];
    let (_size, rest) = varint(rest)?;
    let (_mtime, rest) = varint(rest)?;
    let hash = rest.get(..32)?;
    Some((path, hash))
}

/// LEB128 varint as postcard writes it.
fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_record_prefix() {
        let mut rec = vec![3, b'a', b'/', b'b', 0x80, 0x01, 0x02];
        rec.extend_from_slice(&[7u8; 32]);
        rec.extend_from_slice(b"tail");
        let (path, hash) = record_prefix(&rec).unwrap();
        assert_eq!(path, b"a/b");
        assert_eq!(hash, &[7u8; 32]);
        assert!(record_prefix(&rec[..10]).is_none());
    }
}
