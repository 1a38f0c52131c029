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

/// Latent dimensionality of the synthetic embeddings (`bench ann --latent` changes it: a
/// higher one makes neighbours harder to tell apart, for the graph and the sketch alike).
pub const LATENT: usize = 32;
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

/// Which synthetic data `bench ann` indexes.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Data {
    /// [`Dataset::generate_in`]: a Gaussian mixture in a `latent`-dimensional space.
    Clustered {
        /// Latent dimensions.
        latent: usize,
    },
    /// [`Dataset::power_law`]: no clusters, spectrum exponent `alpha`.
    PowerLaw {
        /// Spectrum exponent.
        alpha: f32,
    },
}

/// One (query set, candidate count) measurement of the sketch ([`super::sketch`]): the first
/// answers of a large library starting cold.
#[derive(Debug, Clone, Serialize)]
pub struct SketchRun {
    /// "image" or "text".
    pub queries: &'static str,
    /// Sketch candidates re-ranked exactly.
    pub candidates: usize,
    /// Whether this is the count searches use at this size ([`super::sketch_candidates`]).
    pub chosen: bool,
    /// Queries per second, all cores, files in the page cache.
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
    /// The synthetic data.
    pub data: Data,
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
    /// Graph measurements (none with `--no-graph`).
    pub runs: Vec<Run>,
    /// Sketch file size, MiB (the flat copy's is `n × dim × 4` bytes more than that).
    pub sketch_mb: f64,
    /// Sketch measurements.
    pub sketch_runs: Vec<SketchRun>,
    /// With `--milvus`: the local graph measured as Milvus is (latency, eight clients).
    pub graph_latency: Vec<super::milvus::bench::LatencyRun>,
    /// With `--milvus`: the same data and queries in Milvus.
    pub milvus: Option<super::milvus::bench::MilvusReport>,
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
    /// Generates the data deterministically from `seed`, in a [`LATENT`]-dimensional latent space.
    pub fn generate(n: usize, dim: usize, queries: usize, seed: u64) -> Self {
        Self::generate_in(n, dim, queries, seed, LATENT)
    }

    /// Generates the data deterministically from `seed`, in a `latent`-dimensional latent space.
    pub fn generate_in(n: usize, dim: usize, queries: usize, seed: u64, latent: usize) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let normal = |rng: &mut rand::rngs::StdRng| -> f32 { StandardNormal.sample(rng) };
        let projection: Vec<f32> = (0..latent * dim).map(|_| normal(&mut rng) / (latent as f32).sqrt()).collect();
        let centres: Vec<Vec<f32>> = (0..CLUSTERS).map(|_| (0..latent).map(|_| normal(&mut rng)).collect()).collect();
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

