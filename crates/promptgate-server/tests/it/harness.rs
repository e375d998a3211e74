//! Building an `AppState` by hand (as `Gateway::bind` does) and sending requests through the
//! router in-process.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use promptgate_api::ErrorBody;
use promptgate_core::ScopeSet;
use promptgate_server::config::ConfigFile;
use promptgate_server::state::AppState;
use promptgate_store::{SqliteStore, Store};
use tempfile::TempDir;
use tower::ServiceExt;

pub const BASE: &str = "/api/v2/ai/llm/gateway";
/// The default body limit of the configuration (1 MiB).
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// The state a gateway builds at start-up, over any store, from a configuration with tokens
/// that last an hour, the largest body `max_body_bytes` and `extra` (more TOML sections).
pub async fn state_with(store: Arc<dyn Store>, max_body_bytes: usize, extra: &str) -> AppState {
    let config = ConfigFile::parse(&format!(
        "[server]\nmax_body_bytes = {max_body_bytes}\n[auth]\ntoken_ttl_seconds = 3600\n{extra}"
    ))
    .unwrap();
    // An in-memory database URL: the audit signing key is one for this run, no file.
    let (state, _background) = AppState::from_config(&config, store, "sqlite::memory:")
        .await
        .unwrap();
    state
}

/// The state a gateway builds at start-up, over any store.
pub async fn state(store: Arc<dyn Store>, max_body_bytes: usize) -> AppState {
    state_with(store, max_body_bytes, "").await
}

/// A router over a real SQLite file in its own temp dir, with an admin client and a token.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    /// A bearer token with every scope.
    pub token: String,
    pub client_id: String,
    pub client_secret: String,
    _dir: TempDir,
}

impl TestApp {
    pub async fn new() -> Self {
        TestApp::with_max_body(DEFAULT_MAX_BODY).await
    }

    pub async fn with_max_body(max_body_bytes: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.unwrap());
        let admin = promptgate_server::service::clients::create_client(
            store.as_ref(),
            "system",
            "tester",
            ScopeSet::all(),
            None,
        )
        .await
        .unwrap();
        let state = state(store, max_body_bytes).await;
        let issued = state
            .auth()
            .issue(&admin.client.id, &admin.secret, None)
            .await
            .unwrap();
        TestApp {
            router: promptgate_server::app(state.clone()),
            state,
            token: issued.token,
            client_id: admin.client.id,
            client_secret: admin.secret,
            _dir: dir,
        }
    }

    /// A token for the admin client narrowed to `scopes`.
    pub async fn token_with(&self, scopes: &str) -> String {
        self.state
            .auth()
            .issue(&self.client_id, &self.client_secret, Some(scopes))
            .await
            .unwrap()
            .token
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }
}

/// What came back.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// The body as the contract's ErrorBody, checking that it is served as JSON.
    pub fn error(&self) -> ErrorBody {
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/json"),
            "error body content type; body {}",
            self.text()
        );
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not an ErrorBody ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// Asserts the status and an ErrorBody with `code` whose `contextId` is the response's
    /// `X-Request-Id`; returns the body.
    pub fn expect_error(&self, status: u16, code: &str) -> ErrorBody {
        assert_eq!(self.status.as_u16(), status, "status; body {}", self.text());
        let body = self.error();
        assert_eq!(body.status, status, "ErrorBody.status");
        assert_eq!(body.code, code, "ErrorBody.code; body {}", self.text());
        let request_id = self.header("x-request-id").expect("X-Request-Id header");
        assert_eq!(body.context_id, request_id, "contextId is the request id");
        assert!(!body.message.is_empty(), "ErrorBody.message is empty");
        body
    }
}

pub async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// A request with optional bearer authorization and no body.
pub fn request(method: &str, uri: &str, authorization: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(value) = authorization {
        builder = builder.header("authorization", value);
    }
    builder.body(Body::empty()).unwrap()
}

/// A request with a body of `content_type`.
pub fn with_body(
    method: &str,
    uri: &str,
    authorization: &str,
    content_type: &str,
    body: impl Into<Body>,
) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", authorization)
        .header("content-type", content_type)
        .body(body.into())
        .unwrap()
}

/// A valid create-prompt body.
pub fn create_body(name: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "modelEndpointRef": "builtin/echo",
        "systemPrompt": "You are a helpful customer support agent.",
        "temperature": 0.2,
        "safetyGuardrails": {"contentFiltering": ["pii"], "maxTokens": 1500},
        "version": "1.0.0"
    })
}
