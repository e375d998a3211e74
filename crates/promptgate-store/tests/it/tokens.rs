//! Access tokens, stored by hash.

use promptgate_core::{Scope, ScopeSet};
use promptgate_store::AccessToken;
use time::Duration;

use crate::fixtures::audit_draft;
use crate::fixtures::{Backend, T0, TestDb, client};

for_each_store!(
    tokens_round_trip_by_hash,
    a_token_needs_an_existing_client,
    only_expired_tokens_are_deleted,
);

fn token(hash: &str, expires_at: time::OffsetDateTime) -> AccessToken {
    AccessToken {
        token_hash: hash.to_owned(),
        client_id: "app".to_owned(),
        scopes: ScopeSet::from_scopes([Scope::PromptRead, Scope::GatewayWrite]),
        issued_at: T0,
        expires_at,
    }
}

async fn tokens_round_trip_by_hash(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.store
        .insert_client(&client("app"), &audit_draft())
        .await
        .unwrap();
    let t = token(&"1f".repeat(32), T0 + Duration::hours(24));
    db.store.insert_token(&t).await.unwrap();
    assert_eq!(db.store.find_token(&t.token_hash).await.unwrap(), Some(t));
    assert_eq!(db.store.find_token(&"2e".repeat(32)).await.unwrap(), None);
}

async fn a_token_needs_an_existing_client(backend: Backend) {
    let db = TestDb::new(backend).await;
    let t = token(&"1f".repeat(32), T0 + Duration::hours(24));
    assert!(db.store.insert_token(&t).await.is_err());
    assert_eq!(db.store.find_token(&t.token_hash).await.unwrap(), None);
}

async fn only_expired_tokens_are_deleted(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.store
        .insert_client(&client("app"), &audit_draft())
        .await
        .unwrap();
    let now = T0 + Duration::hours(10);
    let expired = [
        token("expired-long-ago", T0 + Duration::hours(1)),
        token("expired-just-now", now - Duration::milliseconds(1)),
    ];
    let live = [
        token("live-soon", now + Duration::milliseconds(1)),
        token("live-later", now + Duration::hours(24)),
    ];
    for t in expired.iter().chain(&live) {
        db.store.insert_token(t).await.unwrap();
    }
    assert_eq!(db.store.delete_expired_tokens(now).await.unwrap(), 2);
    for t in &expired {
        assert_eq!(db.store.find_token(&t.token_hash).await.unwrap(), None);
    }
    for t in &live {
        assert_eq!(
            db.store.find_token(&t.token_hash).await.unwrap(),
            Some(t.clone())
        );
    }
    assert_eq!(db.store.delete_expired_tokens(now).await.unwrap(), 0);
}
