//! Limits on what one request may carry (`[limits]`): how deep its JSON nests and how long its
//! strings are. Each has a safe default and each refusal names the limit and the setting that
//! raises it, so a caller who hits one knows what to change or whom to ask.
//!
//! The body size (`[server] max_body_bytes`) and the connection-level limits (header size,
//! header and idle timeouts) live in `[server]`; the page size is the contract's 1–500.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use promptgate_core::violation::quoted;
use promptgate_core::{Violation, ViolationCode};

/// Default of `[limits] max_json_depth`.
pub const DEFAULT_MAX_JSON_DEPTH: usize = 32;
/// Default of `[limits] max_system_prompt_chars`.
pub const DEFAULT_MAX_SYSTEM_PROMPT_CHARS: usize = 200_000;
/// Default of `[limits] max_input_chars`.
pub const DEFAULT_MAX_INPUT_CHARS: usize = 200_000;
/// Default of `[limits] max_conversation_messages`.
pub const DEFAULT_MAX_CONVERSATION_MESSAGES: usize = 1_000;
/// Default of `[limits] max_few_shot_examples`.
pub const DEFAULT_MAX_FEW_SHOT_EXAMPLES: usize = 200;
/// Default of `[limits] max_example_chars`.
pub const DEFAULT_MAX_EXAMPLE_CHARS: usize = 20_000;
/// Default of `[limits] max_metadata_entries`.
pub const DEFAULT_MAX_METADATA_ENTRIES: usize = 64;
/// Default of `[limits] max_metadata_key_chars`.
pub const DEFAULT_MAX_METADATA_KEY_CHARS: usize = 128;
/// Default of `[limits] max_metadata_value_chars`.
pub const DEFAULT_MAX_METADATA_VALUE_CHARS: usize = 1_024;
/// Default of `[limits] max_text_chars`.
pub const DEFAULT_MAX_TEXT_CHARS: usize = 2_000;

/// `[limits]`: nesting depth and string lengths of request bodies; a key left out takes the
/// default of [`RequestLimits`]. Every value must be at least 1.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Deepest nesting of arrays and objects in a JSON body (default 32).
    pub max_json_depth: Option<usize>,
    /// Longest `systemPrompt`, characters (default 200000; at most 1000000).
    pub max_system_prompt_chars: Option<usize>,
    /// Longest invocation input or single message, characters (default 200000).
    pub max_input_chars: Option<usize>,
    /// Most earlier messages in an invocation (default 1000).
    pub max_conversation_messages: Option<usize>,
    /// Most few-shot examples in a version (default 200; at most 1000).
    pub max_few_shot_examples: Option<usize>,
    /// Longest few-shot input or output, characters (default 20000; at most 200000).
    pub max_example_chars: Option<usize>,
    /// Most `metadata` entries (default 64).
    pub max_metadata_entries: Option<usize>,
    /// Longest `metadata` key, characters (default 128).
    pub max_metadata_key_chars: Option<usize>,
    /// Longest `metadata` value, characters (default 1024).
    pub max_metadata_value_chars: Option<usize>,
    /// Longest feedback comment, characters (default 2000).
    pub max_text_chars: Option<usize>,
}

impl LimitsSection {
    /// Refuses a zero and a value above the core's ceiling (which would never be reached),
    /// naming the key.
    pub fn check(&self) -> Result<(), String> {
        for (key, value) in [
            ("limits.max_json_depth", self.max_json_depth),
            (
                "limits.max_system_prompt_chars",
                self.max_system_prompt_chars,
            ),
            ("limits.max_input_chars", self.max_input_chars),
            (
                "limits.max_conversation_messages",
                self.max_conversation_messages,
            ),
            ("limits.max_metadata_entries", self.max_metadata_entries),
            ("limits.max_metadata_key_chars", self.max_metadata_key_chars),
            (
                "limits.max_metadata_value_chars",
                self.max_metadata_value_chars,
            ),
            ("limits.max_text_chars", self.max_text_chars),
        ] {
            if value == Some(0) {
                return Err(format!("{key} must be at least 1"));
            }
        }
        for (key, value, ceiling) in [
            (
                "limits.max_system_prompt_chars",
                self.max_system_prompt_chars,
                promptgate_core::prompt::MAX_SYSTEM_PROMPT_CHARS,
            ),
            (
                "limits.max_few_shot_examples",
                self.max_few_shot_examples,
                promptgate_core::prompt::MAX_FEW_SHOT_EXAMPLES,
            ),
            (
                "limits.max_example_chars",
                self.max_example_chars,
                promptgate_core::prompt::MAX_EXAMPLE_CHARS,
            ),
        ] {
            if let Some(v) = value
                && v > ceiling
            {
                return Err(format!("{key} is {v}; it can be at most {ceiling}"));
            }
        }
        Ok(())
    }
}

