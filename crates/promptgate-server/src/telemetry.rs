//! The telemetry hand-off: every invocation leaves one record on a bounded queue without
//! waiting on storage, and a writer task stores the queue in batches.
//!
//! The writer stores a batch when it reaches [`BATCH_SIZE`] records or every [`FLUSH_INTERVAL`].
//! When the database fails (down, restarting, timing out) nothing is lost that fits in memory:
//! the writer keeps what it took from the queue (up to the queue's capacity again) and retries
//! with exponential backoff from [`FLUSH_INTERVAL`] to [`MAX_RETRY_BACKOFF`], so an outage costs
//! the database one attempt every few seconds rather than one per record. While its own buffer
//! is full it stops taking records, the queue fills, and only then are new records dropped and
//! counted (`dropped`), never blocking an invocation. A record the database refuses on its own
//! (not for being unreachable) is kept and retried without holding up the others.
//!
//! On shutdown the writer stores everything queued before it stops, retrying for up to
//! [`SHUTDOWN_GRACE`] if the database is down; what it still holds then is counted as dropped.
//!
//! Durability ([`Durability`], `[telemetry] durability`): by default (`queued`) an invocation is
//! answered as soon as its record is queued, so a crash loses what is queued and not yet stored
//! (at most the queue's capacity plus the writer's buffer of the same size), and a full queue
//! drops records (counted, and reported by one WARN line per [`DROP_WARNING_INTERVAL`] with the
//! count). With `ack-after-store` a successful invocation's answer waits until its record's batch
//! has committed ([`TelemetrySink::stored`]), and is refused with 503 when it cannot be.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use promptgate_core::invocation::{InvocationRecord, InvocationStatus};
use promptgate_store::{Store, StoreError};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The default queue capacity (`[telemetry] queue_capacity`).
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Records per database transaction.
pub const BATCH_SIZE: usize = 256;
/// The longest a record waits in the queue before it is stored.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// The longest wait between two attempts to store while the database fails.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(5);
/// How long shutdown keeps retrying to store what is queued while the database fails.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// At most one WARN line about dropped records per this interval (with the count since the
/// previous line), so that a full queue under load does not also flood the log.
pub const DROP_WARNING_INTERVAL: Duration = Duration::from_secs(10);
/// Under `ack-after-store`, the longest an answer waits for its record's commit before it is
/// refused (the writer answers at its first attempt, so this only matters behind a backlog).
pub const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// An outcome nobody came to collect (the caller went away) is forgotten after this long.
const ACK_FORGET_AFTER: Duration = Duration::from_secs(60);

/// When an invocation is answered relative to the storing of its record (`[telemetry]
/// durability`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// Answer once the record is queued (the default): no wait, but a crash loses what is
    /// queued and a full queue drops records.
    #[default]
    Queued,
    /// Answer a successful invocation only once its record is committed; 503 when it cannot be.
    AckAfterStore,
}

/// Where invocations leave their records.
#[derive(Debug)]
pub struct TelemetrySink {
    sender: mpsc::Sender<InvocationRecord>,
    flusher: Option<mpsc::Sender<oneshot::Sender<()>>>,
    counters: Arc<Counters>,
    /// Wakes the writer when a whole batch is queued (or half of a queue smaller than a batch).
    /// Below that the writer wakes on its own timer: an invocation does not wake another thread
    /// just to hand over its record (except under `ack-after-store`, where the caller waits).
    batch_ready: Arc<Notify>,
    durability: Durability,
    /// The outcomes `ack-after-store` answers wait for, shared with the writer.
    acks: Arc<Acks>,
}

/// What the queue has seen, for `/metrics` and for tests.
#[derive(Debug, Default)]
pub struct Counters {
    emitted: AtomicU64,
    dropped: AtomicU64,
    stored: AtomicU64,
    store_failures: AtomicU64,
    drop_warnings: DropWarnings,
}

