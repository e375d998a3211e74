//! Prompt creation and optimistic, atomic updates.

use promptgate_core::{PromptStatus, SplitStrategy, TrafficSplit};
use promptgate_store::{PromptUpdate, Store, StoreError};
use time::Duration;
use uuid::Uuid;

use crate::fixtures::audit_draft;
use crate::fixtures::{Backend, T0, TestDb, create, label, prompt, version};

for_each_store!(
    create_then_read_back_round_trips,
    update_applies_version_traffic_and_revision_together,
    stale_revision_is_refused_and_changes_nothing,
    update_of_an_unknown_prompt_is_not_found,
    duplicate_version_rolls_back_the_prompt_update,
    duplicate_name_leaves_no_orphan_version,
    a_first_version_for_another_prompt_id_leaves_no_prompt,
);

/// A 50/50 split between 1.0.0 and 2.0.0.
fn half_split() -> TrafficSplit {
    TrafficSplit::new(
        label("1.0.0"),
        SplitStrategy::Random,
        vec![(label("1.0.0"), 0.5), (label("2.0.0"), 0.5)],
    )
    .unwrap()
}

/// Every version row of a prompt, in label order.
async fn versions_of(store: &dyn Store, id: Uuid) -> Vec<promptgate_core::PromptVersion> {
    let mut labels = store.version_labels(id).await.unwrap();
    labels.sort();
    let mut out = Vec::new();
    for l in &labels {
        out.push(store.get_version(id, l).await.unwrap().unwrap());
    }
    out
}

async fn create_then_read_back_round_trips(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (p, v) = create(&*db.store, "support_agent").await;
    assert_eq!(db.store.get_prompt(p.id).await.unwrap(), Some(p.clone()));
    assert_eq!(versions_of(&*db.store, p.id).await, vec![v]);
    assert_eq!(db.store.get_prompt(Uuid::now_v7()).await.unwrap(), None);
}

async fn update_applies_version_traffic_and_revision_together(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (p, v1) = create(&*db.store, "support_agent").await;
    let v2 = version(p.id, "2.0.0", "You are terse.");
    let update = PromptUpdate {
        id: p.id,
        expected_revision: 1,
        new_revision: 2,
        updated_at: T0 + Duration::seconds(5),
        new_version: Some(v2.clone()),
        traffic: Some(half_split()),
        status: None,
        chat_completions: Some(prepend_with_caller_settings()),
        labels: None,
        audit: vec![],
    };
    db.store.update_prompt(&update).await.unwrap();
    let after = db.store.get_prompt(p.id).await.unwrap().unwrap();
    assert_eq!(after.chat_completions, prepend_with_caller_settings());
    assert_eq!(after.revision, 2);
    assert_eq!(after.updated_at, T0 + Duration::seconds(5));
    assert_eq!(after.traffic, half_split());
    assert_eq!(after.status, PromptStatus::Active);
    assert_eq!(after.created_at, p.created_at);
    assert_eq!(versions_of(&*db.store, p.id).await, vec![v1, v2]);
}

fn prepend_with_caller_settings() -> promptgate_core::ChatCompletionsPolicy {
    promptgate_core::ChatCompletionsPolicy {
        system_message: promptgate_core::SystemMessageMode::Prepend,
        allow_caller_settings: true,
    }
}

async fn stale_revision_is_refused_and_changes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (p, _) = create(&*db.store, "support_agent").await;
    // Someone else moves the prompt to revision 2 first.
    db.store
        .update_prompt(&PromptUpdate {
            id: p.id,
            expected_revision: 1,
            new_revision: 2,
            updated_at: T0 + Duration::seconds(1),
            new_version: Some(version(p.id, "1.1.0", "You are kind.")),
            traffic: None,
            status: None,
            chat_completions: None,
            labels: None,
            audit: vec![],
        })
        .await
        .unwrap();
    let prompt_before = db.store.get_prompt(p.id).await.unwrap().unwrap();
    let versions_before = versions_of(&*db.store, p.id).await;

    let stale = PromptUpdate {
        id: p.id,
        expected_revision: 1,
        new_revision: 2,
        updated_at: T0 + Duration::seconds(9),
        new_version: Some(version(p.id, "2.0.0", "You are terse.")),
        traffic: Some(half_split()),
        status: Some(PromptStatus::Archived),
        chat_completions: None,
        labels: None,
        audit: vec![],
    };
    let err = db.store.update_prompt(&stale).await.unwrap_err();
    assert!(
        matches!(err, StoreError::StaleRevision),
        "expected StaleRevision, got {err:?}"
    );
    assert_eq!(
        db.store.get_prompt(p.id).await.unwrap().unwrap(),
        prompt_before
    );
    assert_eq!(versions_of(&*db.store, p.id).await, versions_before);
    assert_eq!(
        db.store.get_version(p.id, &label("2.0.0")).await.unwrap(),
        None
    );
}

