//! The indexing pipeline: candidates → read + hash → decode + thumbnail + preprocess (parallel,
//! rayon; a video is sampled into moments, each preprocessed) → batch → image encoder (its own
//! thread) → outcomes handed to the caller.
//!
//! Stages are joined by bounded channels, and the encoder inputs waiting between them are
//! counted ([`InputBudget`]: a video brings hundreds at once), so decoding runs ahead of the
//! encoder by at most a few batches and memory stays flat. What to do with outcomes (storing
//! them) is the caller's business.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use rayon::prelude::*;

use crate::clip::{ClipError, PreparedImage};
use crate::encoder::Encoder;
use crate::decode::{decode_at_least, thumbnail_jpeg, THUMBNAIL_SIZE};
use crate::annotations::Annotations;
use crate::exif::ExifMeta;
use crate::embedding::Embedding;
use crate::format::MediaKind;
use crate::video::{Moment, VideoOptions};
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
    /// Title, description and keywords embedded in the file (its sidecars are in `file.sidecars`).
    pub annotations: Annotations,
    /// Problems with the file's metadata that did not stop its indexing.
    pub warnings: Vec<String>,
    /// JPEG thumbnail (a video's: its first moment).
    pub thumbnail: Vec<u8>,
    /// Unit-length image embedding (a video's: the normalised mean of its moments).
    pub embedding: Embedding,
    /// A video's facts; `None` for a photo.
    pub video: Option<IndexedVideo>,
}

/// What indexing learnt of a video.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedVideo {
    /// Length in milliseconds (0 when the container does not say).
    pub duration_ms: u64,
    /// Its embedded moments, in time order; none when every frame was blank.
    pub moments: Vec<Moment>,
}

/// What happened to one candidate.
#[derive(Debug)]
pub enum Outcome {
    /// Decoded and embedded.
    Indexed(Box<IndexedImage>),
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
    /// How videos are sampled.
    pub video: VideoOptions,
}

impl Default for PipelineOptions<'_> {
    fn default() -> Self {
        Self { batch_size: 32, stop: None, video: VideoOptions::default() }
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
    annotations: Annotations,
    warnings: Vec<String>,
    thumbnail: Vec<u8>,
    /// One encoder input for a photo; one per moment for a video.
    inputs: Vec<PreparedImage>,
    /// A video's length and the times of its moments, one per input — none when every frame
    /// was blank: its one input then stands for the video without being a moment.
    video: Option<(u64, Vec<u32>)>,
}

/// Counts the encoder inputs decoded but not yet taken by the encoder, so that the decoders wait
/// while the encoder is that far behind (it holds at most one batch besides). An item larger
/// than the whole allowance (a long video) is let through alone. Counted off as the encoder
/// takes them, not once encoded: an encoder filling its batch must never wait for a decoder
/// that waits for it.
struct InputBudget {
    /// Inputs waiting, and whether the encoder has stopped (then nobody waits any more).
    state: Mutex<(usize, bool)>,
    freed: Condvar,
    allowance: usize,
}

