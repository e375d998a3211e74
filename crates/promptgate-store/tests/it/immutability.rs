//! Version rows are immutable in the database itself, whatever the client.

use promptgate_store::Store;
use sqlx::{Connection, SqliteConnection};

use crate::fixtures::{TestDb, create, label};

const TRIGGER_MESSAGE: &str = "prompt versions are immutable";

/// The message of a database error, or a panic naming what came back instead.
fn database_message(result: Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error>) -> String {
    match result {
        Err(sqlx::Error::Database(db)) => db.message().to_owned(),
        other => panic!("expected a database error from the trigger, got {other:?}"),
    }
}

#[tokio::test]
async fn raw_sql_cannot_update_a_version_row() {
    let db = TestDb::new().await;
    let (p, v) = create(&db.store, "support_agent").await;
    let mut raw = SqliteConnection::connect(&db.url()).await.unwrap();

    let update = sqlx::query(
        "UPDATE prompt_versions SET system_prompt = 'tampered', temperature = 2.0 \
         WHERE prompt_id = ? AND version = '1.0.0'",
    )
    .bind(p.id.to_string())
    .execute(&mut raw)
    .await;
    assert_eq!(database_message(update), TRIGGER_MESSAGE);

    // Also an update that touches every row without a WHERE clause.
    let update_all = sqlx::query("UPDATE prompt_versions SET created_by = 'mallory'")
        .execute(&mut raw)
        .await;
    assert_eq!(database_message(update_all), TRIGGER_MESSAGE);

    raw.close().await.unwrap();
    let stored = db.store.get_version(p.id, &label("1.0.0")).await.unwrap();
    assert_eq!(stored, Some(v));
}

#[tokio::test]
async fn raw_sql_cannot_delete_a_version_row() {
    let db = TestDb::new().await;
    let (p, v) = create(&db.store, "support_agent").await;
    let mut raw = SqliteConnection::connect(&db.url()).await.unwrap();

    let delete = sqlx::query("DELETE FROM prompt_versions WHERE prompt_id = ?")
        .bind(p.id.to_string())
        .execute(&mut raw)
        .await;
    assert_eq!(database_message(delete), TRIGGER_MESSAGE);

    let delete_all = sqlx::query("DELETE FROM prompt_versions")
        .execute(&mut raw)
        .await;
    assert_eq!(database_message(delete_all), TRIGGER_MESSAGE);

    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM prompt_versions")
        .fetch_one(&mut raw)
        .await
        .unwrap();
    assert_eq!(count, 1);
    raw.close().await.unwrap();
    assert_eq!(
        db.store.get_version(p.id, &label("1.0.0")).await.unwrap(),
        Some(v)
    );
    assert_eq!(
        db.store.version_labels(p.id).await.unwrap(),
        vec![label("1.0.0")]
    );
}

#[tokio::test]
async fn replacing_a_version_row_is_refused() {
    // `INSERT OR REPLACE` deletes the conflicting row first; with recursive triggers off, SQLite
    // does not fire the delete trigger for it, so the primary key must make it fail instead.
    let db = TestDb::new().await;
    let (p, v) = create(&db.store, "support_agent").await;
    let mut raw = SqliteConnection::connect(&db.url()).await.unwrap();
    let replace = sqlx::query(
        "INSERT OR REPLACE INTO prompt_versions (prompt_id, version, model_endpoint_ref, \
         system_prompt, temperature, safety_guardrails, few_shot_examples, system_prompt_tokens, \
         tokenizer, created_at, created_by) \
         VALUES (?, '1.0.0', 'openai/gpt-4o-mini', 'tampered', 0.2, \
         '{\"contentFiltering\":[],\"maxTokens\":null,\"blockedCategories\":[]}', '[]', 1, \
         'o200k_base', 0, 'mallory')",
    )
    .bind(p.id.to_string())
    .execute(&mut raw)
    .await;
    raw.close().await.unwrap();
    let stored = db.store.get_version(p.id, &label("1.0.0")).await.unwrap();
    assert!(
        replace.is_err(),
        "INSERT OR REPLACE rewrote an immutable version: now {stored:?}"
    );
    assert_eq!(stored, Some(v));
}
