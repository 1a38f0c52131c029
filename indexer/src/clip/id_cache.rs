//! Remembers model ids by the identity of the two ONNX files, so opening a model does not hash
//! ~600 MB of ONNX on every start (ViT-B/32 size: 0.3 s from the page cache, ~2.4 s from this
//! project's disks when cold — on every CLI query and every `serve` start).
//!
//! An entry keys the id by (device, inode, size, mtime in ns, path) of both files: rewriting a
//! file, copying or renaming another one over it changes at least one of them, and the files are
//! hashed again. Best effort: a cache that cannot be read or written only costs the hashing.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::ModelId;
use super::ClipError;

/// clipsight's per-user cache folder: `$XDG_CACHE_HOME/clipsight`, else `~/.cache/clipsight`.
pub fn user_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("clipsight")
}

/// Entries kept (most recent first); a user rarely has more models than this.
const MAX_ENTRIES: usize = 64;

/// A small text file of `<id hex> <key>` lines.
pub(crate) struct IdCache {
    path: PathBuf,
}

impl IdCache {
    /// `model-ids` in [`user_cache_dir`].
    pub(crate) fn user() -> Self {
        Self::at(user_cache_dir().join("model-ids"))
    }

    /// A cache kept in `path`.
    pub(crate) fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The id remembered for `files` as they are now, else `compute()` — remembered when the
    /// files did not change while it ran.
    pub(crate) fn get_or_compute(&self, files: &[PathBuf], compute: impl FnOnce() -> Result<ModelId, ClipError>) -> Result<ModelId, ClipError> {
        let Some(before) = key(files) else { return compute() };
        let lines = std::fs::read_to_string(&self.path).unwrap_or_default();
        let cached = lines.lines().find_map(|line| {
            let (id, k) = line.split_once(' ')?;
            (k == before).then(|| ModelId::from_hex(id)).flatten()
        });
        if let Some(id) = cached {
            return Ok(id);
        }
        let id = compute()?;
        if key(files).as_deref() == Some(before.as_str()) {
            if let Err(e) = self.store(&lines, &before, id) {
                tracing::debug!("cannot remember the model id in {}: {e}", self.path.display());
            }
        }
        Ok(id)
    }

    fn store(&self, lines: &str, key: &str, id: ModelId) -> std::io::Result<()> {
        let kept = lines.lines().filter(|line| line.split_once(' ').is_some_and(|(_, k)| k != key));
        let text: String = std::iter::once(format!("{} {key}", id.to_hex()))
            .chain(kept.map(str::to_string))
            .take(MAX_ENTRIES)
            .map(|line| line + "\n")
            .collect();
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Written aside and renamed: concurrent starts never read half a file.
        let tmp = self.path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// `dev:ino:size:mtime_ns:path` of each file, `|`-separated; None when one cannot be read (or
/// its path would break the line format).
fn key(files: &[PathBuf]) -> Option<String> {
    let stamps: Option<Vec<String>> = files
        .iter()
        .map(|path| {
            let m = std::fs::metadata(path).ok()?;
            let mtime = m.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
            let path = std::fs::canonicalize(path).ok()?;
            let path = path.to_str().filter(|p| !p.contains(['\n', '|']))?;
            Some(format!("{}:{}:{}:{mtime}:{path}", m.dev(), m.ino(), m.len()))
        })
        .collect();
    stamps.map(|s| s.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct Model {
        _dir: tempfile::TempDir,
        files: Vec<PathBuf>,
        cache: IdCache,
    }

    fn model() -> Model {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![dir.path().join("visual.onnx"), dir.path().join("textual.onnx")];
        for (i, f) in files.iter().enumerate() {
            std::fs::write(f, vec![i as u8; 100]).unwrap();
        }
        let cache = IdCache::at(dir.path().join("cache/model-ids"));
        Model { _dir: dir, files, cache }
    }

    /// Looks the id up in `cache`, counting how often the files had to be hashed.
    fn lookup_in(cache: &IdCache, m: &Model, hashed: &Cell<u32>, id: u8) -> ModelId {
        cache
            .get_or_compute(&m.files, || {
                hashed.set(hashed.get() + 1);
                Ok(ModelId([id; 16]))
            })
            .unwrap()
    }

    fn lookup(m: &Model, hashed: &Cell<u32>, id: u8) -> ModelId {
        lookup_in(&m.cache, m, hashed, id)
    }

    #[test]
    fn a_remembered_id_is_returned_without_hashing_again() {
        let (m, hashed) = (model(), Cell::new(0));
        assert_eq!(lookup(&m, &hashed, 1), ModelId([1; 16]));
        assert_eq!(lookup(&m, &hashed, 2), ModelId([1; 16]));
        assert_eq!(hashed.get(), 1);
    }

    #[test]
    fn rewriting_or_replacing_a_model_file_hashes_again() {
        let (m, hashed) = (model(), Cell::new(0));
        lookup(&m, &hashed, 1);
        std::fs::write(&m.files[0], vec![9u8; 101]).unwrap();
        assert_eq!(lookup(&m, &hashed, 2), ModelId([2; 16]));
        // Another file of the same size renamed over it: a new inode.
        let other = m.files[1].with_extension("new");
        std::fs::write(&other, vec![7u8; 100]).unwrap();
        std::fs::rename(&other, &m.files[1]).unwrap();
        assert_eq!(lookup(&m, &hashed, 3), ModelId([3; 16]));
        assert_eq!(hashed.get(), 3);
        assert_eq!(lookup(&m, &hashed, 4), ModelId([3; 16]), "the new state is remembered");
    }

    #[test]
    fn a_cache_that_cannot_be_written_still_gives_the_id() {
        let (m, hashed) = (model(), Cell::new(0));
        let blocked = IdCache::at(m.files[0].join("model-ids")); // under a file: never writable
        assert_eq!(lookup_in(&blocked, &m, &hashed, 5), ModelId([5; 16]));
        assert_eq!(lookup_in(&blocked, &m, &hashed, 6), ModelId([6; 16]));
        assert_eq!(hashed.get(), 2);
    }
}
