//! `…/invocations` on the wire: the checks of an [`api::InvokeRequest`] into the service's
//! [`Invocation`], the [`Answer`] as an [`api::InvokeResponse`], and the relay's events as
//! the contract's SSE events (`delta`, `done`, `error`). `/v1` reuses the request checks
//! (`wire::openai`), so both front doors refuse the same things with the same messages.

use axum::response::sse::Event;
use promptgate_api as api;
use promptgate_core::ToolCall;
use promptgate_core::Violation;
use promptgate_core::invocation::FallbackAttempt;
use promptgate_core::tools::MAX_TOOLS;
use promptgate_core::violation::quoted;
use promptgate_providers::{ChatMessage, Role};

use crate::error::ApiError;
use crate::limits::{RequestLimits, is_over, too_long, too_many};
use crate::service::invoke::{
    Answer, CallerOverrides, Invocation, PinRequest, PromptRef, RelayEvent,
};
use crate::wire::tools::wire_tool_calls;

/// The longest session id.
pub const MAX_SESSION_ID_CHARS: usize = 256;
/// The name the response header carries the chosen version under.
pub const VERSION_HEADER: &str = "x-prompt-version";

/// Checks an invocation request against the contract and `[limits]`, collecting every
/// violation (in the order of the fields), into the service's input.
pub fn invocation(
    body: &api::InvokeRequest,
    limits: &RequestLimits,
) -> Result<Invocation, Vec<Violation>> {
    let mut violations = Vec::new();
    let prompt_id = body.prompt_id.clone().unwrap_or_else(|| {
        violations.push(Violation::invalid("promptId", "promptId is required"));
        String::new()
    });
    // Continuing after tool calls, the conversation ends with the tools' results: the caller
    // may then have nothing to add.
    let after_tools = body
        .messages
        .as_ref()
        .and_then(|turns| turns.last())
        .is_some_and(|turn| turn.role.as_deref() == Some("tool"));
    let user_input = match &body.user_input {
        None if after_tools => String::new(),
        None => {
            violations.push(Violation::invalid("userInput", "userInput is required"));
            String::new()
        }
        Some(text) if is_over(text, limits.max_input_chars) => {
            violations.push(too_long(
                "userInput",
                text.chars().count(),
                limits.max_input_chars,
                "max_input_chars",
            ));
            String::new()
        }
        Some(text) => text.clone(),
    };
    if let Some(session) = &body.session_id
        && session.chars().count() > MAX_SESSION_ID_CHARS
    {
        violations.push(Violation::invalid(
            "sessionId",
            format!("sessionId is over the limit of {MAX_SESSION_ID_CHARS} characters"),
        ));
    }
    let turns = turns(
        body.messages.as_deref().unwrap_or_default(),
        limits,
        &mut violations,
    );
    let options = body.options.clone().unwrap_or_default();
    let max_output_tokens = match options.max_output_tokens {
        None => None,
        Some(n) => match u32::try_from(n) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                violations.push(Violation::invalid(
                    "options.maxOutputTokens",
                    format!("maxOutputTokens is {n}; it must be a whole number of at least 1"),
                ));
                None
            }
        },
    };
    let metadata = body.metadata.clone().unwrap_or_default();
    check_metadata(&metadata, limits, &mut violations);
    let pin = pin(
        body.version.as_deref(),
        body.label.as_deref(),
        &mut violations,
    );
    if let Some(variables) = &body.variables {
        check_variables(variables, limits, &mut violations);
    }
    if !violations.is_empty() {
        return Err(violations);
    }
    Ok(Invocation {
        prompt: PromptRef::Id(prompt_id),
        user_input,
        session_id: body.session_id.clone(),
        pin,
        variables: body.variables.clone(),
        turns,
        stream: options.stream.unwrap_or(false),
        return_token_usage: options.return_token_usage.unwrap_or(true),
        max_output_tokens,
        metadata,
        overrides: CallerOverrides::default(),
        caller_tools: None,
        parallel_tool_calls: None,
    })
}

/// The version the caller named, or the label; both at once is a violation.
pub fn pin(
    version: Option<&str>,
    label: Option<&str>,
    violations: &mut Vec<Violation>,
) -> PinRequest {
    match (version, label) {
        (None, None) => PinRequest::None,
        (Some(version), None) => PinRequest::Version(version.to_owned()),
        (None, Some(label)) => PinRequest::Label(label.to_owned()),
        (Some(_), Some(_)) => {
            violations.push(Violation::invalid(
                "label",
                "version and label are exclusive: name the version, or the label that points at one",
            ));
            PinRequest::None
        }
    }
}

/// Each top-level string variable within `max_input_chars` (a value is caller input, like
/// `userInput`); the schema checks the rest once the version is known.
pub fn check_variables(
    variables: &serde_json::Map<String, serde_json::Value>,
    limits: &RequestLimits,
    violations: &mut Vec<Violation>,
) {
    for (name, value) in variables {
        if let serde_json::Value::String(text) = value
            && is_over(text, limits.max_input_chars)
        {
            violations.push(too_long(
                &format!("variables.{name}"),
                text.chars().count(),
                limits.max_input_chars,
                "max_input_chars",
            ));
        }
    }
}

