//! Records into batches by count, bytes and age (`maxBufferSizeRecords`, `maxBufferSizeBytes`,
//! `maxBufferAgeMillis`).
//!
//! Owns: [`BatchBuilder`] (pure decisions) and [`run_batcher`], the task that applies them and
//! registers each batch with the acknowledgement tracker before queueing it.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::batch::Batch;
use super::queue::QueueSender;
use crate::checkpoint::{AckTracker, BatchSeq};
use crate::record::{Chunk, Record};

/// Decides where batches end. Pure: time is passed in.
#[derive(Debug)]
pub struct BatchBuilder {
    max_records: usize,
    max_bytes: usize,
    /// Counted per record besides its data (Kinesis counts the partition key).
    overhead: usize,
    max_age: Duration,
    current: Option<Batch>,
    next_seq: BatchSeq,
}

impl BatchBuilder {
    pub fn new(max_records: usize, max_bytes: usize, overhead: usize, max_age: Duration) -> Self {
        BatchBuilder {
            max_records,
            max_bytes,
            overhead,
            max_age,
            current: None,
            next_seq: 1,
        }
    }

    /// Adds a record whose data was seen at `seen`. Returns a batch that is ready: the current
    /// one when the record does not fit in it (the record then starts the next), or the one the
    /// record filled.
    pub fn push(&mut self, record: Record, seen: Instant) -> Option<Batch> {
        let size = record.data.len() + self.overhead;
        let mut ready = None;
        if let Some(b) = &self.current {
            if b.records.len() >= self.max_records || b.bytes + size > self.max_bytes {
                ready = self.current.take();
            }
        }
        let batch = self.current.get_or_insert_with(|| {
            let b = Batch::new(self.next_seq, seen);
            self.next_seq += 1;
            b
        });
        batch.add(record, size);
        if ready.is_none()
            && (batch.records.len() >= self.max_records || batch.bytes >= self.max_bytes)
        {
            ready = self.current.take();
        }
        ready
    }

    /// When the current batch must go even if not full.
    pub fn deadline(&self) -> Option<Instant> {
        self.current.as_ref().map(|b| b.started + self.max_age)
    }

    /// Takes the current batch, full or not.
    pub fn take(&mut self) -> Option<Batch> {
        self.current.take()
    }
}

/// Turns record chunks into batches until the tailer hangs up, then flushes the last one.
/// Every batch is registered with `acks` before it is queued, so acknowledgements always find it.
pub async fn run_batcher(
    mut builder: BatchBuilder,
    mut records: mpsc::Receiver<Chunk>,
    batches: QueueSender,
    acks: AckTracker,
) {
    loop {
        let deadline = builder.deadline();
        let ready = tokio::select! {
            chunk = records.recv() => match chunk {
                Some(chunk) => {
                    let mut ready = Vec::new();
                    for record in chunk.records {
                        ready.extend(builder.push(record, chunk.seen));
                    }
                    ready
                }
                None => {
                    if let Some(batch) = builder.take() {
                        acks.register(batch.seq, &batch.files);
                        let _ = batches.send(batch).await;
                    }
                    return;
                }
            },
            _ = sleep_until(deadline), if deadline.is_some() => builder.take().into_iter().collect(),
        };
        for batch in ready {
            acks.register(batch.seq, &batch.files);
            if batches.send(batch).await.is_err() {
                return;
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::FileRef;
    use bytes::Bytes;

    fn rec(file: u64, len: usize, end: u64) -> Record {
        Record {
            data: Bytes::from(vec![b'x'; len]),
            file: FileRef(file),
            end_offset: end,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn count_limit() {
        let now = Instant::now();
        let mut b = BatchBuilder::new(3, 1000, 0, Duration::from_secs(60));
        assert!(b.push(rec(0, 1, 1), now).is_none());
        assert!(b.push(rec(0, 1, 2), now).is_none());
        let full = b.push(rec(0, 1, 3), now).expect("full at 3 records");
        assert_eq!(full.records.len(), 3);
        assert_eq!(full.files, vec![(FileRef(0), 3)]);
        assert!(b.take().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn byte_limit_counts_overhead_and_never_exceeds() {
        let now = Instant::now();
        let mut b = BatchBuilder::new(500, 100, 10, Duration::from_secs(60));
        assert!(b.push(rec(0, 40, 40), now).is_none()); // 50
        assert!(b.push(rec(1, 30, 30), now).is_none()); // 90
        let out = b.push(rec(0, 5, 45), now).expect("15 more would make 105");
        assert_eq!(out.bytes, 90);
        assert_eq!(out.files, vec![(FileRef(0), 40), (FileRef(1), 30)]);
        let rest = b.take().expect("the record that did not fit");
        assert_eq!(rest.records.len(), 1);
        assert_eq!(rest.seq, out.seq + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn age_deadline_flushes_a_partial_batch() {
        let acks = AckTracker::default();
        let (rtx, rrx) = mpsc::channel(4);
        let (btx, mut brx) = crate::sink::queue::publish_queue(4, 1 << 20);
        let builder = BatchBuilder::new(500, 1 << 20, 0, Duration::from_millis(1000));
        let task = tokio::spawn(run_batcher(builder, rrx, btx, acks));
        let chunk = |records| Chunk {
            records,
            seen: Instant::now(),
        };
        let t0 = Instant::now();
        rtx.send(chunk(vec![rec(0, 5, 5)])).await.expect("send");
        let batch = brx.recv().await.expect("batch");
        assert_eq!(batch.records.len(), 1);
        assert_eq!(Instant::now() - t0, Duration::from_millis(1000));
        // The age counts from when the tailer saw the data, not from when it arrived here.
        let seen = Instant::now();
        tokio::time::advance(Duration::from_millis(400)).await;
        rtx.send(Chunk {
            records: vec![rec(0, 5, 10)],
            seen,
        })
        .await
        .expect("send");
        let batch = brx.recv().await.expect("batch");
        assert_eq!(batch.records.len(), 1);
        assert_eq!(Instant::now() - seen, Duration::from_millis(1000));
        // Hanging up flushes what is left and ends the task.
        rtx.send(chunk(vec![rec(0, 5, 15)])).await.expect("send");
        drop(rtx);
        assert_eq!(brx.recv().await.expect("last").records.len(), 1);
        assert!(brx.recv().await.is_none());
        task.await.expect("task");
    }
}
