//! What the tests share: a request, fixed keys, and each HTTP provider's fixtures.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use promptgate_core::{ModelEndpoint, ProviderKind, TokenCounter};
use promptgate_providers::{
    ChatMessage, ChatRequest, EventStream, KeySource, Provider, ProviderError, Role, StreamEvent,
    Usage, provider_with_keys,
};

use crate::fake::Fake;

/// The environment variable name the test endpoints configure; [`TestKeys`] answers for it,
/// so no test touches the process environment.
pub const KEY_VAR: &str = "PROMPTGATE_TEST_PROVIDER_KEY";
pub const KEY: &str = "sk-test-0123456789";

/// Keys from a map instead of the environment.
pub struct TestKeys(pub HashMap<String, String>);

impl KeySource for TestKeys {
    fn key(&self, variable: &str) -> Option<String> {
        self.0.get(variable).cloned()
    }
}

pub fn keys(key: &str) -> Arc<dyn KeySource> {
    Arc::new(TestKeys(HashMap::from([(
        KEY_VAR.to_owned(),
        key.to_owned(),
    )])))
}

/// A conversation with a system prompt, one earlier exchange and the user's input.
pub fn request() -> ChatRequest {
    ChatRequest {
        system: "You are a terse support agent.".to_owned(),
        messages: vec![
            ChatMessage {
                role: Role::User,
                content: "Hi".to_owned(),
            },
            ChatMessage {
                role: Role::Assistant,
                content: "Hello! How can I help?".to_owned(),
            },
            ChatMessage {
                role: Role::User,
                content: "Where is my order?".to_owned(),
            },
        ],
        temperature: 0.25,
        max_output_tokens: Some(64),
    }
}

/// Reads a stream to its end.
pub async fn collect(stream: EventStream) -> Vec<Result<StreamEvent, ProviderError>> {
    stream.collect().await
}

/// The two HTTP providers, for the tests every provider must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    OpenAi,
    Anthropic,
}

pub const FLAVORS: [Flavor; 2] = [Flavor::OpenAi, Flavor::Anthropic];

impl Flavor {
    pub fn endpoint(self, base: &str) -> ModelEndpoint {
        let (kind, base_url, model) = match self {
            Flavor::OpenAi => (ProviderKind::OpenAi, format!("{base}/v1"), "gpt-4o-mini"),
            Flavor::Anthropic => (
                ProviderKind::Anthropic,
                base.to_owned(),
                "claude-3-5-sonnet-latest",
            ),
        };
        let mut endpoint =
            ModelEndpoint::new("test/model", kind, &base_url, model, Some(KEY_VAR), 128_000);
        endpoint.timeout_ms = 10_000;
        endpoint.max_retries = 2;
        endpoint
    }

    pub fn provider(self, endpoint: &ModelEndpoint) -> Arc<dyn Provider> {
        provider_with_keys(
            endpoint,
            promptgate_providers::http_client().unwrap(),
            TokenCounter::load(),
            keys(KEY),
        )
    }

    pub fn start_provider(self, fake: &Fake) -> Arc<dyn Provider> {
        self.provider(&self.endpoint(&fake.url))
    }

