//! JSON output byte for byte as the Java agent's Jackson `ObjectMapper` writes it.
//!
//! Owns: string escaping, number formatting, the compact and the default pretty layout, and the
//! `LinkedHashMap` rule for repeated field names ([`FieldSlots`]). Does not own: what goes into
//! a record (the converters decide).
//!
//! Jackson's rules (jackson-core `CharTypes.sOutputEscapes128`, `DefaultPrettyPrinter`), and
//! where `serde_json` would differ:
//! - `"` and `\` are escaped; `\b \t \n \f \r` use their short forms; every other char below
//!   U+0020 is written `\u00XX` with UPPER-case hex (`serde_json`: lower-case, `\u001f`).
//! - Nothing else is escaped: not `/`, not DEL (0x7F), not U+2028/U+2029, not non-ASCII, which
//!   is written as UTF-8.
//! - Numbers as Java prints them: integers in decimal, doubles with `Double.toString`
//!   (`100.0`, `1.0E-5`, `1.2345678E7`); `serde_json` prints `100.0`, `1e-5`, `12345678.0`.
//! - Compact: no spaces at all. Pretty (`DefaultPrettyPrinter`): an object's entries each on a
//!   new line indented two spaces per object level, `"key" : value`, `{ }` when empty; arrays
//!   stay on the line as `[ 1, 2 ]` (`[ ]` when empty) and add no indentation level.

use serde_json::Value;

use crate::config::JsonFormat;

/// Jackson's escape for each ASCII byte: 0 = none, `u` = `\u00XX`, else the char after `\`.
static ESCAPES: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0A] = b'n';
    table[0x0C] = b'f';
    table[0x0D] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Writes `text` as a JSON string with Jackson's escaping.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = if b < 0x80 { ESCAPES[b as usize] } else { 0 };
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        out.push(b'\\');
        if escape == b'u' {
            out.extend_from_slice(b"u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xF) as usize]);
        } else {
            out.push(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Writes a string or, for `None`, `null`.
pub fn write_opt_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(t) => write_str(out, t),
        None => out.extend_from_slice(b"null"),
    }
}

/// An object being written: `{`, then [`Self::key`] + a value per entry, then [`Self::end`].
pub struct ObjectWriter {
    pretty: bool,
    /// Object nesting level of this object (the record itself is 0).
    level: usize,
    entries: usize,
}

impl ObjectWriter {
    /// Writes `{` of an object at `level`.
    pub fn begin(out: &mut Vec<u8>, format: JsonFormat, level: usize) -> Self {
        out.push(b'{');
        ObjectWriter {
            pretty: format == JsonFormat::PrettyPrint,
            level,
            entries: 0,
        }
    }

    /// Writes the separator and `"key":` (pretty: `"key" : `) of the next entry.
    pub fn key(&mut self, out: &mut Vec<u8>, key: &str) {
        if self.entries > 0 {
            out.push(b',');
        }
        self.entries += 1;
        if self.pretty {
            newline_indent(out, self.level + 1);
            write_str(out, key);
            out.extend_from_slice(b" : ");
        } else {
            write_str(out, key);
            out.push(b':');
        }
    }

    /// The level to write this object's entry values at.
    pub fn value_level(&self) -> usize {
        self.level + 1
    }

    pub fn format(&self) -> JsonFormat {
        if self.pretty {
            JsonFormat::PrettyPrint
        } else {
            JsonFormat::Compact
        }
    }

    /// Writes the closing `}`.
    pub fn end(self, out: &mut Vec<u8>) {
        if self.pretty {
            if self.entries > 0 {
                newline_indent(out, self.level);
            } else {
                out.push(b' ');
            }
        }
        out.push(b'}');
    }
}

fn newline_indent(out: &mut Vec<u8>, level: usize) {
    out.push(b'\n');
    out.resize(out.len() + 2 * level, b' ');
}

/// Writes any JSON value at object nesting `level` (an entry of the record object is at 1).
pub fn write_value(out: &mut Vec<u8>, value: &Value, format: JsonFormat, level: usize) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => write_array(out, items, format, level),
        Value::Object(map) => {
            let mut obj = ObjectWriter::begin(out, format, level);
            for (k, v) in map {
                obj.key(out, k);
                write_value(out, v, format, obj.value_level());
            }
            obj.end(out);
        }
    }
}

fn write_array(out: &mut Vec<u8>, items: &[Value], format: JsonFormat, level: usize) {
    let pretty = format == JsonFormat::PrettyPrint;
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if pretty {
            out.push(b' ');
        }
        // Jackson's array indenter is inline: elements keep the array's level.
        write_value(out, item, format, level);
    }
    if pretty {
        out.push(b' ');
    }
    out.push(b']');
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    if let Some(i) = n.as_i64() {
        out.extend_from_slice(i.to_string().as_bytes());
    } else if let Some(u) = n.as_u64() {
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(f) = n.as_f64() {
        write_java_double(out, f);
    }
}

