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
//!
//! Issuing is bounded per client: `[auth] tokens_per_minute` (a token bucket per client id, per
//! replica) and `[auth] max_live_tokens_per_client` (the store deletes the client's oldest
//! tokens past the bound in the issuing transaction and bumps the client's token generation;
//! every process reloads the generations with the disabled set and forgets the cached tokens of
//! a client whose generation changed, as for a rotation).
//!
//! API keys (`pgk_…`, docs/api-keys.md) are checked the same way: a key seen once is cached by
//! its hash; the refresh reloads the ids of revoked keys every second (a revocation through this
//! process takes effect at once), and expiry and the client's disabled flag are checked from
//! memory on every request. When a key was last used is kept in memory and written in one batch
//! per refresh, never once per request.
//!
//! Failed logins are limited per source address (`client_addr.rs`: the peer, or the client a
//! trusted proxy names; IPv6 by /64): an attempt takes one of its address's places *before* the
//! secret is checked, in one locked step, so parallel guesses cannot all pass a check made
//! before any of them is recorded; a success gives its place back. Wrong secrets for one client
//! id are limited too, but that limit only turns a wrong secret's 401 into a 429: the right
//! secret is always checked and served, so strangers cannot lock a client out.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use promptgate_core::credentials::{generate_secret, hash_secret, secret_matches};
use promptgate_core::{Scope, ScopeSet};
use promptgate_store::{AccessToken, ApiKey, Store, StoreError};
use time::OffsetDateTime;

use crate::client_addr::{ClientAddressRule, SourceAddress, limit_key};
use crate::error::ApiError;
use crate::ratelimit::{Decision, RateLimit, RateLimiter};

/// How often the disabled-client set is reloaded from the database.
pub const REVOCATION_REFRESH: Duration = Duration::from_secs(1);
/// The most tokens kept in memory; beyond it, unseen tokens are checked in the database.
const MAX_CACHED_TOKENS: usize = 100_000;
/// The window over which failed logins are counted.
const FAILED_LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// The most keys (client ids or addresses) tracked before expired ones are pruned.
const MAX_FAILURE_KEYS: usize = 10_000;
/// Default of `[auth] failed_logins_per_address_per_minute`: the contract's 10.
pub const DEFAULT_FAILED_LOGINS_PER_ADDRESS: u32 = 10;
/// Default of `[auth] tokens_per_minute`.
pub const DEFAULT_TOKENS_PER_MINUTE: u32 = 60;
/// Default of `[auth] max_live_tokens_per_client`.
pub const DEFAULT_MAX_LIVE_TOKENS: u32 = 1000;
/// How long a login waits when the attempts in flight from its address hold the address's
/// last places (each may still succeed and give its place back) before it is refused.
const RESERVATION_WAIT: Duration = Duration::from_secs(5);

/// The prefix of every API key, so that a key is told from an access token without a lookup
/// (and secret scanners can recognise a leaked one).
pub const API_KEY_PREFIX: &str = "pgk_";

/// Who is calling, as proven by their bearer token or API key.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The OAuth client id.
    pub client_id: String,
    /// The token's (or the key's) scopes.
    pub scopes: ScopeSet,
    /// The id of the API key the caller used (never the key); `None` for an access token.
    pub api_key_id: Option<String>,
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

/// An API key as the bearer check needs it; the revocation is looked up in the revoked set.
#[derive(Debug, Clone)]
struct CachedKey {
    id: String,
    client_id: String,
    scopes: ScopeSet,
    expires_at: Option<OffsetDateTime>,
}

impl From<ApiKey> for CachedKey {
    fn from(key: ApiKey) -> Self {
        CachedKey {
            id: key.id,
            client_id: key.client_id,
            scopes: key.scopes,
            expires_at: key.expires_at,
        }
    }
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
    /// Too many failed attempts from this source address (whatever the secret), or, for a
    /// wrong secret only, for this client id.
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
    /// The client asked for tokens faster than `[auth] tokens_per_minute`.
    #[error("too many tokens requested")]
    TooManyTokens(Decision),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A newly issued access token.
#[derive(Clone)]
pub struct IssuedToken {
    /// The bearer token (shown once, stored only as a hash).
    pub token: String,
    /// The granted scopes.
    pub scopes: ScopeSet,
    /// Lifetime in seconds.
    pub expires_in: u64,
}

/// By hand, so that the bearer token never reaches a log line through `{:?}`.
impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &crate::REDACTED)
            .field("scopes", &self.scopes)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Issues and checks access tokens.
