//! `dataProcessingOptions`: a flow's converter chain, validated into [`ProcessingOption`]s.
//!
//! Owns: the option names, each option's keys and defaults, and the checks the Java converters
//! make when they are built (plus two they only make per record, where every record would then be
//! lost). Does not own: running the converters.

use std::path::Path;
use std::time::Duration;

use regex::Regex;
use serde_json::{Map, Value};

use super::reader::{describe, Notes, Section};
use super::{ConfigError, JsonFormat, LogFormat, ProcessingOption};

/// `optionName` values (Java `ProcessingUtilsFactory.DataConversionOption`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OptionName {
    AddMetadata,
    AddEc2Metadata,
    SingleLine,
    CsvToJson,
    LogToJson,
    AddBrackets,
    UsingPluggin,
}

const OPTION_NAMES: &[(&str, OptionName)] = &[
    ("ADDMETADATA", OptionName::AddMetadata),
    ("ADDEC2METADATA", OptionName::AddEc2Metadata),
    ("SINGLELINE", OptionName::SingleLine),
    ("CSVTOJSON", OptionName::CsvToJson),
    ("LOGTOJSON", OptionName::LogToJson),
    ("ADDBRACKETS", OptionName::AddBrackets),
    ("USINGPLUGGIN", OptionName::UsingPluggin),
];

const JSON_FORMATS: &[(&str, JsonFormat)] = &[
    ("COMPACT", JsonFormat::Compact),
    ("PRETTYPRINT", JsonFormat::PrettyPrint),
];

const LOG_FORMATS: &[(&str, LogFormat)] = &[
    ("COMMONAPACHELOG", LogFormat::CommonApacheLog),
    ("COMBINEDAPACHELOG", LogFormat::CombinedApacheLog),
    ("APACHEERRORLOG", LogFormat::ApacheErrorLog),
    ("SYSLOG", LogFormat::Syslog),
    ("RFC3339SYSLOG", LogFormat::Rfc3339Syslog),
];

/// `SINGLELINE` `parseOptions` values (Java `SingleLineDataConverter`).
const NO_TRIM: &str = "NO_TRIM";
const ESCAPE_NEW_LINE: &str = "ESCAPE_NEW_LINE";

/// `CSVTOJSON` `delimiter` default.
const DEFAULT_CSV_DELIMITER: &str = ",";
/// `ADDEC2METADATA` `metadataTTL` default, seconds (Java: one hour).
const DEFAULT_EC2_METADATA_TTL_SECONDS: i32 = 3600;

/// Reads the items of one flow's `dataProcessingOptions`; `list_path` is the key path of the list,
/// e.g. `flows[0].dataProcessingOptions`.
pub(super) fn read_options(
    file: &Path,
    list_path: &str,
    items: &[Value],
    notes: &mut Notes,
) -> Result<Vec<ProcessingOption>, ConfigError> {
    let mut options = Vec::with_capacity(items.len());
    for (j, item) in items.iter().enumerate() {
        let name = format!("{list_path}[{j}]");
        let Value::Object(map) = item else {
            let message = format!(
                "expected an object with an optionName, got {}",
                describe(item)
            );
            return Err(ConfigError::key(file, name, message));
        };
        let mut sec = Section::new(file, name, map);
        options.push(read_option(&mut sec)?);
        sec.finish(&[], notes);
    }
    Ok(options)
}

