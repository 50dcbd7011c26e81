//! ADDMETADATA: the record wrapped in an object with fixed metadata (Java
//! `AddMetadataConverter`).
//!
//! Output object, in order: `ts` (only with `timestamp`: the time of conversion in UTC as
//! `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`), `metadata` (the configured JSON value as it was written),
//! `data` (the record text without one trailing `\n`). The Java class comment calls the last key
//! `message`; its code writes `data`, and so do we.

use serde_json::Value;
use time::OffsetDateTime;

use super::json::{write_str, write_value, ObjectWriter};
use super::text::{decode, strip_newline};
use crate::config::JsonFormat;

/// The time source of `ts`, injected so tests are deterministic.
pub type Clock = fn() -> OffsetDateTime;

#[derive(Debug, Clone)]
pub struct AddMetadata {
    pub metadata: Value,
    pub timestamp: bool,
    pub format: JsonFormat,
}

impl AddMetadata {
    pub fn convert(&self, record: &[u8], clock: Clock, out: &mut Vec<u8>) {
        let text = decode(record);
        let mut obj = ObjectWriter::begin(out, self.format, 0);
        if self.timestamp {
            obj.key(out, "ts");
            write_utc_millis(out, clock());
        }
        obj.key(out, "metadata");
        write_value(out, &self.metadata, self.format, obj.value_level());
        obj.key(out, "data");
        write_str(out, strip_newline(&text));
        obj.end(out);
        out.push(b'\n');
    }
}

/// Writes `"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"` of `t` in UTC (Java `SimpleDateFormat` with the UTC
/// zone: milliseconds truncated, year at least four digits).
fn write_utc_millis(out: &mut Vec<u8>, t: OffsetDateTime) {
    let t = t.to_offset(time::UtcOffset::UTC);
    out.push(b'"');
    push_padded(out, t.year().unsigned_abs(), 4);
    out.push(b'-');
    push_padded(out, t.month() as u32, 2);
    out.push(b'-');
    push_padded(out, t.day().into(), 2);
    out.push(b'T');
    push_padded(out, t.hour().into(), 2);
    out.push(b':');
    push_padded(out, t.minute().into(), 2);
    out.push(b':');
    push_padded(out, t.second().into(), 2);
    out.push(b'.');
    push_padded(out, t.millisecond().into(), 3);
    out.extend_from_slice(b"Z\"");
}

/// Writes `value` in decimal, left-padded with zeros to `width` digits.
fn push_padded(out: &mut Vec<u8>, value: u32, width: usize) {
    let mut digits = [0u8; 10];
    let mut n = value;
    let mut len = 0;
    while n > 0 || len == 0 {
        digits[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
    }
    out.resize(out.len() + width.saturating_sub(len), b'0');
    out.extend(digits[..len].iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn fixed() -> OffsetDateTime {
        datetime!(2024-02-29 23:59:58.987654 -05:00)
    }

    #[test]
    fn timestamp_is_utc_with_milliseconds() {
        let conv = AddMetadata {
            metadata: Value::String("m".into()),
            timestamp: true,
            format: JsonFormat::Compact,
        };
        let mut out = Vec::new();
        conv.convert(b"x\n", fixed, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"ts\":\"2024-03-01T04:59:58.987Z\",\"metadata\":\"m\",\"data\":\"x\"}\n"
        );
    }
}
