//! In-process tests of the router: the error contract, authentication failures, store failures
//! and the OpenAPI document, driven with `tower::ServiceExt::oneshot`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod body;
mod debug_redaction;
mod harness;
mod moderation;
mod openapi;
mod otlp;
mod outbox_leases;
mod postgres_outage;
mod routing;
mod store_failures;
