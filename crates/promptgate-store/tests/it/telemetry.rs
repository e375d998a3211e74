//! Invocation records: keyset paging that neither skips nor repeats while records arrive,
//! filters, feedback, idempotent batches and pruning.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use promptgate_core::invocation::{InvocationRecord, InvocationStatus};
use promptgate_store::{Feedback, Store, TelemetryFilter};
use time::Duration;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::fixtures::{Backend, T0, TestDb};

for_each_store!(
    paging_while_records_arrive_neither_skips_nor_repeats,
    paging_while_many_writers_insert_neither_skips_nor_repeats,
    filters_feedback_duplicates_and_pruning,
    exporter_cursors_move_by_compare_and_set,
);

fn record(n: usize, prompt_id: Uuid, status: InvocationStatus) -> InvocationRecord {
    InvocationRecord {
        id: format!("inv-{n:06}"),
        timestamp: T0 + Duration::milliseconds(n as i64),
        prompt_id,
        version: if n.is_multiple_of(2) {
            "1.0.0"
        } else {
            "1.1.0"
        }
        .to_owned(),
        model: "echo".to_owned(),
        status,
        error_code: (status != InvocationStatus::Success).then(|| "upstream.error".to_owned()),
        latency_ms: n as f64,
        upstream_latency_ms: Some(n as f64 / 2.0),
        time_to_first_token_ms: None,
        prompt_tokens: 10,
        completion_tokens: 5,
        session_id: Some(format!("s-{n}")),
        client_id: "client".to_owned(),
        metadata: BTreeMap::from([("channel".to_owned(), "web".to_owned())]),
    }
}

async fn paging_while_records_arrive_neither_skips_nor_repeats(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store: Arc<dyn Store> = db.store.clone();
    let prompt = Uuid::now_v7();
    let initial: Vec<_> = (0..300)
        .map(|n| record(n, prompt, InvocationStatus::Success))
        .collect();
    store.insert_invocations(&initial).await.unwrap();

    // A writer adds batches while the reader pages through.
    let writer_store = db.reopen().await;
    let writer = tokio::spawn(async move {
        for batch in 0..20 {
            let records: Vec<_> = (0..25)
                .map(|i| record(1_000 + batch * 25 + i, prompt, InvocationStatus::Success))
                .collect();
            writer_store.insert_invocations(&records).await.unwrap();
            tokio::task::yield_now().await;
        }
    });
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_invocations(&TelemetryFilter::default(), after, 7)
            .await
            .unwrap();
        if page.is_empty() {
            if writer.is_finished() {
                break;
            }
            tokio::task::yield_now().await;
            continue;
        }
        after = page.last().map(|r| r.seq);
        seen.extend(page.into_iter().map(|r| (r.seq, r.record.id)));
    }
    writer.await.unwrap();
    // Drain whatever the writer added after the last empty page.
    loop {
        let page = store
            .list_invocations(&TelemetryFilter::default(), after, 50)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|r| r.seq);
        seen.extend(page.into_iter().map(|r| (r.seq, r.record.id)));
    }
    let ids: HashSet<&String> = seen.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), seen.len(), "a record was repeated");
    assert_eq!(seen.len(), 300 + 20 * 25, "a record was skipped");
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "pages are in storage order"
    );
}

/// Pages through everything there is, while `writing` runs, and after it ended; returns
/// `(seq, id)` in the order seen.
async fn page_through(
    store: &dyn Store,
    writing: tokio::task::JoinHandle<()>,
    page_size: u32,
) -> Vec<(i64, String)> {
    let mut seen = Vec::new();
    let mut after = None;
    let mut writing = Some(writing);
    loop {
        let page = store
            .list_invocations(&TelemetryFilter::default(), after, page_size)
            .await
            .unwrap();
        if page.is_empty() {
            match writing.take() {
                // One more pass after the writers ended picks up their last records.
                Some(handle) if handle.is_finished() => handle.await.unwrap(),
                Some(handle) => {
                    writing = Some(handle);
                    tokio::task::yield_now().await;
                }
                None => break,
            }
            continue;
        }
        after = page.last().map(|r| r.seq);
        seen.extend(page.into_iter().map(|r| (r.seq, r.record.id)));
    }
    seen
}

