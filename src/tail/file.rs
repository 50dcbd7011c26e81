//! One tailed file: its open handle, read position and line splitter.
//!
//! Owns: reading a file in blocks through the handle it opened (so a renamed or deleted file is
//! still read to its end), noticing truncation, and the start position. Does not own: deciding
//! which files to tail (the tailer) or where records go; the header and multi-line state it
//! keeps for the tailer (any [`LineState`]: this file knows nothing of `process`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::OwnedSemaphorePermit;

use md5::{Digest, Md5};

use super::fingerprint::{self, Candidate, Fingerprint, Likeness, FINGERPRINT_BYTES};
use super::read_at::read_full_at;
use super::splitter::LineSplitter;
use crate::checkpoint::FileInfo;
use crate::record::{FileId, FileRef, Piece};

/// Bytes read per `read` call. Large blocks keep syscalls per record low; records are slices of
/// these blocks, so a block lives until the last of its records is sent.
pub const READ_BLOCK: usize = 64 * 1024;
/// The smallest read: what a read finds past the last known size (often nothing).
const MIN_READ_BLOCK: usize = 4 * 1024;

/// Bytes just before the read position that each read reads again and compares with what was
/// there: a file truncated and written past the old size between two reads does not show in
/// its size (the Java agent's known gap), but almost surely in these bytes (the end of the
/// last line read, with its time stamp or counter). One read call does both, so a read of a
/// growing file is one system call.
const CHECK_BYTES: usize = 128;

/// How far back from the end `END_OF_FILE` looks for the last line boundary (the largest record).
const END_OF_FILE_LOOKBACK: u64 = 1024 * 1024;

/// What one read found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReadOutcome {
    pub bytes: u64,
    /// Nothing more to read right now (a read came back short).
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
    /// The first bytes of the content before the truncation; empty when they were not kept
    /// (the file was closed for the descriptor budget): then `fingerprint` tells.
    pub head: Vec<u8>,
    /// The fingerprint of those first bytes.
    pub fingerprint: Fingerprint,
}

impl Truncation {
    /// How `candidate` compares with the content before the truncation.
    pub fn likeness(&self, candidate: &mut Candidate) -> Likeness {
        fingerprint::likeness(&self.head, &self.fingerprint, candidate)
    }
}

/// The header skipping and multi-line state a tailed file keeps for the tailer (`L` of
/// [`TailedFile`]; the tailer's is `process::FileLines`): what the file asks of it before it
/// lets its reading state go.
pub trait LineState {
    /// True while a multi-line record waits for its end.
    fn is_open(&self) -> bool;
    /// Whether the header lines were all dropped (or there were none to drop).
    fn headers_done(&self) -> bool;
}

/// A tailed file. What every tracked file keeps is small (its name, identity, size, offset
/// and fingerprint); the reading state (descriptor, line splitter, partial line, the bytes
/// before the read position, the first bytes) lives in [`Reading`] while the file is open,
/// and is let go of when it is closed at a line boundary, so 100,000 tracked files mostly
/// closed cost little memory.
#[derive(Debug)]
pub struct TailedFile<L> {
    pub file_ref: FileRef,
    pub id: FileId,
    /// The name it was last seen under.
    pub path: Arc<Path>,
    /// Last known size: from the last look ([`TailedFile::refresh_info`]) or the end the last
    /// read found, whichever is later.
    pub size: u64,
    /// Last known modification time, ms since the epoch (from the last look).
    pub mtime_ms: i64,
    /// Content check of the first bytes; grows with the file up to its full length.
    pub fingerprint: Fingerprint,
    /// Not matched by the last scan (deleted, moved away, renamed out of the pattern): read to
    /// the end through the open handle, then let go.
    pub gone: bool,
    /// The last read stopped before the end (its budget ran out): read it again without
    /// waiting for an event.
    pub more: bool,
    /// Its name no longer leads to it and it was given the name it has now (or, deleted, a
    /// name of its own), so its checkpoint row is not overwritten by the file that takes its
    /// old name.
    pub renamed_away: bool,
    /// Read since the tailer last gave the acknowledgement tracker its [`TailedFile::info`].
    pub unobserved: bool,
    /// Closed ([`TailedFile::close`]) and changed since (a write event, a new size or
    /// modification time in a listing, gone from the listing): to be opened again and read.
    pub pending: bool,
    /// Opened again and found to hold other content than when it was closed (same device and
    /// inode, other first bytes, or other bytes before the read position): the next read
    /// starts it again from 0, as a truncation.
    replaced: bool,
    /// The reading state: while open, and while closed with something in it that cannot be
    /// made again (a partial line, an oversize line being cut, header or multi-line state).
    reading: Option<Box<Reading<L>>>,
    /// Without `reading`: where reading goes on.
    parked_offset: u64,
    /// Without `reading`: the digest of the bytes just before `parked_offset` (the last
    /// `parked_check_len` of them, at most [`CHECK_BYTES`]), checked when the file is opened
    /// again. The first 7 bytes of their MD5 (other bytes pass for them once in 2^56): with
    /// the length, 8 bytes, which keeps a tracked file at 104 bytes (100,000 files were 13.6
    /// MB at 136 bytes).
    parked_check: [u8; PARKED_CHECK_BYTES],
    parked_check_len: u8,
}

