//! JSON Schemas that are not variables: a tool's `parameters` and a version's output format
//! (`responseFormat`). On create and update [`check_document`] says whether a text is a JSON
//! Schema the gateway can use; per version [`OutputCheck::compile`] builds the output's
//! validator once, and per invocation [`OutputCheck::check`] reads the model's output against it.
//!
//! Unlike a variables schema, these may be written for any draft the validator knows (OpenAI's
//! examples use draft 7 and 2020-12 interchangeably): `$schema` picks the draft, 2020-12 when
//! absent. Remote references are never fetched, `pattern` uses linear-time regular expressions,
//! and `format` is asserted.

use jsonschema::{PatternOptions, ValidationOptions, Validator};
use promptgate_core::ResponseFormat;
use promptgate_core::violation::Violation;
use serde_json::Value;

/// The most problems one output check reports: enough to fix an output, bounded whatever the
/// output holds.
pub const MAX_OUTPUT_ERRORS: usize = 20;

/// The `$schema` values accepted (with or without a trailing `#`).
const KNOWN_DRAFTS: [&str; 5] = [
    "https://json-schema.org/draft/2020-12/schema",
    "https://json-schema.org/draft/2019-09/schema",
    "http://json-schema.org/draft-07/schema",
    "http://json-schema.org/draft-06/schema",
    "http://json-schema.org/draft-04/schema",
];

/// The problems of `text` as a JSON Schema document, reported against `field`; empty when the
/// gateway can validate with it. A tool's `parameters` must moreover describe an object (both
/// providers call a function with an object of arguments): `object_only`.
pub fn check_document(text: &str, field: &str, object_only: bool) -> Vec<Violation> {
    match load(text, object_only) {
        Ok(_) => Vec::new(),
        Err(problems) => problems
            .into_iter()
            .map(|reason| Violation::invalid(field, reason))
            .collect(),
    }
}

/// Reads, checks and compiles a schema text; every problem found at the first stage that has
/// any, as messages.
fn load(text: &str, object_only: bool) -> Result<Validator, Vec<String>> {
    let root: Value =
        serde_json::from_str(text).map_err(|e| vec![format!("the schema is not JSON: {e}")])?;
    let object = match &root {
        Value::Object(object) => object,
        Value::Bool(_) if !object_only => return compile(&root).map_err(|e| vec![e]),
        _ => return Err(vec!["the schema must be a JSON object".to_owned()]),
    };
    if let Some(uri) = object.get("$schema") {
        let known = uri
            .as_str()
            .is_some_and(|u| KNOWN_DRAFTS.contains(&u.trim_end_matches('#')));
        if !known {
            return Err(vec![format!(
                "$schema {uri} is not a JSON Schema draft the gateway knows (2020-12, 2019-09, 7, 6 or 4)"
            )]);
        }
    }
    if object_only
        && let Some(kind) = object.get("type")
        && kind.as_str() != Some("object")
    {
        let kind = kind
            .as_str()
            .map_or_else(|| kind.to_string(), promptgate_core::violation::quoted);
        return Err(vec![format!(
            "a tool's parameters must describe an object (type object); its type is {kind}"
        )]);
    }
    if let Err(error) = jsonschema::meta::validate(&root) {
        let at = match error.instance_path().as_str() {
            "" => "the top level".to_owned(),
            pointer => pointer.to_owned(),
        };
        return Err(vec![format!(
            "not a valid JSON Schema: at {at}: {}",
            error.masked_with("the value")
        )]);
    }
    compile(&root).map_err(|e| vec![e])
}

fn compile(root: &Value) -> Result<Validator, String> {
    options().build(root).map_err(|e| {
        format!(
            "the schema cannot be compiled: {}",
            e.masked_with("the value")
        )
    })
}

fn options() -> ValidationOptions<'static> {
    jsonschema::options()
        .offline()
        .should_validate_formats(true)
        .with_pattern_options(PatternOptions::regex())
}

/// One way an output breaks its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputError {
    /// A JSON Pointer into the output (empty: the whole output).
    pub path: String,
    /// What is wrong there; the output's own values are not repeated.
    pub message: String,
}

/// What the check of one output found.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputVerdict {
    /// The output as JSON, when it is valid.
    pub parsed: Option<Value>,
    /// Why it is not (empty when it is).
    pub errors: Vec<OutputError>,
}

impl OutputVerdict {
    /// Whether the output matched.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The output check of one version's JSON `responseFormat`, compiled once.
pub struct OutputCheck {
    /// The schema's validator; none: any JSON (`json_object`, whose contract is "valid JSON",
    /// and a `json_schema` without a schema).
    validator: Option<Validator>,
}

impl std::fmt::Debug for OutputCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputCheck")
            .field("schema", &self.validator.is_some())
            .finish()
    }
}

impl OutputCheck {
    /// The check for `format`; none for free text (nothing to check). A stored schema that no
    /// longer compiles (after an upgrade of the validator) checks that the output is JSON only,
    /// as `json_object` and a `json_schema` without a schema do.
    pub fn compile(format: &ResponseFormat) -> Option<OutputCheck> {
        match format {
            ResponseFormat::Text => None,
            ResponseFormat::JsonObject => Some(OutputCheck { validator: None }),
            ResponseFormat::JsonSchema(spec) => Some(OutputCheck {
                validator: spec
                    .schema
                    .as_deref()
                    .and_then(|text| load(text, false).ok()),
            }),
        }
    }

