//! Opening an existing database migrates it idempotently and keeps its data.

use promptgate_store::prelude::*;
use promptgate_store::{SqliteStore, StoreError, SummaryGroup};

use std::collections::BTreeMap;
use std::str::FromStr;

use promptgate_core::invocation::{InvocationRecord, InvocationStatus};
use promptgate_store::TelemetryFilter;
use promptgate_store::testing::TestDatabase;
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use uuid::Uuid;

use crate::fixtures::audit_draft;
use crate::fixtures::{Backend, Raw, T0, TestDb, client, create, label, prompt, version};

for_each_store!(
    reopening_keeps_data_and_applies_migrations_once,
    a_closed_store_reports_unavailable,
    a_database_before_templates_gets_the_new_columns_with_their_defaults,
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
        Backend::Sqlite => (1..=14).map(|v| (v, true)).collect(),
        Backend::Postgres => (1..=12).map(|v| (v, true)).collect(),
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

/// The last migration before issue 19's templates and labels, per store.
fn before_templates(backend: Backend) -> (&'static str, i64) {
    match backend {
        Backend::Sqlite => ("sqlite", 9),
        Backend::Postgres => ("postgres", 7),
    }
}

/// Issue 19: a database a gateway wrote before templates and labels existed (migrated up to the
/// migration before them, rows written with the columns of then) is migrated on open, and
/// every old row reads back as it did: a version without template turns or schema, a prompt
/// without labels, an invocation without label or variable names. The versions' immutability
/// triggers still hold, new columns included.
async fn a_database_before_templates_gets_the_new_columns_with_their_defaults(backend: Backend) {
    let (folder, last) = before_templates(backend);
    let mut migrator = Migrator::new(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(folder),
    )
    .await
    .unwrap();
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version <= last)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    assert_eq!(migrator.migrations.len() as i64, last);

    let id = Uuid::now_v7();
    // The rows the fixtures' prompt, version and a record hold, in the columns of then.
    let prompt_row = "INSERT INTO prompts (id, name, status, traffic, revision, created_at, \
         updated_at, created_by) VALUES ($1, 'legacy', 'ACTIVE', \
         '{\"defaultVersion\":\"1.0.0\",\"splitStrategy\":\"sticky\",\"versions\":[]}', 1, \
         1767323045678, 1767323045678, 'tester')";
    let version_row = "INSERT INTO prompt_versions (prompt_id, version, model_endpoint_ref, \
         system_prompt, temperature, safety_guardrails, few_shot_examples, system_prompt_tokens, \
         tokenizer, created_at, created_by) VALUES ($1, '1.0.0', 'openai/gpt-4o-mini', \
         'You are legacy.', 0.2, \
         '{\"contentFiltering\":[\"pii\"],\"maxTokens\":1500,\"blockedCategories\":[\"violence\"]}', \
         '[{\"input\":\"hi\",\"output\":\"hello\"}]', 7, 'o200k_base', 1767323045678, 'tester')";
    let invocation_row = "INSERT INTO invocations (id, timestamp, prompt_id, version, model, \
         status, latency_ms, prompt_tokens, completion_tokens, client_id, metadata) \
         VALUES ('inv-legacy', 1767323045678, $1, '1.0.0', 'echo', 'SUCCESS', 12.5, 10, 5, \
         'client', '{\"channel\":\"web\"}')";
    let (_dir, _database, url) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = crate::fixtures::sqlite_url(&dir);
            let options = SqliteConnectOptions::from_str(&url)
                .unwrap()
                .create_if_missing(true);
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .unwrap();
            migrator.run(&mut conn).await.unwrap();
            for sql in [prompt_row, version_row, invocation_row] {
                sqlx::query(sql)
                    .bind(id.to_string())
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            conn.close().await.unwrap();
            (Some(dir), None, url)
        }
        Backend::Postgres => {
            let database = TestDatabase::create().await;
            let url = database.url().to_owned();
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            migrator.run(&mut conn).await.unwrap();
            for sql in [prompt_row, version_row, invocation_row] {
                sqlx::query(sql).bind(id).execute(&mut conn).await.unwrap();
            }
            conn.close().await.unwrap();
            (None, Some(database), url)
        }
    };

    let store = promptgate_store::open(&url).await.unwrap();
    let read = store.get_prompt(id).await.unwrap().unwrap();
    assert!(read.labels.is_empty());
    assert_eq!(read, prompt(id, "legacy"));
    let v = store
        .get_version(id, &label("1.0.0"))
        .await
        .unwrap()
        .unwrap();
    assert!(v.settings.template_messages.is_empty());
    assert_eq!(v.settings.variables_schema, None);
    assert_eq!(v, version(id, "1.0.0", "You are legacy."));
    let listed = store
        .list_invocations(&TelemetryFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].record,
        InvocationRecord {
            id: "inv-legacy".to_owned(),
            timestamp: T0,
            prompt_id: id,
            version: "1.0.0".to_owned(),
            model: "echo".to_owned(),
            status: InvocationStatus::Success,
            error_code: None,
            latency_ms: 12.5,
            upstream_latency_ms: None,
            time_to_first_token_ms: None,
            prompt_tokens: 10,
            completion_tokens: 5,
            session_id: None,
            client_id: "client".to_owned(),
            metadata: BTreeMap::from([("channel".to_owned(), "web".to_owned())]),
            label: None,
            variable_names: Vec::new(),
            schema_valid: None,
            tool_call_count: 0,
            api_key_id: None,
            cost_usd: None,
            // Written before the endpoint was recorded: none (NULL).
            endpoint_ref: String::new(),
            fallback_attempts: Vec::new(),
        }
    );
    // A record without a label is left out by a label filter, and counted without one.
    let labelled = TelemetryFilter {
        label: Some("production".to_owned()),
        ..TelemetryFilter::default()
    };
    assert!(
        store
            .list_invocations(&labelled, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .summary_aggregates(&TelemetryFilter::default(), SummaryGroup::Version)
            .await
            .unwrap()[0]
            .group
            .count,
        1
    );
    store.close().await;

    // The immutability triggers cover the new columns: an old version cannot be given turns.
    let mut raw = match backend {
        Backend::Sqlite => Raw::Sqlite(sqlx::SqliteConnection::connect(&url).await.unwrap()),
        Backend::Postgres => Raw::Postgres(sqlx::PgConnection::connect(&url).await.unwrap()),
    };
    let refused = raw
        .execute(
            "UPDATE prompt_versions SET template_messages = \
             '[{\"role\":\"user\",\"content\":\"injected\"}]', variables_schema = '{}'",
        )
        .await
        .unwrap_err();
    assert!(
        refused.contains("prompt versions are immutable"),
        "{refused}"
    );
    raw.close().await;
}
