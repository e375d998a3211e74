//! The Rust client SDK for a promptgate gateway.
//!
//! It authenticates with OAuth client credentials (one token shared by every clone, refreshed
//! 60 s before expiry, one request however many tasks need it), retries what is safe to retry
//! within a bounded number of attempts and a deadline, and turns the gateway's error bodies
//! into typed [`Error`]s that say what to do next.
//!
//! ```no_run
//! # async fn demo() -> Result<(), promptgate_client::Error> {
//! use futures_util::TryStreamExt;
//! use promptgate_client::{Client, PromptDraft, PromptQuery, TrafficSplit};
//!
//! let client = Client::builder()
//!     .base_url("http://127.0.0.1:8080")
//!     .client_credentials("my-client-id", "my-client-secret")
//!     .build()?;
//! let created = client
//!     .create_prompt(&PromptDraft::new("support_agent", "openai/gpt-4o-mini")
//!         .system_prompt("You are a helpful customer support agent.")
//!         .max_tokens(1500))
//!     .await?;
//! let split = TrafficSplit::new(&[("1.0.0", 1.0)])?;
//! client.set_traffic(&created.value.id, &split, created.etag.as_deref()).await?;
//! let all: Vec<_> = client.list_prompts(PromptQuery::default()).try_collect().await?;
//! # let _ = all;
//! # Ok(()) }
//! ```
//!
//! Cargo feature `tokens` (on by default): local token counting with the server's tokenizers
//! ([`TokenCounter`], [`fewshot`], [`PromptDraft::check_budget`], and the budget check
//! [`Client::create_prompt`] makes before sending). A caller that only invokes can turn it off
//! (`default-features = false`) and compile neither tiktoken's tables nor regex and rustrict;
//! everything else works the same, and the server still refuses an over-budget prompt with
//! [`Error::TokenBudgetExceeded`]. See `docs/sdk.md`.
//!
//! Cargo feature `variables` (on by default): local checks of an invocation's template
//! variables against a version read from the gateway ([`VariablesCheck`],
//! [`Invocation::checked`], [`check_variables`]), with the gateway's own rules (the
//! `promptgate-variables` crate and its JSON Schema validator). Without it the gateway alone
//! checks them, with the same [`Error::InvalidVariables`].
//!
//! Templates (shared/API.md, "Templates and variables"; `docs/templates.md`):
//!
//! ```no_run
//! # async fn demo(client: promptgate_client::Client) -> Result<(), promptgate_client::Error> {
//! use promptgate_client::{Invocation, PromptDraft, VariablesCheck};
//! use promptgate_client::api::RenderRequest;
//!
//! let created = client
//!     .create_prompt(&PromptDraft::new("support_agent", "openai/gpt-4o-mini")
//!         .system_prompt("You are the support agent of {{company}}; the customer is {{customer_name}}.")
//!         .variables_schema(serde_json::json!({
//!             "type": "object",
//!             "properties": {"company": {"type": "string", "default": "Acme"},
//!                            "customer_name": {"type": "string", "maxLength": 200}},
//!             "required": ["customer_name"]})))
//!     .await?;
//! let id = &created.value.id;
//! client.set_label(id, "production", "1.0.0", created.etag.as_deref()).await?;
//! // A preview, calling no model.
//! let mut variables = serde_json::Map::new();
//! variables.insert("customer_name".into(), "Jane".into());
//! let preview = client
//!     .render(id, &RenderRequest { label: Some("production".into()), variables: Some(variables), ..RenderRequest::default() })
//!     .await?;
//! # let _ = preview;
//! // An invocation whose variables are checked locally first.
//! let check = VariablesCheck::for_version(&client.get_version(id, "1.0.0").await?);
//! let invocation = Invocation::new(id, "Where is my order?").var("customer_name", "Jane").checked(&check)?;
//! let answer = client.invoke(invocation.request()).await?;
//! # let _ = answer;
//! # Ok(()) }
//! ```
//!
//! Tools and structured output (shared/API.md, "Tools and structured output"; `docs/sdk.md`):
//! a version's tools with [`PromptDraft::function_tool`], its [`ToolChoice`] and
//! [`OutputFormat`]; an answer's `toolCalls`, answered with [`Invocation::assistant_tool_calls`]
//! and [`Invocation::tool_result`]; [`InvokeEvent::ToolCall`] in streams; and the gateway's
//! refusal of a bad definition as [`Error::InvalidToolSettings`], naming the field.
//!
//! Architecture invariant: depends on the wire types (`promptgate-api`), the domain rules it
//! shares with the server (`promptgate-core`: tokenizers, traffic split, few-shot fitting,
//! templates; `promptgate-variables`: the variables' schema, with the `variables` feature), the
//! audit log's hashing and signature rules (`promptgate-audit`, so that [`audit`] checks proofs
//! offline with the very code that sealed the entries) and reqwest; never on the server or the
//! store.

#![warn(missing_docs)]

pub mod audit;
mod builder;
mod client;
mod error;
mod invoke;
mod keys;
mod prompts;
mod telemetry;
mod tools;
#[cfg(feature = "variables")]
mod variables;

pub use audit::AuditQuery;
pub use builder::{PromptDraft, TrafficSplit, VersionDraft};
pub use client::{Client, ClientBuilder, RetryPolicy, Tagged};
pub use error::{Error, FieldViolation};
pub use invoke::{Invocation, InvokeEvent};
pub use keys::ApiKeyDraft;
pub use promptgate_api as api;
#[cfg(feature = "tokens")]
pub use promptgate_core::fewshot::{self, FitStrategy, FittedPrompt};
#[cfg(feature = "tokens")]
pub use promptgate_core::{FewShotExample, TokenCounter};
pub use promptgate_core::{SplitStrategy, TokenizerKind};
pub use prompts::PromptQuery;
pub use telemetry::{Score, TelemetryQuery};
pub use tools::{OutputFormat, ToolChoice, function_tool};
#[cfg(feature = "variables")]
pub use variables::{VariablesCheck, check_variables};
