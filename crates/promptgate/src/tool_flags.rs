//! The flags of tools and structured output, shared by `prompts create`, `prompts update` and
//! `invoke`: `--tools FILE`, `--tool-choice`, `--response-format` and `--messages-file FILE`. As
//! with the template flags, a bad value or file is a usage error that names the flag and the
//! file, found before any request is sent; what only the gateway can judge (a JSON Schema, a
//! duplicate name) is left to it, and its refusal names the field.

use std::path::Path;

use promptgate_client::api::{ChatTurn, JsonSchemaSpec, ResponseFormat, Tool};
use promptgate_client::{OutputFormat, ToolChoice};
use serde_json::Value;

use crate::UsageError;
use crate::template_flags::{json_file, json_kind};

/// The tools in `path` (`--tools`): a JSON array of tools in OpenAI's shape,
/// `[{"type": "function", "function": {"name", "description", "parameters"}}]`.
pub fn tools(path: &Path) -> anyhow::Result<Vec<Tool>> {
    let value = json_file("--tools", path)?;
    let shape = || {
        format!(
            "--tools {}: expected a JSON array of {{\"type\": \"function\", \"function\": {{\"name\": \"…\", \"parameters\": {{…}}}}}}",
            path.display()
        )
    };
    let Value::Array(items) = value else {
        return Err(UsageError(format!("{}, not {}", shape(), json_kind(&value))).into());
    };
    let mut tools = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        if !item.is_object() {
            return Err(
                UsageError(format!("{}; item {i} is {}", shape(), json_kind(&item))).into(),
            );
        }
        let tool: Tool = serde_json::from_value(item)
            .map_err(|e| UsageError(format!("{}; item {i}: {e}", shape())))?;
        if tool
            .function
            .as_ref()
            .and_then(|f| f.name.as_ref())
            .is_none()
        {
            return Err(UsageError(format!(
                "{}; item {i} has no \"function\".\"name\"",
                shape()
            ))
            .into());
        }
        tools.push(tool);
    }
    Ok(tools)
}

/// `--tool-choice`: `auto`, `none`, `required`, or the name of one of the version's functions.
pub fn tool_choice(text: &str) -> anyhow::Result<ToolChoice> {
    if text.trim().is_empty() {
        return Err(UsageError(
            "--tool-choice is empty; use auto, none, required or a function's name".to_owned(),
        )
        .into());
    }
    Ok(ToolChoice::parse(text))
}

/// `--response-format`: `text`, `json_object`, or a JSON file holding a json_schema spec,
/// `{"name": "…", "schema": {…}, "strict": true}` (or the whole `responseFormat` object, with
/// its `type`, as the contract and OpenAI write it).
pub fn response_format(text: &str) -> anyhow::Result<OutputFormat> {
    match text {
        "text" => return Ok(OutputFormat::Text),
        "json_object" => return Ok(OutputFormat::JsonObject),
        _ => {}
    }
    let path = Path::new(text);
    let value = json_file("--response-format", path).map_err(|e| {
        UsageError(format!(
            "{e}; --response-format is text, json_object, or a JSON file holding {{\"name\", \"schema\", \"strict\"}}"
        ))
    })?;
    let shape = |problem: String| {
        UsageError(format!(
            "--response-format {}: expected {{\"name\": \"…\", \"schema\": {{…}}, \"strict\": true}}; {problem}",
            path.display()
        ))
    };
    let Value::Object(object) = &value else {
        return Err(shape(format!("the file holds {}", json_kind(&value))).into());
    };
    if object.contains_key("type") {
        let format: ResponseFormat =
            serde_json::from_value(value.clone()).map_err(|e| shape(e.to_string()))?;
        return OutputFormat::from_wire(&format).ok_or_else(|| {
            shape(format!(
                "type {:?} is not text, json_object, or json_schema with its \"json_schema\"",
                format.kind.as_deref().unwrap_or_default()
            ))
            .into()
        });
    }
    let spec: JsonSchemaSpec = serde_json::from_value(value).map_err(|e| shape(e.to_string()))?;
    if spec.name.is_none() {
        return Err(shape("it has no string \"name\"".to_owned()).into());
    }
    if !spec.schema.as_ref().is_some_and(Value::is_object) {
        return Err(shape("its \"schema\" is not a JSON object".to_owned()).into());
    }
    Ok(OutputFormat::JsonSchema(spec))
}

/// The earlier turns in `path` (`--messages-file`): a JSON array of turns in the contract's
/// shape, `{"role": "user"|"assistant"|"tool", "content": "…"}`, an assistant turn with its
/// `toolCalls`, a tool turn with its `toolCallId`.
pub fn messages(path: &Path) -> anyhow::Result<Vec<ChatTurn>> {
    let value = json_file("--messages-file", path)?;
    let shape = || {
        format!(
            "--messages-file {}: expected a JSON array of {{\"role\": \"user\"|\"assistant\"|\"tool\", \"content\": \"…\"}} (with \"toolCalls\" or \"toolCallId\")",
            path.display()
        )
    };
    let Value::Array(items) = value else {
        return Err(UsageError(format!("{}, not {}", shape(), json_kind(&value))).into());
    };
    let mut turns = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let turn: ChatTurn = serde_json::from_value(item)
            .map_err(|e| UsageError(format!("{}; item {i}: {e}", shape())))?;
        if turn.role.is_none() {
            return Err(UsageError(format!("{}; item {i} has no string \"role\"", shape())).into());
        }
        turns.push(turn);
    }
    Ok(turns)
}

