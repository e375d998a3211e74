//! `POST /oauth/token`: OAuth 2.0 client credentials (RFC 6749 §4.4), with RFC 6749 §5.2 error
//! bodies rather than the API's ErrorBody.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use promptgate_api as api;

use crate::auth::{LockedBy, TokenError};
use crate::client_addr::SourceAddress;
use crate::ratelimit;
use crate::service::tokens::{self, GrantError, TokenGrant};
use crate::state::AppState;

/// Exchanges client credentials for an access token.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "grant_type=client_credentials, optional scope (space-separated); client_id/client_secret as form fields or HTTP Basic"),
    responses((status = 200, body = api::TokenResponse),
        (status = 400, description = "invalid_request, unsupported_grant_type or invalid_scope", body = api::OAuthErrorResponse),
        (status = 401, description = "invalid_client", body = api::OAuthErrorResponse),
        (status = 429, description = "too many failed attempts from this source address (any secret), a wrong secret past the client id's failed attempts, or tokens asked for faster than [auth] tokens_per_minute; Retry-After says when to try again", body = api::OAuthErrorResponse)))]
pub async fn token(
    State(state): State<AppState>,
    SourceAddress(source): SourceAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let basic = basic_credentials(&headers);
    let used_basic = basic.is_some();
    let credentials = match &basic {
        Some((id, secret)) => Some((id.as_str(), secret.as_str())),
        None => field("client_id").zip(field("client_secret")),
    };
    let grant = TokenGrant {
        grant_type: field("grant_type"),
        credentials,
        scope: field("scope"),
        source,
    };
    match tokens::issue(&state, grant).await {
        Ok(issued) => {
            let body = api::TokenResponse {
                access_token: issued.token,
                token_type: "bearer".to_owned(),
                expires_in: issued.expires_in,
                scope: issued.scopes.to_string(),
            };
            no_store((StatusCode::OK, Json(body)).into_response())
        }
        Err(err) => grant_error(err, used_basic),
    }
}

/// The RFC 6749 §5.2 answer to a refused token request; `used_basic` adds the
/// `WWW-Authenticate` challenge to an `invalid_client`.
fn grant_error(err: GrantError, used_basic: bool) -> Response {
    match err {
        GrantError::MissingGrantType => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &err.to_string())
        }
        GrantError::UnsupportedGrantType => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &err.to_string(),
        ),
        GrantError::NoCredentials => invalid_client(false),
        GrantError::Token(TokenError::InvalidClient) => invalid_client(used_basic),
        GrantError::Token(TokenError::InvalidScope(message)) => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", &message)
        }
        GrantError::Token(TokenError::TooManyAttempts {
            retry_after,
            failures,
            allowed,
            by,
        }) => {
            let (whom, setting) = match by {
                LockedBy::ClientId => ("this client id", "[auth] failed_logins_per_minute"),
                LockedBy::Address => (
                    "this source address",
                    "[auth] failed_logins_per_address_per_minute",
                ),
            };
            let mut response = oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                &format!(
                    "too many failed attempts for {whom} ({allowed} per minute, {setting}); \
                     retry in {retry_after} s"
                ),
            );
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            headers.insert("inin-ratelimit-count", HeaderValue::from(failures));
            headers.insert("inin-ratelimit-allowed", HeaderValue::from(allowed));
            headers.insert("inin-ratelimit-reset", HeaderValue::from(retry_after));
            response
        }
        GrantError::Token(TokenError::TooManyTokens(decision)) => {
            let mut response = oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                &format!(
                    "this client asks for tokens too often ({} per minute, [auth] \
                     tokens_per_minute); keep using the token it has until it expires, or \
                     retry in {} s",
                    decision.limit, decision.retry_after_seconds
                ),
            );
            ratelimit::insert_headers(response.headers_mut(), &decision);
            response
        }
        GrantError::Token(TokenError::Store(err)) => {
            tracing::error!(error = ?err, "token request failed in the store");
            oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the gateway cannot issue tokens right now; retry shortly",
            )
        }
    }
}

/// Client id and secret from `Authorization: Basic`, form-decoded as RFC 6749 §2.3.1 requires.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

fn form_decode(text: &str) -> String {
    form_urlencoded::parse(format!("v={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn invalid_client(used_basic: bool) -> Response {
    let mut response = oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed",
    );
    if used_basic {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="promptgate""#),
        );
    }
    response
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = api::OAuthErrorResponse {
        error: error.to_owned(),
        error_description: Some(description.to_owned()),
    };
    no_store((status, Json(body)).into_response())
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
