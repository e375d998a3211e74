//! Moving a SQLite database into PostgreSQL (`promptgate migrate`), for a team that outgrows
//! one gateway.
//!
//! Everything is copied as stored, not re-created through the [`Store`](crate::Store) API:
//! ids, times, revisions, the invocations' storage sequence (exporter cursors point into it), and
//! the audit log byte for byte (the same sequences, canonical bodies, chain and leaf hashes,
//! never resealed), so that the chain and the signed tree heads verify on PostgreSQL exactly
//! as they did on SQLite. What is not copied: delivery leases, which belong to running
//! processes.
//!
//! Safety rails: the source's audit chain is verified before anything is written; the target
//! must be empty (a second run, or a database a gateway already used, is refused rather than
//! merged); every table is written in one transaction under table locks, so a failure leaves
//! the target empty and a gateway started on it meanwhile waits rather than interleaving; the
//! row counts are checked in that transaction before it commits. The source is read in one
//! read transaction (a consistent snapshot, even with a gateway still writing to it; what it
//! writes after the snapshot is not copied, so stop it first).

use std::str::FromStr;
use std::time::Duration;

use promptgate_audit::ChainVerifier;
use promptgate_audit::merkle::{from_hex, leaf_hash};
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow};
use sqlx::{Row, Sqlite};
use uuid::Uuid;

use crate::codec::nul_free;
use crate::{PoolSettings, PostgresStore, SqliteStore, StoreError, is_postgres_url};

/// Rows read from the source and written to the target per statement.
const PAGE: i64 = 1_000;

/// How many rows of each table were copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// OAuth clients.
    pub clients: u64,
    /// Access tokens (by hash).
    pub access_tokens: u64,
    /// API keys (by hash).
    pub api_keys: u64,
    /// Prompts.
    pub prompts: u64,
    /// Prompt versions.
    pub prompt_versions: u64,
    /// Invocation records, with their feedback.
    pub invocations: u64,
    /// Exporter cursors.
    pub exporter_cursors: u64,
    /// Audit log entries.
    pub audit_entries: u64,
    /// Signed tree heads.
    pub tree_heads: u64,
    /// Text values in which a U+0000, which PostgreSQL cannot store, was replaced by U+FFFD
    /// (older databases may hold some; hashed audit bodies never do).
    pub replaced_nul_values: u64,
}

impl CopyReport {
    /// Each table's name (as in the schema) and count, in copy order.
    pub fn counts(&self) -> [(&'static str, u64); 9] {
        [
            ("clients", self.clients),
            ("access_tokens", self.access_tokens),
            ("api_keys", self.api_keys),
            ("prompts", self.prompts),
            ("prompt_versions", self.prompt_versions),
            ("invocations", self.invocations),
            ("exporter_cursors", self.exporter_cursors),
            ("audit_entries", self.audit_entries),
            ("audit_tree_heads", self.tree_heads),
        ]
    }
}

/// Why a copy did not happen. Nothing is written to the target unless everything is.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The source is not a SQLite URL.
    #[error("the source must be a SQLite database (sqlite://PATH), not {0:?}")]
    UnsupportedSource(String),
    /// The target is not a PostgreSQL URL.
    #[error("the target must be a PostgreSQL database (postgres://HOST/DATABASE)")]
    UnsupportedTarget,
    /// The source file does not exist (a copy never creates one).
    #[error("there is no SQLite database at {0}")]
    MissingSource(String),
    /// Reading the source failed.
    #[error("cannot read the SQLite database")]
    Source(#[source] StoreError),
    /// Opening or writing the target failed (the transaction was rolled back).
    #[error("cannot write the PostgreSQL database; nothing was copied")]
    Target(#[source] StoreError),
    /// The target holds data already.
    #[error(
        "the PostgreSQL database is not empty ({table} has {rows} rows); migrate into a new, empty database"
    )]
    TargetNotEmpty {
        /// The first non-empty table.
        table: &'static str,
        /// Its row count.
        rows: i64,
    },
    /// The source's audit log does not verify; copying it would carry the damage over.
    #[error(
        "the SQLite database's audit log does not verify at entry {sequence}: {reason}; nothing was copied"
    )]
    BrokenChain {
        /// The first bad entry.
        sequence: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The target's row count after the copy is not the source's.
    #[error("after copying, {table} has {found} rows instead of {expected}; nothing was copied")]
    CountMismatch {
        /// The table.
        table: &'static str,
        /// Rows read from the source.
        expected: u64,
        /// Rows in the target.
        found: i64,
    },
}

