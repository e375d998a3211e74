//! Tools (function calling) and structured output, in OpenAI's terms, which are the contract's.
//!
//! These are the provider-neutral values a version owns and an invocation carries: the tool
//! definitions a model may call, how it must choose among them, the form its output must take,
//! and the tool calls it made. Like the rest of core they read no JSON: a JSON Schema and a
//! call's arguments are kept as the JSON text they arrived as, and the layers that parse JSON
//! (the server, the providers) interpret it.

use crate::template::SchemaCheck;
use crate::violation::Violation;

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

/// The longest tool description kept (OpenAI's own limit is 1,024 characters; Anthropic's is
/// larger): longer is refused rather than cut, so what the model sees is what was stored.
pub const MAX_TOOL_DESCRIPTION_CHARS: usize = 4_096;

/// The longest JSON Schema text one tool or output format may hold, in bytes.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;

/// Whether `name` is a function or schema name both providers accept: 1 to 64 of
/// `[A-Za-z0-9_-]`.
pub fn is_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One entry of `tools` as sent: every part optional so that each problem is reported.
#[derive(Debug, Clone, Default)]
pub struct ToolDraft {
    /// `type` (must be `function`).
    pub kind: Option<String>,
    /// `function.name`; none when `function` itself is missing.
    pub name: Option<String>,
    /// Whether `function` was present at all.
    pub has_function: bool,
    /// `function.description`.
    pub description: Option<String>,
    /// `function.parameters` as compact JSON text.
    pub parameters: Option<String>,
    /// `function.strict`.
    pub strict: Option<bool>,
}

/// `toolChoice` as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoiceDraft {
    /// A word: `auto`, `none`, `required` (anything else is refused).
    Word(String),
    /// `{"type": "function", "function": {"name": …}}`; none when the name is missing.
    Function(Option<String>),
    /// Any other shape.
    Malformed,
}

/// `responseFormat` as sent.
#[derive(Debug, Clone, Default)]
pub struct ResponseFormatDraft {
    /// `type`.
    pub kind: Option<String>,
    /// `json_schema`, when present.
    pub json_schema: Option<JsonSchemaDraft>,
}

/// `responseFormat.json_schema` as sent.
#[derive(Debug, Clone, Default)]
pub struct JsonSchemaDraft {
    /// `name`.
    pub name: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `schema` as compact JSON text.
    pub schema: Option<String>,
    /// `strict`.
    pub strict: Option<bool>,
}

/// The checked `tools`, `toolChoice` and `responseFormat` of one version or request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolSettings {
    /// The tools, in the order given.
    pub tools: Vec<ToolDefinition>,
    /// How the model must choose among them; none: the provider's default.
    pub tool_choice: Option<ToolChoice>,
    /// The output's form; none: free text.
    pub response_format: Option<ResponseFormat>,
}

impl ToolSettings {
    /// Whether nothing is set (a version without tools or output format).
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty() && self.tool_choice.is_none() && self.response_format.is_none()
    }

    /// The text whose tokens stand for the tool definitions and the output schema in
    /// `systemPromptTokens`: each tool's name, description and parameters schema, and the
    /// output schema's name, description and schema, one per line. Providers render tools
    /// into their own hidden prompt text, which they do not publish, so this is an estimate
    /// (`docs/tools.md` gives its error against OpenAI's reported counts).
    pub fn counted_text(&self) -> String {
        let mut text = String::new();
        for tool in &self.tools {
            push_line(&mut text, &tool.name);
            push_line(&mut text, tool.description.as_deref().unwrap_or(""));
            push_line(&mut text, tool.parameters.as_deref().unwrap_or(""));
        }
        if let Some(ResponseFormat::JsonSchema(format)) = &self.response_format {
            push_line(&mut text, &format.name);
            push_line(&mut text, format.description.as_deref().unwrap_or(""));
            push_line(&mut text, format.schema.as_deref().unwrap_or(""));
        }
        text
    }
}

fn push_line(text: &mut String, line: &str) {
    if !line.is_empty() {
        text.push_str(line);
        text.push('\n');
    }
}

