//! `…/prompts`: create, read, list, version, split and archive prompts.
//!
//! Updates are optimistic: the handler reads the prompt, decides everything (validation, 409,
//! the new revision) and asks the store to apply the change only if the revision is still the
//! one it read. With `If-Match` a lost race is a 412; without it the handler re-reads and
//! decides again, so unconditional updates never fail spuriously.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use promptgate_api as api;
use promptgate_audit::action;
use promptgate_core::prompt::{
    CheckedSettings, ExampleDraft, GuardrailsDraft, SettingsDraft, check_name, check_version,
};
use promptgate_core::traffic::{TrafficDraft, WeightDraft};
use promptgate_core::violation::quoted;
use promptgate_core::{
    ChatCompletionsPolicy, Prompt, PromptStatus, PromptVersion, Scope, SystemMessageMode,
    TrafficSplit, VersionLabel, Violation,
};
use promptgate_store::{PromptFilter, PromptUpdate, StoreError};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams, encode_cursor, keyset_page};
use crate::state::{AppState, now, rfc3339};

/// How many times an unconditional update re-reads after losing a race to another process
/// (changes within this process take turns on a lock) before answering 503.
const MAX_UPDATE_ATTEMPTS: usize = 32;

/// Creates a prompt with its first version.
#[utoipa::path(post, path = "/api/v2/ai/llm/gateway/prompts", tag = "prompts",
    request_body = api::CreatePromptRequest,
    responses(
        (status = 201, description = "created; ETag header set", body = api::Prompt),
        (status = 400, description = "invalid field, token budget or context window", body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 409, description = "a prompt with this name exists", body = api::ErrorBody),
        (status = 413, body = api::ErrorBody), (status = 415, body = api::ErrorBody)),
    security(("bearer" = ["ai:prompt:write"])))]
pub async fn create_prompt(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<api::CreatePromptRequest>,
) -> Result<Response, ApiError> {
    caller.require(Scope::PromptWrite)?;
    let mut violations = Vec::new();
    crate::limits::check_prompt_settings(
        &state.limits,
        body.system_prompt.as_deref(),
        body.few_shot_examples.as_deref(),
        &mut violations,
    );
    let name = check_name(body.name.as_deref())
        .map_err(|v| violations.push(v))
        .ok();
    let version = check_version("version", body.version.as_deref())
        .map_err(|v| violations.push(v))
        .ok();
    let draft = settings_draft(
        &body.model_endpoint_ref,
        &body.system_prompt,
        body.temperature,
        &body.safety_guardrails,
        &body.few_shot_examples,
    );
    let checked = draft
        .check(None, &state.catalogue, &state.counter)
        .map_err(|v| violations.extend(v))
        .ok();
    let traffic = match (&version, &body.traffic_distribution) {
        (Some(v), Some(wire)) => TrafficSplit::apply_draft(
            &TrafficSplit::single(v.clone()),
            &traffic_draft(wire),
            std::slice::from_ref(v),
        )
        .map_err(|v| violations.extend(v))
        .ok(),
        (Some(v), None) => Some(TrafficSplit::single(v.clone())),
        (None, _) => None,
    };
    let chat_completions = apply_chat_completions(
        ChatCompletionsPolicy::default(),
        body.chat_completions.as_ref(),
    )
    .map_err(|v| violations.push(v))
    .ok();
    let (Some(name), Some(version), Some(checked), Some(traffic), Some(chat_completions)) =
        (name, version, checked, traffic, chat_completions)
    else {
        return Err(ApiError::Invalid(violations));
    };
    if !violations.is_empty() {
        return Err(ApiError::Invalid(violations));
    }

    let at = now();
    let prompt = Prompt {
        id: Uuid::now_v7(),
        name,
        status: PromptStatus::Active,
        traffic,
        chat_completions,
        revision: 1,
        created_at: at,
        updated_at: at,
        created_by: caller.client_id.clone(),
    };
    let first = new_version(prompt.id, version, checked, &caller);
    let created = serde_json::json!({
        "name": prompt.name,
        "status": prompt.status.as_str(),
        "trafficDistribution": wire_traffic(&prompt.traffic),
        "chatCompletions": wire_chat_completions(prompt.chat_completions),
        "version": state.audit.version_snapshot(&first),
    });
    let audit = crate::audit::draft(
        &caller.client_id,
        action::PROMPT_CREATED,
        Some(prompt.id),
        promptgate_audit::change_details(None, Some(&created)),
    );
    match state.store.create_prompt(&prompt, &first, &[audit]).await {
        Ok(()) => {}
        Err(StoreError::DuplicateName { name }) => {
            return Err(ApiError::Conflict(format!(
                "a prompt named {} already exists",
                quoted(&name)
            )));
        }
        Err(other) => return Err(other.into()),
    }
    let labels = vec![first.version.clone()];
    let mut response = prompt_response(&state, &prompt, &labels, &first, StatusCode::CREATED);
    if let Ok(location) =
        HeaderValue::from_str(&format!("{}/prompts/{}", api::BASE_PATH, prompt.id))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Reads a prompt, showing its default version's settings.
#[utoipa::path(get, path = "/api/v2/ai/llm/gateway/prompts/{id}", tag = "prompts",
    params(("id" = String, Path, description = "prompt id")),
    responses((status = 200, description = "the prompt; ETag header set", body = api::Prompt),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, body = api::ErrorBody)),
    security(("bearer" = ["ai:prompt:read"])))]
