//! The media formats clipsight reads, recognised by their first bytes (never by extension), and
//! the two kinds of media they hold: photos and videos.

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
    /// An ISO base media (MPEG-4 part 14) video (`.mp4`, and any ISO brand not named below).
    Mp4,
    /// A QuickTime movie (`.mov`: iPhones, Live Photos).
    Mov,
    /// An iTunes video (`.m4v`).
    M4v,
    /// A 3GPP/3GPP2 phone video (`.3gp`, `.3g2`).
    ThreeGp,
    /// A Matroska video (`.mkv`).
    Mkv,
    /// A WebM video (Matroska with VP8/VP9/AV1).
    WebM,
    /// An AVI video.
    Avi,
    /// Adobe's Digital Negative (`.dng`: Leica, Pentax, Ricoh, phones' "RAW" modes, converters).
    Dng,
    /// Canon RAW 2 (`.cr2`).
    Cr2,
    /// Canon RAW 3 (`.cr3`, ISO base media).
    Cr3,
    /// Nikon (`.nef`, and `.nrw` from compacts).
    Nef,
    /// Sony (`.arw`, `.srf`, `.sr2`).
    Arw,
    /// Fujifilm (`.raf`).
    Raf,
    /// Olympus / OM System (`.orf`).
    Orf,
    /// Panasonic / Leica (`.rw2`).
    Rw2,
}

/// What a file holds: one picture, or frames in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// A still picture.
    Photo,
    /// A video: its moments are embedded.
    Video,
}

impl MediaKind {
    /// `photo` or `video`: the `kind` of search hits and the `type:` filter's word.
    pub fn name(self) -> &'static str {
        match self {
            MediaKind::Photo => "photo",
            MediaKind::Video => "video",
        }
    }
}

/// Every format, in the order the documentation lists them.
pub const SUPPORTED: [MediaFormat; 23] = [
    MediaFormat::Jpeg,
    MediaFormat::Png,
    MediaFormat::WebP,
    MediaFormat::Gif,
    MediaFormat::Bmp,
    MediaFormat::Tiff,
    MediaFormat::Heic,
    MediaFormat::Avif,
    MediaFormat::Mp4,
    MediaFormat::Mov,
    MediaFormat::M4v,
    MediaFormat::ThreeGp,
    MediaFormat::Mkv,
    MediaFormat::WebM,
    MediaFormat::Avi,
    MediaFormat::Dng,
    MediaFormat::Cr2,
    MediaFormat::Cr3,
    MediaFormat::Nef,
    MediaFormat::Arw,
    MediaFormat::Raf,
    MediaFormat::Orf,
    MediaFormat::Rw2,
];

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
    /// DNG, NEF and ARW files are TIFF files by their signature and come back as
    /// [`MediaFormat::Tiff`]: only their tags tell them apart ([`crate::decode::tiff_raw_format`]).
    pub fn sniff(head: &[u8]) -> Option<MediaFormat> {
        if let Some(format) = sniff_raw(head).or_else(|| sniff_iso_media(head)).or_else(|| sniff_other_video(head)) {
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
            MediaFormat::Mp4 => "mp4",
            MediaFormat::Mov => "mov",
            MediaFormat::M4v => "m4v",
            MediaFormat::ThreeGp => "3gp",
            MediaFormat::Mkv => "mkv",
            MediaFormat::WebM => "webm",
            MediaFormat::Avi => "avi",
            MediaFormat::Dng => "dng",
            MediaFormat::Cr2 => "cr2",
            MediaFormat::Cr3 => "cr3",
            MediaFormat::Nef => "nef",
            MediaFormat::Arw => "arw",
            MediaFormat::Raf => "raf",
            MediaFormat::Orf => "orf",
            MediaFormat::Rw2 => "rw2",
        }
    }

    /// The format named `name` ([`MediaFormat::name`]).
    pub fn from_name(name: &str) -> Option<MediaFormat> {
        SUPPORTED.into_iter().find(|f| f.name() == name)
    }

    /// Photo or video.
    pub fn kind(self) -> MediaKind {
        match self {
            MediaFormat::Mp4 | MediaFormat::Mov | MediaFormat::M4v | MediaFormat::ThreeGp | MediaFormat::Mkv | MediaFormat::WebM | MediaFormat::Avi => MediaKind::Video,
            _ => MediaKind::Photo,
        }
    }

    /// Whether this is a camera's RAW format, which rawler reads ([`crate::decode`]).
    pub fn is_raw(self) -> bool {
        matches!(
            self,
            MediaFormat::Dng | MediaFormat::Cr2 | MediaFormat::Cr3 | MediaFormat::Nef | MediaFormat::Arw | MediaFormat::Raf | MediaFormat::Orf | MediaFormat::Rw2
        )
    }

    /// The `image` crate's decoder for this format; `None` for HEIF formats, which libheif
    /// decodes, RAW formats, which rawler decodes, and for videos, which FFmpeg reads.
    pub fn image_format(self) -> Option<ImageFormat> {
        Some(match self {
            MediaFormat::Jpeg => ImageFormat::Jpeg,
            MediaFormat::Png => ImageFormat::Png,
            MediaFormat::WebP => ImageFormat::WebP,
            MediaFormat::Gif => ImageFormat::Gif,
            MediaFormat::Bmp => ImageFormat::Bmp,
            MediaFormat::Tiff => ImageFormat::Tiff,
            _ => return None,
        })
    }
}

