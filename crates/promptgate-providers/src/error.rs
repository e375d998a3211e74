//! The one error type of every provider call. Each variant maps to one gateway answer (504 for
//! [`ProviderError::Timeout`], 502 for the others), so the gateway needs no provider knowledge.

/// Why a provider call failed. No variant ever holds an API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider did not answer within the endpoint's timeout, after every retry.
    #[error("the model provider did not answer in time")]
    Timeout,
    /// The provider answered with an error, or the connection failed, after every retry.
    #[error("{}", describe_upstream(*.status, .message))]
    Upstream {
        /// The provider's HTTP status, when it answered at all.
        status: Option<u16>,
        /// What went wrong, from the provider's error body when it had one.
        message: String,
    },
    /// The environment variable that should hold the endpoint's API key is not set.
    #[error("the API key variable {variable} is not set")]
    MissingKey {
        /// The variable's name (never its value).
        variable: String,
    },
    /// The provider's answer could not be understood.
    #[error("the model provider's answer could not be understood: {0}")]
    Invalid(String),
}

fn describe_upstream(status: Option<u16>, message: &str) -> String {
    match status {
        Some(status) => format!("the model provider answered {status}: {message}"),
        None => format!("the model provider call failed: {message}"),
    }
}
