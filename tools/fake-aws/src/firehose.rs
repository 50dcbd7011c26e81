//! Firehose over awsJson1_1 (`X-Amz-Target: Firehose_20150804.<Op>`): PutRecordBatch parsing
//! with the service's limits, and the bodies of the PutRecordBatch and DescribeDeliveryStream
//! answers.

use std::borrow::Cow;
use std::io::Write as _;

use serde::Deserialize;

use crate::batch::{validate_name, Batch, BatchBuilder, RecordOutcome};
use crate::digits::push_hex;
use crate::error::{arn, ApiError, Service};

/// PutRecordBatch limits (Firehose quotas): 500 records per call, 1,000 KiB per record,
/// 4 MiB per call.
pub const MAX_RECORDS: usize = 500;
pub const MAX_RECORD_BYTES: usize = 1000 * 1024;
pub const MAX_CALL_BYTES: usize = 4 * 1024 * 1024;
/// Delivery stream names are at most 64 characters.
pub const MAX_NAME_LEN: usize = 64;

pub const PUT_RECORD_BATCH: &str = "PutRecordBatch";
pub const DESCRIBE_DELIVERY_STREAM: &str = "DescribeDeliveryStream";

#[derive(Deserialize)]
struct PutRecordBatchInput<'a> {
    #[serde(rename = "DeliveryStreamName", borrow, default)]
    delivery_stream_name: Option<Cow<'a, str>>,
    #[serde(rename = "Records", borrow, default)]
    records: Vec<RecordInput<'a>>,
}

#[derive(Deserialize)]
struct RecordInput<'a> {
    /// Raw bytes of the base64 text: serde_json then skips the UTF-8 check, and invalid
    /// characters fail base64 decoding anyway.
    #[serde(rename = "Data", borrow)]
    data: Cow<'a, [u8]>,
}

#[derive(Deserialize)]
struct DeliveryStreamInput<'a> {
    #[serde(rename = "DeliveryStreamName", borrow, default)]
    delivery_stream_name: Option<Cow<'a, str>>,
}

fn delivery_stream_name(name: Option<&str>) -> Result<String, ApiError> {
    let name = name.ok_or_else(|| {
        ApiError::validation(
            "Value null at 'deliveryStreamName' failed to satisfy constraint: Member must not be null",
        )
    })?;
    validate_name(name, "deliveryStreamName", MAX_NAME_LEN)?;
    Ok(name.to_string())
}

/// Parses and validates a PutRecordBatch body. Records have an empty partition key.
pub fn parse_put_record_batch(body: &[u8]) -> Result<Batch, ApiError> {
    let input: PutRecordBatchInput =
        serde_json::from_slice(body).map_err(|e| ApiError::serialization(e.to_string()))?;
    let name = delivery_stream_name(input.delivery_stream_name.as_deref())?;
    let n = input.records.len();
    if n == 0 || n > MAX_RECORDS {
        return Err(ApiError::validation(format!(
            "Value '{n}' at 'records' failed to satisfy constraint: Member must have length \
             less than or equal to {MAX_RECORDS} and greater than or equal to 1"
        )));
    }
    let hint = input.records.iter().map(|r| r.data.len() / 4 * 3 + 3).sum();
    let mut builder = BatchBuilder::new(name, n, hint);
    let mut total = 0usize;
    for (i, record) in input.records.iter().enumerate() {
        let size = builder.push(&record.data, "", None)?;
        if size > MAX_RECORD_BYTES {
            return Err(ApiError::validation(format!(
                "Value at 'records.{}.member.data' failed to satisfy constraint: Member must \
                 have length less than or equal to {MAX_RECORD_BYTES}",
                i + 1
            )));
        }
        total += size;
    }
    if total > MAX_CALL_BYTES {
        return Err(ApiError::validation(format!(
            "Records size {total} bytes exceeds the PutRecordBatch limit of {MAX_CALL_BYTES} bytes"
        )));
    }
    Ok(builder.finish())
}

/// Parses the name of DescribeDeliveryStream.
pub fn parse_delivery_stream_input(body: &[u8]) -> Result<String, ApiError> {
    let input: DeliveryStreamInput =
        serde_json::from_slice(body).map_err(|e| ApiError::serialization(e.to_string()))?;
    delivery_stream_name(input.delivery_stream_name.as_deref())
}