pub async fn get_prompt(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Scope::PromptRead)?;
    let prompt = load_prompt(&state, &id).await?;
    let labels = sorted_labels(&state, prompt.id).await?;
    let shown = load_version(&state, prompt.id, prompt.traffic.default_version()).await?;
    Ok(prompt_response(
        &state,
        &prompt,
        &labels,
        &shown,
        StatusCode::OK,
    ))
}

/// Lists prompts by id (creation order).
#[utoipa::path(get, path = "/api/v2/ai/llm/gateway/prompts", tag = "prompts",
    params(("name" = Option<String>, Query, description = "exact name; `*` is a wildcard (then ASCII case is ignored)"),
        ("status" = Option<String>, Query, description = "ACTIVE or ARCHIVED; default both"),
        ("pageSize" = Option<u32>, Query, description = "1–500, default 25"),
        ("cursor" = Option<String>, Query, description = "nextPageCursor of the previous page")),
    responses((status = 200, body = api::Page<api::Prompt>), (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["ai:prompt:read"])))]
pub async fn list_prompts(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<api::Page<api::Prompt>>, ApiError> {
    caller.require(Scope::PromptRead)?;
    let mut violations = Vec::new();
    let page_size = query.page_size(25, &mut violations);
    let after = query.cursor_as::<Uuid>(&mut violations);
    let status = query.get("status").and_then(|s| {
        PromptStatus::parse(s).or_else(|| {
            violations.push(Violation::invalid(
                "status",
                format!("status is {}; use ACTIVE or ARCHIVED", quoted(s)),
            ));
            None
        })
    });
    if !violations.is_empty() {
        return Err(ApiError::Invalid(violations));
    }
    let filter = PromptFilter {
        name: query.get("name").map(str::to_owned),
        status,
    };
    let prompts = state
        .store
        .list_prompts(&filter, after, page_size + 1)
        .await?;
    let (prompts, next_page_cursor) = keyset_page(prompts, page_size, |p| p.id.to_string());
    let mut entities = Vec::with_capacity(prompts.len());
    for prompt in &prompts {
        let labels = sorted_labels(&state, prompt.id).await?;
        let shown = load_version(&state, prompt.id, prompt.traffic.default_version()).await?;
        entities.push(wire_prompt(&state, prompt, &labels, &shown));
    }
    Ok(Json(api::Page {
        entities,
        page_size,
        next_page_cursor,
    }))
}

/// Lists a prompt's versions, newest first by semver.
#[utoipa::path(get, path = "/api/v2/ai/llm/gateway/prompts/{id}/versions", tag = "prompts",
    params(("id" = String, Path, description = "prompt id"),
        ("pageSize" = Option<u32>, Query, description = "1–500, default 25"),
        ("cursor" = Option<String>, Query, description = "nextPageCursor of the previous page")),
    responses((status = 200, body = api::Page<api::PromptVersion>), (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, body = api::ErrorBody)),
    security(("bearer" = ["ai:prompt:read"])))]
