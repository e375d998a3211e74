//! The PostgreSQL store, for several gateway replicas sharing one database.
//!
//! It keeps the SQLite store's schema and rules (same columns, times as Unix milliseconds, the
//! same triggers and messages) so that the two behave alike; what differs is how writers are
//! ordered. SQLite has one writer at a time; PostgreSQL runs transactions concurrently, so:
//! - Every write transaction starts `READ COMMITTED` explicitly. Each statement then sees what
//!   committed before it started, which is what the locks below rely on, whatever the server's
//!   `default_transaction_isolation`.
//! - The audit log is sealed under `LOCK TABLE audit_entries IN EXCLUSIVE MODE`, taken in the
//!   writing transaction right before the head is read: appends from every connection and every
//!   replica queue on it, so each seals onto the head the previous one committed, and the chain
//!   stays linear and gap-free. Readers are not blocked (EXCLUSIVE conflicts with writers only).
//!   It is always the last lock a transaction takes, so it cannot be part of a deadlock.
//! - Telemetry batches take `LOCK TABLE invocations IN EXCLUSIVE MODE` first, so batches commit
//!   in the order of their sequence numbers and a keyset reader never passes a number that a
//!   slower transaction would fill in later.
//! - Optimistic updates (`update_prompt`, `advance_exporter_cursor`) are single conditional
//!   statements: under `READ COMMITTED` a statement that waited for a concurrent update of the
//!   same row re-checks its condition on the new row, so exactly one of two racers wins.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use promptgate_core::invocation::InvocationRecord;
use promptgate_core::{Prompt, PromptVersion, VersionLabel};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{self, millis, nul_free, nul_free_opt};
use crate::{Store, StoreError, methods, rows};

/// The schema, embedded. sqlx's PostgreSQL migrator holds a session advisory lock while it
/// runs, so replicas starting together on a fresh database apply each migration once.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How every write transaction begins (see the module documentation).
pub(crate) const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// The longest [`Store::ping`] takes: under Kubernetes' default probe timeout of 1 s.
const PING_BOUND: Duration = Duration::from_millis(800);

/// The limits of a [`PostgresStore`]'s connection pool. Each replica holds up to
/// `max_connections`, so the database's `max_connections` must cover the sum over replicas
/// (plus the CLI and any tooling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections this store opens at most.
    pub max_connections: u32,
    /// How long one statement may run (lock waits included) before PostgreSQL cancels it; a
    /// cancelled statement is reported as [`StoreError::Unavailable`]. It also bounds how long a
    /// connection may sit idle inside a transaction, so a stuck client cannot hold the audit
    /// log's lock for longer.
    pub statement_timeout: Duration,
    /// How long a call waits for a connection (including connecting, with retries while the
    /// server refuses) before it fails with [`StoreError::Unavailable`]. It bounds the calls
    /// made while an outage is not yet noticed; once the background health check sees the
    /// database down (within about a second), calls fail at once, and `/readyz` is bounded on
    /// its own (`crate::health`).
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 10,
            statement_timeout: Duration::from_secs(30),
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The PostgreSQL implementation of [`Store`]. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    /// The database's health as the background check last saw it (`crate::health`).
    health: std::sync::Arc<crate::health::Health>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…` or `postgresql://…`, with the usual
    /// libpq parameters such as `sslmode`) with the default [`PoolSettings`], and applies pending
    /// migrations. The database must exist; its tables are created here.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, &PoolSettings::default()).await
    }

    /// Like [`PostgresStore::open`], with explicit pool limits.
    pub async fn open_with(url: &str, settings: &PoolSettings) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| {
                StoreError::UnsupportedUrl(promptgate_core::redact::database_url_for_display(url))
            })?
            .application_name("promptgate");
        // Bound as a parameter of set_config rather than spliced into a SET statement.
        let timeout = format!("{}ms", settings.statement_timeout.as_millis());
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.acquire_timeout)
            .after_connect(move |conn, _meta| {
                let timeout = timeout.clone();
                Box::pin(async move {
                    sqlx::query(
                        "SELECT set_config('statement_timeout', $1, false), \
                         set_config('idle_in_transaction_session_timeout', $1, false)",
                    )
                    .bind(timeout)
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(db_error)?;
        MIGRATOR.run(&pool).await.map_err(|err| match err {
            MigrateError::Execute(e) if is_unavailable(&e) => StoreError::Unavailable(e),
            other => StoreError::Migration(other),
        })?;
        // The health check's own connection is named apart, so that an operator counting the
        // pool's connections (and the pool's limit) sees it separately.
        let health = crate::health::Health::start(
            options.application_name("promptgate-health"),
            settings.acquire_timeout,
        );
        Ok(PostgresStore { pool, health })
    }

    /// The pool, unless the database is known to be down: then every call fails at once with
    /// [`StoreError::Unavailable`] rather than waiting out the acquire timeout.
    fn pool(&self) -> Result<&PgPool, StoreError> {
        if self.health.is_down() {
            Err(crate::health::Health::refusal())
        } else {
            Ok(&self.pool)
        }
    }
}

/// Whether an error means the database could not serve the call rather than refused it: no
/// connection (refused, dropped, pool exhausted or closed), the server shutting down or out of
/// resources, or a statement cancelled by `statement_timeout`.
fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 53: insufficient resources (too many connections, disk
            // full); 57014: statement timeout; 57P0x: shutdown, crash, starting up; 55P03: lock
            // timeout.
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P0")
                || code == "57014"
                || code == "55P03"
        }),
        _ => false,
    }
}

