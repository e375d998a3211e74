//! Opening an existing database migrates it idempotently and keeps its data.

use promptgate_store::{SqliteStore, Store, StoreError};
use sqlx::{Connection, SqliteConnection};

use crate::fixtures::audit_draft;
use crate::fixtures::{TestDb, client, create, label};

#[tokio::test]
async fn reopening_keeps_data_and_applies_migrations_once() {
    let db = TestDb::new().await;
    db.store
        .insert_client(&client("admin"), &audit_draft())
        .await
        .unwrap();
    let (p, v) = create(&db.store, "support_agent").await;
    db.store.close().await;

    for _ in 0..3 {
        let store = db.reopen().await;
        assert_eq!(store.count_clients().await.unwrap(), 1);
        assert_eq!(
            store.get_client("admin").await.unwrap(),
            Some(client("admin"))
        );
        assert_eq!(store.get_prompt(p.id).await.unwrap(), Some(p.clone()));
        assert_eq!(
            store.get_version(p.id, &label("1.0.0")).await.unwrap(),
            Some(v.clone())
        );
        store.ping().await.unwrap();
        store.close().await;
    }

    let mut raw = SqliteConnection::connect(&db.url()).await.unwrap();
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut raw)
            .await
            .unwrap();
    let triggers: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'prompt_versions'",
    )
    .fetch_one(&mut raw)
    .await
    .unwrap();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut raw)
        .await
        .unwrap();
    raw.close().await.unwrap();
    assert_eq!(
        applied,
        vec![(1, true), (2, true), (3, true), (4, true), (5, true)]
    );
    assert_eq!(triggers, 3);
    assert_eq!(journal, "wal");
}

#[tokio::test]
async fn a_closed_store_reports_unavailable() {
    let db = TestDb::new().await;
    db.store.close().await;
    let err = db.store.ping().await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(_)),
        "expected Unavailable, got {err:?}"
    );
    let err = db.store.count_clients().await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(_)),
        "expected Unavailable, got {err:?}"
    );
}

#[tokio::test]
async fn open_refuses_other_urls() {
    let err = promptgate_store::open("postgres://localhost/x").await.err();
    assert!(
        matches!(err, Some(StoreError::UnsupportedUrl(ref u)) if u == "postgres://localhost/x"),
        "got {err:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let store: SqliteStore = SqliteStore::open(&url).await.unwrap();
    assert_eq!(store.count_clients().await.unwrap(), 0);
    assert!(dir.path().join("fresh.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_opening_a_fresh_file_at_once_both_succeed() {
    // `serve` and `promptgate clients create` started together on a new database: both see no
    // applied migration. Each round is a fresh file; a race lost in any round fails the test.
    let mut failures = Vec::new();
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::fixtures::url(&dir);
        let (a, b) = tokio::join!(SqliteStore::open(&url), SqliteStore::open(&url));
        for opened in [a, b] {
            match opened {
                Ok(store) => assert_eq!(store.count_clients().await.unwrap(), 0),
                Err(e) => failures.push(format!("round {round}: {e:?}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 40 opens failed, e.g. {}",
        failures.len(),
        failures[0]
    );
}
