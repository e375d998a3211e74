//! The SDK against scripted HTTP servers: each test builds a small axum server on a loopback
//! port whose handlers follow a script and count the requests they get, so the tests can assert
//! exactly how many requests the SDK made (never how long it took).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use futures_util::future::join_all;
use promptgate_client::api::{
    self, CreatePromptRequest, OAuthClient, Prompt, TrafficDistribution, UpdatePromptRequest,
};
use promptgate_client::{Client, Error, PromptDraft, RetryPolicy, TokenCounter, TokenizerKind};
use serde_json::{Value, json};

const ENDPOINTS: &str = "/api/v2/ai/llm/gateway/model-endpoints";
const PROMPTS: &str = "/api/v2/ai/llm/gateway/prompts";
const PROMPT: &str = "/api/v2/ai/llm/gateway/prompts/{id}";
const CLIENTS: &str = "/api/v2/oauth/clients";

/// How a scripted answer's `Retry-After` is written.
#[derive(Clone, Debug)]
enum RetryAfter {
    /// As given, such as `1`.
    Text(String),
    /// An HTTP-date this far after the moment the answer is sent.
    DateIn(Duration),
}

/// One scripted answer.
#[derive(Clone, Debug)]
struct Reply {
    status: u16,
    retry_after: Option<RetryAfter>,
    body: String,
}

impl Reply {
    fn ok(body: Value) -> Reply {
        Reply {
            status: 200,
            retry_after: None,
            body: body.to_string(),
        }
    }

    fn created(body: Value) -> Reply {
        Reply {
            status: 201,
            ..Reply::ok(body)
        }
    }

    /// An ErrorBody of the contract, with `contextId` `ctx-<status>`.
    fn error(status: u16, code: &str) -> Reply {
        Reply {
            status,
            retry_after: None,
            body: json!({
                "status": status, "code": code, "message": format!("scripted {code}"),
                "messageWithParams": format!("scripted {code}"), "messageParams": {},
                "contextId": format!("ctx-{status}"), "details": [], "errors": []
            })
            .to_string(),
        }
    }

    fn rate_limited(retry_after: RetryAfter) -> Reply {
        Reply {
            retry_after: Some(retry_after),
            ..Reply::error(429, "too.many.requests")
        }
    }

    fn seconds(text: &str) -> RetryAfter {
        RetryAfter::Text(text.to_owned())
    }

    fn into_response(self) -> Response {
        let mut response = (
            StatusCode::from_u16(self.status).unwrap(),
            [(header::CONTENT_TYPE, "application/json")],
            self.body,
        )
            .into_response();
        let value = match self.retry_after {
            None => None,
            Some(RetryAfter::Text(text)) => Some(text),
            Some(RetryAfter::DateIn(d)) => Some(httpdate::fmt_http_date(SystemTime::now() + d)),
        };
        if let Some(value) = value {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_str(&value).unwrap());
        }
        response
    }
}

/// What a scripted server saw.
#[derive(Clone, Default)]
struct Seen {
    token_requests: Arc<AtomicUsize>,
    api_requests: Arc<AtomicUsize>,
    /// The bearer token of each API request, in order.
    bearers: Arc<Mutex<Vec<String>>>,
}

impl Seen {
    fn tokens(&self) -> usize {
        self.token_requests.load(Ordering::SeqCst)
    }

    fn api(&self) -> usize {
        self.api_requests.load(Ordering::SeqCst)
    }

    fn bearers(&self) -> Vec<String> {
        self.bearers.lock().unwrap().clone()
    }

    /// Counts an API request and answers its bearer token.
    fn record(&self, headers: &HeaderMap) -> (usize, String) {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("")
            .to_owned();
        self.bearers.lock().unwrap().push(bearer.clone());
        (self.api_requests.fetch_add(1, Ordering::SeqCst), bearer)
    }
}

