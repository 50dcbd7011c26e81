//! The Java `String` operations the converters are built from, on UTF-8 text.
//!
//! Owns: decoding a record as Java does, stripping its one trailing `\n`, `String.trim()` and
//! `String.split(regex)`. Does not own: any converter's logic.

use std::borrow::Cow;
use std::ops::Range;

use regex::Regex;

/// Decodes a record as Java's `new String(bytes, UTF_8)`: each malformed sequence becomes one
/// U+FFFD (both follow the Unicode "maximal subpart" practice). Borrows valid input.
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// The text without one trailing `"\n"` (a `\r` before it stays, as in Java).
pub fn strip_newline(text: &str) -> &str {
    text.strip_suffix('\n').unwrap_or(text)
}

/// Java `String.trim()`: removes every char <= U+0020 at both ends (control characters
/// included, Unicode spaces such as U+00A0 not).
pub fn java_trim(text: &str) -> &str {
    text.trim_matches(|c: char| c <= ' ')
}

/// Java `String.split(regex)` (limit 0): the pieces between matches, as byte ranges of `text`.
/// - no match at all: the whole text, even when it is empty;
/// - a zero-width match at the very start yields no empty first piece (Java 8+);
/// - after an empty match the search resumes one character further, as `Matcher.find()`;
/// - trailing empty pieces are removed (so `","` splits into nothing).
pub fn java_split(text: &str, delimiter: &Regex, pieces: &mut Vec<Range<usize>>) {
    pieces.clear();
    let mut index = 0;
    let mut from = 0;
    let mut matched = false;
    while from <= text.len() {
        let Some(m) = delimiter.find_at(text, from) else {
            break;
        };
        from = if m.is_empty() {
            next_char_boundary(text, m.end())
        } else {
            m.end()
        };
        if index == 0 && m.start() == 0 && m.is_empty() {
            continue;
        }
        pieces.push(index..m.start());
        index = m.end();
        matched = true;
    }
    if !matched {
        pieces.push(0..text.len());
        return;
    }
    pieces.push(index..text.len());
    while pieces.last().is_some_and(|r| r.is_empty()) {
        pieces.pop();
    }
}

/// The byte index after the char starting at `i` (or past the end).
fn next_char_boundary(text: &str, i: usize) -> usize {
    match text[i..].chars().next() {
        Some(c) => i + c.len_utf8(),
        None => text.len() + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split<'a>(text: &'a str, delimiter: &str) -> Vec<&'a str> {
        let re = Regex::new(delimiter).unwrap();
        let mut pieces = Vec::new();
        java_split(text, &re, &mut pieces);
        pieces.into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn split_like_java() {
        assert_eq!(split("a,b,c", ","), ["a", "b", "c"]);
        assert_eq!(split("a,,b,,", ","), ["a", "", "b"]);
        assert_eq!(split(",a", ","), ["", "a"]);
        assert_eq!(split(",,,", ","), Vec::<&str>::new());
        assert_eq!(split("", ","), [""]);
        assert_eq!(split("abc", ","), ["abc"]);
        assert_eq!(split("a\tb", "\\t"), ["a", "b"]);
        assert_eq!(split("a1b22c", "\\d+"), ["a", "b", "c"]);
        // Zero-width matches: "abc".split("") is [a, b, c] in Java 8+.
        assert_eq!(split("abc", ""), ["a", "b", "c"]);
        assert_eq!(split("éà", ""), ["é", "à"]);
    }

    #[test]
    fn trim_and_strip() {
        assert_eq!(java_trim("\t a b\r\x01"), "a b");
        assert_eq!(java_trim("\u{a0}x\u{a0}"), "\u{a0}x\u{a0}");
        assert_eq!(strip_newline("a\r\n"), "a\r");
        assert_eq!(strip_newline("a\n\n"), "a\n");
        assert_eq!(strip_newline("a"), "a");
    }

    #[test]
    fn decode_replaces_malformed_bytes() {
        assert_eq!(decode(b"a\xffb\xe2\x82"), "a\u{fffd}b\u{fffd}");
        assert!(matches!(decode(b"ok"), Cow::Borrowed("ok")));
    }
}
