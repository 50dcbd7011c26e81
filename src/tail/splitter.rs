//! Splits the bytes read from a file into records, one per `\n`-terminated line. No IO.
//!
//! Owns: line boundaries, holding a trailing partial line until it is completed, and oversize
//! lines (truncated to the record limit with the terminator, the rest of the line discarded, as
//! the Java agent does). Does not own: reading, multi-line grouping or conversion.

use bytes::{Bytes, BytesMut};

use crate::record::Piece;

/// Line splitter state for one file.
#[derive(Debug)]
pub struct LineSplitter {
    /// Max bytes of one record, its `\n` included.
    max_record: usize,
    /// Firehose `aggregatedRecordSizeBytes`: whole lines are packed into one record up to this
    /// many bytes (0: one line per record). Lines are packed only within one read block, so
    /// records stay zero-copy slices.
    aggregate: usize,
    /// Written at the end of a truncated record (`truncatedRecordTerminator`).
    terminator: Bytes,
    /// Inside an oversize line: its cut record, held until the line's `\n` arrives; bytes up to
    /// there are dropped.
    cut: Option<Bytes>,
    /// File offset of `buf[0]`.
    offset: u64,
}

impl LineSplitter {
    /// `terminator` must be shorter than `max_record` (the config checks it).
    pub fn new(max_record: usize, terminator: &[u8], start_offset: u64) -> Self {
        debug_assert!(terminator.len() < max_record);
        LineSplitter {
            max_record,
            aggregate: 0,
            terminator: Bytes::copy_from_slice(terminator),
            cut: None,
            offset: start_offset,
        }
    }

    /// Packs whole lines into records of up to `bytes` (Firehose `aggregatedRecordSizeBytes`).
    pub fn aggregating(mut self, bytes: usize) -> Self {
        self.aggregate = bytes.min(self.max_record);
        self
    }

    /// A fresh splitter with the same limits, starting at `offset` (after truncation).
    pub fn restarted_at(&self, offset: u64) -> Self {
        LineSplitter {
            max_record: self.max_record,
            aggregate: self.aggregate,
            terminator: self.terminator.clone(),
            cut: None,
            offset,
        }
    }

    /// Not inside an oversize line being cut: what comes next starts a line.
    pub fn at_line_start(&self) -> bool {
        self.cut.is_none()
    }