pub struct TokenAuthority {
    store: Arc<dyn Store>,
    token_ttl: Duration,
    cache: RwLock<HashMap<String, CachedToken>>,
    /// API keys seen, by hash.
    keys: RwLock<HashMap<String, CachedKey>>,
    /// The ids of revoked API keys, reloaded every [`REVOCATION_REFRESH`].
    revoked_keys: RwLock<HashSet<String>>,
    /// When each API key was last used since the last flush, written by [`Self::refresh`].
    key_uses: Mutex<HashMap<String, OffsetDateTime>>,
    disabled: RwLock<HashSet<String>>,
    /// The last secret rotation time seen for each rotated client.
    rotations: RwLock<HashMap<String, OffsetDateTime>>,
    /// The last token generation seen for each client whose tokens were revoked at the bound.
    generations: RwLock<HashMap<String, i64>>,
    /// Failed logins per client id (`[auth] failed_logins_per_minute`).
    failures_by_client: FailureWindow<String>,
    /// Failed logins per source address, IPv6 by /64
    /// (`[auth] failed_logins_per_address_per_minute`).
    failures_by_address: FailureWindow<IpAddr>,
    /// Failed logins since start, for `/metrics`.
    failed_logins: AtomicU64,
    /// Tokens issued per client id (`[auth] tokens_per_minute`).
    issuance: RateLimiter,
    /// `[auth] max_live_tokens_per_client`.
    max_live_tokens: u32,
    /// Where a request comes from (`[server] trusted_proxies`).
    client_address: ClientAddressRule,
}

/// Which failed-login limit refused a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockedBy {
    /// The client id has used up its failed attempts (a wrong secret only).
    ClientId,
    /// The source address has used up its failed attempts (before the secret is checked).
    Address,
}

/// Recent failures per key within [`FAILED_LOGIN_WINDOW`], and the attempts in flight: once a
/// key has `max` failures, it is locked until the oldest leaves the window.
struct FailureWindow<K> {
    max: u32,
    keys: Mutex<HashMap<K, Attempts>>,
    /// Woken whenever an attempt in flight settles, for logins waiting for a place.
    settled: tokio::sync::Notify,
}

/// One key's failures (oldest first, at most `max`) and its attempts in flight.
#[derive(Debug, Default)]
struct Attempts {
    failures: VecDeque<Instant>,
    in_flight: u32,
}

/// A locked key: seconds until it may try again, and its failures in the window.
#[derive(Debug, Clone, Copy)]
struct Lockout {
    retry_after: u64,
    failures: u32,
}

impl Attempts {
    fn forget_before(&mut self, now: Instant) {
        while let Some(first) = self.failures.front() {
            if now.duration_since(*first) >= FAILED_LOGIN_WINDOW {
                self.failures.pop_front();
            } else {
                break;
            }
        }
    }

    fn push(&mut self, now: Instant, max: u32) {
        self.failures.push_back(now);
        // Only the last `max` failures matter for the lockout.
        while self.failures.len() > max as usize {
            self.failures.pop_front();
        }
    }

    /// The lockout as it stands, counted from the oldest failure in the window.
    fn lockout(&self, now: Instant) -> Lockout {
        let wait = self.failures.front().map_or(FAILED_LOGIN_WINDOW, |oldest| {
            FAILED_LOGIN_WINDOW.saturating_sub(now.duration_since(*oldest))
        });
        let seconds = wait.as_millis().div_ceil(1000).max(1);
        Lockout {
            retry_after: u64::try_from(seconds).unwrap_or(60),
            failures: u32::try_from(self.failures.len()).unwrap_or(u32::MAX),
        }
    }

    fn is_idle(&self) -> bool {
        self.failures.is_empty() && self.in_flight == 0
    }
}

