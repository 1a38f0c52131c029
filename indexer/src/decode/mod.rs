//! Decoding image bytes: limits against decompression bombs, EXIF orientation, metadata and
//! thumbnails. The `image` crate (with libjpeg-turbo for scaled JPEGs) reads the common formats;
//! libheif reads HEIC and AVIF ([`heif`]); rawler reads camera RAW files ([`raw`]).

mod heif;
mod raw;

pub use raw::tiff_raw_format;

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

use crate::annotations::Annotations;
use crate::exif::{read_exif, ExifMeta, ExifRead};
use crate::format::MediaFormat;

/// Largest accepted width or height.
pub const MAX_DIMENSION: u32 = 30_000;
/// Largest accepted decoded size in bytes (about 170 megapixels of RGB).
pub const MAX_DECODED_BYTES: u64 = 512 * 1024 * 1024;
/// Longest side of stored thumbnails.
pub const THUMBNAIL_SIZE: u32 = 256;

/// A decoded image, upright, with what was learnt about it.
pub struct Decoded {
    /// The pixels, EXIF orientation applied — possibly smaller than the file (see [`decode_at_least`]).
    pub image: DynamicImage,
    /// Width of the picture in the file, upright.
    pub width: u32,
    /// Height of the picture in the file, upright.
    pub height: u32,
    /// The container format.
    pub format: MediaFormat,
    /// EXIF metadata.
    pub exif: ExifMeta,
    /// Title, description and keywords embedded in the file (XMP, IPTC); sidecars are read apart.
    pub annotations: Annotations,
    /// What was wrong with the metadata but did not stop the decoding (see [`read_exif`]).
    pub warnings: Vec<String>,
}

/// Why an image could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not an image format clipsight reads.
    #[error("unrecognised image format")]
    UnknownFormat,
    /// Larger than the pixel or memory limits.
    #[error("image too large: {0}")]
    TooLarge(String),
    /// Corrupt or truncated data.
    #[error("corrupt image: {0}")]
    Corrupt(String),
    /// A video, which is not one picture (see [`crate::video`]).
    #[error("a video, not a picture")]
    Video,
}

/// Decodes `bytes` at full size (format sniffed from content), applying EXIF orientation and
/// size limits.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    decode_at_least(bytes, u32::MAX)
}

