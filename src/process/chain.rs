//! A flow's `dataProcessingOptions` as one converter chain (Java `AgentDataConverterChain`).
//!
//! Owns: building the converters once from the validated options, running them in order over one
//! raw record, and the outcome the caller acts on. Does not own: counting, logging or sending
//! (the caller does that with the outcome), nor fetching EC2 facts.
//!
//! Caller semantics, as the Java agent: [`Outcome::Converted`] is sent; [`Outcome::Skipped`]
//! (LOGTOJSON found no match) is dropped and counted as skipped; `Err` means the raw record is
//! sent and counted as a processing error. Checkpoints always count raw bytes.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use time::OffsetDateTime;

use super::csv::CsvToJson;
use super::ec2::{AddEc2Metadata, Ec2MetadataSource, Ec2Step};
use super::log::LogToJson;
use super::metadata::{AddMetadata, Clock};
use super::single_line::SingleLine;
use super::text::decode;
use crate::config::ProcessingOption;

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The record to send.
    Converted(Bytes),
    /// Dropped by LOGTOJSON (no match): not sent, counted as skipped.
    Skipped,
}

/// A converter failed; the caller sends the raw record and counts a processing error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionError {
    pub message: String,
}

impl std::fmt::Display for ConversionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConversionError {}

/// The Java agent's warning for a record that passed ADDEC2METADATA without facts.
pub const NO_EC2_METADATA_WARNING: &str = "Unable to append metadata, no metadata found";

#[derive(Debug)]
enum Converter {
    SingleLine(SingleLine),
    CsvToJson(CsvToJson),
    LogToJson(LogToJson),
    AddMetadata(AddMetadata),
    AddEc2Metadata(AddEc2Metadata),
    AddBrackets,
}

/// What one converter did.
enum Step {
    Written,
    Skipped,
    Unchanged,
}

impl Converter {
    /// The Java class name, for error messages (as the Java chain names the converter).
    fn java_name(&self) -> &'static str {
        match self {
            Converter::SingleLine(_) => "SingleLineDataConverter",
            Converter::CsvToJson(_) => "CSVToJSONDataConverter",
            Converter::LogToJson(_) => "LogToJSONDataConverter",
            Converter::AddMetadata(_) => "AddMetadataConverter",
            Converter::AddEc2Metadata(_) => "AddEC2MetadataConverter",
            Converter::AddBrackets => "BracketsDataConverter",
        }
    }
}

/// The converters of one flow, ready to run.
#[derive(Debug)]
pub struct Chain {
    converters: Vec<Converter>,
    clock: Clock,
    /// Records that passed ADDEC2METADATA unchanged for want of facts.
    without_ec2_metadata: AtomicU64,
    ec2_warned: AtomicBool,
}

impl Chain {
    /// Builds from the validated options; compiles every regex once. `ec2` is required when the
    /// options contain ADDEC2METADATA. `ts` of ADDMETADATA is taken from the system clock.
    pub fn new(
        options: &[ProcessingOption],
        ec2: Option<Arc<dyn Ec2MetadataSource>>,
    ) -> Result<Chain, String> {
        Chain::with_clock(options, ec2, OffsetDateTime::now_utc)
    }

