//! jsonschema's validation errors as the contract's violations: one field per value
//! (`variables.customer.tier`) and a message that says what is wrong without repeating the
//! caller's value (it may be long, or be the very secret a guardrail would have redacted).

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::{Location, LocationSegment};
use jsonschema::types::JsonType;
use promptgate_core::violation::{Violation, ViolationCode};
use serde_json::Value;

/// The most allowed values an `enum` message lists.
const MAX_LISTED_VALUES: usize = 20;

/// The prefix of every field this crate names at invocation.
const FIELD_PREFIX: &str = "variables";

/// The violations one validation error stands for (several for an object with several unknown
/// properties, one otherwise).
pub(crate) fn violations(error: &ValidationError<'_>) -> Vec<Violation> {
    let at = path_text(error.instance_path());
    let instance = error.instance();
    let one = |template: &str, params: &[(&str, String)]| vec![violation(&at, template, params)];
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            vec![violation(&join(&at, &name), "{name} is required", &[])]
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => unexpected
            .iter()
            .map(|property| {
                violation(
                    &join(&at, property),
                    "{name} is not a property that the schema allows",
                    &[],
                )
            })
            .collect(),
        ValidationErrorKind::Type { kind } => one(
            "{name} must be {expected}; got {actual}",
            &[
                ("expected", expected_types(kind)),
                ("actual", kind_of(instance).to_owned()),
            ],
        ),
        ValidationErrorKind::MaxLength { limit } => one(
            "{name} is {length} characters long; the limit is {limit}",
            &[
                ("length", char_count(instance)),
                ("limit", limit.to_string()),
            ],
        ),
        ValidationErrorKind::MinLength { limit } => one(
            "{name} is {length} characters long; it must be at least {limit}",
            &[
                ("length", char_count(instance)),
                ("limit", limit.to_string()),
            ],
        ),
        ValidationErrorKind::Enum { options } => one(
            "{name} must be one of {allowed}",
            &[("allowed", value_list(options))],
        ),
        ValidationErrorKind::Constant { expected_value } => one(
            "{name} must be {expected}",
            &[("expected", expected_value.to_string())],
        ),
        ValidationErrorKind::Maximum { limit } => one(
            "{name} must be at most {limit}",
            &[("limit", limit.to_string())],
        ),
        ValidationErrorKind::ExclusiveMaximum { limit } => one(
            "{name} must be less than {limit}",
            &[("limit", limit.to_string())],
        ),
        ValidationErrorKind::Minimum { limit } => one(
            "{name} must be at least {limit}",
            &[("limit", limit.to_string())],
        ),
        ValidationErrorKind::ExclusiveMinimum { limit } => one(
            "{name} must be greater than {limit}",
            &[("limit", limit.to_string())],
        ),
        ValidationErrorKind::MultipleOf { multiple_of } => one(
            "{name} must be a multiple of {multiple}",
            &[("multiple", multiple_of.to_string())],
        ),
        ValidationErrorKind::Pattern { pattern } => one(
            "{name} does not match the pattern {pattern}",
            &[("pattern", pattern.clone())],
        ),
        ValidationErrorKind::Format { format } => one(
            "{name} is not a valid {format}",
            &[("format", format.clone())],
        ),
        ValidationErrorKind::MaxItems { limit } => one(
            "{name} has {count} items; the limit is {limit}",
            &[
                ("count", item_count(instance)),
                ("limit", limit.to_string()),
            ],
        ),
        ValidationErrorKind::MinItems { limit } => one(
            "{name} has {count} items; it must have at least {limit}",
            &[
                ("count", item_count(instance)),
                ("limit", limit.to_string()),
            ],
        ),
        ValidationErrorKind::MaxProperties { limit } => one(
            "{name} has {count} properties; the limit is {limit}",
            &[
                ("count", item_count(instance)),
                ("limit", limit.to_string()),
            ],
        ),
        ValidationErrorKind::MinProperties { limit } => one(
            "{name} has {count} properties; it must have at least {limit}",
            &[
                ("count", item_count(instance)),
                ("limit", limit.to_string()),
            ],
        ),
        ValidationErrorKind::UniqueItems => one("{name} must not hold the same item twice", &[]),
        ValidationErrorKind::FalseSchema => one("{name} is not allowed", &[]),
        _ => one(
            "{name} is not valid: {reason}",
            &[("reason", error.masked_with("the value").to_string())],
        ),
    }
}

/// A violation of the value at `path` (`customer.tier`; empty for the whole object).
pub(crate) fn violation(path: &str, template: &str, params: &[(&str, String)]) -> Violation {
    let (field, name) = if path.is_empty() {
        (FIELD_PREFIX.to_owned(), FIELD_PREFIX.to_owned())
    } else {
        (format!("{FIELD_PREFIX}.{path}"), path.to_owned())
    };
    let mut all = Vec::with_capacity(params.len() + 1);
    all.push(("name", name));
    all.extend(params.iter().map(|(k, v)| (*k, v.clone())));
    Violation::with_params(ViolationCode::InvalidValue, field, template, &all)
}

/// A JSON Pointer into the variables as the contract writes fields: `customer.tier`,
/// `tags[2]`.
fn path_text(location: &Location) -> String {
    let mut out = String::new();
    for segment in location.segments() {
        match segment {
            LocationSegment::Property(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&name);
            }
            LocationSegment::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

fn expected_types(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(ty) => with_article(*ty).to_owned(),
        TypeKind::Multiple(set) => set
            .iter()
            .map(with_article)
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

fn with_article(ty: JsonType) -> &'static str {
    match ty {
        JsonType::Array => "an array",
        JsonType::Boolean => "a boolean",
        JsonType::Integer => "an integer",
        JsonType::Null => "null",
        JsonType::Number => "a number",
        JsonType::Object => "an object",
        JsonType::String => "a string",
    }
}

/// What a value is, never what it holds.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn char_count(value: &Value) -> String {
    value.as_str().map_or(0, |s| s.chars().count()).to_string()
}

fn item_count(value: &Value) -> String {
    match value {
        Value::Array(items) => items.len(),
        Value::Object(properties) => properties.len(),
        _ => 0,
    }
    .to_string()
}

/// The allowed values as JSON texts (`"gold", "silver"`), the first [`MAX_LISTED_VALUES`] of
/// them.
fn value_list(options: &Value) -> String {
    let Some(items) = options.as_array() else {
        return options.to_string();
    };
    let mut listed: Vec<String> = items
        .iter()
        .take(MAX_LISTED_VALUES)
        .map(Value::to_string)
        .collect();
    if items.len() > MAX_LISTED_VALUES {
        listed.push(format!("and {} more", items.len() - MAX_LISTED_VALUES));
    }
    listed.join(", ")
}
