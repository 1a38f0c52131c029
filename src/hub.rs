//! Fetching models in Immich's layout from a Hugging Face hub (or any server speaking its API,
//! chosen with `HF_ENDPOINT`): resumable downloads, each file verified against the checksum the
//! hub lists (SHA-256 for LFS files, the git blob SHA-1 for small ones).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::Digest;

/// The hub used when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Files a model directory needs (the rest of a repository is not downloaded).
pub const REQUIRED_FILES: &[&str] = &[
    "config.json",
    "visual/model.onnx",
    "visual/preprocess_cfg.json",
    "textual/model.onnx",
    "textual/tokenizer.json",
];

/// Files downloaded when the repository has them.
pub const OPTIONAL_FILES: &[&str] = &["textual/tokenizer_config.json", "textual/special_tokens_map.json"];

/// Errors of a pull.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The hub could not be reached or answered with an error.
    #[error("{url}: {message}")]
    Http {
        /// The URL requested.
        url: String,
        /// What happened.
        message: String,
    },
    /// The hub could not be reached at all (offline, no DNS, connection refused, TLS, a malformed
    /// `HF_ENDPOINT`).
    #[error("cannot reach the model hub at {endpoint} ({reason}). Without access to it: copy a model directory in Immich's layout (config.json, visual/, textual/) to this machine and pass --model DIR (or set CLIPSIGHT_MODEL=DIR), or set HF_ENDPOINT to a mirror you can reach")]
    Unreachable {
        /// The hub's address.
        endpoint: String,
        /// Why the connection failed.
        reason: String,
    },
    /// The repository lacks a file every model needs.
    #[error("{repo} has no {file}; is it an Immich CLIP model repository (e.g. immich-app/ViT-B-32__openai)?")]
    MissingFile {
        /// The repository.
        repo: String,
        /// The missing file.
        file: String,
    },
    /// A downloaded file did not match its checksum; it was deleted.
    #[error("{file}: checksum mismatch (expected {expected}, got {actual}); the partial download was removed, run the pull again")]
    Checksum {
        /// The file.
        file: String,
        /// Checksum the hub lists.
        expected: String,
        /// Checksum of what arrived.
        actual: String,
    },
    /// Local file system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// One file of a repository, as the hub's tree API lists it.
#[derive(Debug, Clone, Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    lfs: Option<LfsInfo>,
}

#[derive(Debug, Clone, Deserialize)]
struct LfsInfo {
    oid: String,
    size: u64,
}

impl TreeEntry {
    fn expected_size(&self) -> u64 {
        self.lfs.as_ref().map_or(self.size, |l| l.size)
    }
}

/// `ViT-B-32__openai` → `immich-app/ViT-B-32__openai`; names with an owner are kept.
pub fn repo_for(name: &str) -> String {
    if name.contains('/') {
        name.to_string()
    } else {
        format!("immich-app/{name}")
    }
}

/// Where pulled models live: `$CLIPSIGHT_MODELS`, else `$XDG_CACHE_HOME/clipsight/models`, else
/// `~/.cache/clipsight/models`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CLIPSIGHT_MODELS") {
        return PathBuf::from(d);
    }
    clipsight_indexer::clip::user_cache_dir().join("models")
}

/// The local directory of a pulled model name.
pub fn model_path(name: &str) -> PathBuf {
    cache_dir().join(repo_for(name).rsplit('/').next().unwrap_or(name))
}

/// Progress callbacks of a pull.
pub trait PullProgress {
    /// Total bytes to fetch are known.
    fn start(&self, total_bytes: u64);
    /// More bytes arrived (or were found already downloaded).
    fn advance(&self, bytes: u64);
    /// A file is being fetched.
    fn file(&self, name: &str);
}

