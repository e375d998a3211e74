//! `…/audit-logs`: client entries, reading the log, verifying it, signed tree heads and proofs.
//! Entries are never changed or removed: PUT, PATCH and DELETE answer 405 (the router's
//! method fallback), and the database refuses them too.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use promptgate_api as api;
use promptgate_core::{Scope, Violation};
use promptgate_store::{AuditFilter, StoredAuditEntry};
use serde_json::Value;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams, keyset_page};
use crate::service::audit::{self, AuditError, ClientEntry};
use crate::state::AppState;

impl From<AuditError> for ApiError {
    fn from(err: AuditError) -> Self {
        match err {
            AuditError::Invalid(violations) => ApiError::Invalid(violations),
            AuditError::UnknownPrompt(_) => ApiError::NotFound(err.to_string()),
            AuditError::NothingAppended => ApiError::Internal(err.to_string()),
            AuditError::Store(store) => ApiError::from(store),
        }
    }
}

/// Appends a client entry; the server adds its time, the caller as actor, and the hashes.
#[utoipa::path(post, path = "/api/v2/ai/llm/gateway/audit-logs", tag = "audit",
    request_body = api::AuditEntryRequest,
    responses((status = 201, description = "the stored entry; Location names it", body = api::AuditEntry),
        (status = 400, description = "invalid field: `action` must match `[A-Z][A-Z0-9_]{0,99}` and not be one of the gateway's own action names", body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, description = "promptId names no prompt", body = api::ErrorBody),
        (status = 413, body = api::ErrorBody), (status = 415, body = api::ErrorBody)),
    security(("bearer" = ["ai:gateway:write"])))]
pub async fn append_entry(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<api::AuditEntryRequest>,
) -> Result<Response, ApiError> {
    caller.require(Scope::GatewayWrite)?;
    let entry = ClientEntry {
        action: body.action,
        prompt_id: body.prompt_id,
        timestamp: body.timestamp,
        details: body.details,
        metadata: body.metadata,
        compliance_status: body.compliance_status,
    };
    let stored = audit::append_client_entry(&state, &caller.client_id, entry).await?;
    let mut response = (StatusCode::CREATED, Json(stored.to_value())).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!(
        "{}/audit-logs/{}",
        api::BASE_PATH,
        stored.sequence
    )) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Lists entries in sequence order, with the contract's filters and stable cursors.
#[utoipa::path(get, path = "/api/v2/ai/llm/gateway/audit-logs", tag = "audit",
    params(("promptId" = Option<String>, Query, description = "only entries about this prompt"),
        ("action" = Option<String>, Query, description = "only this action"),
        ("actor" = Option<String>, Query, description = "only this client id (or `system`)"),
        ("startTime" = Option<String>, Query, description = "recorded at or after (RFC 3339)"),
        ("endTime" = Option<String>, Query, description = "recorded before (RFC 3339)"),
        ("pageSize" = Option<u32>, Query, description = "1–500, default 50"),
        ("cursor" = Option<String>, Query, description = "nextPageCursor of the previous page")),
    responses((status = 200, description = "entries, oldest first (the filters may also come as a JSON body)", body = api::Page<api::AuditEntry>),
        (status = 400, body = api::ErrorBody), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["ai:audit:read"])))]
pub async fn list_entries(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::AuditRead)?;
    let query = query.with_json_body(&body)?;
    let mut violations = Vec::new();
    let telemetry_like = crate::wire::telemetry::read_time_range(&query, &mut violations);
    let prompt_id =
        promptgate_core::violation::uuid_field("promptId", query.get("promptId"), &mut violations);
    let filter = AuditFilter {
        prompt_id,
        action: query.get("action").map(str::to_owned),
        actor: query.get("actor").map(str::to_owned),
        start: telemetry_like.0,
        end: telemetry_like.1,
    };
    let page_size = query.page_size(50, &mut violations);
    let after = query.cursor_as::<u64>(&mut violations);
    if !violations.is_empty() {
        return Err(ApiError::Invalid(violations));
    }
    let rows = state
        .store
        .list_audit(&filter, after, page_size + 1)
        .await?;
    let (rows, next_page_cursor) = keyset_page(rows, page_size, |r| r.sequence.to_string());
    Ok(Json(serde_json::json!({
        "entities": rows.iter().map(StoredAuditEntry::to_value).collect::<Vec<_>>(),
        "pageSize": page_size,
        "nextPageCursor": next_page_cursor,
    })))
}

/// A sequence from the path: a whole number from 1.
fn parse_sequence(text: &str) -> Result<u64, ApiError> {
    match text.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ApiError::Invalid(vec![Violation::invalid(
            "sequence",
            format!(
                "sequence is {}; it must be a whole number from 1",
                promptgate_core::violation::quoted(text)
            ),
        )])),
    }
}

/// One entry by its sequence.
#[utoipa::path(get, path = "/api/v2/ai/llm/gateway/audit-logs/{sequence}", tag = "audit",
    params(("sequence" = u64, Path, description = "1-based position in the log")),
    responses((status = 200, body = api::AuditEntry), (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, body = api::ErrorBody)),
    security(("bearer" = ["ai:audit:read"])))]
