//! The fake's state: streams (one namespace for Kinesis streams and Firehose delivery streams),
//! the records they accepted, counters, CloudWatch datums, the current faults and their RNG, and
//! the optional record file.
//!
//! Every call is decided under one lock (the server holds a `Mutex<Store>`), so the RNG draws and
//! the record order follow the order calls reach the lock. Parsing and formatting happen outside.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value as Json;

use crate::batch::{Batch, RecordOutcome};
use crate::error::{ApiError, Service};
use crate::faults::{decide_call, CallFault, FailureSampler, Faults, Rng};
use crate::shards::{hash_key, shard_for, ShardWindow};

/// Settings fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Any name is a stream (with `default_shards` shards) on first use.
    pub auto_create: bool,
    pub default_shards: u32,
    /// Keep accepted records in memory for `GET /__control/records`.
    pub keep_records: bool,
    /// The fault RNG's seed unless the faults name one.
    pub seed: u64,
}

/// One accepted record.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// Empty for Firehose.
    pub partition_key: Bytes,
    pub data: Bytes,
    pub shard: u32,
    pub sequence: u64,
    /// When the call that carried it was accepted: microseconds since the Unix epoch (the
    /// answer leaves right after, so this is the client's acknowledgement time to within the
    /// response's write).
    pub arrival_us: u64,
}

struct Destination {
    shards: Vec<ShardWindow>,
    records: Vec<StoredRecord>,
    next_sequence: u64,
    created_epoch: f64,
}

impl Destination {
    fn new(shards: u32) -> Destination {
        let created_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Destination {
            shards: vec![ShardWindow::default(); shards.max(1) as usize],
            records: Vec::new(),
            next_sequence: 1,
            created_epoch,
        }
    }
}

/// Bytes of one Kinesis PUT payload unit.
const PUT_PAYLOAD_UNIT: u64 = 25 * 1024;

/// The user records in `data`: the number of `records` fields (3) of a KPL aggregated record
/// (magic `F3 89 9A C2`, protobuf, 16-byte MD5), or 1 for any other record (and for one that
/// does not parse).
fn kpl_user_records(data: &[u8]) -> u64 {
    const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
    if data.len() < MAGIC.len() + 16 || data[..4] != MAGIC {
        return 1;
    }
    let mut buf = &data[4..data.len() - 16];
    let mut count = 0;
    let varint = |buf: &mut &[u8]| -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = buf.split_first()?;
            *buf = rest;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    };
    while !buf.is_empty() {
        let Some(tag) = varint(&mut buf) else {
            return 1;
        };
        match tag & 7 {
            0 => {
                if varint(&mut buf).is_none() {
                    return 1;
                }
            }
            2 => {
                let Some(len) = varint(&mut buf).and_then(|l| usize::try_from(l).ok()) else {
                    return 1;
                };
                if len > buf.len() {
                    return 1;
                }
                buf = &buf[len..];
                count += u64::from(tag >> 3 == 3);
            }
            _ => return 1,
        }
    }
    count.max(1)
}

/// Counters of one stream / delivery stream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DestinationStats {
    /// PutRecords / PutRecordBatch calls naming it, whatever their answer.
    pub calls: u64,
    /// Of those, calls answered with a whole-call error or a dropped connection.
    pub calls_failed: u64,
    pub records_accepted: u64,
    /// Records failed in a 200 answer (`fail_records`, shard rate limit).
    pub records_failed: u64,
    /// Data bytes of the accepted records.
    pub bytes_accepted: u64,
    /// Accepted records counting each user record of a KPL aggregated record (one that starts
    /// with the magic `F3 89 9A C2`) once.
    pub user_records_accepted: u64,
    /// Kinesis PUT payload units of the accepted records: one per started 25 KiB of data.
    pub put_payload_units: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
