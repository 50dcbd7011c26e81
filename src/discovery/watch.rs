//! Filesystem events as hints: "these files were written", "something was created, renamed or
//! removed under the flow's directory: rescan".
//!
//! Owns: the inotify watch of one flow's base directory (and, for a `**` pattern, the directories
//! below it). Events never decide anything on their own; the tailer's full pass every second and
//! its periodic rescan stay the safety net (events can be dropped on overflow, and a directory
//! that does not exist yet cannot be watched).
//!
//! Why inotify directly rather than the `notify` crate: `notify` reads events on a thread of its
//! own that the kernel wakes for every event, one context switch per line written. With 1,000
//! files appended ten times a second that was 5.7 % of a core (of 16.7 % in all). Here the queue
//! is read by the tailer task when it is about to read files, so a burst of events costs one
//! wake-up and one `read` of the queue. The queue is in the runtime's epoll set only while the
//! tailer waits for it: registered all the time, every event woke the runtime's thread even
//! while the tailer was reading or gathering (~2,000 wake-ups a second, a quarter of the agent's
//! CPU in the same test). The agent ships for Linux only.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use tokio::io::unix::AsyncFd;
use tracing::warn;

/// What the events said since the tailer last looked.
#[derive(Debug, Default)]
pub struct Changes {
    /// A file or directory was created, renamed, removed or had its permissions changed, or
    /// events were lost: rescan the pattern (and look at every file).
    pub rescan: bool,
    /// Paths written to: between its full passes the tailer reads only these. Kept as bytes:
    /// hashing a `Path` parses its components, hashing the bytes does not.
    pub written: HashSet<OsString>,
}

/// More distinct written paths than this between two looks (a busy directory of files the
/// pattern does not match): forget them and ask for a rescan instead.
const MAX_WRITTEN: usize = 100_000;

/// Bytes read from the event queue per `read` (an event is 16 bytes plus its name).
const EVENT_BUFFER: usize = 64 * 1024;

const MASK: WatchMask = WatchMask::MODIFY
    .union(WatchMask::CREATE)
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::ATTRIB)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::EXCL_UNLINK);

/// The event queue, in the runtime's epoll set or not.
enum Queue {
    /// Read when the tailer asks ([`DirWatcher::take`]); events do not wake anything.
    Quiet(Inotify),
    /// The tailer waits (or waited and was interrupted) for events.
    Waiting(AsyncFd<Inotify>),
    /// Only while moving from one to the other; a failed registration leaves it here.
    Lost,
}

/// A live watch; dropping it removes it.
pub struct DirWatcher {
    queue: Queue,
    root: WatchDescriptor,
    /// The directory each watch is on.
    dirs: HashMap<WatchDescriptor, PathBuf>,
    recursive: bool,
    /// The base directory was removed or moved: this watch sees nothing more; start a new one.
    dead: bool,
    /// A subdirectory could not be watched (e.g. `fs.inotify.max_user_watches`); said once.
    warned_limit: bool,
    buf: Vec<u8>,
}

impl DirWatcher {
    /// Watches `dir` (and every directory below it when `recursive`). Needs a tokio runtime.
    pub fn start(dir: &Path, recursive: bool) -> io::Result<DirWatcher> {
        let inotify = Inotify::init()?;
        let root = inotify.watches().add(dir, MASK | WatchMask::ONLYDIR)?;
        let mut watcher = DirWatcher {
            queue: Queue::Quiet(inotify),
            root: root.clone(),
            dirs: HashMap::from([(root, dir.to_path_buf())]),
            recursive,
            dead: false,
            warned_limit: false,
            buf: vec![0; EVENT_BUFFER],
        };
        if recursive {
            watcher.add_below(dir);
        }
        Ok(watcher)
    }

    /// False once the watched directory itself is gone.
    pub fn is_alive(&self) -> bool {
        !self.dead
    }

