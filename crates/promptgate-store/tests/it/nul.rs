//! U+0000 in caller-supplied text: PostgreSQL's text cannot hold it, so both stores store it as
//! U+FFFD and look keys up through the same mapping. Nothing here may fail (a failed telemetry
//! batch would be retried forever; a failed request would be a 500).

use std::collections::BTreeMap;

use promptgate_audit::{AuditDraft, ChainVerifier};
use promptgate_core::invocation::{InvocationRecord, InvocationStatus};
use promptgate_store::{AuditFilter, Feedback, PromptFilter, SummaryGroup, TelemetryFilter};
use serde_json::json;
use uuid::Uuid;

use crate::fixtures::{Backend, T0, TestDb, audit_draft, client, create};

for_each_store!(
    nul_in_invocation_records_and_feedback_is_stored_as_a_replacement_character,
    nul_in_lookups_and_filters_finds_nothing_or_the_mapped_row,
    nul_in_audit_actor_and_action_keeps_the_chain_and_the_exact_body,
);

const REPLACED: &str = "a\u{FFFD}b";

fn record(id: &str) -> InvocationRecord {
    InvocationRecord {
        id: id.to_owned(),
        timestamp: T0,
        prompt_id: Uuid::nil(),
        version: "1.0.0".to_owned(),
        model: "echo\0".to_owned(),
        status: InvocationStatus::Error,
        error_code: Some("upstream\0error".to_owned()),
        latency_ms: 1.0,
        upstream_latency_ms: None,
        time_to_first_token_ms: None,
        prompt_tokens: 1,
        completion_tokens: 1,
        session_id: Some("a\0b".to_owned()),
        client_id: "client\0".to_owned(),
        metadata: BTreeMap::from([("ke\0y".to_owned(), "va\0lue".to_owned())]),
        label: Some("a\0b".to_owned()),
        variable_names: vec!["na\0me".to_owned()],
        schema_valid: None,
        tool_call_count: 0,
        api_key_id: None,
        cost_usd: None,
        endpoint_ref: "openai/gpt-4o".to_owned(),
        fallback_attempts: Vec::new(),
    }
}

async fn nul_in_invocation_records_and_feedback_is_stored_as_a_replacement_character(
    backend: Backend,
) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    store
        .insert_invocations(&[record("inv-1"), record("inv-\0two")])
        .await
        .unwrap();
    let stored = store
        .list_invocations(&TelemetryFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    let first = &stored[0].record;
    assert_eq!(first.session_id.as_deref(), Some(REPLACED));
    assert_eq!(first.model, "echo\u{FFFD}");
    assert_eq!(first.client_id, "client\u{FFFD}");
    assert_eq!(first.error_code.as_deref(), Some("upstream\u{FFFD}error"));
    // Metadata is stored as JSON text, where U+0000 is the escape `\u0000`: kept exactly.
    assert_eq!(first.metadata, record("inv-1").metadata);
    assert_eq!(first.label.as_deref(), Some(REPLACED));
    // Variable names are JSON text too: kept exactly.
    assert_eq!(first.variable_names, record("inv-1").variable_names);
    assert_eq!(stored[1].record.id, "inv-\u{FFFD}two");
    // The same batch again (a retry after a lost commit) stays one copy of each.
    store
        .insert_invocations(&[record("inv-1"), record("inv-\0two")])
        .await
        .unwrap();
    assert_eq!(store.last_invocation_seq().await.unwrap(), stored[1].seq);

    let feedback = Feedback {
        score: 1.0,
        comment: Some("great\0".to_owned()),
        at: T0,
    };
    assert!(store.set_feedback("inv-\0two", &feedback).await.unwrap());
    let stored = store
        .list_invocations(&TelemetryFilter::default(), None, 10)
        .await
        .unwrap();
    let given = stored[1].feedback.as_ref().unwrap();
    assert_eq!(given.comment.as_deref(), Some("great\u{FFFD}"));
}

async fn nul_in_lookups_and_filters_finds_nothing_or_the_mapped_row(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    create(&**store, "support_agent").await;
    assert_eq!(store.get_client("ad\0min").await.unwrap(), None);
    assert_eq!(
        store
            .disable_client("ad\0min", T0, &audit_draft())
            .await
            .unwrap(),
        None
    );
    let mut named = client("ad\0min");
    named.name = "the\0admin".to_owned();
    store.insert_client(&named, &audit_draft()).await.unwrap();
    let found = store.get_client("ad\0min").await.unwrap().unwrap();
    assert_eq!(found.id, "ad\u{FFFD}min");
    assert_eq!(found.name, "the\u{FFFD}admin");
    for name in ["support\0agent", "support\0*"] {
        let listed = store
            .list_prompts(
                &PromptFilter {
                    name: Some(name.to_owned()),
                    status: None,
                },
                None,
                10,
            )
            .await
            .unwrap();
        assert!(listed.is_empty(), "{name:?}");
    }
    let filter = TelemetryFilter {
        version: Some("1.0\0".to_owned()),
        ..TelemetryFilter::default()
    };
    assert!(
        store
            .list_invocations(&filter, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .summary_aggregates(&filter, SummaryGroup::Version)
            .await
            .unwrap()
            .is_empty()
    );
    // A label filter maps its text as the stored label was mapped: it finds the record.
    store.insert_invocations(&[record("inv-1")]).await.unwrap();
    let by_label = TelemetryFilter {
        label: Some("a\0b".to_owned()),
        ..TelemetryFilter::default()
    };
    assert_eq!(
        store
            .list_invocations(&by_label, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .summary_aggregates(&by_label, SummaryGroup::Version)
            .await
            .unwrap()[0]
            .group
            .count,
        1
    );
    let feedback = Feedback {
        score: 0.0,
        comment: None,
        at: T0,
    };
    assert!(!store.set_feedback("inv-\0", &feedback).await.unwrap());
}

async fn nul_in_audit_actor_and_action_keeps_the_chain_and_the_exact_body(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    let draft = AuditDraft::new(
        time::OffsetDateTime::now_utc(),
        "act\0or",
        "NOTE\0",
        None,
        json!({"text": "x\0y"}),
    );
    let sealed = store
        .append_audit(std::slice::from_ref(&draft))
        .await
        .unwrap();
    let listed = store
        .list_audit(&AuditFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    // The hashed body is canonical JSON, where U+0000 is escaped: it is stored byte for byte.
    assert_eq!(listed[0].body, sealed[0].body);
    assert!(listed[0].body.contains("\\u0000"), "{}", listed[0].body);
    let mut verifier = ChainVerifier::new();
    verifier.push(&listed[0].to_value());
    assert!(verifier.report().is_valid());
    // The filter columns hold the mapped text, and filters map theirs the same way.
    let by_action = store
        .list_audit(
            &AuditFilter {
                action: Some("NOTE\0".to_owned()),
                actor: Some("act\0or".to_owned()),
                ..AuditFilter::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(by_action.len(), 1);
    assert_eq!(
        store
            .last_audit_with_action("NOTE\0")
            .await
            .unwrap()
            .map(|e| e.sequence),
        Some(1)
    );
}
