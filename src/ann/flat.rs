//! A flat, memory-mapped copy of the vectors a persisted graph holds, for exact scans that must
//! start at once.
//!
//! Loading a large HNSW graph takes seconds (≈10 s at a million 512-d points), and reading every
//! embedding back from RocksDB for one exact scan takes seconds too. Mapping this file takes
//! microseconds, and a scan over it runs at memory speed on all cores, so a server can answer
//! exactly from its first second while the graph loads. Written next to the graph by
//! [`super::AnnIndex::save`] and covered by the same manifest (epoch, tombstones), so it is
//! derived data like the graph itself.
//!
//! ```text
//! offset 0   b"CSFLAT01"  magic
//!        8   u32 dim, u32 reserved (0)
//!        16  u64 count
//!        24  u64 reserved (0)
//!        32  count × u64 image ids
//!        ..  count × dim × f32 vectors (row i belongs to id i)
//! ```
//! All little-endian.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use clipsight_indexer::embedding::dot;
use rayon::prelude::*;

use super::AnnError;
use super::hit::{best_of_each, best_passing};
use super::{by_rank, Hit};
use crate::store::ImageId;

/// File name inside a graph directory.
pub const FILE_NAME: &str = "vectors.f32";

const MAGIC: &[u8; 8] = b"CSFLAT01";
const HEADER: usize = 32;
/// Rows scanned per parallel task: large enough to amortise the task, small enough to balance.
const ROWS_PER_TASK: usize = 8192;

/// Writes `rows` (image id, unit vector of `dim` floats) as a flat vector file.
pub fn write<'a>(path: &Path, dim: usize, rows: impl ExactSizeIterator<Item = (u64, &'a [f32])> + Clone) -> Result<(), AnnError> {
    let io = |source| AnnError::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut header = [0u8; HEADER];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&(dim as u32).to_le_bytes());
    header[16..24].copy_from_slice(&(rows.len() as u64).to_le_bytes());
    out.write_all(&header).map_err(io)?;
    for (id, _) in rows.clone() {
        out.write_all(&id.to_le_bytes()).map_err(io)?;
    }
    for (_, v) in rows {
        if v.len() != dim {
            return Err(AnnError::Graph { path: path.to_path_buf(), message: format!("a vector of {} dimensions among {dim}", v.len()) });
        }
        for x in v {
            out.write_all(&x.to_le_bytes()).map_err(io)?;
        }
    }
    out.into_inner().map_err(|e| io(e.into_error()))?.sync_all().map_err(io)?;
    Ok(())
}

/// A mapped flat vector file.
pub struct FlatVectors {
    map: memmap2::Mmap,
    /// The same file mapped again for reading single rows ([`FlatVectors::rerank`]): read ahead
    /// as `map` is, each row would pull in megabytes around it.
    rows: memmap2::Mmap,
    dim: usize,
    count: usize,
    tombstones: HashSet<u64>,
}