/// A `/oauth/token` handler that answers `tok-1`, `tok-2`, … after `delay`, with the
/// lifetime `expires_in(n)` for the n-th token.
fn token_router(
    seen: &Seen,
    delay: Duration,
    expires_in: impl Fn(usize) -> u64 + Clone + Send + Sync + 'static,
) -> Router {
    let count = seen.token_requests.clone();
    Router::new().route(
        "/oauth/token",
        post(move || {
            let count = count.clone();
            let expires_in = expires_in.clone();
            async move {
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(delay).await;
                axum::Json(json!({
                    "access_token": format!("tok-{n}"), "token_type": "bearer",
                    "expires_in": expires_in(n), "scope": "ai:prompt:read ai:prompt:write admin"
                }))
            }
        }),
    )
}

/// A server whose `path` answers `replies` in order (the last one again once they run out),
/// with a token endpoint that hands out day-long tokens.
async fn scripted(path: &str, replies: Vec<Reply>) -> (String, Seen) {
    let seen = Seen::default();
    let api = {
        let seen = seen.clone();
        any(move |headers: HeaderMap| {
            let seen = seen.clone();
            let replies = replies.clone();
            async move {
                let (n, _) = seen.record(&headers);
                replies[n.min(replies.len() - 1)].clone().into_response()
            }
        })
    };
    let router = token_router(&seen, Duration::ZERO, |_| 86_400).route(path, api);
    (serve(router).await, seen)
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}

fn fast_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        deadline: Duration::from_secs(20),
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        retry_non_idempotent: false,
    }
}

fn client_with(base: &str, policy: RetryPolicy) -> Client {
    Client::builder()
        .base_url(base)
        .client_credentials("scripted-id", "scripted-secret")
        .retry_policy(policy)
        .build()
        .unwrap()
}

fn client(base: &str, max_attempts: u32) -> Client {
    client_with(base, fast_policy(max_attempts))
}

fn endpoints_ok() -> Reply {
    Reply::ok(json!({"entities": []}))
}

fn oauth_client() -> Value {
    serde_json::to_value(OAuthClient {
        client_id: "c-1".into(),
        client_secret: Some("s".repeat(43)),
        name: "bot".into(),
        scopes: vec!["ai:prompt:read".into()],
        created_at: "2026-11-27T04:15:39Z".into(),
        disabled: false,
        disabled_at: None,
    })
    .unwrap()
}

fn prompt(status: &str) -> Value {
    serde_json::to_value(Prompt {
        id: "p-1".into(),
        name: "support_agent".into(),
        status: status.into(),
        version: "1.0.0".into(),
        model_endpoint_ref: "builtin/echo".into(),
        system_prompt: "Be brief.".into(),
        temperature: 1.0,
        safety_guardrails: api::SafetyGuardrails::default(),
        few_shot_examples: Vec::new(),
        template_messages: Vec::new(),
        variables_schema: None,
        variables: Vec::new(),
        tools: Vec::new(),
        tool_choice: None,
        response_format: None,
        system_prompt_tokens: 3,
        tokenizer: "o200k_base".into(),
        tokenizer_exact: false,
        traffic_distribution: TrafficDistribution {
            default_version: Some("1.0.0".into()),
            split_strategy: Some("sticky".into()),
            versions: Some(Vec::new()),
        },
        chat_completions: api::ChatCompletionsSettings::default(),
        versions: vec!["1.0.0".into()],
        labels: Default::default(),
        created_at: "2026-11-27T04:15:39Z".into(),
        updated_at: "2026-11-27T04:15:39Z".into(),
        fallback_endpoint_refs: Vec::new(),
    })
    .unwrap()
}

fn create_request() -> CreatePromptRequest {
    CreatePromptRequest {
        name: Some("support_agent".into()),
        model_endpoint_ref: Some("builtin/echo".into()),
        system_prompt: Some("Be brief.".into()),
        version: Some("1.0.0".into()),
        ..CreatePromptRequest::default()
    }
}

// ---- 429 and Retry-After ----

