//! `serve --watch`: file changes under the roots queue an indexing job (debounced), so new,
//! changed and deleted photos are picked up while the server keeps answering.
//!
//! Only events that change what a folder holds count. notify's inotify backend also reports
//! every `open` of a watched file or folder (`IN_OPEN` → `Access(Open)`), and the debouncer
//! passes every event on whatever its kind; so an indexing job's own walk (which opens every
//! folder, and every file it fingerprints or decodes) used to queue the next job, forever, on an
//! idle folder. [`ChangeWatcher`] drops such reads before they reach the debouncer, and only the
//! debouncer's final event for a path (not its "still changing" one) queues a job.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use notify_debouncer_mini::notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
use notify_debouncer_mini::notify::{self, Event, EventHandler, EventKind, RecommendedWatcher, RecursiveMode, Watcher, WatcherKind};
use notify_debouncer_mini::{new_debouncer_opt, Config, DebounceEventResult, DebouncedEventKind, Debouncer};

use super::jobs::Trigger;
use super::Library;

/// Quiet time after the last change before a job is queued (a copy of 500 photos is one job).
const DEBOUNCE: Duration = Duration::from_secs(1);

/// Watches `roots` until dropped. Changes inside the library's own data directory are ignored
/// (indexing writes there and must not trigger itself). The watcher's thread only holds a weak
/// reference: it is not joined when the watcher is dropped, and must not keep the library (its
/// RocksDB and ONNX Runtime sessions) open while the server shuts down.
pub fn watch(library: &Arc<Library>, roots: &[PathBuf]) -> Result<Debouncer<ChangeWatcher>, notify::Error> {
    let data_dir = std::fs::canonicalize(library.store().dir()).unwrap_or_else(|_| library.store().dir().to_path_buf());
    let library: Weak<Library> = Arc::downgrade(library);
    let handler = move |result: DebounceEventResult| match result {
        Ok(events) => {
            let Some(library) = library.upgrade() else { return };
            // `AnyContinuous` means "still changing": the debouncer times a path from its first
            // event, so even a copy whose few events span a millisecond gets one, followed by the
            // final `Any` once the path is quiet. Index once, on the final event.
            let settled: Vec<&PathBuf> =
                events.iter().filter(|e| e.kind == DebouncedEventKind::Any && !e.path.starts_with(&data_dir)).map(|e| &e.path).collect();
            if let Some(first) = settled.first() {
                tracing::info!("{} file changes under the watched folders (first: {}); queueing an indexing job", settled.len(), first.display());
                if let Err(e) = library.start_indexing(Trigger::Watch) {
                    tracing::warn!("cannot index after a change: {e}");
                }
            }
        }
        Err(e) => tracing::warn!("file watching failed: {e}"),
    };
    let mut debouncer = new_debouncer_opt::<_, ChangeWatcher>(Config::default().with_timeout(DEBOUNCE), handler)?;
    for root in roots {
        debouncer.watcher().watch(root, RecursiveMode::Recursive)?;
        tracing::info!("watching {}", root.display());
    }
    Ok(debouncer)
}

/// The platform's watcher, passing on only the events that can change what a folder holds:
/// creations, writes, renames, deletions, attribute changes. Reads (opening or closing a file
/// or folder without writing, access-time updates) are dropped.
pub struct ChangeWatcher(RecommendedWatcher);

impl Watcher for ChangeWatcher {
    fn new<F: EventHandler>(mut handler: F, config: notify::Config) -> notify::Result<Self> {
        let filtered = move |event: notify::Result<Event>| {
            tracing::trace!("file event {event:?}");
            if event.as_ref().map_or(true, changes_content) {
                handler.handle_event(event);
            }
        };
        RecommendedWatcher::new(filtered, config).map(Self)
    }

    fn watch(&mut self, path: &Path, recursive_mode: RecursiveMode) -> notify::Result<()> {
        self.0.watch(path, recursive_mode)
    }

    fn unwatch(&mut self, path: &Path) -> notify::Result<()> {
        self.0.unwatch(path)
    }

    fn configure(&mut self, option: notify::Config) -> notify::Result<bool> {
        self.0.configure(option)
    }

    fn kind() -> WatcherKind {
        RecommendedWatcher::kind()
    }
}

/// Whether an event may change what a watched folder holds (so an index of it may be stale).
fn changes_content(event: &Event) -> bool {
    match event.kind {
        // A file closed after writing: its content is complete now.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        EventKind::Any | EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Other => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, RemoveKind, RenameMode};

    #[test]
    fn reads_are_not_changes_and_writes_renames_and_deletions_are() {
        let is_change = |kind| changes_content(&Event::new(kind));
        for read in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)),
        ] {
            assert!(!is_change(read), "{read:?}");
        }
        for change in [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::WriteTime)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Remove(RemoveKind::File),
        ] {
            assert!(is_change(change), "{change:?}");
        }
    }
}
