//! A single reason why a request cannot be accepted, with the field it concerns.
//!
//! Validation collects every violation before answering so that a caller fixes all of its
//! mistakes in one round trip; the server turns each into one entry of the contract's ErrorBody.

use std::collections::BTreeMap;
use std::fmt;

/// The machine-readable class of a violation; the server maps each to a status and a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationCode {
    /// A value is missing, of the wrong form or out of range (`invalid.value`).
    InvalidValue,
    /// The system prompt is over its token budget (`token.budget.exceeded`).
    TokenBudgetExceeded,
    /// The request cannot fit the model's context window (`context.window.exceeded`).
    ContextWindowExceeded,
}

impl ViolationCode {
    /// The contract's code string for this violation.
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationCode::InvalidValue => "invalid.value",
            ViolationCode::TokenBudgetExceeded => "token.budget.exceeded",
            ViolationCode::ContextWindowExceeded => "context.window.exceeded",
        }
    }
}

/// One problem with one field: a message template plus the values that fill it, kept apart so
/// clients can localise or parse them (`messageWithParams` / `messageParams` in the contract).
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The class of the problem.
    pub code: ViolationCode,
    /// The JSON path of the offending field, such as `safetyGuardrails.maxTokens`.
    pub field: String,
    /// The message with `{name}` placeholders.
    pub template: String,
    /// The values of the placeholders.
    pub params: BTreeMap<String, String>,
}

impl Violation {
    /// An `invalid.value` violation whose message needs no parameters.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Violation {
            code: ViolationCode::InvalidValue,
            field: field.into(),
            template: message.into(),
            params: BTreeMap::new(),
        }
    }

    /// A violation whose message is a template filled from `params`.
    pub fn with_params(
        code: ViolationCode,
        field: impl Into<String>,
        template: impl Into<String>,
        params: &[(&str, String)],
    ) -> Self {
        Violation {
            code,
            field: field.into(),
            template: template.into(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        }
    }

    /// The template with every placeholder replaced by its value.
    pub fn message(&self) -> String {
        fill_template(&self.template, &self.params)
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

/// The most characters of a caller's value that a message repeats; longer values are cut and end
/// in `…`, so that a huge value does not come back whole in the error about it.
pub const MAX_QUOTED_CHARS: usize = 64;

/// A caller's value as a message shows it: between ‘ and ’, cut to [`MAX_QUOTED_CHARS`], with
/// control characters written out (`\n`, `\t`, `\r`, `U+001B`). Messages are read by people
/// and by clients in other languages, so they quote values in plain text and never with Rust's
/// `Debug` form (`"…"` with backslash escapes, `Some(…)`), which leaks the implementation and
/// reads as a JSON string inside a JSON string.
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4 * MAX_QUOTED_CHARS) + 8);
    out.push('‘');
    for (i, c) in text.chars().enumerate() {
        if i == MAX_QUOTED_CHARS {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("U+{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('’');
    out
}

/// Replaces `{name}` placeholders with their values; unknown placeholders stay as they are so a
/// mistake in a template shows instead of silently vanishing.
pub fn fill_template(template: &str, params: &BTreeMap<String, String>) -> String {
    let mut out = template.to_owned();
    for (name, value) in params {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// A UUID field (`promptId` of a query or a body), or a violation naming `field` pushed onto
/// `violations`, so that a caller can report it with every other problem of the request.
pub fn uuid_field(
    field: &str,
    text: Option<&str>,
    violations: &mut Vec<Violation>,
) -> Option<uuid::Uuid> {
    let text = text?;
    uuid::Uuid::parse_str(text)
        .map_err(|_| {
            violations.push(Violation::invalid(
                field,
                format!("{field} {} is not a UUID", quoted(text)),
            ))
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_plain_text_not_rust_debug() {
        assert_eq!(quoted("tool"), "‘tool’");
        assert_eq!(quoted(""), "‘’");
        assert_eq!(quoted("a\nb\tc\u{1b}"), "‘a\\nb\\tcU+001B’");
        assert_eq!(quoted("say \"hi\""), "‘say \"hi\"’");
        let long = "x".repeat(MAX_QUOTED_CHARS + 10);
        let shown = quoted(&long);
        assert_eq!(shown.chars().count(), MAX_QUOTED_CHARS + 3, "{shown}");
        assert!(shown.ends_with("…’"), "{shown}");
    }

    #[test]
    fn message_fills_every_placeholder() {
        let v = Violation::with_params(
            ViolationCode::TokenBudgetExceeded,
            "systemPrompt",
            "system prompt is {estimated} tokens ({tokenizer}); the budget is {limit}",
            &[
                ("estimated", "1834".into()),
                ("tokenizer", "o200k_base".into()),
                ("limit", "1500".into()),
            ],
        );
        assert_eq!(
            v.message(),
            "system prompt is 1834 tokens (o200k_base); the budget is 1500"
        );
    }
}
