//! The OpenAI-compatible front door: `POST /v1/chat/completions` and `GET /v1/models`, so that
//! an application built on an official OpenAI SDK gets managed prompts, the A/B split,
//! guardrails, telemetry and audit by changing only its base URL and model name
//! (`prompt:NAME` or `prompt:NAME@VERSION`). The call runs the same pipeline as
//! `…/invocations` (`invocations::run`); this module only translates OpenAI's wire format to
//! it and back. Errors on these paths leave in OpenAI's shape (`error::finish_errors`).
//! Details and choices: `docs/openai-compatibility.md`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use promptgate_api as api;
use promptgate_api::openai as oa;
use promptgate_core::violation::quoted;
use promptgate_core::{PromptStatus, Scope, VersionLabel, Violation};
use promptgate_store::PromptFilter;
use serde_json::Value;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::routes::invocations::{
    Answer, CallerOverrides, CheckedRequest, RelayEvent, VERSION_HEADER, check_request, run,
};
use crate::state::{AppState, now};

/// The header that carries the sticky-routing session key (wins over the body's `user`).
pub const SESSION_HEADER: &str = "promptgate-session-id";
/// The header that names caller settings the prompt's policy ignored.
pub const IGNORED_PARAMS_HEADER: &str = "x-promptgate-ignored-params";

/// Runs a managed prompt for an OpenAI Chat Completions request.
pub async fn chat_completions(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<oa::ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let received = (Instant::now(), now());
    caller.require(Scope::GatewayWrite)?;
    let (name, pinned) = parse_model(body.model.as_deref())?;
    let not_found = || model_not_found(body.model.as_deref().unwrap_or_default());
    let prompt_id = state
        .prompts
        .id_by_name(name)
        .await?
        .ok_or_else(not_found)?;
    let cached = state.prompts.get(prompt_id).await?.ok_or_else(not_found)?;
    if cached.prompt.status == PromptStatus::Archived {
        return Err(not_found());
    }
    if let Some(version) = pinned
        && !version
            .parse()
            .is_ok_and(|label| cached.versions.contains_key(&label))
    {
        return Err(not_found());
    }
    let session = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| body.user.clone());
    let policy = cached.prompt.chat_completions;
    let prepend = policy.system_message == promptgate_core::SystemMessageMode::Prepend;
    let translated = translate(
        &state,
        &body,
        prompt_id.to_string(),
        pinned,
        session,
        prepend,
    )?;
    let mut ignored = Vec::new();
    let mut request = translated.request;
    request.overrides = CallerOverrides {
        system_suffix: translated.system_text.filter(|_| prepend),
        temperature: None,
        model_endpoint: None,
    };
    if let Some(t) = body.temperature {
        if policy.allow_caller_settings {
            request.overrides.temperature = Some(t);
        } else {
            ignored.push("temperature".to_owned());
        }
    }
    if let Some(endpoint) = &body.model_endpoint {
        if policy.allow_caller_settings {
            request.overrides.model_endpoint = Some(endpoint.clone());
        } else {
            ignored.push("model_endpoint".to_owned());
        }
    }
    let include_usage = body
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let input_field = translated.input_field;
    // Errors found later in the pipeline (context fitting) name the contract's fields.
    let outcome = run(&state, &caller, &cached, request, received)
        .await
        .map_err(|err| match err {
            ApiError::Invalid(violations) => ApiError::Invalid(
                violations
                    .into_iter()
                    .map(|mut v| {
                        if v.field == "userInput" {
                            v.field.clone_from(&input_field);
                        }
                        v
                    })
                    .collect(),
            ),
            other => other,
        })?;
    let created = now().unix_timestamp();
    let version = outcome.version.clone();
    let mut http = match outcome.answer {
        Answer::Complete(answer) => {
            let completion = completion(answer, created, ignored.clone());
            (StatusCode::OK, Json(completion)).into_response()
        }
        Answer::Stream(relay) => stream(
            outcome_head(&outcome.response_id, &outcome.model, created),
            relay,
            include_usage,
            ignored.clone(),
        ),
    };
    if let Ok(value) = HeaderValue::from_str(&version) {
        http.headers_mut().insert(VERSION_HEADER, value);
    }
    if !ignored.is_empty()
        && let Ok(value) = HeaderValue::from_str(&ignored.join(","))
    {
        http.headers_mut().insert(IGNORED_PARAMS_HEADER, value);
    }
    Ok(http)
}

