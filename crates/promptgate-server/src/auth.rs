//! OAuth client credentials: issuing access tokens and checking them on every request.
//!
//! Tokens are checked from memory. A token seen once is cached with its client and scopes; a
//! background task reloads the set of disabled clients every second, so a client disabled from
//! another process (the CLI, another replica) loses access within about a second, and one
//! disabled through this process loses it at once. Only a token this process has never seen
//! costs a database read.
//!
//! A secret rotation deletes the client's tokens in the database (in the rotation's transaction)
//! and this process forgets them from memory at once. Other processes reload every client's last
//! rotation time with the disabled set; when a client's time changes they drop its cached tokens,
//! which are then looked up in the database again, where the old ones are gone. So old tokens
//! stop within about a second everywhere, and no clocks are compared across replicas.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use promptgate_core::credentials::{generate_secret, hash_secret, secret_matches};
use promptgate_core::{Scope, ScopeSet};
use promptgate_store::{AccessToken, Store, StoreError};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::state::AppState;

/// How often the disabled-client set is reloaded from the database.
pub const REVOCATION_REFRESH: Duration = Duration::from_secs(1);
/// The most tokens kept in memory; beyond it, unseen tokens are checked in the database.
const MAX_CACHED_TOKENS: usize = 100_000;
/// The window over which failed logins are counted.
const FAILED_LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// The most keys (client ids or addresses) tracked before expired ones are pruned.
const MAX_FAILURE_KEYS: usize = 10_000;
/// Default of `[auth] failed_logins_per_address_per_minute`.
pub const DEFAULT_FAILED_LOGINS_PER_ADDRESS: u32 = 30;

/// Who is calling, as proven by their bearer token.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The OAuth client id.
    pub client_id: String,
    /// The token's scopes.
    pub scopes: ScopeSet,
}

impl Caller {
    /// Refuses with 403 `missing.scope` unless the token holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(ApiError::MissingScope(scope))
        }
    }
}

#[derive(Debug, Clone)]
struct CachedToken {
    client_id: String,
    scopes: ScopeSet,
    expires_at: OffsetDateTime,
}

/// Why a token request failed; each maps to an RFC 6749 §5.2 error.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Unknown client, wrong secret or disabled client.
    #[error("invalid_client")]
    InvalidClient,
    /// A requested scope is unknown or not granted to the client.
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    /// Too many failed attempts for this client id.
    #[error("too many failed attempts")]
    TooManyAttempts {
        /// Seconds until an attempt is allowed again.
        retry_after: u64,
        /// Failed attempts in the window.
        failures: u32,
        /// Failed attempts allowed per window.
        allowed: u32,
        /// Whether the client id or the source address is locked.
        by: LockedBy,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A newly issued access token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The bearer token (shown once, stored only as a hash).
    pub token: String,
    /// The granted scopes.
    pub scopes: ScopeSet,
    /// Lifetime in seconds.
    pub expires_in: u64,
}

/// Issues and checks access tokens.
pub struct TokenAuthority {
    store: Arc<dyn Store>,
    token_ttl: Duration,
    cache: RwLock<HashMap<String, CachedToken>>,
    disabled: RwLock<HashSet<String>>,
    /// The last secret rotation time seen for each rotated client.
    rotations: RwLock<HashMap<String, OffsetDateTime>>,
    /// Failed logins per client id (`[auth] failed_logins_per_minute`).
    failures_by_client: FailureWindow<String>,
    /// Failed logins per source address (`[auth] failed_logins_per_address_per_minute`).
    failures_by_address: FailureWindow<IpAddr>,
    /// Failed logins since start, for `/metrics`.
    failed_logins: AtomicU64,
}

/// Why a login was refused before its secret was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockedBy {
    /// The client id has used up its failed attempts.
    ClientId,
    /// The source address has used up its failed attempts.
    Address,
}

