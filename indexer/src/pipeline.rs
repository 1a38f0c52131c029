//! The indexing pipeline: candidates → read + hash → decode + thumbnail + preprocess (parallel,
//! rayon) → batch → image encoder (its own thread) → outcomes handed to the caller.
//!
//! Stages are joined by bounded channels, so decoding runs ahead of the encoder by at most a few
//! batches and memory stays flat. What to do with outcomes (storing them) is the caller's business.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use rayon::prelude::*;

use crate::clip::{ClipError, PreparedImage};
use crate::encoder::Encoder;
use crate::decode::{decode_at_least, thumbnail_jpeg, THUMBNAIL_SIZE};
use crate::exif::ExifMeta;
use crate::embedding::Embedding;
use crate::walk::Candidate;

/// BLAKE3 hash of a file's bytes: recognises moved and duplicate files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(pub [u8; 32]);

/// Lets the pipeline skip decoding and encoding files whose content already has an embedding.
pub trait KnownContent: Sync {
    /// True when an embedding for this content already exists.
    fn is_known(&self, hash: &ContentHash) -> bool;
}

/// A file that was decoded and embedded.
#[derive(Debug, Clone)]
pub struct IndexedImage {
    /// The file as found by the walk.
    pub file: Candidate,
    /// Content hash.
    pub hash: ContentHash,
    /// Width after EXIF orientation.
    pub width: u32,
    /// Height after EXIF orientation.
    pub height: u32,
    /// EXIF metadata.
    pub exif: ExifMeta,
    /// Problems with the file's metadata that did not stop its indexing.
    pub warnings: Vec<String>,
    /// JPEG thumbnail.
    pub thumbnail: Vec<u8>,
    /// Unit-length image embedding.
    pub embedding: Embedding,
}

/// What happened to one candidate.
#[derive(Debug)]
pub enum Outcome {
    /// Decoded and embedded.
    Indexed(IndexedImage),
    /// Its content is already known ([`KnownContent`]); nothing was decoded.
    Known {
        /// The file.
        file: Candidate,
        /// Its content hash.
        hash: ContentHash,
    },
    /// Could not be read or decoded; the run goes on.
    Failed {
        /// The file.
        path: PathBuf,
        /// Why.
        error: String,
    },
}

/// Pipeline settings.
#[derive(Debug, Clone, Copy)]
pub struct PipelineOptions<'a> {
    /// Images per encoder call.
    pub batch_size: usize,
    /// When set to true, files not yet started are skipped: the run ends after the images in
    /// flight (a server shutting down).
    pub stop: Option<&'a AtomicBool>,
}

impl Default for PipelineOptions<'_> {
    fn default() -> Self {
        Self { batch_size: 32, stop: None }
    }
}

/// Time spent in each stage, summed over all threads.
#[derive(Debug, Default)]
pub struct StageTimes {
    read: AtomicU64,
    decode: AtomicU64,
    resize: AtomicU64,
    thumbnail: AtomicU64,
    encode: AtomicU64,
}

impl StageTimes {
    fn add(counter: &AtomicU64, since: Instant) -> Instant {
        let now = Instant::now();
        counter.fetch_add((now - since).as_nanos() as u64, Ordering::Relaxed);
        now
    }

    /// (stage name, seconds) pairs: read, decode, resize, thumbnail, encode.
    pub fn seconds(&self) -> Vec<(&'static str, f64)> {
        let s = |c: &AtomicU64| Duration::from_nanos(c.load(Ordering::Relaxed)).as_secs_f64();
        vec![
            ("read", s(&self.read)),
            ("decode", s(&self.decode)),
            ("resize", s(&self.resize)),
            ("thumbnail", s(&self.thumbnail)),
            ("encode", s(&self.encode)),
        ]
    }
}

/// A file decoded and preprocessed, waiting for the encoder.
struct Prepared {
    file: Candidate,
    hash: ContentHash,
    width: u32,
    height: u32,
    exif: ExifMeta,
    warnings: Vec<String>,
    thumbnail: Vec<u8>,
    input: PreparedImage,
}