/// RAW formats with a signature of their own in their first bytes: Fujifilm's header, Olympus's
/// and Panasonic's TIFF variants (their own magic numbers in place of 42), Canon's CR2 (a TIFF
/// with `CR` 2 after the header) and CR3 (ISO base media of brand `crx `).
fn sniff_raw(head: &[u8]) -> Option<MediaFormat> {
    if head.starts_with(b"FUJIFILMCCD-RAW") {
        return Some(MediaFormat::Raf);
    }
    if [b"IIRO", b"IIRS", b"MMOR"].iter().any(|magic| head.starts_with(*magic)) {
        return Some(MediaFormat::Orf);
    }
    if head.starts_with(b"IIU\0") {
        return Some(MediaFormat::Rw2);
    }
    if head.starts_with(b"II*\0") && head.get(8..11) == Some(b"CR\x02") {
        return Some(MediaFormat::Cr2);
    }
    (head.get(4..12) == Some(b"ftypcrx ")).then_some(MediaFormat::Cr3)
}

/// Audio-only MPEG-4 brands (iTunes audio, audiobooks, protected audio): not media we index.
const AUDIO_BRANDS: [&[u8; 4]; 4] = [b"M4A ", b"M4B ", b"M4P ", b"F4A "];

/// A file of the ISO base media family (HEIF pictures, MP4/QuickTime/3GPP videos) from its
/// `ftyp` box: size, `ftyp`, major brand, minor version, compatible brands. QuickTime files
/// older than `ftyp` start with a `moov`, `mdat` or `wide` atom instead.
fn sniff_iso_media(head: &[u8]) -> Option<MediaFormat> {
    if matches!(head.get(4..8)?, b"moov" | b"mdat" | b"wide") {
        return Some(MediaFormat::Mov);
    }
    if head.get(4..8)? != b"ftyp" {
        return None;
    }
    let major: &[u8; 4] = head.get(8..12)?.try_into().ok()?;
    if let Some(picture) = sniff_heif(head, major) {
        return Some(picture);
    }
    if HEVC_BRANDS.contains(&major) || AV1_BRANDS.contains(&major) || GENERIC_BRANDS.contains(&major) || AUDIO_BRANDS.contains(&major) {
        // A HEIF of a codec we do not read, or audio.
        return None;
    }
    Some(match major {
        b"qt  " => MediaFormat::Mov,
        [b'M', b'4', b'V', _] => MediaFormat::M4v,
        [b'3', b'g', _, _] => MediaFormat::ThreeGp,
        _ => MediaFormat::Mp4,
    })
}

/// Matroska/WebM (an EBML header whose DocType says which) and AVI (a RIFF `AVI ` form).
fn sniff_other_video(head: &[u8]) -> Option<MediaFormat> {
    if head.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]) {
        let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
        return if has(b"webm") {
            Some(MediaFormat::WebM)
        } else if has(b"matroska") {
            Some(MediaFormat::Mkv)
        } else {
            None
        };
    }
    (head.starts_with(b"RIFF") && head.get(8..12)? == b"AVI ").then_some(MediaFormat::Avi)
}

