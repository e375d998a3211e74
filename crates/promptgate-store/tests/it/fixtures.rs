//! Builders for stored values and a store in a fresh temp dir.

use promptgate_core::{
    Prompt, PromptStatus, PromptVersion, SafetyGuardrails, ScopeSet, TokenizerKind, TrafficSplit,
    VersionLabel, VersionSettings,
};
use promptgate_store::{Client, SqliteStore};
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

/// A time with millisecond precision, as the store keeps times.
pub const T0: OffsetDateTime = datetime!(2026-01-02 03:04:05.678 UTC);

/// A database file in its own temp dir; the dir lives as long as this value.
pub struct TestDb {
    pub dir: TempDir,
    pub store: SqliteStore,
}

impl TestDb {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&url(&dir)).await.unwrap();
        TestDb { dir, store }
    }

    pub fn url(&self) -> String {
        url(&self.dir)
    }

    /// Another store on the same file, as the CLI opens beside a running server.
    pub async fn reopen(&self) -> SqliteStore {
        SqliteStore::open(&self.url()).await.unwrap()
    }
}

pub fn url(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.path().join("t.db").display())
}

pub fn label(text: &str) -> VersionLabel {
    text.parse().unwrap()
}

pub fn version(prompt_id: Uuid, text: &str, system_prompt: &str) -> PromptVersion {
    PromptVersion {
        prompt_id,
        version: label(text),
        settings: VersionSettings {
            model_endpoint_ref: "openai/gpt-4o-mini".to_owned(),
            system_prompt: system_prompt.to_owned(),
            temperature: 0.2,
            safety_guardrails: SafetyGuardrails {
                content_filtering: vec![promptgate_core::ContentFilter::Pii],
                max_tokens: Some(1500),
                blocked_categories: vec![promptgate_core::BlockedCategory::Violence],
            },
            few_shot_examples: vec![promptgate_core::FewShotExample {
                input: "hi".to_owned(),
                output: "hello".to_owned(),
            }],
        },
        system_prompt_tokens: 7,
        tokenizer: TokenizerKind::O200kBase,
        created_at: T0,
        created_by: "tester".to_owned(),
    }
}

pub fn prompt(id: Uuid, name: &str) -> Prompt {
    Prompt {
        id,
        name: name.to_owned(),
        status: PromptStatus::Active,
        traffic: TrafficSplit::single(label("1.0.0")),
        revision: 1,
        created_at: T0,
        updated_at: T0,
        created_by: "tester".to_owned(),
    }
}

/// Creates a prompt named `name` with version 1.0.0 and returns it with its version.
pub async fn create(store: &SqliteStore, name: &str) -> (Prompt, PromptVersion) {
    use promptgate_store::Store;
    let id = Uuid::now_v7();
    let p = prompt(id, name);
    let v = version(id, "1.0.0", &format!("You are {name}."));
    store.create_prompt(&p, &v, &[audit_draft()]).await.unwrap();
    (p, v)
}

pub fn client(id: &str) -> Client {
    Client {
        id: id.to_owned(),
        name: format!("client {id}"),
        secret_hash: "ab".repeat(32),
        scopes: ScopeSet::all(),
        created_at: T0,
        disabled_at: None,
    }
}

/// A gateway audit entry with nothing particular in it.
pub fn audit_draft() -> promptgate_audit::AuditDraft {
    promptgate_audit::AuditDraft::new("tester", "CREATE", None, serde_json::json!({}))
}
