//! One ranked image and the ranking order every vector index and every search shares.

use serde::Serialize;

use crate::store::ImageId;

/// One ranked image (or video).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// The image.
    pub id: ImageId,
    /// Cosine similarity with the query (the BM25 score for a keyword-only ranking); a video's is
    /// its best moment's.
    pub score: f32,
    /// A video's moments that match, best first (the first is the one `score` is of); empty
    /// for a photo, and for a video found by other means than its moments (keywords, filters).
    pub moments: Vec<MomentScore>,
}

/// One moment of a video and its similarity with the query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MomentScore {
    /// Milliseconds from the start.
    pub at_ms: u32,
    /// Cosine similarity with the query.
    pub score: f32,
}

impl Hit {
    /// A hit without moments (a photo).
    pub fn new(id: ImageId, score: f32) -> Self {
        Self { id, score, moments: Vec::new() }
    }
}

/// Sorts hits best first; equal scores by ascending id.
pub fn rank(hits: &mut [Hit]) {
    hits.sort_by(by_rank);
}

/// The ranking order: higher score first, ties by lower image id.
pub fn by_rank(a: &Hit, b: &Hit) -> std::cmp::Ordering {
    b.score.total_cmp(&a.score).then(a.id.cmp(&b.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_are_ordered_by_id() {
        let mut hits = vec![Hit::new(ImageId(3), 0.5), Hit::new(ImageId(1), 0.5), Hit::new(ImageId(2), 0.9)];
        rank(&mut hits);
        let ids: Vec<u64> = hits.iter().map(|h| h.id.0).collect();
        assert_eq!(ids, vec![2, 1, 3]);
    }
}
