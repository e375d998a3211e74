//! `…/model-endpoints`: which models prompts may name, and which can be called now.

use axum::Json;
use axum::extract::State;
use promptgate_api as api;
use promptgate_core::{ModelEndpoint, ProviderKind, Scope};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Lists the configured model endpoints; never a key, only the variable's name, and `baseUrl`
/// without user-info, query string or fragment (which may hold credentials: any
/// `ai:prompt:read` client reads this).
#[utoipa::path(get, path = "/api/v2/ai/llm/gateway/model-endpoints", tag = "model-endpoints",
    responses((status = 200, body = api::Listing<api::ModelEndpoint>), (status = 401, body = api::ErrorBody),
        (status = 403, body = api::ErrorBody)),
    security(("bearer" = ["ai:prompt:read"])))]
pub async fn list_endpoints(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<api::Listing<api::ModelEndpoint>>, ApiError> {
    caller.require(Scope::PromptRead)?;
    Ok(Json(api::Listing {
        entities: state.catalogue.iter().map(wire_endpoint).collect(),
    }))
}

/// Whether an endpoint can be called: the built-in provider always, others when their key
/// variable is set and not empty.
pub fn is_usable(endpoint: &ModelEndpoint) -> bool {
    match (&endpoint.provider, &endpoint.api_key_env) {
        (ProviderKind::Builtin, _) => true,
        // An OpenAI-compatible local server (vLLM, Ollama) may need no key at all.
        (_, None) => true,
        (_, Some(var)) => std::env::var_os(var).is_some_and(|v| !v.is_empty()),
    }
}

fn wire_endpoint(e: &ModelEndpoint) -> api::ModelEndpoint {
    api::ModelEndpoint {
        reference: e.reference.clone(),
        provider: e.provider.as_str().to_owned(),
        base_url: promptgate_core::redact::url_without_secrets(&e.base_url),
        model: e.model.clone(),
        context_window: e.context_window,
        tokenizer: e.tokenizer.as_str().to_owned(),
        tokenizer_exact: e.tokenizer_exact,
        timeout_ms: e.timeout_ms,
        max_retries: e.max_retries,
        api_key_env: e.api_key_env.clone(),
        usable: is_usable(e),
        offline: e.provider == ProviderKind::Builtin,
    }
}