/// Decodes `bytes` for a consumer that needs no more than `min_side` pixels on the shorter side.
/// JPEGs are then decoded at a reduced DCT scale (1/2, 1/4 or 1/8) that still leaves at least
/// `min_side`: a 12-megapixel photo needed at 224 px skips most of its inverse DCT, colour
/// conversion and memory traffic. Other formats, and JPEGs the scaled decoder does not handle
/// (CMYK, 16-bit), are decoded at full size.
pub fn decode_at_least(bytes: &[u8], min_side: u32) -> Result<Decoded, DecodeError> {
    let format = match MediaFormat::sniff(bytes).ok_or(DecodeError::UnknownFormat)? {
        MediaFormat::Tiff => tiff_raw_format(bytes).unwrap_or(MediaFormat::Tiff),
        other => other,
    };
    if format.kind() == crate::format::MediaKind::Video {
        return Err(DecodeError::Video);
    }
    if format.is_raw() {
        let raw::RawPicture { image, width, height, exif, xmp } = raw::decode(bytes, min_side)?;
        let mut warnings = Vec::new();
        let annotations = embedded_annotations(xmp, None, &mut warnings);
        return Ok(Decoded { image, width, height, format, exif, annotations, warnings });
    }
    let Some(image_format) = format.image_format() else {
        // HEIC/AVIF: decoded whole (a stored thumbnail item would be cheaper, at a quality cost
        // not measured yet), already upright.
        let heif::HeifPicture { image, exif: ExifRead { meta: exif, mut warnings }, xmp } = heif::decode(bytes)?;
        let (width, height) = (image.width(), image.height());
        let annotations = embedded_annotations(xmp, None, &mut warnings);
        return Ok(Decoded { image, width, height, format, exif, annotations, warnings });
    };
    if format == MediaFormat::Jpeg && jpeg_is_truncated(bytes) {
        // The decoder would fill the missing part with grey and succeed; an index of half
        // pictures helps nobody, so say what is wrong instead.
        return Err(DecodeError::Corrupt("truncated JPEG (the data ends before the end-of-image marker)".into()));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(classify)?;
    let (w, h) = decoder.dimensions();
    let bytes_needed = w as u64 * h as u64 * decoder.color_type().bytes_per_pixel() as u64;
    if bytes_needed > MAX_DECODED_BYTES {
        return Err(DecodeError::TooLarge(format!("{w}x{h} needs {} MiB", bytes_needed >> 20)));
    }
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let (xmp, iptc) = (decoder.xmp_metadata().ok().flatten(), decoder.iptc_metadata().ok().flatten());
    let scaled = if format == MediaFormat::Jpeg && w.min(h) / 2 >= min_side { decode_jpeg_scaled(bytes, w, h, min_side) } else { None };
    let mut image = match scaled {
        Some(image) => image,
        None => DynamicImage::from_decoder(decoder).map_err(classify)?,
    };
    image.apply_orientation(orientation);
    let (width, height) = upright_size(orientation, w, h);
    let ExifRead { meta: exif, mut warnings } = read_exif(bytes);
    let annotations = embedded_annotations(xmp, iptc, &mut warnings);
    Ok(Decoded { image, width, height, format, exif, annotations, warnings })
}

/// The annotations of a file's XMP packet laid over those of its IPTC block (XMP is what current
/// software writes and keeps in sync); an unreadable packet is a warning, not a failure.
fn embedded_annotations(xmp: Option<Vec<u8>>, iptc: Option<Vec<u8>>, warnings: &mut Vec<String>) -> Annotations {
    let base = iptc.map(|block| Annotations::from_iptc(&block)).unwrap_or_default();
    match xmp.map(|packet| Annotations::from_xmp(&packet)) {
        Some(Ok(xmp)) => base.overlaid(&xmp),
        Some(Err(e)) => {
            warnings.push(format!("embedded {e}"));
            base
        }
        None => base,
    }
}

/// The size of a `w`×`h` picture once `orientation` is applied: quarter turns swap the sides.
fn upright_size(orientation: image::metadata::Orientation, w: u32, h: u32) -> (u32, u32) {
    use image::metadata::Orientation::*;
    match orientation {
        Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH => (h, w),
        _ => (w, h),
    }
}

/// A JPEG decoded by libjpeg-turbo at the smallest DCT scale (1/2, 1/4 or 1/8) whose shorter
/// side is still `min_side` or more; `None` when none is smaller than full size or libjpeg-turbo
/// declines (CMYK): the caller then decodes at full size.
fn decode_jpeg_scaled(bytes: &[u8], w: u32, h: u32, min_side: u32) -> Option<DynamicImage> {
    let denom = [8u32, 4, 2].into_iter().find(|d| w.div_ceil(*d).min(h.div_ceil(*d)) >= min_side)?;
    let (sw, sh) = (w.div_ceil(denom) as usize, h.div_ceil(denom) as usize);
    let mut decompressor = turbojpeg::Decompressor::new().ok()?;
    let mut image = turbojpeg::Image { pixels: vec![0u8; sw * sh * 3], width: sw, pitch: sw * 3, height: sh, format: turbojpeg::PixelFormat::RGB };
    // TurboJPEG 2 picks the DCT scaling factor that fits the requested size.
    decompressor.decompress(bytes, image.as_deref_mut()).ok()?;
    image::RgbImage::from_raw(sw as u32, sh as u32, image.pixels).map(DynamicImage::ImageRgb8)
}

/// Whether a JPEG lacks the end-of-image marker after its last scan. Inside entropy-coded data
/// every 0xFF byte is stuffed (FF 00), so FF D9 after the last start-of-scan (FF DA) marks a
/// complete file, even with trailing bytes some cameras append.
fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_scan {
        None => true,
        Some(sos) => !bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9]),
    }
}

fn classify(e: image::ImageError) -> DecodeError {
    match e {
        image::ImageError::Limits(l) => DecodeError::TooLarge(l.to_string()),
        image::ImageError::Unsupported(u) => DecodeError::Corrupt(format!("unsupported: {u}")),
        other => DecodeError::Corrupt(other.to_string()),
    }
}

