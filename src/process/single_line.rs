//! SINGLELINE: a multi-line record as one line (Java `SingleLineDataConverter`).
//!
//! The record is decoded and split on `"\n"` with Java `split` rules (trailing empty lines
//! dropped); each line is `trim()`med unless `NO_TRIM`; the lines are joined with nothing, or
//! with the three characters `\\n` (two backslashes and `n`, the Java literal `"\\\\n"`) with
//! `ESCAPE_NEW_LINE`; one `"\n"` ends the output. The class comment of the Java converter says
//! newlines become spaces; its code inserts nothing, and so do we.

use super::text::{decode, java_trim};

/// Written between lines with `ESCAPE_NEW_LINE`.
const ESCAPED_NEW_LINE: &[u8] = b"\\\\n";

#[derive(Debug, Clone)]
pub struct SingleLine {
    pub no_trim: bool,
    pub escape_new_line: bool,
}

impl SingleLine {
    pub fn convert(&self, record: &[u8], out: &mut Vec<u8>) {
        let text = decode(record);
        // Java `split("\n")`: trailing empty pieces are removed; "" stays one empty piece.
        let body = text.trim_end_matches('\n');
        let body = if body.is_empty() && !text.is_empty() {
            None
        } else {
            Some(body)
        };
        for (i, line) in body.into_iter().flat_map(|b| b.split('\n')).enumerate() {
            if i > 0 && self.escape_new_line {
                out.extend_from_slice(ESCAPED_NEW_LINE);
            }
            let line = if self.no_trim { line } else { java_trim(line) };
            out.extend_from_slice(line.as_bytes());
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(no_trim: bool, escape_new_line: bool, input: &str) -> String {
        let mut out = Vec::new();
        SingleLine {
            no_trim,
            escape_new_line,
        }
        .convert(input.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn joins_trimmed_lines() {
        assert_eq!(run(false, false, "  a \n\tb\r\n c\n"), "abc\n");
        assert_eq!(run(true, false, "  a \n\tb\r\n c\n"), "  a \tb\r c\n");
        assert_eq!(run(false, true, "a\n b\n"), "a\\\\nb\n");
    }

    #[test]
    fn empty_and_blank_records() {
        assert_eq!(run(false, false, ""), "\n");
        assert_eq!(run(false, false, "\n"), "\n");
        assert_eq!(run(false, true, "\n\n\n"), "\n");
        // Lines that are only spaces are not empty when split, so they are kept (then trimmed).
        assert_eq!(run(false, true, "a\n  \n"), "a\\\\n\n");
        // Empty lines in the middle are kept.
        assert_eq!(run(false, true, "a\n\nb\n"), "a\\\\n\\\\nb\n");
    }
}
