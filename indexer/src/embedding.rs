//! Unit-length embedding vectors, the currency between the model, the store and search.

use serde::{Deserialize, Serialize};

/// An L2-normalised embedding: cosine similarity between two of them is their dot product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Normalises `values` to unit length. An all-zero vector stays zero (it matches nothing).
    pub fn normalized(mut values: Vec<f32>) -> Self {
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            values.iter_mut().for_each(|v| *v /= norm);
        }
        Self(values)
    }

    /// Number of dimensions.
    pub fn dim(&self) -> usize {
        self.0.len()
    }

    /// The components.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// Consumes the embedding, returning its components.
    pub fn into_vec(self) -> Vec<f32> {
        self.0
    }

    /// Cosine similarity (the dot product of two unit vectors).
    pub fn cosine(&self, other: &Embedding) -> f32 {
        dot(&self.0, &other.0)
    }

    /// Little-endian bytes, the store's on-disk form.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// Parses little-endian bytes written by [`Embedding::to_le_bytes`]; `None` if the length is
    /// not a multiple of four.
    pub fn from_le_bytes(bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(4) {
            return None;
        }
        let values = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Some(Self(values))
    }

    /// Weighted sum of embeddings, normalised: how several query terms become one query vector.
    pub fn weighted_sum<'a>(terms: impl IntoIterator<Item = (f32, &'a Embedding)>) -> Option<Self> {
        let mut acc: Option<Vec<f32>> = None;
        for (weight, e) in terms {
            let acc = acc.get_or_insert_with(|| vec![0.0; e.dim()]);
            acc.iter_mut().zip(e.as_slice()).for_each(|(a, v)| *a += weight * v);
        }
        acc.map(Self::normalized)
    }
}

/// Dot product of two equally long slices. Eight independent accumulators let the compiler use
/// SIMD lanes (a single running sum must stay sequential under IEEE rules).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Softmax of `logits` (numerically stable).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_vectors_have_unit_length() {
        let e = Embedding::normalized(vec![3.0, 4.0]);
        assert_eq!(e.as_slice(), &[0.6, 0.8]);
    }

    #[test]
    fn bytes_round_trip() {
        let e = Embedding::normalized(vec![1.0, -2.0, 0.5]);
        assert_eq!(Embedding::from_le_bytes(&e.to_le_bytes()).unwrap(), e);
        assert!(Embedding::from_le_bytes(&[1, 2, 3]).is_none());
    }

    #[test]
    fn dot_matches_the_plain_sum_for_any_length() {
        for n in [0, 1, 7, 8, 9, 64, 77] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-5, "n = {n}");
        }
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let p = softmax(&[1.0, 3.0, 2.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[1] > p[2] && p[2] > p[0]);
    }

    #[test]
    fn weighted_sum_subtracts_negative_terms() {
        let a = Embedding::normalized(vec![1.0, 0.0]);
        let b = Embedding::normalized(vec![0.0, 1.0]);
        let q = Embedding::weighted_sum([(1.0, &a), (-1.0, &b)]).unwrap();
        assert!(q.cosine(&a) > 0.7 && q.cosine(&b) < -0.7);
    }
}
