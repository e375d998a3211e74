//! The server's TOML configuration (`--config`). Every key has a safe default and an unknown key
//! is an error that names it, so a typo never silently falls back to a default.
//!
//! `ConfigFile` composes the sections. A section that configures one part of the gateway lives
//! in that part's module, with its checks and its conversion into the part's own type
//! (`[limits]` in `limits.rs`, `[rate_limits]` in `ratelimit.rs`, `[exporters]` in
//! `exporters/`, `[telemetry]` in `telemetry.rs`); those modules never import this one.

use std::path::Path;
use std::time::Duration;

use promptgate_core::endpoint::{DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_MS};
use promptgate_core::{EndpointCatalogue, ModelEndpoint, Prices, ProviderKind, TokenizerKind};
use serde::{Deserialize, Serialize};

pub use crate::exporters::{ExportersSection, OtlpExporter, PrometheusExporter, WebhookExporter};
pub use crate::limits::LimitsSection;
pub use crate::listener::ConnectionLimits;
use crate::listener::{
    DEFAULT_HEADER_READ_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES,
};
pub use crate::ratelimit::{ClientRateLimit, RateLimitsSection};
pub use crate::telemetry::TelemetrySection;

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://promptgate.db";

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the configuration file {path}")]
    Read {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key or a value of the wrong type.
    #[error("invalid configuration in {path}: {message}")]
    Parse {
        /// The path.
        path: String,
        /// The parser's message, which names the key and the line.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole file.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[server]`.
    #[serde(default)]
    pub server: ServerSection,
    /// `[auth]`.
    #[serde(default)]
    pub auth: AuthSection,
    /// `[[model_endpoints]]`.
    #[serde(default)]
    pub model_endpoints: Vec<EndpointEntry>,
    /// `[rate_limits]`.
    #[serde(default)]
    pub rate_limits: Option<RateLimitsSection>,
    /// `[exporters]`.
    #[serde(default)]
    pub exporters: Option<ExportersSection>,
    /// `[telemetry]`.
    #[serde(default)]
    pub telemetry: Option<TelemetrySection>,
    /// `[audit]`.
    #[serde(default)]
    pub audit: Option<AuditSection>,
    /// `[moderation]`: an optional model-based check for blocked categories.
    #[serde(default)]
    pub moderation: Option<ModerationSection>,
    /// `[limits]`: what one request may carry.
    #[serde(default)]
    pub limits: Option<LimitsSection>,
}

/// `[moderation]`: an endpoint with OpenAI's moderation API shape.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModerationSection {
    /// Base URL including the version path; the gateway appends `/moderations`.
    pub url: String,
    /// The moderation model (default `omni-moderation-latest`).
    #[serde(default)]
    pub model: Option<String>,
    /// The variable holding the key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Timeout of one attempt (default 5000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Retries on 429/5xx (default 1).
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// When the endpoint fails: serve anyway (true) or refuse with 502 (false, the default).
    #[serde(default)]
    pub fail_open: bool,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Listen address, below `--listen`.
    pub listen: Option<String>,
    /// Database URL, below `--database-url`.
    pub database_url: Option<String>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Longest time a request may take.
    pub request_timeout_ms: u64,
    /// PostgreSQL: connections this replica opens at most (default 10). The database's
    /// `max_connections` must cover the sum over replicas.
    pub database_max_connections: Option<u32>,
    /// PostgreSQL: how long one statement may run, lock waits included, before it is cancelled
    /// and the request answers 503 (default 30000).
    pub database_statement_timeout_ms: Option<u64>,
    /// PostgreSQL: how long a request waits for a connection, connecting included, before it
    /// answers 503; this bounds `/readyz` and every request while the database is down
    /// (default 5000).
    pub database_acquire_timeout_ms: Option<u64>,
    /// TLS certificate chain (PEM), below `--tls-cert`; with `tls_key_file`, the gateway speaks
    /// HTTPS only and re-reads both files on SIGHUP.
    pub tls_cert_file: Option<String>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1), below `--tls-key`.
    pub tls_key_file: Option<String>,
    /// Largest request head (request line plus headers), bytes (default 16384, at least 8192);
    /// over it the connection gets 431.
    pub max_header_bytes: Option<usize>,
    /// How long a client may take to send a request's head, ms (default 10000): a connection
    /// that dribbles its headers (slow-loris) is closed after it.
    pub header_read_timeout_ms: Option<u64>,
    /// How long a kept-alive connection may sit idle between requests, ms (default 60000).
    pub idle_timeout_ms: Option<u64>,
    /// Connections served at once (default 10000); further ones wait in the kernel's backlog.
    pub max_connections: Option<u32>,
    /// One info line per request (method, route, status, duration, request id, client id) on
    /// the log, so that the `contextId` of any answer, a 4xx included, can be found there
    /// (default true; `false` turns it off).
    pub access_log: Option<bool>,
    /// Networks of the proxies in front of the gateway (`["10.0.0.0/8", "::1/128"]`; a bare
    /// address is its own /32 or /128). Only from a peer in them is the forwarding header read
    /// for the source address (per-address login limits, logs); default none: the source is
    /// always the TCP peer. See `client_addr.rs`.
    pub trusted_proxies: Vec<String>,
    /// The forwarding header the trusted proxies write: `"x-forwarded-for"` (default) or
    /// `"forwarded"` (RFC 7239); the other is never read.
    pub forwarded_header: Option<crate::client_addr::ForwardedHeader>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: None,
            database_url: None,
            max_body_bytes: 1024 * 1024,
            request_timeout_ms: 30_000,
            database_max_connections: None,
            database_statement_timeout_ms: None,
            database_acquire_timeout_ms: None,
            tls_cert_file: None,
            tls_key_file: None,
            max_header_bytes: None,
            header_read_timeout_ms: None,
            idle_timeout_ms: None,
            max_connections: None,
            access_log: None,
            trusted_proxies: Vec::new(),
            forwarded_header: None,
        }
    }
}