/// The PutRecordBatch answer. Record ids are 32 hex digits (real ones are longer and opaque).
pub fn put_record_batch_response(outcomes: &[RecordOutcome]) -> Vec<u8> {
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o, RecordOutcome::Failed { .. }))
        .count();
    let mut out = Vec::with_capacity(64 + outcomes.len() * 60);
    // Writes into a Vec cannot fail.
    let _ = write!(
        out,
        "{{\"FailedPutCount\":{failed},\"Encrypted\":false,\"RequestResponses\":["
    );
    for (i, outcome) in outcomes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = match *outcome {
            RecordOutcome::Accepted { sequence, .. } => {
                out.extend_from_slice(b"{\"RecordId\":\"");
                push_hex(&mut out, sequence, 32);
                out.extend_from_slice(b"\"}");
                Ok(())
            }
            RecordOutcome::Failed { code, .. } => write!(
                out,
                "{{\"ErrorCode\":\"{code}\",\"ErrorMessage\":\"{}\"}}",
                if code == crate::faults::SERVICE_UNAVAILABLE {
                    "Slow down."
                } else {
                    "Internal service failure."
                }
            ),
        };
    }
    out.extend_from_slice(b"]}");
    out
}

/// The DescribeDeliveryStream answer: an ACTIVE DirectPut stream with no destinations.
pub fn describe_delivery_stream_response(name: &str, created_epoch: f64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "DeliveryStreamDescription": {
            "DeliveryStreamName": name,
            "DeliveryStreamARN": arn(Service::Firehose, name),
            "DeliveryStreamStatus": "ACTIVE",
            "DeliveryStreamType": "DirectPut",
            "VersionId": "1",
            "CreateTimestamp": created_epoch,
            "Destinations": [],
            "HasMoreDestinations": false,
        }
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn body(records: &str) -> Vec<u8> {
        format!(r#"{{"DeliveryStreamName":"d","Records":[{records}]}}"#).into_bytes()
    }

    fn record(data: &[u8]) -> String {
        format!(
            r#"{{"Data":"{}"}}"#,
            base64::engine::general_purpose::STANDARD.encode(data)
        )
    }

    #[test]
    fn parses_records() {
        let batch =
            parse_put_record_batch(&body(&[record(b"a\n"), record(b"bc")].join(","))).unwrap();
        assert_eq!(batch.name, "d");
        assert_eq!(batch.data(&batch.records[1]), b"bc");
        assert_eq!(batch.partition_key(&batch.records[1]), b"");
    }

    #[test]
    fn limits() {
        let code = |b: &[u8]| parse_put_record_batch(b).unwrap_err().code;
        assert_eq!(code(&body("")), "ValidationException");
        assert_eq!(
            code(&body(&vec![record(b"x"); 501].join(","))),
            "ValidationException"
        );
        assert!(parse_put_record_batch(&body(&vec![record(b"x"); 500].join(","))).is_ok());
        let at_limit = record(&vec![b'x'; MAX_RECORD_BYTES]);
        assert!(parse_put_record_batch(&body(&at_limit)).is_ok());
        let over = record(&vec![b'x'; MAX_RECORD_BYTES + 1]);
        assert_eq!(code(&body(&over)), "ValidationException");
        // 5 records of 1,000 KiB = 5,120,000 B > 4 MiB.
        assert_eq!(
            code(&body(&vec![at_limit; 5].join(","))),
            "ValidationException"
        );
        assert_eq!(code(br#"{"Records":[{"Data":""}]}"#), "ValidationException");
        assert_eq!(code(b"nope"), "SerializationException");
        let long = format!(
            r#"{{"DeliveryStreamName":"{}","Records":[{{"Data":""}}]}}"#,
            "a".repeat(65)
        );
        assert_eq!(code(long.as_bytes()), "ValidationException");
    }

    #[test]
    fn response_shapes() {
        let out = put_record_batch_response(&[
            RecordOutcome::Accepted {
                shard: 0,
                sequence: 10,
            },
            RecordOutcome::Failed {
                shard: 0,
                code: crate::faults::SERVICE_UNAVAILABLE,
            },
        ]);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["FailedPutCount"], 1);
        assert_eq!(v["Encrypted"], false);
        assert_eq!(
            v["RequestResponses"][0]["RecordId"].as_str().unwrap().len(),
            32
        );
        assert_eq!(
            v["RequestResponses"][1]["ErrorCode"],
            "ServiceUnavailableException"
        );
        assert_eq!(v["RequestResponses"][1]["ErrorMessage"], "Slow down.");

        let v: serde_json::Value =
            serde_json::from_slice(&describe_delivery_stream_response("d", 2.5)).unwrap();
        assert_eq!(
            v["DeliveryStreamDescription"]["DeliveryStreamStatus"],
            "ACTIVE"
        );
        assert_eq!(
            parse_delivery_stream_input(br#"{"DeliveryStreamName":"d"}"#).unwrap(),
            "d"
        );
    }
}
