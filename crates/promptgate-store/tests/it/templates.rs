//! Issue 19: a version's template turns and variables schema, and a prompt's labels, stored and
//! read back exactly on every path that decodes them (one version, all versions, a listing page's
//! default version; one prompt, a listing), written by `update_prompt` under the same optimistic
//! revision as every other change; and stored values that cannot be decoded reported as corrupt.

use promptgate_core::label::{LabelName, Labels};
use promptgate_core::prompt::{TemplateMessage, TemplateRole};
use promptgate_core::{PromptVersion, TrafficSplit};
use promptgate_store::{PromptFilter, PromptUpdate, StoreError};
use time::Duration;
use uuid::Uuid;

use crate::fixtures::{Backend, T0, TestDb, audit_draft, create, label, prompt, version};

for_each_store!(
    a_version_with_template_messages_and_a_schema_round_trips,
    a_version_without_templates_reads_back_as_empty_and_none,
    labels_written_by_update_round_trip_and_a_stale_revision_still_conflicts,
    labels_are_kept_by_an_update_without_them_and_a_created_prompt_keeps_its_own,
    undecodable_templates_schemas_and_labels_are_corrupt,
);

/// A schema as the gateway stores it: compact JSON text, with keys in the caller's order (not
/// sorted), so that a store that re-serialised it would be caught.
const SCHEMA: &str = r#"{"type":"object","required":["name"],"properties":{"tier":{"type":"string","enum":["free","pro"],"default":"free"},"name":{"type":"string","maxLength":40}},"additionalProperties":false}"#;

/// A version whose system prompt, template turns and schema all carry something a lossy store
/// would lose: placeholders with and without spaces, an escape, quotes, a newline, non-ASCII.
fn templated(prompt_id: Uuid, text: &str) -> PromptVersion {
    let mut v = version(
        prompt_id,
        text,
        "You are the agent of {{company}}; the customer is on the {{ customer.tier }} plan.",
    );
    v.settings.template_messages = vec![
        TemplateMessage {
            role: TemplateRole::User,
            content: "My name is {{name}}.\nSay \"hi\" — \\{{not a placeholder}} ✓".to_owned(),
        },
        TemplateMessage {
            role: TemplateRole::Assistant,
            content: "Hello {{ name }}!".to_owned(),
        },
        TemplateMessage {
            role: TemplateRole::User,
            content: String::new(),
        },
    ];
    v.settings.variables_schema = Some(SCHEMA.to_owned());
    v
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(name, v)| (LabelName::parse("label", name).unwrap(), label(v)))
        .collect()
}

/// An update of prompt `id` from `from` to `from + 1` that changes nothing but what is set
/// afterwards.
fn update(id: Uuid, from: i64) -> PromptUpdate {
    PromptUpdate {
        id,
        expected_revision: from,
        new_revision: from + 1,
        updated_at: T0 + Duration::seconds(from),
        new_version: None,
        traffic: None,
        status: None,
        chat_completions: None,
        labels: None,
        audit: vec![audit_draft()],
    }
}

async fn a_version_with_template_messages_and_a_schema_round_trips(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &*db.store;
    // Through create_prompt (the first version) …
    let id = Uuid::now_v7();
    let first = templated(id, "1.0.0");
    store
        .create_prompt(&prompt(id, "concierge"), &first, &[audit_draft()])
        .await
        .unwrap();
    assert_eq!(
        store.get_version(id, &label("1.0.0")).await.unwrap(),
        Some(first.clone())
    );
    // … and through update_prompt (a later one).
    let mut second = templated(id, "2.0.0");
    second.settings.template_messages.truncate(1);
    second.settings.variables_schema = Some(r#"{"type":"object"}"#.to_owned());
    store
        .update_prompt(&PromptUpdate {
            new_version: Some(second.clone()),
            traffic: Some(TrafficSplit::single(label("2.0.0"))),
            ..update(id, 1)
        })
        .await
        .unwrap();
    assert_eq!(
        store.get_version(id, &label("2.0.0")).await.unwrap(),
        Some(second.clone())
    );
    let mut all = store.list_versions(id).await.unwrap();
    all.sort_by(|a, b| a.version.cmp(&b.version));
    assert_eq!(all, vec![first, second.clone()]);
    // A listing page reads the default versions in a statement of its own.
    let page = store
        .list_prompt_listings(&PromptFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].default_version, Some(second));

    // The columns hold what docs/templates.md and the migration say: JSON a person can read,
    // and the schema as given.
    let mut raw = db.raw().await;
    let schema_kept = raw
        .count(
            "SELECT COUNT(*) FROM prompt_versions WHERE version = '1.0.0' \
             AND variables_schema = $1",
            &[SCHEMA],
        )
        .await;
    let roles = raw
        .count(
            "SELECT COUNT(*) FROM prompt_versions WHERE version = '1.0.0' \
             AND template_messages LIKE '[{%\"role\":\"user\"%'",
            &[],
        )
        .await;
    raw.close().await;
    assert_eq!((schema_kept, roles), (1, 1));
}

