//! What every handler shares: the store, the endpoint catalogue, the token counter, the token
//! authority, the prompt cache, the providers and the telemetry sink. Built once, from the
//! configuration, by [`AppState::from_config`]; nothing here is loaded per request and nothing
//! is replaced after start-up.

use std::collections::HashMap;
use std::sync::Arc;

use promptgate_core::{EndpointCatalogue, TokenCounter};
use promptgate_providers::Provider;
use promptgate_store::Store;

use crate::StartError;
use crate::audit::AuditLog;
use crate::auth::{Authenticates, TokenAuthority};
use crate::cache::PromptCache;
use crate::config::{ConfigError, ConfigFile};
use crate::exporters::{Exporter, ExporterHealth};
use crate::limits::RequestLimits;
use crate::metrics::{GatewayMetrics, PrometheusSettings};
use crate::ratelimit::RateLimiter;
use crate::telemetry::TelemetrySink;
use crate::upstream::{Circuits, UpstreamSlots};

/// Shared state of the router: cheap to clone (every member is shared or small).
#[derive(Clone)]
pub struct AppState {
    /// Storage.
    pub(crate) store: Arc<dyn Store>,
    /// Model endpoints by `ref`.
    pub(crate) catalogue: Arc<EndpointCatalogue>,
    /// The tokenizers, loaded once.
    pub(crate) counter: TokenCounter,
    /// Token issuing and checking.
    pub(crate) auth: Arc<TokenAuthority>,
    /// The largest request body, for the 413 message.
    pub(crate) max_body_bytes: usize,
    /// Serialises changes to one prompt within this process.
    pub(crate) prompt_locks: Arc<PromptLocks>,
    /// Prompts as invocations read them, from memory.
    pub(crate) prompts: Arc<PromptCache>,
    /// One provider per model endpoint, sharing one connection pool.
    pub(crate) providers: Arc<HashMap<String, Arc<dyn Provider>>>,
    /// Where invocations leave their telemetry records.
    pub(crate) telemetry: Arc<TelemetrySink>,
    /// The optional model-based check for blocked categories (same connection pool).
    pub(crate) moderation: Option<Arc<ModerationCheck>>,
    /// Invocation metrics for `/metrics`.
    pub(crate) metrics: Arc<GatewayMetrics>,
    /// Each exporter's health, by name, for `/metrics`.
    pub(crate) exporter_health: Arc<Vec<(String, Arc<ExporterHealth>)>>,
    /// Whether `/metrics` is served, and whether it needs a token.
    pub(crate) prometheus: PrometheusSettings,
    /// The audit log's signing key, tree heads and proofs.
    pub(crate) audit: Arc<AuditLog>,
    /// Per-client rate limits (`[rate_limits]`), checked by the `Caller` extractor; `None`
    /// (no limit) unless the configuration has the section.
    pub(crate) rate_limits: Option<Arc<RateLimiter>>,
    /// What one request may carry (`[limits]`).
    pub(crate) limits: RequestLimits,
    /// The cap on calls in flight to each model endpoint.
    pub(crate) upstream_slots: Arc<UpstreamSlots>,
    /// Each model endpoint's circuit breaker (this replica's).
    pub(crate) circuits: Arc<Circuits>,
    /// Whether every request gets its access-log line (`[server] access_log`, default on).
    pub(crate) access_log: bool,
}

/// What runs beside the router and must be started, then stopped, by whoever serves it: the
/// telemetry writer (it ends when the last sink, inside the router, is dropped) and the
/// pushing exporters.
pub struct Background {
    /// Stores queued telemetry records; awaited at shutdown so nothing queued is lost.
    pub telemetry_writer: tokio::task::JoinHandle<()>,
    /// The configured pushing exporters (webhook, OTLP), each with its health.
    pub exporters: Vec<Exporter>,
}

/// A moderation endpoint and what to do when it fails.
#[derive(Debug)]
pub struct ModerationCheck {
    /// The client.
    pub client: promptgate_providers::Moderation,
    /// Serve anyway when the endpoint fails (else refuse with 502).
    pub fail_open: bool,
}

