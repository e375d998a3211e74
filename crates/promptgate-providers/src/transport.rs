//! The one way a provider talks to its upstream: a JSON `POST` with the endpoint's timeout,
//! retries with backoff within a deadline, error bodies turned into [`ProviderError`]s, and the
//! API key kept out of everything but the request header.
//!
//! The rule for provider error text: it may reach the gateway's caller (it says why a call
//! failed: an unknown model, a context too long), but only cut to [`MAX_ERROR_TEXT`] characters
//! and only after [`mask`], which removes every piece of 8 or more characters of the key
//! (`promptgate_core::credentials::mask_secrets`). Each provider passes every error it returns
//! through [`scrub`], so no path skips the mask.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use promptgate_core::ModelEndpoint;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use tokio::time::Instant;

use crate::{KeySource, ProviderError};

/// The longest `Retry-After` honoured. A provider asking for longer is not waited for: the
/// gateway's caller is waiting too, and the deadline below would end the call anyway.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The first backoff; each retry doubles it, up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(100);

/// The longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The longest provider error text kept; error bodies can be whole HTML pages.
pub(crate) const MAX_ERROR_TEXT: usize = 300;

/// An endpoint's upstream: where it is, how to authenticate, and its time limits.
pub(crate) struct Transport {
    pub(crate) endpoint: ModelEndpoint,
    http: reqwest::Client,
    keys: Arc<dyn KeySource>,
}

/// A request ready to send: the URL, the authentication header built from the key, and the key
/// itself, kept only to mask it in error text that comes back.
pub(crate) struct Prepared {
    url: String,
    headers: HeaderMap,
    key: Option<String>,
}

/// How one attempt ended.
enum Attempt<T> {
    Success(T),
    /// Worth another attempt, after the wait the provider asked for (if it asked).
    Retry {
        error: ProviderError,
        retry_after: Option<Duration>,
    },
    Fail(ProviderError),
}

impl fmt::Debug for Transport {
    // Written by hand so that the key source, which may hold keys, is never formatted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("reference", &self.endpoint.reference)
            .field("base_url", &self.endpoint.base_url)
            .field("model", &self.endpoint.model)
            .field("api_key_env", &self.endpoint.api_key_env)
            .field("timeout_ms", &self.endpoint.timeout_ms)
            .field("max_retries", &self.endpoint.max_retries)
            .finish()
    }
}

impl Prepared {
    /// The key this request carries, to mask it in text that comes back.
    pub(crate) fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }
}

/// `error` with its text cut to [`MAX_ERROR_TEXT`] and every piece of `key` masked: the one
/// step every error passes before it leaves a provider. (A parse error can quote a whole
/// string of the answer, so `Invalid` is cut too.)
pub(crate) fn scrub(error: ProviderError, key: Option<&str>) -> ProviderError {
    match error {
        ProviderError::Upstream { status, message } => ProviderError::Upstream {
            status,
            message: mask(&truncate(&message, MAX_ERROR_TEXT), key),
        },
        ProviderError::Invalid(message) => {
            ProviderError::Invalid(mask(&truncate(&message, MAX_ERROR_TEXT), key))
        }
        other => other,
    }
}

impl Transport {
    pub(crate) fn new(
        endpoint: &ModelEndpoint,
        http: reqwest::Client,
        keys: Arc<dyn KeySource>,
    ) -> Self {
        Transport {
            endpoint: endpoint.clone(),
            http,
            keys,
        }
    }