#[tokio::test]
async fn rate_limited_with_retry_after_seconds_then_success() {
    let (base, seen) = scripted(
        ENDPOINTS,
        vec![Reply::rate_limited(Reply::seconds("1")), endpoints_ok()],
    )
    .await;
    let result = client(&base, 4).model_endpoints().await;
    assert_eq!(result.unwrap(), Vec::new());
    assert_eq!(seen.api(), 2, "one 429, one retry");
    assert_eq!(seen.tokens(), 1);
}

#[tokio::test]
async fn rate_limited_with_retry_after_http_date_then_success() {
    let (base, seen) = scripted(
        ENDPOINTS,
        vec![
            Reply::rate_limited(RetryAfter::DateIn(Duration::from_secs(1))),
            endpoints_ok(),
        ],
    )
    .await;
    let result = client(&base, 4).model_endpoints().await;
    assert_eq!(result.unwrap(), Vec::new());
    assert_eq!(seen.api(), 2, "one 429, one retry");
}

#[tokio::test]
async fn retry_after_is_reported_in_both_forms_when_no_attempt_is_left() {
    let (base, seen) = scripted(ENDPOINTS, vec![Reply::rate_limited(Reply::seconds("7"))]).await;
    match client(&base, 1).model_endpoints().await {
        Err(Error::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(seen.api(), 1);

    let (base, seen) = scripted(
        ENDPOINTS,
        vec![Reply::rate_limited(RetryAfter::DateIn(
            Duration::from_secs(120),
        ))],
    )
    .await;
    let err = client(&base, 1).model_endpoints().await.unwrap_err();
    match &err {
        Error::RateLimited {
            retry_after: Some(wait),
        } => {
            // An HTTP-date has whole seconds: 119 to 120 s from now.
            assert!(
                *wait > Duration::from_secs(100) && *wait <= Duration::from_secs(120),
                "{wait:?}"
            );
        }
        other => panic!("expected RateLimited with a wait, got {other:?}"),
    }
    assert!(err.to_string().contains("retry after"), "{err}");
    assert_eq!(seen.api(), 1);
}

#[tokio::test]
async fn rate_limited_forever_gives_up_after_max_attempts() {
    let (base, seen) = scripted(ENDPOINTS, vec![Reply::rate_limited(Reply::seconds("0"))]).await;
    match client(&base, 3).model_endpoints().await {
        Err(Error::RateLimited {
            retry_after: Some(_),
        }) => {}
        other => panic!("expected RateLimited with Retry-After, got {other:?}"),
    }
    assert_eq!(seen.api(), 3, "exactly max_attempts requests");
}

#[tokio::test]
async fn deadline_stops_the_wait_for_a_long_retry_after() {
    for retry_after in [
        Reply::seconds("5"),
        RetryAfter::DateIn(Duration::from_secs(6)),
    ] {
        let (base, seen) =
            scripted(ENDPOINTS, vec![Reply::rate_limited(retry_after.clone())]).await;
        let policy = RetryPolicy {
            deadline: Duration::from_millis(300),
            ..fast_policy(10)
        };
        match client_with(&base, policy).model_endpoints().await {
            Err(Error::RateLimited {
                retry_after: Some(wait),
            }) => assert!(wait >= Duration::from_secs(4), "{retry_after:?}: {wait:?}"),
            other => panic!("{retry_after:?}: expected RateLimited, got {other:?}"),
        }
        assert_eq!(
            seen.api(),
            1,
            "{retry_after:?}: no retry that the deadline cannot wait for"
        );
    }
}

#[tokio::test]
async fn post_is_retried_after_429() {
    // A 429 means the request was not processed, so even a POST may be sent again.
    let (base, seen) = scripted(
        CLIENTS,
        vec![
            Reply::rate_limited(Reply::seconds("0")),
            Reply::created(oauth_client()),
        ],
    )
    .await;
    let created = client(&base, 3)
        .create_client("bot", &["ai:prompt:read"])
        .await
        .unwrap();
    assert_eq!(created.client_id, "c-1");
    assert_eq!(seen.api(), 2);
}

// A server may send any number of seconds; the SDK must not panic on it. The answer comes after
// a second, so that the time already spent plus the wait overflows a Duration.
#[tokio::test]
async fn a_huge_retry_after_is_an_error_not_a_panic() {
    let seen = Seen::default();
    let api = {
        let seen = seen.clone();
        any(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                seen.record(&headers);
                tokio::time::sleep(Duration::from_millis(1100)).await;
                Reply::rate_limited(Reply::seconds("18446744073709551615")).into_response()
            }
        })
    };
    let router = token_router(&seen, Duration::ZERO, |_| 86_400).route(ENDPOINTS, api);
    let base = serve(router).await;
    let call = tokio::spawn(async move { client(&base, 3).model_endpoints().await });
    match call.await {
        Ok(Err(Error::RateLimited { .. })) => {}
        Ok(other) => panic!("expected RateLimited, got {other:?}"),
        Err(join) => panic!("the SDK panicked on Retry-After: 18446744073709551615: {join}"),
    }
    assert_eq!(seen.api(), 1);
}

