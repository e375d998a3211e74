//! OAuth clients: insert, read back, disable.

use promptgate_core::{Scope, ScopeSet};
use promptgate_store::StoreError;
use time::Duration;

use crate::fixtures::audit_draft;
use crate::fixtures::{Backend, T0, TestDb, client};

for_each_store!(
    clients_round_trip_and_count,
    disable_keeps_the_first_time_and_lists_the_client,
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
