//! One JSON object of the configuration, read with the Java agent's value rules.
//!
//! Owns: the file syntax (JSON with `//` and `/* */` comments), the conversions of the Java
//! `Configuration` class (numbers and booleans given as strings, any scalar as a string,
//! case-sensitive enums, range checks), key paths in messages, and the bookkeeping behind
//! unknown-key warnings and "not yet supported" notices. Does not own: which keys exist, their
//! defaults or meaning (`raw.rs`, `processing.rs`).

use std::io::Read;
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use json_comments::CommentSettings;
use serde_json::{Map, Value};

use super::{ConfigError, Notice};

/// The message the Java agent gives for a missing required key; kept so users can search for it.
const MISSING: &str = "Required configuration value missing";

/// Warnings and not-supported notices collected while reading, in the order they were found.
#[derive(Debug, Default)]
pub(super) struct Notes {
    pub warnings: Vec<Notice>,
    pub not_supported: Vec<Notice>,
}

/// Parses one configuration file; its top level must be an object.
pub(super) fn parse_object(file: &Path, text: &str) -> Result<Map<String, Value>, ConfigError> {
    // The Java agent reads with Jackson's ALLOW_COMMENTS, which allows `//` and `/* */` but not
    // `#`; we accept the same language so a file stays usable by both agents. The stripper blanks
    // comments out with spaces and keeps line breaks, so serde's line and column still point into
    // the text the user wrote.
    let mut stripped = String::with_capacity(text.len());
    CommentSettings::c_style()
        .strip_comments(text.as_bytes())
        .read_to_string(&mut stripped)
        .map_err(|_| {
            ConfigError::file(
                file,
                "invalid JSON: a string or /* comment */ that is never closed, \
                 or a `/` that does not start a comment",
            )
        })?;
    let value: Value = serde_json::from_str(&stripped).map_err(|e| {
        let full = e.to_string();
        let location = format!(" at line {} column {}", e.line(), e.column());
        let bare = full.strip_suffix(&location).unwrap_or(&full);
        ConfigError::file(
            file,
            format!(
                "invalid JSON at line {}, column {}: {bare}",
                e.line(),
                e.column()
            ),
        )
    })?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ConfigError::file(
            file,
            format!(
                "expected a JSON object at the top level, got {}",
                describe(&other)
            ),
        )),
    }
}

/// How a value is shown in a message: scalars as JSON (`"random"`, `1000.0`), containers by kind.
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Object(_) => "an object".to_string(),
        Value::Array(_) => "a list".to_string(),
        scalar => scalar.to_string(),
    }
}

/// The text of a scalar, as Java's `toString()` gives it; None for objects, lists and null.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// An integer as the Java agent reads one: a JSON integer, or a string that Java's
/// `Long.decode` accepts (Guava's `Ints`/`Longs.stringConverter` use `decode`). A JSON number with
/// a fraction or exponent (`1000.0`, `1e3`) is not an integer, as in Java.
fn java_integer(value: &Value) -> Option<i128> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        Value::String(s) => java_decode(s),
        _ => None,
    }
}

