//! Kinesis Data Streams over awsJson1_1 (`X-Amz-Target: Kinesis_20131202.<Op>`): request parsing
//! with the service's limits, and the response bodies of PutRecords, DescribeStreamSummary and
//! ListShards. What happens to the records (faults, storing) is decided by `store`.

use std::borrow::Cow;
use std::io::Write as _;

use serde::Deserialize;

use crate::batch::{stream_name, Batch, BatchBuilder, RecordOutcome};
use crate::digits::push_decimal;
use crate::error::{arn, ApiError, Service};
use crate::shards::{hash_range, parse_hash_key, shard_id};

/// PutRecords limits (Kinesis quotas): 500 records per call, 1 MiB per record counting the
/// partition key, 5 MiB per call; partition keys of 1 to 256 characters.
pub const MAX_RECORDS: usize = 500;
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
pub const MAX_CALL_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_PARTITION_KEY_CHARS: usize = 256;

pub const PUT_RECORDS: &str = "PutRecords";
pub const DESCRIBE_STREAM_SUMMARY: &str = "DescribeStreamSummary";
pub const LIST_SHARDS: &str = "ListShards";

#[derive(Deserialize)]
struct PutRecordsInput<'a> {
    #[serde(rename = "StreamName", borrow, default)]
    stream_name: Option<Cow<'a, str>>,
    #[serde(rename = "StreamARN", borrow, default)]
    stream_arn: Option<Cow<'a, str>>,
    #[serde(rename = "Records", borrow, default)]
    records: Vec<RecordInput<'a>>,
}

#[derive(Deserialize)]
struct RecordInput<'a> {
    /// Raw bytes of the base64 text: serde_json then skips the UTF-8 check, and invalid
    /// characters fail base64 decoding anyway.
    #[serde(rename = "Data", borrow)]
    data: Cow<'a, [u8]>,
    #[serde(rename = "PartitionKey", borrow)]
    partition_key: Cow<'a, str>,
    #[serde(rename = "ExplicitHashKey", borrow, default)]
    explicit_hash_key: Option<Cow<'a, str>>,
}

/// Input of the operations that only name a stream (DescribeStreamSummary, ListShards).
#[derive(Deserialize)]
struct StreamInput<'a> {
    #[serde(rename = "StreamName", borrow, default)]
    stream_name: Option<Cow<'a, str>>,
    #[serde(rename = "StreamARN", borrow, default)]
    stream_arn: Option<Cow<'a, str>>,
}

/// Parses and validates a PutRecords body.
pub fn parse_put_records(body: &[u8]) -> Result<Batch, ApiError> {
    let input: PutRecordsInput =
        serde_json::from_slice(body).map_err(|e| ApiError::serialization(e.to_string()))?;
    let name = stream_name(input.stream_name.as_deref(), input.stream_arn.as_deref())?;
    let n = input.records.len();
    if n == 0 || n > MAX_RECORDS {
        return Err(ApiError::validation(format!(
            "Value '{n}' at 'records' failed to satisfy constraint: Member must have length \
             less than or equal to {MAX_RECORDS} and greater than or equal to 1"
        )));
    }
    let hint = input
        .records
        .iter()
        .map(|r| r.data.len() / 4 * 3 + 3 + r.partition_key.len())
        .sum();
    let mut builder = BatchBuilder::new(name, n, hint);
    let mut total = 0usize;
    for (i, record) in input.records.iter().enumerate() {
        let key_chars = record.partition_key.chars().count();
        if key_chars == 0 || key_chars > MAX_PARTITION_KEY_CHARS {
            return Err(ApiError::validation(format!(
                "Value at 'records.{}.member.partitionKey' failed to satisfy constraint: Member \
                 must have length less than or equal to {MAX_PARTITION_KEY_CHARS} and greater \
                 than or equal to 1",
                i + 1
            )));
        }
        let explicit = match record.explicit_hash_key.as_deref() {
            None => None,
            Some(text) => Some(parse_hash_key(text).ok_or_else(|| {
                ApiError::validation(format!(
                    "Value at 'records.{}.member.explicitHashKey' failed to satisfy \
                     constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{{0,38}})",
                    i + 1
                ))
            })?),
        };
        let data_len = builder.push(&record.data, &record.partition_key, explicit)?;
        let size = data_len + record.partition_key.len();
        if size > MAX_RECORD_BYTES {
            return Err(ApiError::validation(format!(
                "Value at 'records.{}.member.data' failed to satisfy constraint: Member must \
                 have length less than or equal to {MAX_RECORD_BYTES} (data plus partition key: \
                 {size} bytes)",
                i + 1
            )));
        }
        total += size;
    }
    if total > MAX_CALL_BYTES {
        return Err(ApiError::validation(format!(
            "Records size {total} bytes exceeds the PutRecords limit of {MAX_CALL_BYTES} bytes"
        )));
    }
    Ok(builder.finish())
}