/// The request limits in force, defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Deepest nesting of arrays and objects in a JSON body (the body object is depth 1).
    pub max_json_depth: usize,
    /// Longest system prompt (a version's `systemPrompt`), in characters.
    pub max_system_prompt_chars: usize,
    /// Longest invocation input, and longest earlier message of a conversation, in characters.
    pub max_input_chars: usize,
    /// Most earlier messages in an invocation's conversation.
    pub max_conversation_messages: usize,
    /// Most few-shot examples in a version.
    pub max_few_shot_examples: usize,
    /// Longest few-shot input or output, in characters.
    pub max_example_chars: usize,
    /// Most `metadata` entries.
    pub max_metadata_entries: usize,
    /// Longest `metadata` key, in characters.
    pub max_metadata_key_chars: usize,
    /// Longest `metadata` value, in characters.
    pub max_metadata_value_chars: usize,
    /// Longest other free text (a feedback comment), in characters.
    pub max_text_chars: usize,
    /// How long a request's body may take to arrive (`[server] request_timeout_ms`).
    pub request_timeout: Duration,
}

/// Default of `[server] request_timeout_ms`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_json_depth: DEFAULT_MAX_JSON_DEPTH,
            max_system_prompt_chars: DEFAULT_MAX_SYSTEM_PROMPT_CHARS,
            max_input_chars: DEFAULT_MAX_INPUT_CHARS,
            max_conversation_messages: DEFAULT_MAX_CONVERSATION_MESSAGES,
            max_few_shot_examples: DEFAULT_MAX_FEW_SHOT_EXAMPLES,
            max_example_chars: DEFAULT_MAX_EXAMPLE_CHARS,
            max_metadata_entries: DEFAULT_MAX_METADATA_ENTRIES,
            max_metadata_key_chars: DEFAULT_MAX_METADATA_KEY_CHARS,
            max_metadata_value_chars: DEFAULT_MAX_METADATA_VALUE_CHARS,
            max_text_chars: DEFAULT_MAX_TEXT_CHARS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

impl RequestLimits {
    /// The section's values, defaults for what it leaves out.
    pub fn from_section(section: Option<&LimitsSection>) -> Self {
        let d = RequestLimits::default();
        let Some(s) = section else { return d };
        RequestLimits {
            max_json_depth: s.max_json_depth.unwrap_or(d.max_json_depth),
            max_system_prompt_chars: s
                .max_system_prompt_chars
                .unwrap_or(d.max_system_prompt_chars),
            max_input_chars: s.max_input_chars.unwrap_or(d.max_input_chars),
            max_conversation_messages: s
                .max_conversation_messages
                .unwrap_or(d.max_conversation_messages),
            max_few_shot_examples: s.max_few_shot_examples.unwrap_or(d.max_few_shot_examples),
            max_example_chars: s.max_example_chars.unwrap_or(d.max_example_chars),
            max_metadata_entries: s.max_metadata_entries.unwrap_or(d.max_metadata_entries),
            max_metadata_key_chars: s.max_metadata_key_chars.unwrap_or(d.max_metadata_key_chars),
            max_metadata_value_chars: s
                .max_metadata_value_chars
                .unwrap_or(d.max_metadata_value_chars),
            max_text_chars: s.max_text_chars.unwrap_or(d.max_text_chars),
            request_timeout: d.request_timeout,
        }
    }
}

