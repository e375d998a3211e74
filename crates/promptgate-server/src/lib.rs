//! promptgate's HTTP gateway: the axum router, authentication, the error contract and the
//! server's start-up and shutdown.
//!
//! Architecture invariant: handlers hold no business rules; they convert between the wire types
//! of `promptgate-api` and the domain of `promptgate-core`, and call the `Store`.

#![warn(missing_docs)]

pub mod access_log;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod client_addr;
pub mod clients;
pub mod config;
pub mod console;
pub mod error;
pub mod exporters;
pub mod extract;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod routes;
pub mod state;
pub mod telemetry;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use promptgate_api::BASE_PATH;
use promptgate_store::{Store, StoreError};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::TokenAuthority;
use crate::cache::PromptCache;
use crate::clients::{ClientError, NewClient};
use crate::config::{ConfigError, ConfigFile};
use crate::error::ApiError;
use crate::routes::{
    audit as audit_routes, clients as client_routes, endpoints, invocations, oauth, openai, ops,
    prompts, telemetry as telemetry_routes,
};
use crate::state::AppState;
use crate::telemetry::TelemetrySink;

/// How often expired tokens are deleted from the database.
const TOKEN_SWEEP_INTERVAL: Duration = Duration::from_secs(600);
/// How long invocation records are kept (`[telemetry] retention_days`).
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// Builds the router over `state`, with the error contract, request ids and body limit applied
/// to every route, including unknown ones.
pub fn app(state: AppState) -> Router {
    let max_body = state.max_body_bytes;
    let request_timeout = state.limits.request_timeout;
    let access_log = state.access_log;
    let router = Router::new()
        .route("/oauth/token", post(oauth::token))
        .route(
            &format!("{BASE_PATH}/prompts"),
            get(prompts::list_prompts).post(prompts::create_prompt),
        )
        .route(
            &format!("{BASE_PATH}/prompts/{{id}}"),
            get(prompts::get_prompt)
                .put(prompts::update_prompt)
                .delete(prompts::archive_prompt),
        )
        .route(
            &format!("{BASE_PATH}/prompts/{{id}}/versions"),
            get(prompts::list_versions),
        )
        .route(
            &format!("{BASE_PATH}/prompts/{{id}}/versions/{{version}}"),
            get(prompts::get_version),
        )
        .route(
            &format!("{BASE_PATH}/invocations"),
            post(invocations::invoke),
        )
        .route(
            &format!("{BASE_PATH}/invocations/{{responseId}}/feedback"),
            post(telemetry_routes::post_feedback),
        )
        .route(
            &format!("{BASE_PATH}/telemetry"),
            get(telemetry_routes::list_telemetry),
        )
        .route(
            &format!("{BASE_PATH}/telemetry/summary"),
            get(telemetry_routes::summary),
        )
        .route(
            &format!("{BASE_PATH}/audit-logs"),
            get(audit_routes::list_entries).post(audit_routes::append_entry),
        )
        .route(
            &format!("{BASE_PATH}/audit-logs/verify"),
            get(audit_routes::verify),
        )
        .route(
            &format!("{BASE_PATH}/audit-logs/checkpoint"),
            get(audit_routes::checkpoint),
        )
        .route(
            &format!("{BASE_PATH}/audit-logs/public-key"),
            get(audit_routes::public_key),
        )
        .route(
            &format!("{BASE_PATH}/audit-logs/consistency"),
            get(audit_routes::consistency_proof),
        )
        .route(
            &format!("{BASE_PATH}/audit-logs/{{sequence}}"),
            get(audit_routes::get_entry),
        )
        .route(
            &format!("{BASE_PATH}/audit-logs/{{sequence}}/proof"),
            get(audit_routes::inclusion_proof),
        )
        .route(
            &format!("{BASE_PATH}/model-endpoints"),
            get(endpoints::list_endpoints),
        )
        .route(
            "/api/v2/oauth/clients",
            get(client_routes::list_clients).post(client_routes::create_client),
        )
        .route(
            "/api/v2/oauth/clients/{id}/disable",
            post(client_routes::disable_client),
        )
        .route(
            "/api/v2/oauth/clients/{id}/rotate-secret",
            post(client_routes::rotate_client_secret),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/openapi.json", get(ops::openapi))
        .route("/metrics", get(ops::metrics))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/models", get(openai::list_models))
        .route("/v1/models/{model}", get(openai::get_model))
        .merge(console::router())
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(move |request, next| {
            limits::read_body_within(request_timeout, max_body, request, next)
        }))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(error::finish_errors));
    // Outside the error contract (so it logs the final status) and inside the request id.
    let router = if access_log {
        router.layer(axum::middleware::from_fn(access_log::log_requests))
    } else {
        router
    };
    router
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(TraceLayer::new_for_http())
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown panic".to_owned());
    ApiError::Internal(format!("panic: {detail}")).into_response()
}

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database cannot be opened or migrated.
    #[error("cannot open the database {url}")]
    Store {
        /// The database URL as it may be shown (`redact::database_url_for_display`: no
        /// password).
        url: String,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// The admin client cannot be created.
    #[error("cannot create the admin client")]
    Bootstrap(#[source] ClientError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The providers' HTTP client cannot be built.
    #[error("cannot set up the model providers")]
    Providers(#[source] promptgate_providers::ProviderError),
    /// The audit signing key cannot be read or created.
    #[error(transparent)]
    AuditKey(audit::KeyError),
    /// The TLS certificate or key cannot be used.
    #[error("cannot use the TLS certificate and key")]
    Tls(#[source] listener::TlsError),
    /// The server failed while running.
    #[error("the server failed")]
    Serve(#[source] std::io::Error),
}

/// What `Debug` prints in place of a secret.
pub(crate) const REDACTED: &str = "[redacted]";

/// What `serve` needs to start.
#[derive(Clone)]
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: String,
    /// Database URL.
    pub database_url: String,
    /// The parsed configuration file (defaults when none was given).
    pub config: ConfigFile,
    /// The admin client's id and secret to create on an empty database, if supplied.
    pub admin_credentials: Option<(String, String)>,
}

/// By hand: the database URL may carry a password, the admin credentials carry a secret, and
/// the configuration holds exporter headers and URLs with secrets in them.
impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("listen", &self.listen)
            .field(
                "database_url",
                &promptgate_core::redact::database_url_for_display(&self.database_url),
            )
            .field(
                "admin_client_id",
                &self.admin_credentials.as_ref().map(|(id, _)| id),
            )
            .field(
                "admin_client_secret",
                &self.admin_credentials.as_ref().map(|_| REDACTED),
            )
            .finish_non_exhaustive()
    }
}

/// A gateway bound to its address and ready to serve.
pub struct Gateway {
    listener: listener::Listener,
    router: Router,
    store: Arc<dyn Store>,
    auth: Arc<TokenAuthority>,
    prompts: Arc<PromptCache>,
    exporters: Vec<(
        Arc<dyn exporters::Target>,
        exporters::OutboxConfig,
        Arc<exporters::ExporterHealth>,
    )>,
    telemetry_writer: tokio::task::JoinHandle<()>,
    retention_days: u32,
    audit: Arc<audit::AuditLog>,
    checkpoint_interval: Duration,
    /// The address it listens on (the real port when 0 was asked for).
    pub local_addr: SocketAddr,
    /// Whether it speaks HTTPS (`[server] tls_cert_file` and `tls_key_file`).
    pub tls: bool,
    /// The admin client created on this start, whose secret must be shown once.
    pub bootstrapped_admin: Option<NewClient>,
}

impl Gateway {
    /// Opens the database, creates the admin client on an empty one, loads the tokenizers and
    /// binds the listener.
    pub async fn bind(options: ServeOptions) -> Result<Self, StartError> {
        let catalogue = options.config.catalogue()?;
        let store = promptgate_store::open_with(
            &options.database_url,
            &options.config.server.pool_settings(),
        )
        .await
        .map_err(|source| StartError::Store {
            url: promptgate_core::redact::database_url_for_display(&options.database_url),
            source,
        })?;
        let supplied = options
            .admin_credentials
            .as_ref()
            .map(|(id, secret)| (id.as_str(), secret.as_str()));
        let bootstrapped_admin = clients::bootstrap_admin(store.as_ref(), supplied)
            .await
            .map_err(StartError::Bootstrap)?;
        let auth = Arc::new(
            TokenAuthority::new(
                store.clone(),
                Duration::from_secs(options.config.auth.token_ttl_seconds),
                options.config.auth.failed_logins_per_minute,
            )
            .await
            .map_err(|source| StartError::Store {
                url: promptgate_core::redact::database_url_for_display(&options.database_url),
                source,
            })?
            .with_address_limit(options.config.auth.failed_logins_per_address_per_minute)
            .with_issuance_limits(
                options.config.auth.tokens_per_minute,
                options.config.auth.max_live_tokens_per_client,
            )
            .with_client_address_rule(options.config.server.client_address_rule()?),
        );
        let telemetry_config = options.config.telemetry.clone().unwrap_or_default();
        let (telemetry, telemetry_writer) = TelemetrySink::with_writer(
            telemetry_config
                .queue_capacity
                .map_or(telemetry::DEFAULT_QUEUE_CAPACITY, |c| c as usize),
            store.clone(),
        );
        let telemetry = telemetry.with_durability(telemetry_config.durability.unwrap_or_default());
        let state = AppState::new(
            store.clone(),
            catalogue,
            auth.clone(),
            options.config.server.max_body_bytes,
            telemetry,
        )
        .map_err(StartError::Providers)?;
        let state = match &options.config.moderation {
            Some(section) => state
                .with_moderation(section)
                .map_err(StartError::Providers)?,
            None => state,
        };
        let mut state = state;
        let audit_config = options.config.audit.clone().unwrap_or_default();
        let key_path = audit_config
            .signing_key_file
            .as_ref()
            .map(std::path::PathBuf::from)
            .or_else(|| audit::default_key_path(&options.database_url));
        let signing_key = match &key_path {
            Some(path) => audit::load_or_create_key(path).map_err(StartError::AuditKey)?,
            None => {
                tracing::warn!(
                    "no [audit] signing_key_file and the database is not a file: tree heads are \
                     signed with a key that lasts only for this run"
                );
                let mut seed = [0u8; 32];
                rand::fill(&mut seed);
                ed25519_dalek::SigningKey::from_bytes(&seed)
            }
        };
        state.audit = Arc::new(audit::AuditLog::new(
            store.clone(),
            signing_key,
            audit_config.hash_system_prompts.unwrap_or(false),
        ));
        audit::record_configuration(store.as_ref(), &options.config)
            .await
            .map_err(|source| StartError::Store {
                url: promptgate_core::redact::database_url_for_display(&options.database_url),
                source,
            })?;
        if let Some(p) = options
            .config
            .exporters
            .as_ref()
            .and_then(|e| e.prometheus.as_ref())
        {
            state.prometheus = state::PrometheusSettings {
                enabled: p.enabled.unwrap_or(true),
                require_token: p.require_token.unwrap_or(false),
            };
        }
        state.rate_limits = options.config.rate_limiter().map(Arc::new);
        state.access_log = options.config.server.access_log.unwrap_or(true);
        // The operator's own endpoints say which other tokenizers requests will need: load them
        // now too. A built-in endpoint's tokenizer loads on its first use.
        for configured in &options.config.model_endpoints {
            if let Some(endpoint) = state.catalogue.get(&configured.reference) {
                state.counter.warm(endpoint.tokenizer);
            }
        }
        state.limits = limits::RequestLimits::from_section(options.config.limits.as_ref());
        state.limits.request_timeout =
            Duration::from_millis(options.config.server.request_timeout_ms);
        state.upstream_slots = Arc::new(upstream::UpstreamSlots::new(
            &state.catalogue,
            &options.config.endpoint_call_limits(),
        ));
        if state.rate_limits.is_none() {
            tracing::warn!(
                "no [rate_limits] in the configuration: clients are not rate limited; add the \
                 section (even empty, for 50 requests/s and a burst of 100 per client)"
            );
        }
        let prompts = state.prompts.clone();
        let mut exporters = Vec::new();
        if let Some(webhook) = options
            .config
            .exporters
            .as_ref()
            .and_then(|e| e.webhook.as_ref())
        {
            let target = exporters::webhook::Webhook::new(&webhook.url, webhook.headers.clone())
                .map_err(|e| StartError::Config(ConfigError::Invalid(e)))?;
            exporters.push((
                Arc::new(target) as Arc<dyn exporters::Target>,
                webhook.outbox(),
                Arc::new(exporters::ExporterHealth::default()),
            ));
        }
        if let Some(otlp) = options
            .config
            .exporters
            .as_ref()
            .and_then(|e| e.otlp.as_ref())
        {
            let endpoint = otlp
                .endpoint
                .as_deref()
                .unwrap_or(exporters::otlp::DEFAULT_ENDPOINT);
            let target = exporters::otlp::Otlp::new(
                endpoint,
                otlp.headers.clone(),
                otlp.include_content.unwrap_or(false),
            )
            .map_err(|e| {
                StartError::Config(ConfigError::Invalid(format!("exporters.otlp: {e}")))
            })?;
            exporters.push((
                Arc::new(target) as Arc<dyn exporters::Target>,
                exporters::OutboxConfig::default(),
                Arc::new(exporters::ExporterHealth::default()),
            ));
        }
        state.exporter_health = Arc::new(
            exporters
                .iter()
                .map(|(target, _, health)| (target.name().to_owned(), health.clone()))
                .collect(),
        );
        let tls_files = match (
            &options.config.server.tls_cert_file,
            &options.config.server.tls_key_file,
        ) {
            (Some(cert), Some(key)) => Some(listener::TlsFiles {
                cert: cert.into(),
                key: key.into(),
            }),
            _ => None,
        };
        let listener = listener::Listener::bind(
            &options.listen,
            options.config.server.connection_limits(),
            tls_files.as_ref(),
        )
        .await?;
        let local_addr = listener.local_addr();
        let tls = listener.is_tls();
        if state.prometheus.enabled
            && !state.prometheus.require_token
            && !local_addr.ip().is_loopback()
        {
            tracing::warn!(
                listen = %local_addr,
                "/metrics is public on an address beyond loopback: it names prompts, versions, \
                 model endpoints and request volumes; set [exporters.prometheus] \
                 require_token = true or keep the port off untrusted networks"
            );
        }
        let audit_log = state.audit.clone();
        Ok(Gateway {
            audit: audit_log,
            checkpoint_interval: audit_config
                .checkpoint_interval_seconds
                .map_or(audit::DEFAULT_CHECKPOINT_INTERVAL, Duration::from_secs),
            listener,
            router: app(state),
            store,
            auth,
            prompts,
            exporters,
            telemetry_writer,
            retention_days: telemetry_config
                .retention_days
                .unwrap_or(DEFAULT_RETENTION_DAYS),
            local_addr,
            tls,
            bootstrapped_admin,
        })
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish and closes the
    /// database.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let refresher = tokio::spawn(refresh_loop(
            self.auth.clone(),
            self.prompts.clone(),
            self.store.clone(),
            self.retention_days,
        ));
        let checkpoints = tokio::spawn(audit::checkpoint_loop(
            self.audit.clone(),
            self.checkpoint_interval,
        ));
        let (stop_exporters, stop) = tokio::sync::watch::channel(false);
        // One id for every lease this process holds; replicas each draw their own.
        let holder = exporters::new_holder_id();
        let outboxes: Vec<_> = self
            .exporters
            .into_iter()
            .map(|(target, config, health)| {
                tokio::spawn(exporters::run_outbox(
                    self.store.clone(),
                    target,
                    config,
                    health,
                    holder.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        let served = self.listener.serve(self.router, shutdown).await;
        refresher.abort();
        checkpoints.abort();
        // A last head, so that what this run appended is covered by a signature.
        if let Err(err) = self.audit.checkpoint().await {
            tracing::warn!(error = ?err, "cannot sign the final audit tree head");
        }
        // The router, and with it every telemetry sink, is gone: the writer stores what is
        // still queued and ends.
        if let Err(err) = self.telemetry_writer.await {
            tracing::error!(error = %err, "the telemetry writer failed");
        }
        // Exporters stop after their current pass and give up their leases, so another
        // replica continues at once; what is not delivered stays in the outbox.
        let _ = stop_exporters.send(true);
        for outbox in outboxes {
            let _ = outbox.await;
        }
        self.store.close().await;
        served.map_err(StartError::Serve)
    }
}

/// Keeps the token cache's view of disabled clients and the prompt cache fresh, and sweeps
/// expired tokens.
async fn refresh_loop(
    auth: Arc<TokenAuthority>,
    prompts: Arc<PromptCache>,
    store: Arc<dyn Store>,
    retention_days: u32,
) {
    let mut tick = tokio::time::interval(auth::REVOCATION_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sweep = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        if let Err(err) = auth.refresh().await {
            tracing::warn!(error = ?err, "cannot refresh the disabled clients");
        }
        if let Err(err) = prompts.refresh().await {
            tracing::warn!(error = ?err, "cannot refresh the prompt cache");
        }
        if last_sweep.elapsed() >= TOKEN_SWEEP_INTERVAL {
            last_sweep = tokio::time::Instant::now();
            let now = time::OffsetDateTime::now_utc();
            match store.delete_expired_tokens(now).await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "deleted expired access tokens"),
                Ok(_) => {}
                Err(err) => tracing::warn!(error = ?err, "cannot delete expired tokens"),
            }
            let horizon = now - time::Duration::days(i64::from(retention_days));
            match store.prune_invocations(horizon).await {
                Ok(n) if n > 0 => {
                    tracing::info!(deleted = n, retention_days, "pruned old invocation records");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = ?err, "cannot prune invocation records"),
            }
        }
    }
}
