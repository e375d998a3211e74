//! Conversions between the domain (`promptgate-core`, `promptgate-store`) and the contract's
//! wire types (`promptgate-api`), in one place, so that routes, the audit log's snapshots and
//! the exporters show a thing the same way.

pub mod audit;
pub mod clients;
pub mod endpoints;
pub mod invocations;
pub mod openai;
pub mod prompts;
pub mod telemetry;
pub mod tools;
