//! `/api/v2/oauth/clients` (scope `admin`): create, list, disable OAuth clients and rotate their
//! secrets over HTTP, the same operations as `promptgate clients`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use promptgate_api as api;
use promptgate_core::{Scope, ScopeSet, Violation};
use promptgate_store::{Client, StoreError};

use crate::auth::Caller;
use crate::clients::{ClientError, create_client as create};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::{AppState, now, rfc3339};

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
    let mut violations = Vec::new();
    let mut scopes = Vec::new();
    match &body.scopes {
        None => violations.push(Violation::invalid("scopes", "scopes is required")),
        Some(list) if list.is_empty() => {
            violations.push(Violation::invalid(
                "scopes",
                "a client needs at least one scope",
            ));
        }
        Some(list) => {
            for (i, name) in list.iter().enumerate() {
                match name.parse::<Scope>() {
                    Ok(scope) => scopes.push(scope),
                    Err(e) => {
                        violations.push(Violation::invalid(format!("scopes[{i}]"), e.to_string()))
                    }
                }
            }
        }
    }
    let name = body.name.clone().unwrap_or_default();
    if name.trim().is_empty() || name.chars().count() > crate::clients::MAX_CLIENT_NAME_CHARS {
        violations.push(Violation::invalid(
            "name",
            format!(
                "name must be 1 to {} characters",
                crate::clients::MAX_CLIENT_NAME_CHARS
            ),
        ));
    }
    if !violations.is_empty() {
        return Err(ApiError::Invalid(violations));
    }
    let created = create(
        state.store.as_ref(),
        &caller.client_id,
        &name,
        ScopeSet::from_scopes(scopes),
        None,
    )
    .await
    .map_err(|e| match e {
        ClientError::Store(store) => ApiError::from(store),
        other => ApiError::Invalid(vec![Violation::invalid("name", other.to_string())]),
    })?;
    let mut wire = wire_client(&created.client);
    wire.client_secret = Some(created.secret);
    Ok((StatusCode::CREATED, Json(wire)))
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
    let clients = state.store.list_clients().await?;
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
    let client = state
        .store
        .disable_client(
            &id,
            now(),
            &crate::clients::disable_entry(&caller.client_id, &id),
        )
        .await
        .map_err(|e: StoreError| ApiError::from(e))?
        .ok_or_else(|| ApiError::NotFound(format!("no client with id {id}")))?;
    state.auth.revoke_client(&client.id);
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
    let rotated = crate::clients::rotate_secret(state.store.as_ref(), &caller.client_id, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no client with id {id}")))?;
    state.auth.forget_client_tokens(&rotated.client.id);
    let mut wire = wire_client(&rotated.client);
    wire.client_secret = Some(rotated.secret);
    Ok(Json(wire))
}

/// The wire form of a stored client, without its secret.
pub fn wire_client(client: &Client) -> api::OAuthClient {
    api::OAuthClient {
        client_id: client.id.clone(),
        client_secret: None,
        name: client.name.clone(),
        scopes: client
            .scopes
            .names()
            .into_iter()
            .map(str::to_owned)
            .collect(),
        created_at: rfc3339(client.created_at),
        disabled: client.disabled_at.is_some(),
        disabled_at: client.disabled_at.map(rfc3339),
    }
}
