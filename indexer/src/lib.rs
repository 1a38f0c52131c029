//! clipsight-indexer: everything that turns image files and words into CLIP embeddings.
//!
//! It walks folders, decodes and preprocesses images, runs the model and yields indexed records.
//! It knows nothing of storage, HTTP or the command line: `clipsight` (the root crate) decides
//! what to index and commits the results.

pub mod clip;
pub mod embedding;

pub use clip::{Clip, ClipError, ModelId};
pub use embedding::Embedding;
pub mod decode;
pub mod exif;
pub mod pipeline;
pub mod walk;
