//! clipsight: a self-hosted cross-modal image/text search engine.
//!
//! The library behind the `clipsight` binary: the store (RocksDB), indexing runs, search, and the
//! model hub client. Turning files and words into vectors lives in `clipsight-indexer`.

pub mod ann;
pub mod bench;
pub mod check;
pub mod describe;
pub mod duplicates;
pub mod eval;
pub mod hub;
pub mod index;
pub mod keywords;
pub mod search;
pub mod server;
pub mod store;

pub use clipsight_indexer as indexer;