/// The rate limit of the "records dropped" warning: the first drop is reported at once, later
/// ones at most once per [`DROP_WARNING_INTERVAL`], each line with the count since the last.
#[derive(Debug, Default)]
struct DropWarnings {
    /// When the last line was written, and the drops since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl DropWarnings {
    /// Counts `n` drops at `now`; the count to report when a line is due.
    fn record(&self, n: u64, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1 += n;
        self.due(&mut state, now)
    }

    /// The count to report if drops are unreported and the interval has passed (the writer
    /// asks on its timer, so the last drops of a burst are reported too).
    fn pending(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.due(&mut state, now)
    }

    fn due(&self, state: &mut (Option<Instant>, u64), now: Instant) -> Option<u64> {
        let due = state.1 > 0
            && state
                .0
                .is_none_or(|last| now.duration_since(last) >= DROP_WARNING_INTERVAL);
        if !due {
            return None;
        }
        state.0 = Some(now);
        Some(std::mem::take(&mut state.1))
    }
}

/// Writes the drop warning's line for `count` drops, if one is due.
fn warn_dropped(counters: &Counters, count: Option<u64>) {
    if let Some(count) = count {
        tracing::warn!(
            dropped = count,
            dropped_total = counters.dropped(),
            interval_s = DROP_WARNING_INTERVAL.as_secs(),
            "telemetry queue full; records dropped (at most one such line per interval)"
        );
    }
}

/// The commit outcomes `ack-after-store` answers wait for, by record id.
#[derive(Debug, Default)]
struct Acks {
    entries: Mutex<HashMap<String, Ack>>,
}

#[derive(Debug)]
struct Ack {
    since: Instant,
    /// Set by the writer (first outcome wins): true once committed.
    outcome: Option<bool>,
    /// The answer waiting for the outcome, if it came first.
    waiter: Option<oneshot::Sender<bool>>,
}

impl Acks {
    /// Starts waiting for record `id`; forgets outcomes nobody collected.
    fn expect(&self, id: &str, outcome: Option<bool>) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= 1024 {
            entries.retain(|_, ack| now.duration_since(ack.since) < ACK_FORGET_AFTER);
        }
        entries.insert(
            id.to_owned(),
            Ack {
                since: now,
                outcome,
                waiter: None,
            },
        );
    }

    /// Records the outcome of the records `ids`, for those an answer waits for.
    fn resolve<'a>(&self, ids: impl Iterator<Item = &'a str>, stored: bool) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.is_empty() {
            return;
        }
        for id in ids {
            let Some(ack) = entries.get_mut(id) else {
                continue;
            };
            if ack.outcome.is_some() {
                continue;
            }
            match ack.waiter.take() {
                Some(waiter) => {
                    let _ = waiter.send(stored);
                    entries.remove(id);
                }
                None => ack.outcome = Some(stored),
            }
        }
    }

    /// The outcome for record `id`: `None` when nobody expects it, else whether it was
    /// committed within `timeout`.
    async fn wait(&self, id: &str, timeout: Duration) -> Option<bool> {
        let receiver = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            let ack = entries.get_mut(id)?;
            if let Some(outcome) = ack.outcome {
                entries.remove(id);
                return Some(outcome);
            }
            let (sender, receiver) = oneshot::channel();
            ack.waiter = Some(sender);
            receiver
        };
        let outcome = tokio::time::timeout(timeout, receiver).await;
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        Some(matches!(outcome, Ok(Ok(true))))
    }
}

impl Counters {
    /// Records queued since start.
    pub fn emitted(&self) -> u64 {
        self.emitted.load(Ordering::Relaxed)
    }