/// The earlier turns, at most `max_conversation_messages` of them: user and assistant turns
/// with content within `max_input_chars`, assistant turns that called tools (`toolCalls`,
/// content then optional), and `tool` turns answering one of those calls (`toolCallId`).
fn turns(
    messages: &[api::ChatTurn],
    limits: &RequestLimits,
    violations: &mut Vec<Violation>,
) -> Vec<ChatMessage> {
    let mut call_ids: Vec<String> = Vec::new();
    let mut turns = Vec::new();
    if messages.len() > limits.max_conversation_messages {
        violations.push(too_many(
            "messages",
            messages.len(),
            limits.max_conversation_messages,
            "max_conversation_messages",
        ));
    }
    for (i, turn) in messages
        .iter()
        .enumerate()
        .take(limits.max_conversation_messages)
    {
        let role = match turn.role.as_deref() {
            Some("user") => Some(Role::User),
            Some("assistant") => Some(Role::Assistant),
            Some("tool") => Some(Role::Tool),
            other => {
                let why = match other {
                    None => "role is required; use user, assistant or tool".to_owned(),
                    Some(role) => {
                        format!("role is {}; use user, assistant or tool", quoted(role))
                    }
                };
                violations.push(Violation::invalid(format!("messages[{i}].role"), why));
                None
            }
        };
        let tool_calls = tool_calls_of(i, turn, role, limits, violations);
        let tool_call_id = tool_call_id_of(i, turn, role, &call_ids, violations);
        call_ids.extend(tool_calls.iter().map(|call| call.id.clone()));
        let content = match &turn.content {
            None if !tool_calls.is_empty() => Some(String::new()),
            Some(text) if !is_over(text, limits.max_input_chars) => Some(text.clone()),
            Some(text) => {
                violations.push(too_long(
                    &format!("messages[{i}].content"),
                    text.chars().count(),
                    limits.max_input_chars,
                    "max_input_chars",
                ));
                None
            }
            None => {
                violations.push(Violation::invalid(
                    format!("messages[{i}].content"),
                    "content is required",
                ));
                None
            }
        };
        if let (Some(role), Some(content)) = (role, content) {
            turns.push(ChatMessage {
                role,
                content,
                tool_calls,
                tool_call_id,
            });
        }
    }
    turns
}

/// The calls of an assistant turn, each with an id, a name and its arguments within
/// `max_input_chars`; other roles carry none.
fn tool_calls_of(
    i: usize,
    turn: &api::ChatTurn,
    role: Option<Role>,
    limits: &RequestLimits,
    violations: &mut Vec<Violation>,
) -> Vec<ToolCall> {
    let Some(calls) = &turn.tool_calls else {
        return Vec::new();
    };
    if role != Some(Role::Assistant) {
        violations.push(Violation::invalid(
            format!("messages[{i}].toolCalls"),
            "only an assistant turn carries toolCalls",
        ));
        return Vec::new();
    }
    if calls.len() > MAX_TOOLS {
        violations.push(Violation::invalid(
            format!("messages[{i}].toolCalls"),
            format!("{} tool calls given; the limit is {MAX_TOOLS}", calls.len()),
        ));
        return Vec::new();
    }
    let mut checked = Vec::with_capacity(calls.len());
    for (j, call) in calls.iter().enumerate() {
        let field = |part: &str| format!("messages[{i}].toolCalls[{j}].{part}");
        let mut part = |name: &str, value: &Option<String>| match value {
            Some(text) if text.is_empty() && name != "arguments" => {
                violations.push(Violation::invalid(field(name), format!("{name} is empty")));
                None
            }
            Some(text) if is_over(text, limits.max_input_chars) => {
                violations.push(too_long(
                    &field(name),
                    text.chars().count(),
                    limits.max_input_chars,
                    "max_input_chars",
                ));
                None
            }
            Some(text) => Some(text.clone()),
            None => {
                violations.push(Violation::invalid(
                    field(name),
                    format!("{name} is required"),
                ));
                None
            }
        };
        let (id, name, arguments) = (
            part("id", &call.id),
            part("name", &call.name),
            part("arguments", &call.arguments),
        );
        if let (Some(id), Some(name), Some(arguments)) = (id, name, arguments) {
            checked.push(ToolCall {
                id,
                name,
                arguments,
            });
        }
    }
    checked
}

/// The call a `tool` turn answers: required, and one an earlier assistant turn made (a provider
/// refuses a result without its call); other roles name none.
fn tool_call_id_of(
    i: usize,
    turn: &api::ChatTurn,
    role: Option<Role>,
    call_ids: &[String],
    violations: &mut Vec<Violation>,
) -> Option<String> {
    let field = format!("messages[{i}].toolCallId");
    match (&turn.tool_call_id, role) {
        (Some(id), Some(Role::Tool)) if call_ids.contains(id) => Some(id.clone()),
        (Some(id), Some(Role::Tool)) => {
            violations.push(Violation::invalid(
                field,
                format!(
                    "toolCallId {} answers no call of an earlier assistant turn",
                    quoted(id)
                ),
            ));
            None
        }
        (None, Some(Role::Tool)) => {
            violations.push(Violation::invalid(
                field,
                "toolCallId is required in a tool turn: the id of the call it answers",
            ));
            None
        }
        (Some(_), _) => {
            violations.push(Violation::invalid(
                field,
                "only a tool turn carries toolCallId",
            ));
            None
        }
        (None, _) => None,
    }
}

