//! Acknowledgements to checkpoints: the in-order watermark of each file.
//!
//! Owns: [`watermark`] (which offsets are safe) and [`AckTracker`], the handle the batcher
//! registers batches with and the sender acknowledges them through. Durable storage of the
//! watermarks (SQLite, the Java agent's table) is not in this build yet: a restart starts from
//! `initialPosition`.

pub mod store;
pub mod watermark;

use std::sync::{Arc, Mutex, MutexGuard};

use crate::record::FileRef;
pub use watermark::{BatchSeq, Watermarks};

/// Shared by one flow's batcher (register) and sender (acknowledge).
#[derive(Debug, Clone, Default)]
pub struct AckTracker {
    inner: Arc<Mutex<Watermarks>>,
}

impl AckTracker {
    fn lock(&self) -> MutexGuard<'_, Watermarks> {
        // A panic while holding this lock leaves only counters behind; keep going.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn start(&self, file: FileRef, offset: u64) {
        self.lock().start(file, offset);
    }

    pub fn register(&self, batch: BatchSeq, ends: &[(FileRef, u64)]) {
        self.lock().register(batch, ends);
    }

    pub fn acknowledge(&self, batch: BatchSeq, files: &[FileRef]) -> Vec<(FileRef, u64)> {
        self.lock().acknowledge(batch, files)
    }

    pub fn acked(&self, file: FileRef) -> Option<u64> {
        self.lock().acked(file)
    }

    pub fn is_settled(&self, file: FileRef) -> bool {
        self.lock().is_settled(file)
    }

    pub fn forget(&self, file: FileRef) {
        self.lock().forget(file);
    }
}