struct CloudWatchStats {
    calls: u64,
    datums: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
struct Stats {
    /// AWS calls by operation, e.g. `"PutRecords"`.
    operations: BTreeMap<&'static str, u64>,
    /// Whole-call error answers by error code.
    call_errors: BTreeMap<&'static str, u64>,
    /// Failed records by error code.
    record_errors: BTreeMap<&'static str, u64>,
    dropped_connections: u64,
    destinations: BTreeMap<String, DestinationStats>,
    cloudwatch: CloudWatchStats,
    record_file_errors: u64,
    /// Calls by the access key id they were signed with (from `Authorization`), so tests can
    /// see which credentials the client used.
    access_keys: BTreeMap<String, u64>,
}

impl Stats {
    /// The counters of `name`, created on first use (allocates only then).
    fn destination(&mut self, name: &str) -> Option<&mut DestinationStats> {
        if !self.destinations.contains_key(name) {
            self.destinations
                .insert(name.to_string(), DestinationStats::default());
        }
        self.destinations.get_mut(name)
    }

    fn call_fault(&mut self, fault: &CallFault) {
        match fault {
            CallFault::Drop => self.dropped_connections += 1,
            CallFault::Error(e) => *self.call_errors.entry(e.code).or_default() += 1,
        }
    }
}

/// What the server learns before it waits and hashes: the delay to apply and, when the stream is
/// known, its shard count (so partition keys can be hashed outside the lock).
#[derive(Debug, Clone, Copy)]
pub struct Prepared {
    pub delay_ms: u64,
    pub shards: Option<u32>,
}

pub struct Store {
    settings: Settings,
    faults: Faults,
    rng: Rng,
    destinations: HashMap<String, Destination>,
    stats: Stats,
    metrics: Vec<Json>,
    record_file: Option<BufWriter<File>>,
    started: Instant,
}

impl Store {
    pub fn new(settings: Settings, faults: Faults, record_file: Option<File>) -> Store {
        let rng = Rng::new(faults.seed.unwrap_or(settings.seed));
        Store {
            settings,
            faults,
            rng,
            destinations: HashMap::new(),
            stats: Stats::default(),
            metrics: Vec::new(),
            record_file: record_file.map(|f| BufWriter::with_capacity(256 * 1024, f)),
            started: Instant::now(),
        }
    }

    /// Creates a stream; `false` if it already existed (its shard count is kept).
    pub fn create(&mut self, name: &str, shards: Option<u32>) -> bool {
        if self.destinations.contains_key(name) {
            return false;
        }
        let shards = shards.unwrap_or(self.settings.default_shards);
        self.destinations
            .insert(name.to_string(), Destination::new(shards));
        true
    }

    pub fn faults(&self) -> Faults {
        let mut f = self.faults.clone();
        f.seed = Some(f.seed.unwrap_or(self.settings.seed));
        f
    }

    /// Replaces the faults and re-seeds the RNG.
    pub fn set_faults(&mut self, faults: Faults) {
        self.rng = Rng::new(faults.seed.unwrap_or(self.settings.seed));
        self.faults = faults;
    }

    /// Forgets records, counters and datums, restarts the rate windows and re-seeds the RNG.
    /// Streams, their shard counts and sequence numbers stay.
    pub fn reset(&mut self) {
        for dest in self.destinations.values_mut() {
            dest.records = Vec::new();
            dest.shards.fill(ShardWindow::default());
        }
        self.stats = Stats::default();
        self.metrics = Vec::new();
        self.rng = Rng::new(self.faults.seed.unwrap_or(self.settings.seed));
    }

    pub fn prepare(&self, operation: &str, name: &str) -> Prepared {
        let shards = match self.destinations.get(name) {
            Some(d) => Some(d.shards.len() as u32),
            None if self.settings.auto_create => Some(self.settings.default_shards),
            None => None,
        };
        let delay_ms = if self.faults.applies_to(operation) {
            self.faults.delay_ms
        } else {
            0
        };
        Prepared { delay_ms, shards }
    }

