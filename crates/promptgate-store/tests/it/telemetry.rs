//! Invocation records: keyset paging that neither skips nor repeats while records arrive,
//! filters, feedback, idempotent batches and pruning.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use promptgate_core::invocation::{InvocationRecord, InvocationStatus};
use promptgate_store::{Feedback, Store, SummaryGroup, TelemetryFilter};
use time::Duration;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::fixtures::{Backend, T0, TestDb};

for_each_store!(
    paging_while_records_arrive_neither_skips_nor_repeats,
    paging_while_many_writers_insert_neither_skips_nor_repeats,
    filters_feedback_duplicates_and_pruning,
    exporter_cursors_move_by_compare_and_set,
    summary_aggregates_equal_the_figures_computed_by_hand,
    cost_round_trips_and_its_aggregates_equal_the_figures_computed_by_hand,
    summary_aggregates_over_many_rows_equal_the_in_memory_summary,
    feedback_is_replaced_by_compare_and_set_with_its_audit_entry,
    label_and_variable_names_round_trip_and_the_label_filters_listing_and_summary,
    a_stored_variable_names_column_that_is_not_a_list_is_corrupt,
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
        label: None,
        variable_names: Vec::new(),
        schema_valid: None,
        tool_call_count: 0,
        api_key_id: None,
        cost_usd: None,
        endpoint_ref: "openai/gpt-4o".to_owned(),
        fallback_attempts: Vec::new(),
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
    let groups = store
        .summary_aggregates(
            &TelemetryFilter {
                prompt_id: Some(prompt),
                ..Default::default()
            },
            SummaryGroup::Version,
        )
        .await
        .unwrap();
    assert_eq!(groups.iter().map(|g| g.group.count).sum::<u64>(), 11);
    let with_feedback: Vec<_> = groups.iter().filter(|g| g.group.feedback.n > 0).collect();
    assert_eq!(with_feedback.len(), 1);
    assert_eq!(with_feedback[0].group.feedback.n, 1);
    assert_eq!(with_feedback[0].group.feedback.mean, 0.75);

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

/// A record of `version` with the given latency, status and feedback.
fn sample(
    n: usize,
    prompt_id: Uuid,
    version: &str,
    status: InvocationStatus,
    latency_ms: f64,
) -> InvocationRecord {
    InvocationRecord {
        version: version.to_owned(),
        latency_ms,
        prompt_tokens: n as u32,
        completion_tokens: 2,
        ..record(n, prompt_id, status)
    }
}

/// Issue 17, item 13: the summary is computed by the database; on a small set its figures are
/// the ones worked out by hand (docs/statistics.md's definitions).
async fn summary_aggregates_equal_the_figures_computed_by_hand(backend: Backend) {
    use InvocationStatus::{Blocked, Error, Success};
    let db = TestDb::new(backend).await;
    let store = &db.store;
    let prompt = Uuid::now_v7();
    let records = vec![
        sample(1, prompt, "1.0.0", Success, 10.0),
        sample(2, prompt, "1.0.0", Success, 40.0),
        sample(3, prompt, "1.0.0", Error, 100.0),
        sample(4, prompt, "1.0.0", Success, 20.0),
        sample(5, prompt, "1.0.0", Success, 30.0),
        // Blocked: counted, but its latency is not a model call's.
        sample(6, prompt, "1.0.0", Blocked, 1.0),
        sample(7, prompt, "2.0.0", Success, 5.0),
        sample(8, prompt, "2.0.0", Success, 15.0),
        // Another prompt, filtered out.
        sample(9, Uuid::now_v7(), "1.0.0", Error, 999.0),
    ];
    store.insert_invocations(&records).await.unwrap();
    for (id, score) in [
        ("inv-000001", 1.0),
        ("inv-000006", 0.5),
        ("inv-000007", 0.0),
    ] {
        let feedback = Feedback {
            score,
            comment: None,
            at: T0,
        };
        assert!(store.set_feedback(id, &feedback).await.unwrap());
    }
    let mut groups = store
        .summary_aggregates(
            &TelemetryFilter {
                prompt_id: Some(prompt),
                ..Default::default()
            },
            SummaryGroup::Version,
        )
        .await
        .unwrap();
    groups.sort_by(|a, b| a.version.cmp(&b.version));
    assert_eq!(groups.len(), 2, "{groups:?}");
    let (one, two) = (&groups[0].group, &groups[1].group);
    assert_eq!(groups[0].version, "1.0.0");
    assert_eq!((one.count, one.error_count, one.blocked_count), (6, 1, 1));
    assert_eq!(one.prompt_tokens, 1 + 2 + 3 + 4 + 5 + 6);
    assert_eq!(one.completion_tokens, 12);
    // Latencies 10, 20, 30, 40, 100: mean 40, squared deviations 900 + 400 + 100 + 0 + 3600.
    assert_eq!(one.latency.n, 5);
    assert_eq!(one.latency.mean, 40.0);
    assert_eq!(one.latency.m2, 5000.0);
    // Type 7: p50 is the middle value; p95 at h = 4 × 0.95 = 3.8, between 40 and 100; p99 at
    // h = 3.96.
    let [p50, p95, p99] = one.latency_percentiles.unwrap();
    assert_eq!(p50, 30.0);
    assert!((p95 - 88.0).abs() < 1e-9, "{p95}");
    assert!((p99 - 97.6).abs() < 1e-9, "{p99}");
    // Feedback 1.0 and 0.5 (the blocked invocation's score counts).
    assert_eq!(
        (one.feedback.n, one.feedback.mean, one.feedback.m2),
        (2, 0.75, 0.125)
    );
    assert_eq!(groups[1].version, "2.0.0");
    assert_eq!((two.count, two.error_count, two.blocked_count), (2, 0, 0));
    assert_eq!(
        (two.latency.n, two.latency.mean, two.latency.m2),
        (2, 10.0, 50.0)
    );
    assert_eq!(two.latency_percentiles, Some([10.0, 14.5, 14.9]));
    assert_eq!((two.feedback.n, two.feedback.mean), (1, 0.0));

    // Filters apply before aggregation; a range without records has no group.
    let errors = store
        .summary_aggregates(
            &TelemetryFilter {
                prompt_id: Some(prompt),
                status: Some(InvocationStatus::Error),
                ..Default::default()
            },
            SummaryGroup::Version,
        )
        .await
        .unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].group.latency_percentiles, Some([100.0; 3]));
    let blocked = store
        .summary_aggregates(
            &TelemetryFilter {
                prompt_id: Some(prompt),
                status: Some(InvocationStatus::Blocked),
                ..Default::default()
            },
            SummaryGroup::Version,
        )
        .await
        .unwrap();
    assert_eq!(blocked[0].group.count, 1);
    assert_eq!(blocked[0].group.latency.n, 0);
    assert_eq!(blocked[0].group.latency_percentiles, None);
    let none = store
        .summary_aggregates(
            &TelemetryFilter {
                prompt_id: Some(prompt),
                start: Some(T0 + Duration::days(1)),
                ..Default::default()
            },
            SummaryGroup::Version,
        )
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
}