/// Lists the active prompts as models, for a caller that may invoke them.
pub async fn list_models(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<oa::ModelList>, ApiError> {
    caller.require(Scope::GatewayWrite)?;
    let filter = PromptFilter {
        name: None,
        status: Some(PromptStatus::Active),
    };
    let mut data = Vec::new();
    let mut after = None;
    loop {
        let page = state
            .store
            .list_prompts(&filter, after, crate::extract::MAX_PAGE_SIZE)
            .await?;
        let full = page.len() == crate::extract::MAX_PAGE_SIZE as usize;
        after = page.last().map(|p| p.id);
        data.extend(page.into_iter().map(|p| model(&p.name, &p)));
        if !full {
            break;
        }
    }
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
    let (name, pinned) = parse_model(Some(&id))?;
    let prompt_id = state
        .prompts
        .id_by_name(name)
        .await?
        .ok_or_else(|| model_not_found(&id))?;
    let cached = state
        .prompts
        .get(prompt_id)
        .await?
        .filter(|c| c.prompt.status == PromptStatus::Active)
        .ok_or_else(|| model_not_found(&id))?;
    if let Some(version) = pinned
        && !version
            .parse()
            .is_ok_and(|label| cached.versions.contains_key(&label))
    {
        return Err(model_not_found(&id));
    }
    let mut found = model(name, &cached.prompt);
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
         managed prompts as models named prompt:NAME or prompt:NAME@VERSION"
    ))
}

/// Splits `prompt:NAME[@VERSION]`. The version is what follows the last `@` when that is a
/// semantic version; otherwise the whole rest is the name, so a name may hold an `@` itself.
fn parse_model(model: Option<&str>) -> Result<(&str, Option<&str>), ApiError> {
    let Some(model) = model.filter(|m| !m.is_empty()) else {
        return Err(ApiError::Invalid(vec![Violation::invalid(
            "model",
            "model is required: prompt:NAME or prompt:NAME@VERSION",
        )]));
    };
    let Some(rest) = model.strip_prefix(oa::PROMPT_MODEL_PREFIX) else {
        return Err(model_not_found(model));
    };
    let (name, version) = match rest.rsplit_once('@') {
        Some((name, version)) if version.parse::<VersionLabel>().is_ok() => (name, Some(version)),
        _ => (rest, None),
    };
    if name.is_empty() {
        return Err(model_not_found(model));
    }
    Ok((name, version))
}

/// An OpenAI request as the invocation pipeline takes it, and the caller's system text.
struct Translated {
    request: CheckedRequest,
    system_text: Option<String>,
    /// The field that holds the input, for errors about it: `messages[i].content`.
    input_field: String,
}

