//! Videos as moments: FFmpeg (Debian's `ffprobe` and `ffmpeg`, run as subprocesses) probes a
//! video and decodes candidate frames ([`CANDIDATES_PER_S`] a second), already scaled to the size
//! the encoder needs, as raw RGB on a pipe; of those a moment is taken at every scene change and
//! at least every [`VideoOptions::max_gap_s`] seconds, at most [`VideoOptions::max_moments`],
//! blank and black frames skipped.
//!
//! A scene change is measured against the last moment taken, not the previous frame (what
//! FFmpeg's `scene` score does): a slow change adds up to a new moment, and a cut between two
//! shots with similar backgrounds counts — FFmpeg scored such a cut 0.08 here, far under the 0.3
//! that its users take for a cut, while the difference of 32×32 miniatures was 15–35 of 255.
//!
//! Why subprocesses rather than a binding (ffmpeg-next): measured equally fast here (the work is
//! FFmpeg's decoding either way), no GPL code linked into clipsight, a crash or hang in a codec
//! kills one child process (with a time budget) instead of the indexer, and nothing to pin
//! against Debian's libav* versions.

mod probe;
mod process;

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use image::{DynamicImage, RgbImage};

use crate::embedding::Embedding;
pub use probe::{probe, VideoInfo};
pub use process::VideoError;
use process::{last_lines, run_to_end, Watched};

/// How videos are sampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoOptions {
    /// At most this many seconds between two sampled moments (scene changes add more).
    pub max_gap_s: f64,
    /// At most this many moments per video: a longer video is sampled more sparsely.
    pub max_moments: usize,
    /// Mean absolute difference (0–255) between the 32×32 miniatures of a frame and of the last
    /// moment above which the frame is a new scene.
    pub change_threshold: f64,
    /// How long reading one video may take before it is given up and reported.
    pub budget: Duration,
}

impl Default for VideoOptions {
    fn default() -> Self {
        Self { max_gap_s: 5.0, max_moments: 240, change_threshold: 12.0, budget: Duration::from_secs(300) }
    }
}

/// Candidate frames decoded per second of video.
pub const CANDIDATES_PER_S: u32 = 2;
/// Moments closer together than this are not both taken for a scene change (a flash or a fast
/// pan would otherwise fill the cap).
const MIN_SCENE_GAP_MS: u32 = 1000;
/// Gaps at least this long are sampled from keyframes only, without scene detection: it needs
/// every frame decoded, which a long video (sampled sparsely anyway) is not worth.
const KEYFRAMES_ONLY_GAP_S: f64 = 30.0;
/// Side of the miniatures compared for scene changes.
const MINIATURE: u32 = 32;

/// One embedded moment of a video.
#[derive(Debug, Clone, PartialEq)]
pub struct Moment {
    /// Milliseconds from the start.
    pub at_ms: u32,
    /// Unit-length embedding of the frame.
    pub embedding: Embedding,
}

/// A frame chosen for embedding.
pub struct SampledFrame {
    /// Milliseconds from the start.
    pub at_ms: u32,
    /// The frame, upright, scaled so its shorter side is the size asked for.
    pub image: DynamicImage,
}

/// A probed and sampled video.
pub struct SampledVideo {
    /// What the container says.
    pub info: VideoInfo,
    /// The frames to embed, in time order (at least one).
    pub frames: Vec<SampledFrame>,
    /// Whether every frame was blank: `frames` then holds the first, for a thumbnail, and the
    /// video has no moment worth finding.
    pub blank: bool,
    /// What was odd about it, without stopping its indexing.
    pub warnings: Vec<String>,
}