/// [`StoreError::Unavailable`] when the database could not serve the call ([`is_unavailable`]).
pub(crate) fn db_error(err: sqlx::Error) -> StoreError {
    if is_unavailable(&err) {
        StoreError::Unavailable(err)
    } else {
        StoreError::Database(err)
    }
}

/// PostgreSQL's statements (`$1` placeholders, casts where a NULL parameter needs a type) and how
/// it binds the columns whose types differ between the stores, for the shared methods
/// (`crate::methods`).
mod sql {
    use sqlx::Postgres;
    use sqlx::postgres::PgArguments;
    use sqlx::query::QueryAs;
    use uuid::Uuid;

    use crate::StoreError;

    /// This store's connection.
    pub(super) type Connection = sqlx::postgres::PgConnection;

    /// A UUID column is a `uuid`.
    pub(super) fn uuid(id: Uuid) -> Uuid {
        id
    }

    /// A true/false column is a `boolean`.
    pub(super) fn flag(value: bool) -> bool {
        value
    }

    /// The unique index refuses a duplicate version (the immutability trigger fires on updates
    /// only).
    pub(super) fn is_existing_version(err: &sqlx::Error) -> bool {
        crate::methods::is_unique_violation(err)
    }

    /// `READ COMMITTED`, whatever the server's default (see the module documentation).
    pub(super) const BEGIN_WRITE: &str = super::BEGIN;
    /// The table lock queues every other appender until this transaction ends, and under `READ
    /// COMMITTED` the head is read by a statement that starts after the lock is granted, so it
    /// is the head the previous appender committed.
    pub(super) const LOCK_AUDIT: Option<&str> = Some("LOCK TABLE audit_entries IN EXCLUSIVE MODE");
    /// The client's row lock serialises issuers of one client across replicas, so two of them
    /// never both count the tokens before either deletes.
    pub(super) const LOCK_CLIENT_TOKENS: Option<&str> =
        Some("SELECT 1 FROM clients WHERE id = $1 FOR UPDATE");

