//! `…/telemetry`: the stored invocation records, page by page, and feedback on one of them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use promptgate_api as api;
use promptgate_core::Scope;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams, keyset_page};
use crate::service::feedback::{self, FeedbackError, FeedbackInput};
use crate::service::telemetry::{self as service, TelemetryError};
use crate::state::AppState;
use crate::wire::telemetry::{
    feedback_score, read_filter, read_summary_query, wire_entity, wire_feedback, wire_summary,
};

impl From<TelemetryError> for ApiError {
    fn from(err: TelemetryError) -> Self {
        match err {
            TelemetryError::Store(store) => ApiError::from(store),
        }
    }
}

impl From<FeedbackError> for ApiError {
    fn from(err: FeedbackError) -> Self {
        match err {
            FeedbackError::Invalid(violations) => ApiError::Invalid(violations),
            FeedbackError::NotFound(_) => ApiError::NotFound(err.to_string()),
            FeedbackError::NotAuthorized(_) => ApiError::NotAuthorized(err.to_string()),
            FeedbackError::Conflict(_) => ApiError::Conflict(err.to_string()),
            FeedbackError::Store(store) => ApiError::from(store),
        }
    }
}

/// Lists invocation records, oldest first, with a cursor that is stable while records arrive.
#[utoipa::path(get, path = "/api/v2/ai/llm/gateway/telemetry", tag = "telemetry",
    params(("promptId" = Option<String>, Query, description = "only this prompt"),
        ("version" = Option<String>, Query, description = "only this version"),
        ("label" = Option<String>, Query, description = "only invocations that named this label"),
        ("startTime" = Option<String>, Query, description = "received at or after (RFC 3339)"),
        ("endTime" = Option<String>, Query, description = "received before (RFC 3339)"),
        ("status" = Option<String>, Query, description = "SUCCESS, ERROR or BLOCKED"),
        ("pageSize" = Option<u32>, Query, description = "1–500, default 50"),
        ("cursor" = Option<String>, Query, description = "nextPageCursor of the previous page")),
    responses((status = 200, description = "records in storage order (the filters may also come as a JSON body)", body = api::Page<api::TelemetryEntity>),
        (status = 400, body = api::ErrorBody), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["ai:telemetry:read"])))]
pub async fn list_telemetry(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
    body: Bytes,
) -> Result<Json<api::Page<api::TelemetryEntity>>, ApiError> {
    caller.require(Scope::TelemetryRead)?;
    let query = query.with_json_body(&body)?;
    let mut violations = Vec::new();
    let filter = read_filter(&query, &mut violations);
    let page_size = query.page_size(50, &mut violations);
    let after = query.cursor_as::<i64>(&mut violations);
    if !violations.is_empty() {
        return Err(ApiError::Invalid(violations));
    }
    // Everything queued before this request is listed (a caller reads its own invocations).
    let rows = service::list_records(&state, &filter, after, page_size + 1).await?;
    let (rows, next_page_cursor) = keyset_page(rows, page_size, |r| r.seq.to_string());
    Ok(Json(api::Page {
        entities: rows.iter().map(wire_entity).collect(),
        page_size,
        next_page_cursor,
    }))
}

/// Records feedback on an invocation. Only the client that made the invocation, or an `admin`,
/// may; a later post replaces the earlier feedback, says so (`replaced`), and leaves a
/// `FEEDBACK_REPLACED` audit entry.
#[utoipa::path(post, path = "/api/v2/ai/llm/gateway/invocations/{responseId}/feedback", tag = "telemetry",
    params(("responseId" = String, Path, description = "the invocation's responseId")),
    request_body = api::FeedbackRequest,
    responses((status = 201, body = api::FeedbackResponse), (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody),
        (status = 403, description = "missing.scope, or not.authorized: the invocation is another client's", body = api::ErrorBody),
        (status = 404, body = api::ErrorBody)),
    security(("bearer" = ["ai:gateway:write"])))]
pub async fn post_feedback(
    State(state): State<AppState>,
    caller: Caller,
    Path(response_id): Path<String>,
    JsonBody(body): JsonBody<api::FeedbackRequest>,
) -> Result<(StatusCode, Json<api::FeedbackResponse>), ApiError> {
    caller.require(Scope::GatewayWrite)?;
    let input = FeedbackInput {
        response_id,
        score: feedback_score(body.score.as_ref()),
        comment: body.comment,
    };
    let recorded = feedback::record(&state, &caller, input).await?;
    Ok((StatusCode::CREATED, Json(wire_feedback(recorded))))
}

/// Per-version numbers over the filtered records and, with `compareTo`, each version's
/// differences from the reference with 95% confidence intervals (`docs/statistics.md`).
#[utoipa::path(get, path = "/api/v2/ai/llm/gateway/telemetry/summary", tag = "telemetry",
    params(("promptId" = Option<String>, Query, description = "only this prompt"),
        ("version" = Option<String>, Query, description = "only this version"),
        ("label" = Option<String>, Query, description = "only invocations that named this label"),
        ("startTime" = Option<String>, Query, description = "received at or after (RFC 3339)"),
        ("endTime" = Option<String>, Query, description = "received before (RFC 3339)"),
        ("status" = Option<String>, Query, description = "SUCCESS, ERROR or BLOCKED"),
        ("groupBy" = Option<String>, Query, description = "version (the default) or endpoint (one entity per serving endpoint, named by endpointRef)"),
        ("compareTo" = Option<String>, Query, description = "a version to compare every other version with")),
    responses((status = 200, body = api::TelemetrySummary), (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["ai:telemetry:read"])))]
pub async fn summary(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
    body: Bytes,
) -> Result<Json<api::TelemetrySummary>, ApiError> {
    caller.require(Scope::TelemetryRead)?;
    let query = query.with_json_body(&body)?;
    let summary_query = read_summary_query(&query).map_err(ApiError::Invalid)?;
    // Everything queued before this request is counted.
    let summary = service::summarize(&state, summary_query).await?;
    Ok(Json(wire_summary(summary)))
}