// ---- tokens ----

#[tokio::test]
async fn a_token_inside_the_refresh_margin_is_replaced_once() {
    let seen = Seen::default();
    let api = {
        let seen = seen.clone();
        any(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                seen.record(&headers);
                endpoints_ok().into_response()
            }
        })
    };
    // The first token has 60 s left: inside the 60 s margin, so it is used once and replaced.
    let router = token_router(&seen, Duration::ZERO, |n| if n == 1 { 60 } else { 86_400 })
        .route(ENDPOINTS, api);
    let base = serve(router).await;
    let client = client(&base, 3);
    for _ in 0..4 {
        client.model_endpoints().await.unwrap();
    }
    assert_eq!(seen.tokens(), 2, "one refresh");
    assert_eq!(seen.bearers(), vec!["tok-1", "tok-2", "tok-2", "tok-2"]);
}

/// An API that accepts `tok-1` for `accepted_uses` requests and then answers 401 for it, as if
/// it had expired; every later token is accepted unless `reject_all`.
async fn expiring_token_server(accepted_uses: usize, reject_all: bool) -> (String, Seen) {
    let seen = Seen::default();
    let api = {
        let seen = seen.clone();
        let first_uses = Arc::new(AtomicUsize::new(0));
        any(move |headers: HeaderMap| {
            let seen = seen.clone();
            let first_uses = first_uses.clone();
            async move {
                let (_, bearer) = seen.record(&headers);
                let expired =
                    bearer == "tok-1" && first_uses.fetch_add(1, Ordering::SeqCst) >= accepted_uses;
                if expired || reject_all {
                    let mut response = Reply::error(401, "unauthorized").into_response();
                    response.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Bearer error=\"invalid_token\""),
                    );
                    response
                } else {
                    endpoints_ok().into_response()
                }
            }
        })
    };
    let router = token_router(&seen, Duration::ZERO, |_| 86_400).route(ENDPOINTS, api);
    (serve(router).await, seen)
}

#[tokio::test]
async fn a_token_that_expires_mid_run_is_refreshed_once_and_the_call_retried() {
    let (base, seen) = expiring_token_server(1, false).await;
    let client = client(&base, 1);
    client.model_endpoints().await.unwrap();
    // tok-1 has expired on the server: 401, one refresh, one retry. With max_attempts 1 this
    // also shows the retry after a refresh is not counted as an attempt.
    client.model_endpoints().await.unwrap();
    client.model_endpoints().await.unwrap();
    assert_eq!(seen.tokens(), 2, "exactly one refresh");
    assert_eq!(seen.bearers(), vec!["tok-1", "tok-1", "tok-2", "tok-2"]);
}

