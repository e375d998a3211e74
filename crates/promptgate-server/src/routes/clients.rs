//! `/api/v2/oauth/clients` (scope `admin`): create, list, disable OAuth clients and rotate their
//! secrets over HTTP, the same operations as `promptgate clients`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use promptgate_api as api;
use promptgate_core::{Scope, Violation};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::service::clients::{self, ClientDraft, ClientError};
use crate::state::AppState;
use crate::wire::clients::{wire_client, wire_new_client};

impl From<ClientError> for ApiError {
    fn from(err: ClientError) -> Self {
        match err {
            ClientError::Invalid(violations) => ApiError::Invalid(violations),
            ClientError::NotFound(_) => ApiError::NotFound(err.to_string()),
            ClientError::Store(store) => ApiError::from(store),
            other => ApiError::Invalid(vec![Violation::invalid("name", other.to_string())]),
        }
    }
}

/// Creates a client; the answer is the only place its secret appears.
#[utoipa::path(post, path = "/api/v2/oauth/clients", tag = "clients",
    request_body = api::CreateClientRequest,
    responses((status = 201, body = api::OAuthClient), (status = 400, body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["admin"])))]
pub async fn create_client(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<api::CreateClientRequest>,
) -> Result<(StatusCode, Json<api::OAuthClient>), ApiError> {
    caller.require(Scope::Admin)?;
    let draft = ClientDraft {
        name: body.name.as_deref(),
        scopes: body.scopes.as_deref(),
    };
    let created = clients::create(&state, &caller.client_id, draft).await?;
    Ok((StatusCode::CREATED, Json(wire_new_client(created))))
}

/// Lists every client (never a secret or its hash).
#[utoipa::path(get, path = "/api/v2/oauth/clients", tag = "clients",
    responses((status = 200, body = api::Listing<api::OAuthClient>), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["admin"])))]
pub async fn list_clients(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<api::Listing<api::OAuthClient>>, ApiError> {
    caller.require(Scope::Admin)?;
    let clients = clients::list(&state).await?;
    Ok(Json(api::Listing {
        entities: clients.iter().map(wire_client).collect(),
    }))
}

/// Disables a client: its tokens stop working at once on this gateway, within seconds on others.
#[utoipa::path(post, path = "/api/v2/oauth/clients/{id}/disable", tag = "clients",
    params(("id" = String, Path, description = "client id")),
    responses((status = 200, body = api::OAuthClient), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody)),
    security(("bearer" = ["admin"])))]
pub async fn disable_client(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<api::OAuthClient>, ApiError> {
    caller.require(Scope::Admin)?;
    let client = clients::disable(&state, &caller.client_id, &id).await?;
    Ok(Json(wire_client(&client)))
}

/// Gives a client a new secret, shown only in this answer: the old secret and every token issued
/// with it stop working at once on this gateway, within about a second on others.
#[utoipa::path(post, path = "/api/v2/oauth/clients/{id}/rotate-secret", tag = "clients",
    params(("id" = String, Path, description = "client id")),
    responses((status = 200, body = api::OAuthClient), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody), (status = 404, body = api::ErrorBody)),
    security(("bearer" = ["admin"])))]
pub async fn rotate_client_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<api::OAuthClient>, ApiError> {
    caller.require(Scope::Admin)?;
    let rotated = clients::rotate(&state, &caller.client_id, &id).await?;
    Ok(Json(wire_new_client(rotated)))
}
