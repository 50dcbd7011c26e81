//! One tailed file: its open handle, read position and line splitter.
//!
//! Owns: reading a file in blocks through the handle it opened (so a renamed or deleted file is
//! still read to its end), noticing truncation, and the start position. Does not own: deciding
//! which files to tail (the tailer) or where records go.

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::BytesMut;

use super::fingerprint::{self, FINGERPRINT_BYTES};
use super::identity::FileId;
use super::splitter::{LineSplitter, Piece};
use crate::checkpoint::FileInfo;
use crate::record::FileRef;

/// Bytes read per `read` call. Large blocks keep syscalls per record low; records are slices of
/// these blocks, so a block lives until the last of its records is sent.
pub const READ_BLOCK: usize = 64 * 1024;
/// The smallest read: what a read finds past the last known size (often nothing).
const MIN_READ_BLOCK: usize = 4 * 1024;

/// How far back from the end `END_OF_FILE` looks for the last line boundary (the largest record).
const END_OF_FILE_LOOKBACK: u64 = 1024 * 1024;

/// What one read found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReadOutcome {
    pub bytes: u64,
    /// Nothing more to read right now.
    pub at_eof: bool,
    /// The file was shorter than what had been read: it was truncated and will be read again
    /// from 0. Nothing was read in this call.
    pub truncated: Option<Truncation>,
}

/// What a truncated file held before, to recognise its copy (copytruncate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// Offset just past the last complete record read before the truncation.
    pub records_end: u64,
    /// The first bytes of the content before the truncation.
    pub head: Vec<u8>,
}

#[derive(Debug)]
pub struct TailedFile {
    pub file_ref: FileRef,
    pub id: FileId,
    /// The name it was last seen under.
    pub path: PathBuf,
    /// Last known size.
    pub size: u64,
    /// Last known modification time, ms since the epoch.
    pub mtime_ms: i64,
    /// Content check of the first bytes; grows with the file up to its full length.
    pub fingerprint: String,
    /// The first bytes themselves (at most `FINGERPRINT_BYTES`), to recognise copies.
    pub head: Vec<u8>,
    /// Header skipping and multi-line state (set by the tailer).
    pub lines: Option<crate::process::FileLines>,
    /// When data was last read (a multi-line record is flushed once the file is quiet).
    pub last_data: tokio::time::Instant,
    /// Not matched by the last scan (deleted, moved away, renamed out of the pattern): read to
    /// the end through the open handle, then let go.
    pub gone: bool,
    /// The last read stopped before the end (its budget ran out): read it again without
    /// waiting for an event.
    pub more: bool,
    /// Read since the tailer last gave the acknowledgement tracker its [`TailedFile::info`].
    pub unobserved: bool,
    file: File,
    splitter: LineSplitter,
    buf: BytesMut,
}

impl TailedFile {
    /// Opens `path` and positions it at `start` (clamped to the file's size).
    pub fn open(
        path: &Path,
        file_ref: FileRef,
        start: StartAt,
        max_record: usize,
        terminator: &[u8],
    ) -> io::Result<TailedFile> {
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        let size = meta.len();
        let head = fingerprint::head(&file, size)?;
        let offset = match start {
            StartAt::Offset(o) => o.min(size),
            StartAt::EndOfFile => last_line_boundary(&mut file, size)?,
        };
        file.seek(SeekFrom::Start(offset))?;
        Ok(TailedFile {
            file_ref,
            id: FileId::of(&meta),
            path: path.to_path_buf(),
            size,
            mtime_ms: mtime_ms(&meta),
            fingerprint: fingerprint::of_head(&head),
            head,
            gone: false,
            more: true,
            unobserved: false,
            lines: None,
            last_data: tokio::time::Instant::now(),
            file,
            splitter: LineSplitter::new(max_record, terminator, offset),
            buf: BytesMut::new(),
        })
    }

    /// Packs whole lines into records of up to `bytes` (Firehose `aggregatedRecordSizeBytes`).
    pub fn with_aggregation(mut self, bytes: usize) -> Self {
        if bytes > 0 {
            self.splitter = self.splitter.aggregating(bytes);
        }
        self
    }

    /// What a checkpoint stores about this file.
    pub fn info(&self) -> FileInfo {
        FileInfo {
            path: self.path.clone(),
            id: self.id,
            fingerprint: self.fingerprint.clone(),
            size: self.size,
            mtime_ms: self.mtime_ms,
            read: self.offset(),
        }
    }

    /// The open handle (for content checks).
    pub fn handle(&self) -> &File {
        &self.file
    }

    fn refresh_head(&mut self) -> io::Result<()> {
        self.head = fingerprint::head(&self.file, self.size)?;
        self.fingerprint = fingerprint::of_head(&self.head);
        Ok(())
    }

    /// Offset of the first byte not yet in a record.
    pub fn offset(&self) -> u64 {
        self.splitter.offset()
    }

    /// Bytes in the file not yet in a record.
    pub fn behind(&self) -> u64 {
        self.size.saturating_sub(self.offset())
    }

