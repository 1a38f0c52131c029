//! Rows of a collection copied into a local library, keyed by row key (so a pulled library and
//! every front end give an item the same id): `store pull`, which brings a whole collection back
//! into an embedded library; a front end's mirror of every row's record (what its keyword
//! index, facets and date order read); and its copies of the vectors and thumbnails of the rows
//! it shows.

use std::collections::HashMap;

use clipsight_indexer::ModelId;

use super::client::{Part, Patience};
use super::rows::Stored;
use super::Collection;
use crate::ann::AnnError;
use crate::store::{ImageId, RemoteRow, Store};

/// Rows read and committed together by a pull (each batch is recorded at once, so an
/// interrupted pull resumes after its last batch).
const PULL_BATCH: usize = 512;

/// Writes `stored` rows of collection `place` into `store` as images (records, annotations and
/// automatic tags) with their row keys as ids, and records each (key, stamp) as the remote rows
/// of an indexer are recorded. `whole` rows (read with their vectors and thumbnails) are
/// embedded by `model` and replace earlier copies; records alone (read without) replace an
/// earlier copy with its embedding and thumbnail, which are read again when the row is next
/// shown. Rows with an unreadable vector are left out, and rows without a record (too long to
/// keep) too, an earlier copy of them removed. Returns the rows written.
pub fn copy_rows(store: &Store, place: &str, model: ModelId, stored: &[Stored], whole: bool) -> Result<usize, AnnError> {
    let mut changes = store.changes();
    let mut copied = 0;
    for row in stored {
        let id = ImageId(row.key);
        let Some(about) = &row.record else {
            // Its record was too long to keep in the row: it cannot be shown from here, and a
            // copy of an older record goes.
            if let Some(old) = store.file(id)? {
                changes.delete_image(id, &old)?;
                changes.forget_remote(place, row.key);
            }
            continue;
        };
        let embedding = if whole {
            let Some(embedding) = row.embedding() else { continue };
            Some(embedding)
        } else {
            None
        };
        if let Some(old) = store.file(id)? {
            match embedding {
                Some(_) => changes.unindex_record(id, &old),
                None => changes.delete_image(id, &old)?,
            }
        }
        match &embedding {
            Some(embedding) => changes.put_image(id, &about.file, model, embedding, &row.thumbnail),
            None => changes.put_record(id, &about.file),
        }
        changes.put_annotations(id, &about.annotations);
        changes.put_tags(id, &about.tags);
        changes.record_remote(place, &RemoteRow { key: row.key, image: id, fingerprint: row.stamp });
        copied += 1;
    }
    if whole && store.active_model()?.is_none() && copied > 0 {
        changes.set_active_model(model);
    }
    changes.commit()?;
    Ok(copied)
}

/// How much of each row a pull copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Records, vectors and thumbnails, as of now (`store pull`: an embedded library of its own).
    Whole,
    /// Records alone, as of a few seconds ago (a front end's mirror: its keyword index, facets
    /// and filters over every row; a row's vector and thumbnail are read when it is shown).
    Records,
}

/// What a pull did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PullSummary {
    /// Rows copied (new here, or changed there since the last pull).
    pub copied: usize,
    /// Rows already here as they are there.
    pub unchanged: usize,
    /// Rows that cannot be shown from the collection (their record was too long to keep).
    pub skipped: usize,
    /// Images removed here because their rows are gone there.
    pub removed: usize,
}

/// Makes `store` hold `collection`'s rows as of now, to `depth`: rows it lacks or holds at
/// another stamp are copied (in batches of [`PULL_BATCH`], each recorded in the write that
/// copies it, so a pull cut short resumes), and images an earlier pull copied whose rows are
/// gone are removed. The keys are listed strongly after what is held here was read, so a row
/// copied meanwhile by a search is never taken for gone; a row read at bounded staleness whose
/// stamp is not the listed one is read again strongly, so nothing older than the listing is
/// copied over a newer copy. `progress(done, total)` follows the rows to copy.
pub fn pull(store: &Store, collection: &Collection, model: ModelId, depth: Depth, progress: &mut dyn FnMut(usize, usize)) -> Result<PullSummary, AnnError> {
    let place = collection.place();
    let whole = depth == Depth::Whole;
    let part = if whole { Part::Whole } else { Part::Record };
    let mut held: HashMap<u64, RemoteRow> = store.remote_rows(&place).map(|r| r.map(|r| (r.key, r))).collect::<Result<_, _>>()?;
    let mut wanted = HashMap::new();
    let mut summary = PullSummary::default();
    for (key, stamp) in collection.stamps(Patience::Write)? {
        match held.remove(&key) {
            Some(row) if row.fingerprint == stamp && (!whole || store.embedding(model, row.image)?.is_some()) => summary.unchanged += 1,
            _ => {
                wanted.insert(key, stamp);
            }
        }
    }
    let keys: Vec<u64> = wanted.keys().copied().collect();
    for (done, batch) in keys.chunks(PULL_BATCH).enumerate() {
        let mut stored = collection.stored(batch, part, false, Patience::Write)?;
        let stale: Vec<u64> = stored.iter().filter(|row| wanted.get(&row.key) != Some(&row.stamp)).map(|row| row.key).collect();
        if !stale.is_empty() {
            stored.retain(|row| !stale.contains(&row.key));
            stored.extend(collection.stored(&stale, part, true, Patience::Write)?);
        }
        // A search may have copied a row whole since it was listed: its copy stays.
        let mut fresh = Vec::with_capacity(stored.len());
        for row in stored {
            if !whole && store.remote_row(&place, row.key)?.is_some_and(|r| r.fingerprint == row.stamp) {
                summary.unchanged += 1;
            } else {
                fresh.push(row);
            }
        }
        let copied = copy_rows(store, &place, model, &fresh, whole)?;
        summary.copied += copied;
        summary.skipped += fresh.len() - copied;
        progress((done * PULL_BATCH + batch.len()).min(keys.len()), keys.len());
    }
    let mut changes = store.changes();
    for &key in held.keys() {
        if let Some(record) = store.file(ImageId(key))? {
            changes.delete_image(ImageId(key), &record)?;
            summary.removed += 1;
        }
        changes.forget_remote(&place, key);
    }
    changes.commit()?;
    Ok(summary)
}
