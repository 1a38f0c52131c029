//! Finding image files under one or more roots.
//!
//! Files are recognised by content (magic bytes), not by extension. Symlinks are followed, with
//! loops detected and reported; hidden entries (a name starting with '.') are skipped unless asked.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use walkdir::WalkDir;

use crate::format::{MediaFormat, SNIFF_LEN};

/// An image file found on disk, with the facts used to tell whether it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Path as found under its root.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch: the latest of the file's and its
    /// sidecars', so that editing a sidecar's keywords is a change of the photo.
    pub mtime_ns: i64,
    /// Format recognised from the first bytes.
    pub format: MediaFormat,
    /// Its XMP sidecars ([`crate::annotations::sidecars_of`]).
    pub sidecars: Vec<PathBuf>,
}

/// A path the walk could not look at (permission denied, a symlink loop, a vanished file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkIssue {
    /// The path concerned.
    pub path: PathBuf,
    /// What went wrong.
    pub error: String,
}

/// Options of a walk.
#[derive(Debug, Clone, Copy, Default)]
pub struct WalkOptions {
    /// Include hidden files and folders.
    pub hidden: bool,
}

/// Walks `roots` in a stable order (sorted by file name), yielding image files and the problems met.
pub fn walk(roots: &[PathBuf], options: WalkOptions) -> impl Iterator<Item = Result<Candidate, WalkIssue>> + '_ {
    roots.iter().flat_map(move |root| {
        WalkDir::new(root)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(move |e| options.hidden || e.depth() == 0 || !is_hidden(e.file_name()))
            .filter_map(|entry| match entry {
                Err(e) => Some(Err(WalkIssue {
                    path: e.path().map(Path::to_path_buf).unwrap_or_default(),
                    error: e.to_string(),
                })),
                Ok(e) if e.file_type().is_file() => inspect(e.path()).transpose(),
                Ok(_) => None,
            })
    })
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

/// Stats a file and sniffs its format; `Ok(None)` for files that are not supported images.
pub fn inspect(path: &Path) -> Result<Option<Candidate>, WalkIssue> {
    let issue = |e: std::io::Error| WalkIssue { path: path.to_path_buf(), error: e.to_string() };
    let meta = std::fs::metadata(path).map_err(issue)?;
    if !meta.is_file() {
        return Ok(None);
    }
    let mut head = [0u8; SNIFF_LEN];
    let n = read_prefix(path, &mut head).map_err(issue)?;
    let Some(format) = MediaFormat::sniff(&head[..n]) else {
        // Other files are none of our business, but one named like an image is worth a report.
        return match claimed_image_extension(path) {
            Some(ext) if n == 0 => Err(WalkIssue { path: path.to_path_buf(), error: format!("empty file (named .{ext})") }),
            Some(ext) => Err(WalkIssue {
                path: path.to_path_buf(),
                error: format!("not a supported image: named .{ext} but the content is not JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC, AVIF or a camera RAW format"),
            }),
            None => Ok(None),
        };
    };
    let format = if format == MediaFormat::Tiff { tiff_family_format(path).map_err(issue)? } else { format };
    let sidecars = crate::annotations::sidecars_of(path);
    let latest = sidecars.iter().filter_map(|s| std::fs::metadata(s).ok()).map(|m| mtime_ns(&m)).fold(mtime_ns(&meta), i64::max);
    Ok(Some(Candidate { path: path.to_path_buf(), size: meta.len(), mtime_ns: latest, format, sidecars }))
}

/// How much of a TIFF-signature file is read to tell a DNG, NEF or ARW from a plain TIFF: their
/// first directories (with the tags that decide) lie well inside it. One whose tags lie further
/// is told apart when it is decoded, from all its bytes.
const TIFF_FAMILY_PREFIX: usize = 256 * 1024;

/// A DNG, NEF, ARW or CR2 told apart from a plain TIFF by its tags ([`crate::decode::tiff_raw_format`]).
fn tiff_family_format(path: &Path) -> std::io::Result<MediaFormat> {
    let mut prefix = vec![0u8; TIFF_FAMILY_PREFIX];
    let n = read_prefix(path, &mut prefix)?;
    Ok(crate::decode::tiff_raw_format(&prefix[..n]).unwrap_or(MediaFormat::Tiff))
}

/// Extensions people give image files.
const IMAGE_EXTENSIONS: &[&str] =
    &["jpg", "jpeg", "jpe", "png", "webp", "gif", "bmp", "tif", "tiff", "heic", "heif", "avif", "dng", "cr2", "cr3", "nef", "nrw", "arw", "raf", "orf", "rw2"];

/// The file's extension, lower-cased, when it names an image format.
fn claimed_image_extension(path: &Path) -> Option<String> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    IMAGE_EXTENSIONS.contains(&ext.as_str()).then_some(ext)
}

fn read_prefix(path: &Path, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut file = File::open(path)?;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Modification time in nanoseconds since the epoch (0 when unknown).
pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn images_are_recognised_by_content_not_extension() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("photo.dat"), PNG_MAGIC).unwrap();
        std::fs::write(dir.path().join("notes.jpg"), b"just text").unwrap();
        std::fs::write(dir.path().join("readme.txt"), b"just text").unwrap();
        std::fs::create_dir(dir.path().join("folder.jpg")).unwrap();
        let (found, issues): (Vec<_>, Vec<_>) = walk(&[dir.path().to_path_buf()], WalkOptions::default()).partition(Result::is_ok);
        let found: Vec<_> = found.into_iter().map(|r| r.unwrap().path.file_name().unwrap().to_owned()).collect();
        assert_eq!(found, vec![std::ffi::OsString::from("photo.dat")]);
        // A non-image named like one is reported; other files and folders are not.
        let issues: Vec<_> = issues.into_iter().map(|r| r.unwrap_err()).collect();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(issues[0].path.ends_with("notes.jpg") && issues[0].error.contains("not a supported image"));
    }

    #[test]
    fn hidden_entries_are_skipped_unless_requested() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".cache")).unwrap();
        std::fs::write(dir.path().join(".cache/a.png"), PNG_MAGIC).unwrap();
        std::fs::write(dir.path().join(".b.png"), PNG_MAGIC).unwrap();
        let roots = [dir.path().to_path_buf()];
        assert_eq!(walk(&roots, WalkOptions::default()).count(), 0);
        assert_eq!(walk(&roots, WalkOptions { hidden: true }).count(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_are_reported_not_followed_forever() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("a/loop")).unwrap();
        let results: Vec<_> = walk(&[dir.path().to_path_buf()], WalkOptions::default()).collect();
        assert!(results.iter().any(|r| r.as_ref().is_err_and(|e| e.error.contains("loop"))), "{results:?}");
    }
}