impl ServerSection {
    /// Refuses zeros, a head limit under 8 KiB, half a TLS pair and a bad proxy network,
    /// naming the key.
    fn check(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes == 0 {
            return Err(ConfigError::Invalid(
                "server.max_body_bytes must be at least 1".into(),
            ));
        }
        if let Some(bytes) = self.max_header_bytes
            && bytes < 8192
        {
            return Err(ConfigError::Invalid(format!(
                "server.max_header_bytes is {bytes}; it must be at least 8192"
            )));
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(ConfigError::Invalid(
                "server.tls_cert_file and server.tls_key_file go together: set both or neither"
                    .into(),
            ));
        }
        // Zero would mean "no connections" or, to PostgreSQL, "no timeout at all".
        for (key, value) in [
            ("server.request_timeout_ms", Some(self.request_timeout_ms)),
            ("server.header_read_timeout_ms", self.header_read_timeout_ms),
            ("server.idle_timeout_ms", self.idle_timeout_ms),
            (
                "server.max_connections",
                self.max_connections.map(u64::from),
            ),
            (
                "server.database_max_connections",
                self.database_max_connections.map(u64::from),
            ),
            (
                "server.database_statement_timeout_ms",
                self.database_statement_timeout_ms,
            ),
            (
                "server.database_acquire_timeout_ms",
                self.database_acquire_timeout_ms,
            ),
        ] {
            if value == Some(0) {
                return Err(ConfigError::Invalid(format!("{key} must be at least 1")));
            }
        }
        self.client_address_rule()?;
        Ok(())
    }