/// Checks what only this front door has (roles, content parts, unsupported parameters) and
/// hands the rest to the same checks as `…/invocations`, renaming their fields to OpenAI's.
fn translate(
    state: &AppState,
    body: &oa::ChatCompletionRequest,
    prompt_id: String,
    pinned: Option<&str>,
    session: Option<String>,
    prepend: bool,
) -> Result<Translated, ApiError> {
    let mut violations = unsupported_params(body);
    let messages = body.messages.as_deref().unwrap_or_default();
    if body.messages.is_none() {
        violations.push(Violation::invalid("messages", "messages is required"));
    }
    let mut system = Vec::new();
    // Conversation turns and the index each came from, for naming fields.
    let mut turns: Vec<(usize, &'static str, String)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let text = match message_text(message.content.as_ref()) {
            Ok(text) => text,
            Err(why) => {
                violations.push(Violation::invalid(format!("messages[{i}].content"), why));
                continue;
            }
        };
        match message.role.as_deref() {
            Some("system" | "developer") => system.push(text),
            Some("user") => turns.push((i, "user", text)),
            Some("assistant") => turns.push((i, "assistant", text)),
            other => violations.push(Violation::invalid(
                format!("messages[{i}].role"),
                format!(
                    "role is {}; the gateway takes system, developer, user and assistant messages (tool calls are not supported)",
                    other.map_or_else(|| "missing".to_owned(), quoted)
                ),
            )),
        }
    }
    let last_user = match turns.last() {
        Some((_, "user", _)) => turns.pop(),
        _ => {
            if body.messages.is_some() {
                violations.push(Violation::invalid(
                    "messages",
                    "the last user or assistant message must be the user's: it is the input the prompt answers",
                ));
            }
            None
        }
    };
    if let Some(n) = body.n
        && n != 1
    {
        violations.push(Violation::invalid(
            "n",
            format!("n is {n}; the gateway answers with one choice (n = 1)"),
        ));
    }
    if let Some(t) = body.temperature
        && !(0.0..=2.0).contains(&t)
    {
        violations.push(Violation::invalid(
            "temperature",
            format!("temperature is {t}; it must be between 0 and 2"),
        ));
    }
    if body.stream_options.is_some() && body.stream != Some(true) {
        violations.push(Violation::invalid(
            "stream_options",
            "stream_options is only allowed when stream is true",
        ));
    }
    let system_text = (!system.is_empty()).then(|| system.join("\n\n"));
    // Under `replace` the caller's system text is dropped, so its length does not matter.
    if let Some(text) = system_text.as_ref().filter(|_| prepend)
        && crate::limits::is_over(text, state.limits.max_system_prompt_chars)
    {
        violations.push(crate::limits::too_long(
            "messages",
            text.chars().count(),
            state.limits.max_system_prompt_chars,
            "max_system_prompt_chars",
        ));
    }
    let max_output_tokens = body.max_completion_tokens.or(body.max_tokens);
    let max_tokens_field = if body.max_completion_tokens.is_some() {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    let wire = api::InvokeRequest {
        prompt_id: Some(prompt_id),
        user_input: Some(last_user.as_ref().map(|t| t.2.clone()).unwrap_or_default()),
        session_id: session,
        version: pinned.map(str::to_owned),
        messages: Some(
            turns
                .iter()
                .map(|(_, role, text)| api::ChatTurn {
                    role: Some((*role).to_owned()),
                    content: Some(text.clone()),
                })
                .collect(),
        ),
        options: Some(api::InvokeOptions {
            stream: Some(body.stream.unwrap_or(false)),
            return_token_usage: Some(true),
            max_output_tokens,
        }),
        metadata: body.metadata.clone(),
    };
    let checked = check_request(&wire, &state.limits);
    let rename = |field: &str| -> String {
        if field == "userInput" {
            return match &last_user {
                Some((i, _, _)) => format!("messages[{i}].content"),
                None => "messages".to_owned(),
            };
        }
        if field == "sessionId" {
            return if body.user.is_some() {
                "user".to_owned()
            } else {
                SESSION_HEADER.to_owned()
            };
        }
        if field == "options.maxOutputTokens" {
            return max_tokens_field.to_owned();
        }
        if let Some(rest) = field.strip_prefix("messages[")
            && let Some((index, tail)) = rest.split_once(']')
            && let Ok(index) = index.parse::<usize>()
            && let Some((original, _, _)) = turns.get(index)
        {
            return format!("messages[{original}]{tail}");
        }
        field.to_owned()
    };
    match checked {
        Ok(request) if violations.is_empty() => Ok(Translated {
            request,
            system_text,
            input_field: rename("userInput"),
        }),
        Ok(_) => Err(ApiError::Invalid(violations)),
        Err(ApiError::Invalid(more)) => {
            violations.extend(more.into_iter().map(|mut v| {
                v.field = rename(&v.field);
                v
            }));
            Err(ApiError::Invalid(violations))
        }
        Err(other) => Err(other),
    }
}

/// A message's text: a string, or the concatenated `text` parts of an array (OpenAI's content
/// parts); images, audio and files are refused, null is empty (an assistant turn may be).
fn message_text(content: Option<&Value>) -> Result<String, String> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                match (
                    part.get("type").and_then(Value::as_str),
                    part.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => text.push_str(t),
                    (kind, _) => {
                        return Err(format!(
                            "content part {j} is of type {}; the gateway takes text parts only",
                            kind.map_or_else(|| "missing".to_owned(), quoted)
                        ));
                    }
                }
            }
            Ok(text)
        }
        Some(_) => Err("content must be a string or an array of text parts".to_owned()),
    }
}