/// See [`TailedFile::parked_check`].
const PARKED_CHECK_BYTES: usize = 7;

/// The digest kept of the bytes before a closed file's read position.
fn parked_digest(bytes: &[u8]) -> [u8; PARKED_CHECK_BYTES] {
    let mut d = [0; PARKED_CHECK_BYTES];
    d.copy_from_slice(&Md5::digest(bytes)[..PARKED_CHECK_BYTES]);
    d
}

/// What reading a file needs besides what every tracked file keeps.
#[derive(Debug)]
struct Reading<L> {
    /// The open descriptor; None while closed to stay within the descriptor budget.
    file: Option<File>,
    /// The budget's permit for `file` (None for a file opened outside the budget).
    permit: Option<OwnedSemaphorePermit>,
    splitter: LineSplitter,
    /// Header skipping and multi-line state (set by the tailer).
    lines: Option<L>,
    /// Read but not yet split into records (a partial line).
    buf: BytesMut,
    /// The file's bytes just before the read position (`offset + buf.len()`), the last
    /// `check_len` of them: what the next read expects to find there again.
    check: [u8; CHECK_BYTES],
    check_len: usize,
    /// The first bytes themselves (at most `FINGERPRINT_BYTES`), to recognise copies; empty
    /// after a reopen that found other content (the old fingerprint tells until the restart).
    head: Vec<u8>,
    /// When data was last read, or the file opened (a multi-line record is flushed once the
    /// file is quiet; the files quiet the longest are closed first). Here rather than in
    /// every tracked file: only an open file or one with state is asked.
    last_data: tokio::time::Instant,
}

impl<L: LineState> TailedFile<L> {
    /// Opens `path` and positions it at `start` (clamped to the file's size); its lines are
    /// split with `splitter`'s limits (the flow's, see `Tailer`).
    pub fn open(
        path: &Path,
        file_ref: FileRef,
        start: StartAt,
        splitter: &LineSplitter,
    ) -> io::Result<Self> {
        TailedFile::from_handle(File::open(path)?, path, file_ref, start, splitter)
    }

