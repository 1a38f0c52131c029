//! Realistic photos for the indexing bench: 12-megapixel JPEGs at quality 90 with natural-image
//! statistics (smooth colour fields, hard edges, texture, sensor noise — not flat colours, which
//! compress and decode unrealistically fast), plus some PNGs and 2-megapixel JPEGs; and, for the
//! per-format rows, the same 12-megapixel pictures as JPEG, HEIC and AVIF (libheif's encoders).

use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::{ImageFormat, RgbImage};
use rayon::prelude::*;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct PhotoSet {
    /// 4000×3000 JPEGs.
    pub large_jpegs: usize,
    /// 1600×1200 JPEGs.
    pub medium_jpegs: usize,
    /// 1600×1200 PNGs.
    pub pngs: usize,
}

impl PhotoSet {
    /// Images in the set.
    pub fn len(&self) -> usize {
        self.large_jpegs + self.medium_jpegs + self.pngs
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes the set into `dir` (skipping files already there, so a folder can be reused) and
/// returns the paths.
pub fn generate(dir: &Path, set: PhotoSet) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut jobs: Vec<(PathBuf, u32, u32, ImageFormat)> = Vec::new();
    for i in 0..set.large_jpegs {
        jobs.push((dir.join(format!("large-{i:04}.jpg")), 4000, 3000, ImageFormat::Jpeg));
    }
    for i in 0..set.medium_jpegs {
        jobs.push((dir.join(format!("medium-{i:04}.jpg")), 1600, 1200, ImageFormat::Jpeg));
    }
    for i in 0..set.pngs {
        jobs.push((dir.join(format!("png-{i:04}.png")), 1600, 1200, ImageFormat::Png));
    }
    jobs.par_iter().enumerate().try_for_each(|(seed, (path, w, h, format))| -> std::io::Result<()> {
        if path.exists() {
            return Ok(());
        }
        let img = natural(*w, *h, seed as u64 + 1);
        let tmp = path.with_extension("partial");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let result = match format {
            ImageFormat::Jpeg => img.write_with_encoder(JpegEncoder::new_with_quality(&mut out, 90)),
            _ => img.write_to(&mut out, *format),
        };
        result.map_err(std::io::Error::other)?;
        drop(out);
        std::fs::rename(tmp, path)
    })?;
    Ok(jobs.into_iter().map(|j| j.0).collect())
}

/// A format of the per-format rows: 12-megapixel pictures in `dir/NAME/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// JPEG quality 90, the baseline.
    Jpeg,
    /// HEIC (HEVC, libheif's x265 encoder), quality 85.
    Heic,
    /// AVIF (AV1, libheif's aom encoder), quality 85.
    Avif,
}

impl RowFormat {
    /// Every row, baseline first.
    pub const ALL: [RowFormat; 3] = [RowFormat::Jpeg, RowFormat::Heic, RowFormat::Avif];

    /// The folder and extension name.
    pub fn name(self) -> &'static str {
        match self {
            RowFormat::Jpeg => "jpeg",
            RowFormat::Heic => "heic",
            RowFormat::Avif => "avif",
        }
    }
}

/// Writes `count` 4000×3000 pictures in `format` into `dir/NAME/` (skipping those already there)
/// and returns that folder. The pictures are those of `large-*.jpg`, so rows compare formats only.
pub fn generate_row(dir: &Path, format: RowFormat, count: usize) -> std::io::Result<PathBuf> {
    let folder = dir.join(format.name());
    std::fs::create_dir_all(&folder)?;
    // One at a time: the HEVC and AV1 encoders use every core themselves.
    for i in 0..count {
        let path = folder.join(format!("{i:04}.{}", format.name()));
        if path.exists() {
            continue;
        }
        let img = natural(4000, 3000, i as u64 + 1);
        let bytes = match format {
            RowFormat::Jpeg => {
                let mut out = Vec::new();
                img.write_with_encoder(JpegEncoder::new_with_quality(&mut out, 90)).map_err(std::io::Error::other)?;
                out
            }
            RowFormat::Heic => heif_bytes(&img, libheif_rs::CompressionFormat::Hevc).map_err(std::io::Error::other)?,
            RowFormat::Avif => heif_bytes(&img, libheif_rs::CompressionFormat::Av1).map_err(std::io::Error::other)?,
        };
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(tmp, &path)?;
    }
    Ok(folder)
}