    /// Records dropped because the queue was full (the writer's buffer full too, during a long
    /// outage), or still unstored when shutdown gave up; normally zero.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records stored in the database.
    pub fn stored(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    /// Failed attempts to store (each retried later).
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
                batch_ready: Arc::default(),
                durability: Durability::Queued,
                acks: Arc::default(),
            },
            receiver,
        )
    }

    /// The same sink, answering as `durability` says (the default is [`Durability::Queued`]).
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How this sink acknowledges.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// A sink whose records a spawned writer stores in `store`. The writer ends, after storing
    /// everything queued, once every clone of the sink is dropped.
    pub fn with_writer(capacity: usize, store: Arc<dyn Store>) -> (Self, JoinHandle<()>) {
        TelemetrySink::spawn_writer(capacity, store)
    }

    fn spawn_writer<B: Batches>(capacity: usize, store: B) -> (Self, JoinHandle<()>) {
        let (mut sink, records) = TelemetrySink::new(capacity);
        let (flusher, flushes) = mpsc::channel(64);
        sink.flusher = Some(flusher);
        let writer = tokio::spawn(write_loop(
            store,
            records,
            flushes,
            sink.batch_ready.clone(),
            sink.counters.clone(),
            sink.acks.clone(),
            capacity.max(1),
        ));
        (sink, writer)
    }

    /// Queues a record without waiting; a full queue drops it and counts the drop. Under
    /// `ack-after-store` a successful invocation's record is then expected by
    /// [`TelemetrySink::stored`], and the writer is woken at once (its batches then commit
    /// whatever arrived while the previous one was committing).
    pub fn emit(&self, record: InvocationRecord) {
        let acked = self.durability == Durability::AckAfterStore
            && record.status == InvocationStatus::Success;
        let id = acked.then(|| record.id.clone());
        match self.sender.try_send(record) {
            Ok(()) => {
                self.counters.emitted.fetch_add(1, Ordering::Relaxed);
                if let Some(id) = &id {
                    self.acks.expect(id, None);
                    self.batch_ready.notify_one();
                    return;
                }
                // A batch, or half of a small queue: the writer takes them before the queue
                // fills.
                let max = self.sender.max_capacity();
                let queued = max - self.sender.capacity();
                if queued >= BATCH_SIZE.min(max.div_ceil(2)) {
                    self.batch_ready.notify_one();
                }
            }
            Err(_) => {
                if let Some(id) = &id {
                    self.acks.expect(id, Some(false));
                }
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                let due = self.counters.drop_warnings.record(1, Instant::now());
                warn_dropped(&self.counters, due);
            }
        }
    }

    /// Under `ack-after-store`, waits until the record of successful invocation `id` is
    /// committed, and refuses with 503 when it could not be (the queue was full, the database
    /// failed, or [`ACK_TIMEOUT`] passed); the record may still be stored later, but the answer
    /// never claims it was. Returns at once in `queued` mode and for records not expected.
    pub async fn stored(&self, id: &str) -> Result<(), NotStored> {
        if self.durability != Durability::AckAfterStore {
            return Ok(());
        }
        match self.acks.wait(id, ACK_TIMEOUT).await {
            None | Some(true) => Ok(()),
            Some(false) => Err(NotStored(format!(
                "the record of invocation {id} could not be stored, so its answer is withheld \
                 ([telemetry] durability = \"ack-after-store\"); retry"
            ))),
        }
    }

    /// Waits until every record queued before this call is stored, or the attempt failed. While
    /// the writer is backing off after a failure it answers at once, without another attempt:
    /// the database is known to be failing, and a reader should not wait on it twice.
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

/// Where the writer stores batches: the store, or a scripted stand-in in tests.
#[async_trait]
trait Batches: Send + Sync + 'static {
    async fn insert(&self, records: &[InvocationRecord]) -> Result<(), StoreError>;
}

#[async_trait]
impl Batches for Arc<dyn Store> {
    async fn insert(&self, records: &[InvocationRecord]) -> Result<(), StoreError> {
        self.insert_invocations(records).await
    }
}