    pub(super) const INSERT_CLIENT: &str = "INSERT INTO clients (id, name, secret_hash, scopes, \
         created_at, disabled_at) VALUES ($1, $2, $3, $4, $5, $6)";
    pub(super) const CLIENT_BY_ID: &str = "SELECT * FROM clients WHERE id = $1";
    pub(super) const DISABLE_CLIENT: &str =
        "UPDATE clients SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL";
    pub(super) const ROTATE_SECRET: &str =
        "UPDATE clients SET secret_hash = $1, secret_rotated_at = $2 WHERE id = $3";
    pub(super) const DELETE_CLIENT_TOKENS: &str = "DELETE FROM access_tokens WHERE client_id = $1";
    pub(super) const INSERT_TOKEN: &str = "INSERT INTO access_tokens (token_hash, client_id, \
         scopes, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
    pub(super) const REVOKE_SURPLUS_TOKENS: &str = "DELETE FROM access_tokens WHERE token_hash IN ( \
            SELECT token_hash FROM access_tokens \
            WHERE client_id = $1 AND token_hash <> $2 AND expires_at > $3 \
            ORDER BY issued_at DESC, token_hash DESC OFFSET $4) \
         RETURNING token_hash";
    pub(super) const BUMP_TOKEN_GENERATION: &str =
        "UPDATE clients SET token_generation = token_generation + 1 WHERE id = $1";
    pub(super) const TOKEN_BY_HASH: &str = "SELECT * FROM access_tokens WHERE token_hash = $1";
    pub(super) const DELETE_EXPIRED_TOKENS: &str =
        "DELETE FROM access_tokens WHERE expires_at < $1";

    pub(super) const INSERT_API_KEY: &str = "INSERT INTO api_keys (id, client_id, name, key_hash, \
         scopes, created_at, expires_at, revoked_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    pub(super) const API_KEY_BY_ID: &str = "SELECT * FROM api_keys WHERE id = $1";
    pub(super) const API_KEY_BY_HASH: &str = "SELECT * FROM api_keys WHERE key_hash = $1";
    pub(super) const API_KEYS_OF_CLIENT: &str =
        "SELECT * FROM api_keys WHERE client_id = $1 ORDER BY created_at, id";
    pub(super) const REVOKE_API_KEY: &str =
        "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
    /// A time never moves back: two gateways' batches may arrive in either order.
    pub(super) const TOUCH_API_KEY: &str = "UPDATE api_keys SET last_used_at = $1 \
         WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)";

    pub(super) const INSERT_PROMPT: &str = "INSERT INTO prompts (id, allow_caller_settings, name, \
         status, traffic, revision, created_at, updated_at, created_by, system_message_mode, \
         labels) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    pub(super) const INSERT_VERSION: &str = "INSERT INTO prompt_versions (prompt_id, version, \
         model_endpoint_ref, system_prompt, temperature, safety_guardrails, few_shot_examples, \
         system_prompt_tokens, tokenizer, created_at, created_by, template_messages, \
         variables_schema, tool_settings, fallback_endpoint_refs) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
    pub(super) const PROMPT_BY_ID: &str = "SELECT * FROM prompts WHERE id = $1";
    /// A pattern ignores ASCII case only, as SQLite's LIKE does: `lower` under the "C" collation
    /// folds A-Z and nothing else.
    pub(super) const LIST_PROMPTS: &str = "SELECT * FROM prompts \
         WHERE ($1::text IS NULL OR name = $1) \
           AND ($2::text IS NULL \
                OR lower(name) LIKE lower($2 COLLATE \"C\") ESCAPE '\\') \
           AND ($3::text IS NULL OR status = $3) \
           AND ($4::uuid IS NULL OR id > $4) \
         ORDER BY id LIMIT $5";
    pub(super) const VERSIONS_OF: &str = "SELECT * FROM prompt_versions WHERE prompt_id = $1";
    pub(super) const VERSION_LABELS_OF: &str =
        "SELECT version FROM prompt_versions WHERE prompt_id = $1";
    pub(super) const VERSION_BY_LABEL: &str =
        "SELECT * FROM prompt_versions WHERE prompt_id = $1 AND version = $2";
    pub(super) const UPDATE_PROMPT: &str = "UPDATE prompts SET revision = $1, updated_at = $2, \
         traffic = COALESCE($3, traffic), status = COALESCE($4, status), \
         system_message_mode = COALESCE($5, system_message_mode), \
         allow_caller_settings = COALESCE($6, allow_caller_settings), \
         labels = COALESCE($7, labels) \
         WHERE id = $8 AND revision = $9";
    pub(super) const PROMPT_REVISION: &str = "SELECT revision FROM prompts WHERE id = $1";

