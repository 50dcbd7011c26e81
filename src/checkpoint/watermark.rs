//! The in-order acknowledgement watermark of each file. No IO.
//!
//! A file's checkpoint may move to offset N only when every record of that file ending at or
//! before N was acknowledged. Batches complete out of order (several are in flight, and a
//! retried one finishes late), so each file keeps the batches that hold its records, in the
//! order they were made, and the watermark moves only across a run of finished ones. This is
//! what fixes the Java agent's gap (reference 4.2: a later batch's checkpoint skipping an
//! earlier batch that was still retrying).

use std::collections::{HashMap, VecDeque};

use crate::record::FileRef;

/// Batch numbers, increasing in the order batches are made within one flow.
pub type BatchSeq = u64;

/// A batch holding a file's records: (batch, end offset in it, done).
type Pending = VecDeque<(BatchSeq, u64, bool)>;

#[derive(Debug, Default, Clone)]
struct FileMarks {
    /// Highest offset below which everything is acknowledged.
    acked: u64,
    /// Batches holding this file's records, oldest first; None when there are none (boxed:
    /// an idle file costs 16 bytes instead of 40, and 100,000 files are mostly idle).
    pending: Option<Box<Pending>>,
}

impl FileMarks {
    fn push(&mut self, batch: BatchSeq, end: u64) {
        self.pending
            .get_or_insert_with(Default::default)
            .push_back((batch, end, false));
    }
}

/// Watermarks of every file of one flow.
#[derive(Debug, Default)]
pub struct Watermarks {
    files: HashMap<FileRef, FileMarks>,
    /// Files that continue another's content (a copytruncate copy continues its truncated
    /// original): acknowledging the original's batches moves theirs too.
    followers: HashMap<FileRef, Vec<FileRef>>,
}

impl Watermarks {
    /// Starts a file's watermark at `offset` (its resume point).
    pub fn start(&mut self, file: FileRef, offset: u64) {
        self.files.entry(file).or_default().acked = offset;
    }

    /// Starts `copy`, which continues `original`'s content from where reading it stopped: its
    /// watermark starts where the original's is, and moves with the original's outstanding
    /// batches, so a crash before they are acknowledged resends them from the copy. If the
    /// original is no longer tracked (all of it was acknowledged), the copy starts at `offset`.
    pub fn start_copy(&mut self, copy: FileRef, original: FileRef, offset: u64) {
        let marks = match self.files.get(&original) {
            // Records of the original may still wait in the batcher (registered later): the
            // copy follows the original's batches, present and future, until it is forgotten.
            Some(o) => {
                let marks = FileMarks {
                    acked: o.acked.min(offset),
                    pending: o.pending.clone(),
                };
                self.followers.entry(original).or_default().push(copy);
                marks
            }
            None => FileMarks {
                acked: offset,
                pending: None,
            },
        };
        self.files.insert(copy, marks);
    }

    /// Records that batch `batch` holds records of these files up to these end offsets. Must be
    /// called in batch order, before the batch can be acknowledged.
    pub fn register(&mut self, batch: BatchSeq, ends: &[(FileRef, u64)]) {
        for &(file, end) in ends {
            self.files.entry(file).or_default().push(batch, end);
            for follower in self.followers.get(&file).cloned().unwrap_or_default() {
                if let Some(marks) = self.files.get_mut(&follower) {
                    marks.push(batch, end);
                }
            }
        }
    }

    /// Marks `batch` acknowledged. Returns the files whose watermark moved, with the new value.
    pub fn acknowledge(&mut self, batch: BatchSeq, files: &[FileRef]) -> Vec<(FileRef, u64)> {
        let mut moved = Vec::new();
        let mut all: Vec<FileRef> = files.to_vec();
        for file in files {
            all.extend(self.followers.get(file).into_iter().flatten());
        }
        for file in &all {
            let Some(marks) = self.files.get_mut(file) else {
                continue;
            };
            let before = marks.acked;
            if let Some(pending) = &mut marks.pending {
                if let Ok(i) = pending.binary_search_by_key(&batch, |p| p.0) {
                    pending[i].2 = true;
                }
                while let Some(&(_, end, true)) = pending.front() {
                    marks.acked = marks.acked.max(end);
                    pending.pop_front();
                }
                if pending.is_empty() {
                    // An idle file holds no queue.
                    marks.pending = None;
                }
            }
            if marks.acked != before {
                moved.push((*file, marks.acked));
            }
        }
        moved
    }