/// Runs the pipeline over `candidates`, calling `sink` with every outcome on the caller's thread,
/// in completion order. Returns when every candidate has an outcome, or with the first encoder
/// error (a model that fails to run is fatal; a bad file is not).
pub fn run(
    encoder: &dyn Encoder,
    candidates: Vec<Candidate>,
    known: &dyn KnownContent,
    options: PipelineOptions<'_>,
    times: &StageTimes,
    mut sink: impl FnMut(Outcome),
) -> Result<(), crate::ClipError> {
    let batch_size = options.batch_size.max(1);
    let (prepared_tx, prepared_rx) = bounded::<Prepared>(batch_size * 2);
    let (outcome_tx, outcome_rx) = bounded::<Outcome>(batch_size * 2);
    std::thread::scope(|scope| {
        // Stage 1+2: read, hash, decode, thumbnail, preprocess — in parallel.
        let decode_outcomes = outcome_tx.clone();
        scope.spawn(move || {
            candidates.into_par_iter().for_each_with((prepared_tx, decode_outcomes), |(prepared, outcomes), file| {
                if options.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                    return;
                }
                match prepare(encoder, file, known, times) {
                    Ok(Step::Prepared(p)) => {
                        let _ = prepared.send(*p);
                    }
                    Ok(Step::Known { file, hash }) => {
                        let _ = outcomes.send(Outcome::Known { file, hash });
                    }
                    Err((path, error)) => {
                        let _ = outcomes.send(Outcome::Failed { path, error });
                    }
                }
            });
        });
        // Stage 3: batch and encode on a dedicated thread.
        let encoder = scope.spawn(move || -> Result<(), crate::ClipError> {
            loop {
                // Blocks until a full batch is ready or the decoders are done.
                let mut batch: Vec<Prepared> = prepared_rx.iter().take(batch_size).collect();
                if batch.is_empty() {
                    return Ok(());
                }
                let start = Instant::now();
                let inputs: Vec<PreparedImage> = batch.iter_mut().map(|p| std::mem::take(&mut p.input)).collect();
                let embeddings = encoder.encode_images(&inputs)?;
                StageTimes::add(&times.encode, start);
                for (p, embedding) in batch.into_iter().zip(embeddings) {
                    let _ = outcome_tx.send(Outcome::Indexed(IndexedImage {
                        file: p.file,
                        hash: p.hash,
                        width: p.width,
                        height: p.height,
                        exif: p.exif,
                        warnings: p.warnings,
                        thumbnail: p.thumbnail,
                        embedding,
                    }));
                }
            }
        });
        // The caller's thread consumes outcomes until both producers hang up.
        for outcome in outcome_rx.iter() {
            sink(outcome);
        }
        encoder.join().expect("encoder thread panicked")
    })
}

enum Step {
    Prepared(Box<Prepared>),
    Known { file: Candidate, hash: ContentHash },
}

fn prepare(encoder: &dyn Encoder, file: Candidate, known: &dyn KnownContent, times: &StageTimes) -> Result<Step, (PathBuf, String)> {
    let start = Instant::now();
    let bytes = std::fs::read(&file.path).map_err(|e| (file.path.clone(), format!("cannot read: {e}")))?;
    let hash = ContentHash(*blake3::hash(&bytes).as_bytes());
    let t = StageTimes::add(&times.read, start);
    if known.is_known(&hash) {
        return Ok(Step::Known { file, hash });
    }
    let decoded = decode_at_least(&bytes, decode_side(encoder)).map_err(|e| (file.path.clone(), e.to_string()))?;
    let t = StageTimes::add(&times.decode, t);
    let input = encoder
        .preprocess()
        .prepare(&decoded.image)
        .map_err(|e| (file.path.clone(), e.to_string()))?;
    let t = StageTimes::add(&times.resize, t);
    let thumbnail = thumbnail_jpeg(&decoded.image);
    StageTimes::add(&times.thumbnail, t);
    Ok(Step::Prepared(Box::new(Prepared {
        width: decoded.width,
        height: decoded.height,
        exif: decoded.exif,
        warnings: decoded.warnings,
        file,
        hash,
        thumbnail,
        input,
    })))
}

/// How many pixels the shorter side of a decoded image needs: the model's input side and the
/// thumbnail's, times [`OVERSAMPLE`] so the resampling filter still sees the detail it would at
/// full size (parity with the reference preprocessing, tests/integration/parity.rs).
fn decode_side(encoder: &dyn Encoder) -> u32 {
    let (w, h) = encoder.preprocess().size;
    OVERSAMPLE * w.max(h).max(THUMBNAIL_SIZE)
}

/// See [`decode_side`].
const OVERSAMPLE: u32 = 1;

/// Reads, decodes and preprocesses one image file for the encoder — the query-side path
/// (`similar`, `classify`, uploads), without hashing or thumbnails.
pub fn prepare_file(encoder: &dyn Encoder, path: &std::path::Path) -> Result<PreparedImage, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    prepare_bytes(encoder, &bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Why image bytes could not be turned into encoder input.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// Not decodable (unknown format, too large, corrupt).
    #[error(transparent)]
    Decode(#[from] crate::decode::DecodeError),
    /// Preprocessing failed.
    #[error(transparent)]
    Preprocess(#[from] ClipError),
}

/// Decodes and preprocesses image bytes held in memory (an upload).
pub fn prepare_bytes(encoder: &dyn Encoder, bytes: &[u8]) -> Result<PreparedImage, PrepareError> {
    let decoded = decode_at_least(bytes, decode_side(encoder))?;
    Ok(encoder.preprocess().prepare(&decoded.image)?)
}
