//! The audit log in the database: sealed in the same transaction as the change, append-only
//! even to raw SQL, and one gap-free chain under concurrent writers.

use promptgate_audit::{AuditDraft, ChainVerifier, SignedTreeHead, TreeHead};
use promptgate_store::{AuditFilter, PromptUpdate, Store, StoreError};
use serde_json::json;
use tokio::task::JoinSet;

use crate::fixtures::{Backend, T0, TestDb, audit_draft, client, create, prompt, version};

for_each_store!(
    changes_append_sealed_entries_that_verify,
    raw_sql_cannot_update_delete_replace_or_skip_entries,
    an_audit_write_failure_fails_the_change,
    a_failed_change_writes_no_entry_and_a_repeated_disable_writes_one,
    concurrent_appends_from_two_handles_form_one_gap_free_chain,
    tree_heads_are_kept_once_per_size_and_key,
);

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

async fn changes_append_sealed_entries_that_verify(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.store
        .insert_client(
            &client("ci"),
            &AuditDraft::new(
                time::OffsetDateTime::now_utc(),
                "admin",
                "CLIENT_CREATED",
                None,
                json!({"clientId": "ci"}),
            ),
        )
        .await
        .unwrap();
    let (p, _) = create(&*db.store, "support").await;
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

    let report = verify(db.store.as_ref()).await;
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

async fn raw_sql_cannot_update_delete_replace_or_skip_entries(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.store
        .append_audit(&[audit_draft(), audit_draft()])
        .await
        .unwrap();
    let mut raw = db.raw().await;
    let message = Err("audit entries are append-only".to_owned());
    assert_eq!(
        raw.execute("UPDATE audit_entries SET actor = 'mallory'")
            .await,
        message
    );
    assert_eq!(
        raw.execute("DELETE FROM audit_entries WHERE sequence = 2")
            .await,
        message
    );
    if backend == Backend::Postgres {
        assert_eq!(raw.execute("TRUNCATE audit_entries").await, message);
    }
    let chain = Err("an audit entry must extend the chain".to_owned());
    let replace = match backend {
        Backend::Sqlite => {
            raw.execute(
                "INSERT OR REPLACE INTO audit_entries SELECT * FROM audit_entries WHERE sequence = 1",
            )
            .await
        }
        Backend::Postgres => {
            raw.execute(
                "INSERT INTO audit_entries SELECT * FROM audit_entries WHERE sequence = 1 \
                 ON CONFLICT (sequence) DO UPDATE SET actor = 'mallory'",
            )
            .await
        }
    };
    assert_eq!(replace, chain);
    assert_eq!(
        raw.execute(
            "INSERT INTO audit_entries (sequence, id, recorded_at, actor, action, body, \
             prev_hash, hash, leaf_hash) VALUES (4, '00000000-0000-0000-0000-000000000004', 0, \
             'a', 'b', '{}', 'p', 'h', 'l')"
        )
        .await,
        chain
    );
    raw.close().await;
    assert!(verify(db.store.as_ref()).await.is_valid());
    assert_eq!(db.store.audit_size().await.unwrap(), 2);
}

/// Makes every insert into the audit log fail, as a full disk or a broken table would.
async fn break_audit_writes(db: &TestDb) {
    let mut raw = db.raw().await;
    let sql = match db.backend {
        Backend::Sqlite => {
            "CREATE TRIGGER audit_broken BEFORE INSERT ON audit_entries \
             BEGIN SELECT RAISE(ABORT, 'audit storage failed'); END"
        }
        Backend::Postgres => {
            "CREATE FUNCTION audit_broken() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN RAISE EXCEPTION 'audit storage failed'; END $$; \
             CREATE TRIGGER audit_broken BEFORE INSERT ON audit_entries \
             FOR EACH ROW EXECUTE FUNCTION audit_broken();"
        }
    };
    raw.execute(sql).await.unwrap();
    raw.close().await;
}

async fn an_audit_write_failure_fails_the_change(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (p, _) = create(&*db.store, "kept").await;
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
        chat_completions: None,
        labels: None,
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

async fn a_failed_change_writes_no_entry_and_a_repeated_disable_writes_one(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (p, _) = create(&*db.store, "taken").await;
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
        chat_completions: None,
        labels: None,
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

async fn concurrent_appends_from_two_handles_form_one_gap_free_chain(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Two pools on one database: two replicas, or the CLI beside a server.
    let first = db.store.clone();
    let second = db.reopen().await;
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
    let report = verify(db.store.as_ref()).await;
    assert!(report.is_valid(), "{:?}", report.first_break);
    assert_eq!(report.entries, 32);
    assert_eq!(report.head_sequence, 32);
}

async fn tree_heads_are_kept_once_per_size_and_key(backend: Backend) {
    let db = TestDb::new(backend).await;
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

    let mut raw = db.raw().await;
    let message = Err("signed tree heads are append-only".to_owned());
    assert_eq!(
        raw.execute("UPDATE audit_tree_heads SET signature = 'x'")
            .await,
        message
    );
    assert_eq!(raw.execute("DELETE FROM audit_tree_heads").await, message);
    if backend == Backend::Postgres {
        assert_eq!(raw.execute("TRUNCATE audit_tree_heads").await, message);
    }
    raw.close().await;
}
