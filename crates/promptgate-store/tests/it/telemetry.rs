//! Invocation records: keyset paging that neither skips nor repeats while records arrive,
//! filters, feedback, idempotent batches and pruning.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use promptgate_core::invocation::{InvocationRecord, InvocationStatus};
use promptgate_store::{Feedback, Store, TelemetryFilter};
use time::Duration;
use uuid::Uuid;

use crate::fixtures::{T0, TestDb};

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

#[tokio::test]
async fn paging_while_records_arrive_neither_skips_nor_repeats() {
    let db = TestDb::new().await;
    let store: Arc<dyn Store> = Arc::new(db.store.clone());
    let prompt = Uuid::now_v7();
    let initial: Vec<_> = (0..300)
        .map(|n| record(n, prompt, InvocationStatus::Success))
        .collect();
    store.insert_invocations(&initial).await.unwrap();

    // A writer adds batches while the reader pages through.
    let writer_store = Arc::new(db.reopen().await);
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

#[tokio::test]
async fn filters_feedback_duplicates_and_pruning() {
    let db = TestDb::new().await;
    let store = &db.store;
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
