//! `skipHeaderLines` and `fileFooterPattern`: lines and records a flow does not send.
//!
//! Owns: which lines at the start of a file are headers, and which records are footers. Does
//! not own: counting in metrics or checkpointing past what was dropped (the caller's).
//!
//! Headers (Java `AbstractParser.skipHeaderLines`): the first N `\n`-terminated lines of a file
//! read from offset 0 (first file, each later file, after truncation) are dropped, also with a
//! multi-line pattern (the skipper sits before the multi-line splitter). A file read from a
//! checkpoint or from its end skips nothing. A file shorter than N lines has its lines skipped as
//! they arrive until N are reached.
//!
//! Footers: a record whose text, decoded and `trim()`med, fully matches the pattern is dropped
//! and counted. The Java agent also stops parsing at the footer and discards the rest of the
//! read chunk, then re-attaches to the file where its reads had got to, so whatever followed the
//! footer in the same chunk is lost and what is appended later is read. Here reading simply goes
//! on: nothing after a footer is lost.

use regex::Regex;

use super::pattern::{compile, Anchoring};
use super::text::{decode, java_trim};
use crate::record::Piece;

/// Header lines still to skip in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSkipper {
    remaining: usize,
}

impl HeaderSkipper {
    /// For a file whose reading starts at `start_offset`: headers are skipped only from 0.
    pub fn new(skip_header_lines: usize, start_offset: u64) -> Self {
        let remaining = if start_offset == 0 {
            skip_header_lines
        } else {
            0
        };
        HeaderSkipper { remaining }
    }

    /// Every header line was dropped (or there were none to drop).
    pub fn done(&self) -> bool {
        self.remaining == 0
    }

    /// Counts the next complete line of the file; true when it is a header line to drop.
    pub fn skip_line(&mut self) -> bool {
        if self.remaining == 0 {
            return false;
        }
        self.remaining -= 1;
        true
    }

    /// Drops the header lines from the front of `lines` (the next lines of the file, in order);
    /// returns how many were dropped.
    pub fn retain(&mut self, lines: &mut Vec<Piece>) -> usize {
        let n = self.remaining.min(lines.len());
        lines.drain(..n);
        self.remaining -= n;
        n
    }

    /// Header lines not seen yet.
    pub fn remaining(&self) -> usize {
        self.remaining
    }
}

/// A compiled `fileFooterPattern`.
#[derive(Debug, Clone)]
pub struct FooterPattern {
    regex: Regex,
}

impl FooterPattern {
    pub fn new(pattern: &str) -> Result<Self, String> {
        let regex =
            compile(pattern, Anchoring::Full).map_err(|e| format!("fileFooterPattern: {e}"))?;
        Ok(FooterPattern { regex })
    }

    /// True when the raw record is a footer.
    pub fn is_footer(&self, record: &[u8]) -> bool {
        self.regex.is_match(java_trim(&decode(record)))
    }

    /// Drops the footer records from `records`; returns how many were dropped.
    pub fn retain(&self, records: &mut Vec<Piece>) -> usize {
        let before = records.len();
        records.retain(|r| !self.is_footer(&r.data));
        before - records.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn lines(texts: &[&'static str]) -> Vec<Piece> {
        let mut end = 0;
        texts
            .iter()
            .map(|t| {
                end += t.len() as u64;
                Piece {
                    data: Bytes::from_static(t.as_bytes()),
                    end_offset: end,
                    truncated: false,
                }
            })
            .collect()
    }

    #[test]
    fn headers_only_from_offset_zero_and_across_reads() {
        let mut skipper = HeaderSkipper::new(3, 0);
        let mut first = lines(&["h1\n", "h2\n"]);
        assert_eq!(skipper.retain(&mut first), 2);
        assert!(first.is_empty());
        let mut second = lines(&["h3\n", "a\n", "b\n"]);
        assert_eq!(skipper.retain(&mut second), 1);
        assert_eq!(second.len(), 2);
        assert_eq!(&second[0].data[..], b"a\n");
        assert_eq!(skipper.remaining(), 0);

        let mut resumed = HeaderSkipper::new(3, 120);
        assert!(!resumed.skip_line());
        let mut one = HeaderSkipper::new(1, 0);
        assert!(one.skip_line());
        assert!(!one.skip_line());
    }

    #[test]
    fn footer_matches_the_trimmed_record_fully() {
        let footer = FooterPattern::new("END OF FILE").unwrap();
        assert!(footer.is_footer(b"  END OF FILE\r\n"));
        assert!(!footer.is_footer(b"END OF FILE!\n"));
        let mut records = lines(&["a\n", "END OF FILE\n", "b\n"]);
        assert_eq!(footer.retain(&mut records), 1);
        assert_eq!(records.len(), 2);
    }
}
