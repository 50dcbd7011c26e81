//! One flow's record building, assembled from the parts of this module in the Java agent's
//! order: lines → header skipping → multi-line grouping (per file) → footer → converters
//! (per flow).
//!
//! Owns: [`FlowRecords`] (what a flow's configuration asks for, built once) and [`FileLines`]
//! (the per-file state: header lines left to skip, the open multi-line record).

use std::sync::Arc;

use bytes::Bytes;

use super::{Chain, Ec2MetadataSource, FooterPattern, HeaderSkipper, MultiLineSplitter, Outcome};
use crate::config::FlowPlan;
use crate::record::Piece;

/// Per-file state.
#[derive(Debug)]
pub struct FileLines {
    header: HeaderSkipper,
    multi: Option<MultiLineSplitter>,
}

impl FileLines {
    /// Groups the next lines of the file; returns complete records and the number of header
    /// lines dropped.
    pub fn push(&mut self, mut lines: Vec<Piece>) -> (Vec<Piece>, usize) {
        let headers = self.header.retain(&mut lines);
        match &mut self.multi {
            None => (lines, headers),
            Some(multi) => {
                let mut out = Vec::new();
                for line in lines {
                    multi.push(line, &mut out);
                }
                (out, headers)
            }
        }
    }

    /// The open multi-line record, if any (the file went quiet, or is let go).
    pub fn flush(&mut self) -> Vec<Piece> {
        let mut out = Vec::new();
        if let Some(multi) = &mut self.multi {
            multi.flush_idle(&mut out);
        }
        out
    }

    /// True while a multi-line record waits for its end.
    pub fn is_open(&self) -> bool {
        self.multi.as_ref().is_some_and(|m| m.is_open())
    }

    /// Whether the header lines were all dropped (or there were none to drop).
    pub fn headers_done(&self) -> bool {
        self.header.done()
    }
}

/// What happened to a set of records in [`FlowRecords::finish`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Finished {
    /// (data to send, raw end offset, truncated).
    pub records: Vec<(Bytes, u64, bool)>,
    /// Converted by the chain.
    pub transformed: u64,
    /// Dropped by a converter (LOGTOJSON without a match) or as a footer.
    pub skipped: u64,
    /// A converter failed: the raw record was sent instead. The first message is kept.
    pub errors: u64,
    pub first_error: Option<String>,
}

/// A flow's record building.
#[derive(Debug)]
pub struct FlowRecords {
    skip_header_lines: usize,
    multi: Option<MultiLineSplitter>,
    footer: Option<FooterPattern>,
    chain: Arc<Chain>,
}

impl FlowRecords {
    /// From the flow's plan; `ec2` is needed when the converters include ADDEC2METADATA.
    pub fn new(
        flow: &FlowPlan,
        max_record: usize,
        ec2: Option<Arc<dyn Ec2MetadataSource>>,
    ) -> Result<FlowRecords, String> {
        let terminator = &flow.truncated_record_terminator;
        let multi = flow
            .multi_line_start_pattern
            .as_deref()
            .map(|p| MultiLineSplitter::new(p, max_record, terminator))
            .transpose()?;
        let footer = flow
            .file_footer_pattern
            .as_deref()
            .map(FooterPattern::new)
            .transpose()?;
        let chain = Arc::new(Chain::new(&flow.processing, ec2)?);
        Ok(FlowRecords {
            skip_header_lines: flow.skip_header_lines,
            multi,
            footer,
            chain,
        })
    }

    /// State for a file whose reading starts at `start_offset` (headers skip only from 0).
    pub fn for_file(&self, start_offset: u64) -> FileLines {
        FileLines {
            header: HeaderSkipper::new(self.skip_header_lines, start_offset),
            multi: self.multi.as_ref().map(MultiLineSplitter::restarted),
        }
    }

    /// True when lines may be held (multi-line): the caller flushes quiet files.
    pub fn groups_lines(&self) -> bool {
        self.multi.is_some()
    }

    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// Drops footers and runs the converters, as the Java agent: a converter error sends the
    /// raw record; a skipped record is dropped. Offsets stay those of the raw bytes.
    pub fn finish(&self, pieces: Vec<Piece>) -> Finished {
        let mut done = Finished::default();
        for piece in pieces {
            if self
                .footer
                .as_ref()
                .is_some_and(|f| f.is_footer(&piece.data))
            {
                done.skipped += 1;
                continue;
            }
            if self.chain.is_empty() {
                done.records
                    .push((piece.data, piece.end_offset, piece.truncated));
                continue;
            }
            match self.chain.apply(&piece.data) {
                Ok(Outcome::Converted(data)) => {
                    done.transformed += 1;
                    done.records.push((data, piece.end_offset, piece.truncated));
                }
                Ok(Outcome::Skipped) => done.skipped += 1,
                Err(e) => {
                    done.errors += 1;
                    done.first_error.get_or_insert(e.message);
                    done.records
                        .push((piece.data, piece.end_offset, piece.truncated));
                }
            }
        }
        done
    }
}
