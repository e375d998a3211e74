//! OAuth clients: insert, read back, disable, rotate the secret.

use promptgate_core::{Scope, ScopeSet};
use promptgate_store::StoreError;
use time::Duration;

use crate::fixtures::audit_draft;
use crate::fixtures::{Backend, T0, TestDb, client};

for_each_store!(
    clients_round_trip_and_count,
    disable_keeps_the_first_time_and_lists_the_client,
    rotating_a_secret_replaces_the_hash_drops_tokens_and_writes_one_entry,
    rotating_an_unknown_client_writes_nothing,
);

async fn clients_round_trip_and_count(backend: Backend) {
    let db = TestDb::new(backend).await;
    assert_eq!(db.store.count_clients().await.unwrap(), 0);
    let mut reader = client("reader");
    reader.scopes = ScopeSet::from_scopes([Scope::PromptRead]);
    reader.created_at = T0 + Duration::seconds(1);
    db.store
        .insert_client(&client("admin"), &audit_draft())
        .await
        .unwrap();
    db.store
        .insert_client(&reader, &audit_draft())
        .await
        .unwrap();
    assert_eq!(db.store.count_clients().await.unwrap(), 2);
    assert_eq!(
        db.store.get_client("reader").await.unwrap(),
        Some(reader.clone())
    );
    assert_eq!(db.store.get_client("nobody").await.unwrap(), None);
    assert_eq!(
        db.store.list_clients().await.unwrap(),
        vec![client("admin"), reader]
    );
    let err = db
        .store
        .insert_client(&client("admin"), &audit_draft())
        .await
        .unwrap_err();
    match err {
        StoreError::DuplicateClient { id } => assert_eq!(id, "admin"),
        other => panic!("expected DuplicateClient, got {other:?}"),
    }
}

async fn disable_keeps_the_first_time_and_lists_the_client(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.store
        .insert_client(&client("ci"), &audit_draft())
        .await
        .unwrap();
    db.store
        .insert_client(&client("other"), &audit_draft())
        .await
        .unwrap();
    assert!(db.store.disabled_client_ids().await.unwrap().is_empty());

    let first = T0 + Duration::minutes(5);
    let disabled = db
        .store
        .disable_client("ci", first, &audit_draft())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(disabled.id, "ci");
    assert_eq!(disabled.disabled_at, Some(first));
    assert_eq!(
        disabled,
        promptgate_store::Client {
            disabled_at: Some(first),
            ..client("ci")
        }
    );

    let again = db
        .store
        .disable_client("ci", first + Duration::hours(1), &audit_draft())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.disabled_at, Some(first));
    assert_eq!(
        db.store
            .get_client("ci")
            .await
            .unwrap()
            .unwrap()
            .disabled_at,
        Some(first)
    );

    assert_eq!(
        db.store
            .disable_client("nobody", first, &audit_draft())
            .await
            .unwrap(),
        None
    );
    assert_eq!(db.store.get_client("nobody").await.unwrap(), None);
    assert_eq!(
        db.store.disabled_client_ids().await.unwrap(),
        vec!["ci".to_owned()]
    );
    assert_eq!(
        db.store
            .get_client("other")
            .await
            .unwrap()
            .unwrap()
            .disabled_at,
        None
    );
}

fn token(hash: &str, client_id: &str) -> promptgate_store::AccessToken {
    promptgate_store::AccessToken {
        token_hash: hash.to_owned(),
        client_id: client_id.to_owned(),
        scopes: ScopeSet::all(),
        issued_at: T0,
        expires_at: T0 + Duration::days(3650),
    }
}

async fn rotating_a_secret_replaces_the_hash_drops_tokens_and_writes_one_entry(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.store
        .insert_client(&client("ci"), &audit_draft())
        .await
        .unwrap();
    db.store
        .insert_client(&client("other"), &audit_draft())
        .await
        .unwrap();
    db.store.insert_token(&token("t-ci", "ci")).await.unwrap();
    db.store
        .insert_token(&token("t-other", "other"))
        .await
        .unwrap();
    assert!(db.store.secret_rotations().await.unwrap().is_empty());
    let before = db.store.audit_size().await.unwrap();

    let at = T0 + Duration::minutes(7);
    let new_hash = "cd".repeat(32);
    let draft = promptgate_audit::AuditDraft::new(
        time::OffsetDateTime::now_utc(),
        "admin",
        promptgate_audit::action::CLIENT_SECRET_ROTATED,
        None,
        serde_json::json!({"clientId": "ci"}),
    );
    let rotated = db
        .store
        .rotate_client_secret("ci", &new_hash, at, &draft)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rotated,
        promptgate_store::Client {
            secret_hash: new_hash.clone(),
            ..client("ci")
        }
    );
    assert_eq!(
        db.store
            .get_client("ci")
            .await
            .unwrap()
            .unwrap()
            .secret_hash,
        new_hash
    );
    assert_eq!(db.store.audit_size().await.unwrap(), before + 1);
    let last = db
        .store
        .last_audit_with_action(promptgate_audit::action::CLIENT_SECRET_ROTATED)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.sequence, before + 1);
    assert!(last.body.contains("\"clientId\":\"ci\""), "{}", last.body);
    assert_eq!(db.store.find_token("t-ci").await.unwrap(), None);
    assert_eq!(
        db.store.find_token("t-other").await.unwrap(),
        Some(token("t-other", "other"))
    );
    assert_eq!(
        db.store.secret_rotations().await.unwrap(),
        vec![("ci".to_owned(), at)]
    );
    assert_eq!(
        db.store.get_client("other").await.unwrap(),
        Some(client("other"))
    );
}

async fn rotating_an_unknown_client_writes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.store
        .insert_client(&client("ci"), &audit_draft())
        .await
        .unwrap();
    let before = db.store.audit_size().await.unwrap();
    assert_eq!(
        db.store
            .rotate_client_secret("nobody", &"cd".repeat(32), T0, &audit_draft())
            .await
            .unwrap(),
        None
    );
    assert_eq!(db.store.audit_size().await.unwrap(), before);
    assert!(db.store.secret_rotations().await.unwrap().is_empty());
    assert_eq!(db.store.get_client("ci").await.unwrap(), Some(client("ci")));
}