    /// Like [`TailedFile::open`], for a file already open; `path` is the name shown for it
    /// (a decompressed rotation is read from an unnamed scratch file under its archive's name).
    pub fn from_handle(
        mut file: File,
        path: &Path,
        file_ref: FileRef,
        start: StartAt,
        splitter: &LineSplitter,
    ) -> io::Result<Self> {
        let meta = file.metadata()?;
        let size = meta.len();
        let head = fingerprint::head(&file, size)?;
        let offset = match start {
            StartAt::Offset(o) => o.min(size),
            StartAt::EndOfFile => last_line_boundary(&mut file, size)?,
        };
        let check_len = (offset as usize).min(CHECK_BYTES);
        let mut check = [0; CHECK_BYTES];
        file.read_exact_at(&mut check[..check_len], offset - check_len as u64)?;
        Ok(TailedFile {
            file_ref,
            id: FileId::of(&meta),
            path: path.into(),
            size,
            mtime_ms: mtime_ms(&meta),
            fingerprint: fingerprint::of_head(&head),
            gone: false,
            more: true,
            renamed_away: false,
            unobserved: false,
            pending: false,
            replaced: false,
            reading: Some(Box::new(Reading {
                file: Some(file),
                permit: None,
                splitter: splitter.restarted_at(offset),
                lines: None,
                buf: BytesMut::new(),
                check,
                check_len,
                head,
                last_data: tokio::time::Instant::now(),
            })),
            parked_offset: 0,
            parked_check: [0; PARKED_CHECK_BYTES],
            parked_check_len: 0,
        })
    }

    /// The descriptor budget's permit, given back when the file is closed.
    pub fn with_permit(mut self, permit: Option<OwnedSemaphorePermit>) -> Self {
        if let Some(r) = &mut self.reading {
            r.permit = permit;
        }
        self
    }

    /// Header skipping and multi-line state, if set.
    pub fn lines(&self) -> Option<&L> {
        self.reading.as_ref().and_then(|r| r.lines.as_ref())
    }

    /// Sets the header skipping and multi-line state (of an open file).
    pub fn set_lines(&mut self, lines: L) {
        if let Some(r) = &mut self.reading {
            r.lines = Some(lines);
        }
    }

    /// The header skipping and multi-line state, made with `make` (from the offset) if none is
    /// set; None for a closed file.
    pub fn lines_or(&mut self, make: impl FnOnce(u64) -> L) -> Option<&mut L> {
        let r = self.reading.as_mut()?;
        let offset = r.splitter.offset();
        Some(r.lines.get_or_insert_with(|| make(offset)))
    }

    /// Whether it holds a descriptor now.
    pub fn is_open(&self) -> bool {
        self.reading.as_ref().is_some_and(|r| r.file.is_some())
    }

    /// Whether it holds one of the budget's descriptors (a decompressed copy does not).
    pub fn holds_permit(&self) -> bool {
        self.reading.as_ref().is_some_and(|r| r.permit.is_some())
    }

    /// Whether its reading state is kept (open, or closed with state that cannot be made
    /// again).
    pub fn keeps_reading_state(&self) -> bool {
        self.reading.is_some()
    }

    /// When data was last read from it, or it was opened; None for a closed file with no
    /// reading state (quiet since before it was closed).
    pub fn last_data(&self) -> Option<tokio::time::Instant> {
        self.reading.as_ref().map(|r| r.last_data)
    }

    /// Data was read from it at `now` (see [`TailedFile::last_data`]).
    pub fn data_read_at(&mut self, now: tokio::time::Instant) {
        if let Some(r) = &mut self.reading {
            r.last_data = now;
        }
    }

    /// Closes the descriptor (and gives its permit back). Only for a file read to its end: what
    /// is written next is read after [`TailedFile::reopen`]. At a line boundary, with no header
    /// or multi-line state left, the reading state is let go of too.
    pub fn close(&mut self) {
        let Some(r) = &mut self.reading else {
            return;
        };
        r.file = None;
        r.permit = None;
        let offset = r.splitter.offset();
        let lines_fresh = r
            .lines
            .as_ref()
            .is_none_or(|l| !l.is_open() && (offset == 0 || l.headers_done()));
        if !r.buf.is_empty() || !r.splitter.at_line_start() || !lines_fresh {
            return;
        }
        self.parked_offset = offset;
        self.parked_check = parked_digest(&r.check[..r.check_len]);
        self.parked_check_len = r.check_len as u8;
        self.reading = None;
    }

