//! The publish queue between the batcher and the sender: at most `publishQueueCapacity` batches
//! (the Java agent's bound) and at most [`QUEUE_BYTES`] of record data.
//!
//! The byte bound is ours. The Java agent counts batches only, so with its default of 100 a
//! backlog of small lines kept about 10 MB queued (100 batches of 500 × 200 bytes), and large
//! records up to 500 MB; the sender, with its calls in flight, needs only a few batches ready.
//! A batch larger than the bound still goes through, alone.

use std::sync::Arc;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::batch::Batch;

/// Record bytes the queue holds at most (one larger batch is let in alone).
pub const QUEUE_BYTES: usize = 1024 * 1024;

/// A queue holding at most `batches` batches and `bytes` bytes (counted as [`Batch::bytes`]).
pub fn publish_queue(batches: usize, bytes: usize) -> (QueueSender, QueueReceiver) {
    let (tx, rx) = mpsc::channel(batches.max(1));
    // A batch asks for at most `bytes` permits, as a u32.
    let bytes = bytes.clamp(1, u32::MAX as usize);
    let room = Arc::new(Semaphore::new(bytes));
    (QueueSender { tx, room, bytes }, QueueReceiver { rx })
}

pub struct QueueSender {
    tx: mpsc::Sender<(Batch, OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
    bytes: usize,
}

impl QueueSender {
    /// Waits for room, then queues `batch`. Gives it back if the receiver is gone.
    pub async fn send(&self, batch: Batch) -> Result<(), Batch> {
        let need = u32::try_from(batch.bytes.clamp(1, self.bytes)).unwrap_or(u32::MAX); // ≤ bytes
        let Ok(permit) = self.room.clone().acquire_many_owned(need).await else {
            return Err(batch); // never closed; kept for completeness of the match
        };
        self.tx.send((batch, permit)).await.map_err(|e| e.0 .0)
    }
}

pub struct QueueReceiver {
    rx: mpsc::Receiver<(Batch, OwnedSemaphorePermit)>,
}

impl QueueReceiver {
    /// The next batch; its bytes leave the queue's count when it is taken.
    pub async fn recv(&mut self) -> Option<Batch> {
        self.rx.recv().await.map(|(batch, _room)| batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{FileRef, Record};
    use bytes::Bytes;
    use std::time::Duration;

    fn batch(seq: u64, bytes: usize) -> Batch {
        Batch {
            seq,
            records: vec![Record {
                data: Bytes::from(vec![b'x'; bytes]),
                file: FileRef(0),
                end_offset: bytes as u64,
            }],
            bytes,
            files: vec![(FileRef(0), bytes as u64)],
            started: tokio::time::Instant::now(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_bound_the_queue_and_a_large_batch_goes_alone() {
        let (tx, mut rx) = publish_queue(100, 1000);
        tx.send(batch(1, 600)).await.expect("room");
        // 600 + 600 > 1000: waits until the first is taken.
        let blocked = tokio::time::timeout(Duration::from_secs(1), tx.send(batch(2, 600))).await;
        assert!(blocked.is_err(), "the second batch must wait for room");
        assert_eq!(rx.recv().await.map(|b| b.seq), Some(1));
        tx.send(batch(2, 600)).await.expect("room again");
        assert_eq!(rx.recv().await.map(|b| b.seq), Some(2));
        // Larger than the whole bound: let in when the queue is empty.
        tx.send(batch(3, 5000)).await.expect("alone");
        assert_eq!(rx.recv().await.map(|b| b.seq), Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn the_batch_count_still_bounds_the_queue() {
        let (tx, mut rx) = publish_queue(2, 1 << 20);
        tx.send(batch(1, 1)).await.expect("room");
        tx.send(batch(2, 1)).await.expect("room");
        let blocked = tokio::time::timeout(Duration::from_secs(1), tx.send(batch(3, 1))).await;
        assert!(blocked.is_err(), "publishQueueCapacity is 2");
        assert_eq!(rx.recv().await.map(|b| b.seq), Some(1));
    }

    #[tokio::test]
    async fn a_closed_queue_gives_the_batch_back() {
        let (tx, rx) = publish_queue(2, 1000);
        drop(rx);
        assert_eq!(tx.send(batch(7, 10)).await.map_err(|b| b.seq), Err(7));
    }
}
