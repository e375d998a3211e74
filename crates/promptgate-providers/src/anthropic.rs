//! Anthropic Messages: `POST {base_url}/v1/messages` with `x-api-key` and `anthropic-version`.
//!
//! The system prompt is the top-level `system` field (the Messages API has no system role),
//! and `max_tokens` is required, so a request without a limit gets
//! [`ANTHROPIC_DEFAULT_MAX_TOKENS`](crate::ANTHROPIC_DEFAULT_MAX_TOKENS).

use bytes::Bytes;
use reqwest::header::HeaderName;
use serde::{Deserialize, Serialize};

use crate::relay::{StreamParser, relay};
use crate::sse::SseEvent;
use crate::transport::{Prepared, Transport, scrub};
use crate::{
    ANTHROPIC_DEFAULT_MAX_TOKENS, ChatRequest, ChatResponse, EventStream, Provider, ProviderError,
    Role, StreamEvent, Usage,
};

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
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
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
    ContentBlockDelta {
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
    /// `ping`, `content_block_start`, `content_block_stop`, and event types added later, which
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
struct WireDelta {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
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
        let wire = WireRequest {
            model: &self.transport.endpoint.model,
            system: &request.system,
            messages: request
                .messages
                .iter()
                .map(|message| WireMessage {
                    role: match message.role {
                        Role::User => "user",
                        Role::Assistant => "assistant",
                    },
                    content: &message.content,
                })
                .collect(),
            max_tokens: request
                .max_output_tokens
                .unwrap_or(ANTHROPIC_DEFAULT_MAX_TOKENS),
            temperature: request.temperature,
            stream,
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
        let text = wire
            .content
            .iter()
            .filter(|block| block.kind == "text")
            .map(|block| block.text.as_str())
            .collect();
        Ok(ChatResponse {
            text,
            usage: Usage {
                prompt_tokens: wire.usage.prompt_tokens().unwrap_or(0),
                completion_tokens: wire.usage.output_tokens.unwrap_or(0),
            },
            finish_reason: normalise_stop_reason(wire.stop_reason.as_deref()),
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
        let parser = EventParser {
            model: self.transport.endpoint.model.clone(),
            usage: Usage::default(),
            stop_reason: None,
        };
        Ok(relay(
            response,
            parser,
            self.transport.timeout(),
            prepared.key().map(str::to_owned),
        ))
    }
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
}

impl EventParser {
    fn done(&mut self) -> StreamEvent {
        StreamEvent::Done {
            usage: self.usage,
            finish_reason: normalise_stop_reason(self.stop_reason.as_deref()),
            model: std::mem::take(&mut self.model),
        }
    }
}

impl StreamParser for EventParser {
    fn event(&mut self, event: &SseEvent) -> Result<Option<StreamEvent>, ProviderError> {
        let wire: WireEvent = serde_json::from_str(&event.data)
            .map_err(|err| ProviderError::Invalid(format!("stream event: {err}")))?;
        match wire {
            WireEvent::MessageStart { message } => {
                self.model = message.model;
                self.usage.prompt_tokens = message.usage.prompt_tokens().unwrap_or(0);
                self.usage.completion_tokens = message.usage.output_tokens.unwrap_or(0);
                Ok(None)
            }
            WireEvent::ContentBlockDelta { delta } if delta.kind == "text_delta" => {
                Ok((!delta.text.is_empty()).then_some(StreamEvent::Delta(delta.text)))
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
                Ok(None)
            }
            WireEvent::MessageStop => Ok(Some(self.done())),
            WireEvent::Error { error } => {
                let body = serde_json::json!({ "error": error }).to_string();
                Err(ProviderError::Upstream {
                    status: None,
                    message: crate::transport::error_message(
                        reqwest::StatusCode::BAD_GATEWAY,
                        body.as_bytes(),
                        None,
                    ),
                })
            }
            WireEvent::ContentBlockDelta { .. } | WireEvent::Other => Ok(None),
        }
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

    #[test]
    fn message_delta_usage_is_cumulative() {
        let mut parser = EventParser {
            model: "configured".to_owned(),
            usage: Usage::default(),
            stop_reason: None,
        };
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
        let out: Vec<_> = events
            .iter()
            .filter_map(|data| {
                parser
                    .event(&SseEvent {
                        event: String::new(),
                        data: (*data).to_owned(),
                    })
                    .unwrap()
            })
            .collect();
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
