//! Anthropic Messages: `POST {base_url}/v1/messages` with `x-api-key` and `anthropic-version`.
//!
//! The system prompt is the top-level `system` field (the Messages API has no system role),
//! and `max_tokens` is required, so a request without a limit gets
//! [`ANTHROPIC_DEFAULT_MAX_TOKENS`](crate::ANTHROPIC_DEFAULT_MAX_TOKENS).
//!
//! Tools are translated from OpenAI's terms: a function's `parameters` become `input_schema`
//! (`{"type": "object"}` when it has none); `tool_choice` `auto`/`none`/`required`/a function
//! become `auto`/`none`/`any`/`tool`, and `parallel_tool_calls: false` becomes
//! `disable_parallel_tool_use`. An assistant turn's tool calls become `tool_use` blocks, and
//! tool results `tool_result` blocks in a user turn (consecutive results, and a user text that
//! follows them, share one turn, as Anthropic requires).
//!
//! A JSON response format (Anthropic's Messages API has no `response_format`) becomes a
//! forced output tool: a tool named after the `json_schema`'s `name` (`json_output` for
//! `json_object`) whose `input_schema` is the schema. The model's call of it is the answer: its
//! input is returned as the text, finished `stop`, whole or streamed as text deltas. With other
//! tools present the model must call one of them or the output tool (`any`), unless the
//! request forces a function.

use std::collections::VecDeque;

use bytes::Bytes;
use reqwest::header::HeaderName;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::json::raw_json;
use crate::relay::{StreamParser, relay};
use crate::sse::SseEvent;
use crate::transport::{Prepared, Transport, scrub};
use crate::{
    ANTHROPIC_DEFAULT_MAX_TOKENS, ChatMessage, ChatRequest, ChatResponse, EventStream, Provider,
    ProviderError, ResponseFormat, Role, StreamEvent, ToolCall, ToolCallDelta, ToolChoice, Usage,
};

/// The output tool's name for `json_object`, which names no schema.
const JSON_OBJECT_TOOL: &str = "json_output";

/// The input schema of a tool that declares no parameters, and of `json_object`'s output tool.
const ANY_OBJECT: &str = r#"{"type":"object"}"#;

/// The API version this provider's wire types follow.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A provider that speaks Anthropic's Messages API.
#[derive(Debug)]
pub(crate) struct AnthropicProvider {
    transport: Transport,
}

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    system: &'a str,
    messages: Vec<WireMessage<'a>>,
    max_tokens: u32,
    temperature: f64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: WireContent<'a>,
}

/// A turn's content: plain text, or blocks when it holds tool calls or results.
#[derive(Serialize)]
#[serde(untagged)]
enum WireContent<'a> {
    Text(&'a str),
    Blocks(Vec<WireBlockOut<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlockOut<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a RawValue,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: &'a str,
    },
}

#[derive(Serialize)]
struct WireTool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: &'a RawValue,
}

/// The forced tool that stands for a JSON response format.
struct OutputTool<'a> {
    name: &'a str,
    description: Option<&'a str>,
    schema: &'a str,
}

impl<'a> OutputTool<'a> {
    fn of(format: Option<&'a ResponseFormat>) -> Option<Self> {
        match format? {
            ResponseFormat::Text => None,
            ResponseFormat::JsonObject => Some(OutputTool {
                name: JSON_OBJECT_TOOL,
                description: Some("Answer with a JSON object."),
                schema: ANY_OBJECT,
            }),
            ResponseFormat::JsonSchema(format) => Some(OutputTool {
                name: &format.name,
                description: Some(
                    format
                        .description
                        .as_deref()
                        .unwrap_or("Answer with the output in this form."),
                ),
                schema: format.schema.as_deref().unwrap_or(ANY_OBJECT),
            }),
        }
    }
}

#[derive(Deserialize)]
struct WireResponse {
    model: String,
    content: Vec<WireBlock>,
    stop_reason: Option<String>,
    usage: WireUsage,
}

#[derive(Deserialize)]
struct WireBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
    /// A `tool_use` block's id, name and input.
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<Box<RawValue>>,
}

