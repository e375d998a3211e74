//! The web console at `/console`: static assets embedded in the binary (no build step, no second
//! server), signed in with a client id and secret, driving the same API as every other client.
//!
//! The console keeps its access token in JavaScript memory only, never in a cookie or in web
//! storage: the browser never attaches it on its own, so no cross-site request can ride on it
//! (CSRF-safe by construction). Every asset answer carries a strict Content-Security-Policy
//! (scripts and styles from this origin only, no inline code, no framing). The one endpoint of
//! its own, `POST /console/api/token-count`, lets the editor show the server's exact count as
//! the user types (`docs/console.md`).

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use promptgate_core::{Scope, Violation};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// The policy of every console page and asset: nothing but this origin's own files, no inline
/// code, no framing, no `<base>` tricks, forms posting only here.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

/// The page is small and changes with the binary; revalidating it each time keeps a console
/// from running stale script against a newer gateway.
const HTML_CACHE_CONTROL: &str = "no-cache";

/// Assets are embedded, so they only change with a new binary; a short cache spares reloads
/// without keeping an upgraded gateway's old script around for long.
const ASSET_CACHE_CONTROL: &str = "public, max-age=300";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const INDEX_HTML: &str = include_str!("assets/index.html");

/// The files under `/console/assets/`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/console.js"),
    },
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/console.css"),
    },
];

/// The console's routes, merged into the gateway's router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/assets/{file}", get(asset))
        .route("/console/api/token-count", post(token_count))
}

/// `POST /console/api/token-count`: the text to count and the endpoint whose tokenizer counts it.
/// Both optional on the wire so that a missing one is a 400 naming it, like every other request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenCountRequest {
    /// The model endpoint whose tokenizer counts, as prompts reference it.
    pub model_endpoint_ref: Option<String>,
    /// The text, usually a draft system prompt.
    pub text: Option<String>,
}

/// The count, as prompt creation would report it in `systemPromptTokens`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenCount {
    /// Tokens in the text.
    pub tokens: usize,
    /// The tokenizer that counted.
    pub tokenizer: &'static str,
    /// False when the tokenizer is only an estimate for the endpoint's model.
    pub exact: bool,
}

async fn index() -> Response {
    page("text/html; charset=utf-8", HTML_CACHE_CONTROL, INDEX_HTML)
}

async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let found = ASSETS.iter().find(|a| a.name == file).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no console asset {}",
            promptgate_core::violation::quoted(&file)
        ))
    })?;
    Ok(page(found.content_type, ASSET_CACHE_CONTROL, found.body))
}

/// Counts `text` with the endpoint's tokenizer through the same counter and catalogue that
/// `SettingsDraft::check` uses for `systemPromptTokens`, so the live count equals the stored one.
async fn token_count(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<TokenCountRequest>,
) -> Result<Json<TokenCount>, ApiError> {
    caller.require(Scope::PromptRead)?;
    let mut violations = Vec::new();
    let endpoint = match body.model_endpoint_ref.as_deref() {
        None => {
            violations.push(Violation::invalid(
                "modelEndpointRef",
                "modelEndpointRef is required",
            ));
            None
        }
        Some(reference) => {
            let found = state.catalogue.get(reference);
            if found.is_none() {
                violations.push(Violation::with_params(
                    promptgate_core::ViolationCode::InvalidValue,
                    "modelEndpointRef",
                    "unknown model endpoint {ref}; known endpoints: {known}",
                    &[
                        ("ref", reference.to_owned()),
                        ("known", state.catalogue.refs_list()),
                    ],
                ));
            }
            found
        }
    };
    match body.text.as_deref() {
        None => violations.push(Violation::invalid("text", "text is required")),
        Some(text) => crate::limits::check_length(
            &mut violations,
            "text",
            text,
            state.limits.max_system_prompt_chars,
            "max_system_prompt_chars",
        ),
    }
    let (Some(endpoint), Some(text), true) = (endpoint, body.text, violations.is_empty()) else {
        return Err(ApiError::Invalid(violations));
    };
    Ok(Json(TokenCount {
        tokens: state.counter.count(endpoint.tokenizer, &text),
        tokenizer: endpoint.tokenizer.as_str(),
        exact: endpoint.tokenizer_exact,
    }))
}

/// An embedded file with its type, caching and the console's security headers.
fn page(content_type: &'static str, cache: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 7] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    (headers, body).into_response()
}