pub async fn list_versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: QueryParams,
) -> Result<Json<api::Page<api::PromptVersion>>, ApiError> {
    caller.require(Scope::PromptRead)?;
    let mut violations = Vec::new();
    let page_size = query.page_size(25, &mut violations);
    let after = query.cursor_as::<VersionLabel>(&mut violations);
    if !violations.is_empty() {
        return Err(ApiError::Invalid(violations));
    }
    let prompt = load_prompt(&state, &id).await?;
    let mut labels = sorted_labels(&state, prompt.id).await?;
    labels.reverse();
    let start = after.map_or(0, |a| labels.iter().take_while(|l| **l >= a).count());
    let page: Vec<&VersionLabel> = labels.iter().skip(start).take(page_size as usize).collect();
    let more = start + page.len() < labels.len();
    let mut entities = Vec::with_capacity(page.len());
    for label in &page {
        entities.push(wire_version(&load_version(&state, prompt.id, label).await?));
    }
    let next_page_cursor = more
        .then(|| page.last().map(|l| encode_cursor(&l.to_string())))
        .flatten();
    Ok(Json(api::Page {
        entities,
        page_size,
        next_page_cursor,
    }))
}

/// Reads one version.
#[utoipa::path(get, path = "/api/v2/ai/llm/gateway/prompts/{id}/versions/{version}", tag = "prompts",
    params(("id" = String, Path, description = "prompt id"), ("version" = String, Path, description = "version label")),
    responses((status = 200, body = api::PromptVersion), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody)),
    security(("bearer" = ["ai:prompt:read"])))]
pub async fn get_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<api::PromptVersion>, ApiError> {
    caller.require(Scope::PromptRead)?;
    let prompt = load_prompt(&state, &id).await?;
    let label: VersionLabel = version.parse().map_err(|_| {
        ApiError::NotFound(format!("prompt {id} has no version {}", quoted(&version)))
    })?;
    Ok(Json(wire_version(
        &load_version(&state, prompt.id, &label).await?,
    )))
}

/// Adds a version, changes the traffic split, or both, atomically.
#[utoipa::path(put, path = "/api/v2/ai/llm/gateway/prompts/{id}", tag = "prompts",
    params(("id" = String, Path, description = "prompt id"),
        ("If-Match" = Option<String>, Header, description = "the ETag the change is based on; 412 when stale; `*` matches any")),
    request_body = api::UpdatePromptRequest,
    responses((status = 200, description = "updated (or an identical re-send); ETag header set", body = api::Prompt),
        (status = 400, body = api::ErrorBody), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody),
        (status = 409, description = "the version exists with other content, or the prompt is archived", body = api::ErrorBody),
        (status = 412, body = api::ErrorBody), (status = 413, body = api::ErrorBody),
        (status = 415, body = api::ErrorBody)),
    security(("bearer" = ["ai:prompt:write"])))]
