//! The SDK's errors: one variant per thing a caller can act on, each saying what to do next.

use std::time::Duration;

use promptgate_api::ErrorBody;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The credentials were refused, or the token is invalid even after one refresh.
    #[error(
        "unauthorized: {message}; check the client id and secret, and that the client is not disabled"
    )]
    Unauthorized {
        /// The server's explanation.
        message: String,
        /// The request id, to quote to the gateway's operator.
        context_id: Option<String>,
    },
    /// The token lacks a scope the endpoint needs.
    #[error("missing scope {}: ask an admin to grant it to this client (or request it with the token)", required.join(" "))]
    MissingScope {
        /// The scopes the endpoint needs.
        required: Vec<String>,
    },
    /// The system prompt is over its token budget (found locally before sending, or by the
    /// server).
    #[error(
        "system prompt is {estimated} tokens ({tokenizer}); the budget is {limit}: shorten the prompt or raise safetyGuardrails.maxTokens"
    )]
    TokenBudgetExceeded {
        /// The prompt's tokens.
        estimated: usize,
        /// The budget.
        limit: usize,
        /// The tokenizer that counted.
        tokenizer: String,
    },
    /// The prompt, version or route does not exist.
    #[error("not found: {message}; check the id (list prompts to find it)")]
    NotFound {
        /// The server's explanation.
        message: String,
        /// The request id.
        context_id: Option<String>,
    },
    /// A duplicate name, or a version that exists with other content.
    #[error("conflict: {message}; pick another name or version")]
    Conflict {
        /// The server's explanation.
        message: String,
        /// The request id.
        context_id: Option<String>,
    },
    /// The prompt changed since its ETag was read.
    #[error("the prompt changed since it was read (current ETag {}): read it again and reapply the change", current_etag.as_deref().unwrap_or("unknown"))]
    PreconditionFailed {
        /// The prompt's current ETag, when the server sent it.
        current_etag: Option<String>,
    },
    /// Rate limited and out of attempts or time to wait.
    #[error("rate limited{}: slow down or raise the client's limit", retry_after.map(|d| format!("; retry after {} s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// How long the server asked to wait.
        retry_after: Option<Duration>,
    },
    /// Any other error answer of the API.
    #[error("the gateway answered {status} {code}: {message}{}", context_id.as_deref().map(|c| format!(" (contextId {c})")).unwrap_or_default())]
    Api {
        /// HTTP status.
        status: u16,
        /// The contract's error code.
        code: String,
        /// The message.
        message: String,
        /// The request id, to quote to the gateway's operator.
        context_id: Option<String>,
    },
    /// An export target (not the gateway) refused the payload.
    #[error(
        "the export target {url} answered {status}; check the URL and that it accepts a JSON POST"
    )]
    ExportRefused {
        /// The target's scheme and host only: a webhook URL can carry its secret in its
        /// user-info, path or query, and errors end up in logs.
        url: String,
        /// Its HTTP status.
        status: u16,
    },
    /// The gateway could not be reached, or the connection failed, after the retries allowed.
    #[error("cannot reach the gateway; check the URL and that the gateway is running")]
    Transport(#[source] reqwest::Error),
    /// The client is misconfigured (no base URL, bad credentials form, an invalid value).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// A value built locally is invalid (for example traffic weights that do not sum to 1).
    #[error("invalid value for {field}: {message}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// An invocation's or a preview's template variables break the version's schema: missing,
    /// of the wrong type, too long, not in the enum, or unknown to the version. Found locally
    /// (the `variables` feature, before any request) or by the gateway (400 `invalid.value` on
    /// `variables.<name>`): the same variant either way, so a caller handles it once.
    #[error("invalid variables: {}; send the variables the version lists (`variables` of the version)", violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidVariables {
        /// Every problem at once, each naming its field (`variables.customer_name`).
        violations: Vec<FieldViolation>,
        /// The request id when the gateway found them; `None` when found locally.
        context_id: Option<String>,
    },
    /// A version's `tools`, `toolChoice` or `responseFormat` is refused by the gateway (400
    /// `invalid.value`): duplicate tool names, a tool name or schema name of the wrong form, a
    /// parameters or output schema that is not valid JSON Schema, more than 128 tools, or a
    /// tool choice naming no tool. Each problem names its field as the contract spells it
    /// (`tools[1].function.name`, `toolChoice`, `responseFormat.json_schema.schema`), so that a
    /// caller can point at the definition to fix.
    #[error("invalid tool settings: {}; fix the version's tools, toolChoice or responseFormat", violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidToolSettings {
        /// Every problem at once, each naming its field.
        violations: Vec<FieldViolation>,
        /// The request id, to quote to the gateway's operator.
        context_id: Option<String>,
    },
    /// The gateway's answer could not be understood.
    #[error("unexpected answer from the gateway: {0}; is the URL a promptgate gateway?")]
    Decode(String),
}

