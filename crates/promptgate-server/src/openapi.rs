//! The OpenAPI document served at `/openapi.json`, generated from the handlers' annotations so
//! that it cannot drift from the routes.

use serde_json::json;
use utoipa::openapi::path::Operation;
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response};
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
        routes::prompts::put_label,
        routes::prompts::delete_label,
        routes::prompts::render,
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
        routes::api_keys::create_api_key,
        routes::api_keys::list_client_api_keys,
        routes::api_keys::list_api_keys,
        routes::api_keys::revoke_client_api_key,
        routes::api_keys::revoke_api_key,
        routes::ops::healthz,
        routes::ops::readyz,
        serve,
        routes::ops::metrics,
    ),
    components(schemas(
        api::ErrorBody, api::ErrorDetail, api::TokenResponse, api::OAuthErrorResponse,
        api::CreatePromptRequest, api::UpdatePromptRequest, api::Prompt, api::PromptVersion,
        api::SafetyGuardrails, api::FewShotExample, api::TrafficDistribution, api::VersionWeight,
        api::ModelEndpoint, api::CreateClientRequest, api::OAuthClient, api::HealthStatus,
        api::CreateApiKeyRequest, api::ApiKey, api::ScopeList,
        api::InvokeRequest, api::InvokeOptions, api::ChatTurn, api::InvokeResponse, api::TokenUsage,
        api::GuardrailReport, api::ContextReport, api::StreamDelta,
        api::TelemetryEntity, api::FeedbackEntity, api::FeedbackRequest, api::FeedbackResponse,
        api::TelemetrySummary, api::VersionSummary, api::LatencyStats, api::TokenSums,
        api::FeedbackStats, api::CostStats, api::VersionComparison, api::DiffEstimate, api::ExportPayload,
        api::AuditEntryRequest, api::AuditEntry, api::AuditVerification, api::SignedTreeHead,
        api::AuditPublicKey, api::InclusionProof, api::ConsistencyProof,
        api::TemplateMessage, api::VariableInfo, api::LabelRequest, api::RenderRequest,
        api::RenderResponse, api::RenderedMessage,
        api::Tool, api::FunctionDefinition, api::ResponseFormat, api::JsonSchemaSpec,
        api::ToolCall, api::StreamToolCall, api::OutputError, api::RateEstimate,
        api::FallbackReport, api::FallbackAttempt, api::CircuitStatus,
    )),
    modifiers(&BearerAuth, &CommonResponses, &TokenForm, &InvocationStream, &QueryFormats),
)]
pub struct ApiDoc;

/// This API's OpenAPI document, generated from the code. Served from this module (not
/// `routes/ops.rs`) because the document lists every route: the routes must not depend on it.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn serve() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "an access token from POST /oauth/token, or an API key (pgk_…)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The answers every operation of a kind can give whatever its handler does, added where a
/// handler's annotation leaves them out, so that the document lists every status the server
/// sends (`scripts/api-fuzz` checks that it does):
/// - every operation with a bearer token: 429 (`[rate_limits]`, in the `Caller` extractor),
///   500 (`internal.server.error`, also a caught panic) and 503 (`service.unavailable`, storage
///   unreachable);
/// - every operation with a JSON body: 408 (the body did not arrive within
///   `[server] request_timeout_ms`), 413 (`[server] max_body_bytes`) and 415 (not JSON), all
///   from `JsonBody`.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                add_common_responses(operation);
            }
        }
    }
}

fn add_common_responses(operation: &mut Operation) {
    let bearer = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let json_body = matches!(&operation.request_body,
        Some(RefOr::T(RequestBody { content, .. })) if content.contains_key("application/json"));
    let mut added: Vec<(&str, Response)> = Vec::new();
    if bearer {
        added.push(("429", rate_limited()));
        added.push((
            "500",
            error_response("internal.server.error (no internals in the message)"),
        ));
        added.push((
            "503",
            error_response("service.unavailable: the database is not reachable"),
        ));
    }
    if json_body {
        added.push((
            "408",
            error_response("the body did not arrive within [server] request_timeout_ms"),
        ));
        added.push((
            "413",
            error_response("payload.too.large: the body is over [server] max_body_bytes"),
        ));
        added.push((
            "415",
            error_response("unsupported.media.type: the body is not application/json"),
        ));
    }
    for (status, response) in added {
        match operation.responses.responses.get_mut(status) {
            None => {
                operation
                    .responses
                    .responses
                    .insert(status.to_owned(), RefOr::T(response));
            }
            // The handler's own description is kept; headers it leaves out are added (the
            // rate limiter's 429 always carries them).
            Some(RefOr::T(existing)) => {
                for (name, header) in response.headers {
                    existing.headers.entry(name).or_insert(header);
                }
            }
            Some(RefOr::Ref(_)) => {}
        }
    }
}

