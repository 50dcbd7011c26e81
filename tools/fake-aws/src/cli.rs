//! Command-line options, and the settings and faults they give. Fault flags override the keys of
//! `--faults JSON`; both are checked like a `POST /__control/faults` body.

use std::path::PathBuf;

use clap::Parser;

use crate::faults::{Faults, NameSet};
use crate::store::Settings;

/// Fake AWS endpoint for kinesis-agent tests: Kinesis PutRecords, Firehose PutRecordBatch and
/// CloudWatch PutMetricData on 127.0.0.1, with fault injection. See tools/fake-aws/README.md.
#[derive(Debug, Parser)]
#[command(name = "fake-aws", version)]
pub struct Cli {
    /// Port on 127.0.0.1 (0: any free port). The first stdout line tells which.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Seed of the fault RNG.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A stream or delivery stream that exists from the start (repeatable); NAME:SHARDS sets
    /// its shard count.
    #[arg(
        long = "stream",
        visible_alias = "delivery-stream",
        value_name = "NAME[:SHARDS]"
    )]
    pub streams: Vec<String>,
    /// Shards of streams created without a count.
    #[arg(long, default_value_t = 1)]
    pub shards: u32,
    /// Every name is an existing stream / delivery stream.
    #[arg(long)]
    pub auto_create: bool,
    /// Append the data of every accepted record, raw, to this file.
    #[arg(long, value_name = "PATH")]
    pub record_file: Option<PathBuf>,
    /// Do not keep accepted records in memory (counters and --record-file still work).
    #[arg(long)]
    pub discard_records: bool,
    /// Exit when standard input reaches end of file (when the parent test process goes away).
    #[arg(long)]
    pub exit_on_stdin_eof: bool,
    /// Serve HTTPS with a CA and a server certificate for 127.0.0.1 made at start.
    #[arg(long)]
    pub tls: bool,
    /// With --tls: write the CA certificate (PEM: the bundle clients trust, e.g. through
    /// SSL_CERT_FILE) to PATH before listening.
    #[arg(long, value_name = "PATH", requires = "tls")]
    pub cert_out: Option<PathBuf>,

    /// All faults as one JSON object (the body of POST /__control/faults).
    #[arg(long, value_name = "JSON")]
    pub faults: Option<String>,
    /// Fraction of the records of each batch that fail.
    #[arg(long, value_name = "FRACTION")]
    pub fail_records: Option<f64>,
    /// Error code of failed records: ProvisionedThroughputExceededException, InternalFailure or
    /// ServiceUnavailableException.
    #[arg(long, value_name = "CODE")]
    pub fail_records_code: Option<String>,
    /// Fraction of calls throttled.
    #[arg(long, value_name = "FRACTION")]
    pub throttle_calls: Option<f64>,
    /// Fraction of calls answered 500 InternalFailure.
    #[arg(long = "error-500", value_name = "FRACTION")]
    pub error_500: Option<f64>,
    /// Fraction of calls answered 503 ServiceUnavailable.
    #[arg(long = "error-503", value_name = "FRACTION")]
    pub error_503: Option<f64>,
    /// Fraction of calls whose connection is closed without an answer.
    #[arg(long, value_name = "FRACTION")]
    pub drop_connection: Option<f64>,
    /// Delay every Kinesis / Firehose answer by this many milliseconds.
    #[arg(long, value_name = "MS")]
    pub delay_ms: Option<u64>,
    /// Answer ResourceNotFoundException for this name (repeatable; * for all).
    #[arg(long, value_name = "NAME")]
    pub not_found: Vec<String>,
    /// Answer AccessDeniedException for this name (repeatable; * for all).
    #[arg(long, value_name = "NAME")]
    pub access_denied: Vec<String>,
    /// Enforce Kinesis per-shard limits (1,000 records/s, 1 MiB/s by default).
    #[arg(long)]
    pub shard_rate_limit: bool,
    #[arg(long, value_name = "N")]
    pub shard_records_per_sec: Option<u64>,
    #[arg(long, value_name = "BYTES")]
    pub shard_bytes_per_sec: Option<u64>,
    /// Apply call-level faults only to these operations (comma-separated, e.g. PutRecords).
    #[arg(long, value_name = "OP,...", value_delimiter = ',')]
    pub fault_operations: Vec<String>,
}