#[tokio::test]
async fn a_token_refused_again_after_the_refresh_is_unauthorized() {
    let (base, seen) = expiring_token_server(0, true).await;
    let err = client(&base, 4).model_endpoints().await.unwrap_err();
    match &err {
        Error::Unauthorized { context_id, .. } => {
            assert_eq!(context_id.as_deref(), Some("ctx-401"));
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert_eq!(seen.tokens(), 2, "one refresh, no loop");
    assert_eq!(seen.bearers(), vec!["tok-1", "tok-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_calls_on_a_fresh_client_make_one_token_request() {
    let seen = Seen::default();
    let api = {
        let seen = seen.clone();
        any(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                seen.record(&headers);
                endpoints_ok().into_response()
            }
        })
    };
    // A slow token endpoint, so that every call asks while the first request is in flight.
    let router = token_router(&seen, Duration::from_millis(100), |_| 86_400).route(ENDPOINTS, api);
    let base = serve(router).await;
    let client = client(&base, 1);
    let calls = (0..100).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.model_endpoints().await })
    });
    let results = join_all(calls).await;
    for result in results {
        result.unwrap().unwrap();
    }
    assert_eq!(seen.tokens(), 1, "exactly one token request");
    assert_eq!(seen.api(), 100);
    assert!(seen.bearers().iter().all(|b| b == "tok-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_that_find_their_token_expired_refresh_once() {
    let (base, seen) = expiring_token_server(1, false).await;
    let client = client(&base, 1);
    client.model_endpoints().await.unwrap();
    let calls = (0..20).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.model_endpoints().await })
    });
    for result in join_all(calls).await {
        result.unwrap().unwrap();
    }
    assert_eq!(seen.tokens(), 2, "one refresh for all of them");
}

#[tokio::test]
async fn token_endpoint_503_is_retried() {
    let seen = Seen::default();
    let token_calls = seen.token_requests.clone();
    let router = Router::new()
        .route(
            "/oauth/token",
            post(move || {
                let token_calls = token_calls.clone();
                async move {
                    if token_calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response()
                    } else {
                        axum::Json(json!({"access_token": "tok", "token_type": "bearer",
                            "expires_in": 3600, "scope": "admin"}))
                        .into_response()
                    }
                }
            }),
        )
        .route(ENDPOINTS, any(|| async { endpoints_ok().into_response() }));
    let base = serve(router).await;
    client(&base, 3).model_endpoints().await.unwrap();
    assert_eq!(seen.tokens(), 2);
}

// Instant + Duration overflows on a huge `expires_in`; the SDK must not panic on it.
#[tokio::test]
async fn a_huge_expires_in_is_not_a_panic() {
    let seen = Seen::default();
    let router = token_router(&seen, Duration::ZERO, |_| u64::MAX)
        .route(ENDPOINTS, any(|| async { endpoints_ok().into_response() }));
    let base = serve(router).await;
    let call = tokio::spawn(async move { client(&base, 1).model_endpoints().await });
    match call.await {
        Ok(result) => {
            result.unwrap();
        }
        Err(join) => panic!("the SDK panicked on expires_in = u64::MAX: {join}"),
    }
}

// ---- 5xx and connection errors ----

#[tokio::test]
async fn a_503_storm_ends_after_max_attempts_with_a_clear_error() {
    let (base, seen) = scripted(ENDPOINTS, vec![Reply::error(503, "service.unavailable")]).await;
    let err = client(&base, 5).model_endpoints().await.unwrap_err();
    match &err {
        Error::Api {
            status: 503,
            code,
            message,
            context_id,
        } => {
            assert_eq!(code, "service.unavailable");
            assert_eq!(message, "scripted service.unavailable");
            assert_eq!(context_id.as_deref(), Some("ctx-503"));
        }
        other => panic!("expected Api 503, got {other:?}"),
    }
    assert_eq!(seen.api(), 5, "exactly max_attempts requests");
    let text = err.to_string();
    assert!(
        text.contains("503") && text.contains("ctx-503"),
        "the error does not say what happened: {text}"
    );
}

