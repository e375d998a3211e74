//! Integration tests of both stores against real databases: SQLite files in a temp dir per
//! test, and PostgreSQL databases of their own on the test server (`promptgate_store::testing`
//! starts one under `target/pg-test/` unless `PROMPTGATE_TEST_POSTGRES_URL` names one).
//!
//! Most tests are one body, `async fn name(backend: Backend)`, run once per store by
//! [`for_each_store!`]: `cargo test -p promptgate-store -- ::postgres::` runs the PostgreSQL half.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Runs each named test body once against SQLite (`<module>::sqlite::<name>`) and once against
/// PostgreSQL (`<module>::postgres::<name>`). A body left out of the list is dead code, which
/// the lints refuse, so no test silently runs on one store only.
macro_rules! for_each_store {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::fixtures::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::fixtures::Backend::Postgres).await
                }
            )+
        }
    };
}

mod api_keys;
mod audit;
mod clients;
mod concurrency;
mod fixtures;
mod immutability;
mod leases;
mod listing;
mod migrate;
mod migrations;
mod nul;
mod postgres;
mod prompts;
mod telemetry;
mod templates;
mod tokens;
