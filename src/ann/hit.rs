//! One ranked image and the ranking order every vector index and every search shares.

use serde::Serialize;

use crate::store::ImageId;

/// One ranked image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Hit {
    /// The image.
    pub id: ImageId,
    /// Cosine similarity with the query (the BM25 score for a keyword-only ranking).
    pub score: f32,
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
        let mut hits = vec![
            Hit { id: ImageId(3), score: 0.5 },
            Hit { id: ImageId(1), score: 0.5 },
            Hit { id: ImageId(2), score: 0.9 },
        ];
        rank(&mut hits);
        let ids: Vec<u64> = hits.iter().map(|h| h.id.0).collect();
        assert_eq!(ids, vec![2, 1, 3]);
    }
}
