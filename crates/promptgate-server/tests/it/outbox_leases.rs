//! The telemetry outbox run by two replicas on one database (two stores with pools of their
//! own, as two gateway processes have), on SQLite and on PostgreSQL: every record reaches the
//! target exactly once while records keep arriving; a gracefully stopped holder hands over at
//! once; a holder that crashes mid-delivery costs one repeat of its in-flight batch, under the
//! same batch id, and nothing else.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use promptgate_core::invocation::{InvocationRecord, InvocationStatus};
use promptgate_server::exporters::{ExporterHealth, OutboxConfig, Target, run_outbox};
use promptgate_store::testing::TestDatabase;
use promptgate_store::{Store, StoredInvocation};
use tempfile::TempDir;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Runs a test body once on SQLite and once on PostgreSQL.
macro_rules! on_both_stores {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await
                }
            )+
        }
    };
}

on_both_stores!(
    two_replicas_deliver_every_record_exactly_once,
    a_stopped_holder_hands_over_at_once,
    a_crashed_holder_costs_one_repeat_of_its_batch_under_the_same_id,
);

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// One database, and a way to open more stores (replicas) on it.
struct Database {
    url: String,
    _dir: Option<TempDir>,
    _pg: Option<TestDatabase>,
}

impl Database {
    async fn new(backend: Backend) -> Database {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("t.db").display());
                Database {
                    url,
                    _dir: Some(dir),
                    _pg: None,
                }
            }
            Backend::Postgres => {
                let pg = TestDatabase::create().await;
                Database {
                    url: pg.url().to_owned(),
                    _dir: None,
                    _pg: Some(pg),
                }
            }
        }
    }

    async fn replica(&self) -> Arc<dyn Store> {
        promptgate_store::open(&self.url).await.unwrap()
    }
}

/// What the receiver got: every delivery's batch id and record ids, in arrival order.
#[derive(Default)]
struct Received {
    deliveries: Mutex<Vec<(String, Vec<String>)>>,
}

impl Received {
    fn record_count(&self) -> usize {
        self.deliveries
            .lock()
            .unwrap()
            .iter()
            .map(|(_, ids)| ids.len())
            .sum()
    }

    /// How often each record id arrived.
    fn per_record(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for (_, ids) in self.deliveries.lock().unwrap().iter() {
            for id in ids {
                *counts.entry(id.clone()).or_insert(0) += 1;
            }
        }
        counts
    }

