//! A two-bit sketch of the flat vectors, scanned first when a large library starts cold; its best
//! candidates are then re-ranked exactly from the flat copy ([`super::flat`]).
//!
//! At a million 512-d vectors the flat copy is 2 GB: a disk reading 200 MB/s needs ten seconds
//! before an exact scan can answer. The sketch keeps, per vector, two bits per (rotated)
//! dimension and one correction factor: 132 MB at a million, read in under a second from such a
//! disk. Scores are estimated asymmetrically — the query stays in floats — and only the best
//! candidates' rows of the flat copy are read to score them exactly, so the answer's scores are
//! exact and its recall is what `bench ann` and `bench query` measure.
//!
//! The estimate (RaBitQ's, with a fast random rotation and two bits): a vector `x` has offset
//! `d = x − μ` from the library's mean, rotated `r = R·d` (random signs and a Walsh–Hadamard
//! transform, three times, over `width` — `dim` rounded up to a power of two — dimensions), and
//! each coordinate quantized to one of four levels, `ȓ`. RaBitQ's estimate of `⟨R·q, r⟩` is
//! `f·⟨R·q, ȓ⟩` with `f = ‖r‖² / ⟨r, ȓ⟩`, so `⟨q, x⟩ ≈ ⟨q, μ⟩ + f·⟨R·q, ȓ⟩`; `⟨R·q, ȓ⟩` comes from
//! a table of the rotated query's sums over each byte's 256 patterns (four dimensions), so a row
//! costs `width / 4` lookups. Measured while choosing (numpy, then `bench ann`): without the
//! rotation, embeddings whose variance sits in few dimensions waste most bits (power-law
//! spectrum, one bit, 400 candidates: recall@10 0.36–0.55 without, 0.81–0.99 with); with one bit
//! the text queries of `bench query` at a million kept recall@10 0.85 after re-ranking 20,000
//! candidates, the estimate's error being half the gap between the 10th and the 1,000th score.
//! Two bits halve that error (Gaussian coordinates: ⟨ȓ, r⟩/‖ȓ‖‖r‖ 0.94 against 0.80).
//!
//! ```text
//! offset 0   b"CSSKCH03"  magic
//!        8   u32 dim, u32 width
//!        16  u64 count (rows, in the flat file's order)
//!        24  u64 reserved (0)
//!        32  dim × f32 mean
//!        ..  count × f32 factors f
//!        ..  3 × width / 8 bytes: the rotation's signs (bit set: −1), round by round
//!        ..  count × width / 4 bytes of levels (bits 2k, 2k+1 of byte j: rotated dimension
//!            4j + k, an index into the levels −1.510, −0.4528, 0.4528, 1.510 × ‖r‖/√width)
//! ```
//! All little-endian. Written beside the flat copy from the same rows; derived data like it.

use std::io::Write;
use std::path::Path;

use clipsight_indexer::embedding::dot;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::hit::best_passing;
use super::AnnError;

/// File name inside a graph directory.
pub const FILE_NAME: &str = "vectors.sketch";

const MAGIC: &[u8; 8] = b"CSSKCH03";
/// Rotated dimensions per code byte (two bits each).
const PER_BYTE: usize = 4;
/// The four values a rotated coordinate is quantized to, in units of `‖r‖ / √width` (the
/// coordinates of a randomly rotated vector are close to Gaussian): Lloyd–Max's optimal 2-bit
/// levels for a unit Gaussian.
const LEVELS: [f32; 4] = [-1.510, -0.4528, 0.4528, 1.510];
/// Decision thresholds between [`LEVELS`] (0 between the middle two).
const THRESHOLD: f32 = 0.9816;
/// Rounds of random signs and Walsh–Hadamard transform in the rotation.
const ROUNDS: usize = 3;
/// Seed of the rotation's signs (written to the file, so readers never regenerate them).
const SEED: u64 = 0x5eed_c0de;
const HEADER: usize = 32;

/// One row of the sketch and its estimated score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Row in the flat file.
    pub row: u32,
    /// Estimated dot product with the query.
    pub estimate: f32,
}

/// Higher estimate first, ties by row.
fn by_estimate(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.estimate.total_cmp(&a.estimate).then(a.row.cmp(&b.row))
}