    /// The connection-level limits: the configured ones, defaults for the rest.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_header_bytes: self.max_header_bytes.unwrap_or(DEFAULT_MAX_HEADER_BYTES),
            header_read_timeout: Duration::from_millis(
                self.header_read_timeout_ms
                    .unwrap_or(DEFAULT_HEADER_READ_TIMEOUT_MS),
            ),
            idle_timeout: Duration::from_millis(
                self.idle_timeout_ms.unwrap_or(DEFAULT_IDLE_TIMEOUT_MS),
            ),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            max_connections: self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
        }
    }

    /// How the source address of a request is found (`trusted_proxies`, `forwarded_header`);
    /// an entry that is not a network is an error naming the key.
    pub fn client_address_rule(
        &self,
    ) -> Result<crate::client_addr::ClientAddressRule, ConfigError> {
        let trusted = self
            .trusted_proxies
            .iter()
            .map(|text| {
                text.parse()
                    .map_err(|e| ConfigError::Invalid(format!("server.trusted_proxies: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::client_addr::ClientAddressRule::new(
            trusted,
            self.forwarded_header.unwrap_or_default(),
        ))
    }

    /// The certificate and key files when both are set (the check refuses one alone).
    pub fn tls_files(&self) -> Option<crate::listener::TlsFiles> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => Some(crate::listener::TlsFiles {
                cert: cert.into(),
                key: key.into(),
            }),
            _ => None,
        }
    }

    /// The database pool's limits: the configured ones, defaults for the rest.
    pub fn pool_settings(&self) -> promptgate_store::PoolSettings {
        let defaults = promptgate_store::PoolSettings::default();
        promptgate_store::PoolSettings {
            max_connections: self
                .database_max_connections
                .unwrap_or(defaults.max_connections),
            statement_timeout: self
                .database_statement_timeout_ms
                .map_or(defaults.statement_timeout, Duration::from_millis),
            acquire_timeout: self
                .database_acquire_timeout_ms
                .map_or(defaults.acquire_timeout, Duration::from_millis),
        }
    }
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Access token lifetime.
    pub token_ttl_seconds: u64,
    /// Failed `/oauth/token` attempts per client id per minute before 429.
    pub failed_logins_per_minute: u32,
    /// Failed `/oauth/token` attempts per source address per minute before 429, whatever client
    /// ids they name (default 30): one address cannot guess secrets across many ids.
    pub failed_logins_per_address_per_minute: u32,
    /// Tokens one client may obtain per minute (burst and sustained rate, per replica) before
    /// `/oauth/token` answers it 429 (default 60).
    pub tokens_per_minute: u32,
    /// Unexpired tokens kept per client (default 1000): issuing one more revokes the client's
    /// oldest, so that minting cannot grow the token table and cache without bound.
    pub max_live_tokens_per_client: u32,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            token_ttl_seconds: 86_400,
            failed_logins_per_minute: 10,
            failed_logins_per_address_per_minute: 10,
            tokens_per_minute: 60,
            max_live_tokens_per_client: 1000,
        }
    }
}

impl AuthSection {
    /// Refuses zeros, naming the key.
    fn check(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("auth.token_ttl_seconds", self.token_ttl_seconds),
            (
                "auth.failed_logins_per_minute",
                u64::from(self.failed_logins_per_minute),
            ),
            (
                "auth.failed_logins_per_address_per_minute",
                u64::from(self.failed_logins_per_address_per_minute),
            ),
            ("auth.tokens_per_minute", u64::from(self.tokens_per_minute)),
            (
                "auth.max_live_tokens_per_client",
                u64::from(self.max_live_tokens_per_client),
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{key} must be at least 1")));
            }
        }
        Ok(())
    }
}

/// One `[[model_endpoints]]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointEntry {
    /// The name prompts use.
    #[serde(rename = "ref")]
    pub reference: String,
    /// `openai`, `anthropic` or `builtin`.
    pub provider: String,
    /// Provider URL.
    #[serde(default)]
    pub base_url: String,
    /// Provider model name.
    pub model: String,
    /// The variable that holds the key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Context window; default 128000.
    #[serde(default)]
    pub context_window: Option<u32>,
    /// `o200k_base` or `cl100k_base`; default from the model.
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// Per-request timeout.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Retries on 429/5xx.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Calls in flight to this endpoint at most (default 256); one more is refused with 429.
    #[serde(default)]
    pub max_concurrent_calls: Option<u32>,
    /// US dollars per million prompt tokens (finite, at least 0). With either price set the
    /// endpoint is priced, its records carry `costUsd`, and the price left out counts 0. Left
    /// out of the audited snapshot when unset, so that an upgrade alone records no change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_price_per_million: Option<f64>,
    /// US dollars per million completion tokens (finite, at least 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_price_per_million: Option<f64>,
    /// Consecutive failures that open the endpoint's circuit breaker (default 5; 0 disables it).
    #[serde(default)]
    pub circuit_failure_threshold: Option<u32>,
    /// How long an open circuit refuses calls before one probe goes through (default 30000).
    #[serde(default)]
    pub circuit_open_ms: Option<u64>,
}

