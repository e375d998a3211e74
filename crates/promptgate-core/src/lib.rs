//! promptgate's domain: prompts and their immutable versions, the traffic split that routes
//! sessions to versions, OAuth scopes, model endpoints and exact token counting.
//!
//! Architecture invariant: this crate does no I/O and knows nothing of HTTP, JSON or SQL. The
//! server and the store convert their own representations into these types, so every rule lives
//! here once and is checked the same way whichever door a change comes through.

#![warn(missing_docs)]

pub mod credentials;
pub mod endpoint;
pub mod fewshot;
pub mod guardrails;
pub mod invocation;
pub mod prompt;
pub mod redact;
pub mod scope;
pub mod stats;
pub mod tokenizer;
pub mod traffic;
pub mod version;
pub mod violation;

pub use endpoint::{EndpointCatalogue, ModelEndpoint, ProviderKind};
pub use prompt::{
    BlockedCategory, ChatCompletionsPolicy, ContentFilter, FewShotExample, Prompt, PromptStatus,
    PromptVersion, SafetyGuardrails, SystemMessageMode, VersionSettings,
};
pub use scope::{Scope, ScopeSet};
pub use tokenizer::{TokenCounter, TokenizerKind};
pub use traffic::{SplitStrategy, TrafficSplit};
pub use version::VersionLabel;
pub use violation::{Violation, ViolationCode};
