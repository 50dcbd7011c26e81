//! A batch: the records of one call, and what they stand for in the files.
//!
//! Owns: [`Batch`]. Does not own: where a batch ends ([`super::batcher`]), queueing it
//! ([`super::queue`]) or sending it ([`super::sender`]).

use tokio::time::Instant;

use crate::checkpoint::BatchSeq;
use crate::record::{FileRef, Record};

/// Records sent in one call, and what they stand for in the files.
#[derive(Debug, Clone)]
pub struct Batch {
    pub seq: BatchSeq,
    pub records: Vec<Record>,
    /// Bytes counted against the call limit (data plus per-record overhead).
    pub bytes: usize,
    /// For each file with records in the batch, the end offset of its last one.
    pub files: Vec<(FileRef, u64)>,
    /// When the tailer saw the first record's data (the age limit counts from here).
    pub started: Instant,
}

impl Batch {
    pub(super) fn new(seq: BatchSeq, now: Instant) -> Batch {
        Batch {
            seq,
            records: Vec::new(),
            bytes: 0,
            files: Vec::new(),
            started: now,
        }
    }

    pub(super) fn add(&mut self, record: Record, size: usize) {
        match self.files.iter_mut().find(|(f, _)| *f == record.file) {
            Some(entry) => entry.1 = entry.1.max(record.end_offset),
            None => self.files.push((record.file, record.end_offset)),
        }
        self.bytes += size;
        self.records.push(record);
    }

    /// The files in the batch.
    pub fn file_refs(&self) -> Vec<FileRef> {
        self.files.iter().map(|(f, _)| *f).collect()
    }
}
