//! The wire types of promptgate's HTTP contract (`shared/API.md`): what the server sends and
//! accepts and what the client SDK serialises. JSON field names are camelCase as the contract
//! says. Request types make every field optional so that the server can report every missing or
//! invalid field at once instead of failing on the first; the SDK fills them.
//!
//! Architecture invariant: no logic and no dependency on the server or the store; the domain
//! types of `promptgate-core` are converted to and from these at the edge.

#![warn(missing_docs)]

mod keys;
pub mod openai;
mod tools;

pub use keys::{ApiKey, CreateApiKeyRequest, ScopeList};

pub use tools::{
    FunctionDefinition, JsonSchemaSpec, OutputError, RateEstimate, ResponseFormat, StreamToolCall,
    Tool, ToolCall,
};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The base path of the gateway API.
pub const BASE_PATH: &str = "/api/v2/ai/llm/gateway";

/// The Genesys-style error body of every non-2xx API answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// The HTTP status.
    pub status: u16,
    /// A stable machine-readable code such as `invalid.value`.
    pub code: String,
    /// A human-readable message.
    pub message: String,
    /// The message with `{name}` placeholders.
    #[serde(default)]
    pub message_with_params: String,
    /// The values of the placeholders, as strings (Genesys Cloud's `messageParams` shape).
    #[serde(default)]
    pub message_params: BTreeMap<String, String>,
    /// The request id: quote it when reporting a problem; it is in the server log.
    #[serde(default)]
    pub context_id: String,
    /// One entry per problem, naming the field.
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
    /// One error body per problem when there are several.
    #[serde(default)]
    #[schema(no_recursion)]
    pub errors: Vec<ErrorBody>,
}

/// A problem's code and the field it concerns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// The problem's code.
    pub error_code: String,
    /// The JSON path of the field, such as `safetyGuardrails.maxTokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_name: Option<String>,
}

/// A successful `POST /oauth/token` answer (RFC 6749 §5.1). `Debug` hides the token.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// The granted scopes, space-separated.
    pub scope: String,
}

/// A failed `POST /oauth/token` answer (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OAuthErrorResponse {
    /// `invalid_request`, `invalid_client`, `unsupported_grant_type`, `invalid_scope` or
    /// `too_many_requests`.
    pub error: String,
    /// What went wrong, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// The schema of a list of names from a closed set (documentation only: the wire carries
/// strings, and the server names any other value in a 400).
fn names_schema(description: &str, names: &[&str]) -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .description(Some(description))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(names.iter().copied())),
        )
        .build()
}

fn content_filter_names() -> utoipa::openapi::schema::Array {
    names_schema("Subset of `pii`, `profanity`.", &["pii", "profanity"])
}

fn blocked_category_names() -> utoipa::openapi::schema::Array {
    names_schema(
        "Subset of `violence`, `hate_speech`, `self_harm`, `sexual`, `illegal`.",
        &["violence", "hate_speech", "self_harm", "sexual", "illegal"],
    )
}

/// One name from a closed set.
fn name_schema(description: &str, names: &[&str]) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(names.iter().copied()))
        .build()
}

fn split_strategy_schema() -> utoipa::openapi::schema::Object {
    name_schema("`sticky` (default) or `random`.", &["sticky", "random"])
}

fn role_schema() -> utoipa::openapi::schema::Object {
    name_schema("`user` or `assistant`.", &["user", "assistant"])
}

fn scope_names() -> utoipa::openapi::schema::Array {
    names_schema(
        "Scopes the client may request.",
        &[
            "ai:prompt:read",
            "ai:prompt:write",
            "ai:gateway:write",
            "ai:telemetry:read",
            "ai:audit:read",
            "admin",
        ],
    )
}

/// A score in [0, 1], or a boolean.
fn score_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    let one_of = OneOfBuilder::new()
        .description(Some("0.0–1.0, or true (= 1) / false (= 0)."))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(0))
                .maximum(Some(1)),
        )
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .build();
    Schema::OneOf(one_of)
}