/// Downloads model `name` from `endpoint` into `dest`, resuming partial files and verifying
/// every file. Returns the model directory.
pub fn pull(name: &str, endpoint: &str, dest: &Path, progress: &dyn PullProgress) -> Result<PathBuf, HubError> {
    let repo = repo_for(name);
    let endpoint = endpoint.trim_end_matches('/');
    let agent = ureq::AgentBuilder::new().timeout_connect(std::time::Duration::from_secs(30)).build();
    let tree_url = format!("{endpoint}/api/models/{repo}/tree/main?recursive=true");
    let entries: Vec<TreeEntry> = agent
        .get(&tree_url)
        .call()
        .map_err(|e| http_error(&tree_url, e))?
        .into_string()
        .map_err(|e| HubError::Http { url: tree_url.clone(), message: e.to_string() })
        .and_then(|body| {
            serde_json::from_str(&body)
                .map_err(|e| HubError::Http { url: tree_url.clone(), message: format!("unexpected listing: {e}") })
        })?;
    let wanted: Vec<TreeEntry> = REQUIRED_FILES
        .iter()
        .chain(OPTIONAL_FILES)
        .filter_map(|f| entries.iter().find(|e| e.kind == "file" && e.path == *f).cloned())
        .collect();
    if let Some(missing) = REQUIRED_FILES.iter().find(|f| !wanted.iter().any(|w| w.path == **f)) {
        return Err(HubError::MissingFile { repo, file: missing.to_string() });
    }
    progress.start(wanted.iter().map(TreeEntry::expected_size).sum());
    for entry in &wanted {
        progress.file(&entry.path);
        let target = dest.join(&entry.path);
        if target.is_file() && verify(entry, &target).is_ok() {
            progress.advance(entry.expected_size());
            continue;
        }
        let url = format!("{endpoint}/{repo}/resolve/main/{}", entry.path);
        download(&agent, &url, entry, &target, progress)?;
    }
    Ok(dest.to_path_buf())
}

fn http_error(url: &str, e: ureq::Error) -> HubError {
    match e {
        ureq::Error::Status(code, resp) => HubError::Http { url: url.to_string(), message: format!("HTTP {code} {}", resp.status_text()) },
        // The transport error's own text repeats the URL; name the host once, then the reason.
        ureq::Error::Transport(t) => HubError::Unreachable {
            endpoint: t.url().map(|u| u.origin().ascii_serialization()).unwrap_or_else(|| url.to_string()),
            reason: match t.message() {
                Some(m) => format!("{}: {m}", t.kind()),
                None => t.kind().to_string(),
            },
        },
    }
}

/// Fetches one file into `target.part` (continuing it if present), verifies, then renames.
fn download(agent: &ureq::Agent, url: &str, entry: &TreeEntry, target: &Path, progress: &dyn PullProgress) -> Result<(), HubError> {
    let part = target.with_file_name(format!(
        "{}.part",
        target.file_name().and_then(|n| n.to_str()).unwrap_or("download")
    ));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HubError::Io { path, source }
    };
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let have = std::fs::metadata(&part).map_or(0, |m| m.len());
    let mut request = agent.get(url);
    if have > 0 && have < entry.expected_size() {
        request = request.set("Range", &format!("bytes={have}-"));
    }
    let response = request.call().map_err(|e| http_error(url, e))?;
    let resumed = response.status() == 206;
    let mut file = if resumed {
        progress.advance(have);
        OpenOptions::new().append(true).open(&part).map_err(io(&part))?
    } else {
        File::create(&part).map_err(io(&part))?
    };
    let mut reader = response.into_reader();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf).map_err(|e| HubError::Http { url: url.to_string(), message: e.to_string() })?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n]).map_err(io(&part))?;
        progress.advance(n as u64);
    }
    file.sync_all().map_err(io(&part))?;
    drop(file);
    if let Err(e) = verify(entry, &part) {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, target).map_err(io(target))
}

/// Checks a file against the hub's listing: SHA-256 for LFS files, git blob SHA-1 otherwise.
fn verify(entry: &TreeEntry, path: &Path) -> Result<(), HubError> {
    let data = std::fs::read(path).map_err(|source| HubError::Io { path: path.to_path_buf(), source })?;
    let mismatch = |expected: &str, actual: String| HubError::Checksum { file: entry.path.clone(), expected: expected.to_string(), actual };
    if data.len() as u64 != entry.expected_size() {
        return Err(mismatch(&format!("{} bytes", entry.expected_size()), format!("{} bytes", data.len())));
    }
    if let Some(lfs) = &entry.lfs {
        let actual = hex::encode(sha2::Sha256::digest(&data));
        return if actual == lfs.oid { Ok(()) } else { Err(mismatch(&lfs.oid, actual)) };
    }
    if let Some(oid) = &entry.oid {
        let actual = git_blob_sha1(&data);
        if &actual != oid {
            return Err(mismatch(oid, actual));
        }
    }
    Ok(())
}

/// The id git gives a blob: SHA-1 of "blob LEN\0" followed by the content.
pub fn git_blob_sha1(data: &[u8]) -> String {
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", data.len()).as_bytes());
    h.update(data);
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_immich_repositories() {
        assert_eq!(repo_for("ViT-B-32__openai"), "immich-app/ViT-B-32__openai");
        assert_eq!(repo_for("me/my-model"), "me/my-model");
    }

    #[test]
    fn git_blob_ids_match_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(git_blob_sha1(b"hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a");
    }
}