pub async fn update_prompt(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<api::UpdatePromptRequest>,
) -> Result<Response, ApiError> {
    caller.require(Scope::PromptWrite)?;
    let mut too_long = Vec::new();
    crate::limits::check_prompt_settings(
        &state.limits,
        body.system_prompt.as_deref(),
        body.few_shot_examples.as_deref(),
        &mut too_long,
    );
    // A mode that no prompt could take is refused before anything is read.
    if let Err(v) = apply_chat_completions(
        ChatCompletionsPolicy::default(),
        body.chat_completions.as_ref(),
    ) {
        too_long.push(v);
    }
    if !too_long.is_empty() {
        return Err(ApiError::Invalid(too_long));
    }
    let if_match = if_match(&headers);
    let draft = settings_draft(
        &body.model_endpoint_ref,
        &body.system_prompt,
        body.temperature,
        &body.safety_guardrails,
        &body.few_shot_examples,
    );
    let _turn = lock_prompt(&state, &id).await;
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let prompt = load_prompt(&state, &id).await?;
        check_if_match(if_match.as_deref(), &prompt)?;
        if prompt.status == PromptStatus::Archived {
            return Err(ApiError::Conflict(format!(
                "prompt {} is archived; archived prompts do not change",
                prompt.id
            )));
        }
        let labels = sorted_labels(&state, prompt.id).await?;
        let plan = plan_update(&state, &prompt, &labels, &body, &draft, &caller).await?;
        let traffic_changes = plan.traffic.as_ref().is_some_and(|t| *t != prompt.traffic);
        let policy =
            apply_chat_completions(prompt.chat_completions, body.chat_completions.as_ref())
                .map_err(|v| ApiError::Invalid(vec![v]))?;
        let policy_changes = policy != prompt.chat_completions;
        if plan.new_version.is_none() && !traffic_changes && !policy_changes {
            // Nothing changes: an identical re-send or an empty update answers like a GET.
            let shown = match plan.shown {
                Some(v) => v,
                None => load_version(&state, prompt.id, prompt.traffic.default_version()).await?,
            };
            return Ok(prompt_response(
                &state,
                &prompt,
                &labels,
                &shown,
                StatusCode::OK,
            ));
        }
        let mut audit = Vec::new();
        if let Some(added) = &plan.new_version {
            let newest = match labels.last() {
                Some(label) => Some(load_version(&state, prompt.id, label).await?),
                None => None,
            };
            audit.push(version_entry(&state, &caller, newest.as_ref(), added));
        }
        let traffic = plan.traffic.filter(|_| traffic_changes);
        if let Some(split) = &traffic {
            audit.push(crate::audit::draft(
                &caller.client_id,
                action::TRAFFIC_UPDATED,
                Some(prompt.id),
                promptgate_audit::change_details(
                    Some(&json_value(&wire_traffic(&prompt.traffic))),
                    Some(&json_value(&wire_traffic(split))),
                ),
            ));
        }
        if policy_changes {
            audit.push(crate::audit::draft(
                &caller.client_id,
                action::CHAT_COMPLETIONS_UPDATED,
                Some(prompt.id),
                promptgate_audit::change_details(
                    Some(&json_value(&wire_chat_completions(prompt.chat_completions))),
                    Some(&json_value(&wire_chat_completions(policy))),
                ),
            ));
        }
        let update = PromptUpdate {
            new_version: plan.new_version.clone(),
            traffic,
            chat_completions: policy_changes.then_some(policy),
            audit,
            ..next_revision(&prompt)
        };
        if apply(&state, &update, if_match.as_deref()).await? {
            let updated = Prompt {
                revision: update.new_revision,
                updated_at: update.updated_at,
                traffic: update.traffic.clone().unwrap_or(prompt.traffic),
                chat_completions: policy,
                ..prompt
            };
            let mut labels = labels;
            if let Some(v) = &update.new_version {
                labels.push(v.version.clone());
                labels.sort();
            }
            let shown = match (update.new_version, plan.shown) {
                (Some(v), _) | (None, Some(v)) => v,
                (None, None) => {
                    load_version(&state, updated.id, updated.traffic.default_version()).await?
                }
            };
            return Ok(prompt_response(
                &state,
                &updated,
                &labels,
                &shown,
                StatusCode::OK,
            ));
        }
    }
    Err(ApiError::Unavailable(
        "the prompt is changing too fast to update; retry".to_owned(),
    ))
}