/// A prompt version's guardrails.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SafetyGuardrails {
    /// Subset of `pii`, `profanity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = content_filter_names)]
    pub content_filtering: Option<Vec<String>>,
    /// The system prompt's token budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 4294967295_i64)]
    pub max_tokens: Option<i64>,
    /// Subset of `violence`, `hate_speech`, `self_harm`, `sexual`, `illegal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = blocked_category_names)]
    pub blocked_categories: Option<Vec<String>>,
}

/// One few-shot example.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct FewShotExample {
    /// What the user said.
    #[serde(default)]
    #[schema(required = true, value_type = String)]
    pub input: Option<String>,
    /// What the assistant answered.
    #[serde(default)]
    #[schema(required = true, value_type = String)]
    pub output: Option<String>,
}

/// One fixed turn of a chat template (`templateMessages`): sent after the system prompt and its
/// examples, before the caller's conversation. Its content may hold `{{placeholders}}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct TemplateMessage {
    /// `user` or `assistant`.
    #[serde(default)]
    #[schema(required = true, schema_with = role_schema)]
    pub role: Option<String>,
    /// What is said (a template).
    #[serde(default)]
    #[schema(required = true, value_type = String)]
    pub content: Option<String>,
}

/// A variable a version's template uses (`GET …/versions/{version}` lists them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VariableInfo {
    /// The top-level variable name (`customer` for `{{customer.tier}}`).
    pub name: String,
    /// Whether an invocation must supply it (no default, required by the schema, or no
    /// schema at all).
    pub required: bool,
}

/// Reads a field that may be absent (keep), `null` (remove) or a value (set): the two levels of
/// `Option` tell them apart.
fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// One version's share of traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VersionWeight {
    /// The version label.
    #[serde(default)]
    #[schema(required = true, value_type = String)]
    pub version: Option<String>,
    /// Its share, in [0, 1].
    #[serde(default)]
    #[schema(required = true, value_type = f64, minimum = 0, maximum = 1)]
    pub weight: Option<f64>,
}

/// How traffic is split between versions. In a request every part is optional (left-out parts
/// keep their values); in an answer every part is present.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficDistribution {
    /// The version that serves when `versions` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_version: Option<String>,
    /// `sticky` (default) or `random`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = split_strategy_schema)]
    pub split_strategy: Option<String>,
    /// The weighted versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<VersionWeight>>,
}

/// `POST …/prompts`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatePromptRequest {
    /// Unique name.
    #[schema(required = true, value_type = String)]
    pub name: Option<String>,
    /// A configured model endpoint's `ref`.
    #[schema(required = true, value_type = String)]
    pub model_endpoint_ref: Option<String>,
    /// The system prompt.
    #[schema(required = true, value_type = String)]
    pub system_prompt: Option<String>,
    /// Sampling temperature in [0, 2]; default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    /// Guardrails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_guardrails: Option<SafetyGuardrails>,
    /// Few-shot examples, oldest first (at most 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub few_shot_examples: Option<Vec<FewShotExample>>,
    /// The chat template's fixed turns (at most 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_messages: Option<Vec<TemplateMessage>>,
    /// The variables' JSON Schema (draft 2020-12) of an object; without it every placeholder
    /// is a required string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub variables_schema: Option<serde_json::Value>,
    /// Function tools the model may call (at most 128), in OpenAI's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// `auto`, `none`, `required`, or `{"type": "function", "function": {"name": "…"}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<serde_json::Value>,
    /// The form of the output: `text`, `json_object` or `json_schema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// The first version's label (semantic version, e.g. `1.0.0`).
    #[schema(required = true, value_type = String)]
    pub version: Option<String>,
    /// The initial split; by default all traffic goes to the first version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_distribution: Option<TrafficDistribution>,
    /// The OpenAI-compatible front door's policy (an extension of the contract); left-out
    /// parts keep their current (or default) values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_completions: Option<ChatCompletionsDraft>,
    /// Endpoints tried in order when the model endpoint fails with a failure that is not the
    /// request's fault (known endpoints, at most 5, no repeats, not `modelEndpointRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_endpoint_refs: Option<Vec<String>>,
}

