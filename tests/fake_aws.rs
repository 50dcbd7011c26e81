//! tools/fake-aws against the AWS SDK for Rust: what the fake answers is what the SDK parses,
//! for successes, partial failures and every whole-call fault. Needs `cargo build -p fake-aws`
//! (run by `scripts/test`).
//!
//! The clients are built from `Config::builder()` with static credentials, a fixed region and
//! retries off, so no environment is read and each fault reaches the test as the SDK sees it.

mod support;

use aws_sdk_firehose::types::Record;
use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use support::fake::FakeAws;

fn kinesis(fake: &FakeAws) -> aws_sdk_kinesis::Client {
    let conf = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&fake.endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_kinesis::Client::from_conf(conf)
}

fn firehose(fake: &FakeAws) -> aws_sdk_firehose::Client {
    let conf = aws_sdk_firehose::Config::builder()
        .behavior_version(aws_sdk_firehose::config::BehaviorVersion::latest())
        .endpoint_url(&fake.endpoint)
        .region(aws_sdk_firehose::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_firehose::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .retry_config(aws_sdk_firehose::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_firehose::Client::from_conf(conf)
}

/// `n` records `line-<i>\n` (record 3 binary) with partition keys `pk-<i>`.
fn lines(n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let data = if i == 3 {
                vec![0, 0xff, b'\n', 0x80]
            } else {
                format!("line-{i}\n").into_bytes()
            };
            (format!("pk-{i}"), data)
        })
        .collect()
}

fn entries(records: &[(String, Vec<u8>)]) -> Vec<PutRecordsRequestEntry> {
    records
        .iter()
        .map(|(key, data)| {
            PutRecordsRequestEntry::builder()
                .partition_key(key)
                .data(Blob::new(data.clone()))
                .build()
                .expect("entry")
        })
        .collect()
}

fn firehose_records(records: &[(String, Vec<u8>)]) -> Vec<Record> {
    records
        .iter()
        .map(|(_, data)| {
            Record::builder()
                .data(aws_sdk_firehose::primitives::Blob::new(data.clone()))
                .build()
                .expect("record")
        })
        .collect()
}

