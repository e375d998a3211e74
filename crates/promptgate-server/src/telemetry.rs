//! The telemetry hand-off: every invocation leaves one record on a bounded queue without
//! waiting on storage. When the queue is full the record is dropped and counted, never blocking
//! an invocation; storing and exporting the records is the telemetry pipeline's job (it consumes
//! the receiver).

use std::sync::atomic::{AtomicU64, Ordering};

use promptgate_core::invocation::InvocationRecord;
use tokio::sync::mpsc;

/// The default queue capacity (`[telemetry] queue_capacity`).
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;

/// Where invocations leave their records.
#[derive(Debug)]
pub struct TelemetrySink {
    sender: mpsc::Sender<InvocationRecord>,
    emitted: AtomicU64,
    dropped: AtomicU64,
}

impl TelemetrySink {
    /// A sink with room for `capacity` records, and the receiver that drains it.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<InvocationRecord>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        (
            TelemetrySink {
                sender,
                emitted: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
            },
            receiver,
        )
    }

    /// Queues a record without waiting; a full queue drops it and counts the drop.
    pub fn emit(&self, record: InvocationRecord) {
        match self.sender.try_send(record) {
            Ok(()) => {
                self.emitted.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(dropped_total = dropped, reason = %err, "telemetry queue full; record dropped");
            }
        }
    }

    /// Records queued since start.
    pub fn emitted(&self) -> u64 {
        self.emitted.load(Ordering::Relaxed)
    }

    /// Records dropped because the queue was full (normally zero).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
