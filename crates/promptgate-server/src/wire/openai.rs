//! `/v1/chat/completions` on the wire: an OpenAI Chat Completions request translated into the
//! service's [`Invocation`] (through the same checks as `…/invocations`, with the fields
//! renamed to OpenAI's), and the [`Answer`] written back as a `chat.completion` or as
//! `chat.completion.chunk`s. Choices: `docs/openai-compatibility.md`.

use std::collections::VecDeque;

use axum::response::sse::Event;
use promptgate_api as api;
use promptgate_api::openai as oa;
use promptgate_core::tools::{ToolFieldNames, check_tool_settings};
use promptgate_core::violation::quoted;
use promptgate_core::{ChatCompletionsPolicy, SystemMessageMode, ToolCall, Violation};
use promptgate_providers::{ToolCallDelta, Usage};
use promptgate_variables::SchemaChecker;
use serde_json::Value;
use uuid::Uuid;

use crate::limits::{RequestLimits, is_over, too_long};
use crate::service::invoke::{Answer, CallerOverrides, Invocation, PinRequest};
use crate::tools::ServedTools;
use crate::wire::tools::{response_format_draft, tool_choice_draft, tool_drafts};

/// The header that carries the sticky-routing session key (wins over the body's `user`).
pub const SESSION_HEADER: &str = "promptgate-session-id";
/// The header that names caller settings the prompt's policy ignored.
pub const IGNORED_PARAMS_HEADER: &str = "x-promptgate-ignored-params";
/// The header that names the model endpoint that served (the version's, or a fallback).
pub const ENDPOINT_HEADER: &str = "x-promptgate-endpoint-ref";

/// An OpenAI request as the invocation pipeline takes it.
#[derive(Debug)]
pub struct Translated {
    /// The checked request, with the caller's overrides the prompt's policy allows.
    pub request: Invocation,
    /// The caller's settings the policy ignored (`temperature`, `model_endpoint`), for the
    /// answer to name.
    pub ignored: Vec<String>,
    /// The field that holds the input, for errors about it: `messages[i].content`.
    pub input_field: String,
    /// Whether a streamed answer ends with a usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
}

