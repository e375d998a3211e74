//! End-to-end tests of the `promptgate` binary.
//!
//! Every test starts its own gateway process on a loopback port (port 0) with its own temporary
//! directory and its own database, and talks to it over HTTP exactly as a client would. The
//! contract under test is `API.md` (Conventions, Errors, Authentication, Prompts, Operations) plus
//! the choices written down in the OpenAPI document.
//!
//! One suite, two stores: `PROMPTGATE_TEST_STORE=sqlite` (the default) gives each test a SQLite
//! file in its directory; `PROMPTGATE_TEST_STORE=postgres` a fresh database on the PostgreSQL
//! test server of `promptgate_store::testing` (see `harness.rs`). `scripts/test` runs both.

// Test code may unwrap, panic and print: a failing assertion is how a test reports, and the
// server's captured log is printed to stderr when a test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod fake_upstream;
mod harness;

mod access_log;
mod api_keys;
mod audit;
mod audit_tamper;
mod cli;
mod cli_audit;
mod cli_invoke;
mod cli_kit;
mod cli_prompts;
mod cli_templates;
mod cli_tools;
mod clients;
mod concurrency;
mod config;
mod connection_limits;
mod console;
mod context_fitting;
mod cost;
mod crash;
mod error_messages;
mod errors;
mod fallbacks;
mod install_deps;
mod invocation_providers;
mod invocations;
mod labels;
mod limits;
mod login_limits;
mod migrate;
mod model_endpoints;
mod oauth;
mod openai_compat;
mod ops;
mod outage;
mod prompts;
mod provider_key_masking;
mod rate_limits;
mod replicas;
mod rotate_secret;
mod state_unchanged;
mod telemetry;
mod templates;
mod tls;
mod tools;
mod url_secrets;
mod validation;
mod versions_and_traffic;
mod walkthrough;
mod webhook_restart;
