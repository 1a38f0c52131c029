//! Why a library operation failed, in the library's terms: no HTTP status, no exit code. The
//! server maps each kind to a status in one place (`server::error`), the CLI to a message and
//! an exit code in one place (`main.rs`).

use clipsight_indexer::pipeline::PrepareError;
use clipsight_indexer::ClipError;

use crate::search::SearchError;
use crate::store::StoreError;

/// A failed library operation.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    /// No such image, thumbnail, file or job.
    #[error("{0}")]
    NotFound(String),
    /// This process does not own the library (another one indexes it), so it cannot index.
    #[error("another process is indexing this library; this one only reads it")]
    ReadOnly,
    /// The file of an image resolves outside the indexed folders (a symlink pointing away).
    #[error("the file of image {0} resolves outside the indexed folders")]
    OutsideRoots(u64),
    /// The query, or an argument, is malformed.
    #[error("{0}")]
    BadQuery(String),
    /// An image given to embed (an upload, a file) cannot be used.
    #[error(transparent)]
    Image(#[from] PrepareError),
    /// A video's frame could not be read (a preview).
    #[error(transparent)]
    Video(#[from] clipsight_indexer::video::VideoError),
    /// The library has no folders to index.
    #[error("nothing to index: the library has no folders yet; give one, e.g. `clipsight index ~/Pictures`, or serve with --watch PHOTOS")]
    NoRoots,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ClipError),
    /// The remote vector store (Milvus) cannot be reached just now; the call may be repeated.
    #[error("{0}")]
    Unavailable(String),
    /// Another part failed (the vector or keyword index, image→text, indexing).
    #[error("{0}")]
    Internal(String),
}

impl From<SearchError> for LibraryError {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::Query(q) => Self::BadQuery(format!("bad query: {q}")),
            SearchError::UnknownImage(id) => Self::NotFound(format!("no image with id {id} in this library")),
            SearchError::File(m) => Self::BadQuery(m),
            SearchError::Store(e) => Self::Store(e),
            SearchError::Model(e) => Self::Model(e),
            SearchError::Vectors(crate::ann::AnnError::Unavailable(m)) => Self::Unavailable(m),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<crate::describe::DescribeError> for LibraryError {
    fn from(e: crate::describe::DescribeError) -> Self {
        match e {
            crate::describe::DescribeError::Store(e) => Self::Store(e),
            crate::describe::DescribeError::Model(e) => Self::Model(e),
        }
    }
}

impl From<crate::search::QueryError> for LibraryError {
    fn from(e: crate::search::QueryError) -> Self {
        Self::BadQuery(format!("bad query: {e}"))
    }
}