/// Token counts; every field is optional because `message_delta` carries only some of them.
#[derive(Deserialize, Default, Clone, Copy)]
struct WireUsage {
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
    cache_creation_input_tokens: Option<u32>,
    cache_read_input_tokens: Option<u32>,
}

impl WireUsage {
    /// All tokens read: Anthropic counts cached prompt tokens apart from `input_tokens`.
    fn prompt_tokens(&self) -> Option<u32> {
        let input = self.input_tokens?;
        Some(
            input
                .saturating_add(self.cache_creation_input_tokens.unwrap_or(0))
                .saturating_add(self.cache_read_input_tokens.unwrap_or(0)),
        )
    }
}

/// The stream's events, told apart by their `type`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: WireStartMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: WireStartBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: WireDelta,
    },
    MessageDelta {
        delta: WireMessageDelta,
        #[serde(default)]
        usage: WireUsage,
    },
    MessageStop,
    Error {
        error: serde_json::Value,
    },
    /// `ping`, `content_block_stop`, and event types added later, which
    /// Anthropic says clients should tolerate.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireStartMessage {
    model: String,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
struct WireStartBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
    /// An `input_json_delta`'s piece of a tool call's input.
    #[serde(default)]
    partial_json: String,
}

#[derive(Deserialize)]
struct WireMessageDelta {
    stop_reason: Option<String>,
}

impl AnthropicProvider {
    pub(crate) fn new(transport: Transport) -> Self {
        AnthropicProvider { transport }
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Result<Bytes, ProviderError> {
        let output = OutputTool::of(request.response_format.as_deref());
        let (tools, tool_choice) = wire_tools(request, output.as_ref())?;
        let wire = WireRequest {
            model: &self.transport.endpoint.model,
            system: &request.system,
            messages: wire_messages(&request.messages)?,
            max_tokens: request
                .max_output_tokens
                .unwrap_or(ANTHROPIC_DEFAULT_MAX_TOKENS),
            temperature: request.temperature,
            stream,
            tools,
            tool_choice,
        };
        serde_json::to_vec(&wire).map(Bytes::from).map_err(|err| {
            ProviderError::Invalid(format!("the request could not be encoded: {err}"))
        })
    }

    fn prepare(&self) -> Result<Prepared, ProviderError> {
        self.transport.prepare(
            "/v1/messages",
            &[(
                HeaderName::from_static("anthropic-version"),
                ANTHROPIC_VERSION,
            )],
            |key| (HeaderName::from_static("x-api-key"), key.to_owned()),
        )
    }
}

#[async_trait::async_trait]
impl Provider for AnthropicProvider {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let prepared = self.prepare()?;
        // Every error leaves through `scrub`, whichever step made it.
        self.complete_prepared(&prepared, request)
            .await
            .map_err(|e| scrub(e, prepared.key()))
    }

    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        let prepared = self.prepare()?;
        // Errors of the stream's events are scrubbed by the relay, with the same key.
        self.stream_prepared(&prepared, request)
            .await
            .map_err(|e| scrub(e, prepared.key()))
    }
}

impl AnthropicProvider {
    async fn complete_prepared(
        &self,
        prepared: &Prepared,
        request: &ChatRequest,
    ) -> Result<ChatResponse, ProviderError> {
        let answer = self
            .transport
            .post(prepared, self.body(request, false)?)
            .await?;
        let wire: WireResponse = serde_json::from_slice(&answer)
            .map_err(|err| ProviderError::Invalid(format!("message: {err}")))?;
        let output = OutputTool::of(request.response_format.as_deref()).map(|tool| tool.name);
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        let mut answered_by_output_tool = false;
        for block in wire.content {
            match block.kind.as_str() {
                "text" => text.push_str(&block.text),
                "tool_use" => {
                    let name = block.name.unwrap_or_default();
                    let arguments = block
                        .input
                        .map_or_else(|| "{}".to_owned(), |raw| raw.get().to_owned());
                    if output == Some(name.as_str()) {
                        // The output tool's input is the answer; any text before it is the
                        // model thinking aloud, not output.
                        text = arguments;
                        answered_by_output_tool = true;
                    } else {
                        tool_calls.push(ToolCall {
                            id: block.id.unwrap_or_default(),
                            name,
                            arguments,
                        });
                    }
                }
                _ => {}
            }
        }
        let finish_reason = if answered_by_output_tool && tool_calls.is_empty() {
            "stop".to_owned()
        } else {
            normalise_stop_reason(wire.stop_reason.as_deref())
        };
        Ok(ChatResponse {
            text,
            tool_calls,
            usage: Usage {
                prompt_tokens: wire.usage.prompt_tokens().unwrap_or(0),
                completion_tokens: wire.usage.output_tokens.unwrap_or(0),
            },
            finish_reason,
            model: wire.model,
        })
    }