/// Checks `tools`, `toolChoice` and `responseFormat` together (a choice must name a tool that
/// exists), with each field named as the door that sent it names it (`tools[2].function.name`,
/// `toolChoice` or `tool_choice`). Every problem at once; `schemas` checks each JSON Schema.
pub fn check_tool_settings(
    tools: &[ToolDraft],
    tool_choice: Option<&ToolChoiceDraft>,
    response_format: Option<&ResponseFormatDraft>,
    names: &ToolFieldNames,
    schemas: &dyn SchemaCheck,
) -> Result<ToolSettings, Vec<Violation>> {
    let mut violations = Vec::new();
    if tools.len() > MAX_TOOLS {
        violations.push(Violation::invalid(
            names.tools,
            format!("{} tools given; the limit is {MAX_TOOLS}", tools.len()),
        ));
        return Err(violations);
    }
    let mut checked = Vec::with_capacity(tools.len());
    for (i, draft) in tools.iter().enumerate() {
        if let Some(tool) = check_tool(i, draft, names.tools, schemas, &mut violations) {
            if checked.iter().any(|t: &ToolDefinition| t.name == tool.name) {
                violations.push(Violation::invalid(
                    format!("{}[{i}].function.name", names.tools),
                    format!(
                        "tool name {} is defined twice; tool names must be unique",
                        tool.name
                    ),
                ));
            }
            checked.push(tool);
        }
    }
    let tool_choice = tool_choice.and_then(|draft| {
        let choice = match draft {
            ToolChoiceDraft::Word(word) => match word.as_str() {
                "auto" => Some(ToolChoice::Auto),
                "none" => Some(ToolChoice::None),
                "required" => Some(ToolChoice::Required),
                _ => None,
            },
            ToolChoiceDraft::Function(Some(name)) => Some(ToolChoice::Function(name.clone())),
            ToolChoiceDraft::Function(None) | ToolChoiceDraft::Malformed => None,
        };
        let Some(choice) = choice else {
            violations.push(Violation::invalid(
                names.tool_choice,
                format!(
                    "{} must be auto, none, required, or an object of type function naming the function (function.name)",
                    names.tool_choice
                ),
            ));
            return None;
        };
        if tools.is_empty() && choice != ToolChoice::None && choice != ToolChoice::Auto {
            violations.push(Violation::invalid(
                names.tool_choice,
                format!("{} needs tools to choose from; none are defined", names.tool_choice),
            ));
        } else if let ToolChoice::Function(name) = &choice
            && !tools.iter().any(|t| t.name.as_deref() == Some(name))
        {
            let known: Vec<&str> = tools.iter().filter_map(|t| t.name.as_deref()).collect();
            violations.push(Violation::invalid(
                format!("{}.function.name", names.tool_choice),
                format!(
                    "{} names the tool {name}, which is not defined; defined tools: {}",
                    names.tool_choice,
                    known.join(", ")
                ),
            ));
        }
        Some(choice)
    });
    let response_format = response_format
        .and_then(|draft| check_response_format(draft, names, schemas, &mut violations));
    if violations.is_empty() {
        Ok(ToolSettings {
            tools: checked,
            tool_choice,
            response_format,
        })
    } else {
        Err(violations)
    }
}

/// The field names of one door: a version says `tools`, `toolChoice`, `responseFormat`; the
/// OpenAI door says `tools`, `tool_choice`, `response_format`.
#[derive(Debug, Clone, Copy)]
pub struct ToolFieldNames {
    /// The tools list.
    pub tools: &'static str,
    /// The tool choice.
    pub tool_choice: &'static str,
    /// The response format.
    pub response_format: &'static str,
}

impl ToolFieldNames {
    /// A version's fields (the contract's camelCase).
    pub const VERSION: ToolFieldNames = ToolFieldNames {
        tools: "tools",
        tool_choice: "toolChoice",
        response_format: "responseFormat",
    };
    /// The OpenAI-compatible door's fields (OpenAI's snake_case).
    pub const OPENAI: ToolFieldNames = ToolFieldNames {
        tools: "tools",
        tool_choice: "tool_choice",
        response_format: "response_format",
    };
}