#[tokio::test]
async fn gateway_errors_are_retried_until_success() {
    let (base, seen) = scripted(
        ENDPOINTS,
        vec![
            Reply::error(502, "upstream.error"),
            Reply::error(504, "upstream.timeout"),
            Reply::error(503, "service.unavailable"),
            endpoints_ok(),
        ],
    )
    .await;
    client(&base, 4).model_endpoints().await.unwrap();
    assert_eq!(seen.api(), 4);
}

#[tokio::test]
async fn a_500_or_a_400_is_not_retried() {
    for reply in [
        Reply::error(500, "internal.server.error"),
        Reply::error(400, "invalid.value"),
        Reply {
            status: 500,
            retry_after: None,
            body: "<html>oops</html>".into(),
        },
    ] {
        let (base, seen) = scripted(ENDPOINTS, vec![reply.clone(), endpoints_ok()]).await;
        match client(&base, 4).model_endpoints().await {
            Err(Error::Api { status, .. }) => assert_eq!(status, reply.status),
            other => panic!("{reply:?}: expected Api, got {other:?}"),
        }
        assert_eq!(seen.api(), 1, "{reply:?}");
    }
}

#[tokio::test]
async fn put_and_delete_are_retried_on_503() {
    let (base, seen) = scripted(
        PROMPT,
        vec![
            Reply::error(503, "service.unavailable"),
            Reply::ok(prompt("ACTIVE")),
        ],
    )
    .await;
    let updated = client(&base, 3)
        .update_prompt("p-1", &UpdatePromptRequest::default(), None)
        .await
        .unwrap();
    assert_eq!(updated.value.id, "p-1");
    assert_eq!(seen.api(), 2);

    let (base, seen) = scripted(
        PROMPT,
        vec![
            Reply::error(503, "service.unavailable"),
            Reply::ok(prompt("ARCHIVED")),
        ],
    )
    .await;
    let archived = client(&base, 3).archive_prompt("p-1", None).await.unwrap();
    assert_eq!(archived.value.status, "ARCHIVED");
    assert_eq!(seen.api(), 2);
}