/// Archives a prompt: it stops serving; its history stays.
#[utoipa::path(delete, path = "/api/v2/ai/llm/gateway/prompts/{id}", tag = "prompts",
    params(("id" = String, Path, description = "prompt id"),
        ("If-Match" = Option<String>, Header, description = "the ETag the change is based on")),
    responses((status = 200, description = "archived (also when it already was)", body = api::Prompt),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, body = api::ErrorBody), (status = 412, body = api::ErrorBody)),
    security(("bearer" = ["ai:prompt:write"])))]
pub async fn archive_prompt(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(Scope::PromptWrite)?;
    let if_match = if_match(&headers);
    let _turn = lock_prompt(&state, &id).await;
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let prompt = load_prompt(&state, &id).await?;
        check_if_match(if_match.as_deref(), &prompt)?;
        let labels = sorted_labels(&state, prompt.id).await?;
        let shown = load_version(&state, prompt.id, prompt.traffic.default_version()).await?;
        if prompt.status == PromptStatus::Archived {
            return Ok(prompt_response(
                &state,
                &prompt,
                &labels,
                &shown,
                StatusCode::OK,
            ));
        }
        let update = PromptUpdate {
            status: Some(PromptStatus::Archived),
            audit: vec![crate::audit::draft(
                &caller.client_id,
                action::PROMPT_ARCHIVED,
                Some(prompt.id),
                promptgate_audit::change_details(
                    Some(&serde_json::json!({"status": PromptStatus::Active.as_str()})),
                    Some(&serde_json::json!({"status": PromptStatus::Archived.as_str()})),
                ),
            )],
            ..next_revision(&prompt)
        };
        if apply(&state, &update, if_match.as_deref()).await? {
            let archived = Prompt {
                status: PromptStatus::Archived,
                revision: update.new_revision,
                updated_at: update.updated_at,
                ..prompt
            };
            return Ok(prompt_response(
                &state,
                &archived,
                &labels,
                &shown,
                StatusCode::OK,
            ));
        }
    }
    Err(ApiError::Unavailable(
        "the prompt is changing too fast to archive; retry".to_owned(),
    ))
}

/// An update of `prompt` to its next revision that changes nothing yet.
fn next_revision(prompt: &Prompt) -> PromptUpdate {
    PromptUpdate {
        id: prompt.id,
        expected_revision: prompt.revision,
        new_revision: prompt.revision + 1,
        updated_at: now(),
        new_version: None,
        traffic: None,
        status: None,
        chat_completions: None,
        audit: Vec::new(),
    }
}

/// The audit entry of a new version: its settings, compared with the newest version before it
/// (the diff a reviewer wants: what changed from the last version).
fn version_entry(
    state: &AppState,
    caller: &Caller,
    newest: Option<&PromptVersion>,
    added: &PromptVersion,
) -> promptgate_audit::AuditDraft {
    let before = newest.map(|v| state.audit.version_snapshot(v));
    let mut details = promptgate_audit::change_details(
        before.as_ref(),
        Some(&state.audit.version_snapshot(added)),
    );
    details["version"] = serde_json::json!(added.version.to_string());
    details["comparedWith"] = serde_json::json!(newest.map(|v| v.version.to_string()));
    crate::audit::draft(
        &caller.client_id,
        action::VERSION_CREATED,
        Some(added.prompt_id),
        details,
    )
}

