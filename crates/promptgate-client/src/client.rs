//! The HTTP client: configuration, the token cache and the retry loop every call goes through.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use promptgate_api::{ErrorBody, OAuthErrorResponse, TokenResponse};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderMap, IF_MATCH, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::Error;

/// How long before its expiry a token is replaced.
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// When and how often calls are retried. Every loop is bounded by both `max_attempts` and
/// `deadline`.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per call, the first included (at least 1).
    pub max_attempts: u32,
    /// The total time a call may take, waits included.
    pub deadline: Duration,
    /// The first backoff step; each retry doubles it, with full jitter.
    pub base_delay: Duration,
    /// The longest backoff step.
    pub max_delay: Duration,
    /// Also retry POST on 502/503/504 and connection errors (they may then run twice).
    pub retry_non_idempotent: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            deadline: Duration::from_secs(60),
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            retry_non_idempotent: false,
        }
    }
}

/// Builds a [`Client`]. Its `Debug` output shows the client id but never the secret (nor a
/// password in the base URL).
#[derive(Clone, Default)]
pub struct ClientBuilder {
    base_url: Option<String>,
    credentials: Option<(String, String)>,
    api_key: Option<String>,
    retry: RetryPolicy,
    request_timeout: Option<Duration>,
}

impl ClientBuilder {
    /// The gateway's URL, such as `http://127.0.0.1:8080` (no path).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The OAuth client id and secret used to get access tokens.
    pub fn client_credentials(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.credentials = Some((id.into(), secret.into()));
        self
    }

    /// An API key (`pgk_…`) sent as the bearer token of every call, instead of client
    /// credentials: a long-running service needs no token refresh. Wins over
    /// [`client_credentials`](Self::client_credentials) when both are set.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The whole retry policy.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Attempts per call (default 4).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.retry.max_attempts = attempts.max(1);
        self
    }

    /// Total time per call, retries and waits included (default 60 s).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.retry.deadline = deadline;
        self
    }

    /// Retry POST requests too (default: only GET, PUT and DELETE).
    pub fn retry_non_idempotent(mut self, yes: bool) -> Self {
        self.retry.retry_non_idempotent = yes;
        self
    }

    /// Timeout of one HTTP request (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let base_url = self
            .base_url
            .ok_or_else(|| Error::Config("a base URL is required (PROMPTGATE_URL)".to_owned()))?;
        let base_url = base_url.trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(Error::Config(format!(
                "the base URL must start with http:// or https://, not {base_url:?}"
            )));
        }
        let request_timeout = self.request_timeout.unwrap_or(Duration::from_secs(30));
        let http = reqwest::Client::builder()
            .read_timeout(request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("promptgate-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base_url,
                credentials: self.credentials,
                api_key: self.api_key,
                retry: self.retry,
                request_timeout,
                token: tokio::sync::Mutex::new(None),
            }),
        })
    }
}

/// A handle to one gateway. Cheap to clone; clones share the connection pool and the token.
/// Its `Debug` output shows the client id but never the secret or the access token.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    credentials: Option<(String, String)>,
    api_key: Option<String>,
    retry: RetryPolicy,
    request_timeout: Duration,
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

#[derive(Clone)]
struct CachedToken {
    value: String,
    expires_at: Instant,
}

/// What `Debug` prints in place of a secret.
const REDACTED: &str = "[redacted]";

// The `Debug` impls below are written by hand so that the client secret and the access token
// never reach a log line or a panic message through `{:?}` (tokio's `Mutex` would print the
// token it holds).

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url.as_deref().map(without_user_info))
            .field("client_id", &self.credentials.as_ref().map(|(id, _)| id))
            .field(
                "client_secret",
                &self.credentials.as_ref().map(|_| REDACTED),
            )
            .field("api_key", &self.api_key.as_ref().map(|_| REDACTED))
            .field("retry", &self.retry)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &without_user_info(&self.base_url))
            .field("client_id", &self.credentials.as_ref().map(|(id, _)| id))
            .field(
                "client_secret",
                &self.credentials.as_ref().map(|_| REDACTED),
            )
            .field("api_key", &self.api_key.as_ref().map(|_| REDACTED))
            .field("retry", &self.retry)
            .field("request_timeout", &self.request_timeout)
            .field("token", &REDACTED)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("value", &REDACTED)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// `url` cut to its scheme and host (and port), with `/…` when there was more: for errors
