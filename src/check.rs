//! `clipsight check`: verifies a library's invariants — every file record has its path entry,
//! embedding and thumbnail; every video its facts and one moment embedding per moment time;
//! nothing is orphaned or duplicated; the persisted HNSW graph matches
//! the store (or is absent, and then rebuilt on use). Used after crashes and by the crash tests.

use std::collections::{HashMap, HashSet};

use clipsight_indexer::format::MediaKind;
use clipsight_indexer::ModelId;
use serde::Serialize;

use crate::ann;
use crate::store::{ImageId, Store, StoreError};

/// What a check found. `problems` is empty for a healthy library.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckReport {
    /// File records.
    pub files: usize,
    /// Embeddings of the model.
    pub embeddings: usize,
    /// Thumbnails.
    pub thumbnails: usize,
    /// Videos, and their moments embedded with the model.
    pub videos: usize,
    /// Moment embeddings of the model, over all videos.
    pub moments: usize,
    /// The persisted graph: `absent`, `fresh` (matches the store) or `stale` (rebuilt on next use).
    pub graph: String,
    /// Whether an indexing run was interrupted (the next `index` resumes it).
    pub interrupted_run: bool,
    /// Each violated invariant, in words.
    pub problems: Vec<String>,
}

/// Checks `store` for `model`.
pub fn check(store: &Store, model: ModelId) -> Result<CheckReport, StoreError> {
    let mut problems = Vec::new();
    let mut ids = HashSet::new();
    let mut by_path: HashMap<Vec<u8>, ImageId> = HashMap::new();
    let (mut videos, mut moments) = (0, 0);
    // Companion path → the image it is listed with.
    let mut companions: Vec<(Vec<u8>, ImageId)> = Vec::new();
    for item in store.files() {
        let (id, record) = item?;
        ids.insert(id);
        companions.extend(record.companions.iter().map(|c| (c.path.clone(), id)));
        let video = store.video(id)?;
        match (record.kind(), video) {
            (MediaKind::Video, None) => problems.push(format!("video {id} has no video record")),
            (MediaKind::Photo, Some(_)) => problems.push(format!("photo {id} has a video record")),
            (MediaKind::Video, Some(video)) => {
                videos += 1;
                let embedded = store.moments(model, id)?.map_or(0, |m| m.len());
                moments += embedded;
                if embedded != video.moments_ms.len() {
                    problems.push(format!("video {id}: {} moment times, {embedded} moment embeddings", video.moments_ms.len()));
                }
            }
            (MediaKind::Photo, None) => {}
        }
        if let Some(other) = by_path.insert(record.path.clone(), id) {
            problems.push(format!("path {} is recorded twice (images {other} and {id})", record.display_path()));
        }
        if store.id_by_path(&record.path)? != Some(id) {
            problems.push(format!("image {id}: its path entry is missing or points elsewhere"));
        }
    }
    for (path, id) in companions {
        if let Some(other) = by_path.get(&path) {
            problems.push(format!("{} is an item ({other}) and listed with image {id}", String::from_utf8_lossy(&path)));
        }
    }
    let mut embeddings = 0;
    for item in store.embeddings(model) {
        let (id, _) = item?;
        embeddings += 1;
        if !ids.contains(&id) {
            problems.push(format!("embedding of image {id} has no file record"));
        }
    }
    let mut thumbnails = 0;
    let mut thumbed = HashSet::new();
    for id in store.thumbnail_ids() {
        let id = id?;
        thumbnails += 1;
        thumbed.insert(id);
        if !ids.contains(&id) {
            problems.push(format!("thumbnail of image {id} has no file record"));
        }
    }
    for id in store.annotation_ids() {
        let id = id?;
        if !ids.contains(&id) {
            problems.push(format!("annotations of image {id} have no file record"));
        }
    }
    for id in &ids {
        if store.embedding(model, *id)?.is_none() {
            problems.push(format!("image {id} has no embedding"));
        }
        if !thumbed.contains(id) {
            problems.push(format!("image {id} has no thumbnail"));
        }
    }
    for item in store.path_entries() {
        let (path, id) = item?;
        if by_path.get(&path) != Some(&id) {
            problems.push(format!("path entry {} → {id} has no matching record", String::from_utf8_lossy(&path)));
        }
    }
    let graph = match ann::manifest(store, model) {
        None => "absent",
        Some(m) if m.epoch == store.epoch()? => {
            if m.count.saturating_sub(m.tombstones.len()) != embeddings {
                problems.push(format!("the graph claims {} live points, the store has {embeddings} embeddings", m.count - m.tombstones.len()));
            }
            "fresh"
        }
        Some(_) => "stale",
    };
    problems.sort();
    Ok(CheckReport {
        files: ids.len(),
        embeddings,
        thumbnails,
        videos,
        moments,
        graph: graph.to_string(),
        interrupted_run: store.interrupted_run()?,
        problems,
    })
}
