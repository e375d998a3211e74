//! The SQLite store: one file in WAL mode, the embedded default.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction, which takes SQLite's write lock up front;
//! a deferred transaction that reads and then writes could fail with `SQLITE_BUSY` instead of
//! waiting when another process (the CLI beside a running server) writes at the same time.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use promptgate_core::invocation::InvocationRecord;
use promptgate_core::{Prompt, PromptVersion, VersionLabel};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{self, millis, nul_free, nul_free_opt};
use crate::{Store, StoreError, methods, rows};

/// How long a statement waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH` or `sqlite::memory:`),
    /// switches it to WAL with full fsync, and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|_| {
                StoreError::UnsupportedUrl(promptgate_core::redact::database_url_for_display(url))
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // Two processes opening a fresh file at once (a server and the CLI) race twice: the
        // switch to WAL needs an exclusive lock that SQLite refuses at once rather than waiting
        // for, and sqlx takes no lock around migrations, so both may try the first one (the
        // loser's transaction rolls back). Opening again settles both.
        const ATTEMPTS: u32 = 10;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::connect_and_migrate(options.clone()).await {
                Ok(store) => return Ok(store),
                Err(err) if attempt < ATTEMPTS => {
                    tracing::debug!(error = ?err, attempt, "opening the database raced another process; retrying");
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Opens an existing database (never creating one: a mistyped path must not yield an empty
    /// source) with the same settings as [`SqliteStore::open`], and applies pending migrations.
    pub(crate) async fn open_existing(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        Self::connect_and_migrate(
            options
                .create_if_missing(false)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(BUSY_TIMEOUT)
                .foreign_keys(true),
        )
        .await
    }

    async fn connect_and_migrate(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(StoreError::Unavailable)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(StoreError::Migration)?;
        Ok(SqliteStore { pool })
    }
}

/// The SQLite implementation of the shared methods' hooks (`crate::methods`).
impl SqliteStore {
    /// The pool; SQLite is a file beside the process, never known to be down.
    fn pool(&self) -> Result<&SqlitePool, StoreError> {
        Ok(&self.pool)
    }
}

/// A failure to reach the database file or a connection is [`StoreError::Unavailable`].
fn db_error(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(err)
        }
        other => StoreError::Database(other),
    }
}

/// SQLite's statements (`?` placeholders) and how it binds the columns whose types differ
/// between the stores, for the shared methods (`crate::methods`).
mod sql {
    use sqlx::Sqlite;
    use sqlx::query::QueryAs;
    use sqlx::sqlite::SqliteArguments;
    use uuid::Uuid;

    use crate::StoreError;

    /// This store's connection.
    pub(super) type Connection = sqlx::SqliteConnection;

    /// A UUID column holds text.
    pub(super) fn uuid(id: Uuid) -> String {
        id.to_string()
    }

    /// A true/false column holds an integer.
    pub(super) fn flag(value: bool) -> i64 {
        i64::from(value)
    }

    /// The immutability trigger refuses a duplicate version before the unique index can.
    pub(super) fn is_existing_version(err: &sqlx::Error) -> bool {
        crate::methods::is_unique_violation(err)
            || matches!(err, sqlx::Error::Database(db) if db.message().contains("prompt versions are immutable"))
    }

    /// Every write takes SQLite's write lock up front (see the module documentation), so no
    /// other writer runs until it commits: the audit head it seals onto stays the head, and two
    /// issuers for one client never both count the tokens before either deletes.
    pub(super) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
    /// None: `BEGIN_WRITE` already holds the only write lock.
    pub(super) const LOCK_AUDIT: Option<&str> = None;
    /// None: `BEGIN_WRITE` already holds the only write lock.
    pub(super) const LOCK_CLIENT_TOKENS: Option<&str> = None;