/// The writer's records and its retry state.
struct Writer<B> {
    store: B,
    counters: Arc<Counters>,
    acks: Arc<Acks>,
    /// Taken from the queue, not yet stored (at most `capacity`).
    pending: VecDeque<InvocationRecord>,
    capacity: usize,
    /// While the database fails: no attempt before this instant (except at shutdown).
    retry_at: Option<Instant>,
    backoff: Duration,
}

async fn write_loop<B: Batches>(
    store: B,
    mut records: mpsc::Receiver<InvocationRecord>,
    mut flushes: mpsc::Receiver<oneshot::Sender<()>>,
    batch_ready: Arc<Notify>,
    counters: Arc<Counters>,
    acks: Arc<Acks>,
    capacity: usize,
) {
    let mut writer = Writer {
        store,
        counters,
        acks,
        pending: VecDeque::with_capacity(BATCH_SIZE),
        capacity,
        retry_at: None,
        backoff: FLUSH_INTERVAL,
    };
    let mut tick = tokio::time::interval(FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = batch_ready.notified() => {}
            _ = tick.tick() => {
                warn_dropped(&writer.counters, writer.counters.drop_warnings.pending(Instant::now()));
            }
            Some(done) = flushes.recv() => {
                writer.take_queued(&mut records);
                if !writer.backing_off() {
                    writer.write().await;
                }
                let _ = done.send(());
                continue;
            }
        }
        // Every sink is gone (the queue is closed and empty, or the buffer is full and cannot
        // take the rest): store what is left and stop.
        if writer.take_queued(&mut records) {
            writer.finish(&mut records).await;
            return;
        }
        if !writer.pending.is_empty() && !writer.backing_off() {
            writer.write().await;
        }
    }
}

impl<B: Batches> Writer<B> {
    /// Moves queued records into the buffer while it has room (a full buffer leaves them in the
    /// bounded queue, which then refuses, and counts, new ones instead of this task growing
    /// without bound). True when every sink is gone.
    fn take_queued(&mut self, records: &mut mpsc::Receiver<InvocationRecord>) -> bool {
        let before = self.pending.len();
        let mut closed = None;
        while self.pending.len() < self.capacity {
            match records.try_recv() {
                Ok(record) => self.pending.push_back(record),
                Err(mpsc::error::TryRecvError::Empty) => {
                    closed = Some(false);
                    break;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed = Some(true);
                    break;
                }
            }
        }
        // While the database is known to fail, an answer waiting for one of these records is
        // told so now rather than after the backoff (the records stay, to be stored later).
        if self.backing_off() {
            self.acks
                .resolve(self.pending.range(before..).map(|r| r.id.as_str()), false);
        }
        closed.unwrap_or_else(|| records.is_closed())
    }

    fn backing_off(&self) -> bool {
        self.retry_at.is_some_and(|at| Instant::now() < at)
    }

