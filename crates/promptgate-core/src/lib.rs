//! promptgate's domain: prompts and their immutable versions, the traffic split that routes
//! sessions to versions, OAuth scopes, model endpoints and exact token counting.
//!
//! Architecture invariant: this crate does no I/O and knows nothing of HTTP, JSON or SQL. The
//! server and the store convert their own representations into these types, so every rule lives
//! here once and is checked the same way whichever door a change comes through.
//!
//! Cargo features, both on by default: `tokenizer` (tiktoken's tables: token counting and every
//! module that counts or picks a tokenizer) and `guardrails` (regex and rustrict; needs
//! `tokenizer`). Without them only what the SDK needs to build requests remains: scopes, traffic
//! splits, version labels, violations, credentials, redaction, the tool definitions and the
//! tokenizer names. A new module that uses prompts, endpoints or counting is gated on
//! `tokenizer` like its neighbours.

#![warn(missing_docs)]

#[cfg(feature = "tokenizer")]
pub mod change;
pub mod circuit;
pub mod credentials;
#[cfg(feature = "tokenizer")]
pub mod endpoint;
#[cfg(feature = "tokenizer")]
pub mod fewshot;
#[cfg(feature = "guardrails")]
pub mod guardrails;
#[cfg(feature = "tokenizer")]
pub mod invocation;
#[cfg(feature = "tokenizer")]
pub mod label;
#[cfg(feature = "tokenizer")]
pub mod prompt;
pub mod redact;
pub mod scope;
#[cfg(feature = "tokenizer")]
pub mod stats;
pub mod template;
pub mod tokenizer;
pub mod tools;
pub mod traffic;
pub mod version;
pub mod violation;

#[cfg(feature = "tokenizer")]
pub use endpoint::{EndpointCatalogue, ModelEndpoint, Prices, ProviderKind};
#[cfg(feature = "tokenizer")]
pub use prompt::{
    BlockedCategory, ChatCompletionsPolicy, ContentFilter, FewShotExample, Prompt, PromptStatus,
    PromptVersion, SafetyGuardrails, SystemMessageMode, VersionSettings,
};
pub use scope::{Scope, ScopeSet};
#[cfg(feature = "tokenizer")]
pub use tokenizer::TokenCounter;
pub use tokenizer::TokenizerKind;
pub use tools::{
    JsonSchemaFormat, ResponseFormat, ToolCall, ToolChoice, ToolDefinition, ToolSettings,
};
pub use traffic::{SplitStrategy, TrafficSplit};
pub use version::VersionLabel;
pub use violation::{Violation, ViolationCode};
