//! `promptgate_store::migrate::copy`: a SQLite database moved into PostgreSQL verbatim (every
//! table row for row, the audit log byte for byte, invocation sequences kept and continued), and
//! every refusal: a non-empty target, a damaged audit chain, corrupt rows (rolled back), wrong
//! URLs, a missing file, an unreachable server.

use std::collections::BTreeMap;
use std::sync::Arc;

use promptgate_audit::merkle::to_hex;
use promptgate_audit::{ChainVerifier, SignedTreeHead, TreeHead};
use promptgate_core::ScopeSet;
use promptgate_core::invocation::{InvocationRecord, InvocationStatus};
use promptgate_store::migrate::{CopyError, CopyReport, copy};
use promptgate_store::testing::TestDatabase;
use promptgate_store::{
    AccessToken, ApiKey, AuditFilter, Feedback, PromptFilter, PromptUpdate, Store, StoreError,
    TelemetryFilter,
};
use sqlx::{Connection, PgConnection, SqliteConnection};
use time::Duration;
use uuid::Uuid;

use crate::fixtures::{Backend, T0, TestDb, audit_draft, client, create, label, version};

fn invocation(n: i64, prompt_id: Uuid) -> InvocationRecord {
    InvocationRecord {
        id: format!("inv-{n:04}"),
        timestamp: T0 + Duration::milliseconds(n),
        prompt_id,
        version: "1.0.0".to_owned(),
        model: "echo".to_owned(),
        status: if n % 5 == 0 {
            InvocationStatus::Error
        } else {
            InvocationStatus::Success
        },
        error_code: (n % 5 == 0).then(|| "upstream.error".to_owned()),
        latency_ms: n as f64 + 0.25,
        upstream_latency_ms: (n % 2 == 0).then_some(n as f64 / 3.0),
        time_to_first_token_ms: (n % 3 == 0).then_some(1.5),
        prompt_tokens: 10,
        completion_tokens: u32::try_from(n).unwrap(),
        session_id: (n % 4 == 0).then(|| format!("s-{n}")),
        client_id: "admin".to_owned(),
        metadata: BTreeMap::from([("n".to_owned(), n.to_string())]),
        label: (n % 3 == 0).then(|| "production".to_owned()),
        variable_names: if n % 2 == 0 {
            vec!["customer.tier".to_owned(), "name".to_owned()]
        } else {
            Vec::new()
        },
        schema_valid: (n % 3 != 0).then_some(n % 2 == 0),
        tool_call_count: u32::try_from(n % 4).unwrap(),
        api_key_id: (n % 3 == 0).then(|| format!("key-{n}")),
        // Some priced (one of them at exactly 0), some not.
        cost_usd: (n % 2 == 1).then_some((n % 7) as f64 * 1.25e-6),
        endpoint_ref: "openai/gpt-4o".to_owned(),
        fallback_attempts: if n % 2 == 0 {
            vec![promptgate_core::invocation::FallbackAttempt {
                endpoint_ref: "openai/gpt-4o-mini".to_owned(),
                error_code: "upstream.timeout".to_owned(),
            }]
        } else {
            Vec::new()
        },
    }
}