/// `PUT …/prompts/{id}`: a new version, a traffic change, or both, atomically.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePromptRequest {
    /// The version to create (or re-send).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// New model endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_endpoint_ref: Option<String>,
    /// New system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// New temperature, in [0, 2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    /// New guardrails (left-out parts are kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_guardrails: Option<SafetyGuardrails>,
    /// New few-shot examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub few_shot_examples: Option<Vec<FewShotExample>>,
    /// New template messages (`[]` removes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_messages: Option<Vec<TemplateMessage>>,
    /// New variables schema; `null` removes it (every placeholder is then a required string).
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Object>)]
    pub variables_schema: Option<Option<serde_json::Value>>,
    /// New tools (`[]` removes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// New tool choice; `null` removes it.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Option<serde_json::Value>>,
    /// New response format; `null` removes it.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_format: Option<Option<ResponseFormat>>,
    /// New split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_distribution: Option<TrafficDistribution>,
    /// The OpenAI-compatible front door's policy (an extension of the contract); left-out
    /// parts keep their current (or default) values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_completions: Option<ChatCompletionsDraft>,
    /// Endpoints tried in order when the model endpoint fails with a failure that is not the
    /// request's fault (known endpoints, at most 5, no repeats, not `modelEndpointRef`); left out keeps the newest version's, `[]`
    /// removes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_endpoint_refs: Option<Vec<String>>,
}

/// The prompt resource that GET, POST and PUT answer with. The generation fields are those of
/// `version`: the version just written, or on GET the default version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Prompt {
    /// Stable id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `ACTIVE` or `ARCHIVED`.
    pub status: String,
    /// The version whose fields follow.
    pub version: String,
    /// Its model endpoint.
    pub model_endpoint_ref: String,
    /// Its system prompt.
    pub system_prompt: String,
    /// Its temperature.
    pub temperature: f64,
    /// Its guardrails.
    pub safety_guardrails: SafetyGuardrails,
    /// Its few-shot examples.
    pub few_shot_examples: Vec<FewShotExample>,
    /// Its chat template's fixed turns (left out when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_messages: Vec<TemplateMessage>,
    /// Its variables schema (left out when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub variables_schema: Option<serde_json::Value>,
    /// The variables its templates use (left out when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<VariableInfo>,
    /// Its tools (left out when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// Its tool choice (left out when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<serde_json::Value>,
    /// Its response format (left out when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// Its system prompt's token count (of the template with its placeholders removed).
    pub system_prompt_tokens: u32,
    /// The tokenizer that counted (an extension of the contract).
    pub tokenizer: String,
    /// False when the tokenizer is only an estimate for the model (an extension).
    pub tokenizer_exact: bool,
    /// The traffic split.
    pub traffic_distribution: TrafficDistribution,
    /// What `POST /v1/chat/completions` does with the caller's system message and settings
    /// (an extension of the contract).
    #[serde(default)]
    pub chat_completions: ChatCompletionsSettings,
    /// Every version label, oldest first by semver.
    pub versions: Vec<String>,
    /// Named pins to versions (`{"production": "1.2.0"}`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// When the prompt was created.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// Endpoints tried in order when the model endpoint fails (left out when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback_endpoint_refs: Vec<String>,
}

/// One immutable version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromptVersion {
    /// The prompt.
    pub prompt_id: String,
    /// The label.
    pub version: String,
    /// Model endpoint.
    pub model_endpoint_ref: String,
    /// System prompt.
    pub system_prompt: String,
    /// Temperature.
    pub temperature: f64,
    /// Guardrails.
    pub safety_guardrails: SafetyGuardrails,
    /// Few-shot examples.
    pub few_shot_examples: Vec<FewShotExample>,
    /// The chat template's fixed turns (left out when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_messages: Vec<TemplateMessage>,
    /// The variables schema (left out when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub variables_schema: Option<serde_json::Value>,
    /// The variables its templates use, with whether each is required (left out when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<VariableInfo>,
    /// Its tools (left out when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// Its tool choice (left out when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<serde_json::Value>,
    /// Its response format (left out when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// System prompt tokens (of the template with its placeholders removed).
    pub system_prompt_tokens: u32,
    /// The tokenizer that counted.
    pub tokenizer: String,
    /// When it was created.
    pub created_at: String,
    /// The OAuth client that created it.
    pub created_by: String,
    /// Endpoints tried in order when the model endpoint fails (left out when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback_endpoint_refs: Vec<String>,
}

