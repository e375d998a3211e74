//! The wire types of the OpenAI-compatible front door (`/v1/chat/completions`, `/v1/models`),
//! as OpenAI's Chat Completions API defines them, so that the official SDKs work unchanged.
//! Request fields are optional (and loosely typed where OpenAI accepts several shapes) so that
//! the gateway can name each problem itself, in OpenAI's error shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The model-name prefix that selects a managed prompt: `prompt:NAME` or `prompt:NAME@VERSION`.
pub const PROMPT_MODEL_PREFIX: &str = "prompt:";

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    /// `prompt:NAME` or `prompt:NAME@VERSION`.
    #[serde(default)]
    pub model: Option<String>,
    /// The conversation; the last message must be the user's, or a tool result.
    #[serde(default)]
    pub messages: Option<Vec<ChatMessage>>,
    /// Used only when the prompt allows caller settings.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// The most completion tokens (older name).
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// The most completion tokens (newer name; wins over `max_tokens`).
    #[serde(default)]
    pub max_completion_tokens: Option<i64>,
    /// Answer as server-sent chunks.
    #[serde(default)]
    pub stream: Option<bool>,
    /// `{"include_usage": true}` adds a last chunk with the usage.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// The end user: the session key for sticky routing unless the `promptgate-session-id`
    /// header gives one.
    #[serde(default)]
    pub user: Option<String>,
    /// How many choices; only 1 is supported.
    #[serde(default)]
    pub n: Option<i64>,
    /// A string map, kept with the invocation's telemetry.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Function tools, in OpenAI's shape; used unless the version defines its own.
    #[serde(default)]
    pub tools: Option<Value>,
    /// `auto`, `none`, `required` or a named function; with the caller's tools only.
    #[serde(default)]
    pub tool_choice: Option<Value>,
    /// Whether the model may call several tools at once.
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    /// Not supported (refused unless empty).
    #[serde(default)]
    pub functions: Option<Value>,
    /// Not supported (refused unless `none`).
    #[serde(default)]
    pub function_call: Option<Value>,
    /// Not supported (refused when true).
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// `text`, `json_object` or `json_schema`; used unless the version defines its own.
    #[serde(default)]
    pub response_format: Option<Value>,
    /// An extension: a configured model endpoint's `ref` to use instead of the version's, when
    /// the prompt allows caller settings.
    #[serde(default)]
    pub model_endpoint: Option<String>,
    /// An extension: the managed prompt's template variables (the OpenAI SDKs send it with
    /// `extra_body={"prompt_variables": {...}}`).
    #[serde(default)]
    pub prompt_variables: Option<serde_json::Map<String, Value>>,
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamOptions {
    /// Send the usage in a last chunk with no choices.
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// One message of the conversation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool` (`function` is refused).
    #[serde(default)]
    pub role: Option<String>,
    /// A string, or an array of `{"type": "text", "text": …}` parts.
    #[serde(default)]
    pub content: Option<Value>,
    /// The calls an assistant message made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// The call a `tool` message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

/// A tool call in OpenAI's shape: `{"id", "type": "function", "function": {"name",
/// "arguments"}}`; in a streamed delta also `index`, with each part present only when new.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Which call (streamed deltas only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// The call's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Always `function`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The function and its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCall>,
}

/// The function of a tool call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// The function's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The arguments as JSON text (in a delta, the next piece of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// The answer of a non-streamed call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// The invocation's `responseId` (usable with `…/invocations/{responseId}/feedback`).
    pub id: String,
    /// Always `chat.completion`.
    pub object: String,
    /// Unix seconds.
    pub created: i64,
    /// The model that answered.
    pub model: String,
    /// Always null: the gateway has no fingerprint of the upstream.
    pub system_fingerprint: Option<String>,
    /// One choice.
    pub choices: Vec<Choice>,
    /// Token usage.
    pub usage: Usage,
    /// What the gateway did: prompt, version, guardrails, context fitting (an extension).
    pub promptgate: GatewayReport,
}

/// A choice of a non-streamed answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Choice {
    /// Always 0.
    pub index: u32,
    /// The assistant's message.
    pub message: AssistantMessage,
    /// Always null.
    pub logprobs: Option<Value>,
    /// `stop`, `length`, `tool_calls` or `content_filter`.
    pub finish_reason: String,
}

/// The assistant's message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: String,
    /// The output, after the output guardrails; null when the model only called tools.
    pub content: Option<String>,
    /// Always null.
    pub refusal: Option<String>,
    /// The calls the model made (left out when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
}

/// Token usage in OpenAI's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens.
    pub prompt_tokens: u32,
    /// Output tokens.
    pub completion_tokens: u32,
    /// Their sum.
    pub total_tokens: u32,
}

/// One chunk of a streamed answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    /// The same for every chunk of the answer.
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: String,
    /// Unix seconds.
    pub created: i64,
    /// The model.
    pub model: String,
    /// Always null.
    pub system_fingerprint: Option<String>,
    /// One choice, or none in the usage chunk.
    pub choices: Vec<ChunkChoice>,
    /// Present (null) on every chunk when usage was asked for, set on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<Usage>>,
    /// On the chunk that carries `finish_reason`: what the gateway did (an extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promptgate: Option<GatewayReport>,
}

/// A choice of a chunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// Always 0.
    pub index: u32,
    /// What is new.
    pub delta: Delta,
    /// Always null.
    pub logprobs: Option<Value>,
    /// Set on the last content chunk.
    pub finish_reason: Option<String>,
}

/// The new part of the message.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Delta {
    /// `assistant` on the first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Text; `Some(None)` is an explicit `null` (the role chunk before tool calls), `None`
    /// leaves the field out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Option<String>>,
    /// Pieces of tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
}

/// What the gateway did for this call (an extension field, ignored by OpenAI's SDKs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayReport {
    /// The invocation's id in telemetry.
    pub response_id: String,
    /// The prompt.
    pub prompt_id: String,
    /// The version that served.
    pub version: String,
    /// PII redactions by label, in the input and the output.
    pub guardrails: crate::GuardrailReport,
    /// What context fitting dropped.
    pub context: crate::ContextReport,
    /// Caller settings the prompt's policy ignored (`temperature`, `model_endpoint`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_params: Vec<String>,
}

/// `GET /v1/models`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    /// One model per active prompt.
    pub data: Vec<Model>,
}

/// A prompt as a model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    /// `prompt:NAME`.
    pub id: String,
    /// Always `model`.
    pub object: String,
    /// The prompt's creation, Unix seconds.
    pub created: i64,
    /// Always `promptgate`.
    pub owned_by: String,
}

/// OpenAI's error body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorObject,
}

/// OpenAI's error object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorObject {
    /// What went wrong.
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `permission_error`, `requests`,
    /// `server_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field concerned, if one.
    pub param: Option<String>,
    /// A stable code: `invalid_api_key`, `model_not_found`, `rate_limit_exceeded`, ….
    pub code: Option<String>,
}
