//! v6: a file record ends with its companions (the files of the same picture listed with it: a
//! RAW beside its JPEG twin, a Live Photo's motion video). Records are postcard-encoded and a
//! list is its length (a varint) then its elements, so every v5 record gains an empty list by
//! appending one zero byte; nothing else of the record is read or changed.

use rocksdb::{IteratorMode, WriteBatch, DB};

use crate::{cf, handle, MigrationError};

pub(crate) fn apply(db: &DB, batch: &mut WriteBatch) -> Result<(), MigrationError> {
    let files = handle(db, cf::FILES)?;
    for item in db.iterator_cf(files, IteratorMode::Start) {
        let (id, record) = item?;
        batch.put_cf(files, id, with_no_companions(&record));
    }
    Ok(())
}

/// A v5 record followed by an empty companion list.
fn with_no_companions(record: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.len() + 1);
    out.extend_from_slice(record);
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_list_is_one_zero_byte_after_the_record() {
        assert_eq!(with_no_companions(&[3, b'a', b'/', b'b', 9]), vec![3, b'a', b'/', b'b', 9, 0]);
    }
}
