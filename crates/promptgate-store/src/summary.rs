//! The telemetry summary computed by the database: what both stores share.
//!
//! A summary used to load every matching record into the gateway (1.5 M records: over 1 GB
//! for four concurrent calls). Now each store runs, in one read-only snapshot:
//! 1. one aggregate query per version: counts, token sums, and the latency and feedback
//!    [`Moments`](promptgate_core::stats::Moments) in two passes (the means, then the sums of
//!    squared deviations from them, joined back by version), all exact;
//! 2. one ranking query: the latencies of each version numbered in ascending order by a window
//!    function (`ROW_NUMBER() OVER (PARTITION BY version ORDER BY latency_ms)`), of which only
//!    the few at the ranks [`percentile_ranks`] names come back.
//!
//! The database sorts (PostgreSQL within `work_mem`, spilling to disk; SQLite in its sorter,
//! spilling to temporary files); the gateway holds one row per version plus three to six values
//! per version, whatever the range. The percentiles are the exact type-7 percentiles the
//! in-memory summary computed, bit for bit (the interpolation is the same Rust code).

use std::collections::HashMap;

use promptgate_core::stats::{self, GroupAggregate, Moments, SUMMARY_PERCENTILES};

use crate::VersionAggregate;

/// One version's row of the aggregate query, as both stores decode it.
#[derive(Debug, Clone, Default)]
pub(crate) struct AggregateRow {
    pub(crate) version: String,
    pub(crate) count: i64,
    pub(crate) error_count: i64,
    pub(crate) blocked_count: i64,
    pub(crate) prompt_tokens: i64,
    pub(crate) completion_tokens: i64,
    pub(crate) latency_n: i64,
    pub(crate) latency_mean: Option<f64>,
    pub(crate) latency_m2: Option<f64>,
    pub(crate) feedback_n: i64,
    pub(crate) feedback_mean: Option<f64>,
    pub(crate) feedback_m2: Option<f64>,
    pub(crate) schema_n: i64,
    pub(crate) schema_valid_n: i64,
    pub(crate) cost_n: i64,
    pub(crate) cost_total: Option<f64>,
    pub(crate) cost_mean: Option<f64>,
    pub(crate) cost_m2: Option<f64>,
}

impl AggregateRow {
    /// Decodes one row of the aggregate query: the column names and types are the same on both
    /// stores.
    pub(crate) fn from_row<'r, R>(row: &'r R) -> Result<Self, sqlx::Error>
    where
        R: sqlx::Row,
        &'static str: sqlx::ColumnIndex<R>,
        String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(AggregateRow {
            version: row.try_get("version")?,
            count: row.try_get("n")?,
            error_count: row.try_get("errors")?,
            blocked_count: row.try_get("blocked")?,
            prompt_tokens: row.try_get("prompt_tokens")?,
            completion_tokens: row.try_get("completion_tokens")?,
            latency_n: row.try_get("latency_n")?,
            latency_mean: row.try_get("latency_mean")?,
            latency_m2: row.try_get("latency_m2")?,
            feedback_n: row.try_get("feedback_n")?,
            feedback_mean: row.try_get("feedback_mean")?,
            feedback_m2: row.try_get("feedback_m2")?,
            schema_n: row.try_get("schema_n")?,
            schema_valid_n: row.try_get("schema_valid_n")?,
            cost_n: row.try_get("cost_n")?,
            cost_total: row.try_get("cost_total")?,
            cost_mean: row.try_get("cost_mean")?,
            cost_m2: row.try_get("cost_m2")?,
        })
    }
}

fn moments(n: i64, mean: Option<f64>, m2: Option<f64>) -> Moments {
    match (u64::try_from(n), mean) {
        (Ok(n), Some(mean)) if n > 0 => Moments {
            n,
            mean,
            m2: m2.unwrap_or(0.0),
        },
        _ => Moments::default(),
    }
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The (version, 0-based rank) pairs whose latencies the percentiles need.
pub(crate) fn wanted_ranks(rows: &[AggregateRow]) -> (Vec<String>, Vec<i64>) {
    let mut versions = Vec::new();
    let mut ranks = Vec::new();
    for row in rows {
        for p in SUMMARY_PERCENTILES {
            if let Some((lo, next)) = stats::percentile_ranks(unsigned(row.latency_n), p) {
                for rank in std::iter::once(lo).chain(next) {
                    let rank = i64::try_from(rank).unwrap_or(i64::MAX);
                    versions.push(row.version.clone());
                    ranks.push(rank);
                }
            }
        }
    }
    (versions, ranks)
}

/// The aggregates, with the percentiles read from the ranked latencies.
pub(crate) fn assemble(
    rows: Vec<AggregateRow>,
    ranked: &HashMap<(String, i64), f64>,
) -> Vec<VersionAggregate> {
    rows.into_iter()
        .map(|row| {
            let n = unsigned(row.latency_n);
            let at = |rank: u64| {
                let rank = i64::try_from(rank).ok()?;
                ranked.get(&(row.version.clone(), rank)).copied()
            };
            let percentile = |p: f64| stats::percentile_from_ranks(n, p, at);
            let latency_percentiles = (|| {
                Some([
                    percentile(SUMMARY_PERCENTILES[0])?,
                    percentile(SUMMARY_PERCENTILES[1])?,
                    percentile(SUMMARY_PERCENTILES[2])?,
                ])
            })();
            VersionAggregate {
                group: GroupAggregate {
                    count: unsigned(row.count),
                    error_count: unsigned(row.error_count),
                    blocked_count: unsigned(row.blocked_count),
                    prompt_tokens: unsigned(row.prompt_tokens),
                    completion_tokens: unsigned(row.completion_tokens),
                    latency: moments(row.latency_n, row.latency_mean, row.latency_m2),
                    latency_percentiles,
                    feedback: moments(row.feedback_n, row.feedback_mean, row.feedback_m2),
                    schema_checked: unsigned(row.schema_n),
                    schema_valid: unsigned(row.schema_valid_n),
                    cost: moments(row.cost_n, row.cost_mean, row.cost_m2),
                    cost_total_usd: row.cost_total.unwrap_or(0.0),
                },
                version: row.version,
            }
        })
        .collect()
}
