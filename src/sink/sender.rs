//! The per-flow send loop: a bounded number of calls in flight, only failed records resent,
//! the Java agent's backoff, errors reported once with the fix instead of once per record.
//!
//! Owns: [`run_sender`] and what a send needs ([`SendContext`]). A batch is acknowledged to the
//! tracker only when every one of its records was accepted. Retries never give up on their own:
//! the data is still in the files, so only the shutdown deadline ([`SendContext::abort`]) stops
//! them, and then the unacknowledged records are read again after restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::backoff::Backoff;
use super::batch::Batch;
use super::queue::QueueReceiver;
use super::{ErrorKind, PutBatch, RecordFailure, SendError};
use crate::checkpoint::AckTracker;
use crate::metrics::Events;

/// Calls in flight per flow. Several keep throughput up when each call waits on the network;
/// the acknowledgement watermark keeps checkpoints correct whatever order they finish in.
pub const MAX_IN_FLIGHT_PER_FLOW: usize = 8;

/// How often the same throttling or transient error is reported again.
const REPEAT_TRANSIENT: Duration = Duration::from_secs(60);
/// How often an error only the operator can fix is reported again while it lasts.
const REPEAT_FATAL: Duration = Duration::from_secs(300);

/// Everything one flow's sends share.
pub struct SendContext {
    /// Prefix of log lines, e.g. `FileTailer[kinesis:s:/var/log/app.log*]`.
    pub name: String,
    pub counters: Arc<dyn Events>,
    pub acks: AckTracker,
    pub backoff: Mutex<Backoff>,
    /// Calls in flight over all flows (`maxSendingThreads`).
    pub global: Arc<Semaphore>,
    /// Calls in flight for this flow.
    pub flow: Arc<Semaphore>,
    /// Cancelled when the shutdown deadline passes: unsent records are left for the next start.
    pub abort: CancellationToken,
    reports: Mutex<Reports>,
}

impl SendContext {
    pub fn new(
        name: String,
        counters: Arc<dyn Events>,
        acks: AckTracker,
        backoff: Backoff,
        global: Arc<Semaphore>,
        abort: CancellationToken,
    ) -> SendContext {
        SendContext {
            name,
            counters,
            acks,
            backoff: Mutex::new(backoff),
            global,
            flow: Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_FLOW)),
            abort,
            reports: Mutex::new(Reports::default()),
        }
    }

    fn backoff(&self) -> std::sync::MutexGuard<'_, Backoff> {
        self.backoff.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reports(&self) -> std::sync::MutexGuard<'_, Reports> {
        self.reports.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// When each kind of problem was last reported, and how often it happened since.
#[derive(Debug, Default)]
struct Reports {
    last: HashMap<String, (Instant, u64)>,
    /// A whole call's failure was logged since the last success (partial failures do not
    /// count).
    failing: bool,
}

