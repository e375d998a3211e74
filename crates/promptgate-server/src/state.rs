//! What every handler shares: the store, the endpoint catalogue, the token counter, the token
//! authority, the prompt cache, the providers and the telemetry sink. Built once at start-up;
//! nothing here is loaded per request.

use std::collections::HashMap;
use std::sync::Arc;

use promptgate_core::{EndpointCatalogue, TokenCounter};
use promptgate_providers::Provider;
use promptgate_store::Store;
use time::OffsetDateTime;

use crate::auth::TokenAuthority;
use crate::cache::PromptCache;
use crate::telemetry::TelemetrySink;

/// Shared state of the router.
#[derive(Clone)]
pub struct AppState {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Model endpoints by `ref`.
    pub catalogue: Arc<EndpointCatalogue>,
    /// The tokenizers, loaded once.
    pub counter: TokenCounter,
    /// Token issuing and checking.
    pub auth: Arc<TokenAuthority>,
    /// The largest request body, for the 413 message.
    pub max_body_bytes: usize,
    /// Serialises changes to one prompt within this process.
    pub prompt_locks: Arc<PromptLocks>,
    /// Prompts as invocations read them, from memory.
    pub prompts: Arc<PromptCache>,
    /// One provider per model endpoint, sharing one connection pool.
    pub providers: Arc<HashMap<String, Arc<dyn Provider>>>,
    /// Where invocations leave their telemetry records.
    pub telemetry: Arc<TelemetrySink>,
    /// The optional model-based check for blocked categories.
    pub moderation: Option<Arc<ModerationCheck>>,
    /// Invocation metrics for `/metrics`.
    pub metrics: Arc<crate::metrics::GatewayMetrics>,
    /// Each exporter's health, by name, for `/metrics`.
    pub exporter_health: Arc<Vec<(String, Arc<crate::exporters::ExporterHealth>)>>,
    /// Whether `/metrics` is served, and whether it needs a token.
    pub prometheus: PrometheusSettings,
    /// The audit log's signing key, tree heads and proofs.
    pub audit: Arc<crate::audit::AuditLog>,
    /// Per-client rate limits (`[rate_limits]`), checked by the `Caller` extractor; `None`
    /// (no limit) unless the configuration has the section.
    pub rate_limits: Option<Arc<crate::ratelimit::RateLimiter>>,
    /// What one request may carry (`[limits]`).
    pub limits: crate::limits::RequestLimits,
    /// The cap on calls in flight to each model endpoint.
    pub upstream_slots: Arc<crate::upstream::UpstreamSlots>,
    /// Whether every request gets its access-log line (`[server] access_log`, default on).
    pub access_log: bool,
}

/// `[exporters.prometheus]`.
#[derive(Debug, Clone, Copy)]
pub struct PrometheusSettings {
    /// Serve `/metrics` (default true).
    pub enabled: bool,
    /// Require a bearer token with `ai:telemetry:read` (default false).
    pub require_token: bool,
}

impl Default for PrometheusSettings {
    fn default() -> Self {
        PrometheusSettings {
            enabled: true,
            require_token: false,
        }
    }
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
    /// State over `store` and `catalogue` with a provider for every endpoint; records go to
    /// `telemetry`.
    pub fn new(
        store: Arc<dyn Store>,
        catalogue: EndpointCatalogue,
        auth: Arc<TokenAuthority>,
        max_body_bytes: usize,
        telemetry: TelemetrySink,
    ) -> Result<Self, promptgate_providers::ProviderError> {
        let counter = TokenCounter::load();
        // The default tokenizer is loaded before the first request, not by it.
        counter.warm(promptgate_core::TokenizerKind::O200kBase);
        let http = promptgate_providers::http_client()?;
        let providers = catalogue
            .iter()
            .map(|e| {
                (
                    e.reference.clone(),
                    promptgate_providers::provider_for(e, http.clone(), counter),
                )
            })
            .collect();
        // A key for this run only; `Gateway::bind` replaces it with the configured or stored one.
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        let audit = Arc::new(crate::audit::AuditLog::new(
            store.clone(),
            ed25519_dalek::SigningKey::from_bytes(&seed),
            false,
        ));
        let upstream_slots = Arc::new(crate::upstream::UpstreamSlots::new(
            &catalogue,
            &HashMap::new(),
        ));
        Ok(AppState {
            upstream_slots,
            audit,
            prompts: Arc::new(PromptCache::new(store.clone())),
            store,
            catalogue: Arc::new(catalogue),
            counter,
            auth,
            max_body_bytes,
            prompt_locks: Arc::default(),
            providers: Arc::new(providers),
            telemetry: Arc::new(telemetry),
            moderation: None,
            metrics: Arc::default(),
            exporter_health: Arc::default(),
            prometheus: PrometheusSettings::default(),
            rate_limits: None,
            limits: crate::limits::RequestLimits::default(),
            access_log: true,
        })
    }

    /// Adds the model-based moderation check.
    pub fn with_moderation(
        mut self,
        section: &crate::config::ModerationSection,
    ) -> Result<Self, promptgate_providers::ProviderError> {
        let http = promptgate_providers::http_client()?;
        self.moderation = Some(Arc::new(ModerationCheck {
            client: promptgate_providers::Moderation::new(&section.client_config(), http),
            fail_open: section.fail_open,
        }));
        Ok(self)
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

/// The current time, truncated to the millisecond that is stored, so that an answer written
/// from memory and one read back from the database show the same instant.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now)
}

/// RFC 3339 in UTC with milliseconds, as every answer shows times.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}