/// `PUT …/prompts/{id}/labels/{label}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct LabelRequest {
    /// The version the label points at.
    #[serde(default)]
    #[schema(required = true, value_type = String)]
    pub version: Option<String>,
}

/// `POST …/prompts/{id}/render`: a preview of a version's templates with sample variables.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct RenderRequest {
    /// The version to render; without it (and without `label`), the default version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Render the version this label points at (an extension; not together with `version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The variables, checked as an invocation checks them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub variables: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One rendered turn of a chat template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RenderedMessage {
    /// `user` or `assistant`.
    pub role: String,
    /// The rendered text.
    pub content: String,
    /// Its tokens with the endpoint's tokenizer.
    pub tokens: u32,
}

/// The answer of `POST …/prompts/{id}/render`: what a model would be sent, without calling one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenderResponse {
    /// The prompt.
    pub prompt_id: String,
    /// The version rendered.
    pub version: String,
    /// The rendered system prompt.
    pub system_prompt: String,
    /// Its tokens with the endpoint's tokenizer.
    pub system_prompt_tokens: u32,
    /// The rendered template messages.
    pub template_messages: Vec<RenderedMessage>,
    /// The rendered few-shot examples (left out when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub few_shot_examples: Vec<FewShotExample>,
    /// The tokenizer that counted.
    pub tokenizer: String,
    /// The version's token budget for the system prompt, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// The variables as used, defaults applied (names and values: the caller sent them).
    #[schema(value_type = Object)]
    pub variables: serde_json::Map<String, serde_json::Value>,
}

/// A page of entities with a cursor to the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The entities.
    pub entities: Vec<T>,
    /// The page size used.
    pub page_size: u32,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_page_cursor: Option<String>,
}

/// A list without paging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Listing<T> {
    /// The entities.
    pub entities: Vec<T>,
}

/// A configured model endpoint (never its key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelEndpoint {
    /// The name prompts use.
    #[serde(rename = "ref")]
    pub reference: String,
    /// `openai`, `anthropic` or `builtin`.
    pub provider: String,
    /// Where the provider is (empty for `builtin`).
    pub base_url: String,
    /// The provider's model name.
    pub model: String,
    /// Context window in tokens.
    pub context_window: u32,
    /// Tokenizer used to count.
    pub tokenizer: String,
    /// False when the tokenizer is an estimate for this model.
    pub tokenizer_exact: bool,
    /// Per-request timeout.
    pub timeout_ms: u64,
    /// Retries on 429/5xx.
    pub max_retries: u32,
    /// The environment variable holding the key, if any.
    pub api_key_env: Option<String>,
    /// Whether it can be called now (its key is set, or it needs none).
    pub usable: bool,
    /// True for the built-in offline provider, whose answers are not a model's.
    pub offline: bool,
    /// US dollars per million prompt tokens, as the operator configured it (left out when the
    /// endpoint has no prices; 0 when only the other price is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_price_per_million: Option<f64>,
    /// US dollars per million completion tokens (left out when the endpoint has no prices; 0
    /// when only the other price is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_price_per_million: Option<f64>,
    /// This replica's circuit breaker of the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit: Option<CircuitStatus>,
}

/// `POST /api/v2/oauth/clients`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateClientRequest {
    /// Human name.
    #[schema(required = true, value_type = String)]
    pub name: Option<String>,
    /// Scopes the client may request.
    #[schema(required = true, schema_with = scope_names)]
    pub scopes: Option<Vec<String>>,
}

/// An OAuth client (never its secret after creation). `Debug` hides the secret.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuthClient {
    /// Client id.
    pub client_id: String,
    /// The secret: present only in the answer that created the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Human name.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// When it was created.
    pub created_at: String,
    /// Whether it is disabled.
    pub disabled: bool,
    /// When it was disabled.
    #[serde(default)]
    pub disabled_at: Option<String>,
}

// Written by hand so that `{:?}` (a log line, a panic, an SDK user's debugging) never shows
// a bearer token or a client secret.
impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("created_at", &self.created_at)
            .field("disabled", &self.disabled)
            .field("disabled_at", &self.disabled_at)
            .finish()
    }
}