    pub(super) const LIST_INVOCATIONS: &str = "SELECT * FROM invocations \
         WHERE ($1::uuid IS NULL OR prompt_id = $1) \
           AND ($2::text IS NULL OR version = $2) \
           AND ($3::bigint IS NULL OR timestamp >= $3) \
           AND ($4::bigint IS NULL OR timestamp < $4) \
           AND ($5::text IS NULL OR status = $5) \
           AND ($6::text IS NULL OR label = $6) \
           AND ($7::bigint IS NULL OR seq > $7) \
         ORDER BY seq LIMIT $8";
    pub(super) const SET_FEEDBACK: &str = "UPDATE invocations SET feedback_score = $1, \
         feedback_comment = $2, feedback_at = $3 WHERE id = $4";
    pub(super) const FEEDBACK_STATE: &str = "SELECT client_id, prompt_id, feedback_score, \
         feedback_comment, feedback_at FROM invocations WHERE id = $1";
    /// Under READ COMMITTED a racer that waited on this row re-checks the condition on the row
    /// as the winner left it, so exactly one of two posts expecting the same feedback wins.
    pub(super) const REPLACE_FEEDBACK: &str = "UPDATE invocations SET feedback_score = $1, \
         feedback_comment = $2, feedback_at = $3 \
         WHERE id = $4 AND feedback_score IS NOT DISTINCT FROM $5::float8 \
           AND feedback_comment IS NOT DISTINCT FROM $6::text \
           AND feedback_at IS NOT DISTINCT FROM $7::bigint";
    pub(super) const PRUNE_INVOCATIONS: &str = "DELETE FROM invocations WHERE timestamp < $1";

    pub(super) const EXPORTER_CURSOR: &str =
        "SELECT last_seq FROM exporter_cursors WHERE exporter = $1";
    pub(super) const ACQUIRE_LEASE: &str = "INSERT INTO exporter_leases (exporter, holder, \
         expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (exporter) DO UPDATE SET holder = excluded.holder, \
         expires_at = excluded.expires_at \
         WHERE exporter_leases.holder = excluded.holder \
            OR exporter_leases.expires_at <= $4";
    pub(super) const RELEASE_LEASE: &str =
        "UPDATE exporter_leases SET expires_at = 0 WHERE exporter = $1 AND holder = $2";
    pub(super) const BEGIN_BATCH: &str = "UPDATE exporter_leases SET pending_first = $1, \
         pending_last = $2 WHERE exporter = $3 AND holder = $4 AND expires_at > $5";
    pub(super) const PENDING_BATCH: &str =
        "SELECT pending_first, pending_last FROM exporter_leases WHERE exporter = $1";

    pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit_entries (id, prompt_id, sequence, \
         recorded_at, actor, action, body, prev_hash, hash, leaf_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    pub(super) const LIST_AUDIT: &str = "SELECT sequence, body, hash, leaf_hash, actor, action, \
         prompt_id, recorded_at FROM audit_entries \
         WHERE ($1::uuid IS NULL OR prompt_id = $1) \
           AND ($2::text IS NULL OR action = $2) \
           AND ($3::text IS NULL OR actor = $3) \
           AND ($4::bigint IS NULL OR recorded_at >= $4) \
           AND ($5::bigint IS NULL OR recorded_at < $5) \
           AND ($6::bigint IS NULL OR sequence > $6) \
         ORDER BY sequence LIMIT $7";
    pub(super) const AUDIT_BY_SEQUENCE: &str = "SELECT sequence, body, hash, leaf_hash, actor, \
         action, prompt_id, recorded_at FROM audit_entries WHERE sequence = $1";
    pub(super) const LAST_AUDIT_WITH_ACTION: &str = "SELECT sequence, body, hash, leaf_hash, \
         actor, action, prompt_id, recorded_at FROM audit_entries WHERE action = $1 \
         ORDER BY sequence DESC LIMIT 1";
    pub(super) const AUDIT_SIZE: &str =
        "SELECT COALESCE(MAX(sequence), 0)::bigint FROM audit_entries";
    pub(super) const AUDIT_LEAF_HASHES: &str = "SELECT leaf_hash FROM audit_entries \
         WHERE sequence > $1 AND sequence <= $2 ORDER BY sequence";
    pub(super) const INSERT_TREE_HEAD: &str = "INSERT INTO audit_tree_heads (tree_size, key_id, \
         root_hash, signed_at, signature) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tree_size, key_id) DO NOTHING";
    /// The telemetry summary's filters as $1..$6 (a NULL switches its condition off); the finite
    /// range is $7 and $8 (infinities and NaN are left out), repeated wherever the rows are read.
    /// `summary.rs` says how the two queries work.
    const FILTER: &str = "($1::uuid IS NULL OR prompt_id = $1) \
         AND ($2::text IS NULL OR version = $2) \
         AND ($3::bigint IS NULL OR timestamp >= $3) AND ($4::bigint IS NULL OR timestamp < $4) \
         AND ($5::text IS NULL OR status = $5) AND ($6::text IS NULL OR label = $6)";
    const LATENCY: &str = "status <> 'BLOCKED' AND latency_ms BETWEEN $7::float8 AND $8::float8";
    const FEEDBACK: &str = "feedback_score BETWEEN $7::float8 AND $8::float8";
    const COST: &str = "cost_usd BETWEEN $7::float8 AND $8::float8";

    /// The summary's aggregates per version (or per endpoint). FILTER, the group's key and the
    /// rest are constants: nothing from the caller is spliced into the SQL.
    pub(super) fn summary_aggregates(group: crate::SummaryGroup) -> sqlx::AssertSqlSafe<String> {
        let key = group.key();
        sqlx::AssertSqlSafe(format!(
            "WITH m AS (SELECT {key} AS version, COUNT(*) AS n, \
                 COUNT(*) FILTER (WHERE status = 'ERROR') AS errors, \
                 COUNT(*) FILTER (WHERE status = 'BLOCKED') AS blocked, \
                 COALESCE(SUM(prompt_tokens), 0)::bigint AS prompt_tokens, \
                 COALESCE(SUM(completion_tokens), 0)::bigint AS completion_tokens, \
                 COUNT(*) FILTER (WHERE {LATENCY}) AS latency_n, \
                 SUM(latency_ms) FILTER (WHERE {LATENCY}) \
                   / NULLIF(COUNT(*) FILTER (WHERE {LATENCY}), 0) AS latency_mean, \
                 COUNT(*) FILTER (WHERE {FEEDBACK}) AS feedback_n, \
                 SUM(feedback_score) FILTER (WHERE {FEEDBACK}) \
                   / NULLIF(COUNT(*) FILTER (WHERE {FEEDBACK}), 0) AS feedback_mean, \
                 COUNT(schema_valid) AS schema_n, \
                 COUNT(*) FILTER (WHERE schema_valid = 1) AS schema_valid_n, \
                 COUNT(*) FILTER (WHERE {COST}) AS cost_n, \
                 SUM(cost_usd) FILTER (WHERE {COST}) AS cost_total, \
                 SUM(cost_usd) FILTER (WHERE {COST}) \
                   / NULLIF(COUNT(*) FILTER (WHERE {COST}), 0) AS cost_mean \
               FROM invocations WHERE {FILTER} GROUP BY {key}) \
             SELECT m.version, m.n, m.errors, m.blocked, m.prompt_tokens, m.completion_tokens, \
               m.latency_n, m.latency_mean, \
               SUM((i.latency_ms - m.latency_mean) * (i.latency_ms - m.latency_mean)) \
                 FILTER (WHERE i.{LATENCY}) AS latency_m2, \
               m.feedback_n, m.feedback_mean, \
               SUM((i.feedback_score - m.feedback_mean) * (i.feedback_score - m.feedback_mean)) \
                 FILTER (WHERE i.{FEEDBACK}) AS feedback_m2, \
               m.schema_n, m.schema_valid_n, m.cost_n, m.cost_total, m.cost_mean, \
               SUM((i.cost_usd - m.cost_mean) * (i.cost_usd - m.cost_mean)) \
                 FILTER (WHERE i.{COST}) AS cost_m2 \
             FROM (SELECT {key} AS version, status, latency_ms, feedback_score, cost_usd \
               FROM invocations \
               WHERE {FILTER}) AS i JOIN m ON m.version = i.version \
             GROUP BY m.version, m.n, m.errors, m.blocked, m.prompt_tokens, m.completion_tokens, \
               m.latency_n, m.latency_mean, m.feedback_n, m.feedback_mean, m.schema_n, \
               m.schema_valid_n, m.cost_n, m.cost_total, m.cost_mean"
        ))
    }

    /// One snapshot for both summary queries, so the ranks asked for exist.
    pub(super) const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

    /// The latencies at the wanted ranks, given as $9 and $10 (see [`bind_ranks`]).
    pub(super) fn summary_ranks(group: crate::SummaryGroup) -> sqlx::AssertSqlSafe<String> {
        let key = group.key();
        sqlx::AssertSqlSafe(format!(
            "SELECT r.version, r.i, r.latency_ms FROM ( \
               SELECT {key} AS version, latency_ms, \
                 ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY latency_ms) - 1 AS i \
               FROM invocations WHERE {FILTER} AND {LATENCY}) AS r \
             JOIN UNNEST($9::text[], $10::bigint[]) AS w (version, i) \
               ON w.version = r.version AND w.i = r.i"
        ))
    }

    /// The summary's rank query: version, rank, latency.
    pub(super) type RankQuery<'q> = QueryAs<'q, Postgres, (String, i64, f64), PgArguments>;

    /// The wanted versions and ranks as two parallel arrays.
    pub(super) fn bind_ranks(
        query: RankQuery<'_>,
        versions: Vec<String>,
        ranks: Vec<i64>,
    ) -> Result<RankQuery<'_>, StoreError> {
        Ok(query.bind(versions).bind(ranks))
    }
}

