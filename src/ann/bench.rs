//! `clipsight bench ann`: build time, memory, throughput and recall of the HNSW graph against an
//! exact scan, on synthetic data shaped like CLIP embeddings.
//!
//! Uniform random vectors in 512-d have no neighbourhood structure (HNSW recall there is near
//! chance), so the data is a Gaussian mixture in a 32-d latent space, projected to `dim`
//! dimensions with a little isotropic noise and normalised (clustered, low intrinsic dimension).
//! Two query sets: held-out "image" points from the same distribution, and "text" points shifted
//! by a common offset (CLIP's modality gap), which land outside the indexed distribution.

use std::time::Instant;

use clipsight_indexer::embedding::dot;
use clipsight_indexer::Embedding;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

use super::{rank, AnnIndex, AnnParams, Hit};
use crate::store::ImageId;

/// Latent dimensionality of the synthetic embeddings.
const LATENT: usize = 32;
/// Mixture components.
const CLUSTERS: usize = 1000;

/// One (query set, ef) measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// "image" or "text".
    pub queries: &'static str,
    /// ef at search time.
    pub ef: usize,
    /// Queries per second, one thread.
    pub qps: f64,
    /// Mean recall@10 against the exact scan.
    pub recall_at_10: f64,
}

/// The whole report (`--json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct AnnReport {
    /// Indexed vectors.
    pub n: usize,
    /// Dimensions.
    pub dim: usize,
    /// Graph build time (all cores).
    pub build_s: f64,
    /// Resident memory added by the graph (vectors included), MiB.
    pub memory_mb: f64,
    /// Exact-scan queries per second, one thread.
    pub exact_qps: f64,
    /// HNSW parameters.
    pub m: usize,
    /// Build-time ef.
    pub ef_construction: usize,
    /// Measurements.
    pub runs: Vec<Run>,
}

/// Synthetic CLIP-like data: `n` indexed vectors and `q` queries of each kind.
pub struct Dataset {
    /// Indexed vectors with ids 1..=n.
    pub vectors: Vec<(ImageId, Embedding)>,
    /// Image-like queries.
    pub image_queries: Vec<Embedding>,
    /// Text-like (shifted) queries.
    pub text_queries: Vec<Embedding>,
}

impl Dataset {
    /// Generates the data deterministically from `seed`.
    pub fn generate(n: usize, dim: usize, queries: usize, seed: u64) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let normal = |rng: &mut rand::rngs::StdRng| -> f32 { StandardNormal.sample(rng) };
        let projection: Vec<f32> = (0..LATENT * dim).map(|_| normal(&mut rng) / (LATENT as f32).sqrt()).collect();
        let centres: Vec<Vec<f32>> = (0..CLUSTERS).map(|_| (0..LATENT).map(|_| normal(&mut rng)).collect()).collect();
        let gap: Vec<f32> = (0..dim).map(|_| normal(&mut rng)).collect();
        let gap = Embedding::normalized(gap);
        let point = |rng: &mut rand::rngs::StdRng, shift: f32| -> Embedding {
            let c = &centres[rng.random_range(0..CLUSTERS)];
            let latent: Vec<f32> = c.iter().map(|x| x + 0.8 * normal(rng)).collect();
            let mut v = vec![0f32; dim];
            for (l, value) in latent.iter().enumerate() {
                let row = &projection[l * dim..(l + 1) * dim];
                v.iter_mut().zip(row).for_each(|(o, p)| *o += value * p);
            }
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            for (i, o) in v.iter_mut().enumerate() {
                *o = *o / norm + 0.05 * normal(rng) / (dim as f32).sqrt() + shift * gap.as_slice()[i];
            }
            Embedding::normalized(v)
        };
        let vectors = (0..n).map(|i| (ImageId(i as u64 + 1), point(&mut rng, 0.0))).collect();
        let image_queries = (0..queries).map(|_| point(&mut rng, 0.0)).collect();
        let text_queries = (0..queries).map(|_| point(&mut rng, 1.0)).collect();
        Self { vectors, image_queries, text_queries }
    }
}

fn exact_top(vectors: &[(ImageId, Embedding)], q: &Embedding, k: usize) -> Vec<Hit> {
    let mut hits: Vec<Hit> = vectors.iter().map(|(id, e)| Hit::new(*id, dot(q.as_slice(), e.as_slice()))).collect();
    let k = k.min(hits.len());
    hits.select_nth_unstable_by(k.saturating_sub(1), |a, b| b.score.total_cmp(&a.score));
    hits.truncate(k);
    rank(&mut hits);
    hits
}


/// Runs the benchmark. `progress` receives one line per finished step.
pub fn run(n: usize, dim: usize, queries: usize, efs: &[usize], params: AnnParams, mut progress: impl FnMut(&str)) -> AnnReport {
    let data = Dataset::generate(n, dim, queries, 7);
    progress(&format!("generated {n} vectors of {dim} dimensions"));
    let before = crate::bench::rss_mb();
    let started = Instant::now();
    let index = AnnIndex::build(&data.vectors, params);
    let build_s = started.elapsed().as_secs_f64();
    let memory_mb = crate::bench::rss_mb() - before;
    progress(&format!("built the graph in {build_s:.1}s"));
    let mut runs = Vec::new();
    let mut exact_seconds = 0.0;
    let mut exact_count = 0usize;
    for (name, set) in [("image", &data.image_queries), ("text", &data.text_queries)] {
        let started = Instant::now();
        let truth: Vec<Vec<Hit>> = set.iter().map(|q| exact_top(&data.vectors, q, 10)).collect();
        exact_seconds += started.elapsed().as_secs_f64();
        exact_count += set.len();
        for &ef in efs {
            let started = Instant::now();
            let found: Vec<Vec<Hit>> = set.iter().map(|q| index.search(q.as_slice(), 10, ef, &|_| true)).collect();
            let seconds = started.elapsed().as_secs_f64();
            let recall = found
                .iter()
                .zip(&truth)
                .map(|(f, t)| f.iter().filter(|h| t.iter().any(|x| x.id == h.id)).count() as f64 / t.len().max(1) as f64)
                .sum::<f64>()
                / set.len().max(1) as f64;
            let run = Run { queries: name, ef, qps: set.len() as f64 / seconds, recall_at_10: recall };
            progress(&format!("{name} queries, ef {ef}: {:.0} q/s, recall@10 {:.4}", run.qps, run.recall_at_10));
            runs.push(run);
        }
    }
    AnnReport {
        n,
        dim,
        build_s,
        memory_mb,
        exact_qps: exact_count as f64 / exact_seconds,
        m: params.m,
        ef_construction: params.ef_construction,
        runs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_queries_are_shifted_away_from_the_images() {
        let d = Dataset::generate(200, 64, 20, 1);
        let best = |q: &Embedding| exact_top(&d.vectors, q, 1)[0].score;
        let image: f32 = d.image_queries.iter().map(best).sum::<f32>() / 20.0;
        let text: f32 = d.text_queries.iter().map(best).sum::<f32>() / 20.0;
        assert!(image > text + 0.1, "image {image} vs text {text}");
    }

    #[test]
    fn the_graph_finds_most_true_neighbours_on_clustered_data() {
        let r = run(3000, 64, 30, &[128], AnnParams::default(), |_| {});
        assert!(r.runs.iter().all(|run| run.recall_at_10 > 0.9), "{:?}", r.runs);
    }
}