    pub fn path(self) -> &'static str {
        match self {
            Flavor::OpenAi => "/v1/chat/completions",
            Flavor::Anthropic => "/v1/messages",
        }
    }

    /// The model name the fixtures report (a dated snapshot, unlike the configured alias).
    pub fn reported_model(self) -> &'static str {
        match self {
            Flavor::OpenAi => "gpt-4o-mini-2024-07-18",
            Flavor::Anthropic => "claude-3-5-sonnet-20241022",
        }
    }

    /// A successful answer: "Your order ships today.", 31 prompt and 6 completion tokens.
    pub fn answer(self) -> String {
        match self {
            Flavor::OpenAi => serde_json::json!({
                "id": "chatcmpl-abc123", "object": "chat.completion", "created": 1_700_000_000,
                "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_1",
                "choices": [{"index": 0,
                    "message": {"role": "assistant", "content": "Your order ships today.", "refusal": null},
                    "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 31, "completion_tokens": 6, "total_tokens": 37}
            }),
            Flavor::Anthropic => serde_json::json!({
                "id": "msg_01", "type": "message", "role": "assistant",
                "model": "claude-3-5-sonnet-20241022",
                "content": [{"type": "text", "text": "Your order ships today."}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": 31, "output_tokens": 6}
            }),
        }
        .to_string()
    }

    /// The provider's error body.
    pub fn error(self, message: &str) -> String {
        match self {
            Flavor::OpenAi => serde_json::json!({
                "error": {"message": message, "type": "server_error", "param": null, "code": null}
            }),
            Flavor::Anthropic => serde_json::json!({
                "type": "error", "error": {"type": "api_error", "message": message}
            }),
        }
        .to_string()
    }

    /// The error `error(message)` becomes.
    pub fn error_text(self, message: &str) -> String {
        match self {
            Flavor::OpenAi => format!("server_error: {message}"),
            Flavor::Anthropic => format!("api_error: {message}"),
        }
    }

    /// The stream up to and including the first text delta, "Hel".
    pub fn stream_start(self) -> String {
        match self {
            Flavor::OpenAi => [
                openai_chunk(serde_json::json!({"role": "assistant", "content": ""}), None),
                openai_chunk(serde_json::json!({"content": "Hel"}), None),
            ]
            .concat(),
            Flavor::Anthropic => [
                anthropic_event("message_start", serde_json::json!({
                    "type": "message_start",
                    "message": {"id": "msg_01", "type": "message", "role": "assistant", "content": [],
                        "model": "claude-3-5-sonnet-20241022", "stop_reason": null,
                        "stop_sequence": null, "usage": {"input_tokens": 31, "output_tokens": 1}}
                })),
                anthropic_event("content_block_start", serde_json::json!({
                    "type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}
                })),
                anthropic_event("ping", serde_json::json!({"type": "ping"})),
                anthropic_event("content_block_delta", serde_json::json!({
                    "type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": "Hel"}
                })),
            ]
            .concat(),
        }
    }

    /// The rest of the stream: "lo", the stop reason, usage (31 + 2) and the end.
    pub fn stream_rest(self) -> String {
        match self {
            Flavor::OpenAi => [
                openai_chunk(serde_json::json!({"content": "lo"}), None),
                openai_chunk(serde_json::json!({}), Some("stop")),
                format!(
                    "data: {}\n\n",
                    serde_json::json!({
                        "id": "chatcmpl-abc123", "object": "chat.completion.chunk",
                        "created": 1_700_000_000, "model": "gpt-4o-mini-2024-07-18",
                        "system_fingerprint": "fp_1", "choices": [],
                        "usage": {"prompt_tokens": 31, "completion_tokens": 2, "total_tokens": 33}
                    })
                ),
                "data: [DONE]\n\n".to_owned(),
            ]
            .concat(),
            Flavor::Anthropic => [
                anthropic_event(
                    "content_block_delta",
                    serde_json::json!({
                        "type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": "lo"}
                    }),
                ),
                anthropic_event(
                    "content_block_stop",
                    serde_json::json!({
                        "type": "content_block_stop", "index": 0
                    }),
                ),
                anthropic_event(
                    "message_delta",
                    serde_json::json!({
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                        "usage": {"output_tokens": 2}
                    }),
                ),
                anthropic_event("message_stop", serde_json::json!({"type": "message_stop"})),
            ]
            .concat(),
        }
    }

    /// What the whole stream relays after "Hel".
    pub fn expected_rest(self) -> Vec<StreamEvent> {
        vec![
            StreamEvent::Delta("lo".to_owned()),
            StreamEvent::Done {
                usage: Usage {
                    prompt_tokens: 31,
                    completion_tokens: 2,
                },
                finish_reason: "stop".to_owned(),
                model: self.reported_model().to_owned(),
            },
        ]
    }
}

fn openai_chunk(delta: serde_json::Value, finish_reason: Option<&str>) -> String {
    let chunk = serde_json::json!({
        "id": "chatcmpl-abc123", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        "usage": null
    });
    format!("data: {chunk}\n\n")
}

fn anthropic_event(name: &str, data: serde_json::Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}