/// PostgreSQL keeps prompt ids as `uuid` and flags as `boolean`.
impl rows::Dialect for PgRow {
    fn prompt_id(&self, column: &str) -> Result<Uuid, StoreError> {
        self.try_get(column).map_err(db_error)
    }

    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        self.try_get(column).map_err(db_error)
    }

    fn audit_prompt_id(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        Ok(self
            .try_get::<Option<Uuid>, _>(column)?
            .map(|id| id.to_string()))
    }
}

methods::helpers!(sql);

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        // A fresh check on the health check's own connection, bounded so that a readiness
        // probe answers within a second whatever the database does.
        self.health.check(PING_BOUND).await
    }

    async fn close(&self) {
        self.health.close().await;
        self.pool.close().await;
    }
}

// The area traits: the bodies both stores share come from `crate::methods` (in this module, with
// this store's `sql`); the blocks `{ … }` hold this store's own methods.
methods::client_store!(PostgresStore, sql);

methods::api_key_store!(PostgresStore, sql);

methods::audit_store!(PostgresStore, sql);

impl PostgresStore {
    /// The version labels and the default versions of a listing page's prompts (see
    /// [`rows::listings`]), each read in one statement.
    async fn page_versions(
        &self,
        prompts: &[Prompt],
    ) -> Result<(Vec<(Uuid, VersionLabel)>, Vec<PromptVersion>), StoreError> {
        let ids: Vec<Uuid> = prompts.iter().map(|p| p.id).collect();
        let defaults: Vec<String> = prompts
            .iter()
            .map(|p| p.traffic.default_version().to_string())
            .collect();
        let labels: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT prompt_id, version FROM prompt_versions WHERE prompt_id = ANY($1::uuid[])",
        )
        .bind(&ids)
        .fetch_all(self.pool()?)
        .await
        .map_err(db_error)?;
        let labels = labels
            .into_iter()
            .map(|(id, label)| Ok((id, codec::version(&label)?)))
            .collect::<Result<_, StoreError>>()?;
        let defaults = sqlx::query(
            "SELECT v.* FROM prompt_versions AS v \
             JOIN UNNEST($1::uuid[], $2::text[]) AS w (prompt_id, version) \
               ON v.prompt_id = w.prompt_id AND v.version = w.version",
        )
        .bind(&ids)
        .bind(defaults)
        .fetch_all(self.pool()?)
        .await
        .map_err(db_error)?
        .iter()
        .map(rows::version)
        .collect::<Result<_, _>>()?;
        Ok((labels, defaults))
    }
}

