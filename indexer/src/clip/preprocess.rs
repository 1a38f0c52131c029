//! Image preprocessing exactly as a model's `visual/preprocess_cfg.json` prescribes, matching
//! open_clip's reference (PIL resize + torchvision crop + numpy normalisation).
//!
//! The stage output is a small RGB8 crop ([`PreparedImage`]); normalisation into the model's input
//! tensor happens when a batch is assembled, so channels between stages carry bytes, not floats.

use std::path::Path;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, RgbImage};
use serde::Deserialize;

use super::json::read_json;
use super::ClipError;
use crate::decode::flatten_to_rgb;

/// How the image is fitted into the model's input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Shortest side to the target size, then a center crop (OpenAI CLIP).
    Shortest,
    /// Longest side to the target size, keeping the aspect ratio, then pad with the fill colour.
    Longest,
    /// Stretch to the target size.
    Squash,
}

/// Resampling filter, named as in open_clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// PIL's BICUBIC (Catmull-Rom, a = -0.5, antialiased when shrinking).
    Bicubic,
    /// PIL's BILINEAR.
    Bilinear,
    /// PIL's NEAREST.
    Nearest,
    /// PIL's LANCZOS.
    Lanczos,
}

/// Parsed `visual/preprocess_cfg.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessConfig {
    /// Target (height, width).
    pub size: (u32, u32),
    /// Per-channel mean (RGB), in 0..1 units.
    pub mean: [f32; 3],
    /// Per-channel standard deviation (RGB), in 0..1 units.
    pub std: [f32; 3],
    /// Resampling filter.
    pub interpolation: Interpolation,
    /// How the image is fitted into `size`.
    pub resize_mode: ResizeMode,
    /// Colour used for padding and behind transparent pixels.
    pub fill_color: [u8; 3],
}

#[derive(Deserialize)]
struct RawPreprocess {
    size: serde_json::Value,
    #[serde(default)]
    mode: Option<String>,
    mean: [f32; 3],
    std: [f32; 3],
    #[serde(default = "default_interpolation")]
    interpolation: Interpolation,
    #[serde(default = "default_resize_mode")]
    resize_mode: ResizeMode,
    #[serde(default)]
    fill_color: Option<serde_json::Value>,
}

fn default_interpolation() -> Interpolation {
    Interpolation::Bicubic
}

fn default_resize_mode() -> ResizeMode {
    ResizeMode::Shortest
}

impl PreprocessConfig {
    /// Reads and validates a preprocess_cfg.json file.
    pub fn from_file(path: &Path) -> Result<Self, ClipError> {
        let raw: RawPreprocess = read_json(path)?;
        let bad = |message: String| ClipError::Model { path: path.to_path_buf(), message };
        let size = match &raw.size {
            serde_json::Value::Number(n) => {
                let s = n.as_u64().ok_or_else(|| bad("size must be a positive integer".into()))?;
                (s as u32, s as u32)
            }
            serde_json::Value::Array(a) if a.len() == 2 => {
                let dim = |i: usize| a[i].as_u64().map(|v| v as u32);
                match (dim(0), dim(1)) {
                    (Some(h), Some(w)) => (h, w),
                    _ => return Err(bad("size must be [height, width]".into())),
                }
            }
            _ => return Err(bad("size must be an integer or [height, width]".into())),
        };
        if size.0 == 0 || size.1 == 0 || size.0 > 4096 || size.1 > 4096 {
            return Err(bad(format!("unsupported size {size:?}")));
        }
        if let Some(mode) = &raw.mode {
            if mode != "RGB" {
                return Err(bad(format!("mode {mode:?} is not supported; only \"RGB\" is")));
            }
        }
        if raw.std.iter().any(|s| *s <= 0.0) {
            return Err(bad("std values must be positive".into()));
        }
        let fill_color = match raw.fill_color {
            None => [0, 0, 0],
            Some(serde_json::Value::Number(n)) => {
                let v = n.as_u64().unwrap_or(0).min(255) as u8;
                [v, v, v]
            }
            Some(serde_json::Value::Array(a)) if a.len() == 3 => {
                let c = |i: usize| a[i].as_u64().unwrap_or(0).min(255) as u8;
                [c(0), c(1), c(2)]
            }
            Some(other) => return Err(bad(format!("fill_color {other} is not a colour"))),
        };
        Ok(Self {
            size,
            mean: raw.mean,
            std: raw.std,
            interpolation: raw.interpolation,
            resize_mode: raw.resize_mode,
            fill_color,
        })
    }

    /// Turns a decoded image (any colour type, EXIF orientation already applied) into the
    /// model-sized RGB8 crop.
    pub fn prepare(&self, image: &DynamicImage) -> Result<PreparedImage, ClipError> {
        let rgb = flatten_to_rgb(image, self.fill_color);
        let (th, tw) = self.size;
        let (w, h) = rgb.dimensions();
        if w == 0 || h == 0 {
            return Err(ClipError::Image("image has no pixels".into()));
        }
        let canvas = match self.resize_mode {
            ResizeMode::Shortest if th == tw => {
                let (nw, nh) = shortest_side_size(w, h, tw);
                center_crop_or_pad(&self.resize(&rgb, nw, nh)?, tw, th, self.fill_color)
            }
            ResizeMode::Shortest | ResizeMode::Squash => self.resize(&rgb, tw, th)?,
            ResizeMode::Longest => {
                let ratio = (w as f64 / tw as f64).max(h as f64 / th as f64);
                let nw = (round_half_even(w as f64 / ratio) as u32).max(1);
                let nh = (round_half_even(h as f64 / ratio) as u32).max(1);
                center_crop_or_pad(&self.resize(&rgb, nw, nh)?, tw, th, self.fill_color)
            }
        };
        Ok(PreparedImage { width: tw, height: th, pixels: canvas.into_raw() })
    }

