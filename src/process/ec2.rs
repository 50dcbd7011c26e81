//! ADDEC2METADATA: instance facts appended to a JSON record (Java `AddEC2MetadataConverter`).
//!
//! Owns: merging the facts into the record and the shape of those facts ([`Ec2Metadata`]).
//! Does not own: fetching them. The caller supplies an [`Ec2MetadataSource`] that talks to the
//! instance metadata service and refreshes after `metadataTTL`; no network code here.
//!
//! The record (its whole text) must be a JSON object, else the conversion fails and the raw
//! record is sent. The facts are merged as Java's `LinkedHashMap.putAll`: a key the record
//! already has keeps its position and takes the fact's value; the others are appended in the
//! order `privateIp, availabilityZone, instanceId, instanceType, accountId, amiId, region,
//! metadataTimestamp, tags`. The record's own values are printed again as Jackson prints what it
//! parsed (numbers with a fraction or exponent as Java doubles, strings re-escaped). Without
//! facts (not on EC2) the record passes unchanged and the chain counts it.
//!
//! Differences with Jackson, all at the edges of JSON: integers beyond 64 bits become doubles
//! (Jackson keeps them exact), `-0` is printed `-0.0` (Jackson reads an int: `0`), nesting deeper
//! than 128 is refused (Jackson: 1000), a number too large for a double is refused (Jackson:
//! `Infinity`).

use std::sync::Arc;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::json::{write_opt_str, write_str, write_value, ObjectWriter};
use super::text::decode;
use crate::config::JsonFormat;

/// The instance facts the Java agent appends, as of its last refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ec2Metadata {
    /// From the instance identity document; `None` is written as `null`.
    pub private_ip: Option<String>,
    pub availability_zone: Option<String>,
    pub instance_id: Option<String>,
    pub instance_type: Option<String>,
    pub account_id: Option<String>,
    /// `imageId` of the identity document, written as `amiId`.
    pub ami_id: Option<String>,
    pub region: Option<String>,
    /// When the facts were fetched, see [`Ec2Metadata::format_timestamp`].
    pub metadata_timestamp: String,
    /// The instance's tags, in the shape [`Ec2Metadata::java_tags`] gives; `None` when they
    /// could not be read (then the `tags` key is absent, as in Java).
    pub tags: Option<Vec<(String, String)>>,
}

impl Ec2Metadata {
    /// `metadataTimestamp` as Java writes it: `yyyy-MM-dd'T'HH:mm:ssZ` in the agent's time
    /// zone, e.g. `2024-05-01T12:30:00+0200`.
    pub fn format_timestamp(t: OffsetDateTime) -> String {
        let (h, m, _) = t.offset().as_hms();
        let sign = if t.offset().is_negative() { '-' } else { '+' };
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{sign}{:02}{:02}",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            h.unsigned_abs(),
            m.unsigned_abs()
        )
    }

    /// Tags as Java keeps them: keys lower-cased; a key seen twice keeps its first position
    /// and its last value.
    pub fn java_tags(tags: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (key, value) in tags {
            let key = key.to_lowercase();
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => out.push((key, value)),
            }
        }
        out
    }

    /// The plain string facts, in Java's order.
    fn fields(&self) -> [(&'static str, Option<&str>); 8] {
        [
            ("privateIp", self.private_ip.as_deref()),
            ("availabilityZone", self.availability_zone.as_deref()),
            ("instanceId", self.instance_id.as_deref()),
            ("instanceType", self.instance_type.as_deref()),
            ("accountId", self.account_id.as_deref()),
            ("amiId", self.ami_id.as_deref()),
            ("region", self.region.as_deref()),
            ("metadataTimestamp", Some(self.metadata_timestamp.as_str())),
        ]
    }
}

/// Where the facts come from. `None` means no facts (not on EC2, or never fetched); the
/// implementation refreshes them after `metadataTTL` and keeps the last good ones meanwhile.
/// Returning an `Arc` keeps the per-record call free of copies.
pub trait Ec2MetadataSource: Send + Sync {
    fn metadata(&self) -> Option<Arc<Ec2Metadata>>;
}

/// What the converter did with a record.
#[derive(Debug, PartialEq, Eq)]
pub enum Ec2Step {
    /// The merged record was written.
    Written,
    /// No facts: the record passes unchanged.
    NoMetadata,
}

pub struct AddEc2Metadata {
    pub source: Arc<dyn Ec2MetadataSource>,
    pub format: JsonFormat,
}