    async fn stream_prepared(
        &self,
        prepared: &Prepared,
        request: &ChatRequest,
    ) -> Result<EventStream, ProviderError> {
        let response = self
            .transport
            .post_streaming(prepared, self.body(request, true)?)
            .await?;
        let parser = EventParser::new(
            self.transport.endpoint.model.clone(),
            OutputTool::of(request.response_format.as_deref()).map(|tool| tool.name.to_owned()),
        );
        Ok(relay(
            response,
            parser,
            self.transport.timeout(),
            prepared.key().map(str::to_owned),
        ))
    }
}

/// The conversation as Anthropic's turns: tool calls as `tool_use` blocks, tool results as
/// `tool_result` blocks of a user turn that also takes the user text following them.
fn wire_messages(messages: &[ChatMessage]) -> Result<Vec<WireMessage<'_>>, ProviderError> {
    let mut out: Vec<WireMessage<'_>> = Vec::with_capacity(messages.len());
    for message in messages {
        match message.role {
            Role::User => {
                if let Some(WireMessage {
                    role: "user",
                    content: WireContent::Blocks(blocks),
                }) = out.last_mut()
                {
                    blocks.push(WireBlockOut::Text {
                        text: &message.content,
                    });
                } else {
                    out.push(WireMessage {
                        role: "user",
                        content: WireContent::Text(&message.content),
                    });
                }
            }
            Role::Assistant if message.tool_calls.is_empty() => out.push(WireMessage {
                role: "assistant",
                content: WireContent::Text(&message.content),
            }),
            Role::Assistant => {
                let text = (!message.content.is_empty()).then(|| WireBlockOut::Text {
                    text: &message.content,
                });
                let calls = message.tool_calls.iter().map(|call| {
                    let arguments = if call.arguments.trim().is_empty() {
                        "{}"
                    } else {
                        &call.arguments
                    };
                    Ok(WireBlockOut::ToolUse {
                        id: &call.id,
                        name: &call.name,
                        input: raw_json(arguments, "a tool call's arguments")?,
                    })
                });
                let blocks = text
                    .map(Ok)
                    .into_iter()
                    .chain(calls)
                    .collect::<Result<_, ProviderError>>()?;
                out.push(WireMessage {
                    role: "assistant",
                    content: WireContent::Blocks(blocks),
                });
            }
            Role::Tool => {
                let result = WireBlockOut::ToolResult {
                    tool_use_id: message.tool_call_id.as_deref().unwrap_or_default(),
                    content: &message.content,
                };
                match out.last_mut() {
                    Some(WireMessage {
                        role: "user",
                        content: WireContent::Blocks(blocks),
                    }) => blocks.push(result),
                    _ => out.push(WireMessage {
                        role: "user",
                        content: WireContent::Blocks(vec![result]),
                    }),
                }
            }
        }
    }
    Ok(out)
}

