//! clipsight: a self-hosted cross-modal image/text search engine.
//!
//! The library behind the `clipsight` binary: the store (RocksDB), indexing runs, the vector and
//! keyword indexes, search, and the library layer ([`library`]) that both front ends — the CLI
//! and the REST API ([`server`]) — call. Turning files and words into vectors lives in
//! `clipsight-indexer`.
//!
//! ```text
//! migrations ← store ← ann (VectorIndex) ← search ← library ← server (HTTP)
//!                   ↖ keywords ↙     ↑                    ↖ main/commands (CLI)
//!              indexer (files → embeddings, Encoder)
//! ```
#![warn(missing_docs)]

pub mod ann;
pub mod auth;
pub mod bench;
pub mod check;
pub mod describe;
pub mod duplicates;
pub mod eval;
pub mod filters;
pub mod hub;
pub mod index;
pub mod keywords;
pub mod library;
pub mod search;
pub mod server;
pub mod store;
pub mod sync;

pub use clipsight_indexer as indexer;
