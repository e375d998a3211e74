//! Version rows are immutable in the database itself, whatever the client.

use crate::fixtures::{Backend, TestDb, create, label};

for_each_store!(
    raw_sql_cannot_update_a_version_row,
    raw_sql_cannot_delete_a_version_row,
    replacing_a_version_row_is_refused,
);

const TRIGGER_MESSAGE: &str = "prompt versions are immutable";

async fn raw_sql_cannot_update_a_version_row(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (p, v) = create(&*db.store, "support_agent").await;
    let mut raw = db.raw().await;

    let update = raw
        .execute_with(
            "UPDATE prompt_versions SET system_prompt = 'tampered', temperature = 2.0 \
             WHERE CAST(prompt_id AS TEXT) = $1 AND version = '1.0.0'",
            &[&p.id.to_string()],
        )
        .await;
    assert_eq!(update, Err(TRIGGER_MESSAGE.to_owned()));

    // Also an update that touches every row without a WHERE clause.
    let update_all = raw
        .execute("UPDATE prompt_versions SET created_by = 'mallory'")
        .await;
    assert_eq!(update_all, Err(TRIGGER_MESSAGE.to_owned()));

    raw.close().await;
    let stored = db.store.get_version(p.id, &label("1.0.0")).await.unwrap();
    assert_eq!(stored, Some(v));
}

async fn raw_sql_cannot_delete_a_version_row(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (p, v) = create(&*db.store, "support_agent").await;
    let mut raw = db.raw().await;

    let delete = raw
        .execute_with(
            "DELETE FROM prompt_versions WHERE CAST(prompt_id AS TEXT) = $1",
            &[&p.id.to_string()],
        )
        .await;
    assert_eq!(delete, Err(TRIGGER_MESSAGE.to_owned()));

    let delete_all = raw.execute("DELETE FROM prompt_versions").await;
    assert_eq!(delete_all, Err(TRIGGER_MESSAGE.to_owned()));

    if backend == Backend::Postgres {
        // TRUNCATE fires no row trigger; a statement trigger of its own refuses it.
        let truncate = raw.execute("TRUNCATE prompt_versions").await;
        assert_eq!(truncate, Err(TRIGGER_MESSAGE.to_owned()));
        let cascade = raw.execute("TRUNCATE prompts CASCADE").await;
        assert_eq!(cascade, Err(TRIGGER_MESSAGE.to_owned()));
    }

    let count = raw.count("SELECT COUNT(*) FROM prompt_versions", &[]).await;
    assert_eq!(count, 1);
    raw.close().await;
    assert_eq!(
        db.store.get_version(p.id, &label("1.0.0")).await.unwrap(),
        Some(v)
    );
    assert_eq!(
        db.store.version_labels(p.id).await.unwrap(),
        vec![label("1.0.0")]
    );
}

async fn replacing_a_version_row_is_refused(backend: Backend) {
    // SQLite: `INSERT OR REPLACE` deletes the conflicting row first; with recursive triggers
    // off, SQLite does not fire the delete trigger for it, so the primary key must make it fail
    // instead. PostgreSQL: an upsert turns into an update, which the update trigger refuses.
    let db = TestDb::new(backend).await;
    let (p, v) = create(&*db.store, "support_agent").await;
    let mut raw = db.raw().await;
    let replace = match backend {
        Backend::Sqlite => {
            raw.execute_with(
                "INSERT OR REPLACE INTO prompt_versions (prompt_id, version, model_endpoint_ref, \
                 system_prompt, temperature, safety_guardrails, few_shot_examples, \
                 system_prompt_tokens, tokenizer, created_at, created_by) \
                 VALUES ($1, '1.0.0', 'openai/gpt-4o-mini', 'tampered', 0.2, \
                 '{\"contentFiltering\":[],\"maxTokens\":null,\"blockedCategories\":[]}', '[]', 1, \
                 'o200k_base', 0, 'mallory')",
                &[&p.id.to_string()],
            )
            .await
        }
        Backend::Postgres => {
            raw.execute_with(
                "INSERT INTO prompt_versions (prompt_id, version, model_endpoint_ref, \
                 system_prompt, temperature, safety_guardrails, few_shot_examples, \
                 system_prompt_tokens, tokenizer, created_at, created_by) \
                 VALUES ($1::uuid, '1.0.0', 'openai/gpt-4o-mini', 'tampered', 0.2, \
                 '{\"contentFiltering\":[],\"maxTokens\":null,\"blockedCategories\":[]}', '[]', 1, \
                 'o200k_base', 0, 'mallory') \
                 ON CONFLICT (prompt_id, version) DO UPDATE \
                 SET system_prompt = excluded.system_prompt, created_by = excluded.created_by",
                &[&p.id.to_string()],
            )
            .await
        }
    };
    raw.close().await;
    let stored = db.store.get_version(p.id, &label("1.0.0")).await.unwrap();
    assert!(
        replace.is_err(),
        "replacing rewrote an immutable version: now {stored:?}"
    );
    assert_eq!(stored, Some(v));
}
