//! promptgate's storage: the [`Store`] trait that the server talks to, and its implementations
//! (SQLite, the embedded default; PostgreSQL for several replicas sharing one database).
//!
//! Architecture invariant: the store keeps what it is given. Ids, timestamps, revisions and every
//! rule are decided by the caller; the store only guarantees atomicity (a change and its checks
//! commit together or not at all) and reports conflicts it detects with constraints. One
//! exception, the same in both stores: a U+0000 in caller-supplied text (a session id, a feedback
//! comment, a client name, a lookup key) is stored and looked up as U+FFFD, because PostgreSQL's
//! text cannot hold it and refusing would fail a whole telemetry batch or a request.

#![warn(missing_docs)]

mod codec;
mod health;
mod methods;
pub mod migrate;
mod postgres;
mod rows;
mod seal;
mod sqlite;
mod summary;
#[cfg(feature = "test-postgres")]
pub mod testing;

use async_trait::async_trait;
use promptgate_audit::{AuditDraft, Hash, SealedEntry, SignedTreeHead};
use promptgate_core::invocation::{InvocationRecord, InvocationStatus};
use promptgate_core::{
    ChatCompletionsPolicy, Prompt, PromptStatus, PromptVersion, ScopeSet, TrafficSplit,
    VersionLabel,
};
use time::OffsetDateTime;
use uuid::Uuid;

pub use postgres::{PoolSettings, PostgresStore};
pub use sqlite::SqliteStore;

/// The storage traits, for `use promptgate_store::prelude::*;`: calling a method of an area
/// trait needs that trait in scope, even through `Arc<dyn Store>`.
pub mod prelude {
    pub use crate::{
        ApiKeyStore, AuditStore, ClientStore, OutboxStore, PromptStore, Store, TelemetryStore,
    };
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A prompt with this name exists (the name is unique).
    #[error("a prompt named {name:?} already exists")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// The version exists already for this prompt.
    #[error("version {version} already exists")]
    DuplicateVersion {
        /// The version label.
        version: String,
    },
    /// A client with this id exists.
    #[error("a client with id {id:?} already exists")]
    DuplicateClient {
        /// The client id.
        id: String,
    },
    /// The prompt's revision is not the one the change was based on.
    #[error("the prompt changed since it was read")]
    StaleRevision,
    /// The row to change does not exist.
    #[error("not found")]
    NotFound,
    /// The database URL names a database this build cannot open; it holds the URL as it may
    /// be shown (`promptgate_core::redact::database_url_for_display`: no password).
    #[error("unsupported database url {0:?}; use sqlite://PATH or postgres://HOST/DATABASE")]
    UnsupportedUrl(String),
    /// The database cannot be reached or is busy beyond the timeout.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Any other database failure.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// Migrations could not be applied.
    #[error("database migration failed")]
    Migration(#[source] sqlx::migrate::MigrateError),
    /// A stored value cannot be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// An OAuth client as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    /// Client id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// SHA-256 hex of the secret.
    pub secret_hash: String,
    /// Scopes it may request.
    pub scopes: ScopeSet,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it was disabled, if it was.
    pub disabled_at: Option<OffsetDateTime>,
}

/// An issued access token as stored (by hash).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessToken {
    /// SHA-256 hex of the token.
    pub token_hash: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The scopes it grants.
    pub scopes: ScopeSet,
    /// When it was issued.
    pub issued_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

/// A long-lived API key as stored (by hash): a bearer credential of its client with a subset
/// of the client's scopes, kept after revocation so that the list and the audit log still
/// name it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    /// The key's id (a UUID), which lists, telemetry and the audit log name; never the key.
    pub id: String,
    /// The client the key acts as.
    pub client_id: String,
    /// What the key is for, as its creator named it.
    pub name: String,
    /// SHA-256 hex of the key.
    pub key_hash: String,
    /// The scopes it grants (a subset of the client's when it was created).
    pub scopes: ScopeSet,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it stops working; `None` for a key that does not expire.
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// When it was last used, as recorded by the gateways' batched updates (a few seconds late).
    pub last_used_at: Option<OffsetDateTime>,
}