impl CopyError {
    /// Whether the command was called wrongly (URLs of the wrong kind, a missing file), as
    /// opposed to a copy refused or failed.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            CopyError::UnsupportedSource(_)
                | CopyError::UnsupportedTarget
                | CopyError::MissingSource(_)
        )
    }
}

/// Copies the SQLite database at `from_url` into the empty PostgreSQL database at `to_url`
/// (which must exist; its tables are created here). See the module documentation.
pub async fn copy(from_url: &str, to_url: &str) -> Result<CopyReport, CopyError> {
    if !from_url.starts_with("sqlite:") {
        return Err(CopyError::UnsupportedSource(
            promptgate_core::redact::database_url_for_display(from_url),
        ));
    }
    if !is_postgres_url(to_url) {
        return Err(CopyError::UnsupportedTarget);
    }
    let options = SqliteConnectOptions::from_str(from_url).map_err(|_| {
        CopyError::UnsupportedSource(promptgate_core::redact::database_url_for_display(from_url))
    })?;
    let path = options.get_filename();
    if path.as_os_str() == ":memory:" || !path.is_file() {
        return Err(CopyError::MissingSource(path.display().to_string()));
    }
    // Migrated to the current schema first, as `serve` would, so both sides have the same
    // tables and columns.
    let source = SqliteStore::open_existing(options)
        .await
        .map_err(CopyError::Source)?;
    let result = copy_between(&source, to_url).await;
    crate::Store::close(&source).await;
    result
}

async fn copy_between(source: &SqliteStore, to_url: &str) -> Result<CopyReport, CopyError> {
    // One long transaction: statements and idle gaps (while the next page is read from the
    // source) get generous limits.
    let settings = PoolSettings {
        max_connections: 2,
        statement_timeout: Duration::from_secs(600),
        acquire_timeout: Duration::from_secs(10),
    };
    let target = PostgresStore::open_with(to_url, &settings)
        .await
        .map_err(CopyError::Target)?;
    let result = async {
        let mut read = source.pool.begin().await.map_err(source_error)?;
        verify_source_chain(&mut read).await?;
        let mut write = target
            .pool
            .begin_with(crate::postgres::BEGIN)
            .await
            .map_err(target_error)?;
        // Every table this copy fills, so that nothing else writes to them until it commits.
        sqlx::query(
            "LOCK TABLE clients, access_tokens, api_keys, prompts, prompt_versions, invocations, \
             exporter_cursors, exporter_leases, audit_entries, audit_tree_heads \
             IN EXCLUSIVE MODE",
        )
        .execute(&mut *write)
        .await
        .map_err(target_error)?;
        refuse_non_empty(&mut write).await?;
        let mut report = CopyReport::default();
        copy_clients(&mut read, &mut write, &mut report).await?;
        copy_tokens(&mut read, &mut write, &mut report).await?;
        copy_api_keys(&mut read, &mut write, &mut report).await?;
        copy_prompts(&mut read, &mut write, &mut report).await?;
        copy_versions(&mut read, &mut write, &mut report).await?;
        copy_invocations(&mut read, &mut write, &mut report).await?;
        copy_cursors(&mut read, &mut write, &mut report).await?;
        copy_audit(&mut read, &mut write, &mut report).await?;
        copy_tree_heads(&mut read, &mut write, &mut report).await?;
        check_counts(&mut write, &report).await?;
        write.commit().await.map_err(target_error)?;
        read.rollback().await.map_err(source_error)?;
        Ok(report)
    }
    .await;
    crate::Store::close(&target).await;
    result
}

fn source_error(err: sqlx::Error) -> CopyError {
    CopyError::Source(StoreError::Database(err))
}

fn target_error(err: sqlx::Error) -> CopyError {
    CopyError::Target(crate::postgres::db_error(err))
}

/// The tables a copy fills, in the order their rows are written (references first).
const TABLES: [&str; 10] = [
    "clients",
    "access_tokens",
    "api_keys",
    "prompts",
    "prompt_versions",
    "invocations",
    "exporter_cursors",
    "exporter_leases",
    "audit_entries",
    "audit_tree_heads",
];