fn check_tool(
    i: usize,
    draft: &ToolDraft,
    field: &str,
    schemas: &dyn SchemaCheck,
    violations: &mut Vec<Violation>,
) -> Option<ToolDefinition> {
    let before = violations.len();
    match draft.kind.as_deref() {
        Some("function") => {}
        Some(other) => violations.push(Violation::invalid(
            format!("{field}[{i}].type"),
            format!(
                "tool type {} is not supported; the only type is function",
                crate::violation::quoted(other)
            ),
        )),
        None => violations.push(Violation::invalid(
            format!("{field}[{i}].type"),
            "type is required (function)",
        )),
    }
    if !draft.has_function {
        violations.push(Violation::invalid(
            format!("{field}[{i}].function"),
            "function is required",
        ));
        return None;
    }
    let name = check_name(
        draft.name.as_deref(),
        &format!("{field}[{i}].function.name"),
        "tool",
        violations,
    );
    check_description(
        draft.description.as_deref(),
        &format!("{field}[{i}].function.description"),
        violations,
    );
    if let Some(schema) = &draft.parameters {
        let at = format!("{field}[{i}].function.parameters");
        check_schema_text(schema, &at, schemas, violations);
    }
    (violations.len() == before).then(|| ToolDefinition {
        name: name.unwrap_or_default(),
        description: draft.description.clone(),
        parameters: draft.parameters.clone(),
        strict: draft.strict,
    })
}

/// A function's or schema's name (`what`), or a violation of `field`.
fn check_name(
    name: Option<&str>,
    field: &str,
    what: &str,
    violations: &mut Vec<Violation>,
) -> Option<String> {
    match name {
        Some(name) if is_function_name(name) => Some(name.to_owned()),
        Some(name) => {
            violations.push(Violation::invalid(
                field,
                format!(
                    "{what} name {} must be 1 to 64 letters, digits, _ or -",
                    crate::violation::quoted(name)
                ),
            ));
            None
        }
        None => {
            violations.push(Violation::invalid(field, "name is required"));
            None
        }
    }
}

fn check_description(text: Option<&str>, field: &str, violations: &mut Vec<Violation>) {
    if let Some(text) = text
        && text.chars().count() > MAX_TOOL_DESCRIPTION_CHARS
    {
        violations.push(Violation::invalid(
            field,
            format!("description is over {MAX_TOOL_DESCRIPTION_CHARS} characters"),
        ));
    }
}

fn check_schema_text(
    schema: &str,
    field: &str,
    schemas: &dyn SchemaCheck,
    violations: &mut Vec<Violation>,
) {
    if schema.len() > MAX_SCHEMA_BYTES {
        violations.push(Violation::invalid(
            field,
            format!(
                "the schema is {} bytes; the limit is {MAX_SCHEMA_BYTES}",
                schema.len()
            ),
        ));
    } else {
        violations.extend(schemas.check_document(schema, field));
    }
}

fn check_response_format(
    draft: &ResponseFormatDraft,
    names: &ToolFieldNames,
    schemas: &dyn SchemaCheck,
    violations: &mut Vec<Violation>,
) -> Option<ResponseFormat> {
    let field = names.response_format;
    match draft.kind.as_deref() {
        Some("text") => Some(ResponseFormat::Text),
        Some("json_object") => Some(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let Some(spec) = &draft.json_schema else {
                violations.push(Violation::invalid(
                    format!("{field}.json_schema"),
                    "json_schema is required when type is json_schema",
                ));
                return None;
            };
            let before = violations.len();
            let name = check_name(
                spec.name.as_deref(),
                &format!("{field}.json_schema.name"),
                "schema",
                violations,
            )
            .unwrap_or_default();
            check_description(
                spec.description.as_deref(),
                &format!("{field}.json_schema.description"),
                violations,
            );
            if let Some(schema) = &spec.schema {
                check_schema_text(
                    schema,
                    &format!("{field}.json_schema.schema"),
                    schemas,
                    violations,
                );
            }
            (violations.len() == before).then(|| {
                ResponseFormat::JsonSchema(JsonSchemaFormat {
                    name,
                    description: spec.description.clone(),
                    schema: spec.schema.clone(),
                    strict: spec.strict,
                })
            })
        }
        Some(other) => {
            violations.push(Violation::invalid(
                format!("{field}.type"),
                format!(
                    "response format type {} is not supported; use text, json_object or json_schema",
                    crate::violation::quoted(other)
                ),
            ));
            None
        }
        None => {
            violations.push(Violation::invalid(
                format!("{field}.type"),
                "type is required (text, json_object or json_schema)",
            ));
            None
        }
    }
}

