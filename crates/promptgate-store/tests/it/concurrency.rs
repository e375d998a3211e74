//! Two stores on one database (the CLI beside a running server, two replicas) writing at the
//! same time.

use std::sync::Arc;

use promptgate_core::PromptStatus;
use promptgate_store::{PromptFilter, PromptUpdate, Store};
use tokio::task::JoinSet;

use crate::fixtures::audit_draft;
use crate::fixtures::{Backend, T0, TestDb, client, create};

for_each_store!(
    two_stores_insert_concurrently_without_busy_errors,
    two_stores_run_write_transactions_concurrently,
);

async fn two_stores_insert_concurrently_without_busy_errors(backend: Backend) {
    let db = TestDb::new(backend).await;
    let stores = [db.reopen().await, db.reopen().await];
    let mut tasks = JoinSet::new();
    for (s, store) in stores.iter().enumerate() {
        for i in 0..50 {
            let store = Arc::clone(store);
            tasks.spawn(async move {
                let id = format!("s{s}-c{i}");
                store
                    .insert_client(&client(&id), &audit_draft())
                    .await
                    .map_err(|e| (id, e))
            });
        }
    }
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Err((id, e)) = joined.unwrap() {
            failures.push(format!("{id}: {e:?}"));
        }
    }
    assert!(failures.is_empty(), "inserts failed: {failures:#?}");
    assert_eq!(db.store.count_clients().await.unwrap(), 100);
    assert_eq!(stores[1].count_clients().await.unwrap(), 100);
}

async fn two_stores_run_write_transactions_concurrently(backend: Backend) {
    // Transactions that read after writing (disable, update) are where a deferred transaction
    // would hit SQLITE_BUSY; BEGIN IMMEDIATE makes them wait their turn instead.
    let db = TestDb::new(backend).await;
    for i in 0..20 {
        db.store
            .insert_client(&client(&format!("c{i}")), &audit_draft())
            .await
            .unwrap();
    }
    let (p, _) = create(&*db.store, "shared").await;
    let stores: [Arc<dyn Store>; 2] = [db.reopen().await, db.reopen().await];
    let mut tasks = JoinSet::new();
    for (s, store) in stores.iter().enumerate() {
        for i in 0..20 {
            let store = Arc::clone(store);
            let prompt_id = p.id;
            tasks.spawn(async move {
                let name = format!("s{s}-p{i}");
                create_for(store.as_ref(), &name).await?;
                if i % 2 == s {
                    store
                        .disable_client(&format!("c{i}"), T0, &audit_draft())
                        .await?;
                }
                // Each store bumps the shared prompt's revision with a read-modify-write loop.
                loop {
                    let current = store.get_prompt(prompt_id).await?.ok_or_else(|| {
                        promptgate_store::StoreError::Corrupt("prompt vanished".into())
                    })?;
                    let update = PromptUpdate {
                        id: prompt_id,
                        expected_revision: current.revision,
                        new_revision: current.revision + 1,
                        updated_at: T0,
                        new_version: None,
                        traffic: None,
                        status: Some(PromptStatus::Active),
                        chat_completions: None,
                        labels: None,
                        audit: vec![],
                    };
                    match store.update_prompt(&update).await {
                        Ok(()) => break,
                        Err(promptgate_store::StoreError::StaleRevision) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Ok::<(), promptgate_store::StoreError>(())
            });
        }
    }
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined.unwrap() {
            failures.push(format!("{e:?}"));
        }
    }
    assert!(failures.is_empty(), "writes failed: {failures:#?}");
    let listed = db
        .store
        .list_prompts(&PromptFilter::default(), None, 500)
        .await
        .unwrap();
    assert_eq!(listed.len(), 41);
    assert_eq!(db.store.disabled_client_ids().await.unwrap().len(), 20);
    // 40 increments from revision 1, none lost.
    assert_eq!(
        db.store.get_prompt(p.id).await.unwrap().unwrap().revision,
        41
    );
}

async fn create_for(store: &dyn Store, name: &str) -> Result<(), promptgate_store::StoreError> {
    let id = uuid::Uuid::now_v7();
    store
        .create_prompt(
            &crate::fixtures::prompt(id, name),
            &crate::fixtures::version(id, "1.0.0", "x"),
            &[audit_draft()],
        )
        .await
}
