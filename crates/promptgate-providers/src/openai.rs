//! OpenAI-compatible Chat Completions: `POST {base_url}/chat/completions`.
//!
//! Only the documented core of the format is used (`model`, `messages`, `temperature`,
//! `max_tokens`, `stream`, `stream_options.include_usage`, and when a request has them
//! `tools`, `tool_choice`, `parallel_tool_calls`, `response_format`), so vLLM, llama.cpp's
//! server and Ollama work as well as OpenAI. `max_tokens` rather than the newer `max_completion_tokens`
//! because every compatible server knows it; OpenAI still accepts it for its chat models.

use std::collections::VecDeque;

use bytes::Bytes;
use promptgate_core::TokenCounter;
use reqwest::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::json::raw_json;
use crate::relay::{StreamParser, relay};
use crate::sse::SseEvent;
use crate::transport::{Prepared, Transport, error_message, scrub};
use crate::{
    ChatRequest, ChatResponse, EventStream, Provider, ProviderError, ResponseFormat, Role,
    StreamEvent, ToolCall, ToolCallDelta, ToolChoice, Usage,
};

/// A provider that speaks OpenAI's Chat Completions.
#[derive(Debug)]
pub(crate) struct OpenAiProvider {
    transport: Transport,
    counter: TokenCounter,
}

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    temperature: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    /// Null on an assistant turn that only calls tools, as OpenAI writes it.
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireCalled<'a>,
}

#[derive(Serialize)]
struct WireCalled<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Deserialize)]
struct WireResponse {
    model: String,
    choices: Vec<WireChoice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireAnswer,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireAnswer {
    /// Null when the model answered only with tool calls or a refusal.
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireAnsweredCall>>,
}

#[derive(Deserialize)]
struct WireAnsweredCall {
    id: String,
    function: WireAnsweredFunction,
}

#[derive(Deserialize)]
struct WireAnsweredFunction {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize, Clone, Copy)]
struct WireUsage {
    prompt_tokens: u32,
    completion_tokens: u32,
}

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    model: Option<String>,
    /// Empty in the final usage chunk; some compatible servers send null or leave it out.
    #[serde(default)]
    choices: Option<Vec<WireChunkChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    /// OpenAI reports a failure after the stream started as a chunk with only `error`.
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct WireChunkChoice {
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireCallDelta>>,
}

/// A piece of a streamed tool call: the first carries `id` and `function.name`.
#[derive(Deserialize)]
struct WireCallDelta {
    index: u32,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunctionDelta>,
}

#[derive(Deserialize)]
struct WireFunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