/// Reads the request's whole body within `timeout` (`[server] request_timeout_ms`) before any
/// handler runs: a client that sends its body slowly (a slow-loris on the body) gets 408
/// `request.timeout` naming the limit instead of holding a task and a connection for as long as
/// it likes, and a body over `max_body_bytes` gets 413 here. Every body is small (at most
/// `max_body_bytes`) and every handler buffers it anyway, so nothing is lost by buffering first.
pub async fn read_body_within(
    timeout: Duration,
    max_body_bytes: usize,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, max_body_bytes));
    let bytes = match read.await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(err)) => {
            // `to_bytes` fails on the length limit or on a broken connection.
            let over_limit = std::error::Error::source(&err)
                .is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
            return if over_limit {
                ApiError::PayloadTooLarge {
                    limit: max_body_bytes,
                }
                .into_response()
            } else {
                ApiError::BadRequest(format!("the body could not be read: {err}")).into_response()
            };
        }
        Err(_) => {
            return ApiError::RequestTimeout {
                limit_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            }
            .into_response();
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The deepest nesting of arrays and objects in `bytes`, read without building anything, and
/// stopping as soon as it passes `max`: `Some(depth)` when it does. Brackets inside strings do
/// not count. Malformed JSON is not judged here; the parser reports it.
pub fn json_depth_over(bytes: &[u8], max: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(depth);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Decodes a request body into `T` as every JSON endpoint does: nesting within `max_depth`
/// (400 naming `[limits] max_json_depth`), valid JSON (400), an object at the top (400), and
/// each member of the right type (400 naming the member's path). Unknown members are ignored.
pub fn decode_json_body<T: DeserializeOwned>(
    bytes: &[u8],
    max_depth: usize,
) -> Result<T, ApiError> {
    if let Some(depth) = json_depth_over(bytes, max_depth) {
        return Err(ApiError::Invalid(vec![Violation::with_params(
            ViolationCode::InvalidValue,
            "body",
            "the body nests arrays and objects {depth} or more levels deep; the limit is {limit} \
             ({setting})",
            &[
                ("depth", depth.to_string()),
                ("limit", max_depth.to_string()),
                ("setting", "[limits] max_json_depth".to_owned()),
            ],
        )]));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not valid JSON: {}",
            plain_serde_text(&e.to_string())
        ))
    })?;
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".to_owned(),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let message = plain_decode_message(&field, &e.inner().to_string());
        ApiError::Invalid(vec![Violation::invalid(field, message)])
    })
}

/// serde's message about a member of the wrong type or value, in the words of the contract
/// rather than Rust's: serde writes a string value in Rust's `Debug` form (`string "5"`), other
/// values between backticks, and the expected type by its Rust name (`u32`, `a sequence`,
/// `struct InvokeOptions`). A caller should read `options.maxOutputTokens must be a whole number
/// from 0 to 4294967295, not the string ‘5’`.
fn plain_decode_message(field: &str, message: &str) -> String {
    if let Some(rest) = message.strip_prefix("invalid type: ")
        && let Some((got, expected)) = rest.rsplit_once(", expected ")
    {
        return format!(
            "{field} must be {}, not {}",
            plain_expected(expected),
            plain_unexpected(got)
        );
    }
    if let Some(rest) = message.strip_prefix("invalid value: ")
        && let Some((got, expected)) = rest.rsplit_once(", expected ")
    {
        return format!(
            "{field} is {}; it must be {}",
            plain_unexpected(got),
            plain_expected(expected)
        );
    }
    format!("{field}: {}", plain_serde_text(message))
}

/// What serde says it expected (`u32`, `a map`), as the contract's JSON types.
fn plain_expected(expected: &str) -> String {
    let plain = match expected {
        "u8" => "a whole number from 0 to 255",
        "u16" => "a whole number from 0 to 65535",
        "u32" => "a whole number from 0 to 4294967295",
        "u64" | "u128" | "usize" => "a whole number of at least 0",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a sequence" => "an array",
        "a map" => "an object",
        "a boolean" | "a string" => expected,
        "unit" => "null",
        other if other.starts_with("struct ") => "an object",
        other => return plain_serde_text(other),
    };
    plain.to_owned()
}