/// `[audit]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Ed25519 signing key file.
    #[serde(default)]
    pub signing_key_file: Option<String>,
    /// Store the system prompt's hash instead of its text in audit entries.
    #[serde(default)]
    pub hash_system_prompts: Option<bool>,
    /// How often a tree head is signed while entries arrive, 1–60 seconds (default 30).
    #[serde(default)]
    pub checkpoint_interval_seconds: Option<u64>,
}

impl ConfigFile {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses and checks configuration text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: String::new(),
            message: e.to_string(),
        })?;
        file.check()?;
        Ok(file)
    }

    /// Every section's checks, in the file's order of importance; the first failure is the
    /// error.
    fn check(&self) -> Result<(), ConfigError> {
        let invalid = ConfigError::Invalid;
        self.catalogue()?;
        if let Some(exporters) = &self.exporters {
            exporters.check().map_err(invalid)?;
        }
        if let Some(moderation) = &self.moderation {
            moderation.check()?;
        }
        if let Some(limits) = &self.limits {
            limits.check().map_err(invalid)?;
        }
        self.server.check()?;
        self.auth.check()?;
        if let Some(interval) = self
            .audit
            .as_ref()
            .and_then(|a| a.checkpoint_interval_seconds)
            && !(1..=60).contains(&interval)
        {
            return Err(invalid(format!(
                "audit.checkpoint_interval_seconds is {interval}; it must be from 1 to 60"
            )));
        }
        if let Some(rate_limits) = &self.rate_limits {
            rate_limits.check().map_err(invalid)?;
        }
        Ok(())
    }

    /// `max_concurrent_calls` of the endpoints that set it, by `ref`.
    pub fn endpoint_call_limits(&self) -> std::collections::HashMap<String, u32> {
        self.model_endpoints
            .iter()
            .filter_map(|e| Some((e.reference.clone(), e.max_concurrent_calls?)))
            .collect()
    }

    /// The circuit breaker settings of the endpoints that set any, by `ref`.
    pub fn endpoint_circuits(
        &self,
    ) -> std::collections::HashMap<String, promptgate_core::circuit::CircuitConfig> {
        use promptgate_core::circuit::CircuitConfig;
        self.model_endpoints
            .iter()
            .filter(|e| e.circuit_failure_threshold.is_some() || e.circuit_open_ms.is_some())
            .map(|e| {
                let config = CircuitConfig {
                    failure_threshold: e
                        .circuit_failure_threshold
                        .unwrap_or(CircuitConfig::DEFAULT_FAILURE_THRESHOLD),
                    open_ms: e.circuit_open_ms.unwrap_or(CircuitConfig::DEFAULT_OPEN_MS),
                };
                (e.reference.clone(), config)
            })
            .collect()
    }

    /// The built-in catalogue with this file's endpoints added or overriding by `ref`.
    pub fn catalogue(&self) -> Result<EndpointCatalogue, ConfigError> {
        let entries = self
            .model_endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| e.to_endpoint(i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EndpointCatalogue::with_overrides(entries))
    }
}

/// Whether `name` looks like an environment variable's name (and not like a pasted key).
fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

impl ModerationSection {
    /// Refuses a URL that is not http(s) and a key variable that is not a variable's name.
    fn check(&self) -> Result<(), ConfigError> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(ConfigError::Invalid(
                "moderation.url must be an http:// or https:// URL".into(),
            ));
        }
        if let Some(var) = &self.api_key_env
            && !is_variable_name(var)
        {
            return Err(ConfigError::Invalid(
                "moderation.api_key_env must name an environment variable (A-Z, 0-9, _); never put a key in the file".into(),
            ));
        }
        Ok(())
    }

    /// The client configuration.
    pub fn client_config(&self) -> promptgate_providers::ModerationConfig {
        promptgate_providers::ModerationConfig {
            base_url: self.url.trim_end_matches('/').to_owned(),
            model: self
                .model
                .clone()
                .unwrap_or_else(|| promptgate_providers::DEFAULT_MODERATION_MODEL.to_owned()),
            api_key_env: self.api_key_env.clone(),
            timeout_ms: self.timeout_ms.unwrap_or(5_000).max(1),
            max_retries: self.max_retries.unwrap_or(1),
        }
    }
}

