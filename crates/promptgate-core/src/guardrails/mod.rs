//! In-process guardrails: what the gateway checks and rewrites in the text it relays, without
//! calling anything outside the process.
//!
//! - [`pii`] finds personal data (e-mail addresses, phone numbers, card numbers, national ids,
//!   IP addresses) and replaces it with placeholders, on whole texts and on streams.
//! - [`profanity`] masks profanity with asterisks, on whole texts and on streams.
//! - [`categories`] tells whether a text touches a blocked category, with a small keyword
//!   detector per category.
//!
//! All three are deterministic and linear in the text's length. `docs/guardrails.md` says how
//! each works and, above all, what each misses.

pub mod categories;
pub mod pii;
pub mod profanity;
