//! Row decoding and encoding that both stores share: the two schemas have the same columns with
//! the same meaning, and differ only in how a prompt id and a flag are typed (SQLite: text and
//! integer; PostgreSQL: `uuid` and `boolean`). Each store says how it reads those ([`Dialect`],
//! on its row type) and binds them; everything else about turning a row into a domain value
//! ([`StoredRow`]) and a domain value into bound parameters ([`Values`]) is written once here, so
//! that the two stores cannot drift apart in what they store, what they accept, or how they
//! report corrupt data.

use std::collections::HashMap;

use promptgate_audit::{FilterColumns, SignedTreeHead, TreeHead};
use promptgate_core::invocation::{InvocationRecord, InvocationStatus};
use promptgate_core::prompt::VersionSettings;
use promptgate_core::{Prompt, PromptStatus, PromptVersion, VersionLabel};
use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Row, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{self, from_millis, millis, nul_free, nul_free_opt, stored_hash};
use crate::{
    AccessToken, ApiKey, Client, Feedback, FeedbackState, PromptListing, StoreError,
    StoredAuditEntry, StoredInvocation,
};

/// How one store's row type reads the columns whose SQL type differs between the stores.
pub(crate) trait Dialect {
    /// A prompt id column (`prompts.id`, or a `prompt_id`); a value that is not a UUID is
    /// corrupt data.
    fn prompt_id(&self, column: &str) -> Result<Uuid, StoreError>;
    /// A true/false column.
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
    /// An audit entry's `prompt_id` column as text, as the filter columns compare it.
    fn audit_prompt_id(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
}

/// The columns every decoder reads, typed as both stores store them. Implemented for both row
/// types at once (the blanket impl below); only [`Dialect`] is written per store.
pub(crate) trait StoredRow: Dialect {
    /// A text column.
    fn text(&self, column: &str) -> Result<String, StoreError>;
    /// A nullable text column.
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    /// An integer column (times are Unix milliseconds).
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    /// A nullable integer column.
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    /// A floating-point column.
    fn float(&self, column: &str) -> Result<f64, StoreError>;
    /// A nullable floating-point column.
    fn opt_float(&self, column: &str) -> Result<Option<f64>, StoreError>;
}

impl<R> StoredRow for R
where
    R: Row + Dialect,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> f64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, column: &str) -> Result<String, StoreError> {
        self.try_get(column).map_err(StoreError::Database)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.try_get(column).map_err(StoreError::Database)
    }

    fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.try_get(column).map_err(StoreError::Database)
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.try_get(column).map_err(StoreError::Database)
    }

    fn float(&self, column: &str) -> Result<f64, StoreError> {
        self.try_get(column).map_err(StoreError::Database)
    }

    fn opt_float(&self, column: &str) -> Result<Option<f64>, StoreError> {
        self.try_get(column).map_err(StoreError::Database)
    }
}

/// Parameters bound in the order of a statement's placeholders, typed as both stores store
/// them. Implemented for both stores' queries at once; a column whose type differs is bound by
/// the store itself (`.bind(…)`) around the shared runs below.
pub(crate) trait Values: Sized {
    /// A text parameter.
    fn text(self, value: &str) -> Self;
    /// A nullable text parameter.
    fn opt_text(self, value: Option<&str>) -> Self;
    /// An integer parameter.
    fn int(self, value: i64) -> Self;
    /// A nullable integer parameter.
    fn opt_int(self, value: Option<i64>) -> Self;
    /// A floating-point parameter.
    fn float(self, value: f64) -> Self;
}

impl<DB> Values for Query<'_, DB, <DB as Database>::Arguments>
where
    DB: Database,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    for<'t> Option<&'t str>: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
    for<'t> f64: Encode<'t, DB> + Type<DB>,
{
    fn text(self, value: &str) -> Self {
        self.bind(value)
    }

    fn opt_text(self, value: Option<&str>) -> Self {
        self.bind(value)
    }

    fn int(self, value: i64) -> Self {
        self.bind(value)
    }

    fn opt_int(self, value: Option<i64>) -> Self {
        self.bind(value)
    }

    fn float(self, value: f64) -> Self {
        self.bind(value)
    }
}

/// `clients (id, name, secret_hash, scopes, created_at, disabled_at)`.
pub(crate) fn client_values<Q: Values>(query: Q, client: &Client) -> Q {
    query
        .text(&nul_free(&client.id))
        .text(&nul_free(&client.name))
        .text(&client.secret_hash)
        .text(&client.scopes.to_string())
        .int(millis(client.created_at))
        .opt_int(client.disabled_at.map(millis))
}

