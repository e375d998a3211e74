//! The flags of prompt templates, shared by `invoke`, `chat` and `prompts …`: variables given
//! as `--var NAME=VALUE` and `--vars-file FILE`, and the JSON files of `--variables-schema` and
//! `--template-messages`. A bad value or file is a usage error that names the flag (and the
//! file), found before any request is sent.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use promptgate_client::api::TemplateMessage;
use serde_json::{Map, Value};

use crate::UsageError;

/// A template's variables from the command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VariableArgs {
    /// A template variable, NAME=VALUE (repeatable); the value is a string. It wins over
    /// --vars-file for the same name.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// A JSON object of template variables (any JSON values: numbers, booleans, objects for
    /// dotted placeholders); `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    vars_file: Option<std::path::PathBuf>,
}

impl VariableArgs {
    /// Whether `--vars-file -` reads standard input (which then cannot hold anything else).
    pub fn reads_stdin(&self) -> bool {
        self.vars_file.as_deref() == Some(Path::new("-"))
    }

    /// The variables to send: the file's, then each `--var` over them; `None` when neither
    /// flag was given, so that a request without variables stays as it was.
    pub fn variables(&self) -> anyhow::Result<Option<Map<String, Value>>> {
        if self.vars.is_empty() && self.vars_file.is_none() {
            return Ok(None);
        }
        let mut variables = match &self.vars_file {
            Some(path) => match json_file("--vars-file", path)? {
                Value::Object(map) => map,
                other => {
                    return Err(UsageError(format!(
                        "--vars-file {}: the file holds {}, not a JSON object of variables",
                        path.display(),
                        json_kind(&other)
                    ))
                    .into());
                }
            },
            None => Map::new(),
        };
        for pair in &self.vars {
            let (name, value) = pair.split_once('=').ok_or_else(|| {
                UsageError(format!(
                    "--var {pair:?} is not NAME=VALUE (such as --var customer_name=Jane)"
                ))
            })?;
            if name.is_empty() {
                return Err(UsageError(format!("--var {pair:?} has no name before '='")).into());
            }
            variables.insert(name.to_owned(), Value::String(value.to_owned()));
        }
        Ok(Some(variables))
    }
}

/// The variables schema in `path` (`--variables-schema`): a JSON object.
pub fn variables_schema(path: &Path) -> anyhow::Result<Value> {
    match json_file("--variables-schema", path)? {
        schema @ Value::Object(_) => Ok(schema),
        other => Err(UsageError(format!(
            "--variables-schema {}: the file holds {}, not a JSON Schema object",
            path.display(),
            json_kind(&other)
        ))
        .into()),
    }
}

/// The template messages in `path` (`--template-messages`): a JSON array of
/// `{"role": "user"|"assistant", "content": "…"}`.
pub fn template_messages(path: &Path) -> anyhow::Result<Vec<TemplateMessage>> {
    let value = json_file("--template-messages", path)?;
    let shape = || {
        format!(
            "--template-messages {}: expected a JSON array of {{\"role\": \"user\"|\"assistant\", \"content\": \"…\"}}",
            path.display()
        )
    };
    let Value::Array(items) = value else {
        return Err(UsageError(format!("{}, not {}", shape(), json_kind(&value))).into());
    };
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let field = |key: &str| {
            item.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| UsageError(format!("{}; item {i} has no string \"{key}\"", shape())))
        };
        messages.push(TemplateMessage {
            role: Some(field("role")?),
            content: Some(field("content")?),
        });
    }
    Ok(messages)
}

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

/// The JSON in the file `path` given to `flag`; unreadable or invalid JSON is a usage error
/// naming both.
pub fn json_file(flag: &str, path: &Path) -> anyhow::Result<Value> {
    let text =
        read_input(path).map_err(|e| UsageError(format!("{flag} {}: {e:#}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| UsageError(format!("{flag} {}: not valid JSON: {e}", path.display())).into())
}

/// What a JSON value is, for an error that says what the file held instead.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(vars: &[&str], file: Option<&Path>) -> VariableArgs {
        VariableArgs {
            vars: vars.iter().map(|v| (*v).to_owned()).collect(),
            vars_file: file.map(Path::to_path_buf),
        }
    }

    #[test]
    fn var_wins_over_the_file_and_keeps_everything_after_the_first_equals_sign() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vars.json");
        std::fs::write(&file, r#"{"customer_name": "File", "count": 3}"#).unwrap();
        let got = args(&["customer_name=Jane", "note=a=b"], Some(&file))
            .variables()
            .unwrap()
            .unwrap();
        assert_eq!(
            Value::Object(got),
            serde_json::json!({"customer_name": "Jane", "count": 3, "note": "a=b"})
        );
        assert_eq!(args(&[], None).variables().unwrap(), None);
        assert_eq!(
            args(&["empty="], None).variables().unwrap().unwrap()["empty"],
            ""
        );
    }

    #[test]
    fn bad_vars_are_usage_errors_naming_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("list.json");
        std::fs::write(&list, "[1, 2]").unwrap();
        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, "{\"a\": ").unwrap();
        let missing = dir.path().join("missing.json");
        for (case, needles) in [
            (args(&["customer_name"], None), vec!["--var", "NAME=VALUE"]),
            (args(&["=Jane"], None), vec!["--var", "no name"]),
            (
                args(&[], Some(&list)),
                vec!["--vars-file", "list.json", "an array"],
            ),
            (
                args(&[], Some(&broken)),
                vec!["--vars-file", "broken.json", "not valid JSON"],
            ),
            (
                args(&[], Some(&missing)),
                vec!["--vars-file", "missing.json", "cannot read"],
            ),
        ] {
            let err = case.variables().unwrap_err();
            assert!(err.downcast_ref::<UsageError>().is_some(), "{err:#}");
            let text = format!("{err:#}");
            for needle in needles {
                assert!(text.contains(needle), "{needle:?} missing from {text}");
            }
        }
    }

    #[test]
    fn schema_and_messages_files_are_checked_for_their_shape() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let schema = write("schema.json", r#"{"type": "object"}"#);
        assert_eq!(
            variables_schema(&schema).unwrap(),
            serde_json::json!({"type": "object"})
        );
        let text = format!(
            "{:#}",
            variables_schema(&write("s.json", "\"x\"")).unwrap_err()
        );
        assert!(
            text.contains("--variables-schema") && text.contains("a string"),
            "{text}"
        );

        let messages = write(
            "m.json",
            r#"[{"role": "user", "content": "Hi {{name}}"}, {"role": "assistant", "content": "Hello."}]"#,
        );
        let got = template_messages(&messages).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].content.as_deref(), Some("Hi {{name}}"));
        for (name, body, needle) in [
            ("o.json", r#"{"role": "user"}"#, "an object"),
            (
                "r.json",
                r#"[{"content": "x"}]"#,
                "item 0 has no string \"role\"",
            ),
            (
                "c.json",
                r#"[{"role": "user", "content": 1}]"#,
                "\"content\"",
            ),
            ("j.json", "[", "not valid JSON"),
        ] {
            let err = template_messages(&write(name, body)).unwrap_err();
            assert!(err.downcast_ref::<UsageError>().is_some(), "{err:#}");
            let text = format!("{err:#}");
            assert!(
                text.contains("--template-messages")
                    && text.contains(name)
                    && text.contains(needle),
                "{text}"
            );
        }
    }
}
