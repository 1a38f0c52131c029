//! `serve --watch`: file changes under the roots queue an indexing job (debounced), so new,
//! changed and deleted photos are picked up while the server keeps answering.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use notify_debouncer_mini::notify::{self, RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{new_debouncer, DebounceEventResult, Debouncer};

use super::jobs::Trigger;
use super::library::Library;

/// Quiet time after the last change before a job is queued (a copy of 500 photos is one job).
const DEBOUNCE: Duration = Duration::from_secs(1);

/// Watches `roots` until dropped. Changes inside the library's own data directory are ignored
/// (indexing writes there and must not trigger itself). The watcher's thread only holds a weak
/// reference: it is not joined when the watcher is dropped, and must not keep the library (its
/// RocksDB and ONNX Runtime sessions) open while the server shuts down.
pub fn watch(library: &Arc<Library>, roots: &[PathBuf]) -> Result<Debouncer<RecommendedWatcher>, notify::Error> {
    let data_dir = std::fs::canonicalize(library.store().dir()).unwrap_or_else(|_| library.store().dir().to_path_buf());
    let library: Weak<Library> = Arc::downgrade(library);
    let handler = move |result: DebounceEventResult| match result {
        Ok(events) => {
            let Some(library) = library.upgrade() else { return };
            if events.iter().any(|e| !e.path.starts_with(&data_dir)) {
                tracing::info!("{} file changes under the watched folders; queueing an indexing job", events.len());
                if let Err(e) = library.start_indexing(Trigger::Watch) {
                    tracing::warn!("cannot index after a change: {e}");
                }
            }
        }
        Err(e) => tracing::warn!("file watching failed: {e}"),
    };
    let mut debouncer = new_debouncer(DEBOUNCE, handler)?;
    for root in roots {
        debouncer.watcher().watch(root, RecursiveMode::Recursive)?;
        tracing::info!("watching {}", root.display());
    }
    Ok(debouncer)
}
