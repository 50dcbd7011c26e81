//! Kinesis Data Firehose `PutRecordBatch` behind [`PutBatch`].
//!
//! Owns: building the request and reading failed records out of the answer.

use aws_sdk_firehose::config::retry::RetryConfig;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::{PutRecordBatchResponseEntry, Record};
use bytes::Bytes;

use super::{classify, failures, invalid_request, PutBatch, RecordFailure, SendError};

pub struct FirehosePut {
    client: aws_sdk_firehose::Client,
    delivery_stream: String,
}

impl FirehosePut {
    /// `client` without the SDK's own retries, as [`super::kinesis::KinesisPut::new`].
    pub fn new(client: aws_sdk_firehose::Client, delivery_stream: String) -> Self {
        let config = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled());
        FirehosePut {
            client: aws_sdk_firehose::Client::from_conf(config.build()),
            delivery_stream,
        }
    }
}

impl PutBatch for FirehosePut {
    async fn put(&self, records: &[Bytes]) -> Result<Vec<RecordFailure>, SendError> {
        let mut entries = Vec::with_capacity(records.len());
        for data in records {
            let record = Record::builder()
                .data(Blob::from_maybe_shared(data.clone()))
                .build()
                .map_err(invalid_request)?;
            entries.push(record);
        }
        let answer = self
            .client
            .put_record_batch()
            .delivery_stream_name(&self.delivery_stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| {
                classify(
                    &e,
                    &format!("Firehose delivery stream '{}'", self.delivery_stream),
                )
            })?;
        Ok(failed_records(answer.request_responses()))
    }

    fn describe(&self) -> String {
        format!(
            "Firehose delivery stream '{}' (PutRecordBatch)",
            self.delivery_stream
        )
    }
}

/// The records of a `PutRecordBatch` answer that carry an error code.
pub fn failed_records(entries: &[PutRecordBatchResponseEntry]) -> Vec<RecordFailure> {
    failures(entries.iter().map(|e| (e.error_code(), e.error_message())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_indices_come_from_error_codes() {
        let ok = PutRecordBatchResponseEntry::builder()
            .record_id("a")
            .build();
        let bad = PutRecordBatchResponseEntry::builder()
            .error_code("ServiceUnavailableException")
            .error_message("Slow down.")
            .build();
        let failed = failed_records(&[bad, ok]);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].index, 0);
        assert_eq!(failed[0].code, "ServiceUnavailableException");
    }
}