    /// Reads `output` as JSON and checks it: any JSON passes `json_object` (shared/API.md:
    /// "valid JSON"; OpenAI's JSON mode asks the model for an object, but the gateway checks
    /// what the contract names), with a schema the schema must accept it.
    pub fn check(&self, output: &str) -> OutputVerdict {
        let value: Value = match serde_json::from_str(output.trim()) {
            Ok(value) => value,
            Err(e) => {
                return OutputVerdict {
                    parsed: None,
                    errors: vec![OutputError {
                        path: String::new(),
                        message: format!("the output is not JSON: {e}"),
                    }],
                };
            }
        };
        let errors: Vec<OutputError> = match &self.validator {
            None => Vec::new(),
            Some(validator) => validator
                .iter_errors(&value)
                .take(MAX_OUTPUT_ERRORS)
                .map(|e| OutputError {
                    path: e.instance_path().as_str().to_owned(),
                    message: e.masked_with("the value").to_string(),
                })
                .collect(),
        };
        OutputVerdict {
            parsed: errors.is_empty().then_some(value),
            errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use promptgate_core::JsonSchemaFormat;

    use super::*;

    fn schema_format(schema: &str) -> ResponseFormat {
        ResponseFormat::JsonSchema(JsonSchemaFormat {
            name: "order".into(),
            description: None,
            schema: Some(schema.into()),
            strict: Some(true),
        })
    }

    const ORDER: &str = r#"{"type":"object","properties":{"items":{"type":"array","items":{"type":"object","properties":{"qty":{"type":"integer","minimum":1}},"required":["qty"]}}},"required":["items"]}"#;

    #[test]
    fn documents_are_checked_with_the_field_named() {
        assert!(check_document(ORDER, "tools[0].function.parameters", true).is_empty());
        assert!(check_document("true", "responseFormat.json_schema.schema", false).is_empty());
        let cases = [
            ("{", "not JSON"),
            ("[1]", "must be a JSON object"),
            (r#"{"type":"string"}"#, "must describe an object"),
            (
                r#"{"type":"object","properties":{"a":{"type":"strange"}}}"#,
                "not a valid JSON Schema",
            ),
            (
                r#"{"$schema":"https://example.com/mine"}"#,
                "not a JSON Schema draft",
            ),
            (
                r#"{"$ref":"https://example.com/remote.json"}"#,
                "cannot be compiled",
            ),
        ];
        for (text, expected) in cases {
            let found = check_document(text, "tools[0].function.parameters", true);
            assert_eq!(found.len(), 1, "{text}: {found:?}");
            assert_eq!(found[0].field, "tools[0].function.parameters");
            assert!(
                found[0].message().contains(expected),
                "{text}: {}",
                found[0].message()
            );
        }
    }

    #[test]
    fn an_output_is_parsed_when_valid_and_located_when_not() {
        let check = OutputCheck::compile(&schema_format(ORDER)).unwrap();
        let good = check.check(r#" {"items":[{"qty":2}]} "#);
        assert!(good.is_valid());
        assert_eq!(good.parsed.unwrap()["items"][0]["qty"], 2);
        let bad = check.check(r#"{"items":[{"qty":"two"}]}"#);
        assert_eq!(bad.parsed, None);
        assert_eq!(bad.errors.len(), 1);
        assert_eq!(bad.errors[0].path, "/items/0/qty");
        assert!(
            !bad.errors[0].message.contains("two"),
            "{}",
            bad.errors[0].message
        );
        let prose = check.check("Sure! Here is your order.");
        assert_eq!(prose.errors[0].path, "");
        assert!(
            prose.errors[0]
                .message
                .starts_with("the output is not JSON")
        );
    }

    #[test]
    fn json_object_and_a_schemaless_format_need_json_and_text_checks_nothing() {
        let check = OutputCheck::compile(&ResponseFormat::JsonObject).unwrap();
        assert!(check.check(r#"{"a":1}"#).is_valid());
        assert_eq!(check.check("[1,2]").parsed, Some(serde_json::json!([1, 2])));
        assert!(!check.check("{").is_valid());
        let schemaless = OutputCheck::compile(&ResponseFormat::JsonSchema(JsonSchemaFormat {
            name: "any".into(),
            description: None,
            schema: None,
            strict: None,
        }))
        .unwrap();
        assert!(schemaless.check("42").is_valid());
        assert!(OutputCheck::compile(&ResponseFormat::Text).is_none());
    }

    #[test]
    fn errors_are_bounded() {
        let check = OutputCheck::compile(&schema_format(
            r#"{"type":"array","items":{"type":"integer"}}"#,
        ))
        .unwrap();
        let many = format!("[{}]", vec!["\"x\""; 100].join(","));
        assert_eq!(check.check(&many).errors.len(), MAX_OUTPUT_ERRORS);
    }
}
