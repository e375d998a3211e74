//! `…/telemetry`: the stored invocation records, page by page, and feedback on one of them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use promptgate_api as api;
use promptgate_core::Scope;
use promptgate_core::Violation;
use promptgate_core::invocation::InvocationStatus;
use promptgate_store::{Feedback, StoredInvocation, TelemetryFilter};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams, keyset_page};
use crate::state::{AppState, now, rfc3339};

/// Reads `startTime` and `endTime` (RFC 3339; the end must not be before the start), the time
/// range every listing shares.
pub fn read_time_range(
    query: &QueryParams,
    violations: &mut Vec<Violation>,
) -> (Option<OffsetDateTime>, Option<OffsetDateTime>) {
    let time = |key: &str, violations: &mut Vec<Violation>| {
        query.get(key).and_then(|text| {
            OffsetDateTime::parse(text, &Rfc3339)
                .map_err(|_| {
                    violations.push(Violation::invalid(
                        key,
                        format!(
                            "{key} is {}; use an RFC 3339 time such as 2026-11-27T04:15:39Z",
                            promptgate_core::violation::quoted(text)
                        ),
                    ));
                })
                .ok()
        })
    };
    let start = time("startTime", violations);
    let end = time("endTime", violations);
    if let (Some(start), Some(end)) = (start, end)
        && end < start
    {
        violations.push(Violation::invalid("endTime", "endTime is before startTime"));
    }
    (start, end)
}

/// Reads the contract's filters (`promptId`, `version`, `startTime`, `endTime`, `status`),
/// reporting every invalid one at once.
pub fn read_filter(query: &QueryParams, violations: &mut Vec<Violation>) -> TelemetryFilter {
    let (start, end) = read_time_range(query, violations);
    TelemetryFilter {
        prompt_id: crate::extract::parse_uuid_field("promptId", query.get("promptId"), violations),
        version: query.get("version").map(str::to_owned),
        start,
        end,
        status: query.get("status").and_then(|text| {
            InvocationStatus::parse(text).or_else(|| {
                violations.push(Violation::invalid(
                    "status",
                    format!(
                        "status is {}; use SUCCESS, ERROR or BLOCKED",
                        promptgate_core::violation::quoted(text)
                    ),
                ));
                None
            })
        }),
    }
}

/// Lists invocation records, oldest first, with a cursor that is stable while records arrive.
#[utoipa::path(get, path = "/api/v2/ai/llm/gateway/telemetry", tag = "telemetry",
    params(("promptId" = Option<String>, Query, description = "only this prompt"),
        ("version" = Option<String>, Query, description = "only this version"),
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
    state.telemetry.flush().await;
    let rows = state
        .store
        .list_invocations(&filter, after, page_size + 1)
        .await?;
    let (rows, next_page_cursor) = keyset_page(rows, page_size, |r| r.seq.to_string());
    Ok(Json(api::Page {
        entities: rows.iter().map(wire_entity).collect(),
        page_size,
        next_page_cursor,
    }))
}