    /// Stores everything pending in batches; on failure keeps the rest and backs off.
    async fn write(&mut self) {
        match self.store_pending().await {
            Ok(()) => {
                self.retry_at = None;
                self.backoff = FLUSH_INTERVAL;
            }
            Err(err) => {
                self.counters.store_failures.fetch_add(1, Ordering::Relaxed);
                // Answers waiting for any record not stored are refused now; the records stay.
                self.acks
                    .resolve(self.pending.iter().map(|r| r.id.as_str()), false);
                tracing::warn!(error = ?err, queued = self.pending.len(), retry_in_ms = self.backoff.as_millis() as u64, "cannot store telemetry; will retry");
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_RETRY_BACKOFF);
            }
        }
    }

    /// Stores the pending records, [`BATCH_SIZE`] at a time. A batch refused for a reason other
    /// than the database being unreachable may hold one bad record: its records are then
    /// stored one by one, and those refused on their own are kept for later attempts (and
    /// reported as the failure) while the rest go in.
    async fn store_pending(&mut self) -> Result<(), StoreError> {
        let mut refused: Vec<InvocationRecord> = Vec::new();
        let mut outcome = Ok(());
        while !self.pending.is_empty() {
            let n = self.pending.len().min(BATCH_SIZE);
            match self
                .store
                .insert(&self.pending.make_contiguous()[..n])
                .await
            {
                Ok(()) => {
                    self.acks
                        .resolve(self.pending.range(..n).map(|r| r.id.as_str()), true);
                    self.pending.drain(..n);
                    self.counters.stored.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(err @ StoreError::Unavailable(_)) => {
                    outcome = Err(err);
                    break;
                }
                Err(err) => {
                    tracing::warn!(error = ?err, "a telemetry batch was refused; storing its records one by one");
                    let refused_before = refused.len();
                    if let Err(unavailable) = self.store_one_by_one(n, &mut refused).await {
                        outcome = Err(unavailable);
                        break;
                    }
                    for record in &refused[refused_before..] {
                        tracing::error!(record = %record.id, "the database refuses this telemetry record; keeping it and retrying");
                    }
                    if refused.len() > refused_before {
                        outcome = Err(err);
                    }
                }
            }
        }
        // Refused records go back to the front, to be tried again after the backoff.
        for record in refused.into_iter().rev() {
            self.pending.push_front(record);
        }
        outcome
    }

    /// Stores the first `n` pending records one at a time, moving the ones refused on their own
    /// to `refused`; stops at the first `Unavailable`, keeping the rest pending.
    async fn store_one_by_one(
        &mut self,
        n: usize,
        refused: &mut Vec<InvocationRecord>,
    ) -> Result<(), StoreError> {
        for _ in 0..n {
            let Some(record) = self.pending.pop_front() else {
                break;
            };
            match self.store.insert(std::slice::from_ref(&record)).await {
                Ok(()) => {
                    self.acks.resolve(std::iter::once(record.id.as_str()), true);
                    self.counters.stored.fetch_add(1, Ordering::Relaxed);
                }
                Err(err @ StoreError::Unavailable(_)) => {
                    self.pending.push_front(record);
                    return Err(err);
                }
                Err(_) => refused.push(record),
            }
        }
        Ok(())
    }

    /// At shutdown: stores what is pending and what is left in the queue, retrying with
    /// backoff for up to [`SHUTDOWN_GRACE`], then counts what is left as dropped.
    async fn finish(&mut self, records: &mut mpsc::Receiver<InvocationRecord>) {
        while let Ok(record) = records.try_recv() {
            self.pending.push_back(record);
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        loop {
            if self.pending.is_empty() {
                return;
            }
            if let Some(at) = self.retry_at
                && at > Instant::now()
            {
                if at >= deadline {
                    break;
                }
                tokio::time::sleep_until(at).await;
            }
            self.write().await;
            if Instant::now() >= deadline {
                break;
            }
        }
        if !self.pending.is_empty() {
            let lost = self.pending.len() as u64;
            self.counters.dropped.fetch_add(lost, Ordering::Relaxed);
            self.acks
                .resolve(self.pending.iter().map(|r| r.id.as_str()), false);
            tracing::error!(
                lost,
                "the database stayed unavailable through shutdown; telemetry records not stored"
            );
        }
    }
}

/// Under `ack-after-store`, a successful invocation's record could not be committed: its
/// answer is withheld (503). The text says which invocation and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotStored(pub String);

/// `[telemetry]`.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySection {
    /// Days records are kept.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Records queued before they are written.
    #[serde(default)]
    pub queue_capacity: Option<u32>,
    /// `queued` (default: answer once the record is queued) or `ack-after-store` (a
    /// successful invocation is answered only once its record is committed;
    /// `docs/telemetry.md`).
    #[serde(default)]
    pub durability: Option<Durability>,
}

