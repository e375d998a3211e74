//! `promptgate telemetry …` and `promptgate feedback`: the numbers per version, and the
//! tutorial's export of every record to a URL.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Subcommand;
use futures_util::StreamExt;
use promptgate_client::api::{ExportPayload, TelemetrySummary};
use promptgate_client::{Client, Score, TelemetryQuery};

use crate::UsageError;
use crate::output::Output;

/// Filters shared by the telemetry commands.
#[derive(Debug, Clone, clap::Args)]
pub struct Filters {
    /// Only this prompt (id).
    #[arg(long)]
    prompt: Option<String>,
    /// Only this version.
    #[arg(long)]
    version: Option<String>,
    /// Received at or after this RFC 3339 time.
    #[arg(long)]
    start: Option<String>,
    /// Received before this RFC 3339 time.
    #[arg(long)]
    end: Option<String>,
    /// SUCCESS, ERROR or BLOCKED.
    #[arg(long)]
    status: Option<String>,
    /// Only the invocations that named this label (such as production).
    #[arg(long)]
    label: Option<String>,
}

impl Filters {
    fn query(&self) -> TelemetryQuery {
        TelemetryQuery {
            prompt_id: self.prompt.clone(),
            version: self.version.clone(),
            start_time: self.start.clone(),
            end_time: self.end.clone(),
            status: self.status.clone(),
            label: self.label.clone(),
            page_size: Some(500),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TelemetryCommand {
    /// List invocation records, oldest first.
    #[command(
        after_help = "Example:\n  promptgate telemetry list --prompt 01a21b90-f811-7001-9495-3ba146e3a674 --status ERROR --json"
    )]
    List(Filters),
    /// Per-version counts, error rates, latency percentiles, tokens and feedback.
    #[command(
        after_help = "Example:\n  promptgate telemetry summary --prompt ID --start 2026-11-01T00:00:00Z"
    )]
    Summary {
        #[command(flatten)]
        filters: Filters,
        /// Compare every version with this one (differences with 95% confidence intervals).
        #[arg(long)]
        compare_to: Option<String>,
    },
    /// Is a version better than the reference? Differences with 95% confidence intervals.
    #[command(after_help = "Example:\n  promptgate telemetry compare --prompt ID 1.0.0")]
    Compare {
        /// The reference version.
        reference: String,
        #[command(flatten)]
        filters: Filters,
    },
    /// Page through every matching record and POST them as one payload to a URL.
    #[command(
        after_help = "Example:\n  promptgate telemetry export --to https://collector.example.com/ingest --prompt ID\n\nThe payload is {\"metrics\": [records…], \"exportTimestamp\": \"…\"} with header X-Source: promptgate."
    )]
    Export {
        /// Where to POST the payload.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        filters: Filters,
    },
}

/// `promptgate feedback` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  promptgate feedback inv-01a21bd2-154a-7682-ab40-31b3eac93004 --score 0.8 --comment 'solved it'\n  promptgate feedback inv-… --up"
)]
pub struct FeedbackArgs {
    /// The invocation's responseId.
    response_id: String,
    /// A score from 0 to 1.
    #[arg(long, conflicts_with_all = ["up", "down"], required_unless_present_any = ["up", "down"])]
    score: Option<f64>,
    /// Thumbs up (score 1).
    #[arg(long, conflicts_with = "down")]
    up: bool,
    /// Thumbs down (score 0).
    #[arg(long)]
    down: bool,
    /// A comment.
    #[arg(long)]
    comment: Option<String>,
}