impl Cli {
    pub fn settings(&self) -> Settings {
        Settings {
            auto_create: self.auto_create,
            default_shards: self.shards.max(1),
            keep_records: !self.discard_records,
            seed: self.seed,
        }
    }

    /// The streams to create: (name, shards).
    pub fn streams(&self) -> Result<Vec<(String, Option<u32>)>, String> {
        self.streams
            .iter()
            .map(|s| match s.split_once(':') {
                None => Ok((s.clone(), None)),
                Some((name, shards)) => match shards.parse::<u32>() {
                    Ok(n) if n > 0 => Ok((name.to_string(), Some(n))),
                    _ => Err(format!("--stream {s}: SHARDS must be a positive number")),
                },
            })
            .collect()
    }

    pub fn faults(&self) -> Result<Faults, String> {
        let mut f: Faults = match &self.faults {
            Some(json) => serde_json::from_str(json).map_err(|e| format!("--faults: {e}"))?,
            None => Faults::default(),
        };
        let fractions = [
            (&mut f.fail_records, self.fail_records),
            (&mut f.throttle_calls, self.throttle_calls),
            (&mut f.error_500, self.error_500),
            (&mut f.error_503, self.error_503),
            (&mut f.drop_connection, self.drop_connection),
        ];
        for (slot, value) in fractions {
            if let Some(v) = value {
                *slot = v;
            }
        }
        if let Some(code) = &self.fail_records_code {
            f.fail_records_code = Some(code.clone());
        }
        if let Some(ms) = self.delay_ms {
            f.delay_ms = ms;
        }
        if !self.not_found.is_empty() {
            f.not_found = NameSet::from_cli(&self.not_found);
        }
        if !self.access_denied.is_empty() {
            f.access_denied = NameSet::from_cli(&self.access_denied);
        }
        f.shard_rate_limit |= self.shard_rate_limit;
        if let Some(n) = self.shard_records_per_sec {
            f.shard_records_per_sec = n;
        }
        if let Some(n) = self.shard_bytes_per_sec {
            f.shard_bytes_per_sec = n;
        }
        if !self.fault_operations.is_empty() {
            f.operations = Some(self.fault_operations.clone());
        }
        f.validate()?;
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("fake-aws").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn flags_override_the_json() {
        let c = cli(&[
            "--faults",
            r#"{"fail_records":0.1,"delay_ms":4}"#,
            "--fail-records",
            "0.3",
            "--not-found",
            "a",
            "--not-found",
            "b",
            "--access-denied",
            "*",
            "--fault-operations",
            "PutRecords,PutRecordBatch",
            "--error-500",
            "0.2",
        ]);
        let f = c.faults().unwrap();
        assert_eq!(f.fail_records, 0.3);
        assert_eq!(f.delay_ms, 4);
        assert_eq!(f.error_500, 0.2);
        assert_eq!(f.not_found, NameSet::Names(vec!["a".into(), "b".into()]));
        assert_eq!(f.access_denied, NameSet::All);
        assert_eq!(
            f.operations,
            Some(vec!["PutRecords".to_string(), "PutRecordBatch".to_string()])
        );
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(cli(&["--throttle-calls", "1.5"]).faults().is_err());
        assert!(cli(&["--faults", "{"]).faults().is_err());
        assert!(cli(&["--stream", "s:0"]).streams().is_err());
        assert!(Cli::try_parse_from(["fake-aws", "--fail-records", "x"]).is_err());
    }

    #[test]
    fn streams_and_settings() {
        let c = cli(&[
            "--stream",
            "a",
            "--delivery-stream",
            "b:3",
            "--shards",
            "2",
            "--discard-records",
        ]);
        assert_eq!(
            c.streams().unwrap(),
            vec![("a".to_string(), None), ("b".to_string(), Some(3))]
        );
        let s = c.settings();
        assert_eq!(s.default_shards, 2);
        assert!(!s.keep_records);
        assert!(!s.auto_create);
    }
}
