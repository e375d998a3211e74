//! The error contract: every failure of the API becomes a Genesys-style `ErrorBody` with the
//! request's id as `contextId`.
//!
//! Handlers and extractors return [`ApiError`]. Its response carries the body in an extension
//! rather than serialised, because only the outer [`finish_errors`] middleware knows the request
//! id; it fills `contextId`, writes the log line and serialises. Internal details are logged
//! with the context id and never sent.

use std::collections::BTreeMap;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use promptgate_api::{ErrorBody, ErrorDetail};
use promptgate_core::{Scope, Violation, ViolationCode};

/// A failure of an API request, with the status and code the contract gives it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// One or more fields are invalid (400).
    #[error("invalid request")]
    Invalid(Vec<Violation>),
    /// The body is not valid JSON or the query is malformed (400 `bad.request`).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No usable bearer token (401).
    #[error("unauthorized: {message}")]
    Unauthorized {
        /// Whether a token was sent (it is then invalid, expired or revoked).
        token_sent: bool,
        /// What was wrong.
        message: String,
    },
    /// The token lacks a scope (403).
    #[error("missing scope {0}")]
    MissingScope(Scope),
    /// The token has the scope, but this resource is another client's (403 `not.authorized`,
    /// e.g. feedback on another client's invocation).
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    /// An unknown id, version or route (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// A label the prompt does not have (404 `label.not.found`).
    #[error("label not found: {0}")]
    LabelNotFound(String),
    /// A known path with another method (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A duplicate name or a conflicting version (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// `If-Match` does not match (412).
    #[error("precondition failed")]
    PreconditionFailed {
        /// The prompt's current ETag, so the caller can re-read and retry.
        current_etag: String,
    },
    /// The body is over the limit (413).
    #[error("payload too large")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request's body did not arrive within `[server] request_timeout_ms` (408).
    #[error("request timeout")]
    RequestTimeout {
        /// The limit in milliseconds.
        limit_ms: u64,
    },
    /// The body is not JSON (415).
    #[error("unsupported media type")]
    UnsupportedMediaType {
        /// The content type that was sent.
        got: String,
    },
    /// A blocked category was detected (422).
    #[error("guardrail blocked: {category}")]
    GuardrailBlocked {
        /// The category's wire name.
        category: String,
    },
    /// The client is over its rate limit (429); the response carries `Retry-After` and the
    /// `inin-ratelimit-*` headers from the decision.
    #[error("too many requests")]
    TooManyRequests(crate::ratelimit::Decision),
    /// The model endpoint already has its most calls in flight (429, with `Retry-After: 1`).
    #[error("upstream busy: {endpoint}")]
    UpstreamBusy {
        /// The endpoint's `ref`.
        endpoint: String,
        /// Its `max_concurrent_calls`.
        limit: u32,
    },
    /// The model provider failed after the gateway's retries (502).
    #[error("upstream error: {0}")]
    UpstreamError(String),
    /// The model provider did not answer in time after the gateway's retries (504).
    #[error("upstream timeout: {0}")]
    UpstreamTimeout(String),
    /// Storage is unreachable (503).
    #[error("service unavailable")]
    Unavailable(String),
    /// A bug or an unexpected failure (500); the text is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The log detail of a 500, carried from the handler to the middleware that logs it.
#[derive(Clone)]
struct InternalDetail(String);

