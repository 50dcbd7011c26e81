//! The unit that flows between stages: one record's bytes and where it came from.
//!
//! Owns: [`Record`] and [`FileRef`]. A record's `data` is usually a zero-copy slice of the block
//! the tailer read, so a batch of records holds a few large buffers, not one allocation per line.

use bytes::Bytes;

/// A file as known to one flow's pipeline: a number given by the tailer when it starts tracking
/// the file. The tailer's registry maps it to the file's identity and current path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileRef(pub u64);

/// One record to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What is sent (the line with its `\n`, as the Java agent sends it).
    pub data: Bytes,
    /// The file it was read from.
    pub file: FileRef,
    /// Byte offset in that file just past the raw bytes of this record: once this record and
    /// every earlier one of the file are acknowledged, the file's checkpoint may move here.
    pub end_offset: u64,
}

/// Records handed from the tailer to the batcher together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub records: Vec<Record>,
    /// When the tailer learnt the data was there (the write's event, or the pass that found
    /// it): a batch's `maxBufferAgeMillis` counts from here, so a read the tailer put off to
    /// gather more lines does not make a record wait longer.
    pub seen: tokio::time::Instant,
}