/// An `ErrorBody` answer.
fn error_response(description: &str) -> Response {
    response_from(json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }))
}

/// The 429 of `[rate_limits]`, with its headers.
fn rate_limited() -> Response {
    let integer =
        |description: &str| json!({"schema": {"type": "integer"}, "description": description});
    response_from(json!({
        "description": "too.many.requests: the client's rate limit ([rate_limits]) is spent",
        "headers": {
            "Retry-After": integer("seconds until a request is accepted again"),
            "inin-ratelimit-count": integer("requests counted against the bucket"),
            "inin-ratelimit-allowed": integer("the bucket size (the burst)"),
            "inin-ratelimit-reset": integer("seconds until the next request is allowed"),
        },
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }))
}

fn response_from(value: serde_json::Value) -> Response {
    // A constant of this file; the tests below check that each one parses.
    serde_json::from_value(value).unwrap_or_default()
}

/// `POST /oauth/token` takes an HTML form (RFC 6749 §4.4.2); its annotation can only say
/// "a string", which no client generator or fuzzer can fill in, so the form's fields are
/// described here.
struct TokenForm;

impl Modify for TokenForm {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(operation) = openapi
            .paths
            .paths
            .get_mut("/oauth/token")
            .and_then(|item| item.post.as_mut())
        else {
            return;
        };
        let body: RequestBody = serde_json::from_value(json!({
            "description": "grant_type=client_credentials, optional scope (space-separated); the client authenticates with HTTP Basic or with the client_id and client_secret fields",
            "required": true,
            "content": {"application/x-www-form-urlencoded": {"schema": {
                "type": "object",
                "required": ["grant_type"],
                "properties": {
                    "grant_type": {"type": "string", "enum": ["client_credentials"]},
                    "scope": {"type": "string", "description": "space-separated scopes, a subset of the client's"},
                    "client_id": {"type": "string"},
                    "client_secret": {"type": "string"},
                },
            }}},
        }))
        .unwrap_or_default();
        operation.request_body = Some(RefOr::T(body));
    }
}

/// `POST …/invocations` with `options.stream: true` answers 200 with `text/event-stream`
/// (`delta` events with `{"text"}`, then one `done` event with the answer minus `output`); the
/// handler's annotation lists only the JSON answer, so the stream's media type is added here.
struct InvocationStream;

impl Modify for InvocationStream {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(RefOr::T(ok)) = openapi
            .paths
            .paths
            .get_mut(&format!("{}/invocations", api::BASE_PATH))
            .and_then(|item| item.post.as_mut())
            .and_then(|operation| operation.responses.responses.get_mut("200"))
        else {
            return;
        };
        // OpenAPI 3.1 has no item schema for a stream: the media type's `schema` describes one
        // event (`event`, `data`, as the SSE parser reads it), `data` being JSON of the schema
        // in its `contentSchema`.
        let event = |name: &str, data: serde_json::Value| {
            json!({
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"type": "string", "enum": [name]},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": data,
                    },
                    "id": {"type": "string"},
                    "retry": {"type": "integer"},
                },
            })
        };
        let stream: Response = response_from(json!({
            "description": "",
            "content": {"text/event-stream": {"schema": {
                "description": "with options.stream: `delta` events with {\"text\"} as the provider streams and `tool_call` events with {index, id, name, argumentsDelta} as it calls tools, then one `done` event with the answer minus `output`; a failure after the first byte ends the stream with an `error` event {status, code, message}",
                "oneOf": [
                    event("delta", json!({"$ref": "#/components/schemas/StreamDelta"})),
                    event("tool_call", json!({"$ref": "#/components/schemas/StreamToolCall"})),
                    event("done", json!({"$ref": "#/components/schemas/InvokeResponse"})),
                    event("error", json!({
                        "type": "object",
                        "required": ["status", "code", "message"],
                        "properties": {
                            "status": {"type": "integer"},
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    })),
                ],
            }}},
        }));
        ok.content.extend(stream.content);
    }
}

/// What the handlers' query parameters accept, in the schema rather than only in their
/// descriptions (the server answers 400 naming the parameter otherwise): `startTime` and
/// `endTime` are RFC 3339 times, a `promptId` filter is a UUID, `pageSize` is 1 to 500.
struct QueryFormats;