    /// Opens the file again by its name, with `permit`; `template` gives the line splitter's
    /// limits when the reading state was let go of. The name must still lead to the same
    /// device and inode, holding the same first bytes; otherwise the descriptor is not kept
    /// and the file stays closed ([`Reopened::Elsewhere`]). Same inode, other first bytes or
    /// other bytes before the read position (the file was deleted and its inode reused, or
    /// rewritten in place): kept, and the next read reads it from 0 as a truncated file
    /// ([`Reopened::Replaced`]).
    pub fn reopen(
        &mut self,
        permit: Option<OwnedSemaphorePermit>,
        template: &LineSplitter,
    ) -> io::Result<Reopened> {
        let file = File::open(&self.path)?;
        let meta = file.metadata()?;
        if FileId::of(&meta) != self.id {
            return Ok(Reopened::Elsewhere);
        }
        let head = fingerprint::head(&file, meta.len())?;
        // An empty file's fingerprint says nothing; kept first bytes may be a prefix of the
        // new ones (the file grew).
        let mut same = self.fingerprint.covered() == 0
            || self.likeness(&mut Candidate::new(&head)) != Likeness::Different;
        let mut reading = match self.reading.take() {
            Some(r) => r,
            None => {
                // Made again: the bytes before the offset must be those that were there.
                let offset = self.parked_offset;
                let check_len = self.parked_check_len as usize;
                let mut check = [0; CHECK_BYTES];
                let back = offset.saturating_sub(check_len as u64);
                let got = read_full_at(&file, &mut check[..check_len], back)?;
                same &= got == check_len && parked_digest(&check[..check_len]) == self.parked_check;
                Box::new(Reading {
                    file: None,
                    permit: None,
                    splitter: template.restarted_at(offset),
                    lines: None,
                    buf: BytesMut::new(),
                    check,
                    check_len,
                    // Other content: the old fingerprint stands for it until the restart.
                    head: if same { head } else { Vec::new() },
                    last_data: tokio::time::Instant::now(),
                })
            }
        };
        reading.file = Some(file);
        reading.permit = permit;
        self.reading = Some(reading);
        self.replaced |= !same;
        Ok(if self.replaced {
            Reopened::Replaced
        } else {
            Reopened::Same
        })
    }

    fn handle_or_closed(&self) -> io::Result<&File> {
        self.reading
            .as_ref()
            .and_then(|r| r.file.as_ref())
            .ok_or_else(closed_error)
    }

    /// What a checkpoint stores about this file.
    pub fn info(&self) -> FileInfo {
        FileInfo {
            path: self.path.clone(),
            id: self.id,
            fingerprint: self.fingerprint,
            size: self.size,
            mtime_ms: self.mtime_ms,
            read: self.offset(),
        }
    }

    /// How `candidate` compares with this file's first bytes (or, closed, their fingerprint).
    pub fn likeness(&self, candidate: &mut Candidate) -> Likeness {
        let head = self.reading.as_ref().map_or(&[][..], |r| &r.head[..]);
        fingerprint::likeness(head, &self.fingerprint, candidate)
    }

    fn refresh_head(&mut self) -> io::Result<()> {
        let head = fingerprint::head(self.handle_or_closed()?, self.size)?;
        self.fingerprint = fingerprint::of_head(&head);
        if let Some(r) = &mut self.reading {
            r.head = head;
        }
        Ok(())
    }

    /// Offset of the first byte not yet in a record.
    pub fn offset(&self) -> u64 {
        self.reading
            .as_ref()
            .map_or(self.parked_offset, |r| r.splitter.offset())
    }

    /// Bytes read and held as a partial line.
    fn held(&self) -> u64 {
        self.reading.as_ref().map_or(0, |r| r.buf.len() as u64)
    }

    /// Whether everything the file held at the last look was read. A file shorter than what
    /// was read is not: it was truncated, and the next read starts it again from 0.
    pub fn at_end(&self) -> bool {
        self.size == self.offset() + self.held()
    }

    /// Bytes in the file not yet in a record.
    pub fn behind(&self) -> u64 {
        self.size.saturating_sub(self.offset())
    }

    /// Looks at the file again (size and modification time, for its checkpoint row and status).
    pub fn refresh_info(&mut self) -> io::Result<()> {
        let Ok(file) = self.handle_or_closed() else {
            return Ok(()); // closed: nothing was read since it was last looked at
        };
        let meta = file.metadata()?;
        self.size = meta.len();
        self.mtime_ms = mtime_ms(&meta);
        Ok(())
    }

