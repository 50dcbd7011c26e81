//! What every stage reports ([`Events`]), and what reads it: progress lines, CloudWatch.
//!
//! Owns: [`FlowCounters`], one per flow: an event method per thing that happens (records
//! parsed, a call returned, a call failed, ...), which keeps running totals (lock-free), the
//! CloudWatch statistic sets of the Java agent's metrics since the last publish, and the last
//! error. [`progress`] formats the Java agent's progress lines; [`cloudwatch`] publishes. Does
//! not own: the status snapshot ([`crate::status`], which reads the counters and the
//! acknowledgement trackers); metrics depends on no stage and not on the checkpoints.

pub mod cloudwatch;
pub mod progress;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

/// CloudWatch statistic set: what the Java agent sends for each metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatSet {
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl StatSet {
    fn of(value: f64) -> StatSet {
        StatSet {
            count: 1.0,
            sum: value,
            min: value,
            max: value,
        }
    }
    fn add(&mut self, value: f64) {
        self.count += 1.0;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }
}

/// Unit of a metric, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    Count,
    Bytes,
}

/// The Java agent's per-call metric names (reference 6.1), and ours for lag.
pub mod names {
    pub const RECORD_SEND_ATTEMPTS: &str = "RecordSendAttempts";
    pub const RECORDS_SENT: &str = "RecordsSent";
    pub const RECORD_SEND_ERRORS: &str = "RecordSendErrors";
    pub const BYTES_SENT: &str = "BytesSent";
    pub const SERVICE_ERRORS: &str = "ServiceErrors";
    /// New: bytes in the files not yet acknowledged by the service (read or not).
    pub const BYTES_BEHIND: &str = "BytesBehind";
    /// New: files with bytes not yet read.
    pub const FILES_BEHIND: &str = "FilesBehind";
}

/// What happens in a flow, one method per event. Every stage reports here; the progress lines,
/// CloudWatch and the status snapshot read the counters of the [`FlowCounters`] behind it, and a
/// test can listen with its own implementation.
pub trait Events: Send + Sync {
    /// Records were built from a file (`bytes` read for them).
    fn records_parsed(&self, records: u64, bytes: u64);
    /// Bytes were read that made no record yet (a partial line, header lines).
    fn bytes_read(&self, bytes: u64);
    /// Records were cut to the record size limit.
    fn records_truncated(&self, n: u64);
    /// Records went through the converters.
    fn records_processed(&self, transformed: u64, skipped: u64, errors: u64);
    /// A call returned: `attempted` records, `failed` of them refused, `sent_bytes` accepted.
    fn call_returned(&self, attempted: u64, failed: u64, sent_bytes: u64);
    /// A call failed as a whole.
    fn call_failed(&self, attempted: u64, error: &str);
    /// Something went wrong that the status should show.
    fn error(&self, error: &str);
    /// How far behind the files are.
    fn behind(&self, unread_bytes: u64, files: u64, unacknowledged_bytes: u64);
    /// The service accepted `n` Kinesis records holding KPL aggregated lines (or single lines
    /// of a flow with `kplAggregation`).
    fn kinesis_records_sent(&self, n: u64);
}

/// One flow's running totals. Every field is a monotonically growing count unless noted.
#[derive(Debug, Default)]
pub struct FlowCounters {
    /// Records built from the files (Java `TotalRecordsParsed`).
    pub records_parsed: AtomicU64,
    /// Bytes read from the files (Java `TotalBytesConsumed`).
    pub bytes_parsed: AtomicU64,
    /// Records cut to the record size limit (Java `FileTailer.RecordsTruncated`).
    pub records_truncated: AtomicU64,
    /// Records converted by `dataProcessingOptions` (Java `TotalRecordsProcessed`).
    pub records_transformed: AtomicU64,
    /// Records dropped by a converter or as a footer (Java `TotalRecordsSkipped`).
    pub records_skipped: AtomicU64,
    /// Records sent raw because a converter failed (Java `TotalDataProcessingErrors`).
    pub processing_errors: AtomicU64,
    /// Records the service accepted (Java `RecordsSent`).
    pub records_sent: AtomicU64,
    /// Data bytes of the records the service accepted (Java `BytesSent`).
    pub bytes_sent: AtomicU64,
    /// Records in calls made, retries included (Java `RecordSendAttempts`).
    pub record_send_attempts: AtomicU64,
    /// Records the service answered with an error code (Java `RecordSendErrors`).
    pub record_send_errors: AtomicU64,
    /// Calls that failed as a whole (Java `ServiceErrors`).
    pub service_errors: AtomicU64,
    /// With `kplAggregation`: the Kinesis records accepted (each holding many of the lines
    /// counted in `records_sent`). Not a Java counter.
    pub kinesis_records_sent: AtomicU64,
    /// Gauge: bytes in the files not yet turned into records.
    pub bytes_behind: AtomicU64,
    /// Gauge: files with unread bytes besides the most recently written one.
    pub files_behind: AtomicU64,
    /// Gauge: bytes read but not yet acknowledged by the service.
    pub bytes_unacknowledged: AtomicU64,
    /// Statistic sets since the last CloudWatch publish, by metric name.
    stats: Mutex<BTreeMap<&'static str, (Unit, StatSet)>>,
    /// The last send error: when, and what.
    last_error: Mutex<Option<(SystemTime, String)>>,
}

impl Events for FlowCounters {
    /// Records were built from a file.
    fn records_parsed(&self, records: u64, bytes: u64) {
        Self::add(&self.records_parsed, records);
        Self::add(&self.bytes_parsed, bytes);
    }