    fn batch_ids(&self) -> Vec<String> {
        self.deliveries
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// A webhook stand-in that records what it gets. It pauses a little in every delivery, so that
/// two replicas delivering at once would overlap (and be caught).
struct Recorder {
    received: Arc<Received>,
    /// Once set, the next delivery is recorded and then never returns (the process "crashes"
    /// after the target got the batch but before the cursor moved).
    hang_after_next: AtomicBool,
}

impl Recorder {
    fn new(received: Arc<Received>) -> Arc<Recorder> {
        Arc::new(Recorder {
            received,
            hang_after_next: AtomicBool::new(false),
        })
    }
}

#[async_trait]
impl Target for Recorder {
    fn name(&self) -> &str {
        "webhook"
    }

    async fn deliver(&self, batch_id: &str, records: &[StoredInvocation]) -> Result<(), String> {
        tokio::time::sleep(Duration::from_millis(3)).await;
        self.received.deliveries.lock().unwrap().push((
            batch_id.to_owned(),
            records.iter().map(|r| r.record.id.clone()).collect(),
        ));
        if self.hang_after_next.swap(false, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

fn config(lease_ttl: Duration) -> OutboxConfig {
    OutboxConfig {
        batch_size: 7,
        flush_interval: Duration::from_millis(20),
        lease_ttl,
        ..OutboxConfig::default()
    }
}

/// A replica's outbox loop and the switch that stops it gracefully.
struct Replica {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Replica {
    fn start(
        store: Arc<dyn Store>,
        target: Arc<dyn Target>,
        config: OutboxConfig,
        holder: &str,
    ) -> Replica {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run_outbox(
            store,
            target,
            config,
            Arc::new(ExporterHealth::default()),
            Arc::from(holder),
            stopped,
        ));
        Replica { stop, task }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the outbox stops after its pass")
            .unwrap();
    }
}

fn record(n: usize) -> InvocationRecord {
    InvocationRecord {
        id: format!("inv-{n:06}"),
        timestamp: time::OffsetDateTime::now_utc(),
        prompt_id: Uuid::nil(),
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
        client_id: "client".to_owned(),
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

async fn insert(store: &dyn Store, range: std::ops::Range<usize>) {
    let records: Vec<_> = range.map(record).collect();
    store.insert_invocations(&records).await.unwrap();
}

/// Polls until `done` holds, failing after a generous deadline.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_each_once(received: &Received, total: usize) {
    let counts = received.per_record();
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "delivered more than once: {repeated:?}"
    );
    assert_eq!(counts.len(), total, "every record delivered");
    let mut ids = received.batch_ids();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        received.batch_ids().len(),
        "batch ids are unique"
    );
}

async fn two_replicas_deliver_every_record_exactly_once(backend: Backend) {
    const TOTAL: usize = 300;
    let db = Database::new(backend).await;
    let (a, b) = (db.replica().await, db.replica().await);
    let received = Arc::new(Received::default());
    let target = Recorder::new(received.clone());
    let replica_a = Replica::start(
        a.clone(),
        target.clone(),
        config(Duration::from_secs(30)),
        "a",
    );
    let replica_b = Replica::start(
        b.clone(),
        target.clone(),
        config(Duration::from_secs(30)),
        "b",
    );
    // Records arrive through both replicas while both outboxes run.
    for chunk in 0..(TOTAL / 20) {
        let writer = if chunk % 2 == 0 { &a } else { &b };
        insert(writer.as_ref(), chunk * 20..(chunk + 1) * 20).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eventually("every record delivered", || {
        received.record_count() >= TOTAL
    })
    .await;
    replica_a.stop().await;
    replica_b.stop().await;
    assert_each_once(&received, TOTAL);
    assert_eq!(
        a.exporter_cursor("webhook").await.unwrap(),
        b.last_invocation_seq().await.unwrap()
    );
}

async fn a_stopped_holder_hands_over_at_once(backend: Backend) {
    let db = Database::new(backend).await;
    let (a, b) = (db.replica().await, db.replica().await);
    let received = Arc::new(Received::default());
    let target = Recorder::new(received.clone());
    // A lease far longer than the test's deadline: only a release lets B in.
    let ttl = Duration::from_secs(3600);
    let replica_a = Replica::start(a.clone(), target.clone(), config(ttl), "a");
    insert(a.as_ref(), 0..50).await;
    eventually("A delivers the first records", || {
        received.record_count() >= 50
    })
    .await;
    let replica_b = Replica::start(b.clone(), target.clone(), config(ttl), "b");
    replica_a.stop().await;
    insert(b.as_ref(), 50..100).await;
    eventually("B takes over and delivers the rest", || {
        received.record_count() >= 100
    })
    .await;
    replica_b.stop().await;
    assert_each_once(&received, 100);
}

async fn a_crashed_holder_costs_one_repeat_of_its_batch_under_the_same_id(backend: Backend) {
    let db = Database::new(backend).await;
    let (a, b) = (db.replica().await, db.replica().await);
    let received = Arc::new(Received::default());
    let target_a = Recorder::new(received.clone());
    let target_b = Recorder::new(received.clone());
    let ttl = Duration::from_millis(300);
    insert(a.as_ref(), 0..20).await;
    let replica_a = Replica::start(a.clone(), target_a.clone(), config(ttl), "a");
    eventually("A delivers the first records", || {
        received.record_count() >= 20
    })
    .await;
    // B runs beside A and delivers nothing while A holds the lease.
    let replica_b = Replica::start(b.clone(), target_b, config(ttl), "b");
    // A's next batch reaches the target, then A dies before moving the cursor.
    target_a.hang_after_next.store(true, Ordering::SeqCst);
    insert(a.as_ref(), 20..27).await;
    eventually("A sends its last batch", || received.record_count() >= 27).await;
    replica_a.task.abort();
    let _ = replica_a.task.await;
    drop(replica_a.stop);
    let deliveries_before_takeover = received.batch_ids().len();
    let crashed_batch = received.batch_ids().last().unwrap().clone();
    // New records arrive; B takes over once A's lease lapses and first repeats A's batch as
    // it was (same id, same records), not merged with the new ones.
    insert(b.as_ref(), 27..40).await;
    eventually("B delivers everything", || {
        received.record_count() >= 40 + 7
    })
    .await;
    replica_b.stop().await;

    let deliveries = received.deliveries.lock().unwrap().clone();
    let repeat = &deliveries[deliveries_before_takeover];
    assert_eq!(
        repeat.0, crashed_batch,
        "the first batch after the takeover is A's, again"
    );
    assert_eq!(repeat.1, deliveries[deliveries_before_takeover - 1].1);
    let counts = received.per_record();
    assert_eq!(counts.len(), 40, "every record delivered");
    for (id, n) in &counts {
        let expected = if repeat.1.contains(id) { 2 } else { 1 };
        assert_eq!(*n, expected, "{id}");
    }
    let batch_ids = received.batch_ids();
    assert_eq!(
        batch_ids.iter().filter(|id| **id == crashed_batch).count(),
        2,
        "{batch_ids:?}"
    );
}