    /// Reads at most `budget` bytes and splits them; complete records go to `out`. Reads until
    /// a read comes back short (the end of the file as it is now) or the budget is spent; the
    /// first read also checks the bytes before the read position ([`CHECK_BYTES`]).
    pub fn read(&mut self, budget: usize, out: &mut Vec<Piece>) -> io::Result<ReadOutcome> {
        let mut outcome = ReadOutcome::default();
        self.handle_or_closed()?;
        if std::mem::take(&mut self.replaced) {
            return self.restart(outcome);
        }
        let Some(r) = self.reading.as_deref_mut() else {
            return Err(closed_error());
        };
        let mut pos = r.splitter.offset() + r.buf.len() as u64;
        let mut checked = false;
        let mut filled = false;
        while (outcome.bytes as usize) < budget {
            // About what the file held at the last look, so a small append neither zero-fills
            // nor pins a whole READ_BLOCK per record until it is acknowledged; whole blocks
            // once a read has come back full (the file grew past that look).
            let pending = self.size.saturating_sub(pos) as usize;
            let hint = if filled {
                READ_BLOCK
            } else {
                pending.max(MIN_READ_BLOCK)
            };
            let want = READ_BLOCK.min(budget - outcome.bytes as usize).min(hint);
            let got = if checked {
                r.read_at(pos, want)?
            } else {
                checked = true;
                match r.read_checked(pos, want)? {
                    Some(got) => got,
                    None => return self.restart(outcome),
                }
            };
            outcome.bytes += got as u64;
            pos += got as u64;
            self.size = self.size.max(pos);
            if got > 0 {
                if got < want && r.buf.len() * 2 < r.buf.capacity() {
                    // A small read (a few appended lines) into a larger block: its records
                    // get a block of their own size, and the large one is reused at once by
                    // the next read, instead of each pinning a few KiB until acknowledged.
                    r.buf = BytesMut::from(&r.buf[..]);
                }
                r.remember_check(got);
                r.splitter.split(&mut r.buf, out);
            }
            if got < want {
                outcome.at_eof = true;
                break;
            }
            filled = true;
        }
        if r.buf.is_empty() {
            // Let go of the block: its records keep what they need of it, and an idle file
            // does not hold a block (1,000 files held 8 MiB of them).
            r.buf = BytesMut::new();
        }
        if r.head.len() < FINGERPRINT_BYTES && (r.head.len() as u64) < self.size {
            self.refresh_head()?;
        }
        Ok(outcome)
    }

    /// The file was truncated: what it holds now is new data, read from 0 by the next call.
    /// A partial line held from before is dropped: its start is in the old content.
    fn restart(&mut self, mut outcome: ReadOutcome) -> io::Result<ReadOutcome> {
        let Some(r) = self.reading.as_deref_mut() else {
            return Err(closed_error());
        };
        outcome.truncated = Some(Truncation {
            records_end: r.splitter.offset(),
            head: std::mem::take(&mut r.head),
            fingerprint: self.fingerprint,
        });
        r.buf.clear();
        r.check_len = 0;
        r.splitter = r.splitter.restarted_at(0);
        self.refresh_info()?;
        self.refresh_head()?;
        Ok(outcome)
    }
}

impl<L> Reading<L> {
    /// Reads up to `want` bytes at `pos` onto the end of `buf`; returns how many came.
    fn read_at(&mut self, pos: u64, want: usize) -> io::Result<usize> {
        let Some(file) = &self.file else {
            return Err(closed_error());
        };
        let start = self.buf.len();
        self.buf.resize(start + want, 0);
        let got = read_full_at(file, &mut self.buf[start..], pos);
        self.buf.truncate(start + got.as_ref().map_or(0, |n| *n));
        got
    }

