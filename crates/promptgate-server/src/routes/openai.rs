//! The OpenAI-compatible front door (work in progress).

use axum::response::Response;

use crate::error::ApiError;

/// `POST /v1/chat/completions`.
pub async fn chat_completions() -> Result<Response, ApiError> {
    Err(ApiError::NotFound("not yet".into()))
}

/// `GET /v1/models`.
pub async fn list_models() -> Result<Response, ApiError> {
    Err(ApiError::NotFound("not yet".into()))
}

/// `GET /v1/models/{model}`.
pub async fn get_model() -> Result<Response, ApiError> {
    Err(ApiError::NotFound("not yet".into()))
}