methods::prompt_store!(PostgresStore, sql, {
    async fn prompt_revisions(&self) -> Result<Vec<(Uuid, i64)>, StoreError> {
        sqlx::query_as("SELECT id, revision FROM prompts")
            .fetch_all(self.pool()?)
            .await
            .map_err(db_error)
    }
});

methods::outbox_store!(PostgresStore, sql, {
    async fn advance_exporter_cursor(
        &self,
        exporter: &str,
        from: i64,
        to: i64,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        // A compare-and-set in one statement. A missing row counts as cursor 0, so only a move
        // from 0 may create it; racing creators meet on the primary key, and the upsert's WHERE
        // is checked against the row as the winner left it.
        let moved = if from == 0 {
            sqlx::query(
                "INSERT INTO exporter_cursors (exporter, last_seq, updated_at) \
                 VALUES ($1, $2, $3) \
                 ON CONFLICT (exporter) DO UPDATE SET last_seq = excluded.last_seq, \
                 updated_at = excluded.updated_at WHERE exporter_cursors.last_seq = 0",
            )
            .bind(exporter)
            .bind(to)
            .bind(millis(at))
            .execute(self.pool()?)
            .await
        } else {
            sqlx::query(
                "UPDATE exporter_cursors SET last_seq = $3, updated_at = $4 \
                 WHERE exporter = $1 AND last_seq = $2",
            )
            .bind(exporter)
            .bind(from)
            .bind(to)
            .bind(millis(at))
            .execute(self.pool()?)
            .await
        }
        .map_err(db_error)?
        .rows_affected();
        Ok(moved > 0)
    }
});

