//! Exporters that push telemetry to the observability stack teams already run, off the request
//! path, from a durable outbox: the `invocations` table is the outbox and each exporter keeps a
//! cursor (the sequence of the last record it delivered) in the database. Delivery is at least
//! once: a batch is delivered, then the cursor moves; a crash between the two delivers the batch
//! again, with the same batch id, so receivers can drop the repeat. A target that is down keeps
//! its records until it is back, across restarts, within the backlog bounds.

pub mod otlp;
pub mod webhook;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use promptgate_store::{Store, StoredInvocation, TelemetryFilter};
use time::OffsetDateTime;
use tokio::sync::watch;

/// Where an exporter sends batches.
#[async_trait]
pub trait Target: Send + Sync {
    /// The exporter's name, also its cursor's key.
    fn name(&self) -> &str;
    /// Delivers one batch; `batch_id` is the same every time this batch is delivered.
    async fn deliver(&self, batch_id: &str, records: &[StoredInvocation]) -> Result<(), String>;
}

/// How an outbox batches and bounds its backlog.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Records per batch.
    pub batch_size: u32,
    /// How often the outbox looks for new records.
    pub flush_interval: Duration,
    /// The most undelivered records kept; older ones are skipped (and counted).
    pub max_backlog: u64,
    /// Undelivered records older than this are skipped (and counted).
    pub max_age: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            batch_size: 100,
            flush_interval: Duration::from_secs(1),
            max_backlog: 100_000,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// An exporter's health, for `/metrics` and logs.
#[derive(Debug, Default)]
pub struct ExporterHealth {
    /// Records stored but not yet delivered.
    pub queued: AtomicU64,
    /// Records delivered.
    pub delivered: AtomicU64,
    /// Failed delivery attempts.
    pub failed: AtomicU64,
    /// Records skipped because the backlog was over its bounds.
    pub skipped: AtomicU64,
}

/// The longest wait between delivery attempts to a failing target.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Delivers the outbox to `target` until `stop` turns true; the last pass finishes first.
pub async fn run_outbox(
    store: Arc<dyn Store>,
    target: Arc<dyn Target>,
    config: OutboxConfig,
    health: Arc<ExporterHealth>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = config.flush_interval;
    loop {
        let wait = match deliver_once(store.as_ref(), target.as_ref(), &config, &health).await {
            Ok(true) => {
                backoff = config.flush_interval;
                Duration::ZERO
            }
            Ok(false) => {
                backoff = config.flush_interval;
                config.flush_interval
            }
            Err(err) => {
                health.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(exporter = target.name(), error = %err, retry_in_ms = backoff.as_millis() as u64, "telemetry export failed; will retry");
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        if *stop.borrow() {
            return;
        }
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// One pass: skips what is over the backlog bounds, delivers one batch and moves the cursor.
/// `Ok(true)` when a batch was delivered (more may be waiting).
async fn deliver_once(
    store: &dyn Store,
    target: &dyn Target,
    config: &OutboxConfig,
    health: &ExporterHealth,
) -> Result<bool, String> {
    let name = target.name();
    let mut cursor = store
        .exporter_cursor(name)
        .await
        .map_err(|e| e.to_string())?;
    let newest = store
        .last_invocation_seq()
        .await
        .map_err(|e| e.to_string())?;
    let lag = u64::try_from(newest - cursor).unwrap_or(0);
    health.queued.store(lag, Ordering::Relaxed);
    if lag > config.max_backlog {
        let skip_to = newest - i64::try_from(config.max_backlog).unwrap_or(i64::MAX);
        if store
            .advance_exporter_cursor(name, cursor, skip_to, OffsetDateTime::now_utc())
            .await
            .map_err(|e| e.to_string())?
        {
            health.skipped.fetch_add(
                u64::try_from(skip_to - cursor).unwrap_or(0),
                Ordering::Relaxed,
            );
            tracing::warn!(
                exporter = name,
                skipped = skip_to - cursor,
                "telemetry backlog over max_backlog; oldest records skipped"
            );
            cursor = skip_to;
        }
    }
    let oldest_kept = OffsetDateTime::now_utc()
        - time::Duration::try_from(config.max_age).unwrap_or(time::Duration::WEEK);
    let filter = TelemetryFilter {
        start: Some(oldest_kept),
        ..TelemetryFilter::default()
    };
    let batch = store
        .list_invocations(&filter, Some(cursor), config.batch_size.max(1))
        .await
        .map_err(|e| e.to_string())?;
    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
        return Ok(false);
    };
    // Records between the cursor and this batch were too old to send.
    let too_old = u64::try_from(last.seq - cursor).unwrap_or(0) - batch.len() as u64;
    let batch_id = format!("{name}-{}-{}", first.seq, last.seq);
    target.deliver(&batch_id, &batch).await?;
    if store
        .advance_exporter_cursor(name, cursor, last.seq, OffsetDateTime::now_utc())
        .await
        .map_err(|e| e.to_string())?
    {
        health
            .delivered
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        health.skipped.fetch_add(too_old, Ordering::Relaxed);
    }
    Ok(true)
}
