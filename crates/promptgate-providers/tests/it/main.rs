//! Integration tests of the providers against a fake upstream on a loopback socket.

// Helpers outside `#[test]` functions fail loudly by design; the workspace allows this only
// inside tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod anthropic;
mod builtin;
mod common;
mod openai;
mod redirects;
mod secrets;
mod suite;
mod tools;