#[tokio::test]
async fn post_is_not_retried_on_503_unless_the_caller_opts_in() {
    let storm = vec![Reply::error(503, "service.unavailable")];
    let (base, seen) = scripted(PROMPTS, storm.clone()).await;
    match client(&base, 4).create_prompt_raw(&create_request()).await {
        Err(Error::Api { status: 503, .. }) => {}
        other => panic!("expected Api 503, got {other:?}"),
    }
    assert_eq!(seen.api(), 1, "a POST that may have run is not sent again");

    let (base, seen) = scripted(CLIENTS, storm.clone()).await;
    assert!(
        client(&base, 4)
            .create_client("bot", &["admin"])
            .await
            .is_err()
    );
    assert_eq!(seen.api(), 1);

    let (base, seen) = scripted(PROMPTS, storm).await;
    let opted_in = Client::builder()
        .base_url(&base)
        .client_credentials("scripted-id", "scripted-secret")
        .retry_policy(fast_policy(4))
        .retry_non_idempotent(true)
        .build()
        .unwrap();
    match opted_in.create_prompt_raw(&create_request()).await {
        Err(Error::Api { status: 503, .. }) => {}
        other => panic!("expected Api 503, got {other:?}"),
    }
    assert_eq!(seen.api(), 4, "opted in: max_attempts requests");

    let (base, seen) = scripted(
        CLIENTS,
        vec![
            Reply::error(502, "upstream.error"),
            Reply::created(oauth_client()),
        ],
    )
    .await;
    let opted_in = client_with(
        &base,
        RetryPolicy {
            retry_non_idempotent: true,
            ..fast_policy(3)
        },
    );
    opted_in.create_client("bot", &["admin"]).await.unwrap();
    assert_eq!(seen.api(), 2);
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error() {
    // A port that was just free: nothing listens on it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = client(&format!("http://127.0.0.1:{port}"), 3);
    let err = client.get_prompt("p-1").await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(
        err.to_string().contains("check the URL"),
        "the error does not say what to do: {err}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept"
    );
    assert!(matches!(
        client.model_endpoints().await,
        Err(Error::Transport(_))
    ));
}

#[tokio::test]
async fn the_deadline_bounds_a_request_that_never_answers() {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let seen = Seen::default();
    let api = {
        let seen = seen.clone();
        any(move |headers: HeaderMap| {
            let seen = seen.clone();
            let mut rx = rx.clone();
            async move {
                seen.record(&headers);
                // Hang until the test ends.
                let _ = rx.wait_for(|done| *done).await;
                endpoints_ok().into_response()
            }
        })
    };
    let router = token_router(&seen, Duration::ZERO, |_| 86_400).route(ENDPOINTS, api);
    let base = serve(router).await;
    let policy = RetryPolicy {
        deadline: Duration::from_millis(300),
        ..fast_policy(3)
    };
    let client = client_with(&base, policy);
    // The guard is 15 times the deadline; without it, the call would wait for the default
    // 30 s request timeout.
    let outcome = tokio::time::timeout(Duration::from_secs(5), client.model_endpoints()).await;
    tx.send_replace(true);
    match outcome {
        Ok(Err(_)) => {}
        Ok(Ok(_)) => panic!("the hanging request succeeded"),
        Err(_) => {
            panic!("a call with a 300 ms deadline was still waiting for its first answer after 5 s")
        }
    }
    assert_eq!(seen.api(), 1);
}

// ---- the local budget check ----

#[tokio::test]
async fn the_local_budget_check_uses_the_gateways_tokenizer_and_sends_no_prompt() {
    let seen = Seen::default();
    let posts = Arc::new(AtomicUsize::new(0));
    let endpoint_listed = Arc::new(AtomicBool::new(false));
    let router = token_router(&seen, Duration::ZERO, |_| 86_400)
        .route(
            ENDPOINTS,
            any({
                let endpoint_listed = endpoint_listed.clone();
                move || {
                    let endpoint_listed = endpoint_listed.clone();
                    async move {
                        endpoint_listed.store(true, Ordering::SeqCst);
                        // A configured endpoint the built-in catalogue does not know, counted
                        // with cl100k_base.
                        Reply::ok(json!({"entities": [{
                            "ref": "acme/model", "provider": "openai",
                            "baseUrl": "http://127.0.0.1:9/v1", "model": "acme",
                            "contextWindow": 8192, "tokenizer": "cl100k_base",
                            "tokenizerExact": false, "timeoutMs": 1000, "maxRetries": 0,
                            "apiKeyEnv": null, "usable": true, "offline": false
                        }]}))
                        .into_response()
                    }
                }
            }),
        )
        .route(
            PROMPTS,
            any({
                let posts = posts.clone();
                move || {
                    let posts = posts.clone();
                    async move {
                        posts.fetch_add(1, Ordering::SeqCst);
                        Reply::created(prompt("ACTIVE")).into_response()
                    }
                }
            }),
        );
    let base = serve(router).await;
    let text = "Answer every question about the weather in exactly one short sentence.";
    let draft = PromptDraft::new("p", "acme/model")
        .system_prompt(text)
        .max_tokens(4);
    match client(&base, 1).create_prompt(&draft).await {
        Err(Error::TokenBudgetExceeded {
            estimated,
            limit,
            tokenizer,
        }) => {
            assert_eq!(tokenizer, "cl100k_base", "the gateway's tokenizer");
            assert_eq!(
                estimated,
                TokenCounter::load().count(TokenizerKind::Cl100kBase, text)
            );
            assert_eq!(limit, 4);
        }
        other => panic!("expected TokenBudgetExceeded, got {other:?}"),
    }
    assert!(endpoint_listed.load(Ordering::SeqCst));
    assert_eq!(posts.load(Ordering::SeqCst), 0, "the prompt was never sent");
}
