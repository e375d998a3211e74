//! API keys: insert with the audit entry, find by hash, list per client, revoke once (audited
//! once), record uses in batches whose times never move back.

use promptgate_core::{Scope, ScopeSet};
use promptgate_store::ApiKey;
use time::Duration;

use crate::fixtures::audit_draft;
use crate::fixtures::{Backend, T0, TestDb, client};

for_each_store!(
    api_keys_round_trip_by_id_hash_and_client,
    revoking_a_key_is_audited_once_and_listed,
    key_uses_are_recorded_in_batches_and_never_move_back,
    a_key_of_an_unknown_client_is_refused,
);

fn key(id: &str, client_id: &str, seconds: i64) -> ApiKey {
    ApiKey {
        id: id.to_owned(),
        client_id: client_id.to_owned(),
        name: format!("service {id}"),
        key_hash: format!("{:0>64}", id),
        scopes: ScopeSet::from_scopes([Scope::GatewayWrite]),
        created_at: T0 + Duration::seconds(seconds),
        expires_at: (seconds % 2 == 1).then(|| T0 + Duration::days(90)),
        revoked_at: None,
        last_used_at: None,
    }
}

async fn with_clients(backend: Backend) -> TestDb {
    let db = TestDb::new(backend).await;
    for id in ["admin", "bot"] {
        db.store
            .insert_client(&client(id), &audit_draft())
            .await
            .unwrap();
    }
    db
}

async fn api_keys_round_trip_by_id_hash_and_client(backend: Backend) {
    let db = with_clients(backend).await;
    let before = db.store.audit_size().await.unwrap();
    let (a, b, c) = (
        key("k1", "admin", 1),
        key("k2", "bot", 2),
        key("k3", "admin", 3),
    );
    for k in [&a, &b, &c] {
        db.store.insert_api_key(k, &audit_draft()).await.unwrap();
    }
    assert_eq!(db.store.audit_size().await.unwrap(), before + 3);
    assert_eq!(db.store.get_api_key("k2").await.unwrap(), Some(b.clone()));
    assert_eq!(db.store.get_api_key("nope").await.unwrap(), None);
    assert_eq!(
        db.store.find_api_key(&a.key_hash).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(db.store.find_api_key(&"f".repeat(64)).await.unwrap(), None);
    assert_eq!(
        db.store.list_api_keys(Some("admin")).await.unwrap(),
        vec![a.clone(), c.clone()]
    );
    assert_eq!(db.store.list_api_keys(None).await.unwrap(), vec![a, b, c]);
    assert!(
        db.store
            .list_api_keys(Some("nobody"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn revoking_a_key_is_audited_once_and_listed(backend: Backend) {
    let db = with_clients(backend).await;
    let k = key("k1", "admin", 1);
    db.store.insert_api_key(&k, &audit_draft()).await.unwrap();
    let before = db.store.audit_size().await.unwrap();
    let at = T0 + Duration::seconds(10);
    let revoked = db
        .store
        .revoke_api_key("k1", at, &audit_draft())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(at));
    // A second revoke keeps the first time and writes no entry.
    let again = db
        .store
        .revoke_api_key("k1", at + Duration::seconds(5), &audit_draft())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.revoked_at, Some(at));
    assert_eq!(db.store.audit_size().await.unwrap(), before + 1);
    assert_eq!(db.store.revoked_api_key_ids().await.unwrap(), vec!["k1"]);
    assert_eq!(
        db.store
            .revoke_api_key("nope", at, &audit_draft())
            .await
            .unwrap(),
        None
    );
    assert_eq!(db.store.audit_size().await.unwrap(), before + 1);
}

async fn key_uses_are_recorded_in_batches_and_never_move_back(backend: Backend) {
    let db = with_clients(backend).await;
    for k in [key("k1", "admin", 1), key("k2", "bot", 2)] {
        db.store.insert_api_key(&k, &audit_draft()).await.unwrap();
    }
    let later = T0 + Duration::seconds(60);
    db.store
        .record_api_key_use(&[
            ("k1".to_owned(), later),
            ("k2".to_owned(), T0 + Duration::seconds(30)),
            ("unknown".to_owned(), later),
        ])
        .await
        .unwrap();
    // An older batch from another gateway arrives late: it does not move the time back.
    db.store
        .record_api_key_use(&[("k1".to_owned(), T0 + Duration::seconds(45))])
        .await
        .unwrap();
    db.store.record_api_key_use(&[]).await.unwrap();
    let used = |id: &str| {
        let store = db.store.clone();
        let id = id.to_owned();
        async move { store.get_api_key(&id).await.unwrap().unwrap().last_used_at }
    };
    assert_eq!(used("k1").await, Some(later));
    assert_eq!(used("k2").await, Some(T0 + Duration::seconds(30)));
}

async fn a_key_of_an_unknown_client_is_refused(backend: Backend) {
    let db = with_clients(backend).await;
    let before = db.store.audit_size().await.unwrap();
    let err = db
        .store
        .insert_api_key(&key("k1", "nobody", 1), &audit_draft())
        .await;
    assert!(err.is_err(), "a key of an unknown client was stored");
    assert_eq!(db.store.get_api_key("k1").await.unwrap(), None);
    assert_eq!(db.store.audit_size().await.unwrap(), before);
}