    pub(super) const INSERT_CLIENT: &str = "INSERT INTO clients (id, name, secret_hash, scopes, \
         created_at, disabled_at) VALUES (?, ?, ?, ?, ?, ?)";
    pub(super) const CLIENT_BY_ID: &str = "SELECT * FROM clients WHERE id = ?";
    pub(super) const DISABLE_CLIENT: &str =
        "UPDATE clients SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL";
    pub(super) const ROTATE_SECRET: &str =
        "UPDATE clients SET secret_hash = ?, secret_rotated_at = ? WHERE id = ?";
    pub(super) const DELETE_CLIENT_TOKENS: &str = "DELETE FROM access_tokens WHERE client_id = ?";
    pub(super) const INSERT_TOKEN: &str = "INSERT INTO access_tokens (token_hash, client_id, \
         scopes, issued_at, expires_at) VALUES (?, ?, ?, ?, ?)";
    /// `LIMIT -1`: SQLite takes an OFFSET only after a LIMIT.
    pub(super) const REVOKE_SURPLUS_TOKENS: &str = "DELETE FROM access_tokens WHERE token_hash IN ( \
            SELECT token_hash FROM access_tokens \
            WHERE client_id = ? AND token_hash <> ? AND expires_at > ? \
            ORDER BY issued_at DESC, token_hash DESC LIMIT -1 OFFSET ?) \
         RETURNING token_hash";
    pub(super) const BUMP_TOKEN_GENERATION: &str =
        "UPDATE clients SET token_generation = token_generation + 1 WHERE id = ?";
    pub(super) const TOKEN_BY_HASH: &str = "SELECT * FROM access_tokens WHERE token_hash = ?";
    pub(super) const DELETE_EXPIRED_TOKENS: &str = "DELETE FROM access_tokens WHERE expires_at < ?";

    pub(super) const INSERT_API_KEY: &str = "INSERT INTO api_keys (id, client_id, name, key_hash, \
         scopes, created_at, expires_at, revoked_at, last_used_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
    pub(super) const API_KEY_BY_ID: &str = "SELECT * FROM api_keys WHERE id = ?";
    pub(super) const API_KEY_BY_HASH: &str = "SELECT * FROM api_keys WHERE key_hash = ?";
    pub(super) const API_KEYS_OF_CLIENT: &str =
        "SELECT * FROM api_keys WHERE client_id = ? ORDER BY created_at, id";
    pub(super) const REVOKE_API_KEY: &str =
        "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL";
    /// A time never moves back: two gateways' batches may arrive in either order.
    pub(super) const TOUCH_API_KEY: &str = "UPDATE api_keys SET last_used_at = ?1 \
         WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)";

    pub(super) const INSERT_PROMPT: &str = "INSERT INTO prompts (id, allow_caller_settings, name, \
         status, traffic, revision, created_at, updated_at, created_by, system_message_mode, \
         labels) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    pub(super) const INSERT_VERSION: &str = "INSERT INTO prompt_versions (prompt_id, version, \
         model_endpoint_ref, system_prompt, temperature, safety_guardrails, few_shot_examples, \
         system_prompt_tokens, tokenizer, created_at, created_by, template_messages, \
         variables_schema, tool_settings, fallback_endpoint_refs) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    pub(super) const PROMPT_BY_ID: &str = "SELECT * FROM prompts WHERE id = ?";
    pub(super) const LIST_PROMPTS: &str = "SELECT * FROM prompts \
         WHERE (?1 IS NULL OR name = ?1) \
           AND (?2 IS NULL OR name LIKE ?2 ESCAPE '\\') \
           AND (?3 IS NULL OR status = ?3) \
           AND (?4 IS NULL OR id > ?4) \
         ORDER BY id LIMIT ?5";
    pub(super) const VERSIONS_OF: &str = "SELECT * FROM prompt_versions WHERE prompt_id = ?";
    pub(super) const VERSION_LABELS_OF: &str =
        "SELECT version FROM prompt_versions WHERE prompt_id = ?";
    pub(super) const VERSION_BY_LABEL: &str =
        "SELECT * FROM prompt_versions WHERE prompt_id = ? AND version = ?";
    pub(super) const UPDATE_PROMPT: &str = "UPDATE prompts SET revision = ?, updated_at = ?, \
         traffic = COALESCE(?, traffic), status = COALESCE(?, status), \
         system_message_mode = COALESCE(?, system_message_mode), \
         allow_caller_settings = COALESCE(?, allow_caller_settings), \
         labels = COALESCE(?, labels) \
         WHERE id = ? AND revision = ?";
    pub(super) const PROMPT_REVISION: &str = "SELECT revision FROM prompts WHERE id = ?";