    /// Waits until events are queued, then takes them into `changes`. Cancel-safe: dropped
    /// while waiting, the queue stays registered until the next [`DirWatcher::take`].
    pub async fn wait(&mut self, changes: &mut Changes) -> io::Result<()> {
        self.register()?;
        loop {
            let Queue::Waiting(fd) = &mut self.queue else {
                return Err(io::Error::other("the inotify queue was lost"));
            };
            let mut guard = fd.readable_mut().await?;
            // Readiness can be stale (the queue was emptied meanwhile): the empty read gives
            // `WouldBlock`, which clears it, and the loop waits again.
            let buf = &mut self.buf;
            let read = guard.try_io(|fd| {
                fd.get_mut()
                    .read_events(buf)
                    .map(|events| events.map(owned).collect::<Vec<_>>())
            });
            drop(guard);
            match read {
                Ok(Ok(events)) => {
                    self.apply(events, changes);
                    self.take(changes);
                    return Ok(());
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Puts the queue in the runtime's epoll set (it reports events already queued at once).
    fn register(&mut self) -> io::Result<()> {
        match std::mem::replace(&mut self.queue, Queue::Lost) {
            Queue::Quiet(inotify) => {
                // SAFETY: `register` needs the descriptor to stay open and the same while the
                // AsyncFd lives. The `Inotify` owns its descriptor (opened by `init` in
                // `start`), returns that one from every `as_raw_fd`, and closes it only when
                // dropped, which happens after the AsyncFd that owns it deregisters it, or
                // after `into_inner` has deregistered it.
                match unsafe { AsyncFd::register(inotify) } {
                    Ok(fd) => self.queue = Queue::Waiting(fd),
                    Err(e) => return Err(io::Error::from(e)),
                }
            }
            other => self.queue = other,
        }
        Ok(())
    }

    /// Takes whatever events are queued now into `changes`, without waiting; events queued
    /// from now on wake nothing until the next [`DirWatcher::wait`].
    pub fn take(&mut self, changes: &mut Changes) {
        loop {
            let Some(inotify) = quiet(&mut self.queue) else {
                self.dead = true;
                changes.rescan = true;
                return;
            };
            let read = inotify
                .read_events(&mut self.buf)
                .map(|events| events.map(owned).collect::<Vec<_>>());
            match read {
                Ok(events) => self.apply(events, changes),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    changes.rescan = true;
                    return;
                }
            }
        }
    }

    /// Applies events read from the queue.
    fn apply(&mut self, events: Vec<Event>, changes: &mut Changes) {
        let mut new_dirs = Vec::new();
        for (wd, mask, name) in events {
            if mask.contains(EventMask::Q_OVERFLOW) {
                changes.rescan = true;
                continue;
            }
            let Some(dir) = self.dirs.get(&wd) else {
                continue; // a watch removed meanwhile
            };
            let path = match name {
                Some(name) => dir.join(name),
                None => dir.clone(),
            };
            if mask.contains(EventMask::MODIFY) {
                if changes.written.len() >= MAX_WRITTEN {
                    changes.written.clear();
                    changes.rescan = true;
                } else {
                    changes.written.insert(path.into_os_string());
                }
                continue;
            }
            changes.rescan = true;
            if mask.intersects(EventMask::IGNORED | EventMask::DELETE_SELF | EventMask::MOVE_SELF) {
                if wd == self.root {
                    self.dead = true;
                }
                if mask.contains(EventMask::IGNORED) {
                    self.dirs.remove(&wd);
                }
            } else if self.recursive
                && mask.contains(EventMask::ISDIR)
                && mask.intersects(EventMask::CREATE | EventMask::MOVED_TO)
            {
                new_dirs.push(path);
            }
        }
        for dir in new_dirs {
            self.add(&dir);
            self.add_below(&dir);
        }
    }

    fn add(&mut self, dir: &Path) {
        let inotify = match &self.queue {
            Queue::Quiet(inotify) => inotify,
            Queue::Waiting(fd) => fd.get_ref(),
            Queue::Lost => return,
        };
        match inotify.watches().add(dir, MASK | WatchMask::ONLYDIR) {
            Ok(wd) => {
                self.dirs.insert(wd, dir.to_path_buf());
            }
            Err(e) if e.raw_os_error() == Some(28) && !self.warned_limit => {
                // ENOSPC: out of inotify watches.
                self.warned_limit = true;
                warn!(
                    "Cannot watch {} for changes: the inotify watch limit is reached. Files below it are still found by the periodic rescan, only later. Fix: raise fs.inotify.max_user_watches (sysctl).",
                    dir.display()
                );
            }
            Err(_) => {} // gone again, or not a directory: the rescan decides
        }
    }

    fn add_below(&mut self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let sub = entry.path();
                self.add(&sub);
                self.add_below(&sub);
            }
        }
    }
}

/// Takes the queue out of the runtime's epoll set (if it is in it); None if it was lost.
fn quiet(queue: &mut Queue) -> Option<&mut Inotify> {
    if let Queue::Waiting(_) = queue {
        if let Queue::Waiting(fd) = std::mem::replace(queue, Queue::Lost) {
            *queue = Queue::Quiet(fd.into_inner());
        }
    }
    match queue {
        Queue::Quiet(inotify) => Some(inotify),
        _ => None,
    }
}

/// An event with its name copied out of the read buffer.
type Event = (WatchDescriptor, EventMask, Option<OsString>);

fn owned(event: inotify::Event<&std::ffi::OsStr>) -> Event {
    (event.wd, event.mask, event.name.map(|n| n.to_os_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    async fn next(w: &mut DirWatcher) -> Changes {
        let mut changes = Changes::default();
        tokio::time::timeout(std::time::Duration::from_secs(10), w.wait(&mut changes))
            .await
            .expect("an event within 10 s")
            .expect("read events");
        changes
    }

    #[tokio::test]
    async fn writes_name_the_file_and_creations_ask_for_a_rescan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        std::fs::write(&path, "one\n").expect("write");
        let mut w = DirWatcher::start(dir.path(), false).expect("watch");

        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        f.write_all(b"two\n").expect("append");
        let changes = next(&mut w).await;
        assert!(!changes.rescan, "{changes:?}");
        assert!(changes.written.contains(path.as_os_str()), "{changes:?}");

        std::fs::write(dir.path().join("b.log"), "x\n").expect("create");
        let mut changes = next(&mut w).await;
        w.take(&mut changes);
        assert!(changes.rescan, "{changes:?}");

        // Nothing queued: `take` returns at once with nothing.
        let mut none = Changes::default();
        w.take(&mut none);
        assert!(!none.rescan && none.written.is_empty(), "{none:?}");
    }

    #[tokio::test]
    async fn recursive_watch_follows_new_subdirectories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = DirWatcher::start(dir.path(), true).expect("watch");
        let sub = dir.path().join("2026/11");
        std::fs::create_dir_all(&sub).expect("mkdir");
        let mut changes = next(&mut w).await;
        assert!(changes.rescan);
        w.take(&mut changes);
        let path = sub.join("a.log");
        std::fs::write(&path, "x\n").expect("create");
        let mut changes = Changes::default();
        // The create and the write may come in one read or two.
        while !changes.written.contains(path.as_os_str()) {
            let more = next(&mut w).await;
            changes.rescan |= more.rescan;
            changes.written.extend(more.written);
        }
        assert!(changes.rescan);
    }

    #[tokio::test]
    async fn removing_the_directory_ends_the_watch() {
        let parent = tempfile::tempdir().expect("tempdir");
        let dir = parent.path().join("logs");
        std::fs::create_dir(&dir).expect("mkdir");
        let mut w = DirWatcher::start(&dir, false).expect("watch");
        std::fs::remove_dir(&dir).expect("rmdir");
        while w.is_alive() {
            next(&mut w).await;
        }
        assert!(DirWatcher::start(&dir, false).is_err());
    }
}