    /// Bytes were read that made no record yet (a partial line) or none at all (discarded).
    fn bytes_read(&self, bytes: u64) {
        Self::add(&self.bytes_parsed, bytes);
    }

    /// Records went through the converters.
    fn records_processed(&self, transformed: u64, skipped: u64, errors: u64) {
        Self::add(&self.records_transformed, transformed);
        Self::add(&self.records_skipped, skipped);
        Self::add(&self.processing_errors, errors);
    }

    /// Records were cut to the record size limit.
    fn records_truncated(&self, n: u64) {
        Self::add(&self.records_truncated, n);
    }

    /// A call returned: `attempted` records sent, `failed` of them refused, `sent_bytes` of
    /// data accepted.
    fn call_returned(&self, attempted: u64, failed: u64, sent_bytes: u64) {
        let sent = attempted - failed;
        Self::add(&self.record_send_attempts, attempted);
        Self::add(&self.records_sent, sent);
        Self::add(&self.bytes_sent, sent_bytes);
        Self::add(&self.record_send_errors, failed);
        let mut stats = self.lock_stats();
        sample(
            &mut stats,
            names::RECORD_SEND_ATTEMPTS,
            Unit::Count,
            attempted as f64,
        );
        sample(&mut stats, names::SERVICE_ERRORS, Unit::Count, 0.0);
        sample(&mut stats, names::RECORDS_SENT, Unit::Count, sent as f64);
        sample(
            &mut stats,
            names::RECORD_SEND_ERRORS,
            Unit::Count,
            failed as f64,
        );
        sample(
            &mut stats,
            names::BYTES_SENT,
            Unit::Bytes,
            sent_bytes as f64,
        );
    }

    /// A call failed as a whole.
    fn call_failed(&self, attempted: u64, error: &str) {
        Self::add(&self.record_send_attempts, attempted);
        Self::add(&self.service_errors, 1);
        let mut stats = self.lock_stats();
        sample(
            &mut stats,
            names::RECORD_SEND_ATTEMPTS,
            Unit::Count,
            attempted as f64,
        );
        sample(&mut stats, names::SERVICE_ERRORS, Unit::Count, 1.0);
        drop(stats);
        self.error(error);
    }

    /// Some records of a call were refused; remembered as the last error.
    fn error(&self, error: &str) {
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        *last = Some((SystemTime::now(), error.to_string()));
    }

    /// How far behind the files are.
    fn behind(&self, unread_bytes: u64, files: u64, unacknowledged_bytes: u64) {
        Self::set(&self.bytes_behind, unread_bytes);
        Self::set(&self.files_behind, files);
        Self::set(&self.bytes_unacknowledged, unacknowledged_bytes);
    }

    fn kinesis_records_sent(&self, n: u64) {
        Self::add(&self.kinesis_records_sent, n);
    }
}

impl FlowCounters {
    /// The statistic sets since the last call, plus the lag gauges sampled now.
    pub fn take_stats(&self) -> Vec<(&'static str, Unit, StatSet)> {
        let taken = std::mem::take(&mut *self.lock_stats());
        let mut out: Vec<_> = taken
            .into_iter()
            .map(|(name, (unit, set))| (name, unit, set))
            .collect();
        let behind = Self::get(&self.bytes_behind) + Self::get(&self.bytes_unacknowledged);
        out.push((names::BYTES_BEHIND, Unit::Bytes, StatSet::of(behind as f64)));
        out.push((
            names::FILES_BEHIND,
            Unit::Count,
            StatSet::of(Self::get(&self.files_behind) as f64),
        ));
        out
    }

    /// The last send error, if any.
    pub fn last_error(&self) -> Option<(SystemTime, String)> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn lock_stats(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, (Unit, StatSet)>> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
    pub fn set(counter: &AtomicU64, n: u64) {
        counter.store(n, Ordering::Relaxed);
    }
}

fn sample(
    stats: &mut BTreeMap<&'static str, (Unit, StatSet)>,
    name: &'static str,
    unit: Unit,
    value: f64,
) {
    stats
        .entry(name)
        .and_modify(|(_, set)| set.add(value))
        .or_insert((unit, StatSet::of(value)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_become_statistic_sets_and_totals() {
        let c = FlowCounters::default();
        c.call_returned(500, 0, 100_000);
        c.call_returned(10, 4, 1_000);
        c.call_failed(6, "ThrottlingException: slow down");
        let stats = c.take_stats();
        let get = |n: &str| stats.iter().find(|s| s.0 == n).map(|s| s.2);
        assert_eq!(
            get(names::RECORD_SEND_ATTEMPTS),
            Some(StatSet {
                count: 3.0,
                sum: 516.0,
                min: 6.0,
                max: 500.0
            })
        );
        assert_eq!(
            get(names::RECORDS_SENT),
            Some(StatSet {
                count: 2.0,
                sum: 506.0,
                min: 6.0,
                max: 500.0
            })
        );
        assert_eq!(
            get(names::SERVICE_ERRORS),
            Some(StatSet {
                count: 3.0,
                sum: 1.0,
                min: 0.0,
                max: 1.0
            })
        );
        assert_eq!(get(names::RECORD_SEND_ERRORS).map(|s| s.sum), Some(4.0));
        assert_eq!(get(names::BYTES_SENT).map(|s| s.sum), Some(101_000.0));
        assert_eq!(FlowCounters::get(&c.records_sent), 506);
        assert!(c
            .last_error()
            .is_some_and(|(_, e)| e.contains("ThrottlingException")));
        // Taken: the next period starts empty except for the gauges.
        assert_eq!(c.take_stats().len(), 2);
    }
}