impl AppState {
    /// Everything the routes share, built from `config` over `store`, in one step: the
    /// catalogue and a provider per endpoint over one pooled HTTP client (also the moderation
    /// check's), the tokenizers the configured endpoints need (loaded before the first request,
    /// not by it), the token authority, the telemetry queue and its writer, the audit log with
    /// its signing key (`[audit] signing_key_file`, else beside a SQLite file, else one for this
    /// run), the limits and the exporters. `database_url` only names where the default signing
    /// key lives and how a store error is shown.
    pub async fn from_config(
        config: &ConfigFile,
        store: Arc<dyn Store>,
        database_url: &str,
    ) -> Result<(AppState, Background), StartError> {
        let store_error = |source| StartError::Store {
            url: promptgate_core::redact::database_url_for_display(database_url),
            source,
        };
        let catalogue = config.catalogue()?;
        let counter = TokenCounter::load();
        counter.warm(promptgate_core::TokenizerKind::O200kBase);
        // The operator's own endpoints say which other tokenizers requests will need: load them
        // now too. A built-in endpoint's tokenizer loads on its first use.
        for configured in &config.model_endpoints {
            if let Some(endpoint) = catalogue.get(&configured.reference) {
                counter.warm(endpoint.tokenizer);
            }
        }
        let http = promptgate_providers::http_client().map_err(StartError::Providers)?;
        let providers = catalogue
            .iter()
            .map(|e| {
                let provider = promptgate_providers::provider_for(e, http.clone(), counter);
                (e.reference.clone(), provider)
            })
            .collect();
        let moderation = config.moderation.as_ref().map(|section| {
            Arc::new(ModerationCheck {
                client: promptgate_providers::Moderation::new(&section.client_config(), http),
                fail_open: section.fail_open,
            })
        });
        let auth = TokenAuthority::from_config(store.clone(), config)
            .await
            .map_err(store_error)?;
        let telemetry_config = config.telemetry.clone().unwrap_or_default();
        let (telemetry, telemetry_writer) =
            TelemetrySink::with_writer(telemetry_config.queue_capacity(), store.clone());
        let telemetry = telemetry.with_durability(telemetry_config.durability.unwrap_or_default());
        let audit_config = config.audit.clone().unwrap_or_default();
        let signing_key =
            crate::audit::signing_key(&audit_config, database_url).map_err(StartError::AuditKey)?;
        let audit = AuditLog::new(
            store.clone(),
            signing_key,
            audit_config.hash_system_prompts.unwrap_or(false),
        );
        let exporters = crate::exporters::from_config(config.exporters.as_ref())
            .map_err(|e| StartError::Config(ConfigError::Invalid(e)))?;
        let exporter_health = exporters
            .iter()
            .map(|e| (e.target.name().to_owned(), e.health.clone()))
            .collect();
        let state = AppState {
            upstream_slots: Arc::new(UpstreamSlots::new(
                &catalogue,
                &config.endpoint_call_limits(),
            )),
            circuits: Arc::new(Circuits::new(&catalogue, &config.endpoint_circuits())),
            audit: Arc::new(audit),
            prompts: Arc::new(PromptCache::new(store.clone())),
            store,
            catalogue: Arc::new(catalogue),
            counter,
            auth: Arc::new(auth),
            max_body_bytes: config.server.max_body_bytes,
            prompt_locks: Arc::default(),
            providers: Arc::new(providers),
            telemetry: Arc::new(telemetry),
            moderation,
            metrics: Arc::default(),
            exporter_health: Arc::new(exporter_health),
            prometheus: PrometheusSettings::from_config(config.exporters.as_ref()),
            rate_limits: RateLimiter::from_config(config.rate_limits.as_ref()).map(Arc::new),
            limits: RequestLimits {
                request_timeout: std::time::Duration::from_millis(config.server.request_timeout_ms),
                ..RequestLimits::from_section(config.limits.as_ref())
            },
            access_log: config.server.access_log.unwrap_or(true),
        };
        let background = Background {
            telemetry_writer,
            exporters,
        };
        Ok((state, background))
    }

    /// The token authority: tests and tools issue tokens through it.
    pub fn auth(&self) -> &Arc<TokenAuthority> {
        &self.auth
    }

    /// The store the state was built over.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The prompt cache the request path reads.
    pub fn prompts(&self) -> &Arc<PromptCache> {
        &self.prompts
    }

    /// The audit log (signing key, tree heads, proofs).
    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    /// Whether `/metrics` is served and how.
    pub fn prometheus(&self) -> PrometheusSettings {
        self.prometheus
    }

    /// The same state with invocation records going to `sink` instead: for tests that read the
    /// records as they are emitted rather than from the database.
    pub fn with_telemetry_sink(mut self, sink: TelemetrySink) -> Self {
        self.telemetry = Arc::new(sink);
        self
    }
}

impl Authenticates for AppState {
    fn authority(&self) -> &TokenAuthority {
        &self.auth
    }

    fn rate_limits(&self) -> Option<&RateLimiter> {
        self.rate_limits.as_deref()
    }
}

/// Striped locks that make concurrent changes to one prompt take turns inside this process,
/// so an unconditional update never loses a race to its neighbours and gives up. Changes from
/// other processes are still caught by the store's revision check and retried.
#[derive(Debug)]
pub struct PromptLocks {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl PromptLocks {
    /// A set of `stripes` locks; prompts whose ids hash alike share one.
    pub fn new(stripes: usize) -> Self {
        PromptLocks {
            stripes: (0..stripes.max(1))
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// Waits for the lock of `prompt_id`'s stripe.
    pub async fn lock(&self, prompt_id: uuid::Uuid) -> tokio::sync::MutexGuard<'_, ()> {
        let index = (prompt_id.as_u128() % self.stripes.len() as u128) as usize;
        self.stripes[index].lock().await
    }
}

impl Default for PromptLocks {
    fn default() -> Self {
        PromptLocks::new(64)
    }
}
