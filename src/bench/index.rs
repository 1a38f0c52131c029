//! `clipsight bench index`: how close end-to-end indexing comes to the model's own speed.
//!
//! In one run, on one machine: the model-only floor (prepared tensors straight into the image
//! encoder, best batch size), end-to-end `index` of a photo folder (fresh library, the tag
//! vocabulary embedded beforehand as in steady state), the time per stage, the peak RSS, and a
//! plain Python ONNX Runtime + PIL pipeline on the same model and photos (the peer baseline).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clipsight_indexer::clip::{ActiveDevice, PreparedImage};
use clipsight_indexer::Clip;
use serde::{Deserialize, Serialize};

use super::photos::RowFormat;
use crate::describe;
use crate::index::{self, IndexOptions};
use crate::store::{OpenMode, Store};

/// The peer pipeline's script, embedded so the bench runs from any directory.
const PEER_SCRIPT: &str = include_str!("../../tools/bench/peer_index.py");

/// Why the bench failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] clipsight_indexer::ClipError),
    /// Indexing failed.
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The tag vocabulary failed.
    #[error(transparent)]
    Describe(#[from] describe::DescribeError),
    /// Files could not be written or read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The peer pipeline failed.
    #[error("the Python peer pipeline failed: {0}")]
    Peer(String),
    /// Searching, in process or through `clipsight serve` or `clipsight search`, failed.
    #[error("searching failed: {0}")]
    Search(String),
    /// The `clipsight serve` child failed to start or to answer.
    #[error("clipsight serve failed: {0}")]
    Serve(String),
}

/// Model-only throughput at one batch size.
#[derive(Debug, Clone, Serialize)]
pub struct BatchRun {
    /// Images per encoder call.
    pub batch: usize,
    /// Images per second.
    pub images_per_s: f64,
}

/// What the Python peer pipeline reported.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerReport {
    /// Images embedded.
    pub images: usize,
    /// Wall time.
    pub seconds: f64,
    /// Throughput.
    pub images_per_s: f64,
    /// Its peak RSS.
    pub peak_rss_mb: f64,
}

/// The bench's figures (`--json` prints them).
#[derive(Debug, Clone, Serialize)]
pub struct IndexReport {
    /// Images in the photo folder.
    pub images: usize,
    /// The floor: the best model-only throughput.
    pub model_only_images_per_s: f64,
    /// Every batch size tried.
    pub model_only: Vec<BatchRun>,
    /// `index` on the photo folder.
    pub end_to_end_images_per_s: f64,
    /// End to end ÷ model only (target ≥ 0.9).
    pub ratio: f64,
    /// The Python/PIL pipeline's throughput, when it ran.
    pub peer_images_per_s: Option<f64>,
    /// End to end ÷ peer (target ≥ 2).
    pub peer_ratio: Option<f64>,
    /// Seconds per stage, summed over threads (read, decode, resize, thumbnail, encode, commit).
    pub stages_s: BTreeMap<String, f64>,
    /// Peak RSS of this process during the end-to-end run.
    pub peak_rss_mb: f64,
    /// The peer's peak RSS.
    pub peer_peak_rss_mb: Option<f64>,
    /// Encoder batch size used end to end (the best model-only one).
    pub batch: usize,
    /// Where the image encoder ran: "cpu" or "cuda" (the peer runs on the same).
    pub device: &'static str,
    /// The per-format rows (empty when none were asked for).
    pub formats: Vec<FormatRow>,
    /// The video row, when asked for.
    pub video: Option<VideoRow>,
}

/// Model-only throughput: model-sized images, already decoded and resized, straight into the
/// encoder, after one warm-up batch.
pub fn model_only(clip: &Clip, batch: usize, min_images: usize) -> Result<f64, BenchError> {
    let (w, h) = clip.preprocess().size;
    let mut seed = 1u32;
    let prepared: Vec<PreparedImage> = (0..batch)
        .map(|_| {
            let pixels = (0..w * h * 3)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 24) as u8
                })
                .collect();
            PreparedImage { width: w, height: h, pixels }
        })
        .collect();
    clip.encode_images(&prepared)?;
    let min_rounds = min_images.div_ceil(batch).max(2);
    let started = Instant::now();
    let mut rounds = 0;
    // At least `min_images` and MIN_SECONDS: a GPU encodes the CPU's share in milliseconds.
    while rounds < min_rounds || started.elapsed().as_secs_f64() < MIN_SECONDS {
        clip.encode_images(&prepared)?;
        rounds += 1;
    }
    Ok((rounds * batch) as f64 / started.elapsed().as_secs_f64())
}

