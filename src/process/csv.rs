//! CSVTOJSON: a delimited line as a JSON object (Java `CSVToJSONDataConverter`).
//!
//! One trailing `\n` is stripped; the line is split with Java `String.split(delimiter)` (the
//! delimiter is a regex; trailing empty columns are dropped); column i goes under name i, as a
//! string; names without a column get `null`; extra columns are ignored. No quoting, escaping
//! or trimming: `a,"b,c"` is three columns, `" b"` keeps its space.

use std::ops::Range;

use regex::Regex;

use super::json::{write_opt_str, FieldSlots, ObjectWriter};
use super::pattern::{compile, Anchoring};
use super::text::{decode, java_split, strip_newline};
use crate::config::JsonFormat;

#[derive(Debug, Clone)]
pub struct CsvToJson {
    fields: FieldSlots,
    delimiter: Regex,
    format: JsonFormat,
}

impl CsvToJson {
    pub fn new(names: &[String], delimiter: &str, format: JsonFormat) -> Result<Self, String> {
        Ok(CsvToJson {
            fields: FieldSlots::new(names),
            delimiter: compile(delimiter, Anchoring::Search)
                .map_err(|e| format!("CSVTOJSON delimiter: {e}"))?,
            format,
        })
    }

    /// `columns` is scratch space, reused between records.
    pub fn convert(&self, record: &[u8], columns: &mut Vec<Range<usize>>, out: &mut Vec<u8>) {
        let text = decode(record);
        let line = strip_newline(&text);
        java_split(line, &self.delimiter, columns);
        let mut obj = ObjectWriter::begin(out, self.format, 0);
        for (name, column) in self.fields.iter() {
            obj.key(out, name);
            write_opt_str(out, columns.get(column).map(|r| &line[r.clone()]));
        }
        obj.end(out);
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(names: &[&str], delimiter: &str, format: JsonFormat, input: &str) -> String {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let csv = CsvToJson::new(&names, delimiter, format).unwrap();
        let mut out = Vec::new();
        csv.convert(input.as_bytes(), &mut Vec::new(), &mut out);
        String::from_utf8(out).unwrap()
    }

    const FOUR: &[&str] = &["column1", "column2", "column3", "column4"];

    #[test]
    fn empty_line_and_trailing_empty_columns() {
        // "" splits into one empty column (Java returns the input when nothing matches).
        assert_eq!(
            run(&["a", "b"], ",", JsonFormat::Compact, "\n"),
            "{\"a\":\"\",\"b\":null}\n"
        );
        assert_eq!(
            run(&["a", "b", "c"], ",", JsonFormat::Compact, "x,,\n"),
            "{\"a\":\"x\",\"b\":null,\"c\":null}\n"
        );
        assert_eq!(
            run(&["a", "b", "c"], ",", JsonFormat::Compact, ",,z\n"),
            "{\"a\":\"\",\"b\":\"\",\"c\":\"z\"}\n"
        );
        assert_eq!(
            run(&["a"], ",", JsonFormat::Compact, ",,,\n"),
            "{\"a\":null}\n"
        );
    }

    #[test]
    fn regex_delimiter_and_crlf() {
        assert_eq!(
            run(FOUR, r"\s*;\s*", JsonFormat::Compact, "a ; b;c  ;d\n"),
            "{\"column1\":\"a\",\"column2\":\"b\",\"column3\":\"c\",\"column4\":\"d\"}\n"
        );
        // Only "\n" is stripped: the `\r` of a CRLF line stays in the last column.
        assert_eq!(
            run(&["a", "b"], ",", JsonFormat::Compact, "x,y\r\n"),
            "{\"a\":\"x\",\"b\":\"y\\r\"}\n"
        );
    }
}