async fn refuse_non_empty(write: &mut PgConnection) -> Result<(), CopyError> {
    for table in TABLES {
        // The names are this module's constants, not input.
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut *write)
            .await
            .map_err(target_error)?;
        if rows > 0 {
            return Err(CopyError::TargetNotEmpty { table, rows });
        }
    }
    Ok(())
}

async fn check_counts(write: &mut PgConnection, report: &CopyReport) -> Result<(), CopyError> {
    for (table, expected) in report.counts() {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let found: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut *write)
            .await
            .map_err(target_error)?;
        if u64::try_from(found).ok() != Some(expected) {
            return Err(CopyError::CountMismatch {
                table,
                expected,
                found,
            });
        }
    }
    Ok(())
}

/// Replays the source's audit chain (links, hashes, sequences) and checks every stored leaf
/// hash, so that a damaged log is refused here, naming the entry, rather than carried over.
async fn verify_source_chain(read: &mut SqliteConnection) -> Result<(), CopyError> {
    let mut verifier = ChainVerifier::new();
    let mut after = 0_i64;
    loop {
        let rows = sqlx::query(
            "SELECT sequence, body, hash, leaf_hash FROM audit_entries WHERE sequence > ? \
             ORDER BY sequence LIMIT ?",
        )
        .bind(after)
        .bind(PAGE)
        .fetch_all(&mut *read)
        .await
        .map_err(source_error)?;
        let Some(last) = rows.last() else { break };
        after = get(last, "sequence")?;
        for row in &rows {
            let sequence: i64 = get(row, "sequence")?;
            let sequence = u64::try_from(sequence).unwrap_or(0);
            let body: String = get(row, "body")?;
            let broken = |reason: &str| CopyError::BrokenChain {
                sequence,
                reason: reason.to_owned(),
            };
            let hash = from_hex(&get::<String>(row, "hash")?)
                .map_err(|_| broken("its hash is not 64 hex digits"))?;
            let stored_leaf = from_hex(&get::<String>(row, "leaf_hash")?)
                .map_err(|_| broken("its leaf hash is not 64 hex digits"))?;
            if stored_leaf != leaf_hash(body.as_bytes()) {
                return Err(broken("its stored leaf hash is not the hash of its body"));
            }
            verifier.push(&promptgate_audit::entry::served_entry(&body, &hash));
            if let Some(first_break) = verifier.report().first_break {
                return Err(CopyError::BrokenChain {
                    sequence: first_break.sequence(),
                    reason: first_break.to_string(),
                });
            }
        }
    }
    Ok(())
}

fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T, CopyError>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(column).map_err(source_error)
}

fn uuid(row: &SqliteRow, column: &str) -> Result<Uuid, CopyError> {
    let text: String = get(row, column)?;
    Uuid::parse_str(&text).map_err(|_| {
        CopyError::Source(StoreError::Corrupt(format!(
            "{column} {text:?} is not a UUID"
        )))
    })
}

fn optional_uuid(row: &SqliteRow, column: &str) -> Result<Option<Uuid>, CopyError> {
    match get::<Option<String>>(row, column)? {
        None => Ok(None),
        Some(_) => uuid(row, column).map(Some),
    }
}

/// Text for PostgreSQL: a U+0000 becomes U+FFFD (and is counted), as the store does on write.
fn text(row: &SqliteRow, column: &str, report: &mut CopyReport) -> Result<String, CopyError> {
    let value: String = get(row, column)?;
    if value.contains('\0') {
        report.replaced_nul_values += 1;
        Ok(nul_free(&value))
    } else {
        Ok(value)
    }
}

fn optional_text(
    row: &SqliteRow,
    column: &str,
    report: &mut CopyReport,
) -> Result<Option<String>, CopyError> {
    match get::<Option<String>>(row, column)? {
        None => Ok(None),
        Some(_) => text(row, column, report).map(Some),
    }
}

async fn all_rows(
    read: &mut SqliteConnection,
    sql: &'static str,
) -> Result<Vec<SqliteRow>, CopyError> {
    sqlx::query(sql)
        .fetch_all(&mut *read)
        .await
        .map_err(source_error)
}

