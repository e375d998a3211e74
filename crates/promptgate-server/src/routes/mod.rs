//! The HTTP routes, one module per area of the contract. Handlers are thin: they check scopes,
//! convert wire types to domain drafts, call the core and the store, and convert back.

pub mod api_keys;
pub mod audit;
pub mod clients;
pub mod endpoints;
pub mod invocations;
pub mod oauth;
pub mod openai;
pub mod ops;
pub mod prompts;
pub mod telemetry;