impl FlatVectors {
    /// Maps the file at `path`; `tombstones` (from the graph's manifest) are never returned.
    pub fn open(path: &Path, tombstones: HashSet<u64>) -> Result<Self, AnnError> {
        let bad = |message: String| AnnError::Graph { path: path.to_path_buf(), message };
        if cfg!(target_endian = "big") {
            return Err(bad("flat vector files are little-endian; this machine is not".into()));
        }
        let file = std::fs::File::open(path).map_err(|source| AnnError::Io { path: PathBuf::from(path), source })?;
        // SAFETY: the file is derived data that only `write` (through a staging directory that is
        // renamed into place, never modified afterwards) creates; the map is read-only.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| AnnError::Io { path: PathBuf::from(path), source })?;
        if map.len() < HEADER || &map[..8] != MAGIC {
            return Err(bad("not a clipsight flat vector file".into()));
        }
        let dim = u32::from_le_bytes(map[8..12].try_into().expect("4 bytes")) as usize;
        let count = u64::from_le_bytes(map[16..24].try_into().expect("8 bytes")) as usize;
        let expected = HEADER + count * 8 + count * dim * 4;
        if dim == 0 || map.len() != expected {
            return Err(bad(format!("{} bytes where {count} vectors of {dim} dimensions need {expected}", map.len())));
        }
        // The pages are read front to back by every scan, and one by one by a re-ranking.
        let _ = map.advise(memmap2::Advice::Sequential);
        // SAFETY: as above.
        let rows = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| AnnError::Io { path: PathBuf::from(path), source })?;
        let _ = rows.advise(memmap2::Advice::Random);
        Ok(Self { map, rows, dim, count, tombstones })
    }

    /// Vectors that are not tombstones.
    pub fn live(&self) -> usize {
        self.count.saturating_sub(self.tombstones.len())
    }

    /// Rows in the file, tombstones included.
    pub fn rows(&self) -> usize {
        self.count
    }

    /// Dimensions of every vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The image of row `row`, or `None` for a tombstone.
    pub fn live_id(&self, row: usize) -> Option<ImageId> {
        let id = self.ids()[row];
        (!self.tombstones.contains(&id)).then_some(ImageId(id))
    }

    /// Every row's vector, in file order (a full read: to derive a [`super::sketch`]).
    pub fn vectors_in_order(&self) -> impl ExactSizeIterator<Item = &[f32]> + Clone {
        self.vectors().chunks_exact(self.dim)
    }

    /// `rows` (live ones, see [`FlatVectors::live_id`]) scored exactly against `query`, best
    /// first, an image stored twice once, at most `k`. Reads only the pages of those rows, in
    /// file order, on all cores: what a cold start can afford where a full scan cannot.
    pub fn rerank(&self, query: &[f32], rows: &mut [u32], k: usize) -> Vec<Hit> {
        rows.sort_unstable();
        // Ask for every row's pages at once, adjacent rows as one range: the disk then sees
        // thousands of reads queued together instead of one page fault after another, which on
        // a cold disk busy with the graph's loading waited in line one by one.
        let row_bytes = self.dim * 4;
        let start = HEADER + self.count * 8;
        let mut pending: Option<(usize, usize)> = None;
        for &row in rows.iter() {
            let (from, to) = (start + row as usize * row_bytes, start + (row as usize + 1) * row_bytes);
            pending = match pending {
                Some((a, b)) if from <= b + 4096 => Some((a, to)),
                Some((a, b)) => {
                    let _ = self.rows.advise_range(memmap2::Advice::WillNeed, a, b - a);
                    Some((from, to))
                }
                None => Some((from, to)),
            };
        }
        if let Some((a, b)) = pending {
            let _ = self.rows.advise_range(memmap2::Advice::WillNeed, a, b - a);
        }
        let ids = self.ids();
        let vectors: &[f32] = bytemuck::cast_slice(&self.rows[start..]);
        let hits: Vec<Hit> = rows
            .par_iter()
            .map(|&row| {
                let row = row as usize;
                Hit::new(ImageId(ids[row]), dot(query, &vectors[row * self.dim..(row + 1) * self.dim]))
            })
            .collect();
        best_of_each(hits, k)
    }

    fn ids(&self) -> &[u64] {
        bytemuck::cast_slice(&self.map[HEADER..HEADER + self.count * 8])
    }

    fn vectors(&self) -> &[f32] {
        bytemuck::cast_slice(&self.map[HEADER + self.count * 8..])
    }

    /// The `k` images with the highest dot product with `query` that pass `accept`, best first
    /// (ties by id), scanning every vector on all cores. An image stored twice (re-embedded
    /// since the graph was built) counts once, with its best score, as in the graph search.
    pub fn search(&self, query: &[f32], k: usize, accept: &(dyn Fn(ImageId) -> bool + Sync)) -> Vec<Hit> {
        if k == 0 || query.len() != self.dim {
            return Vec::new();
        }
        let (ids, vectors) = (self.ids(), self.vectors());
        let hits: Vec<Hit> = ids
            .par_chunks(ROWS_PER_TASK)
            .zip(vectors.par_chunks(ROWS_PER_TASK * self.dim))
            .flat_map_iter(|(ids, rows)| {
                let mut scored: Vec<Hit> = ids
                    .iter()
                    .zip(rows.chunks_exact(self.dim))
                    .filter(|(id, _)| !self.tombstones.contains(id))
                    .map(|(id, row)| Hit::new(ImageId(*id), dot(query, row)))
                    .collect();
                // The task's best k that pass `accept`.
                best_passing(&mut scored, k, by_rank, |hit| accept(hit.id))
            })
            .collect();
        best_of_each(hits, k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ann::rank;

    fn rows(n: usize, dim: usize) -> Vec<(u64, Vec<f32>)> {
        (0..n)
            .map(|i| {
                let v: Vec<f32> = (0..dim).map(|d| ((i * 31 + d * 7) % 13) as f32 - 6.0).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                (i as u64 + 1, v.into_iter().map(|x| x / norm).collect())
            })
            .collect()
    }

    fn written(rows: &[(u64, Vec<f32>)], dim: usize, tombstones: &[u64]) -> (tempfile::TempDir, FlatVectors) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        write(&path, dim, rows.iter().map(|(id, v)| (*id, v.as_slice()))).unwrap();
        let flat = FlatVectors::open(&path, tombstones.iter().copied().collect()).unwrap();
        (dir, flat)
    }

    #[test]
    fn a_scan_returns_what_a_plain_exact_ranking_returns() {
        let data = rows(20_000, 24);
        let (_dir, flat) = written(&data, 24, &[]);
        assert_eq!((flat.count, flat.dim, flat.live()), (20_000, 24, 20_000));
        let query = data[4321].1.clone();
        let mut expected: Vec<Hit> = data.iter().map(|(id, v)| Hit::new(ImageId(*id), dot(&query, v))).collect();
        rank(&mut expected);
        let mut seen = HashSet::new();
        expected.retain(|h| seen.insert(h.id));
        expected.truncate(10);
        assert_eq!(flat.search(&query, 10, &|_| true), expected);
    }

    #[test]
    fn tombstones_and_filters_are_applied_and_k_is_still_filled() {
        let data = rows(30_000, 16);
        let (_dir, flat) = written(&data, 16, &[5, 6, 7]);
        let hits = flat.search(&data[4].1, 25, &|id| id.0 % 1000 == 5 || id.0 == 6);
        assert_eq!(hits.len(), 25, "30 images pass the filter; 25 wanted");
        assert!(hits.iter().all(|h| h.id.0 % 1000 == 5 && h.id.0 != 5));
    }

    #[test]
    fn a_truncated_or_foreign_file_is_refused() {
        let data = rows(10, 8);
        let (dir, _flat) = written(&data, 8, &[]);
        let path = dir.path().join(FILE_NAME);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        assert!(FlatVectors::open(&path, HashSet::new()).is_err());
        std::fs::write(&path, b"something else entirely, not vectors").unwrap();
        assert!(FlatVectors::open(&path, HashSet::new()).is_err());
    }
}