    pub(super) const LIST_INVOCATIONS: &str = "SELECT * FROM invocations \
         WHERE (?1 IS NULL OR prompt_id = ?1) \
           AND (?2 IS NULL OR version = ?2) \
           AND (?3 IS NULL OR timestamp >= ?3) \
           AND (?4 IS NULL OR timestamp < ?4) \
           AND (?5 IS NULL OR status = ?5) \
           AND (?6 IS NULL OR label = ?6) \
           AND (?7 IS NULL OR seq > ?7) \
         ORDER BY seq LIMIT ?8";
    pub(super) const SET_FEEDBACK: &str = "UPDATE invocations SET feedback_score = ?, \
         feedback_comment = ?, feedback_at = ? WHERE id = ?";
    pub(super) const FEEDBACK_STATE: &str = "SELECT client_id, prompt_id, feedback_score, \
         feedback_comment, feedback_at FROM invocations WHERE id = ?";
    /// `IS` compares NULLs as equal: no feedback expected matches a record without one.
    pub(super) const REPLACE_FEEDBACK: &str = "UPDATE invocations SET feedback_score = ?1, \
         feedback_comment = ?2, feedback_at = ?3 \
         WHERE id = ?4 AND feedback_score IS ?5 AND feedback_comment IS ?6 \
           AND feedback_at IS ?7";
    pub(super) const PRUNE_INVOCATIONS: &str = "DELETE FROM invocations WHERE timestamp < ?";

    pub(super) const EXPORTER_CURSOR: &str =
        "SELECT last_seq FROM exporter_cursors WHERE exporter = ?";
    pub(super) const ACQUIRE_LEASE: &str = "INSERT INTO exporter_leases (exporter, holder, \
         expires_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (exporter) DO UPDATE SET holder = excluded.holder, \
         expires_at = excluded.expires_at \
         WHERE exporter_leases.holder = excluded.holder \
            OR exporter_leases.expires_at <= ?4";
    pub(super) const RELEASE_LEASE: &str =
        "UPDATE exporter_leases SET expires_at = 0 WHERE exporter = ?1 AND holder = ?2";
    pub(super) const BEGIN_BATCH: &str = "UPDATE exporter_leases SET pending_first = ?1, \
         pending_last = ?2 WHERE exporter = ?3 AND holder = ?4 AND expires_at > ?5";
    pub(super) const PENDING_BATCH: &str =
        "SELECT pending_first, pending_last FROM exporter_leases WHERE exporter = ?1";

    pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit_entries (id, prompt_id, sequence, \
         recorded_at, actor, action, body, prev_hash, hash, leaf_hash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    pub(super) const LIST_AUDIT: &str = "SELECT sequence, body, hash, leaf_hash, actor, action, \
         prompt_id, recorded_at FROM audit_entries \
         WHERE (?1 IS NULL OR prompt_id = ?1) \
           AND (?2 IS NULL OR action = ?2) \
           AND (?3 IS NULL OR actor = ?3) \
           AND (?4 IS NULL OR recorded_at >= ?4) \
           AND (?5 IS NULL OR recorded_at < ?5) \
           AND (?6 IS NULL OR sequence > ?6) \
         ORDER BY sequence LIMIT ?7";
    pub(super) const AUDIT_BY_SEQUENCE: &str = "SELECT sequence, body, hash, leaf_hash, actor, \
         action, prompt_id, recorded_at FROM audit_entries WHERE sequence = ?";
    pub(super) const LAST_AUDIT_WITH_ACTION: &str = "SELECT sequence, body, hash, leaf_hash, \
         actor, action, prompt_id, recorded_at FROM audit_entries WHERE action = ? \
         ORDER BY sequence DESC LIMIT 1";
    pub(super) const AUDIT_SIZE: &str = "SELECT COALESCE(MAX(sequence), 0) FROM audit_entries";
    pub(super) const AUDIT_LEAF_HASHES: &str = "SELECT leaf_hash FROM audit_entries \
         WHERE sequence > ? AND sequence <= ? ORDER BY sequence";
    pub(super) const INSERT_TREE_HEAD: &str = "INSERT INTO audit_tree_heads (tree_size, key_id, \
         root_hash, signed_at, signature) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (tree_size, key_id) DO NOTHING";
    /// The telemetry summary's filters as ?1..?6 (a NULL switches its condition off); the finite
    /// range is ?7 and ?8 (infinities are left out, NaN is stored as NULL), repeated wherever the
    /// rows are read. `summary.rs` says how the two queries work.
    const FILTER: &str = "(?1 IS NULL OR prompt_id = ?1) AND (?2 IS NULL OR version = ?2) \
         AND (?3 IS NULL OR timestamp >= ?3) AND (?4 IS NULL OR timestamp < ?4) \
         AND (?5 IS NULL OR status = ?5) AND (?6 IS NULL OR label = ?6)";

    /// The summary's aggregates per version (or per endpoint). FILTER, the group's key and the
    /// rest are constants: nothing from the caller is spliced into the SQL.
    pub(super) fn summary_aggregates(group: crate::SummaryGroup) -> sqlx::AssertSqlSafe<String> {
        let key = group.key();
        sqlx::AssertSqlSafe(format!(
            "WITH m AS (SELECT {key} AS version, COUNT(*) AS n, \
                 SUM(status = 'ERROR') AS errors, SUM(status = 'BLOCKED') AS blocked, \
                 SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens, \
                 COUNT(CASE WHEN status <> 'BLOCKED' AND latency_ms BETWEEN ?7 AND ?8 THEN 1 END) AS latency_n, \
                 SUM(CASE WHEN status <> 'BLOCKED' AND latency_ms BETWEEN ?7 AND ?8 THEN latency_ms END) \
                   / COUNT(CASE WHEN status <> 'BLOCKED' AND latency_ms BETWEEN ?7 AND ?8 THEN 1 END) AS latency_mean, \
                 COUNT(CASE WHEN feedback_score BETWEEN ?7 AND ?8 THEN 1 END) AS feedback_n, \
                 SUM(CASE WHEN feedback_score BETWEEN ?7 AND ?8 THEN feedback_score END) \
                   / COUNT(CASE WHEN feedback_score BETWEEN ?7 AND ?8 THEN 1 END) AS feedback_mean, \
                 COUNT(schema_valid) AS schema_n, \
                 COUNT(CASE WHEN schema_valid = 1 THEN 1 END) AS schema_valid_n, \
                 COUNT(CASE WHEN cost_usd BETWEEN ?7 AND ?8 THEN 1 END) AS cost_n, \
                 SUM(CASE WHEN cost_usd BETWEEN ?7 AND ?8 THEN cost_usd END) AS cost_total, \
                 SUM(CASE WHEN cost_usd BETWEEN ?7 AND ?8 THEN cost_usd END) \
                   / COUNT(CASE WHEN cost_usd BETWEEN ?7 AND ?8 THEN 1 END) AS cost_mean \
               FROM invocations WHERE {FILTER} GROUP BY {key}) \
             SELECT m.version, m.n, m.errors, m.blocked, m.prompt_tokens, m.completion_tokens, \
               m.latency_n, m.latency_mean, \
               SUM(CASE WHEN i.status <> 'BLOCKED' AND i.latency_ms BETWEEN ?7 AND ?8 \
                   THEN (i.latency_ms - m.latency_mean) * (i.latency_ms - m.latency_mean) END) AS latency_m2, \
               m.feedback_n, m.feedback_mean, \
               SUM(CASE WHEN i.feedback_score BETWEEN ?7 AND ?8 \
                   THEN (i.feedback_score - m.feedback_mean) * (i.feedback_score - m.feedback_mean) END) AS feedback_m2, \
               m.schema_n, m.schema_valid_n, m.cost_n, m.cost_total, m.cost_mean, \
               SUM(CASE WHEN i.cost_usd BETWEEN ?7 AND ?8 \
                   THEN (i.cost_usd - m.cost_mean) * (i.cost_usd - m.cost_mean) END) AS cost_m2 \
             FROM (SELECT {key} AS version, status, latency_ms, feedback_score, cost_usd \
               FROM invocations \
               WHERE {FILTER}) AS i CROSS JOIN m ON m.version = i.version \
             GROUP BY m.version"
        ))
    }

    /// One read transaction (what `Pool::begin` sends): both summary queries see the same
    /// snapshot (WAL), so the ranks asked for exist.
    pub(super) const BEGIN_SNAPSHOT: &str = "BEGIN";

    /// The latencies at the wanted ranks, given as ?9 (see [`bind_ranks`]).
    pub(super) fn summary_ranks(group: crate::SummaryGroup) -> sqlx::AssertSqlSafe<String> {
        let key = group.key();
        sqlx::AssertSqlSafe(format!(
            // The wanted ranks are parsed once (a materialised CTE, looked up through the
            // index `IN` builds), not once per ranked row.
            "WITH w AS MATERIALIZED (SELECT json_extract(value, '$[0]') AS version, \
               json_extract(value, '$[1]') AS i FROM json_each(?9)) \
             SELECT r.version, r.i, r.latency_ms FROM ( \
               SELECT {key} AS version, latency_ms, \
                 ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY latency_ms) - 1 AS i \
               FROM invocations WHERE {FILTER} \
                 AND status <> 'BLOCKED' AND latency_ms BETWEEN ?7 AND ?8) AS r \
             WHERE (r.version, r.i) IN (SELECT version, i FROM w)"
        ))
    }

    /// The summary's rank query: version, rank, latency.
    pub(super) type RankQuery<'q> = QueryAs<'q, Sqlite, (String, i64, f64), SqliteArguments>;

    /// The wanted `(version, rank)` pairs as one JSON array.
    pub(super) fn bind_ranks(
        query: RankQuery<'_>,
        versions: Vec<String>,
        ranks: Vec<i64>,
    ) -> Result<RankQuery<'_>, StoreError> {
        let wanted: Vec<(&String, i64)> = versions.iter().zip(ranks.iter().copied()).collect();
        let wanted = serde_json::to_string(&wanted)
            .map_err(|e| StoreError::Corrupt(format!("summary ranks: {e}")))?;
        Ok(query.bind(wanted))
    }
}

