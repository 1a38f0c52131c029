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

/// `hits` ranked, each image once (with its best score: an image re-embedded since a derived
/// index was written is in it twice), at most `k`.
pub(crate) fn best_of_each(mut hits: Vec<Hit>, k: usize) -> Vec<Hit> {
    rank(&mut hits);
    let mut seen = std::collections::HashSet::new();
    hits.retain(|h| seen.insert(h.id));
    hits.truncate(k);
    hits
}

/// The first `k` of `items` in `order` that pass `accept` (which may read the store), in that
/// order. Items are ordered only as far as needed — the best `k`, then a batch at least twice as
/// large of the rest, until `k` pass — so an unfiltered selection sorts `k` items instead of all
/// of them.
pub(crate) fn best_passing<T: Clone>(items: &mut [T], k: usize, order: impl Fn(&T, &T) -> std::cmp::Ordering + Copy, accept: impl Fn(&T) -> bool) -> Vec<T> {
    let mut kept = Vec::with_capacity(k.min(items.len()));
    let mut rest = items;
    let mut batch = 0;
    while kept.len() < k && !rest.is_empty() {
        // At least twice the last batch: under a narrow filter the rounds stay logarithmic.
        batch = (k - kept.len()).max(2 * batch).min(rest.len());
        let want = batch;
        if want < rest.len() {
            rest.select_nth_unstable_by(want - 1, order);
        }
        let (next, tail) = rest.split_at_mut(want);
        next.sort_by(order);
        kept.extend(next.iter().filter(|item| accept(item)).cloned());
        rest = tail;
    }
    // A batch larger than what was missing may pass more than needed: they come in order.
    kept.truncate(k);
    kept
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

    #[test]
    fn a_selection_skips_what_fails_and_still_fills_k_in_order() {
        let mut items: Vec<u32> = (0..100).rev().collect();
        assert_eq!(best_passing(&mut items, 4, |a, b| a.cmp(b), |x| x % 3 == 0), vec![0, 3, 6, 9]);
        assert_eq!(best_passing(&mut items, 4, |a, b| a.cmp(b), |x| *x > 97), vec![98, 99], "fewer pass than k");
        assert!(best_passing(&mut items, 0, |a, b| a.cmp(b), |_| true).is_empty());
    }
}