async fn a_version_without_templates_reads_back_as_empty_and_none(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (p, v) = create(&*db.store, "plain").await;
    let stored = db
        .store
        .get_version(p.id, &label("1.0.0"))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.settings.template_messages.is_empty());
    assert_eq!(stored.settings.variables_schema, None);
    assert_eq!(stored, v);
    // Stored as the migration's defaults would have it: an empty array and NULL.
    let mut raw = db.raw().await;
    let defaults = raw
        .count(
            "SELECT COUNT(*) FROM prompt_versions \
             WHERE template_messages = '[]' AND variables_schema IS NULL",
            &[],
        )
        .await;
    raw.close().await;
    assert_eq!(defaults, 1);
}

async fn labels_written_by_update_round_trip_and_a_stale_revision_still_conflicts(
    backend: Backend,
) {
    let db = TestDb::new(backend).await;
    let store = &*db.store;
    let (p, _) = create(store, "support_agent").await;
    create(store, "other").await;
    assert!(
        store
            .get_prompt(p.id)
            .await
            .unwrap()
            .unwrap()
            .labels
            .is_empty()
    );

    // A new version and two labels in one change.
    let both = labels(&[("production", "1.0.0"), ("staging", "2.0.0")]);
    store
        .update_prompt(&PromptUpdate {
            new_version: Some(version(p.id, "2.0.0", "You are terse.")),
            labels: Some(both.clone()),
            ..update(p.id, 1)
        })
        .await
        .unwrap();
    let after = store.get_prompt(p.id).await.unwrap().unwrap();
    assert_eq!(after.labels, both);
    assert_eq!(after.revision, 2);
    // Every decoding path carries them: a listing of prompts and a listing page.
    let listed = store
        .list_prompts(&PromptFilter::default(), None, 10)
        .await
        .unwrap();
    let listed = listed.iter().find(|l| l.id == p.id).unwrap();
    assert_eq!(listed.labels, both);
    let page = store
        .list_prompt_listings(&PromptFilter::default(), None, 10)
        .await
        .unwrap();
    let listing = page.iter().find(|l| l.prompt.id == p.id).unwrap();
    assert_eq!(listing.prompt.labels, both);
    let other = page.iter().find(|l| l.prompt.id != p.id).unwrap();
    assert!(
        other.prompt.labels.is_empty(),
        "labels belong to one prompt"
    );

    // Moving one label is a change like any other: the next revision.
    let moved = labels(&[("production", "2.0.0"), ("staging", "2.0.0")]);
    store
        .update_prompt(&PromptUpdate {
            labels: Some(moved.clone()),
            ..update(p.id, 2)
        })
        .await
        .unwrap();
    let before_stale = store.get_prompt(p.id).await.unwrap().unwrap();
    assert_eq!(before_stale.labels, moved);
    assert_eq!(before_stale.revision, 3);
    let audit_before = store.audit_size().await.unwrap();

    // A move computed from revision 2 (someone else moved a label meanwhile) is refused, and
    // writes nothing: neither labels nor revision nor the audit entry.
    let err = store
        .update_prompt(&PromptUpdate {
            labels: Some(labels(&[("production", "1.0.0")])),
            ..update(p.id, 2)
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::StaleRevision),
        "expected StaleRevision, got {err:?}"
    );
    assert_eq!(store.get_prompt(p.id).await.unwrap().unwrap(), before_stale);
    assert_eq!(store.audit_size().await.unwrap(), audit_before);

    // Deleting the last labels leaves an empty set, not the old one.
    store
        .update_prompt(&PromptUpdate {
            labels: Some(Labels::new()),
            ..update(p.id, 3)
        })
        .await
        .unwrap();
    assert!(
        store
            .get_prompt(p.id)
            .await
            .unwrap()
            .unwrap()
            .labels
            .is_empty()
    );
    // Labels of an unknown prompt: not found, as any update.
    let err = store
        .update_prompt(&PromptUpdate {
            labels: Some(both),
            ..update(Uuid::now_v7(), 1)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

async fn labels_are_kept_by_an_update_without_them_and_a_created_prompt_keeps_its_own(
    backend: Backend,
) {
    let db = TestDb::new(backend).await;
    let store = &*db.store;
    // A prompt created with labels (an import, say) is stored with them.
    let id = Uuid::now_v7();
    let mut p = prompt(id, "imported");
    p.labels = labels(&[("production", "1.0.0")]);
    store
        .create_prompt(&p, &version(id, "1.0.0", "x"), &[audit_draft()])
        .await
        .unwrap();
    assert_eq!(store.get_prompt(id).await.unwrap(), Some(p.clone()));
    // An update that does not touch labels (`labels: None`) keeps them.
    store
        .update_prompt(&PromptUpdate {
            status: Some(promptgate_core::PromptStatus::Archived),
            ..update(id, 1)
        })
        .await
        .unwrap();
    let after = store.get_prompt(id).await.unwrap().unwrap();
    assert_eq!(after.status, promptgate_core::PromptStatus::Archived);
    assert_eq!(after.labels, p.labels);
}

async fn undecodable_templates_schemas_and_labels_are_corrupt(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &*db.store;
    let (p, _) = create(store, "support_agent").await;
    let id = p.id.to_string();
    let mut raw = db.raw().await;
    // Labels whose name is not a label name (as a hand edit might leave them).
    raw.execute_with(
        "UPDATE prompts SET labels = '{\"Production\":\"1.0.0\"}' \
         WHERE CAST(id AS TEXT) = $1",
        &[&id],
    )
    .await
    .unwrap();
    // Versions are immutable, so bad ones are inserted whole: a turn with an unknown role, and
    // a schema that is not a JSON object.
    let insert = match backend {
        Backend::Sqlite => {
            "INSERT INTO prompt_versions (prompt_id, version, model_endpoint_ref, system_prompt, \
             temperature, safety_guardrails, few_shot_examples, system_prompt_tokens, tokenizer, \
             created_at, created_by, template_messages, variables_schema) \
             VALUES ($1, $2, 'openai/gpt-4o-mini', 'x', 0.2, \
             '{\"contentFiltering\":[],\"maxTokens\":null,\"blockedCategories\":[]}', '[]', 1, \
             'o200k_base', 0, 'mallory', $3, $4)"
        }
        Backend::Postgres => {
            "INSERT INTO prompt_versions (prompt_id, version, model_endpoint_ref, system_prompt, \
             temperature, safety_guardrails, few_shot_examples, system_prompt_tokens, tokenizer, \
             created_at, created_by, template_messages, variables_schema) \
             VALUES ($1::uuid, $2, 'openai/gpt-4o-mini', 'x', 0.2, \
             '{\"contentFiltering\":[],\"maxTokens\":null,\"blockedCategories\":[]}', '[]', 1, \
             'o200k_base', 0, 'mallory', $3, $4)"
        }
    };
    raw.execute_with(
        insert,
        &[&id, "2.0.0", r#"[{"role":"system","content":"x"}]"#, "{}"],
    )
    .await
    .unwrap();
    raw.execute_with(insert, &[&id, "3.0.0", "[]", "[1, 2]"])
        .await
        .unwrap();
    raw.close().await;

    let corrupt = |result: Result<_, StoreError>, what: &str| match result {
        Err(StoreError::Corrupt(message)) => assert!(
            message.starts_with(what),
            "{what}: the message names something else: {message}"
        ),
        Err(other) => panic!("{what}: expected Corrupt, got {other:?}"),
        Ok(_) => panic!("{what}: a corrupt value was decoded"),
    };
    corrupt(store.get_prompt(p.id).await.map(drop), "labels");
    corrupt(
        store
            .list_prompts(&PromptFilter::default(), None, 10)
            .await
            .map(drop),
        "labels",
    );
    corrupt(
        store.get_version(p.id, &label("2.0.0")).await.map(drop),
        "template messages",
    );
    corrupt(
        store.get_version(p.id, &label("3.0.0")).await.map(drop),
        "variables schema",
    );
    assert!(store.list_versions(p.id).await.is_err());
}
