//! A decoded PutRecords / PutRecordBatch request, shared by the Kinesis and Firehose routes.
//!
//! Every record's bytes are base64-decoded into one buffer per request, and the partition keys are
//! appended to the same buffer, so a batch costs one allocation for its bytes and one for its index
//! however many records it has; stored records are cheap slices of that buffer.
//! Also here: the stream name rules both services share.

use std::ops::Range;

use base64::Engine as _;
use bytes::Bytes;

use crate::error::ApiError;

/// A decoded batch of records for one stream or delivery stream.
#[derive(Debug, Clone)]
pub struct Batch {
    pub name: String,
    pub buf: Bytes,
    pub records: Vec<BatchRecord>,
}

/// One record of a [`Batch`], as ranges into [`Batch::buf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    pub data: Range<usize>,
    pub partition_key: Range<usize>,
    /// `ExplicitHashKey`, when the request gave one (Kinesis only).
    pub explicit_hash_key: Option<u128>,
}

impl Batch {
    pub fn data(&self, record: &BatchRecord) -> &[u8] {
        &self.buf[record.data.clone()]
    }

    pub fn partition_key(&self, record: &BatchRecord) -> &[u8] {
        &self.buf[record.partition_key.clone()]
    }

    /// The record's data as a slice sharing the batch buffer.
    pub fn data_bytes(&self, record: &BatchRecord) -> Bytes {
        self.buf.slice(record.data.clone())
    }

    pub fn partition_key_bytes(&self, record: &BatchRecord) -> Bytes {
        self.buf.slice(record.partition_key.clone())
    }
}

/// What happened to one record of a batch. Firehose answers use `sequence` as the record id and
/// ignore `shard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    Accepted { shard: u32, sequence: u64 },
    Failed { shard: u32, code: &'static str },
}

/// Builds a [`Batch`]: decodes each record's base64 data into the shared buffer.
pub struct BatchBuilder {
    name: String,
    buf: Vec<u8>,
    records: Vec<BatchRecord>,
}

impl BatchBuilder {
    /// `capacity_hint` is the total length of the base64 texts and keys.
    pub fn new(name: String, records: usize, capacity_hint: usize) -> BatchBuilder {
        BatchBuilder {
            name,
            buf: Vec::with_capacity(capacity_hint),
            records: Vec::with_capacity(records),
        }
    }

    /// Decodes `data_b64` and appends `partition_key`; returns the decoded data's length.
    pub fn push(
        &mut self,
        data_b64: impl AsRef<[u8]>,
        partition_key: &str,
        explicit_hash_key: Option<u128>,
    ) -> Result<usize, ApiError> {
        let start = self.buf.len();
        decode_base64(data_b64.as_ref(), &mut self.buf).map_err(|e| {
            self.buf.truncate(start);
            ApiError::serialization(format!(
                "Records[{}].Data is not valid base64: {e}",
                self.records.len()
            ))
        })?;
        let data_end = self.buf.len();
        self.buf.extend_from_slice(partition_key.as_bytes());
        self.records.push(BatchRecord {
            data: start..data_end,
            partition_key: data_end..self.buf.len(),
            explicit_hash_key,
        });
        Ok(data_end - start)
    }

    pub fn finish(self) -> Batch {
        Batch {
            name: self.name,
            buf: Bytes::from(self.buf),
            records: self.records,
        }
    }
}

/// Appends the bytes that standard, padded base64 `text` encodes to `out`. Decoding is the largest single
/// cost of a PutRecords call, so this uses base64's SIMD engine (AVX2 / NEON, detected at run
/// time, scalar otherwise) where the target has one.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
))]
pub fn decode_base64(text: &[u8], out: &mut Vec<u8>) -> Result<(), base64::DecodeError> {
    use base64::engine::{GeneralPurposeConfig, Simd};
    static ENGINE: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
    ENGINE
        .get_or_init(|| Simd::standard(GeneralPurposeConfig::new()))
        .decode_vec(text, out)
}