/// `access_tokens (token_hash, client_id, scopes, issued_at, expires_at)`.
pub(crate) fn token_values<Q: Values>(query: Q, token: &AccessToken) -> Q {
    query
        .text(&token.token_hash)
        .text(&nul_free(&token.client_id))
        .text(&token.scopes.to_string())
        .int(millis(token.issued_at))
        .int(millis(token.expires_at))
}

/// `api_keys (id, client_id, name, key_hash, scopes, created_at, expires_at, revoked_at,
/// last_used_at)`.
pub(crate) fn api_key_values<Q: Values>(query: Q, key: &ApiKey) -> Q {
    query
        .text(&nul_free(&key.id))
        .text(&nul_free(&key.client_id))
        .text(&nul_free(&key.name))
        .text(&key.key_hash)
        .text(&key.scopes.to_string())
        .int(millis(key.created_at))
        .opt_int(key.expires_at.map(millis))
        .opt_int(key.revoked_at.map(millis))
        .opt_int(key.last_used_at.map(millis))
}

/// `prompts (name, status, traffic, revision, created_at, updated_at, created_by,
/// system_message_mode, labels)`: every column but the id and the flag `allow_caller_settings`.
pub(crate) fn prompt_values<Q: Values>(query: Q, prompt: &Prompt) -> Q {
    query
        .text(&prompt.name)
        .text(prompt.status.as_str())
        .text(&codec::traffic_json(&prompt.traffic))
        .int(prompt.revision)
        .int(millis(prompt.created_at))
        .int(millis(prompt.updated_at))
        .text(&prompt.created_by)
        .text(prompt.chat_completions.system_message.as_str())
        .text(&codec::labels_json(&prompt.labels))
}

/// `prompt_versions (version, model_endpoint_ref, system_prompt, temperature,
/// safety_guardrails, few_shot_examples, system_prompt_tokens, tokenizer, created_at,
/// created_by, template_messages, variables_schema, tool_settings, fallback_endpoint_refs)`:
/// every column but the prompt id.
pub(crate) fn version_values<Q: Values>(query: Q, v: &PromptVersion) -> Q {
    query
        .text(&v.version.to_string())
        .text(&v.settings.model_endpoint_ref)
        .text(&v.settings.system_prompt)
        .float(v.settings.temperature)
        .text(&codec::guardrails_json(&v.settings.safety_guardrails))
        .text(&codec::examples_json(&v.settings.few_shot_examples))
        .int(i64::from(v.system_prompt_tokens))
        .text(v.tokenizer.as_str())
        .int(millis(v.created_at))
        .text(&v.created_by)
        .text(&codec::template_messages_json(
            &v.settings.template_messages,
        ))
        .opt_text(v.settings.variables_schema.as_deref())
        .opt_text(codec::tool_settings_json(&v.settings.tool_settings).as_deref())
        .opt_text(codec::endpoint_refs_json(&v.settings.fallback_endpoint_refs).as_deref())
}

/// `audit_entries (sequence, recorded_at, actor, action, body, prev_hash, hash, leaf_hash)`:
/// every column but the entry's id and prompt id.
pub(crate) fn audit_values<Q: Values>(query: Q, row: &crate::seal::SealedRow<'_>) -> Q {
    query
        .int(row.sequence)
        .int(row.recorded_at)
        .text(&row.actor)
        .text(&row.action)
        .text(&row.entry.body)
        .text(&row.prev_hash)
        .text(&row.hash)
        .text(&row.leaf_hash)
}

/// `feedback_score, feedback_comment, feedback_at` and the invocation's id, as both the
/// unconditional and the compare-and-set feedback updates bind them first.
pub(crate) fn feedback_values<Q: Values>(query: Q, feedback: &Feedback, id: &str) -> Q {
    query
        .float(feedback.score)
        .opt_text(nul_free_opt(feedback.comment.as_deref()).as_deref())
        .int(millis(feedback.at))
        .text(&nul_free(id))
}

/// A count column (tokens), which must fit a `u32`.
fn count(row: &impl StoredRow, column: &str) -> Result<u32, StoreError> {
    let n = row.int(column)?;
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{column} {n}")))
}

/// A row of `clients`.
pub(crate) fn client(row: &impl StoredRow) -> Result<Client, StoreError> {
    Ok(Client {
        id: row.text("id")?,
        name: row.text("name")?,
        secret_hash: row.text("secret_hash")?,
        scopes: codec::scopes(&row.text("scopes")?)?,
        created_at: from_millis(row.int("created_at")?)?,
        disabled_at: row.opt_int("disabled_at")?.map(from_millis).transpose()?,
    })
}