/// The random rotation: per round, flip the signs where `signs` has a bit set, then a
/// Walsh–Hadamard transform scaled to keep lengths.
struct Rotation<'a> {
    width: usize,
    signs: &'a [u8],
}

impl Rotation<'_> {
    /// `R·(v − mean)`, zero-padded to `width`.
    fn apply(&self, v: &[f32], mean: &[f32]) -> Vec<f32> {
        let mut x = vec![0f32; self.width];
        x.iter_mut().zip(v.iter().zip(mean)).for_each(|(o, (a, m))| *o = a - m);
        let scale = 1.0 / (self.width as f32).sqrt();
        for round in self.signs.chunks_exact(self.width / 8) {
            for (i, value) in x.iter_mut().enumerate() {
                if round[i / 8] & (1 << (i % 8)) != 0 {
                    *value = -*value;
                }
            }
            walsh_hadamard(&mut x);
            x.iter_mut().for_each(|value| *value *= scale);
        }
        x
    }
}

/// The unnormalised fast Walsh–Hadamard transform of `x` (length a power of two), in place.
fn walsh_hadamard(x: &mut [f32]) {
    let mut h = 1;
    while h < x.len() {
        for block in x.chunks_exact_mut(2 * h) {
            let (a, b) = block.split_at_mut(h);
            for (u, v) in a.iter_mut().zip(b) {
                (*u, *v) = (*u + *v, *u - *v);
            }
        }
        h *= 2;
    }
}

/// The rotated width for `dim` dimensions: a power of two, at least 8.
fn width_of(dim: usize) -> usize {
    dim.next_power_of_two().max(8)
}

/// Writes the sketch of `rows` (unit vectors of `dim` floats, in the flat file's order).
pub fn write<'a>(path: &Path, dim: usize, rows: impl ExactSizeIterator<Item = &'a [f32]> + Clone) -> Result<(), AnnError> {
    let io = |source| AnnError::Io { path: path.to_path_buf(), source };
    let count = rows.len();
    let mut mean = vec![0f64; dim];
    for row in rows.clone() {
        if row.len() != dim {
            return Err(AnnError::Graph { path: path.to_path_buf(), message: format!("a vector of {} dimensions among {dim}", row.len()) });
        }
        mean.iter_mut().zip(row).for_each(|(m, x)| *m += f64::from(*x));
    }
    let mean: Vec<f32> = mean.iter().map(|m| (m / count.max(1) as f64) as f32).collect();
    let width = width_of(dim);
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
    let signs: Vec<u8> = (0..ROUNDS * width / 8).map(|_| rng.random()).collect();
    let rotation = Rotation { width, signs: &signs };
    let rows: Vec<&[f32]> = rows.collect();
    // Two flat buffers (8 MB and 128 MB at a million 512-d rows), filled in parallel: no
    // allocation per row for the allocator to keep.
    let bytes = width / PER_BYTE;
    let mut factors = vec![0f32; count];
    let mut codes = vec![0u8; count * bytes];
    factors.par_iter_mut().zip(codes.par_chunks_exact_mut(bytes.max(1))).zip(rows.par_iter()).for_each(|((factor, code), row)| {
        let r = rotation.apply(row, &mean);
        let norm2 = dot(&r, &r);
        let unit = (norm2 / width as f32).sqrt();
        let mut projection = 0f32;
        for (i, x) in r.iter().enumerate() {
            let t = if unit > 0.0 { x / unit } else { 0.0 };
            let level = match t {
                t if t < -THRESHOLD => 0,
                t if t < 0.0 => 1,
                t if t < THRESHOLD => 2,
                _ => 3,
            };
            code[i / PER_BYTE] |= (level as u8) << (2 * (i % PER_BYTE));
            projection += x * LEVELS[level];
        }
        // RaBitQ's factor: ⟨q, r⟩ ≈ ⟨q, ȓ⟩·‖r‖²/⟨r, ȓ⟩.
        *factor = if projection > 0.0 { norm2 / projection } else { 0.0 };
    });
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut header = [0u8; HEADER];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&(dim as u32).to_le_bytes());
    header[12..16].copy_from_slice(&(width as u32).to_le_bytes());
    header[16..24].copy_from_slice(&(count as u64).to_le_bytes());
    out.write_all(&header).map_err(io)?;
    out.write_all(bytemuck::cast_slice(&mean)).map_err(io)?;
    out.write_all(bytemuck::cast_slice(&factors)).map_err(io)?;
    out.write_all(&signs).map_err(io)?;
    out.write_all(&codes).map_err(io)?;
    out.into_inner().map_err(|e| io(e.into_error()))?.sync_all().map_err(io)?;
    Ok(())
}

