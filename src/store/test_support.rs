//! A small synthetic library for the unit tests of the modules above the store (indexes,
//! searches, the library layer): records under `/p/even/` or `/p/odd/`, and unit vectors
//! that are distinct and deterministic.

use std::path::Path;

use clipsight_indexer::{Embedding, ModelId};

use super::{FileRecord, ImageId, OpenMode, Store};

/// The embedding of synthetic image `id` (8 dimensions).
pub fn vector_of(id: u64) -> Embedding {
    Embedding::normalized((0..8).map(|d| (id as f32 * 0.37 + d as f32 * 1.3).sin()).collect())
}

/// A library in `dir` of images 1..=n embedded with `model`, and their vectors.
pub fn library_of(dir: &Path, model: ModelId, n: u64) -> (Store, Vec<(ImageId, Embedding)>) {
    let store = Store::open(dir, OpenMode::ReadWrite).unwrap();
    let vectors: Vec<(ImageId, Embedding)> = (1..=n).map(|i| (ImageId(i), vector_of(i))).collect();
    let mut changes = store.changes();
    for (id, e) in &vectors {
        let parity = if id.0 % 2 == 0 { "even" } else { "odd" };
        let mut hash = [0; 32];
        hash[..8].copy_from_slice(&id.0.to_be_bytes());
        let record = FileRecord::synthetic(&format!("/p/{parity}/{id}.png"), hash, "png");
        changes.put_image(*id, &record, model, e, &[]);
    }
    changes.set_next_image_id(ImageId(n + 1));
    changes.set_active_model(model);
    changes.commit().unwrap();
    (store, vectors)
}