async fn copy_clients(
    read: &mut SqliteConnection,
    write: &mut PgConnection,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    for row in all_rows(read, "SELECT * FROM clients ORDER BY created_at, id").await? {
        sqlx::query(
            "INSERT INTO clients (id, name, secret_hash, scopes, created_at, disabled_at, \
             secret_rotated_at, token_generation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(text(&row, "id", report)?)
        .bind(text(&row, "name", report)?)
        .bind(get::<String>(&row, "secret_hash")?)
        .bind(get::<String>(&row, "scopes")?)
        .bind(get::<i64>(&row, "created_at")?)
        .bind(get::<Option<i64>>(&row, "disabled_at")?)
        .bind(get::<Option<i64>>(&row, "secret_rotated_at")?)
        .bind(get::<i64>(&row, "token_generation")?)
        .execute(&mut *write)
        .await
        .map_err(target_error)?;
        report.clients += 1;
    }
    Ok(())
}

async fn copy_tokens(
    read: &mut SqliteConnection,
    write: &mut PgConnection,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    for row in all_rows(
        read,
        "SELECT * FROM access_tokens ORDER BY issued_at, token_hash",
    )
    .await?
    {
        sqlx::query(
            "INSERT INTO access_tokens (token_hash, client_id, scopes, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(get::<String>(&row, "token_hash")?)
        .bind(text(&row, "client_id", report)?)
        .bind(get::<String>(&row, "scopes")?)
        .bind(get::<i64>(&row, "issued_at")?)
        .bind(get::<i64>(&row, "expires_at")?)
        .execute(&mut *write)
        .await
        .map_err(target_error)?;
        report.access_tokens += 1;
    }
    Ok(())
}

async fn copy_api_keys(
    read: &mut SqliteConnection,
    write: &mut PgConnection,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    for row in all_rows(read, "SELECT * FROM api_keys ORDER BY created_at, id").await? {
        sqlx::query(
            "INSERT INTO api_keys (id, client_id, name, key_hash, scopes, created_at, \
             expires_at, revoked_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(text(&row, "id", report)?)
        .bind(text(&row, "client_id", report)?)
        .bind(text(&row, "name", report)?)
        .bind(get::<String>(&row, "key_hash")?)
        .bind(get::<String>(&row, "scopes")?)
        .bind(get::<i64>(&row, "created_at")?)
        .bind(get::<Option<i64>>(&row, "expires_at")?)
        .bind(get::<Option<i64>>(&row, "revoked_at")?)
        .bind(get::<Option<i64>>(&row, "last_used_at")?)
        .execute(&mut *write)
        .await
        .map_err(target_error)?;
        report.api_keys += 1;
    }
    Ok(())
}

async fn copy_prompts(
    read: &mut SqliteConnection,
    write: &mut PgConnection,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    for row in all_rows(read, "SELECT * FROM prompts ORDER BY id").await? {
        sqlx::query(
            "INSERT INTO prompts (id, name, status, traffic, revision, created_at, updated_at, \
             created_by, system_message_mode, allow_caller_settings, labels) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(uuid(&row, "id")?)
        .bind(text(&row, "name", report)?)
        .bind(get::<String>(&row, "status")?)
        .bind(get::<String>(&row, "traffic")?)
        .bind(get::<i64>(&row, "revision")?)
        .bind(get::<i64>(&row, "created_at")?)
        .bind(get::<i64>(&row, "updated_at")?)
        .bind(text(&row, "created_by", report)?)
        .bind(get::<String>(&row, "system_message_mode")?)
        .bind(get::<i64>(&row, "allow_caller_settings")? != 0)
        .bind(get::<String>(&row, "labels")?)
        .execute(&mut *write)
        .await
        .map_err(target_error)?;
        report.prompts += 1;
    }
    Ok(())
}

async fn copy_versions(
    read: &mut SqliteConnection,
    write: &mut PgConnection,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    for row in all_rows(
        read,
        "SELECT * FROM prompt_versions ORDER BY prompt_id, created_at, version",
    )
    .await?
    {
        sqlx::query(
            "INSERT INTO prompt_versions (prompt_id, version, model_endpoint_ref, system_prompt, \
             temperature, safety_guardrails, few_shot_examples, system_prompt_tokens, tokenizer, \
             created_at, created_by, template_messages, variables_schema, tool_settings, \
             fallback_endpoint_refs) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(uuid(&row, "prompt_id")?)
        .bind(get::<String>(&row, "version")?)
        .bind(text(&row, "model_endpoint_ref", report)?)
        .bind(text(&row, "system_prompt", report)?)
        .bind(get::<f64>(&row, "temperature")?)
        .bind(get::<String>(&row, "safety_guardrails")?)
        .bind(get::<String>(&row, "few_shot_examples")?)
        .bind(get::<i64>(&row, "system_prompt_tokens")?)
        .bind(get::<String>(&row, "tokenizer")?)
        .bind(get::<i64>(&row, "created_at")?)
        .bind(text(&row, "created_by", report)?)
        .bind(text(&row, "template_messages", report)?)
        .bind(optional_text(&row, "variables_schema", report)?)
        .bind(optional_text(&row, "tool_settings", report)?)
        .bind(optional_text(&row, "fallback_endpoint_refs", report)?)
        .execute(&mut *write)
        .await
        .map_err(target_error)?;
        report.prompt_versions += 1;
    }
    Ok(())
}

/// Invocations keep their sequence numbers (exporter cursors and telemetry page cursors point
/// into them), and new ones continue after the highest number SQLite ever handed out.
async fn copy_invocations(
    read: &mut SqliteConnection,
    write: &mut PgConnection,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    let mut after = 0_i64;
    loop {
        let rows = sqlx::query("SELECT * FROM invocations WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(after)
            .bind(PAGE)
            .fetch_all(&mut *read)
            .await
            .map_err(source_error)?;
        let Some(last) = rows.last() else { break };
        after = get(last, "seq")?;
        let mut columns = InvocationColumns::default();
        for row in &rows {
            columns.push(row, report)?;
        }
        columns.insert(write).await?;
        report.invocations += rows.len() as u64;
    }
    // AUTOINCREMENT never reuses a number, even of a pruned record, and a cursor may point
    // past the last record still stored: the identity continues after all of them.
    let handed_out: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'invocations'")
            .fetch_optional(&mut *read)
            .await
            .map_err(source_error)?;
    let cursor: Option<i64> = sqlx::query_scalar("SELECT MAX(last_seq) FROM exporter_cursors")
        .fetch_one(&mut *read)
        .await
        .map_err(source_error)?;
    let highest = [Some(after), handed_out, cursor]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0);
    if highest > 0 {
        sqlx::query("SELECT setval(pg_get_serial_sequence('invocations', 'seq'), $1)")
            .bind(highest)
            .execute(&mut *write)
            .await
            .map_err(target_error)?;
    }
    Ok(())
}

/// One page of invocations as parallel arrays, for one `INSERT … SELECT FROM UNNEST`.
#[derive(Default)]
struct InvocationColumns {
    seq: Vec<i64>,
    id: Vec<String>,
    timestamp: Vec<i64>,
    prompt_id: Vec<Uuid>,
    version: Vec<String>,
    model: Vec<String>,
    status: Vec<String>,
    error_code: Vec<Option<String>>,
    latency_ms: Vec<f64>,
    upstream_latency_ms: Vec<Option<f64>>,
    time_to_first_token_ms: Vec<Option<f64>>,
    prompt_tokens: Vec<i64>,
    completion_tokens: Vec<i64>,
    session_id: Vec<Option<String>>,
    client_id: Vec<String>,
    metadata: Vec<String>,
    feedback_score: Vec<Option<f64>>,
    feedback_comment: Vec<Option<String>>,
    feedback_at: Vec<Option<i64>>,
    label: Vec<Option<String>>,
    variable_names: Vec<String>,
    schema_valid: Vec<Option<i64>>,
    tool_call_count: Vec<i64>,
    api_key_id: Vec<Option<String>>,
    cost_usd: Vec<Option<f64>>,
    endpoint_ref: Vec<Option<String>>,
    fallback_attempts: Vec<Option<String>>,
}

impl InvocationColumns {
    fn push(&mut self, row: &SqliteRow, report: &mut CopyReport) -> Result<(), CopyError> {
        self.seq.push(get(row, "seq")?);
        self.id.push(text(row, "id", report)?);
        self.timestamp.push(get(row, "timestamp")?);
        self.prompt_id.push(uuid(row, "prompt_id")?);
        self.version.push(text(row, "version", report)?);
        self.model.push(text(row, "model", report)?);
        self.status.push(get(row, "status")?);
        self.error_code
            .push(optional_text(row, "error_code", report)?);
        self.latency_ms.push(get(row, "latency_ms")?);
        self.upstream_latency_ms
            .push(get(row, "upstream_latency_ms")?);
        self.time_to_first_token_ms
            .push(get(row, "time_to_first_token_ms")?);
        self.prompt_tokens.push(get(row, "prompt_tokens")?);
        self.completion_tokens.push(get(row, "completion_tokens")?);
        self.session_id
            .push(optional_text(row, "session_id", report)?);
        self.client_id.push(text(row, "client_id", report)?);
        // JSON text: a U+0000 inside it is the escape `\u0000`, plain ASCII.
        self.metadata.push(text(row, "metadata", report)?);
        self.feedback_score.push(get(row, "feedback_score")?);
        self.feedback_comment
            .push(optional_text(row, "feedback_comment", report)?);
        self.feedback_at.push(get(row, "feedback_at")?);
        self.label.push(optional_text(row, "label", report)?);
        self.variable_names
            .push(text(row, "variable_names", report)?);
        self.schema_valid.push(get(row, "schema_valid")?);
        self.tool_call_count.push(get(row, "tool_call_count")?);
        self.api_key_id
            .push(optional_text(row, "api_key_id", report)?);
        self.cost_usd.push(get(row, "cost_usd")?);
        self.endpoint_ref
            .push(optional_text(row, "endpoint_ref", report)?);
        self.fallback_attempts
            .push(optional_text(row, "fallback_attempts", report)?);
        Ok(())
    }

    async fn insert(self, write: &mut PgConnection) -> Result<(), CopyError> {
        sqlx::query(
            "INSERT INTO invocations (seq, id, timestamp, prompt_id, version, model, status, \
             error_code, latency_ms, upstream_latency_ms, time_to_first_token_ms, \
             prompt_tokens, completion_tokens, session_id, client_id, metadata, \
             feedback_score, feedback_comment, feedback_at, label, variable_names, \
             schema_valid, tool_call_count, api_key_id, cost_usd, endpoint_ref, \
             fallback_attempts) \
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], \
                 $5::text[], $6::text[], $7::text[], $8::text[], $9::float8[], $10::float8[], \
                 $11::float8[], $12::bigint[], $13::bigint[], $14::text[], $15::text[], \
                 $16::text[], $17::float8[], $18::text[], $19::bigint[], $20::text[], \
                 $21::text[], $22::bigint[], $23::bigint[], $24::text[], $25::float8[], \
                 $26::text[], $27::text[])",
        )
        .bind(self.seq)
        .bind(self.id)
        .bind(self.timestamp)
        .bind(self.prompt_id)
        .bind(self.version)
        .bind(self.model)
        .bind(self.status)
        .bind(self.error_code)
        .bind(self.latency_ms)
        .bind(self.upstream_latency_ms)
        .bind(self.time_to_first_token_ms)
        .bind(self.prompt_tokens)
        .bind(self.completion_tokens)
        .bind(self.session_id)
        .bind(self.client_id)
        .bind(self.metadata)
        .bind(self.feedback_score)
        .bind(self.feedback_comment)
        .bind(self.feedback_at)
        .bind(self.label)
        .bind(self.variable_names)
        .bind(self.schema_valid)
        .bind(self.tool_call_count)
        .bind(self.api_key_id)
        .bind(self.cost_usd)
        .bind(self.endpoint_ref)
        .bind(self.fallback_attempts)
        .execute(&mut *write)
        .await
        .map_err(target_error)?;
        Ok(())
    }
}

async fn copy_cursors(
    read: &mut SqliteConnection,
    write: &mut PgConnection,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    for row in all_rows(read, "SELECT * FROM exporter_cursors ORDER BY exporter").await? {
        sqlx::query(
            "INSERT INTO exporter_cursors (exporter, last_seq, updated_at) VALUES ($1, $2, $3)",
        )
        .bind(get::<String>(&row, "exporter")?)
        .bind(get::<i64>(&row, "last_seq")?)
        .bind(get::<i64>(&row, "updated_at")?)
        .execute(&mut *write)
        .await
        .map_err(target_error)?;
        report.exporter_cursors += 1;
    }
    Ok(())
}

/// The audit log, verbatim and in order: the target's chain trigger accepts each entry only as
/// the extension of the one before, which the source's verified chain is.
async fn copy_audit(
    read: &mut SqliteConnection,
    write: &mut PgConnection,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    let mut after = 0_i64;
    loop {
        let rows =
            sqlx::query("SELECT * FROM audit_entries WHERE sequence > ? ORDER BY sequence LIMIT ?")
                .bind(after)
                .bind(PAGE)
                .fetch_all(&mut *read)
                .await
                .map_err(source_error)?;
        let Some(last) = rows.last() else { break };
        after = get(last, "sequence")?;
        let mut sequence = Vec::with_capacity(rows.len());
        let mut id = Vec::with_capacity(rows.len());
        let mut recorded_at = Vec::with_capacity(rows.len());
        let mut actor = Vec::with_capacity(rows.len());
        let mut action = Vec::with_capacity(rows.len());
        let mut prompt_id = Vec::with_capacity(rows.len());
        let mut body = Vec::with_capacity(rows.len());
        let mut prev_hash = Vec::with_capacity(rows.len());
        let mut hash = Vec::with_capacity(rows.len());
        let mut leaf = Vec::with_capacity(rows.len());
        for row in &rows {
            sequence.push(get::<i64>(row, "sequence")?);
            id.push(uuid(row, "id")?);
            recorded_at.push(get::<i64>(row, "recorded_at")?);
            // Filter columns only; the hashed body below carries the exact text.
            actor.push(text(row, "actor", report)?);
            action.push(text(row, "action", report)?);
            prompt_id.push(optional_uuid(row, "prompt_id")?);
            body.push(get::<String>(row, "body")?);
            prev_hash.push(get::<String>(row, "prev_hash")?);
            hash.push(get::<String>(row, "hash")?);
            leaf.push(get::<String>(row, "leaf_hash")?);
        }
        sqlx::query(
            "INSERT INTO audit_entries (sequence, id, recorded_at, actor, action, prompt_id, \
             body, prev_hash, hash, leaf_hash) \
             SELECT sequence, id, recorded_at, actor, action, prompt_id, body, prev_hash, \
                    hash, leaf_hash \
             FROM UNNEST($1::bigint[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], \
                         $6::uuid[], $7::text[], $8::text[], $9::text[], $10::text[]) \
               AS r (sequence, id, recorded_at, actor, action, prompt_id, body, prev_hash, \
                     hash, leaf_hash) \
             ORDER BY sequence",
        )
        .bind(sequence)
        .bind(id)
        .bind(recorded_at)
        .bind(actor)
        .bind(action)
        .bind(prompt_id)
        .bind(body)
        .bind(prev_hash)
        .bind(hash)
        .bind(leaf)
        .execute(&mut *write)
        .await
        .map_err(target_error)?;
        report.audit_entries += rows.len() as u64;
    }
    Ok(())
}

async fn copy_tree_heads(
    read: &mut SqliteConnection,
    write: &mut PgConnection,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    for row in all_rows(
        read,
        "SELECT * FROM audit_tree_heads ORDER BY tree_size, signed_at",
    )
    .await?
    {
        sqlx::query(
            "INSERT INTO audit_tree_heads (tree_size, key_id, root_hash, signed_at, signature) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(get::<i64>(&row, "tree_size")?)
        .bind(get::<String>(&row, "key_id")?)
        .bind(get::<String>(&row, "root_hash")?)
        .bind(get::<String>(&row, "signed_at")?)
        .bind(get::<String>(&row, "signature")?)
        .execute(&mut *write)
        .await
        .map_err(target_error)?;
        report.tree_heads += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wrong_urls_and_missing_files_are_usage_errors() {
        assert!(CopyError::UnsupportedSource("x".into()).is_usage());
        assert!(CopyError::UnsupportedTarget.is_usage());
        assert!(CopyError::MissingSource("/x".into()).is_usage());
        assert!(
            !CopyError::TargetNotEmpty {
                table: "clients",
                rows: 1
            }
            .is_usage()
        );
        assert!(
            !CopyError::BrokenChain {
                sequence: 1,
                reason: String::new()
            }
            .is_usage()
        );
    }

    #[test]
    fn the_report_lists_every_copied_table() {
        let tables: Vec<&str> = CopyReport::default()
            .counts()
            .iter()
            .map(|(t, _)| *t)
            .collect();
        let copied: Vec<&str> = TABLES
            .iter()
            .copied()
            .filter(|t| *t != "exporter_leases")
            .collect();
        assert_eq!(tables, copied);
    }
}
