//! `…/prompts`: create, read, list, version, split and archive prompts. Each handler checks the
//! scope, turns the request into the core's draft (`crate::wire::prompts`), calls one function
//! of `crate::service::prompts` and writes its answer; the use cases, their optimistic
//! concurrency and their audit entries live there.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use promptgate_api as api;
use promptgate_core::violation::quoted;
use promptgate_core::{PromptStatus, Scope, VersionLabel, Violation};
use promptgate_store::PromptFilter;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams, encode_cursor};
use crate::service::prompts::{self as service, LabelAction, Page, PromptError, PromptView};
use crate::state::AppState;
use crate::wire::prompts::{
    change_draft, new_prompt_draft, wire_prompt, wire_rendered, wire_version,
};

impl From<PromptError> for ApiError {
    fn from(err: PromptError) -> Self {
        match err {
            PromptError::Invalid(violations) => ApiError::Invalid(violations),
            PromptError::NoPrompt { .. }
            | PromptError::NoVersion { .. }
            | PromptError::NotAVersion { .. } => ApiError::NotFound(err.to_string()),
            PromptError::NameTaken { .. }
            | PromptError::Archived { .. }
            | PromptError::VersionExists { .. } => ApiError::Conflict(err.to_string()),
            PromptError::Stale { current_etag } => ApiError::PreconditionFailed { current_etag },
            PromptError::Busy { .. } => ApiError::Unavailable(err.to_string()),
            PromptError::NoVersions { .. } => ApiError::Internal(err.to_string()),
            PromptError::NoLabel { .. } => ApiError::LabelNotFound(err.to_string()),
            PromptError::Blocked(category) => ApiError::GuardrailBlocked {
                category: category.as_str().to_owned(),
            },
            PromptError::Store(err) => err.into(),
        }
    }
}

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
    let view = service::create_prompt(&state, &caller.client_id, new_prompt_draft(body)).await?;
    let mut response = prompt_response(&state, &view, StatusCode::CREATED);
    if let Ok(location) =
        HeaderValue::from_str(&format!("{}/prompts/{}", api::BASE_PATH, view.prompt.id))
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
    let view = service::get_prompt(&state, &id).await?;
    Ok(prompt_response(&state, &view, StatusCode::OK))
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
    let page = service::list_prompts(&state, &filter, after, page_size).await?;
    Ok(Json(api::Page {
        next_page_cursor: next_cursor(&page, |v| v.prompt.id.to_string()),
        entities: page
            .items
            .iter()
            .map(|v| wire_prompt(&state.catalogue, &v.prompt, &v.labels, &v.shown))
            .collect(),
        page_size,
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
    let page = service::list_versions(&state, &id, after, page_size).await?;
    Ok(Json(api::Page {
        next_page_cursor: next_cursor(&page, |v| v.version.to_string()),
        entities: page.items.iter().map(wire_version).collect(),
        page_size,
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
    let found = service::get_version(&state, &id, &version).await?;
    Ok(Json(wire_version(&found)))
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
    let if_match = if_match(&headers);
    let view = service::update_prompt(
        &state,
        &caller.client_id,
        &id,
        if_match.as_deref(),
        change_draft(body),
    )
    .await?;
    Ok(prompt_response(&state, &view, StatusCode::OK))
}

/// Points a label at a version, creating the label if it is new.
#[utoipa::path(put, path = "/api/v2/ai/llm/gateway/prompts/{id}/labels/{label}", tag = "prompts",
    params(("id" = String, Path, description = "prompt id"),
        ("label" = String, Path, description = "label name: `[a-z][a-z0-9-]{0,62}`"),
        ("If-Match" = Option<String>, Header, description = "the ETag the change is based on; 412 when stale")),
    request_body = api::LabelRequest,
    responses((status = 200, description = "the prompt with its labels; ETag header set", body = api::Prompt),
        (status = 400, description = "bad label name, unknown version, or over 20 labels", body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, body = api::ErrorBody),
        (status = 409, description = "the prompt is archived", body = api::ErrorBody),
        (status = 412, body = api::ErrorBody)),
    security(("bearer" = ["ai:prompt:write"])))]
pub async fn put_label(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, label)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<api::LabelRequest>,
) -> Result<Response, ApiError> {
    caller.require(Scope::PromptWrite)?;
    let action = LabelAction::Move {
        version: body.version,
    };
    let if_match = if_match(&headers);
    let view = service::change_label(
        &state,
        &caller.client_id,
        &id,
        &label,
        action,
        if_match.as_deref(),
    )
    .await?;
    Ok(prompt_response(&state, &view, StatusCode::OK))
}

/// Deletes a label.
#[utoipa::path(delete, path = "/api/v2/ai/llm/gateway/prompts/{id}/labels/{label}", tag = "prompts",
    params(("id" = String, Path, description = "prompt id"), ("label" = String, Path, description = "label name"),
        ("If-Match" = Option<String>, Header, description = "the ETag the change is based on; 412 when stale")),
    responses((status = 200, description = "the prompt without the label; ETag header set", body = api::Prompt),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, description = "no such prompt, or `label.not.found` (also for a text that is no label name)", body = api::ErrorBody),
        (status = 409, body = api::ErrorBody), (status = 412, body = api::ErrorBody)),
    security(("bearer" = ["ai:prompt:write"])))]