impl OpenAiProvider {
    pub(crate) fn new(transport: Transport, counter: TokenCounter) -> Self {
        OpenAiProvider { transport, counter }
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Result<Bytes, ProviderError> {
        let system = (!request.system.is_empty()).then(|| WireMessage {
            role: "system",
            content: Some(&request.system),
            tool_calls: Vec::new(),
            tool_call_id: None,
        });
        let turns = request.messages.iter().map(|message| WireMessage {
            role: match message.role {
                Role::User => "user",
                Role::Assistant => "assistant",
                Role::Tool => "tool",
            },
            content: (!message.content.is_empty() || message.tool_calls.is_empty())
                .then_some(message.content.as_str()),
            tool_calls: message
                .tool_calls
                .iter()
                .map(|call| WireToolCall {
                    id: &call.id,
                    kind: "function",
                    function: WireCalled {
                        name: &call.name,
                        arguments: &call.arguments,
                    },
                })
                .collect(),
            tool_call_id: message.tool_call_id.as_deref(),
        });
        let tools: Vec<WireTool<'_>> = request
            .tools
            .iter()
            .map(|tool| {
                Ok(WireTool {
                    kind: "function",
                    function: WireFunction {
                        name: &tool.name,
                        description: tool.description.as_deref(),
                        parameters: tool
                            .parameters
                            .as_deref()
                            .map(|schema| raw_json(schema, "a tool's parameters"))
                            .transpose()?,
                        strict: tool.strict,
                    },
                })
            })
            .collect::<Result<_, ProviderError>>()?;
        let wire = WireRequest {
            model: &self.transport.endpoint.model,
            messages: system.into_iter().chain(turns).collect(),
            temperature: request.temperature,
            max_tokens: request.max_output_tokens,
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
            // OpenAI refuses `tool_choice` and `parallel_tool_calls` without `tools`.
            tool_choice: request
                .tool_choice
                .as_ref()
                .filter(|_| !tools.is_empty())
                .map(wire_tool_choice),
            parallel_tool_calls: request.parallel_tool_calls.filter(|_| !tools.is_empty()),
            tools,
            response_format: request
                .response_format
                .as_deref()
                .map(wire_response_format)
                .transpose()?,
        };
        serde_json::to_vec(&wire).map(Bytes::from).map_err(|err| {
            ProviderError::Invalid(format!("the request could not be encoded: {err}"))
        })
    }

    fn prepare(&self) -> Result<Prepared, ProviderError> {
        self.transport.prepare("/chat/completions", &[], |key| {
            (AUTHORIZATION, format!("Bearer {key}"))
        })
    }

    /// Local counts, for compatible servers that report no usage.
    fn counted_prompt(&self, request: &ChatRequest) -> u32 {
        let tokenizer = self.transport.endpoint.tokenizer;
        let total = self.counter.count(tokenizer, &request.system)
            + request
                .messages
                .iter()
                .map(|m| {
                    self.counter.count(tokenizer, &m.content)
                        + m.tool_calls
                            .iter()
                            .map(|call| self.counter.count(tokenizer, &call.arguments))
                            .sum::<usize>()
                })
                .sum::<usize>();
        u32::try_from(total).unwrap_or(u32::MAX)
    }
}

#[async_trait::async_trait]
impl Provider for OpenAiProvider {
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

impl OpenAiProvider {
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
            .map_err(|err| ProviderError::Invalid(format!("chat completion: {err}")))?;
        let choice =
            wire.choices.into_iter().next().ok_or_else(|| {
                ProviderError::Invalid("chat completion has no choices".to_owned())
            })?;
        let text = choice.message.content.unwrap_or_default();
        let tool_calls: Vec<ToolCall> = choice
            .message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(|call| ToolCall {
                id: call.id,
                name: call.function.name,
                arguments: call.function.arguments,
            })
            .collect();
        let usage = match wire.usage {
            Some(usage) => Usage {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
            },
            None => Usage {
                prompt_tokens: self.counted_prompt(request),
                completion_tokens: count(&self.counter, &self.transport, &text)
                    + tool_calls
                        .iter()
                        .map(|call| count(&self.counter, &self.transport, &call.arguments))
                        .sum::<u32>(),
            },
        };
        Ok(ChatResponse {
            text,
            tool_calls,
            usage,
            finish_reason: choice.finish_reason.unwrap_or_else(|| "stop".to_owned()),
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
        let parser = ChunkParser {
            model: self.transport.endpoint.model.clone(),
            finish_reason: None,
            usage: None,
            counted_prompt: self.counted_prompt(request),
            counted_completion: 0,
            counter: self.counter,
            tokenizer: self.transport.endpoint.tokenizer,
        };
        Ok(relay(
            response,
            parser,
            self.transport.timeout(),
            prepared.key().map(str::to_owned),
        ))
    }
}

/// `tool_choice` in OpenAI's shape: a word, or the function to call.
fn wire_tool_choice(choice: &ToolChoice) -> serde_json::Value {
    match choice {
        ToolChoice::Auto => "auto".into(),
        ToolChoice::None => "none".into(),
        ToolChoice::Required => "required".into(),
        ToolChoice::Function(name) => {
            serde_json::json!({"type": "function", "function": {"name": name}})
        }
    }
}

/// `response_format` in OpenAI's shape.
fn wire_response_format(format: &ResponseFormat) -> Result<serde_json::Value, ProviderError> {
    Ok(match format {
        ResponseFormat::Text => serde_json::json!({"type": "text"}),
        ResponseFormat::JsonObject => serde_json::json!({"type": "json_object"}),
        ResponseFormat::JsonSchema(format) => {
            let mut json_schema = serde_json::Map::new();
            json_schema.insert("name".into(), format.name.clone().into());
            if let Some(description) = &format.description {
                json_schema.insert("description".into(), description.clone().into());
            }
            if let Some(schema) = &format.schema {
                let schema = serde_json::from_str(schema).map_err(|err| {
                    ProviderError::Invalid(format!(
                        "the response format's schema is not JSON: {err}"
                    ))
                })?;
                json_schema.insert("schema".into(), schema);
            }
            if let Some(strict) = format.strict {
                json_schema.insert("strict".into(), strict.into());
            }
            serde_json::json!({"type": "json_schema", "json_schema": json_schema})
        }
    })
}

fn count(counter: &TokenCounter, transport: &Transport, text: &str) -> u32 {
    u32::try_from(counter.count(transport.endpoint.tokenizer, text)).unwrap_or(u32::MAX)
}

/// Follows `chat.completion.chunk`s to `data: [DONE]`.
struct ChunkParser {
    model: String,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    counted_prompt: u32,
    /// The sum of the deltas' counts: an estimate, kept for servers that ignore
    /// `include_usage`, without holding the answer's text.
    counted_completion: u32,
    counter: TokenCounter,
    tokenizer: promptgate_core::TokenizerKind,
}

impl ChunkParser {
    fn count_completion(&mut self, text: &str) {
        let tokens = u32::try_from(self.counter.count(self.tokenizer, text)).unwrap_or(u32::MAX);
        self.counted_completion = self.counted_completion.saturating_add(tokens);
    }