/// On PostgreSQL, writers on different connections draw sequence numbers in one order and may
/// commit in another; a reader whose cursor passed a number must never see a smaller one
/// appear afterwards. Eight writers on two pools insert while the reader pages.
async fn paging_while_many_writers_insert_neither_skips_nor_repeats(backend: Backend) {
    let db = TestDb::new(backend).await;
    let prompt = Uuid::now_v7();
    let pools = [db.store.clone(), db.reopen().await];
    let mut writers = JoinSet::new();
    for w in 0..8 {
        let store = pools[w % 2].clone();
        writers.spawn(async move {
            for batch in 0..10 {
                let records: Vec<_> = (0..20)
                    .map(|i| {
                        record(
                            100_000 * (w + 1) + batch * 20 + i,
                            prompt,
                            InvocationStatus::Success,
                        )
                    })
                    .collect();
                store.insert_invocations(&records).await.unwrap();
            }
        });
    }
    let writing = tokio::spawn(async move {
        while let Some(done) = writers.join_next().await {
            done.unwrap();
        }
    });
    let seen = page_through(db.store.as_ref(), writing, 13).await;
    let ids: HashSet<&String> = seen.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), seen.len(), "a record was repeated");
    assert_eq!(seen.len(), 8 * 10 * 20, "a record was skipped");
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "pages are in storage order"
    );
    assert_eq!(
        db.store.last_invocation_seq().await.unwrap(),
        seen.last().unwrap().0
    );
}

/// Replicas draining one outbox: of several moves of a cursor from the same position, exactly
/// one wins, whichever pool it comes from.
async fn exporter_cursors_move_by_compare_and_set(backend: Backend) {
    let db = TestDb::new(backend).await;
    let pools = [db.store.clone(), db.reopen().await];
    assert_eq!(db.store.exporter_cursor("webhook").await.unwrap(), 0);
    // A move from a position the cursor is not at changes nothing, not even a missing row.
    assert!(
        !db.store
            .advance_exporter_cursor("webhook", 5, 10, T0)
            .await
            .unwrap()
    );
    assert_eq!(db.store.exporter_cursor("webhook").await.unwrap(), 0);
    for round in 0..20 {
        let (from, to) = (round * 10, round * 10 + 10);
        let mut racers = JoinSet::new();
        for r in 0..6 {
            let store = pools[r % 2].clone();
            racers.spawn(async move {
                store
                    .advance_exporter_cursor("webhook", from, to, T0)
                    .await
                    .unwrap()
            });
        }
        let mut wins = 0;
        while let Some(won) = racers.join_next().await {
            wins += usize::from(won.unwrap());
        }
        assert_eq!(wins, 1, "round {round}: {wins} replicas moved the cursor");
        assert_eq!(pools[1].exporter_cursor("webhook").await.unwrap(), to);
    }
    // A replica that read the cursor before the others moved it loses.
    assert!(
        !pools[0]
            .advance_exporter_cursor("webhook", 190, 195, T0)
            .await
            .unwrap()
    );
    assert_eq!(db.store.exporter_cursor("webhook").await.unwrap(), 200);
    assert_eq!(db.store.exporter_cursor("otlp").await.unwrap(), 0);
}

async fn filters_feedback_duplicates_and_pruning(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store.as_ref();
    let prompt = Uuid::now_v7();
    let other = Uuid::now_v7();
    let mut records: Vec<_> = (0..10)
        .map(|n| record(n, prompt, InvocationStatus::Success))
        .collect();
    records.push(record(10, prompt, InvocationStatus::Error));
    records.push(record(11, other, InvocationStatus::Blocked));
    store.insert_invocations(&records).await.unwrap();
    // A batch written twice (a retry after a crash) stays one copy.
    store.insert_invocations(&records[..3]).await.unwrap();

    let all = store
        .list_invocations(&TelemetryFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(all.len(), 12);
    assert_eq!(all[0].record, records[0], "a record round-trips");

    let only = |filter: TelemetryFilter| async move {
        store
            .list_invocations(&filter, None, 100)
            .await
            .unwrap()
            .len()
    };
    assert_eq!(
        only(TelemetryFilter {
            prompt_id: Some(other),
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        only(TelemetryFilter {
            status: Some(InvocationStatus::Error),
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        only(TelemetryFilter {
            version: Some("1.1.0".into()),
            prompt_id: Some(prompt),
            ..Default::default()
        })
        .await,
        5
    );
    assert_eq!(
        only(TelemetryFilter {
            start: Some(T0 + Duration::milliseconds(2)),
            end: Some(T0 + Duration::milliseconds(5)),
            ..Default::default()
        })
        .await,
        3,
        "start is inclusive, end exclusive"
    );

    let feedback = Feedback {
        score: 0.75,
        comment: Some("helpful".into()),
        at: T0,
    };
    assert!(store.set_feedback("inv-000004", &feedback).await.unwrap());
    assert!(!store.set_feedback("inv-missing", &feedback).await.unwrap());
    let rows = store
        .summary_rows(&TelemetryFilter {
            prompt_id: Some(prompt),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 11);
    assert_eq!(
        rows.iter().filter_map(|r| r.feedback).collect::<Vec<_>>(),
        vec![0.75]
    );

    let pruned = store
        .prune_invocations(T0 + Duration::milliseconds(6))
        .await
        .unwrap();
    assert_eq!(pruned, 6);
    assert_eq!(
        store
            .list_invocations(&TelemetryFilter::default(), None, 100)
            .await
            .unwrap()
            .len(),
        6
    );
}
