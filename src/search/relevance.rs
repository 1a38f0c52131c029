//! Which results are relevant to a query: a cutoff chosen per query, not one global threshold.
//!
//! A CLIP model's cosines are not comparable across queries: "red" tops out far lower than "a
//! red circle on the left", and a library's best match for one query can score below the
//! irrelevant images of another. So each query's cutoff is read off that query's own scores over
//! the library — exactly for its best hits, and through a [`Background`] (an even spread of the
//! library's own vectors) for the rest — as the lower of two cuts:
//!
//! - **the split of two populations**: the scores are taken as a mixture of the relevant
//!   images and the rest, each roughly normal, and cut where Kittler and Illingworth's
//!   minimum-error criterion puts the boundary (the relevant side holding at most half the
//!   library). It finds broad concepts ("red", a few hundred of a thousand images) that stand
//!   apart as a population of their own;
//! - **a fraction of the way to the best hit**: `μ + f · (best − μ)`, μ the mean score over the
//!   library, f = [`FRACTION`]. It keeps narrow queries, whose few relevant images are no
//!   population, to the hits close to the best one.
//!
//! Both cuts move with the query and neither reads an absolute cosine, so the rule carries over
//! between queries (one word or a sentence, a text, an image or a mix) and between models whose
//! cosines live on other scales (SigLIP's). The best hit is always relevant. `f` was chosen on
//! the trained fixture's scenes and checked on held-out ones (`clipsight eval`, README); the cost
//! is one dot product per background vector (2,048 at most) and a sort of their scores.

use clipsight_indexer::embedding::dot;
use clipsight_indexer::{Embedding, ModelId};

use crate::store::{Store, StoreError};

/// Background vectors sampled from a library.
pub const BACKGROUND_SIZE: usize = 2048;

/// Best hits whose exact scores the cutoff reads (the background stands for the rest).
pub const CUTOFF_HITS: usize = 100;

/// Where the second cut lies between the mean score and the best hit's.
pub const FRACTION: f32 = 0.86;

/// An even spread of a library's vectors, that a query's scores are compared with, and how many
/// vectors the library has (the images the spread stands for).
#[derive(Debug, Clone)]
pub struct Background {
    dim: usize,
    rows: Vec<f32>,
    library: usize,
}

impl Background {
    /// A background of `vectors` (all of one dimension) from a library of `library` vectors.
    pub fn new(vectors: impl IntoIterator<Item = Embedding>, library: usize) -> Self {
        let mut dim = 0;
        let mut rows = Vec::new();
        for v in vectors {
            dim = v.as_slice().len();
            rows.extend_from_slice(v.as_slice());
        }
        Self { dim, rows, library }
    }

    /// [`BACKGROUND_SIZE`] vectors spread over the ids of a library of `library` vectors (see
    /// [`Store::spread_embeddings`]).
    pub fn sample(store: &Store, model: ModelId, library: usize) -> Result<Self, StoreError> {
        Ok(Self::new(store.spread_embeddings(model, BACKGROUND_SIZE)?.into_iter().map(|(_, e)| e), library))
    }

    /// Whether the background is empty (an empty library).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The cutoff of `query` whose best hits in the library score `top` (exact scores, best
    /// first; at least the best one): hits scoring at least this are relevant. Without a
    /// background (an empty library) only the best hit passes.
    pub fn cutoff(&self, query: &[f32], top: &[f32]) -> f32 {
        let Some(&best) = top.first() else { return f32::MAX };
        if self.is_empty() || query.len() != self.dim || !best.is_finite() {
            return best;
        }
        let background: Vec<f32> = self.rows.chunks_exact(self.dim).map(|row| dot(query, row)).filter(|s| s.is_finite()).collect();
        if background.is_empty() {
            return best;
        }
        let mean = (background.iter().map(|&s| s as f64).sum::<f64>() / background.len() as f64) as f32;
        let fraction = if best > mean { mean + FRACTION * (best - mean) } else { best };
        match two_populations(&library_scores(top, &background, self.library)) {
            Some(split) => split.min(fraction),
            None => fraction,
        }
    }
}

/// The library's scores as weighted samples, best first: the exact `top` scores (weight 1 each),
/// then the background's scores below the last of them, each standing for its share of the
/// images that `top` does not hold.
fn library_scores(top: &[f32], background: &[f32], library: usize) -> Vec<(f32, f64)> {
    let last = top.last().copied().unwrap_or(f32::MAX);
    let mut below: Vec<f32> = background.iter().copied().filter(|&s| s < last).collect();
    below.sort_by(|a, b| b.total_cmp(a));
    let rest = library.saturating_sub(top.len());
    let weight = if below.is_empty() { 0.0 } else { rest as f64 / below.len() as f64 };
    top.iter().map(|&s| (s, 1.0)).chain(below.into_iter().map(|s| (s, weight))).filter(|&(_, w)| w > 0.0).collect()
}

