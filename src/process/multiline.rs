//! Groups lines into multi-line records by `multiLineStartPattern`. No IO, no clock.
//!
//! Owns: record boundaries between the lines a [`LineSplitter`] cut, the record held open while
//! its continuation lines may still come, and oversize records. Does not own: reading, line
//! splitting, timing (the caller decides when the file has gone quiet).
//!
//! A record is a line that matches the pattern as a prefix (Java `lookingAt()` on the decoded
//! line, `\n` included) plus the lines after it that do not. Lines before the first start line
//! of a file form a record of their own, as in Java (its first line always belongs to the
//! current record).
//!
//! Unlike the Java agent, which emits the accumulated lines as a complete record whenever a read
//! reaches the end of the available data (so a record whose continuation lines are written a
//! moment later is split in two), an open record is emitted only when the next start line
//! arrives, when the caller calls [`MultiLineSplitter::flush_idle`] after the file has been
//! quiet for a while ([`DEFAULT_MULTI_LINE_FLUSH_INTERVAL`]), or at the end of a file.
//!
//! A record that grows past the record limit is cut as [`LineSplitter`] cuts a line: its first
//! `max_record - terminator.len()` bytes plus the terminator. The rest of the record (up to the
//! next start line) is dropped, and the cut record is still held until the record ends, so that
//! its end offset covers the dropped lines and a checkpoint never points inside a record.
//!
//! [`LineSplitter`]: crate::tail::splitter::LineSplitter

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use regex::Regex;

use super::pattern::{compile, Anchoring};
use super::text::decode;
use crate::record::Piece;

/// Suggested quiet time after which an open multi-line record is emitted. The Java agent in
/// effect used its poll interval (100 ms, `minTimeBetweenFilePollsMillis`), which splits records
/// written in a few steps. A logger writes one event in one or a few `write` calls microseconds
/// apart, so one second absorbs scheduling and disk hiccups ten times over Java's window, while
/// adding little to the batching delay (`maxBufferAgeMillis`: 60 s by default, at least 1 s).
/// Filebeat and Fluent Bit wait longer (about 5 s), trading latency for patience.
pub const DEFAULT_MULTI_LINE_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Multi-line grouping state for one file.
#[derive(Debug)]
pub struct MultiLineSplitter {
    start: Regex,
    /// Max bytes of one record, terminator included.
    max_record: usize,
    /// Written at the end of a cut record (`truncatedRecordTerminator`).
    terminator: Bytes,
    open: Open,
}

/// The record being built.
#[derive(Debug, Default)]
enum Open {
    #[default]
    None,
    /// One line so far, kept as the splitter's zero-copy slice.
    One(Piece),
    /// Several lines, copied together.
    Many {
        data: BytesMut,
        end_offset: u64,
        truncated: bool,
        /// Cut at the limit: later lines of this record only move `end_offset`.
        cut: bool,
    },
}

impl MultiLineSplitter {
    /// `terminator` must be shorter than `max_record` (the config checks it).
    pub fn new(start_pattern: &str, max_record: usize, terminator: &[u8]) -> Result<Self, String> {
        debug_assert!(terminator.len() < max_record);
        let start = compile(start_pattern, Anchoring::Prefix)
            .map_err(|e| format!("multiLineStartPattern: {e}"))?;
        Ok(MultiLineSplitter {
            start,
            max_record,
            terminator: Bytes::copy_from_slice(terminator),
            open: Open::None,
        })
    }

    /// A fresh splitter with the same pattern and limits (after truncation or for another file).
    pub fn restarted(&self) -> Self {
        MultiLineSplitter {
            start: self.start.clone(),
            max_record: self.max_record,
            terminator: self.terminator.clone(),
            open: Open::None,
        }
    }

