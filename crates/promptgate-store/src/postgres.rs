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
use promptgate_audit::merkle::{from_hex, to_hex};
use promptgate_audit::{
    AuditDraft, FilterColumns, GENESIS_HASH, Hash, SealedEntry, SignedTreeHead, TreeHead,
};
use promptgate_core::invocation::{InvocationRecord, InvocationStatus};
use promptgate_core::prompt::VersionSettings;
use promptgate_core::{Prompt, PromptStatus, PromptVersion, VersionLabel};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{self, from_millis, millis, nul_free, nul_free_opt};
use crate::{
    AccessToken, AuditFilter, Client, Feedback, PendingBatch, PromptFilter, PromptUpdate, Store,
    StoreError, StoredAuditEntry, StoredInvocation, TelemetryFilter,
};

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

pub(crate) fn db_error(err: sqlx::Error) -> StoreError {
    if is_unavailable(&err) {
        StoreError::Unavailable(err)
    } else {
        StoreError::Database(err)
    }
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn count(row: &PgRow, name: &str) -> Result<u32, StoreError> {
    let n: i64 = row.try_get(name).map_err(db_error)?;
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{name} {n}")))
}

fn client_from_row(row: &PgRow) -> Result<Client, StoreError> {
    Ok(Client {
        id: row.try_get("id").map_err(db_error)?,
        name: row.try_get("name").map_err(db_error)?,
        secret_hash: row.try_get("secret_hash").map_err(db_error)?,
        scopes: codec::scopes(row.try_get("scopes").map_err(db_error)?)?,
        created_at: from_millis(row.try_get("created_at").map_err(db_error)?)?,
        disabled_at: row
            .try_get::<Option<i64>, _>("disabled_at")
            .map_err(db_error)?
            .map(from_millis)
            .transpose()?,
    })
}

fn prompt_from_row(row: &PgRow) -> Result<Prompt, StoreError> {
    let status: String = row.try_get("status").map_err(db_error)?;
    Ok(Prompt {
        id: row.try_get("id").map_err(db_error)?,
        name: row.try_get("name").map_err(db_error)?,
        status: PromptStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("prompt status {status:?}")))?,
        traffic: codec::traffic_from_json(row.try_get("traffic").map_err(db_error)?)?,
        chat_completions: codec::chat_completions_policy(
            &row.try_get::<String, _>("system_message_mode")
                .map_err(db_error)?,
            row.try_get("allow_caller_settings").map_err(db_error)?,
        )?,
        revision: row.try_get("revision").map_err(db_error)?,
        created_at: from_millis(row.try_get("created_at").map_err(db_error)?)?,
        updated_at: from_millis(row.try_get("updated_at").map_err(db_error)?)?,
        created_by: row.try_get("created_by").map_err(db_error)?,
    })
}

fn version_from_row(row: &PgRow) -> Result<PromptVersion, StoreError> {
    let tokenizer: String = row.try_get("tokenizer").map_err(db_error)?;
    Ok(PromptVersion {
        prompt_id: row.try_get("prompt_id").map_err(db_error)?,
        version: codec::version(row.try_get("version").map_err(db_error)?)?,
        settings: VersionSettings {
            model_endpoint_ref: row.try_get("model_endpoint_ref").map_err(db_error)?,
            system_prompt: row.try_get("system_prompt").map_err(db_error)?,
            temperature: row.try_get("temperature").map_err(db_error)?,
            safety_guardrails: codec::guardrails_from_json(
                row.try_get("safety_guardrails").map_err(db_error)?,
            )?,
            few_shot_examples: codec::examples_from_json(
                row.try_get("few_shot_examples").map_err(db_error)?,
            )?,
        },
        system_prompt_tokens: count(row, "system_prompt_tokens")?,
        tokenizer: tokenizer
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("tokenizer {tokenizer:?}")))?,
        created_at: from_millis(row.try_get("created_at").map_err(db_error)?)?,
        created_by: row.try_get("created_by").map_err(db_error)?,
    })
}

fn invocation_from_row(row: &PgRow) -> Result<StoredInvocation, StoreError> {
    let status: String = row.try_get("status").map_err(db_error)?;
    let metadata: String = row.try_get("metadata").map_err(db_error)?;
    let feedback = match row
        .try_get::<Option<f64>, _>("feedback_score")
        .map_err(db_error)?
    {
        None => None,
        Some(score) => Some(Feedback {
            score,
            comment: row.try_get("feedback_comment").map_err(db_error)?,
            at: from_millis(
                row.try_get::<Option<i64>, _>("feedback_at")
                    .map_err(db_error)?
                    .unwrap_or_default(),
            )?,
        }),
    };
    Ok(StoredInvocation {
        seq: row.try_get("seq").map_err(db_error)?,
        record: InvocationRecord {
            id: row.try_get("id").map_err(db_error)?,
            timestamp: from_millis(row.try_get("timestamp").map_err(db_error)?)?,
            prompt_id: row.try_get("prompt_id").map_err(db_error)?,
            version: row.try_get("version").map_err(db_error)?,
            model: row.try_get("model").map_err(db_error)?,
            status: InvocationStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))?,
            error_code: row.try_get("error_code").map_err(db_error)?,
            latency_ms: row.try_get("latency_ms").map_err(db_error)?,
            upstream_latency_ms: row.try_get("upstream_latency_ms").map_err(db_error)?,
            time_to_first_token_ms: row.try_get("time_to_first_token_ms").map_err(db_error)?,
            prompt_tokens: count(row, "prompt_tokens")?,
            completion_tokens: count(row, "completion_tokens")?,
            session_id: row.try_get("session_id").map_err(db_error)?,
            client_id: row.try_get("client_id").map_err(db_error)?,
            metadata: serde_json::from_str(&metadata)
                .map_err(|_| StoreError::Corrupt(format!("metadata {metadata:?}")))?,
        },
        feedback,
    })
}