impl TelemetrySection {
    /// The queue's capacity, the default when not set.
    pub fn queue_capacity(&self) -> usize {
        self.queue_capacity
            .map_or(DEFAULT_QUEUE_CAPACITY, |c| c as usize)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use promptgate_core::invocation::InvocationStatus;

    use super::*;

    /// A store stand-in: down (every write `Unavailable`), refusing one record id (a database
    /// error for any batch holding it), or storing.
    #[derive(Default)]
    struct Scripted {
        down: std::sync::atomic::AtomicBool,
        refuse: Mutex<Option<String>>,
        stored: Mutex<Vec<String>>,
        attempts: Mutex<Vec<Instant>>,
    }

    impl Scripted {
        fn set_down(&self, down: bool) {
            self.down.store(down, Ordering::SeqCst);
        }

        fn stored(&self) -> Vec<String> {
            self.stored.lock().unwrap().clone()
        }

        fn attempts(&self) -> Vec<Instant> {
            self.attempts.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Batches for Arc<Scripted> {
        async fn insert(&self, records: &[InvocationRecord]) -> Result<(), StoreError> {
            self.attempts.lock().unwrap().push(Instant::now());
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut));
            }
            let refuse = self.refuse.lock().unwrap().clone();
            if records.iter().any(|r| Some(&r.id) == refuse.as_ref()) {
                return Err(StoreError::Database(sqlx::Error::Protocol(
                    "refused".into(),
                )));
            }
            self.stored
                .lock()
                .unwrap()
                .extend(records.iter().map(|r| r.id.clone()));
            Ok(())
        }
    }

    fn record(n: usize) -> InvocationRecord {
        InvocationRecord {
            id: format!("inv-{n}"),
            timestamp: time::OffsetDateTime::UNIX_EPOCH,
            prompt_id: uuid::Uuid::nil(),
            version: "1.0.0".to_owned(),
            model: "echo".to_owned(),
            status: InvocationStatus::Success,
            error_code: None,
            latency_ms: 1.0,
            upstream_latency_ms: None,
            time_to_first_token_ms: None,
            prompt_tokens: 1,
            completion_tokens: 1,
            session_id: None,
            client_id: "c".to_owned(),
            metadata: BTreeMap::new(),
            label: None,
            variable_names: Vec::new(),
            schema_valid: None,
            tool_call_count: 0,
            api_key_id: None,
            cost_usd: None,
            endpoint_ref: "openai/gpt-4o".to_owned(),
            fallback_attempts: Vec::new(),
        }
    }