methods::telemetry_store!(PostgresStore, sql, {
    async fn insert_invocations(&self, records: &[InvocationRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        // One statement for the whole batch (one round trip to a remote database, not one per
        // record), as parallel arrays; WITH ORDINALITY keeps the batch's order in `seq`.
        let mut ids = Vec::with_capacity(records.len());
        let mut timestamps = Vec::with_capacity(records.len());
        let mut prompt_ids = Vec::with_capacity(records.len());
        let mut versions = Vec::with_capacity(records.len());
        let mut models = Vec::with_capacity(records.len());
        let mut statuses = Vec::with_capacity(records.len());
        let mut error_codes = Vec::with_capacity(records.len());
        let mut latencies = Vec::with_capacity(records.len());
        let mut upstream_latencies = Vec::with_capacity(records.len());
        let mut first_token_latencies = Vec::with_capacity(records.len());
        let mut prompt_tokens = Vec::with_capacity(records.len());
        let mut completion_tokens = Vec::with_capacity(records.len());
        let mut session_ids = Vec::with_capacity(records.len());
        let mut client_ids = Vec::with_capacity(records.len());
        let mut metadata = Vec::with_capacity(records.len());
        let mut labels = Vec::with_capacity(records.len());
        let mut variable_names = Vec::with_capacity(records.len());
        let mut schema_valid = Vec::with_capacity(records.len());
        let mut tool_call_counts = Vec::with_capacity(records.len());
        let mut api_key_ids = Vec::with_capacity(records.len());
        let mut costs = Vec::with_capacity(records.len());
        let mut endpoint_refs = Vec::with_capacity(records.len());
        let mut fallback_attempts = Vec::with_capacity(records.len());
        for r in records {
            ids.push(nul_free(&r.id));
            timestamps.push(millis(r.timestamp));
            prompt_ids.push(r.prompt_id);
            versions.push(nul_free(&r.version));
            models.push(nul_free(&r.model));
            statuses.push(r.status.as_str().to_owned());
            error_codes.push(nul_free_opt(r.error_code.as_deref()));
            latencies.push(r.latency_ms);
            upstream_latencies.push(r.upstream_latency_ms);
            first_token_latencies.push(r.time_to_first_token_ms);
            prompt_tokens.push(i64::from(r.prompt_tokens));
            completion_tokens.push(i64::from(r.completion_tokens));
            session_ids.push(nul_free_opt(r.session_id.as_deref()));
            client_ids.push(nul_free(&r.client_id));
            metadata.push(serde_json::to_string(&r.metadata).unwrap_or_else(|_| "{}".to_owned()));
            labels.push(nul_free_opt(r.label.as_deref()));
            variable_names.push(codec::variable_names_json(&r.variable_names));
            schema_valid.push(r.schema_valid.map(i64::from));
            tool_call_counts.push(i64::from(r.tool_call_count));
            api_key_ids.push(nul_free_opt(r.api_key_id.as_deref()));
            costs.push(r.cost_usd);
            endpoint_refs.push(nul_free_opt(
                Some(r.endpoint_ref.as_str()).filter(|e| !e.is_empty()),
            ));
            fallback_attempts
                .push(codec::attempts_json(&r.fallback_attempts).map(|a| nul_free(&a)));
        }
        let mut tx = self.pool()?.begin_with(BEGIN).await.map_err(db_error)?;
        // Batches commit one at a time, in the order of their sequence numbers (see the
        // migration 0002_invocations.sql): the keyset cursor never passes a gap that fills later.
        sqlx::query("LOCK TABLE invocations IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query(
            "INSERT INTO invocations (id, timestamp, prompt_id, version, model, status, \
             error_code, latency_ms, upstream_latency_ms, time_to_first_token_ms, prompt_tokens, \
             completion_tokens, session_id, client_id, metadata, label, variable_names, \
             schema_valid, tool_call_count, api_key_id, cost_usd, endpoint_ref, \
             fallback_attempts) \
             SELECT id, timestamp, prompt_id, version, model, status, error_code, latency_ms, \
             upstream_latency_ms, time_to_first_token_ms, prompt_tokens, completion_tokens, \
             session_id, client_id, metadata, label, variable_names, schema_valid, \
             tool_call_count, api_key_id, cost_usd, endpoint_ref, fallback_attempts \
             FROM UNNEST($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], \
                         $6::text[], $7::text[], $8::float8[], $9::float8[], $10::float8[], \
                         $11::bigint[], $12::bigint[], $13::text[], $14::text[], $15::text[], \
                         $16::text[], $17::text[], $18::bigint[], $19::bigint[], $20::text[], \
                         $21::float8[], $22::text[], $23::text[]) \
               WITH ORDINALITY AS r (id, timestamp, prompt_id, version, model, status, \
               error_code, latency_ms, upstream_latency_ms, time_to_first_token_ms, \
               prompt_tokens, completion_tokens, session_id, client_id, metadata, label, \
               variable_names, schema_valid, tool_call_count, api_key_id, cost_usd, \
               endpoint_ref, fallback_attempts, ord) \
             ORDER BY ord \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(ids)
        .bind(timestamps)
        .bind(prompt_ids)
        .bind(versions)
        .bind(models)
        .bind(statuses)
        .bind(error_codes)
        .bind(latencies)
        .bind(upstream_latencies)
        .bind(first_token_latencies)
        .bind(prompt_tokens)
        .bind(completion_tokens)
        .bind(session_ids)
        .bind(client_ids)
        .bind(metadata)
        .bind(labels)
        .bind(variable_names)
        .bind(schema_valid)
        .bind(tool_call_counts)
        .bind(api_key_ids)
        .bind(costs)
        .bind(endpoint_refs)
        .bind(fallback_attempts)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_and_timeouts_are_unavailable() {
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::PoolClosed));
        assert!(is_unavailable(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        ))));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
    }
}