    fn done(&mut self) -> StreamEvent {
        StreamEvent::Done {
            usage: self.usage.unwrap_or(Usage {
                prompt_tokens: self.counted_prompt,
                completion_tokens: self.counted_completion,
            }),
            finish_reason: self
                .finish_reason
                .take()
                .unwrap_or_else(|| "stop".to_owned()),
            model: std::mem::take(&mut self.model),
        }
    }
}

impl StreamParser for ChunkParser {
    fn event(
        &mut self,
        event: &SseEvent,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<(), ProviderError> {
        if event.data.trim() == "[DONE]" {
            out.push_back(self.done());
            return Ok(());
        }
        let chunk: WireChunk = serde_json::from_str(&event.data)
            .map_err(|err| ProviderError::Invalid(format!("chat completion chunk: {err}")))?;
        if let Some(error) = chunk.error.filter(|e| !e.is_null()) {
            let body = serde_json::json!({ "error": error }).to_string();
            return Err(ProviderError::Upstream {
                status: None,
                message: error_message(reqwest::StatusCode::BAD_GATEWAY, body.as_bytes(), None),
            });
        }
        if let Some(model) = chunk.model.filter(|m| !m.is_empty()) {
            self.model = model;
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(Usage {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
            });
        }
        let Some(choice) = chunk.choices.and_then(|c| c.into_iter().next()) else {
            return Ok(());
        };
        if let Some(reason) = choice.finish_reason {
            self.finish_reason = Some(reason);
        }
        let Some(delta) = choice.delta else {
            return Ok(());
        };
        if let Some(text) = delta.content.filter(|text| !text.is_empty()) {
            self.count_completion(&text);
            out.push_back(StreamEvent::Delta(text));
        }
        for call in delta.tool_calls.unwrap_or_default() {
            let (name, arguments) = call
                .function
                .map_or((None, None), |function| (function.name, function.arguments));
            let arguments_delta = arguments.unwrap_or_default();
            self.count_completion(&arguments_delta);
            out.push_back(StreamEvent::ToolCall(ToolCallDelta {
                index: call.index,
                id: call.id,
                name,
                arguments_delta,
            }));
        }
        Ok(())
    }

    fn end(&mut self) -> Result<StreamEvent, ProviderError> {
        // A server that ends the body after the finishing chunk but without `[DONE]` has still
        // finished; one that ends it before has broken off.
        if self.finish_reason.is_some() {
            Ok(self.done())
        } else {
            Err(ProviderError::Upstream {
                status: None,
                message: "the stream ended before the answer was finished".to_owned(),
            })
        }
    }
}