fn json_value(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// Applies an update decided on the prompt as read. `Ok(true)`: done (and the prompt cache
/// told). `Ok(false)`: another process changed the prompt first (or added the same version), so
/// the caller decides again on the new state. With `If-Match` a lost race is a 412 instead.
async fn apply(
    state: &AppState,
    update: &PromptUpdate,
    if_match: Option<&str>,
) -> Result<bool, ApiError> {
    match state.store.update_prompt(update).await {
        Ok(()) => {
            state.prompts.invalidate(update.id);
            Ok(true)
        }
        Err(StoreError::StaleRevision) if if_match.is_some() => {
            let current =
                state.store.get_prompt(update.id).await?.ok_or_else(|| {
                    ApiError::NotFound(format!("no prompt with id {}", update.id))
                })?;
            Err(ApiError::PreconditionFailed {
                current_etag: current.etag(),
            })
        }
        Err(StoreError::StaleRevision | StoreError::DuplicateVersion { .. }) => Ok(false),
        Err(other) => Err(other.into()),
    }
}

/// What an update will do, decided from the prompt as read.
struct UpdatePlan {
    /// A version to insert.
    new_version: Option<PromptVersion>,
    /// The version an identical re-send named (shown in the answer).
    shown: Option<PromptVersion>,
    /// The split after the update.
    traffic: Option<TrafficSplit>,
}

async fn plan_update(
    state: &AppState,
    prompt: &Prompt,
    labels: &[VersionLabel],
    body: &api::UpdatePromptRequest,
    draft: &SettingsDraft,
    caller: &Caller,
) -> Result<UpdatePlan, ApiError> {
    let mut violations = Vec::new();
    let mut plan = UpdatePlan {
        new_version: None,
        shown: None,
        traffic: None,
    };
    let wants_version = body.version.is_some() || !draft.is_empty();
    let label = if wants_version {
        check_version("version", body.version.as_deref())
            .map_err(|mut v| {
                if body.version.is_none() {
                    v.template = "version is required when a setting changes: settings live in immutable versions".to_owned();
                }
                violations.push(v);
            })
            .ok()
    } else {
        None
    };
    if let Some(label) = &label {
        if labels.contains(label) {
            let existing = load_version(state, prompt.id, label).await?;
            match draft.check(Some(&existing.settings), &state.catalogue, &state.counter) {
                Ok(checked) if checked.settings == existing.settings => plan.shown = Some(existing),
                Ok(_) => {
                    return Err(ApiError::Conflict(format!(
                        "version {label} exists with different content; versions are immutable, so use a new version"
                    )));
                }
                Err(v) => violations.extend(v),
            }
        } else {
            let newest = labels.iter().max().ok_or_else(|| {
                ApiError::Internal(format!("prompt {} has no versions", prompt.id))
            })?;
            let base = load_version(state, prompt.id, newest).await?;
            match draft.check(Some(&base.settings), &state.catalogue, &state.counter) {
                Ok(checked) => {
                    plan.new_version = Some(new_version(prompt.id, label.clone(), checked, caller));
                }
                Err(v) => violations.extend(v),
            }
        }
    }
    if let Some(wire) = &body.traffic_distribution {
        let mut known = labels.to_vec();
        if let Some(v) = &plan.new_version {
            known.push(v.version.clone());
        }
        match TrafficSplit::apply_draft(&prompt.traffic, &traffic_draft(wire), &known) {
            Ok(split) => plan.traffic = Some(split),
            Err(v) => violations.extend(v),
        }
    }
    if violations.is_empty() {
        Ok(plan)
    } else {
        Err(ApiError::Invalid(violations))
    }
}

fn new_version(
    prompt_id: Uuid,
    version: VersionLabel,
    checked: CheckedSettings,
    caller: &Caller,
) -> PromptVersion {
    PromptVersion {
        prompt_id,
        version,
        settings: checked.settings,
        system_prompt_tokens: checked.system_prompt_tokens,
        tokenizer: checked.tokenizer,
        created_at: now(),
        created_by: caller.client_id.clone(),
    }
}

/// The `If-Match` header's value, if sent.
fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .map(|v| v.to_str().unwrap_or("\u{0}").trim().to_owned())
}