/// Parses the stream name of DescribeStreamSummary / ListShards.
pub fn parse_stream_input(body: &[u8]) -> Result<String, ApiError> {
    let input: StreamInput =
        serde_json::from_slice(body).map_err(|e| ApiError::serialization(e.to_string()))?;
    stream_name(input.stream_name.as_deref(), input.stream_arn.as_deref())
}

/// A 56-digit sequence number, increasing with `sequence` (real ones start with 49 as well).
pub fn sequence_number(sequence: u64) -> String {
    format!("49{sequence:054}")
}

/// The PutRecords answer.
pub fn put_records_response(stream: &str, outcomes: &[RecordOutcome]) -> Vec<u8> {
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o, RecordOutcome::Failed { .. }))
        .count();
    let mut out = Vec::with_capacity(64 + outcomes.len() * 100);
    // Writes into a Vec cannot fail; the stream name passed validation, so it needs no escaping.
    let _ = write!(out, "{{\"FailedRecordCount\":{failed},\"Records\":[");
    for (i, outcome) in outcomes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match *outcome {
            RecordOutcome::Accepted { shard, sequence } => {
                out.extend_from_slice(b"{\"SequenceNumber\":\"49");
                push_decimal(&mut out, sequence, 54);
                out.extend_from_slice(b"\",\"ShardId\":\"shardId-");
                push_decimal(&mut out, u64::from(shard), 12);
                out.extend_from_slice(b"\"}");
            }
            RecordOutcome::Failed { shard, code } => {
                let _ = write!(
                    out,
                    "{{\"ErrorCode\":\"{code}\",\"ErrorMessage\":\"{}\"}}",
                    record_error_message(code, stream, shard)
                );
            }
        }
    }
    out.extend_from_slice(b"],\"EncryptionType\":\"NONE\"}");
    out
}

fn record_error_message(code: &str, stream: &str, shard: u32) -> String {
    if code == crate::faults::PROVISIONED_THROUGHPUT_EXCEEDED {
        format!(
            "Rate exceeded for shard shardId-{shard:012} in stream {stream} under account {}.",
            crate::error::ACCOUNT
        )
    } else {
        "Internal service failure.".to_string()
    }
}

/// The DescribeStreamSummary answer.
pub fn describe_stream_summary_response(name: &str, shards: u32, created_epoch: f64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "StreamDescriptionSummary": {
            "StreamName": name,
            "StreamARN": arn(Service::Kinesis, name),
            "StreamStatus": "ACTIVE",
            "StreamModeDetails": { "StreamMode": "PROVISIONED" },
            "RetentionPeriodHours": 24,
            "StreamCreationTimestamp": created_epoch,
            "EnhancedMonitoring": [ { "ShardLevelMetrics": [] } ],
            "EncryptionType": "NONE",
            "OpenShardCount": shards,
            "ConsumerCount": 0,
        }
    }))
    .unwrap_or_default()
}