/// At most `max_metadata_entries` entries, each key and value within its limit.
fn check_metadata(
    metadata: &std::collections::BTreeMap<String, String>,
    limits: &RequestLimits,
    violations: &mut Vec<Violation>,
) {
    if metadata.len() > limits.max_metadata_entries {
        violations.push(too_many(
            "metadata",
            metadata.len(),
            limits.max_metadata_entries,
            "max_metadata_entries",
        ));
    }
    for (key, value) in metadata.iter().take(limits.max_metadata_entries) {
        let (key_over, value_over) = (
            is_over(key, limits.max_metadata_key_chars),
            is_over(value, limits.max_metadata_value_chars),
        );
        if !(key_over || value_over) {
            continue;
        }
        // The key is cut in the field name so that a huge key does not echo back whole.
        let shown: String = key.chars().take(limits.max_metadata_key_chars).collect();
        let field = format!("metadata.{shown}");
        if key_over {
            violations.push(too_long(
                &field,
                key.chars().count(),
                limits.max_metadata_key_chars,
                "max_metadata_key_chars",
            ));
        }
        if value_over {
            violations.push(too_long(
                &field,
                value.chars().count(),
                limits.max_metadata_value_chars,
                "max_metadata_value_chars",
            ));
        }
    }
}

/// The answer as the contract's body (for a stream's `done`, without `output`).
pub fn invoke_response(answer: Answer) -> api::InvokeResponse {
    let (parsed, output_errors) = match answer.output_check {
        None => (None, None),
        Some(check) => {
            let errors = (!check.errors.is_empty()).then(|| {
                check
                    .errors
                    .into_iter()
                    .map(|e| api::OutputError {
                        path: e.path,
                        message: e.message,
                    })
                    .collect()
            });
            (Some(check.parsed), errors)
        }
    };
    api::InvokeResponse {
        response_id: answer.response_id,
        prompt_id: answer.prompt_id.to_string(),
        version: answer.version,
        model: answer.model,
        output: answer.output,
        token_usage: answer.token_usage.map(|usage| api::TokenUsage {
            prompt: usage.prompt_tokens,
            completion: usage.completion_tokens,
            total: usage.prompt_tokens.saturating_add(usage.completion_tokens),
        }),
        finish_reason: answer.finish_reason,
        latency_ms: answer.latency_ms,
        guardrails: api::GuardrailReport {
            input_redactions: answer.input_redactions,
            output_redactions: answer.output_redactions,
        },
        context: api::ContextReport {
            dropped_examples: answer.dropped_examples,
            dropped_turns: answer.dropped_turns,
        },
        few_shot_tokens: answer.few_shot_tokens,
        tool_calls: wire_tool_calls(answer.tool_calls),
        parsed,
        output_errors,
        fallback: answer.fallback.map(|attempts| api::FallbackReport {
            // An answer exists only when an endpoint served: after a failed one, a fallback.
            used: !attempts.is_empty(),
            attempts: wire_attempts(&attempts),
        }),
        endpoint_ref: answer.endpoint_ref,
    }
}

/// Failed fallback attempts as the contract shows them (answers and telemetry alike).
pub fn wire_attempts(attempts: &[FallbackAttempt]) -> Vec<api::FallbackAttempt> {
    attempts
        .iter()
        .map(|a| api::FallbackAttempt {
            endpoint_ref: a.endpoint_ref.clone(),
            error_code: a.error_code.clone(),
        })
        .collect()
}

/// One relay step as the contract's SSE event: `delta` with `{text}`, `done` with the answer
/// minus output, or `error` with the error's status, code and message.
pub fn sse_event(event: RelayEvent) -> Event {
    match event {
        RelayEvent::Delta(text) => json_event("delta", &api::StreamDelta { text }),
        RelayEvent::ToolCall(call) => json_event(
            "tool_call",
            &api::StreamToolCall {
                index: call.index,
                id: call.id,
                name: call.name,
                arguments_delta: call.arguments_delta,
            },
        ),
        RelayEvent::Done(done) => json_event("done", &invoke_response(*done)),
        RelayEvent::Failed(err) => error_event(&ApiError::from(err)),
    }
}

fn json_event<T: serde::Serialize>(name: &str, value: &T) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(value).unwrap_or_default())
}

fn error_event(err: &ApiError) -> Event {
    let body = serde_json::json!({
        "status": err.status().as_u16(),
        "code": err.code(),
        "message": err.to_string(),
    });
    Event::default().event("error").data(body.to_string())
}
