//! Opening an existing database migrates it idempotently and keeps its data.

use promptgate_store::prelude::*;
use promptgate_store::{SqliteStore, StoreError};

use crate::fixtures::audit_draft;
use crate::fixtures::{Backend, Raw, TestDb, client, create, label};

for_each_store!(
    reopening_keeps_data_and_applies_migrations_once,
    a_closed_store_reports_unavailable,
);

async fn reopening_keeps_data_and_applies_migrations_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.store
        .insert_client(&client("admin"), &audit_draft())
        .await
        .unwrap();
    let (p, v) = create(&*db.store, "support_agent").await;
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

    let mut raw = db.raw().await;
    let applied = raw.applied_migrations().await;
    let expected: Vec<(i64, bool)> = match backend {
        Backend::Sqlite => (1..=9).map(|v| (v, true)).collect(),
        Backend::Postgres => (1..=7).map(|v| (v, true)).collect(),
    };
    assert_eq!(applied, expected);
    match &mut raw {
        Raw::Sqlite(c) => {
            let triggers: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' \
                 AND tbl_name = 'prompt_versions'",
            )
            .fetch_one(&mut *c)
            .await
            .unwrap();
            let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *c)
                .await
                .unwrap();
            assert_eq!(triggers, 3);
            assert_eq!(journal, "wal");
        }
        Raw::Postgres(c) => {
            let mut triggers: Vec<(String, String)> = sqlx::query_as(
                "SELECT event_object_table::text, trigger_name::text \
                 FROM information_schema.triggers GROUP BY 1, 2 ORDER BY 1, 2",
            )
            .fetch_all(&mut *c)
            .await
            .unwrap();
            // TRUNCATE triggers are statement triggers, which information_schema leaves out.
            let truncate: Vec<(String, String)> = sqlx::query_as(
                "SELECT tgrelid::regclass::text, tgname::text FROM pg_trigger \
                 WHERE NOT tgisinternal AND tgname LIKE '%no_truncate' ORDER BY 1, 2",
            )
            .fetch_all(&mut *c)
            .await
            .unwrap();
            triggers.extend(truncate);
            triggers.sort();
            let names: Vec<String> = triggers
                .into_iter()
                .map(|(table, name)| format!("{table}.{name}"))
                .collect();
            assert_eq!(
                names,
                [
                    "audit_entries.audit_entries_append_only",
                    "audit_entries.audit_entries_extend_chain",
                    "audit_entries.audit_entries_no_truncate",
                    "audit_tree_heads.audit_tree_heads_append_only",
                    "audit_tree_heads.audit_tree_heads_no_truncate",
                    "prompt_versions.prompt_versions_immutable",
                    "prompt_versions.prompt_versions_no_truncate",
                ]
            );
        }
    }
    raw.close().await;
}

async fn a_closed_store_reports_unavailable(backend: Backend) {
    let db = TestDb::new(backend).await;
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
    let err = promptgate_store::open("mysql://localhost/x").await.err();
    assert!(
        matches!(err, Some(StoreError::UnsupportedUrl(ref u)) if u == "mysql://localhost/x"),
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
    // (The PostgreSQL counterpart is in postgres.rs.)
    let mut failures = Vec::new();
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::fixtures::sqlite_url(&dir);
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