    /// Writes one prepared image into a CHW float slice: x / 255, then (x - mean) / std.
    pub fn normalize_into(&self, image: &PreparedImage, out: &mut [f32]) {
        let plane = (image.width * image.height) as usize;
        debug_assert_eq!(out.len(), 3 * plane);
        let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * self.std[c]));
        let shift: [f32; 3] = std::array::from_fn(|c| self.mean[c] / self.std[c]);
        for (i, px) in image.pixels.chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * plane + i] = px[c] as f32 * scale[c] - shift[c];
            }
        }
    }

    fn resize(&self, src: &RgbImage, width: u32, height: u32) -> Result<RgbImage, ClipError> {
        if src.dimensions() == (width, height) {
            return Ok(src.clone());
        }
        let mut dst = RgbImage::new(width, height);
        let alg = match self.interpolation {
            Interpolation::Bicubic => ResizeAlg::Convolution(FilterType::CatmullRom),
            Interpolation::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
            Interpolation::Lanczos => ResizeAlg::Convolution(FilterType::Lanczos3),
            Interpolation::Nearest => ResizeAlg::Nearest,
        };
        Resizer::new()
            .resize(src, &mut dst, &ResizeOptions::new().resize_alg(alg))
            .map_err(|e| ClipError::Image(format!("resize failed: {e}")))?;
        Ok(dst)
    }
}

/// A model-sized RGB8 image (row-major, 3 bytes a pixel), ready to be batched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreparedImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// RGB bytes, `width * height * 3` of them.
    pub pixels: Vec<u8>,
}


/// torchvision `Resize(int)`: the shorter side becomes `target`, the longer `int(target * long / short)`.
fn shortest_side_size(w: u32, h: u32, target: u32) -> (u32, u32) {
    if w <= h {
        let long = ((target as u64 * h as u64) / w as u64) as u32;
        (target, long.max(1))
    } else {
        let long = ((target as u64 * w as u64) / h as u64) as u32;
        (long.max(1), target)
    }
}

/// torchvision `CenterCrop`, padding with `fill` where the image is smaller than the crop.
fn center_crop_or_pad(src: &RgbImage, tw: u32, th: u32, fill: [u8; 3]) -> RgbImage {
    let (w, h) = src.dimensions();
    let mut out = RgbImage::from_pixel(tw, th, image::Rgb(fill));
    // Offsets of the crop window in the source (positive) or of the source in the output (negative).
    let offset = |src_len: u32, dst_len: u32| -> i64 {
        if src_len >= dst_len {
            round_half_even((src_len - dst_len) as f64 / 2.0) as i64
        } else {
            -(((dst_len - src_len) / 2) as i64)
        }
    };
    let (ox, oy) = (offset(w, tw), offset(h, th));
    for y in 0..th as i64 {
        let sy = y + oy;
        if sy < 0 || sy >= h as i64 {
            continue;
        }
        for x in 0..tw as i64 {
            let sx = x + ox;
            if sx >= 0 && sx < w as i64 {
                out.put_pixel(x as u32, y as u32, *src.get_pixel(sx as u32, sy as u32));
            }
        }
    }
    out
}

/// Python's `round()`: halves go to the even neighbour.
fn round_half_even(v: f64) -> f64 {
    let r = v.round();
    if (v - v.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - v.signum()
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mode: ResizeMode) -> PreprocessConfig {
        PreprocessConfig {
            size: (4, 4),
            mean: [0.5; 3],
            std: [0.5; 3],
            interpolation: Interpolation::Bicubic,
            resize_mode: mode,
            fill_color: [9, 9, 9],
        }
    }

    #[test]
    fn shortest_side_follows_torchvision() {
        assert_eq!(shortest_side_size(640, 480, 224), (298, 224));
        assert_eq!(shortest_side_size(480, 640, 224), (224, 298));
    }

    #[test]
    fn rounding_is_pythons() {
        assert_eq!(round_half_even(0.5), 0.0);
        assert_eq!(round_half_even(1.5), 2.0);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(2.6), 3.0);
    }

    #[test]
    fn longest_mode_pads_with_fill_colour() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(8, 4, image::Rgb([255, 255, 255])));
        let p = config(ResizeMode::Longest).prepare(&img).unwrap();
        assert_eq!(&p.pixels[..3], &[9, 9, 9]); // top row is padding
        assert_eq!(&p.pixels[4 * 3 * 2..4 * 3 * 2 + 3], &[255, 255, 255]);
    }

    #[test]
    fn normalisation_maps_bytes_to_model_units() {
        let cfg = config(ResizeMode::Squash);
        let img = PreparedImage { width: 1, height: 1, pixels: vec![0, 255, 51] };
        let mut out = [0.0f32; 3];
        cfg.normalize_into(&img, &mut out);
        assert!((out[0] + 1.0).abs() < 1e-6 && (out[1] - 1.0).abs() < 1e-6 && (out[2] + 0.6).abs() < 1e-6);
    }
}
