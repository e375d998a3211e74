//! The model providers behind promptgate's invocations: OpenAI-compatible Chat Completions,
//! Anthropic Messages and a deterministic offline provider, all behind one [`Provider`] trait.
//!
//! The gateway builds one provider per model endpoint with [`provider_for`] and shares one
//! pooled HTTP client ([`http_client`]) between them, so connections to a provider are kept
//! alive across invocations.
//!
//! Every network call goes through one retry loop: each attempt has the endpoint's
//! `timeout_ms`; a 429 (honouring `Retry-After`), a 5xx, a connection error or a timed-out
//! attempt is retried up to `max_retries` times with exponential backoff and jitter, all within
//! an overall deadline of `timeout_ms * (max_retries + 1)`. A stream is retried only until the
//! provider has accepted it; once text may have reached the caller, a failure ends the stream.
//!
//! API keys are read from the environment variable the endpoint names at the moment of each
//! call, so a rotated key is picked up without a restart. A key never appears in an error, a
//! log line or a `Debug` output: it is only ever placed in a request header marked sensitive,
//! and every error a provider returns has its text cut to 300 characters and every piece of
//! 8 or more characters of the key masked (`promptgate_core::credentials::mask_secrets`). The
//! provider's own error text is passed on (it says why a call failed), but only so masked.
//!
//! Redirects are never followed ([`http_client`]): a redirect would carry the key, in
//! Anthropic's `x-api-key` header, to wherever it points. A redirect answer is an error naming
//! its status.
//!
//! Architecture invariant: this crate speaks the providers' wire formats and nothing else; it
//! knows nothing of prompts, guardrails or the gateway's own API. Its serde types stay private.

#![warn(missing_docs)]

mod anthropic;
mod builtin;
mod error;
mod json;
mod moderation;
mod openai;
mod relay;
mod sse;
mod transport;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use promptgate_core::{JsonSchemaFormat, ResponseFormat, ToolCall, ToolChoice, ToolDefinition};
use promptgate_core::{ModelEndpoint, ProviderKind, TokenCounter};

pub use builtin::OFFLINE_LABEL;
pub use error::ProviderError;
pub use moderation::{DEFAULT_MODERATION_MODEL, Moderation, ModerationConfig};

/// Who wrote a turn of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The person talking to the model.
    User,
    /// The model.
    Assistant,
    /// The caller's answer to one of the model's tool calls.
    Tool,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// What was written; for a tool turn, the tool's result. May be empty on an assistant turn
    /// that only calls tools.
    pub content: String,
    /// The tool calls an assistant turn made, in order; empty on other turns.
    pub tool_calls: Vec<ToolCall>,
    /// The call a tool turn answers; none on other turns.
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A turn that is only text (a user's or the model's).
    pub fn text(role: Role, content: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// The result of the tool call `tool_call_id`.
    pub fn tool_result(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(tool_call_id.into()),
        }
    }
}

/// One generation request, provider-neutral.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    /// The system prompt; empty for none.
    pub system: String,
    /// Earlier turns then the user input, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Sampling temperature, passed to the provider as it is.
    pub temperature: f64,
    /// The most tokens the answer may have; `None` leaves it to the provider (Anthropic, which
    /// requires a limit, gets [`ANTHROPIC_DEFAULT_MAX_TOKENS`]).
    pub max_output_tokens: Option<u32>,
    /// The functions the model may call; empty for none. Shared, because a version's tools are
    /// the same for every call.
    pub tools: Arc<[ToolDefinition]>,
    /// How the model must choose among `tools`; none leaves it to the provider (`auto`).
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may call several tools in one turn; none leaves it to the provider.
    pub parallel_tool_calls: Option<bool>,
    /// The form of the output; none (or `Text`) for free text.
    pub response_format: Option<Arc<ResponseFormat>>,
}

/// Token counts of one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Tokens the model read.
    pub prompt_tokens: u32,
    /// Tokens the model wrote.
    pub completion_tokens: u32,
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The answer; may be empty when the model only called tools. With a JSON response format
    /// it is the JSON text (on Anthropic, the forced output tool's input).
    pub text: String,
    /// The tools the model called, in order; empty when it called none.
    pub tool_calls: Vec<ToolCall>,
    /// Token counts, as the provider reported them (or counted locally when it reported none).
    pub usage: Usage,
    /// Why generation stopped, normalised to OpenAI's names: `stop`, `length`, `tool_calls`,
    /// `content_filter`; other reasons are passed through.
    pub finish_reason: String,
    /// The model, as the provider reported it.
    pub model: String,
}