    /// Takes the next complete line of the file (as [`LineSplitter`] cut it, in file order);
    /// a record that this line ends is pushed to `out`.
    ///
    /// [`LineSplitter`]: crate::tail::splitter::LineSplitter
    pub fn push(&mut self, line: Piece, out: &mut Vec<Piece>) {
        if self.is_open() && self.is_start(&line.data) {
            self.flush_idle(out);
        }
        self.open = match std::mem::take(&mut self.open) {
            Open::None => Open::One(line),
            Open::One(first) => {
                let mut data = BytesMut::with_capacity(first.data.len() + line.data.len());
                data.extend_from_slice(&first.data);
                self.append(data, first.truncated, line)
            }
            Open::Many {
                data,
                truncated,
                cut: false,
                ..
            } => self.append(data, truncated, line),
            Open::Many {
                data,
                truncated,
                cut: true,
                ..
            } => Open::Many {
                data,
                end_offset: line.end_offset,
                truncated,
                cut: true,
            },
        };
    }

    /// Emits the open record, if any: the caller calls this once the file has been quiet for
    /// the flush interval, and when it stops reading the file (end of a rotated file).
    pub fn flush_idle(&mut self, out: &mut Vec<Piece>) {
        match std::mem::take(&mut self.open) {
            Open::None => {}
            Open::One(piece) => out.push(piece),
            Open::Many {
                data,
                end_offset,
                truncated,
                ..
            } => out.push(Piece {
                data: data.freeze(),
                end_offset,
                truncated,
            }),
        }
    }

    /// True while a record is held, waiting for its end.
    pub fn is_open(&self) -> bool {
        !matches!(self.open, Open::None)
    }

    fn is_start(&self, line: &[u8]) -> bool {
        self.start.is_match(&decode(line))
    }

