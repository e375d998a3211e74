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
pub mod clock;
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
pub mod service;
pub mod state;
pub mod telemetry;
pub mod templates;
pub mod tools;
pub mod upstream;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use promptgate_api::BASE_PATH;
use promptgate_store::{Store, StoreError};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::TokenAuthority;
use crate::cache::PromptCache;
use crate::config::{ConfigError, ConfigFile};
use crate::error::ApiError;
use crate::routes::{
    api_keys as key_routes, audit as audit_routes, clients as client_routes, endpoints,
    invocations, oauth, openai, ops, prompts, telemetry as telemetry_routes,
};
use crate::service::clients::{self, ClientError, NewClient};
use crate::state::{AppState, Background};

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
            &format!("{BASE_PATH}/prompts/{{id}}/labels/{{label}}"),
            put(prompts::put_label).delete(prompts::delete_label),
        )
        .route(
            &format!("{BASE_PATH}/prompts/{{id}}/render"),
            post(prompts::render),
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
        .route(
            "/api/v2/oauth/clients/{id}/api-keys",
            get(key_routes::list_client_api_keys).post(key_routes::create_api_key),
        )
        .route(
            "/api/v2/oauth/clients/{id}/api-keys/{keyId}",
            delete(key_routes::revoke_client_api_key),
        )
        .route("/api/v2/oauth/api-keys", get(key_routes::list_api_keys))
        .route(
            "/api/v2/oauth/api-keys/{keyId}",
            delete(key_routes::revoke_api_key),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/openapi.json", get(openapi::serve))
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
    state: AppState,
    background: Background,
    retention_days: u32,
    checkpoint_interval: Duration,
    /// The address it listens on (the real port when 0 was asked for).
    pub local_addr: SocketAddr,
    /// Whether it speaks HTTPS (`[server] tls_cert_file` and `tls_key_file`).
    pub tls: bool,
    /// The admin client created on this start, whose secret must be shown once.
    pub bootstrapped_admin: Option<NewClient>,
}

impl Gateway {
    /// Opens the database, creates the admin client on an empty one, builds the state (which
    /// loads the tokenizers), records the configuration in the audit log and binds the listener.
    pub async fn bind(options: ServeOptions) -> Result<Self, StartError> {
        let config = &options.config;
        let store_error = |source| StartError::Store {
            url: promptgate_core::redact::database_url_for_display(&options.database_url),
            source,
        };
        let store =
            promptgate_store::open_with(&options.database_url, &config.server.pool_settings())
                .await
                .map_err(store_error)?;
        let supplied = options
            .admin_credentials
            .as_ref()
            .map(|(id, secret)| (id.as_str(), secret.as_str()));
        let bootstrapped_admin = clients::bootstrap_admin(store.as_ref(), supplied)
            .await
            .map_err(StartError::Bootstrap)?;
        let (state, background) =
            AppState::from_config(config, store.clone(), &options.database_url).await?;
        audit::record_configuration(store.as_ref(), config)
            .await
            .map_err(store_error)?;
        if config.rate_limits.is_none() {
            tracing::warn!(
                "no [rate_limits] in the configuration: clients are not rate limited; add the \
                 section (even empty, for 50 requests/s and a burst of 100 per client)"
            );
        }
        let tls_files = config.server.tls_files();
        let listener = listener::Listener::bind(
            &options.listen,
            config.server.connection_limits(),
            tls_files.as_ref(),
        )
        .await?;
        let local_addr = listener.local_addr();
        let prometheus = state.prometheus();
        if prometheus.enabled && !prometheus.require_token && !local_addr.ip().is_loopback() {
            tracing::warn!(
                listen = %local_addr,
                "/metrics is public on an address beyond loopback: it names prompts, versions, \
                 model endpoints and request volumes; set [exporters.prometheus] \
                 require_token = true or keep the port off untrusted networks"
            );
        }
        let telemetry = config.telemetry.clone().unwrap_or_default();
        Ok(Gateway {
            checkpoint_interval: config
                .audit
                .as_ref()
                .and_then(|a| a.checkpoint_interval_seconds)
                .map_or(audit::DEFAULT_CHECKPOINT_INTERVAL, Duration::from_secs),
            tls: listener.is_tls(),
            listener,
            router: app(state.clone()),
            state,
            background,
            retention_days: telemetry.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS),
            local_addr,
            bootstrapped_admin,
        })
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish and closes the
    /// database.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let Gateway {
            listener,
            router,
            state,
            background,
            retention_days,
            checkpoint_interval,
            ..
        } = self;
        let store = state.store().clone();
        let audit = state.audit().clone();
        let authority = state.auth().clone();
        let refresher = tokio::spawn(refresh_loop(
            state.auth().clone(),
            state.prompts().clone(),
            store.clone(),
            retention_days,
        ));
        // The router holds its own clone; this one must not keep the telemetry sink alive
        // past shutdown, or the writer would never see the queue close.
        drop(state);
        let checkpoints = tokio::spawn(audit::checkpoint_loop(audit.clone(), checkpoint_interval));
        let (stop_exporters, stop) = tokio::sync::watch::channel(false);
        // One id for every lease this process holds; replicas each draw their own.
        let holder = exporters::new_holder_id();
        let outboxes: Vec<_> = background
            .exporters
            .into_iter()
            .map(|exporter| {
                tokio::spawn(exporters::run_outbox(
                    store.clone(),
                    exporter.target,
                    exporter.outbox,
                    exporter.health,
                    holder.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        let served = listener.serve(router, shutdown).await;
        refresher.abort();
        // The last second's API key uses, which the aborted refresh would have written.
        if let Err(err) = authority.flush_key_uses().await {
            tracing::warn!(error = ?err, "cannot record when API keys were last used");
        }
        checkpoints.abort();
        // A last head, so that what this run appended is covered by a signature.
        if let Err(err) = audit.checkpoint().await {
            tracing::warn!(error = ?err, "cannot sign the final audit tree head");
        }
        // The router, and with it every telemetry sink, is gone: the writer stores what is
        // still queued and ends.
        if let Err(err) = background.telemetry_writer.await {
            tracing::error!(error = %err, "the telemetry writer failed");
        }
        // Exporters stop after their current pass and give up their leases, so another
        // replica continues at once; what is not delivered stays in the outbox.
        let _ = stop_exporters.send(true);
        for outbox in outboxes {
            let _ = outbox.await;
        }
        store.close().await;
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
            let now = clock::now();
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
