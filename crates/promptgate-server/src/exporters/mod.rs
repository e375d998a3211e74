//! Exporters that push telemetry to the observability stack teams already run, off the request
//! path, from a durable outbox: the `invocations` table is the outbox and each exporter keeps a
//! cursor (the sequence of the last record it delivered) in the database. A target that is down
//! keeps its records until it is back, across restarts, within the backlog bounds.
//!
//! Several gateways may share one database (replicas on PostgreSQL, or a second process on the
//! same SQLite file), and each runs every configured exporter. Only the process holding the
//! exporter's lease (`exporter_leases`) delivers: it takes the lease, or renews it, at the start
//! of every pass, records the batch it is about to send (only while the lease is still its own,
//! which fences a holder whose lease lapsed), delivers, then moves the cursor. On graceful
//! shutdown it gives the lease up so another replica continues at once.
//!
//! What a crash costs: a holder that dies between recording a batch and moving the cursor leaves
//! that batch pending; when its lease expires (after [`OutboxConfig::lease_ttl`]) the next
//! holder sends exactly that batch again, with the same batch id, before anything else. So each
//! record is delivered once, except that a crash (or a holder stalled for longer than the lease)
//! can deliver the one in-flight batch twice, both times under the same id, which receivers
//! drop by id (the webhook's `Idempotency-Key`). Replicas must run the exporter with the same
//! settings and clocks that agree to well within the lease's lifetime (NTP does).

pub mod otlp;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use promptgate_store::{PendingBatch, Store, StoredInvocation, TelemetryFilter};
use serde::{Deserialize, Serialize};
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
    /// How long the delivery lease lasts unless renewed: how soon another replica takes over
    /// after the holder crashed. At least three flush intervals are used whatever it says.
    pub lease_ttl: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            batch_size: 100,
            flush_interval: Duration::from_secs(1),
            max_backlog: 100_000,
            max_age: Duration::from_secs(7 * 24 * 3600),
            lease_ttl: DEFAULT_LEASE_TTL,
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

/// How long a delivery lease lasts unless renewed (`OutboxConfig::lease_ttl`'s default). Longer
/// than a pass can take (the targets time out after 10 s), so a live holder never loses it in
/// the middle of a delivery; short enough that a crashed holder's exporter resumes soon.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// A fresh holder id for this process's leases: random, so that two processes never share one.
pub fn new_holder_id() -> Arc<str> {
    Arc::from(uuid::Uuid::new_v4().to_string())
}

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// A batch went out; more may be waiting.
    Delivered,
    /// Nothing to deliver.
    Idle,
    /// Another process holds the lease.
    NotHolder,
}

/// Delivers the outbox to `target` whenever this process (`holder`) holds the exporter's lease,
/// until `stop` turns true; the last pass finishes first and the lease is then given up.
pub async fn run_outbox(
    store: Arc<dyn Store>,
    target: Arc<dyn Target>,
    config: OutboxConfig,
    health: Arc<ExporterHealth>,
    holder: Arc<str>,
    mut stop: watch::Receiver<bool>,
) {
    // Renewed every pass, so it must outlast the pause between two passes.
    let ttl = config.lease_ttl.max(config.flush_interval * 3);
    let mut backoff = config.flush_interval;
    let mut holding = false;
    loop {
        let outcome = pass(
            store.as_ref(),
            target.as_ref(),
            &config,
            &health,
            &holder,
            ttl,
            &mut holding,
        )
        .await;
        let wait = match outcome {
            Ok(Pass::Delivered) => {
                backoff = config.flush_interval;
                Duration::ZERO
            }
            Ok(Pass::Idle | Pass::NotHolder) => {
                backoff = config.flush_interval;
                config.flush_interval
            }
            Err(err) => {
                health.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(exporter = target.name(), error = ?err, retry_in_ms = backoff.as_millis() as u64, "telemetry export failed; will retry");
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        if *stop.borrow() {
            break;
        }
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => break,
            }
        }
    }
    if holding {
        match store.release_exporter_lease(target.name(), &holder).await {
            Ok(()) => tracing::info!(exporter = target.name(), "gave up the delivery lease"),
            Err(err) => {
                tracing::warn!(exporter = target.name(), error = ?err, "cannot give up the delivery lease; another replica takes over when it expires")
            }
        }
    }
}