/// A row of `access_tokens`.
pub(crate) fn access_token(row: &impl StoredRow) -> Result<AccessToken, StoreError> {
    Ok(AccessToken {
        token_hash: row.text("token_hash")?,
        client_id: row.text("client_id")?,
        scopes: codec::scopes(&row.text("scopes")?)?,
        issued_at: from_millis(row.int("issued_at")?)?,
        expires_at: from_millis(row.int("expires_at")?)?,
    })
}

/// A row of `api_keys`.
pub(crate) fn api_key(row: &impl StoredRow) -> Result<ApiKey, StoreError> {
    let time = |column: &str| -> Result<Option<OffsetDateTime>, StoreError> {
        row.opt_int(column)?.map(from_millis).transpose()
    };
    Ok(ApiKey {
        id: row.text("id")?,
        client_id: row.text("client_id")?,
        name: row.text("name")?,
        key_hash: row.text("key_hash")?,
        scopes: codec::scopes(&row.text("scopes")?)?,
        created_at: from_millis(row.int("created_at")?)?,
        expires_at: time("expires_at")?,
        revoked_at: time("revoked_at")?,
        last_used_at: time("last_used_at")?,
    })
}

/// A row of `prompts`.
pub(crate) fn prompt(row: &impl StoredRow) -> Result<Prompt, StoreError> {
    let status = row.text("status")?;
    Ok(Prompt {
        id: row.prompt_id("id")?,
        name: row.text("name")?,
        status: PromptStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("prompt status {status:?}")))?,
        traffic: codec::traffic_from_json(&row.text("traffic")?)?,
        chat_completions: codec::chat_completions_policy(
            &row.text("system_message_mode")?,
            row.flag("allow_caller_settings")?,
        )?,
        labels: codec::labels_from_json(&row.text("labels")?)?,
        revision: row.int("revision")?,
        created_at: from_millis(row.int("created_at")?)?,
        updated_at: from_millis(row.int("updated_at")?)?,
        created_by: row.text("created_by")?,
    })
}

/// A row of `prompt_versions`.
pub(crate) fn version(row: &impl StoredRow) -> Result<PromptVersion, StoreError> {
    let tokenizer = row.text("tokenizer")?;
    let tokens = row.int("system_prompt_tokens")?;
    Ok(PromptVersion {
        prompt_id: row.prompt_id("prompt_id")?,
        version: codec::version(&row.text("version")?)?,
        settings: VersionSettings {
            model_endpoint_ref: row.text("model_endpoint_ref")?,
            system_prompt: row.text("system_prompt")?,
            temperature: row.float("temperature")?,
            safety_guardrails: codec::guardrails_from_json(&row.text("safety_guardrails")?)?,
            few_shot_examples: codec::examples_from_json(&row.text("few_shot_examples")?)?,
            template_messages: codec::template_messages_from_json(&row.text("template_messages")?)?,
            variables_schema: codec::variables_schema(row.opt_text("variables_schema")?)?,
            tool_settings: codec::tool_settings_from_json(row.opt_text("tool_settings")?)?,
            fallback_endpoint_refs: codec::endpoint_refs_from_json(
                row.opt_text("fallback_endpoint_refs")?,
            )?,
        },
        system_prompt_tokens: u32::try_from(tokens)
            .map_err(|_| StoreError::Corrupt(format!("token count {tokens}")))?,
        tokenizer: tokenizer
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("tokenizer {tokenizer:?}")))?,
        created_at: from_millis(row.int("created_at")?)?,
        created_by: row.text("created_by")?,
    })
}

/// The feedback columns of an `invocations` row (none while `feedback_score` is NULL).
fn feedback(row: &impl StoredRow) -> Result<Option<Feedback>, StoreError> {
    let Some(score) = row.opt_float("feedback_score")? else {
        return Ok(None);
    };
    Ok(Some(Feedback {
        score,
        comment: row.opt_text("feedback_comment")?,
        at: from_millis(row.opt_int("feedback_at")?.unwrap_or_default())?,
    }))
}