/// The shortest model-only measurement.
const MIN_SECONDS: f64 = 2.0;

/// Runs the whole bench on the photos in `photos`. `peer` is the Python to run the peer pipeline
/// with (None skips it). `rows` are the per-format folders ([`super::photos::generate_row`]'s,
/// JPEG first), each indexed end to end after the main run.
/// `video` is a folder of videos and their length in minutes, for the video row.
pub fn run(clip: &Clip, photos: &Path, rows: &[(RowFormat, PathBuf)], video: Option<(&Path, f64)>, batches: &[usize], peer: Option<&Path>, mut progress: impl FnMut(&str)) -> Result<IndexReport, BenchError> {
    let images = crate::indexer::walk::walk(&[photos.to_path_buf()], Default::default()).filter(Result::is_ok).count();
    let mut model_only_runs = Vec::new();
    for &batch in batches {
        let ips = model_only(clip, batch, images.max(32))?;
        progress(&format!("model only, batch {batch}: {ips:.2} images/s"));
        model_only_runs.push(BatchRun { batch, images_per_s: ips });
    }
    let best = model_only_runs.iter().max_by(|a, b| a.images_per_s.total_cmp(&b.images_per_s)).cloned().unwrap_or(BatchRun { batch: 32, images_per_s: f64::NAN });

    progress("embedding the tag vocabulary (once per model, not timed)");
    let words = describe::vocabulary_words(None);
    let scratch = tempfile::tempdir()?;
    // With a model of its own, dropped after: an `index` run whose vocabulary is cached never
    // loads the text tower, so the peak measured below must not hold it either.
    let text_model = Clip::open(&clip.dir().root, *clip.options())?;
    let vocabulary = describe::Vocabulary::load(&Store::open(scratch.path(), OpenMode::ReadWrite)?, &text_model, &words, false)?;
    drop(text_model);
    clipsight_indexer::clip::release_freed_heap();
    let steady = Steady { words, vocabulary };
    let sampler = super::RssSampler::start();
    let (summary, _) = index_fresh(clip, photos, best.batch, &steady)?;
    let peak_rss_mb = sampler.peak_mb();
    let e2e = summary.indexed as f64 / summary.elapsed_s;
    progress(&format!("end to end: {} images in {:.1}s = {e2e:.2} images/s", summary.indexed, summary.elapsed_s));

    let device = clip.device()?;
    let peer_report = match peer {
        Some(python) => {
            progress("peer: Python + PIL + ONNX Runtime on the same photos");
            Some(run_peer(python, &clip.dir().root, photos, best.batch, device)?)
        }
        None => None,
    };
    let formats = format_rows(clip, rows, best.batch, best.images_per_s, &steady, &mut progress)?;
    let video = video.map(|(folder, minutes)| video_row(clip, folder, minutes, best.batch, best.images_per_s, &steady, &mut progress)).transpose()?;
    Ok(IndexReport {
        images: summary.indexed,
        model_only_images_per_s: best.images_per_s,
        model_only: model_only_runs,
        end_to_end_images_per_s: e2e,
        ratio: e2e / best.images_per_s,
        peer_images_per_s: peer_report.as_ref().map(|p| p.images_per_s),
        peer_ratio: peer_report.as_ref().map(|p| e2e / p.images_per_s),
        stages_s: summary.stages_s.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        peak_rss_mb,
        peer_peak_rss_mb: peer_report.as_ref().map(|p| p.peak_rss_mb),
        batch: best.batch,
        device: device.name(),
        formats,
        video,
    })
}

/// What every fresh library of the bench starts with, as a library in steady state has it: the
/// tag vocabulary, embedded once per run.
struct Steady {
    words: Vec<String>,
    vocabulary: describe::Vocabulary,
}

/// Indexes `photos` into a fresh library that already holds the tag vocabulary (as in steady
/// state; caching it is not timed).
/// Also returns the video moments it embedded.
fn index_fresh(clip: &Clip, photos: &Path, batch: usize, steady: &Steady) -> Result<(index::IndexSummary, usize), BenchError> {
    let tmp = tempfile::tempdir()?;
    let store = Store::open(tmp.path(), OpenMode::ReadWrite)?;
    steady.vocabulary.cache_in(&store, clip.id())?;
    let options = IndexOptions { roots: vec![photos.to_path_buf()], hidden: false, full: false, batch_size: batch, tag_vocabulary: steady.words.clone(), stop: None, video: Default::default(), pairs: Default::default(), home: Default::default(), shard: Default::default() };
    let summary = index::run(&store, clip, &options, |_, _| {})?;
    store.flush()?;
    let mut moments = 0;
    for item in store.all_moments(clip.id()) {
        moments += item?.1.len();
    }
    Ok((summary, moments))
}

