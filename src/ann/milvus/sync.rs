//! A push: the library's rows that differ from what it last sent go to the collection, rows it
//! sent whose items are gone are deleted there, and each accepted batch is recorded at once, so
//! an interrupted push resumes where it stopped and a repeated one sends nothing.

use std::collections::HashMap;

use clipsight_indexer::ModelId;

use super::rows::{row, RowRecord};
use super::Collection;
use crate::ann::AnnError;
use crate::store::{RemoteRow, Store};

/// Rows per upsert at most.
const BATCH: usize = 512;
/// Bytes of thumbnails per upsert at most (the server takes requests of up to 64 MiB).
const BATCH_BYTES: usize = 16 << 20;
/// Keys per delete expression.
const DELETE_BATCH: usize = 1000;

/// What a push did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PushSummary {
    /// Rows sent (new or changed).
    pub sent: usize,
    /// Rows deleted from the collection.
    pub removed: usize,
    /// Rows already there as they are.
    pub unchanged: usize,
}

/// Brings `collection` up to date with `store`'s items embedded by `model`; `progress(done,
/// total)` follows the items.
pub fn push(store: &Store, collection: &Collection, model: ModelId, progress: &mut dyn FnMut(usize, usize)) -> Result<PushSummary, AnnError> {
    let origin = store.ensure_library_id()?;
    let place = collection.place();
    let name = place.as_str();
    if collection.created() {
        // A new collection holds nothing of what was recorded as sent to an earlier one.
        let stale: Vec<u64> = store.remote_rows(name).map(|r| r.map(|r| r.key)).collect::<Result<_, _>>()?;
        store.record_remote(name, &[], &stale)?;
    }
    let mut sent: HashMap<u64, RemoteRow> = store.remote_rows(name).map(|r| r.map(|r| (r.key, r))).collect::<Result<_, _>>()?;
    let total = store.count_embeddings(model)?;
    let mut summary = PushSummary::default();
    let mut rows = Vec::with_capacity(BATCH);
    let mut records = Vec::with_capacity(BATCH);
    let mut bytes = 0;
    let send = |rows: &mut Vec<serde_json::Value>, records: &mut Vec<RemoteRow>, summary: &mut PushSummary| -> Result<(), AnnError> {
        if !rows.is_empty() {
            collection.upsert(rows)?;
            store.record_remote(name, records, &[])?;
            summary.sent += rows.len();
            rows.clear();
            records.clear();
        }
        Ok(())
    };
    for (done, item) in store.embeddings(model).enumerate() {
        let (id, embedding) = item?;
        let Some(file) = store.file(id)? else { continue };
        let about = RowRecord { file, annotations: store.annotations(id)?, tags: store.tags(id)? };
        let thumbnail = store.thumbnail(id)?.unwrap_or_default();
        let (value, fingerprint) = row(&about, embedding.as_slice(), &thumbnail, &origin);
        let key = value["id"].as_u64().expect("a row has an id");
        match sent.remove(&key) {
            Some(r) if r.fingerprint == fingerprint && r.image == id => summary.unchanged += 1,
            _ => {
                rows.push(value);
                records.push(RemoteRow { key, image: id, fingerprint });
                bytes += thumbnail.len();
            }
        }
        if rows.len() == BATCH || bytes >= BATCH_BYTES {
            bytes = 0;
            send(&mut rows, &mut records, &mut summary)?;
        }
        progress(done + 1, total);
    }
    send(&mut rows, &mut records, &mut summary)?;
    let gone: Vec<u64> = sent.into_keys().collect();
    for keys in gone.chunks(DELETE_BATCH) {
        collection.delete(keys, &origin)?;
        store.record_remote(name, &[], keys)?;
        summary.removed += keys.len();
    }
    Ok(summary)
}

/// How a collection compares with the library that pushed to it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Verification {
    /// The library's embedded items.
    pub local: usize,
    /// The collection's rows from this library.
    pub remote: usize,
    /// Rows there that a pull could not copy (their record was too long to keep in the row).
    pub skipped: usize,
    /// Rows whose stored vector was read back and compared.
    pub sampled: usize,
    /// Of those, rows whose vector equals the library's, float for float.
    pub equal: usize,
}

impl Verification {
    /// Whether every row there is here or was skipped, and every sampled vector is equal.
    pub fn ok(&self) -> bool {
        self.local + self.skipped == self.remote && self.equal == self.sampled
    }
}

/// Which copy a check compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copied {
    /// The library pushed to the collection: the rows it sent.
    Pushed,
    /// The library was pulled from the collection: all its rows, less those the pull skipped.
    Pulled {
        /// Rows the pull could not copy ([`super::PullSummary::skipped`]).
        skipped: usize,
    },
}

/// Compares `collection` with `store` as `copied`: row counts, and `sample` rows spread over the
/// library read back and compared with the local vectors.
pub fn verify(store: &Store, collection: &Collection, model: ModelId, sample: usize, copied: Copied) -> Result<Verification, AnnError> {
    let (origin, skipped) = match copied {
        Copied::Pushed => (Some(store.library_id()?.unwrap_or_default()), 0),
        Copied::Pulled { skipped } => (None, skipped),
    };
    let remote = collection.count(&super::expr::Pushdown::of(&crate::filters::Filters::default(), origin.as_deref()).expr)?;
    let rows: Vec<RemoteRow> = store.remote_rows(&collection.place()).collect::<Result<_, _>>()?;
    let step = (rows.len() / sample.max(1)).max(1);
    let picked: Vec<&RemoteRow> = rows.iter().step_by(step).take(sample).collect();
    let keys: Vec<u64> = picked.iter().map(|r| r.key).collect();
    let stored: HashMap<u64, Vec<f32>> = collection.stored(&keys, super::Part::Vector, true, super::Patience::Write)?.into_iter().map(|row| (row.key, row.vector)).collect();
    let mut equal = 0;
    for row in &picked {
        let local = store.embedding(model, row.image)?;
        if local.is_some_and(|e| stored.get(&row.key).is_some_and(|v| v.as_slice() == e.as_slice())) {
            equal += 1;
        }
    }
    Ok(Verification { local: store.count_embeddings(model)?, remote, skipped, sampled: picked.len(), equal })
}
