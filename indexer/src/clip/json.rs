//! Reads the JSON files of a model directory, with errors that name the file.

use std::path::Path;

use super::ClipError;

/// Parses `path` as JSON into `T`; an unreadable file or invalid JSON is a [`ClipError`] naming it.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ClipError> {
    let text = std::fs::read_to_string(path).map_err(|e| ClipError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| ClipError::Model {
        path: path.to_path_buf(),
        message: format!("invalid JSON: {e}"),
    })
}