/// The lines that describe a version's tools, tool choice and response format, for `prompts
/// get` and the like; empty when it has none.
pub fn describe(
    tools: &[Tool],
    tool_choice: Option<&Value>,
    response_format: Option<&ResponseFormat>,
) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    for tool in tools {
        let Some(function) = &tool.function else {
            continue;
        };
        let mut text = function.name.clone().unwrap_or_default();
        if let Some(description) = function.description.as_deref().filter(|d| !d.is_empty()) {
            text.push_str(&format!(" — {description}"));
        }
        if let Some(parameters) = &function.parameters {
            text.push_str(&format!("; parameters {parameters}"));
        }
        if function.strict == Some(true) {
            text.push_str(" (strict)");
        }
        lines.push(("tool".to_owned(), text));
    }
    if let Some(choice) = tool_choice {
        let text =
            ToolChoice::from_wire(choice).map_or_else(|| choice.to_string(), |c| c.to_string());
        lines.push(("tool choice".to_owned(), text));
    }
    if let Some(format) = response_format {
        let text = match OutputFormat::from_wire(format) {
            Some(OutputFormat::Text) => "text".to_owned(),
            Some(OutputFormat::JsonObject) => "json_object (any valid JSON)".to_owned(),
            Some(OutputFormat::JsonSchema(spec)) => format!(
                "json_schema {}{}; schema {}",
                spec.name.as_deref().unwrap_or("?"),
                if spec.strict == Some(true) {
                    " (strict)"
                } else {
                    ""
                },
                spec.schema
                    .as_ref()
                    .map(Value::to_string)
                    .unwrap_or_default()
            ),
            None => serde_json::to_string(format).unwrap_or_default(),
        };
        lines.push(("output format".to_owned(), text));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn tools_files_are_checked_for_their_shape() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(
            &dir,
            "tools.json",
            r#"[{"type": "function", "function": {"name": "get_order", "parameters": {"type": "object"}}}]"#,
        );
        let got = tools(&good).unwrap();
        assert_eq!(
            got[0].function.as_ref().unwrap().name.as_deref(),
            Some("get_order")
        );
        for (name, body, needle) in [
            ("o.json", r#"{"type": "function"}"#, "not an object"),
            ("n.json", "[1]", "item 0 is a number"),
            (
                "f.json",
                r#"[{"type": "function"}]"#,
                "item 0 has no \"function\".\"name\"",
            ),
            ("t.json", r#"[{"type": 3}]"#, "item 0: invalid type"),
            ("j.json", "[", "not valid JSON"),
        ] {
            let err = tools(&write(&dir, name, body)).unwrap_err();
            assert!(err.downcast_ref::<UsageError>().is_some(), "{err:#}");
            let text = format!("{err:#}");
            assert!(
                text.contains("--tools") && text.contains(name) && text.contains(needle),
                "{needle:?} missing from {text}"
            );
        }
    }

    #[test]
    fn response_formats_are_words_or_files() {
        assert_eq!(response_format("text").unwrap(), OutputFormat::Text);
        assert_eq!(
            response_format("json_object").unwrap(),
            OutputFormat::JsonObject
        );
        let dir = tempfile::tempdir().unwrap();
        let spec = write(
            &dir,
            "spec.json",
            r#"{"name": "order", "schema": {"type": "object"}, "strict": true}"#,
        );
        let expected =
            OutputFormat::json_schema("order", serde_json::json!({"type": "object"}), true);
        assert_eq!(response_format(spec.to_str().unwrap()).unwrap(), expected);
        let whole = write(
            &dir,
            "whole.json",
            r#"{"type": "json_schema", "json_schema": {"name": "order", "schema": {"type": "object"}, "strict": true}}"#,
        );
        assert_eq!(response_format(whole.to_str().unwrap()).unwrap(), expected);
        for (name, body, needle) in [
            ("a.json", "[]", "an array"),
            ("n.json", r#"{"schema": {}}"#, "no string \"name\""),
            (
                "s.json",
                r#"{"name": "x", "schema": true}"#,
                "\"schema\" is not a JSON object",
            ),
            ("y.json", r#"{"type": "yaml"}"#, "\"yaml\""),
        ] {
            let path = write(&dir, name, body);
            let err = response_format(path.to_str().unwrap()).unwrap_err();
            assert!(err.downcast_ref::<UsageError>().is_some(), "{err:#}");
            let text = format!("{err:#}");
            assert!(
                text.contains("--response-format") && text.contains(name) && text.contains(needle),
                "{needle:?} missing from {text}"
            );
        }
        let missing = format!("{:#}", response_format("json").unwrap_err());
        assert!(
            missing.contains("cannot read") && missing.contains("text, json_object"),
            "{missing}"
        );
    }
}