/// End-to-end indexing of a folder of videos.
#[derive(Debug, Clone, Serialize)]
pub struct VideoRow {
    /// Minutes of video indexed.
    pub video_minutes: f64,
    /// Moments embedded.
    pub moments: usize,
    /// Wall time.
    pub seconds: f64,
    /// Minutes of video indexed per minute of wall time.
    pub video_minutes_per_minute: f64,
    /// Moments embedded per second.
    pub moments_per_s: f64,
    /// Moments per second ÷ the model-only floor of the same run (images per second).
    pub floor_ratio: f64,
    /// Seconds per stage, summed over threads (decode is FFmpeg's decoding and scaling).
    pub stages_s: BTreeMap<String, f64>,
}

/// The video row: `folder`'s videos (`minutes` of them in all) indexed end to end.
fn video_row(clip: &Clip, folder: &Path, minutes: f64, batch: usize, floor: f64, steady: &Steady, progress: &mut impl FnMut(&str)) -> Result<VideoRow, BenchError> {
    let (summary, moments) = index_fresh(clip, folder, batch, steady)?;
    let seconds = summary.elapsed_s;
    let moments_per_s = moments as f64 / seconds;
    progress(&format!("video: {minutes:.1} min, {moments} moments in {seconds:.1}s = {:.1} video minutes per minute", minutes * 60.0 / seconds));
    Ok(VideoRow {
        video_minutes: minutes,
        moments,
        seconds,
        video_minutes_per_minute: minutes * 60.0 / seconds,
        moments_per_s,
        floor_ratio: moments_per_s / floor,
        stages_s: summary.stages_s.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    })
}

/// End-to-end indexing of one folder of same-sized pictures in one format.
#[derive(Debug, Clone, Serialize)]
pub struct FormatRow {
    /// `jpeg`, `heic` or `avif`.
    pub format: &'static str,
    /// Pictures indexed.
    pub images: usize,
    /// Images per second, end to end.
    pub images_per_s: f64,
    /// ÷ the model-only floor of the same run.
    pub floor_ratio: f64,
    /// ÷ the JPEG row of the same run.
    pub jpeg_ratio: f64,
    /// Seconds per stage, summed over threads.
    pub stages_s: BTreeMap<String, f64>,
}

/// The per-format rows: each folder indexed end to end into a fresh library at `batch`, against
/// `floor` (model-only images/s measured in the same run) and the first (JPEG) row.
fn format_rows(clip: &Clip, folders: &[(RowFormat, PathBuf)], batch: usize, floor: f64, steady: &Steady, progress: &mut impl FnMut(&str)) -> Result<Vec<FormatRow>, BenchError> {
    let mut rows: Vec<FormatRow> = Vec::new();
    for (format, folder) in folders {
        let (summary, _) = index_fresh(clip, folder, batch, steady)?;
        let ips = summary.indexed as f64 / summary.elapsed_s;
        let jpeg = rows.first().map_or(ips, |r| r.images_per_s);
        progress(&format!("{}: {} images in {:.1}s = {ips:.2} images/s", format.name(), summary.indexed, summary.elapsed_s));
        rows.push(FormatRow {
            format: format.name(),
            images: summary.indexed,
            images_per_s: ips,
            floor_ratio: ips / floor,
            jpeg_ratio: ips / jpeg,
            stages_s: summary.stages_s.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        });
    }
    Ok(rows)
}

fn run_peer(python: &Path, model: &Path, photos: &Path, batch: usize, device: ActiveDevice) -> Result<PeerReport, BenchError> {
    let script = std::env::temp_dir().join(format!("clipsight-peer-{}.py", std::process::id()));
    std::fs::write(&script, PEER_SCRIPT)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg("--model")
        .arg(model)
        .arg("--photos")
        .arg(photos)
        .args(["--batch", &batch.to_string(), "--threads", &threads.to_string()])
        .args(["--device", device.name()])
        .output();
    let _ = std::fs::remove_file(&script);
    let out = out.map_err(|e| BenchError::Peer(format!("{}: {e}", python.display())))?;
    if !out.status.success() {
        return Err(BenchError::Peer(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| BenchError::Peer(format!("unreadable output ({e}): {}", String::from_utf8_lossy(&out.stdout))))
}