async fn update_of_an_unknown_prompt_is_not_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    create(&*db.store, "support_agent").await;
    let missing = Uuid::now_v7();
    let err = db
        .store
        .update_prompt(&PromptUpdate {
            id: missing,
            expected_revision: 1,
            new_revision: 2,
            updated_at: T0,
            new_version: Some(version(missing, "2.0.0", "orphan")),
            traffic: None,
            status: None,
            chat_completions: None,
            labels: None,
            audit: vec![],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound),
        "expected NotFound, got {err:?}"
    );
    assert!(db.store.version_labels(missing).await.unwrap().is_empty());
}

async fn duplicate_version_rolls_back_the_prompt_update(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (p, v1) = create(&*db.store, "support_agent").await;
    let before = db.store.get_prompt(p.id).await.unwrap().unwrap();

    let err = db
        .store
        .update_prompt(&PromptUpdate {
            id: p.id,
            expected_revision: 1,
            new_revision: 2,
            updated_at: T0 + Duration::seconds(30),
            new_version: Some(version(p.id, "1.0.0", "different content")),
            traffic: Some(TrafficSplit::single(label("1.0.0"))),
            status: Some(PromptStatus::Archived),
            chat_completions: None,
            labels: None,
            audit: vec![],
        })
        .await
        .unwrap_err();
    match err {
        StoreError::DuplicateVersion { version } => assert_eq!(version, "1.0.0"),
        other => panic!("expected DuplicateVersion, got {other:?}"),
    }
    let after = db.store.get_prompt(p.id).await.unwrap().unwrap();
    assert_eq!(
        after, before,
        "the prompt row changed though the update failed"
    );
    assert_eq!(after.revision, 1);
    assert_eq!(after.status, PromptStatus::Active);
    assert_eq!(versions_of(&*db.store, p.id).await, vec![v1]);

    // The failed transaction left nothing locked: the same revision still applies.
    db.store
        .update_prompt(&PromptUpdate {
            id: p.id,
            expected_revision: 1,
            new_revision: 2,
            updated_at: T0 + Duration::seconds(31),
            new_version: Some(version(p.id, "2.0.0", "You are terse.")),
            traffic: None,
            status: None,
            chat_completions: None,
            labels: None,
            audit: vec![],
        })
        .await
        .unwrap();
    assert_eq!(
        db.store.get_prompt(p.id).await.unwrap().unwrap().revision,
        2
    );
}

async fn duplicate_name_leaves_no_orphan_version(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (original, original_version) = create(&*db.store, "support_agent").await;
    let id = Uuid::now_v7();
    let err = db
        .store
        .create_prompt(
            &prompt(id, "support_agent"),
            &version(id, "1.0.0", "copy"),
            &[audit_draft()],
        )
        .await
        .unwrap_err();
    match err {
        StoreError::DuplicateName { name } => assert_eq!(name, "support_agent"),
        other => panic!("expected DuplicateName, got {other:?}"),
    }
    assert_eq!(db.store.get_prompt(id).await.unwrap(), None);
    assert!(db.store.version_labels(id).await.unwrap().is_empty());

    let mut raw = db.raw().await;
    let orphans = raw
        .count(
            "SELECT COUNT(*) FROM prompt_versions WHERE CAST(prompt_id AS TEXT) = $1",
            &[&id.to_string()],
        )
        .await;
    let all = raw.count("SELECT COUNT(*) FROM prompt_versions", &[]).await;
    raw.close().await;
    assert_eq!(orphans, 0);
    assert_eq!(all, 1);
    assert_eq!(
        versions_of(&*db.store, original.id).await,
        vec![original_version]
    );
}

async fn a_first_version_for_another_prompt_id_leaves_no_prompt(backend: Backend) {
    // The version insert fails on its foreign key after the prompt row went in: both roll back.
    let db = TestDb::new(backend).await;
    let id = Uuid::now_v7();
    let elsewhere = Uuid::now_v7();
    let err = db
        .store
        .create_prompt(
            &prompt(id, "lonely"),
            &version(elsewhere, "1.0.0", "x"),
            &[audit_draft()],
        )
        .await;
    assert!(err.is_err(), "a version of a missing prompt was stored");
    assert_eq!(db.store.get_prompt(id).await.unwrap(), None);
    assert!(db.store.version_labels(elsewhere).await.unwrap().is_empty());
}
