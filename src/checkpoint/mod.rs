//! Acknowledgements to durable checkpoints.
//!
//! Owns: [`watermark`] (which offsets are safe to store), [`AckTracker`] (the handle the
//! tailer describes files through, the batcher registers batches with and the sender
//! acknowledges them through), [`store`] (the SQLite database in the Java agent's format) and
//! [`writer`] (the task that saves moved watermarks about once a second). Does not own: where a
//! file starts reading given the stored rows (the tailer's `tail::resume`), or who a file is
//! ([`crate::record`]'s `FileId` and `Fingerprint`).

pub mod store;
pub mod watermark;
pub mod writer;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::record::{FileId, FileRef, Fingerprint};
pub use watermark::{BatchSeq, Watermarks};

/// The tracked files of a flow, summarised for the status snapshot
/// ([`AckTracker::files_summary`]).
#[derive(Debug, Clone, Default)]
pub struct FilesSummary {
    pub tracked: usize,
    /// Bytes not yet acknowledged over every tracked file.
    pub bytes_behind: u64,
    /// The listed files with their acknowledged offsets, by path.
    pub listed: Vec<(FileInfo, u64)>,
}

/// What a checkpoint row says about a file besides its offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Shared with the tailer's own record of the file (100,000 files each kept their name
    /// twice).
    pub path: Arc<Path>,
    pub id: FileId,
    /// Content check of the file's first bytes; see [`crate::record::fingerprint`].
    pub fingerprint: Fingerprint,
    pub size: u64,
    pub mtime_ms: i64,
    /// Offset up to which the file was turned into records (for the status snapshot).
    pub read: u64,
}

#[cfg(test)]
impl FileInfo {
    /// A file description for tests that only exercise offsets.
    pub fn for_test(path: &str) -> FileInfo {
        FileInfo {
            path: Path::new(path).into(),
            id: FileId { dev: 1, ino: 1 },
            fingerprint: crate::record::fingerprint::of_head(b""),
            size: 0,
            mtime_ms: 0,
            read: 0,
        }
    }
}

/// Below this many tracked files a flow keeps every file's description (the status lists
/// them all, up to its own limit); above it, descriptions of files with nothing to save or
/// show are let go of ([`AckTracker::saved`]): 100,000 idle files kept 10 MB of copies of what
/// the tailer knows anyway.
const KEEP_EVERY_DESCRIPTION_UP_TO: usize = 1000;

/// A large flow's tailer opens new files only while fewer than this many files are described
/// ([`AckTracker::room_to_describe`]): at start, 100,000 new files were opened faster than
/// their first lines were acknowledged and saved, and the descriptions of all of them (90
/// bytes each with their room in the map) made the start's peak.
pub const DESCRIBED_AT_MOST: usize = 16 * 1024;

/// Maps of files with room for more than this many are made smaller when three quarters of
/// the room is unused (smaller ones are not worth the copy).
const SHRINK_ABOVE: usize = 1024;

#[derive(Debug, Default)]
struct Inner {
    /// Every tracked file's watermark: the set of tracked files.
    marks: Watermarks,
    /// What a checkpoint row and the status say about a file besides its offset. Of a large
    /// flow (more than [`KEEP_EVERY_DESCRIPTION_UP_TO`] files) only for files with something to
    /// save or show: read or written past their acknowledged offset, with batches pending,
    /// or not saved yet. The tailer gives a description back when it reads such a file again
    /// ([`AckTracker::describe`]).
    files: HashMap<FileRef, FileInfo>,
    /// Files whose watermark moved since the last save.
    dirty: BTreeSet<FileRef>,
    /// Rows (by path) to delete at the next save.
    dropped: Vec<PathBuf>,
}

/// One flow's acknowledgement state, shared by its tailer, batcher, sender and the
/// checkpoint writer.
#[derive(Debug, Clone, Default)]
pub struct AckTracker {
    inner: Arc<Mutex<Inner>>,
    /// Wakes the writer for changes that should not wait for the next periodic save.
    urgent: Arc<Notify>,
}