    /// Adds `line` to a record of several lines, cutting it at the limit.
    fn append(&self, mut data: BytesMut, truncated: bool, line: Piece) -> Open {
        let end_offset = line.end_offset;
        if data.len() + line.data.len() <= self.max_record {
            data.extend_from_slice(&line.data);
            return Open::Many {
                data,
                end_offset,
                truncated: truncated || line.truncated,
                cut: false,
            };
        }
        let keep = self.max_record - self.terminator.len();
        if data.len() < keep {
            data.extend_from_slice(&line.data[..keep - data.len()]);
        } else {
            data.truncate(keep);
        }
        data.extend_from_slice(&self.terminator);
        Open::Many {
            data,
            end_offset,
            truncated: true,
            cut: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tail::splitter::LineSplitter;
    use rand::{Rng, SeedableRng};

    /// Feeds `input` in chunks of the given sizes through a LineSplitter and the multi-line
    /// splitter; flushes at the end.
    fn group(input: &[u8], chunks: &[usize], pattern: &str, max: usize) -> Vec<Piece> {
        let mut lines = LineSplitter::new(max, b"\n", 0);
        let mut multi = MultiLineSplitter::new(pattern, max, b"\n").unwrap();
        let mut buf = BytesMut::new();
        let mut cut = Vec::new();
        let mut out = Vec::new();
        let mut pos = 0;
        for &c in chunks.iter().chain(std::iter::once(&input.len())) {
            let end = (pos + c).min(input.len());
            buf.extend_from_slice(&input[pos..end]);
            pos = end;
            lines.split(&mut buf, &mut cut);
            for line in cut.drain(..) {
                multi.push(line, &mut out);
            }
        }
        multi.flush_idle(&mut out);
        out
    }

    fn texts(records: &[Piece]) -> Vec<(String, u64)> {
        records
            .iter()
            .map(|p| (String::from_utf8_lossy(&p.data).into_owned(), p.end_offset))
            .collect()
    }

    #[test]
    fn start_lines_open_records_and_earlier_lines_are_a_record() {
        let input = b"junk\nmore\nS1\n a\n b\nS2\nS3\n c\n";
        let out = group(input, &[], "S", 100);
        assert_eq!(
            texts(&out),
            [
                ("junk\nmore\n".to_string(), 10),
                ("S1\n a\n b\n".to_string(), 19),
                ("S2\n".to_string(), 22),
                ("S3\n c\n".to_string(), 28),
            ]
        );
    }

    #[test]
    fn open_record_waits_for_the_next_start_or_a_flush() {
        let mut m = MultiLineSplitter::new("S", 100, b"\n").unwrap();
        let mut out = Vec::new();
        let piece = |s: &'static str, end| Piece {
            data: Bytes::from_static(s.as_bytes()),
            end_offset: end,
            truncated: false,
        };
        m.push(piece("S1\n", 3), &mut out);
        m.push(piece(" a\n", 6), &mut out);
        assert!(out.is_empty());
        assert!(m.is_open());
        // A continuation written late still joins its record.
        m.push(piece(" b\n", 9), &mut out);
        m.flush_idle(&mut out);
        assert!(!m.is_open());
        assert_eq!(texts(&out), [("S1\n a\n b\n".to_string(), 9)]);
        m.flush_idle(&mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn oversize_record_is_cut_and_covers_its_dropped_lines() {
        let input = b"S 1234\n 5678\n 9abc\n defg\nS2\n";
        let out = group(input, &[], "S", 10);
        assert_eq!(
            texts(&out),
            [("S 1234\n 5\n".to_string(), 25), ("S2\n".to_string(), 28)]
        );
        assert!(out[0].truncated);
        assert!(!out[1].truncated);
    }

    #[test]
    fn java_dollar_and_line_terminators_in_the_pattern() {
        let dashes = "-".repeat(72);
        let input = format!("{dashes}\na\n{dashes}\r\nb\n");
        let out = group(input.as_bytes(), &[], "^-{72}$", 1000);
        assert_eq!(out.len(), 2);
    }

    /// A Java service log: an event line, sometimes followed by a stack trace.
    fn stack_trace_log(rng: &mut rand::rngs::StdRng, events: usize) -> (String, usize) {
        let mut log = String::new();
        let mut exceptions = 0;
        for i in 0..events {
            let level = if rng.random_bool(0.3) {
                "ERROR"
            } else {
                "INFO"
            };
            log.push_str(&format!(
                "2024-03-{:02} 12:{:02}:{:02},{:03} {level} [worker-{}] com.example.Service - event {i}\n",
                1 + i % 28,
                i % 60,
                (i * 7) % 60,
                i % 1000,
                i % 4
            ));
            if level == "ERROR" {
                exceptions += 1;
                log.push_str("java.lang.IllegalStateException: état invalide\n");
                for f in 0..rng.random_range(1..12) {
                    log.push_str(&format!(
                        "\tat com.example.Service.step{f}(Service.java:{})\n",
                        10 + f
                    ));
                }
                if rng.random_bool(0.5) {
                    log.push_str("Caused by: java.io.IOException: disk\n\tat java.io.File.read(File.java:1)\n\t... 7 more\n");
                }
            }
        }
        (log, exceptions)
    }

    #[test]
    fn one_record_per_event_whatever_the_chunking() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let pattern = r"^\d{4}-\d{2}-\d{2}";
        for round in 0..50 {
            let (log, exceptions) = stack_trace_log(&mut rng, 40);
            let whole = group(log.as_bytes(), &[], pattern, 1 << 20);
            assert_eq!(whole.len(), 40, "round {round}");
            let traces = whole
                .iter()
                .filter(|p| p.data.windows(10).any(|w| w == b"Exception:"))
                .count();
            assert_eq!(traces, exceptions);
            let joined: Vec<u8> = whole.iter().flat_map(|p| p.data.to_vec()).collect();
            assert_eq!(joined, log.as_bytes());
            // With a small limit, long traces are cut; the grouping must not depend on reads.
            for max in [1 << 20, 120] {
                let once = group(log.as_bytes(), &[], pattern, max);
                let chunked = group(
                    log.as_bytes(),
                    &random_chunks(&mut rng, log.len()),
                    pattern,
                    max,
                );
                assert_eq!(once, chunked, "round {round} max {max}");
                assert_eq!(once.len(), 40);
                assert!(once
                    .iter()
                    .all(|p| p.data.len() <= max && p.data.ends_with(b"\n")));
                assert!(once.windows(2).all(|w| w[0].end_offset < w[1].end_offset));
                assert_eq!(once.last().map(|p| p.end_offset), Some(log.len() as u64));
            }
        }
    }

    fn random_chunks(rng: &mut rand::rngs::StdRng, len: usize) -> Vec<usize> {
        let mut chunks = Vec::new();
        let mut left = len;
        while left > 0 {
            let c = rng.random_range(1..=left.min(97));
            chunks.push(c);
            left -= c;
        }
        chunks
    }
}
