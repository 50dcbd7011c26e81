//! Kinesis Data Streams `PutRecords` behind [`PutBatch`].
//!
//! Owns: building the request (stream name, not ARN: kinesalite needs the name, and the Java
//! agent sends the name too), partition keys, and reading failed records out of the answer.

use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, PutRecordsResultEntry};
use bytes::Bytes;
use md5::{Digest, Md5};
use rand::Rng;

use super::{classify, failures, invalid_request, kpl, PutBatch, RecordFailure, SendError};
use crate::config::PartitionKeyOption;
use crate::metrics::Events;
use std::sync::Arc;

pub struct KinesisPut {
    client: aws_sdk_kinesis::Client,
    stream: String,
    keys: PartitionKeyOption,
    /// `kplAggregation`: lines packed into aggregated records of at most this many bytes.
    aggregate: Option<usize>,
    /// Told how many Kinesis records each aggregated call got accepted.
    events: Option<Arc<dyn Events>>,
}

impl KinesisPut {
    /// `client` as configured, without the SDK's own retries: the sender retries (only the
    /// failed records, with the Java agent's backoff), so each call is one attempt and
    /// `RecordSendAttempts` counts the calls made.
    pub fn new(client: aws_sdk_kinesis::Client, stream: String, keys: PartitionKeyOption) -> Self {
        let config = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled());
        KinesisPut {
            client: aws_sdk_kinesis::Client::from_conf(config.build()),
            stream,
            keys,
            aggregate: None,
            events: None,
        }
    }

    /// Packs the lines of each call into KPL aggregated records of at most `bytes` bytes
    /// (None: one line per record). A failed aggregated record fails all of its lines, which
    /// the sender sends again.
    pub fn aggregating(mut self, bytes: Option<usize>, events: Arc<dyn Events>) -> Self {
        self.aggregate = bytes;
        self.events = bytes.map(|_| events);
        self
    }

    fn entry(&self, data: Bytes, key: String) -> Result<PutRecordsRequestEntry, SendError> {
        PutRecordsRequestEntry::builder()
            .data(Blob::from_maybe_shared(data))
            .partition_key(key)
            .build()
            .map_err(invalid_request)
    }
}

impl PutBatch for KinesisPut {
    async fn put(&self, records: &[Bytes]) -> Result<Vec<RecordFailure>, SendError> {
        let groups = self.aggregate.map(|bytes| kpl::group(records, bytes));
        let mut entries = Vec::with_capacity(groups.as_ref().map_or(records.len(), Vec::len));
        match &groups {
            None => {
                for data in records {
                    entries.push(self.entry(data.clone(), partition_key(self.keys, data))?);
                }
            }
            Some(groups) => {
                for group in groups {
                    let lines = &records[group.lines.clone()];
                    // One random key per aggregated record (DETERMINISTIC keys are refused
                    // with kplAggregation by the configuration).
                    let key = partition_key(PartitionKeyOption::Random, &[]);
                    let data = if group.is_aggregated() {
                        kpl::encode(lines, &key)
                    } else {
                        lines[0].clone()
                    };
                    entries.push(self.entry(data, key)?);
                }
            }
        }
        let answer = self
            .client
            .put_records()
            .stream_name(&self.stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| classify(&e, &format!("Kinesis stream '{}'", self.stream)))?;
        let failed = failed_records(answer.records());
        if let (Some(events), Some(groups)) = (&self.events, &groups) {
            events.kinesis_records_sent(groups.len().saturating_sub(failed.len()) as u64);
        }
        Ok(match groups {
            None => failed,
            // Every line of a failed aggregated record failed.
            Some(groups) => failed
                .into_iter()
                .filter_map(|f| Some((groups.get(f.index)?.lines.clone(), f)))
                .flat_map(|(lines, f)| {
                    lines.map(move |index| RecordFailure {
                        index,
                        code: f.code.clone(),
                        message: f.message.clone(),
                    })
                })
                .collect(),
        })
    }

    fn describe(&self) -> String {
        format!("Kinesis stream '{}' (PutRecords)", self.stream)
    }
}

/// The records of a `PutRecords` answer that carry an error code.
pub fn failed_records(entries: &[PutRecordsResultEntry]) -> Vec<RecordFailure> {
    failures(entries.iter().map(|e| (e.error_code(), e.error_message())))
}

/// `RANDOM`: a uniform number in [0, 1 000 000) written as a decimal, like the Java agent's
/// `Double.toString(nextDouble(1000000))` (here with 6 decimals, so at most 13 characters).
/// `DETERMINISTIC`: the hex MD5 of the record's bytes. The Java agent hashes its whole read
/// buffer by accident (reference 5.3), so its keys differ; ours depend on the record alone.
pub fn partition_key(option: PartitionKeyOption, data: &[u8]) -> String {
    match option {
        PartitionKeyOption::Random => {
            // The same values and text as `format!("{x:.6}")` of a uniform f64 in
            // [0, 1 000 000), without float formatting (about a tenth of the per-record cost).
            random_key(rand::rng().random_range(0..1_000_000_000_000))
        }
        PartitionKeyOption::Deterministic => {
            let digest = Md5::digest(data);
            digest.iter().map(|b| format!("{b:02x}")).collect()
        }
    }
}

/// `micros` (below 10^12) as `<seconds>.<6 digits>`, e.g. `482913.000417`, written digit by
/// digit rather than through `format!`'s machinery.
fn random_key(micros: u64) -> String {
    let mut digits = [0u8; 13];
    let mut at = digits.len();
    let (mut whole, mut fraction) = (micros / 1_000_000, micros % 1_000_000);
    for _ in 0..6 {
        at -= 1;
        digits[at] = b'0' + (fraction % 10) as u8;
        fraction /= 10;
    }
    at -= 1;
    digits[at] = b'.';
    loop {
        at -= 1;
        digits[at] = b'0' + (whole % 10) as u8;
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    digits[at..].iter().map(|&d| d as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_indices_come_from_error_codes() {
        let ok = PutRecordsResultEntry::builder()
            .sequence_number("1")
            .shard_id("shardId-0")
            .build();
        let bad = PutRecordsResultEntry::builder()
            .error_code("ProvisionedThroughputExceededException")
            .error_message("Rate exceeded")
            .build();
        let failed = failed_records(&[ok.clone(), bad.clone(), ok, bad]);
        assert_eq!(
            failed.iter().map(|f| f.index).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert_eq!(failed[0].code, "ProvisionedThroughputExceededException");
        assert_eq!(failed[0].message, "Rate exceeded");
    }

    #[test]
    fn random_keys_are_seconds_dot_six_digits() {
        for micros in [0, 7, 999_999, 1_000_000, 482_913_000_417, 999_999_999_999] {
            assert_eq!(
                random_key(micros),
                format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
            );
        }
    }

    #[test]
    fn partition_keys() {
        let k = partition_key(PartitionKeyOption::Deterministic, b"hello\n");
        assert_eq!(k, "b1946ac92492d2347c6235b4d2611184");
        for _ in 0..1000 {
            let k = partition_key(PartitionKeyOption::Random, b"x");
            assert!(
                k.len() <= crate::config::KINESIS_KEY_RESERVE && !k.is_empty(),
                "{k}"
            );
            let v: f64 = k.parse().expect("a number");
            assert!((0.0..1_000_000.0).contains(&v));
        }
    }
}
