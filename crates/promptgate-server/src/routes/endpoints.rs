//! `…/model-endpoints`: which models prompts may name, and which can be called now.

use axum::Json;
use axum::extract::State;
use promptgate_api as api;
use promptgate_core::Scope;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::endpoints::wire_endpoint;

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
        entities: state
            .catalogue
            .iter()
            .map(|e| wire_endpoint(e, state.circuits.report_of(&e.reference)))
            .collect(),
    }))
}
