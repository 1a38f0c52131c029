//! The media formats clipsight reads, recognised by their first bytes (never by extension).

use image::ImageFormat;

/// A format clipsight indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaFormat {
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// WebP.
    WebP,
    /// GIF (its first frame).
    Gif,
    /// BMP.
    Bmp,
    /// TIFF.
    Tiff,
    /// HEIF with HEVC pictures: what iPhones write (`.heic`, `.heif`).
    Heic,
    /// HEIF with AV1 pictures (`.avif`).
    Avif,
}

/// Every format, in the order the documentation lists them.
pub const SUPPORTED: [MediaFormat; 8] =
    [MediaFormat::Jpeg, MediaFormat::Png, MediaFormat::WebP, MediaFormat::Gif, MediaFormat::Bmp, MediaFormat::Tiff, MediaFormat::Heic, MediaFormat::Avif];

/// How many leading bytes [`MediaFormat::sniff`] looks at (a HEIF `ftyp` box lists its brands there).
pub const SNIFF_LEN: usize = 64;

/// HEIF brands whose pictures are HEVC (ISO/IEC 23008-12 and Apple's).
const HEVC_BRANDS: [&[u8; 4]; 6] = [b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"];
/// AVIF brands (AV1 image and sequence).
const AV1_BRANDS: [&[u8; 4]; 2] = [b"avif", b"avis"];
/// Generic HEIF brands that say nothing of the codec; the compatible brands then decide.
const GENERIC_BRANDS: [&[u8; 4]; 2] = [b"mif1", b"msf1"];

impl MediaFormat {
    /// The format whose signature `head` (the file's first [`SNIFF_LEN`] bytes or fewer) starts with.
    pub fn sniff(head: &[u8]) -> Option<MediaFormat> {
        if let Some(format) = sniff_heif(head) {
            return Some(format);
        }
        Some(match image::guess_format(head).ok()? {
            ImageFormat::Jpeg => MediaFormat::Jpeg,
            ImageFormat::Png => MediaFormat::Png,
            ImageFormat::WebP => MediaFormat::WebP,
            ImageFormat::Gif => MediaFormat::Gif,
            ImageFormat::Bmp => MediaFormat::Bmp,
            ImageFormat::Tiff => MediaFormat::Tiff,
            _ => return None,
        })
    }

    /// The lower-case name stored in records and used by the `type:` filter.
    pub fn name(self) -> &'static str {
        match self {
            MediaFormat::Jpeg => "jpeg",
            MediaFormat::Png => "png",
            MediaFormat::WebP => "webp",
            MediaFormat::Gif => "gif",
            MediaFormat::Bmp => "bmp",
            MediaFormat::Tiff => "tiff",
            MediaFormat::Heic => "heic",
            MediaFormat::Avif => "avif",
        }
    }

    /// The `image` crate's decoder for this format; `None` for HEIF formats, which libheif decodes.
    pub fn image_format(self) -> Option<ImageFormat> {
        Some(match self {
            MediaFormat::Jpeg => ImageFormat::Jpeg,
            MediaFormat::Png => ImageFormat::Png,
            MediaFormat::WebP => ImageFormat::WebP,
            MediaFormat::Gif => ImageFormat::Gif,
            MediaFormat::Bmp => ImageFormat::Bmp,
            MediaFormat::Tiff => ImageFormat::Tiff,
            MediaFormat::Heic | MediaFormat::Avif => return None,
        })
    }
}

/// HEIC or AVIF from an ISO base media `ftyp` box: size, `ftyp`, major brand, minor version,
/// compatible brands.
fn sniff_heif(head: &[u8]) -> Option<MediaFormat> {
    if head.get(4..8)? != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes(head[0..4].try_into().ok()?) as usize;
    let major: &[u8; 4] = head.get(8..12)?.try_into().ok()?;
    let compatible: Vec<&[u8; 4]> = head.get(16..size.min(head.len()))?.chunks_exact(4).filter_map(|c| c.try_into().ok()).collect();
    let kind = |brand: &[u8; 4]| {
        if AV1_BRANDS.contains(&brand) {
            Some(MediaFormat::Avif)
        } else if HEVC_BRANDS.contains(&brand) {
            Some(MediaFormat::Heic)
        } else {
            None
        }
    };
    kind(major).or_else(|| GENERIC_BRANDS.contains(&major).then(|| compatible.iter().find_map(|b| kind(b))).flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let size = 16 + 4 * compatible.len() as u32;
        let mut out = size.to_be_bytes().to_vec();
        out.extend_from_slice(b"ftyp");
        out.extend_from_slice(major);
        out.extend_from_slice(&[0, 0, 0, 0]);
        compatible.iter().for_each(|b| out.extend_from_slice(*b));
        out.extend_from_slice(b"\0\0\0\x20meta");
        out
    }

    #[test]
    fn heif_files_are_told_apart_by_their_brands() {
        assert_eq!(MediaFormat::sniff(&ftyp(b"heic", &[b"mif1", b"heic"])), Some(MediaFormat::Heic));
        assert_eq!(MediaFormat::sniff(&ftyp(b"avif", &[b"mif1", b"avif", b"miaf"])), Some(MediaFormat::Avif));
        assert_eq!(MediaFormat::sniff(&ftyp(b"mif1", &[b"mif1", b"heic"])), Some(MediaFormat::Heic));
        assert_eq!(MediaFormat::sniff(&ftyp(b"mif1", &[b"avif"])), Some(MediaFormat::Avif));
        // An MP4 video and a HEIF of an unknown codec are not images we read.
        assert_eq!(MediaFormat::sniff(&ftyp(b"isom", &[b"isom", b"mp42"])), None);
        assert_eq!(MediaFormat::sniff(&ftyp(b"mif1", &[b"mif1"])), None);
        assert_eq!(MediaFormat::sniff(b"\0\0\0\x18ftyp"), None, "cut short");
    }

    #[test]
    fn names_are_unique_and_lower_case() {
        let names: std::collections::HashSet<_> = SUPPORTED.iter().map(|f| f.name()).collect();
        assert_eq!(names.len(), SUPPORTED.len());
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase())));
    }
}
