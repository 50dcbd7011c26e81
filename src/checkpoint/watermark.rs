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

#[derive(Debug, Default)]
struct FileMarks {
    /// Highest offset below which everything is acknowledged.
    acked: u64,
    /// Batches holding this file's records, oldest first: (batch, end offset in it, done).
    pending: VecDeque<(BatchSeq, u64, bool)>,
}

/// Watermarks of every file of one flow.
#[derive(Debug, Default)]
pub struct Watermarks {
    files: HashMap<FileRef, FileMarks>,
}

impl Watermarks {
    /// Starts a file's watermark at `offset` (its resume point).
    pub fn start(&mut self, file: FileRef, offset: u64) {
        self.files.entry(file).or_default().acked = offset;
    }

    /// Records that batch `batch` holds records of these files up to these end offsets. Must be
    /// called in batch order, before the batch can be acknowledged.
    pub fn register(&mut self, batch: BatchSeq, ends: &[(FileRef, u64)]) {
        for &(file, end) in ends {
            self.files
                .entry(file)
                .or_default()
                .pending
                .push_back((batch, end, false));
        }
    }

    /// Marks `batch` acknowledged. Returns the files whose watermark moved, with the new value.
    pub fn acknowledge(&mut self, batch: BatchSeq, files: &[FileRef]) -> Vec<(FileRef, u64)> {
        let mut moved = Vec::new();
        for file in files {
            let Some(marks) = self.files.get_mut(file) else {
                continue;
            };
            if let Ok(i) = marks.pending.binary_search_by_key(&batch, |p| p.0) {
                marks.pending[i].2 = true;
            }
            let before = marks.acked;
            while let Some(&(_, end, true)) = marks.pending.front() {
                marks.acked = marks.acked.max(end);
                marks.pending.pop_front();
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
        self.files.get(&file).is_none_or(|m| m.pending.is_empty())
    }

    /// Stops tracking a file the tailer let go of (all its batches settled).
    pub fn forget(&mut self, file: FileRef) {
        self.files.remove(&file);
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
