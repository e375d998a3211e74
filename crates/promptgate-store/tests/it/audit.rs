//! The audit log in the database: sealed in the same transaction as the change, append-only
//! even to raw SQL, and one gap-free chain under concurrent writers.

use std::sync::Arc;

use promptgate_audit::{AuditDraft, ChainVerifier, SignedTreeHead, TreeHead};
use promptgate_store::{AuditFilter, PromptUpdate, SqliteStore, Store, StoreError};
use serde_json::json;
use sqlx::{Connection, SqliteConnection};
use tokio::task::JoinSet;

use crate::fixtures::{T0, TestDb, audit_draft, client, create, prompt, version};

/// Replays the whole log with the auditor's verifier.
async fn verify(store: &dyn Store) -> promptgate_audit::ChainReport {
    let mut verifier = ChainVerifier::new();
    let mut after = None;
    loop {
        let page = store
            .list_audit(&AuditFilter::default(), after, 100)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.sequence);
        page.iter().for_each(|e| verifier.push(&e.to_value()));
    }
    verifier.report()
}

fn database_message(result: Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error>) -> String {
    match result {
        Err(sqlx::Error::Database(db)) => db.message().to_owned(),
        other => panic!("expected a database error from a trigger, got {other:?}"),
    }
}

#[tokio::test]
async fn changes_append_sealed_entries_that_verify() {
    let db = TestDb::new().await;
    db.store
        .insert_client(
            &client("ci"),
            &AuditDraft::new("admin", "CLIENT_CREATED", None, json!({"clientId": "ci"})),
        )
        .await
        .unwrap();
    let (p, _) = create(&db.store, "support").await;
    let appended = db
        .store
        .append_audit(&[audit_draft(), audit_draft()])
        .await
        .unwrap();
    assert_eq!(
        appended.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [3, 4]
    );
    assert_eq!(appended[1].prev_hash, appended[0].hash);
    assert_eq!(db.store.audit_size().await.unwrap(), 4);

    let report = verify(&db.store).await;
    assert!(report.is_valid(), "{:?}", report.first_break);
    assert_eq!(report.entries, 4);
    assert_eq!(report.head_hash, appended[1].hash);

    let stored = db.store.get_audit(4).await.unwrap().unwrap();
    assert_eq!(stored.body, appended[1].body);
    assert_eq!(stored.leaf_hash, appended[1].leaf_hash);
    assert_eq!(db.store.get_audit(5).await.unwrap(), None);

    let leaves = db.store.audit_leaf_hashes(1, 3).await.unwrap();
    assert_eq!(leaves.len(), 2);
    assert_eq!(
        leaves[1],
        db.store.get_audit(3).await.unwrap().unwrap().leaf_hash
    );

    let by_prompt = AuditFilter {
        prompt_id: Some(p.id),
        ..AuditFilter::default()
    };
    // The fixture's draft names no prompt, so nothing matches this prompt.
    assert!(
        db.store
            .list_audit(&by_prompt, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let by_action = AuditFilter {
        action: Some("CLIENT_CREATED".into()),
        actor: Some("admin".into()),
        ..AuditFilter::default()
    };
    let found = db.store.list_audit(&by_action, None, 10).await.unwrap();
    assert_eq!(found.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1]);
    let last = db
        .store
        .last_audit_with_action("CREATE")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.sequence, 4);
}

#[tokio::test]
async fn raw_sql_cannot_update_delete_replace_or_skip_entries() {
    let db = TestDb::new().await;
    db.store
        .append_audit(&[audit_draft(), audit_draft()])
        .await
        .unwrap();
    let mut raw = SqliteConnection::connect(&db.url()).await.unwrap();
    let message = "audit entries are append-only";
    assert_eq!(
        database_message(
            sqlx::query("UPDATE audit_entries SET actor = 'mallory'")
                .execute(&mut raw)
                .await
        ),
        message
    );
    assert_eq!(
        database_message(
            sqlx::query("DELETE FROM audit_entries WHERE sequence = 2")
                .execute(&mut raw)
                .await
        ),
        message
    );
    let chain = "an audit entry must extend the chain";
    assert_eq!(
        database_message(
            sqlx::query(
                "INSERT OR REPLACE INTO audit_entries SELECT * FROM audit_entries WHERE sequence = 1"
            )
            .execute(&mut raw)
            .await
        ),
        chain
    );
    assert_eq!(
        database_message(
            sqlx::query(
                "INSERT INTO audit_entries (sequence, id, recorded_at, actor, action, body, \
                 prev_hash, hash, leaf_hash) VALUES (4, 'x', 0, 'a', 'b', '{}', 'p', 'h', 'l')"
            )
            .execute(&mut raw)
            .await
        ),
        chain
    );
    raw.close().await.unwrap();
    assert!(verify(&db.store).await.is_valid());
    assert_eq!(db.store.audit_size().await.unwrap(), 2);
}

/// Makes every insert into the audit log fail, as a full disk or a broken table would.
async fn break_audit_writes(db: &TestDb) {
    let mut raw = SqliteConnection::connect(&db.url()).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER audit_broken BEFORE INSERT ON audit_entries \
         BEGIN SELECT RAISE(ABORT, 'audit storage failed'); END",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    raw.close().await.unwrap();
}