/// Recent failures per key within [`FAILED_LOGIN_WINDOW`]: once a key has `max` of them, it is
/// locked until the oldest leaves the window.
struct FailureWindow<K> {
    max: u32,
    times: Mutex<HashMap<K, VecDeque<Instant>>>,
}

impl<K: std::hash::Hash + Eq> FailureWindow<K> {
    fn new(max: u32) -> Self {
        FailureWindow {
            max,
            times: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds until `key` may try again, and its failure count, when it is locked.
    fn locked_for(&self, key: &K) -> Option<(u64, u32)> {
        let failures = self.times.lock().ok()?;
        let times = failures.get(key)?;
        let now = Instant::now();
        let recent: Vec<&Instant> = times
            .iter()
            .filter(|t| now.duration_since(**t) < FAILED_LOGIN_WINDOW)
            .collect();
        if recent.len() < self.max as usize {
            return None;
        }
        let oldest = recent.first()?;
        let wait = FAILED_LOGIN_WINDOW.saturating_sub(now.duration_since(**oldest));
        let seconds = wait.as_millis().div_ceil(1000).max(1);
        Some((
            u64::try_from(seconds).unwrap_or(60),
            u32::try_from(recent.len()).unwrap_or(u32::MAX),
        ))
    }

    fn record(&self, key: K) {
        if let Ok(mut failures) = self.times.lock() {
            // Keys that guessing invents (random client ids) must not grow the map for ever.
            if failures.len() >= MAX_FAILURE_KEYS {
                prune(&mut failures);
            }
            let times = failures.entry(key).or_default();
            times.push_back(Instant::now());
            // Only the last `max` attempts matter for the lockout.
            while times.len() > self.max as usize {
                times.pop_front();
            }
        }
    }

    fn prune(&self) {
        if let Ok(mut failures) = self.times.lock() {
            prune(&mut failures);
        }
    }
}

/// Drops the failures that have left the window, and the keys left with none.
fn prune<K>(failures: &mut HashMap<K, VecDeque<Instant>>) {
    let horizon = Instant::now().checked_sub(FAILED_LOGIN_WINDOW);
    failures.retain(|_, times| {
        while let (Some(first), Some(horizon)) = (times.front(), horizon) {
            if *first < horizon {
                times.pop_front();
            } else {
                break;
            }
        }
        !times.is_empty()
    });
}

impl TokenAuthority {
    /// An authority over `store`, loading the current disabled clients.
    pub async fn new(
        store: Arc<dyn Store>,
        token_ttl: Duration,
        max_failed_logins: u32,
    ) -> Result<Self, StoreError> {
        let disabled = store.disabled_client_ids().await?.into_iter().collect();
        let rotations = store.secret_rotations().await?.into_iter().collect();
        Ok(TokenAuthority {
            store,
            token_ttl,
            cache: RwLock::new(HashMap::new()),
            disabled: RwLock::new(disabled),
            rotations: RwLock::new(rotations),
            failures_by_client: FailureWindow::new(max_failed_logins),
            failures_by_address: FailureWindow::new(DEFAULT_FAILED_LOGINS_PER_ADDRESS),
            failed_logins: AtomicU64::new(0),
        })
    }

    /// Sets the failed logins one source address may make per minute before 429.
    pub fn with_address_limit(mut self, max_failed_logins: u32) -> Self {
        self.failures_by_address = FailureWindow::new(max_failed_logins);
        self
    }

    /// Failed logins since start (wrong or unknown client, wrong secret, disabled client).
    pub fn failed_logins(&self) -> u64 {
        self.failed_logins.load(Ordering::Relaxed)
    }

    /// Reloads the disabled clients and drops expired tokens from memory; run every
    /// [`REVOCATION_REFRESH`].
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let disabled: HashSet<String> = self
            .store
            .disabled_client_ids()
            .await?
            .into_iter()
            .collect();
        if let Ok(mut set) = self.disabled.write() {
            *set = disabled;
        }
        self.notice_rotations().await?;
        let now = OffsetDateTime::now_utc();
        if let Ok(mut cache) = self.cache.write() {
            cache.retain(|_, t| t.expires_at > now);
        }
        self.failures_by_client.prune();
        self.failures_by_address.prune();
        Ok(())
    }

    /// Marks a client disabled in this process at once (the database is already updated).
    pub fn revoke_client(&self, client_id: &str) {
        if let Ok(mut set) = self.disabled.write() {
            set.insert(client_id.to_owned());
        }
    }

    /// Reloads the secret rotation times and forgets the cached tokens of every client whose
    /// time changed (rotated by another process): they are checked in the database again.
    async fn notice_rotations(&self) -> Result<(), StoreError> {
        let latest: HashMap<String, OffsetDateTime> =
            self.store.secret_rotations().await?.into_iter().collect();
        let changed: Vec<String> = match self.rotations.read() {
            Ok(known) => latest
                .iter()
                .filter(|(id, at)| known.get(*id) != Some(*at))
                .map(|(id, _)| id.clone())
                .collect(),
            Err(_) => latest.keys().cloned().collect(),
        };
        for client_id in &changed {
            self.forget_client_tokens(client_id);
        }
        if let Ok(mut known) = self.rotations.write() {
            *known = latest;
        }
        Ok(())
    }

    /// Forgets every cached token of a client whose secret was just rotated (its tokens are
    /// already deleted from the database), so they are refused at once in this process.
    pub fn forget_client_tokens(&self, client_id: &str) {
        if let Ok(mut cache) = self.cache.write() {
            cache.retain(|_, t| t.client_id != client_id);
        }
    }

    fn is_disabled(&self, client_id: &str) -> bool {
        self.disabled
            .read()
            .map_or(true, |set| set.contains(client_id))
    }

    /// Checks a bearer token.
    pub async fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let hash = hash_secret(token);
        let now = OffsetDateTime::now_utc();
        let cached = self.cache.read().ok().and_then(|c| c.get(&hash).cloned());
        let entry = match cached {
            Some(entry) => entry,
            None => {
                let stored = self.store.find_token(&hash).await?;
                let Some(stored) = stored else {
                    return Err(invalid_token("the access token is not valid"));
                };
                let entry = CachedToken {
                    client_id: stored.client_id,
                    scopes: stored.scopes,
                    expires_at: stored.expires_at,
                };
                if let Ok(mut cache) = self.cache.write()
                    && cache.len() < MAX_CACHED_TOKENS
                {
                    cache.insert(hash, entry.clone());
                }
                entry
            }
        };
        if entry.expires_at <= now {
            return Err(invalid_token(
                "the access token has expired; request a new one",
            ));
        }
        if self.is_disabled(&entry.client_id) {
            return Err(invalid_token("the access token's client is disabled"));
        }
        Ok(Caller {
            client_id: entry.client_id,
            scopes: entry.scopes,
        })
    }

