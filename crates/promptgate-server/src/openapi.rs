//! The OpenAPI document served at `/openapi.json`, generated from the handlers' annotations so
//! that it cannot drift from the routes.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;
use promptgate_api as api;

/// The API document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "promptgate",
        description = "A self-hosted gateway for the system prompts of LLM applications. It implements a Genesys-style contract (modelled on a tutorial's Genesys Cloud \"AI Gateway\" API); it is not a Genesys product."
    ),
    paths(
        routes::oauth::token,
        routes::prompts::create_prompt,
        routes::prompts::list_prompts,
        routes::prompts::get_prompt,
        routes::prompts::update_prompt,
        routes::prompts::archive_prompt,
        routes::prompts::list_versions,
        routes::prompts::get_version,
        routes::invocations::invoke,
        routes::telemetry::list_telemetry,
        routes::telemetry::post_feedback,
        routes::telemetry::summary,
        routes::endpoints::list_endpoints,
        routes::audit::append_entry,
        routes::audit::list_entries,
        routes::audit::get_entry,
        routes::audit::verify,
        routes::audit::checkpoint,
        routes::audit::public_key,
        routes::audit::inclusion_proof,
        routes::audit::consistency_proof,
        routes::clients::create_client,
        routes::clients::list_clients,
        routes::clients::disable_client,
        routes::clients::rotate_client_secret,
        routes::ops::healthz,
        routes::ops::readyz,
        routes::ops::openapi,
        routes::ops::metrics,
    ),
    components(schemas(
        api::ErrorBody, api::ErrorDetail, api::TokenResponse, api::OAuthErrorResponse,
        api::CreatePromptRequest, api::UpdatePromptRequest, api::Prompt, api::PromptVersion,
        api::SafetyGuardrails, api::FewShotExample, api::TrafficDistribution, api::VersionWeight,
        api::ModelEndpoint, api::CreateClientRequest, api::OAuthClient, api::HealthStatus,
        api::InvokeRequest, api::InvokeOptions, api::ChatTurn, api::InvokeResponse, api::TokenUsage,
        api::GuardrailReport, api::ContextReport, api::StreamDelta,
        api::TelemetryEntity, api::FeedbackEntity, api::FeedbackRequest, api::FeedbackResponse,
        api::TelemetrySummary, api::VersionSummary, api::LatencyStats, api::TokenSums,
        api::FeedbackStats, api::VersionComparison, api::DiffEstimate, api::ExportPayload,
        api::AuditEntryRequest, api::AuditEntry, api::AuditVerification, api::SignedTreeHead,
        api::AuditPublicKey, api::InclusionProof, api::ConsistencyProof,
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an access token from POST /oauth/token"))
                    .build(),
            ),
        );
    }
}