impl ToolSettings {
    /// These settings as drafts, so that a change which sends only some of them is checked
    /// together with the rest (a new `toolChoice` against the kept `tools`).
    pub fn drafts(
        &self,
    ) -> (
        Vec<ToolDraft>,
        Option<ToolChoiceDraft>,
        Option<ResponseFormatDraft>,
    ) {
        let tools = self
            .tools
            .iter()
            .map(|t| ToolDraft {
                kind: Some("function".to_owned()),
                name: Some(t.name.clone()),
                has_function: true,
                description: t.description.clone(),
                parameters: t.parameters.clone(),
                strict: t.strict,
            })
            .collect();
        let choice = self.tool_choice.as_ref().map(|c| match c {
            ToolChoice::Auto => ToolChoiceDraft::Word("auto".to_owned()),
            ToolChoice::None => ToolChoiceDraft::Word("none".to_owned()),
            ToolChoice::Required => ToolChoiceDraft::Word("required".to_owned()),
            ToolChoice::Function(name) => ToolChoiceDraft::Function(Some(name.clone())),
        });
        let format = self.response_format.as_ref().map(|f| match f {
            ResponseFormat::Text => ResponseFormatDraft {
                kind: Some("text".to_owned()),
                json_schema: None,
            },
            ResponseFormat::JsonObject => ResponseFormatDraft {
                kind: Some("json_object".to_owned()),
                json_schema: None,
            },
            ResponseFormat::JsonSchema(s) => ResponseFormatDraft {
                kind: Some("json_schema".to_owned()),
                json_schema: Some(JsonSchemaDraft {
                    name: Some(s.name.clone()),
                    description: s.description.clone(),
                    schema: s.schema.clone(),
                    strict: s.strict,
                }),
            },
        });
        (tools, choice, format)
    }
}

impl ToolChoice {
    /// The wire word, or none for a named function.
    pub fn word(&self) -> Option<&'static str> {
        match self {
            ToolChoice::Auto => Some("auto"),
            ToolChoice::None => Some("none"),
            ToolChoice::Required => Some("required"),
            ToolChoice::Function(_) => None,
        }
    }
}