/// `If-Match: *` or a list containing the current ETag (weak or strong) passes.
fn check_if_match(if_match: Option<&str>, prompt: &Prompt) -> Result<(), ApiError> {
    let Some(value) = if_match else { return Ok(()) };
    let etag = prompt.etag();
    let matches = value == "*"
        || value
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag);
    if matches {
        Ok(())
    } else {
        Err(ApiError::PreconditionFailed { current_etag: etag })
    }
}

/// Takes this process's turn on the prompt (a malformed id needs no lock: it will be a 404).
async fn lock_prompt<'a>(state: &'a AppState, id: &str) -> Option<tokio::sync::MutexGuard<'a, ()>> {
    match Uuid::parse_str(id) {
        Ok(uuid) => Some(state.prompt_locks.lock(uuid).await),
        Err(_) => None,
    }
}

async fn load_prompt(state: &AppState, id: &str) -> Result<Prompt, ApiError> {
    let not_found = || ApiError::NotFound(format!("no prompt with id {id}"));
    let uuid = Uuid::parse_str(id).map_err(|_| not_found())?;
    state.store.get_prompt(uuid).await?.ok_or_else(not_found)
}

async fn load_version(
    state: &AppState,
    prompt_id: Uuid,
    label: &VersionLabel,
) -> Result<PromptVersion, ApiError> {
    state
        .store
        .get_version(prompt_id, label)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("prompt {prompt_id} has no version {label}")))
}

/// A prompt's version labels, oldest first by semver.
async fn sorted_labels(state: &AppState, prompt_id: Uuid) -> Result<Vec<VersionLabel>, ApiError> {
    let mut labels = state.store.version_labels(prompt_id).await?;
    labels.sort();
    Ok(labels)
}