/// Which prompts a listing returns.
#[derive(Debug, Clone, Default)]
pub struct PromptFilter {
    /// Exact name, or a pattern where `*` matches any run of characters.
    pub name: Option<String>,
    /// Only prompts with this status.
    pub status: Option<PromptStatus>,
}

/// A prompt of a listing page with what a listing shows of it, read for the whole page at
/// once (a fixed number of queries per page, not two per prompt).
#[derive(Debug, Clone, PartialEq)]
pub struct PromptListing {
    /// The prompt.
    pub prompt: Prompt,
    /// Its version labels, oldest first by semver.
    pub labels: Vec<VersionLabel>,
    /// Its default version (the traffic split's); `None` only when the database does not hold
    /// it, which the caller reports as it reports a missing version.
    pub default_version: Option<PromptVersion>,
}

/// Which invocation records a telemetry query covers. Every part is optional.
#[derive(Debug, Clone, Default)]
pub struct TelemetryFilter {
    /// Only this prompt.
    pub prompt_id: Option<Uuid>,
    /// Only this version.
    pub version: Option<String>,
    /// Received at or after.
    pub start: Option<OffsetDateTime>,
    /// Received before.
    pub end: Option<OffsetDateTime>,
    /// Only this outcome.
    pub status: Option<InvocationStatus>,
    /// Only invocations that named this label.
    pub label: Option<String>,
}

/// A stored invocation record with its storage sequence and feedback.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredInvocation {
    /// Storage order; the keyset cursor of telemetry pages.
    pub seq: i64,
    /// The record.
    pub record: InvocationRecord,
    /// The caller's feedback, if any.
    pub feedback: Option<Feedback>,
}

/// What a summary's entities are: versions (the default) or the model endpoints that served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SummaryGroup {
    /// One entity per version.
    #[default]
    Version,
    /// One entity per serving endpoint (`groupBy=endpoint`; records from before the endpoint
    /// was recorded form the group with an empty name).
    Endpoint,
}

impl SummaryGroup {
    /// The grouping key as SQL, the same in both dialects: a constant, never caller text.
    pub(crate) fn key(self) -> &'static str {
        match self {
            SummaryGroup::Version => "version",
            SummaryGroup::Endpoint => "COALESCE(endpoint_ref, '')",
        }
    }
}

/// One group's numbers (a version's, or an endpoint's with `SummaryGroup::Endpoint`: then
/// `version` holds the endpoint's ref) over the records a summary covers, aggregated by the
/// database.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionAggregate {
    /// The version.
    pub version: String,
    /// Its counts, sums, moments and latency percentiles.
    pub group: promptgate_core::stats::GroupAggregate,
}

/// Feedback on one invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Feedback {
    /// The score in [0, 1] (true = 1, false = 0).
    pub score: f64,
    /// An optional comment.
    pub comment: Option<String>,
    /// When it was given.
    pub at: OffsetDateTime,
}

/// Who made an invocation and the feedback it holds: what decides who may give its feedback
/// and whether a new one replaces another.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackState {
    /// The client that made the invocation.
    pub client_id: String,
    /// The invocation's prompt (the audit entry of a replacement names it).
    pub prompt_id: Uuid,
    /// The feedback it holds, if any.
    pub feedback: Option<Feedback>,
}

/// An atomic change to a prompt, applied only if its revision is still `expected_revision`.
#[derive(Debug, Clone)]
pub struct PromptUpdate {
    /// The prompt.
    pub id: Uuid,
    /// The revision the change was computed from.
    pub expected_revision: i64,
    /// The revision after the change.
    pub new_revision: i64,
    /// The time of the change.
    pub updated_at: OffsetDateTime,
    /// A version to add.
    pub new_version: Option<PromptVersion>,
    /// A new traffic split.
    pub traffic: Option<TrafficSplit>,
    /// A new status.
    pub status: Option<PromptStatus>,
    /// A new policy for the OpenAI-compatible front door.
    pub chat_completions: Option<ChatCompletionsPolicy>,
    /// The prompt's labels after the change.
    pub labels: Option<promptgate_core::label::Labels>,
    /// The audit entries that record this change, appended in the same transaction.
    pub audit: Vec<AuditDraft>,
}