/// Issue 17, item 13: over thousands of records in several versions, the database's aggregates
/// give the summary and the comparison that the old in-memory computation gives on the same
/// records (percentiles bit for bit; means and intervals up to the summation order).
async fn summary_aggregates_over_many_rows_equal_the_in_memory_summary(backend: Backend) {
    use promptgate_core::stats::{self, Sample};
    let db = TestDb::new(backend).await;
    let store = &db.store;
    let prompt = Uuid::now_v7();
    // A deterministic spread of latencies (a linear congruential sequence), statuses and scores.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let versions = ["1.0.0", "1.1.0", "2.0.0-beta.1"];
    let mut records = Vec::new();
    for n in 0..6_000 {
        let r = next();
        let status = match r % 50 {
            0 => InvocationStatus::Blocked,
            1..=3 => InvocationStatus::Error,
            _ => InvocationStatus::Success,
        };
        let latency = 50.0 + (r % 100_000) as f64 / 37.0 + (n % 3) as f64 * 120.0;
        let mut record = sample(n, prompt, versions[n % 3], status, latency);
        // Some outputs checked against a schema (NULL elsewhere), most of them valid.
        record.schema_valid = (r % 4 != 0).then_some(r % 11 != 0);
        record.tool_call_count = u32::try_from(r % 3).unwrap();
        // Most calls priced (tiny dollar amounts, as real ones are), some not.
        record.cost_usd = (r % 5 != 0).then_some((r % 9_973) as f64 * 3.7e-9 + 1e-7);
        records.push(record);
    }
    for chunk in records.chunks(500) {
        store.insert_invocations(chunk).await.unwrap();
    }
    let mut samples: std::collections::BTreeMap<&str, Vec<Sample>> = Default::default();
    for (n, r) in records.iter().enumerate() {
        let feedback = (n % 7 == 0).then(|| (n % 5) as f64 / 4.0);
        if let Some(score) = feedback {
            let f = Feedback {
                score,
                comment: None,
                at: T0,
            };
            assert!(store.set_feedback(&r.id, &f).await.unwrap());
        }
        samples.entry(r.version.as_str()).or_default().push(Sample {
            latency_ms: r.latency_ms,
            status: r.status,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            feedback,
            schema_valid: r.schema_valid,
            cost_usd: r.cost_usd,
        });
    }
    let groups: std::collections::BTreeMap<String, stats::GroupAggregate> = store
        .summary_aggregates(
            &TelemetryFilter {
                prompt_id: Some(prompt),
                ..Default::default()
            },
            SummaryGroup::Version,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.version, v.group))
        .collect();
    assert_eq!(groups.len(), 3);
    let close = |a: f64, b: f64, what: &str| {
        assert!(
            (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
            "{what}: {a} vs {b}"
        );
    };
    let all = &samples;
    for (version, samples) in all {
        let from_db = stats::summarize_aggregate(&groups[*version]);
        let in_memory = stats::summarize(samples);
        assert_eq!(from_db.count, in_memory.count, "{version}");
        assert_eq!(from_db.error_count, in_memory.error_count, "{version}");
        assert_eq!(from_db.blocked_count, in_memory.blocked_count, "{version}");
        assert_eq!(from_db.error_rate, in_memory.error_rate, "{version}");
        assert_eq!(from_db.token_usage, in_memory.token_usage, "{version}");
        assert_eq!(from_db.schema_valid, in_memory.schema_valid, "{version}");
        assert!(from_db.schema_valid.unwrap().count > 1_000, "{version}");
        let (db_cost, mem_cost) = (from_db.cost.unwrap(), in_memory.cost.unwrap());
        assert_eq!(db_cost.count, mem_cost.count, "{version}");
        close(db_cost.total_usd, mem_cost.total_usd, "cost total");
        close(db_cost.mean_usd, mem_cost.mean_usd, "cost mean");
        let (db_ci, mem_ci) = (db_cost.mean_ci95.unwrap(), mem_cost.mean_ci95.unwrap());
        close(db_ci.0, mem_ci.0, "cost interval");
        close(db_ci.1, mem_ci.1, "cost interval");
        assert_eq!(
            from_db.feedback.count, in_memory.feedback.count,
            "{version}"
        );
        close(
            from_db.feedback.mean.unwrap(),
            in_memory.feedback.mean.unwrap(),
            "feedback mean",
        );
        let (db_latency, mem_latency) =
            (from_db.latency_ms.unwrap(), in_memory.latency_ms.unwrap());
        assert_eq!(
            (db_latency.p50, db_latency.p95, db_latency.p99),
            (mem_latency.p50, mem_latency.p95, mem_latency.p99),
            "{version}: percentiles bit for bit"
        );
        close(db_latency.mean, mem_latency.mean, "latency mean");
        if *version == "1.0.0" {
            continue;
        }
        let from_db = stats::compare_aggregates(&groups[*version], &groups["1.0.0"]);
        let in_memory = stats::compare(samples, &all["1.0.0"]);
        for (db, mem, what) in [
            (
                from_db.error_rate_diff,
                in_memory.error_rate_diff,
                "error rate",
            ),
            (
                from_db.mean_latency_ms_diff,
                in_memory.mean_latency_ms_diff,
                "latency",
            ),
            (
                from_db.feedback_mean_diff,
                in_memory.feedback_mean_diff,
                "feedback",
            ),
            (
                from_db.schema_valid_rate_diff,
                in_memory.schema_valid_rate_diff,
                "schema-valid rate",
            ),
            (
                from_db.cost_mean_usd_diff,
                in_memory.cost_mean_usd_diff,
                "cost",
            ),
        ] {
            let (db, mem) = (db.unwrap(), mem.unwrap());
            close(db.estimate, mem.estimate, what);
            close(db.ci95.0, mem.ci95.0, what);
            close(db.ci95.1, mem.ci95.1, what);
            assert_eq!(db.significant, mem.significant, "{version} {what}");
        }
    }
}

