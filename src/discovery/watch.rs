//! Filesystem events as hints: "something changed under the flow's directory, look now".
//!
//! Owns: the `notify` watcher of one flow's base directory. Events never decide anything on
//! their own; the periodic rescan stays the safety net (events can be dropped, and a directory
//! that does not exist yet cannot be watched).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::Notify;

/// Wake-ups shared between the watcher thread and the tailer task.
#[derive(Debug, Default)]
pub struct Hints {
    /// Something was written, created, renamed or removed.
    pub wake: Notify,
    /// A file was created, renamed or removed: rescan the pattern before reading.
    pub rescan: AtomicBool,
}

impl Hints {
    /// Takes the rescan hint.
    pub fn take_rescan(&self) -> bool {
        self.rescan.swap(false, Ordering::AcqRel)
    }
}

/// A live watch; dropping it stops the events.
pub struct DirWatcher {
    _watcher: notify::RecommendedWatcher,
}

impl DirWatcher {
    /// Watches `dir` (and below it when `recursive`), feeding `hints`.
    pub fn start(dir: &Path, recursive: bool, hints: Arc<Hints>) -> notify::Result<DirWatcher> {
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                match event {
                    Ok(event) => {
                        if matches!(event.kind, EventKind::Create(_) | EventKind::Remove(_))
                            || matches!(
                                event.kind,
                                EventKind::Modify(notify::event::ModifyKind::Name(_))
                            )
                        {
                            hints.rescan.store(true, Ordering::Release);
                        }
                        if !matches!(event.kind, EventKind::Access(_)) {
                            hints.wake.notify_one();
                        }
                    }
                    // An overflowed or failed watch: rescan to be safe.
                    Err(_) => {
                        hints.rescan.store(true, Ordering::Release);
                        hints.wake.notify_one();
                    }
                }
            })?;
        let mode = if recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        watcher.watch(dir, mode)?;
        Ok(DirWatcher { _watcher: watcher })
    }
}