/// `/healthz` and `/readyz` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthStatus {
    /// `ok` or `ready`.
    pub status: String,
}

/// One earlier turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatTurn {
    /// `user`, `assistant` or `tool`.
    #[schema(required = true, schema_with = turn_role_schema)]
    pub role: Option<String>,
    /// What was said (a `tool` turn: the tool's result; may be empty in an assistant turn
    /// that calls tools).
    #[schema(required = true, value_type = String)]
    pub content: Option<String>,
    /// The calls an assistant turn made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// The call a `tool` turn answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatTurn {
    /// A user or assistant turn that only says something (no tool calls).
    pub fn text(role: &str, content: impl Into<String>) -> Self {
        ChatTurn {
            role: Some(role.to_owned()),
            content: Some(content.into()),
            tool_calls: None,
            tool_call_id: None,
        }
    }
}

fn turn_role_schema() -> utoipa::openapi::schema::Object {
    name_schema(
        "`user`, `assistant` or `tool`.",
        &["user", "assistant", "tool"],
    )
}

/// Options of an invocation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvokeOptions {
    /// Answer with server-sent events (`delta`, then `done`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Include `tokenUsage` in the answer (default true; telemetry records it either way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_token_usage: Option<bool>,
    /// The most tokens the model may generate; reserved in the context window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_output_tokens: Option<i64>,
}

/// `POST …/invocations`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvokeRequest {
    /// The prompt to invoke.
    #[schema(required = true, value_type = String)]
    pub prompt_id: Option<String>,
    /// What the user said.
    #[schema(required = true, value_type = String)]
    pub user_input: Option<String>,
    /// The conversation id: sticky routing keeps a session on one version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Pin a version, bypassing the split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Serve the version this label points at (not together with `version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The template's variables, validated against the version's schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub variables: Option<serde_json::Map<String, serde_json::Value>>,
    /// Earlier turns, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<ChatTurn>>,
    /// Options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<InvokeOptions>,
    /// Free-form string metadata kept with the telemetry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Token counts of one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct TokenUsage {
    /// Tokens sent.
    pub prompt: u32,
    /// Tokens generated.
    pub completion: u32,
    /// Their sum.
    pub total: u32,
}

/// What the guardrails changed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuardrailReport {
    /// Redactions in the input and earlier turns, by kind (`EMAIL`, `PHONE`, `CARD`, `SSN`, `IP`).
    pub input_redactions: BTreeMap<String, u32>,
    /// Redactions in the output, by kind; `PROFANITY` counts masked words.
    pub output_redactions: BTreeMap<String, u32>,
}

/// What context fitting dropped to fit the model's window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContextReport {
    /// Few-shot examples dropped, oldest first.
    pub dropped_examples: u32,
    /// Earlier turns dropped, oldest first.
    pub dropped_turns: u32,
}

/// The answer of an invocation (and, without `output`, the `done` event of a stream).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvokeResponse {
    /// The invocation's id (`inv-…`), the telemetry record's id.
    pub response_id: String,
    /// The prompt.
    pub prompt_id: String,
    /// The version that served.
    pub version: String,
    /// The model that answered, as the provider reported it.
    pub model: String,
    /// The answer, after output guardrails; absent in a stream's `done` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Token counts, unless `returnTokenUsage` was false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_usage: Option<TokenUsage>,
    /// `stop`, `length`, …
    pub finish_reason: String,
    /// Time in the gateway, from request to answer.
    pub latency_ms: f64,
    /// What the guardrails changed.
    pub guardrails: GuardrailReport,
    /// What context fitting dropped.
    pub context: ContextReport,
    /// Tokens of the few-shot examples sent.
    pub few_shot_tokens: u32,
    /// The tools the model called (`finishReason` is then `tool_calls`; left out when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// With a JSON `responseFormat`: the output as JSON when it is valid, else null (left out
    /// without one).
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Object>)]
    pub parsed: Option<Option<serde_json::Value>>,
    /// With a JSON `responseFormat`: why the output is not valid (left out when it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_errors: Option<Vec<OutputError>>,
    /// The model endpoint that served (the version's, or a fallback).
    #[serde(default)]
    pub endpoint_ref: String,
    /// Whether a fallback endpoint served, and the endpoints that failed before it (present only
    /// when the version has fallback endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<FallbackReport>,
}