/// Issue 21: the cost column round-trips (NULL for an unpriced call, 0 kept apart from NULL),
/// and the per-version cost aggregates are exactly the sums and moments computed by hand.
async fn cost_round_trips_and_its_aggregates_equal_the_figures_computed_by_hand(backend: Backend) {
    use InvocationStatus::{Blocked, Success};
    let db = TestDb::new(backend).await;
    let store = &db.store;
    let prompt = Uuid::now_v7();
    let priced = |n, version, status, cost: Option<f64>| InvocationRecord {
        cost_usd: cost,
        ..sample(n, prompt, version, status, 10.0)
    };
    // 1.0.0: 0.25, 0.5, 0.75 dollars and a blocked call at 0, plus one unpriced call.
    // 2.0.0: unpriced only.
    let records = vec![
        priced(1, "1.0.0", Success, Some(0.25)),
        priced(2, "1.0.0", Success, Some(0.5)),
        priced(3, "1.0.0", Success, Some(0.75)),
        priced(4, "1.0.0", Blocked, Some(0.0)),
        priced(5, "1.0.0", Success, None),
        priced(6, "2.0.0", Success, None),
    ];
    store.insert_invocations(&records).await.unwrap();
    let stored = store
        .list_invocations(&TelemetryFilter::default(), None, 10)
        .await
        .unwrap();
    let costs: Vec<_> = stored.iter().map(|s| s.record.cost_usd).collect();
    assert_eq!(
        costs,
        [Some(0.25), Some(0.5), Some(0.75), Some(0.0), None, None]
    );
    let mut groups = store
        .summary_aggregates(
            &TelemetryFilter {
                prompt_id: Some(prompt),
                ..Default::default()
            },
            SummaryGroup::Version,
        )
        .await
        .unwrap();
    groups.sort_by(|a, b| a.version.cmp(&b.version));
    let (one, two) = (&groups[0].group, &groups[1].group);
    // Four costs summing to 1.5; mean 0.375; squared deviations 0.125² + 0.125² + 0.375² +
    // 0.375² = 0.3125 (all exact in binary).
    assert_eq!(one.cost.n, 4);
    assert_eq!(one.cost_total_usd, 1.5);
    assert_eq!(one.cost.mean, 0.375);
    assert_eq!(one.cost.m2, 0.3125);
    assert_eq!((two.cost.n, two.cost_total_usd), (0, 0.0));
    let summary = promptgate_core::stats::summarize_aggregate(one);
    let cost = summary.cost.unwrap();
    assert_eq!((cost.count, cost.total_usd, cost.mean_usd), (4, 1.5, 0.375));
    // s² = 0.3125 / 3, s/√4 = √(0.3125 / 12) = 0.161374306, t(0.975, 3) = 3.182446305:
    // half width 0.513565064.
    let (low, high) = cost.mean_ci95.unwrap();
    assert!((low - (0.375 - 0.513_565_064)).abs() < 1e-8, "{low}");
    assert!((high - (0.375 + 0.513_565_064)).abs() < 1e-8, "{high}");
    assert_eq!(promptgate_core::stats::summarize_aggregate(two).cost, None);
}