/// Runs a telemetry command.
pub async fn run(
    command: TelemetryCommand,
    client: &Client,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    match command {
        TelemetryCommand::List(filters) => {
            let mut records = Vec::new();
            let mut stream = client.list_telemetry(&filters.query());
            while let Some(record) = stream.next().await {
                records.push(record?);
            }
            if out.json {
                out.print_json(&records);
            } else {
                println!(
                    "{:<42} {:<25} {:<10} {:<8} {:>10} {:>7}",
                    "ID", "TIMESTAMP", "VERSION", "STATUS", "LATENCY", "TOKENS"
                );
                for r in &records {
                    println!(
                        "{:<42} {:<25} {:<10} {:<8} {:>8.1}ms {:>7}",
                        r.id, r.timestamp, r.version, r.status, r.latency_ms, r.token_usage.total
                    );
                }
            }
        }
        TelemetryCommand::Summary {
            filters,
            compare_to,
        } => {
            let summary = client
                .telemetry_summary(&filters.query(), compare_to.as_deref())
                .await?;
            print_summary(&summary, out);
        }
        TelemetryCommand::Compare { reference, filters } => {
            let summary = client
                .telemetry_summary(&filters.query(), Some(&reference))
                .await?;
            print_summary(&summary, out);
        }
        TelemetryCommand::Export { to, filters } => {
            if !(to.starts_with("http://") || to.starts_with("https://")) {
                return Err(UsageError(format!(
                    "--to must be an http:// or https:// URL, not {to:?}"
                ))
                .into());
            }
            let show_progress = !out.json && std::io::stderr().is_terminal();
            let progress = show_progress.then(|| {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.set_message("reading records");
                bar
            });
            let mut metrics = Vec::new();
            let mut stream = client.list_telemetry(&filters.query());
            while let Some(record) = stream.next().await {
                metrics.push(record?);
                if let Some(bar) = &progress {
                    bar.set_message(format!("{} records read", metrics.len()));
                    bar.tick();
                }
            }
            let count = metrics.len();
            let payload = ExportPayload {
                metrics,
                export_timestamp: now_rfc3339(),
            };
            if let Some(bar) = &progress {
                bar.set_message(format!("posting {count} records to {to}"));
            }
            client.post_export(&to, &payload).await?;
            if let Some(bar) = progress {
                bar.finish_and_clear();
            }
            if out.json {
                out.print_json(&serde_json::json!({"exported": count, "to": to}));
            } else {
                println!("exported {count} records to {to}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `promptgate feedback`.
pub async fn feedback(
    args: FeedbackArgs,
    client: &Client,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let score = match (args.score, args.up, args.down) {
        (Some(x), _, _) if (0.0..=1.0).contains(&x) => Score::Number(x),
        (Some(x), _, _) => {
            return Err(UsageError(format!("--score is {x}; use a number from 0 to 1")).into());
        }
        (None, true, _) => Score::Bool(true),
        (None, _, true) => Score::Bool(false),
        (None, false, false) => {
            return Err(UsageError("give --score, --up or --down".to_owned()).into());
        }
    };
    let stored = client
        .feedback(&args.response_id, score, args.comment.as_deref())
        .await?;
    if out.json {
        out.print_json(&stored);
    } else {
        println!(
            "feedback {} recorded for {}",
            stored.score, stored.response_id
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(summary: &TelemetrySummary, out: &Output) {
    if out.json {
        out.print_json(summary);
        return;
    }
    println!(
        "{:<12} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9}",
        "VERSION",
        "COUNT",
        "ERRORS",
        "BLOCKED",
        "ERR RATE",
        "P50 ms",
        "P95 ms",
        "P99 ms",
        "TOKENS",
        "FEEDBACK"
    );
    for v in &summary.entities {
        let (p50, p95, p99) = v
            .latency_ms
            .map_or((f64::NAN, f64::NAN, f64::NAN), |l| (l.p50, l.p95, l.p99));
        println!(
            "{:<12} {:>7} {:>7} {:>7} {:>8.2}% {:>9.1} {:>9.1} {:>9.1} {:>10} {:>9}",
            v.version,
            v.count,
            v.error_count,
            v.blocked_count,
            v.error_rate * 100.0,
            p50,
            p95,
            p99,
            v.token_usage.total,
            v.feedback
                .mean
                .map_or("-".to_owned(), |m| format!("{m:.2}"))
        );
    }
    // The schema-valid rate: of the outputs checked against a JSON response format, the
    // share that matched, with Wilson's 95% interval (versions without one are left out).
    for v in &summary.entities {
        let Some(rate) = &v.schema_valid_rate else {
            continue;
        };
        println!(
            "  {}: schema-valid {:.2}% ({} of {}; 95% CI {:.2}% to {:.2}%)",
            v.version,
            rate.rate * 100.0,
            rate.valid,
            rate.count,
            rate.ci95[0] * 100.0,
            rate.ci95[1] * 100.0
        );
    }
    // The cost, of versions served by a priced endpoint (docs/cost.md).
    for v in &summary.entities {
        let Some(cost) = &v.cost else { continue };
        let interval = cost.mean_ci95.map_or(String::new(), |[low, high]| {
            format!(" (95% CI {} to {})", usd(low), usd(high))
        });
        println!(
            "  {}: cost {} over {} priced calls, mean {}{interval}",
            v.version,
            usd(cost.total_usd),
            cost.count,
            usd(cost.mean_usd)
        );
    }
    let checked = |version: &str| {
        summary
            .entities
            .iter()
            .any(|v| v.version == version && v.schema_valid_rate.is_some())
    };
    for v in &summary.entities {
        let Some(c) = &v.comparison else { continue };
        let show =
            |name: &str, d: &Option<promptgate_client::api::DiffEstimate>, unit: &str| match d {
                Some(d) => println!(
                    "  {} vs {}: {name} {:+.4}{unit} (95% CI {:+.4} to {:+.4}){}",
                    v.version,
                    c.against,
                    d.estimate,
                    d.ci95[0],
                    d.ci95[1],
                    if d.significant {
                        " — significant"
                    } else {
                        " — not significant"
                    }
                ),
                None => println!("  {} vs {}: {name} — too little data", v.version, c.against),
            };
        show("error rate", &c.error_rate_diff, "");
        show("mean latency", &c.mean_latency_ms_diff, " ms");
        // Only where outputs are checked at all: prompts without a JSON format have no rate.
        if c.schema_valid_rate_diff.is_some() || checked(&v.version) || checked(&c.against) {
            show("schema-valid rate", &c.schema_valid_rate_diff, "");
        }
        if let Some(d) = &c.cost_mean_usd_diff {
            println!(
                "  {} vs {}: mean cost {}{} (95% CI {} to {}){}",
                v.version,
                c.against,
                if d.estimate >= 0.0 { "+" } else { "" },
                usd(d.estimate),
                usd(d.ci95[0]),
                usd(d.ci95[1]),
                if d.significant {
                    " — significant"
                } else {
                    " — not significant"
                }
            );
        }
    }
}

/// US dollars with three significant digits below $1, so that fractions of a cent show
/// ($0.000123), and cents from $1 on; as the console writes them.
fn usd(x: f64) -> String {
    let sign = if x < 0.0 { "-" } else { "" };
    let abs = x.abs();
    if abs == 0.0 {
        return "$0".to_owned();
    }
    if !abs.is_finite() {
        return format!("${x}");
    }
    if abs >= 1.0 {
        return format!("{sign}${abs:.2}");
    }
    let digits = ((-abs.log10()).ceil() as usize + 2).min(20);
    format!("{sign}${abs:.digits$}")
}

fn now_rfc3339() -> String {
    promptgate_server::clock::now()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
