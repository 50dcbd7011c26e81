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
use std::ffi::OsStr;
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
    /// Paths written to: between its full passes the tailer reads only these.
    pub written: WrittenPaths,
    /// Write events counted (one per `write` call to a watched file), named paths or not; the
    /// tailer resets it.
    pub writes: usize,
}

/// The paths named by write events, kept as 64-bit digests of their bytes: 100,000 files
/// written at once kept 9 MB of copies of their names, 1.2 MB this way. Two paths with the
/// same digest (about one chance in 10^10 among 100,000) only make the tailer look at a file
/// that was not written, which finds nothing new. (Hashing the bytes, not a `Path`, which
/// parses its components.)
#[derive(Debug, Default, Clone)]
pub struct WrittenPaths(HashSet<u64>);

impl WrittenPaths {
    fn digest(path: &OsStr) -> u64 {
        use std::hash::Hasher;
        use std::os::unix::ffi::OsStrExt;
        // Fixed keys: the same path gives the same digest in every call.
        let mut h = std::hash::DefaultHasher::new();
        h.write(path.as_bytes());
        h.finish()
    }

    pub fn insert(&mut self, path: &OsStr) -> bool {
        self.0.insert(Self::digest(path))
    }

    pub fn contains(&self, path: &OsStr) -> bool {
        !self.0.is_empty() && self.0.contains(&Self::digest(path))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn extend(&mut self, other: WrittenPaths) {
        self.0.extend(other.0);
    }
}

/// More distinct written paths than this between two looks (a busy directory of files the
/// pattern does not match): forget them and ask for a rescan instead.
const MAX_WRITTEN: usize = 100_000;

/// Bytes read from the event queue per `read` (an event is 16 bytes plus its name).
const EVENT_BUFFER: usize = 64 * 1024;

/// Everything but writes: what asks for a rescan.
const MASK: WatchMask = WatchMask::CREATE
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::ATTRIB)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::EXCL_UNLINK)
    .union(WatchMask::ONLYDIR);

/// What a directory is watched for, with or without writes to its files.
fn mask(writes: bool) -> WatchMask {
    if writes {
        MASK | WatchMask::MODIFY
    } else {
        MASK
    }
}

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
    tree: Tree,
    /// A subdirectory could not be watched (e.g. `fs.inotify.max_user_watches`); said once.
    warned_limit: bool,
    /// Whether writes are watched (see [`DirWatcher::watch_writes`]).
    writes: bool,
    buf: Vec<u8>,
}

/// The watched directories, and what an event in one of them means.
struct Tree {
    root: WatchDescriptor,
    /// The directory each watch is on.
    dirs: HashMap<WatchDescriptor, PathBuf>,
    recursive: bool,
    /// The base directory was removed or moved: this watch sees nothing more; start a new one.
    dead: bool,
    /// The path an event names, built here to look it up without allocating (a busy file is
    /// named by many events between two looks).
    scratch: PathBuf,
    /// Directories created under a recursive watch, to watch next.
    new_dirs: Vec<PathBuf>,
}

impl DirWatcher {
    /// Watches `dir` (and every directory below it when `recursive`). Needs a tokio runtime.
    pub fn start(dir: &Path, recursive: bool) -> io::Result<DirWatcher> {
        let inotify = Inotify::init()?;
        let root = inotify.watches().add(dir, mask(true))?;
        let mut watcher = DirWatcher {
            queue: Queue::Quiet(inotify),
            tree: Tree {
                root: root.clone(),
                dirs: HashMap::from([(root, dir.to_path_buf())]),
                recursive,
                dead: false,
                scratch: PathBuf::new(),
                new_dirs: Vec::new(),
            },
            warned_limit: false,
            writes: true,
            buf: vec![0; EVENT_BUFFER],
        };
        if recursive {
            watcher.add_below(dir);
        }
        Ok(watcher)
    }

    /// Watches writes to files (the default) or not. A tailer that reads every file anyway on
    /// a timer (most of its files are busy) turns them off: one event per `write` call is most
    /// of what a watch costs.
    pub fn watch_writes(&mut self, on: bool) {
        if self.writes == on {
            return;
        }
        self.writes = on;
        let dirs: Vec<PathBuf> = self.tree.dirs.values().cloned().collect();
        for dir in dirs {
            self.add(&dir); // the same watch, with the new mask
        }
    }

    /// False once the watched directory itself is gone.
    pub fn is_alive(&self) -> bool {
        !self.tree.dead
    }

