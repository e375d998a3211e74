//! Structured output (`promptgate_variables::output`): `OutputCheck::compile` of a version's
//! JSON `responseFormat` and `OutputCheck::check` of a model's output against it, and
//! `check_document`, which decides on create and update whether a schema text is usable.
//!
//! The input: one mode byte, then
//! - mode 0: the output, checked with `json_object`;
//! - mode 1: the output, checked with `json_schema` without a schema;
//! - mode 2: a byte choosing one of `SCHEMAS`, then the output;
//! - mode 3: a schema text, a NUL byte, the output (the schema is also put through
//!   `check_document`, as a tool's parameters and as an output schema).
//!
//! Properties:
//! - no panic, whatever the schema and the output;
//! - `parsed` is `Some` exactly when `errors` is empty, and is then the output read as JSON;
//! - at most `MAX_OUTPUT_ERRORS` errors, each with an empty path or a JSON Pointer;
//! - an output that is not JSON gets exactly one error, at the whole output;
//! - with `json_object`, an output is valid iff it is JSON (the contract's "valid JSON");
//! - the same output gets the same verdict twice;
//! - a schema that `check_document` accepts as a tool's parameters is accepted as an output
//!   schema too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use promptgate_core::{JsonSchemaFormat, ResponseFormat};
use promptgate_variables::OutputCheck;
use promptgate_variables::output::{MAX_OUTPUT_ERRORS, check_document};
use serde_json::Value;

/// Schemas with the keywords outputs are checked with (types, required, enum, ranges,
/// patterns, formats, items, references, combinators).
const SCHEMAS: [&str; 8] = [
    r#"{"type":"object","properties":{"items":{"type":"array","items":{"type":"object","properties":{"qty":{"type":"integer","minimum":1}},"required":["qty"]}}},"required":["items"]}"#,
    r#"{"type":"object","properties":{"name":{"type":"string","minLength":1,"maxLength":8,"pattern":"^[a-z]+$"},"mail":{"type":"string","format":"email"}},"additionalProperties":false}"#,
    r#"{"type":"array","items":{"type":"integer"},"maxItems":30}"#,
    r#"{"enum":["yes","no",null,1.5]}"#,
    r##"{"$defs":{"node":{"type":"object","properties":{"next":{"$ref":"#/$defs/node"}}}},"$ref":"#/$defs/node"}"##,
    r#"{"anyOf":[{"type":"string","format":"date-time"},{"type":"number","multipleOf":0.5}],"not":{"const":0}}"#,
    r##"{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","dependencies":{"a":["b"]},"patternProperties":{"^x":{"type":"boolean"}}}"##,
    "true",
];

fn format(schema: Option<&str>) -> ResponseFormat {
    ResponseFormat::JsonSchema(JsonSchemaFormat {
        name: "out".to_owned(),
        description: None,
        schema: schema.map(str::to_owned),
        strict: Some(true),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (format, output) = match mode % 4 {
        0 => (ResponseFormat::JsonObject, rest),
        1 => (format(None), rest),
        2 => {
            let Some((&which, output)) = rest.split_first() else {
                return;
            };
            (
                format(Some(SCHEMAS[usize::from(which) % SCHEMAS.len()])),
                output,
            )
        }
        _ => {
            let cut = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            let schema = String::from_utf8_lossy(&rest[..cut]).into_owned();
            let as_tool = check_document(&schema, "tools[0].function.parameters", true);
            let as_output = check_document(&schema, "responseFormat.json_schema.schema", false);
            for v in as_tool.iter().chain(&as_output) {
                assert!(!v.message().is_empty());
            }
            if as_tool.is_empty() {
                assert!(
                    as_output.is_empty(),
                    "usable as parameters but not as an output schema: {as_output:?}"
                );
            }
            (
                format(Some(&schema)),
                rest.get(cut + 1..).unwrap_or_default(),
            )
        }
    };
    let output = String::from_utf8_lossy(output);
    let check = OutputCheck::compile(&format).expect("a JSON format has a check");
    let verdict = check.check(&output);

    assert_eq!(
        verdict.parsed.is_some(),
        verdict.errors.is_empty(),
        "parsed is set exactly when there is no error: {verdict:?}"
    );
    assert!(verdict.errors.len() <= MAX_OUTPUT_ERRORS);
    for error in &verdict.errors {
        assert!(
            error.path.is_empty() || error.path.starts_with('/'),
            "not a JSON Pointer: {:?}",
            error.path
        );
        assert!(!error.message.is_empty());
    }
    let json: Option<Value> = serde_json::from_str(output.trim()).ok();
    match &json {
        None => {
            assert_eq!(verdict.errors.len(), 1, "{verdict:?}");
            assert_eq!(verdict.errors[0].path, "");
        }
        Some(value) => {
            if let Some(parsed) = &verdict.parsed {
                assert_eq!(parsed, value, "parsed is not the output");
            }
        }
    }
    if matches!(format, ResponseFormat::JsonObject) {
        assert_eq!(
            verdict.is_valid(),
            json.is_some(),
            "json_object: valid iff JSON (the contract's valid JSON)"
        );
    }
    assert_eq!(
        check.check(&output),
        verdict,
        "the same output, another verdict"
    );
});
