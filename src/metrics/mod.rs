//! Counters every stage reports to, and what reads them: the progress log lines.
//!
//! Owns: [`FlowCounters`] (one per flow, lock-free) and the progress lines of the Java agent
//! ([`progress`]). CloudWatch publishing and the status snapshot read the same counters
//! (not in this build yet).

pub mod progress;

use std::sync::atomic::{AtomicU64, Ordering};

/// One flow's running totals. Every field is a monotonically growing count unless noted.
#[derive(Debug, Default)]
pub struct FlowCounters {
    /// Records built from the files (Java `TotalRecordsParsed`).
    pub records_parsed: AtomicU64,
    /// Bytes read from the files (Java `TotalBytesConsumed`).
    pub bytes_parsed: AtomicU64,
    /// Records cut to the record size limit (Java `FileTailer.RecordsTruncated`).
    pub records_truncated: AtomicU64,
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
    /// Gauge: bytes in the files not yet turned into records.
    pub bytes_behind: AtomicU64,
    /// Gauge: files with unread bytes besides the most recently written one.
    pub files_behind: AtomicU64,
}

impl FlowCounters {
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