    /// Like [`Self::read_at`], reading the [`CHECK_BYTES`] before `pos` again in the same call.
    /// None when they are not there any more (the file is shorter than `pos`, or holds other
    /// bytes there: truncated, perhaps written again past `pos`).
    fn read_checked(&mut self, pos: u64, want: usize) -> io::Result<Option<usize>> {
        let back = self.check_len;
        let held = self.buf.len();
        // The check bytes are read into `buf` just before the new data: over the end of a
        // partial line held (the same bytes, if the file is unchanged), or after it, to be cut
        // out again.
        let at = held.saturating_sub(back);
        let reuses = held >= back;
        let room = if reuses { held } else { held + back };
        let mut expected = [0; CHECK_BYTES];
        expected[..back].copy_from_slice(&self.check[..back]);
        self.buf.resize(room + want, 0);
        let check_from = if reuses { at } else { held };
        let Some(file) = &self.file else {
            self.buf.truncate(held);
            return Err(closed_error());
        };
        let got = match read_full_at(file, &mut self.buf[check_from..], pos - back as u64) {
            Ok(n) => n,
            Err(e) => {
                self.buf.truncate(held);
                return Err(e);
            }
        };
        if got < back || self.buf[check_from..check_from + back] != expected[..back] {
            self.buf.truncate(held);
            return Ok(None);
        }
        let new = got - back;
        if reuses {
            self.buf.truncate(held + new);
        } else if held == 0 {
            self.buf.truncate(back + new);
            bytes::Buf::advance(&mut self.buf, back);
        } else {
            self.buf.copy_within(held + back..held + back + new, held);
            self.buf.truncate(held + new);
        }
        Ok(Some(new))
    }

    /// Moves the check bytes past the `got` bytes just read (the end of `buf`): the last
    /// [`CHECK_BYTES`] of the old check bytes followed by the new ones.
    fn remember_check(&mut self, got: usize) {
        let new = &self.buf[self.buf.len() - got..];
        if got >= CHECK_BYTES {
            self.check.copy_from_slice(&new[got - CHECK_BYTES..]);
            self.check_len = CHECK_BYTES;
        } else {
            let keep = self.check_len.min(CHECK_BYTES - got);
            self.check
                .copy_within(self.check_len - keep..self.check_len, 0);
            self.check[keep..keep + got].copy_from_slice(new);
            self.check_len = keep + got;
        }
    }
}

/// What reading a file closed for the descriptor budget gives.
fn closed_error() -> io::Error {
    io::Error::other("the file is closed (descriptor budget)")
}

/// What [`TailedFile::reopen`] found under the file's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reopened {
    /// The same file: open again.
    Same,
    /// The same device and inode with other content: open again, read from 0 next.
    Replaced,
    /// Another file, or a directory: the file was renamed or deleted while closed.
    Elsewhere,
}

/// Where a newly tracked file starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Offset(u64),
    /// Just after the last complete line, so a partial last line is sent once completed
    /// (Java `END_OF_FILE`).
    EndOfFile,
}