/// How many times a feedback post re-reads and retries when another post changed the same
/// invocation's feedback between its read and its write.
const FEEDBACK_ATTEMPTS: usize = 5;

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
    let mut violations = Vec::new();
    let score = match &body.score {
        Some(serde_json::Value::Bool(b)) => Some(if *b { 1.0 } else { 0.0 }),
        Some(serde_json::Value::Number(n)) => match n.as_f64() {
            Some(x) if (0.0..=1.0).contains(&x) => Some(x),
            _ => {
                violations.push(Violation::invalid(
                    "score",
                    format!("score is {n}; it must be between 0 and 1"),
                ));
                None
            }
        },
        Some(other) => {
            violations.push(Violation::invalid(
                "score",
                format!(
                    "score is {}; send a number from 0 to 1, or true or false",
                    match other {
                        serde_json::Value::String(text) => promptgate_core::violation::quoted(text),
                        value => value.to_string(),
                    }
                ),
            ));
            None
        }
        None => {
            violations.push(Violation::invalid("score", "score is required"));
            None
        }
    };
    if let Some(comment) = &body.comment {
        crate::limits::check_length(
            &mut violations,
            "comment",
            comment,
            state.limits.max_text_chars,
            "max_text_chars",
        );
    }
    let Some(score) = score.filter(|_| violations.is_empty()) else {
        return Err(ApiError::Invalid(violations));
    };
    let feedback = Feedback {
        score,
        comment: body.comment.clone(),
        at: now(),
    };
    let mut flushed = false;
    for _ in 0..FEEDBACK_ATTEMPTS {
        let Some(current) = state.store.feedback_state(&response_id).await? else {
            if flushed {
                return Err(ApiError::NotFound(format!(
                    "no invocation with responseId {response_id}"
                )));
            }
            // The record may still be queued for the batch writer: store the queue and look
            // again.
            state.telemetry.flush().await;
            flushed = true;
            continue;
        };
        if current.client_id != caller.client_id && !caller.scopes.contains(Scope::Admin) {
            return Err(ApiError::NotAuthorized(format!(
                "invocation {response_id} was made by another client; only that client or an \
                 admin may give its feedback"
            )));
        }
        let audit = current.feedback.as_ref().map(|previous| {
            replacement_entry(
                &caller.client_id,
                &response_id,
                &current,
                previous,
                &feedback,
            )
        });
        if state
            .store
            .replace_feedback(
                &response_id,
                current.feedback.as_ref(),
                &feedback,
                audit.as_ref(),
            )
            .await?
        {
            return Ok((
                StatusCode::CREATED,
                Json(api::FeedbackResponse {
                    response_id,
                    score,
                    comment: feedback.comment,
                    created_at: rfc3339(feedback.at),
                    replaced: current.feedback.is_some(),
                }),
            ));
        }
        // Another post changed this feedback (or a retention prune removed the record) between
        // the read and the write: decide again on what is stored now.
    }
    Err(ApiError::Conflict(format!(
        "the feedback of invocation {response_id} kept changing while this post was written; retry"
    )))
}

/// The audit entry of `by` replacing `previous` with `next`. A comment is recorded by its
/// length and SHA-256 only: comments are free text from callers and may hold personal data,
/// which an append-only log could never purge; the hash still lets a copy kept elsewhere be
/// matched to the entry.
fn replacement_entry(
    by: &str,
    response_id: &str,
    current: &promptgate_store::FeedbackState,
    previous: &Feedback,
    next: &Feedback,
) -> promptgate_audit::AuditDraft {
    use sha2::Digest;
    let recorded = |f: &Feedback| {
        serde_json::json!({
            "score": f.score,
            "givenAt": rfc3339(f.at),
            "comment": f.comment.as_ref().map(|c| serde_json::json!({
                "chars": c.chars().count(),
                "sha256": hex::encode(sha2::Sha256::digest(c.as_bytes())),
            })),
        })
    };
    let mut details =
        promptgate_audit::change_details(Some(&recorded(previous)), Some(&recorded(next)));
    details["responseId"] = serde_json::json!(response_id);
    details["invocationClientId"] = serde_json::json!(current.client_id);
    crate::audit::draft(
        by,
        promptgate_audit::action::FEEDBACK_REPLACED,
        Some(current.prompt_id),
        details,
    )
}

/// The wire form of a stored record.
pub fn wire_entity(stored: &StoredInvocation) -> api::TelemetryEntity {
    let r = &stored.record;
    api::TelemetryEntity {
        id: r.id.clone(),
        timestamp: rfc3339(r.timestamp),
        prompt_id: r.prompt_id.to_string(),
        version: r.version.clone(),
        model: r.model.clone(),
        status: r.status.as_str().to_owned(),
        error_code: r.error_code.clone(),
        latency_ms: r.latency_ms,
        upstream_latency_ms: r.upstream_latency_ms,
        time_to_first_token_ms: r.time_to_first_token_ms,
        token_usage: api::TokenUsage {
            prompt: r.prompt_tokens,
            completion: r.completion_tokens,
            total: r.prompt_tokens.saturating_add(r.completion_tokens),
        },
        session_id: r.session_id.clone(),
        metadata: r.metadata.clone(),
        feedback: stored.feedback.as_ref().map(|f| api::FeedbackEntity {
            score: f.score,
            comment: f.comment.clone(),
            created_at: rfc3339(f.at),
        }),
    }
}