/// The value serde found (`string "5"`, ``integer `-1` ``, `sequence`), as plain text.
fn plain_unexpected(got: &str) -> String {
    if let Some(rest) = got.strip_prefix("string ") {
        return format!("the string {}", plain_serde_text(rest));
    }
    for prefix in ["integer ", "floating point "] {
        if let Some(rest) = got.strip_prefix(prefix) {
            return format!("the number {}", rest.trim_matches('`'));
        }
    }
    if let Some(rest) = got.strip_prefix("boolean ") {
        return rest.trim_matches('`').to_owned();
    }
    match got {
        "sequence" => "an array".to_owned(),
        "map" => "an object".to_owned(),
        "null" | "unit value" => "null".to_owned(),
        other => plain_serde_text(other),
    }
}

/// serde's and serde_json's text with its quotations made plain: a string in Rust's `Debug`
/// form (`"a\"b"`) and a value between backticks both become ‘…’ (see
/// [`promptgate_core::violation::quoted`]), so no message carries Rust's escapes.
pub(crate) fn plain_serde_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut value = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some('t') => value.push('\t'),
                            Some('r') => value.push('\r'),
                            Some('0') => value.push('\0'),
                            Some('u') => {
                                // `\u{1b}`: Debug's form of other control characters.
                                let code: String = chars
                                    .by_ref()
                                    .skip_while(|c| *c == '{')
                                    .take_while(|c| *c != '}')
                                    .collect();
                                if let Some(c) =
                                    u32::from_str_radix(&code, 16).ok().and_then(char::from_u32)
                                {
                                    value.push(c);
                                }
                            }
                            Some(other) => value.push(other),
                            None => {}
                        },
                        c => value.push(c),
                    }
                }
                out.push_str(&quoted(&value));
            }
            '`' => {
                let value: String = chars.by_ref().take_while(|c| *c != '`').collect();
                out.push_str(&quoted(&value));
            }
            c => out.push(c),
        }
    }
    out
}

/// The violation for a string longer than its limit: it names the field, the length, the limit
/// and the `[limits]` key that raises it.
pub fn too_long(field: &str, chars: usize, limit: usize, setting: &str) -> Violation {
    Violation::with_params(
        ViolationCode::InvalidValue,
        field,
        "{field} is {length} characters long; the limit is {limit} ({setting})",
        &[
            ("field", field.to_owned()),
            ("length", chars.to_string()),
            ("limit", limit.to_string()),
            ("setting", format!("[limits] {setting}")),
        ],
    )
}

/// The violation for a list with more items than its limit.
pub fn too_many(field: &str, count: usize, limit: usize, setting: &str) -> Violation {
    Violation::with_params(
        ViolationCode::InvalidValue,
        field,
        "{field} has {count} items; the limit is {limit} ({setting})",
        &[
            ("field", field.to_owned()),
            ("count", count.to_string()),
            ("limit", limit.to_string()),
            ("setting", format!("[limits] {setting}")),
        ],
    )
}

/// Whether `text` has more than `limit` characters. Bytes bound characters from above, so most
/// strings are decided without counting, and a huge string costs no more than a legal one.
pub fn is_over(text: &str, limit: usize) -> bool {
    text.len() > limit && text.chars().count() > limit
}

/// Appends a [`too_long`] violation when `text` has more than `limit` characters.
pub fn check_length(
    violations: &mut Vec<Violation>,
    field: &str,
    text: &str,
    limit: usize,
    setting: &str,
) {
    if is_over(text, limit) {
        violations.push(too_long(field, text.chars().count(), limit, setting));
    }
}