/// Java `Double.toString` (JDK 19+ shortest digits; earlier JDKs print a longer form for a few
/// values): plain notation with at least one fraction digit for 1e-3 <= |x| < 1e7, otherwise
/// `d.dddE[-]n`.
pub fn write_java_double(out: &mut Vec<u8>, x: f64) {
    if !x.is_finite() {
        // Cannot come from parsed JSON; Jackson quotes these by default.
        let s = if x.is_nan() {
            "\"NaN\""
        } else if x > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        };
        out.extend_from_slice(s.as_bytes());
        return;
    }
    if x.is_sign_negative() {
        out.push(b'-');
    }
    let x = x.abs();
    if x == 0.0 {
        out.extend_from_slice(b"0.0");
        return;
    }
    // Shortest round-trip digits and the decimal exponent: "d.ddde±n".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: Vec<u8> = mantissa.bytes().filter(|b| *b != b'.').collect();
    if (1e-3..1e7).contains(&x) {
        write_plain(out, &digits, exp);
    } else {
        out.push(digits[0]);
        out.push(b'.');
        match &digits[1..] {
            [] => out.push(b'0'),
            rest => out.extend_from_slice(rest),
        }
        out.push(b'E');
        out.extend_from_slice(exp.to_string().as_bytes());
    }
}

/// `digits` × 10^(exp - digits.len() + 1) in plain notation, at least one digit after the point.
fn write_plain(out: &mut Vec<u8>, digits: &[u8], exp: i32) {
    if exp < 0 {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + (-exp - 1) as usize, b'0');
        out.extend_from_slice(digits);
        return;
    }
    let int_len = exp as usize + 1;
    if digits.len() <= int_len {
        out.extend_from_slice(digits);
        out.resize(out.len() + int_len - digits.len(), b'0');
        out.extend_from_slice(b".0");
    } else {
        out.extend_from_slice(&digits[..int_len]);
        out.push(b'.');
        out.extend_from_slice(&digits[int_len..]);
    }
}

/// The field names of a record in Java `LinkedHashMap` order: a name given twice keeps the
/// position of its first occurrence and takes the value of its last (a later `put` replaces
/// the value in place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSlots {
    /// (name, index of the value that ends up under it), in output order.
    slots: Vec<(String, usize)>,
}

impl FieldSlots {
    pub fn new<S: AsRef<str>>(names: &[S]) -> Self {
        let mut slots: Vec<(String, usize)> = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let name = name.as_ref();
            match slots.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = i,
                None => slots.push((name.to_string(), i)),
            }
        }
        FieldSlots { slots }
    }

    /// (name, value index) in output order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, usize)> {
        self.slots.iter().map(|(n, i)| (n.as_str(), *i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(text: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    fn value(v: &Value, format: JsonFormat) -> String {
        let mut out = Vec::new();
        write_value(&mut out, v, format, 0);
        String::from_utf8(out).unwrap()
    }

    fn double(x: f64) -> String {
        let mut out = Vec::new();
        write_java_double(&mut out, x);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_jackson_does() {
        assert_eq!(s(r#"a"b\c/d"#), r#""a\"b\\c/d""#);
        assert_eq!(s("\u{8}\t\n\u{c}\r"), r#""\b\t\n\f\r""#);
        assert_eq!(s("\u{0}\u{1}\u{1f}\u{b}"), r#""\u0000\u0001\u001F\u000B""#);
        // Not escaped: DEL, line/paragraph separators, non-ASCII.
        assert_eq!(
            s("\u{7f}\u{2028}\u{2029}é😀"),
            "\"\u{7f}\u{2028}\u{2029}é😀\""
        );
    }

    #[test]
    fn doubles_as_java_prints_them() {
        assert_eq!(double(1.0), "1.0");
        assert_eq!(double(100.0), "100.0");
        assert_eq!(double(1.5), "1.5");
        assert_eq!(double(-0.0), "-0.0");
        assert_eq!(double(0.001), "0.001");
        assert_eq!(double(0.0001), "1.0E-4");
        assert_eq!(double(1.0E-5), "1.0E-5");
        assert_eq!(double(1234567.5), "1234567.5");
        assert_eq!(double(12345678.9), "1.23456789E7");
        assert_eq!(double(1e7), "1.0E7");
        assert_eq!(double(1e20), "1.0E20");
        assert_eq!(double(-2.5e-7), "-2.5E-7");
        assert_eq!(double(0.1 + 0.2), "0.30000000000000004");
    }

    #[test]
    fn compact_and_pretty_layouts() {
        let v = json!({"a": 1, "b": [1, {"c": null}], "d": {}, "e": [], "f": {"g": "h"}});
        assert_eq!(
            value(&v, JsonFormat::Compact),
            r#"{"a":1,"b":[1,{"c":null}],"d":{},"e":[],"f":{"g":"h"}}"#
        );
        let pretty = "{\n  \"a\" : 1,\n  \"b\" : [ 1, {\n    \"c\" : null\n  } ],\n  \"d\" : { },\n  \"e\" : [ ],\n  \"f\" : {\n    \"g\" : \"h\"\n  }\n}";
        assert_eq!(value(&v, JsonFormat::PrettyPrint), pretty);
        assert_eq!(value(&json!({}), JsonFormat::PrettyPrint), "{ }");
    }

    #[test]
    fn repeated_names_keep_first_position_and_last_value() {
        let slots = FieldSlots::new(&["a", "b", "a", "c"]);
        let v: Vec<_> = slots.iter().collect();
        assert_eq!(v, [("a", 2), ("b", 1), ("c", 3)]);
    }
}