/// One problem with one field, such as `variables.customer_name`: what the contract's error
/// body says per problem, kept apart so that a caller can point at the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's JSON path (`variables.customer_name`, `variables.customer.tier`).
    pub field: String,
    /// What is wrong, for people.
    pub message: String,
}

impl std::fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Whether a field is one of an invocation's variables (the prefix the gateway names them by).
fn is_variable_field(field: &str) -> bool {
    field.starts_with("variables.")
}

/// Whether a field is part of a version's tool settings: `tools`, `tools[2].function.name`,
/// `toolChoice`, `responseFormat.json_schema.schema`, …
fn is_tool_settings_field(field: &str) -> bool {
    ["tools", "toolChoice", "responseFormat"]
        .iter()
        .any(|root| {
            field
                .strip_prefix(root)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
}

/// The problems of a 400 `invalid.value` body, when every field it names passes `wanted`.
fn violations_where(body: &ErrorBody, wanted: fn(&str) -> bool) -> Option<Vec<FieldViolation>> {
    // One problem: the body itself; several: one body each in `errors`.
    let bodies: Vec<&ErrorBody> = if body.errors.is_empty() {
        vec![body]
    } else {
        body.errors.iter().collect()
    };
    let mut violations = Vec::with_capacity(bodies.len());
    for one in bodies {
        let field = one.details.first()?.field_name.as_deref()?;
        if !wanted(field) {
            return None;
        }
        violations.push(FieldViolation {
            field: field.to_owned(),
            message: one.message.clone(),
        });
    }
    Some(violations)
}

impl Error {
    /// The error for an API answer with an ErrorBody.
    pub(crate) fn from_body(status: u16, body: ErrorBody, etag: Option<String>) -> Self {
        let context_id = Some(body.context_id.clone()).filter(|c| !c.is_empty());
        if (status, body.code.as_str()) == (400, "invalid.value") {
            if let Some(violations) = violations_where(&body, is_variable_field) {
                return Error::InvalidVariables {
                    violations,
                    context_id,
                };
            }
            if let Some(violations) = violations_where(&body, is_tool_settings_field) {
                return Error::InvalidToolSettings {
                    violations,
                    context_id,
                };
            }
        }
        match (status, body.code.as_str()) {
            (401, _) => Error::Unauthorized {
                message: body.message,
                context_id,
            },
            (403, "missing.scope") => Error::MissingScope {
                required: body
                    .message_params
                    .get("requiredScopes")
                    .map(|s| s.split_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default(),
            },
            (400, "token.budget.exceeded") => {
                let number = |key: &str| {
                    body.message_params
                        .get(key)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0)
                };
                Error::TokenBudgetExceeded {
                    estimated: number("estimated"),
                    limit: number("limit"),
                    tokenizer: body
                        .message_params
                        .get("tokenizer")
                        .cloned()
                        .unwrap_or_default(),
                }
            }
            (404, _) => Error::NotFound {
                message: body.message,
                context_id,
            },
            (409, _) => Error::Conflict {
                message: body.message,
                context_id,
            },
            (412, _) => Error::PreconditionFailed {
                current_etag: etag.or_else(|| body.message_params.get("currentEtag").cloned()),
            },
            (429, _) => Error::RateLimited { retry_after: None },
            _ => Error::Api {
                status,
                code: body.code,
                message: body.message,
                context_id,
            },
        }
    }

    /// The request id of the failed call, when the gateway gave one.
    pub fn context_id(&self) -> Option<&str> {
        match self {
            Error::Unauthorized { context_id, .. }
            | Error::NotFound { context_id, .. }
            | Error::Conflict { context_id, .. }
            | Error::InvalidVariables { context_id, .. }
            | Error::InvalidToolSettings { context_id, .. }
            | Error::Api { context_id, .. } => context_id.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_settings_fields_are_told_from_their_neighbours() {
        for field in [
            "tools",
            "tools[1].function.name",
            "toolChoice",
            "responseFormat.json_schema.schema",
        ] {
            assert!(is_tool_settings_field(field), "{field}");
        }
        for field in [
            "toolsExtra",
            "messages[0].toolCalls",
            "variables.tools",
            "version",
        ] {
            assert!(!is_tool_settings_field(field), "{field}");
        }
    }
}
