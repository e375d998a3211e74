//! OpenAI-compatible Chat Completions: `POST {base_url}/chat/completions`.
//!
//! Only the documented core of the format is used (`model`, `messages`, `temperature`,
//! `max_tokens`, `stream`, `stream_options.include_usage`), so vLLM, llama.cpp's server and
//! Ollama work as well as OpenAI. `max_tokens` rather than the newer `max_completion_tokens`
//! because every compatible server knows it; OpenAI still accepts it for its chat models.

use bytes::Bytes;
use promptgate_core::TokenCounter;
use reqwest::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};

use crate::relay::{StreamParser, relay};
use crate::sse::SseEvent;
use crate::transport::{Prepared, Transport, error_message, scrub};
use crate::{
    ChatRequest, ChatResponse, EventStream, Provider, ProviderError, Role, StreamEvent, Usage,
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
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
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
}

impl OpenAiProvider {
    pub(crate) fn new(transport: Transport, counter: TokenCounter) -> Self {
        OpenAiProvider { transport, counter }
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Result<Bytes, ProviderError> {
        let system = (!request.system.is_empty()).then(|| WireMessage {
            role: "system",
            content: &request.system,
        });
        let turns = request.messages.iter().map(|message| WireMessage {
            role: match message.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            },
            content: &message.content,
        });
        let wire = WireRequest {
            model: &self.transport.endpoint.model,
            messages: system.into_iter().chain(turns).collect(),
            temperature: request.temperature,
            max_tokens: request.max_output_tokens,
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
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
                .map(|m| self.counter.count(tokenizer, &m.content))
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
        let usage = match wire.usage {
            Some(usage) => Usage {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
            },
            None => Usage {
                prompt_tokens: self.counted_prompt(request),
                completion_tokens: count(&self.counter, &self.transport, &text),
            },
        };
        Ok(ChatResponse {
            text,
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
    fn event(&mut self, event: &SseEvent) -> Result<Option<StreamEvent>, ProviderError> {
        if event.data.trim() == "[DONE]" {
            return Ok(Some(self.done()));
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
            return Ok(None);
        };
        if let Some(reason) = choice.finish_reason {
            self.finish_reason = Some(reason);
        }
        match choice.delta.and_then(|d| d.content) {
            Some(text) if !text.is_empty() => {
                let tokens =
                    u32::try_from(self.counter.count(self.tokenizer, &text)).unwrap_or(u32::MAX);
                self.counted_completion = self.counted_completion.saturating_add(tokens);
                Ok(Some(StreamEvent::Delta(text)))
            }
            _ => Ok(None),
        }
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