impl AckTracker {
    /// A tracker whose urgent changes wake `writer` (shared by all flows).
    pub fn new(writer: Arc<Notify>) -> AckTracker {
        AckTracker {
            inner: Arc::default(),
            urgent: writer,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves consistent maps behind; keep going.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stops tracking `file` and deletes its checkpoint row at the next save (after the rows
    /// saved with it, so a row that replaces it is durable first).
    pub fn drop_file(&self, file: FileRef) {
        let mut inner = self.lock();
        inner.dirty.remove(&file);
        inner.marks.forget(file);
        if let Some(info) = inner.files.remove(&file) {
            inner.dropped.push(info.path.to_path_buf());
            self.urgent.notify_one();
        }
    }

    /// Deletes the checkpoint row saved under `path` at the next save.
    pub fn drop_row(&self, path: PathBuf) {
        self.lock().dropped.push(path);
        self.urgent.notify_one();
    }

    /// Rows to delete, taken by the writer.
    pub fn take_dropped(&self) -> Vec<PathBuf> {
        std::mem::take(&mut self.lock().dropped)
    }

    /// Puts back rows whose deletion failed.
    pub fn restore_dropped(&self, mut paths: Vec<PathBuf>) {
        let mut inner = self.lock();
        paths.append(&mut inner.dropped);
        inner.dropped = paths;
    }

    /// The tailer starts tracking a file at `offset`. The start is saved like an
    /// acknowledgement: a file that starts past 0 (a checkpoint, `END_OF_FILE`, a copytruncate
    /// copy) must not be read again from 0 after a crash just because nothing new was sent.
    pub fn start(&self, file: FileRef, offset: u64, info: FileInfo) {
        let mut inner = self.lock();
        inner.marks.start(file, offset);
        inner.files.insert(file, info);
        inner.dirty.insert(file);
        if offset > 0 {
            // Losing this start in a crash would mean reading the file again from 0.
            self.urgent.notify_one();
        }
    }

    /// The tailer starts a copytruncate copy of `original` at `offset` (see
    /// [`Watermarks::start_copy`]).
    pub fn start_copy(&self, file: FileRef, original: FileRef, offset: u64, info: FileInfo) {
        let mut inner = self.lock();
        inner.marks.start_copy(file, original, offset);
        inner.files.insert(file, info);
        inner.dirty.insert(file);
        self.urgent.notify_one();
    }

    /// The tailer saw the file again (new name, size or fingerprint). A new name is saved at
    /// once: rows are keyed by path, and the file that takes the old name would otherwise
    /// overwrite this one's row.
    ///
    /// A file whose description was let go of ([`AckTracker::saved`]) but is still tracked
    /// is saved again at once too: whether its name changed meanwhile is not known.
    pub fn observe(&self, file: FileRef, info: FileInfo) {
        let mut inner = self.lock();
        let renamed = match inner.files.get(&file) {
            Some(old) => old.path != info.path,
            None => inner.marks.acked(file).is_some(),
        };
        if renamed {
            inner.dirty.insert(file);
            self.urgent.notify_one();
        }
        inner.files.insert(file, info);
    }

    /// Gives the tracker `file`'s description if it let go of it ([`AckTracker::saved`]):
    /// the tailer calls this when it reads new data from a file, so the row saved once the
    /// data is acknowledged has the file's name. `info` is only made when needed.
    pub fn describe(&self, file: FileRef, info: impl FnOnce() -> FileInfo) {
        let mut inner = self.lock();
        if inner.files.contains_key(&file) || inner.marks.acked(file).is_none() {
            return;
        }
        inner.files.insert(file, info());
        // Its name may have changed while it had no description: saved like a rename.
        inner.dirty.insert(file);
        self.urgent.notify_one();
    }

    /// The writer saved these files' rows: the descriptions of those with nothing left to
    /// save or show are let go of, in a flow of more than [`KEEP_EVERY_DESCRIPTION_UP_TO`]
    /// files. Kept: a file with batches pending or read past its acknowledged offset (its row
    /// is saved again soon), one behind (the status lists it), one moved again since the save,
    /// and the rows that stand for no file (their path is needed to delete them).
    pub fn saved(&self, files: &[FileRef]) {
        let mut guard = self.lock();
        if guard.marks.len() <= KEEP_EVERY_DESCRIPTION_UP_TO {
            return;
        }
        let inner = &mut *guard;
        for f in files {
            let Some(acked) = inner.marks.acked(*f) else {
                continue;
            };
            let idle = inner.files.get(f).is_some_and(|info| {
                info.read <= acked
                    && info.size <= acked
                    && info.id.dev != crate::record::identity::NO_DEVICE
            });
            if idle && inner.marks.is_settled(*f) && !inner.dirty.contains(f) {
                inner.files.remove(f);
            }
        }
        // A map does not shrink by itself: a start with 100,000 new files would keep the
        // room for all their descriptions.
        if inner.files.capacity() > SHRINK_ABOVE && inner.files.len() * 4 < inner.files.capacity() {
            inner.files.shrink_to_fit();
            drop(guard);
            // The descriptions let go of (their blocks, in malloc's arenas) too; outside the
            // lock, which the tailer and the senders take.
            crate::sys::release_free_memory();
        }
    }

    /// How many more new files the tailer may start on now: without limit in a flow of at
    /// most [`KEEP_EVERY_DESCRIPTION_UP_TO`] files (it keeps every description anyway), else
    /// what is left of [`DESCRIBED_AT_MOST`] descriptions.
    pub fn room_to_describe(&self) -> usize {
        let inner = self.lock();
        if inner.marks.len() <= KEEP_EVERY_DESCRIPTION_UP_TO {
            return usize::MAX;
        }
        DESCRIBED_AT_MOST.saturating_sub(inner.files.len())
    }

    pub fn register(&self, batch: BatchSeq, ends: &[(FileRef, u64)]) {
        self.lock().marks.register(batch, ends);
    }

    pub fn acknowledge(&self, batch: BatchSeq, files: &[FileRef]) -> Vec<(FileRef, u64)> {
        let mut inner = self.lock();
        let moved = inner.marks.acknowledge(batch, files);
        inner.dirty.extend(moved.iter().map(|(f, _)| *f));
        moved
    }

    pub fn acked(&self, file: FileRef) -> Option<u64> {
        self.lock().marks.acked(file)
    }

    pub fn is_settled(&self, file: FileRef) -> bool {
        self.lock().marks.is_settled(file)
    }

    /// The tailer gave a file a new number (it was truncated, so its offsets start again):
    /// the old number's watermark must never be saved again, or it would overwrite the new one.
    pub fn retire(&self, file: FileRef) {
        let mut inner = self.lock();
        inner.files.remove(&file);
        inner.dirty.remove(&file);
    }

    /// Stops tracking a file the tailer let go of, once its last batch settled. Its checkpoint
    /// row stays (until the TTL) so a restart does not read it again.
    ///
    /// Settled means acknowledged up to `end`, the end of the last record the tailer made of
    /// it: records may still wait in the batcher, not yet registered, so "no batch pending" is
    /// not enough. (A file whose last records were dropped by a converter stays tracked; it is
    /// a few bytes.)
    pub fn forget_when_acknowledged(&self, file: FileRef, end: u64) -> bool {
        let mut inner = self.lock();
        let acked = inner.marks.acked(file).unwrap_or(end);
        if acked < end || !inner.marks.is_settled(file) || inner.dirty.contains(&file) {
            return false;
        }
        inner.marks.forget(file);
        inner.files.remove(&file);
        true
    }

    /// At most `limit` of the watermarks that moved since they were last taken, with what to
    /// store about their files.
    pub fn take_dirty(&self, limit: usize) -> Vec<(FileRef, FileInfo, u64)> {
        let mut inner = self.lock();
        let mut taken = Vec::new();
        let mut undescribed = Vec::new();
        while taken.len() < limit {
            let Some(f) = inner.dirty.pop_first() else {
                break;
            };
            let Some(offset) = inner.marks.acked(f) else {
                continue;
            };
            match inner.files.get(&f) {
                Some(info) => taken.push((f, info.clone(), offset)),
                // Read again and acknowledged before the tailer gave its description back
                // ([`AckTracker::describe`]): saved once it has.
                None => undescribed.push(f),
            }
        }
        inner.dirty.extend(undescribed);
        taken
    }

    /// Puts back watermarks whose save failed, to be saved next time.
    pub fn restore_dirty(&self, files: impl IntoIterator<Item = FileRef>) {
        self.lock().dirty.extend(files);
    }

    /// The tracked files for the status snapshot: how many, the bytes not yet acknowledged
    /// over all of them (files without a description have none), and at most `limit` of them with their acknowledged offsets (those
    /// furthest behind; among files equally behind, any), sorted by path. Only the listed files
    /// are copied and sorted, so a flow of 100,000 files costs a pass over them (selecting by
    /// path as well was 40 % of an idle agent's CPU with 100,000 files).
    pub fn files_summary(&self, limit: usize) -> FilesSummary {
        let inner = self.lock();
        let mut behind_total = 0;
        let mut all: Vec<(u64, FileRef)> = inner
            .files
            .iter()
            .map(|(f, info)| {
                let behind = info.size.saturating_sub(inner.marks.acked(*f).unwrap_or(0));
                behind_total += behind;
                (behind, *f)
            })
            .collect();
        let tracked = inner.marks.len();
        if all.len() > limit {
            all.select_nth_unstable_by_key(limit, |(behind, _)| std::cmp::Reverse(*behind));
            all.truncate(limit);
        }
        let mut listed: Vec<(FileInfo, u64)> = all
            .into_iter()
            .filter_map(|(_, f)| {
                let info = inner.files.get(&f)?.clone();
                Some((info, inner.marks.acked(f).unwrap_or(0)))
            })
            .collect();
        listed.sort_by(|a, b| a.0.path.cmp(&b.0.path));
        FilesSummary {
            tracked,
            bytes_behind: behind_total,
            listed,
        }
    }

    /// Bytes read but not yet acknowledged, over all tracked files, given each file's read offset.
    pub fn unacknowledged(&self, read: impl IntoIterator<Item = (FileRef, u64)>) -> u64 {
        let inner = self.lock();
        read.into_iter()
            .map(|(f, offset)| offset.saturating_sub(inner.marks.acked(f).unwrap_or(offset)))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(path: &str, size: u64) -> FileInfo {
        FileInfo {
            size,
            ..FileInfo::for_test(path)
        }
    }

    #[test]
    fn the_summary_counts_every_file_and_lists_those_furthest_behind_by_path() {
        let acks = AckTracker::new(Arc::new(Notify::new()));
        acks.start(FileRef(0), 0, info("/l/a", 10));
        acks.start(FileRef(1), 0, info("/l/b", 300));
        acks.start(FileRef(2), 0, info("/l/c", 20));
        acks.start(FileRef(3), 5, info("/l/d", 200));
        let s = acks.files_summary(2);
        assert_eq!(s.tracked, 4);
        assert_eq!(s.bytes_behind, 10 + 300 + 20 + 195);
        let listed: Vec<_> = s
            .listed
            .iter()
            .map(|(i, acked)| (i.path.display().to_string(), *acked))
            .collect();
        assert_eq!(listed, vec![("/l/b".into(), 0), ("/l/d".into(), 5)]);
        assert_eq!(acks.files_summary(10).listed.len(), 4);
    }

    /// A flow of `n` files of 10 bytes each, all acknowledged and saved.
    fn saved_flow(n: u64) -> AckTracker {
        let acks = AckTracker::new(Arc::new(Notify::new()));
        for i in 0..n {
            let f = FileRef(i);
            acks.start(
                f,
                0,
                FileInfo {
                    read: 10,
                    ..info(&format!("/l/{i}"), 10)
                },
            );
            acks.register(i, &[(f, 10)]);
            acks.acknowledge(i, &[f]);
        }
        let taken: Vec<FileRef> = acks.take_dirty(usize::MAX).iter().map(|t| t.0).collect();
        assert_eq!(taken.len() as u64, n);
        acks.saved(&taken);
        acks
    }

    #[test]
    fn new_files_of_a_large_flow_are_paced_by_the_descriptions_held() {
        let acks = AckTracker::new(Arc::new(Notify::new()));
        let start = |i: u64, size| acks.start(FileRef(i), 0, info(&format!("/l/{i}"), size));
        for i in 0..KEEP_EVERY_DESCRIPTION_UP_TO as u64 {
            start(i, 10);
        }
        assert_eq!(
            acks.room_to_describe(),
            usize::MAX,
            "a small flow is not paced"
        );
        start(5000, 10);
        let held = KEEP_EVERY_DESCRIPTION_UP_TO + 1;
        assert_eq!(acks.room_to_describe(), DESCRIBED_AT_MOST - held);
        // Acknowledged and saved, with nothing behind: let go of, and room again.
        let taken: Vec<FileRef> = acks.take_dirty(usize::MAX).iter().map(|t| t.0).collect();
        for (n, f) in taken.iter().enumerate() {
            acks.register(n as u64, &[(*f, 10)]);
            acks.acknowledge(n as u64, &[*f]);
        }
        let taken: Vec<FileRef> = acks.take_dirty(usize::MAX).iter().map(|t| t.0).collect();
        acks.saved(&taken);
        assert_eq!(acks.room_to_describe(), DESCRIBED_AT_MOST);
        // More described than the bound (files read while others wait): no room, not less.
        for i in 0..DESCRIBED_AT_MOST as u64 + 5 {
            start(10_000 + i, 10);
        }
        assert_eq!(acks.room_to_describe(), 0);
    }

    #[test]
    fn a_large_flow_lets_go_of_idle_descriptions_and_saves_a_file_described_again() {
        let acks = saved_flow(KEEP_EVERY_DESCRIPTION_UP_TO as u64 + 1);
        assert!(acks.lock().files.is_empty(), "idle, saved, nothing behind");
        let s = acks.files_summary(10);
        assert_eq!((s.tracked, s.bytes_behind, s.listed.len()), (1001, 0, 0));
        // Read again: acknowledged before the tailer describes it, the row waits for the name.
        let f = FileRef(7);
        acks.register(5000, &[(f, 30)]);
        assert_eq!(acks.acknowledge(5000, &[f]), vec![(f, 30)]);
        assert!(acks.take_dirty(10).is_empty());
        acks.describe(f, || FileInfo {
            read: 30,
            ..info("/l/7-renamed", 30)
        });
        let rows = acks.take_dirty(10);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].0, &*rows[0].1.path, rows[0].2),
            (f, Path::new("/l/7-renamed"), 30)
        );
        // Described already: nothing more to save; an untracked file is not described.
        acks.describe(f, || unreachable!("described already"));
        acks.describe(FileRef(99_999), || unreachable!("not tracked"));
        assert!(acks.take_dirty(10).is_empty());
    }

    #[test]
    fn descriptions_of_files_behind_pending_or_standing_for_no_file_are_kept() {
        let acks = saved_flow(KEEP_EVERY_DESCRIPTION_UP_TO as u64 + 10);
        let (behind, pending, placeholder) = (FileRef(1), FileRef(2), FileRef(3));
        acks.observe(behind, info("/l/1", 50));
        acks.observe(
            pending,
            FileInfo {
                read: 20,
                ..info("/l/2", 20)
            },
        );
        acks.register(9000, &[(pending, 20)]);
        acks.observe(
            placeholder,
            FileInfo {
                id: FileId::placeholder(3),
                ..info("/l/3", 10)
            },
        );
        let taken: Vec<FileRef> = acks.take_dirty(usize::MAX).iter().map(|t| t.0).collect();
        acks.saved(&taken);
        let mut kept: Vec<FileRef> = acks.lock().files.keys().copied().collect();
        kept.sort();
        assert_eq!(kept, vec![behind, pending, placeholder]);
        assert_eq!(acks.files_summary(10).bytes_behind, 40 + 10);
    }

    #[test]
    fn a_small_flow_keeps_every_description_for_the_status() {
        let acks = saved_flow(3);
        assert_eq!(acks.files_summary(10).listed.len(), 3);
    }
}
