//! Operations endpoints that need no token: liveness, readiness, the OpenAPI document, and the
//! fallbacks that give unknown routes and methods the contract's error body.

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use promptgate_api as api;
use utoipa::OpenApi;

use crate::error::ApiError;
use crate::state::AppState;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = api::HealthStatus)))]
pub async fn healthz() -> Json<api::HealthStatus> {
    Json(api::HealthStatus {
        status: "ok".to_owned(),
    })
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = api::HealthStatus), (status = 503, body = api::ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<api::HealthStatus>, ApiError> {
    state.store.ping().await.map_err(|e| {
        tracing::warn!(error = ?e, "readiness check failed");
        ApiError::Unavailable("the database is not reachable".to_owned())
    })?;
    Ok(Json(api::HealthStatus {
        status: "ready".to_owned(),
    }))
}

/// This API's OpenAPI document, generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::ApiDoc::openapi())
}

/// Unknown routes are a 404 whether or not a token was sent.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route {}", uri.path()))
}

/// A known path with a method it does not support.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