/// One pass: takes or renews the lease, then, as its holder, delivers one batch.
async fn pass(
    store: &dyn Store,
    target: &dyn Target,
    config: &OutboxConfig,
    health: &ExporterHealth,
    holder: &str,
    ttl: Duration,
    holding: &mut bool,
) -> Result<Pass, String> {
    let name = target.name();
    let granted = store
        .try_acquire_exporter_lease(name, holder, crate::clock::now(), ttl)
        .await
        .map_err(|e| e.to_string())?;
    if !granted {
        if std::mem::take(holding) {
            tracing::warn!(
                exporter = name,
                "another replica took over the delivery lease"
            );
        }
        // The gauge stays meaningful on every replica, whichever one delivers.
        let cursor = store
            .exporter_cursor(name)
            .await
            .map_err(|e| e.to_string())?;
        let newest = store
            .last_invocation_seq()
            .await
            .map_err(|e| e.to_string())?;
        health.queued.store(
            u64::try_from(newest - cursor).unwrap_or(0),
            Ordering::Relaxed,
        );
        return Ok(Pass::NotHolder);
    }
    if !*holding {
        *holding = true;
        tracing::info!(
            exporter = name,
            holder,
            "this process now delivers the exporter's outbox"
        );
    }
    deliver_once(store, target, config, health, holder).await
}

/// The id of the batch of records `first..=last`: the same on every replica and every attempt.
fn batch_id(exporter: &str, batch: PendingBatch) -> String {
    format!("{exporter}-{}-{}", batch.first_seq, batch.last_seq)
}

/// As the lease holder: skips what is over the backlog bounds, re-sends a batch that a previous
/// holder began and did not finish, or else delivers the next batch, and moves the cursor.
async fn deliver_once(
    store: &dyn Store,
    target: &dyn Target,
    config: &OutboxConfig,
    health: &ExporterHealth,
    holder: &str,
) -> Result<Pass, String> {
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
            .advance_exporter_cursor(name, cursor, skip_to, crate::clock::now())
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
    let pending = store
        .pending_exporter_batch(name)
        .await
        .map_err(|e| e.to_string())?
        .filter(|p| p.first_seq > cursor && p.last_seq >= p.first_seq);
    let (batch, records) = match pending {
        // Begun by a holder that crashed (or failed) before the cursor moved: the same records
        // under the same id, whatever their age, so that a receiver recognises the repeat.
        Some(pending) => {
            let span = u32::try_from(pending.last_seq - pending.first_seq + 1).unwrap_or(u32::MAX);
            let mut records = store
                .list_invocations(
                    &TelemetryFilter::default(),
                    Some(pending.first_seq - 1),
                    span,
                )
                .await
                .map_err(|e| e.to_string())?;
            records.retain(|r| r.seq <= pending.last_seq);
            (pending, records)
        }
        None => {
            let oldest_kept = crate::clock::now()
                - time::Duration::try_from(config.max_age).unwrap_or(time::Duration::WEEK);
            let filter = TelemetryFilter {
                start: Some(oldest_kept),
                ..TelemetryFilter::default()
            };
            let records = store
                .list_invocations(&filter, Some(cursor), config.batch_size.max(1))
                .await
                .map_err(|e| e.to_string())?;
            let (Some(first), Some(last)) = (records.first(), records.last()) else {
                return Ok(Pass::Idle);
            };
            let batch = PendingBatch {
                first_seq: first.seq,
                last_seq: last.seq,
            };
            (batch, records)
        }
    };
    // The fence: the batch is recorded, and sent, only while the lease is still this
    // process's (it may have lapsed during a long pause since the pass began).
    if !store
        .begin_exporter_batch(name, holder, crate::clock::now(), batch)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(Pass::NotHolder);
    }
    if !records.is_empty() {
        target.deliver(&batch_id(name, batch), &records).await?;
    }
    if store
        .advance_exporter_cursor(name, cursor, batch.last_seq, crate::clock::now())
        .await
        .map_err(|e| e.to_string())?
    {
        // Records between the cursor and the batch's end that it does not hold were too old
        // to send (or pruned meanwhile).
        let too_old = u64::try_from(batch.last_seq - cursor)
            .unwrap_or(0)
            .saturating_sub(records.len() as u64);
        health
            .delivered
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        health.skipped.fetch_add(too_old, Ordering::Relaxed);
    }
    Ok(Pass::Delivered)
}

/// `[exporters]` (consumed by the telemetry work).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExportersSection {
    /// `[exporters.webhook]`.
    #[serde(default)]
    pub webhook: Option<WebhookExporter>,
    /// `[exporters.otlp]`.
    #[serde(default)]
    pub otlp: Option<OtlpExporter>,
    /// `[exporters.prometheus]`.
    #[serde(default)]
    pub prometheus: Option<PrometheusExporter>,
}