/// A JPEG thumbnail whose longest side is at most [`THUMBNAIL_SIZE`].
pub fn thumbnail_jpeg(image: &DynamicImage) -> Vec<u8> {
    jpeg_fitting(image, THUMBNAIL_SIZE, 82)
}

/// A JPEG of `image` whose longest side is at most `max_side` (never enlarged), transparency
/// over white: what a browser can show of any format.
pub fn jpeg_fitting(image: &DynamicImage, max_side: u32, quality: u8) -> Vec<u8> {
    let small = if image.width().max(image.height()) > max_side {
        image.thumbnail(max_side, max_side)
    } else {
        image.clone()
    };
    let rgb = flatten_to_rgb(&small, [255, 255, 255]);
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&rgb)
        .expect("encoding an RGB8 buffer to memory cannot fail");
    out
}

/// Converts any colour type to RGB8: alpha is composited over `fill`, grayscale replicated,
/// 16-bit and float samples scaled to 8 bits.
pub fn flatten_to_rgb(image: &DynamicImage, fill: [u8; 3]) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (src, dst) in rgba.pixels().zip(out.pixels_mut()) {
        let a = src[3] as u32;
        for c in 0..3 {
            dst[c] = ((src[c] as u32 * a + fill[c] as u32 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transparent_pixels_take_the_fill_colour() {
        let img = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(2, 2, image::Rgba([200, 0, 0, 0])));
        assert_eq!(flatten_to_rgb(&img, [1, 2, 3]).get_pixel(0, 0).0, [1, 2, 3]);
    }

    fn png_bytes(img: &DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn decodes_by_content_and_reports_format() {
        let img = DynamicImage::new_rgb8(10, 6);
        let d = decode(&png_bytes(&img)).unwrap();
        assert_eq!((d.image.width(), d.image.height(), d.format), (10, 6, MediaFormat::Png));
    }

    #[test]
    fn truncated_and_foreign_data_are_errors_not_panics() {
        let bytes = png_bytes(&DynamicImage::new_rgb8(64, 64));
        assert!(matches!(decode(&bytes[..bytes.len() / 2]), Err(DecodeError::Corrupt(_))));
        assert!(matches!(decode(b"hello"), Err(DecodeError::UnknownFormat)));
    }

    #[test]
    fn a_truncated_jpeg_is_corrupt_but_trailing_bytes_are_fine() {
        let jpeg = thumbnail_jpeg(&DynamicImage::new_rgb8(300, 200));
        assert!(decode(&jpeg).is_ok());
        let mut trailing = jpeg.clone();
        trailing.extend_from_slice(b"vendor data after the image");
        assert!(decode(&trailing).is_ok());
        let err = decode(&jpeg[..jpeg.len() - 40]).err().unwrap();
        assert!(err.to_string().contains("truncated JPEG"), "{err}");
    }

    #[test]
    fn large_jpegs_are_decoded_at_a_reduced_dct_scale_that_still_covers_the_need() {
        let mut jpeg = Vec::new();
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(2000, 1500, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 99])));
        img.write_with_encoder(JpegEncoder::new_with_quality(&mut jpeg, 90)).unwrap();
        let d = decode_at_least(&jpeg, 180).unwrap();
        assert_eq!((d.image.width(), d.image.height()), (250, 188), "1/8 scale: the shorter side stays ≥ 180");
        assert!(d.image.to_rgb8().get_pixel(100, 50)[2].abs_diff(99) <= 3, "the pixels are the picture's");
        assert_eq!((d.width, d.height), (2000, 1500), "the record keeps the file's size");
        let d = decode_at_least(&jpeg, 300).unwrap();
        assert_eq!(d.image.height(), 375, "1/4 scale");
        assert_eq!(decode(&jpeg).unwrap().image.width(), 2000, "full size when asked");
    }

    #[test]
    fn thumbnails_fit_the_limit() {
        let img = DynamicImage::new_rgba8(1000, 500);
        let thumb = image::load_from_memory(&thumbnail_jpeg(&img)).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (256, 128));
    }
}
