//! `promptgate migrate`: moves a SQLite database into PostgreSQL with the audit chain intact.
//! The work is `promptgate_store::migrate::copy`; this is its command line.
//!
//! Exit codes: 0 copied, 2 called wrongly (URLs of the wrong kind, a missing source file),
//! 3 refused or failed (a non-empty target, a damaged audit log, an unreachable or failing
//! database); nothing is written to the target unless everything is.

use std::process::ExitCode;

use promptgate_store::migrate::{CopyError, CopyReport, copy};
use serde_json::json;

use crate::UsageError;

/// Exit code when the copy is refused or fails.
const EXIT_REFUSED: u8 = 3;

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The SQLite database to copy (sqlite://PATH); it must exist. Stop the gateway first:
    /// what it writes after the copy starts is not copied. Pending schema migrations are
    /// applied to it first, as `serve` would; nothing else in it changes.
    #[arg(long)]
    from: String,
    /// The PostgreSQL database to fill (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE). It
    /// must exist and be empty; its tables are created.
    #[arg(long)]
    to: String,
}

pub async fn run(args: MigrateArgs, json: bool) -> anyhow::Result<ExitCode> {
    match copy(&args.from, &args.to).await {
        Ok(report) => {
            print_report(&args.from, &report, json);
            Ok(ExitCode::SUCCESS)
        }
        Err(err) if err.is_usage() => Err(UsageError(err.to_string()).into()),
        Err(err) => {
            print_failure(&err);
            Ok(ExitCode::from(EXIT_REFUSED))
        }
    }
}

#[allow(clippy::print_stdout)]
fn print_report(from: &str, report: &CopyReport, json: bool) {
    if json {
        let mut counts = serde_json::Map::new();
        for (table, count) in report.counts() {
            counts.insert(table.to_owned(), json!(count));
        }
        counts.insert(
            "replaced_nul_values".to_owned(),
            json!(report.replaced_nul_values),
        );
        println!("{}", serde_json::Value::Object(counts));
        return;
    }
    // The target's URL is not repeated, and the source's only in its display form: either may
    // carry a password.
    println!(
        "copied {} into PostgreSQL in one transaction:",
        promptgate_core::redact::database_url_for_display(from)
    );
    for (table, count) in report.counts() {
        println!("  {table:<18} {count:>10}");
    }
    if report.replaced_nul_values > 0 {
        println!(
            "  ({} text values held U+0000, which PostgreSQL cannot store; it became U+FFFD)",
            report.replaced_nul_values
        );
    }
    println!(
        "the audit log was copied verbatim; `promptgate audit verify --database-url …` checks it"
    );
}

/// The error and its causes, as `main` prints errors.
#[allow(clippy::print_stderr)]
fn print_failure(err: &CopyError) {
    eprintln!("promptgate: error: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
}