impl EndpointEntry {
    fn to_endpoint(&self, index: usize) -> Result<ModelEndpoint, ConfigError> {
        let at = |key: &str| format!("model_endpoints[{index}].{key} (ref {:?})", self.reference);
        let provider = ProviderKind::parse(&self.provider).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "{} is {:?}; use openai, anthropic or builtin",
                at("provider"),
                self.provider
            ))
        })?;
        if self.max_concurrent_calls == Some(0) {
            return Err(ConfigError::Invalid(format!(
                "{} must be at least 1",
                at("max_concurrent_calls")
            )));
        }
        if self.circuit_open_ms == Some(0) {
            return Err(ConfigError::Invalid(format!(
                "{} must be at least 1 (circuit_failure_threshold = 0 disables the breaker)",
                at("circuit_open_ms")
            )));
        }
        if self.reference.trim().is_empty() {
            return Err(ConfigError::Invalid(format!(
                "model_endpoints[{index}].ref must not be empty"
            )));
        }
        if provider != ProviderKind::Builtin
            && !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(format!(
                "{} must be an http:// or https:// URL",
                at("base_url")
            )));
        }
        if let Some(var) = &self.api_key_env
            && !is_variable_name(var)
        {
            // Refuse anything that does not look like a variable name: it may be a pasted key,
            // and the value must not be echoed back.
            return Err(ConfigError::Invalid(format!(
                "{} must name an environment variable (A-Z, 0-9, _); never put a key in the file",
                at("api_key_env")
            )));
        }
        let context_window = self.context_window.unwrap_or(128_000);
        if context_window == 0 {
            return Err(ConfigError::Invalid(format!(
                "{} must be at least 1",
                at("context_window")
            )));
        }
        let mut endpoint = ModelEndpoint::new(
            &self.reference,
            provider,
            self.base_url.trim_end_matches('/'),
            &self.model,
            self.api_key_env.as_deref(),
            context_window,
        );
        if let Some(name) = &self.tokenizer {
            let kind: TokenizerKind = name
                .parse()
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", at("tokenizer"))))?;
            endpoint = endpoint.with_tokenizer(kind);
        }
        endpoint.prices = self.prices(&at)?;
        endpoint.timeout_ms = self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        endpoint.max_retries = self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES);
        if endpoint.timeout_ms == 0 {
            return Err(ConfigError::Invalid(format!(
                "{} must be at least 1",
                at("timeout_ms")
            )));
        }
        Ok(endpoint)
    }

    /// The endpoint's prices: none when neither is set; a price left out counts 0 when the
    /// other is set; each must be a finite number of dollars, at least 0.
    fn prices(&self, at: &dyn Fn(&str) -> String) -> Result<Option<Prices>, ConfigError> {
        for (key, price) in [
            ("input_price_per_million", self.input_price_per_million),
            ("output_price_per_million", self.output_price_per_million),
        ] {
            if let Some(price) = price
                && !(price.is_finite() && price >= 0.0)
            {
                return Err(ConfigError::Invalid(format!(
                    "{} is {price}; it must be a finite number of US dollars, at least 0",
                    at(key)
                )));
            }
        }
        if self.input_price_per_million.is_none() && self.output_price_per_million.is_none() {
            return Ok(None);
        }
        Ok(Some(Prices {
            input_per_million: self.input_price_per_million.unwrap_or(0.0),
            output_per_million: self.output_price_per_million.unwrap_or(0.0),
        }))
    }
}

