//! Tools (function calling) and structured output, typed: a version's tool choice and response
//! format as small enums that convert to the contract's JSON (shared/API.md, "Tools and
//! structured output"; `docs/tools.md`), so that a typo is a compile error rather than the
//! gateway's 400.

use promptgate_api::{self as api, FunctionDefinition, JsonSchemaSpec, Tool};
use serde_json::{Value, json};

/// Whether and which tool the model must call: a version's `toolChoice`.
///
/// ```
/// use promptgate_client::ToolChoice;
/// assert_eq!(ToolChoice::Auto.to_wire(), serde_json::json!("auto"));
/// assert_eq!(
///     ToolChoice::Function("get_order".into()).to_wire(),
///     serde_json::json!({"type": "function", "function": {"name": "get_order"}})
/// );
/// assert_eq!(ToolChoice::parse("required"), ToolChoice::Required);
/// assert_eq!(ToolChoice::parse("get_order"), ToolChoice::Function("get_order".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides (OpenAI's default when tools are given).
    Auto,
    /// The model calls no tool, though it sees them.
    None,
    /// The model must call one tool or more.
    Required,
    /// The model must call this function, one of the version's tools.
    Function(String),
}

impl ToolChoice {
    /// `auto`, `none` and `required` are those choices; any other word names a function (the
    /// gateway refuses a name that is none of the version's tools, naming `toolChoice`).
    pub fn parse(text: &str) -> Self {
        match text {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            name => ToolChoice::Function(name.to_owned()),
        }
    }

    /// The contract's JSON: a word, or `{"type": "function", "function": {"name": …}}`.
    pub fn to_wire(&self) -> Value {
        match self {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Function(name) => {
                json!({"type": "function", "function": {"name": name}})
            }
        }
    }

    /// The choice a version shows (`Prompt::tool_choice`, `PromptVersion::tool_choice`);
    /// `None` for JSON of no known shape.
    pub fn from_wire(value: &Value) -> Option<Self> {
        match value {
            Value::String(word) => match word.as_str() {
                "auto" | "none" | "required" => Some(ToolChoice::parse(word)),
                _ => None,
            },
            Value::Object(_) => value["function"]["name"]
                .as_str()
                .map(|name| ToolChoice::Function(name.to_owned())),
            _ => None,
        }
    }
}

impl std::fmt::Display for ToolChoice {
    /// `auto`, `none`, `required`, or `function NAME`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToolChoice::Auto => f.write_str("auto"),
            ToolChoice::None => f.write_str("none"),
            ToolChoice::Required => f.write_str("required"),
            ToolChoice::Function(name) => write!(f, "function {name}"),
        }
    }
}

/// The form a version's output must take: its `responseFormat`. With a JSON form the gateway
/// checks each output and answers `parsed` (or `parsed: null` with `outputErrors`).
///
/// ```
/// use promptgate_client::OutputFormat;
/// use serde_json::json;
/// let format = OutputFormat::json_schema(
///     "order",
///     json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}),
///     true,
/// );
/// let wire = serde_json::to_value(format.to_wire()).unwrap();
/// assert_eq!(wire["type"], "json_schema");
/// assert_eq!(wire["json_schema"]["name"], "order");
/// assert_eq!(wire["json_schema"]["strict"], true);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum OutputFormat {
    /// Free text (what a version without a response format gives, stated explicitly).
    Text,
    /// Any valid JSON.
    JsonObject,
    /// JSON matching a named JSON Schema.
    JsonSchema(JsonSchemaSpec),
}

impl OutputFormat {
    /// JSON matching `schema`, named `name` (`[A-Za-z0-9_-]{1,64}`); `strict` is OpenAI's
    /// strict mode.
    pub fn json_schema(name: &str, schema: Value, strict: bool) -> Self {
        OutputFormat::JsonSchema(JsonSchemaSpec {
            name: Some(name.to_owned()),
            description: None,
            schema: Some(schema),
            strict: Some(strict),
        })
    }

    /// The format a version shows (`Prompt::response_format`); `None` for a `type` this SDK
    /// does not know, or `json_schema` without its spec.
    pub fn from_wire(format: &api::ResponseFormat) -> Option<Self> {
        match (format.kind.as_deref()?, &format.json_schema) {
            ("text", _) => Some(OutputFormat::Text),
            ("json_object", _) => Some(OutputFormat::JsonObject),
            ("json_schema", Some(spec)) => Some(OutputFormat::JsonSchema(spec.clone())),
            _ => None,
        }
    }

    /// The contract's `responseFormat`.
    pub fn to_wire(&self) -> api::ResponseFormat {
        let (kind, spec) = match self {
            OutputFormat::Text => ("text", None),
            OutputFormat::JsonObject => ("json_object", None),
            OutputFormat::JsonSchema(spec) => ("json_schema", Some(spec.clone())),
        };
        api::ResponseFormat {
            kind: Some(kind.to_owned()),
            json_schema: spec,
        }
    }
}

/// One function tool in the contract's shape, `{"type": "function", "function": {…}}`:
/// `parameters` is the arguments' JSON Schema (the gateway checks it, naming
/// `tools[i].function.parameters`).
///
/// ```
/// use promptgate_client::function_tool;
/// let tool = function_tool("get_order", "Looks an order up by its id.",
///     serde_json::json!({"type": "object", "properties": {"id": {"type": "string"}}}));
/// assert_eq!(serde_json::to_value(&tool).unwrap()["function"]["name"], "get_order");
/// ```
pub fn function_tool(name: &str, description: &str, parameters: Value) -> Tool {
    Tool {
        kind: Some("function".to_owned()),
        function: Some(FunctionDefinition {
            name: Some(name.to_owned()),
            description: Some(description.to_owned()).filter(|d| !d.is_empty()),
            parameters: Some(parameters),
            strict: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_choices_round_trip_through_the_wire() {
        for choice in [
            ToolChoice::Auto,
            ToolChoice::None,
            ToolChoice::Required,
            ToolChoice::Function("get_order".into()),
        ] {
            assert_eq!(ToolChoice::from_wire(&choice.to_wire()), Some(choice));
        }
        assert_eq!(ToolChoice::from_wire(&json!("sometimes")), None);
        assert_eq!(ToolChoice::from_wire(&json!(3)), None);
    }

    #[test]
    fn output_formats_are_the_contracts_shapes() {
        let text = serde_json::to_value(OutputFormat::Text.to_wire()).unwrap();
        assert_eq!(text, json!({"type": "text"}));
        let object = serde_json::to_value(OutputFormat::JsonObject.to_wire()).unwrap();
        assert_eq!(object, json!({"type": "json_object"}));
        let schema = json!({"type": "object"});
        let named = OutputFormat::json_schema("order", schema.clone(), false);
        for format in [OutputFormat::Text, OutputFormat::JsonObject, named.clone()] {
            assert_eq!(OutputFormat::from_wire(&format.to_wire()), Some(format));
        }
        assert_eq!(
            OutputFormat::from_wire(&api::ResponseFormat::default()),
            None
        );
        assert_eq!(
            serde_json::to_value(named.to_wire()).unwrap(),
            json!({"type": "json_schema", "json_schema": {"name": "order", "schema": schema, "strict": false}})
        );
    }

    #[test]
    fn a_function_tool_without_description_leaves_it_out() {
        let tool = function_tool("ping", "", json!({"type": "object"}));
        assert_eq!(
            serde_json::to_value(tool).unwrap(),
            json!({"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}})
        );
    }
}