/// A piece of a streamed tool call. The first piece of a call carries its `id` and `name`;
/// the call's arguments are the concatenation of its pieces' `arguments_delta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallDelta {
    /// Which call of the answer this piece belongs to, from 0, in the order the calls began.
    pub index: u32,
    /// The call's id, on its first piece.
    pub id: Option<String>,
    /// The function's name, on its first piece.
    pub name: Option<String>,
    /// The next piece of the arguments' JSON text (may be empty).
    pub arguments_delta: String,
}

/// One event of a streamed generation.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The next piece of the answer.
    Delta(String),
    /// The next piece of a tool call.
    ToolCall(ToolCallDelta),
    /// The generation finished; always the last event of a successful stream.
    Done {
        /// Token counts of the whole generation.
        usage: Usage,
        /// Why generation stopped, normalised as in [`ChatResponse::finish_reason`].
        finish_reason: String,
        /// The model, as the provider reported it.
        model: String,
    },
}

/// A streamed generation: deltas, then `Done`, or an error that ends it.
pub type EventStream = futures_util::stream::BoxStream<'static, Result<StreamEvent, ProviderError>>;

/// The `max_tokens` sent to Anthropic when the request sets no limit: Anthropic requires one.
pub const ANTHROPIC_DEFAULT_MAX_TOKENS: u32 = 1024;

/// A model provider.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + fmt::Debug {
    /// Generates the whole answer.
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError>;

    /// Streams deltas as they arrive from upstream (never buffers the whole answer). Dropping
    /// the stream cancels the upstream request (closes the connection).
    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError>;
}

/// Where providers find API keys, by the variable name an endpoint configures.
///
/// The gateway uses [`EnvKeys`]; an embedder that keeps keys in a secret store, or a test that
/// must not change the process environment, supplies its own.
pub trait KeySource: Send + Sync {
    /// The key stored under `variable`, or `None` when there is none.
    fn key(&self, variable: &str) -> Option<String>;
}

/// Keys from the process environment, read at each call so that a rotated key takes effect
/// without a restart. An empty variable counts as unset.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvKeys;

impl KeySource for EnvKeys {
    fn key(&self, variable: &str) -> Option<String> {
        std::env::var(variable).ok().filter(|key| !key.is_empty())
    }
}

/// Builds the provider for an endpoint, with keys from the process environment. `http` is
/// shared (one pool, keep-alive) by all providers; it should come from [`http_client`], whose
/// clients follow no redirects (a client that does would carry the key along).
pub fn provider_for(
    endpoint: &ModelEndpoint,
    http: reqwest::Client,
    counter: TokenCounter,
) -> Arc<dyn Provider> {
    provider_with_keys(endpoint, http, counter, Arc::new(EnvKeys))
}

/// Builds the provider for an endpoint, with keys from `keys`; `http` as for [`provider_for`].
pub fn provider_with_keys(
    endpoint: &ModelEndpoint,
    http: reqwest::Client,
    counter: TokenCounter,
    keys: Arc<dyn KeySource>,
) -> Arc<dyn Provider> {
    match endpoint.provider {
        ProviderKind::OpenAi => Arc::new(openai::OpenAiProvider::new(
            transport::Transport::new(endpoint, http, keys),
            counter,
        )),
        ProviderKind::Anthropic => Arc::new(anthropic::AnthropicProvider::new(
            transport::Transport::new(endpoint, http, keys),
        )),
        ProviderKind::Builtin => Arc::new(builtin::BuiltinProvider::new(endpoint, counter)),
    }
}

/// How long establishing a connection (TCP and TLS) may take. Kept short and separate from the
/// endpoint's timeout so that an unreachable host fails fast and leaves time for a retry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an idle pooled connection is kept; shorter than the idle timeouts providers' load
/// balancers apply, so the pool rarely hands out a connection the far end has already closed.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);

/// A reqwest client suited to providers: rustls, pooled, keep-alive, connect timeout; no
/// overall timeout (each endpoint sets its own per request, and a stream may outlive any fixed
/// limit); and no redirects: reqwest drops `Authorization` on a redirect to another host but
/// keeps every other header, Anthropic's `x-api-key` among them, so a provider (or anyone
/// who can make it answer 3xx) could have the key sent anywhere. A redirect answer becomes an
/// error naming its status instead.
pub fn http_client() -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_keepalive(Duration::from_secs(30))
        .tcp_nodelay(true)
        .user_agent(concat!("promptgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| ProviderError::Upstream {
            status: None,
            message: format!("could not build the HTTP client: {}", err.without_url()),
        })
}
