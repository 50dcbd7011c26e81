//! The nouns the stages share, so no stage imports another stage's types: one record's bytes
//! and where it came from, and who a file is.
//!
//! Owns: [`Record`], [`Chunk`], [`FileRef`], [`Piece`] (a line as the splitter cut it, before
//! it is tagged with its file), [`identity`] ([`FileId`]: device and inode) and
//! [`fingerprint`] ([`Fingerprint`]: the digest of a file's first bytes, and its stored form).
//! A record's `data` is usually a zero-copy slice of the block the tailer read, so a batch of
//! records holds a few large buffers, not one allocation per line. Does not own: reading files
//! or comparing them (the tailer's `tail::fingerprint`), acknowledgements (`checkpoint`).

pub mod fingerprint;
pub mod identity;

use bytes::Bytes;

pub use fingerprint::Fingerprint;
pub use identity::FileId;

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

/// One record cut from the input, before it is tagged with its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub data: Bytes,
    /// File offset just past the raw bytes this piece stands for.
    pub end_offset: u64,
    /// True when the line was longer than the record limit and was cut.
    pub truncated: bool,
}
