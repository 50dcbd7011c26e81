//! LOGTOJSON: a log line as a JSON object (Java `LogToJSONDataConverter`, `ApacheLogParser`,
//! `SysLogParser`, `PatternConstants`).
//!
//! One trailing `\n` is stripped; the line must match the whole pattern (Java `matches()`), else
//! the record is skipped; capture group i goes under field name i. A group that did not take
//! part is `null`. With the Apache formats (also with a `matchPattern`: the parser class follows
//! `logFormat`), a value that is exactly `-` is `null`; with the syslog formats it stays `"-"`.
//!
//! The built-in patterns are the Java ones, character for character, made of the same pieces as
//! `PatternConstants`, and compiled through [`super::pattern`] so that `\w \d \s .` keep their
//! Java meaning.

use regex::Regex;

use super::json::{write_opt_str, FieldSlots, ObjectWriter};
use super::pattern::{compile, Anchoring};
use super::text::{decode, strip_newline};
use crate::config::{JsonFormat, LogFormat};

// The pieces of the Java `PatternConstants`, expanded as the Java agent expands them.
const HOST: &str = r"(?:(?:[\w\-]+)(?:\.(?:[\w\-]+))*(?:\.?|\b)|(?:[\d\.]+))";
const USER: &str = r"(?:[a-zA-Z0-9._-]+)";
const INT: &str = r"(?:[+-]?(?:[0-9]+))";
const POSINT: &str = r"(?:[1-9][0-9]*)";
const NONNEGINT: &str = r"(?:[0-9]+)";
const MONTHDAY: &str = r"(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])";
const MONTH: &str = r"\b(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\b";
const DAY: &str = r"(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)";
const YEAR: &str = r"(?:[1-9]\d*)";
const TIME: &str = r"(?:2[0123]|[01]?[0-9]):(?:[0-5][0-9]):(?:(?:[0-5]?[0-9]|60)(?:[:\.,][0-9]+)?)";
const PROG: &str = r"[\w\._/%-]+";
const SYSLOG_TAIL: &str = r" (?:<(?:[0-9]+).(?:[0-9]+)> )?((?:[a-zA-Z0-9._-]+)) ";