/// Java `Long.decode`: optional sign, then `0x`, `0X` or `#` for hexadecimal, a leading `0` for
/// octal (so `"010"` is 8, as the Java agent reads it), else decimal. No surrounding spaces.
fn java_decode(text: &str) -> Option<i128> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(hex) = rest
        .strip_prefix("0x")
        .or_else(|| rest.strip_prefix("0X"))
        .or_else(|| rest.strip_prefix('#'))
    {
        (16, hex)
    } else if rest.len() > 1 && rest.starts_with('0') {
        (8, &rest[1..])
    } else {
        (10, rest)
    };
    // `from_str_radix` would accept a second sign; `decode` does not.
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// Java's `BooleanConverter`: a JSON boolean, or the value's text, case-insensitive.
fn java_bool(value: &Value) -> Option<bool> {
    if let Value::Bool(b) = value {
        return Some(*b);
    }
    match scalar_text(value)?.to_ascii_lowercase().as_str() {
        "true" | "yes" | "t" | "y" | "1" => Some(true),
        "false" | "no" | "f" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// A range as Guava prints it, which is what Java agent users have seen: `[1000..900000]`, or
/// `[0..+∞)` when only the lower bound matters.
fn range_text(range: &RangeInclusive<i64>) -> String {
    if *range.end() == i64::MAX {
        format!("[{}..+∞)", range.start())
    } else {
        format!("[{}..{}]", range.start(), range.end())
    }
}

fn names<T>(choices: &[(&str, T)]) -> String {
    choices
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One JSON object of the configuration (the top level, a flow, or a processing option), read
/// key by key. Each read records the key as known, so [`Section::finish`] can warn about the rest.
pub(super) struct Section<'a> {
    file: &'a Path,
    /// Key path of this object, e.g. `flows[0]`; empty for the top level.
    name: String,
    map: &'a Map<String, Value>,
    /// Every key this section asked for, present or not.
    known: Vec<&'static str>,
    /// Keys present with a value other than their default, for the not-yet-supported table.
    changed: Vec<&'static str>,
    notes: Notes,
}

impl<'a> Section<'a> {
    pub fn new(file: &'a Path, name: String, map: &'a Map<String, Value>) -> Self {
        Section {
            file,
            name,
            map,
            known: Vec::new(),
            changed: Vec::new(),
            notes: Notes::default(),
        }
    }

    pub fn file(&self) -> &'a Path {
        self.file
    }

    /// Full key path of `key`, e.g. `flows[1].maxBufferAgeMillis`.
    pub fn path(&self, key: &str) -> String {
        if self.name.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.name)
        }
    }

    /// An error about `key` of this object.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::key(self.file, self.path(key), message)
    }

    /// An error about this object as a whole.
    pub fn error_here(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::key(self.file, self.name.clone(), message)
    }

    pub fn warn(&mut self, key: &str, message: impl Into<String>) {
        let notice = Notice {
            file: self.file.to_path_buf(),
            key: self.path(key),
            message: message.into(),
        };
        self.notes.warnings.push(notice);
    }

    pub fn not_supported(&mut self, key: &str, message: impl Into<String>) {
        let notice = Notice {
            file: self.file.to_path_buf(),
            key: self.path(key),
            message: message.into(),
        };
        self.notes.not_supported.push(notice);
    }

    /// The value of `key`; None when absent or null. For an explicit null, Java's reader returns
    /// null instead of the default and the agent then crashes (NullPointerException on number
    /// keys); we read it as "not set" and use the default.
    pub fn value(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A key the Java agent does not read in this position: accepted without an unknown-key
    /// warning, but with `why` as a warning when present.
    pub fn ignore(&mut self, key: &'static str, why: &str) {
        if self.value(key).is_some() {
            self.warn(key, why);
        }
    }

    fn mark_changed(&mut self, key: &'static str) {
        self.changed.push(key);
    }

    /// A Java `long` key. Integers outside `range` are errors, with Guava's range text.
    pub fn long(
        &mut self,
        key: &'static str,
        default: i64,
        range: RangeInclusive<i64>,
    ) -> Result<i64, ConfigError> {
        let Some(v) = self.value(key) else {
            return Ok(default);
        };
        let n = java_integer(v)
            .ok_or_else(|| self.error(key, format!("expected an integer, got {}", describe(v))))?;
        if n < i128::from(*range.start()) || n > i128::from(*range.end()) {
            let message = format!("value {n} is outside of valid range {}", range_text(&range));
            return Err(self.error(key, message));
        }
        // Inside an i64 range, so it fits.
        let n = n as i64;
        if n != default {
            self.mark_changed(key);
        }
        Ok(n)
    }

    /// A Java `int` key: as [`Section::long`], and the range keeps it within 32 bits.
    pub fn int(
        &mut self,
        key: &'static str,
        default: i32,
        range: RangeInclusive<i32>,
    ) -> Result<i32, ConfigError> {
        let wide = i64::from(*range.start())..=i64::from(*range.end());
        // Inside an i32 range, so it fits.
        self.long(key, i64::from(default), wide).map(|n| n as i32)
    }

    /// A `long` key holding milliseconds; `range` must not admit negative values.
    pub fn millis(
        &mut self,
        key: &'static str,
        default: i64,
        range: RangeInclusive<i64>,
    ) -> Result<Duration, ConfigError> {
        debug_assert!(*range.start() >= 0, "{key}: a duration cannot be negative");
        let ms = self.long(key, default, range)?;
        Ok(Duration::from_millis(ms.max(0) as u64))
    }

    /// An `int` key holding a count or size; `range` must not admit negative values.
    pub fn count(
        &mut self,
        key: &'static str,
        default: i32,
        range: RangeInclusive<i32>,
    ) -> Result<usize, ConfigError> {
        debug_assert!(*range.start() >= 0, "{key}: a count cannot be negative");
        let n = self.int(key, default, range)?;
        Ok(n.max(0) as usize)
    }

    pub fn bool(&mut self, key: &'static str, default: bool) -> Result<bool, ConfigError> {
        let Some(v) = self.value(key) else {
            return Ok(default);
        };
        let b = java_bool(v).ok_or_else(|| {
            self.error(
                key,
                format!("expected a boolean (true/false), got {}", describe(v)),
            )
        })?;
        if b != default {
            self.mark_changed(key);
        }
        Ok(b)
    }

    /// Any scalar, as its text; None when absent or null.
    fn text(&mut self, key: &'static str) -> Result<Option<String>, ConfigError> {
        let Some(v) = self.value(key) else {
            return Ok(None);
        };
        match scalar_text(v) {
            Some(text) => Ok(Some(text)),
            None => Err(self.error(key, format!("expected a string, got {}", describe(v)))),
        }
    }

    /// A string key where an empty string is a value of its own (e.g. a stream name, which is
    /// then rejected by the caller).
    pub fn any_string(&mut self, key: &'static str) -> Result<Option<String>, ConfigError> {
        let text = self.text(key)?;
        if text.is_some() {
            self.mark_changed(key);
        }
        Ok(text)
    }

    /// A string key where an empty string means "not set", as the Java agent treats endpoints,
    /// regions, role and credential keys and patterns (`Strings.isNullOrEmpty`).
    pub fn opt_string(&mut self, key: &'static str) -> Result<Option<String>, ConfigError> {
        let text = self.text(key)?.filter(|s| !s.is_empty());
        if text.is_some() {
            self.mark_changed(key);
        }
        Ok(text)
    }

    /// As [`Section::opt_string`], with surrounding whitespace removed first.
    pub fn opt_trimmed_string(&mut self, key: &'static str) -> Result<Option<String>, ConfigError> {
        let text = self
            .text(key)?
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        if text.is_some() {
            self.mark_changed(key);
        }
        Ok(text)
    }

    pub fn string(&mut self, key: &'static str, default: &str) -> Result<String, ConfigError> {
        match self.text(key)? {
            Some(text) => {
                if text != default {
                    self.mark_changed(key);
                }
                Ok(text)
            }
            None => Ok(default.to_string()),
        }
    }

    pub fn required_string(&mut self, key: &'static str) -> Result<String, ConfigError> {
        self.any_string(key)?
            .ok_or_else(|| self.error(key, format!("{MISSING}: {key}")))
    }

    /// An enum key: the exact, case-sensitive name of one of `choices`, as Java `Enum.valueOf`.
    pub fn enum_<T: Copy + PartialEq>(
        &mut self,
        key: &'static str,
        choices: &[(&str, T)],
        default: T,
    ) -> Result<T, ConfigError> {
        let Some(choice) = self.opt_enum(key, choices)? else {
            return Ok(default);
        };
        if choice != default {
            self.mark_changed(key);
        }
        Ok(choice)
    }

    pub fn required_enum<T: Copy>(
        &mut self,
        key: &'static str,
        choices: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        self.opt_enum(key, choices)?.ok_or_else(|| {
            self.error(
                key,
                format!("{MISSING}: {key} (expected one of {})", names(choices)),
            )
        })
    }

    fn opt_enum<T: Copy>(
        &mut self,
        key: &'static str,
        choices: &[(&str, T)],
    ) -> Result<Option<T>, ConfigError> {
        let Some(v) = self.value(key) else {
            return Ok(None);
        };
        let text = scalar_text(v);
        match choices
            .iter()
            .find(|(name, _)| Some(*name) == text.as_deref())
        {
            Some(&(_, choice)) => Ok(Some(choice)),
            None => {
                let message = format!("expected one of {}, got {}", names(choices), describe(v));
                Err(self.error(key, message))
            }
        }
    }

    /// A list key; None when absent or null. A non-empty list counts as a change from the default.
    pub fn list(&mut self, key: &'static str) -> Result<Option<&'a [Value]>, ConfigError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Array(items)) => {
                if !items.is_empty() {
                    self.mark_changed(key);
                }
                Ok(Some(items))
            }
            Some(other) => {
                Err(self.error(key, format!("expected a list, got {}", describe(other))))
            }
        }
    }

    /// A list of strings; each item may be any scalar, converted to its text as in Java.
    pub fn string_list(&mut self, key: &'static str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(items) = self.list(key)? else {
            return Ok(None);
        };
        let mut strings = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match scalar_text(item) {
                Some(text) => strings.push(text),
                None => {
                    let message = format!("expected a string, got {}", describe(item));
                    return Err(self.error(&format!("{key}[{i}]"), message));
                }
            }
        }
        Ok(Some(strings))
    }

    /// Ends the reading of this object: a notice for each changed key listed in
    /// `not_yet_supported` (key, what this build does not do yet), a warning for each key that
    /// was never asked for, then everything collected into `notes`.
    pub fn finish(mut self, not_yet_supported: &[(&str, &str)], notes: &mut Notes) {
        for key in std::mem::take(&mut self.changed) {
            if let Some((_, what)) = not_yet_supported.iter().find(|(k, _)| *k == key) {
                let message =
                    format!("accepted and validated, but not yet acted on by this build: {what}");
                self.not_supported(key, message);
            }
        }
        for key in self.map.keys() {
            if self.known.contains(&key.as_str()) {
                continue;
            }
            // The Java agent ignores unknown keys silently; a typo then costs a day of debugging.
            let mut message = "unknown key, ignored".to_string();
            if let Some(known) = self.known.iter().find(|k| k.eq_ignore_ascii_case(key)) {
                message.push_str(&format!("; did you mean `{known}`?"));
            }
            self.warn(key, message);
        }
        notes.warnings.append(&mut self.notes.warnings);
        notes.not_supported.append(&mut self.notes.not_supported);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn java_decode_follows_long_decode() {
        let cases = [
            ("1000", Some(1000)),
            ("-5", Some(-5)),
            ("+5", Some(5)),
            ("0", Some(0)),
            ("0x10", Some(16)),
            ("0X1f", Some(31)),
            ("#10", Some(16)),
            ("-0x10", Some(-16)),
            ("010", Some(8)),
            ("", None),
            ("-", None),
            ("0x", None),
            ("--5", None),
            ("-+5", None),
            (" 5", None),
            ("5 ", None),
            ("1000.0", None),
            ("1e3", None),
            ("abc", None),
            ("09", None),
        ];
        for (text, expected) in cases {
            assert_eq!(java_decode(text), expected, "{text:?}");
        }
    }

    #[test]
    fn java_integer_takes_json_integers_and_decodable_strings_only() {
        assert_eq!(java_integer(&json!(7)), Some(7));
        assert_eq!(java_integer(&json!(u64::MAX)), Some(i128::from(u64::MAX)));
        assert_eq!(java_integer(&json!("7")), Some(7));
        assert_eq!(java_integer(&json!(7.0)), None);
        assert_eq!(java_integer(&json!(true)), None);
        assert_eq!(java_integer(&json!([1])), None);
    }

    #[test]
    fn range_text_is_guava_style() {
        assert_eq!(range_text(&(1000..=900_000)), "[1000..900000]");
        assert_eq!(range_text(&(0..=i64::MAX)), "[0..+∞)");
    }
}