impl<K: Hash + Eq + Clone> FailureWindow<K> {
    fn new(max: u32) -> Self {
        FailureWindow {
            max,
            keys: Mutex::new(HashMap::new()),
            settled: tokio::sync::Notify::new(),
        }
    }

    /// The map; a poisoned lock only means a panic mid-update of plain counters, still usable.
    fn keys(&self) -> MutexGuard<'_, HashMap<K, Attempts>> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes one of `key`'s places before its secret is checked, in one locked step with the
    /// count, so that parallel attempts cannot all pass: failures plus attempts in flight never
    /// exceed `max`. When the attempts in flight hold the last places, waits (at most
    /// [`RESERVATION_WAIT`]) for one to settle rather than refusing a login that may be right.
    async fn reserve(&self, key: K) -> Result<Reservation<'_, K>, Lockout> {
        let deadline = tokio::time::Instant::now() + RESERVATION_WAIT;
        loop {
            // Registered before the count is read, so a settle in between is not missed.
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            let failures = {
                let mut keys = self.keys();
                // Keys that guessing invents must not grow the map for ever.
                if keys.len() >= MAX_FAILURE_KEYS {
                    prune(&mut keys);
                }
                let now = Instant::now();
                let attempts = keys.entry(key.clone()).or_default();
                attempts.forget_before(now);
                let failures = u32::try_from(attempts.failures.len()).unwrap_or(u32::MAX);
                if failures >= self.max {
                    return Err(attempts.lockout(now));
                }
                if failures.saturating_add(attempts.in_flight) < self.max {
                    attempts.in_flight += 1;
                    return Ok(Reservation {
                        window: self,
                        key: Some(key),
                    });
                }
                failures
            };
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                return Err(Lockout {
                    retry_after: 1,
                    failures,
                });
            }
        }
    }

    /// Counts a failure of `key`; answers the lockout when `key` already had `max` failures.
    fn fail(&self, key: K) -> Option<Lockout> {
        let mut keys = self.keys();
        if keys.len() >= MAX_FAILURE_KEYS {
            prune(&mut keys);
        }
        let now = Instant::now();
        let attempts = keys.entry(key).or_default();
        attempts.forget_before(now);
        let locked = (attempts.failures.len() >= self.max as usize).then(|| attempts.lockout(now));
        attempts.push(now, self.max);
        locked
    }

    /// Ends an attempt in flight, counting it as a failure or giving its place back.
    fn settle(&self, key: &K, failed: bool) {
        {
            let mut keys = self.keys();
            if let Some(attempts) = keys.get_mut(key) {
                attempts.in_flight = attempts.in_flight.saturating_sub(1);
                if failed {
                    attempts.push(Instant::now(), self.max);
                }
                if attempts.is_idle() {
                    keys.remove(key);
                }
            }
        }
        self.settled.notify_waiters();
    }

    fn prune(&self) {
        prune(&mut self.keys());
    }
}

/// Drops the failures that have left the window, and the keys left with none and nothing in
/// flight.
fn prune<K>(keys: &mut HashMap<K, Attempts>) {
    let now = Instant::now();
    keys.retain(|_, attempts| {
        attempts.forget_before(now);
        !attempts.is_idle()
    });
}

/// A place taken by [`FailureWindow::reserve`]: [`failed`](Self::failed) counts it as a
/// failure; dropping it otherwise (a success, an error of the store, a cancelled request) gives
/// it back.
struct Reservation<'a, K: Hash + Eq + Clone> {
    window: &'a FailureWindow<K>,
    key: Option<K>,
}

impl<K: Hash + Eq + Clone> Reservation<'_, K> {
    fn failed(mut self) {
        if let Some(key) = self.key.take() {
            self.window.settle(&key, true);
        }
    }
}