/// Probes and samples `path`, decoding frames whose shorter side is `short_side` pixels.
pub fn sample(path: &Path, short_side: u32, options: &VideoOptions) -> Result<SampledVideo, VideoError> {
    let started = Instant::now();
    let info = probe(path, options.budget)?;
    let budget = options.budget.saturating_sub(started.elapsed());
    let gap = match info.duration_s {
        d if d > 0.0 => options.max_gap_s.max(d / options.max_moments.max(1) as f64),
        _ => options.max_gap_s,
    };
    let (width, height) = scaled_size(info.width, info.height, short_side);
    let mut command = Command::new("ffmpeg");
    command.args(["-hide_banner", "-nostdin", "-loglevel", "info"]);
    let keyframes_only = gap >= KEYFRAMES_ONLY_GAP_S;
    if keyframes_only {
        command.args(["-skip_frame", "nokey"]);
    }
    // Long videos: FFmpeg keeps one keyframe per gap. Others: candidates at a steady rate, of
    // which `Moments` keeps the changes.
    let pick = if keyframes_only { format!("select='isnan(prev_selected_t)+gte(t-prev_selected_t,{gap})'") } else { format!("fps={CANDIDATES_PER_S}") };
    command
        .arg("-i")
        .arg(path)
        .args(["-map", "0:v:0", "-an", "-sn", "-dn", "-vf"])
        .arg(format!("{pick},scale={width}:{height},setsar=1,showinfo"))
        .args(["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]);
    let (process, mut stdout) = Watched::spawn(command, budget)?;
    let frame_bytes = width as usize * height as usize * 3;
    let gap_ms = (gap * 1000.0).round() as u32;
    let change = if keyframes_only { None } else { Some(options.change_threshold) };
    let mut moments = Moments { gap_ms, change, taken: Vec::new(), last: None };
    let mut first_blank = None;
    let mut decoded = 0usize;
    let cap = options.max_moments.max(1);
    // Chosen while streaming (a long video's candidates would not fit in memory), on each
    // candidate's nominal time; the exact times come from `showinfo` once FFmpeg is done.
    loop {
        let mut buffer = vec![0u8; frame_bytes];
        if stdout.read_exact(&mut buffer).is_err() {
            break;
        }
        let frame = RgbImage::from_raw(width, height, buffer).expect("the buffer holds one frame");
        if is_blank(&frame) {
            first_blank.get_or_insert((decoded, frame));
        } else {
            moments.offer(decoded, decoded as u32 * (1000 / CANDIDATES_PER_S), frame);
        }
        decoded += 1;
        if moments.taken.len() == cap {
            process.kill();
            break;
        }
    }
    drop(stdout);
    let capped = moments.taken.len() == cap;
    let stderr = process.finish(capped)?;
    if decoded == 0 {
        return Err(VideoError::Corrupt(format!("no frame could be decoded ({})", last_lines(&stderr, "ffmpeg"))));
    }
    let times = frame_times(&stderr);
    let mut warnings = Vec::new();
    let mut taken = moments.taken;
    let blank = taken.is_empty();
    if blank {
        warnings.push(format!("every sampled frame ({decoded}) is blank: the video is listed, but no moment of it is searchable"));
        taken.push(first_blank.expect("a frame was decoded"));
    }
    if capped {
        warnings.push(format!("sampling stopped at {cap} moments (--video-max-moments)"));
    }
    let frames = taken.into_iter().map(|(index, frame)| SampledFrame { at_ms: times.get(index).copied().unwrap_or(0), image: DynamicImage::ImageRgb8(frame) }).collect();
    Ok(SampledVideo { info, frames, blank, warnings })
}

/// Chooses moments among candidate frames offered in time order: the first, then any frame
/// [`Moments::gap_ms`] after the last moment, or a scene change at least [`MIN_SCENE_GAP_MS`]
/// after it.
struct Moments {
    gap_ms: u32,
    /// The change threshold; `None` takes every frame offered (FFmpeg already spaced them).
    change: Option<f64>,
    /// The candidates taken: their index among those decoded, and the frame.
    taken: Vec<(usize, RgbImage)>,
    /// The last moment's time and miniature.
    last: Option<(u32, RgbImage)>,
}

impl Moments {
    /// Considers candidate `index`, shown at about `at_ms`.
    fn offer(&mut self, index: usize, at_ms: u32, frame: RgbImage) {
        let miniature = image::imageops::thumbnail(&frame, MINIATURE, MINIATURE);
        let take = match (&self.last, self.change) {
            (None, _) | (_, None) => true,
            (Some((last_ms, last)), Some(threshold)) => {
                let since = at_ms.saturating_sub(*last_ms);
                since >= self.gap_ms || (since >= MIN_SCENE_GAP_MS && difference(last, &miniature) > threshold)
            }
        };
        if take {
            self.last = Some((at_ms, miniature));
            self.taken.push((index, frame));
        }
    }
}

/// Mean absolute difference of two equally sized pictures' samples (0–255).
fn difference(a: &RgbImage, b: &RgbImage) -> f64 {
    let total: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| x.abs_diff(*y) as u64).sum();
    total as f64 / a.as_raw().len().max(1) as f64
}

/// The frame shown at `at_s` seconds (clamped to the video), upright, full size: a preview.
pub fn frame_at(path: &Path, at_s: f64, budget: Duration) -> Result<DynamicImage, VideoError> {
    let mut command = Command::new("ffmpeg");
    command
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-ss"])
        .arg(format!("{:.3}", at_s.max(0.0)))
        .arg("-i")
        .arg(path)
        .args(["-map", "0:v:0", "-frames:v", "1", "-f", "image2pipe", "-c:v", "png", "pipe:1"]);
    let png = run_to_end(command, budget)?;
    if png.is_empty() {
        // Past the end: the last frame is what a player shows there.
        if at_s > 0.0 {
            let duration = probe(path, budget)?.duration_s;
            if duration > 0.0 && at_s > duration - 0.5 {
                return frame_at(path, (duration - 0.5).max(0.0), budget);
            }
        }
        return Err(VideoError::Corrupt(format!("no frame at {at_s:.3} s")));
    }
    image::load_from_memory(&png).map_err(|e| VideoError::Corrupt(format!("FFmpeg's frame does not decode: {e}")))
}

/// The size of a `w`×`h` picture scaled so its shorter side is `short_side` (even sides, as
/// FFmpeg's scaler prefers).
fn scaled_size(w: u32, h: u32, short_side: u32) -> (u32, u32) {
    let even = |x: f64| ((x / 2.0).round() as u32 * 2).max(2);
    let s = short_side as f64;
    if w <= h {
        (even(s), even(h as f64 * s / w as f64))
    } else {
        (even(w as f64 * s / h as f64), even(s))
    }
}

/// Whether a frame shows nothing: black (a fade, a covered lens) or one flat colour (a title
/// card's background). Luma's mean and spread over a grid of samples.
fn is_blank(frame: &RgbImage) -> bool {
    let (w, h) = frame.dimensions();
    let step = ((w as u64 * h as u64 / 4096).max(1) as f64).sqrt() as u32;
    let mut lumas = Vec::with_capacity(4096);
    for y in (0..h).step_by(step.max(1) as usize) {
        for x in (0..w).step_by(step.max(1) as usize) {
            let p = frame.get_pixel(x, y).0;
            lumas.push(0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64);
        }
    }
    let n = lumas.len() as f64;
    let mean = lumas.iter().sum::<f64>() / n;
    let spread = (lumas.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / n).sqrt();
    mean < BLACK_LUMA || spread < FLAT_SPREAD
}

/// Mean luma (0–255) below which a frame is black.
const BLACK_LUMA: f64 = 12.0;
/// Luma standard deviation below which a frame is one flat colour.
const FLAT_SPREAD: f64 = 3.0;

/// The presentation times of the frames that passed `showinfo`, in order, in milliseconds.
fn frame_times(stderr: &[u8]) -> Vec<u32> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains("Parsed_showinfo") && l.contains(" n:"))
        .filter_map(|l| l.split("pts_time:").nth(1)?.split_whitespace().next()?.parse::<f64>().ok())
        .map(|t| (t.max(0.0) * 1000.0).round().min(u32::MAX as f64) as u32)
        .collect()
}