/// The request's tools (and the output tool) and its `tool_choice`, in Anthropic's terms.
fn wire_tools<'a>(
    request: &'a ChatRequest,
    output: Option<&OutputTool<'a>>,
) -> Result<(Vec<WireTool<'a>>, Option<serde_json::Value>), ProviderError> {
    let no_tools = request.tools.is_empty() || request.tool_choice == Some(ToolChoice::None);
    // No allocation for the common request without tools.
    let mut tools = Vec::new();
    if !(no_tools && output.is_some()) {
        for tool in request.tools.iter() {
            tools.push(WireTool {
                name: &tool.name,
                description: tool.description.as_deref(),
                input_schema: raw_json(
                    tool.parameters.as_deref().unwrap_or(ANY_OBJECT),
                    "a tool's parameters",
                )?,
            });
        }
    }
    let mut choice = match (output, &request.tool_choice) {
        (Some(output), _) if no_tools => serde_json::json!({"type": "tool", "name": output.name}),
        (Some(_), Some(ToolChoice::Function(name))) | (None, Some(ToolChoice::Function(name))) => {
            serde_json::json!({"type": "tool", "name": name})
        }
        (Some(_), _) | (None, Some(ToolChoice::Required)) => serde_json::json!({"type": "any"}),
        (None, Some(ToolChoice::None)) => serde_json::json!({"type": "none"}),
        (None, Some(ToolChoice::Auto)) => serde_json::json!({"type": "auto"}),
        (None, None) if request.parallel_tool_calls == Some(false) && !tools.is_empty() => {
            serde_json::json!({"type": "auto"})
        }
        (None, None) => serde_json::Value::Null,
    };
    if let Some(output) = output {
        tools.push(WireTool {
            name: output.name,
            description: output.description,
            input_schema: raw_json(output.schema, "the response format's schema")?,
        });
    }
    if request.parallel_tool_calls == Some(false)
        && choice.get("type").is_some_and(|kind| kind != "none")
    {
        choice["disable_parallel_tool_use"] = true.into();
    }
    // A `tool_choice` without tools is refused by the API.
    let choice = (!choice.is_null() && !tools.is_empty()).then_some(choice);
    Ok((tools, choice))
}

/// Anthropic's stop reasons in OpenAI's words, which the gateway's answers use.
fn normalise_stop_reason(reason: Option<&str>) -> String {
    match reason {
        None | Some("end_turn" | "stop_sequence") => "stop",
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        Some(other) => other,
    }
    .to_owned()
}

/// Follows a Messages stream to `message_stop`.
struct EventParser {
    model: String,
    usage: Usage,
    stop_reason: Option<String>,
    /// The output tool's name, when the request asked for JSON.
    output_tool: Option<String>,
    /// What each content block that is not text carries, by the block's index.
    blocks: Vec<(u32, ToolBlock)>,
    /// How many real tool calls have begun (the next call's index).
    tool_calls: u32,
}

/// A `tool_use` block of the stream: one of the model's calls, or its answer by the output tool.
#[derive(Clone, Copy)]
enum ToolBlock {
    Call(u32),
    Output,
}

impl EventParser {
    fn new(model: String, output_tool: Option<String>) -> Self {
        EventParser {
            model,
            usage: Usage::default(),
            stop_reason: None,
            output_tool,
            blocks: Vec::new(),
            tool_calls: 0,
        }
    }

    fn done(&mut self) -> StreamEvent {
        let answered_by_output_tool = self
            .blocks
            .iter()
            .any(|(_, block)| matches!(block, ToolBlock::Output));
        let finish_reason = if answered_by_output_tool && self.tool_calls == 0 {
            "stop".to_owned()
        } else {
            normalise_stop_reason(self.stop_reason.as_deref())
        };
        StreamEvent::Done {
            usage: self.usage,
            finish_reason,
            model: std::mem::take(&mut self.model),
        }
    }

    fn block(&self, index: u32) -> Option<ToolBlock> {
        self.blocks
            .iter()
            .find(|(at, _)| *at == index)
            .map(|(_, block)| *block)
    }
}