/// The configuration as the audit log records it: everything that shapes behaviour, and no
/// secret, since an entry can never be purged and `ai:audit:read` is not an admin scope.
///
/// - Header values (which may carry credentials) become `sha256:` and their SHA-256.
/// - `exporters.webhook.url` keeps only its origin (a Slack-style webhook's path *is* its
///   secret), with `url_sha256` of the whole URL beside it so that a change still shows.
/// - Every other URL (`exporters.otlp.endpoint`, `moderation.url`, each
///   `model_endpoints[].base_url`, and any string that reads as a URL) loses its user-info,
///   query string and fragment; when that removed something, `<key>_sha256` of the whole URL
///   is added beside it for the same reason.
/// - `server.database_url` is shown without its password (in user-info or a query
///   parameter); no digest, since a password is often guessable and a digest would let a
///   reader check guesses.
///
/// Keys themselves are never in the file (only variable names are).
pub fn redacted_snapshot(config: &ConfigFile) -> serde_json::Value {
    use promptgate_core::redact;
    /// A URL member cut to `shown`, with the whole URL's digest beside it when anything was
    /// cut (or always, for a webhook, whose origin alone would hide a change of its path).
    fn cut_url(
        members: &mut serde_json::Map<String, serde_json::Value>,
        name: &str,
        shown: String,
        always_digest: bool,
    ) {
        let Some(serde_json::Value::String(url)) = members.get(name) else {
            return;
        };
        if always_digest || shown != *url {
            let digest = redact::url_sha256(url);
            members.insert(format!("{name}_sha256"), serde_json::json!(digest));
        }
        members.insert(name.to_owned(), serde_json::json!(shown));
    }
    /// Whether `text` starts like `scheme://`.
    fn looks_like_url(text: &str) -> bool {
        text.split_once("://").is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        })
    }
    fn scrub(value: &mut serde_json::Value, in_webhook: bool) {
        let serde_json::Value::Object(members) = value else {
            if let serde_json::Value::Array(items) = value {
                items.iter_mut().for_each(|item| scrub(item, false));
            }
            return;
        };
        let names: Vec<String> = members.keys().cloned().collect();
        for name in names {
            let Some(member) = members.get_mut(&name) else {
                continue;
            };
            match (name.as_str(), member) {
                ("headers", serde_json::Value::Object(headers)) => {
                    for header in headers.values_mut() {
                        let text = header.as_str().unwrap_or_default().to_owned();
                        *header =
                            serde_json::json!(format!("sha256:{}", redact::sha256_hex(&text)));
                    }
                }
                ("database_url", serde_json::Value::String(url)) => {
                    *url = redact::database_url_for_display(url);
                }
                ("url", serde_json::Value::String(url)) if in_webhook => {
                    let shown = redact::url_origin(url);
                    cut_url(members, &name, shown, true);
                }
                (_, serde_json::Value::String(text)) if looks_like_url(text) => {
                    let shown = redact::url_without_secrets(text);
                    cut_url(members, &name, shown, false);
                }
                (_, member @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
                    scrub(member, name == "webhook");
                }
                _ => {}
            }
        }
    }
    let mut snapshot = serde_json::to_value(config).unwrap_or(serde_json::Value::Null);
    scrub(&mut snapshot, false);
    // Through canonical JSON and back, so that numbers compare as the log stores them.
    serde_json::from_str(&promptgate_audit::canonical::to_canonical_string(&snapshot))
        .unwrap_or(serde_json::Value::Null)
}