    /// Data without clusters, the hard case for any index: a cone of unit vectors (a shared
    /// direction, as CLIP's embeddings share one) whose spread has a power-law spectrum, the
    /// variance of its i-th principal direction ∝ i^(−alpha), in a random orientation. Text-like
    /// queries are shifted as in [`Dataset::generate_in`].
    pub fn power_law(n: usize, dim: usize, queries: usize, seed: u64, alpha: f32) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let normal = |rng: &mut rand::rngs::StdRng| -> f32 { StandardNormal.sample(rng) };
        let unit = |v: Vec<f32>| Embedding::normalized(v);
        // A random orientation: each principal direction is a random unit vector (nearly
        // orthogonal to the others in high dimensions).
        let directions: Vec<Embedding> = (0..dim).map(|_| unit((0..dim).map(|_| normal(&mut rng)).collect())).collect();
        let cone = unit((0..dim).map(|_| normal(&mut rng)).collect());
        let gap = unit((0..dim).map(|_| normal(&mut rng)).collect());
        let spread: Vec<f32> = (1..=dim).map(|i| (i as f32).powf(-alpha / 2.0)).collect();
        let point = |rng: &mut rand::rngs::StdRng, shift: f32| -> Embedding {
            let mut v = vec![0f32; dim];
            for (direction, sd) in directions.iter().zip(&spread) {
                let c = sd * normal(rng);
                v.iter_mut().zip(direction.as_slice()).for_each(|(o, d)| *o += c * d);
            }
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            unit(v.iter().enumerate().map(|(i, x)| 0.8 * x / norm + 0.6 * cone.as_slice()[i] + shift * gap.as_slice()[i]).collect())
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
    // Kept for every query of the run: without this each would hold the capacity of a score
    // per vector (16 GB for 400 queries at a million).
    hits.shrink_to_fit();
    rank(&mut hits);
    hits
}


/// Mean share of each truth's images that `found` holds (recall@10 for top-10 lists).
pub(crate) fn recall_at_10(found: &[Vec<Hit>], truth: &[Vec<Hit>]) -> f64 {
    found
        .iter()
        .zip(truth)
        .map(|(f, t)| f.iter().filter(|h| t.iter().any(|x| x.id == h.id)).count() as f64 / t.len().max(1) as f64)
        .sum::<f64>()
        / truth.len().max(1) as f64
}

/// A query set's name, queries and exact top 10 of each.
type QuerySet<'a> = (&'static str, &'a [Embedding], Vec<Vec<Hit>>);

/// The sketch and flat files of `data`, written to a temporary directory, searched with each
/// candidate count (and the one searches choose) against `truth` (per query set).
fn sketch_runs(data: &Dataset, truth: &[QuerySet<'_>], candidates: &[usize], progress: &mut dyn FnMut(&str)) -> Result<(f64, Vec<SketchRun>), super::AnnError> {
    let dir = tempfile::tempdir().map_err(|source| super::AnnError::Io { path: std::env::temp_dir(), source })?;
    let dim = data.vectors.first().map_or(0, |(_, e)| e.as_slice().len());
    let (flat_path, sketch_path) = (dir.path().join(super::flat::FILE_NAME), dir.path().join(super::sketch::FILE_NAME));
    super::flat::write(&flat_path, dim, data.vectors.iter().map(|(id, e)| (id.0, e.as_slice())))?;
    super::sketch::write(&sketch_path, dim, data.vectors.iter().map(|(_, e)| e.as_slice()))?;
    let sketch_mb = std::fs::metadata(&sketch_path).map_or(0.0, |m| m.len() as f64 / (1024.0 * 1024.0));
    let flat = super::FlatVectors::open(&flat_path, Default::default())?;
    let sketch = super::Sketch::open(&sketch_path)?;
    let mut runs = Vec::new();
    let chosen = super::sketch_candidates(10, data.vectors.len());
    let mut counts = candidates.to_vec();
    if !counts.contains(&chosen) {
        counts.push(chosen);
    }
    for (name, set, truth) in truth {
        for &r in &counts {
            let started = Instant::now();
            let found: Vec<Vec<Hit>> = set
                .iter()
                .map(|q| {
                    let mut rows: Vec<u32> = sketch.candidates(q.as_slice(), r, &|_| true).iter().map(|c| c.row).collect();
                    flat.rerank(q.as_slice(), &mut rows, 10)
                })
                .collect();
            let run = SketchRun { queries: name, candidates: r, chosen: r == chosen, qps: set.len() as f64 / started.elapsed().as_secs_f64(), recall_at_10: recall_at_10(&found, truth) };
            progress(&format!("{name} queries, sketch with {r} candidates re-ranked: {:.0} q/s, recall@10 {:.4}", run.qps, run.recall_at_10));
            runs.push(run);
        }
    }
    Ok((sketch_mb, runs))
}

/// Runs the benchmark: the sketch with each of `candidates`, then (with `graph`) the graph with
/// each of `efs`. `progress` receives one line per finished step. `milvus`: also load the data
/// into that server and measure it with each of `efs` (after the graph's latency and
/// eight-client throughput, for comparison; the graph is dropped first, so the server has the
/// memory it held).
#[allow(clippy::too_many_arguments)] // one per option of `bench ann`
pub fn run(n: usize, dim: usize, data: Data, queries: usize, efs: &[usize], graph: bool, candidates: &[usize], params: AnnParams, milvus: Option<&std::sync::Arc<super::milvus::Milvus>>, mut progress: impl FnMut(&str)) -> Result<AnnReport, super::AnnError> {
    let data_kind = data;
    let data = match data {
        Data::Clustered { latent } => Dataset::generate_in(n, dim, queries, 7, latent),
        Data::PowerLaw { alpha } => Dataset::power_law(n, dim, queries, 7, alpha),
    };
    progress(&format!("generated {n} vectors of {dim} dimensions ({data_kind:?})"));
    let mut exact_seconds = 0.0;
    let mut exact_count = 0usize;
    let mut truth = Vec::new();
    for (name, set) in [("image", &data.image_queries), ("text", &data.text_queries)] {
        let started = Instant::now();
        truth.push((name, set.as_slice(), set.iter().map(|q| exact_top(&data.vectors, q, 10)).collect::<Vec<_>>()));
        exact_seconds += started.elapsed().as_secs_f64();
        exact_count += set.len();
    }
    let (sketch_mb, sketch_runs) = sketch_runs(&data, &truth, candidates, &mut progress)?;
    let mut report = AnnReport {
        n,
        dim,
        data: data_kind,
        build_s: 0.0,
        memory_mb: 0.0,
        exact_qps: exact_count as f64 / exact_seconds,
        m: params.m,
        ef_construction: params.ef_construction,
        runs: Vec::new(),
        sketch_mb,
        sketch_runs,
        graph_latency: Vec::new(),
        milvus: None,
    };
    if graph && !efs.is_empty() {
        let before = crate::bench::rss_mb();
        let started = Instant::now();
        let index = AnnIndex::build(&data.vectors, params);
        report.build_s = started.elapsed().as_secs_f64();
        report.memory_mb = crate::bench::rss_mb() - before;
        progress(&format!("built the graph in {:.1}s", report.build_s));
        for (name, set, truth) in &truth {
            for &ef in efs {
                let started = Instant::now();
                let found: Vec<Vec<Hit>> = set.iter().map(|q| index.search(q.as_slice(), 10, ef, &|_| true)).collect();
                let seconds = started.elapsed().as_secs_f64();
                let run = Run { queries: name, ef, qps: set.len() as f64 / seconds, recall_at_10: recall_at_10(&found, truth) };
                progress(&format!("{name} queries, ef {ef}: {:.0} q/s, recall@10 {:.4}", run.qps, run.recall_at_10));
                report.runs.push(run);
            }
        }
        if milvus.is_some() {
            for (name, set, truth) in &truth {
                for &ef in efs {
                    let search = |q: &[f32]| Ok(index.search(q, 10, ef, &|_| true));
                    let run = super::milvus::bench::latency("local graph", name, ef, set, truth, &search)?;
                    progress(&format!("local graph {name} queries, ef {ef}: p50 {:.2} ms, p99 {:.2} ms, {:.0} q/s at 8 clients", run.p50_ms, run.p99_ms, run.qps_8_clients));
                    report.graph_latency.push(run);
                }
            }
        }
    }
    if let Some(milvus) = milvus {
        report.milvus = Some(super::milvus::bench::measure(milvus, &data, &truth, efs, &mut progress)?);
    }
    Ok(report)
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
        let r = run(3000, 64, Data::Clustered { latent: LATENT }, 30, &[128], true, &[200], AnnParams::default(), None, |_| {}).unwrap();
        assert_eq!(r.sketch_runs.len(), 4, "200 and the chosen count, per query set");
        assert!(r.sketch_runs.iter().all(|run| run.recall_at_10 > 0.9), "{:?}", r.sketch_runs);
        assert!(r.runs.iter().all(|run| run.recall_at_10 > 0.9), "{:?}", r.runs);
    }
}