/// The embedding that stands for a whole video (similar-by-id, duplicates, tags): the normalised
/// mean of its moments.
pub fn mean_embedding(moments: &[Moment]) -> Option<Embedding> {
    Embedding::weighted_sum(moments.iter().map(|m| (1.0, &m.embedding)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_scaled_to_the_short_side_with_even_sides() {
        assert_eq!(scaled_size(1920, 1080, 224), (398, 224));
        assert_eq!(scaled_size(1080, 1920, 224), (224, 398));
        assert_eq!(scaled_size(64, 64, 224), (224, 224));
    }

    #[test]
    fn black_and_flat_frames_are_blank_and_pictures_are_not() {
        let flat = RgbImage::from_pixel(320, 180, image::Rgb([40, 90, 200]));
        let black = RgbImage::from_fn(320, 180, |x, _| image::Rgb([(x % 7) as u8, 0, 0]));
        let picture = RgbImage::from_fn(320, 180, |x, y| if (x / 40 + y / 40) % 2 == 0 { image::Rgb([255, 0, 0]) } else { image::Rgb([20, 20, 20]) });
        assert!(is_blank(&flat) && is_blank(&black));
        assert!(!is_blank(&picture));
    }

    #[test]
    fn moments_are_taken_at_changes_and_at_least_every_gap() {
        let plain = |rgb: [u8; 3]| RgbImage::from_fn(64, 36, |x, _| if x < 32 { image::Rgb(rgb) } else { image::Rgb([128, 128, 128]) });
        let mut moments = Moments { gap_ms: 5000, change: Some(12.0), taken: Vec::new(), last: None };
        let (blue, red) = (plain([0, 0, 255]), plain([255, 0, 0]));
        for (i, t) in (0..30_000).step_by(500).enumerate() {
            let frame = if (12_000..15_000).contains(&t) { &red } else { &blue };
            moments.offer(i, t, frame.clone());
        }
        let at: Vec<usize> = moments.taken.iter().map(|(i, _)| i * 500).collect();
        assert_eq!(at, vec![0, 5000, 10_000, 12_000, 15_000, 20_000, 25_000], "the red scene and the return to blue are changes");
        let mut fixed = Moments { gap_ms: 5000, change: None, taken: Vec::new(), last: None };
        fixed.offer(0, 0, blue.clone());
        fixed.offer(1, 150_000, blue);
        assert_eq!(fixed.taken.len(), 2, "keyframes FFmpeg spaced are all taken");
    }

    #[test]
    fn showinfo_lines_give_the_frame_times() {
        let log = b"[Parsed_showinfo_3 @ 0x55] config in time_base: 1/15360\n\
            [Parsed_showinfo_3 @ 0x55] n:   0 pts:      0 pts_time:0       duration:512\n\
            [Parsed_showinfo_3 @ 0x55] n:   1 pts: 184320 pts_time:12.0333 duration:512\n\
            frame=    2 fps=0.0 q=-0.0 size=N/A\n";
        assert_eq!(frame_times(log), vec![0, 12033]);
    }
}