/// By hand: the file holds the database URL, exporter URLs and header values that carry
/// secrets. `Debug` shows the same redacted form the `CONFIG_RELOADED` audit entry records.
impl std::fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConfigFile {}", redacted_snapshot(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::{RateLimit, RateLimiter};

    #[test]
    fn empty_file_is_all_defaults() {
        let c = ConfigFile::parse("").unwrap();
        assert_eq!(c.server.max_body_bytes, 1_048_576);
        assert_eq!(c.auth.token_ttl_seconds, 86_400);
        assert!(c.catalogue().unwrap().get("builtin/echo").is_some());
    }

    #[test]
    fn audit_checkpoint_interval_is_bounded_and_named() {
        for bad in ["0", "61"] {
            let err = ConfigFile::parse(&format!("[audit]\ncheckpoint_interval_seconds = {bad}\n"))
                .unwrap_err();
            assert!(
                err.to_string()
                    .contains("audit.checkpoint_interval_seconds"),
                "{err}"
            );
            assert!(err.to_string().contains("1 to 60"), "{err}");
        }
        let ok = ConfigFile::parse(
            "[audit]\ncheckpoint_interval_seconds = 5\nhash_system_prompts = true\n",
        )
        .unwrap();
        let audit = ok.audit.unwrap();
        assert_eq!(audit.checkpoint_interval_seconds, Some(5));
        assert_eq!(audit.hash_system_prompts, Some(true));
        assert!(ConfigFile::parse("[audit]\nsigning_key = \"x\"\n").is_err());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = ConfigFile::parse("[server]\nbogus_key = 1\n").unwrap_err();
        assert!(err.to_string().contains("bogus_key"), "{err}");
        let err = ConfigFile::parse("bogus_section = 1\n").unwrap_err();
        assert!(err.to_string().contains("bogus_section"), "{err}");
    }

    #[test]
    fn endpoints_override_by_ref_and_are_checked() {
        let c = ConfigFile::parse(
            r#"
            [[model_endpoints]]
            ref = "openai/gpt-4o-mini"
            provider = "openai"
            base_url = "http://127.0.0.1:9999/v1/"
            model = "gpt-4o-mini"
            api_key_env = "LOCAL_KEY"
            context_window = 4096
            "#,
        )
        .unwrap();
        let catalogue = c.catalogue().unwrap();
        let e = catalogue.get("openai/gpt-4o-mini").unwrap();
        assert_eq!(e.base_url, "http://127.0.0.1:9999/v1");
        assert_eq!(e.context_window, 4096);
        assert_eq!(e.tokenizer, TokenizerKind::O200kBase);

        let err = ConfigFile::parse(
            "[[model_endpoints]]\nref = \"x/y\"\nprovider = \"openai\"\nbase_url = \"http://h\"\nmodel = \"m\"\napi_key_env = \"sk-live-123\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("api_key_env"), "{err}");
        assert!(!err.to_string().contains("sk-live-123"), "{err}");

        let err = ConfigFile::parse(
            "[[model_endpoints]]\nref = \"x/y\"\nprovider = \"cohere\"\nmodel = \"m\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("provider"), "{err}");
    }

    #[test]
    fn prices_are_optional_a_missing_one_counts_zero_and_bad_ones_are_named() {
        let endpoint = |extra: &str| {
            format!(
                "[[model_endpoints]]\nref = \"local/m\"\nprovider = \"openai\"\n\
                 base_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n{extra}"
            )
        };
        let prices = |extra: &str| {
            let c = ConfigFile::parse(&endpoint(extra)).unwrap();
            c.catalogue().unwrap().get("local/m").unwrap().prices
        };
        assert_eq!(prices(""), None);
        assert_eq!(
            prices("input_price_per_million = 3\noutput_price_per_million = 15.5\n"),
            Some(Prices {
                input_per_million: 3.0,
                output_per_million: 15.5
            })
        );
        assert_eq!(
            prices("output_price_per_million = 0.6\n"),
            Some(Prices {
                input_per_million: 0.0,
                output_per_million: 0.6
            })
        );
        assert_eq!(
            prices("input_price_per_million = 0\n"),
            Some(Prices::default()),
            "a free endpoint is priced at 0, not unpriced"
        );
        for (key, bad) in [
            ("input_price_per_million", "-0.5"),
            ("output_price_per_million", "-1"),
            ("input_price_per_million", "nan"),
            ("output_price_per_million", "inf"),
            ("input_price_per_million", "-inf"),
        ] {
            let err = ConfigFile::parse(&endpoint(&format!("{key} = {bad}\n"))).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(&format!("model_endpoints[0].{key}")),
                "{text}"
            );
            assert!(text.contains("local/m"), "the endpoint is named: {text}");
            assert!(text.contains("at least 0"), "{text}");
        }
        let err = ConfigFile::parse(&endpoint("input_price_per_million = \"3\"\n")).unwrap_err();
        assert!(err.to_string().contains("input_price_per_million"), "{err}");
    }

    #[test]
    fn database_pool_settings_default_and_are_read() {
        let defaults = ConfigFile::parse("").unwrap().server.pool_settings();
        assert_eq!(defaults, promptgate_store::PoolSettings::default());
        let c = ConfigFile::parse(
            "[server]\ndatabase_max_connections = 25\ndatabase_statement_timeout_ms = 1500\n\
             database_acquire_timeout_ms = 700\n",
        )
        .unwrap();
        let pool = c.server.pool_settings();
        assert_eq!(pool.max_connections, 25);
        assert_eq!(pool.statement_timeout, Duration::from_millis(1500));
        assert_eq!(pool.acquire_timeout, Duration::from_millis(700));
        // One key set, the others keep their defaults.
        let c = ConfigFile::parse("[server]\ndatabase_max_connections = 3\n").unwrap();
        let pool = c.server.pool_settings();
        assert_eq!(pool.max_connections, 3);
        assert_eq!(pool.statement_timeout, defaults.statement_timeout);
        assert_eq!(pool.acquire_timeout, defaults.acquire_timeout);
    }

    #[test]
    fn database_pool_settings_refuse_zero_wrong_types_and_typos() {
        for key in [
            "database_max_connections",
            "database_statement_timeout_ms",
            "database_acquire_timeout_ms",
        ] {
            let err = ConfigFile::parse(&format!("[server]\n{key} = 0\n")).unwrap_err();
            assert!(err.to_string().contains(&format!("server.{key}")), "{err}");
            assert!(err.to_string().contains("at least 1"), "{err}");
            let err = ConfigFile::parse(&format!("[server]\n{key} = \"ten\"\n")).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
            let err = ConfigFile::parse(&format!("[server]\n{key} = -1\n")).unwrap_err();
            assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
        }
        let err = ConfigFile::parse("[server]\ndatabase_max_conections = 5\n").unwrap_err();
        assert!(err.to_string().contains("database_max_conections"), "{err}");
    }

    #[test]
    fn rate_limits_off_when_absent_defaults_when_present_and_overrides_inherit() {
        assert!(
            RateLimiter::from_config(ConfigFile::parse("").unwrap().rate_limits.as_ref()).is_none()
        );
        let c = ConfigFile::parse("[rate_limits]\n").unwrap();
        let l = RateLimiter::from_config(c.rate_limits.as_ref()).unwrap();
        assert_eq!(l.limit_for("anyone"), RateLimit::default());
        assert_eq!(l.limit_for("anyone").requests_per_second, 50.0);
        assert_eq!(l.limit_for("anyone").burst, 100);
        let c = ConfigFile::parse(
            "[rate_limits]\nrequests_per_second = 2.5\n\
             [rate_limits.clients.\"big\"]\nburst = 40\n\
             [rate_limits.clients.\"slow\"]\nrequests_per_second = 0.5\nburst = 1\n",
        )
        .unwrap();
        let l = RateLimiter::from_config(c.rate_limits.as_ref()).unwrap();
        let base = l.limit_for("other");
        assert_eq!(base.requests_per_second, 2.5);
        assert_eq!(base.burst, 100);
        let big = l.limit_for("big");
        assert_eq!((big.requests_per_second, big.burst), (2.5, 40));
        let slow = l.limit_for("slow");
        assert_eq!((slow.requests_per_second, slow.burst), (0.5, 1));
    }

    #[test]
    fn bad_rate_limits_are_named() {
        for (text, key) in [
            (
                "[rate_limits]\nrequests_per_second = 0\n",
                "rate_limits.requests_per_second",
            ),
            (
                "[rate_limits]\nrequests_per_second = -1.0\n",
                "rate_limits.requests_per_second",
            ),
            (
                "[rate_limits]\nrequests_per_second = nan\n",
                "rate_limits.requests_per_second",
            ),
            ("[rate_limits]\nburst = 0\n", "rate_limits.burst"),
            (
                "[rate_limits.clients.\"x\"]\nburst = 0\n",
                "rate_limits.clients.\"x\".burst",
            ),
        ] {
            let err = ConfigFile::parse(text).unwrap_err();
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
        let err = ConfigFile::parse("[rate_limits]\nbrust = 3\n").unwrap_err();
        assert!(err.to_string().contains("brust"), "{err}");
    }

    #[test]
    fn zero_limits_are_refused() {
        assert!(ConfigFile::parse("[server]\nmax_body_bytes = 0\n").is_err());
        assert!(ConfigFile::parse("[auth]\ntoken_ttl_seconds = 0\n").is_err());
    }
}
