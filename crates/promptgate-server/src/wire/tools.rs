//! Tools and output formats between the contract's shapes (OpenAI's) and the core's: a
//! version's `tools`, `toolChoice` and `responseFormat` (also `/v1`'s `tools`, `tool_choice`
//! and `response_format`, which have the same shapes), and tool calls.

use promptgate_api as api;
use promptgate_core::tools::{JsonSchemaDraft, ResponseFormatDraft, ToolChoiceDraft, ToolDraft};
use promptgate_core::{ResponseFormat, ToolCall, ToolChoice, ToolDefinition, ToolSettings};
use serde_json::{Value, json};

/// `tools` as sent.
pub fn tool_drafts(list: Vec<api::Tool>) -> Vec<ToolDraft> {
    list.into_iter()
        .map(|tool| {
            let has_function = tool.function.is_some();
            let function = tool.function.unwrap_or_default();
            ToolDraft {
                kind: tool.kind,
                name: function.name,
                has_function,
                description: function.description,
                parameters: schema_text(function.parameters),
                strict: function.strict,
            }
        })
        .collect()
}

/// `toolChoice` as sent: a word, or `{"type": "function", "function": {"name": …}}`.
pub fn tool_choice_draft(value: &Value) -> ToolChoiceDraft {
    match value {
        Value::String(word) => ToolChoiceDraft::Word(word.clone()),
        Value::Object(object) if object.get("type").and_then(Value::as_str) == Some("function") => {
            ToolChoiceDraft::Function(
                object
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            )
        }
        _ => ToolChoiceDraft::Malformed,
    }
}

/// `responseFormat` as sent.
pub fn response_format_draft(format: api::ResponseFormat) -> ResponseFormatDraft {
    ResponseFormatDraft {
        kind: format.kind,
        json_schema: format.json_schema.map(|spec| JsonSchemaDraft {
            name: spec.name,
            description: spec.description,
            schema: schema_text(spec.schema),
            strict: spec.strict,
        }),
    }
}

/// A schema as the compact JSON text core keeps; `null` is no schema.
fn schema_text(schema: Option<Value>) -> Option<String> {
    schema.filter(|s| !s.is_null()).map(|s| s.to_string())
}

/// A version's tools as the contract shows them.
pub fn wire_tools(tools: &[ToolDefinition]) -> Vec<api::Tool> {
    tools
        .iter()
        .map(|tool| api::Tool {
            kind: Some("function".to_owned()),
            function: Some(api::FunctionDefinition {
                name: Some(tool.name.clone()),
                description: tool.description.clone(),
                parameters: tool.parameters.as_deref().map(json_value),
                strict: tool.strict,
            }),
        })
        .collect()
}

/// A tool choice as the contract shows it.
pub fn wire_tool_choice(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Function(name) => json!({"type": "function", "function": {"name": name}}),
        word => Value::String(word.word().unwrap_or("auto").to_owned()),
    }
}

/// An output format as the contract shows it.
pub fn wire_response_format(format: &ResponseFormat) -> api::ResponseFormat {
    let (kind, json_schema) = match format {
        ResponseFormat::Text => ("text", None),
        ResponseFormat::JsonObject => ("json_object", None),
        ResponseFormat::JsonSchema(spec) => (
            "json_schema",
            Some(api::JsonSchemaSpec {
                name: Some(spec.name.clone()),
                description: spec.description.clone(),
                schema: spec.schema.as_deref().map(json_value),
                strict: spec.strict,
            }),
        ),
    };
    api::ResponseFormat {
        kind: Some(kind.to_owned()),
        json_schema,
    }
}

/// The three parts of a version's settings as the contract shows them.
pub fn wire_tool_settings(
    settings: &ToolSettings,
) -> (Vec<api::Tool>, Option<Value>, Option<api::ResponseFormat>) {
    (
        wire_tools(&settings.tools),
        settings.tool_choice.as_ref().map(wire_tool_choice),
        settings.response_format.as_ref().map(wire_response_format),
    )
}

/// Tool calls as the contract shows them.
pub fn wire_tool_calls(calls: Vec<ToolCall>) -> Vec<api::ToolCall> {
    calls
        .into_iter()
        .map(|call| api::ToolCall {
            id: Some(call.id),
            name: Some(call.name),
            arguments: Some(call.arguments),
        })
        .collect()
}

/// Stored JSON text as a value (always JSON the gateway parsed; anything else shows as a
/// string rather than being lost).
fn json_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}