impl InputBudget {
    fn new(allowance: usize) -> Self {
        Self { state: Mutex::new((0, false)), freed: Condvar::new(), allowance }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, (usize, bool)> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Blocks until `n` more inputs fit.
    fn take(&self, n: usize) {
        let mut state = self.state();
        while !state.1 && state.0 > 0 && state.0 + n > self.allowance {
            state = self.freed.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        state.0 += n;
    }

    /// Says that the encoder took `n` inputs.
    fn give_back(&self, n: usize) {
        let mut state = self.state();
        state.0 = state.0.saturating_sub(n);
        self.freed.notify_all();
    }

    /// Says that the encoder stopped (done, or failed): decoders no longer wait for it.
    fn close(&self) {
        self.state().1 = true;
        self.freed.notify_all();
    }
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
    let budget = InputBudget::new(batch_size * 2);
    let budget = &budget;
    std::thread::scope(|scope| {
        // Stage 1+2: read, hash, decode, thumbnail, preprocess — in parallel.
        let decode_outcomes = outcome_tx.clone();
        scope.spawn(move || {
            candidates.into_par_iter().for_each_with((prepared_tx, decode_outcomes), |(prepared, outcomes), file| {
                if options.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                    return;
                }
                match prepare(encoder, file, known, &options.video, times) {
                    Ok(Step::Prepared(p)) => {
                        budget.take(p.inputs.len());
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
        let encoder = scope.spawn(move || {
            let result = encode_batches(encoder, prepared_rx, &outcome_tx, batch_size, budget, times);
            budget.close();
            result
        });
        // The caller's thread consumes outcomes until both producers hang up.
        for outcome in outcome_rx.iter() {
            sink(outcome);
        }
        encoder.join().expect("encoder thread panicked")
    })
}

/// Stage 3: gathers prepared files into batches of at least `batch_size` inputs, encodes them
/// (in chunks of `batch_size`), and sends each file's outcome on.
fn encode_batches(
    encoder: &dyn Encoder,
    prepared_rx: crossbeam_channel::Receiver<Prepared>,
    outcome_tx: &crossbeam_channel::Sender<Outcome>,
    batch_size: usize,
    budget: &InputBudget,
    times: &StageTimes,
) -> Result<(), crate::ClipError> {
    loop {
        // Blocks until a full batch of inputs is ready or the decoders are done.
        let mut batch: Vec<Prepared> = Vec::new();
        let mut count = 0;
        for p in prepared_rx.iter() {
            count += p.inputs.len();
            budget.give_back(p.inputs.len());
            batch.push(p);
            if count >= batch_size {
                break;
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        let counts: Vec<usize> = batch.iter().map(|p| p.inputs.len()).collect();
        let inputs: Vec<PreparedImage> = batch.iter_mut().flat_map(|p| std::mem::take(&mut p.inputs)).collect();
        let mut embeddings = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(batch_size) {
            embeddings.extend(encoder.encode_images(chunk)?);
        }
        drop(inputs);
        StageTimes::add(&times.encode, start);
        let mut embeddings = embeddings.into_iter();
        for (p, n) in batch.into_iter().zip(counts) {
            let mine: Vec<Embedding> = embeddings.by_ref().take(n).collect();
            let _ = outcome_tx.send(indexed(p, mine));
        }
    }
}

enum Step {
    Prepared(Box<Prepared>),
    Known { file: Candidate, hash: ContentHash },
}

/// The outcome of a prepared file and its embeddings (one per input).
fn indexed(p: Prepared, mut embeddings: Vec<Embedding>) -> Outcome {
    let (embedding, video) = match p.video {
        None => (embeddings.remove(0), None),
        Some((duration_ms, times)) => {
            let first = embeddings[0].clone();
            let moments: Vec<Moment> = times.into_iter().zip(embeddings).map(|(at_ms, embedding)| Moment { at_ms, embedding }).collect();
            (crate::video::mean_embedding(&moments).unwrap_or(first), Some(IndexedVideo { duration_ms, moments }))
        }
    };
    Outcome::Indexed(Box::new(IndexedImage {
        file: p.file,
        hash: p.hash,
        width: p.width,
        height: p.height,
        exif: p.exif,
        annotations: p.annotations,
        warnings: p.warnings,
        thumbnail: p.thumbnail,
        embedding,
        video,
    }))
}

fn prepare(encoder: &dyn Encoder, file: Candidate, known: &dyn KnownContent, video: &VideoOptions, times: &StageTimes) -> Result<Step, (PathBuf, String)> {
    if file.format.kind() == MediaKind::Video {
        return prepare_video(encoder, file, known, video, times);
    }
    let start = Instant::now();
    let bytes = std::fs::read(&file.path).map_err(|e| (file.path.clone(), format!("cannot read: {e}")))?;
    let hash = ContentHash(*blake3::hash(&bytes).as_bytes());
    let t = StageTimes::add(&times.read, start);
    if known.is_known(&hash) {
        return Ok(Step::Known { file, hash });
    }
    let decoded = decode_at_least(&bytes, decode_side(encoder)).map_err(|e| (file.path.clone(), e.to_string()))?;
    // The whole file can say more than the walk's prefix did (a RAW whose tags lie far in).
    let file = Candidate { format: decoded.format, ..file };
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
        annotations: decoded.annotations,
        warnings: decoded.warnings,
        file,
        hash,
        thumbnail,
        inputs: vec![input],
        video: None,
    })))
}

/// A video: hashed while streamed from disk (videos can be larger than memory), then sampled
/// into moments by FFmpeg, each preprocessed.
fn prepare_video(encoder: &dyn Encoder, file: Candidate, known: &dyn KnownContent, options: &VideoOptions, times: &StageTimes) -> Result<Step, (PathBuf, String)> {
    let start = Instant::now();
    let fail = |e: String| (file.path.clone(), e);
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(&file.path).map_err(|e| fail(format!("cannot read: {e}")))?).map_err(|e| fail(format!("cannot read: {e}")))?;
    let hash = ContentHash(*hasher.finalize().as_bytes());
    let t = StageTimes::add(&times.read, start);
    if known.is_known(&hash) {
        return Ok(Step::Known { file, hash });
    }
    let sampled = crate::video::sample(&file.path, decode_side(encoder), options).map_err(|e| fail(e.to_string()))?;
    let t = StageTimes::add(&times.decode, t);
    let inputs = sampled.frames.iter().map(|f| encoder.preprocess().prepare(&f.image)).collect::<Result<Vec<_>, _>>().map_err(|e| fail(e.to_string()))?;
    let t = StageTimes::add(&times.resize, t);
    let thumbnail = thumbnail_jpeg(&sampled.frames[0].image);
    StageTimes::add(&times.thumbnail, t);
    let duration_ms = (sampled.info.duration_s * 1000.0).round() as u64;
    Ok(Step::Prepared(Box::new(Prepared {
        width: sampled.info.width,
        height: sampled.info.height,
        exif: sampled.info.meta,
        annotations: Annotations::default(),
        warnings: sampled.warnings,
        file,
        hash,
        thumbnail,
        inputs,
        video: Some((duration_ms, if sampled.blank { Vec::new() } else { sampled.frames.iter().map(|f| f.at_ms).collect() })),
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
