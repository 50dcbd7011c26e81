//! Filesystem events as hints: "something changed under the flow's directory, look now".
//!
//! Owns: the `notify` watcher of one flow's base directory. Events never decide anything on
//! their own; the periodic rescan stays the safety net (events can be dropped, and a directory
//! that does not exist yet cannot be watched).

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::Notify;

/// Wake-ups shared between the watcher thread and the tailer task.
#[derive(Debug, Default)]
pub struct Hints {
    /// Something was written, created, renamed or removed.
    pub wake: Notify,
    /// A file was created, renamed or removed: rescan the pattern before reading.
    pub rescan: AtomicBool,
    /// Paths written to since the tailer last took them: between its full passes the tailer
    /// reads only these, so a write to one of 1,000 files costs one file's read, not 1,000
    /// `fstat`s. Kept as `OsString`: hashing a `Path` parses its components, hashing the
    /// bytes does not (it was 9 % of the agent's CPU with 1,000 files written ten times a second).
    written: Mutex<HashSet<OsString>>,
}

/// More distinct written paths than this between two looks (a busy directory of files the
/// pattern does not match): forget them and ask for a full pass instead.
const MAX_WRITTEN: usize = 100_000;

impl Hints {
    /// Takes the rescan hint.
    pub fn take_rescan(&self) -> bool {
        self.rescan.swap(false, Ordering::AcqRel)
    }

    /// Notes that `paths` were written to.
    pub fn written(&self, paths: impl IntoIterator<Item = std::path::PathBuf>) {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        written.extend(paths.into_iter().map(|p| p.into_os_string()));
        if written.len() > MAX_WRITTEN {
            written.clear();
            self.rescan.store(true, Ordering::Release);
        }
    }

    /// Takes the paths written to since the last call.
    pub fn take_written(&self) -> HashSet<OsString> {
        std::mem::take(&mut *self.written.lock().unwrap_or_else(|e| e.into_inner()))
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
                        if matches!(event.kind, EventKind::Modify(_)) {
                            hints.written(event.paths);
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