/// Checks a version's system prompt and few-shot examples against the configured lengths, before
/// the core counts tokens (the core's own ceilings are far above any configured limit).
pub fn check_prompt_settings(
    limits: &RequestLimits,
    system_prompt: Option<&str>,
    examples: Option<&[promptgate_core::prompt::ExampleDraft]>,
    violations: &mut Vec<Violation>,
) {
    if let Some(text) = system_prompt {
        check_length(
            violations,
            "systemPrompt",
            text,
            limits.max_system_prompt_chars,
            "max_system_prompt_chars",
        );
    }
    let Some(examples) = examples else { return };
    if examples.len() > limits.max_few_shot_examples {
        violations.push(too_many(
            "fewShotExamples",
            examples.len(),
            limits.max_few_shot_examples,
            "max_few_shot_examples",
        ));
        return;
    }
    for (i, example) in examples.iter().enumerate() {
        for (name, value) in [("input", &example.input), ("output", &example.output)] {
            if let Some(text) = value {
                check_length(
                    violations,
                    &format!("fewShotExamples[{i}].{name}"),
                    text,
                    limits.max_example_chars,
                    "max_example_chars",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_arrays_and_objects_but_not_brackets_in_strings() {
        assert_eq!(json_depth_over(br#"{"a":[{"b":1}]}"#, 3), None);
        assert_eq!(json_depth_over(br#"{"a":[{"b":1}]}"#, 2), Some(3));
        assert_eq!(json_depth_over(br#"{"a":"[[[[[[\"[[["}"#, 1), None);
        assert_eq!(json_depth_over(br#"{"a":"\\"}"#, 1), None);
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(json_depth_over(deep.as_bytes(), 32), Some(33));
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        #[serde(default)]
        flag: Option<bool>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Body {
        #[serde(default)]
        max_tokens: Option<u32>,
        #[serde(default)]
        count: Option<i64>,
        #[serde(default)]
        ratio: Option<f64>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        tags: Option<Vec<String>>,
        #[serde(default)]
        labels: Option<std::collections::BTreeMap<String, String>>,
        #[serde(default)]
        inner: Option<Inner>,
    }

    fn decode_message(body: &str) -> String {
        match decode_json_body::<Body>(body.as_bytes(), 32) {
            Err(ApiError::Invalid(violations)) => violations[0].message(),
            Err(ApiError::BadRequest(message)) => message,
            other => panic!("{body} gave {other:?}"),
        }
    }

    #[test]
    fn wrong_types_are_described_in_json_words_without_rust_debug_syntax() {
        let cases = [
            (
                r#"{"maxTokens": "5"}"#,
                "maxTokens must be a whole number from 0 to 4294967295, not the string ‘5’",
            ),
            (
                r#"{"maxTokens": -1}"#,
                "maxTokens is the number -1; it must be a whole number from 0 to 4294967295",
            ),
            (
                r#"{"count": 1.5}"#,
                "count must be a whole number, not the number 1.5",
            ),
            (r#"{"ratio": true}"#, "ratio must be a number, not true"),
            (
                r#"{"name": 42}"#,
                "name must be a string, not the number 42",
            ),
            (
                r#"{"tags": {"a": "b"}}"#,
                "tags must be an array, not an object",
            ),
            (r#"{"tags": [null]}"#, "tags[0] must be a string, not null"),
            (
                r#"{"labels": ["x"]}"#,
                "labels must be an object, not an array",
            ),
            (
                r#"{"inner": 5}"#,
                "inner must be an object, not the number 5",
            ),
            (
                r#"{"inner": {"flag": "say \"yes\"\n\u001b"}}"#,
                "inner.flag must be a boolean, not the string ‘say \"yes\"\\nU+001B’",
            ),
            (
                r#"{"name": "#,
                "the body is not valid JSON: EOF while parsing a value at line 1 column 9",
            ),
            (
                r#"{"name" 1}"#,
                "the body is not valid JSON: expected ‘:’ at line 1 column 9",
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(decode_message(body), expected, "{body}");
        }
    }

    #[test]
    fn serde_quotations_become_plain_quotes() {
        assert_eq!(
            plain_serde_text("unknown variant `tool`, expected `user` or `assistant`"),
            "unknown variant ‘tool’, expected ‘user’ or ‘assistant’"
        );
        assert_eq!(
            plain_serde_text(r#"string "a\"b\u{1b}""#),
            "string ‘a\"bU+001B’"
        );
    }

    #[test]
    fn a_body_nested_past_the_limit_is_refused_naming_the_setting() {
        let body = format!(r#"{{"a":{}1{}}}"#, "[".repeat(40), "]".repeat(40));
        let err = decode_json_body::<serde_json::Value>(body.as_bytes(), 32).unwrap_err();
        let text = format!("{err:?}");
        assert!(text.contains("max_json_depth"), "{text}");
        assert!(decode_json_body::<serde_json::Value>(body.as_bytes(), 41).is_ok());
    }
}
