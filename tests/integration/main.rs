//! clipsight's integration tests, one binary (one link, one process; shared fixtures are built
//! once). Each module is one area; `common` holds every shared helper.
//!
//! Routes are tested in process where no process is needed ([`common::InProcess`] serves
//! `clipsight::server::app` on loopback); a real `clipsight serve` child ([`common::Server`]) is
//! kept for what needs one: signals, crashes, the read-only second server, load and the browser.

mod common;

mod api;
mod bad_input;
mod browser;
mod cli;
mod crash;
mod eval;
mod hub;
mod languages;
mod load;
mod media;
mod milvus;
mod parity;
mod proxy;
mod relevance;
mod video;