    /// Waits until events are queued, then takes them into `changes`. Cancel-safe: dropped
    /// while waiting, the queue stays registered until the next [`DirWatcher::take`].
    pub async fn wait(&mut self, changes: &mut Changes) -> io::Result<()> {
        loop {
            self.register()?;
            let Queue::Waiting(fd) = &self.queue else {
                return Err(io::Error::other("the inotify queue was lost"));
            };
            // The readiness is not cleared here: `take` reads the queue empty and takes it out
            // of the epoll set, readiness and all; the next wait registers it anew.
            drop(fd.readable().await?);
            if self.take(changes) > 0 || self.tree.dead {
                return Ok(());
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
    /// from now on wake nothing until the next [`DirWatcher::wait`]. Returns how many events
    /// there were.
    pub fn take(&mut self, changes: &mut Changes) -> usize {
        let mut count = 0;
        loop {
            let Some(inotify) = quiet(&mut self.queue) else {
                self.tree.dead = true;
                changes.rescan = true;
                return count;
            };
            match inotify.read_events(&mut self.buf) {
                Ok(events) => {
                    for event in events {
                        count += 1;
                        self.tree.note(event, changes);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return count,
                Err(_) => {
                    changes.rescan = true;
                    return count;
                }
            }
            for dir in std::mem::take(&mut self.tree.new_dirs) {
                self.add(&dir);
                self.add_below(&dir);
            }
        }
    }

    fn add(&mut self, dir: &Path) {
        let inotify = match &self.queue {
            Queue::Quiet(inotify) => inotify,
            Queue::Waiting(fd) => fd.get_ref(),
            Queue::Lost => return,
        };
        match inotify.watches().add(dir, mask(self.writes)) {
            Ok(wd) => {
                self.tree.dirs.insert(wd, dir.to_path_buf());
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

impl Tree {
    /// What one event says.
    fn note(&mut self, event: inotify::Event<&OsStr>, changes: &mut Changes) {
        let mask = event.mask;
        if mask.contains(EventMask::Q_OVERFLOW) {
            changes.rescan = true;
            return;
        }
        let Some(dir) = self.dirs.get(&event.wd) else {
            return; // a watch removed meanwhile
        };
        self.scratch.clear();
        self.scratch.push(dir);
        if let Some(name) = event.name {
            self.scratch.push(name);
        }
        if mask.contains(EventMask::MODIFY) {
            changes.writes += 1;
            if changes.written.contains(self.scratch.as_os_str()) {
                return;
            }
            if changes.written.len() >= MAX_WRITTEN {
                changes.written.clear();
                changes.rescan = true;
            } else {
                changes.written.insert(self.scratch.as_os_str());
            }
            return;
        }
        changes.rescan = true;
        if mask.intersects(EventMask::IGNORED | EventMask::DELETE_SELF | EventMask::MOVE_SELF) {
            if event.wd == self.root {
                self.dead = true;
            }
            if mask.contains(EventMask::IGNORED) {
                self.dirs.remove(&event.wd);
            }
        } else if self.recursive
            && mask.contains(EventMask::ISDIR)
            && mask.intersects(EventMask::CREATE | EventMask::MOVED_TO)
        {
            self.new_dirs.push(self.scratch.clone());
        }
    }
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

    #[test]
    fn written_paths_are_told_apart_by_their_bytes() {
        let mut w = WrittenPaths::default();
        assert!(!w.contains(OsStr::new("/l/a.log")));
        assert!(w.insert(OsStr::new("/l/a.log")));
        assert!(!w.insert(OsStr::new("/l/a.log")), "once");
        assert!(w.contains(OsStr::new("/l/a.log")));
        for p in ["/l/a.lo", "/l/a.log ", "/l//a.log", "/L/a.log", "/l/b.log"] {
            assert!(!w.contains(OsStr::new(p)), "{p}");
        }
        let mut more = WrittenPaths::default();
        more.insert(OsStr::new("/l/b.log"));
        w.extend(more);
        assert_eq!(w.len(), 2);
        assert!(w.contains(OsStr::new("/l/b.log")));
        w.clear();
        assert!(w.is_empty() && !w.contains(OsStr::new("/l/a.log")));
    }

    #[tokio::test]
    async fn without_write_events_creations_still_come() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        std::fs::write(&path, "one\n").expect("write");
        let mut w = DirWatcher::start(dir.path(), false).expect("watch");
        w.watch_writes(false);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        f.write_all(b"two\n").expect("append");
        std::fs::write(dir.path().join("b.log"), "").expect("create");
        let mut changes = next(&mut w).await;
        w.take(&mut changes);
        assert!(changes.rescan, "{changes:?}");
        assert!(changes.written.is_empty(), "{changes:?}");
        assert_eq!(changes.writes, 0);

        w.watch_writes(true);
        f.write_all(b"three\n").expect("append");
        let changes = next(&mut w).await;
        assert!(changes.written.contains(path.as_os_str()), "{changes:?}");
        assert_eq!(changes.writes, 1);
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