pub async fn delete_label(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, label)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(Scope::PromptWrite)?;
    let if_match = if_match(&headers);
    let view = service::change_label(
        &state,
        &caller.client_id,
        &id,
        &label,
        LabelAction::Delete,
        if_match.as_deref(),
    )
    .await?;
    Ok(prompt_response(&state, &view, StatusCode::OK))
}

/// Renders a version's templates with sample variables, calling no model.
#[utoipa::path(post, path = "/api/v2/ai/llm/gateway/prompts/{id}/render", tag = "prompts",
    params(("id" = String, Path, description = "prompt id")),
    request_body = api::RenderRequest,
    responses((status = 200, description = "the rendered texts and their token counts", body = api::RenderResponse),
        (status = 400, description = "variables that break the schema (`variables.<name>`), or over the budget", body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, description = "no such prompt, version or label", body = api::ErrorBody),
        (status = 422, description = "a variable matches a blocked category", body = api::ErrorBody)),
    security(("bearer" = ["ai:prompt:read"])))]
pub async fn render(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<api::RenderRequest>,
) -> Result<Json<api::RenderResponse>, ApiError> {
    caller.require(Scope::PromptRead)?;
    let input = service::RenderInput {
        version: body.version,
        label: body.label,
        variables: body.variables,
    };
    let service::Rendered {
        prompt_id,
        version,
        filled,
        system_prompt_tokens,
        message_tokens,
    } = service::render(&state, &id, input).await?;
    Ok(Json(wire_rendered(
        prompt_id,
        &version,
        filled,
        system_prompt_tokens,
        message_tokens,
    )))
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
    let view = service::archive_prompt(&state, &caller.client_id, &id, if_match.as_deref()).await?;
    Ok(prompt_response(&state, &view, StatusCode::OK))
}

/// The `If-Match` header's value, if sent (a value that is not text matches nothing).
fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .map(|v| v.to_str().unwrap_or("\u{0}").trim().to_owned())
}

/// The cursor of the page after `page`, naming its last item by `position`.
fn next_cursor<T>(page: &Page<T>, position: impl Fn(&T) -> String) -> Option<String> {
    page.more
        .then(|| page.items.last().map(|last| encode_cursor(&position(last))))
        .flatten()
}

/// The prompt as the answer's body, with its `ETag`.
fn prompt_response(state: &AppState, view: &PromptView, status: StatusCode) -> Response {
    let body = wire_prompt(&state.catalogue, &view.prompt, &view.labels, &view.shown);
    let mut response = (status, Json(body)).into_response();
    if let Ok(etag) = HeaderValue::from_str(&view.prompt.etag()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}
