//! The OpenAI-compatible front door: `POST /v1/chat/completions` and `GET /v1/models`, so that
//! an application built on an official OpenAI SDK gets managed prompts, the A/B split,
//! guardrails, telemetry and audit by changing only its base URL and model name
//! (`prompt:NAME` or `prompt:NAME@VERSION`). The call runs the same `service::invoke` as
//! `…/invocations`; `wire::openai` translates OpenAI's wire format to it and back. Errors on
//! these paths leave in OpenAI's shape (`error::finish_errors`).
//! Details and choices: `docs/openai-compatibility.md`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use promptgate_api::openai as oa;
use promptgate_core::label::LabelName;
use promptgate_core::{Scope, VersionLabel, Violation};

use crate::auth::Caller;
use crate::cache::CachedPrompt;
use crate::clock::now;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::service::invoke::{
    self, Invoked, Invoker, PinRequest, PromptRef, Received, Relay, RelayEvent, Reply,
};
use crate::state::AppState;
use crate::wire::invocations::VERSION_HEADER;
use crate::wire::openai::{self as wire, ChunkHead, Translated};

pub use crate::wire::openai::{ENDPOINT_HEADER, IGNORED_PARAMS_HEADER, SESSION_HEADER};

/// Runs a managed prompt for an OpenAI Chat Completions request.
pub async fn chat_completions(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<oa::ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let received = Received::now();
    caller.require(Scope::GatewayWrite)?;
    let model = body.model.as_deref();
    let (cached, pin) = find_model(&state, model)
        .await?
        .ok_or_else(|| model_not_found(model.unwrap_or_default()))?;
    let session = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| body.user.clone());
    let policy = cached.prompt.chat_completions;
    let translated = wire::translate(
        &body,
        cached.prompt.id,
        &pin,
        session,
        policy,
        &state.limits,
    )
    .map_err(ApiError::Invalid)?;
    let Translated {
        mut request,
        ignored,
        input_field,
        include_usage,
    } = translated;
    // Found above by name: the shared checks only carried its id.
    request.prompt = PromptRef::Found(cached);
    let invoker = Invoker {
        client_id: caller.client_id,
        scopes: caller.scopes,
        api_key_id: caller.api_key_id,
    };
    let invoked = invoke::invoke(&state, invoker, request, received)
        .await
        .map_err(|err| input_named(err.into(), &input_field))?;
    Ok(respond(invoked, ignored, include_usage))
}

/// The answer as a `chat.completion` or a stream of chunks, with the version header and the
/// header naming the caller settings the prompt's policy ignored.
fn respond(invoked: Invoked, ignored: Vec<String>, include_usage: bool) -> Response {
    let created = now().unix_timestamp();
    let mut http = match invoked.reply {
        Reply::Complete(answer) => {
            let completion = wire::completion(answer, created, ignored.clone());
            (StatusCode::OK, Json(completion)).into_response()
        }
        Reply::Stream(relay) => {
            let head = ChunkHead::new(&invoked.response_id, &invoked.model, created, include_usage);
            stream(head, relay, ignored.clone())
        }
    };
    if let Ok(value) = HeaderValue::from_str(&invoked.version) {
        http.headers_mut().insert(VERSION_HEADER, value);
    }
    if let Ok(value) = HeaderValue::from_str(&invoked.endpoint_ref) {
        http.headers_mut().insert(ENDPOINT_HEADER, value);
    }
    if !ignored.is_empty()
        && let Ok(value) = HeaderValue::from_str(&ignored.join(","))
    {
        http.headers_mut().insert(IGNORED_PARAMS_HEADER, value);
    }
    http
}

/// Errors found later in the pipeline (context fitting) name the contract's `userInput`: here
/// they name the message that holds the input.
fn input_named(err: ApiError, input_field: &str) -> ApiError {
    match err {
        ApiError::Invalid(violations) => ApiError::Invalid(
            violations
                .into_iter()
                .map(|mut v| {
                    if v.field == "userInput" {
                        input_field.clone_into(&mut v.field);
                    } else if let Some(renamed) = wire::variables_field(&v.field) {
                        v.field = renamed;
                    }
                    v
                })
                .collect(),
        ),
        other => other,
    }
}