impl Modify for QueryFormats {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::schema::{KnownFormat, Schema, SchemaFormat};
        for item in openapi.paths.paths.values_mut() {
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    let RefOr::T(parameter) = parameter else {
                        continue;
                    };
                    if !matches!(parameter.parameter_in, ParameterIn::Query) {
                        continue;
                    }
                    let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut() else {
                        continue;
                    };
                    match parameter.name.as_str() {
                        "startTime" | "endTime" => {
                            schema.format = Some(SchemaFormat::KnownFormat(KnownFormat::DateTime));
                        }
                        "promptId" => {
                            schema.format = Some(SchemaFormat::Custom("uuid".to_owned()));
                        }
                        "pageSize" => {
                            schema.minimum = Some(1.into());
                            schema.maximum = Some(500.into());
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> serde_json::Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    #[test]
    fn common_responses_are_added_where_they_apply() {
        let doc = document();
        let paths = &doc["paths"];
        let invoke = &paths["/api/v2/ai/llm/gateway/invocations"]["post"]["responses"];
        for status in ["408", "413", "415", "429", "500", "503"] {
            assert!(
                invoke[status]["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "no {status} on POST invocations: {invoke}"
            );
        }
        let limited = &invoke["429"]["headers"];
        assert!(limited["Retry-After"].is_object(), "{limited}");
        assert_eq!(
            invoke["429"]["content"]["application/json"]["schema"]["$ref"],
            json!("#/components/schemas/ErrorBody")
        );
        // A GET has no body, hence no 413/415; an operation without a token has no 429.
        let list = &paths["/api/v2/ai/llm/gateway/prompts"]["get"]["responses"];
        assert!(list["429"].is_object() && list["415"].is_null(), "{list}");
        let health = &paths["/healthz"]["get"]["responses"];
        assert!(health["429"].is_null(), "{health}");
        // Handlers' own descriptions are kept.
        assert!(
            paths["/readyz"]["get"]["responses"]["503"].is_object(),
            "{}",
            paths["/readyz"]
        );
    }

    #[test]
    fn an_invocation_may_answer_with_a_stream() {
        let doc = document();
        let ok = &doc["paths"]["/api/v2/ai/llm/gateway/invocations"]["post"]["responses"]["200"];
        assert!(
            ok["content"]["application/json"]["schema"].is_object(),
            "{ok}"
        );
        let events = &ok["content"]["text/event-stream"]["schema"]["oneOf"];
        let names: Vec<_> = events
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .map(|e| e["properties"]["event"]["enum"][0].clone())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            names,
            [
                json!("delta"),
                json!("tool_call"),
                json!("done"),
                json!("error")
            ],
            "{ok}"
        );
    }

    #[test]
    fn query_parameters_say_what_they_accept() {
        let doc = document();
        let params = &doc["paths"]["/api/v2/ai/llm/gateway/telemetry"]["get"]["parameters"];
        let schema = |name: &str| {
            params
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == json!(name)))
                .map(|p| p["schema"].clone())
                .unwrap_or_default()
        };
        assert_eq!(
            schema("startTime")["format"],
            json!("date-time"),
            "{params}"
        );
        assert_eq!(schema("endTime")["format"], json!("date-time"), "{params}");
        assert_eq!(schema("promptId")["format"], json!("uuid"), "{params}");
        assert_eq!(schema("pageSize")["minimum"], json!(1), "{params}");
        assert_eq!(schema("pageSize")["maximum"], json!(500), "{params}");
    }

    #[test]
    fn the_token_form_is_described_field_by_field() {
        let doc = document();
        let body = &doc["paths"]["/oauth/token"]["post"]["requestBody"];
        let schema = &body["content"]["application/x-www-form-urlencoded"]["schema"];
        assert_eq!(schema["type"], json!("object"), "{body}");
        assert_eq!(schema["required"], json!(["grant_type"]), "{body}");
        for field in ["grant_type", "scope", "client_id", "client_secret"] {
            assert!(
                schema["properties"][field].is_object(),
                "no {field}: {body}"
            );
        }
        assert_eq!(body["required"], json!(true), "{body}");
    }

    #[test]
    fn an_audit_entrys_metadata_may_be_null() {
        let doc = document();
        let schema = &doc["components"]["schemas"]["AuditEntry"];
        let entry = schema["allOf"]
            .as_array()
            .and_then(|parts| parts.iter().find(|p| p["properties"].is_object()))
            .unwrap_or(schema);
        assert_eq!(
            entry["properties"]["metadata"]["type"],
            json!(["object", "null"]),
            "{schema}"
        );
    }
}