fn status<E>(err: &SdkError<E, aws_smithy_runtime_api::http::Response>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

#[tokio::test]
async fn kinesis_put_records_arrive_byte_for_byte() {
    let fake = FakeAws::start(&["--stream", "logs"]);
    let client = kinesis(&fake);
    let sent = lines(20);
    let out = client
        .put_records()
        .stream_name("logs")
        .set_records(Some(entries(&sent)))
        .send()
        .await
        .expect("PutRecords");
    assert_eq!(out.failed_record_count(), Some(0));
    assert_eq!(out.records().len(), 20);
    let mut last = String::new();
    for entry in out.records() {
        let seq = entry.sequence_number().expect("sequence number");
        assert_eq!(seq.len(), 56);
        assert!(seq > last.as_str(), "sequence numbers increase");
        last = seq.to_string();
        assert_eq!(entry.shard_id(), Some("shardId-000000000000"));
        assert_eq!(entry.error_code(), None);
    }
    assert_eq!(fake.records("logs"), sent);
    let stats = fake.stats();
    assert_eq!(stats["destinations"]["logs"]["records_accepted"], 20);
    assert_eq!(stats["operations"]["PutRecords"], 1);

    fake.reset();
    assert!(fake.records("logs").is_empty());
}

#[tokio::test]
async fn kinesis_partial_failure_is_parsed_and_only_accepted_records_are_kept() {
    let fake = FakeAws::start(&["--stream", "logs", "--seed", "7"]);
    fake.set_faults(r#"{"fail_records":0.3}"#);
    let client = kinesis(&fake);
    let sent = lines(10);
    let out = client
        .put_records()
        .stream_name("logs")
        .set_records(Some(entries(&sent)))
        .send()
        .await
        .expect("PutRecords answers 200 with failed entries");
    assert_eq!(out.failed_record_count(), Some(3));
    let mut kept = Vec::new();
    for (entry, record) in out.records().iter().zip(&sent) {
        match entry.error_code() {
            Some(code) => {
                assert_eq!(code, "ProvisionedThroughputExceededException");
                assert!(entry
                    .error_message()
                    .unwrap()
                    .starts_with("Rate exceeded for shard"));
                assert_eq!(entry.sequence_number(), None);
            }
            None => kept.push(record.clone()),
        }
    }
    assert_eq!(kept.len(), 7);
    assert_eq!(fake.records("logs"), kept);

    fake.set_faults(r#"{"fail_records":1.0,"fail_records_code":"InternalFailure"}"#);
    let out = client
        .put_records()
        .stream_name("logs")
        .set_records(Some(entries(&sent[..2])))
        .send()
        .await
        .expect("PutRecords");
    assert_eq!(out.failed_record_count(), Some(2));
    assert_eq!(out.records()[0].error_code(), Some("InternalFailure"));
    assert_eq!(fake.stats()["record_errors"]["InternalFailure"], 2);
}

#[tokio::test]
async fn kinesis_throttling_is_a_provisioned_throughput_exceeded_error() {
    let fake = FakeAws::start(&["--stream", "logs", "--throttle-calls", "1"]);
    let err = kinesis(&fake)
        .put_records()
        .stream_name("logs")
        .set_records(Some(entries(&lines(3))))
        .send()
        .await
        .expect_err("throttled");
    assert_eq!(status(&err), Some(400));
    let service_err = err.into_service_error();
    assert!(
        service_err.is_provisioned_throughput_exceeded_exception(),
        "{service_err:?}"
    );
    assert!(fake.records("logs").is_empty());
    assert_eq!(
        fake.stats()["call_errors"]["ProvisionedThroughputExceededException"],
        1
    );
}

#[tokio::test]
async fn unknown_stream_is_resource_not_found_until_created() {
    let fake = FakeAws::start(&[]);
    let client = kinesis(&fake);
    let put = || {
        client
            .put_records()
            .stream_name("later")
            .set_records(Some(entries(&lines(2))))
            .send()
    };
    let err = put()
        .await
        .expect_err("no such stream")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    assert_eq!(
        err.message(),
        Some("Stream later under account 123456789012 not found.")
    );
    let err = client
        .describe_stream_summary()
        .stream_name("later")
        .send()
        .await
        .expect_err("no such stream")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    fake.create("later");
    put().await.expect("exists now");
    assert_eq!(fake.records("later").len(), 2);

    // The not_found fault hides an existing stream.
    fake.set_faults(r#"{"not_found":["later"]}"#);
    let err = put().await.expect_err("hidden").into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
}

#[tokio::test]
async fn whole_call_faults_reach_the_sdk_as_the_real_errors() {
    let fake = FakeAws::start(&["--stream", "logs"]);
    let client = kinesis(&fake);
    let put = || {
        client
            .put_records()
            .stream_name("logs")
            .set_records(Some(entries(&lines(2))))
            .send()
    };

    fake.set_faults(r#"{"error_500":1}"#);
    let err = put().await.expect_err("500");
    assert_eq!(status(&err), Some(500));
    assert_eq!(err.into_service_error().code(), Some("InternalFailure"));

    fake.set_faults(r#"{"error_503":1}"#);
    let err = put().await.expect_err("503");
    assert_eq!(status(&err), Some(503));
    assert_eq!(err.into_service_error().code(), Some("ServiceUnavailable"));

    fake.set_faults(r#"{"access_denied":true}"#);
    let err = put().await.expect_err("denied").into_service_error();
    assert!(err.is_access_denied_exception(), "{err:?}");

    fake.set_faults(r#"{"drop_connection":1}"#);
    let err = put().await.expect_err("dropped");
    assert!(
        matches!(
            err,
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        ),
        "a closed connection is a dispatch/response failure, got {err:?}"
    );

    fake.set_faults(r#"{"delay_ms":150}"#);
    let started = std::time::Instant::now();
    put().await.expect("delayed but answered");
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));

    assert_eq!(
        fake.records("logs").len(),
        2,
        "only the last call was accepted"
    );
    let stats = fake.stats();
    assert_eq!(stats["dropped_connections"], 1);
    assert_eq!(stats["destinations"]["logs"]["calls"], 5);
    assert_eq!(stats["destinations"]["logs"]["calls_failed"], 4);
}

#[tokio::test]
async fn kinesis_shards_follow_the_md5_of_the_partition_key() {
    let fake = FakeAws::start(&["--stream", "sharded:4"]);
    let client = kinesis(&fake);
    let summary = client
        .describe_stream_summary()
        .stream_name("sharded")
        .send()
        .await
        .expect("DescribeStreamSummary");
    let summary = summary.stream_description_summary().expect("summary");
    assert_eq!(summary.open_shard_count(), 4);
    assert_eq!(summary.stream_status().as_str(), "ACTIVE");

    let shards = client
        .list_shards()
        .stream_name("sharded")
        .send()
        .await
        .expect("ListShards");
    let ranges: Vec<(String, u128, u128)> = shards
        .shards()
        .iter()
        .map(|s| {
            let r = s.hash_key_range().expect("range");
            (
                s.shard_id().to_string(),
                r.starting_hash_key().parse().unwrap(),
                r.ending_hash_key().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranges.len(), 4);

    let sent = lines(40);
    let out = client
        .put_records()
        .stream_name("sharded")
        .set_records(Some(entries(&sent)))
        .send()
        .await
        .expect("PutRecords");
    let mut used = std::collections::BTreeSet::new();
    for (entry, (key, _)) in out.records().iter().zip(&sent) {
        use md5::Digest as _;
        let hash = u128::from_be_bytes(md5::Md5::digest(key.as_bytes()).into());
        let owner = ranges
            .iter()
            .find(|(_, start, end)| (*start..=*end).contains(&hash))
            .map(|(id, _, _)| id.as_str());
        assert_eq!(entry.shard_id(), owner, "record {key}");
        used.insert(entry.shard_id().unwrap().to_string());
    }
    assert_eq!(used.len(), 4, "40 keys spread over all 4 shards");
}

#[tokio::test]
async fn firehose_put_record_batch_success_and_partial_failure() {
    let fake = FakeAws::start(&["--delivery-stream", "delivery"]);
    let client = firehose(&fake);
    let described = client
        .describe_delivery_stream()
        .delivery_stream_name("delivery")
        .send()
        .await
        .expect("DescribeDeliveryStream");
    assert_eq!(
        described
            .delivery_stream_description()
            .map(|d| d.delivery_stream_status().as_str()),
        Some("ACTIVE")
    );

    let sent = lines(8);
    let out = client
        .put_record_batch()
        .delivery_stream_name("delivery")
        .set_records(Some(firehose_records(&sent)))
        .send()
        .await
        .expect("PutRecordBatch");
    assert_eq!(out.failed_put_count(), 0);
    assert_eq!(out.encrypted(), Some(false));
    assert!(out
        .request_responses()
        .iter()
        .all(|r| r.record_id().is_some()));
    let data: Vec<Vec<u8>> = sent.iter().map(|(_, d)| d.clone()).collect();
    let got: Vec<Vec<u8>> = fake
        .records("delivery")
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    assert_eq!(got, data);

    fake.reset();
    fake.set_faults(r#"{"fail_records":0.5}"#);
    let out = client
        .put_record_batch()
        .delivery_stream_name("delivery")
        .set_records(Some(firehose_records(&sent)))
        .send()
        .await
        .expect("PutRecordBatch");
    assert_eq!(out.failed_put_count(), 4);
    let mut kept = Vec::new();
    for (resp, d) in out.request_responses().iter().zip(&data) {
        match resp.error_code() {
            Some(code) => {
                assert_eq!(code, "ServiceUnavailableException");
                assert_eq!(resp.record_id(), None);
            }
            None => kept.push(d.clone()),
        }
    }
    let got: Vec<Vec<u8>> = fake
        .records("delivery")
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    assert_eq!(got, kept);

    fake.set_faults(r#"{"throttle_calls":1}"#);
    let err = client
        .put_record_batch()
        .delivery_stream_name("delivery")
        .set_records(Some(firehose_records(&sent)))
        .send()
        .await
        .expect_err("throttled");
    assert_eq!(status(&err), Some(503));
    assert!(err.into_service_error().is_service_unavailable_exception());

    fake.set_faults("{}");
    let err = client
        .put_record_batch()
        .delivery_stream_name("missing")
        .set_records(Some(firehose_records(&sent)))
        .send()
        .await
        .expect_err("missing")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
}

#[test]
fn record_file_gets_the_raw_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("records.bin");
    let fake = FakeAws::start(&[
        "--auto-create",
        "--record-file",
        path.to_str().expect("utf-8 path"),
    ]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sent = lines(5);
    runtime
        .block_on(
            kinesis(&fake)
                .put_records()
                .stream_name("any-name")
                .set_records(Some(entries(&sent)))
                .send(),
        )
        .expect("auto-created stream");
    let want: Vec<u8> = sent.iter().flat_map(|(_, d)| d.clone()).collect();
    assert_eq!(std::fs::read(&path).expect("record file"), want);
}
