//! Integration tests of the SQLite store against real database files, one temp dir per test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod clients;
mod concurrency;
mod fixtures;
mod immutability;
mod listing;
mod migrations;
mod prompts;
mod telemetry;
mod tokens;
