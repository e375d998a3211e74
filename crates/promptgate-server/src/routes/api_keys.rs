//! `/api/v2/oauth/clients/{id}/api-keys` and `/api/v2/oauth/api-keys` (scope `admin`): create,
//! list and revoke API keys over HTTP, the same operations as `promptgate api-keys`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use promptgate_api as api;
use promptgate_core::Scope;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::service::api_keys::{self, ApiKeyDraft, ApiKeyError};
use crate::state::AppState;
use crate::wire::clients::{api_key_scopes, wire_api_key, wire_new_api_key};

impl From<ApiKeyError> for ApiError {
    fn from(err: ApiKeyError) -> Self {
        match err {
            ApiKeyError::Invalid(violations) => ApiError::Invalid(violations),
            ApiKeyError::ClientNotFound(_) | ApiKeyError::KeyNotFound(_) => {
                ApiError::NotFound(err.to_string())
            }
            ApiKeyError::ClientDisabled(_) => ApiError::Conflict(err.to_string()),
            ApiKeyError::Store(store) => ApiError::from(store),
        }
    }
}

/// Creates an API key for a client; the answer is the only place the key appears.
#[utoipa::path(post, path = "/api/v2/oauth/clients/{id}/api-keys", tag = "api-keys",
    params(("id" = String, Path, description = "client id")),
    request_body = api::CreateApiKeyRequest,
    responses((status = 201, body = api::ApiKey), (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, body = api::ErrorBody), (status = 409, body = api::ErrorBody)),
    security(("bearer" = ["admin"])))]
pub async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(client_id): Path<String>,
    JsonBody(body): JsonBody<api::CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<api::ApiKey>), ApiError> {
    caller.require(Scope::Admin)?;
    let scopes = api_key_scopes(body.scopes.as_ref());
    let draft = ApiKeyDraft {
        name: body.name.as_deref(),
        scopes: scopes.as_deref(),
        expires_at: body.expires_at.as_deref(),
    };
    let created = api_keys::create(&state, &caller.client_id, &client_id, draft).await?;
    Ok((StatusCode::CREATED, Json(wire_new_api_key(created))))
}

/// Lists a client's API keys, revoked ones included (never a key).
#[utoipa::path(get, path = "/api/v2/oauth/clients/{id}/api-keys", tag = "api-keys",
    params(("id" = String, Path, description = "client id")),
    responses((status = 200, body = api::Listing<api::ApiKey>), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody)),
    security(("bearer" = ["admin"])))]
pub async fn list_client_api_keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(client_id): Path<String>,
) -> Result<Json<api::Listing<api::ApiKey>>, ApiError> {
    caller.require(Scope::Admin)?;
    let keys = api_keys::list(&state, Some(&client_id)).await?;
    Ok(Json(api::Listing {
        entities: keys.iter().map(wire_api_key).collect(),
    }))
}

/// Lists every client's API keys (never a key), for `promptgate api-keys list` without a client.
#[utoipa::path(get, path = "/api/v2/oauth/api-keys", tag = "api-keys",
    responses((status = 200, body = api::Listing<api::ApiKey>), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["admin"])))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<api::Listing<api::ApiKey>>, ApiError> {
    caller.require(Scope::Admin)?;
    let keys = api_keys::list(&state, None).await?;
    Ok(Json(api::Listing {
        entities: keys.iter().map(wire_api_key).collect(),
    }))
}

/// Revokes a client's API key: refused at once on this gateway, within about a second on others.
#[utoipa::path(delete, path = "/api/v2/oauth/clients/{id}/api-keys/{keyId}", tag = "api-keys",
    params(("id" = String, Path, description = "client id"), ("keyId" = String, Path, description = "API key id")),
    responses((status = 200, body = api::ApiKey), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody)),
    security(("bearer" = ["admin"])))]
pub async fn revoke_client_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path((client_id, key_id)): Path<(String, String)>,
) -> Result<Json<api::ApiKey>, ApiError> {
    caller.require(Scope::Admin)?;
    let key = api_keys::revoke(&state, &caller.client_id, Some(&client_id), &key_id).await?;
    Ok(Json(wire_api_key(&key)))
}

/// Revokes an API key by its id alone, for `promptgate api-keys revoke KEY_ID`.
#[utoipa::path(delete, path = "/api/v2/oauth/api-keys/{keyId}", tag = "api-keys",
    params(("keyId" = String, Path, description = "API key id")),
    responses((status = 200, body = api::ApiKey), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody)),
    security(("bearer" = ["admin"])))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> Result<Json<api::ApiKey>, ApiError> {
    caller.require(Scope::Admin)?;
    let key = api_keys::revoke(&state, &caller.client_id, None, &key_id).await?;
    Ok(Json(wire_api_key(&key)))
}