/// Lists the active prompts as models, for a caller that may invoke them.
pub async fn list_models(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<oa::ModelList>, ApiError> {
    caller.require(Scope::GatewayWrite)?;
    let data = invoke::active_prompts(&state, crate::extract::MAX_PAGE_SIZE, |p| {
        model(&p.name, &p)
    })
    .await?;
    Ok(Json(oa::ModelList {
        object: "list".to_owned(),
        data,
    }))
}

/// One prompt (or pinned version) as a model.
pub async fn get_model(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<oa::Model>, ApiError> {
    caller.require(Scope::GatewayWrite)?;
    let (cached, _) = find_model(&state, Some(&id))
        .await?
        .ok_or_else(|| model_not_found(&id))?;
    let mut found = model(&cached.prompt.name, &cached.prompt);
    found.id = id;
    Ok(Json(found))
}

fn model(name: &str, prompt: &promptgate_core::Prompt) -> oa::Model {
    oa::Model {
        id: format!("{}{name}", oa::PROMPT_MODEL_PREFIX),
        object: "model".to_owned(),
        created: prompt.created_at.unix_timestamp(),
        owned_by: "promptgate".to_owned(),
    }
}

/// The 404 the SDKs raise as `NotFoundError` (`error::finish_errors` gives it the code
/// `model_not_found` on these paths).
fn model_not_found(model: &str) -> ApiError {
    ApiError::NotFound(format!(
        "The model `{model}` does not exist or is not an active prompt; promptgate serves \
         managed prompts as models named prompt:NAME, prompt:NAME@VERSION or prompt:NAME@LABEL"
    ))
}

/// What follows the last `@` of a model name, when it can pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suffix<'a> {
    /// A semantic version.
    Version(&'a str),
    /// Anything else that is a label name (`[a-z][a-z0-9-]*`).
    Label(&'a str),
}

/// Splits `prompt:NAME[@VERSION|@LABEL]`. The suffix is what follows the last `@` when it is a
/// semantic version or a label name; the name may hold an `@` itself (see [`find_model`]).
fn parse_model(model: Option<&str>) -> Result<(&str, Option<Suffix<'_>>), ApiError> {
    let Some(model) = model.filter(|m| !m.is_empty()) else {
        return Err(ApiError::Invalid(vec![Violation::invalid(
            "model",
            "model is required: prompt:NAME, prompt:NAME@VERSION or prompt:NAME@LABEL",
        )]));
    };
    let Some(rest) = model.strip_prefix(oa::PROMPT_MODEL_PREFIX) else {
        return Err(model_not_found(model));
    };
    let (name, suffix) = match rest.rsplit_once('@') {
        Some((name, version)) if version.parse::<VersionLabel>().is_ok() => {
            (name, Some(Suffix::Version(version)))
        }
        Some((name, label)) if LabelName::parse("model", label).is_ok() => {
            (name, Some(Suffix::Label(label)))
        }
        _ => (rest, None),
    };
    if name.is_empty() {
        return Err(model_not_found(model));
    }
    Ok((name, suffix))
}

/// The prompt a model name serves and what it pins. A version suffix must exist. A label
/// suffix is the prompt's label when the prompt before the `@` has it; otherwise the whole
/// rest is tried as a prompt name (names may hold `@`). `None`: no such model.
async fn find_model(
    state: &AppState,
    model: Option<&str>,
) -> Result<Option<(Arc<CachedPrompt>, PinRequest)>, ApiError> {
    let (name, suffix) = parse_model(model)?;
    let pinned = match suffix {
        Some(Suffix::Version(version)) => Some(version),
        _ => None,
    };
    if let Some(cached) = invoke::model_prompt(state, name, pinned).await? {
        let pin = match suffix {
            None => PinRequest::None,
            Some(Suffix::Version(version)) => PinRequest::Version(version.to_owned()),
            Some(Suffix::Label(label)) => {
                if cached.prompt.labels.keys().any(|l| l.as_str() == label) {
                    PinRequest::Label(label.to_owned())
                } else {
                    return whole_name(state, model).await;
                }
            }
        };
        return Ok(Some((cached, pin)));
    }
    match suffix {
        Some(Suffix::Label(_)) => whole_name(state, model).await,
        _ => Ok(None),
    }
}

/// The prompt named by everything after `prompt:`, unpinned.
async fn whole_name(
    state: &AppState,
    model: Option<&str>,
) -> Result<Option<(Arc<CachedPrompt>, PinRequest)>, ApiError> {
    let rest = model
        .and_then(|m| m.strip_prefix(oa::PROMPT_MODEL_PREFIX))
        .unwrap_or_default();
    Ok(invoke::model_prompt(state, rest, None)
        .await?
        .map(|cached| (cached, PinRequest::None)))
}

/// The SSE answer (`ChunkHead`'s chunks). A provider failure mid-stream is one
/// `{"error": …}` event, which the SDKs raise, and no `[DONE]`.
fn stream(head: ChunkHead, relay: Relay, ignored: Vec<String>) -> Response {
    struct Pump {
        head: ChunkHead,
        relay: Relay,
        pending: VecDeque<Event>,
        ended: bool,
        ignored: Vec<String>,
        /// Whether the role chunk went out: it waits for the first step, whose kind decides its
        /// `content` (`null` before tool calls, as OpenAI sends it, else `""`).
        role_sent: bool,
    }
    let pump = Pump {
        head,
        relay,
        pending: VecDeque::new(),
        ended: false,
        ignored,
        role_sent: false,
    };
    let events = futures_util::stream::unfold(pump, |mut pump| async move {
        loop {
            if let Some(event) = pump.pending.pop_front() {
                return Some((Ok::<Event, Infallible>(event), pump));
            }
            if pump.ended {
                return None;
            }
            let event = pump.relay.next_event().await;
            if !pump.role_sent {
                pump.role_sent = true;
                let before_tools = matches!(event, Some(RelayEvent::ToolCall(_)));
                let role = pump.head.role(before_tools);
                pump.pending.push_back(role);
            }
            match event {
                Some(RelayEvent::Delta(text)) => {
                    let event = pump.head.content(text);
                    pump.pending.push_back(event);
                }
                Some(RelayEvent::ToolCall(call)) => {
                    let event = pump.head.tool_call(call);
                    pump.pending.push_back(event);
                }
                Some(RelayEvent::Done(done)) => {
                    let ignored = std::mem::take(&mut pump.ignored);
                    pump.head.done(&done, ignored, &mut pump.pending);
                    pump.ended = true;
                }
                Some(RelayEvent::Failed(err)) => {
                    let body = crate::error::openai_error_body(
                        &ApiError::from(err).body(),
                        "/v1/chat/completions",
                    );
                    pump.pending.push_back(wire::data_event(&body));
                    pump.ended = true;
                }
                None => pump.ended = true,
            }
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_split_into_prompt_and_pinned_version() {
        assert_eq!(
            parse_model(Some("prompt:support")).unwrap(),
            ("support", None)
        );
        assert_eq!(
            parse_model(Some("prompt:support@1.2.0")).unwrap(),
            ("support", Some(Suffix::Version("1.2.0")))
        );
        // A name may hold an `@`; a semantic version or a label name after the last one pins.
        assert_eq!(
            parse_model(Some("prompt:team@support@2.0.0")).unwrap(),
            ("team@support", Some(Suffix::Version("2.0.0")))
        );
        assert_eq!(parse_model(Some("prompt:x@")).unwrap(), ("x@", None));
        assert_eq!(
            parse_model(Some("prompt:x@staging")).unwrap(),
            ("x", Some(Suffix::Label("staging")))
        );
        // Not a label name (upper case): part of the name.
        assert_eq!(
            parse_model(Some("prompt:x@Latest")).unwrap(),
            ("x@Latest", None)
        );
        for bad in ["gpt-4o", "prompt:", "prompt:@1.0.0"] {
            assert!(
                matches!(parse_model(Some(bad)), Err(ApiError::NotFound(_))),
                "{bad}"
            );
        }
        assert!(matches!(parse_model(None), Err(ApiError::Invalid(_))));
    }
}
