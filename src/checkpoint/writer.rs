//! The task that makes acknowledged watermarks durable: about once a second it collects every
//! flow's moved watermarks and saves them in one transaction, and once more at shutdown.
//!
//! A failed save (full disk, read-only filesystem) is logged with the database path and
//! retried on the next tick; sending goes on meanwhile, and nothing is lost: a checkpoint that
//! was not saved only means more duplicates after a crash.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info};

use super::store::{CheckpointRow, CheckpointStore};
use super::AckTracker;

/// How often moved watermarks are saved. One fsync a second bounds both the write cost and
/// how much is sent again after a crash.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// Rows saved in a burst after which the first quiet save gives freed memory back to the
/// system ([`crate::sys::release_free_memory`]): 100,000 files written at once left about
/// 7 MiB of freed blocks in malloc's arenas.
const TRIM_AFTER_ROWS: usize = 10_000;

/// How often a failing save is logged again.
const REPEAT_FAILURE: Duration = Duration::from_secs(60);

/// One flow as the writer sees it.
pub struct FlowCheckpoints {
    pub flow_id: String,
    pub acks: AckTracker,
}

/// Saves every [`SAVE_INTERVAL`], and at once when `urgent` is notified (a file started past
/// its beginning or was renamed), until `stop`; then saves once more and returns.
pub async fn run_writer(
    mut store: CheckpointStore,
    flows: Vec<FlowCheckpoints>,
    urgent: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut failing_since: Option<Instant> = None;
    let mut last_report: Option<Instant> = None;
    let mut saved_since_trim = 0;
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(SAVE_INTERVAL) => false,
            _ = urgent.notified() => false,
            _ = stop.cancelled() => true,
        };
        // SQLite's fsync takes a few milliseconds, or far longer on a slow or failing disk:
        // the agent has one worker thread, so the save hands it to another thread meanwhile.
        match blocking(|| save_once(&mut store, &flows)) {
            Ok(0) if saved_since_trim >= TRIM_AFTER_ROWS => {
                // A burst of many files (a start, a write to all of them) is over: what it
                // freed goes back to the system.
                saved_since_trim = 0;
                crate::sys::release_free_memory();
            }
            Ok(0) => {}
            Ok(n) => {
                saved_since_trim += n;
                debug!("saved {n} checkpoint(s) to {}", store.path().display());
                if failing_since.take().is_some() {
                    info!(
                        "Checkpoints are being saved again to {}.",
                        store.path().display()
                    );
                }
            }
            Err(e) => {
                failing_since.get_or_insert_with(Instant::now);
                if last_report.is_none_or(|t| t.elapsed() >= REPEAT_FAILURE) || stopping {
                    last_report = Some(Instant::now());
                    error!(
                        "Failed to save checkpoints to {}: {e}. Sending continues; the save is retried every second. Fix: free disk space or make the database writable by the agent's user.",
                        store.path().display()
                    );
                }
            }
        }
        if stopping {
            return;
        }
    }
}

/// Runs `f`, which blocks, without holding up the runtime's other tasks (on a multi-thread
/// runtime; a current-thread runtime, as in tests, just runs it).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Rows saved per transaction: a start with 100,000 new files built all their rows at once
/// (28 MB) before.
const SAVE_CHUNK: usize = 4096;

/// Saves every flow's moved watermarks, [`SAVE_CHUNK`] rows per transaction. On failure the
/// rows not saved are put back.
pub fn save_once(
    store: &mut CheckpointStore,
    flows: &[FlowCheckpoints],
) -> Result<usize, super::store::StoreError> {
    let mut saved = 0;
    for flow in flows {
        loop {
            let dirty = flow.acks.take_dirty(SAVE_CHUNK);
            if dirty.is_empty() {
                break;
            }
            let taken: Vec<_> = dirty.iter().map(|(f, _, _)| *f).collect();
            let rows: Vec<CheckpointRow> = dirty
                .into_iter()
                .map(|(_, info, offset)| CheckpointRow {
                    flow: flow.flow_id.clone(),
                    path: info.path.to_path_buf(),
                    file_id: info.id.to_string(),
                    last_modified_ms: info.mtime_ms,
                    size: info.size as i64,
                    offset,
                    fingerprint: Some(info.fingerprint.to_string()),
                    last_updated: String::new(),
                })
                .collect();
            if let Err(e) = store.save(&rows) {
                flow.acks.restore_dirty(taken);
                return Err(e);
            }
            flow.acks.saved(&taken);
            saved += rows.len();
        }
    }
    // Rows to delete go after the saves: a row that replaces one (a copy's, for the placeholder
    // of a truncated file's old content) is durable before the one it replaces is gone.
    let mut deleted = 0;
    for flow in flows {
        let mut dropped = flow.acks.take_dropped();
        while let Some(path) = dropped.pop() {
            if let Err(e) = store.delete(&flow.flow_id, &path) {
                dropped.push(path);
                flow.acks.restore_dropped(dropped);
                return Err(e);
            }
            deleted += 1;
        }
    }
    Ok(saved + deleted)
}