/// about URLs that are not the gateway's, whose path or query may hold a secret.
pub(crate) fn origin_only(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "[redacted]".to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let more = if authority_end < rest.len() || host.len() < authority.len() {
        "/…"
    } else {
        ""
    };
    format!("{scheme}://{host}{more}")
}

/// `url` with any `user:password@` replaced, for `Debug` output.
fn without_user_info(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{REDACTED}@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// A value with the `ETag` that came with it, for a later `If-Match`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged<T> {
    /// The value.
    pub value: T,
    /// The entity tag, when the gateway sent one.
    pub etag: Option<String>,
}

/// One call: what to send and how it may be retried.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<serde_json::Value>,
    pub if_match: Option<String>,
    pub streaming: bool,
}

impl Call {
    pub fn get(path: impl Into<String>) -> Self {
        Call {
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
            if_match: None,
            streaming: false,
        }
    }

    pub fn with(method: Method, path: impl Into<String>, body: Option<serde_json::Value>) -> Self {
        Call {
            method,
            path: path.into(),
            query: Vec::new(),
            body,
            if_match: None,
            streaming: false,
        }
    }
}

/// A successful answer.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::Decode(format!(
                "{} answer is not the expected JSON: {e}",
                self.status
            ))
        })
    }

    pub fn etag(&self) -> Option<String> {
        self.headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    pub fn tagged<T: DeserializeOwned>(&self) -> Result<Tagged<T>, Error> {
        Ok(Tagged {
            value: self.json()?,
            etag: self.etag(),
        })
    }
}

impl Client {
    /// Starts a builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client from `PROMPTGATE_URL`, and `PROMPTGATE_API_KEY` or `PROMPTGATE_CLIENT_ID` and
    /// `PROMPTGATE_CLIENT_SECRET`.
    pub fn from_env() -> Result<Client, Error> {
        let mut builder = Client::builder();
        if let Ok(url) = std::env::var("PROMPTGATE_URL") {
            builder = builder.base_url(url);
        }
        if let Ok(key) = std::env::var("PROMPTGATE_API_KEY")
            && !key.is_empty()
        {
            builder = builder.api_key(key);
        }
        if let (Ok(id), Ok(secret)) = (
            std::env::var("PROMPTGATE_CLIENT_ID"),
            std::env::var("PROMPTGATE_CLIENT_SECRET"),
        ) {
            builder = builder.client_credentials(id, secret);
        }
        builder.build()
    }

    /// The gateway's URL.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The pooled HTTP client, for requests to other targets (exports).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// A valid access token: the cached one until 60 s before it expires, else a new one. When
    /// many tasks ask at once, one request is made and the rest wait for its answer. With an
    /// API key, the key.
    pub async fn access_token(&self) -> Result<String, Error> {
        if let Some(key) = &self.inner.api_key {
            return Ok(key.clone());
        }
        let mut cached = self.inner.token.lock().await;
        if let Some(token) = cached.as_ref()
            && token.expires_at > Instant::now() + TOKEN_REFRESH_MARGIN
        {
            return Ok(token.value.clone());
        }
        let fresh = self.request_token().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Forgets `token` if it is still the cached one, so the next call gets a new token.
    async fn forget_token(&self, token: &str) {
        let mut cached = self.inner.token.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == token) {
            *cached = None;
        }
    }