#[tokio::test]
async fn an_audit_write_failure_fails_the_change() {
    let db = TestDb::new().await;
    let (p, _) = create(&db.store, "kept").await;
    let before = db.store.get_prompt(p.id).await.unwrap().unwrap();
    break_audit_writes(&db).await;

    let other = uuid::Uuid::now_v7();
    let created = db
        .store
        .create_prompt(
            &prompt(other, "lost"),
            &version(other, "1.0.0", "x"),
            &[audit_draft()],
        )
        .await;
    assert!(
        matches!(created, Err(StoreError::Database(_))),
        "{created:?}"
    );
    assert_eq!(db.store.get_prompt(other).await.unwrap(), None);

    let update = PromptUpdate {
        id: p.id,
        expected_revision: before.revision,
        new_revision: before.revision + 1,
        updated_at: T0,
        new_version: Some(version(p.id, "2.0.0", "new")),
        traffic: None,
        status: None,
        audit: vec![audit_draft()],
    };
    assert!(db.store.update_prompt(&update).await.is_err());
    assert_eq!(db.store.get_prompt(p.id).await.unwrap().unwrap(), before);
    assert_eq!(db.store.version_labels(p.id).await.unwrap().len(), 1);

    assert!(
        db.store
            .insert_client(&client("ghost"), &audit_draft())
            .await
            .is_err()
    );
    assert_eq!(db.store.get_client("ghost").await.unwrap(), None);
    assert_eq!(db.store.audit_size().await.unwrap(), 1);
}

#[tokio::test]
async fn a_failed_change_writes_no_entry_and_a_repeated_disable_writes_one() {
    let db = TestDb::new().await;
    let (p, _) = create(&db.store, "taken").await;
    let other = uuid::Uuid::now_v7();
    let duplicate = db
        .store
        .create_prompt(
            &prompt(other, "taken"),
            &version(other, "1.0.0", "x"),
            &[audit_draft()],
        )
        .await;
    assert!(matches!(duplicate, Err(StoreError::DuplicateName { .. })));
    let stale = PromptUpdate {
        id: p.id,
        expected_revision: 99,
        new_revision: 100,
        updated_at: T0,
        new_version: None,
        traffic: None,
        status: None,
        audit: vec![audit_draft()],
    };
    assert!(matches!(
        db.store.update_prompt(&stale).await,
        Err(StoreError::StaleRevision)
    ));
    assert_eq!(db.store.audit_size().await.unwrap(), 1);

    db.store
        .insert_client(&client("ci"), &audit_draft())
        .await
        .unwrap();
    db.store
        .disable_client("ci", T0, &audit_draft())
        .await
        .unwrap();
    db.store
        .disable_client("ci", T0, &audit_draft())
        .await
        .unwrap();
    assert_eq!(
        db.store
            .disable_client("nobody", T0, &audit_draft())
            .await
            .unwrap(),
        None
    );
    assert_eq!(db.store.audit_size().await.unwrap(), 3);
}

#[tokio::test]
async fn concurrent_appends_from_two_handles_form_one_gap_free_chain() {
    let db = TestDb::new().await;
    let first: Arc<SqliteStore> = Arc::new(db.store.clone());
    let second: Arc<SqliteStore> = Arc::new(db.reopen().await);
    let mut tasks = JoinSet::new();
    for i in 0..32 {
        let store = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.spawn(async move {
            if i % 4 == 0 {
                crate::fixtures::create(store.as_ref(), &format!("p{i}")).await;
            } else {
                store.append_audit(&[audit_draft()]).await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let report = verify(&db.store).await;
    assert!(report.is_valid(), "{:?}", report.first_break);
    assert_eq!(report.entries, 32);
    assert_eq!(report.head_sequence, 32);
}

#[tokio::test]
async fn tree_heads_are_kept_once_per_size_and_key() {
    let db = TestDb::new().await;
    assert_eq!(db.store.latest_tree_head().await.unwrap(), None);
    let head = |size: u64, signature: &str| SignedTreeHead {
        head: TreeHead {
            tree_size: size,
            root_hash: [size as u8; 32],
            timestamp: format!("2026-11-27T00:00:0{size}.000Z"),
        },
        key_id: "k1".into(),
        signature: signature.into(),
    };
    db.store.insert_tree_head(&head(2, "a")).await.unwrap();
    db.store.insert_tree_head(&head(5, "b")).await.unwrap();
    db.store.insert_tree_head(&head(5, "other")).await.unwrap();
    assert_eq!(
        db.store.latest_tree_head().await.unwrap(),
        Some(head(5, "b"))
    );
    assert_eq!(
        db.store.tree_heads().await.unwrap(),
        vec![head(2, "a"), head(5, "b")]
    );

    let mut raw = SqliteConnection::connect(&db.url()).await.unwrap();
    assert_eq!(
        database_message(
            sqlx::query("UPDATE audit_tree_heads SET signature = 'x'")
                .execute(&mut raw)
                .await
        ),
        "signed tree heads are append-only"
    );
    raw.close().await.unwrap();
}
