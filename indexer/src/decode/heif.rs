//! HEIC/HEIF and AVIF through libheif (Debian's libheif1, which carries the HEVC and AV1
//! decoders). libheif applies the file's rotation and mirroring (`irot`/`imir`) itself, so the
//! EXIF Orientation tag, which describes the same turn, must not be applied again.

use image::{DynamicImage, RgbImage, RgbaImage};
use libheif_rs::{ColorSpace, HeifContext, HeifError, ImageHandle, ItemId, LibHeif, RgbChroma};

use super::{DecodeError, MAX_DECODED_BYTES, MAX_DIMENSION};
use crate::exif::{read_exif_tiff, ExifRead};

/// The primary picture of a HEIF file, upright, and its EXIF fields.
pub(super) struct HeifPicture {
    /// 8-bit RGB, or RGBA when the picture has an alpha plane.
    pub image: DynamicImage,
    /// From the file's `Exif` metadata item.
    pub exif: ExifRead,
    /// The file's XMP packet (a `mime` item of type `application/rdf+xml`), when it has one.
    pub xmp: Option<Vec<u8>>,
}

/// Decodes the primary picture of `bytes` at full size within the decoder limits.
pub(super) fn decode(bytes: &[u8]) -> Result<HeifPicture, DecodeError> {
    let corrupt = |e: HeifError| DecodeError::Corrupt(format!("HEIF: {}", e.message));
    let context = HeifContext::read_from_bytes(bytes).map_err(corrupt)?;
    let handle = context.primary_image_handle().map_err(corrupt)?;
    let (w, h) = (handle.width(), handle.height());
    let alpha = handle.has_alpha_channel();
    let channels: usize = if alpha { 4 } else { 3 };
    let bytes_needed = w as u64 * h as u64 * channels as u64;
    if w > MAX_DIMENSION || h > MAX_DIMENSION || bytes_needed > MAX_DECODED_BYTES {
        return Err(DecodeError::TooLarge(format!("{w}x{h} needs {} MiB", bytes_needed >> 20)));
    }
    let chroma = if alpha { RgbChroma::Rgba } else { RgbChroma::Rgb };
    let picture = LibHeif::new().decode(&handle, ColorSpace::Rgb(chroma), None).map_err(corrupt)?;
    let planes = picture.planes();
    let plane = planes.interleaved.ok_or_else(|| DecodeError::Corrupt("HEIF: no interleaved RGB plane decoded".into()))?;
    if plane.bits_per_pixel as usize != 8 * channels && plane.storage_bits_per_pixel as usize != 8 * channels {
        return Err(DecodeError::Corrupt(format!("HEIF: unexpected {} bits per pixel", plane.storage_bits_per_pixel)));
    }
    let row = plane.width as usize * channels;
    let mut pixels = Vec::with_capacity(row * plane.height as usize);
    for line in plane.data.chunks(plane.stride).take(plane.height as usize) {
        pixels.extend_from_slice(line.get(..row).ok_or_else(|| DecodeError::Corrupt("HEIF: short pixel row".into()))?);
    }
    let short = || DecodeError::Corrupt("HEIF: fewer pixels than its size".into());
    let image = if alpha {
        DynamicImage::ImageRgba8(RgbaImage::from_raw(plane.width, plane.height, pixels).ok_or_else(short)?)
    } else {
        DynamicImage::ImageRgb8(RgbImage::from_raw(plane.width, plane.height, pixels).ok_or_else(short)?)
    };
    Ok(HeifPicture { image, exif: exif_of(&handle), xmp: xmp_of(&handle) })
}

/// The EXIF fields of the picture's first `Exif` item: 4 bytes (big-endian) giving the offset of
/// the TIFF header after them, then the TIFF data. No item, or an unreadable one: no fields.
fn exif_of(handle: &ImageHandle) -> ExifRead {
    let mut ids: [ItemId; 1] = [0];
    if handle.metadata_block_ids(&mut ids, b"Exif") == 0 {
        return ExifRead::default();
    }
    let Ok(block) = handle.metadata(ids[0]) else { return ExifRead::default() };
    let Some(offset) = block.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize) else {
        return ExifRead::default();
    };
    match block.get(4usize.saturating_add(offset)..) {
        Some(tiff) => read_exif_tiff(tiff.to_vec()),
        None => ExifRead::default(),
    }
}

/// The picture's first XMP item.
fn xmp_of(handle: &ImageHandle) -> Option<Vec<u8>> {
    let mut ids: [ItemId; 8] = [0; 8];
    let n = handle.metadata_block_ids(&mut ids, b"mime");
    ids[..n.min(ids.len())]
        .iter()
        .find(|id| handle.metadata_content_type(**id) == Some("application/rdf+xml"))
        .and_then(|id| handle.metadata(*id).ok())
}
