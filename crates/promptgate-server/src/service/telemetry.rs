//! Reading telemetry: the stored invocation records page by page, and the per-version summary
//! with its comparisons (`docs/statistics.md`). Both first store what is queued, so a caller
//! sees its own invocations.

use std::collections::BTreeMap;

use promptgate_core::VersionLabel;
use promptgate_core::stats::{self, Comparison, GroupAggregate, GroupSummary};
use promptgate_store::{StoreError, StoredInvocation, SummaryGroup, TelemetryFilter};

use crate::state::AppState;

/// Why telemetry cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a summary covers: the records the filter lets through, and the version every other
/// version is compared with, if any.
#[derive(Debug)]
pub struct SummaryQuery {
    /// The records summarised.
    pub filter: TelemetryFilter,
    /// The reference version of the comparisons (`compareTo`).
    pub compare_to: Option<String>,
    /// What the entities are: versions, or serving endpoints (`groupBy=endpoint`).
    pub group: SummaryGroup,
}

/// The numbers of every version (newest first), or of every serving endpoint (by name).
#[derive(Debug)]
pub struct Summary {
    /// One entry per version (or endpoint) that has records.
    pub versions: Vec<VersionNumbers>,
    /// The reference version of the comparisons, as asked.
    pub compare_to: Option<String>,
    /// What `versions` are.
    pub group: SummaryGroup,
}

/// One version's numbers and, when a reference was asked for and this is another version, its
/// differences from the reference.
#[derive(Debug)]
pub struct VersionNumbers {
    /// The version label.
    pub version: String,
    /// Counts, rates, latencies, tokens and feedback.
    pub summary: GroupSummary,
    /// The differences from the reference version.
    pub comparison: Option<Comparison>,
}

/// Up to `limit` records after storage sequence `after` that `filter` lets through, oldest
/// first; everything queued before the call is listed.
pub async fn list_records(
    state: &AppState,
    filter: &TelemetryFilter,
    after: Option<i64>,
    limit: u32,
) -> Result<Vec<StoredInvocation>, TelemetryError> {
    state.telemetry.flush().await;
    Ok(state.store.list_invocations(filter, after, limit).await?)
}

/// Summarises the filtered records per version; everything queued before the call is counted.
pub async fn summarize(state: &AppState, query: SummaryQuery) -> Result<Summary, TelemetryError> {
    state.telemetry.flush().await;
    // The database aggregates (one row per version), never the records themselves: the
    // gateway's memory does not grow with the range (promptgate-store's summary.rs).
    let groups: BTreeMap<String, GroupAggregate> = state
        .store
        .summary_aggregates(&query.filter, query.group)
        .await?
        .into_iter()
        .map(|v| (v.version, v.group))
        .collect();
    let compare_to = query.compare_to;
    let empty = GroupAggregate::default();
    let reference = compare_to.as_ref().map(|v| groups.get(v).unwrap_or(&empty));
    let mut versions: Vec<VersionNumbers> = groups
        .iter()
        .map(|(version, aggregate)| VersionNumbers {
            version: version.clone(),
            summary: stats::summarize_aggregate(aggregate),
            comparison: match (&compare_to, reference) {
                (Some(against), Some(reference)) if against != version => {
                    Some(stats::compare_aggregates(aggregate, reference))
                }
                _ => None,
            },
        })
        .collect();
    // Versions newest first by semver when they parse, else by text; endpoints by name.
    versions.sort_by(|a, b| {
        if query.group == SummaryGroup::Endpoint {
            return a.version.cmp(&b.version);
        }
        match (
            a.version.parse::<VersionLabel>(),
            b.version.parse::<VersionLabel>(),
        ) {
            (Ok(x), Ok(y)) => y.cmp(&x),
            _ => b.version.cmp(&a.version),
        }
    });
    Ok(Summary {
        versions,
        compare_to,
        group: query.group,
    })
}