pub use crate::discovery::mtime_ms;

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

    /// These tests keep no header or multi-line state.
    type TailedFile = super::TailedFile<()>;

    #[test]
    fn a_tracked_file_costs_104_bytes_besides_its_name() {
        // 100,000 tracked files are 100,000 of these (README, "Benchmark"); the lines state
        // is behind the reading state's box, so its type does not count.
        assert_eq!(std::mem::size_of::<TailedFile>(), 104);
        assert_eq!(
            std::mem::size_of::<super::TailedFile<crate::process::FileLines>>(),
            104
        );
    }

    impl LineState for () {
        fn is_open(&self) -> bool {
            false
        }
        fn headers_done(&self) -> bool {
            true
        }
    }

    /// A splitter of records up to `max` bytes, cut ones ending in a newline.
    fn splitter(max: usize) -> LineSplitter {
        LineSplitter::new(max, b"\n", 0)
    }

    fn read_all(f: &mut TailedFile) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        f.read(usize::MAX, &mut out).expect("read");
        out.into_iter()
            .map(|p| (String::from_utf8_lossy(&p.data).into_owned(), p.end_offset))
            .collect()
    }

    #[test]
    fn a_closed_file_is_reopened_only_when_its_name_still_leads_to_the_same_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        std::fs::write(&path, "one\n").expect("write");
        let template = splitter(100);
        let mut f =
            TailedFile::open(&path, FileRef(0), StartAt::Offset(0), &splitter(100)).expect("open");
        assert_eq!(read_all(&mut f), vec![("one\n".into(), 4)]);
        f.close();
        assert!(!f.is_open());
        assert!(
            !f.keeps_reading_state(),
            "closed at a line boundary: state let go of"
        );
        assert_eq!(f.offset(), 4);
        let mut out = Vec::new();
        assert!(f.read(1024, &mut out).is_err(), "a closed file is not read");

        // Appended while closed: the same file, read on from where it stopped.
        let mut w = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        w.write_all(b"two\n").expect("write");
        assert_eq!(f.reopen(None, &template).expect("reopen"), Reopened::Same);
        assert_eq!(read_all(&mut f), vec![("two\n".into(), 8)]);

        // Rewritten in place while closed (same inode, other first bytes): read from 0.
        f.close();
        std::fs::write(&path, "other content\n").expect("rewrite");
        assert_eq!(
            f.reopen(None, &template).expect("reopen"),
            Reopened::Replaced
        );
        let mut out = Vec::new();
        let outcome = f.read(1024, &mut out).expect("read");
        assert!(outcome.truncated.is_some(), "{outcome:?}");
        assert_eq!(read_all(&mut f), vec![("other content\n".into(), 14)]);

        // Another file under its name (rotated while closed): not opened.
        f.close();
        std::fs::rename(&path, dir.path().join("a.log.1")).expect("rename");
        std::fs::write(&path, "new file\n").expect("write");
        assert_eq!(
            f.reopen(None, &template).expect("reopen"),
            Reopened::Elsewhere
        );
        assert!(!f.is_open());
    }

    #[test]
    fn a_closed_file_keeps_a_partial_line_and_notices_other_bytes_before_its_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        let template = splitter(100);
        std::fs::write(&path, "header\nline 1\npart").expect("write");
        let mut f =
            TailedFile::open(&path, FileRef(0), StartAt::Offset(0), &splitter(100)).expect("open");
        assert_eq!(read_all(&mut f).len(), 2);
        f.close();
        assert!(
            f.keeps_reading_state(),
            "a partial line is kept while closed"
        );
        append(&path, b"ial\n");
        assert_eq!(f.reopen(None, &template).expect("reopen"), Reopened::Same);
        assert_eq!(read_all(&mut f), vec![("partial\n".into(), 22)]);

        // Closed at a line boundary, then rewritten with the same first bytes but other bytes
        // just before the offset (and past it): read again from 0.
        f.close();
        assert!(!f.keeps_reading_state());
        std::fs::write(&path, "header\nline X\npartial\nmore\n").expect("rewrite");
        assert_eq!(
            f.reopen(None, &template).expect("reopen"),
            Reopened::Replaced
        );
        let mut out = Vec::new();
        let outcome = f.read(1024, &mut out).expect("read");
        let truncation = outcome.truncated.expect("read as truncated");
        assert_eq!(truncation.records_end, 22);
        assert!(truncation.head.is_empty(), "not kept while closed");
        let mut copy = Candidate::new(b"header\nline 1\npartial\n");
        assert_eq!(
            truncation.likeness(&mut copy),
            Likeness::Same,
            "known by its fingerprint"
        );
        assert_eq!(read_all(&mut f).len(), 4);
    }

    #[test]
    fn a_file_truncated_and_written_shorter_is_not_at_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        std::fs::write(&path, "a long first line\n").expect("write");
        let mut f =
            TailedFile::open(&path, FileRef(0), StartAt::Offset(0), &splitter(100)).expect("open");
        assert_eq!(read_all(&mut f).len(), 1);
        assert!(f.at_end());
        std::fs::write(&path, "short\n").expect("truncate and write");
        f.refresh_info().expect("look");
        assert!(
            !f.at_end(),
            "its new lines are still to be read (not to be closed)"
        );
    }

    #[test]
    fn end_of_file_starts_after_the_last_complete_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        std::fs::write(&path, "old1\nold2\npart").expect("write");
        let mut f =
            TailedFile::open(&path, FileRef(0), StartAt::EndOfFile, &splitter(100)).expect("open");
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
            TailedFile::open(&path, FileRef(0), StartAt::Offset(0), &splitter(100)).expect("open");
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
            TailedFile::open(&path, FileRef(0), StartAt::Offset(0), &splitter(100)).expect("open");
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
            TailedFile::open(&path, FileRef(0), StartAt::Offset(0), &splitter(100)).expect("open");
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

    fn append(path: &Path, data: &[u8]) {
        let mut w = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .expect("open");
        w.write_all(data).expect("write");
    }

    /// Truncated and written again past the old size, with the reader holding a partial line of
    /// each length around the check window: the first read after it always sees it.
    #[test]
    fn regrowth_is_seen_whatever_partial_line_is_held() {
        for partial in [0, 1, 50, CHECK_BYTES - 1, CHECK_BYTES, CHECK_BYTES + 70] {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("a.log");
            let old: String = (0..40).map(|i| format!("old line {i:04}\n")).collect();
            let old = format!("{old}{}", "p".repeat(partial));
            std::fs::write(&path, &old).expect("write");
            let mut f = TailedFile::open(&path, FileRef(0), StartAt::Offset(0), &splitter(1000))
                .expect("open");
            assert_eq!(read_all(&mut f).len(), 40, "partial {partial}");
            // Unchanged, then appended: read on, the held partial line completed.
            append(&path, b"q\n");
            let got = read_all(&mut f);
            assert_eq!(got.len(), 1, "partial {partial}");
            assert_eq!(got[0].0, format!("{}q\n", "p".repeat(partial)));
            let end = got[0].1;
            append(&path, "r".repeat(partial).as_bytes());
            assert!(read_all(&mut f).is_empty());
            let new: String = (0..60).map(|i| format!("new line {i:04}\n")).collect();
            std::fs::write(&path, &new).expect("replace");
            let mut out = Vec::new();
            let outcome = f.read(usize::MAX, &mut out).expect("read");
            assert_eq!(
                outcome.truncated.map(|t| t.records_end),
                Some(end),
                "partial {partial}"
            );
            assert!(out.is_empty());
            let again = read_all(&mut f);
            assert_eq!(again.len(), 60, "partial {partial}");
            assert_eq!(again[0].0, "new line 0000\n");
        }
    }

    #[test]
    fn a_file_opened_past_its_start_checks_the_bytes_before_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        std::fs::write(&path, "2026-01-01 one\n2026-01-01 two\n").expect("write");
        let mut f =
            TailedFile::open(&path, FileRef(0), StartAt::Offset(15), &splitter(100)).expect("open");
        std::fs::write(&path, "2026-01-02 other content, longer\n").expect("replace");
        let mut out = Vec::new();
        let outcome = f.read(usize::MAX, &mut out).expect("read");
        assert_eq!(outcome.truncated.map(|t| t.records_end), Some(15));
        assert!(out.is_empty());
    }

    /// A file that grew far past the last look is read to its end in one call, in whole
    /// blocks, with every line in order.
    #[test]
    fn growth_past_the_last_look_is_read_in_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        std::fs::write(&path, "first\n").expect("write");
        let mut f =
            TailedFile::open(&path, FileRef(0), StartAt::Offset(0), &splitter(100)).expect("open");
        assert_eq!(read_all(&mut f).len(), 1);
        let lines: String = (0..50_000).map(|i| format!("line {i:06}\n")).collect();
        append(&path, lines.as_bytes());
        let mut out = Vec::new();
        let outcome = f.read(usize::MAX, &mut out).expect("read");
        assert!(outcome.at_eof);
        assert_eq!(outcome.bytes, lines.len() as u64);
        assert_eq!(out.len(), 50_000);
        assert_eq!(&out[49_999].data[..], b"line 049999\n");
        assert_eq!(f.size, 6 + lines.len() as u64);
    }
}