/// Issue 17, item 12: a feedback write applies only while the feedback is the one the caller
/// read, with its audit entry in the same transaction.
async fn feedback_is_replaced_by_compare_and_set_with_its_audit_entry(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    let prompt = Uuid::now_v7();
    store
        .insert_invocations(&[record(1, prompt, InvocationStatus::Success)])
        .await
        .unwrap();
    let state = store.feedback_state("inv-000001").await.unwrap().unwrap();
    assert_eq!(state.client_id, "client");
    assert_eq!(state.prompt_id, prompt);
    assert_eq!(state.feedback, None);
    assert!(store.feedback_state("inv-missing").await.unwrap().is_none());

    let first = Feedback {
        score: 1.0,
        comment: Some("good".to_owned()),
        at: T0,
    };
    assert!(
        store
            .replace_feedback("inv-000001", None, &first, None)
            .await
            .unwrap()
    );
    // A second writer that read "no feedback" loses: nothing is overwritten silently.
    let racer = Feedback {
        score: 0.0,
        comment: None,
        at: T0 + Duration::seconds(1),
    };
    assert!(
        !store
            .replace_feedback("inv-000001", None, &racer, None)
            .await
            .unwrap()
    );
    let state = store.feedback_state("inv-000001").await.unwrap().unwrap();
    assert_eq!(state.feedback.as_ref(), Some(&first));
    // Replacing what it read succeeds, with the entry.
    let audit = promptgate_audit::AuditDraft::new(
        time::OffsetDateTime::now_utc(),
        "client",
        promptgate_audit::action::FEEDBACK_REPLACED,
        Some(prompt),
        serde_json::json!({"responseId": "inv-000001"}),
    );
    assert!(
        store
            .replace_feedback("inv-000001", Some(&first), &racer, Some(&audit))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .feedback_state("inv-000001")
            .await
            .unwrap()
            .unwrap()
            .feedback,
        Some(racer.clone())
    );
    assert_eq!(store.audit_size().await.unwrap(), 1);
    // A stale expectation changes nothing, and appends no entry.
    assert!(
        !store
            .replace_feedback("inv-000001", Some(&first), &first, Some(&audit))
            .await
            .unwrap()
    );
    assert_eq!(store.audit_size().await.unwrap(), 1);
    assert!(
        !store
            .replace_feedback("inv-missing", None, &first, None)
            .await
            .unwrap()
    );
}

