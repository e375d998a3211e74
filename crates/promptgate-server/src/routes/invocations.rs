//! `POST …/invocations`: the contract's front door over `service::invoke` (version choice,
//! input guardrails, context fitting, the provider call, output guardrails, the telemetry
//! record). It checks the request (`wire::invocations`), calls the service, and answers with
//! the body or the SSE stream. [`ApiError`]'s `From<InvokeError>`, shared with `/v1`, is here.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use promptgate_api as api;
use promptgate_core::Scope;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::service::invoke::{self, InvokeError, Invoker, Received, Relay, Reply};
use crate::state::AppState;
use crate::wire::invocations as wire;

pub use crate::wire::invocations::{MAX_SESSION_ID_CHARS, VERSION_HEADER};

/// Invokes a prompt.
#[utoipa::path(post, path = "/api/v2/ai/llm/gateway/invocations", tag = "invocations",
    request_body = api::InvokeRequest,
    responses(
        (status = 200, description = "the answer (or, with options.stream, text/event-stream: `delta` events with {text}, then one `done` event with the answer minus output); X-Prompt-Version header", body = api::InvokeResponse),
        (status = 400, description = "invalid field or context.window.exceeded", body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, description = "unknown or archived prompt, unknown version", body = api::ErrorBody),
        (status = 422, description = "guardrail.blocked", body = api::ErrorBody),
        (status = 429, description = "too.many.requests: the client's rate limit, or the model endpoint's max_concurrent_calls; Retry-After and inin-ratelimit-* headers", body = api::ErrorBody),
        (status = 502, description = "upstream.error", body = api::ErrorBody),
        (status = 504, description = "upstream.timeout", body = api::ErrorBody)),
    security(("bearer" = ["ai:gateway:write"])))]
pub async fn invoke(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<api::InvokeRequest>,
) -> Result<Response, ApiError> {
    let received = Received::now();
    caller.require(Scope::GatewayWrite)?;
    let request = wire::invocation(&body, &state.limits).map_err(ApiError::Invalid)?;
    let invoker = Invoker {
        client_id: caller.client_id,
        scopes: caller.scopes,
        api_key_id: caller.api_key_id,
    };
    let invoked = invoke::invoke(&state, invoker, request, received).await?;
    let mut http = match invoked.reply {
        Reply::Complete(answer) => {
            (StatusCode::OK, Json(wire::invoke_response(answer))).into_response()
        }
        Reply::Stream(relay) => event_stream(relay),
    };
    if let Ok(value) = HeaderValue::from_str(&invoked.version) {
        http.headers_mut().insert(VERSION_HEADER, value);
    }
    Ok(http)
}

/// The relay as `text/event-stream`, with keep-alive comments while the provider is silent.
fn event_stream(relay: Relay) -> Response {
    let events = futures_util::stream::unfold(relay, |mut relay| async move {
        let event = wire::sse_event(relay.next_event().await?);
        Some((Ok::<Event, Infallible>(event), relay))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

impl From<InvokeError> for ApiError {
    fn from(err: InvokeError) -> Self {
        match err {
            InvokeError::NotFound(message) => ApiError::NotFound(message),
            InvokeError::LabelNotFound(message) => ApiError::LabelNotFound(message),
            InvokeError::Invalid(violations) => ApiError::Invalid(violations),
            InvokeError::Blocked(category) => ApiError::GuardrailBlocked {
                category: category.as_str().to_owned(),
            },
            InvokeError::Busy { endpoint, limit } => ApiError::UpstreamBusy { endpoint, limit },
            InvokeError::Upstream(message) => ApiError::UpstreamError(message),
            InvokeError::UpstreamTimeout(message) => ApiError::UpstreamTimeout(message),
            InvokeError::NotStored(message) => ApiError::Unavailable(message),
            InvokeError::Store(err) => ApiError::from(err),
            InvokeError::Internal(message) => ApiError::Internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use promptgate_core::{BlockedCategory, Violation, ViolationCode};
    use promptgate_store::StoreError;

    use super::*;

    /// The telemetry record keeps `InvokeError::code`; the answer carries the `ApiError`'s:
    /// they must be the same code.
    #[test]
    fn every_invoke_error_records_the_code_its_answer_carries() {
        let window = Violation::with_params(
            ViolationCode::ContextWindowExceeded,
            "userInput",
            "too large {n}",
            &[("n", "1".to_owned())],
        );
        let errors = [
            InvokeError::NotFound("gone".to_owned()),
            InvokeError::Invalid(vec![window.clone()]),
            InvokeError::Invalid(vec![window.clone(), window.clone()]),
            InvokeError::Invalid(vec![window, Violation::invalid("model_endpoint", "no")]),
            InvokeError::Invalid(Vec::new()),
            InvokeError::Blocked(BlockedCategory::Violence),
            InvokeError::Busy {
                endpoint: "e".to_owned(),
                limit: 2,
            },
            InvokeError::Upstream("failed".to_owned()),
            InvokeError::UpstreamTimeout("late".to_owned()),
            InvokeError::NotStored("lost".to_owned()),
            InvokeError::Store(StoreError::NotFound),
            InvokeError::Store(StoreError::Unavailable(sqlx::Error::PoolClosed)),
            InvokeError::Internal("bug".to_owned()),
        ];
        for err in errors {
            let code = err.code();
            assert_eq!(ApiError::from(err).code(), code);
        }
    }
}
