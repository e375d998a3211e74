//! Builders for stored values, and a fresh store of either kind: SQLite in a temp dir, or
//! PostgreSQL in a database of its own on the test server (`promptgate_store::testing`).

use std::sync::Arc;

use promptgate_core::{
    Prompt, PromptStatus, PromptVersion, SafetyGuardrails, ScopeSet, TokenizerKind, TrafficSplit,
    VersionLabel, VersionSettings,
};
use promptgate_store::testing::TestDatabase;
use promptgate_store::{Client, PostgresStore, SqliteStore, Store};
use sqlx::{Connection, PgConnection, SqliteConnection};
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

/// A time with millisecond precision, as the store keeps times.
pub const T0: OffsetDateTime = datetime!(2026-01-02 03:04:05.678 UTC);

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, migrated database and a store on it; the database lives as long as this value.
pub struct TestDb {
    pub backend: Backend,
    pub store: Arc<dyn Store>,
    url: String,
    // Dropped after `store`: the temp dir, or the PostgreSQL database.
    _dir: Option<TempDir>,
    _database: Option<TestDatabase>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = sqlite_url(&dir);
                TestDb {
                    backend,
                    store: Arc::new(SqliteStore::open(&url).await.unwrap()),
                    url,
                    _dir: Some(dir),
                    _database: None,
                }
            }
            Backend::Postgres => {
                let database = TestDatabase::create().await;
                let url = database.url().to_owned();
                TestDb {
                    backend,
                    store: Arc::new(PostgresStore::open(&url).await.unwrap()),
                    url,
                    _dir: None,
                    _database: Some(database),
                }
            }
        }
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Another store on the same database with a pool of its own: the CLI beside a running
    /// server on SQLite, a second replica on PostgreSQL.
    pub async fn reopen(&self) -> Arc<dyn Store> {
        promptgate_store::open(&self.url).await.unwrap()
    }

    /// A plain connection that bypasses the store, as a person with `sqlite3` or `psql` would.
    pub async fn raw(&self) -> Raw {
        match self.backend {
            Backend::Sqlite => Raw::Sqlite(SqliteConnection::connect(&self.url).await.unwrap()),
            Backend::Postgres => Raw::Postgres(PgConnection::connect(&self.url).await.unwrap()),
        }
    }
}

pub fn sqlite_url(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.path().join("t.db").display())
}

/// A raw connection to either database. Statements that run on both are written with `$1`
/// parameters, which SQLite also reads (as named parameters, numbered in order).
pub enum Raw {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// The outcome of a raw statement: rows affected, or the message of the database's refusal.
fn refusal(result: Result<u64, sqlx::Error>) -> Result<u64, String> {
    match result {
        Ok(rows) => Ok(rows),
        Err(sqlx::Error::Database(db)) => Err(db.message().to_owned()),
        Err(other) => panic!("expected success or a database error, got {other:?}"),
    }
}

impl Raw {
    /// Runs one or more statements (no parameters); `Err` is the database's message.
    pub async fn execute(&mut self, sql: &'static str) -> Result<u64, String> {
        refusal(match self {
            Raw::Sqlite(c) => sqlx::raw_sql(sql)
                .execute(c)
                .await
                .map(|r| r.rows_affected()),
            Raw::Postgres(c) => sqlx::raw_sql(sql)
                .execute(c)
                .await
                .map(|r| r.rows_affected()),
        })
    }

    /// Runs one statement with text parameters; `Err` is the database's message.
    pub async fn execute_with(&mut self, sql: &'static str, args: &[&str]) -> Result<u64, String> {
        refusal(match self {
            Raw::Sqlite(c) => {
                let mut q = sqlx::query(sql);
                for a in args {
                    q = q.bind(a.to_string());
                }
                q.execute(c).await.map(|r| r.rows_affected())
            }
            Raw::Postgres(c) => {
                let mut q = sqlx::query(sql);
                for a in args {
                    q = q.bind(a.to_string());
                }
                q.execute(c).await.map(|r| r.rows_affected())
            }
        })
    }

    /// A count (or any integer) that one query returns.
    pub async fn count(&mut self, sql: &'static str, args: &[&str]) -> i64 {
        match self {
            Raw::Sqlite(c) => {
                let mut q = sqlx::query_scalar(sql);
                for a in args {
                    q = q.bind(a.to_string());
                }
                q.fetch_one(c).await.unwrap()
            }
            Raw::Postgres(c) => {
                let mut q = sqlx::query_scalar(sql);
                for a in args {
                    q = q.bind(a.to_string());
                }
                q.fetch_one(c).await.unwrap()
            }
        }
    }

    /// Every `(version, success)` row of sqlx's migration table.
    pub async fn applied_migrations(&mut self) -> Vec<(i64, bool)> {
        let sql = "SELECT version, success FROM _sqlx_migrations ORDER BY version";
        match self {
            Raw::Sqlite(c) => sqlx::query_as(sql).fetch_all(c).await.unwrap(),
            Raw::Postgres(c) => sqlx::query_as(sql).fetch_all(c).await.unwrap(),
        }
    }

    pub async fn close(self) {
        match self {
            Raw::Sqlite(c) => c.close().await.unwrap(),
            Raw::Postgres(c) => c.close().await.unwrap(),
        }
    }
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
            template_messages: Vec::new(),
            variables_schema: None,
            tool_settings: Default::default(),
            fallback_endpoint_refs: Vec::new(),
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
        chat_completions: Default::default(),
        labels: Default::default(),
        revision: 1,
        created_at: T0,
        updated_at: T0,
        created_by: "tester".to_owned(),
    }
}

/// Creates a prompt named `name` with version 1.0.0 and returns it with its version.
pub async fn create(store: &dyn Store, name: &str) -> (Prompt, PromptVersion) {
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
    promptgate_audit::AuditDraft::new(
        time::OffsetDateTime::now_utc(),
        "tester",
        "CREATE",
        None,
        serde_json::json!({}),
    )
}
