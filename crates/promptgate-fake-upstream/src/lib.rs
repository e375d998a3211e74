//! promptgate's one fake model provider: the OpenAI Chat Completions and Anthropic Messages
//! wire formats, whole and streamed, served on a real loopback socket.
//!
//! Four users, one kit:
//! - the providers' integration tests and the end-to-end suite use [`scripted`]: a [`Fake`]
//!   that records every request and answers from a script of [`Reply`]s (answers, error
//!   statuses, streams the test feeds, hangs, redirects, errors quoting the caller's key);
//! - the overhead benchmark runs the `promptgate-fake-upstream` binary, a thin main over
//!   [`bench`]: a fixed answer after a fixed delay, as cheap per request as it can be;
//! - the OpenAI SDK compatibility tests run the binary with `--rules`, a thin main over
//!   [`rules`]: a deterministic model that answers from the request (tool calls, tool results,
//!   JSON output, echoes), so tool calling and structured output can be driven end to end;
//! - all render provider answers with [`wire`], so the formats live in one place.
//!
//! Architecture invariant: depends on axum, tokio and serde_json only, never on the gateway's
//! crates, so any crate's tests can use it and the benchmark measures the gateway, not the kit.

#![warn(missing_docs)]

pub mod bench;
pub mod rules;
pub mod scripted;
pub mod wire;

pub use scripted::{Fake, Feed, KEY_REJECTED, Recorded, Reply, key_pieces};
pub use wire::{ANTHROPIC_REPORTED, FLAVORS, Fixtures, Flavor, OPENAI_REPORTED};