/// A row of `invocations`.
pub(crate) fn invocation(row: &impl StoredRow) -> Result<StoredInvocation, StoreError> {
    let status = row.text("status")?;
    let metadata = row.text("metadata")?;
    let feedback = feedback(row)?;
    Ok(StoredInvocation {
        seq: row.int("seq")?,
        record: InvocationRecord {
            id: row.text("id")?,
            timestamp: from_millis(row.int("timestamp")?)?,
            prompt_id: row.prompt_id("prompt_id")?,
            version: row.text("version")?,
            model: row.text("model")?,
            status: InvocationStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))?,
            error_code: row.opt_text("error_code")?,
            latency_ms: row.float("latency_ms")?,
            upstream_latency_ms: row.opt_float("upstream_latency_ms")?,
            time_to_first_token_ms: row.opt_float("time_to_first_token_ms")?,
            prompt_tokens: count(row, "prompt_tokens")?,
            completion_tokens: count(row, "completion_tokens")?,
            session_id: row.opt_text("session_id")?,
            client_id: row.text("client_id")?,
            metadata: serde_json::from_str(&metadata)
                .map_err(|_| StoreError::Corrupt(format!("metadata {metadata:?}")))?,
            label: row.opt_text("label")?,
            variable_names: codec::variable_names_from_json(&row.text("variable_names")?)?,
            schema_valid: row.opt_int("schema_valid")?.map(|v| v != 0),
            tool_call_count: u32::try_from(row.int("tool_call_count")?).unwrap_or(u32::MAX),
            api_key_id: row.opt_text("api_key_id")?,
            cost_usd: row.opt_float("cost_usd")?,
            endpoint_ref: row.opt_text("endpoint_ref")?.unwrap_or_default(),
            fallback_attempts: codec::attempts_from_json(row.opt_text("fallback_attempts")?)?,
        },
        feedback,
    })
}

/// The row `feedback_state` reads: `client_id`, `prompt_id` and the feedback columns.
pub(crate) fn feedback_state(row: &impl StoredRow) -> Result<FeedbackState, StoreError> {
    let feedback = feedback(row)?;
    Ok(FeedbackState {
        client_id: row.text("client_id")?,
        prompt_id: row.prompt_id("prompt_id")?,
        feedback,
    })
}

/// A row of `audit_entries` (the columns the listings select).
pub(crate) fn audit_entry(row: &impl StoredRow) -> Result<StoredAuditEntry, StoreError> {
    let sequence = row.int("sequence")?;
    let hash = row.text("hash")?;
    let leaf_hash = row.text("leaf_hash")?;
    // The filter columns are decoded leniently into `Corrupt` (SQLite would let an edit put
    // text in `recorded_at`), so that `verify` names the row instead of failing.
    let column =
        |name: &str| StoreError::Corrupt(format!("audit entry {sequence}: its {name} column"));
    Ok(StoredAuditEntry {
        sequence: u64::try_from(sequence)
            .map_err(|_| StoreError::Corrupt(format!("audit sequence {sequence}")))?,
        body: row.text("body")?,
        hash: stored_hash(&hash)?,
        leaf_hash: stored_hash(&leaf_hash)?,
        columns: FilterColumns {
            actor: row.text("actor").map_err(|_| column("actor"))?,
            action: row.text("action").map_err(|_| column("action"))?,
            prompt_id: row
                .audit_prompt_id("prompt_id")
                .map_err(|_| column("prompt_id"))?,
            recorded_at_ms: row.int("recorded_at").map_err(|_| column("recorded_at"))?,
        },
    })
}

/// A row of `audit_tree_heads`.
pub(crate) fn tree_head(row: &impl StoredRow) -> Result<SignedTreeHead, StoreError> {
    let tree_size = row.int("tree_size")?;
    let root_hash = row.text("root_hash")?;
    Ok(SignedTreeHead {
        head: TreeHead {
            tree_size: u64::try_from(tree_size)
                .map_err(|_| StoreError::Corrupt(format!("tree size {tree_size}")))?,
            root_hash: stored_hash(&root_hash)?,
            timestamp: row.text("signed_at")?,
        },
        key_id: row.text("key_id")?,
        signature: row.text("signature")?,
    })
}

/// A listing page from its three reads: the page's prompts (in order), every version label of
/// those prompts, and their default versions. The labels come out oldest first by semver; a
/// default version the database did not answer is `None`.
pub(crate) fn listings(
    prompts: Vec<Prompt>,
    labels: Vec<(Uuid, VersionLabel)>,
    defaults: Vec<PromptVersion>,
) -> Vec<PromptListing> {
    let mut labels_by_prompt: HashMap<Uuid, Vec<VersionLabel>> = HashMap::new();
    for (prompt_id, label) in labels {
        labels_by_prompt.entry(prompt_id).or_default().push(label);
    }
    let mut defaults: HashMap<Uuid, PromptVersion> =
        defaults.into_iter().map(|v| (v.prompt_id, v)).collect();
    prompts
        .into_iter()
        .map(|prompt| {
            let mut labels = labels_by_prompt.remove(&prompt.id).unwrap_or_default();
            labels.sort();
            let default_version = defaults
                .remove(&prompt.id)
                .filter(|v| &v.version == prompt.traffic.default_version());
            PromptListing {
                prompt,
                labels,
                default_version,
            }
        })
        .collect()
}