/// The answer's `fallback`: whether a fallback endpoint served, and the failed attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FallbackReport {
    /// Whether an endpoint other than the version's served.
    pub used: bool,
    /// The endpoints that failed, in order.
    pub attempts: Vec<FallbackAttempt>,
}

/// One endpoint that did not serve an invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FallbackAttempt {
    /// The endpoint.
    pub endpoint_ref: String,
    /// Why (`upstream.error`, `upstream.timeout`, `upstream.circuit_open`,
    /// `context.window.exceeded`, `too.many.requests`).
    pub error_code: String,
}

/// A model endpoint's circuit breaker on the replica that answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CircuitStatus {
    /// `closed`, `open` or `halfOpen`.
    pub state: String,
    /// Failures in a row since the last success.
    pub consecutive_failures: u32,
    /// While open: when the next call (a probe) goes through.
    pub open_until: Option<String>,
}

/// A `delta` event of a streamed invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StreamDelta {
    /// The next piece of output.
    pub text: String,
}

/// One invocation record as `GET …/telemetry` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TelemetryEntity {
    /// The invocation's `responseId`.
    pub id: String,
    /// When the gateway received the invocation.
    pub timestamp: String,
    /// The prompt.
    pub prompt_id: String,
    /// The version that served.
    pub version: String,
    /// The model.
    pub model: String,
    /// `SUCCESS`, `ERROR` or `BLOCKED`.
    pub status: String,
    /// The error code of an ERROR or BLOCKED invocation.
    pub error_code: Option<String>,
    /// Time in the gateway.
    pub latency_ms: f64,
    /// Time waiting on the provider.
    pub upstream_latency_ms: Option<f64>,
    /// Time to the first streamed token.
    pub time_to_first_token_ms: Option<f64>,
    /// Token counts.
    pub token_usage: TokenUsage,
    /// The session, if given (an extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The caller's metadata (an extension).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The label the invocation named, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The names of the variables the caller supplied (never their values; left out when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<String>,
    /// The feedback, if any (an extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<FeedbackEntity>,
    /// Whether the output matched the version's JSON `responseFormat` (left out without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_valid: Option<bool>,
    /// How many tool calls the answer made (left out when none; an extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_count: Option<u32>,
    /// The OAuth client that invoked (an extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The id of the API key the client invoked with (left out for an access token; an
    /// extension). Never the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
    /// What the call cost in US dollars at the serving endpoint's configured prices (left out
    /// when that endpoint has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The model endpoint that served, or the last one tried when all failed (null for records
    /// made before it was recorded).
    #[serde(default)]
    pub endpoint_ref: Option<String>,
    /// The endpoints that failed before the serving one, in order (left out when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback_attempts: Vec<FallbackAttempt>,
}

/// Feedback as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackEntity {
    /// The score in [0, 1].
    pub score: f64,
    /// The comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When it was given.
    pub created_at: String,
}

/// `POST …/invocations/{responseId}/feedback`: a score in [0, 1] or a boolean.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct FeedbackRequest {
    /// 0.0–1.0, or true (= 1) / false (= 0).
    #[schema(required = true, schema_with = score_schema)]
    pub score: Option<serde_json::Value>,
    /// An optional comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// The stored feedback, with the invocation it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackResponse {
    /// The invocation.
    pub response_id: String,
    /// The score in [0, 1].
    pub score: f64,
    /// The comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When it was given.
    pub created_at: String,
    /// Whether it replaced feedback given earlier (by the same client, or by an admin): a
    /// replacement is never silent, and is recorded in the audit log as `FEEDBACK_REPLACED`.
    #[serde(default)]
    pub replaced: bool,
}

/// `GET …/telemetry/summary`: one entity per version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TelemetrySummary {
    /// Per-version summaries.
    pub entities: Vec<VersionSummary>,
}