async fn insert_version(conn: &mut PgConnection, v: &PromptVersion) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO prompt_versions (prompt_id, version, model_endpoint_ref, system_prompt, \
         temperature, safety_guardrails, few_shot_examples, system_prompt_tokens, tokenizer, \
         created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(v.prompt_id)
    .bind(v.version.to_string())
    .bind(&v.settings.model_endpoint_ref)
    .bind(&v.settings.system_prompt)
    .bind(v.settings.temperature)
    .bind(codec::guardrails_json(&v.settings.safety_guardrails))
    .bind(codec::examples_json(&v.settings.few_shot_examples))
    .bind(i64::from(v.system_prompt_tokens))
    .bind(v.tokenizer.as_str())
    .bind(millis(v.created_at))
    .bind(&v.created_by)
    .execute(conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::DuplicateVersion {
                version: v.version.to_string(),
            }
        } else {
            db_error(e)
        }
    })?;
    Ok(())
}

/// Seals `drafts` onto the chain as it stands in this transaction and inserts them. The table
/// lock queues every other appender until this transaction ends, and under `READ COMMITTED` the
/// head is read by a statement that starts after the lock is granted, so it is the head the
/// previous appender committed.
async fn append_audit_in(
    conn: &mut PgConnection,
    drafts: &[AuditDraft],
) -> Result<Vec<SealedEntry>, StoreError> {
    if drafts.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query("LOCK TABLE audit_entries IN EXCLUSIVE MODE")
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT sequence, hash FROM audit_entries ORDER BY sequence DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?;
    let (mut sequence, mut prev_hash) = match last {
        Some((sequence, hash)) => (
            u64::try_from(sequence)
                .map_err(|_| StoreError::Corrupt(format!("audit sequence {sequence}")))?,
            stored_hash(&hash)?,
        ),
        None => (0, GENESIS_HASH),
    };
    let mut sealed_entries = Vec::with_capacity(drafts.len());
    for draft in drafts {
        sequence += 1;
        let sealed = draft.seal(sequence, &prev_hash);
        sqlx::query(
            "INSERT INTO audit_entries (sequence, id, recorded_at, actor, action, prompt_id, \
             body, prev_hash, hash, leaf_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(sql_sequence(sequence))
        .bind(draft.id)
        .bind(millis(draft.timestamp))
        .bind(nul_free(&draft.actor))
        .bind(nul_free(&draft.action))
        .bind(draft.prompt_id)
        .bind(&sealed.body)
        .bind(to_hex(&sealed.prev_hash))
        .bind(to_hex(&sealed.hash))
        .bind(to_hex(&sealed.leaf_hash))
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
        prev_hash = sealed.hash;
        sealed_entries.push(sealed);
    }
    Ok(sealed_entries)
}

fn stored_hash(hex: &str) -> Result<Hash, StoreError> {
    from_hex(hex).map_err(|_| StoreError::Corrupt(format!("audit hash {hex:?}")))
}

fn sql_sequence(sequence: u64) -> i64 {
    i64::try_from(sequence).unwrap_or(i64::MAX)
}

fn audit_from_row(row: &PgRow) -> Result<StoredAuditEntry, StoreError> {
    let sequence: i64 = row.try_get("sequence").map_err(db_error)?;
    let hash: String = row.try_get("hash").map_err(db_error)?;
    let leaf_hash: String = row.try_get("leaf_hash").map_err(db_error)?;
    let column =
        |name: &str| StoreError::Corrupt(format!("audit entry {sequence}: its {name} column"));
    Ok(StoredAuditEntry {
        sequence: u64::try_from(sequence)
            .map_err(|_| StoreError::Corrupt(format!("audit sequence {sequence}")))?,
        body: row.try_get("body").map_err(db_error)?,
        hash: stored_hash(&hash)?,
        leaf_hash: stored_hash(&leaf_hash)?,
        columns: FilterColumns {
            actor: row.try_get("actor").map_err(|_| column("actor"))?,
            action: row.try_get("action").map_err(|_| column("action"))?,
            prompt_id: row
                .try_get::<Option<Uuid>, _>("prompt_id")
                .map_err(|_| column("prompt_id"))?
                .map(|id| id.to_string()),
            recorded_at_ms: row
                .try_get("recorded_at")
                .map_err(|_| column("recorded_at"))?,
        },
    })
}

fn tree_head_from_row(row: &PgRow) -> Result<SignedTreeHead, StoreError> {
    let tree_size: i64 = row.try_get("tree_size").map_err(db_error)?;
    let root_hash: String = row.try_get("root_hash").map_err(db_error)?;
    Ok(SignedTreeHead {
        head: TreeHead {
            tree_size: u64::try_from(tree_size)
                .map_err(|_| StoreError::Corrupt(format!("tree size {tree_size}")))?,
            root_hash: stored_hash(&root_hash)?,
            timestamp: row.try_get("signed_at").map_err(db_error)?,
        },
        key_id: row.try_get("key_id").map_err(db_error)?,
        signature: row.try_get("signature").map_err(db_error)?,
    })
}

/// Turns a name filter into a `LIKE` pattern: `*` is the wildcard, and the pattern characters
/// `%`, `_` and `\` match themselves.
fn like_pattern(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '*' => out.push('%'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

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

    async fn count_clients(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM clients")
            .fetch_one(self.pool()?)
            .await
            .map_err(db_error)
    }

    async fn insert_client(&self, client: &Client, audit: &AuditDraft) -> Result<(), StoreError> {
        let mut tx = self.pool()?.begin_with(BEGIN).await.map_err(db_error)?;
        sqlx::query(
            "INSERT INTO clients (id, name, secret_hash, scopes, created_at, disabled_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(nul_free(&client.id))
        .bind(nul_free(&client.name))
        .bind(&client.secret_hash)
        .bind(client.scopes.to_string())
        .bind(millis(client.created_at))
        .bind(client.disabled_at.map(millis))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::DuplicateClient {
                    id: client.id.clone(),
                }
            } else {
                db_error(e)
            }
        })?;
        append_audit_in(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    async fn get_client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        sqlx::query("SELECT * FROM clients WHERE id = $1")
            .bind(nul_free(id))
            .fetch_optional(self.pool()?)
            .await
            .map_err(db_error)?
            .as_ref()
            .map(client_from_row)
            .transpose()
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        sqlx::query("SELECT * FROM clients ORDER BY created_at, id")
            .fetch_all(self.pool()?)
            .await
            .map_err(db_error)?
            .iter()
            .map(client_from_row)
            .collect()
    }

    async fn disable_client(
        &self,
        id: &str,
        at: OffsetDateTime,
        audit: &AuditDraft,
    ) -> Result<Option<Client>, StoreError> {
        let mut tx = self.pool()?.begin_with(BEGIN).await.map_err(db_error)?;
        let disabled_now = sqlx::query(
            "UPDATE clients SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL",
        )
        .bind(millis(at))
        .bind(nul_free(id))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
        if disabled_now > 0 {
            append_audit_in(&mut tx, std::slice::from_ref(audit)).await?;
        }
        let client = sqlx::query("SELECT * FROM clients WHERE id = $1")
            .bind(nul_free(id))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?
            .as_ref()
            .map(client_from_row)
            .transpose()?;
        tx.commit().await.map_err(db_error)?;
        Ok(client)
    }

    async fn rotate_client_secret(
        &self,
        id: &str,
        new_secret_hash: &str,
        at: OffsetDateTime,
        audit: &AuditDraft,
    ) -> Result<Option<Client>, StoreError> {
        let mut tx = self.pool()?.begin_with(BEGIN).await.map_err(db_error)?;
        let rotated = sqlx::query(
            "UPDATE clients SET secret_hash = $1, secret_rotated_at = $2 WHERE id = $3",
        )
        .bind(new_secret_hash)
        .bind(millis(at))
        .bind(nul_free(id))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
        if rotated == 0 {
            tx.rollback().await.map_err(db_error)?;
            return Ok(None);
        }
        sqlx::query("DELETE FROM access_tokens WHERE client_id = $1")
            .bind(nul_free(id))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        append_audit_in(&mut tx, std::slice::from_ref(audit)).await?;
        let client = sqlx::query("SELECT * FROM clients WHERE id = $1")
            .bind(nul_free(id))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?
            .as_ref()
            .map(client_from_row)
            .transpose()?;
        tx.commit().await.map_err(db_error)?;
        Ok(client)
    }

    async fn secret_rotations(&self) -> Result<Vec<(String, OffsetDateTime)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT id, secret_rotated_at FROM clients WHERE secret_rotated_at IS NOT NULL",
        )
        .fetch_all(self.pool()?)
        .await
        .map_err(db_error)?;
        rows.into_iter()
            .map(|(id, at)| Ok((id, from_millis(at)?)))
            .collect()
    }

    async fn disabled_client_ids(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT id FROM clients WHERE disabled_at IS NOT NULL")
            .fetch_all(self.pool()?)
            .await
            .map_err(db_error)
    }

    async fn insert_token(&self, token: &AccessToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO access_tokens (token_hash, client_id, scopes, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&token.token_hash)
        .bind(nul_free(&token.client_id))
        .bind(token.scopes.to_string())
        .bind(millis(token.issued_at))
        .bind(millis(token.expires_at))
        .execute(self.pool()?)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn insert_token_bounded(
        &self,
        token: &AccessToken,
        max_live: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool()?.begin_with(BEGIN).await.map_err(db_error)?;
        // The client's row lock serialises issuers of one client across replicas, so two of
        // them never both count the tokens before either deletes.
        sqlx::query("SELECT 1 FROM clients WHERE id = $1 FOR UPDATE")
            .bind(nul_free(&token.client_id))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query(
            "INSERT INTO access_tokens (token_hash, client_id, scopes, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&token.token_hash)
        .bind(nul_free(&token.client_id))
        .bind(token.scopes.to_string())
        .bind(millis(token.issued_at))
        .bind(millis(token.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        // The others newest first; past the first `max_live - 1` of them, all go.
        let revoked: Vec<String> = sqlx::query_scalar(
            "DELETE FROM access_tokens WHERE token_hash IN ( \
                SELECT token_hash FROM access_tokens \
                WHERE client_id = $1 AND token_hash <> $2 AND expires_at > $3 \
                ORDER BY issued_at DESC, token_hash DESC OFFSET $4) \
             RETURNING token_hash",
        )
        .bind(nul_free(&token.client_id))
        .bind(&token.token_hash)
        .bind(millis(now))
        .bind(i64::from(max_live.saturating_sub(1)))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        if !revoked.is_empty() {
            sqlx::query("UPDATE clients SET token_generation = token_generation + 1 WHERE id = $1")
                .bind(nul_free(&token.client_id))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(revoked)
    }

    async fn token_generations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query_as("SELECT id, token_generation FROM clients WHERE token_generation > 0")
            .fetch_all(self.pool()?)
            .await
            .map_err(db_error)
    }

    async fn find_token(&self, token_hash: &str) -> Result<Option<AccessToken>, StoreError> {
        let row = sqlx::query("SELECT * FROM access_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(self.pool()?)
            .await
            .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(AccessToken {
            token_hash: row.try_get("token_hash").map_err(db_error)?,
            client_id: row.try_get("client_id").map_err(db_error)?,
            scopes: codec::scopes(row.try_get("scopes").map_err(db_error)?)?,
            issued_at: from_millis(row.try_get("issued_at").map_err(db_error)?)?,
            expires_at: from_millis(row.try_get("expires_at").map_err(db_error)?)?,
        }))
    }

    async fn delete_expired_tokens(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM access_tokens WHERE expires_at < $1")
            .bind(millis(now))
            .execute(self.pool()?)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected())
    }

    async fn create_prompt(
        &self,
        prompt: &Prompt,
        first: &PromptVersion,
        audit: &[AuditDraft],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool()?.begin_with(BEGIN).await.map_err(db_error)?;
        sqlx::query(
            "INSERT INTO prompts (id, name, status, traffic, revision, created_at, updated_at, \
             created_by, system_message_mode, allow_caller_settings) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(prompt.id)
        .bind(&prompt.name)
        .bind(prompt.status.as_str())
        .bind(codec::traffic_json(&prompt.traffic))
        .bind(prompt.revision)
        .bind(millis(prompt.created_at))
        .bind(millis(prompt.updated_at))
        .bind(&prompt.created_by)
        .bind(prompt.chat_completions.system_message.as_str())
        .bind(prompt.chat_completions.allow_caller_settings)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::DuplicateName {
                    name: prompt.name.clone(),
                }
            } else {
                db_error(e)
            }
        })?;
        insert_version(&mut tx, first).await?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    async fn get_prompt(&self, id: Uuid) -> Result<Option<Prompt>, StoreError> {
        sqlx::query("SELECT * FROM prompts WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool()?)
            .await
            .map_err(db_error)?
            .as_ref()
            .map(prompt_from_row)
            .transpose()
    }

    async fn list_prompts(
        &self,
        filter: &PromptFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Prompt>, StoreError> {
        // Each filter is bound as a parameter; a NULL parameter switches its condition off. A
        // pattern ignores ASCII case only, as SQLite's LIKE does: `lower` under the "C"
        // collation folds A-Z and nothing else.
        let (exact, pattern) = match &filter.name {
            Some(name) if name.contains('*') => (None, Some(like_pattern(&nul_free(name)))),
            Some(name) => (Some(nul_free(name)), None),
            None => (None, None),
        };
        sqlx::query(
            "SELECT * FROM prompts \
             WHERE ($1::text IS NULL OR name = $1) \
               AND ($2::text IS NULL \
                    OR lower(name) LIKE lower($2 COLLATE \"C\") ESCAPE '\\') \
               AND ($3::text IS NULL OR status = $3) \
               AND ($4::uuid IS NULL OR id > $4) \
             ORDER BY id LIMIT $5",
        )
        .bind(exact)
        .bind(pattern)
        .bind(filter.status.map(PromptStatus::as_str))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.pool()?)
        .await
        .map_err(db_error)?
        .iter()
        .map(prompt_from_row)
        .collect()
    }

    async fn prompt_revisions(&self) -> Result<Vec<(Uuid, i64)>, StoreError> {
        sqlx::query_as("SELECT id, revision FROM prompts")
            .fetch_all(self.pool()?)
            .await
            .map_err(db_error)
    }

    async fn list_versions(&self, prompt_id: Uuid) -> Result<Vec<PromptVersion>, StoreError> {
        sqlx::query("SELECT * FROM prompt_versions WHERE prompt_id = $1")
            .bind(prompt_id)
            .fetch_all(self.pool()?)
            .await
            .map_err(db_error)?
            .iter()
            .map(version_from_row)
            .collect()
    }

    async fn version_labels(&self, prompt_id: Uuid) -> Result<Vec<VersionLabel>, StoreError> {
        let labels: Vec<String> =
            sqlx::query_scalar("SELECT version FROM prompt_versions WHERE prompt_id = $1")
                .bind(prompt_id)
                .fetch_all(self.pool()?)
                .await
                .map_err(db_error)?;
        labels.iter().map(|l| codec::version(l)).collect()
    }

    async fn get_version(
        &self,
        prompt_id: Uuid,
        version: &VersionLabel,
    ) -> Result<Option<PromptVersion>, StoreError> {
        sqlx::query("SELECT * FROM prompt_versions WHERE prompt_id = $1 AND version = $2")
            .bind(prompt_id)
            .bind(version.to_string())
            .fetch_optional(self.pool()?)
            .await
            .map_err(db_error)?
            .as_ref()
            .map(version_from_row)
            .transpose()
    }

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
             completion_tokens, session_id, client_id, metadata) \
             SELECT id, timestamp, prompt_id, version, model, status, error_code, latency_ms, \
             upstream_latency_ms, time_to_first_token_ms, prompt_tokens, completion_tokens, \
             session_id, client_id, metadata \
             FROM UNNEST($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], \
                         $6::text[], $7::text[], $8::float8[], $9::float8[], $10::float8[], \
                         $11::bigint[], $12::bigint[], $13::text[], $14::text[], $15::text[]) \
               WITH ORDINALITY AS r (id, timestamp, prompt_id, version, model, status, \
               error_code, latency_ms, upstream_latency_ms, time_to_first_token_ms, \
               prompt_tokens, completion_tokens, session_id, client_id, metadata, ord) \
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
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    async fn list_invocations(
        &self,
        filter: &TelemetryFilter,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredInvocation>, StoreError> {
        // Each filter is bound as a parameter; a NULL parameter switches its condition off.
        sqlx::query(
            "SELECT * FROM invocations \
             WHERE ($1::uuid IS NULL OR prompt_id = $1) \
               AND ($2::text IS NULL OR version = $2) \
               AND ($3::bigint IS NULL OR timestamp >= $3) \
               AND ($4::bigint IS NULL OR timestamp < $4) \
               AND ($5::text IS NULL OR status = $5) \
               AND ($6::bigint IS NULL OR seq > $6) \
             ORDER BY seq LIMIT $7",
        )
        .bind(filter.prompt_id)
        .bind(nul_free_opt(filter.version.as_deref()))
        .bind(filter.start.map(millis))
        .bind(filter.end.map(millis))
        .bind(filter.status.map(InvocationStatus::as_str))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.pool()?)
        .await
        .map_err(db_error)?
        .iter()
        .map(invocation_from_row)
        .collect()
    }

    async fn summary_aggregates(
        &self,
        filter: &TelemetryFilter,
    ) -> Result<Vec<crate::VersionAggregate>, StoreError> {
        // The filters as $1..$5 (a NULL switches its condition off), the finite range as $6 and
        // $7 (infinities and NaN are left out), repeated wherever the rows are read;
        // `summary.rs` says how the two queries work.
        const FILTER: &str = "($1::uuid IS NULL OR prompt_id = $1) \
             AND ($2::text IS NULL OR version = $2) \
             AND ($3::bigint IS NULL OR timestamp >= $3) AND ($4::bigint IS NULL OR timestamp < $4) \
             AND ($5::text IS NULL OR status = $5)";
        const LATENCY: &str =
            "status <> 'BLOCKED' AND latency_ms BETWEEN $6::float8 AND $7::float8";
        const FEEDBACK: &str = "feedback_score BETWEEN $6::float8 AND $7::float8";
        let aggregate_sql = sqlx::AssertSqlSafe(format!(
            "WITH m AS (SELECT version, COUNT(*) AS n, \
                 COUNT(*) FILTER (WHERE status = 'ERROR') AS errors, \
                 COUNT(*) FILTER (WHERE status = 'BLOCKED') AS blocked, \
                 COALESCE(SUM(prompt_tokens), 0)::bigint AS prompt_tokens, \
                 COALESCE(SUM(completion_tokens), 0)::bigint AS completion_tokens, \
                 COUNT(*) FILTER (WHERE {LATENCY}) AS latency_n, \
                 SUM(latency_ms) FILTER (WHERE {LATENCY}) \
                   / NULLIF(COUNT(*) FILTER (WHERE {LATENCY}), 0) AS latency_mean, \
                 COUNT(*) FILTER (WHERE {FEEDBACK}) AS feedback_n, \
                 SUM(feedback_score) FILTER (WHERE {FEEDBACK}) \
                   / NULLIF(COUNT(*) FILTER (WHERE {FEEDBACK}), 0) AS feedback_mean \
               FROM invocations WHERE {FILTER} GROUP BY version) \
             SELECT m.version, m.n, m.errors, m.blocked, m.prompt_tokens, m.completion_tokens, \
               m.latency_n, m.latency_mean, \
               SUM((i.latency_ms - m.latency_mean) * (i.latency_ms - m.latency_mean)) \
                 FILTER (WHERE i.{LATENCY}) AS latency_m2, \
               m.feedback_n, m.feedback_mean, \
               SUM((i.feedback_score - m.feedback_mean) * (i.feedback_score - m.feedback_mean)) \
                 FILTER (WHERE i.{FEEDBACK}) AS feedback_m2 \
             FROM (SELECT version, status, latency_ms, feedback_score FROM invocations \
               WHERE {FILTER}) AS i JOIN m ON m.version = i.version \
             GROUP BY m.version, m.n, m.errors, m.blocked, m.prompt_tokens, m.completion_tokens, \
               m.latency_n, m.latency_mean, m.feedback_n, m.feedback_mean"
        ));
        // One snapshot for both queries, so the ranks asked for exist.
        let mut tx = self
            .pool()?
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(db_error)?;
        let rows: Vec<crate::summary::AggregateRow> = sqlx::query(aggregate_sql)
            .bind(filter.prompt_id)
            .bind(nul_free_opt(filter.version.as_deref()))
            .bind(filter.start.map(millis))
            .bind(filter.end.map(millis))
            .bind(filter.status.map(InvocationStatus::as_str))
            .bind(-f64::MAX)
            .bind(f64::MAX)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?
            .iter()
            .map(|row| crate::summary::AggregateRow::from_row(row).map_err(db_error))
            .collect::<Result<_, StoreError>>()?;
        let (versions, ranks) = crate::summary::wanted_ranks(&rows);
        let mut ranked = std::collections::HashMap::new();
        if !ranks.is_empty() {
            let rank_sql = sqlx::AssertSqlSafe(format!(
                "SELECT r.version, r.i, r.latency_ms FROM ( \
                   SELECT version, latency_ms, \
                     ROW_NUMBER() OVER (PARTITION BY version ORDER BY latency_ms) - 1 AS i \
                   FROM invocations WHERE {FILTER} AND {LATENCY}) AS r \
                 JOIN UNNEST($8::text[], $9::bigint[]) AS w (version, i) \
                   ON w.version = r.version AND w.i = r.i"
            ));
            let values: Vec<(String, i64, f64)> = sqlx::query_as(rank_sql)
                .bind(filter.prompt_id)
                .bind(nul_free_opt(filter.version.as_deref()))
                .bind(filter.start.map(millis))
                .bind(filter.end.map(millis))
                .bind(filter.status.map(InvocationStatus::as_str))
                .bind(-f64::MAX)
                .bind(f64::MAX)
                .bind(versions)
                .bind(ranks)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
            ranked.extend(values.into_iter().map(|(v, i, x)| ((v, i), x)));
        }
        tx.commit().await.map_err(db_error)?;
        Ok(crate::summary::assemble(rows, &ranked))
    }

    async fn exporter_cursor(&self, exporter: &str) -> Result<i64, StoreError> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM exporter_cursors WHERE exporter = $1")
                .bind(exporter)
                .fetch_optional(self.pool()?)
                .await
                .map_err(db_error)?;
        Ok(seq.unwrap_or(0))
    }

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

    async fn try_acquire_exporter_lease(
        &self,
        exporter: &str,
        holder: &str,
        now: OffsetDateTime,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        // One conditional upsert: the row is written only when it is new, ours, or expired, so
        // of two processes racing for a free or lapsed lease exactly one sees a row changed.
        let granted = sqlx::query(
            "INSERT INTO exporter_leases (exporter, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (exporter) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE exporter_leases.holder = excluded.holder \
                OR exporter_leases.expires_at <= $4",
        )
        .bind(exporter)
        .bind(holder)
        .bind(codec::lease_expiry(now, ttl))
        .bind(millis(now))
        .execute(self.pool()?)
        .await
        .map_err(db_error)?
        .rows_affected();
        Ok(granted > 0)
    }

    async fn release_exporter_lease(&self, exporter: &str, holder: &str) -> Result<(), StoreError> {
        // Expired rather than deleted, so that the pending batch survives for the next holder.
        sqlx::query(
            "UPDATE exporter_leases SET expires_at = 0 WHERE exporter = $1 AND holder = $2",
        )
        .bind(exporter)
        .bind(holder)
        .execute(self.pool()?)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn begin_exporter_batch(
        &self,
        exporter: &str,
        holder: &str,
        now: OffsetDateTime,
        batch: PendingBatch,
    ) -> Result<bool, StoreError> {
        let recorded = sqlx::query(
            "UPDATE exporter_leases SET pending_first = $1, pending_last = $2 \
             WHERE exporter = $3 AND holder = $4 AND expires_at > $5",
        )
        .bind(batch.first_seq)
        .bind(batch.last_seq)
        .bind(exporter)
        .bind(holder)
        .bind(millis(now))
        .execute(self.pool()?)
        .await
        .map_err(db_error)?
        .rows_affected();
        Ok(recorded > 0)
    }

    async fn pending_exporter_batch(
        &self,
        exporter: &str,
    ) -> Result<Option<PendingBatch>, StoreError> {
        let row: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT pending_first, pending_last FROM exporter_leases WHERE exporter = $1",
        )
        .bind(exporter)
        .fetch_optional(self.pool()?)
        .await
        .map_err(db_error)?;
        Ok(match row {
            Some((Some(first_seq), Some(last_seq))) => Some(PendingBatch {
                first_seq,
                last_seq,
            }),
            _ => None,
        })
    }

    async fn last_invocation_seq(&self) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM invocations")
            .fetch_one(self.pool()?)
            .await
            .map_err(db_error)?;
        Ok(seq.unwrap_or(0))
    }

    async fn set_feedback(&self, id: &str, feedback: &Feedback) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE invocations SET feedback_score = $1, feedback_comment = $2, \
             feedback_at = $3 WHERE id = $4",
        )
        .bind(feedback.score)
        .bind(nul_free_opt(feedback.comment.as_deref()))
        .bind(millis(feedback.at))
        .bind(nul_free(id))
        .execute(self.pool()?)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn feedback_state(&self, id: &str) -> Result<Option<crate::FeedbackState>, StoreError> {
        let row = sqlx::query(
            "SELECT client_id, prompt_id, feedback_score, feedback_comment, feedback_at \
             FROM invocations WHERE id = $1",
        )
        .bind(nul_free(id))
        .fetch_optional(self.pool()?)
        .await
        .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        let feedback = match row
            .try_get::<Option<f64>, _>("feedback_score")
            .map_err(db_error)?
        {
            None => None,
            Some(score) => Some(Feedback {
                score,
                comment: row.try_get("feedback_comment").map_err(db_error)?,
                at: from_millis(
                    row.try_get::<Option<i64>, _>("feedback_at")
                        .map_err(db_error)?
                        .unwrap_or_default(),
                )?,
            }),
        };
        Ok(Some(crate::FeedbackState {
            client_id: row.try_get("client_id").map_err(db_error)?,
            prompt_id: row.try_get("prompt_id").map_err(db_error)?,
            feedback,
        }))
    }

    async fn replace_feedback(
        &self,
        id: &str,
        expected: Option<&Feedback>,
        feedback: &Feedback,
        audit: Option<&AuditDraft>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool()?.begin_with(BEGIN).await.map_err(db_error)?;
        // Under READ COMMITTED a racer that waited on this row re-checks the condition on the
        // row as the winner left it, so exactly one of two posts expecting the same feedback
        // wins.
        let done = sqlx::query(
            "UPDATE invocations SET feedback_score = $1, feedback_comment = $2, feedback_at = $3 \
             WHERE id = $4 AND feedback_score IS NOT DISTINCT FROM $5::float8 \
               AND feedback_comment IS NOT DISTINCT FROM $6::text \
               AND feedback_at IS NOT DISTINCT FROM $7::bigint",
        )
        .bind(feedback.score)
        .bind(nul_free_opt(feedback.comment.as_deref()))
        .bind(millis(feedback.at))
        .bind(nul_free(id))
        .bind(expected.map(|f| f.score))
        .bind(expected.and_then(|f| nul_free_opt(f.comment.as_deref())))
        .bind(expected.map(|f| millis(f.at)))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if done.rows_affected() == 0 {
            tx.rollback().await.map_err(db_error)?;
            return Ok(false);
        }
        if let Some(audit) = audit {
            append_audit_in(&mut tx, std::slice::from_ref(audit)).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn prune_invocations(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM invocations WHERE timestamp < $1")
            .bind(millis(before))
            .execute(self.pool()?)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected())
    }

    async fn update_prompt(&self, update: &PromptUpdate) -> Result<(), StoreError> {
        let mut tx = self.pool()?.begin_with(BEGIN).await.map_err(db_error)?;
        let changed = sqlx::query(
            "UPDATE prompts SET revision = $1, updated_at = $2, \
             traffic = COALESCE($3, traffic), status = COALESCE($4, status), \
             system_message_mode = COALESCE($7, system_message_mode), \
             allow_caller_settings = COALESCE($8, allow_caller_settings) \
             WHERE id = $5 AND revision = $6",
        )
        .bind(update.new_revision)
        .bind(millis(update.updated_at))
        .bind(update.traffic.as_ref().map(codec::traffic_json))
        .bind(update.status.map(PromptStatus::as_str))
        .bind(update.id)
        .bind(update.expected_revision)
        .bind(update.chat_completions.map(|p| p.system_message.as_str()))
        .bind(update.chat_completions.map(|p| p.allow_caller_settings))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
        if changed == 0 {
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT revision FROM prompts WHERE id = $1")
                    .bind(update.id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
            return Err(match exists {
                Some(_) => StoreError::StaleRevision,
                None => StoreError::NotFound,
            });
        }
        if let Some(version) = &update.new_version {
            insert_version(&mut tx, version).await?;
        }
        append_audit_in(&mut tx, &update.audit).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    async fn append_audit(&self, drafts: &[AuditDraft]) -> Result<Vec<SealedEntry>, StoreError> {
        let mut tx = self.pool()?.begin_with(BEGIN).await.map_err(db_error)?;
        let sealed = append_audit_in(&mut tx, drafts).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(sealed)
    }

    async fn list_audit(
        &self,
        filter: &AuditFilter,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredAuditEntry>, StoreError> {
        sqlx::query(
            "SELECT sequence, body, hash, leaf_hash, actor, action, prompt_id, recorded_at \
             FROM audit_entries \
             WHERE ($1::uuid IS NULL OR prompt_id = $1) \
               AND ($2::text IS NULL OR action = $2) \
               AND ($3::text IS NULL OR actor = $3) \
               AND ($4::bigint IS NULL OR recorded_at >= $4) \
               AND ($5::bigint IS NULL OR recorded_at < $5) \
               AND ($6::bigint IS NULL OR sequence > $6) \
             ORDER BY sequence LIMIT $7",
        )
        .bind(filter.prompt_id)
        .bind(nul_free_opt(filter.action.as_deref()))
        .bind(nul_free_opt(filter.actor.as_deref()))
        .bind(filter.start.map(millis))
        .bind(filter.end.map(millis))
        .bind(after.map(sql_sequence))
        .bind(i64::from(limit))
        .fetch_all(self.pool()?)
        .await
        .map_err(db_error)?
        .iter()
        .map(audit_from_row)
        .collect()
    }

    async fn get_audit(&self, sequence: u64) -> Result<Option<StoredAuditEntry>, StoreError> {
        sqlx::query(
            "SELECT sequence, body, hash, leaf_hash, actor, action, prompt_id, recorded_at \
             FROM audit_entries WHERE sequence = $1",
        )
        .bind(sql_sequence(sequence))
        .fetch_optional(self.pool()?)
        .await
        .map_err(db_error)?
        .as_ref()
        .map(audit_from_row)
        .transpose()
    }

    async fn last_audit_with_action(
        &self,
        action: &str,
    ) -> Result<Option<StoredAuditEntry>, StoreError> {
        sqlx::query(
            "SELECT sequence, body, hash, leaf_hash, actor, action, prompt_id, recorded_at \
             FROM audit_entries WHERE action = $1 \
             ORDER BY sequence DESC LIMIT 1",
        )
        .bind(nul_free(action))
        .fetch_optional(self.pool()?)
        .await
        .map_err(db_error)?
        .as_ref()
        .map(audit_from_row)
        .transpose()
    }

    async fn audit_size(&self) -> Result<u64, StoreError> {
        let size: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(sequence), 0)::bigint FROM audit_entries")
                .fetch_one(self.pool()?)
                .await
                .map_err(db_error)?;
        u64::try_from(size).map_err(|_| StoreError::Corrupt(format!("audit sequence {size}")))
    }

    async fn audit_leaf_hashes(&self, after: u64, up_to: u64) -> Result<Vec<Hash>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT leaf_hash FROM audit_entries WHERE sequence > $1 AND sequence <= $2 \
             ORDER BY sequence",
        )
        .bind(sql_sequence(after))
        .bind(sql_sequence(up_to))
        .fetch_all(self.pool()?)
        .await
        .map_err(db_error)?;
        rows.iter().map(|hex| stored_hash(hex)).collect()
    }

    async fn insert_tree_head(&self, head: &SignedTreeHead) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_tree_heads (tree_size, key_id, root_hash, signed_at, signature) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tree_size, key_id) DO NOTHING",
        )
        .bind(sql_sequence(head.head.tree_size))
        .bind(&head.key_id)
        .bind(to_hex(&head.head.root_hash))
        .bind(&head.head.timestamp)
        .bind(&head.signature)
        .execute(self.pool()?)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn latest_tree_head(&self) -> Result<Option<SignedTreeHead>, StoreError> {
        sqlx::query(
            "SELECT * FROM audit_tree_heads ORDER BY tree_size DESC, signed_at DESC LIMIT 1",
        )
        .fetch_optional(self.pool()?)
        .await
        .map_err(db_error)?
        .as_ref()
        .map(tree_head_from_row)
        .transpose()
    }

    async fn tree_heads(&self) -> Result<Vec<SignedTreeHead>, StoreError> {
        sqlx::query("SELECT * FROM audit_tree_heads ORDER BY tree_size, signed_at")
            .fetch_all(self.pool()?)
            .await
            .map_err(db_error)?
            .iter()
            .map(tree_head_from_row)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_pattern_escapes_sql_wildcards() {
        assert_eq!(like_pattern("support*"), "support%");
        assert_eq!(like_pattern("50%_off\\*"), "50\\%\\_off\\\\%");
    }

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