/// Kittler–Illingworth minimum-error threshold of weighted scores (best first): the boundary
/// between an upper and a lower population, each modelled as a normal distribution, that
/// minimises the classification error; the upper one holds at most half the weight. `None`
/// when no split leaves both populations with a spread.
fn two_populations(scores: &[(f32, f64)]) -> Option<f32> {
    let total: f64 = scores.iter().map(|&(_, w)| w).sum();
    let (sum, squares): (f64, f64) = scores.iter().fold((0.0, 0.0), |(s, q), &(x, w)| (s + w * x as f64, q + w * (x as f64).powi(2)));
    let (mut w1, mut s1, mut q1) = (0.0, 0.0, 0.0);
    let mut best: Option<(f64, f32)> = None;
    for pair in scores.windows(2) {
        let ((x, w), (next, _)) = (pair[0], pair[1]);
        w1 += w;
        s1 += w * x as f64;
        q1 += w * (x as f64).powi(2);
        if w1 > total / 2.0 {
            break;
        }
        let w2 = total - w1;
        let variance = |w: f64, s: f64, q: f64| q / w - (s / w).powi(2);
        let (v1, v2) = (variance(w1, s1, q1), variance(w2, sum - s1, squares - q1));
        if v1 <= 1e-12 || v2 <= 1e-12 || x == next {
            continue;
        }
        let (p1, p2) = (w1 / total, w2 / total);
        let error = p1 * v1.sqrt().ln() + p2 * v2.sqrt().ln() - p1 * p1.ln() - p2 * p2.ln();
        if best.is_none_or(|(e, _)| error < e) {
            best = Some((error, (x + next) / 2.0));
        }
    }
    best.map(|(_, threshold)| threshold)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Embedding {
        Embedding::normalized(v.to_vec())
    }

    #[test]
    fn a_narrow_query_is_cut_a_fixed_fraction_of_the_way_to_its_best_hit() {
        // Scores spread evenly: no population stands apart, so the fraction decides.
        let background = Background::new((0..100).map(|i| unit(&[1.0, i as f32 / 50.0 - 1.0])), 100);
        let query = unit(&[0.0, 1.0]);
        let scores: Vec<f32> = background.rows.chunks_exact(2).map(|r| dot(query.as_slice(), r)).collect();
        let mean = scores.iter().sum::<f32>() / 100.0;
        let best = scores.iter().copied().fold(f32::MIN, f32::max);
        let cutoff = background.cutoff(query.as_slice(), &[best]);
        assert!(cutoff <= mean + FRACTION * (best - mean) + 1e-6);
        assert!(cutoff <= best);
    }

    #[test]
    fn a_broad_concept_is_split_from_the_rest_where_its_population_begins() {
        // 30 images near the query, 70 far from it: the cut falls in the gap between them,
        // below the fraction of the way to the best hit.
        let near = (0..30).map(|i| unit(&[1.0, 0.3 + i as f32 * 0.01]));
        let far = (0..70).map(|i| unit(&[0.2, 1.0 + i as f32 * 0.02]));
        let background = Background::new(near.chain(far), 100);
        let query = unit(&[1.0, 0.0]);
        let mut scores: Vec<f32> = background.rows.chunks_exact(2).map(|r| dot(query.as_slice(), r)).collect();
        scores.sort_by(|a, b| b.total_cmp(a));
        let cutoff = background.cutoff(query.as_slice(), &scores);
        let relevant = scores.iter().filter(|&&s| s >= cutoff).count();
        assert_eq!(relevant, 30, "cutoff {cutoff} over {scores:?}");
    }

    #[test]
    fn the_background_stands_for_the_images_the_best_hits_do_not_hold() {
        // Two exact hits of a library of 1,000, whose other 998 images the background's two
        // scores below the second hit stand for, 499 each.
        let weighted = library_scores(&[0.9, 0.8], &[0.85, 0.5, 0.4], 1000);
        assert_eq!(weighted, vec![(0.9, 1.0), (0.8, 1.0), (0.5, 499.0), (0.4, 499.0)]);
    }

    #[test]
    fn without_a_background_only_the_best_hit_passes() {
        let empty = Background::new([], 0);
        assert_eq!(empty.cutoff(&[1.0, 0.0], &[0.3, 0.2]), 0.3);
        assert!(empty.is_empty());
    }
}