/// `[exporters.webhook]`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookExporter {
    /// Target URL.
    pub url: String,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Records per POST.
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// Longest wait before a partial batch is sent.
    #[serde(default)]
    pub flush_interval_ms: Option<u64>,
    /// Most undelivered records kept.
    #[serde(default)]
    pub max_backlog: Option<u64>,
    /// Undelivered records older than this many hours are skipped (default 168, a week).
    #[serde(default)]
    pub max_age_hours: Option<u64>,
}

impl WebhookExporter {
    /// The outbox settings, with defaults for what is not set.
    pub fn outbox(&self) -> OutboxConfig {
        let defaults = OutboxConfig::default();
        OutboxConfig {
            batch_size: self.batch_size.unwrap_or(defaults.batch_size).max(1),
            flush_interval: self
                .flush_interval_ms
                .map_or(defaults.flush_interval, |ms| {
                    std::time::Duration::from_millis(ms.max(10))
                }),
            max_backlog: self.max_backlog.unwrap_or(defaults.max_backlog),
            max_age: self.max_age_hours.map_or(defaults.max_age, |h| {
                std::time::Duration::from_secs(h * 3600)
            }),
            lease_ttl: defaults.lease_ttl,
        }
    }
}

/// `[exporters.otlp]`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpExporter {
    /// Collector URL.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Whether message content is exported.
    #[serde(default)]
    pub include_content: Option<bool>,
}

/// `[exporters.prometheus]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusExporter {
    /// Whether `/metrics` is served.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Whether `/metrics` needs a token.
    #[serde(default)]
    pub require_token: Option<bool>,
}

impl ExportersSection {
    /// Refuses a webhook URL that is not http(s).
    pub fn check(&self) -> Result<(), String> {
        if let Some(webhook) = &self.webhook
            && !(webhook.url.starts_with("http://") || webhook.url.starts_with("https://"))
        {
            return Err("exporters.webhook.url must be an http:// or https:// URL".into());
        }
        Ok(())
    }
}

/// A configured pushing exporter: where it delivers, how its outbox runs, and its health for
/// `/metrics`.
pub struct Exporter {
    /// The destination.
    pub target: Arc<dyn Target>,
    /// Batching, backlog and lease settings.
    pub outbox: OutboxConfig,
    /// Delivery health, shown on `/metrics`.
    pub health: Arc<ExporterHealth>,
}

/// The pushing exporters `[exporters]` configures (webhook, then OTLP); `[exporters.prometheus]`
/// is served, not pushed. The error names the section.
pub fn from_config(section: Option<&ExportersSection>) -> Result<Vec<Exporter>, String> {
    let mut exporters = Vec::new();
    let Some(section) = section else {
        return Ok(exporters);
    };
    if let Some(webhook) = &section.webhook {
        let target = webhook::Webhook::new(&webhook.url, webhook.headers.clone())?;
        exporters.push(Exporter {
            target: Arc::new(target),
            outbox: webhook.outbox(),
            health: Arc::default(),
        });
    }
    if let Some(otlp) = &section.otlp {
        let endpoint = otlp.endpoint.as_deref().unwrap_or(otlp::DEFAULT_ENDPOINT);
        let target = otlp::Otlp::new(
            endpoint,
            otlp.headers.clone(),
            otlp.include_content.unwrap_or(false),
        )
        .map_err(|e| format!("exporters.otlp: {e}"))?;
        exporters.push(Exporter {
            target: Arc::new(target),
            outbox: OutboxConfig::default(),
            health: Arc::default(),
        });
    }
    Ok(exporters)
}

/// By hand: the URL may carry its secret in the path, the headers their tokens.
impl std::fmt::Debug for WebhookExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookExporter")
            .field("url", &promptgate_core::redact::url_origin(&self.url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("batch_size", &self.batch_size)
            .field("flush_interval_ms", &self.flush_interval_ms)
            .field("max_backlog", &self.max_backlog)
            .field("max_age_hours", &self.max_age_hours)
            .finish()
    }
}

/// By hand: the endpoint may carry user-info, the headers their tokens.
impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter")
            .field(
                "endpoint",
                &self
                    .endpoint
                    .as_deref()
                    .map(promptgate_core::redact::url_without_secrets),
            )
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