impl Reports {
    /// Returns how many times `key` happened since its last report, if it is time to report.
    fn due(&mut self, key: &str, every: Duration) -> Option<u64> {
        let now = Instant::now();
        match self.last.get_mut(key) {
            Some((at, count)) if now.duration_since(*at) < every => {
                *count += 1;
                None
            }
            Some((at, count)) => {
                let since = *count;
                *at = now;
                *count = 0;
                Some(since)
            }
            None => {
                self.last.insert(key.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

/// Sends every batch of `queue` until it closes, then waits for the calls in flight.
pub async fn run_sender<P: PutBatch>(put: Arc<P>, mut queue: QueueReceiver, ctx: Arc<SendContext>) {
    let mut in_flight = JoinSet::new();
    loop {
        let batch = tokio::select! {
            batch = queue.recv() => batch,
            _ = ctx.abort.cancelled() => None,
        };
        let Some(batch) = batch else { break };
        let permits = tokio::select! {
            permits = acquire(&ctx) => permits,
            _ = ctx.abort.cancelled() => break,
        };
        let Some(permits) = permits else { break };
        let (put, ctx) = (put.clone(), ctx.clone());
        in_flight.spawn(async move {
            send_batch(put.as_ref(), batch, &ctx).await;
            drop(permits);
        });
        // Reap finished sends so the set does not grow with the backlog.
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
}

async fn acquire(
    ctx: &SendContext,
) -> Option<(
    tokio::sync::OwnedSemaphorePermit,
    tokio::sync::OwnedSemaphorePermit,
)> {
    let flow = ctx.flow.clone().acquire_owned().await.ok()?;
    let global = ctx.global.clone().acquire_owned().await.ok()?;
    Some((flow, global))
}

/// Sends one batch until every record is accepted, or the shutdown deadline passes.
pub async fn send_batch<P: PutBatch>(put: &P, batch: Batch, ctx: &SendContext) {
    let files = batch.file_refs();
    let mut data: Vec<Bytes> = batch.records.into_iter().map(|r| r.data).collect();
    loop {
        let delay = {
            let unit: f64 = rand::rng().random();
            ctx.backoff().delay(unit)
        };
        if !delay.is_zero() && !pause(ctx, delay).await {
            return;
        }
        let total = data.len();
        let result = tokio::select! {
            result = put.put(&data) => result,
            _ = ctx.abort.cancelled() => return,
        };
        match result {
            Ok(failures) => {
                let failed = valid_failures(failures, total);
                let refused: usize = failed.iter().map(|f| data[f.index].len()).sum();
                let accepted_bytes = data.iter().map(Bytes::len).sum::<usize>() - refused;
                let counters = &ctx.counters;
                counters.call_returned(total as u64, failed.len() as u64, accepted_bytes as u64);
                if failed.is_empty() {
                    ctx.backoff().on_success();
                    recovered(put, ctx);
                    let moved = ctx.acks.acknowledge(batch.seq, &files);
                    debug!(
                        "{}: batch {} acknowledged; checkpoints now {:?}",
                        ctx.name, batch.seq, moved
                    );
                    return;
                }
                ctx.backoff().on_partial(failed.len(), total);
                report_partial(put, ctx, &failed, total);
                data = failed.iter().map(|f| data[f.index].clone()).collect();
            }
            Err(err) => {
                ctx.counters.call_failed(total as u64, &err.to_string());
                ctx.backoff().on_failure();
                report_error(put, ctx, &err);
                if err.kind == ErrorKind::Fatal {
                    // Only the operator can fix this: retry slowly, keep every record.
                    let wait = ctx.backoff().max();
                    if !pause(ctx, wait).await {
                        return;
                    }
                }
            }
        }
    }
}

/// Sleeps, unless the shutdown deadline passes first (then false).
async fn pause(ctx: &SendContext, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = ctx.abort.cancelled() => false,
    }
}

/// Drops failure entries that do not name a record of the call (a malformed answer must not
/// make us index out of bounds) and duplicates.
fn valid_failures(mut failures: Vec<RecordFailure>, total: usize) -> Vec<RecordFailure> {
    failures.retain(|f| f.index < total);
    failures.sort_by_key(|f| f.index);
    failures.dedup_by_key(|f| f.index);
    failures
}

fn report_partial<P: PutBatch>(put: &P, ctx: &SendContext, failed: &[RecordFailure], total: usize) {
    let mut codes: Vec<(&str, usize)> = Vec::new();
    for f in failed {
        match codes.iter_mut().find(|(c, _)| *c == f.code) {
            Some(entry) => entry.1 += 1,
            None => codes.push((&f.code, 1)),
        }
    }
    let summary = codes
        .iter()
        .map(|(c, n)| format!("{c}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    ctx.counters.error(&format!(
        "{} of {} records refused by {} ({summary})",
        failed.len(),
        total,
        put.describe()
    ));
    let mut reports = ctx.reports();
    if let Some(since) = reports.due("partial", REPEAT_TRANSIENT) {
        let more = if since > 0 {
            format!(" ({since} more partial failures since the last report)")
        } else {
            String::new()
        };
        warn!(
            "{}: {} of {} records refused by {} ({summary}); retrying only those, with backoff.{more}",
            ctx.name,
            failed.len(),
            total,
            put.describe()
        );
    }
}

fn report_error<P: PutBatch>(put: &P, ctx: &SendContext, err: &SendError) {
    let mut reports = ctx.reports();
    let every = if err.kind == ErrorKind::Fatal {
        REPEAT_FATAL
    } else {
        REPEAT_TRANSIENT
    };
    if let Some(since) = reports.due(&err.code, every) {
        // Recovery is logged once after each logged failure: with half the calls throttled,
        // a line per success would flood the log.
        reports.failing = true;
        let more = if since > 0 {
            format!(" ({since} more since the last report)")
        } else {
            String::new()
        };
        match err.kind {
            ErrorKind::Fatal => error!(
                "{}: {} failed: {err} Records are kept and the call is retried every {} s.{more}",
                ctx.name,
                put.describe(),
                ctx.backoff().max().as_secs_f64()
            ),
            ErrorKind::Throttled | ErrorKind::Transient => warn!(
                "{}: {} failed: {err}; will retry with backoff.{more}",
                ctx.name,
                put.describe()
            ),
        }
    }
}

fn recovered<P: PutBatch>(put: &P, ctx: &SendContext) {
    let mut reports = ctx.reports();
    if reports.failing {
        // The rate limits stay as they are: a problem that comes back within the minute is
        // not reported again at once.
        reports.failing = false;
        info!("{}: {} accepts records again.", ctx.name, put.describe());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::FlowCounters;
    use crate::record::{FileRef, Record};
    use crate::sink::batcher::BatchBuilder;
    use std::collections::VecDeque;

    /// A scripted service: each call pops the next answer; the records of every call are kept.
    struct Scripted {
        answers: Mutex<VecDeque<Result<Vec<usize>, SendError>>>,
        calls: Mutex<Vec<Vec<Bytes>>>,
    }

    impl PutBatch for Scripted {
        async fn put(&self, records: &[Bytes]) -> Result<Vec<RecordFailure>, SendError> {
            self.calls.lock().expect("lock").push(records.to_vec());
            let answer = self
                .answers
                .lock()
                .expect("lock")
                .pop_front()
                .unwrap_or(Ok(vec![]));
            answer.map(|idx| {
                idx.into_iter()
                    .map(|index| RecordFailure {
                        index,
                        code: "ProvisionedThroughputExceededException".into(),
                        message: "slow down".into(),
                    })
                    .collect()
            })
        }
        fn describe(&self) -> String {
            "scripted stream".into()
        }
    }

    fn batch_of(n: usize) -> Batch {
        let mut b = BatchBuilder::new(500, 1 << 20, 0, Duration::from_secs(60));
        for i in 0..n {
            let r = Record {
                data: Bytes::from(format!("r{i}\n")),
                file: FileRef(0),
                end_offset: (i as u64 + 1) * 3,
            };
            assert!(b.push(r, Instant::now()).is_none());
        }
        b.take().expect("batch")
    }

    /// A send context, and the counters its events land in.
    fn context(acks: AckTracker) -> (SendContext, Arc<FlowCounters>) {
        let counters = Arc::new(FlowCounters::default());
        let ctx = SendContext::new(
            "test".into(),
            counters.clone(),
            acks,
            Backoff::new(Duration::from_millis(100), Duration::from_millis(10_000)),
            Arc::new(Semaphore::new(4)),
            CancellationToken::new(),
        );
        (ctx, counters)
    }

    #[tokio::test(start_paused = true)]
    async fn only_failed_records_are_resent_and_ack_waits_for_all() {
        // Reference 9.2 fact 9: {2,4,6,8,9} of 10 fail, then {0,1} of those, then {1}, then success.
        let put = Scripted {
            answers: Mutex::new(VecDeque::from([
                Ok(vec![2, 4, 6, 8, 9]),
                Ok(vec![0, 1]),
                Ok(vec![1]),
                Ok(vec![]),
            ])),
            calls: Mutex::new(Vec::new()),
        };
        let acks = AckTracker::default();
        acks.start(FileRef(0), 0, crate::checkpoint::FileInfo::for_test("/a"));
        let batch = batch_of(10);
        acks.register(batch.seq, &batch.files);
        let (ctx, counters) = context(acks.clone());
        let t0 = Instant::now();
        send_batch(&put, batch, &ctx).await;
        let calls = put.calls.lock().expect("lock");
        let names = |c: &Vec<Bytes>| {
            c.iter()
                .map(|b| String::from_utf8_lossy(b).trim().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(calls.len(), 4);
        assert_eq!(names(&calls[1]), vec!["r2", "r4", "r6", "r8", "r9"]);
        assert_eq!(names(&calls[2]), vec!["r2", "r4"]);
        assert_eq!(names(&calls[3]), vec!["r4"]);
        assert_eq!(acks.acked(FileRef(0)), Some(30));
        assert_eq!(FlowCounters::get(&counters.records_sent), 10);
        assert_eq!(FlowCounters::get(&counters.record_send_errors), 8);
        // Failures 0.5, 0.9, 1.4 -> waits of about 100 ms (x jitter) before calls 2-4.
        assert!(Instant::now() - t0 >= Duration::from_millis(210));
    }

    #[tokio::test(start_paused = true)]
    async fn whole_call_errors_retry_until_success_and_fatal_ones_slowly() {
        let fatal = SendError {
            kind: ErrorKind::Fatal,
            code: "ResourceNotFoundException".into(),
            message: "no stream".into(),
            fix: Some("create it".into()),
        };
        let throttled = SendError {
            kind: ErrorKind::Throttled,
            code: "ThrottlingException".into(),
            message: "slow".into(),
            fix: None,
        };
        let put = Scripted {
            answers: Mutex::new(VecDeque::from([Err(fatal), Err(throttled), Ok(vec![])])),
            calls: Mutex::new(Vec::new()),
        };
        let acks = AckTracker::default();
        acks.start(FileRef(0), 0, crate::checkpoint::FileInfo::for_test("/a"));
        let batch = batch_of(3);
        acks.register(batch.seq, &batch.files);
        let (ctx, counters) = context(acks.clone());
        let t0 = Instant::now();
        send_batch(&put, batch, &ctx).await;
        assert_eq!(put.calls.lock().expect("lock").len(), 3);
        assert_eq!(acks.acked(FileRef(0)), Some(9));
        assert_eq!(FlowCounters::get(&counters.service_errors), 2);
        // The fatal error waited the max backoff (10 s) before retrying.
        assert!(Instant::now() - t0 >= Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn abort_leaves_the_batch_unacknowledged() {
        let err = SendError {
            kind: ErrorKind::Transient,
            code: "ConnectionError".into(),
            message: "refused".into(),
            fix: None,
        };
        let put = Scripted {
            answers: Mutex::new(VecDeque::from(vec![Err(err); 1000])),
            calls: Mutex::new(Vec::new()),
        };
        let acks = AckTracker::default();
        acks.start(FileRef(0), 0, crate::checkpoint::FileInfo::for_test("/a"));
        let batch = batch_of(2);
        acks.register(batch.seq, &batch.files);
        let (ctx, _counters) = context(acks.clone());
        let abort = ctx.abort.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            abort.cancel();
        });
        send_batch(&put, batch, &ctx).await;
        assert_eq!(acks.acked(FileRef(0)), Some(0));
        assert!(!acks.is_settled(FileRef(0)));
    }
}
