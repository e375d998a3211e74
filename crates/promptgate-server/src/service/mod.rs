//! The engine: the gateway's use cases as functions that know nothing of HTTP. Each takes typed
//! input (already parsed from the wire by a route), decides with `promptgate-core`, writes
//! through the `Store`, and returns a typed result or a typed error that the route turns into
//! the contract's answer. `/v1` and `…/invocations` are two front doors over one `invoke`.

pub mod api_keys;
pub mod audit;
pub mod clients;
pub mod feedback;
pub mod invoke;
pub mod prompts;
pub mod telemetry;
pub mod tokens;