    /// File offset of the first byte not yet turned into a record (the start of the held
    /// partial line).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Moves every complete line at the front of `buf` into `out`; what remains in `buf` is a
    /// partial line shorter than the record limit. `buf` must hold the file's bytes from
    /// [`Self::offset`] on.
    pub fn split(&mut self, buf: &mut BytesMut, out: &mut Vec<Piece>) {
        if let Some(cut) = &self.cut {
            match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    let _ = buf.split_to(i + 1);
                    self.offset += (i + 1) as u64;
                    out.push(Piece {
                        data: cut.clone(),
                        end_offset: self.offset,
                        truncated: true,
                    });
                    self.cut = None;
                }
                None => {
                    self.offset += buf.len() as u64;
                    buf.clear();
                    return;
                }
            }
        }
        if let Some(last) = memchr::memrchr(b'\n', buf) {
            let block = buf.split_to(last + 1).freeze();
            // Lines [run_start, run_end) of the block not yet emitted, packed into one record
            // when aggregation is on (each line its own record otherwise).
            let (mut run_start, mut run_end) = (0, 0);
            let mut start = 0;
            for nl in memchr::memchr_iter(b'\n', &block) {
                let end = nl + 1;
                if end - start > self.max_record {
                    self.emit_run(&block, run_start, run_end, out);
                    out.push(self.truncate(&block[start..end], self.offset + end as u64));
                    run_start = end;
                } else if run_end > run_start && end - run_start > self.aggregate {
                    self.emit_run(&block, run_start, run_end, out);
                    run_start = start;
                }
                run_end = end;
                start = end;
            }
            self.emit_run(&block, run_start, run_end, out);
            self.offset += block.len() as u64;
        }
        if buf.len() >= self.max_record {
            // Even with its `\n` still to come, this line is over the limit: keep only its cut
            // form so the buffer stays bounded, drop the rest of the line as it arrives, and emit
            // the record when the line ends, with the line's end as its offset (so a checkpoint
            // never points into the middle of a line).
            let held = buf.split().freeze();
            self.offset += held.len() as u64;
            self.cut = Some(self.truncate(&held, self.offset).data);
        }
    }

    fn emit_run(&self, block: &Bytes, start: usize, end: usize, out: &mut Vec<Piece>) {
        if end > start {
            out.push(Piece {
                data: block.slice(start..end),
                end_offset: self.offset + end as u64,
                truncated: false,
            });
        }
    }

    fn truncate(&self, line: &[u8], end_offset: u64) -> Piece {
        let keep = self.max_record - self.terminator.len();
        let mut data = BytesMut::with_capacity(self.max_record);
        data.extend_from_slice(&line[..keep]);
        data.extend_from_slice(&self.terminator);
        Piece {
            data: data.freeze(),
            end_offset,
            truncated: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn split_all(input: &[u8], chunks: &[usize], max: usize) -> (Vec<Piece>, u64, usize) {
        let mut s = LineSplitter::new(max, b"\n", 0);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut pos = 0;
        for &c in chunks {
            let end = (pos + c).min(input.len());
            buf.extend_from_slice(&input[pos..end]);
            pos = end;
            s.split(&mut buf, &mut out);
        }
        buf.extend_from_slice(&input[pos..]);
        s.split(&mut buf, &mut out);
        (out, s.offset(), buf.len())
    }

    fn texts(p: &[Piece]) -> Vec<(&[u8], u64)> {
        p.iter().map(|p| (&p.data[..], p.end_offset)).collect()
    }

    #[test]
    fn lines_keep_their_newline_and_partial_line_is_held() {
        let (out, offset, held) = split_all(b"a\n\nbc\r\npartial", &[], 100);
        assert_eq!(
            texts(&out),
            vec![(&b"a\n"[..], 2), (&b"\n"[..], 3), (&b"bc\r\n"[..], 7)]
        );
        assert_eq!(offset, 7);
        assert_eq!(held, 7);
    }

    #[test]
    fn partial_line_completed_later_is_one_record() {
        let (out, _, held) = split_all(b"hello world\n", &[3, 4], 100);
        assert_eq!(texts(&out), vec![(&b"hello world\n"[..], 12)]);
        assert_eq!(held, 0);
    }

    #[test]
    fn oversize_complete_line_is_truncated_with_terminator() {
        let mut s = LineSplitter::new(8, b"~\n", 0);
        let mut buf = BytesMut::from(&b"0123456789abc\nok\n"[..]);
        let mut out = Vec::new();
        s.split(&mut buf, &mut out);
        assert_eq!(out[0].data, Bytes::from_static(b"012345~\n"));
        assert!(out[0].truncated);
        assert_eq!(out[0].end_offset, 14);
        assert_eq!(texts(&out[1..]), vec![(&b"ok\n"[..], 17)]);
    }

    #[test]
    fn oversize_partial_line_is_cut_and_its_rest_discarded() {
        // A 10 MiB line arriving in 64 KiB pieces: one truncated record, bounded buffer, then
        // the next line is intact.
        let max = 1024 * 1024;
        let mut s = LineSplitter::new(max, b"\n", 0);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let piece = vec![b'x'; 64 * 1024];
        for _ in 0..160 {
            buf.extend_from_slice(&piece);
            s.split(&mut buf, &mut out);
            assert!(buf.len() < max);
        }
        buf.extend_from_slice(b"\nnext\n");
        s.split(&mut buf, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].data.len(), max);
        assert_eq!(out[0].data[max - 1], b'\n');
        assert_eq!(&out[1].data[..], b"next\n");
        assert_eq!(out[1].end_offset, 160 * 64 * 1024 + 6);
        assert_eq!(s.offset(), out[1].end_offset);
    }

    #[test]
    fn aggregation_packs_whole_lines_up_to_the_hint() {
        // The Java agent's AggregationSplitter cases (hint 10).
        let pack = |input: &[u8]| {
            let mut s = LineSplitter::new(100, b"\n", 0).aggregating(10);
            let mut buf = BytesMut::from(input);
            let mut out = Vec::new();
            s.split(&mut buf, &mut out);
            texts(&out)
                .into_iter()
                .map(|(d, o)| (d.to_vec(), o))
                .collect::<Vec<_>>()
        };
        assert_eq!(pack(b"AA\nBB\nCC\n"), vec![(b"AA\nBB\nCC\n".to_vec(), 9)]);
        assert_eq!(
            pack(b"AAAA\nBBBB\nCCCC\n"),
            vec![(b"AAAA\nBBBB\n".to_vec(), 10), (b"CCCC\n".to_vec(), 15)]
        );
        assert_eq!(
            pack(b"0123456789AB\n0123456789AB\n"),
            vec![
                (b"0123456789AB\n".to_vec(), 13),
                (b"0123456789AB\n".to_vec(), 26)
            ]
        );
        // A trailing partial line is not part of any record yet.
        assert_eq!(pack(b"AA\nBB"), vec![(b"AA\n".to_vec(), 3)]);
    }

    #[test]
    fn any_chunking_gives_the_same_records_and_offsets() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..200 {
            let mut input = Vec::new();
            for _ in 0..rng.random_range(0..40) {
                let len = rng.random_range(0..30);
                for _ in 0..len {
                    input.push(rng.random_range(b' '..=b'~'));
                }
                if rng.random_bool(0.1) {
                    input.push(0); // NUL bytes are data like any other
                }
                input.push(b'\n');
            }
            if round % 3 == 0 {
                input.extend_from_slice(b"tail-without-newline");
            }
            let whole = split_all(&input, &[], 16);
            let mut chunks = Vec::new();
            let mut left = input.len();
            while left > 0 {
                let c = rng.random_range(1..=left.min(20));
                chunks.push(c);
                left -= c;
            }
            let chunked = split_all(&input, &chunks, 16);
            assert_eq!(whole, chunked, "round {round}");
        }
    }
}