    /// Applies the call-level faults, then the existence check (auto-creating if set).
    fn admit_call(
        &mut self,
        service: Service,
        operation: &'static str,
        name: &str,
    ) -> Result<(), CallFault> {
        *self.stats.operations.entry(operation).or_default() += 1;
        let fault =
            decide_call(&self.faults, &mut self.rng, service, operation, name).or_else(|| {
                if self.destinations.contains_key(name) {
                    None
                } else if self.settings.auto_create {
                    self.create(name, None);
                    None
                } else {
                    Some(CallFault::Error(ApiError::not_found(service, name)))
                }
            });
        match fault {
            None => Ok(()),
            Some(fault) => {
                self.stats.call_fault(&fault);
                Err(fault)
            }
        }
    }

    /// DescribeStreamSummary / ListShards / DescribeDeliveryStream: (shards, creation time).
    pub fn describe(
        &mut self,
        service: Service,
        operation: &'static str,
        name: &str,
    ) -> Result<(u32, f64), CallFault> {
        self.admit_call(service, operation, name)?;
        self.destinations
            .get(name)
            .map(|d| (d.shards.len() as u32, d.created_epoch))
            .ok_or_else(|| CallFault::Error(ApiError::not_found(service, name)))
    }

    /// PutRecords / PutRecordBatch: decides every record's fate and keeps the accepted ones.
    /// `shard_of` is each record's shard when the caller hashed them already.
    pub fn put(
        &mut self,
        service: Service,
        operation: &'static str,
        batch: &Batch,
        shard_of: Option<&[u32]>,
    ) -> Result<Vec<RecordOutcome>, CallFault> {
        let admitted = self.admit_call(service, operation, &batch.name);
        if let Some(d) = self.stats.destination(&batch.name) {
            d.calls += 1;
            d.calls_failed += u64::from(admitted.is_err());
        }
        admitted?;
        let now_sec = self.started.elapsed().as_secs();
        let arrival_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let faults = &self.faults;
        let fault_code = faults.record_fault_code(service);
        let Some(dest) = self.destinations.get_mut(&batch.name) else {
            // admit_call made sure it exists.
            return Err(CallFault::Error(ApiError::not_found(service, &batch.name)));
        };
        let shard_count = dest.shards.len() as u32;
        let rate_limit = faults.shard_rate_limit && service == Service::Kinesis;
        let mut sampler =
            FailureSampler::new(faults.fail_records, batch.records.len(), &mut self.rng);
        let mut outcomes = Vec::with_capacity(batch.records.len());
        let (mut accepted, mut failed, mut bytes) = (0u64, 0u64, 0u64);
        let (mut users, mut units) = (0u64, 0u64);
        let mut rate_failed = 0u64;
        for (i, record) in batch.records.iter().enumerate() {
            let shard = if shard_count <= 1 {
                0
            } else if let Some(&s) = shard_of.and_then(|s| s.get(i)) {
                s.min(shard_count - 1)
            } else {
                record_shard(batch, i, shard_count)
            };
            if sampler.next().unwrap_or(false) {
                failed += 1;
                outcomes.push(RecordOutcome::Failed {
                    shard,
                    code: fault_code,
                });
                continue;
            }
            let size = (record.data.len() + record.partition_key.len()) as u64;
            if rate_limit
                && !dest.shards[shard as usize].admit(
                    now_sec,
                    size,
                    faults.shard_records_per_sec,
                    faults.shard_bytes_per_sec,
                )
            {
                rate_failed += 1;
                outcomes.push(RecordOutcome::Failed {
                    shard,
                    code: crate::faults::PROVISIONED_THROUGHPUT_EXCEEDED,
                });
                continue;
            }
            let sequence = dest.next_sequence;
            dest.next_sequence += 1;
            accepted += 1;
            bytes += record.data.len() as u64;
            let data = batch.data(record);
            users += kpl_user_records(data);
            units += (data.len() as u64).div_ceil(PUT_PAYLOAD_UNIT).max(1);
            if let Some(file) = self.record_file.as_mut() {
                if let Err(e) = file.write_all(batch.data(record)) {
                    self.stats.record_file_errors += 1;
                    eprintln!("fake-aws: cannot write the record file: {e}");
                }
            }
            if self.settings.keep_records {
                dest.records.push(StoredRecord {
                    partition_key: batch.partition_key_bytes(record),
                    data: batch.data_bytes(record),
                    shard,
                    sequence,
                    arrival_us,
                });
            }
            outcomes.push(RecordOutcome::Accepted { shard, sequence });
        }
        if accepted > 0 {
            if let Some(file) = self.record_file.as_mut() {
                if let Err(e) = file.flush() {
                    self.stats.record_file_errors += 1;
                    eprintln!("fake-aws: cannot write the record file: {e}");
                }
            }
        }
        if failed > 0 {
            *self.stats.record_errors.entry(fault_code).or_default() += failed;
        }
        if rate_failed > 0 {
            *self
                .stats
                .record_errors
                .entry(crate::faults::PROVISIONED_THROUGHPUT_EXCEEDED)
                .or_default() += rate_failed;
        }
        if let Some(d) = self.stats.destination(&batch.name) {
            d.records_accepted += accepted;
            d.records_failed += failed + rate_failed;
            d.bytes_accepted += bytes;
            d.user_records_accepted += users;
            d.put_payload_units += units;
        }
        Ok(outcomes)
    }

