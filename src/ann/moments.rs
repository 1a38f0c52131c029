//! The moments of a library's videos, scanned exactly beside the photos' index: a video is one
//! library item whose score for a query is that of its best moment, and whose other matching
//! moments come with it.
//!
//! Moments are far fewer than photos in a typical library (a video gives one every few seconds,
//! capped per video), so an exact scan of them, held in memory, never misses the moment that
//! matches. Its cost at scale (10^5 moments and more) is not measured yet.

use clipsight_indexer::embedding::dot;
use clipsight_indexer::ModelId;
use rayon::prelude::*;

use super::{rank, AnnError, Hit, MomentScore};
use crate::store::{ImageId, Store, StoreError};

/// Moments listed with a hit besides its best: those scoring within this of the best one.
pub const MOMENT_MARGIN: f32 = 0.03;
/// At most this many moments are listed with a hit.
pub const MAX_LISTED_MOMENTS: usize = 8;

/// Every video's moments under one model, in memory.
pub struct MomentIndex {
    dim: usize,
    /// Per video: its id and its rows (`start..start + count`).
    videos: Vec<(ImageId, usize, usize)>,
    /// Each row's time, milliseconds.
    times: Vec<u32>,
    /// Row-major unit vectors.
    vectors: Vec<f32>,
}

impl MomentIndex {
    /// The moments stored for `model`; `None` when the library has no videos.
    pub fn load(store: &Store, model: ModelId) -> Result<Option<Self>, AnnError> {
        let mut index = Self { dim: 0, videos: Vec::new(), times: Vec::new(), vectors: Vec::new() };
        for item in store.all_moments(model) {
            let (id, embeddings) = item?;
            let video = store.video(id)?.ok_or_else(|| StoreError::Corrupt(format!("moments of {id} without its video record")))?;
            if video.moments_ms.len() != embeddings.len() {
                return Err(StoreError::Corrupt(format!("video {id}: {} moment times for {} embeddings", video.moments_ms.len(), embeddings.len())).into());
            }
            index.dim = embeddings.first().map_or(index.dim, |e| e.dim());
            index.videos.push((id, index.times.len(), embeddings.len()));
            index.times.extend(&video.moments_ms);
            embeddings.iter().for_each(|e| index.vectors.extend_from_slice(e.as_slice()));
        }
        Ok((!index.videos.is_empty()).then_some(index))
    }

    /// Videos held.
    pub fn videos(&self) -> usize {
        self.videos.len()
    }

    /// The `k` best videos for `query` that pass `accept`, each scored by its best moment and
    /// carrying its matching moments ([`MOMENT_MARGIN`], at most [`MAX_LISTED_MOMENTS`]).
    pub fn search(&self, query: &[f32], k: usize, accept: &(dyn Fn(ImageId) -> bool + Sync)) -> Vec<Hit> {
        if k == 0 || query.len() != self.dim {
            return Vec::new();
        }
        let mut hits: Vec<Hit> = self
            .videos
            .par_iter()
            .filter_map(|&(id, start, count)| {
                let vectors = (start..start + count).map(|row| (self.times[row], &self.vectors[row * self.dim..(row + 1) * self.dim]));
                video_hit(id, query, vectors)
            })
            .collect();
        rank(&mut hits);
        hits.into_iter().filter(|h| accept(h.id)).take(k).collect()
    }
}

/// A video's hit for `query` from its moments (time, unit vector): scored by the best moment,
/// listing those within [`MOMENT_MARGIN`] of it, at most [`MAX_LISTED_MOMENTS`], best first.
/// `None` for a video without moments.
pub fn video_hit<'a>(id: ImageId, query: &[f32], moments: impl Iterator<Item = (u32, &'a [f32])>) -> Option<Hit> {
    let mut scored: Vec<MomentScore> = moments.map(|(at_ms, v)| MomentScore { at_ms, score: dot(query, v) }).collect();
    scored.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.at_ms.cmp(&b.at_ms)));
    let best = scored.first()?.score;
    scored.retain(|m| m.score >= best - MOMENT_MARGIN);
    scored.truncate(MAX_LISTED_MOMENTS);
    Some(Hit { id, score: best, moments: scored })
}

/// A video's hit for `query` read from the store (`None` for a photo, or a video without
/// moments): for a video that another ranking found (keywords).
pub fn stored_video_hit(store: &Store, model: ModelId, id: ImageId, query: &[f32]) -> Result<Option<Hit>, StoreError> {
    let (Some(video), Some(moments)) = (store.video(id)?, store.moments(model, id)?) else { return Ok(None) };
    Ok(video_hit(id, query, video.moments_ms.iter().copied().zip(moments.iter().map(|e| e.as_slice()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FileRecord, OpenMode, VideoRecord};
    use clipsight_indexer::Embedding;

    #[test]
    fn a_video_scores_as_its_best_moment_and_lists_the_moments_that_match() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), OpenMode::ReadWrite).unwrap();
        let model = ModelId([5; 16]);
        let unit = |v: [f32; 3]| Embedding::normalized(v.to_vec());
        let mut changes = store.changes();
        for (id, moments) in [(1u64, vec![(0, [1.0, 0.0, 0.0]), (12_000, [0.0, 1.0, 0.0]), (20_000, [0.02, 1.0, 0.0])]), (2, vec![(0, [1.0, 0.1, 0.0])])] {
            let record = FileRecord::synthetic(&format!("/v/{id}.mp4"), [id as u8; 32], "mp4");
            let embeddings: Vec<Embedding> = moments.iter().map(|(_, v)| unit(*v)).collect();
            changes.put_image(ImageId(id), &record, model, &embeddings[0], b"");
            changes.put_video(ImageId(id), &VideoRecord { duration_ms: 30_000, moments_ms: moments.iter().map(|(t, _)| *t).collect() }, model, &embeddings);
        }
        changes.set_active_model(model);
        changes.commit().unwrap();
        let index = MomentIndex::load(&store, model).unwrap().expect("two videos");
        assert_eq!(index.videos(), 2);
        let hits = index.search(unit([0.0, 1.0, 0.0]).as_slice(), 10, &|_| true);
        assert_eq!(hits[0].id, ImageId(1));
        assert_eq!(hits[0].moments.iter().map(|m| m.at_ms).collect::<Vec<_>>(), vec![12_000, 20_000], "best first, the near one listed, the unlike one not");
        assert!((hits[0].score - 1.0).abs() < 1e-6);
        assert_eq!(index.search(unit([0.0, 1.0, 0.0]).as_slice(), 10, &|id| id != ImageId(1))[0].id, ImageId(2), "filters apply");
        assert!(MomentIndex::load(&store, ModelId([6; 16])).unwrap().is_none(), "another model's space has no moments");
        // A video another ranking found gets the same moments from the store.
        let query = unit([0.0, 1.0, 0.0]);
        assert_eq!(stored_video_hit(&store, model, ImageId(1), query.as_slice()).unwrap().as_ref(), Some(&hits[0]));
        assert_eq!(stored_video_hit(&store, model, ImageId(3), query.as_slice()).unwrap(), None, "not a video");
    }
}