/// Parameters that would change the answer in ways the gateway cannot honour: refused, named,
/// rather than silently dropped.
fn unsupported_params(body: &oa::ChatCompletionRequest) -> Vec<Violation> {
    let mut violations = Vec::new();
    let is_empty = |v: &Option<Value>| match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(items)) => items.is_empty(),
        _ => false,
    };
    let is_none = |v: &Option<Value>| {
        matches!(v, None | Some(Value::Null)) || v.as_ref().and_then(Value::as_str) == Some("none")
    };
    let refused = [
        (!is_empty(&body.tools), "tools", "tools are"),
        (!is_empty(&body.functions), "functions", "functions are"),
        (
            !is_none(&body.tool_choice),
            "tool_choice",
            "tool_choice (other than none) is",
        ),
        (
            !is_none(&body.function_call),
            "function_call",
            "function_call (other than none) is",
        ),
        (body.logprobs == Some(true), "logprobs", "logprobs are"),
    ];
    for (refuse, field, what) in refused {
        if refuse {
            violations.push(Violation::invalid(
                field,
                format!("{what} not supported by the gateway"),
            ));
        }
    }
    if let Some(format) = &body.response_format
        && !format.is_null()
        && format.get("type").and_then(Value::as_str) != Some("text")
    {
        violations.push(Violation::invalid(
            "response_format",
            "response_format: only the type text is supported by the gateway",
        ));
    }
    violations
}

/// OpenAI's finish reasons from the providers' normalised ones.
fn finish_reason(reason: &str) -> String {
    match reason {
        "length" | "max_tokens" => "length",
        "content_filter" => "content_filter",
        _ => "stop",
    }
    .to_owned()
}

fn usage(tokens: Option<&api::TokenUsage>) -> oa::Usage {
    let tokens = tokens.cloned().unwrap_or(api::TokenUsage {
        prompt: 0,
        completion: 0,
        total: 0,
    });
    oa::Usage {
        prompt_tokens: tokens.prompt,
        completion_tokens: tokens.completion,
        total_tokens: tokens.total,
    }
}

fn report(answer: &api::InvokeResponse, ignored: Vec<String>) -> oa::GatewayReport {
    oa::GatewayReport {
        response_id: answer.response_id.clone(),
        prompt_id: answer.prompt_id.clone(),
        version: answer.version.clone(),
        guardrails: answer.guardrails.clone(),
        context: answer.context,
        ignored_params: ignored,
    }
}

fn completion(
    mut answer: api::InvokeResponse,
    created: i64,
    ignored: Vec<String>,
) -> oa::ChatCompletion {
    // The output and the model move into the answer; only the small report fields are copied.
    let promptgate = report(&answer, ignored);
    oa::ChatCompletion {
        id: answer.response_id,
        object: "chat.completion".to_owned(),
        created,
        model: answer.model,
        system_fingerprint: None,
        choices: vec![oa::Choice {
            index: 0,
            message: oa::AssistantMessage {
                role: "assistant".to_owned(),
                content: answer.output.take().unwrap_or_default(),
                refusal: None,
            },
            logprobs: None,
            finish_reason: finish_reason(&answer.finish_reason),
        }],
        usage: usage(answer.token_usage.as_ref()),
        promptgate,
    }
}

/// What every chunk of one answer repeats.
struct ChunkHead {
    id: String,
    model: String,
    created: i64,
}

fn outcome_head(response_id: &str, model: &str, created: i64) -> ChunkHead {
    ChunkHead {
        id: response_id.to_owned(),
        model: model.to_owned(),
        created,
    }
}

impl ChunkHead {
    fn chunk(&self, choices: Vec<oa::ChunkChoice>, include_usage: bool) -> oa::ChatCompletionChunk {
        oa::ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            system_fingerprint: None,
            choices,
            usage: include_usage.then_some(None),
            promptgate: None,
        }
    }

    fn delta(&self, delta: oa::Delta, finish: Option<String>, include_usage: bool) -> Event {
        let chunk = self.chunk(
            vec![oa::ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason: finish,
            }],
            include_usage,
        );
        data_event(&chunk)
    }
}

fn data_event<T: serde::Serialize>(value: &T) -> Event {
    Event::default().data(serde_json::to_string(value).unwrap_or_default())
}