/// The numbers of one version over the filtered records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionSummary {
    /// The version (left out with `groupBy=endpoint`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Invocations, blocked ones included.
    pub count: u64,
    /// Invocations that failed.
    pub error_count: u64,
    /// Invocations a guardrail refused (not errors).
    pub blocked_count: u64,
    /// errorCount / count.
    pub error_rate: f64,
    /// Latency percentiles and mean; null when there is no latency to summarise.
    pub latency_ms: Option<LatencyStats>,
    /// Token sums.
    pub token_usage: TokenSums,
    /// Feedback count and mean.
    pub feedback: FeedbackStats,
    /// The share of checked outputs that matched the JSON `responseFormat`, with its interval
    /// (left out when no output was checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_valid_rate: Option<RateEstimate>,
    /// The comparison with `compareTo`, when asked for (absent for that version itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<VersionComparison>,
    /// The cost of the invocations that have one (left out when none has: no priced endpoint
    /// served the version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostStats>,
    /// With `groupBy=endpoint`: the model endpoint these numbers are of (`version` is then
    /// left out; empty for records made before the endpoint was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_ref: Option<String>,
}

/// Latency percentiles and mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LatencyStats {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Mean.
    pub mean: f64,
}

/// Token sums over many invocations.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct TokenSums {
    /// Tokens sent.
    pub prompt: u64,
    /// Tokens generated.
    pub completion: u64,
    /// Their sum.
    pub total: u64,
}

/// Feedback count and mean score.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct FeedbackStats {
    /// Invocations with feedback.
    pub count: u64,
    /// Their mean score; null without feedback.
    pub mean: Option<f64>,
}

/// The cost of one version's priced invocations, in US dollars.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CostStats {
    /// Invocations with a cost.
    pub count: u64,
    /// Their summed cost.
    pub total_usd: f64,
    /// Their mean cost.
    pub mean_usd: f64,
    /// Student's t 95% confidence interval of the mean, low then high (left out with fewer than
    /// 2 costs, or when they are all equal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_ci95: Option<[f64; 2]>,
}

/// This version against the `compareTo` version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionComparison {
    /// The reference version.
    pub against: String,
    /// Error rate difference (this − reference); null with too little data.
    pub error_rate_diff: Option<DiffEstimate>,
    /// Mean latency difference in ms (this − reference); null with too little data.
    pub mean_latency_ms_diff: Option<DiffEstimate>,
    /// Mean feedback difference (this − reference; an extension); null with too little data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_mean_diff: Option<DiffEstimate>,
    /// Schema-valid rate difference (this − reference); null with too little data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_valid_rate_diff: Option<DiffEstimate>,
    /// Mean cost difference in US dollars (this − reference), over the invocations that have a
    /// cost; left out with too little data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_mean_usd_diff: Option<DiffEstimate>,
}

/// A difference with its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DiffEstimate {
    /// The point estimate.
    pub estimate: f64,
    /// The 95% confidence interval, low then high.
    pub ci95: [f64; 2],
    /// Whether the interval excludes zero.
    pub significant: bool,
}

/// The payload an export POSTs (the tutorial's shape, also the webhook's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportPayload {
    /// The records.
    pub metrics: Vec<TelemetryEntity>,
    /// When the export was made.
    pub export_timestamp: String,
}

/// `POST …/audit-logs`: a client's own audit entry. The server adds its time, the caller as
/// `actor`, the sequence and the hashes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryRequest {
    /// The prompt the entry concerns (optional; must exist when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    /// What happened, in the client's words (required; the gateway's own action names are
    /// reserved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(required = true, value_type = String)]
    pub action: Option<String>,
    /// The client's own time (RFC 3339), kept as `clientTimestamp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Any JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub details: Option<serde_json::Value>,
    /// The client's compliance status, e.g. `VALIDATED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance_status: Option<String>,
    /// Any JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub metadata: Option<serde_json::Value>,
}