/// A mapped sketch file.
pub struct Sketch {
    map: memmap2::Mmap,
    dim: usize,
    width: usize,
    count: usize,
}

impl Sketch {
    /// Maps the file at `path`.
    pub fn open(path: &Path) -> Result<Self, AnnError> {
        let bad = |message: String| AnnError::Graph { path: path.to_path_buf(), message };
        if cfg!(target_endian = "big") {
            return Err(bad("sketch files are little-endian; this machine is not".into()));
        }
        let io = |source| AnnError::Io { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: derived data written once by `write` into a staging directory (or a staging
        // name) and renamed into place, never modified afterwards; the map is read-only.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        if map.len() < HEADER || &map[..8] != MAGIC {
            return Err(bad("not a clipsight sketch file".into()));
        }
        let dim = u32::from_le_bytes(map[8..12].try_into().expect("4 bytes")) as usize;
        let width = u32::from_le_bytes(map[12..16].try_into().expect("4 bytes")) as usize;
        let count = u64::from_le_bytes(map[16..24].try_into().expect("8 bytes")) as usize;
        if dim == 0 || width != width_of(dim) {
            return Err(bad(format!("a sketch {width} bits wide for {dim} dimensions")));
        }
        // Checked: a damaged count must be refused, not overflow.
        let expected = count
            .checked_mul(4 + width / PER_BYTE)
            .and_then(|rows| rows.checked_add(HEADER + dim * 4 + ROUNDS * width / 8))
            .filter(|expected| *expected == map.len());
        if expected.is_none() {
            return Err(bad(format!("{} bytes: not a sketch of {count} vectors of {dim} dimensions", map.len())));
        }
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(Self { map, dim, width, count })
    }

    /// Rows sketched.
    pub fn rows(&self) -> usize {
        self.count
    }

    /// Dimensions of the sketched vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Asks the kernel to start reading the whole file now (a server starting, while its text
    /// encoder loads), so the first query's scan finds it in memory.
    pub fn prefetch(&self) {
        let _ = self.map.advise(memmap2::Advice::WillNeed);
    }

    fn mean(&self) -> &[f32] {
        bytemuck::cast_slice(&self.map[HEADER..HEADER + self.dim * 4])
    }

    fn factors(&self) -> &[f32] {
        let start = HEADER + self.dim * 4;
        bytemuck::cast_slice(&self.map[start..start + self.count * 4])
    }

    fn rotation(&self) -> Rotation<'_> {
        let start = HEADER + self.dim * 4 + self.count * 4;
        Rotation { width: self.width, signs: &self.map[start..start + ROUNDS * self.width / 8] }
    }

    fn codes(&self) -> &[u8] {
        &self.map[HEADER + self.dim * 4 + self.count * 4 + ROUNDS * self.width / 8..]
    }