    /// The acknowledged offset of a file.
    pub fn acked(&self, file: FileRef) -> Option<u64> {
        self.files.get(&file).map(|m| m.acked)
    }

    /// True when no batch holding the file's records is outstanding.
    pub fn is_settled(&self, file: FileRef) -> bool {
        self.files.get(&file).is_none_or(|m| m.pending.is_none())
    }

    /// How many files are tracked.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Stops tracking a file the tailer let go of (all its batches settled).
    pub fn forget(&mut self, file: FileRef) {
        self.files.remove(&file);
        self.followers.remove(&file);
        // Room for the 100,000 files of a start is not kept once most are let go of.
        if self.files.capacity() > super::SHRINK_ABOVE
            && self.files.len() * 4 < self.files.capacity()
        {
            self.files.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: FileRef = FileRef(1);
    const B: FileRef = FileRef(2);

    #[test]
    fn out_of_order_completion_never_skips_a_gap() {
        let mut w = Watermarks::default();
        w.start(A, 0);
        w.register(1, &[(A, 100)]);
        w.register(2, &[(A, 200)]);
        w.register(3, &[(A, 300)]);
        // Batches 2 and 3 finish while 1 is still retrying: nothing moves.
        assert!(w.acknowledge(3, &[A]).is_empty());
        assert!(w.acknowledge(2, &[A]).is_empty());
        assert_eq!(w.acked(A), Some(0));
        // Batch 1 finishes: the watermark jumps over the whole finished run.
        assert_eq!(w.acknowledge(1, &[A]), vec![(A, 300)]);
        assert!(w.is_settled(A));
    }

    #[test]
    fn a_copy_moves_with_its_originals_outstanding_batches() {
        let mut w = Watermarks::default();
        w.start(A, 0);
        w.register(1, &[(A, 100)]);
        w.register(2, &[(A, 200)]);
        // A is truncated after 200 bytes were read; its copy B continues from 200, but only
        // what A's batches acknowledge counts.
        w.start_copy(B, A, 200);
        assert_eq!(w.acked(B), Some(0));
        w.register(3, &[(B, 300)]);
        assert_eq!(w.acknowledge(3, &[B]), Vec::<(FileRef, u64)>::new());
        assert_eq!(w.acknowledge(1, &[A]), vec![(A, 100), (B, 100)]);
        assert_eq!(w.acknowledge(2, &[A]), vec![(A, 200), (B, 300)]);
        // The original's records still in the batcher when the copy starts count too.
        let mut w2 = Watermarks::default();
        w2.start(A, 0);
        w2.start_copy(B, A, 150);
        w2.register(7, &[(A, 150)]);
        w2.register(8, &[(B, 400)]);
        assert!(w2.acknowledge(8, &[B]).is_empty());
        assert_eq!(w2.acknowledge(7, &[A]), vec![(A, 150), (B, 400)]);
        // An original that is already settled and forgotten: the copy starts at the offset.
        w.forget(A);
        w.start_copy(FileRef(9), A, 200);
        assert_eq!(w.acked(FileRef(9)), Some(200));
    }

    #[test]
    fn files_are_independent_within_one_batch() {
        let mut w = Watermarks::default();
        w.start(A, 10);
        w.start(B, 0);
        w.register(1, &[(A, 50)]);
        w.register(2, &[(A, 80), (B, 40)]);
        assert_eq!(w.acknowledge(2, &[A, B]), vec![(B, 40)]);
        assert_eq!(w.acked(A), Some(10));
        assert!(!w.is_settled(A));
        assert_eq!(w.acknowledge(1, &[A]), vec![(A, 80)]);
    }
}