#[cfg(not(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
)))]
pub fn decode_base64(text: &[u8], out: &mut Vec<u8>) -> Result<(), base64::DecodeError> {
    base64::engine::general_purpose::STANDARD.decode_vec(text, out)
}

/// Checks a stream / delivery stream name: 1..=`max_len` characters of `[a-zA-Z0-9_.-]`.
pub fn validate_name(name: &str, field: &str, max_len: usize) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= max_len
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "Value '{}' at '{field}' failed to satisfy constraint: Member must satisfy regular \
             expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and {max_len}",
            name.escape_default()
        )))
    }
}

/// The stream name from `StreamName`, or from the last part of `StreamARN`
/// (`arn:aws:kinesis:region:account:stream/NAME`).
pub fn stream_name(name: Option<&str>, arn: Option<&str>) -> Result<String, ApiError> {
    let name = match (name, arn) {
        (Some(name), _) => name,
        (None, Some(arn)) => arn.rsplit_once('/').map(|(_, n)| n).unwrap_or(""),
        (None, None) => {
            return Err(ApiError::validation(
                "Either StreamName or StreamARN must be provided",
            ))
        }
    };
    validate_name(name, "streamName", 128)?;
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_shares_one_buffer() {
        let mut b = BatchBuilder::new("s".into(), 2, 32);
        assert_eq!(b.push("aGVsbG8=", "k1", None).unwrap(), 5);
        b.push("", "k2", Some(7)).unwrap();
        let batch = b.finish();
        assert_eq!(batch.data(&batch.records[0]), b"hello");
        assert_eq!(batch.partition_key(&batch.records[0]), b"k1");
        assert_eq!(batch.data(&batch.records[1]), b"");
        assert_eq!(batch.partition_key(&batch.records[1]), b"k2");
        assert_eq!(batch.records[1].explicit_hash_key, Some(7));
        assert_eq!(&batch.data_bytes(&batch.records[0])[..], b"hello");
    }

    #[test]
    fn simd_decoding_matches_the_scalar_engine() {
        use base64::Engine as _;
        let std = &base64::engine::general_purpose::STANDARD;
        for len in [0usize, 1, 2, 3, 31, 32, 33, 95, 96, 97, 200, 1000, 4099] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let text = std.encode(&data);
            let mut out = vec![9u8];
            decode_base64(text.as_bytes(), &mut out).unwrap();
            assert_eq!(out[1..], data[..], "len {len}");
        }
        for bad in ["A", "AB=", "A===", "AAAA!AAA", "AAA=AAAA", "AB==\n"] {
            let mut out = Vec::new();
            assert_eq!(
                decode_base64(bad.as_bytes(), &mut out).is_ok(),
                std.decode(bad).is_ok(),
                "{bad:?}"
            );
        }
        // Non-canonical trailing bits are rejected by both.
        assert!(decode_base64(b"AB==", &mut Vec::new()).is_err());
    }

    #[test]
    fn bad_base64_is_a_serialization_error() {
        let mut b = BatchBuilder::new("s".into(), 1, 8);
        let err = b.push("not base64!", "k", None).unwrap_err();
        assert_eq!(err.code, "SerializationException");
        assert!(err.message.contains("Records[0]"), "{}", err.message);
    }

    #[test]
    fn names() {
        assert!(validate_name("my-stream_1.a", "streamName", 128).is_ok());
        assert!(validate_name("", "streamName", 128).is_err());
        assert!(validate_name("a b", "streamName", 128).is_err());
        assert!(validate_name(&"a".repeat(65), "deliveryStreamName", 64).is_err());
        assert_eq!(
            stream_name(None, Some("arn:aws:kinesis:us-east-1:1:stream/logs")).unwrap(),
            "logs"
        );
        assert_eq!(
            stream_name(Some("x"), Some("arn:...:stream/y")).unwrap(),
            "x"
        );
        assert_eq!(
            stream_name(None, None).unwrap_err().code,
            "ValidationException"
        );
    }
}
