//! Records as the Java agent builds them: multi-line grouping, header and footer lines, and the
//! `dataProcessingOptions` converters. Pure code: no IO, no clock of its own, no tasks.
//!
//! Owns: turning the lines a [`crate::tail::splitter::LineSplitter`] cut into the records a flow
//! sends, byte for byte as the Java agent would send them. Does not own: reading files, timers,
//! metrics, logging, or fetching EC2 metadata (each is the caller's, passed in or acted on from
//! what these functions return).
//!
//! Order for one file: lines → [`HeaderSkipper`] → [`MultiLineSplitter`] (if a start pattern is
//! set) → [`FooterPattern`] → [`Chain::apply`] per record.
//!
//! - [`chain`]: the converter chain and its outcome.
//! - [`single_line`], [`csv`], [`log`], [`metadata`], [`ec2`]: one converter each
//!   (ADDBRACKETS is three lines in [`chain`]).
//! - [`json`]: Jackson's JSON output rules.
//! - [`pattern`]: Java regex semantics on the `regex` crate.
//! - [`text`]: Java string operations (decode, trim, split).
//! - [`multiline`]: records of several lines (`multiLineStartPattern`).
//! - [`header`]: lines not sent (`skipHeaderLines`, `fileFooterPattern`).
//! - [`records`]: a flow's record building assembled from the above, in the Java order.

pub mod chain;
pub mod csv;
pub mod ec2;
pub mod header;
pub mod json;
pub mod log;
pub mod metadata;
pub mod multiline;
pub mod pattern;
pub mod records;
pub mod single_line;
pub mod text;

#[cfg(test)]
mod tests;

pub use chain::{Chain, ConversionError, Outcome, NO_EC2_METADATA_WARNING};
pub use ec2::{Ec2Metadata, Ec2MetadataSource};
pub use header::{FooterPattern, HeaderSkipper};
pub use metadata::Clock;
pub use multiline::{MultiLineSplitter, DEFAULT_MULTI_LINE_FLUSH_INTERVAL};
pub use records::{FileLines, Finished, FlowRecords};
