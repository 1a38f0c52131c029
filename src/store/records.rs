//! Domain types persisted in the store and their byte encodings.

use serde::{Deserialize, Serialize};

pub use clipsight_indexer::exif::{CaptureDate, ExifMeta};

/// Stable identifier of an indexed image within one library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImageId(pub u64);

impl ImageId {
    /// Big-endian key bytes: keys sort by id.
    pub fn to_key(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// Parses key bytes written by [`ImageId::to_key`].
    pub fn from_key(bytes: &[u8]) -> Option<Self> {
        Some(Self(u64::from_be_bytes(bytes.try_into().ok()?)))
    }
}

impl std::fmt::Display for ImageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Everything the library knows about one image file.
///
/// The field order is part of the on-disk format: migration 0002 reads the prefix
/// (path, size, mtime_ns, hash). Append new fields at the end, with a migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Path bytes as found on disk (non-UTF-8 names survive).
    pub path: Vec<u8>,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// BLAKE3 of the content.
    pub hash: [u8; 32],
    /// Width after EXIF orientation.
    pub width: u32,
    /// Height after EXIF orientation.
    pub height: u32,
    /// Container format ("jpeg", "png", ...).
    pub format: String,
    /// EXIF metadata.
    pub exif: ExifMeta,
    /// When it was indexed, seconds since the epoch.
    pub indexed_at: u64,
    /// Files of the same picture listed with it (a RAW beside its JPEG twin, a Live Photo's
    /// motion video): walked and watched, never embedded nor items of their own (v6).
    pub companions: Vec<CompanionRecord>,
}

/// A file listed beside an item ([`clipsight_indexer::pairs`]), with the facts that tell whether
/// it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanionRecord {
    /// Path bytes as found on disk.
    pub path: Vec<u8>,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ns since the epoch (the latest of the file's and its sidecars').
    pub mtime_ns: i64,
    /// Container format ("cr2", "mov", ...).
    pub format: String,
}

impl CompanionRecord {
    /// The record of a walked companion file.
    pub fn of(file: &clipsight_indexer::walk::Candidate) -> Self {
        Self { path: path_to_bytes(&file.path), size: file.size, mtime_ns: file.mtime_ns, format: file.format.name().to_string() }
    }

    /// The path as an OS path.
    pub fn path(&self) -> std::path::PathBuf {
        path_from_bytes(&self.path)
    }

    /// Why it is listed: a RAW, or a Live Photo's motion.
    pub fn role(&self) -> clipsight_indexer::pairs::CompanionRole {
        clipsight_indexer::format::MediaFormat::from_name(&self.format)
            .and_then(clipsight_indexer::pairs::CompanionRole::of)
            .unwrap_or(clipsight_indexer::pairs::CompanionRole::Raw)
    }
}

impl FileRecord {
    /// A record of a file known only by path and content hash (a 1×1 `format` image, no EXIF):
    /// what synthetic libraries (benches, tests) store; callers set the fields they care about.
    pub fn synthetic(path: &str, hash: [u8; 32], format: &str) -> Self {
        Self { path: path.as_bytes().to_vec(), size: 1, mtime_ns: 0, hash, width: 1, height: 1, format: format.into(), exif: ExifMeta::default(), indexed_at: 0, companions: Vec::new() }
    }

    /// The path as an OS path.
    pub fn path(&self) -> std::path::PathBuf {
        path_from_bytes(&self.path)
    }

    /// The path for display (lossy for non-UTF-8 names).
    pub fn display_path(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }

    /// The record's stored encoding.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("records always serialise")
    }

    /// A record from its stored encoding.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        postcard::from_bytes(bytes).ok()
    }
}

/// What the library keeps of a video beside its [`FileRecord`]: its length and when its embedded
/// moments are (their embeddings, per model, follow the same order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoRecord {
    /// Length in milliseconds (0 when the container does not say).
    pub duration_ms: u64,
    /// The embedded moments' times, milliseconds from the start, ascending.
    pub moments_ms: Vec<u32>,
}

impl FileRecord {
    /// Its format and its RAW companions' ("jpeg", then "cr2"): what `type:` filters, facets and
    /// keywords know the item by. A Live Photo's motion video does not count: the item is a
    /// photo, and `type:mov` asks for videos.
    pub fn formats(&self) -> impl Iterator<Item = &str> {
        let raws = self.companions.iter().filter(|c| c.role() == clipsight_indexer::pairs::CompanionRole::Raw);
        std::iter::once(self.format.as_str()).chain(raws.map(|c| c.format.as_str()))
    }

    /// Photo or video, from the stored format name.
    pub fn kind(&self) -> clipsight_indexer::format::MediaKind {
        clipsight_indexer::format::MediaFormat::from_name(&self.format).map_or(clipsight_indexer::format::MediaKind::Photo, |f| f.kind())
    }
}

/// Path → bytes without loss (Unix: the raw bytes).
pub fn path_to_bytes(path: &std::path::Path) -> Vec<u8> {
    path.as_os_str().as_encoded_bytes().to_vec()
}

/// Bytes written by [`path_to_bytes`] → path.
pub fn path_from_bytes(bytes: &[u8]) -> std::path::PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::path::PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
    }
    #[cfg(not(unix))]
    {
        std::path::PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// What people wrote about a photo, kept by where it was written: a sidecar edit replaces its
/// part and leaves the file's own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnotationRecord {
    /// From the file's XMP and IPTC.
    pub embedded: clipsight_indexer::annotations::Annotations,
    /// From its XMP sidecars.
    pub sidecar: clipsight_indexer::annotations::Annotations,
}

impl AnnotationRecord {
    /// Whether nothing was written, in the file or beside it.
    pub fn is_empty(&self) -> bool {
        self.embedded.is_empty() && self.sidecar.is_empty()
    }

    /// The annotations people see and search: the sidecar's laid over the file's.
    pub fn combined(&self) -> clipsight_indexer::annotations::Annotations {
        self.embedded.clone().overlaid(&self.sidecar)
    }
}