    fn record_failure(&self, client_id: &str, source: Option<IpAddr>) {
        self.failed_logins.fetch_add(1, Ordering::Relaxed);
        // The id and the address identify the attempt; the secret is never logged.
        match source {
            Some(address) => {
                tracing::warn!(client_id = %client_id, source = %address, "failed client authentication at /oauth/token");
                self.failures_by_address.record(address);
            }
            None => {
                tracing::warn!(client_id = %client_id, "failed client authentication at /oauth/token");
            }
        }
        self.failures_by_client.record(client_id.to_owned());
    }

    /// Authenticates a client and issues a token for `requested` scopes (all of the client's
    /// scopes when none are asked for).
    pub async fn issue(
        &self,
        client_id: &str,
        client_secret: &str,
        requested: Option<&str>,
    ) -> Result<IssuedToken, TokenError> {
        self.issue_from(client_id, client_secret, requested, None)
            .await
    }

    /// [`issue`](Self::issue) for a request from `source`: an address that has used up its
    /// failed attempts (whatever client ids it tried) is refused like a locked client id.
    pub async fn issue_from(
        &self,
        client_id: &str,
        client_secret: &str,
        requested: Option<&str>,
        source: Option<IpAddr>,
    ) -> Result<IssuedToken, TokenError> {
        let address_lock = source.and_then(|a| {
            self.failures_by_address
                .locked_for(&a)
                .map(|l| (l, self.failures_by_address.max, LockedBy::Address))
        });
        let lock = address_lock.or_else(|| {
            self.failures_by_client
                .locked_for(&client_id.to_owned())
                .map(|l| (l, self.failures_by_client.max, LockedBy::ClientId))
        });
        if let Some(((retry_after, failures), allowed, by)) = lock {
            tracing::warn!(client_id = %client_id, source = ?source, locked_by = ?by, "refused a login during a lockout");
            return Err(TokenError::TooManyAttempts {
                retry_after,
                failures,
                allowed,
                by,
            });
        }
        let client = self.store.get_client(client_id).await?;
        let client = match client {
            Some(c) if c.disabled_at.is_none() && secret_matches(&c.secret_hash, client_secret) => {
                c
            }
            _ => {
                self.record_failure(client_id, source);
                return Err(TokenError::InvalidClient);
            }
        };
        let scopes = match requested.map(str::trim).filter(|s| !s.is_empty()) {
            None => client.scopes.clone(),
            Some(text) => {
                let asked = ScopeSet::parse_space_separated(text)
                    .map_err(|e| TokenError::InvalidScope(e.to_string()))?;
                if !client.scopes.is_superset_of(&asked) {
                    return Err(TokenError::InvalidScope(format!(
                        "the client may request only: {}",
                        client.scopes
                    )));
                }
                asked
            }
        };
        let token = generate_secret();
        let issued_at = OffsetDateTime::now_utc();
        let expires_at = issued_at + self.token_ttl;
        let record = AccessToken {
            token_hash: hash_secret(&token),
            client_id: client.id.clone(),
            scopes: scopes.clone(),
            issued_at,
            expires_at,
        };
        self.store.insert_token(&record).await?;
        // A secret rotation committed between the check above and the insert would leave a token
        // issued for the old secret that the rotation's delete did not see; re-reading the hash
        // after the insert closes that gap (a rotation committed after it deleted the token).
        let current = self.store.get_client(&client.id).await?;
        if current.is_none_or(|c| c.secret_hash != client.secret_hash) {
            return Err(TokenError::InvalidClient);
        }
        if let Ok(mut cache) = self.cache.write()
            && cache.len() < MAX_CACHED_TOKENS
        {
            cache.insert(
                record.token_hash,
                CachedToken {
                    client_id: client.id,
                    scopes: scopes.clone(),
                    expires_at,
                },
            );
        }
        Ok(IssuedToken {
            token,
            scopes,
            expires_in: self.token_ttl.as_secs(),
        })
    }
}

fn invalid_token(message: &str) -> ApiError {
    ApiError::Unauthorized {
        token_sent: true,
        message: message.to_owned(),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::Unauthorized {
                token_sent: false,
                message: "send an access token from /oauth/token as Authorization: Bearer <token>"
                    .to_owned(),
            });
        };
        let text = value.to_str().unwrap_or("");
        let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            // Another scheme (Basic, …) sent no bearer token: RFC 6750 §3.1 asks for a plain
            // challenge without an error code.
            return Err(ApiError::Unauthorized {
                token_sent: false,
                message: "this API takes Authorization: Bearer <token>; get one from /oauth/token"
                    .to_owned(),
            });
        }
        let token = Some(rest.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid_token("the Authorization header must be Bearer <token>"))?;
        let caller = state.auth.verify(token).await?;
        // The limit is per client, so it can only be counted once the token names the client;
        // a request with a bad token is refused above without using the client's budget.
        if let Some(limits) = &state.rate_limits {
            let decision = limits.check(&caller.client_id);
            if !decision.allowed {
                tracing::debug!(client_id = %caller.client_id, "rate limit exceeded");
                return Err(ApiError::TooManyRequests(decision));
            }
        }
        Ok(caller)
    }
}