/// The storage sequences of the first and last record of an exporter's batch: what names the
/// batch (its id is derived from them), so that a batch re-sent after a crash is recognisable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingBatch {
    /// The first record's sequence.
    pub first_seq: i64,
    /// The last record's sequence.
    pub last_seq: i64,
}

/// Which audit entries a listing returns. Every part is optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries about this prompt.
    pub prompt_id: Option<Uuid>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Recorded at or after.
    pub start: Option<OffsetDateTime>,
    /// Recorded before.
    pub end: Option<OffsetDateTime>,
}

/// An audit entry as stored: its canonical body (the hashed bytes) and its hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAuditEntry {
    /// 1-based position in the log.
    pub sequence: u64,
    /// The canonical JSON of the entry without `hash`.
    pub body: String,
    /// The chain hash.
    pub hash: Hash,
    /// The Merkle leaf hash.
    pub leaf_hash: Hash,
    /// The copies of body fields that listings filter on; `verify` checks they agree.
    pub columns: promptgate_audit::FilterColumns,
}

impl StoredAuditEntry {
    /// The entry as the API serves it (the body plus `hash`).
    pub fn to_value(&self) -> serde_json::Value {
        promptgate_audit::entry::served_entry(&self.body, &self.hash)
    }
}

/// OAuth clients and their access tokens: what the token endpoint and the token cache need
/// (creation, disabling, secret rotation, the bound on live tokens and the generations
/// that tell other replicas about revocations).
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// How many clients exist (zero on a fresh database).
    async fn count_clients(&self) -> Result<i64, StoreError>;
    /// Adds a client, with the audit entry that records it.
    async fn insert_client(&self, client: &Client, audit: &AuditDraft) -> Result<(), StoreError>;
    /// One client.
    async fn get_client(&self, id: &str) -> Result<Option<Client>, StoreError>;
    /// Every client, oldest first.
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Disables a client (keeping the first disable time); `None` when it does not exist.
    /// `audit` is appended only when the client was active (a repeated disable changes nothing).
    async fn disable_client(
        &self,
        id: &str,
        at: OffsetDateTime,
        audit: &AuditDraft,
    ) -> Result<Option<Client>, StoreError>;
    /// The ids of every disabled client, for the token cache's revocation check.
    async fn disabled_client_ids(&self) -> Result<Vec<String>, StoreError>;
    /// Replaces a client's secret hash, records `at` as its rotation time and deletes every
    /// access token issued to it, with `audit`, in one transaction: old tokens stop working the
    /// moment the new secret exists. `None` (and nothing written) when the client does not exist.
    async fn rotate_client_secret(
        &self,
        id: &str,
        new_secret_hash: &str,
        at: OffsetDateTime,
        audit: &AuditDraft,
    ) -> Result<Option<Client>, StoreError>;
    /// Every client whose secret was rotated, with the last rotation time, so that each
    /// gateway's token cache can notice a rotation made elsewhere and forget that client's tokens.
    async fn secret_rotations(&self) -> Result<Vec<(String, OffsetDateTime)>, StoreError>;
    /// Records an issued token.
    async fn insert_token(&self, token: &AccessToken) -> Result<(), StoreError>;
    /// Records an issued token and, in the same transaction, deletes the client's oldest
    /// tokens unexpired at `now` beyond `max_live` (the new one always kept, the oldest by
    /// `issued_at` first) and bumps the client's token generation when it deleted any; answers
    /// the deleted tokens' hashes. Concurrent calls for one client are serialised, so the bound
    /// holds across replicas.
    async fn insert_token_bounded(
        &self,
        token: &AccessToken,
        max_live: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, StoreError>;
    /// Every client whose tokens were ever revoked by [`ClientStore::insert_token_bounded`], with its
    /// token generation, so that each gateway's token cache can notice a revocation made
    /// elsewhere and forget that client's tokens.
    async fn token_generations(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Looks a token up by hash.
    async fn find_token(&self, token_hash: &str) -> Result<Option<AccessToken>, StoreError>;
    /// Forgets tokens that expired before `now`; returns how many.
    async fn delete_expired_tokens(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}

/// API keys: created and revoked with their audit entries, found by hash on a bearer check,
/// and their use recorded in batches.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Adds a key, with the audit entry that records it.
    async fn insert_api_key(&self, key: &ApiKey, audit: &AuditDraft) -> Result<(), StoreError>;
    /// One key by id.
    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError>;
    /// The keys of one client, or of every client, oldest first.
    async fn list_api_keys(&self, client_id: Option<&str>) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes a key (keeping the first revocation time); `None` when it does not exist.
    /// `audit` is appended only when the key was live (a repeated revoke changes nothing).
    async fn revoke_api_key(
        &self,
        id: &str,
        at: OffsetDateTime,
        audit: &AuditDraft,
    ) -> Result<Option<ApiKey>, StoreError>;
    /// The ids of every revoked key, for the key cache's revocation check on every replica.
    async fn revoked_api_key_ids(&self) -> Result<Vec<String>, StoreError>;
    /// Looks a key up by hash.
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// Records when keys were last used (one statement per key, in one transaction; a time
    /// never moves back).
    async fn record_api_key_use(&self, uses: &[(String, OffsetDateTime)])
    -> Result<(), StoreError>;
}

/// Prompts and their immutable versions, with the optimistic update that carries a change
/// and its audit entries in one transaction.
#[async_trait]
pub trait PromptStore: Send + Sync {
    /// Adds a prompt and its first version with the audit entries that record them;
    /// [`StoreError::DuplicateName`] if the name is taken.
    async fn create_prompt(
        &self,
        prompt: &Prompt,
        first: &PromptVersion,
        audit: &[AuditDraft],
    ) -> Result<(), StoreError>;
    /// One prompt.
    async fn get_prompt(&self, id: Uuid) -> Result<Option<Prompt>, StoreError>;
    /// Prompts in id order (ids are time-ordered UUIDv7), after `after`, at most `limit`.
    async fn list_prompts(
        &self,
        filter: &PromptFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Prompt>, StoreError>;
    /// The page [`PromptStore::list_prompts`] answers, each prompt with its version labels
    /// and its default version, in three queries whatever the page's size.
    async fn list_prompt_listings(
        &self,
        filter: &PromptFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<PromptListing>, StoreError>;
    /// Every prompt's id and revision, for the in-memory prompt cache to see what changed.
    async fn prompt_revisions(&self) -> Result<Vec<(Uuid, i64)>, StoreError>;
    /// Every version of a prompt (unordered), to cache a prompt whole.
    async fn list_versions(&self, prompt_id: Uuid) -> Result<Vec<PromptVersion>, StoreError>;
    /// Every version label of a prompt (unordered: the caller orders by semver).
    async fn version_labels(&self, prompt_id: Uuid) -> Result<Vec<VersionLabel>, StoreError>;
    /// One version.
    async fn get_version(
        &self,
        prompt_id: Uuid,
        version: &VersionLabel,
    ) -> Result<Option<PromptVersion>, StoreError>;
    /// Applies an update atomically: [`StoreError::StaleRevision`] when the prompt changed,
    /// [`StoreError::DuplicateVersion`] when the version exists, [`StoreError::NotFound`] when
    /// the prompt does not exist. Nothing is written unless everything is, audit entries
    /// included.
    async fn update_prompt(&self, update: &PromptUpdate) -> Result<(), StoreError>;
}

/// Invocation records (the telemetry the writer task stores), their feedback, the
/// database-side summaries and pruning.
#[async_trait]
pub trait TelemetryStore: Send + Sync {
    /// Stores a batch of invocation records in one transaction; a record whose id is stored
    /// already is skipped (a batch written twice after a crash stays one copy).
    async fn insert_invocations(&self, records: &[InvocationRecord]) -> Result<(), StoreError>;
    /// Records matching `filter` in storage order, after sequence `after`, at most `limit`.
    async fn list_invocations(
        &self,
        filter: &TelemetryFilter,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredInvocation>, StoreError>;
    /// Per-version aggregates of the records matching `filter` (counts, token sums, latency and
    /// feedback moments, the exact latency percentiles), computed by the database in one
    /// read-only snapshot, so that the gateway's memory stays flat whatever the range
    /// (`summary.rs`). Unordered.
    async fn summary_aggregates(
        &self,
        filter: &TelemetryFilter,
        group: SummaryGroup,
    ) -> Result<Vec<VersionAggregate>, StoreError>;
    /// Sets the feedback of invocation `id` unconditionally and unaudited (for tools and tests;
    /// the API uses [`TelemetryStore::replace_feedback`]); false when no such record is stored.
    async fn set_feedback(&self, id: &str, feedback: &Feedback) -> Result<bool, StoreError>;
    /// Who made invocation `id` and the feedback it holds; `None` when no such record is stored.
    async fn feedback_state(&self, id: &str) -> Result<Option<FeedbackState>, StoreError>;
    /// Sets the feedback of invocation `id` only while the feedback it holds is still
    /// `expected` (a compare-and-set, as prompt updates are, so that two racing posts cannot
    /// both believe they replaced nothing), appending `audit` in the same transaction; false,
    /// and nothing written, when the feedback changed meanwhile or the record is gone.
    async fn replace_feedback(
        &self,
        id: &str,
        expected: Option<&Feedback>,
        feedback: &Feedback,
        audit: Option<&AuditDraft>,
    ) -> Result<bool, StoreError>;
    /// Deletes records received before `before`; returns how many.
    async fn prune_invocations(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// What the pushing exporters need to deliver the invocation table as an outbox: a cursor
/// per exporter, the delivery lease that makes one process deliver at a time, and the
/// pending batch a successor re-sends after a crash.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// The sequence of the newest stored record (0 when there is none).
    async fn last_invocation_seq(&self) -> Result<i64, StoreError>;
    /// The sequence of the last record `exporter` delivered (0 when it has delivered none).
    async fn exporter_cursor(&self, exporter: &str) -> Result<i64, StoreError>;
    /// Moves `exporter`'s cursor from `from` to `to`; false (and no change) when the cursor is
    /// no longer at `from` (another replica delivered meanwhile).
    async fn advance_exporter_cursor(
        &self,
        exporter: &str,
        from: i64,
        to: i64,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Takes or renews `exporter`'s delivery lease for `holder` until `now + ttl`; true when
    /// `holder` holds it afterwards. It is granted when nobody holds it, when the holder's lease
    /// expired (at or before `now`), or when `holder` holds it already (a renewal); otherwise
    /// nothing changes. Several processes deliver the same outbox, and only the lease holder
    /// may, so that one batch is not sent by two of them at once.
    async fn try_acquire_exporter_lease(
        &self,
        exporter: &str,
        holder: &str,
        now: OffsetDateTime,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError>;
    /// Gives up `exporter`'s lease if `holder` holds it (on graceful shutdown, so that another
    /// process takes over at once instead of after the lease's expiry); otherwise does nothing.
    /// The pending batch is kept: it may have reached the target before the holder gave up.
    async fn release_exporter_lease(&self, exporter: &str, holder: &str) -> Result<(), StoreError>;
    /// Records the batch `holder` is about to deliver for `exporter`, only while its lease is
    /// unexpired at `now`; false (and no change) when it is not the holder any more. Whoever
    /// takes the lease over after a crash re-sends exactly this batch, so the one duplicate a
    /// crash can cause carries the same batch id and receivers can drop it.
    async fn begin_exporter_batch(
        &self,
        exporter: &str,
        holder: &str,
        now: OffsetDateTime,
        batch: PendingBatch,
    ) -> Result<bool, StoreError>;
    /// The batch the last holder of `exporter`'s lease began (it was delivered only if the
    /// cursor has reached its `last_seq`).
    async fn pending_exporter_batch(
        &self,
        exporter: &str,
    ) -> Result<Option<PendingBatch>, StoreError>;
}

/// The append-only audit log (entries sealed onto the hash chain, their Merkle leaves) and
/// the signed tree heads.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends entries to the audit log in one transaction, in order, each sealed onto the
    /// chain as it stands inside that transaction (so concurrent appends form one sequence).
    async fn append_audit(&self, drafts: &[AuditDraft]) -> Result<Vec<SealedEntry>, StoreError>;
    /// Entries matching `filter` in sequence order, after sequence `after`, at most `limit`.
    async fn list_audit(
        &self,
        filter: &AuditFilter,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredAuditEntry>, StoreError>;
    /// One entry.
    async fn get_audit(&self, sequence: u64) -> Result<Option<StoredAuditEntry>, StoreError>;
    /// The newest entry with this action.
    async fn last_audit_with_action(
        &self,
        action: &str,
    ) -> Result<Option<StoredAuditEntry>, StoreError>;
    /// How many entries the log holds (its last sequence).
    async fn audit_size(&self) -> Result<u64, StoreError>;
    /// The stored leaf hashes of entries `after + 1 ..= up_to`, in order.
    async fn audit_leaf_hashes(&self, after: u64, up_to: u64) -> Result<Vec<Hash>, StoreError>;
    /// Keeps a signed tree head (a head already stored for the same size and key is kept as is).
    async fn insert_tree_head(&self, head: &SignedTreeHead) -> Result<(), StoreError>;
    /// The signed head of the largest tree.
    async fn latest_tree_head(&self) -> Result<Option<SignedTreeHead>, StoreError>;
    /// Every stored signed head, smallest tree first.
    async fn tree_heads(&self) -> Result<Vec<SignedTreeHead>, StoreError>;
}

/// Storage for everything the gateway keeps: the union of the five area traits, plus what
/// concerns the database as a whole. Implementations must be safe to share between request
/// handlers and between processes on the same database. Calling an area's method needs its
/// trait in scope: `use promptgate_store::prelude::*;`.
#[async_trait]
pub trait Store:
    ClientStore
    + ApiKeyStore
    + PromptStore
    + TelemetryStore
    + OutboxStore
    + AuditStore
    + Send
    + Sync
    + 'static
{
    /// Succeeds when the database answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Closes every connection after the last request, on graceful shutdown.
    async fn close(&self);
}

/// Opens the store a database URL names (`sqlite:…`, or `postgres://…`/`postgresql://…` with
/// the default [`PoolSettings`]), creating and migrating it as needed.
pub async fn open(database_url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    open_with(database_url, &PoolSettings::default()).await
}

/// Like [`open`], with the pool limits a PostgreSQL store uses (the server's `[server]
/// database_*` settings). A SQLite store ignores them: it has one writer at a time and a small
/// fixed pool, and a file has no connections to run out of.
pub async fn open_with(
    database_url: &str,
    settings: &PoolSettings,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if database_url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::open(database_url).await?))
    } else if is_postgres_url(database_url) {
        Ok(std::sync::Arc::new(
            PostgresStore::open_with(database_url, settings).await?,
        ))
    } else {
        Err(StoreError::UnsupportedUrl(
            promptgate_core::redact::database_url_for_display(database_url),
        ))
    }
}

/// Whether a URL names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(database_url: &str) -> bool {
    database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")
}