/// A SQLite database with something in every table, written through the store as a gateway
/// writes it: clients (one disabled), tokens, prompts with versions and traffic changes, pruned
/// and stored invocations with feedback, an exporter cursor, audit entries of every kind and
/// signed heads. Returns it with the number of entries in its audit log.
async fn populated_sqlite() -> TestDb {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = &db.store;
    store
        .insert_client(&client("admin"), &audit_draft())
        .await
        .unwrap();
    store
        .insert_client(&client("bot"), &audit_draft())
        .await
        .unwrap();
    store
        .disable_client("bot", T0 + Duration::seconds(5), &audit_draft())
        .await
        .unwrap();
    for (i, client_id) in ["admin", "bot"].into_iter().enumerate() {
        store
            .insert_token(&AccessToken {
                token_hash: format!("{i:064x}"),
                client_id: client_id.to_owned(),
                scopes: ScopeSet::all(),
                issued_at: T0,
                expires_at: T0 + Duration::hours(1),
            })
            .await
            .unwrap();
    }
    // Two API keys: one revoked and used, one live that expires.
    for (i, client_id) in ["admin", "bot"].into_iter().enumerate() {
        store
            .insert_api_key(
                &ApiKey {
                    id: format!("key-{i}"),
                    client_id: client_id.to_owned(),
                    name: format!("service {i}"),
                    key_hash: format!("{:064x}", i + 100),
                    scopes: ScopeSet::all(),
                    created_at: T0,
                    expires_at: (i == 1).then(|| T0 + Duration::days(90)),
                    revoked_at: None,
                    last_used_at: None,
                },
                &audit_draft(),
            )
            .await
            .unwrap();
    }
    store
        .record_api_key_use(&[("key-0".to_owned(), T0 + Duration::seconds(3))])
        .await
        .unwrap();
    store
        .revoke_api_key("key-0", T0 + Duration::seconds(4), &audit_draft())
        .await
        .unwrap();
    let (support, _) = create(&**store, "support_agent").await;
    let (sales, _) = create(&**store, "sales_agent").await;
    // A new templated version, then a traffic split and labels, as two audited updates.
    let mut templated = version(support.id, "1.1.0", "You are terse with {{ name }}.");
    templated.settings.template_messages = vec![promptgate_core::prompt::TemplateMessage {
        role: promptgate_core::prompt::TemplateRole::User,
        content: "I am on the {{tier}} plan.".to_owned(),
    }];
    templated.settings.variables_schema =
        Some(r#"{"type":"object","properties":{"tier":{"enum":["free","pro"]}}}"#.to_owned());
    templated.settings.tool_settings = promptgate_core::ToolSettings {
        tools: vec![promptgate_core::ToolDefinition {
            name: "lookup_order".to_owned(),
            description: Some("Find an order.".to_owned()),
            parameters: Some(r#"{"type":"object"}"#.to_owned()),
            strict: None,
        }],
        tool_choice: Some(promptgate_core::ToolChoice::Required),
        response_format: Some(promptgate_core::ResponseFormat::JsonObject),
    };
    store
        .update_prompt(&PromptUpdate {
            id: support.id,
            expected_revision: 1,
            new_revision: 2,
            updated_at: T0 + Duration::seconds(10),
            new_version: Some(templated),
            traffic: None,
            status: None,
            chat_completions: None,
            labels: None,
            audit: vec![audit_draft()],
        })
        .await
        .unwrap();
    store
        .update_prompt(&PromptUpdate {
            id: support.id,
            expected_revision: 2,
            new_revision: 3,
            updated_at: T0 + Duration::seconds(20),
            new_version: None,
            traffic: Some(
                promptgate_core::TrafficSplit::new(
                    label("1.0.0"),
                    promptgate_core::SplitStrategy::parse("sticky").unwrap(),
                    vec![(label("1.0.0"), 0.7), (label("1.1.0"), 0.3)],
                )
                .unwrap(),
            ),
            status: None,
            chat_completions: None,
            labels: Some(
                [("production", "1.0.0"), ("staging", "1.1.0")]
                    .into_iter()
                    .map(|(name, v)| {
                        (
                            promptgate_core::label::LabelName::parse("label", name).unwrap(),
                            label(v),
                        )
                    })
                    .collect(),
            ),
            audit: vec![audit_draft(), audit_draft()],
        })
        .await
        .unwrap();
    // 40 invocations; the first 10 pruned, so SQLite's sequence is ahead of the oldest kept.
    let records: Vec<_> = (0..40)
        .map(|n| invocation(n, if n % 2 == 0 { support.id } else { sales.id }))
        .collect();
    store.insert_invocations(&records).await.unwrap();
    store
        .set_feedback(
            "inv-0012",
            &Feedback {
                score: 0.5,
                comment: Some("ok".to_owned()),
                at: T0 + Duration::seconds(30),
            },
        )
        .await
        .unwrap();
    store
        .prune_invocations(T0 + Duration::milliseconds(10))
        .await
        .unwrap();
    assert!(
        store
            .advance_exporter_cursor("webhook", 0, 25, T0)
            .await
            .unwrap()
    );
    store
        .append_audit(&[
            promptgate_audit::AuditDraft::new(
                time::OffsetDateTime::now_utc(),
                "admin",
                "NOTE",
                Some(sales.id),
                serde_json::json!({"text": "reviewed", "ünïcode": "✓"}),
            ),
            audit_draft(),
        ])
        .await
        .unwrap();
    let size = store.audit_size().await.unwrap();
    for tree_size in [size - 2, size] {
        let root =
            promptgate_audit::merkle::root(&store.audit_leaf_hashes(0, tree_size).await.unwrap());
        store
            .insert_tree_head(&SignedTreeHead {
                head: TreeHead {
                    tree_size,
                    root_hash: root,
                    timestamp: format!("2026-01-02T03:04:{tree_size:02}.000Z"),
                },
                key_id: "0123456789abcdef".to_owned(),
                signature: format!("signature-{tree_size}"),
            })
            .await
            .unwrap();
    }
    db
}

/// Every row the store can read, from either store, for comparing two databases.
async fn everything(store: &dyn Store) -> String {
    let mut out = String::new();
    out += &format!("{:?}\n", store.list_clients().await.unwrap());
    out += &format!("{:?}\n", store.disabled_client_ids().await.unwrap());
    for i in 0..2 {
        out += &format!(
            "{:?}\n",
            store.find_token(&format!("{i:064x}")).await.unwrap()
        );
    }
    let prompts = store
        .list_prompts(&PromptFilter::default(), None, 100)
        .await
        .unwrap();
    out += &format!("{:?}\n", store.list_api_keys(None).await.unwrap());
    out += &format!("{prompts:?}\n");
    for p in &prompts {
        let mut versions = store.list_versions(p.id).await.unwrap();
        versions.sort_by(|a, b| a.version.cmp(&b.version));
        out += &format!("{versions:?}\n");
    }
    out += &format!(
        "{:?}\n",
        store
            .list_invocations(&TelemetryFilter::default(), None, 1_000)
            .await
            .unwrap()
    );
    out += &format!("{:?}\n", store.last_invocation_seq().await.unwrap());
    out += &format!("{:?}\n", store.exporter_cursor("webhook").await.unwrap());
    out += &format!(
        "{:?}\n",
        store
            .list_audit(&AuditFilter::default(), None, 1_000)
            .await
            .unwrap()
    );
    out += &format!("{:?}\n", store.tree_heads().await.unwrap());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sqlite_database_moves_to_postgres_verbatim() {
    let source = populated_sqlite().await;
    let target = TestDatabase::create().await;
    let report = copy(source.url(), target.url()).await.unwrap();
    let audit_entries = source.store.audit_size().await.unwrap();
    assert_eq!(
        report,
        CopyReport {
            clients: 2,
            access_tokens: 2,
            api_keys: 2,
            prompts: 2,
            prompt_versions: 3,
            invocations: 30,
            exporter_cursors: 1,
            audit_entries,
            tree_heads: 2,
            replaced_nul_values: 0,
        }
    );
    let pg: Arc<dyn Store> = promptgate_store::open(target.url()).await.unwrap();
    assert_eq!(everything(&*source.store).await, everything(&*pg).await);
    // Issue 19's columns are among what was copied, not left at their defaults.
    let support = pg
        .list_prompts(&PromptFilter::default(), None, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.name == "support_agent")
        .unwrap();
    assert_eq!(support.labels.len(), 2);
    let templated = pg
        .get_version(support.id, &label("1.1.0"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(templated.settings.template_messages.len(), 1);
    assert!(templated.settings.variables_schema.is_some());
    assert_eq!(
        templated.settings.tool_settings.tools[0].name,
        "lookup_order"
    );
    assert_eq!(
        templated.settings.tool_settings.tool_choice,
        Some(promptgate_core::ToolChoice::Required)
    );
    let records = pg
        .list_invocations(&TelemetryFilter::default(), None, 100)
        .await
        .unwrap();
    assert!(records.iter().any(|r| r.record.label.is_some()));
    assert!(records.iter().any(|r| !r.record.variable_names.is_empty()));
    assert!(records.iter().any(|r| r.record.schema_valid == Some(false)));
    assert!(records.iter().any(|r| r.record.tool_call_count == 3));
    assert!(records.iter().any(|r| r.record.cost_usd.is_none()));
    assert!(records.iter().any(|r| r.record.cost_usd == Some(0.0)));
    assert!(
        records
            .iter()
            .any(|r| r.record.cost_usd == Some(3.0 * 1.25e-6))
    );
    // The stored leaf hashes and filters work on the copy as on the original.
    assert_eq!(
        source
            .store
            .audit_leaf_hashes(0, audit_entries)
            .await
            .unwrap(),
        pg.audit_leaf_hashes(0, audit_entries).await.unwrap()
    );
    let by_action = AuditFilter {
        action: Some("NOTE".to_owned()),
        ..AuditFilter::default()
    };
    assert_eq!(
        source.store.list_audit(&by_action, None, 10).await.unwrap(),
        pg.list_audit(&by_action, None, 10).await.unwrap()
    );

    // The chain verifies on PostgreSQL, and the signed heads' roots match the copied log.
    let entries = pg
        .list_audit(&AuditFilter::default(), None, 1_000)
        .await
        .unwrap();
    let mut verifier = ChainVerifier::new();
    for entry in &entries {
        verifier.push(&entry.to_value());
    }
    let chain = verifier.report();
    assert!(chain.is_valid(), "{:?}", chain.first_break);
    assert_eq!(chain.entries, audit_entries);
    for head in pg.tree_heads().await.unwrap() {
        let leaves = pg.audit_leaf_hashes(0, head.head.tree_size).await.unwrap();
        assert_eq!(
            to_hex(&promptgate_audit::merkle::root(&leaves)),
            to_hex(&head.head.root_hash)
        );
    }

    // Life goes on on PostgreSQL: the next record's sequence is past everything SQLite handed
    // out, and the next audit entry extends the copied chain.
    pg.insert_invocations(&[invocation(100, Uuid::nil())])
        .await
        .unwrap();
    let newest = pg.last_invocation_seq().await.unwrap();
    assert!(newest > 40, "{newest}");
    let sealed = pg.append_audit(&[audit_draft()]).await.unwrap();
    assert_eq!(sealed[0].sequence, audit_entries + 1);
    assert_eq!(sealed[0].prev_hash, entries.last().unwrap().hash);
    pg.close().await;

    // A second run finds the target in use.
    let again = copy(source.url(), target.url()).await.unwrap_err();
    assert!(
        matches!(
            again,
            CopyError::TargetNotEmpty {
                table: "clients",
                rows: 2
            }
        ),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_non_empty_target_is_refused_and_left_as_it_was() {
    let source = populated_sqlite().await;
    let target = TestDatabase::create().await;
    let used = promptgate_store::open(target.url()).await.unwrap();
    used.append_audit(&[audit_draft()]).await.unwrap();
    let before = everything(&*used).await;
    let err = copy(source.url(), target.url()).await.unwrap_err();
    assert!(
        matches!(
            err,
            CopyError::TargetNotEmpty {
                table: "audit_entries",
                rows: 1
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_usage());
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(everything(&*used).await, before);
    used.close().await;
}

async fn raw_sqlite(db: &TestDb) -> SqliteConnection {
    SqliteConnection::connect(db.url()).await.unwrap()
}

async fn pg_row_count(url: &str) -> i64 {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let total: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM clients) + (SELECT COUNT(*) FROM prompts) \
         + (SELECT COUNT(*) FROM invocations) + (SELECT COUNT(*) FROM audit_entries)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_damaged_audit_log_is_refused_naming_the_entry() {
    // An edited body: the entry's hash no longer matches.
    let source = populated_sqlite().await;
    let mut raw = raw_sqlite(&source).await;
    sqlx::raw_sql(
        "DROP TRIGGER audit_entries_no_update; \
         UPDATE audit_entries SET body = replace(body, 'reviewed', 'approved') \
         WHERE action = 'NOTE';",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    let edited: i64 =
        sqlx::query_scalar("SELECT sequence FROM audit_entries WHERE action = 'NOTE'")
            .fetch_one(&mut raw)
            .await
            .unwrap();
    let target = TestDatabase::create().await;
    let err = copy(source.url(), target.url()).await.unwrap_err();
    match &err {
        CopyError::BrokenChain { sequence, .. } => assert_eq!(*sequence, edited as u64),
        other => panic!("expected BrokenChain, got {other:?}"),
    }
    assert!(!err.is_usage());

    // A leaf hash that is not the body's (the chain itself intact).
    let source = populated_sqlite().await;
    let mut raw = raw_sqlite(&source).await;
    sqlx::raw_sql(
        "DROP TRIGGER audit_entries_no_update; \
         UPDATE audit_entries SET leaf_hash = hash WHERE sequence = 2;",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    let err = copy(source.url(), target.url()).await.unwrap_err();
    assert!(
        matches!(err, CopyError::BrokenChain { sequence: 2, ref reason } if reason.contains("leaf hash")),
        "{err:?}"
    );
    assert_eq!(pg_row_count(target.url()).await, 0, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failure_half_way_leaves_the_target_empty() {
    // A version whose prompt id is not a UUID: found after clients, tokens and prompts were
    // written in the transaction, which then rolls back.
    let source = populated_sqlite().await;
    let mut raw = raw_sqlite(&source).await;
    sqlx::raw_sql(
        "PRAGMA foreign_keys = OFF; \
         INSERT INTO prompt_versions SELECT 'not-a-uuid', version, model_endpoint_ref, \
         system_prompt, temperature, safety_guardrails, few_shot_examples, \
         system_prompt_tokens, tokenizer, created_at, created_by, template_messages, \
         variables_schema, tool_settings, fallback_endpoint_refs FROM prompt_versions LIMIT 1;",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    let target = TestDatabase::create().await;
    let err = copy(source.url(), target.url()).await.unwrap_err();
    assert!(
        matches!(err, CopyError::Source(StoreError::Corrupt(ref m)) if m.contains("not-a-uuid")),
        "{err:?}"
    );
    assert_eq!(pg_row_count(target.url()).await, 0);
    // Repaired, the same target takes the copy.
    sqlx::raw_sql(
        "DROP TRIGGER prompt_versions_no_delete; \
         DELETE FROM prompt_versions WHERE prompt_id = 'not-a-uuid';",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    copy(source.url(), target.url()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nul_characters_of_older_databases_are_replaced_and_counted() {
    let source = populated_sqlite().await;
    let mut raw = raw_sqlite(&source).await;
    // Written before the store mapped U+0000 (or by hand): PostgreSQL could not hold these.
    sqlx::query("UPDATE invocations SET session_id = ?, feedback_comment = ? WHERE id = ?")
        .bind("s\0x")
        .bind("o\0k")
        .bind("inv-0012")
        .execute(&mut raw)
        .await
        .unwrap();
    let target = TestDatabase::create().await;
    let report = copy(source.url(), target.url()).await.unwrap();
    assert_eq!(report.replaced_nul_values, 2);
    let pg = promptgate_store::open(target.url()).await.unwrap();
    let stored = pg
        .list_invocations(&TelemetryFilter::default(), None, 100)
        .await
        .unwrap();
    let record = stored.iter().find(|r| r.record.id == "inv-0012").unwrap();
    assert_eq!(record.record.session_id.as_deref(), Some("s\u{FFFD}x"));
    assert_eq!(
        record.feedback.as_ref().unwrap().comment.as_deref(),
        Some("o\u{FFFD}k")
    );
    pg.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_urls_a_missing_file_and_an_unreachable_server_are_errors() {
    let target = TestDatabase::create().await;
    let err = copy(target.url(), target.url()).await.unwrap_err();
    assert!(matches!(err, CopyError::UnsupportedSource(_)), "{err:?}");
    assert!(err.is_usage());

    let source = populated_sqlite().await;
    let err = copy(source.url(), source.url()).await.unwrap_err();
    assert!(matches!(err, CopyError::UnsupportedTarget), "{err:?}");
    assert!(err.is_usage());

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    let err = copy(&format!("sqlite://{}", missing.display()), target.url())
        .await
        .unwrap_err();
    assert!(matches!(err, CopyError::MissingSource(_)), "{err:?}");
    assert!(err.is_usage());
    assert!(!missing.exists(), "a copy never creates its source");

    let port = {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = copy(
        source.url(),
        &format!("postgres://postgres@127.0.0.1:{port}/promptgate"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, CopyError::Target(StoreError::Unavailable(_))),
        "{err:?}"
    );
    assert!(!err.is_usage());
}
