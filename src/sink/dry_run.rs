//! `--dry-run`: a [`PutBatch`] that prints the records instead of sending them.
//!
//! Owns: writing each batch's record bytes, exactly as they would be sent, to standard output
//! in one locked write, and answering success. When standard output goes away (`| head`), it
//! asks the agent to stop and answers success: there is nothing to keep for later.

use std::io::{self, Write};
use std::sync::Mutex;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::{ErrorKind, PutBatch, RecordFailure, SendError};

pub struct DryRunPut<W: Write + Send + 'static = io::Stdout> {
    /// For messages: what the records would have been sent to.
    destination: String,
    out: Mutex<W>,
    /// Cancelled when `out` is closed.
    stop: CancellationToken,
}

impl DryRunPut<io::Stdout> {
    /// Prints to standard output; cancels `stop` when it is closed.
    pub fn stdout(destination: String, stop: CancellationToken) -> Self {
        DryRunPut::new(destination, io::stdout(), stop)
    }
}

impl<W: Write + Send + 'static> DryRunPut<W> {
    pub fn new(destination: String, out: W, stop: CancellationToken) -> Self {
        DryRunPut {
            destination,
            out: Mutex::new(out),
            stop,
        }
    }

    /// The writer back (for tests).
    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

impl<W: Write + Send + 'static> PutBatch for DryRunPut<W> {
    async fn put(&self, records: &[Bytes]) -> Result<Vec<RecordFailure>, SendError> {
        let mut all = Vec::with_capacity(records.iter().map(Bytes::len).sum());
        for r in records {
            all.extend_from_slice(r);
        }
        let written = {
            let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
            out.write_all(&all).and_then(|()| out.flush())
        };
        match written {
            Ok(()) => Ok(Vec::new()),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.stop.cancel();
                Ok(Vec::new())
            }
            Err(e) => Err(SendError {
                kind: ErrorKind::Transient,
                code: "StdoutWriteFailed".into(),
                message: format!("cannot write the dry run's records to standard output: {e}"),
                fix: None,
            }),
        }
    }

    fn describe(&self) -> String {
        format!("{} (dry run: standard output)", self.destination)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn writes_the_records_bytes_in_order_and_answers_success() {
        let stop = CancellationToken::new();
        let put = DryRunPut::new("Kinesis stream 's'".into(), Vec::new(), stop.clone());
        let batch = [
            Bytes::from_static(b"{\"a\":1}\n"),
            Bytes::from_static(b"two\n"),
        ];
        assert_eq!(put.put(&batch).await, Ok(Vec::new()));
        assert_eq!(put.put(&batch[1..]).await, Ok(Vec::new()));
        assert!(put.describe().contains("dry run"));
        assert_eq!(put.into_inner(), b"{\"a\":1}\ntwo\ntwo\n".to_vec());
        assert!(!stop.is_cancelled());
    }

    #[tokio::test]
    async fn a_closed_output_stops_the_agent() {
        let stop = CancellationToken::new();
        let put = DryRunPut::new("s".into(), Closed, stop.clone());
        assert_eq!(put.put(&[Bytes::from_static(b"x\n")]).await, Ok(Vec::new()));
        assert!(stop.is_cancelled());
    }
}
