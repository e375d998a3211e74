//! The telemetry hand-off: every invocation leaves one record on a bounded queue without
//! waiting on storage, and a writer task stores the queue in batches.
//!
//! When the queue is full a record is dropped and counted (`dropped`), never blocking an
//! invocation. The writer stores a batch when it reaches [`BATCH_SIZE`] records or every
//! [`FLUSH_INTERVAL`]; a batch the database refuses is kept and retried, up to the queue's
//! capacity in memory. On shutdown the writer stores everything queued before it stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use promptgate_core::invocation::InvocationRecord;
use promptgate_store::Store;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The default queue capacity (`[telemetry] queue_capacity`).
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Records per database transaction.
pub const BATCH_SIZE: usize = 256;
/// The longest a record waits in the queue before it is stored.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

/// Where invocations leave their records.
#[derive(Debug)]
pub struct TelemetrySink {
    sender: mpsc::Sender<InvocationRecord>,
    flusher: Option<mpsc::Sender<oneshot::Sender<()>>>,
    counters: Arc<Counters>,
}

/// What the queue has seen, for `/metrics` and for tests.
#[derive(Debug, Default)]
pub struct Counters {
    emitted: AtomicU64,
    dropped: AtomicU64,
    stored: AtomicU64,
    store_failures: AtomicU64,
}

impl Counters {
    /// Records queued since start.
    pub fn emitted(&self) -> u64 {
        self.emitted.load(Ordering::Relaxed)
    }

    /// Records dropped because the queue (or the writer's retry buffer) was full; normally zero.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records stored in the database.
    pub fn stored(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    /// Batches the database refused (each retried later).
    pub fn store_failures(&self) -> u64 {
        self.store_failures.load(Ordering::Relaxed)
    }
}

impl TelemetrySink {
    /// A sink with room for `capacity` records, and the receiver that drains it (for tests and
    /// embedders that consume records themselves; `flush` then returns at once).
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<InvocationRecord>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        (
            TelemetrySink {
                sender,
                flusher: None,
                counters: Arc::default(),
            },
            receiver,
        )
    }

    /// A sink whose records a spawned writer stores in `store`. The writer ends, after storing
    /// everything queued, once every clone of the sink is dropped.
    pub fn with_writer(capacity: usize, store: Arc<dyn Store>) -> (Self, JoinHandle<()>) {
        let (mut sink, records) = TelemetrySink::new(capacity);
        let (flusher, flushes) = mpsc::channel(64);
        sink.flusher = Some(flusher);
        let writer = tokio::spawn(write_loop(
            store,
            records,
            flushes,
            sink.counters.clone(),
            capacity.max(1),
        ));
        (sink, writer)
    }

    /// Queues a record without waiting; a full queue drops it and counts the drop.
    pub fn emit(&self, record: InvocationRecord) {
        match self.sender.try_send(record) {
            Ok(()) => {
                self.counters.emitted.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(dropped_total = dropped, reason = %err, "telemetry queue full; record dropped");
            }
        }
    }

    /// Waits until every record queued before this call is stored (or the store refused it).
    pub async fn flush(&self) {
        let Some(flusher) = &self.flusher else { return };
        let (done, wait) = oneshot::channel();
        if flusher.send(done).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// The queue's counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Records queued since start.
    pub fn emitted(&self) -> u64 {
        self.counters.emitted()
    }

    /// Records dropped because the queue was full (normally zero).
    pub fn dropped(&self) -> u64 {
        self.counters.dropped()
    }
}

async fn write_loop(
    store: Arc<dyn Store>,
    mut records: mpsc::Receiver<InvocationRecord>,
    mut flushes: mpsc::Receiver<oneshot::Sender<()>>,
    counters: Arc<Counters>,
    capacity: usize,
) {
    let mut batch: Vec<InvocationRecord> = Vec::with_capacity(BATCH_SIZE);
    let mut tick = tokio::time::interval(FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            record = records.recv() => match record {
                Some(record) => {
                    batch.push(record);
                    if batch.len() >= BATCH_SIZE {
                        store_batch(store.as_ref(), &mut batch, &counters, capacity).await;
                    }
                }
                None => {
                    // Every sink is gone: store what is left and stop.
                    store_batch(store.as_ref(), &mut batch, &counters, capacity).await;
                    return;
                }
            },
            Some(done) = flushes.recv() => {
                while let Ok(record) = records.try_recv() {
                    batch.push(record);
                }
                store_batch(store.as_ref(), &mut batch, &counters, capacity).await;
                let _ = done.send(());
            }
            _ = tick.tick() => {
                if !batch.is_empty() {
                    store_batch(store.as_ref(), &mut batch, &counters, capacity).await;
                }
            }
        }
    }
}

/// Stores the batch; on failure keeps it for the next attempt, dropping (and counting) the
/// oldest records beyond `capacity`.
async fn store_batch(
    store: &dyn Store,
    batch: &mut Vec<InvocationRecord>,
    counters: &Counters,
    capacity: usize,
) {
    if batch.is_empty() {
        return;
    }
    match store.insert_invocations(batch).await {
        Ok(()) => {
            counters
                .stored
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            batch.clear();
        }
        Err(err) => {
            counters.store_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = ?err, queued = batch.len(), "cannot store telemetry; will retry");
            if batch.len() > capacity {
                let excess = batch.len() - capacity;
                batch.drain(..excess);
                counters.dropped.fetch_add(excess as u64, Ordering::Relaxed);
            }
        }
    }
}