    /// The timeout of one attempt, and of the wait for each chunk of a stream.
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.endpoint.timeout_ms.max(1))
    }

    /// Reads the key (at call time, so a rotated key needs no restart) and builds the request
    /// headers. `auth` makes the provider's authentication header from the key.
    pub(crate) fn prepare(
        &self,
        path: &str,
        extra: &[(HeaderName, &'static str)],
        auth: impl FnOnce(&str) -> (HeaderName, String),
    ) -> Result<Prepared, ProviderError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in extra {
            headers.insert(name.clone(), HeaderValue::from_static(value));
        }
        let key = match &self.endpoint.api_key_env {
            None => None,
            Some(variable) => {
                let key = self
                    .keys
                    .key(variable)
                    .ok_or_else(|| ProviderError::MissingKey {
                        variable: variable.clone(),
                    })?;
                let (name, value) = auth(&key);
                let mut value =
                    HeaderValue::from_str(&value).map_err(|_| ProviderError::Upstream {
                        status: None,
                        message: format!(
                            "the API key in {variable} has characters an HTTP header cannot carry"
                        ),
                    })?;
                // Sensitive values are left out of the HTTP stack's Debug output.
                value.set_sensitive(true);
                headers.insert(name, value);
                Some(key)
            }
        };
        let url = format!("{}{path}", self.endpoint.base_url.trim_end_matches('/'));
        Ok(Prepared { url, headers, key })
    }

    /// Sends `body` and reads the whole successful answer, with retries.
    pub(crate) async fn post(
        &self,
        request: &Prepared,
        body: Bytes,
    ) -> Result<Bytes, ProviderError> {
        let body = &body;
        self.with_retries(|| async move {
            match self.send(request, body.clone()).await {
                Attempt::Success(response) => match response.bytes().await {
                    Ok(bytes) => Attempt::Success(bytes),
                    Err(err) => Attempt::Retry {
                        error: broken(&err, request),
                        retry_after: None,
                    },
                },
                Attempt::Retry { error, retry_after } => Attempt::Retry { error, retry_after },
                Attempt::Fail(error) => Attempt::Fail(error),
            }
        })
        .await
    }

    /// Sends `body` and returns the successful answer as soon as its headers arrive, so that
    /// the caller can relay the body as it streams. Retries happen only up to that point.
    pub(crate) async fn post_streaming(
        &self,
        request: &Prepared,
        body: Bytes,
    ) -> Result<Response, ProviderError> {
        self.with_retries(|| self.send(request, body.clone())).await
    }

    /// One attempt: a 2xx answer is a success (its body unread); an error answer is read and
    /// turned into an error, retryable for 408, 429 and 5xx.
    async fn send(&self, request: &Prepared, body: Bytes) -> Attempt<Response> {
        let sent = self
            .http
            .post(&request.url)
            .headers(request.headers.clone())
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            // A request reqwest cannot even build (a malformed base_url) will not improve.
            Err(err) if err.is_builder() => return Attempt::Fail(broken(&err, request)),
            Err(err) => {
                return Attempt::Retry {
                    error: broken(&err, request),
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Success(response);
        }
        if status.is_redirection() {
            // The client follows no redirects (`http_client`): a redirect would carry the key
            // (in `x-api-key`, which reqwest keeps across hosts) to wherever it points.
            return Attempt::Fail(redirect_error(status));
        }
        let retry_after = retry_after(response.headers(), SystemTime::now());
        // A body that cannot be read still leaves the status to report.
        let text = response.bytes().await.unwrap_or_default();
        let error = ProviderError::Upstream {
            status: Some(status.as_u16()),
            message: error_message(status, &text, request.key.as_deref()),
        };
        if status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
            || status.is_server_error()
        {
            Attempt::Retry { error, retry_after }
        } else {
            Attempt::Fail(error)
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or retries or time run out. Each
    /// attempt gets the endpoint's timeout, cut short by the overall deadline of
    /// `timeout * (max_retries + 1)`.
    async fn with_retries<T, F, Fut>(&self, mut attempt: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let timeout = self.timeout();
        let max_retries = self.endpoint.max_retries;
        let deadline = Instant::now() + timeout.saturating_mul(max_retries.saturating_add(1));
        let mut retries = 0u32;
        loop {
            let budget = timeout.min(deadline.saturating_duration_since(Instant::now()));
            let outcome = match tokio::time::timeout(budget, attempt()).await {
                Ok(outcome) => outcome,
                Err(_) => Attempt::Retry {
                    error: ProviderError::Timeout,
                    retry_after: None,
                },
            };
            let (error, retry_after) = match outcome {
                Attempt::Success(value) => return Ok(value),
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry { error, retry_after } => (error, retry_after),
            };
            if retries >= max_retries {
                return Err(error);
            }
            let wait = retry_after
                .map(|asked| asked.min(MAX_RETRY_AFTER))
                .unwrap_or_else(|| backoff(retries));
            // Another attempt is worth making only with time left to answer in.
            let left_after_wait = deadline.saturating_duration_since(Instant::now() + wait);
            if left_after_wait < timeout / 2 {
                return Err(error);
            }
            retries += 1;
            tracing::warn!(
                endpoint = %self.endpoint.reference,
                retry = retries,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                // Escaped: the text is the provider's, and a newline in it must not start a log line.
                error = ?error.to_string(),
                "retrying the model provider"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

/// The wait before retry `retries + 1`: exponential, with "equal jitter" (a random point in
/// the upper half) so that many gateways retrying together spread out but none retries at once.
fn backoff(retries: u32) -> Duration {
    let ceiling = BASE_BACKOFF
        .saturating_mul(1u32 << retries.min(16))
        .min(MAX_BACKOFF);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::random_range(millis / 2..=millis))
}

/// The wait a `Retry-After` header asks for, in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The error for a redirect answer, naming its status. The `Location` is left out: it is the
/// provider's to give, and it could carry anything.
pub(crate) fn redirect_error(status: StatusCode) -> ProviderError {
    let code = status.as_u16();
    ProviderError::Upstream {
        status: Some(code),
        message: format!(
            "the provider answered a redirect ({code}); redirects are not followed, so the endpoint's base_url must be the final address"
        ),
    }
}

/// A transport failure as an error; the URL is left out as a matter of habit (it holds no key,
/// but a base_url could carry credentials in its user-info part).
fn broken(err: &reqwest::Error, request: &Prepared) -> ProviderError {
    let mut message = err.to_string();
    // reqwest's message is "error sending request for url (…)"; its source says why.
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    let message = message.replace(request.url.as_str(), "the provider");
    ProviderError::Upstream {
        status: None,
        message: mask(&truncate(&message, MAX_ERROR_TEXT), request.key.as_deref()),
    }
}

/// The message of an error answer: OpenAI's and Anthropic's `{"error": {"type", "message"}}`
/// when the body has that shape, else the start of the body, else the status's reason; cut to
/// [`MAX_ERROR_TEXT`], then masked.
pub(crate) fn error_message(status: StatusCode, body: &[u8], key: Option<&str>) -> String {
    let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
    let structured = parsed.as_ref().and_then(|value| {
        let error = value.get("error")?;
        let message = error.get("message").and_then(|m| m.as_str());
        let kind = error.get("type").and_then(|t| t.as_str());
        match (kind, message) {
            (Some(kind), Some(message)) => Some(format!("{kind}: {message}")),
            (None, Some(message)) => Some(message.to_owned()),
            (Some(kind), None) => Some(kind.to_owned()),
            // Some OpenAI-compatible servers send `{"error": "text"}`.
            (None, None) => error.as_str().map(str::to_owned),
        }
    });
    let text = structured.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    let text = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("no reason given")
            .to_owned()
    } else {
        truncate(&text, MAX_ERROR_TEXT)
    };
    mask(&text, key)
}

/// `text` with every piece of `key` of 8 or more characters replaced (the whole key when it is
/// shorter), whatever its case, split over lines, percent-encoded or JSON-escaped. Providers
/// echo parts of a rejected key ("sk-…abcd"), and a proxy in between may echo all of it; the
/// gateway must pass on none of it. Callers cut the text first, which bounds the work.
pub(crate) fn mask(text: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => promptgate_core::credentials::mask_secrets(text, &[key]),
        None => text.to_owned(),
    }
}

/// The first `max` characters of `text`, with `…` when it was longer.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(7));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&earlier).unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for retries in 0..40 {
            let wait = backoff(retries);
            let ceiling = BASE_BACKOFF
                .saturating_mul(1u32 << retries.min(16))
                .min(MAX_BACKOFF);
            assert!(
                wait <= ceiling && wait >= ceiling / 2,
                "{retries}: {wait:?}"
            );
        }
    }

    #[test]
    fn error_messages_from_both_providers_shapes() {
        let openai = br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert_eq!(
            error_message(StatusCode::TOO_MANY_REQUESTS, openai, None),
            "requests: Rate limit reached"
        );
        let anthropic =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            error_message(StatusCode::from_u16(529).unwrap(), anthropic, None),
            "overloaded_error: Overloaded"
        );
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, b"", None),
            "Bad Gateway"
        );
        let long = "x".repeat(1000);
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, long.as_bytes(), None)
                .chars()
                .count(),
            MAX_ERROR_TEXT + 1
        );
        assert_eq!(
            error_message(StatusCode::UNAUTHORIZED, b"bad key sk-123", Some("sk-123")),
            "bad key [redacted]"
        );
    }
}