    /// Counts a whole-call error found before the store was asked (validation, unknown
    /// operation, missing signature).
    pub fn count_rejected(&mut self, operation: Option<&'static str>, error: &ApiError) {
        if let Some(op) = operation {
            *self.stats.operations.entry(op).or_default() += 1;
        }
        *self.stats.call_errors.entry(error.code).or_default() += 1;
    }

    /// Counts a call signed with `access_key`.
    pub fn count_access_key(&mut self, access_key: &str) {
        if let Some(n) = self.stats.access_keys.get_mut(access_key) {
            *n += 1;
        } else {
            self.stats.access_keys.insert(access_key.to_string(), 1);
        }
    }

    pub fn put_metrics(&mut self, datums: Vec<Json>) {
        *self
            .stats
            .operations
            .entry(crate::cloudwatch::PUT_METRIC_DATA)
            .or_default() += 1;
        self.stats.cloudwatch.calls += 1;
        self.stats.cloudwatch.datums += datums.len() as u64;
        self.metrics.extend(datums);
    }

    pub fn metrics_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.metrics).unwrap_or_default()
    }

    pub fn stats_json(&self) -> Vec<u8> {
        let mut totals = DestinationStats::default();
        for d in self.stats.destinations.values() {
            totals.calls += d.calls;
            totals.calls_failed += d.calls_failed;
            totals.records_accepted += d.records_accepted;
            totals.records_failed += d.records_failed;
            totals.bytes_accepted += d.bytes_accepted;
            totals.user_records_accepted += d.user_records_accepted;
            totals.put_payload_units += d.put_payload_units;
        }
        let mut value = serde_json::to_value(&self.stats).unwrap_or(Json::Null);
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "totals".into(),
                serde_json::to_value(totals).unwrap_or(Json::Null),
            );
            obj.insert(
                "streams".into(),
                Json::Array(
                    self.destinations
                        .iter()
                        .collect::<BTreeMap<_, _>>()
                        .into_iter()
                        .map(|(name, d)| {
                            serde_json::json!({
                                "name": name,
                                "shards": d.shards.len(),
                                "records_kept": d.records.len(),
                            })
                        })
                        .collect(),
                ),
            );
        }
        serde_json::to_vec(&value).unwrap_or_default()
    }

    /// Records of `name` from index `offset` on (none for an unknown name).
    pub fn records(&self, name: &str, offset: usize) -> &[StoredRecord] {
        self.destinations
            .get(name)
            .map(|d| d.records.get(offset..).unwrap_or(&[]))
            .unwrap_or(&[])
    }
}