pub async fn get_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path(sequence): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::AuditRead)?;
    let sequence = parse_sequence(&sequence)?;
    let entry =
        state.store.get_audit(sequence).await?.ok_or_else(|| {
            ApiError::NotFound(format!("no audit entry with sequence {sequence}"))
        })?;
    Ok(Json(entry.to_value()))
}

/// Recomputes the chain and the tree from the stored entries, and checks the stored signed heads.
#[utoipa::path(get, path = "/api/v2/ai/llm/gateway/audit-logs/verify", tag = "audit",
    responses((status = 200, description = "`valid` false names the first bad sequence", body = api::AuditVerification),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["ai:audit:read"])))]
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<api::AuditVerification>, ApiError> {
    caller.require(Scope::AuditRead)?;
    Ok(Json(crate::wire::audit::verification(
        &state.audit.verify().await?,
    )))
}

/// The latest signed tree head (signed now if the log grew since the last one).
#[utoipa::path(get, path = "/api/v2/ai/llm/gateway/audit-logs/checkpoint", tag = "audit",
    responses((status = 200, body = api::SignedTreeHead),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["ai:audit:read"])))]
pub async fn checkpoint(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<api::SignedTreeHead>, ApiError> {
    caller.require(Scope::AuditRead)?;
    let signed = state.audit.checkpoint().await?;
    Ok(Json(crate::wire::audit::wire_head(&signed)))
}

/// The Ed25519 public key that verifies the signed tree heads.
#[utoipa::path(get, path = "/api/v2/ai/llm/gateway/audit-logs/public-key", tag = "audit",
    responses((status = 200, body = api::AuditPublicKey),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["ai:audit:read"])))]
pub async fn public_key(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<api::AuditPublicKey>, ApiError> {
    caller.require(Scope::AuditRead)?;
    Ok(Json(state.audit.public_key()))
}

/// A whole-number query parameter, if given.
fn size_param(query: &QueryParams, key: &str, violations: &mut Vec<Violation>) -> Option<u64> {
    let text = query.get(key)?;
    text.parse::<u64>()
        .map_err(|_| {
            violations.push(Violation::invalid(
                key,
                format!(
                    "{key} is {}; it must be a whole number",
                    promptgate_core::violation::quoted(text)
                ),
            ))
        })
        .ok()
}

/// The inclusion proof of one entry in the tree of `treeSize` (default: the whole log).
#[utoipa::path(get, path = "/api/v2/ai/llm/gateway/audit-logs/{sequence}/proof", tag = "audit",
    params(("sequence" = u64, Path, description = "the entry"),
        ("treeSize" = Option<u64>, Query, description = "the tree to prove against, from `sequence` to the log's size; default the log's size")),
    responses((status = 200, body = api::InclusionProof), (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, body = api::ErrorBody)),
    security(("bearer" = ["ai:audit:read"])))]
pub async fn inclusion_proof(
    State(state): State<AppState>,
    caller: Caller,
    Path(sequence): Path<String>,
    query: QueryParams,
) -> Result<Json<api::InclusionProof>, ApiError> {
    caller.require(Scope::AuditRead)?;
    let sequence = parse_sequence(&sequence)?;
    let mut violations = Vec::new();
    let requested = size_param(&query, "treeSize", &mut violations);
    if !violations.is_empty() {
        return Err(ApiError::Invalid(violations));
    }
    let size = state.store.audit_size().await?;
    if sequence > size {
        return Err(ApiError::NotFound(format!(
            "no audit entry with sequence {sequence}; the log holds {size}"
        )));
    }
    let tree_size = requested.unwrap_or(size);
    if tree_size < sequence || tree_size > size {
        return Err(ApiError::Invalid(vec![Violation::invalid(
            "treeSize",
            format!(
                "treeSize is {tree_size}; it must be from {sequence} (the entry) to {size} (the log's size)"
            ),
        )]));
    }
    Ok(Json(
        state.audit.inclusion_proof(sequence, tree_size).await?,
    ))
}

/// The consistency proof that the tree of `from` entries is a prefix of the tree of `to`.
#[utoipa::path(get, path = "/api/v2/ai/llm/gateway/audit-logs/consistency", tag = "audit",
    params(("from" = u64, Query, description = "the older tree size, from 1"),
        ("to" = Option<u64>, Query, description = "the newer tree size, up to the log's size; default the log's size")),
    responses((status = 200, body = api::ConsistencyProof), (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["ai:audit:read"])))]
pub async fn consistency_proof(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<api::ConsistencyProof>, ApiError> {
    caller.require(Scope::AuditRead)?;
    let mut violations = Vec::new();
    let from = size_param(&query, "from", &mut violations);
    let to = size_param(&query, "to", &mut violations);
    if query.get("from").is_none() {
        violations.push(Violation::invalid("from", "from is required"));
    }
    if !violations.is_empty() {
        return Err(ApiError::Invalid(violations));
    }
    let size = state.store.audit_size().await?;
    let to = to.unwrap_or(size);
    let from = from.unwrap_or(0);
    if to > size {
        violations.push(Violation::invalid(
            "to",
            format!("to is {to}; the log holds {size} entries"),
        ));
    }
    if from < 1 || from > to {
        violations.push(Violation::invalid(
            "from",
            format!("from is {from}; it must be from 1 to {to} (to)"),
        ));
    }
    if !violations.is_empty() {
        return Err(ApiError::Invalid(violations));
    }
    Ok(Json(state.audit.consistency_proof(from, to).await?))
}