/// An error body waiting for its `contextId`.
#[derive(Clone)]
struct PendingErrorBody(ErrorBody);

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::MissingScope(_) | ApiError::NotAuthorized(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::LabelNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::GuardrailBlocked { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests(_) | ApiError::UpstreamBusy { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::UpstreamError(_) => StatusCode::BAD_GATEWAY,
            ApiError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The contract's error code, as telemetry records it.
    pub fn code(&self) -> String {
        self.body().code
    }

    /// The contract's error body (without `contextId`).
    pub fn body(&self) -> ErrorBody {
        let status = self.status().as_u16();
        match self {
            ApiError::Invalid(violations) => invalid_body(violations),
            ApiError::BadRequest(message) => simple(status, "bad.request", message),
            ApiError::Unauthorized { message, .. } => simple(status, "unauthorized", message),
            ApiError::MissingScope(scope) => ErrorBody {
                message_with_params: "this request needs the scope {requiredScopes}".into(),
                message_params: params(&[("requiredScopes", scope.as_str().to_owned())]),
                ..simple(
                    status,
                    "missing.scope",
                    &format!("this request needs the scope {scope}"),
                )
            },
            ApiError::NotAuthorized(message) => simple(status, "not.authorized", message),
            ApiError::NotFound(message) => simple(status, "not.found", message),
            ApiError::LabelNotFound(message) => simple(status, "label.not.found", message),
            ApiError::MethodNotAllowed => simple(
                status,
                "method.not.allowed",
                "this path does not support that method",
            ),
            ApiError::Conflict(message) => simple(status, "conflict", message),
            ApiError::PreconditionFailed { current_etag } => ErrorBody {
                message_with_params:
                    "If-Match does not match the current ETag {currentEtag}; read the prompt again and retry"
                        .into(),
                message_params: params(&[("currentEtag", current_etag.clone())]),
                ..simple(
                    status,
                    "precondition.failed",
                    &format!(
                        "If-Match does not match the current ETag {current_etag}; read the prompt again and retry"
                    ),
                )
            },
            ApiError::PayloadTooLarge { limit } => ErrorBody {
                message_with_params: "the request body is over the limit of {limit} bytes".into(),
                message_params: params(&[("limit", limit.to_string())]),
                ..simple(
                    status,
                    "payload.too.large",
                    &format!("the request body is over the limit of {limit} bytes"),
                )
            },
            ApiError::RequestTimeout { limit_ms } => templated(
                status,
                "request.timeout",
                "the request body did not arrive within {limit} ms ({setting}); send it faster or \
                 ask for a longer limit",
                &[
                    ("limit", limit_ms.to_string()),
                    ("setting", "[server] request_timeout_ms".to_owned()),
                ],
            ),
            ApiError::UnsupportedMediaType { got } => simple(
                status,
                "unsupported.media.type",
                &if got.is_empty() {
                    "the body must be application/json; the request has no Content-Type".to_owned()
                } else {
                    format!(
                        "the body must be application/json, not {}",
                        promptgate_core::violation::quoted(got)
                    )
                },
            ),
            ApiError::GuardrailBlocked { category } => ErrorBody {
                message_with_params:
                    "the request was refused: it matches the blocked category {category}".into(),
                message_params: params(&[("category", category.clone())]),
                ..simple(
                    status,
                    "guardrail.blocked",
                    &format!("the request was refused: it matches the blocked category {category}"),
                )
            },
            ApiError::TooManyRequests(decision) => ErrorBody {
                message_with_params:
                    "this client is over its rate limit of {allowed} requests; retry in {retryAfter} s"
                        .into(),
                message_params: params(&[
                    ("allowed", decision.limit.to_string()),
                    ("retryAfter", decision.retry_after_seconds.to_string()),
                ]),
                ..simple(
                    status,
                    "too.many.requests",
                    &format!(
                        "this client is over its rate limit of {} requests; retry in {} s",
                        decision.limit, decision.retry_after_seconds
                    ),
                )
            },
            ApiError::UpstreamBusy { endpoint, limit } => templated(
                status,
                "too.many.requests",
                "the model endpoint {endpoint} has {limit} calls in flight, its limit \
                 ({setting}); retry in {retryAfter} s",
                &[
                    ("endpoint", endpoint.clone()),
                    ("limit", limit.to_string()),
                    (
                        "setting",
                        "[[model_endpoints]] max_concurrent_calls".to_owned(),
                    ),
                    ("retryAfter", "1".to_owned()),
                ],
            ),
            ApiError::UpstreamError(message) => simple(status, "upstream.error", message),
            ApiError::UpstreamTimeout(message) => simple(status, "upstream.timeout", message),
            ApiError::Unavailable(message) => simple(status, "service.unavailable", message),
            ApiError::Internal(_) => simple(
                status,
                "internal.server.error",
                "the gateway failed; quote the contextId when reporting it",
            ),
        }
    }
}

fn params(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// A body whose message is `template` filled from `pairs`, both kept apart as the contract's
/// `messageWithParams` and `messageParams`.
fn templated(status: u16, code: &str, template: &str, pairs: &[(&str, String)]) -> ErrorBody {
    let values = params(pairs);
    let message = promptgate_core::violation::fill_template(template, &values);
    ErrorBody {
        message_with_params: template.to_owned(),
        message_params: values,
        ..simple(status, code, &message)
    }
}

fn simple(status: u16, code: &str, message: &str) -> ErrorBody {
    ErrorBody {
        status,
        code: code.to_owned(),
        message: message.to_owned(),
        message_with_params: message.to_owned(),
        message_params: BTreeMap::new(),
        context_id: String::new(),
        details: Vec::new(),
        errors: Vec::new(),
    }
}

fn violation_body(v: &Violation) -> ErrorBody {
    ErrorBody {
        status: 400,
        code: v.code.as_str().to_owned(),
        message: v.message(),
        message_with_params: v.template.clone(),
        message_params: v.params.clone(),
        context_id: String::new(),
        details: vec![ErrorDetail {
            error_code: v.code.as_str().to_owned(),
            field_name: Some(v.field.clone()),
        }],
        errors: Vec::new(),
    }
}

fn invalid_body(violations: &[Violation]) -> ErrorBody {
    match violations {
        [] => simple(400, "invalid.value", "the request is invalid"),
        [one] => violation_body(one),
        many => {
            let first_code = many[0].code;
            let code = if many.iter().all(|v| v.code == first_code) {
                first_code
            } else {
                ViolationCode::InvalidValue
            };
            let message = format!(
                "{} problems: {}",
                many.len(),
                many.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            ErrorBody {
                code: code.as_str().to_owned(),
                details: many
                    .iter()
                    .map(|v| ErrorDetail {
                        error_code: v.code.as_str().to_owned(),
                        field_name: Some(v.field.clone()),
                    })
                    .collect(),
                errors: many.iter().map(violation_body).collect(),
                ..simple(400, code.as_str(), &message)
            }
        }
    }
}

impl From<promptgate_store::StoreError> for ApiError {
    fn from(err: promptgate_store::StoreError) -> Self {
        use promptgate_store::StoreError;
        match err {
            StoreError::Unavailable(_) => {
                ApiError::Unavailable("the database is unavailable; retry shortly".to_owned())
            }
            StoreError::NotFound => ApiError::NotFound("not found".to_owned()),
            other => ApiError::Internal(format!("{other}: {:?}", other)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        if let ApiError::Unauthorized { token_sent, .. } = &self {
            let challenge = if *token_sent {
                r#"Bearer realm="promptgate", error="invalid_token""#
            } else {
                r#"Bearer realm="promptgate""#
            };
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let ApiError::PreconditionFailed { current_etag } = &self
            && let Ok(value) = HeaderValue::from_str(current_etag)
        {
            response.headers_mut().insert(header::ETAG, value);
        }
        if let ApiError::TooManyRequests(decision) = &self {
            crate::ratelimit::insert_headers(response.headers_mut(), decision);
        }
        if let ApiError::UpstreamBusy { limit, .. } = &self {
            // The endpoint is full: every slot is in use, and one is expected back within a
            // second (a call's usual length), which is all a client can be told.
            crate::ratelimit::insert_headers(
                response.headers_mut(),
                &crate::ratelimit::Decision {
                    allowed: false,
                    count: *limit,
                    limit: *limit,
                    reset_seconds: 1,
                    retry_after_seconds: 1,
                },
            );
        }
        if let ApiError::Internal(detail) = &self {
            response
                .extensions_mut()
                .insert(InternalDetail(detail.clone()));
        }
        response
            .extensions_mut()
            .insert(PendingErrorBody(self.body()));
        response
    }
}

/// Serialises pending error bodies with the request id as `contextId` and logs them: 5xx at
/// error level with the internal detail, 4xx at debug level.
pub async fn finish_errors(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let Some(PendingErrorBody(mut body)) = response.extensions_mut().remove::<PendingErrorBody>()
    else {
        return response;
    };
    body.context_id.clone_from(&request_id);
    for inner in &mut body.errors {
        inner.context_id.clone_from(&request_id);
    }
    if let Some(InternalDetail(detail)) = response.extensions_mut().remove::<InternalDetail>() {
        tracing::error!(context_id = ?request_id, %method, path = ?path, error = ?detail, "request failed");
    } else {
        tracing::debug!(context_id = ?request_id, %method, path = ?path, status = body.status, code = %body.code, "request refused");
    }
    let (mut parts, _) = response.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    let json = if path.starts_with(OPENAI_PATHS) {
        serde_json::to_vec(&openai_error_body(&body, &path))
    } else {
        serde_json::to_vec(&body)
    }
    .unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(json))
}

/// The OpenAI-compatible front door's paths, whose errors leave in OpenAI's shape.
pub const OPENAI_PATHS: &str = "/v1/";

/// An error body in OpenAI's shape, with OpenAI's types and codes, so that the official SDKs
/// raise their own exception types (`AuthenticationError`, `NotFoundError`, …). The status is
/// the same as the contract's; the message is the contract's message (every violation's,
/// joined, when there are several), and `param` names the first offending field.
pub fn openai_error_body(body: &ErrorBody, path: &str) -> promptgate_api::openai::ErrorResponse {
    let message = if body.errors.len() > 1 {
        body.errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        body.message.clone()
    };
    let param = body.details.iter().find_map(|d| d.field_name.clone());
    let model_path = path == "/v1/chat/completions" || path.starts_with("/v1/models");
    let (kind, code) = match body.status {
        401 => ("invalid_request_error", Some("invalid_api_key".to_owned())),
        403 => (
            "permission_error",
            Some("insufficient_permissions".to_owned()),
        ),
        404 if model_path => ("invalid_request_error", Some("model_not_found".to_owned())),
        404 => ("invalid_request_error", Some("unknown_url".to_owned())),
        422 => (
            "invalid_request_error",
            Some("content_policy_violation".to_owned()),
        ),
        429 => ("requests", Some("rate_limit_exceeded".to_owned())),
        400 if body.code == ViolationCode::ContextWindowExceeded.as_str() => (
            "invalid_request_error",
            Some("context_length_exceeded".to_owned()),
        ),
        status if status >= 500 => ("server_error", Some(body.code.replace('.', "_"))),
        _ => ("invalid_request_error", Some(body.code.replace('.', "_"))),
    };
    promptgate_api::openai::ErrorResponse {
        error: promptgate_api::openai::ErrorObject {
            message,
            kind: kind.to_owned(),
            param,
            code,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_violations_become_details_and_errors() {
        let err = ApiError::Invalid(vec![
            Violation::invalid("name", "name must not be empty"),
            Violation::invalid(
                "temperature",
                "temperature is 5; it must be between 0 and 2",
            ),
        ]);
        let body = err.body();
        assert_eq!(body.status, 400);
        assert_eq!(body.code, "invalid.value");
        assert_eq!(body.details.len(), 2);
        assert_eq!(body.errors.len(), 2);
        assert_eq!(
            body.errors[1].details[0].field_name.as_deref(),
            Some("temperature")
        );
    }

    #[test]
    fn one_violation_keeps_its_code_and_params() {
        let err = ApiError::Invalid(vec![Violation::with_params(
            ViolationCode::TokenBudgetExceeded,
            "systemPrompt",
            "system prompt is {estimated} tokens ({tokenizer}); the budget is {limit}",
            &[
                ("estimated", "12".into()),
                ("tokenizer", "o200k_base".into()),
                ("limit", "10".into()),
            ],
        )]);
        let body = err.body();
        assert_eq!(body.code, "token.budget.exceeded");
        assert_eq!(
            body.message,
            "system prompt is 12 tokens (o200k_base); the budget is 10"
        );
        assert_eq!(body.message_params["limit"], "10");
        assert!(body.errors.is_empty());
    }
}