impl StreamParser for EventParser {
    fn event(
        &mut self,
        event: &SseEvent,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<(), ProviderError> {
        let wire: WireEvent = serde_json::from_str(&event.data)
            .map_err(|err| ProviderError::Invalid(format!("stream event: {err}")))?;
        match wire {
            WireEvent::MessageStart { message } => {
                self.model = message.model;
                self.usage.prompt_tokens = message.usage.prompt_tokens().unwrap_or(0);
                self.usage.completion_tokens = message.usage.output_tokens.unwrap_or(0);
            }
            WireEvent::ContentBlockStart {
                index,
                content_block,
            } if content_block.kind == "tool_use" => {
                let name = content_block.name.unwrap_or_default();
                if self.output_tool.as_deref() == Some(name.as_str()) {
                    self.blocks.push((index, ToolBlock::Output));
                } else {
                    let call = self.tool_calls;
                    self.tool_calls += 1;
                    self.blocks.push((index, ToolBlock::Call(call)));
                    out.push_back(StreamEvent::ToolCall(ToolCallDelta {
                        index: call,
                        id: content_block.id,
                        name: Some(name),
                        arguments_delta: String::new(),
                    }));
                }
            }
            WireEvent::ContentBlockDelta { delta, .. } if delta.kind == "text_delta" => {
                if !delta.text.is_empty() {
                    out.push_back(StreamEvent::Delta(delta.text));
                }
            }
            WireEvent::ContentBlockDelta { index, delta } if delta.kind == "input_json_delta" => {
                match self.block(index) {
                    Some(ToolBlock::Output) if !delta.partial_json.is_empty() => {
                        out.push_back(StreamEvent::Delta(delta.partial_json));
                    }
                    Some(ToolBlock::Call(call)) if !delta.partial_json.is_empty() => {
                        out.push_back(StreamEvent::ToolCall(ToolCallDelta {
                            index: call,
                            id: None,
                            name: None,
                            arguments_delta: delta.partial_json,
                        }));
                    }
                    _ => {}
                }
            }
            WireEvent::MessageDelta { delta, usage } => {
                if delta.stop_reason.is_some() {
                    self.stop_reason = delta.stop_reason;
                }
                // The counts in `message_delta` are cumulative, so they replace, not add.
                if let Some(output) = usage.output_tokens {
                    self.usage.completion_tokens = output;
                }
                if let Some(prompt) = usage.prompt_tokens() {
                    self.usage.prompt_tokens = prompt;
                }
            }
            WireEvent::MessageStop => out.push_back(self.done()),
            WireEvent::Error { error } => {
                let body = serde_json::json!({ "error": error }).to_string();
                return Err(ProviderError::Upstream {
                    status: None,
                    message: crate::transport::error_message(
                        reqwest::StatusCode::BAD_GATEWAY,
                        body.as_bytes(),
                        None,
                    ),
                });
            }
            WireEvent::ContentBlockStart { .. }
            | WireEvent::ContentBlockDelta { .. }
            | WireEvent::Other => {}
        }
        Ok(())
    }

    fn end(&mut self) -> Result<StreamEvent, ProviderError> {
        if self.stop_reason.is_some() {
            Ok(self.done())
        } else {
            Err(ProviderError::Upstream {
                status: None,
                message: "the stream ended before the answer was finished".to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_in_openai_words() {
        let cases = [
            (None, "stop"),
            (Some("end_turn"), "stop"),
            (Some("stop_sequence"), "stop"),
            (Some("max_tokens"), "length"),
            (Some("tool_use"), "tool_calls"),
            (Some("refusal"), "content_filter"),
            (Some("pause_turn"), "pause_turn"),
        ];
        for (reason, expected) in cases {
            assert_eq!(normalise_stop_reason(reason), expected, "{reason:?}");
        }
    }

    fn parse_all(parser: &mut EventParser, events: &[&str]) -> Vec<StreamEvent> {
        let mut out = VecDeque::new();
        for data in events {
            parser
                .event(
                    &SseEvent {
                        event: String::new(),
                        data: (*data).to_owned(),
                    },
                    &mut out,
                )
                .unwrap();
        }
        out.into()
    }

    #[test]
    fn message_delta_usage_is_cumulative() {
        let mut parser = EventParser::new("configured".to_owned(), None);
        let events = [
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_read_input_tokens":5,"output_tokens":1}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":15}}"#,
            r#"{"type":"message_stop"}"#,
        ];
        let out = parse_all(&mut parser, &events);
        assert_eq!(
            out,
            vec![
                StreamEvent::Delta("Hi".to_owned()),
                StreamEvent::Done {
                    usage: Usage {
                        prompt_tokens: 30,
                        completion_tokens: 15
                    },
                    finish_reason: "length".to_owned(),
                    model: "claude-x".to_owned(),
                },
            ]
        );
    }
}