    /// Reads at most `budget` bytes and splits them; complete records go to `out`.
    pub fn read(&mut self, budget: usize, out: &mut Vec<Piece>) -> io::Result<ReadOutcome> {
        let mut outcome = ReadOutcome::default();
        let meta: Metadata = self.file.metadata()?;
        self.size = meta.len();
        self.mtime_ms = mtime_ms(&meta);
        let read_pos = self.offset() + self.buf.len() as u64;
        let grew = self.size > read_pos;
        // Truncated and written again past where we were between two looks: the size alone
        // does not show it (the Java agent's known gap), the first bytes do.
        let replaced = grew
            && !self.head.is_empty()
            && !fingerprint::still_starts_with(&self.file, &self.head)?;
        if self.size < read_pos || replaced {
            // Truncated in place (copytruncate or `> file`): what it holds now is new data.
            // A partial line held from before is dropped: its start is in the old content.
            outcome.truncated = Some(Truncation {
                records_end: self.offset(),
                head: std::mem::take(&mut self.head),
            });
            self.file.seek(SeekFrom::Start(0))?;
            self.buf.clear();
            self.splitter = self.splitter.restarted_at(0);
            self.refresh_head()?;
            return Ok(outcome);
        }
        if self.head.len() < FINGERPRINT_BYTES && (self.head.len() as u64) < self.size {
            self.refresh_head()?;
        }
        while (outcome.bytes as usize) < budget {
            // As much as the file holds past the read position, so a small append neither
            // zero-fills nor pins a whole READ_BLOCK per record until it is acknowledged.
            let pending = self.size.saturating_sub(read_pos + outcome.bytes) as usize;
            if pending == 0 && !self.gone {
                // Up to the size just looked at: what is written after the look comes with its
                // own event (or the next full pass). A file let go of is read until a read
                // finds nothing, so nothing written after the look is left behind.
                outcome.at_eof = true;
                break;
            }
            let want = READ_BLOCK
                .min(budget - outcome.bytes as usize)
                .min(pending.max(MIN_READ_BLOCK));
            let start = self.buf.len();
            self.buf.resize(start + want, 0);
            let got = match self.file.read(&mut self.buf[start..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(e);
                }
            };
            self.buf.truncate(start + got);
            outcome.bytes += got as u64;
            if got == 0 {
                outcome.at_eof = true;
                break;
            }
            self.splitter.split(&mut self.buf, out);
        }
        Ok(outcome)
    }
}

/// Where a newly tracked file starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Offset(u64),
    /// Just after the last complete line, so a partial last line is sent once completed
    /// (Java `END_OF_FILE`).
    EndOfFile,
}

/// Modification time in ms since the epoch.
pub fn mtime_ms(meta: &Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime() * 1000 + meta.mtime_nsec() / 1_000_000
}

fn last_line_boundary(file: &mut File, size: u64) -> io::Result<u64> {
    let from = size.saturating_sub(END_OF_FILE_LOOKBACK);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::with_capacity((size - from) as usize);
    file.by_ref().take(size - from).read_to_end(&mut tail)?;
    Ok(match memchr::memrchr(b'\n', &tail) {
        Some(i) => from + i as u64 + 1,
        // No boundary in the look-back window: a file with no newline at all starts at 0;
        // otherwise start at the end rather than resend a megabyte of one line.
        None if from == 0 => 0,
        None => size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(f: &mut TailedFile) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        f.read(usize::MAX, &mut out).expect("read");
        out.into_iter()
            .map(|p| (String::from_utf8_lossy(&p.data).into_owned(), p.end_offset))
            .collect()
    }

    #[test]
    fn end_of_file_starts_after_the_last_complete_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        std::fs::write(&path, "old1\nold2\npart").expect("write");
        let mut f =
            TailedFile::open(&path, FileRef(0), StartAt::EndOfFile, 100, b"\n").expect("open");
        assert_eq!(f.offset(), 10);
        assert!(read_all(&mut f).is_empty());
        let mut w = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        w.write_all(b"ial\nnew\n").expect("write");
        assert_eq!(
            read_all(&mut f),
            vec![("partial\n".into(), 18), ("new\n".into(), 22)]
        );
    }

    #[test]
    fn renamed_and_deleted_file_is_read_through_the_handle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        std::fs::write(&path, "one\n").expect("write");
        let mut f =
            TailedFile::open(&path, FileRef(0), StartAt::Offset(0), 100, b"\n").expect("open");
        let mut w = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        std::fs::rename(&path, dir.path().join("a.log.1")).expect("rename");
        w.write_all(b"two\n").expect("write");
        std::fs::remove_file(dir.path().join("a.log.1")).expect("rm");
        assert_eq!(
            read_all(&mut f),
            vec![("one\n".into(), 4), ("two\n".into(), 8)]
        );
    }

    #[test]
    fn truncation_then_regrowth_past_the_old_size_is_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        std::fs::write(&path, "2026-01-01 first\n").expect("write");
        let mut f =
            TailedFile::open(&path, FileRef(0), StartAt::Offset(0), 100, b"\n").expect("open");
        assert_eq!(read_all(&mut f).len(), 1);
        std::fs::write(&path, "2026-01-02 new and longer line\n").expect("replace");
        let mut out = Vec::new();
        let outcome = f.read(usize::MAX, &mut out).expect("read");
        assert_eq!(outcome.truncated.map(|t| t.records_end), Some(17));
        assert_eq!(
            read_all(&mut f),
            vec![("2026-01-02 new and longer line\n".into(), 31)]
        );
    }

    #[test]
    fn truncation_restarts_from_zero() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        std::fs::write(&path, "first line\n").expect("write");
        let mut f =
            TailedFile::open(&path, FileRef(0), StartAt::Offset(0), 100, b"\n").expect("open");
        assert_eq!(read_all(&mut f).len(), 1);
        std::fs::write(&path, "new\n").expect("truncate+write");
        let mut out = Vec::new();
        let outcome = f.read(usize::MAX, &mut out).expect("read");
        let truncation = outcome.truncated.expect("truncation seen");
        assert_eq!(truncation.records_end, 11);
        assert_eq!(truncation.head, b"first line\n");
        assert!(out.is_empty(), "the new content is read by the next call");
        f.read(usize::MAX, &mut out).expect("read");
        assert_eq!(&out[0].data[..], b"new\n");
        assert_eq!(out[0].end_offset, 4);
    }
}
