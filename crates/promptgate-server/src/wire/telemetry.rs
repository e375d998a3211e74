//! Telemetry on the wire: the listing's and the summary's query filters read into the store's
//! [`TelemetryFilter`], a feedback score read from JSON, and stored records, recorded feedback
//! and per-version numbers written as the contract's shapes. The routes, the audit listing's
//! time range and the webhook exporter all go through here, so a record reads the same in an
//! answer and in a delivery.

use promptgate_api as api;
use promptgate_core::Violation;
use promptgate_core::invocation::InvocationStatus;
use promptgate_core::stats::DiffEstimate;
use promptgate_store::{StoredInvocation, SummaryGroup, TelemetryFilter};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::clock::rfc3339;
use crate::extract::QueryParams;
use crate::service::feedback::RecordedFeedback;
use crate::service::telemetry::{Summary, SummaryQuery};

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

/// Reads the contract's filters (`promptId`, `version`, `startTime`, `endTime`, `status`, and
/// `label`: only the invocations that named that label),
/// reporting every invalid one at once.
pub fn read_filter(query: &QueryParams, violations: &mut Vec<Violation>) -> TelemetryFilter {
    let (start, end) = read_time_range(query, violations);
    TelemetryFilter {
        prompt_id: promptgate_core::violation::uuid_field(
            "promptId",
            query.get("promptId"),
            violations,
        ),
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
        label: query.get("label").map(str::to_owned),
    }
}

/// Reads the summary's query: the filters, `groupBy` (`version`, the default, or `endpoint`)
/// and `compareTo`, or every invalid one at once.
pub fn read_summary_query(query: &QueryParams) -> Result<SummaryQuery, Vec<Violation>> {
    let mut violations = Vec::new();
    let filter = read_filter(query, &mut violations);
    let group = match query.get("groupBy") {
        None | Some("version") => SummaryGroup::Version,
        Some("endpoint") => SummaryGroup::Endpoint,
        Some(group) => {
            violations.push(Violation::invalid(
                "groupBy",
                format!(
                    "groupBy is {}; use version or endpoint",
                    promptgate_core::violation::quoted(group)
                ),
            ));
            SummaryGroup::Version
        }
    };
    let compare_to = query.get("compareTo").map(str::to_owned);
    if group == SummaryGroup::Endpoint && compare_to.is_some() {
        violations.push(Violation::invalid(
            "compareTo",
            "compareTo compares versions; it cannot be combined with groupBy endpoint",
        ));
    }
    if !violations.is_empty() {
        return Err(violations);
    }
    Ok(SummaryQuery {
        filter,
        compare_to,
        group,
    })
}

/// A feedback `score` as sent: a number from 0 to 1, or `true` (1) or `false` (0); otherwise
/// the violation that names what was sent.
pub fn feedback_score(score: Option<&serde_json::Value>) -> Result<f64, Violation> {
    match score {
        Some(serde_json::Value::Bool(b)) => Ok(if *b { 1.0 } else { 0.0 }),
        Some(serde_json::Value::Number(n)) => match n.as_f64() {
            Some(x) if (0.0..=1.0).contains(&x) => Ok(x),
            _ => Err(Violation::invalid(
                "score",
                format!("score is {n}; it must be between 0 and 1"),
            )),
        },
        Some(other) => Err(Violation::invalid(
            "score",
            format!(
                "score is {}; send a number from 0 to 1, or true or false",
                match other {
                    serde_json::Value::String(text) => promptgate_core::violation::quoted(text),
                    value => value.to_string(),
                }
            ),
        )),
        None => Err(Violation::invalid("score", "score is required")),
    }
}

/// The answer to a feedback post.
pub fn wire_feedback(recorded: RecordedFeedback) -> api::FeedbackResponse {
    api::FeedbackResponse {
        response_id: recorded.response_id,
        score: recorded.feedback.score,
        comment: recorded.feedback.comment,
        created_at: rfc3339(recorded.feedback.at),
        replaced: recorded.replaced,
    }
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
        label: r.label.clone(),
        variables: r.variable_names.clone(),
        feedback: stored.feedback.as_ref().map(|f| api::FeedbackEntity {
            score: f.score,
            comment: f.comment.clone(),
            created_at: rfc3339(f.at),
        }),
        schema_valid: r.schema_valid,
        tool_call_count: (r.tool_call_count > 0).then_some(r.tool_call_count),
        client_id: Some(r.client_id.clone()),
        api_key_id: r.api_key_id.clone(),
        cost_usd: r.cost_usd,
        // Records from before the endpoint was recorded have none: shown as null.
        endpoint_ref: (!r.endpoint_ref.is_empty()).then(|| r.endpoint_ref.clone()),
        fallback_attempts: crate::wire::invocations::wire_attempts(&r.fallback_attempts),
    }
}

/// The wire form of a summary: one entity per version (or endpoint), in the summary's order.
pub fn wire_summary(summary: Summary) -> api::TelemetrySummary {
    let compare_to = summary.compare_to;
    let by_endpoint = summary.group == SummaryGroup::Endpoint;
    let entities = summary
        .versions
        .into_iter()
        .map(|numbers| {
            let group = numbers.summary;
            let comparison = match (&compare_to, numbers.comparison) {
                (Some(against), Some(c)) => Some(api::VersionComparison {
                    against: against.clone(),
                    error_rate_diff: c.error_rate_diff.map(wire_diff),
                    mean_latency_ms_diff: c.mean_latency_ms_diff.map(wire_diff),
                    feedback_mean_diff: c.feedback_mean_diff.map(wire_diff),
                    schema_valid_rate_diff: c.schema_valid_rate_diff.map(wire_diff),
                    cost_mean_usd_diff: c.cost_mean_usd_diff.map(wire_diff),
                }),
                _ => None,
            };
            api::VersionSummary {
                schema_valid_rate: group.schema_valid.map(|rate| api::RateEstimate {
                    count: rate.count,
                    valid: rate.passed,
                    rate: rate.rate,
                    ci95: [rate.ci95.0, rate.ci95.1],
                }),
                version: if by_endpoint {
                    String::new()
                } else {
                    numbers.version.clone()
                },
                endpoint_ref: by_endpoint.then_some(numbers.version),
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
                cost: group.cost.map(|cost| api::CostStats {
                    count: cost.count,
                    total_usd: cost.total_usd,
                    mean_usd: cost.mean_usd,
                    mean_ci95: cost.mean_ci95.map(|(low, high)| [low, high]),
                }),
            }
        })
        .collect();
    api::TelemetrySummary { entities }
}

/// A difference with its 95% interval as the contract writes it (the interval as a pair).
fn wire_diff(d: DiffEstimate) -> api::DiffEstimate {
    api::DiffEstimate {
        estimate: d.estimate,
        ci95: [d.ci95.0, d.ci95.1],
        significant: d.significant,
    }
}