    /// The `r` rows with the best estimated dot product with `query` that pass `accept`, best
    /// first, estimating every row on all cores.
    pub fn candidates(&self, query: &[f32], r: usize, accept: &(dyn Fn(usize) -> bool + Sync)) -> Vec<Candidate> {
        if r == 0 || query.len() != self.dim {
            return Vec::new();
        }
        let bytes = self.width / PER_BYTE;
        // The query rotated as the rows were (its offset from the mean does not change the
        // ranking: ⟨q, μ⟩ is added back below).
        let rotated = self.rotation().apply(query, &vec![0.0; self.dim]);
        // table[j * 256 + b]: ⟨rotated query, levels⟩ over the four dimensions of byte j when
        // it holds b.
        let mut table = vec![0f32; bytes * 256];
        for (j, sums) in table.chunks_exact_mut(256).enumerate() {
            for (b, sum) in sums.iter_mut().enumerate() {
                *sum = (0..PER_BYTE).map(|k| rotated[j * PER_BYTE + k] * LEVELS[(b >> (2 * k)) & 3]).sum();
            }
        }
        let offset = dot(query, self.mean());
        let (factors, codes) = (self.factors(), self.codes());
        let mut estimated: Vec<Candidate> = factors
            .par_iter()
            .zip(codes.par_chunks_exact(bytes))
            .enumerate()
            .map(|(row, (f, code))| {
                let dot: f32 = code.iter().enumerate().map(|(j, b)| table[j * 256 + *b as usize]).sum();
                Candidate { row: row as u32, estimate: offset + f * dot }
            })
            .collect();
        // One selection over every row (8 bytes each): r can be a few percent of the library,
        // more than per-task selections would save.
        best_passing(&mut estimated, r, by_estimate, |c| accept(c.row as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ann::bench::Dataset;

    fn sketched(data: &Dataset, dim: usize) -> (tempfile::TempDir, Sketch) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        write(&path, dim, data.vectors.iter().map(|(_, e)| e.as_slice())).unwrap();
        (dir, Sketch::open(&path).unwrap())
    }

    #[test]
    fn estimates_rank_the_true_neighbours_among_the_first_candidates() {
        let data = Dataset::generate(20_000, 256, 20, 5);
        let (_dir, sketch) = sketched(&data, 256);
        assert_eq!((sketch.rows(), sketch.dim()), (20_000, 256));
        let mut kept = 0;
        for q in data.image_queries.iter().chain(&data.text_queries) {
            let mut exact: Vec<(usize, f32)> = data.vectors.iter().enumerate().map(|(i, (_, e))| (i, dot(q.as_slice(), e.as_slice()))).collect();
            exact.sort_by(|a, b| b.1.total_cmp(&a.1));
            let candidates = sketch.candidates(q.as_slice(), 200, &|_| true);
            assert_eq!(candidates.len(), 200);
            assert!(candidates.windows(2).all(|w| w[0].estimate >= w[1].estimate), "best first");
            let rows: std::collections::HashSet<usize> = candidates.iter().map(|c| c.row as usize).collect();
            kept += exact[..10].iter().filter(|(i, _)| rows.contains(i)).count();
        }
        assert!(kept >= 390, "{kept} of the true 400 neighbours of 40 queries among 1 % of the rows");
    }

    #[test]
    fn rejected_rows_are_never_candidates_and_r_is_still_filled() {
        let data = Dataset::generate(3_000, 32, 1, 6);
        let (_dir, sketch) = sketched(&data, 32);
        let found = sketch.candidates(data.image_queries[0].as_slice(), 50, &|row| row % 7 == 3);
        assert_eq!(found.len(), 50);
        assert!(found.iter().all(|c| c.row % 7 == 3));
    }

    #[test]
    fn dimensions_that_are_not_a_multiple_of_eight_are_sketched() {
        let data = Dataset::generate(500, 12, 1, 7);
        let (_dir, sketch) = sketched(&data, 12);
        let q = data.vectors[42].1.as_slice();
        assert_eq!(sketch.candidates(q, 5, &|_| true).len(), 5);
        assert!(sketch.candidates(q, 50, &|_| true).iter().any(|c| c.row == 42), "a stored vector is among its own candidates");
    }

    #[test]
    fn the_rotation_keeps_lengths_and_angles() {
        let signs: Vec<u8> = (0..ROUNDS * 64 / 8).map(|i| (i * 37 % 256) as u8).collect();
        let rotation = Rotation { width: 64, signs: &signs };
        let zero = vec![0.0; 50];
        let a: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..50).map(|i| (i as f32 * 0.11).cos()).collect();
        let (ra, rb) = (rotation.apply(&a, &zero), rotation.apply(&b, &zero));
        assert_eq!(ra.len(), 64, "padded to a power of two");
        assert!((dot(&ra, &rb) - dot(&a, &b)).abs() < 1e-4);
        assert!((dot(&ra, &ra) - dot(&a, &a)).abs() < 1e-4);
        assert!(ra.iter().zip(a.iter().chain(std::iter::repeat(&0.0))).any(|(x, y)| (x - y).abs() > 0.1), "and moves the vector");
    }

    #[test]
    fn a_truncated_or_foreign_file_is_refused() {
        let data = Dataset::generate(10, 8, 1, 8);
        let (dir, _sketch) = sketched(&data, 8);
        let path = dir.path().join(FILE_NAME);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(Sketch::open(&path).is_err());
        std::fs::write(&path, b"not a sketch at all, just some bytes").unwrap();
        assert!(Sketch::open(&path).is_err());
    }
}