    async fn request_token(&self) -> Result<CachedToken, Error> {
        let Some((id, secret)) = &self.inner.credentials else {
            return Err(Error::Config(
                "client credentials are required (PROMPTGATE_CLIENT_ID, PROMPTGATE_CLIENT_SECRET)"
                    .to_owned(),
            ));
        };
        let url = format!("{}/oauth/token", self.inner.base_url);
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .inner
                .http
                .post(&url)
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .timeout(self.attempt_timeout(started))
                .send()
                .await;
            let wait = match sent {
                Err(err) => match self.backoff(attempt, started, None) {
                    Some(wait) if is_retryable_transport(&err) => wait,
                    _ => return Err(Error::Transport(err)),
                },
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    let body = response.bytes().await.map_err(Error::Transport)?;
                    if status.is_success() {
                        let token: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
                            Error::Decode(format!("the token answer is not JSON: {e}"))
                        })?;
                        return Ok(CachedToken {
                            value: token.access_token,
                            expires_at: expiry(token.expires_in),
                        });
                    }
                    let retryable = matches!(status.as_u16(), 429 | 502 | 503 | 504);
                    match (
                        retryable,
                        self.backoff(attempt, started, retry_after(&headers)),
                    ) {
                        (true, Some(wait)) => wait,
                        _ => return Err(token_error(status, &headers, &body)),
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// The wait before attempt `attempt + 1`, or `None` when attempts or time are used up.
    fn backoff(&self, attempt: u32, started: Instant, asked: Option<Duration>) -> Option<Duration> {
        let policy = &self.inner.retry;
        if attempt >= policy.max_attempts {
            return None;
        }
        let wait = asked.unwrap_or_else(|| {
            let exponent = attempt.saturating_sub(1).min(16);
            let cap = policy
                .base_delay
                .saturating_mul(1u32 << exponent)
                .min(policy.max_delay);
            // Full jitter: spreads retries of many clients over the whole interval.
            let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
            Duration::from_millis(rand::random_range(0..=millis))
        });
        started
            .elapsed()
            .checked_add(wait)
            .is_some_and(|end| end <= policy.deadline)
            .then_some(wait)
    }

    /// The time one attempt may take: the request timeout, cut to what is left of the deadline
    /// so that the deadline bounds an attempt already in flight too.
    fn attempt_timeout(&self, started: Instant) -> Duration {
        let left = self.inner.retry.deadline.saturating_sub(started.elapsed());
        self.inner
            .request_timeout
            .min(left)
            .max(Duration::from_millis(1))
    }

    /// Sends a call with authentication and retries, and turns error answers into [`Error`].
    pub(crate) async fn send(&self, call: Call) -> Result<Answer, Error> {
        let response = self.send_raw(call).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(Error::Transport)?.to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// Like [`Client::send`], but hands back a successful response unread (for streams).
    pub(crate) async fn send_raw(&self, call: Call) -> Result<reqwest::Response, Error> {
        let started = Instant::now();
        let policy = &self.inner.retry;
        let idempotent = matches!(
            call.method,
            Method::GET | Method::PUT | Method::DELETE | Method::HEAD
        ) || policy.retry_non_idempotent;
        let url = format!("{}{}", self.inner.base_url, call.path);
        let mut attempt = 0;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let token = self.access_token().await?;
            let mut request = self
                .inner
                .http
                .request(call.method.clone(), &url)
                .header(AUTHORIZATION, format!("Bearer {token}"));
            if !call.query.is_empty() {
                request = request.query(&call.query);
            }
            if let Some(tag) = &call.if_match {
                request = request.header(IF_MATCH, tag);
            }
            if let Some(body) = &call.body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.to_string());
            }
            if !call.streaming {
                // A stream may run longer than any request timeout; its reads are bounded by
                // the client's read timeout instead.
                request = request.timeout(self.attempt_timeout(started));
            }
            let wait = match request.send().await {
                Err(err) => match self.backoff(attempt, started, None) {
                    Some(wait) if idempotent && is_retryable_transport(&err) => wait,
                    _ => return Err(Error::Transport(err)),
                },
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        return Ok(response);
                    }
                    let headers = response.headers().clone();
                    let body = response.bytes().await.map_err(Error::Transport)?.to_vec();
                    if status == StatusCode::UNAUTHORIZED && !refreshed {
                        // The token expired or was revoked under us: one fresh token, one retry.
                        refreshed = true;
                        self.forget_token(&token).await;
                        attempt -= 1;
                        continue;
                    }
                    let asked = retry_after(&headers);
                    let retry = match status.as_u16() {
                        429 => self.backoff(attempt, started, asked.or(Some(policy.base_delay))),
                        502..=504 if idempotent => self.backoff(attempt, started, None),
                        _ => None,
                    };
                    match retry {
                        Some(wait) => wait,
                        None if status == StatusCode::TOO_MANY_REQUESTS => {
                            return Err(Error::RateLimited { retry_after: asked });
                        }
                        None => return Err(api_error(status, &headers, &body)),
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Sends a call without a token (health endpoints).
    pub(crate) async fn send_anonymous(&self, path: &str) -> Result<Answer, Error> {
        let response = self
            .inner
            .http
            .get(format!("{}{}", self.inner.base_url, path))
            .timeout(self.inner.request_timeout)
            .send()
            .await
            .map_err(Error::Transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(Error::Transport)?.to_vec();
        if status.is_success() {
            Ok(Answer {
                status,
                headers,
                body,
            })
        } else {
            Err(api_error(status, &headers, &body))
        }
    }
}

/// When a token that lives `expires_in` seconds expires; absurd lifetimes are capped at a year.
fn expiry(expires_in: u64) -> Instant {
    let year = Duration::from_secs(365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(Duration::from_secs(expires_in).min(year))
        .unwrap_or(now)
}

fn is_retryable_transport(err: &reqwest::Error) -> bool {
    err.is_connect() || err.is_timeout()
}

/// `Retry-After` as seconds or an HTTP-date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(text).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn api_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Error {
    let etag = headers
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => Error::from_body(status.as_u16(), parsed, etag),
        Err(_) => Error::Api {
            status: status.as_u16(),
            code: "unknown".to_owned(),
            message: String::from_utf8_lossy(body).chars().take(500).collect(),
            context_id: None,
        },
    }
}

fn token_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Error {
    let parsed: Option<OAuthErrorResponse> = serde_json::from_slice(body).ok();
    let describe = |p: &OAuthErrorResponse| {
        format!(
            "{}{}",
            p.error,
            p.error_description
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        )
    };
    match (status.as_u16(), parsed) {
        (429, _) => Error::RateLimited {
            retry_after: retry_after(headers),
        },
        (401, Some(p)) => Error::Unauthorized {
            message: describe(&p),
            context_id: None,
        },
        (code, Some(p)) => Error::Api {
            status: code,
            code: p.error.clone(),
            message: describe(&p),
            context_id: None,
        },
        (code, None) => Error::Api {
            status: code,
            code: "unknown".to_owned(),
            message: String::from_utf8_lossy(body).chars().take(500).collect(),
            context_id: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_both_forms() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(120);
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait <= Duration::from_secs(120) && wait >= Duration::from_secs(110),
            "{wait:?}"
        );
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[tokio::test]
    async fn sdk_debug_output_hides_the_client_secret_and_the_token() {
        let secret = "pg-secret-Zx81kQmP0aLr5TyU2wEe9";
        let token = "pg-token-Qw3rTy7uIoP9aSdF4gHjK";
        let builder = Client::builder()
            .base_url("https://admin:url-password-1234@gateway.example:8443/")
            .client_credentials("my-client", secret);
        let client = builder.clone().build().unwrap();
        // A cached token, as after a successful sign-in.
        *client.inner.token.lock().await = Some(CachedToken {
            value: token.to_owned(),
            expires_at: Instant::now() + Duration::from_secs(3600),
        });
        let cached = client.inner.token.lock().await.clone().unwrap();
        // The wire types the SDK hands out that carry a secret or a token.
        let created = promptgate_api::OAuthClient {
            client_id: "my-client".to_owned(),
            client_secret: Some(secret.to_owned()),
            name: "ci".to_owned(),
            scopes: vec!["admin".to_owned()],
            created_at: "2025-01-01T00:00:00Z".to_owned(),
            disabled: false,
            disabled_at: None,
        };
        let issued = TokenResponse {
            access_token: token.to_owned(),
            token_type: "bearer".to_owned(),
            expires_in: 3600,
            scope: "admin".to_owned(),
        };
        let outputs = [
            format!("{builder:?}"),
            format!("{builder:#?}"),
            format!("{client:?}"),
            format!("{client:#?}"),
            format!("{cached:?}"),
            format!("{created:?}"),
            format!("{issued:?}"),
        ];
        for text in &outputs {
            for needle in [secret, token, "url-password-1234"] {
                assert!(!text.contains(needle), "{needle} in {text}");
            }
            assert!(text.contains(REDACTED), "{text}");
        }
        // What helps debugging is still there.
        assert!(outputs[0].contains("my-client") && outputs[2].contains("my-client"));
        assert!(
            outputs[2].contains("gateway.example:8443"),
            "{}",
            outputs[2]
        );
        assert_eq!(
            without_user_info("http://127.0.0.1:8080/x@y"),
            "http://127.0.0.1:8080/x@y"
        );
    }

    #[tokio::test]
    async fn an_api_key_is_the_bearer_and_never_shown_by_debug() {
        let key = "pgk_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
        let builder = Client::builder()
            .base_url("http://127.0.0.1:1")
            .api_key(key);
        let client = builder.clone().build().unwrap();
        // No token request: the key is the bearer value itself.
        assert_eq!(client.access_token().await.unwrap(), key);
        for text in [
            format!("{builder:?}"),
            format!("{client:?}"),
            format!("{client:#?}"),
        ] {
            assert!(!text.contains(key), "the key in {text}");
            assert!(
                text.contains("api_key") && text.contains(REDACTED),
                "{text}"
            );
        }
    }

    #[tokio::test]
    async fn export_refused_error_hides_the_webhook_url_secret() {
        // An export target that refuses everything, and one that is not listening.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refusing = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::NOT_FOUND });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let client = Client::builder()
            .base_url("http://127.0.0.1:1")
            .build()
            .unwrap();
        let payload = promptgate_api::ExportPayload {
            metrics: Vec::new(),
            export_timestamp: "2025-01-01T00:00:00Z".to_owned(),
        };
        let path = "/services/T0/B0/XoXoSeCrEt?token=abc";
        let refused = client
            .post_export(
                &format!("http://bot:pw-Zx81kQmP@{refusing}{path}"),
                &payload,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, Error::ExportRefused { status: 404, url } if *url == format!("http://{refusing}/…")),
            "{refused:?}"
        );
        let unreachable = client
            .post_export(&format!("http://{closed}{path}"), &payload)
            .await
            .unwrap_err();
        assert!(
            matches!(unreachable, Error::Transport(_)),
            "{unreachable:?}"
        );
        for error in [refused, unreachable] {
            let mut texts = vec![error.to_string(), format!("{error:?}")];
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                texts.push(cause.to_string());
                source = cause.source();
            }
            for text in texts {
                for secret in ["pw-Zx81kQmP", "XoXoSeCrEt", "token=abc", "services"] {
                    assert!(!text.contains(secret), "{secret} in {text}");
                }
            }
        }
        assert_eq!(origin_only("not a url"), "[redacted]");
    }

    #[test]
    fn builder_requires_a_url() {
        assert!(matches!(Client::builder().build(), Err(Error::Config(_))));
        assert!(matches!(
            Client::builder().base_url("localhost:8080").build(),
            Err(Error::Config(_))
        ));
    }
}