impl ResponseFormat {
    /// Whether the output must be JSON (and is checked: `parsed`, `schemaValid`).
    pub fn is_json(&self) -> bool {
        !matches!(self, ResponseFormat::Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::AcceptingSchemas;

    fn tool(name: &str) -> ToolDraft {
        ToolDraft {
            kind: Some("function".into()),
            name: Some(name.into()),
            has_function: true,
            parameters: Some(r#"{"type":"object"}"#.into()),
            ..ToolDraft::default()
        }
    }

    fn check(
        tools: &[ToolDraft],
        choice: Option<ToolChoiceDraft>,
        format: Option<ResponseFormatDraft>,
    ) -> Result<ToolSettings, Vec<Violation>> {
        check_tool_settings(
            tools,
            choice.as_ref(),
            format.as_ref(),
            &ToolFieldNames::VERSION,
            &AcceptingSchemas,
        )
    }

    fn fields(result: Result<ToolSettings, Vec<Violation>>) -> Vec<String> {
        result.unwrap_err().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn duplicate_names_are_refused_naming_the_second() {
        let got = fields(check(&[tool("a"), tool("b"), tool("a")], None, None));
        assert_eq!(got, ["tools[2].function.name"]);
    }

    #[test]
    fn a_choice_must_name_a_defined_tool() {
        let got = fields(check(
            &[tool("lookup")],
            Some(ToolChoiceDraft::Function(Some("missing".into()))),
            None,
        ));
        assert_eq!(got, ["toolChoice.function.name"]);
        let ok = check(
            &[tool("lookup")],
            Some(ToolChoiceDraft::Function(Some("lookup".into()))),
            None,
        )
        .unwrap();
        assert_eq!(ok.tool_choice, Some(ToolChoice::Function("lookup".into())));
    }

    #[test]
    fn required_without_tools_and_unknown_words_are_refused() {
        assert_eq!(
            fields(check(
                &[],
                Some(ToolChoiceDraft::Word("required".into())),
                None
            )),
            ["toolChoice"]
        );
        assert_eq!(
            fields(check(
                &[tool("a")],
                Some(ToolChoiceDraft::Word("always".into())),
                None
            )),
            ["toolChoice"]
        );
        assert_eq!(
            fields(check(&[tool("a")], Some(ToolChoiceDraft::Malformed), None)),
            ["toolChoice"]
        );
    }

    #[test]
    fn more_than_the_limit_is_refused() {
        let many: Vec<ToolDraft> = (0..=MAX_TOOLS).map(|i| tool(&format!("t{i}"))).collect();
        let violations = check(&many, None, None).unwrap_err();
        assert_eq!(violations.len(), 1);
        assert!(
            violations[0]
                .message()
                .contains("129 tools given; the limit is 128")
        );
    }

    #[test]
    fn bad_tool_parts_are_each_named() {
        let bad = ToolDraft {
            kind: Some("retrieval".into()),
            name: Some("has space".into()),
            has_function: true,
            description: Some("x".repeat(MAX_TOOL_DESCRIPTION_CHARS + 1)),
            ..ToolDraft::default()
        };
        let missing = ToolDraft {
            kind: Some("function".into()),
            ..ToolDraft::default()
        };
        assert_eq!(
            fields(check(&[bad, missing], None, None)),
            [
                "tools[0].type",
                "tools[0].function.name",
                "tools[0].function.description",
                "tools[1].function"
            ]
        );
    }

    #[test]
    fn response_formats_are_read_and_checked() {
        let format = |kind: &str, spec: Option<JsonSchemaDraft>| ResponseFormatDraft {
            kind: Some(kind.into()),
            json_schema: spec,
        };
        assert_eq!(
            check(&[], None, Some(format("json_object", None)))
                .unwrap()
                .response_format,
            Some(ResponseFormat::JsonObject)
        );
        assert_eq!(
            fields(check(&[], None, Some(format("json_schema", None)))),
            ["responseFormat.json_schema"]
        );
        assert_eq!(
            fields(check(&[], None, Some(format("yaml", None)))),
            ["responseFormat.type"]
        );
        let unnamed = JsonSchemaDraft::default();
        assert_eq!(
            fields(check(&[], None, Some(format("json_schema", Some(unnamed))))),
            ["responseFormat.json_schema.name"]
        );
    }

    #[test]
    fn drafts_of_checked_settings_check_to_the_same_settings() {
        let settings = check(
            &[tool("a"), tool("b")],
            Some(ToolChoiceDraft::Function(Some("b".into()))),
            Some(ResponseFormatDraft {
                kind: Some("json_schema".into()),
                json_schema: Some(JsonSchemaDraft {
                    name: Some("answer".into()),
                    schema: Some("{}".into()),
                    strict: Some(true),
                    ..JsonSchemaDraft::default()
                }),
            }),
        )
        .unwrap();
        let (tools, choice, format) = settings.drafts();
        assert_eq!(check(&tools, choice, format).unwrap(), settings);
    }

    #[test]
    fn the_counted_text_holds_every_definition() {
        let settings = check(&[tool("lookup_order")], None, None).unwrap();
        let text = settings.counted_text();
        assert!(text.contains("lookup_order") && text.contains(r#"{"type":"object"}"#));
        assert_eq!(ToolSettings::default().counted_text(), "");
    }
}