/// The shard of record `i` by MD5 of its partition key (or its explicit hash key).
pub fn record_shard(batch: &Batch, i: usize, shards: u32) -> u32 {
    let Some(record) = batch.records.get(i) else {
        return 0;
    };
    let hash = record
        .explicit_hash_key
        .unwrap_or_else(|| hash_key(batch.partition_key(record)));
    shard_for(hash, shards)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BatchBuilder;

    fn store(auto_create: bool) -> Store {
        Store::new(
            Settings {
                auto_create,
                default_shards: 1,
                keep_records: true,
                seed: 1,
            },
            Faults::default(),
            None,
        )
    }

    fn batch(name: &str, n: usize) -> Batch {
        let mut b = BatchBuilder::new(name.into(), n, 64);
        for i in 0..n {
            b.push("aGk=", &format!("k{i}"), None).unwrap();
        }
        b.finish()
    }

    fn put(s: &mut Store, b: &Batch) -> Result<Vec<RecordOutcome>, CallFault> {
        s.put(Service::Kinesis, "PutRecords", b, None)
    }

    #[test]
    fn unknown_streams_are_not_found_unless_auto_created() {
        let mut s = store(false);
        let err = put(&mut s, &batch("s", 1)).unwrap_err();
        assert!(matches!(err, CallFault::Error(e) if e.code == "ResourceNotFoundException"));
        assert!(s.create("s", Some(2)));
        assert!(!s.create("s", Some(3)));
        assert_eq!(put(&mut s, &batch("s", 2)).unwrap().len(), 2);
        assert_eq!(
            s.describe(Service::Kinesis, "ListShards", "s").unwrap().0,
            2
        );

        let mut auto = store(true);
        assert!(put(&mut auto, &batch("new", 1)).is_ok());
        assert_eq!(auto.records("new", 0).len(), 1);
    }

    #[test]
    fn accepted_records_are_kept_in_order_with_sequences() {
        let mut s = store(true);
        put(&mut s, &batch("s", 3)).unwrap();
        put(&mut s, &batch("s", 2)).unwrap();
        let recs = s.records("s", 0);
        assert_eq!(recs.len(), 5);
        let keys: Vec<&[u8]> = recs.iter().map(|r| &r.partition_key[..]).collect();
        assert_eq!(keys, [&b"k0"[..], b"k1", b"k2", b"k0", b"k1"]);
        assert!(recs.windows(2).all(|w| w[0].sequence < w[1].sequence));
        assert_eq!(&recs[0].data[..], b"hi");
        assert_eq!(s.records("s", 4).len(), 1);
        assert!(s.records("s", 9).is_empty());
        s.reset();
        assert!(s.records("s", 0).is_empty());
        let seq = put(&mut s, &batch("s", 1)).unwrap();
        assert!(matches!(
            seq[0],
            RecordOutcome::Accepted { sequence: 6, .. }
        ));
    }

    #[test]
    fn failed_records_are_not_kept_and_are_counted() {
        let mut s = store(true);
        s.set_faults(serde_json::from_str(r#"{"fail_records":0.3}"#).unwrap());
        let out = put(&mut s, &batch("s", 10)).unwrap();
        let failed = out
            .iter()
            .filter(|o| matches!(o, RecordOutcome::Failed { .. }))
            .count();
        assert_eq!(failed, 3);
        assert_eq!(s.records("s", 0).len(), 7);
        let stats: Json = serde_json::from_slice(&s.stats_json()).unwrap();
        assert_eq!(stats["destinations"]["s"]["records_failed"], 3);
        assert_eq!(stats["destinations"]["s"]["records_accepted"], 7);
        assert_eq!(stats["totals"]["bytes_accepted"], 14);
        assert_eq!(
            stats["record_errors"]["ProvisionedThroughputExceededException"],
            3
        );
        // Setting the same faults again replays the same choices.
        let pattern = |out: &[RecordOutcome]| -> Vec<bool> {
            out.iter()
                .map(|o| matches!(o, RecordOutcome::Failed { .. }))
                .collect()
        };
        s.set_faults(serde_json::from_str(r#"{"fail_records":0.3}"#).unwrap());
        let again = put(&mut s, &batch("s", 10)).unwrap();
        assert_eq!(pattern(&again), pattern(&out));
    }

    #[test]
    fn shard_rate_limit_fails_records_over_the_limit() {
        let mut s = store(true);
        s.set_faults(
            serde_json::from_str(r#"{"shard_rate_limit":true,"shard_records_per_sec":4}"#).unwrap(),
        );
        let out = put(&mut s, &batch("s", 6)).unwrap();
        let codes: Vec<Option<&str>> = out
            .iter()
            .map(|o| match o {
                RecordOutcome::Failed { code, .. } => Some(*code),
                _ => None,
            })
            .collect();
        // Unless the test straddles a second boundary, the last two fail.
        if codes.iter().filter(|c| c.is_some()).count() == 2 {
            assert_eq!(codes[4], Some("ProvisionedThroughputExceededException"));
            assert_eq!(codes[5], Some("ProvisionedThroughputExceededException"));
        }
    }

    #[test]
    fn shards_follow_md5_of_the_partition_key() {
        let mut s = store(false);
        s.create("s", Some(4));
        let b = batch("s", 50);
        let out = put(&mut s, &b).unwrap();
        let mut seen = [false; 4];
        for (i, o) in out.iter().enumerate() {
            let RecordOutcome::Accepted { shard, .. } = *o else {
                panic!("{o:?}")
            };
            assert_eq!(shard, shard_for(hash_key(format!("k{i}").as_bytes()), 4));
            seen[shard as usize] = true;
        }
        assert_eq!(seen, [true; 4]);
    }

    #[test]
    fn call_faults_count_and_keep_nothing() {
        let mut s = store(true);
        s.set_faults(serde_json::from_str(r#"{"throttle_calls":1.0}"#).unwrap());
        assert!(put(&mut s, &batch("s", 5)).is_err());
        s.set_faults(serde_json::from_str(r#"{"drop_connection":1.0}"#).unwrap());
        assert_eq!(put(&mut s, &batch("s", 5)).unwrap_err(), CallFault::Drop);
        assert!(s.records("s", 0).is_empty());
        let stats: Json = serde_json::from_slice(&s.stats_json()).unwrap();
        assert_eq!(stats["destinations"]["s"]["calls"], 2);
        assert_eq!(stats["destinations"]["s"]["calls_failed"], 2);
        assert_eq!(stats["dropped_connections"], 1);
        assert_eq!(
            stats["call_errors"]["ProvisionedThroughputExceededException"],
            1
        );
        assert_eq!(stats["operations"]["PutRecords"], 2);
    }

    #[test]
    fn user_records_of_kpl_aggregated_records_are_counted() {
        let mut aggregated = vec![0xF3, 0x89, 0x9A, 0xC2];
        // partition_key_table ["k"], then two records {partition_key_index 0, data "a"/"b"}.
        aggregated.extend_from_slice(&[0x0a, 0x01, b'k']);
        for d in [b'a', b'b'] {
            aggregated.extend_from_slice(&[0x1a, 0x05, 0x08, 0x00, 0x1a, 0x01, d]);
        }
        aggregated.extend_from_slice(&[0; 16]);
        assert_eq!(kpl_user_records(&aggregated), 2);
        assert_eq!(kpl_user_records(b"a plain line\n"), 1);
        assert_eq!(
            kpl_user_records(&aggregated[..10]),
            1,
            "too short to be one"
        );
    }
}
