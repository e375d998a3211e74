//! Exporter delivery leases: one holder at a time, renewals, expiry, release, racing acquirers
//! on separate pools (replicas) of which exactly one wins, and the pending batch a holder
//! records before it delivers (only while it holds the lease; kept for whoever takes over).

use std::sync::Arc;
use std::time::Duration;

use promptgate_store::{PendingBatch, Store, StoreError};
use tokio::task::JoinSet;

use crate::fixtures::{Backend, T0, TestDb};

for_each_store!(
    a_lease_is_held_until_it_expires_or_is_released,
    leases_are_per_exporter,
    racing_replicas_get_one_lease,
    only_the_holder_records_a_pending_batch_and_it_outlives_the_holder,
    a_closed_store_cannot_take_or_release_a_lease,
);

const TTL: Duration = Duration::from_secs(30);

fn at(ms: i64) -> time::OffsetDateTime {
    T0 + time::Duration::milliseconds(ms)
}

async fn a_lease_is_held_until_it_expires_or_is_released(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    assert!(
        store
            .try_acquire_exporter_lease("webhook", "a", at(0), TTL)
            .await
            .unwrap(),
        "a free lease is granted"
    );
    assert!(
        !store
            .try_acquire_exporter_lease("webhook", "b", at(1), TTL)
            .await
            .unwrap(),
        "a held lease is not granted to another"
    );
    // A renewal at 10 s moves the expiry to 40 s.
    assert!(
        store
            .try_acquire_exporter_lease("webhook", "a", at(10_000), TTL)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_acquire_exporter_lease("webhook", "b", at(39_999), TTL)
            .await
            .unwrap(),
        "the renewal extended the lease"
    );
    assert!(
        store
            .try_acquire_exporter_lease("webhook", "b", at(40_000), TTL)
            .await
            .unwrap(),
        "an expired lease goes to the next asker"
    );
    assert!(
        !store
            .try_acquire_exporter_lease("webhook", "a", at(40_001), TTL)
            .await
            .unwrap(),
        "the old holder lost it"
    );
    // Releasing a lease one does not hold changes nothing.
    store.release_exporter_lease("webhook", "a").await.unwrap();
    assert!(
        !store
            .try_acquire_exporter_lease("webhook", "a", at(40_002), TTL)
            .await
            .unwrap()
    );
    // The holder's release frees it at once, long before it would expire.
    store.release_exporter_lease("webhook", "b").await.unwrap();
    assert!(
        store
            .try_acquire_exporter_lease("webhook", "a", at(40_003), TTL)
            .await
            .unwrap()
    );
    // Releasing a lease nobody holds is not an error.
    store.release_exporter_lease("otlp", "a").await.unwrap();
}

async fn leases_are_per_exporter(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    assert!(
        store
            .try_acquire_exporter_lease("webhook", "a", at(0), TTL)
            .await
            .unwrap()
    );
    assert!(
        store
            .try_acquire_exporter_lease("otlp", "b", at(0), TTL)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_acquire_exporter_lease("otlp", "a", at(1), TTL)
            .await
            .unwrap()
    );
    // Leases do not touch the cursors.
    assert_eq!(store.exporter_cursor("webhook").await.unwrap(), 0);
}

async fn racing_replicas_get_one_lease(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Eight "replicas", each with a pool of its own, ask at the same instant, twice: for a
    // free lease, then for the winner's lease once it has expired.
    let mut replicas: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..8 {
        replicas.push(db.reopen().await);
    }
    let mut winners_by_round = Vec::new();
    for now in [at(0), at(60_000)] {
        let mut racers = JoinSet::new();
        for (i, store) in replicas.iter().enumerate() {
            let store = store.clone();
            racers.spawn(async move {
                let holder = format!("replica-{i}");
                let won = store
                    .try_acquire_exporter_lease("webhook", &holder, now, TTL)
                    .await
                    .unwrap();
                won.then_some(holder)
            });
        }
        let mut winners = Vec::new();
        while let Some(result) = racers.join_next().await {
            winners.extend(result.unwrap());
        }
        assert_eq!(winners.len(), 1, "exactly one winner at {now}: {winners:?}");
        winners_by_round.push(winners.remove(0));
    }
    // The second round's winner holds it now; the first round's (if another) does not.
    let holder = &winners_by_round[1];
    assert!(
        db.store
            .try_acquire_exporter_lease("webhook", holder, at(60_001), TTL)
            .await
            .unwrap()
    );
    for store in replicas {
        store.close().await;
    }
}

async fn only_the_holder_records_a_pending_batch_and_it_outlives_the_holder(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    let batch = |first_seq, last_seq| PendingBatch {
        first_seq,
        last_seq,
    };
    assert_eq!(store.pending_exporter_batch("webhook").await.unwrap(), None);
    assert!(
        !store
            .begin_exporter_batch("webhook", "a", at(0), batch(1, 10))
            .await
            .unwrap(),
        "no lease, no batch"
    );
    assert!(
        store
            .try_acquire_exporter_lease("webhook", "a", at(0), TTL)
            .await
            .unwrap()
    );
    assert_eq!(
        store.pending_exporter_batch("webhook").await.unwrap(),
        None,
        "a fresh lease has no pending batch"
    );
    assert!(
        !store
            .begin_exporter_batch("webhook", "b", at(1), batch(1, 10))
            .await
            .unwrap(),
        "only the holder records a batch"
    );
    assert!(
        store
            .begin_exporter_batch("webhook", "a", at(1), batch(1, 10))
            .await
            .unwrap()
    );
    assert_eq!(
        store.pending_exporter_batch("webhook").await.unwrap(),
        Some(batch(1, 10))
    );
    assert!(
        !store
            .begin_exporter_batch("webhook", "a", at(30_000), batch(11, 20))
            .await
            .unwrap(),
        "not once the lease has expired"
    );
    // "a" crashed: "b" takes over and finds the batch "a" began.
    assert!(
        store
            .try_acquire_exporter_lease("webhook", "b", at(30_000), TTL)
            .await
            .unwrap()
    );
    assert_eq!(
        store.pending_exporter_batch("webhook").await.unwrap(),
        Some(batch(1, 10))
    );
    // A graceful release keeps it too (the target may have received it).
    assert!(
        store
            .begin_exporter_batch("webhook", "b", at(30_001), batch(11, 20))
            .await
            .unwrap()
    );
    store.release_exporter_lease("webhook", "b").await.unwrap();
    assert_eq!(
        store.pending_exporter_batch("webhook").await.unwrap(),
        Some(batch(11, 20))
    );
    assert_eq!(store.pending_exporter_batch("otlp").await.unwrap(), None);
}

async fn a_closed_store_cannot_take_or_release_a_lease(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.store.close().await;
    let err = db
        .store
        .try_acquire_exporter_lease("webhook", "a", at(0), TTL)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "got {err:?}");
    let err = db
        .store
        .release_exporter_lease("webhook", "a")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "got {err:?}");
    let err = db
        .store
        .begin_exporter_batch(
            "webhook",
            "a",
            at(0),
            PendingBatch {
                first_seq: 1,
                last_seq: 2,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "got {err:?}");
    let err = db
        .store
        .pending_exporter_batch("webhook")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "got {err:?}");
}