    /// As [`Chain::new`], with the clock of ADDMETADATA's `ts` given.
    pub fn with_clock(
        options: &[ProcessingOption],
        ec2: Option<Arc<dyn Ec2MetadataSource>>,
        clock: Clock,
    ) -> Result<Chain, String> {
        let converters = options
            .iter()
            .map(|o| build(o, ec2.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Chain {
            converters,
            clock,
            without_ec2_metadata: AtomicU64::new(0),
            ec2_warned: AtomicBool::new(false),
        })
    }

    /// True without converters: records are sent as read (no need to call [`Chain::apply`]).
    pub fn is_empty(&self) -> bool {
        self.converters.is_empty()
    }

    /// Runs the converters in order on one raw record (with its trailing `\n`).
    pub fn apply(&self, record: &[u8]) -> Result<Outcome, ConversionError> {
        let mut current: Cow<'_, [u8]> = Cow::Borrowed(record);
        for converter in &self.converters {
            let mut out = Vec::with_capacity(current.len() + 64);
            match self.run(converter, &current, &mut out) {
                Ok(Step::Written) => current = Cow::Owned(out),
                Ok(Step::Unchanged) => {}
                Ok(Step::Skipped) => return Ok(Outcome::Skipped),
                Err(detail) => {
                    let message = format!(
                        "Unable to convert data by {}: {detail}",
                        converter.java_name()
                    );
                    return Err(ConversionError { message });
                }
            }
        }
        Ok(Outcome::Converted(Bytes::from(current.into_owned())))
    }

    /// Records that passed ADDEC2METADATA unchanged because the source had no facts.
    pub fn records_without_ec2_metadata(&self) -> u64 {
        self.without_ec2_metadata.load(Ordering::Relaxed)
    }

    /// The Java agent's warning, the first time a record passed without EC2 facts; `None`
    /// afterwards (the Java agent repeats it for every record; once is enough in a log).
    pub fn take_ec2_warning(&self) -> Option<&'static str> {
        if self.records_without_ec2_metadata() > 0 && !self.ec2_warned.swap(true, Ordering::Relaxed)
        {
            Some(NO_EC2_METADATA_WARNING)
        } else {
            None
        }
    }

    fn run(&self, converter: &Converter, input: &[u8], out: &mut Vec<u8>) -> Result<Step, String> {
        match converter {
            Converter::SingleLine(c) => c.convert(input, out),
            Converter::CsvToJson(c) => c.convert(input, &mut Vec::new(), out),
            Converter::LogToJson(c) => {
                if !c.convert(input, out) {
                    return Ok(Step::Skipped);
                }
            }
            Converter::AddMetadata(c) => c.convert(input, self.clock, out),
            Converter::AddEc2Metadata(c) => {
                if c.convert(input, out)? == Ec2Step::NoMetadata {
                    self.without_ec2_metadata.fetch_add(1, Ordering::Relaxed);
                    return Ok(Step::Unchanged);
                }
            }
            Converter::AddBrackets => add_brackets(input, out),
        }
        Ok(Step::Written)
    }
}

/// ADDBRACKETS (Java `BracketsDataConverter`): `{` + the whole record, its `\n` included, + `}`.
fn add_brackets(record: &[u8], out: &mut Vec<u8>) {
    out.push(b'{');
    out.extend_from_slice(decode(record).as_bytes());
    out.push(b'}');
}

fn build(
    option: &ProcessingOption,
    ec2: Option<&Arc<dyn Ec2MetadataSource>>,
) -> Result<Converter, String> {
    Ok(match option {
        ProcessingOption::SingleLine {
            no_trim,
            escape_new_line,
        } => Converter::SingleLine(SingleLine {
            no_trim: *no_trim,
            escape_new_line: *escape_new_line,
        }),
        ProcessingOption::CsvToJson {
            field_names,
            delimiter,
            json_format,
        } => Converter::CsvToJson(CsvToJson::new(field_names, delimiter, *json_format)?),
        ProcessingOption::LogToJson {
            log_format,
            match_pattern,
            field_names,
            json_format,
        } => Converter::LogToJson(LogToJson::new(
            *log_format,
            match_pattern.as_deref(),
            field_names.as_deref(),
            *json_format,
        )?),
        ProcessingOption::AddMetadata {
            metadata,
            timestamp,
            json_format,
        } => Converter::AddMetadata(AddMetadata {
            metadata: metadata.clone(),
            timestamp: *timestamp,
            format: *json_format,
        }),
        ProcessingOption::AddEc2Metadata { json_format, .. } => {
            let source = ec2.ok_or("ADDEC2METADATA needs an EC2 metadata source")?;
            Converter::AddEc2Metadata(AddEc2Metadata {
                source: Arc::clone(source),
                format: *json_format,
            })
        }
        ProcessingOption::AddBrackets => Converter::AddBrackets,
    })
}