/// SQLite keeps prompt ids as text and flags as integers.
impl rows::Dialect for SqliteRow {
    fn prompt_id(&self, column: &str) -> Result<Uuid, StoreError> {
        let id: String = self.try_get(column).map_err(db_error)?;
        Uuid::parse_str(&id).map_err(|_| StoreError::Corrupt(format!("prompt id {id:?}")))
    }

    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        Ok(self.try_get::<i64, _>(column).map_err(db_error)? != 0)
    }

    fn audit_prompt_id(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(column)
    }
}

methods::helpers!(sql);

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(StoreError::Unavailable)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

// The area traits: the bodies both stores share come from `crate::methods` (in this module, with
// this store's `sql`); the blocks `{ … }` hold this store's own methods.
methods::client_store!(SqliteStore, sql);

methods::api_key_store!(SqliteStore, sql);

methods::audit_store!(SqliteStore, sql);

impl SqliteStore {
    /// The version labels and the default versions of a listing page's prompts (see
    /// [`rows::listings`]), each read in one statement.
    async fn page_versions(
        &self,
        prompts: &[Prompt],
    ) -> Result<(Vec<(Uuid, VersionLabel)>, Vec<PromptVersion>), StoreError> {
        // The page's ids, and its (id, default version) pairs, each bound as one JSON array.
        let ids = serde_json::to_string(&prompts.iter().map(|p| p.id).collect::<Vec<_>>())
            .map_err(|e| StoreError::Corrupt(format!("prompt ids: {e}")))?;
        let defaults = serde_json::to_string(
            &prompts
                .iter()
                .map(|p| (p.id, p.traffic.default_version().to_string()))
                .collect::<Vec<_>>(),
        )
        .map_err(|e| StoreError::Corrupt(format!("default versions: {e}")))?;
        let labels: Vec<(String, String)> = sqlx::query_as(
            "SELECT prompt_id, version FROM prompt_versions \
             WHERE prompt_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let labels = labels
            .iter()
            .map(|(id, label)| {
                let id = Uuid::parse_str(id)
                    .map_err(|_| StoreError::Corrupt(format!("prompt id {id:?}")))?;
                Ok((id, codec::version(label)?))
            })
            .collect::<Result<_, StoreError>>()?;
        let defaults = sqlx::query(
            "SELECT v.* FROM prompt_versions AS v JOIN json_each(?1) AS w \
               ON v.prompt_id = json_extract(w.value, '$[0]') \
              AND v.version = json_extract(w.value, '$[1]')",
        )
        .bind(defaults)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?
        .iter()
        .map(rows::version)
        .collect::<Result<_, _>>()?;
        Ok((labels, defaults))
    }
}

methods::prompt_store!(SqliteStore, sql, {
    async fn prompt_revisions(&self) -> Result<Vec<(Uuid, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT id, revision FROM prompts")
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.into_iter()
            .map(|(id, revision)| {
                Uuid::parse_str(&id)
                    .map(|id| (id, revision))
                    .map_err(|_| StoreError::Corrupt(format!("prompt id {id:?}")))
            })
            .collect()
    }
});

methods::outbox_store!(SqliteStore, sql, {
    async fn advance_exporter_cursor(
        &self,
        exporter: &str,
        from: i64,
        to: i64,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self
            .pool
            .begin_with(sql::BEGIN_WRITE)
            .await
            .map_err(db_error)?;
        let current: Option<i64> = sqlx::query_scalar(sql::EXPORTER_CURSOR)
            .bind(exporter)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        if current.unwrap_or(0) != from {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO exporter_cursors (exporter, last_seq, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (exporter) DO UPDATE SET last_seq = excluded.last_seq, \
             updated_at = excluded.updated_at",
        )
        .bind(exporter)
        .bind(to)
        .bind(millis(at))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }
});

methods::telemetry_store!(SqliteStore, sql, {
    async fn insert_invocations(&self, records: &[InvocationRecord]) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin_with(sql::BEGIN_WRITE)
            .await
            .map_err(db_error)?;
        for r in records {
            sqlx::query(
                "INSERT OR IGNORE INTO invocations (id, timestamp, prompt_id, version, model, \
                 status, error_code, latency_ms, upstream_latency_ms, time_to_first_token_ms, \
                 prompt_tokens, completion_tokens, session_id, client_id, metadata, label, \
                 variable_names, schema_valid, tool_call_count, api_key_id, cost_usd, \
                 endpoint_ref, fallback_attempts) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(nul_free(&r.id))
            .bind(millis(r.timestamp))
            .bind(r.prompt_id.to_string())
            .bind(nul_free(&r.version))
            .bind(nul_free(&r.model))
            .bind(r.status.as_str())
            .bind(nul_free_opt(r.error_code.as_deref()))
            .bind(r.latency_ms)
            .bind(r.upstream_latency_ms)
            .bind(r.time_to_first_token_ms)
            .bind(i64::from(r.prompt_tokens))
            .bind(i64::from(r.completion_tokens))
            .bind(nul_free_opt(r.session_id.as_deref()))
            .bind(nul_free(&r.client_id))
            .bind(serde_json::to_string(&r.metadata).unwrap_or_else(|_| "{}".to_owned()))
            .bind(nul_free_opt(r.label.as_deref()))
            .bind(codec::variable_names_json(&r.variable_names))
            .bind(r.schema_valid.map(i64::from))
            .bind(i64::from(r.tool_call_count))
            .bind(nul_free_opt(r.api_key_id.as_deref()))
            .bind(r.cost_usd)
            .bind(nul_free_opt(
                Some(r.endpoint_ref.as_str()).filter(|e| !e.is_empty()),
            ))
            .bind(codec::attempts_json(&r.fallback_attempts).map(|a| nul_free(&a)))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }
});
