//! Tests of the client SDK.
//!
//! Two kinds of peer: a real gateway started in-process on a loopback port (`gateway.rs`), for
//! every SDK call and the typed errors the real server causes; and scripted HTTP servers
//! (`scripted.rs`), for the edge cases a real gateway cannot be made to produce on demand:
//! rate limits with both `Retry-After` forms, tokens that expire mid-run, token stampedes,
//! 5xx storms, deadlines and refused connections.

// Test code may unwrap and panic: a failing assertion is how a test reports.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod audit;
mod gateway;
mod real_gateway;
mod scripted;
mod templates;
mod tools;
mod tutorial;
