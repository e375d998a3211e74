//! Tools (function calling) and structured output, in OpenAI's terms, which are the contract's.
//!
//! These are the provider-neutral values a version owns and an invocation carries: the tool
//! definitions a model may call, how it must choose among them, the form its output must take,
//! and the tool calls it made. Like the rest of core they read no JSON: a JSON Schema and a
//! call's arguments are kept as the JSON text they arrived as, and the layers that parse JSON
//! (the server, the providers) interpret it.

/// The most tools one version or request may define (OpenAI's own limit).
pub const MAX_TOOLS: usize = 128;

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolDefinition {
    /// The function's name: what a tool call names and `toolChoice` may force.
    pub name: String,
    /// What it does, for the model; none leaves it out.
    pub description: Option<String>,
    /// The arguments' JSON Schema as compact JSON text; none: the function takes no arguments
    /// the provider is told about.
    pub parameters: Option<String>,
    /// OpenAI's strict mode (the arguments follow the schema exactly); none leaves it out.
    pub strict: Option<bool>,
}

/// How the model must choose among the tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides whether to call a tool.
    Auto,
    /// The model calls no tool.
    None,
    /// The model must call at least one tool.
    Required,
    /// The model must call this function.
    Function(String),
}

/// The form the model's final output must take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseFormat {
    /// Free text (the default).
    Text,
    /// Any valid JSON object.
    JsonObject,
    /// JSON that the given schema accepts.
    JsonSchema(JsonSchemaFormat),
}

/// `responseFormat` `json_schema`: a named schema for the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonSchemaFormat {
    /// The schema's name (OpenAI requires one; it names the forced tool on Anthropic).
    pub name: String,
    /// What the output is, for the model; none leaves it out.
    pub description: Option<String>,
    /// The JSON Schema as compact JSON text; none accepts any JSON.
    pub schema: Option<String>,
    /// OpenAI's strict mode; none leaves it out.
    pub strict: Option<bool>,
}

/// A call the model made, or one an earlier assistant turn holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// The provider's id of the call; a tool result names it.
    pub id: String,
    /// The function called.
    pub name: String,
    /// The arguments as the model wrote them: JSON text, normally an object.
    pub arguments: String,
}
