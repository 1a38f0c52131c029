//! Queries over stored embeddings.
//!
//! For now an exact scan: every stored embedding of the model is compared with the query vector.
//! Ties are ordered by image id, so results are stable.

use clipsight_indexer::{Embedding, ModelId};
use serde::Serialize;

use crate::store::{ImageId, Store, StoreError};

/// One ranked image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Hit {
    /// The image.
    pub id: ImageId,
    /// Cosine similarity with the query.
    pub score: f32,
}

/// The `k` images most similar to `query` after skipping `offset`, best first.
pub fn exact(store: &Store, model: ModelId, query: &Embedding, k: usize, offset: usize) -> Result<Vec<Hit>, StoreError> {
    let mut hits = Vec::new();
    for item in store.embeddings(model) {
        let (id, e) = item?;
        hits.push(Hit { id, score: query.cosine(&e) });
    }
    rank(&mut hits);
    Ok(hits.into_iter().skip(offset).take(k).collect())
}

/// Sorts hits best first; equal scores by ascending id.
pub fn rank(hits: &mut [Hit]) {
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
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
