//! The agent's descriptor budget: how many tailed files all flows may hold open at once.
//!
//! Owns: [`Descriptors`], the permits a tailed file holds while its descriptor is open, and the
//! count of files waiting for one (which tells every tailer to close its idle files). Does not
//! own: which file to close or open next (the tailer decides, oldest change first).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Descriptors kept out of the budget for everything else the agent opens: its log file,
/// SQLite (the database, its journal and WAL), the inotify queues, the runtime's epoll and
/// wake-up descriptors, HTTPS connections (`maxConnections`, 50 by default, per service),
/// short-lived opens (fingerprint checks, status and checkpoint writes, decompression).
pub const RESERVED: u64 = 256;

/// The default `maxOpenFiles` for a soft limit of `soft` open files: what is left after
/// [`RESERVED`], and at least 16 (a limit below 272 leaves the agent very little either way).
pub fn default_max_open_files(soft: u64) -> usize {
    let left = soft.saturating_sub(RESERVED).max(soft / 2).max(16);
    usize::try_from(left)
        .unwrap_or(usize::MAX)
        .min(Semaphore::MAX_PERMITS)
}

/// Permits for open tailed files, shared by every flow.
#[derive(Debug, Clone)]
pub struct Descriptors {
    permits: Arc<Semaphore>,
    limit: usize,
    /// Files that wanted a descriptor at their tailer's last pass and did not get one.
    waiting: Arc<AtomicUsize>,
}

impl Descriptors {
    /// A budget of `limit` open files.
    pub fn new(limit: usize) -> Descriptors {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Descriptors {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// No budget to speak of (tests, and tools that tail a few files).
    pub fn unlimited() -> Descriptors {
        Descriptors::new(Semaphore::MAX_PERMITS)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A permit for one more open file, if the budget has one.
    pub fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    /// Files open now, over all flows.
    pub fn in_use(&self) -> usize {
        self.limit - self.permits.available_permits()
    }

    /// A tailer says how many of its files wait for a descriptor (replacing what it said
    /// before: `before`).
    pub fn set_waiting(&self, before: usize, now: usize) {
        if now >= before {
            self.waiting.fetch_add(now - before, Ordering::Relaxed);
        } else {
            self.waiting.fetch_sub(before - now, Ordering::Relaxed);
        }
    }

    /// Files waiting for a descriptor over all flows: every tailer closes that many of its
    /// idle files (those read to their end, least recently written first).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_leaves_room_for_sockets_sqlite_and_the_log() {
        assert_eq!(default_max_open_files(1024), 768);
        assert_eq!(default_max_open_files(65_536), 65_280);
        assert_eq!(default_max_open_files(300), 150);
        assert_eq!(default_max_open_files(10), 16);
    }

    #[test]
    fn permits_are_given_back_when_dropped_and_waiting_files_are_counted() {
        let d = Descriptors::new(2);
        let a = d.try_take().expect("first");
        let _b = d.try_take().expect("second");
        assert!(d.try_take().is_none());
        assert_eq!(d.in_use(), 2);
        drop(a);
        assert_eq!(d.in_use(), 1);
        assert!(d.try_take().is_some());
        d.set_waiting(0, 5);
        d.set_waiting(5, 3);
        assert_eq!(d.waiting(), 3);
        d.set_waiting(3, 0);
        assert_eq!(d.waiting(), 0);
    }
}