fn prompt_response(
    state: &AppState,
    prompt: &Prompt,
    labels: &[VersionLabel],
    shown: &PromptVersion,
    status: StatusCode,
) -> Response {
    let mut response = (status, Json(wire_prompt(state, prompt, labels, shown))).into_response();
    if let Ok(etag) = HeaderValue::from_str(&prompt.etag()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

fn settings_draft(
    model_endpoint_ref: &Option<String>,
    system_prompt: &Option<String>,
    temperature: Option<f64>,
    guardrails: &Option<api::SafetyGuardrails>,
    examples: &Option<Vec<api::FewShotExample>>,
) -> SettingsDraft {
    SettingsDraft {
        model_endpoint_ref: model_endpoint_ref.clone(),
        system_prompt: system_prompt.clone(),
        temperature,
        safety_guardrails: guardrails.as_ref().map(|g| GuardrailsDraft {
            content_filtering: g.content_filtering.clone(),
            max_tokens: g.max_tokens,
            blocked_categories: g.blocked_categories.clone(),
        }),
        few_shot_examples: examples.as_ref().map(|list| {
            list.iter()
                .map(|e| ExampleDraft {
                    input: e.input.clone(),
                    output: e.output.clone(),
                })
                .collect()
        }),
    }
}

fn traffic_draft(wire: &api::TrafficDistribution) -> TrafficDraft {
    TrafficDraft {
        default_version: wire.default_version.clone(),
        split_strategy: wire.split_strategy.clone(),
        versions: wire.versions.as_ref().map(|list| {
            list.iter()
                .map(|w| WeightDraft {
                    version: w.version.clone(),
                    weight: w.weight,
                })
                .collect()
        }),
    }
}

/// The traffic split as the contract shows it (also the audit log's `before`/`after`).
pub(crate) fn wire_traffic(split: &TrafficSplit) -> api::TrafficDistribution {
    api::TrafficDistribution {
        default_version: Some(split.default_version().to_string()),
        split_strategy: Some(split.strategy().as_str().to_owned()),
        versions: Some(
            split
                .weights()
                .iter()
                .map(|w| api::VersionWeight {
                    version: Some(w.version.to_string()),
                    weight: Some(w.weight),
                })
                .collect(),
        ),
    }
}

fn wire_guardrails(g: &promptgate_core::SafetyGuardrails) -> api::SafetyGuardrails {
    api::SafetyGuardrails {
        content_filtering: Some(
            g.content_filtering
                .iter()
                .map(|f| f.as_str().to_owned())
                .collect(),
        ),
        max_tokens: g.max_tokens.map(i64::from),
        blocked_categories: Some(
            g.blocked_categories
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
        ),
    }
}

fn wire_examples(examples: &[promptgate_core::FewShotExample]) -> Vec<api::FewShotExample> {
    examples
        .iter()
        .map(|e| api::FewShotExample {
            input: Some(e.input.clone()),
            output: Some(e.output.clone()),
        })
        .collect()
}

fn wire_prompt(
    state: &AppState,
    prompt: &Prompt,
    labels: &[VersionLabel],
    shown: &PromptVersion,
) -> api::Prompt {
    let exact = state
        .catalogue
        .get(&shown.settings.model_endpoint_ref)
        .is_some_and(|e| e.tokenizer == shown.tokenizer && e.tokenizer_exact);
    api::Prompt {
        id: prompt.id.to_string(),
        name: prompt.name.clone(),
        status: prompt.status.as_str().to_owned(),
        version: shown.version.to_string(),
        model_endpoint_ref: shown.settings.model_endpoint_ref.clone(),
        system_prompt: shown.settings.system_prompt.clone(),
        temperature: shown.settings.temperature,
        safety_guardrails: wire_guardrails(&shown.settings.safety_guardrails),
        few_shot_examples: wire_examples(&shown.settings.few_shot_examples),
        system_prompt_tokens: shown.system_prompt_tokens,
        tokenizer: shown.tokenizer.as_str().to_owned(),
        tokenizer_exact: exact,
        traffic_distribution: wire_traffic(&prompt.traffic),
        chat_completions: wire_chat_completions(prompt.chat_completions),
        versions: labels.iter().map(ToString::to_string).collect(),
        created_at: rfc3339(prompt.created_at),
        updated_at: rfc3339(prompt.updated_at),
    }
}

fn wire_chat_completions(policy: ChatCompletionsPolicy) -> api::ChatCompletionsSettings {
    api::ChatCompletionsSettings {
        system_message: policy.system_message.as_str().to_owned(),
        allow_caller_settings: policy.allow_caller_settings,
    }
}

/// `current` with the left-out parts of `draft` kept; a violation names an unknown mode.
fn apply_chat_completions(
    current: ChatCompletionsPolicy,
    draft: Option<&api::ChatCompletionsDraft>,
) -> Result<ChatCompletionsPolicy, Violation> {
    let Some(draft) = draft else {
        return Ok(current);
    };
    let system_message = match draft.system_message.as_deref() {
        None => current.system_message,
        Some(text) => SystemMessageMode::parse(text).ok_or_else(|| {
            Violation::invalid(
                "chatCompletions.systemMessage",
                format!("systemMessage is {}; use replace or prepend", quoted(text)),
            )
        })?,
    };
    Ok(ChatCompletionsPolicy {
        system_message,
        allow_caller_settings: draft
            .allow_caller_settings
            .unwrap_or(current.allow_caller_settings),
    })
}

/// A version as the contract shows it (also the audit log's snapshot of a version).
pub(crate) fn wire_version(v: &PromptVersion) -> api::PromptVersion {
    api::PromptVersion {
        prompt_id: v.prompt_id.to_string(),
        version: v.version.to_string(),
        model_endpoint_ref: v.settings.model_endpoint_ref.clone(),
        system_prompt: v.settings.system_prompt.clone(),
        temperature: v.settings.temperature,
        safety_guardrails: wire_guardrails(&v.settings.safety_guardrails),
        few_shot_examples: wire_examples(&v.settings.few_shot_examples),
        system_prompt_tokens: v.system_prompt_tokens,
        tokenizer: v.tokenizer.as_str().to_owned(),
        created_at: rfc3339(v.created_at),
        created_by: v.created_by.clone(),
    }
}