fn read_option(sec: &mut Section) -> Result<ProcessingOption, ConfigError> {
    let option = match sec.required_enum("optionName", OPTION_NAMES)? {
        OptionName::SingleLine => {
            let mut no_trim = false;
            let mut escape_new_line = false;
            // Java ignores values it does not know; a misspelt option then silently does nothing.
            for (k, value) in sec.string_list("parseOptions")?.unwrap_or_default().iter().enumerate() {
                match value.as_str() {
                    NO_TRIM => no_trim = true,
                    ESCAPE_NEW_LINE => escape_new_line = true,
                    _ => {
                        let message = format!("expected one of {NO_TRIM}, {ESCAPE_NEW_LINE}, got {value:?}");
                        return Err(sec.error(&format!("parseOptions[{k}]"), message));
                    }
                }
            }
            ProcessingOption::SingleLine { no_trim, escape_new_line }
        }
        OptionName::CsvToJson => {
            let field_names = sec
                .string_list("customFieldNames")?
                .ok_or_else(|| sec.error("customFieldNames", "Required configuration value missing: customFieldNames"))?;
            // Java accepts an empty list and then turns every line into `{}`.
            if field_names.is_empty() {
                return Err(sec.error("customFieldNames", "expected at least one field name, got an empty list"));
            }
            // A regex, as Java's `String.split` takes it.
            let delimiter = sec.string("delimiter", DEFAULT_CSV_DELIMITER)?;
            compile(sec, "delimiter", &delimiter)?;
            let json_format = sec.enum_("jsonFormat", JSON_FORMATS, JsonFormat::Compact)?;
            ProcessingOption::CsvToJson { field_names, delimiter, json_format }
        }
        OptionName::LogToJson => {
            let LogParser { log_format, match_pattern, field_names } = read_log_parser(sec)?;
            let json_format = sec.enum_("jsonFormat", JSON_FORMATS, JsonFormat::Compact)?;
            ProcessingOption::LogToJson { log_format, match_pattern, field_names, json_format }
        }
        OptionName::AddMetadata => {
            // Java writes `"metadata": null` when the key is absent; we write `{}`, so consumers
            // always find an object there.
            let metadata = sec.value("metadata").cloned().unwrap_or_else(|| Value::Object(Map::new()));
            // Java casts `timestamp` to a string, so a JSON boolean crashes it at startup
            // (ClassCastException), and any string but "true" means false. We take the usual
            // boolean spellings, JSON booleans included, and reject anything else.
            let timestamp = sec.bool("timestamp", false)?;
            let json_format = sec.enum_("jsonFormat", JSON_FORMATS, JsonFormat::Compact)?;
            ProcessingOption::AddMetadata { metadata, timestamp, json_format }
        }
        OptionName::AddEc2Metadata => {
            // Java builds a log parser here that it never uses, so `logFormat` is required and the
            // parser keys are checked; we check them the same way and drop them.
            read_log_parser(sec)?;
            let ttl_seconds = sec.count("metadataTTL", DEFAULT_EC2_METADATA_TTL_SECONDS, 1..=i32::MAX)?;
            let json_format = sec.enum_("jsonFormat", JSON_FORMATS, JsonFormat::Compact)?;
            ProcessingOption::AddEc2Metadata { metadata_ttl: Duration::from_secs(ttl_seconds as u64), json_format }
        }
        OptionName::AddBrackets => ProcessingOption::AddBrackets,
        OptionName::UsingPluggin => {
            return Err(sec.error(
                "optionName",
                "USINGPLUGGIN loads a Java converter class, which this agent cannot do; use the built-in \
                 converters (SINGLELINE, CSVTOJSON, LOGTOJSON, ADDMETADATA, ADDEC2METADATA, ADDBRACKETS)",
            ))
        }
    };
    Ok(option)
}

/// The keys of Java's log parser (`ProcessingUtilsFactory.getLogParser`).
struct LogParser {
    log_format: LogFormat,
    match_pattern: Option<String>,
    field_names: Option<Vec<String>>,
}

/// `logFormat`, `matchPattern` and `customFieldNames`, checked as Java's `BaseLogParser`
/// constructor does.
fn read_log_parser(sec: &mut Section) -> Result<LogParser, ConfigError> {
    let log_format = sec.required_enum("logFormat", LOG_FORMATS)?;
    let match_pattern = sec.opt_string("matchPattern")?;
    let field_names = sec.string_list("customFieldNames")?;
    match (&match_pattern, &field_names) {
        (Some(pattern), Some(names)) => {
            let regex = compile(sec, "matchPattern", pattern)?;
            // Java finds this out per record and skips every one of them.
            let groups = regex.captures_len().saturating_sub(1);
            if groups != names.len() {
                let message = format!(
                    "matchPattern has {groups} capture groups but {} field names are given; \
                     every record would be skipped",
                    names.len()
                );
                return Err(sec.error("customFieldNames", message));
            }
        }
        (Some(_), None) => {
            let message = "Required configuration value missing: customFieldNames (it must be given with matchPattern)";
            return Err(sec.error("customFieldNames", message));
        }
        (None, Some(names)) => {
            let defaults = log_format.default_field_names();
            if names.len() != defaults.len() {
                let message = format!(
                    "expected {} names, to rename the fields of this logFormat ({}), got {}; \
                     give a matchPattern to extract other fields",
                    defaults.len(),
                    defaults.join(", "),
                    names.len()
                );
                return Err(sec.error("customFieldNames", message));
            }
        }
        (None, None) => {}
    }
    Ok(LogParser {
        log_format,
        match_pattern,
        field_names,
    })
}

fn compile(sec: &Section, key: &str, pattern: &str) -> Result<Regex, ConfigError> {
    Regex::new(pattern).map_err(|e| sec.error(key, format!("invalid regular expression: {e}")))
}