impl std::fmt::Debug for AddEc2Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddEc2Metadata")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl AddEc2Metadata {
    pub fn convert(&self, record: &[u8], out: &mut Vec<u8>) -> Result<Ec2Step, String> {
        let Some(meta) = self.source.metadata() else {
            return Ok(Ec2Step::NoMetadata);
        };
        let object = parse_object(&decode(record))?;
        let mut obj = ObjectWriter::begin(out, self.format, 0);
        for (key, value) in &object {
            obj.key(out, key);
            if !write_fact(out, &meta, key, obj.format(), obj.value_level()) {
                write_value(out, value, obj.format(), obj.value_level());
            }
        }
        for (key, _) in meta.fields() {
            if !object.contains_key(key) {
                obj.key(out, key);
                write_fact(out, &meta, key, obj.format(), obj.value_level());
            }
        }
        if meta.tags.is_some() && !object.contains_key("tags") {
            obj.key(out, "tags");
            write_fact(out, &meta, "tags", obj.format(), obj.value_level());
        }
        obj.end(out);
        out.push(b'\n');
        Ok(Ec2Step::Written)
    }
}

/// The record as Jackson reads it into a `LinkedHashMap`: the first JSON value of the text,
/// which must be an object; whatever follows it is ignored (Jackson's default).
fn parse_object(text: &str) -> Result<Map<String, Value>, String> {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    match values.next() {
        Some(Ok(Value::Object(map))) => Ok(map),
        Some(Ok(other)) => Err(format!(
            "Error converting json source data to map: expected a JSON object, got {}",
            kind(&other)
        )),
        Some(Err(e)) => Err(format!("Error converting json source data to map: {e}")),
        None => Err("Error converting json source data to map: no content".to_string()),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Writes the fact named `key`, if there is one; false when `key` is not a fact.
fn write_fact(
    out: &mut Vec<u8>,
    meta: &Ec2Metadata,
    key: &str,
    format: JsonFormat,
    level: usize,
) -> bool {
    if key == "tags" {
        let Some(tags) = &meta.tags else {
            return false;
        };
        let mut obj = ObjectWriter::begin(out, format, level);
        for (k, v) in tags {
            obj.key(out, k);
            write_str(out, v);
        }
        obj.end(out);
        return true;
    }
    match meta.fields().iter().find(|(name, _)| *name == key) {
        Some((_, value)) => {
            write_opt_str(out, *value);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamp_and_tags_as_java() {
        assert_eq!(
            Ec2Metadata::format_timestamp(datetime!(2024-05-01 12:30:05 +02:00)),
            "2024-05-01T12:30:05+0200"
        );
        assert_eq!(
            Ec2Metadata::format_timestamp(datetime!(2024-05-01 12:30:05 -03:30)),
            "2024-05-01T12:30:05-0330"
        );
        let tags = Ec2Metadata::java_tags([
            ("Name".to_string(), "a".to_string()),
            ("env".to_string(), "b".to_string()),
            ("NAME".to_string(), "c".to_string()),
        ]);
        assert_eq!(
            tags,
            [
                ("name".to_string(), "c".to_string()),
                ("env".to_string(), "b".to_string())
            ]
        );
    }

    #[test]
    fn numbers_are_printed_again_as_jackson_prints_what_it_read() {
        let source = Arc::new(Fixed(Some(Arc::new(Ec2Metadata::default()))));
        let conv = AddEc2Metadata {
            source,
            format: JsonFormat::Compact,
        };
        let mut out = Vec::new();
        let record = br#"{"a":-1,"b":1E2,"c":0.00001,"d":12345678901234567890,"e":-9223372036854775808,"f":2.50,"g":"\u00e9\/\u001f"}"#;
        conv.convert(record, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(r#"{"a":-1,"b":100.0,"c":1.0E-5,"d":12345678901234567890,"e":-9223372036854775808,"f":2.5,"g":"é/\u001F","privateIp":null,"#),
            "{text}"
        );
    }

    struct Fixed(Option<Arc<Ec2Metadata>>);

    impl Ec2MetadataSource for Fixed {
        fn metadata(&self) -> Option<Arc<Ec2Metadata>> {
            self.0.clone()
        }
    }

    #[test]
    fn record_must_be_an_object() {
        assert!(parse_object("[1]").is_err());
        assert!(parse_object("null").is_err());
        assert!(parse_object("").is_err());
        assert!(parse_object("not json").is_err());
        // Jackson stops after the first value.
        assert!(parse_object("{\"a\":1} trailing").is_ok());
    }
}
