//! clipsight-indexer: everything that turns image files and words into CLIP embeddings.
//!
//! It walks folders, decodes and preprocesses images, samples videos into moments, runs the model and yields indexed records.
//! It knows nothing of storage, HTTP or the command line: `clipsight` (the root crate) decides
//! what to index and commits the results.

#![warn(missing_docs)]

pub mod annotations;
pub mod clip;
pub mod decode;
pub mod embedding;
pub mod encoder;
pub mod exif;
pub mod format;
mod model_id;
pub mod pairs;
pub mod pipeline;
pub mod video;
pub mod walk;

pub use clip::{Clip, ClipError};
pub use embedding::Embedding;
pub use encoder::{Encoder, HashEncoder};
pub use model_id::ModelId;