/// Per-version numbers over the filtered records and, with `compareTo`, each version's
/// differences from the reference with 95% confidence intervals (`docs/statistics.md`).
#[utoipa::path(get, path = "/api/v2/ai/llm/gateway/telemetry/summary", tag = "telemetry",
    params(("promptId" = Option<String>, Query, description = "only this prompt"),
        ("version" = Option<String>, Query, description = "only this version"),
        ("startTime" = Option<String>, Query, description = "received at or after (RFC 3339)"),
        ("endTime" = Option<String>, Query, description = "received before (RFC 3339)"),
        ("status" = Option<String>, Query, description = "SUCCESS, ERROR or BLOCKED"),
        ("groupBy" = Option<String>, Query, description = "version (the default and only grouping)"),
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
    use promptgate_core::stats;

    caller.require(Scope::TelemetryRead)?;
    let query = query.with_json_body(&body)?;
    let mut violations = Vec::new();
    let filter = read_filter(&query, &mut violations);
    if let Some(group) = query.get("groupBy")
        && group != "version"
    {
        violations.push(Violation::invalid(
            "groupBy",
            format!(
                "groupBy is {}; only version is supported",
                promptgate_core::violation::quoted(group)
            ),
        ));
    }
    if !violations.is_empty() {
        return Err(ApiError::Invalid(violations));
    }
    let compare_to = query.get("compareTo").map(str::to_owned);
    // Everything queued before this request is counted.
    state.telemetry.flush().await;
    // The database aggregates (one row per version), never the records themselves: the
    // gateway's memory does not grow with the range (promptgate-store's summary.rs).
    let groups: std::collections::BTreeMap<String, stats::GroupAggregate> = state
        .store
        .summary_aggregates(&filter)
        .await?
        .into_iter()
        .map(|v| (v.version, v.group))
        .collect();
    // Versions newest first by semver when they parse, else by text.
    let mut versions: Vec<&String> = groups.keys().collect();
    versions.sort_by(|a, b| {
        match (
            a.parse::<promptgate_core::VersionLabel>(),
            b.parse::<promptgate_core::VersionLabel>(),
        ) {
            (Ok(x), Ok(y)) => y.cmp(&x),
            _ => b.cmp(a),
        }
    });
    let empty = stats::GroupAggregate::default();
    let reference = compare_to.as_ref().map(|v| groups.get(v).unwrap_or(&empty));
    let entities = versions
        .into_iter()
        .map(|version| {
            let aggregate = &groups[version];
            let group = stats::summarize_aggregate(aggregate);
            let comparison = match (&compare_to, reference) {
                (Some(against), Some(reference)) if against != version => {
                    let c = stats::compare_aggregates(aggregate, reference);
                    Some(api::VersionComparison {
                        against: against.clone(),
                        error_rate_diff: c.error_rate_diff.map(wire_diff),
                        mean_latency_ms_diff: c.mean_latency_ms_diff.map(wire_diff),
                        feedback_mean_diff: c.feedback_mean_diff.map(wire_diff),
                    })
                }
                _ => None,
            };
            api::VersionSummary {
                version: version.clone(),
                count: group.count,
                error_count: group.error_count,
                blocked_count: group.blocked_count,
                error_rate: group.error_rate,
                latency_ms: group.latency_ms.map(|l| api::LatencyStats {
                    p50: l.p50,
                    p95: l.p95,
                    p99: l.p99,
                    mean: l.mean,
                }),
                token_usage: api::TokenSums {
                    prompt: group.token_usage.prompt,
                    completion: group.token_usage.completion,
                    total: group.token_usage.total,
                },
                feedback: api::FeedbackStats {
                    count: group.feedback.count,
                    mean: group.feedback.mean,
                },
                comparison,
            }
        })
        .collect();
    Ok(Json(api::TelemetrySummary { entities }))
}

fn wire_diff(d: promptgate_core::stats::DiffEstimate) -> api::DiffEstimate {
    api::DiffEstimate {
        estimate: d.estimate,
        ci95: [d.ci95.0, d.ci95.1],
        significant: d.significant,
    }
}