/// Checks what only this front door has (roles, content parts, unsupported parameters) and
/// hands the rest to the same checks as `…/invocations`, renaming their fields to OpenAI's;
/// then applies the prompt's `policy`: the caller's system text is kept only under `prepend`,
/// `temperature` and `model_endpoint` only under `allowCallerSettings`.
pub fn translate(
    body: &oa::ChatCompletionRequest,
    prompt_id: Uuid,
    pin: &PinRequest,
    session: Option<String>,
    policy: ChatCompletionsPolicy,
    limits: &RequestLimits,
) -> Result<Translated, Vec<Violation>> {
    let prepend = policy.system_message == SystemMessageMode::Prepend;
    let mut violations = unsupported_params(body);
    let messages = body.messages.as_deref().unwrap_or_default();
    if body.messages.is_none() {
        violations.push(Violation::invalid("messages", "messages is required"));
    }
    let mut system = Vec::new();
    // Conversation turns and the index each came from, for naming fields.
    let mut turns: Vec<(usize, api::ChatTurn)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let text = match message_text(message.content.as_ref()) {
            Ok(text) => text,
            Err(why) => {
                violations.push(Violation::invalid(format!("messages[{i}].content"), why));
                continue;
            }
        };
        let role = match message.role.as_deref() {
            Some("system" | "developer") => {
                system.push(text);
                continue;
            }
            Some(role @ ("user" | "assistant" | "tool")) => role,
            other => {
                violations.push(Violation::invalid(
                    format!("messages[{i}].role"),
                    format!(
                        "role is {}; the gateway takes system, developer, user, assistant and tool messages",
                        other.map_or_else(|| "missing".to_owned(), quoted)
                    ),
                ));
                continue;
            }
        };
        let tool_calls = message
            .tool_calls
            .as_ref()
            .map(|calls| turn_tool_calls(i, calls, &mut violations));
        turns.push((
            i,
            api::ChatTurn {
                role: Some(role.to_owned()),
                content: Some(text),
                tool_calls,
                tool_call_id: message.tool_call_id.clone(),
            },
        ));
    }
    // The input is the last message: the user's, or (continuing after tool calls) a tool
    // result, which stays a turn and leaves the input empty.
    let last_role = turns.last().and_then(|(_, t)| t.role.clone());
    let last_user = match last_role.as_deref() {
        Some("user") => turns.pop(),
        Some("tool") => None,
        _ => {
            if body.messages.is_some() {
                violations.push(Violation::invalid(
                    "messages",
                    "the last user, assistant or tool message must be the user's or a tool result: it is the input the prompt answers",
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
        && is_over(text, limits.max_system_prompt_chars)
    {
        violations.push(too_long(
            "messages",
            text.chars().count(),
            limits.max_system_prompt_chars,
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
        prompt_id: Some(prompt_id.to_string()),
        user_input: Some(
            last_user
                .as_ref()
                .and_then(|(_, t)| t.content.clone())
                .unwrap_or_default(),
        ),
        session_id: session,
        version: match pin {
            PinRequest::Version(version) => Some(version.clone()),
            _ => None,
        },
        label: match pin {
            PinRequest::Label(label) => Some(label.clone()),
            _ => None,
        },
        variables: body.prompt_variables.clone(),
        messages: Some(turns.iter().map(|(_, turn)| turn.clone()).collect()),
        options: Some(api::InvokeOptions {
            stream: Some(body.stream.unwrap_or(false)),
            return_token_usage: Some(true),
            max_output_tokens,
        }),
        metadata: body.metadata.clone(),
    };
    let checked = super::invocations::invocation(&wire, limits);
    let rename = |field: &str| -> String {
        if field == "userInput" {
            return match &last_user {
                Some((i, _)) => format!("messages[{i}].content"),
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
        if let Some(name) = variables_field(field) {
            return name;
        }
        if let Some(rest) = field.strip_prefix("messages[")
            && let Some((index, tail)) = rest.split_once(']')
            && let Ok(index) = index.parse::<usize>()
            && let Some((original, _)) = turns.get(index)
        {
            let tail = tail
                .replace(".toolCalls", ".tool_calls")
                .replace(".toolCallId", ".tool_call_id");
            return format!("messages[{original}]{tail}");
        }
        field.to_owned()
    };
    let caller_tools = caller_tools(body, &mut violations);
    let mut request = match checked {
        Ok(request) if violations.is_empty() => request,
        Ok(_) => return Err(violations),
        Err(more) => {
            violations.extend(more.into_iter().map(|mut v| {
                v.field = rename(&v.field);
                v
            }));
            return Err(violations);
        }
    };
    let input_field = rename("userInput");
    let ignored = apply_policy(body, policy, system_text.filter(|_| prepend), &mut request);
    request.caller_tools = caller_tools;
    request.parallel_tool_calls = body.parallel_tool_calls;
    Ok(Translated {
        request,
        ignored,
        input_field,
        include_usage: body
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
    })
}

/// An assistant message's `tool_calls` in the contract's shape, for the shared checks (which
/// name each missing part); a call of another type than `function` is refused here.
fn turn_tool_calls(
    i: usize,
    calls: &[oa::ToolCall],
    violations: &mut Vec<Violation>,
) -> Vec<api::ToolCall> {
    calls
        .iter()
        .enumerate()
        .map(|(j, call)| {
            if let Some(kind) = call.kind.as_deref().filter(|k| *k != "function") {
                violations.push(Violation::invalid(
                    format!("messages[{i}].tool_calls[{j}].type"),
                    format!("tool call type {}; the only type is function", quoted(kind)),
                ));
            }
            let function = call.function.clone().unwrap_or_default();
            api::ToolCall {
                id: call.id.clone(),
                name: function.name,
                arguments: function.arguments,
            }
        })
        .collect()
}

/// The caller's `tools`, `tool_choice` and `response_format`, checked as a version's are (in
/// OpenAI's field names) and built for the call; none when the caller sent none of them.
fn caller_tools(
    body: &oa::ChatCompletionRequest,
    violations: &mut Vec<Violation>,
) -> Option<ServedTools> {
    fn present(v: &Option<Value>) -> Option<&Value> {
        v.as_ref().filter(|v| !v.is_null())
    }
    let (tools, choice, format) = (
        present(&body.tools),
        present(&body.tool_choice),
        present(&body.response_format),
    );
    if tools.is_none() && choice.is_none() && format.is_none() {
        return None;
    }
    let before = violations.len();
    let tools = match tools.map(|v| serde_json::from_value::<Vec<api::Tool>>(v.clone())) {
        None => Vec::new(),
        Some(Ok(list)) => tool_drafts(list),
        Some(Err(_)) => {
            violations.push(Violation::invalid(
                "tools",
                "tools must be an array of function tools: type function, and a function object whose name and description are text and strict a boolean",
            ));
            Vec::new()
        }
    };
    let choice = choice.map(tool_choice_draft);
    let format = match format.map(|v| serde_json::from_value::<api::ResponseFormat>(v.clone())) {
        None => None,
        Some(Ok(format)) => Some(response_format_draft(format)),
        Some(Err(_)) => {
            violations.push(Violation::invalid(
                "response_format",
                "response_format must be an object with a type (and for json_schema a json_schema object with a name)",
            ));
            None
        }
    };
    if violations.len() > before {
        return None;
    }
    match check_tool_settings(
        &tools,
        choice.as_ref(),
        format.as_ref(),
        &ToolFieldNames::OPENAI,
        &SchemaChecker,
    ) {
        Ok(settings) => Some(ServedTools::build(&settings)),
        Err(found) => {
            violations.extend(found);
            None
        }
    }
}

/// `variables` and `variables.NAME` (the contract's names for template variables) as this
/// front door names them: `prompt_variables`, `prompt_variables.NAME`.
pub fn variables_field(field: &str) -> Option<String> {
    let rest = field.strip_prefix("variables")?;
    (rest.is_empty() || rest.starts_with('.')).then(|| format!("prompt_variables{rest}"))
}

/// Sets the caller's overrides the prompt's policy allows; names the settings it ignored.
fn apply_policy(
    body: &oa::ChatCompletionRequest,
    policy: ChatCompletionsPolicy,
    system_suffix: Option<String>,
    request: &mut Invocation,
) -> Vec<String> {
    let mut ignored = Vec::new();
    request.overrides = CallerOverrides {
        system_suffix,
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
    ignored
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
        (
            !is_empty(&body.functions),
            "functions",
            "functions (the deprecated form of tools; send tools) are",
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
    violations
}

/// OpenAI's finish reasons from the providers' normalised ones.
fn finish_reason(reason: &str) -> String {
    match reason {
        "length" | "max_tokens" => "length",
        "content_filter" => "content_filter",
        "tool_calls" | "tool_use" => "tool_calls",
        _ => "stop",
    }
    .to_owned()
}

fn usage(tokens: Option<&Usage>) -> oa::Usage {
    let (prompt, completion) = tokens.map_or((0, 0), |u| (u.prompt_tokens, u.completion_tokens));
    oa::Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt.saturating_add(completion),
    }
}

fn report(answer: &Answer, ignored: Vec<String>) -> oa::GatewayReport {
    oa::GatewayReport {
        response_id: answer.response_id.clone(),
        prompt_id: answer.prompt_id.to_string(),
        version: answer.version.clone(),
        guardrails: api::GuardrailReport {
            input_redactions: answer.input_redactions.clone(),
            output_redactions: answer.output_redactions.clone(),
        },
        context: api::ContextReport {
            dropped_examples: answer.dropped_examples,
            dropped_turns: answer.dropped_turns,
        },
        ignored_params: ignored,
    }
}

/// The whole answer as a `chat.completion`.
pub fn completion(mut answer: Answer, created: i64, ignored: Vec<String>) -> oa::ChatCompletion {
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
                // OpenAI's shape: null content beside tool calls when the model said nothing.
                content: answer
                    .output
                    .take()
                    .filter(|text| !text.is_empty() || answer.tool_calls.is_empty()),
                refusal: None,
                tool_calls: (!answer.tool_calls.is_empty())
                    .then(|| answer.tool_calls.drain(..).map(openai_tool_call).collect()),
            },
            logprobs: None,
            finish_reason: finish_reason(&answer.finish_reason),
        }],
        usage: usage(answer.token_usage.as_ref()),
        promptgate,
    }
}

/// What every chunk of one streamed answer repeats, and the chunks as SSE events: a role
/// chunk, content chunks, a finishing chunk (with the gateway's report), the usage chunk when
/// asked for (`stream_options.include_usage`), then `[DONE]`.
#[derive(Debug)]
pub struct ChunkHead {
    id: String,
    model: String,
    created: i64,
    include_usage: bool,
}

impl ChunkHead {
    /// The head of the answer `response_id` from `model`.
    pub fn new(response_id: &str, model: &str, created: i64, include_usage: bool) -> Self {
        ChunkHead {
            id: response_id.to_owned(),
            model: model.to_owned(),
            created,
            include_usage,
        }
    }

    fn chunk(&self, choices: Vec<oa::ChunkChoice>) -> oa::ChatCompletionChunk {
        oa::ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            system_fingerprint: None,
            choices,
            usage: self.include_usage.then_some(None),
            promptgate: None,
        }
    }

    fn delta(&self, delta: oa::Delta) -> Event {
        let chunk = self.chunk(vec![oa::ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason: None,
        }]);
        data_event(&chunk)
    }

    /// The first chunk: the assistant's role, and empty content — `null` when tool calls come
    /// first, as OpenAI sends it (the Python SDK's assembled message then has `content` None).
    pub fn role(&self, before_tool_calls: bool) -> Event {
        self.delta(oa::Delta {
            role: Some("assistant".to_owned()),
            content: Some((!before_tool_calls).then(String::new)),
            tool_calls: None,
        })
    }

    /// A chunk of output text.
    pub fn content(&self, text: String) -> Event {
        self.delta(oa::Delta {
            role: None,
            content: Some(Some(text)),
            tool_calls: None,
        })
    }

    /// A chunk with a piece of a tool call: its id, type and name on the call's first piece.
    pub fn tool_call(&self, call: ToolCallDelta) -> Event {
        let first = call.id.is_some();
        self.delta(oa::Delta {
            role: None,
            content: None,
            tool_calls: Some(vec![oa::ToolCall {
                index: Some(call.index),
                id: call.id,
                kind: first.then(|| "function".to_owned()),
                function: Some(oa::FunctionCall {
                    name: call.name,
                    arguments: Some(call.arguments_delta),
                }),
            }]),
        })
    }

    /// The finishing chunk with the gateway's report, the usage chunk when asked for, and
    /// `[DONE]`, queued on `out`.
    pub fn done(&self, done: &Answer, ignored: Vec<String>, out: &mut VecDeque<Event>) {
        let mut last = self.chunk(vec![oa::ChunkChoice {
            index: 0,
            delta: oa::Delta::default(),
            logprobs: None,
            finish_reason: Some(finish_reason(&done.finish_reason)),
        }]);
        last.promptgate = Some(report(done, ignored));
        out.push_back(data_event(&last));
        if self.include_usage {
            let mut usage_chunk = self.chunk(Vec::new());
            usage_chunk.usage = Some(Some(usage(done.token_usage.as_ref())));
            out.push_back(data_event(&usage_chunk));
        }
        out.push_back(Event::default().data("[DONE]"));
    }
}

/// A tool call in OpenAI's shape.
fn openai_tool_call(call: ToolCall) -> oa::ToolCall {
    oa::ToolCall {
        index: None,
        id: Some(call.id),
        kind: Some("function".to_owned()),
        function: Some(oa::FunctionCall {
            name: Some(call.name),
            arguments: Some(call.arguments),
        }),
    }
}

/// A value as an SSE `data:` event (OpenAI's streams have no event names).
pub fn data_event<T: serde::Serialize>(value: &T) -> Event {
    Event::default().data(serde_json::to_string(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            functions: Some(serde_json::json!([{"name": "f"}])),
            logprobs: Some(true),
            response_format: Some(serde_json::json!({"type": "json_object"})),
            tool_choice: Some(serde_json::json!("none")),
            ..Default::default()
        };
        let fields: Vec<String> = unsupported_params(&body)
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["functions", "logprobs"]);
    }

    #[test]
    fn callers_tools_are_checked_in_openais_names() {
        let body = oa::ChatCompletionRequest {
            tools: Some(serde_json::json!([
                {"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}},
                {"type": "function", "function": {"name": "a"}}
            ])),
            tool_choice: Some(serde_json::json!({"type": "function", "function": {"name": "b"}})),
            response_format: Some(serde_json::json!({"type": "xml"})),
            ..Default::default()
        };
        let mut violations = Vec::new();
        assert!(caller_tools(&body, &mut violations).is_none());
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "tools[1].function.name",
                "tool_choice.function.name",
                "response_format.type"
            ]
        );
        // Shapes serde cannot read are refused naming the parameter, nothing else checked.
        let mut shapes = Vec::new();
        let unreadable = oa::ChatCompletionRequest {
            tools: Some(serde_json::json!({"type": "function"})),
            response_format: Some(serde_json::json!("json")),
            ..Default::default()
        };
        assert!(caller_tools(&unreadable, &mut shapes).is_none());
        let fields: Vec<&str> = shapes.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["tools", "response_format"]);
        let mut none = Vec::new();
        let fine = oa::ChatCompletionRequest {
            tools: Some(serde_json::json!([{"type": "function", "function": {"name": "a"}}])),
            tool_choice: Some(serde_json::json!("required")),
            ..Default::default()
        };
        let served = caller_tools(&fine, &mut none).unwrap();
        assert!(none.is_empty());
        assert_eq!(served.tools[0].name, "a");
    }
}