    fn ids(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|n| format!("inv-{n}")).collect()
    }

    /// Lets virtual time pass (the tests run with tokio's clock paused, so waits are exact and
    /// instant).
    async fn pass(duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_keeps_every_record_and_retries_with_growing_waits() {
        let store = Arc::new(Scripted::default());
        store.set_down(true);
        let (sink, writer) = TelemetrySink::spawn_writer(1_000, store.clone());
        for n in 0..300 {
            sink.emit(record(n));
        }
        pass(Duration::from_secs(60)).await;
        assert!(store.stored().is_empty());
        assert_eq!(sink.dropped(), 0);
        let attempts = store.attempts();
        let waits: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            waits.windows(2).all(|w| w[0] <= w[1]),
            "waits grow: {waits:?}"
        );
        assert!(waits[0] >= FLUSH_INTERVAL, "{waits:?}");
        assert_eq!(waits.last().copied(), Some(MAX_RETRY_BACKOFF), "{waits:?}");
        // One minute of outage cost a handful of attempts, not one per record or per tick.
        assert!(attempts.len() < 20, "{} attempts", attempts.len());
        assert_eq!(
            sink.counters().store_failures(),
            attempts.len() as u64,
            "every failed attempt is counted"
        );

        // A reader's flush during the backoff answers without another attempt.
        let before = Instant::now();
        sink.flush().await;
        assert_eq!(Instant::now(), before);
        assert_eq!(store.attempts().len(), attempts.len());

        store.set_down(false);
        pass(MAX_RETRY_BACKOFF + FLUSH_INTERVAL).await;
        assert_eq!(store.stored(), ids(0..300), "every record, once, in order");
        assert_eq!(sink.counters().stored(), 300);
        assert_eq!(sink.dropped(), 0);
        drop(sink);
        writer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_outage_drops_only_what_does_not_fit_the_bounded_queue() {
        let store = Arc::new(Scripted::default());
        store.set_down(true);
        let capacity = 10;
        let (sink, writer) = TelemetrySink::spawn_writer(capacity, store.clone());
        for n in 0..50 {
            sink.emit(record(n));
            pass(Duration::from_millis(1)).await;
        }
        // The writer holds `capacity` records and the queue `capacity` more; the newest
        // records beyond that are refused and counted.
        let kept = sink.emitted() as usize;
        assert_eq!(kept, 2 * capacity);
        assert_eq!(sink.dropped() as usize, 50 - kept);
        store.set_down(false);
        pass(MAX_RETRY_BACKOFF * 2).await;
        assert_eq!(store.stored(), ids(0..kept));
        drop(sink);
        writer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_refused_on_its_own_does_not_hold_up_the_others() {
        let store = Arc::new(Scripted::default());
        *store.refuse.lock().unwrap() = Some("inv-5".to_owned());
        let (sink, writer) = TelemetrySink::spawn_writer(100, store.clone());
        for n in 0..10 {
            sink.emit(record(n));
        }
        sink.flush().await;
        let mut expected = ids(0..10);
        expected.retain(|id| id != "inv-5");
        assert_eq!(store.stored(), expected);
        assert_eq!(sink.counters().store_failures(), 1);
        assert_eq!(sink.dropped(), 0, "kept, not dropped");
        // More records go in while the refused one waits for its retry.
        sink.emit(record(10));
        pass(FLUSH_INTERVAL * 2).await;
        assert!(store.stored().contains(&"inv-10".to_owned()));
        // Once the database takes it, it is stored too.
        *store.refuse.lock().unwrap() = None;
        pass(MAX_RETRY_BACKOFF * 2).await;
        assert!(store.stored().contains(&"inv-5".to_owned()));
        assert_eq!(store.stored().len(), 11);
        drop(sink);
        writer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_retries_then_counts_what_it_could_not_store() {
        let store = Arc::new(Scripted::default());
        store.set_down(true);
        let (sink, writer) = TelemetrySink::spawn_writer(100, store.clone());
        let counters = sink.counters.clone();
        for n in 0..5 {
            sink.emit(record(n));
        }
        let started = Instant::now();
        drop(sink);
        writer.await.unwrap();
        assert!(store.stored().is_empty());
        assert_eq!(counters.dropped(), 5);
        assert!(store.attempts().len() > 1, "it retried");
        assert!(Instant::now() - started <= SHUTDOWN_GRACE + MAX_RETRY_BACKOFF);
    }

    #[test]
    fn telemetry_drop_warning_is_rate_limited_to_one_line_per_interval_with_a_count() {
        let warnings = DropWarnings::default();
        let start = Instant::now();
        // The first drop is reported at once; the 999 after it, within the interval, are not.
        assert_eq!(warnings.record(1, start), Some(1));
        let lines = (1..1_000)
            .filter_map(|i| warnings.record(1, start + Duration::from_millis(i)))
            .count();
        assert_eq!(lines, 0, "no line per drop");
        assert_eq!(
            warnings.pending(start + DROP_WARNING_INTERVAL / 2),
            None,
            "not before the interval"
        );
        // Once the interval has passed, one line carries every drop since the last one, whether
        // the next drop or the writer's timer asks first.
        assert_eq!(warnings.pending(start + DROP_WARNING_INTERVAL), Some(999));
        assert_eq!(warnings.pending(start + DROP_WARNING_INTERVAL * 3), None);
        let later = start + DROP_WARNING_INTERVAL * 3;
        assert_eq!(warnings.record(5, later), Some(5));
        assert_eq!(warnings.record(2, later + Duration::from_secs(1)), None);
        assert_eq!(warnings.record(1, later + DROP_WARNING_INTERVAL), Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_counts_every_drop_but_warns_once_per_interval() {
        let (sink, _records) = TelemetrySink::new(1);
        for n in 0..100 {
            sink.emit(record(n));
        }
        assert_eq!(sink.emitted(), 1);
        assert_eq!(sink.dropped(), 99);
        // One line was due (the first drop); the other 98 wait for the interval.
        assert_eq!(sink.counters().drop_warnings.pending(Instant::now()), None);
        pass(DROP_WARNING_INTERVAL).await;
        assert_eq!(
            sink.counters().drop_warnings.pending(Instant::now()),
            Some(98)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ack_after_store_answers_once_the_record_is_committed_and_refuses_when_it_cannot_be() {
        let store = Arc::new(Scripted::default());
        let (sink, writer) = TelemetrySink::spawn_writer(100, store.clone());
        let sink = sink.with_durability(Durability::AckAfterStore);
        sink.emit(record(1));
        let before = Instant::now();
        sink.stored("inv-1").await.unwrap();
        assert_eq!(store.stored(), ids(1..2), "stored before the answer");
        assert!(
            Instant::now() - before < FLUSH_INTERVAL,
            "the writer was woken, not left to its timer"
        );

        // The database fails: the answer is refused, the record kept and stored later.
        store.set_down(true);
        sink.emit(record(2));
        let err = sink.stored("inv-2").await.unwrap_err();
        assert!(err.0.contains("inv-2"), "{err:?}");
        // While the writer backs off, a new record's answer is refused without waiting for
        // the next attempt.
        sink.emit(record(3));
        let before = Instant::now();
        assert!(sink.stored("inv-3").await.is_err());
        assert_eq!(Instant::now(), before);
        store.set_down(false);
        pass(MAX_RETRY_BACKOFF * 2).await;
        assert_eq!(
            store.stored(),
            ids(1..4),
            "refused answers' records are still kept"
        );

        // Records of failed invocations are not waited for; nor is anything in queued mode.
        let mut failed = record(4);
        failed.status = InvocationStatus::Error;
        sink.emit(failed);
        sink.stored("inv-4").await.unwrap();
        drop(sink);
        writer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn ack_after_store_refuses_a_record_dropped_by_a_full_queue() {
        let (sink, _records) = TelemetrySink::new(1);
        let sink = sink.with_durability(Durability::AckAfterStore);
        sink.emit(record(1));
        sink.emit(record(2));
        assert_eq!(sink.dropped(), 1);
        assert!(sink.stored("inv-2").await.is_err(), "dropped, so refused");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_during_an_outage_stores_everything_once_the_database_is_back() {
        for capacity in [100, 2] {
            // With capacity 2 the writer's buffer is full when the sinks go, so the end of the
            // queue is seen by the periodic check rather than by `recv`.
            let store = Arc::new(Scripted::default());
            store.set_down(true);
            let (sink, writer) = TelemetrySink::spawn_writer(capacity, store.clone());
            let counters = sink.counters.clone();
            for n in 0..4 {
                sink.emit(record(n));
                pass(Duration::from_millis(1)).await;
            }
            assert_eq!(sink.emitted(), 4);
            drop(sink);
            let recovery = {
                let store = store.clone();
                tokio::spawn(async move {
                    pass(Duration::from_secs(1)).await;
                    store.set_down(false);
                })
            };
            writer.await.unwrap();
            recovery.await.unwrap();
            assert_eq!(store.stored(), ids(0..4), "capacity {capacity}");
            assert_eq!(counters.dropped(), 0, "capacity {capacity}");
        }
    }
}