impl<K: Hash + Eq + Clone> Drop for Reservation<'_, K> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.window.settle(&key, false);
        }
    }
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
        let generations = store.token_generations().await?.into_iter().collect();
        let revoked_keys = store.revoked_api_key_ids().await?.into_iter().collect();
        Ok(TokenAuthority {
            store,
            token_ttl,
            cache: RwLock::new(HashMap::new()),
            keys: RwLock::new(HashMap::new()),
            revoked_keys: RwLock::new(revoked_keys),
            key_uses: Mutex::new(HashMap::new()),
            disabled: RwLock::new(disabled),
            rotations: RwLock::new(rotations),
            generations: RwLock::new(generations),
            failures_by_client: FailureWindow::new(max_failed_logins),
            failures_by_address: FailureWindow::new(DEFAULT_FAILED_LOGINS_PER_ADDRESS),
            failed_logins: AtomicU64::new(0),
            issuance: issuance_limiter(DEFAULT_TOKENS_PER_MINUTE),
            max_live_tokens: DEFAULT_MAX_LIVE_TOKENS,
            client_address: ClientAddressRule::default(),
        })
    }

    /// The authority `[auth]` and `[server]` (source addresses) configure, over `store`.
    pub async fn from_config(
        store: Arc<dyn Store>,
        config: &crate::config::ConfigFile,
    ) -> Result<Self, StoreError> {
        let section = &config.auth;
        // Checked when the file was parsed; the default rule is only a fallback.
        let rule = config.server.client_address_rule().unwrap_or_default();
        Ok(TokenAuthority::new(
            store,
            Duration::from_secs(section.token_ttl_seconds),
            section.failed_logins_per_minute,
        )
        .await?
        .with_address_limit(section.failed_logins_per_address_per_minute)
        .with_issuance_limits(
            section.tokens_per_minute,
            section.max_live_tokens_per_client,
        )
        .with_client_address_rule(rule))
    }

    /// Sets the failed logins one source address may make per minute before 429.
    pub fn with_address_limit(mut self, max_failed_logins: u32) -> Self {
        self.failures_by_address = FailureWindow::new(max_failed_logins);
        self
    }

    /// Sets the tokens one client may obtain per minute and the unexpired tokens it may hold
    /// (`[auth] tokens_per_minute`, `max_live_tokens_per_client`).
    pub fn with_issuance_limits(mut self, tokens_per_minute: u32, max_live_tokens: u32) -> Self {
        self.issuance = issuance_limiter(tokens_per_minute);
        self.max_live_tokens = max_live_tokens.max(1);
        self
    }

    /// Sets how the source address of a request is found (`[server] trusted_proxies`).
    pub fn with_client_address_rule(mut self, rule: ClientAddressRule) -> Self {
        self.client_address = rule;
        self
    }

    /// How the source address of a request is found; see [`crate::client_addr::SourceAddress`].
    pub fn client_address_rule(&self) -> &ClientAddressRule {
        &self.client_address
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
        self.notice_token_generations().await?;
        let revoked: HashSet<String> = self
            .store
            .revoked_api_key_ids()
            .await?
            .into_iter()
            .collect();
        if let Ok(mut set) = self.revoked_keys.write() {
            *set = revoked;
        }
        self.flush_key_uses().await?;
        let now = crate::clock::now();
        if let Ok(mut cache) = self.cache.write() {
            cache.retain(|_, t| t.expires_at > now);
        }
        if let Ok(mut keys) = self.keys.write() {
            keys.retain(|_, k| k.expires_at.is_none_or(|at| at > now));
        }
        self.failures_by_client.prune();
        self.failures_by_address.prune();
        Ok(())
    }

    /// Writes when each API key was last used since the previous flush, in one transaction. On
    /// a failure the times are kept for the next flush (a newer use wins).
    pub async fn flush_key_uses(&self) -> Result<(), StoreError> {
        let uses: Vec<(String, OffsetDateTime)> = {
            let mut pending = self
                .key_uses
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.drain().collect()
        };
        if uses.is_empty() {
            return Ok(());
        }
        if let Err(err) = self.store.record_api_key_use(&uses).await {
            let mut pending = self
                .key_uses
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (id, at) in uses {
                let slot = pending.entry(id).or_insert(at);
                if *slot < at {
                    *slot = at;
                }
            }
            return Err(err);
        }
        Ok(())
    }

    /// Marks an API key revoked in this process at once (the database is already updated).
    pub fn revoke_key(&self, key_id: &str) {
        if let Ok(mut set) = self.revoked_keys.write() {
            set.insert(key_id.to_owned());
        }
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

    /// Reloads the token generations and forgets the cached tokens of every client whose
    /// generation changed (some of its tokens were revoked at the bound, here or elsewhere):
    /// they are checked in the database again, where the revoked ones are gone.
    async fn notice_token_generations(&self) -> Result<(), StoreError> {
        let latest: HashMap<String, i64> =
            self.store.token_generations().await?.into_iter().collect();
        let changed: Vec<String> = match self.generations.read() {
            Ok(known) => latest
                .iter()
                .filter(|(id, generation)| known.get(*id) != Some(*generation))
                .map(|(id, _)| id.clone())
                .collect(),
            Err(_) => latest.keys().cloned().collect(),
        };
        for client_id in &changed {
            self.forget_client_tokens(client_id);
        }
        if let Ok(mut known) = self.generations.write() {
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

    /// Checks a bearer token or API key.
    pub async fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        if token.starts_with(API_KEY_PREFIX) {
            return self.verify_key(token).await;
        }
        let hash = hash_secret(token);
        let now = crate::clock::now();
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
            api_key_id: None,
        })
    }

    /// Checks an API key: from memory once seen (one database read the first time), refused
    /// when revoked (here, or on another replica within [`REVOCATION_REFRESH`]), expired, or
    /// when its client is disabled; its use is noted for the next batched write.
    async fn verify_key(&self, key: &str) -> Result<Caller, ApiError> {
        let hash = hash_secret(key);
        let cached = self.keys.read().ok().and_then(|k| k.get(&hash).cloned());
        let entry = match cached {
            Some(entry) => entry,
            None => {
                let Some(stored) = self.store.find_api_key(&hash).await? else {
                    return Err(invalid_token("the API key is not valid"));
                };
                if stored.revoked_at.is_some() {
                    return Err(invalid_token("the API key has been revoked"));
                }
                let entry = CachedKey::from(stored);
                if let Ok(mut keys) = self.keys.write()
                    && keys.len() < MAX_CACHED_TOKENS
                {
                    keys.insert(hash, entry.clone());
                }
                entry
            }
        };
        if self
            .revoked_keys
            .read()
            .map_or(true, |set| set.contains(&entry.id))
        {
            return Err(invalid_token("the API key has been revoked"));
        }
        let now = crate::clock::now();
        if entry.expires_at.is_some_and(|at| at <= now) {
            return Err(invalid_token("the API key has expired"));
        }
        if self.is_disabled(&entry.client_id) {
            return Err(invalid_token("the API key's client is disabled"));
        }
        self.key_uses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(entry.id.clone(), now);
        Ok(Caller {
            client_id: entry.client_id,
            scopes: entry.scopes,
            api_key_id: Some(entry.id),
        })
    }

    /// Counts a failed login (unknown or disabled client, wrong secret) and answers its error:
    /// 401, or 429 once the client id has used up its failed attempts.
    fn record_failure(&self, client_id: &str, source: Option<IpAddr>) -> TokenError {
        self.failed_logins.fetch_add(1, Ordering::Relaxed);
        // The id and the address identify the attempt; the secret is never logged. The id is
        // the caller's text, so it is written escaped (`?`): a newline in it cannot start a
        // forged line.
        match source {
            Some(address) => {
                tracing::warn!(client_id = ?client_id, source = %address, "failed client authentication at /oauth/token");
            }
            None => {
                tracing::warn!(client_id = ?client_id, "failed client authentication at /oauth/token");
            }
        }
        match self.failures_by_client.fail(client_id.to_owned()) {
            Some(lockout) => TokenError::TooManyAttempts {
                retry_after: lockout.retry_after,
                failures: lockout.failures,
                allowed: self.failures_by_client.max,
                by: LockedBy::ClientId,
            },
            None => TokenError::InvalidClient,
        }
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

    /// [`issue`](Self::issue) for a request from `source` (see `client_addr.rs`): an address
    /// that has used up its failed attempts (whatever client ids it tried) is refused before
    /// anything is checked, the right secret included.
    pub async fn issue_from(
        &self,
        client_id: &str,
        client_secret: &str,
        requested: Option<&str>,
        source: Option<IpAddr>,
    ) -> Result<IssuedToken, TokenError> {
        // The source address's place is taken before anything is checked, so parallel
        // guesses from one address cannot outrun its limit.
        let reservation = match source {
            None => None,
            Some(address) => match self.failures_by_address.reserve(limit_key(address)).await {
                Ok(reservation) => Some(reservation),
                Err(lockout) => {
                    tracing::warn!(client_id = ?client_id, source = %address, "refused a login from a locked source address");
                    return Err(TokenError::TooManyAttempts {
                        retry_after: lockout.retry_after,
                        failures: lockout.failures,
                        allowed: self.failures_by_address.max,
                        by: LockedBy::Address,
                    });
                }
            },
        };
        let client = self.store.get_client(client_id).await?;
        // The secret is checked whatever the client id's failures: its limit must never refuse
        // the right secret (`secret_matches` compares in constant time).
        let client = match client {
            Some(c) if c.disabled_at.is_none() && secret_matches(&c.secret_hash, client_secret) => {
                c
            }
            _ => {
                if let Some(reservation) = reservation {
                    reservation.failed();
                }
                return Err(self.record_failure(client_id, source));
            }
        };
        // A success gives its address's place back.
        drop(reservation);
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
        // Counted only once the client is authenticated, so that nobody else can use up its
        // budget.
        let decision = self.issuance.check(&client.id);
        if !decision.allowed {
            tracing::warn!(client_id = ?client.id, "refused a token: the client asks for tokens faster than [auth] tokens_per_minute");
            return Err(TokenError::TooManyTokens(decision));
        }
        let token = generate_secret();
        let issued_at = crate::clock::now();
        let expires_at = issued_at + self.token_ttl;
        let record = AccessToken {
            token_hash: hash_secret(&token),
            client_id: client.id.clone(),
            scopes: scopes.clone(),
            issued_at,
            expires_at,
        };
        let revoked = self
            .store
            .insert_token_bounded(&record, self.max_live_tokens, issued_at)
            .await?;
        if !revoked.is_empty() {
            tracing::info!(client_id = ?client.id, revoked = revoked.len(), "revoked the client's oldest tokens past [auth] max_live_tokens_per_client");
            if let Ok(mut cache) = self.cache.write() {
                for hash in &revoked {
                    cache.remove(hash);
                }
            }
        }
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

/// A token bucket of `tokens_per_minute`: that many at once, then one every `60 / n` seconds.
fn issuance_limiter(tokens_per_minute: u32) -> RateLimiter {
    let per_minute = tokens_per_minute.max(1);
    RateLimiter::new(
        RateLimit {
            requests_per_second: f64::from(per_minute) / 60.0,
            burst: per_minute,
        },
        HashMap::new(),
    )
}

fn invalid_token(message: &str) -> ApiError {
    ApiError::Unauthorized {
        token_sent: true,
        message: message.to_owned(),
    }
}

/// What the request extractors need from the router's state: the token authority and the
/// per-client rate limits. A trait, so that this module does not depend on the state that
/// holds it.
pub trait Authenticates {
    /// Token checking and issuing.
    fn authority(&self) -> &TokenAuthority;
    /// `[rate_limits]`, when configured.
    fn rate_limits(&self) -> Option<&RateLimiter>;
}

impl<S: Authenticates + Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
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
        let caller = state.authority().verify(token).await?;
        if let Some(slot) = parts.extensions.get::<crate::access_log::ClientSlot>() {
            slot.record(&caller.client_id);
        }
        // The limit is per client, so it can only be counted once the token names the client;
        // a request with a bad token is refused above without using the client's budget.
        if let Some(limits) = state.rate_limits() {
            let decision = limits.check(&caller.client_id);
            if !decision.allowed {
                tracing::debug!(client_id = ?caller.client_id, "rate limit exceeded");
                return Err(ApiError::TooManyRequests(decision));
            }
        }
        Ok(caller)
    }
}

/// Here rather than beside `SourceAddress`, so that `client_addr` depends on nothing in the
/// server.
impl<S: Authenticates + Send + Sync> FromRequestParts<S> for SourceAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip());
        Ok(SourceAddress(peer.map(|peer| {
            state
                .authority()
                .client_address_rule()
                .source(peer, &parts.headers)
        })))
    }
}
