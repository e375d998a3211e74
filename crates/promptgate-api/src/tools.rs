//! Tools (function calling) and structured output in the contract's shapes, which are OpenAI's:
//! a version's `tools`, `toolChoice` and `responseFormat`, the tool calls an answer and a
//! conversation carry, and what the output check found.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One tool a model may call: `{"type": "function", "function": {…}}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct Tool {
    /// `function` (the only kind).
    #[serde(rename = "type", default)]
    #[schema(required = true, value_type = String)]
    pub kind: Option<String>,
    /// The function.
    #[serde(default)]
    #[schema(required = true)]
    pub function: Option<FunctionDefinition>,
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct FunctionDefinition {
    /// `[A-Za-z0-9_-]{1,64}`, unique within the version.
    #[serde(default)]
    #[schema(required = true, value_type = String)]
    pub name: Option<String>,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The arguments' JSON Schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<serde_json::Value>,
    /// OpenAI's strict mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `responseFormat`: `{"type": "text"}`, `{"type": "json_object"}` or `{"type":
/// "json_schema", "json_schema": {…}}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct ResponseFormat {
    /// `text`, `json_object` or `json_schema`.
    #[serde(rename = "type", default)]
    #[schema(required = true, value_type = String)]
    pub kind: Option<String>,
    /// The schema, with `json_schema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<JsonSchemaSpec>,
}

/// A named JSON Schema for the output.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct JsonSchemaSpec {
    /// `[A-Za-z0-9_-]{1,64}`.
    #[serde(default)]
    #[schema(required = true, value_type = String)]
    pub name: Option<String>,
    /// What the output is, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON Schema the output must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub schema: Option<serde_json::Value>,
    /// OpenAI's strict mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// A call the model made: in an answer's `toolCalls`, and in an assistant turn of `messages`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct ToolCall {
    /// The call's id; the `tool` turn with its result names it as `toolCallId`.
    #[serde(default)]
    #[schema(required = true, value_type = String)]
    pub id: Option<String>,
    /// The function called.
    #[serde(default)]
    #[schema(required = true, value_type = String)]
    pub name: Option<String>,
    /// The arguments as JSON text.
    #[serde(default)]
    #[schema(required = true, value_type = String)]
    pub arguments: Option<String>,
}

/// A `tool_call` event of a streamed invocation: a piece of one call. The first piece of a call
/// carries its `id` and `name`; the `argumentsDelta` of every piece of one `index`, joined,
/// are its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamToolCall {
    /// Which call of the answer (0 for the first).
    pub index: u32,
    /// The call's id, on its first piece.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The function, on its first piece.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The next piece of the arguments' JSON text.
    pub arguments_delta: String,
}

/// One way the output breaks the version's `responseFormat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OutputError {
    /// Where in the output, as a JSON Pointer (`/items/0/qty`; empty for the whole output).
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

/// A share of invocations with its 95% confidence interval (Wilson's score interval).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RateEstimate {
    /// Invocations checked.
    pub count: u64,
    /// Of which passed.
    pub valid: u64,
    /// valid / count.
    pub rate: f64,
    /// The 95% confidence interval of the rate, low then high.
    pub ci95: [f64; 2],
}