/// `COMMONAPACHELOG` without the trailing `.*` (Java `PatternConstants.COMMON_APACHE_LOG`).
fn common_apache_log() -> String {
    let http_date = format!(r"(?:{MONTHDAY}/{MONTH}/{YEAR}:(?:{TIME})\s{INT})");
    format!(r#"^({HOST}) ({USER}) ({USER}) \[({http_date})\] "([^"]+)" ({INT}|\-) ({INT}|\-)"#)
}

/// The full Java pattern of a format, as the Java agent compiles it.
pub fn java_pattern(format: LogFormat) -> String {
    match format {
        LogFormat::CommonApacheLog => format!("{}.*", common_apache_log()),
        LogFormat::CombinedApacheLog => format!(r#"{} "([^"]+)" "([^"]+)".*"#, common_apache_log()),
        LogFormat::ApacheErrorLog => {
            let timestamp = format!(r"(?:{DAY}\s+{MONTH}\s+{MONTHDAY}\s+(?:{TIME})\s+{YEAR})");
            let client = format!(r"(?:{HOST}(?::{POSINT})?)");
            format!(
                r"^\[({timestamp})\] \[(?:(\w+):)?(\w+)\] \[pid ({NONNEGINT})(?::tid ({NONNEGINT}))?\] \[client ({client})\] (.*)"
            )
        }
        LogFormat::Syslog => {
            let timestamp = format!(r"(?:{MONTH}\s+{MONTHDAY}\s+(?:{TIME}))");
            format!(r"^({timestamp}){SYSLOG_TAIL}({PROG})(?:\[({POSINT})\])?: (.*)")
        }
        LogFormat::Rfc3339Syslog => {
            let timestamp =
                r"(?:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)(?:Z|(?:[-+]\d{2}:\d{2}))";
            format!(r"^({timestamp}){SYSLOG_TAIL}({PROG})(?:\[({POSINT})\])?: (.*)")
        }
    }
}

/// True for the formats the Java `ApacheLogParser` handles (it maps `-` to null).
fn dash_is_null(format: LogFormat) -> bool {
    matches!(
        format,
        LogFormat::CommonApacheLog | LogFormat::CombinedApacheLog | LogFormat::ApacheErrorLog
    )
}

#[derive(Debug, Clone)]
pub struct LogToJson {
    regex: Regex,
    fields: FieldSlots,
    dash_is_null: bool,
    format: JsonFormat,
}

impl LogToJson {
    pub fn new(
        log_format: LogFormat,
        match_pattern: Option<&str>,
        field_names: Option<&[String]>,
        format: JsonFormat,
    ) -> Result<Self, String> {
        let pattern = match match_pattern {
            Some(p) => p.to_string(),
            None => java_pattern(log_format),
        };
        let regex = compile(&pattern, Anchoring::Full)
            .map_err(|e| format!("LOGTOJSON matchPattern: {e}"))?;
        let fields = match field_names {
            Some(names) => FieldSlots::new(names),
            None => FieldSlots::new(log_format.default_field_names()),
        };
        let names = field_names.map_or(log_format.default_field_names().len(), |n| n.len());
        let groups = regex.captures_len() - 1;
        // Java skips every record then; the configuration check refuses it already.
        if groups != names {
            return Err(format!(
                "LOGTOJSON: the pattern has {groups} capture groups but {names} field names are given"
            ));
        }
        Ok(LogToJson {
            regex,
            fields,
            dash_is_null: dash_is_null(log_format),
            format,
        })
    }

    /// Writes the JSON record and returns true, or returns false (nothing written) when the line
    /// does not match.
    pub fn convert(&self, record: &[u8], out: &mut Vec<u8>) -> bool {
        let text = decode(record);
        let line = strip_newline(&text);
        let mut locations = self.regex.capture_locations();
        if self.regex.captures_read(&mut locations, line).is_none() {
            return false;
        }
        let mut obj = ObjectWriter::begin(out, self.format, 0);
        for (name, group) in self.fields.iter() {
            obj.key(out, name);
            let value = locations
                .get(group + 1)
                .map(|(start, end)| &line[start..end])
                .filter(|v| !(self.dash_is_null && *v == "-"));
            write_opt_str(out, value);
        }
        obj.end(out);
        out.push(b'\n');
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expanded Java regexes as the reference (section 2.3) prints them.
    const JAVA_COMMON: &str = r#"^((?:(?:[\w\-]+)(?:\.(?:[\w\-]+))*(?:\.?|\b)|(?:[\d\.]+))) ((?:[a-zA-Z0-9._-]+)) ((?:[a-zA-Z0-9._-]+)) \[((?:(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])/\b(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\b/(?:[1-9]\d*):(?:(?:2[0123]|[01]?[0-9]):(?:[0-5][0-9]):(?:(?:[0-5]?[0-9]|60)(?:[:\.,][0-9]+)?))\s(?:[+-]?(?:[0-9]+))))\] "([^"]+)" ((?:[+-]?(?:[0-9]+))|\-) ((?:[+-]?(?:[0-9]+))|\-).*"#;
    const JAVA_ERROR: &str = r#"^\[((?:(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)\s+\b(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\b\s+(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])\s+(?:(?:2[0123]|[01]?[0-9]):(?:[0-5][0-9]):(?:(?:[0-5]?[0-9]|60)(?:[:\.,][0-9]+)?))\s+(?:[1-9]\d*)))\] \[(?:(\w+):)?(\w+)\] \[pid ((?:[0-9]+))(?::tid ((?:[0-9]+)))?\] \[client ((?:(?:(?:[\w\-]+)(?:\.(?:[\w\-]+))*(?:\.?|\b)|(?:[\d\.]+))(?::(?:[1-9][0-9]*))?))\] (.*)"#;
    const JAVA_SYSLOG: &str = r#"^((?:\b(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\b\s+(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])\s+(?:(?:2[0123]|[01]?[0-9]):(?:[0-5][0-9]):(?:(?:[0-5]?[0-9]|60)(?:[:\.,][0-9]+)?)))) (?:<(?:[0-9]+).(?:[0-9]+)> )?((?:[a-zA-Z0-9._-]+)) ([\w\._/%-]+)(?:\[((?:[1-9][0-9]*))\])?: (.*)"#;
    const JAVA_RFC3339: &str = r#"^((?:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)(?:Z|(?:[-+]\d{2}:\d{2}))) (?:<(?:[0-9]+).(?:[0-9]+)> )?((?:[a-zA-Z0-9._-]+)) ([\w\._/%-]+)(?:\[((?:[1-9][0-9]*))\])?: (.*)"#;

    #[test]
    fn patterns_are_the_java_ones() {
        assert_eq!(java_pattern(LogFormat::CommonApacheLog), JAVA_COMMON);
        let combined = format!(
            r#"{} "([^"]+)" "([^"]+)".*"#,
            JAVA_COMMON.strip_suffix(".*").unwrap()
        );
        assert_eq!(java_pattern(LogFormat::CombinedApacheLog), combined);
        assert_eq!(java_pattern(LogFormat::ApacheErrorLog), JAVA_ERROR);
        assert_eq!(java_pattern(LogFormat::Syslog), JAVA_SYSLOG);
        assert_eq!(java_pattern(LogFormat::Rfc3339Syslog), JAVA_RFC3339);
        for format in [
            LogFormat::CommonApacheLog,
            LogFormat::CombinedApacheLog,
            LogFormat::ApacheErrorLog,
            LogFormat::Syslog,
            LogFormat::Rfc3339Syslog,
        ] {
            assert!(LogToJson::new(format, None, None, JsonFormat::Compact).is_ok());
        }
    }

    fn run(format: LogFormat, input: &str) -> Option<String> {
        let conv = LogToJson::new(format, None, None, JsonFormat::Compact).unwrap();
        let mut out = Vec::new();
        conv.convert(input.as_bytes(), &mut out)
            .then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn syslog_keeps_dash_and_apache_maps_it_to_null() {
        assert_eq!(
            run(LogFormat::Syslog, "Mar 12 12:00:08 - prog: -\n").as_deref(),
            Some("{\"timestamp\":\"Mar 12 12:00:08\",\"hostname\":\"-\",\"program\":\"prog\",\"processid\":null,\"message\":\"-\"}\n")
        );
        assert_eq!(
            run(LogFormat::CommonApacheLog, "h - - [27/Oct/2000:09:27:09 -0400] \"-\" 200 -\n")
                .as_deref(),
            Some("{\"host\":\"h\",\"ident\":null,\"authuser\":null,\"datetime\":\"27/Oct/2000:09:27:09 -0400\",\"request\":null,\"response\":\"200\",\"bytes\":null}\n")
        );
    }

    #[test]
    fn facility_dot_is_any_char_but_a_line_terminator() {
        let out = run(LogFormat::Syslog, "Mar 12 12:00:08 <1x2> host prog: m");
        assert!(out.is_some());
        assert!(run(LogFormat::Syslog, "Mar 12 12:00:08 <1\r2> host prog: m").is_none());
    }

    #[test]
    fn message_may_not_contain_line_terminators() {
        assert!(run(LogFormat::Syslog, "Mar 12 12:00:08 host prog: a\u{2028}b").is_none());
        assert!(run(LogFormat::Syslog, "Mar 12 12:00:08 host prog: a\tb").is_some());
    }
}