/// One stored audit entry. The hashed object is exactly this object without `hash`, so every
/// member is always present (`null` when empty) and any member a later version adds is kept in
/// `extra`, so that re-serialising an entry never changes what it hashes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// The entry's id.
    pub id: String,
    /// 1-based position in the log; also the Merkle leaf index + 1.
    pub sequence: u64,
    /// When the gateway recorded it.
    pub timestamp: String,
    /// The OAuth client id, or `system`.
    pub actor: String,
    /// What happened.
    pub action: String,
    /// The prompt, if the entry concerns one.
    pub prompt_id: Option<String>,
    /// The change (`before`, `after`, `diff` for the gateway's own entries).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// A client entry's own time.
    pub client_timestamp: Option<String>,
    /// A client entry's compliance status.
    pub compliance_status: Option<String>,
    /// A client entry's metadata; `null` when the entry has none (every server entry).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// The previous entry's hash (64 zeros for the first).
    pub prev_hash: String,
    /// `SHA-256(prevHash ‖ canonical JSON of this entry without hash)`, lowercase hex.
    pub hash: String,
    /// Members this build does not know (kept so that verification still works).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `GET …/audit-logs/verify`: the chain and the tree recomputed from the stored entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditVerification {
    /// Whether every entry verified and every stored signed head matches the log.
    pub valid: bool,
    /// How many entries were read.
    pub entries: u64,
    /// The last entry's sequence.
    pub head_sequence: u64,
    /// The last entry's hash.
    pub head_hash: String,
    /// The Merkle root over all entries.
    pub root_hash: String,
    /// The first entry that does not verify.
    pub first_invalid_sequence: Option<u64>,
    /// Why the log is invalid (an extension).
    #[serde(default)]
    pub reason: Option<String>,
    /// How many stored signed tree heads were checked against the log (an extension).
    #[serde(default)]
    pub signed_heads_checked: u64,
}

/// A signed tree head (`GET …/audit-logs/checkpoint`). The signature is Ed25519 over the
/// canonical JSON of `{"treeSize", "rootHash", "timestamp"}`, base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedTreeHead {
    /// How many entries the tree covers.
    pub tree_size: u64,
    /// Its Merkle root, lowercase hex.
    pub root_hash: String,
    /// When it was signed.
    pub timestamp: String,
    /// The signing key's id (see `…/audit-logs/public-key`).
    pub key_id: String,
    /// Base64 of the 64-byte signature.
    pub signature: String,
}

/// `GET …/audit-logs/public-key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPublicKey {
    /// The first 16 hex digits of the SHA-256 of the raw key.
    pub key_id: String,
    /// Base64 of the 32 raw Ed25519 public-key bytes.
    pub public_key: String,
}

/// `GET …/audit-logs/{sequence}/proof?treeSize=N`: RFC 9162 inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    /// The entry.
    pub sequence: u64,
    /// `sequence - 1`.
    pub leaf_index: u64,
    /// The tree the proof is for.
    pub tree_size: u64,
    /// `SHA-256(0x00 ‖ canonical entry)`, hex.
    pub leaf_hash: String,
    /// Sibling hashes from the leaf up, hex.
    pub audit_path: Vec<String>,
    /// The root of the tree of `treeSize`, hex.
    pub root_hash: String,
}

/// `GET …/audit-logs/consistency?from=N&to=M`: RFC 9162 consistency proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyProof {
    /// The older tree size.
    pub from: u64,
    /// The newer tree size.
    pub to: u64,
    /// The older tree's root, hex.
    pub from_root: String,
    /// The newer tree's root, hex.
    pub to_root: String,
    /// The proof hashes, hex.
    pub proof: Vec<String>,
}

/// How `POST /v1/chat/completions` treats a caller's system message and settings, per prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatCompletionsSettings {
    /// `replace` (default): the version's system prompt replaces the caller's system
    /// messages; `prepend`: it comes first and the caller's follow.
    pub system_message: String,
    /// Whether the caller's `temperature` and `model_endpoint` win over the version's
    /// (default false: they are ignored, and the answer's `x-promptgate-ignored-params` header
    /// names them).
    pub allow_caller_settings: bool,
}

impl Default for ChatCompletionsSettings {
    fn default() -> Self {
        ChatCompletionsSettings {
            system_message: "replace".to_owned(),
            allow_caller_settings: false,
        }
    }
}

/// A change to [`ChatCompletionsSettings`]; left-out fields stay as they are.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatCompletionsDraft {
    /// `replace` or `prepend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_message: Option<String>,
    /// Whether the caller's settings win.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_caller_settings: Option<bool>,
}