/// Writes `minutes` of 1080p, 30 fps H.264 (Debian's FFmpeg, libx264) into `dir/video/`, once:
/// FFmpeg's moving test pattern, cut to moving gradients and back every 20 seconds, so both the
/// max gap and scene changes make moments. Returns the folder.
pub fn generate_video(dir: &Path, minutes: f64) -> std::io::Result<PathBuf> {
    let folder = dir.join("video");
    std::fs::create_dir_all(&folder)?;
    let path = folder.join(format!("{minutes}min-1080p.mp4"));
    if path.exists() {
        return Ok(folder);
    }
    let tmp = folder.join("partial.mp4");
    let seconds = format!("{}", minutes * 60.0);
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=30", "-f", "lavfi", "-i", "gradients=s=1920x1080:r=30:speed=0.02"])
        .args(["-filter_complex", "[0:v][1:v]overlay=enable='gte(mod(t,40),20)',format=yuv420p", "-t", &seconds])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"])
        .arg(&tmp)
        .status()?;
    if !status.success() {
        return Err(std::io::Error::other(format!("ffmpeg could not write the bench video ({status})")));
    }
    std::fs::rename(tmp, &path)?;
    Ok(folder)
}

/// `img` encoded as a HEIF file (quality 85) by libheif's encoder for `format`.
fn heif_bytes(img: &RgbImage, format: libheif_rs::CompressionFormat) -> Result<Vec<u8>, libheif_rs::HeifError> {
    use libheif_rs::{Channel, ColorSpace, EncoderQuality, HeifContext, Image, LibHeif, RgbChroma};
    let (w, h) = img.dimensions();
    let mut picture = Image::new(w, h, ColorSpace::Rgb(RgbChroma::Rgb))?;
    picture.create_plane(Channel::Interleaved, w, h, 8)?;
    let planes = picture.planes_mut();
    let plane = planes.interleaved.expect("the plane just created");
    let row = w as usize * 3;
    for (y, line) in img.as_raw().chunks(row).enumerate() {
        plane.data[y * plane.stride..y * plane.stride + row].copy_from_slice(line);
    }
    let lib = LibHeif::new();
    let mut encoder = lib.encoder_for_format(format)?;
    encoder.set_quality(EncoderQuality::Lossy(85))?;
    let mut context = HeifContext::new()?;
    context.encode_image(&picture, &mut encoder, None)?;
    context.write_to_bytes()
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

/// Colour gradients (a few sinusoids per channel), hard-edged discs, fine texture and noise.
fn natural(w: u32, h: u32, seed: u64) -> RgbImage {
    let mut rng = Rng(seed);
    let waves: Vec<[f32; 4]> = (0..12).map(|_| [rng.uniform(0.5, 4.0) / w as f32, rng.uniform(0.5, 4.0) / h as f32, rng.uniform(20.0, 50.0), rng.uniform(0.0, 6.3)]).collect();
    let base: Vec<f32> = (0..3).map(|_| rng.uniform(80.0, 170.0)).collect();
    let discs: Vec<[f32; 6]> = (0..6)
        .map(|_| {
            let r = rng.uniform(0.05, 0.25) * w.min(h) as f32;
            [rng.uniform(0.0, w as f32), rng.uniform(0.0, h as f32), r * r, rng.uniform(0.0, 255.0), rng.uniform(0.0, 255.0), rng.uniform(0.0, 255.0)]
        })
        .collect();
    let mut img = RgbImage::new(w, h);
    img.par_chunks_mut(w as usize * 3).enumerate().for_each(|(y, row)| {
        let mut noise = Rng(seed ^ ((y as u64) << 20));
        let yf = y as f32;
        for x in 0..w as usize {
            let xf = x as f32;
            for c in 0..3 {
                let mut v = base[c];
                for wave in &waves[c * 4..c * 4 + 4] {
                    v += wave[2] * (std::f32::consts::TAU * (wave[0] * xf + wave[1] * yf) + wave[3]).sin();
                }
                for d in &discs {
                    if (xf - d[0]).powi(2) + (yf - d[1]).powi(2) < d[2] {
                        v = v * 0.4 + d[3 + c] * 0.6;
                    }
                }
                // Texture (a fine grating) and sensor noise.
                v += 6.0 * ((xf * 0.9 + yf * 0.35).sin() * (yf * 0.7).cos()) + noise.uniform(-10.0, 10.0);
                row[x * 3 + c] = v.clamp(0.0, 255.0) as u8;
            }
        }
    });
    img
}
