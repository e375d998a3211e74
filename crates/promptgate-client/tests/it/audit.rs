//! The audit log through the SDK against a real gateway: every call, and the offline checks
//! applied to what a real gateway answers (so the SDK and the server agree on every byte).

use futures_util::TryStreamExt;
use promptgate_client::api::{AuditEntry, AuditEntryRequest};
use promptgate_client::audit::{
    AuditCheckError, PublicKey, check_consistency, check_inclusion, verify_entries,
    verify_signed_head,
};
use promptgate_client::{AuditQuery, Client, Error, PromptDraft};
use serde_json::json;

use crate::gateway::TestGateway;

fn entry(action: &str, n: u64) -> AuditEntryRequest {
    AuditEntryRequest {
        action: Some(action.to_owned()),
        details: Some(json!({"n": n, "ratio": 0.5, "text": "é \u{1F600}"})),
        compliance_status: Some("VALIDATED".to_owned()),
        metadata: Some(json!({"sourceSystem": "sdk-test"})),
        timestamp: Some("2026-11-27T04:15:39Z".to_owned()),
        ..AuditEntryRequest::default()
    }
}

async fn all_entries(client: &Client, query: &AuditQuery) -> Vec<AuditEntry> {
    client.audit_entries(query).try_collect().await.unwrap()
}

#[tokio::test]
async fn appended_entries_are_read_back_listed_and_filtered() {
    let gw = TestGateway::start().await;
    let admin = gw.admin();
    let first = admin.append_audit_entry(&entry("CREATE", 1)).await.unwrap();
    assert_eq!(first.actor, gw.admin_id);
    assert_eq!(first.action, "CREATE");
    assert_eq!(first.compliance_status.as_deref(), Some("VALIDATED"));
    assert!(first.client_timestamp.is_some());
    assert_eq!(admin.audit_entry(first.sequence).await.unwrap(), first);
    for n in 2..=5 {
        admin.append_audit_entry(&entry("REVIEW", n)).await.unwrap();
    }

    // Every page is read, in sequence order, whatever the page size.
    let everything = all_entries(&admin, &AuditQuery::default()).await;
    let paged = all_entries(
        &admin,
        &AuditQuery {
            page_size: Some(2),
            ..AuditQuery::default()
        },
    )
    .await;
    assert_eq!(paged, everything);
    let sequences: Vec<u64> = everything.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=everything.len() as u64).collect::<Vec<_>>());

    let reviews = all_entries(
        &admin,
        &AuditQuery {
            action: Some("REVIEW".into()),
            actor: Some(gw.admin_id.clone()),
            page_size: Some(3),
            ..AuditQuery::default()
        },
    )
    .await;
    assert_eq!(reviews.len(), 4);
    assert!(reviews.iter().all(|e| e.action == "REVIEW"));
}

#[tokio::test]
async fn a_real_log_verifies_offline_with_its_proofs_and_signed_heads() {
    let gw = TestGateway::start().await;
    let admin = gw.admin();
    admin
        .create_prompt(&PromptDraft::new("audited", "builtin/echo").system_prompt("Be brief."))
        .await
        .unwrap();
    admin.append_audit_entry(&entry("CREATE", 1)).await.unwrap();
    let key = PublicKey::from_wire(&admin.audit_public_key().await.unwrap()).unwrap();
    let old = admin.audit_checkpoint().await.unwrap();
    verify_signed_head(&old, &key).unwrap();

    for n in 2..=6 {
        admin.append_audit_entry(&entry("CREATE", n)).await.unwrap();
    }
    let new = admin.audit_checkpoint().await.unwrap();
    verify_signed_head(&new, &key).unwrap();
    assert!(new.tree_size >= old.tree_size + 5);

    // Every entry is in the new tree, and every entry of the old tree is in the old one.
    let entries = all_entries(&admin, &AuditQuery::default()).await;
    for e in &entries {
        let proof = admin
            .inclusion_proof(e.sequence, Some(new.tree_size))
            .await
            .unwrap();
        check_inclusion(e, &proof, &new).unwrap();
        if e.sequence <= old.tree_size {
            let proof = admin
                .inclusion_proof(e.sequence, Some(old.tree_size))
                .await
                .unwrap();
            check_inclusion(e, &proof, &old).unwrap();
        }
    }
    // The current tree is the default size.
    let latest = admin.inclusion_proof(1, None).await.unwrap();
    assert!(latest.tree_size >= new.tree_size);

    let proof = admin
        .consistency_proof(old.tree_size, Some(new.tree_size))
        .await
        .unwrap();
    check_consistency(&proof, &old, &new).unwrap();
    let to_now = admin.consistency_proof(old.tree_size, None).await.unwrap();
    assert_eq!(to_now.from, old.tree_size);

    let report = verify_entries(&entries, Some(&new), Some(&key));
    assert!(report.is_valid(), "{:?}", report.problems);
    assert_eq!(report.signatures_checked, 1);
    let gateway_says = admin.verify_audit_log().await.unwrap();
    assert!(gateway_says.valid);
    assert_eq!(gateway_says.root_hash, report.root_hash);
    assert_eq!(gateway_says.head_hash, report.head_hash);

    // What the gateway serves, altered on the way, is refused.
    let mut altered = entries[1].clone();
    altered.details = json!({"n": "altered"});
    let proof = admin.inclusion_proof(2, Some(new.tree_size)).await.unwrap();
    assert_eq!(
        check_inclusion(&altered, &proof, &new),
        Err(AuditCheckError::EntryHashMismatch { sequence: 2 })
    );
    let mut tampered = entries.clone();
    tampered[1] = altered;
    assert_eq!(
        verify_entries(&tampered, Some(&new), Some(&key)).first_invalid_sequence(),
        Some(2)
    );
}

#[tokio::test]
async fn audit_calls_report_typed_errors() {
    let gw = TestGateway::start().await;
    let admin = gw.admin();
    match admin.audit_entry(9_999).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    let size = admin.audit_checkpoint().await.unwrap().tree_size;
    match admin.inclusion_proof(1, Some(size + 10)).await {
        Err(Error::Api { status: 400, .. }) => {}
        other => panic!("expected a 400, got {other:?}"),
    }
    match admin.consistency_proof(size + 10, None).await {
        Err(Error::Api { status: 400, .. }) => {}
        other => panic!("expected a 400, got {other:?}"),
    }
    // The gateway's own action names are reserved.
    match admin.append_audit_entry(&entry("PROMPT_CREATED", 1)).await {
        Err(Error::Api { status: 400, .. }) => {}
        other => panic!("expected a 400, got {other:?}"),
    }

    // Reading the log needs ai:audit:read.
    let created = admin
        .create_client("writer", &["ai:gateway:write"])
        .await
        .unwrap();
    let writer = gw.client(&created.client_id, &created.client_secret.unwrap());
    writer
        .append_audit_entry(&entry("CREATE", 1))
        .await
        .unwrap();
    match writer.audit_checkpoint().await {
        Err(Error::MissingScope { required }) => {
            assert_eq!(required, vec!["ai:audit:read"]);
        }
        other => panic!("expected MissingScope, got {other:?}"),
    }
    match writer
        .audit_entries(&AuditQuery::default())
        .try_collect::<Vec<_>>()
        .await
    {
        Err(Error::MissingScope { .. }) => {}
        other => panic!("expected MissingScope, got {other:?}"),
    }
}