/// HEIC or AVIF from an `ftyp` box whose major brand is `major`.
fn sniff_heif(head: &[u8], major: &[u8; 4]) -> Option<MediaFormat> {
    let size = u32::from_be_bytes(head[0..4].try_into().ok()?) as usize;
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
    fn raw_formats_with_a_signature_are_told_apart_by_it() {
        let sniff = |bytes: &[u8]| MediaFormat::sniff(bytes);
        assert_eq!(sniff(b"FUJIFILMCCD-RAW 0201FF383501"), Some(MediaFormat::Raf));
        assert_eq!(sniff(b"IIRO\x08\0\0\0"), Some(MediaFormat::Orf));
        assert_eq!(sniff(b"IIU\0\x18\0\0\0"), Some(MediaFormat::Rw2));
        assert_eq!(sniff(b"II*\0\x10\0\0\0CR\x02\0"), Some(MediaFormat::Cr2));
        assert_eq!(sniff(&ftyp(b"crx ", &[b"crx ", b"isom"])), Some(MediaFormat::Cr3));
        // DNG, NEF and ARW are TIFF by signature: their tags decide (decode::tiff_raw_format).
        assert_eq!(sniff(b"II*\0\x08\0\0\0\0\0"), Some(MediaFormat::Tiff));
        assert!(SUPPORTED.iter().filter(|f| f.is_raw()).all(|f| f.kind() == MediaKind::Photo && f.image_format().is_none()));
    }

    #[test]
    fn heif_files_are_told_apart_by_their_brands() {
        assert_eq!(MediaFormat::sniff(&ftyp(b"heic", &[b"mif1", b"heic"])), Some(MediaFormat::Heic));
        assert_eq!(MediaFormat::sniff(&ftyp(b"avif", &[b"mif1", b"avif", b"miaf"])), Some(MediaFormat::Avif));
        assert_eq!(MediaFormat::sniff(&ftyp(b"mif1", &[b"mif1", b"heic"])), Some(MediaFormat::Heic));
        assert_eq!(MediaFormat::sniff(&ftyp(b"mif1", &[b"avif"])), Some(MediaFormat::Avif));
        // A HEIF of an unknown codec is not an image we read.
        assert_eq!(MediaFormat::sniff(&ftyp(b"mif1", &[b"mif1"])), None);
        assert_eq!(MediaFormat::sniff(b"\0\0\0\x18ftyp"), None, "cut short");
    }

    #[test]
    fn videos_are_told_apart_by_brand_doctype_and_form() {
        let sniff = |bytes: &[u8]| MediaFormat::sniff(bytes);
        assert_eq!(sniff(&ftyp(b"isom", &[b"isom", b"mp42"])), Some(MediaFormat::Mp4));
        assert_eq!(sniff(&ftyp(b"mp42", &[b"mp42"])), Some(MediaFormat::Mp4));
        assert_eq!(sniff(&ftyp(b"qt  ", &[b"qt  "])), Some(MediaFormat::Mov));
        assert_eq!(sniff(&ftyp(b"M4V ", &[b"M4V ", b"mp42"])), Some(MediaFormat::M4v));
        assert_eq!(sniff(&ftyp(b"3gp4", &[b"3gp4"])), Some(MediaFormat::ThreeGp));
        assert_eq!(sniff(&ftyp(b"M4A ", &[b"M4A ", b"mp42"])), None, "audio is not a video");
        assert_eq!(sniff(b"\0\0\0\x08wide\0\0\0\x10mdat"), Some(MediaFormat::Mov), "QuickTime without ftyp");
        let ebml = |doctype: &[u8]| [&[0x1a, 0x45, 0xdf, 0xa3, 0xa3, 0x42, 0x82, 0x88][..], doctype].concat();
        assert_eq!(sniff(&ebml(b"matroska")), Some(MediaFormat::Mkv));
        assert_eq!(sniff(&ebml(b"webm")), Some(MediaFormat::WebM));
        assert_eq!(sniff(b"RIFF\x10\0\0\0AVI LIST"), Some(MediaFormat::Avi));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WAVEfmt "), None, "a WAV is not a video");
        assert!(SUPPORTED.iter().all(|f| MediaFormat::from_name(f.name()) == Some(*f)));
        assert_eq!(MediaFormat::Mov.kind(), MediaKind::Video);
        assert_eq!(MediaFormat::Heic.kind(), MediaKind::Photo);
    }

    #[test]
    fn names_are_unique_and_lower_case_ascii() {
        let names: std::collections::HashSet<_> = SUPPORTED.iter().map(|f| f.name()).collect();
        assert_eq!(names.len(), SUPPORTED.len());
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())));
    }
}