/// Issue 19: an invocation's label and variable names are stored and read back as given, and a
/// label filter selects the same records in a listing (through every page) and in a summary
/// (its counts and its percentiles), alone or with the other filters.
async fn label_and_variable_names_round_trip_and_the_label_filters_listing_and_summary(
    backend: Backend,
) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    let prompt = Uuid::now_v7();
    // 0, 3, 6, … production; 1, 4, 7, … staging; 2, 5, 8, … no label (a tutorial client).
    let records: Vec<_> = (0..12)
        .map(|n| InvocationRecord {
            label: match n % 3 {
                0 => Some("production".to_owned()),
                1 => Some("staging".to_owned()),
                _ => None,
            },
            variable_names: match n % 4 {
                0 => Vec::new(),
                1 => vec!["name".to_owned()],
                _ => vec![
                    "customer.tier".to_owned(),
                    "name".to_owned(),
                    "ünïcode \"q\"".to_owned(),
                ],
            },
            ..sample(
                n,
                prompt,
                "1.0.0",
                InvocationStatus::Success,
                10.0 * n as f64,
            )
        })
        .collect();
    store.insert_invocations(&records).await.unwrap();
    store
        .insert_invocations(&[record(99, Uuid::now_v7(), InvocationStatus::Error)])
        .await
        .unwrap();

    let all = store
        .list_invocations(
            &TelemetryFilter {
                prompt_id: Some(prompt),
                ..Default::default()
            },
            None,
            100,
        )
        .await
        .unwrap();
    let read: Vec<_> = all.into_iter().map(|r| r.record).collect();
    assert_eq!(read, records, "label and variable names round-trip");

    // Paged two at a time: the label filter and the cursor are separate parameters.
    let production = TelemetryFilter {
        label: Some("production".to_owned()),
        ..Default::default()
    };
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_invocations(&production, after, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        assert!(page.len() <= 2);
        ids.extend(page.into_iter().map(|r| r.record.id));
    }
    assert_eq!(
        ids,
        ["inv-000000", "inv-000003", "inv-000006", "inv-000009"]
    );
    let staging_errors = TelemetryFilter {
        label: Some("staging".to_owned()),
        status: Some(InvocationStatus::Error),
        ..Default::default()
    };
    assert!(
        store
            .list_invocations(&staging_errors, None, 100)
            .await
            .unwrap()
            .is_empty(),
        "the label combines with the other filters"
    );
    let unknown = TelemetryFilter {
        label: Some("canary".to_owned()),
        ..Default::default()
    };
    assert!(
        store
            .list_invocations(&unknown, None, 100)
            .await
            .unwrap()
            .is_empty()
    );

    // The summary counts the labelled records only, and its percentiles are theirs: latencies
    // 0, 30, 60, 90 (type 7: p50 = 45).
    let summary = store
        .summary_aggregates(&production, SummaryGroup::Version)
        .await
        .unwrap();
    assert_eq!(summary.len(), 1, "{summary:?}");
    let group = &summary[0].group;
    assert_eq!(group.count, 4);
    assert_eq!(group.latency.n, 4);
    assert_eq!(group.latency.mean, 45.0);
    assert_eq!(group.latency_percentiles.unwrap()[0], 45.0);
    let staging = store
        .summary_aggregates(
            &TelemetryFilter {
                prompt_id: Some(prompt),
                label: Some("staging".to_owned()),
                ..Default::default()
            },
            SummaryGroup::Version,
        )
        .await
        .unwrap();
    assert_eq!(staging[0].group.count, 4);
    assert_eq!(staging[0].group.latency.mean, 55.0);
    assert!(
        store
            .summary_aggregates(&unknown, SummaryGroup::Version)
            .await
            .unwrap()
            .is_empty()
    );
    // Without a label filter every record counts, labelled or not.
    let everything = store
        .summary_aggregates(
            &TelemetryFilter {
                prompt_id: Some(prompt),
                ..Default::default()
            },
            SummaryGroup::Version,
        )
        .await
        .unwrap();
    assert_eq!(everything[0].group.count, 12);
}

async fn a_stored_variable_names_column_that_is_not_a_list_is_corrupt(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.store
        .insert_invocations(&[record(1, Uuid::now_v7(), InvocationStatus::Success)])
        .await
        .unwrap();
    let mut raw = db.raw().await;
    raw.execute("UPDATE invocations SET variable_names = '{\"name\": 1}'")
        .await
        .unwrap();
    raw.close().await;
    let err = db
        .store
        .list_invocations(&TelemetryFilter::default(), None, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, promptgate_store::StoreError::Corrupt(m) if m.starts_with("variable names")),
        "{err:?}"
    );
}