/// The ListShards answer: every shard, no pagination.
pub fn list_shards_response(shards: u32) -> Vec<u8> {
    let list: Vec<serde_json::Value> = (0..shards)
        .map(|i| {
            let (start, end) = hash_range(i, shards);
            serde_json::json!({
                "ShardId": shard_id(i),
                "HashKeyRange": {
                    "StartingHashKey": start.to_string(),
                    "EndingHashKey": end.to_string(),
                },
                "SequenceNumberRange": { "StartingSequenceNumber": sequence_number(0) },
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "Shards": list })).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(records: &str) -> Vec<u8> {
        format!(r#"{{"StreamName":"s","Records":[{records}]}}"#).into_bytes()
    }

    fn record(data_b64: &str, key: &str) -> String {
        format!(r#"{{"Data":"{data_b64}","PartitionKey":"{key}"}}"#)
    }

    #[test]
    fn parses_records_and_keys() {
        let batch = parse_put_records(&body(&format!(
            "{},{}",
            record("aGVsbG8=", "k"),
            r#"{"Data":"","PartitionKey":"p","ExplicitHashKey":"12"}"#
        )))
        .unwrap();
        assert_eq!(batch.name, "s");
        assert_eq!(batch.records.len(), 2);
        assert_eq!(batch.data(&batch.records[0]), b"hello");
        assert_eq!(batch.partition_key(&batch.records[0]), b"k");
        assert_eq!(batch.records[1].explicit_hash_key, Some(12));
    }

    #[test]
    fn escaped_json_strings_are_decoded() {
        // "\/" is a legal JSON escape; the borrowed fast path must not be required.
        let batch = parse_put_records(
            br#"{"StreamName":"s","Records":[{"Data":"\/w==","PartitionKey":"a\u00e9"}]}"#,
        )
        .unwrap();
        assert_eq!(batch.data(&batch.records[0]), [0xff]);
        assert_eq!(batch.partition_key(&batch.records[0]), "a\u{e9}".as_bytes());
    }

    #[test]
    fn limits_give_validation_errors() {
        let code = |b: &[u8]| parse_put_records(b).unwrap_err().code;
        assert_eq!(code(&body("")), "ValidationException");
        let many = vec![record("", "k"); 501].join(",");
        assert_eq!(code(&body(&many)), "ValidationException");
        let ok500 = vec![record("", "k"); 500].join(",");
        assert!(parse_put_records(&body(&ok500)).is_ok());
        assert_eq!(code(&body(&record("", ""))), "ValidationException");
        let key257 = "k".repeat(257);
        assert_eq!(code(&body(&record("", &key257))), "ValidationException");
        let key256 = "\u{e9}".repeat(256); // 256 characters, 512 bytes
        assert!(parse_put_records(&body(&record("", &key256))).is_ok());

        // 1 MiB of data plus a 1-byte key is one byte too many.
        let b64 = |n: usize| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(vec![b'x'; n])
        };
        let at_limit = record(&b64(MAX_RECORD_BYTES - 1), "k");
        assert!(parse_put_records(&body(&at_limit)).is_ok());
        let over = record(&b64(MAX_RECORD_BYTES), "k");
        assert_eq!(code(&body(&over)), "ValidationException");
        // Six records of 1 MiB - 1 are each fine but together over 5 MiB.
        let six = vec![at_limit; 6].join(",");
        let err = parse_put_records(&body(&six)).unwrap_err();
        assert_eq!(err.code, "ValidationException");
        assert!(err.message.contains("5242880"), "{}", err.message);
    }

    #[test]
    fn malformed_bodies_are_400_not_panics() {
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            b"{\"StreamName\":5}",
            b"{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"@@\",\"PartitionKey\":\"k\"}]}",
            b"{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"AA==\"}]}",
            b"{\"Records\":[]}",
            b"{\"StreamName\":\"bad name\",\"Records\":[]}",
            b"{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"\",\"PartitionKey\":\"k\",\"ExplicitHashKey\":\"x\"}]}",
            b"\xff\xfe",
        ] {
            let err = parse_put_records(bad).unwrap_err();
            assert_eq!(err.status, 400, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn response_shape() {
        let out = put_records_response(
            "s",
            &[
                RecordOutcome::Accepted {
                    shard: 1,
                    sequence: 7,
                },
                RecordOutcome::Failed {
                    shard: 0,
                    code: crate::faults::PROVISIONED_THROUGHPUT_EXCEEDED,
                },
            ],
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["FailedRecordCount"], 1);
        assert_eq!(v["EncryptionType"], "NONE");
        let seq = v["Records"][0]["SequenceNumber"].as_str().unwrap();
        assert_eq!(seq.len(), 56);
        assert!(seq.starts_with("49") && seq.ends_with("7"));
        assert_eq!(v["Records"][0]["ShardId"], "shardId-000000000001");
        assert_eq!(
            v["Records"][1]["ErrorCode"],
            "ProvisionedThroughputExceededException"
        );
        assert_eq!(
            v["Records"][1]["ErrorMessage"],
            "Rate exceeded for shard shardId-000000000000 in stream s under account 123456789012."
        );
        assert_eq!(sequence_number(7), seq);
    }

    #[test]
    fn describe_and_list_shards_shapes() {
        let v: serde_json::Value =
            serde_json::from_slice(&describe_stream_summary_response("s", 2, 1.0)).unwrap();
        let d = &v["StreamDescriptionSummary"];
        assert_eq!(d["StreamStatus"], "ACTIVE");
        assert_eq!(d["OpenShardCount"], 2);
        assert_eq!(
            d["StreamARN"],
            "arn:aws:kinesis:us-east-1:123456789012:stream/s"
        );
        let v: serde_json::Value = serde_json::from_slice(&list_shards_response(2)).unwrap();
        let shards = v["Shards"].as_array().unwrap();
        assert_eq!(shards.len(), 2);
        assert_eq!(shards[1]["ShardId"], "shardId-000000000001");
        assert_eq!(
            shards[1]["HashKeyRange"]["EndingHashKey"],
            "340282366920938463463374607431768211455"
        );
        assert_eq!(parse_stream_input(br#"{"StreamName":"x"}"#).unwrap(), "x");
        assert!(parse_stream_input(b"{}").is_err());
    }
}