/// The SSE answer: a role chunk, content chunks, a finishing chunk (with the gateway's
/// report), the usage chunk when asked for, then `[DONE]`. A provider failure mid-stream is
/// one `{"error": …}` event, which the SDKs raise, and no `[DONE]`.
fn stream(
    head: ChunkHead,
    relay: crate::routes::invocations::Relay,
    include_usage: bool,
    ignored: Vec<String>,
) -> Response {
    struct Pump {
        head: ChunkHead,
        relay: crate::routes::invocations::Relay,
        pending: VecDeque<Event>,
        ended: bool,
        include_usage: bool,
        ignored: Vec<String>,
    }
    let first = head.delta(
        oa::Delta {
            role: Some("assistant".to_owned()),
            content: Some(String::new()),
        },
        None,
        include_usage,
    );
    let pump = Pump {
        head,
        relay,
        pending: VecDeque::from([first]),
        ended: false,
        include_usage,
        ignored,
    };
    let events = futures_util::stream::unfold(pump, |mut pump| async move {
        loop {
            if let Some(event) = pump.pending.pop_front() {
                return Some((Ok::<Event, Infallible>(event), pump));
            }
            if pump.ended {
                return None;
            }
            match pump.relay.next_event().await {
                Some(RelayEvent::Delta(text)) => {
                    let event = pump.head.delta(
                        oa::Delta {
                            role: None,
                            content: Some(text),
                        },
                        None,
                        pump.include_usage,
                    );
                    pump.pending.push_back(event);
                }
                Some(RelayEvent::Done(done)) => {
                    let mut last = pump.head.chunk(
                        vec![oa::ChunkChoice {
                            index: 0,
                            delta: oa::Delta::default(),
                            logprobs: None,
                            finish_reason: Some(finish_reason(&done.finish_reason)),
                        }],
                        pump.include_usage,
                    );
                    last.promptgate = Some(report(&done, std::mem::take(&mut pump.ignored)));
                    pump.pending.push_back(data_event(&last));
                    if pump.include_usage {
                        let mut usage_chunk = pump.head.chunk(Vec::new(), true);
                        usage_chunk.usage = Some(Some(usage(done.token_usage.as_ref())));
                        pump.pending.push_back(data_event(&usage_chunk));
                    }
                    pump.pending.push_back(Event::default().data("[DONE]"));
                    pump.ended = true;
                }
                Some(RelayEvent::Failed(err)) => {
                    let body = crate::error::openai_error_body(&err.body(), "/v1/chat/completions");
                    pump.pending.push_back(data_event(&body));
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
            ("support", Some("1.2.0"))
        );
        // A name may hold an `@`; only a semantic version after the last one pins.
        assert_eq!(
            parse_model(Some("prompt:team@support@2.0.0")).unwrap(),
            ("team@support", Some("2.0.0"))
        );
        assert_eq!(parse_model(Some("prompt:x@")).unwrap(), ("x@", None));
        assert_eq!(
            parse_model(Some("prompt:x@latest")).unwrap(),
            ("x@latest", None)
        );
        for bad in ["gpt-4o", "prompt:", "prompt:@1.0.0"] {
            assert!(
                matches!(parse_model(Some(bad)), Err(ApiError::NotFound(_))),
                "{bad}"
            );
        }
        assert!(matches!(parse_model(None), Err(ApiError::Invalid(_))));
    }

    #[test]
    fn content_parts_join_their_text_and_refuse_images() {
        let parts =
            serde_json::json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]);
        assert_eq!(message_text(Some(&parts)).unwrap(), "ab");
        let image = serde_json::json!([{"type": "image_url", "image_url": {"url": "x"}}]);
        assert!(
            message_text(Some(&image))
                .unwrap_err()
                .contains("image_url")
        );
        assert_eq!(message_text(Some(&Value::Null)).unwrap(), "");
        assert!(message_text(Some(&serde_json::json!(5))).is_err());
    }

    #[test]
    fn finish_reasons_map_to_openai_names() {
        assert_eq!(finish_reason("stop"), "stop");
        assert_eq!(finish_reason("length"), "length");
        assert_eq!(finish_reason("end_turn"), "stop");
    }

    #[test]
    fn unsupported_parameters_are_named() {
        let body = oa::ChatCompletionRequest {
            tools: Some(serde_json::json!([{"type": "function"}])),
            logprobs: Some(true),
            response_format: Some(serde_json::json!({"type": "json_object"})),
            tool_choice: Some(serde_json::json!("none")),
            ..Default::default()
        };
        let fields: Vec<String> = unsupported_params(&body)
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["tools", "logprobs", "response_format"]);
    }
}
