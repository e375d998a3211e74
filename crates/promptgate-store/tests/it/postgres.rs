//! What only the PostgreSQL store has: URLs, replicas migrating a fresh database together, the
//! pool's limits, statement timeouts, and clear `Unavailable` errors when the server is down.
//! Everything both stores share runs against both in the other modules.

use std::time::Duration;

use promptgate_audit::ChainVerifier;
use promptgate_store::prelude::*;
use promptgate_store::testing::{PrivateCluster, TestDatabase};
use promptgate_store::{AuditFilter, PoolSettings, PostgresStore, StoreError};
use sqlx::{Connection, PgConnection};
use tokio::task::JoinSet;

use crate::fixtures::{audit_draft, client, create};

fn assert_unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "expected Unavailable, got {result:?}"
    );
}

/// Settings whose failures come quickly, for tests that wait for them.
fn impatient() -> PoolSettings {
    PoolSettings {
        max_connections: 4,
        statement_timeout: Duration::from_millis(500),
        acquire_timeout: Duration::from_millis(500),
    }
}

#[tokio::test]
async fn open_takes_both_url_schemes() {
    let db = TestDatabase::create().await;
    let store = promptgate_store::open(db.url()).await.unwrap();
    assert_eq!(store.count_clients().await.unwrap(), 0);
    store.close().await;
    let long = db.url().replacen("postgres://", "postgresql://", 1);
    assert!(long.starts_with("postgresql://"), "{long}");
    let store = promptgate_store::open(&long).await.unwrap();
    store.ping().await.unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_opening_a_fresh_database_at_once_all_succeed() {
    // Four replicas started together on an empty database all find no migration applied; the
    // migrator's advisory lock must let one apply them and the others see them applied.
    let mut failures = Vec::new();
    for round in 0..5 {
        let db = TestDatabase::create().await;
        let mut opens = JoinSet::new();
        for _ in 0..4 {
            let url = db.url().to_owned();
            opens.spawn(async move { PostgresStore::open(&url).await });
        }
        while let Some(opened) = opens.join_next().await {
            match opened.unwrap() {
                Ok(store) => {
                    assert_eq!(store.count_clients().await.unwrap(), 0);
                    store.close().await;
                }
                Err(e) => failures.push(format!("round {round}: {e:?}")),
            }
        }
        let mut raw = PgConnection::connect(db.url()).await.unwrap();
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&mut raw)
            .await
            .unwrap();
        raw.close().await.unwrap();
        assert_eq!(applied, 12, "round {round}");
    }
    assert!(failures.is_empty(), "opens failed: {failures:#?}");
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_within_the_acquire_timeout() {
    // A loopback port nobody listens on: connections are refused, which the pool retries until
    // its acquire timeout, then reports.
    let port = {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://postgres@127.0.0.1:{port}/promptgate");
    assert_unavailable(PostgresStore::open_with(&url, &impatient()).await);
}

#[tokio::test]
async fn a_malformed_url_is_refused_without_its_password() {
    let err = PostgresStore::open("postgres://gw:s3cret@db:notaport/x")
        .await
        .unwrap_err();
    let shown = err.to_string();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{err:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_statement_past_its_timeout_is_unavailable() {
    let db = TestDatabase::create().await;
    let store = PostgresStore::open_with(db.url(), &impatient())
        .await
        .unwrap();
    // Someone holds a lock that every read of `clients` waits for.
    let mut raw = PgConnection::connect(db.url()).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE clients IN ACCESS EXCLUSIVE MODE;")
        .execute(&mut raw)
        .await
        .unwrap();
    assert_unavailable(store.count_clients().await);
    sqlx::raw_sql("ROLLBACK").execute(&mut raw).await.unwrap();
    raw.close().await.unwrap();
    assert_eq!(store.count_clients().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_with_hands_the_pool_settings_to_postgres() {
    // What the server's `[server] database_*` settings go through.
    let db = TestDatabase::create().await;
    let store = promptgate_store::open_with(db.url(), &impatient())
        .await
        .unwrap();
    let mut raw = PgConnection::connect(db.url()).await.unwrap();
    let timeout: String =
        sqlx::query_scalar("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'")
            .fetch_one(&mut raw)
            .await
            .unwrap();
    assert_eq!(
        timeout, "0",
        "the raw connection keeps the server's default"
    );
    sqlx::raw_sql("BEGIN; LOCK TABLE clients IN ACCESS EXCLUSIVE MODE;")
        .execute(&mut raw)
        .await
        .unwrap();
    // Cancelled by the configured 500 ms statement timeout, not left waiting.
    assert_unavailable(store.count_clients().await);
    sqlx::raw_sql("ROLLBACK").execute(&mut raw).await.unwrap();
    raw.close().await.unwrap();
    store.close().await;
    let err = promptgate_store::open_with("mysql://localhost/x", &impatient())
        .await
        .err();
    assert!(
        matches!(err, Some(StoreError::UnsupportedUrl(_))),
        "got {err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pool_opens_at_most_max_connections() {
    let db = TestDatabase::create().await;
    let settings = PoolSettings {
        max_connections: 3,
        ..PoolSettings::default()
    };
    let store = PostgresStore::open_with(db.url(), &settings).await.unwrap();
    let mut tasks = JoinSet::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .insert_client(&client(&format!("c{i}")), &audit_draft())
                .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    let mut raw = PgConnection::connect(db.url()).await.unwrap();
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'promptgate'",
    )
    .fetch_one(&mut raw)
    .await
    .unwrap();
    raw.close().await.unwrap();
    assert!((1..=3).contains(&open), "{open} connections open");
    assert_eq!(store.count_clients().await.unwrap(), 40);
    assert_eq!(store.audit_size().await.unwrap(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_lock_queues_writers_but_not_readers() {
    let db = TestDatabase::create().await;
    let store = PostgresStore::open_with(db.url(), &impatient())
        .await
        .unwrap();
    store.append_audit(&[audit_draft()]).await.unwrap();
    // An appender (another replica) holds the log's lock in an open transaction.
    let mut raw = PgConnection::connect(db.url()).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE audit_entries IN EXCLUSIVE MODE;")
        .execute(&mut raw)
        .await
        .unwrap();
    // Readers go on (a blocked read would hit the 500 ms statement timeout instead)...
    assert_eq!(store.audit_size().await.unwrap(), 1);
    assert_eq!(
        store
            .list_audit(&AuditFilter::default(), None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.audit_leaf_hashes(0, 1).await.unwrap().len(), 1);
    // ...while a writer waits its turn, here past its statement timeout.
    assert_unavailable(store.append_audit(&[audit_draft()]).await);
    sqlx::raw_sql("ROLLBACK").execute(&mut raw).await.unwrap();
    raw.close().await.unwrap();
    let sealed = store.append_audit(&[audit_draft()]).await.unwrap();
    assert_eq!(sealed[0].sequence, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_server_is_used_again_without_reopening_the_store() {
    let cluster = tokio::task::spawn_blocking(PrivateCluster::start)
        .await
        .unwrap();
    let settings = PoolSettings {
        acquire_timeout: Duration::from_millis(500),
        ..PoolSettings::default()
    };
    let store = PostgresStore::open_with(&cluster.url(), &settings)
        .await
        .unwrap();
    store
        .insert_client(&client("before"), &audit_draft())
        .await
        .unwrap();
    let (p, _) = create(&store, "kept").await;

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop();
        cluster
    })
    .await
    .unwrap();
    assert_unavailable(store.ping().await);
    assert_unavailable(store.count_clients().await);
    assert_unavailable(store.insert_client(&client("during"), &audit_draft()).await);

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.restart();
        cluster
    })
    .await
    .unwrap();
    store.ping().await.unwrap();
    // Every acknowledged write survived; the refused one left nothing behind.
    assert_eq!(
        store.get_client("before").await.unwrap(),
        Some(client("before"))
    );
    assert_eq!(store.get_client("during").await.unwrap(), None);
    assert_eq!(store.get_prompt(p.id).await.unwrap().unwrap().name, "kept");
    store
        .insert_client(&client("after"), &audit_draft())
        .await
        .unwrap();
    let mut verifier = ChainVerifier::new();
    for entry in store
        .list_audit(&AuditFilter::default(), None, 100)
        .await
        .unwrap()
    {
        verifier.push(&entry.to_value());
    }
    let report = verifier.report();
    assert!(report.is_valid(), "{:?}", report.first_break);
    assert_eq!(report.entries, 3);
    store.close().await;
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}
