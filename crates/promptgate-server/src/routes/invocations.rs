//! `POST …/invocations`: pick the version, apply input guardrails, fit the context window,
//! call the provider, apply output guardrails, leave a telemetry record, answer (or stream).

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use promptgate_api as api;
use promptgate_core::guardrails::{categories, pii, profanity};
use promptgate_core::invocation::{
    ContextInput, InvocationRecord, InvocationStatus, choose_version, fit_context,
};
use promptgate_core::violation::quoted;
use promptgate_core::{
    ContentFilter, ModelEndpoint, PromptStatus, PromptVersion, Scope, VersionLabel, Violation,
    ViolationCode,
};
use promptgate_providers::{
    ChatMessage, ChatRequest, EventStream, ProviderError, Role, StreamEvent, Usage,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::Caller;
use crate::cache::CachedPrompt;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::limits::{RequestLimits, is_over, too_long, too_many};
use crate::state::{AppState, now};
use crate::telemetry::TelemetrySink;

/// The longest session id.
pub const MAX_SESSION_ID_CHARS: usize = 256;
/// The name the response header carries the chosen version under.
pub const VERSION_HEADER: &str = "x-prompt-version";

/// Invokes a prompt.
#[utoipa::path(post, path = "/api/v2/ai/llm/gateway/invocations", tag = "invocations",
    request_body = api::InvokeRequest,
    responses(
        (status = 200, description = "the answer (or, with options.stream, text/event-stream: `delta` events with {text}, then one `done` event with the answer minus output); X-Prompt-Version header", body = api::InvokeResponse),
        (status = 400, description = "invalid field or context.window.exceeded", body = api::ErrorBody),
        (status = 401, body = api::ErrorBody), (status = 403, body = api::ErrorBody),
        (status = 404, description = "unknown or archived prompt, unknown version", body = api::ErrorBody),
        (status = 422, description = "guardrail.blocked", body = api::ErrorBody),
        (status = 429, description = "too.many.requests: the client's rate limit, or the model endpoint's max_concurrent_calls; Retry-After and inin-ratelimit-* headers", body = api::ErrorBody),
        (status = 502, description = "upstream.error", body = api::ErrorBody),
        (status = 504, description = "upstream.timeout", body = api::ErrorBody)),
    security(("bearer" = ["ai:gateway:write"])))]
pub async fn invoke(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<api::InvokeRequest>,
) -> Result<Response, ApiError> {
    let received = (Instant::now(), now());
    caller.require(Scope::GatewayWrite)?;
    let request = check_request(&body, &state.limits)?;
    let not_found =
        || ApiError::NotFound(format!("no active prompt with id {}", request.prompt_id));
    let prompt_id = Uuid::parse_str(&request.prompt_id).map_err(|_| not_found())?;
    let cached = state.prompts.get(prompt_id).await?.ok_or_else(not_found)?;
    let stream = request.stream;
    let outcome = run(&state, &caller, &cached, request, received).await?;
    let label = outcome.version.clone();
    let mut http = match outcome.answer {
        Answer::Complete(body) => (StatusCode::OK, Json(body)).into_response(),
        Answer::Stream(relay) => {
            debug_assert!(stream);
            let events = futures_util::stream::unfold(relay, |mut relay| async move {
                let event = match relay.next_event().await? {
                    RelayEvent::Delta(text) => json_event("delta", &api::StreamDelta { text }),
                    RelayEvent::Done(done) => json_event("done", &done),
                    RelayEvent::Failed(err) => error_event(&err),
                };
                Some((Ok::<Event, Infallible>(event), relay))
            });
            Sse::new(events)
                .keep_alive(KeepAlive::default())
                .into_response()
        }
    };
    if let Ok(value) = HeaderValue::from_str(&label) {
        http.headers_mut().insert(VERSION_HEADER, value);
    }
    Ok(http)
}

/// What an invocation produced: the whole answer, or a relay of the provider's stream.
// Made once per request and moved straight into the response: boxing either variant would
// only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Answer {
    /// The answer, with `output`.
    Complete(api::InvokeResponse),
    /// The stream, through the output guardrails.
    Stream(Relay),
}

/// An invocation under way or done, and the version that serves it.
pub(crate) struct Outcome {
    /// The version label.
    pub(crate) version: String,
    /// The model the version's endpoint names (before the provider reports its own).
    pub(crate) model: String,
    /// The invocation's id.
    pub(crate) response_id: String,
    /// The answer.
    pub(crate) answer: Answer,
}

/// The invocation pipeline shared by `…/invocations` and `/v1/chat/completions`: version
/// choice, guardrails, context fitting, the provider call and the telemetry record.
pub(crate) async fn run(
    state: &AppState,
    caller: &Caller,
    cached: &CachedPrompt,
    request: CheckedRequest,
    (started, received_at): (Instant, OffsetDateTime),
) -> Result<Outcome, ApiError> {
    let prompt_id = cached.prompt.id;
    if cached.prompt.status == PromptStatus::Archived {
        return Err(ApiError::NotFound(format!(
            "prompt {prompt_id} is archived and serves no invocations"
        )));
    }
    let label = match &request.version {
        Some(pinned) => pinned
            .parse::<VersionLabel>()
            .ok()
            .filter(|l| cached.versions.contains_key(l))
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "prompt {prompt_id} has no version {}",
                    quoted(pinned)
                ))
            })?,
        None => choose_version(
            &cached.prompt.traffic,
            prompt_id,
            request.session_id.as_deref(),
            rand::random::<f64>(),
        )
        .clone(),
    };
    let version = cached.versions.get(&label).ok_or_else(|| {
        ApiError::Internal(format!(
            "prompt {prompt_id} routes to missing version {label}"
        ))
    })?;
    let endpoint_ref = request
        .overrides
        .model_endpoint
        .as_deref()
        .unwrap_or(&version.settings.model_endpoint_ref);
    let endpoint = match state.catalogue.get(endpoint_ref) {
        Some(endpoint) => endpoint,
        None if request.overrides.model_endpoint.is_some() => {
            // The list of endpoints is for callers who may read prompts (as `…/model-endpoints`).
            let known = if caller.scopes.contains(Scope::PromptRead) {
                format!("; known: {}", state.catalogue.refs_list())
            } else {
                String::new()
            };
            return Err(ApiError::Invalid(vec![Violation::invalid(
                "model_endpoint",
                format!(
                    "model_endpoint {} is not configured on this gateway{known}",
                    quoted(endpoint_ref)
                ),
            )]));
        }
        None => {
            return Err(ApiError::UpstreamError(format!(
                "model endpoint {endpoint_ref} of version {label} is not configured on this gateway"
            )));
        }
    };

    let mut record = RecordDraft {
        sink: state.telemetry.clone(),
        metrics: state.metrics.clone(),
        prompt_name: cached.prompt.name.clone(),
        base: InvocationRecord {
            id: format!("inv-{}", Uuid::now_v7()),
            timestamp: received_at,
            prompt_id,
            version: label.to_string(),
            model: endpoint.model.clone(),
            status: InvocationStatus::Error,
            error_code: None,
            latency_ms: 0.0,
            upstream_latency_ms: None,
            time_to_first_token_ms: None,
            prompt_tokens: 0,
            completion_tokens: 0,
            session_id: request.session_id.clone(),
            client_id: caller.client_id.clone(),
            metadata: request.metadata.clone(),
        },
        started,
    };
    let response_id = record.base.id.clone();
    let model = endpoint.model.clone();
    let prepared = match prepare(state, &request, version, endpoint) {
        Ok(prepared) => moderate(state, prepared, version).await,
        Err(err) => Err(err),
    };
    let answer = match prepared {
        Ok(prepared) => {
            if request.stream {
                stream_answer(state, prepared, request, record).await?
            } else {
                complete_answer(state, prepared, request, &mut record).await?
            }
        }
        Err(err) => {
            record.finish_error(&err);
            return Err(err);
        }
    };
    // `[telemetry] durability = "ack-after-store"`: a complete answer waits for its record's
    // commit (503 when it fails); a stream's `done` waits in `Relay` (telemetry.rs).
    if matches!(answer, Answer::Complete(_)) {
        state.telemetry.stored(&response_id).await?;
    }
    Ok(Outcome {
        version: label.to_string(),
        model,
        response_id,
        answer,
    })
}

/// A checked invocation request, from either front door.
pub(crate) struct CheckedRequest {
    pub(crate) prompt_id: String,
    pub(crate) user_input: String,
    pub(crate) session_id: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) turns: Vec<(Role, String)>,
    pub(crate) stream: bool,
    pub(crate) return_token_usage: bool,
    pub(crate) max_output_tokens: Option<u32>,
    pub(crate) metadata: BTreeMap<String, String>,
    /// What the OpenAI-compatible front door lets a caller add or change.
    pub(crate) overrides: CallerOverrides,
}

/// What a caller of `/v1/chat/completions` adds to, or changes in, the version's settings,
/// already filtered by the prompt's policy. Empty for `…/invocations`.
#[derive(Debug, Default)]
pub(crate) struct CallerOverrides {
    /// The caller's own system text, placed after the version's system prompt.
    pub(crate) system_suffix: Option<String>,
    /// A temperature instead of the version's.
    pub(crate) temperature: Option<f64>,
    /// A model endpoint instead of the version's.
    pub(crate) model_endpoint: Option<String>,
}

pub(crate) fn check_request(
    body: &api::InvokeRequest,
    limits: &RequestLimits,
) -> Result<CheckedRequest, ApiError> {
    let mut violations = Vec::new();
    let prompt_id = body.prompt_id.clone().unwrap_or_else(|| {
        violations.push(Violation::invalid("promptId", "promptId is required"));
        String::new()
    });
    let user_input = match &body.user_input {
        None => {
            violations.push(Violation::invalid("userInput", "userInput is required"));
            String::new()
        }
        Some(text) if is_over(text, limits.max_input_chars) => {
            violations.push(too_long(
                "userInput",
                text.chars().count(),
                limits.max_input_chars,
                "max_input_chars",
            ));
            String::new()
        }
        Some(text) => text.clone(),
    };
    if let Some(session) = &body.session_id
        && session.chars().count() > MAX_SESSION_ID_CHARS
    {
        violations.push(Violation::invalid(
            "sessionId",
            format!("sessionId is over the limit of {MAX_SESSION_ID_CHARS} characters"),
        ));
    }
    let mut turns = Vec::new();
    let messages = body.messages.as_deref().unwrap_or_default();
    if messages.len() > limits.max_conversation_messages {
        violations.push(too_many(
            "messages",
            messages.len(),
            limits.max_conversation_messages,
            "max_conversation_messages",
        ));
    }
    for (i, turn) in messages
        .iter()
        .enumerate()
        .take(limits.max_conversation_messages)
    {
        let role = match turn.role.as_deref() {
            Some("user") => Some(Role::User),
            Some("assistant") => Some(Role::Assistant),
            other => {
                let why = match other {
                    None => "role is required; use user or assistant".to_owned(),
                    Some(role) => format!("role is {}; use user or assistant", quoted(role)),
                };
                violations.push(Violation::invalid(format!("messages[{i}].role"), why));
                None
            }
        };
        let content = match &turn.content {
            Some(text) if !is_over(text, limits.max_input_chars) => Some(text.clone()),
            Some(text) => {
                violations.push(too_long(
                    &format!("messages[{i}].content"),
                    text.chars().count(),
                    limits.max_input_chars,
                    "max_input_chars",
                ));
                None
            }
            None => {
                violations.push(Violation::invalid(
                    format!("messages[{i}].content"),
                    "content is required",
                ));
                None
            }
        };
        if let (Some(role), Some(content)) = (role, content) {
            turns.push((role, content));
        }
    }
    let options = body.options.clone().unwrap_or_default();
    let max_output_tokens = match options.max_output_tokens {
        None => None,
        Some(n) => match u32::try_from(n) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                violations.push(Violation::invalid(
                    "options.maxOutputTokens",
                    format!("maxOutputTokens is {n}; it must be a whole number of at least 1"),
                ));
                None
            }
        },
    };
    let metadata = body.metadata.clone().unwrap_or_default();
    if metadata.len() > limits.max_metadata_entries {
        violations.push(too_many(
            "metadata",
            metadata.len(),
            limits.max_metadata_entries,
            "max_metadata_entries",
        ));
    }
    for (key, value) in metadata.iter().take(limits.max_metadata_entries) {
        let (key_over, value_over) = (
            is_over(key, limits.max_metadata_key_chars),
            is_over(value, limits.max_metadata_value_chars),
        );
        if !(key_over || value_over) {
            continue;
        }
        // The key is cut in the field name so that a huge key does not echo back whole.
        let shown: String = key.chars().take(limits.max_metadata_key_chars).collect();
        let field = format!("metadata.{shown}");
        if key_over {
            violations.push(too_long(
                &field,
                key.chars().count(),
                limits.max_metadata_key_chars,
                "max_metadata_key_chars",
            ));
        }
        if value_over {
            violations.push(too_long(
                &field,
                value.chars().count(),
                limits.max_metadata_value_chars,
                "max_metadata_value_chars",
            ));
        }
    }
    if !violations.is_empty() {
        return Err(ApiError::Invalid(violations));
    }
    Ok(CheckedRequest {
        prompt_id,
        user_input,
        session_id: body.session_id.clone(),
        version: body.version.clone(),
        turns,
        stream: options.stream.unwrap_or(false),
        return_token_usage: options.return_token_usage.unwrap_or(true),
        max_output_tokens,
        metadata,
        overrides: CallerOverrides::default(),
    })
}

/// The provider request and what the guardrails and the fitting did.
struct Prepared {
    chat: ChatRequest,
    /// The caller's own system text after PII redaction (`/v1`, prepend policy), which the
    /// moderation endpoint checks like the messages.
    caller_system: Option<String>,
    endpoint_ref: String,
    input_redactions: BTreeMap<String, u32>,
    dropped_examples: u32,
    dropped_turns: u32,
    few_shot_tokens: u32,
    redact_output: bool,
    mask_output: bool,
}

fn prepare(
    state: &AppState,
    request: &CheckedRequest,
    version: &PromptVersion,
    endpoint: &ModelEndpoint,
) -> Result<Prepared, ApiError> {
    let guardrails = &version.settings.safety_guardrails;
    if !guardrails.blocked_categories.is_empty() {
        let texts = std::iter::once(request.user_input.as_str())
            .chain(request.turns.iter().map(|(_, t)| t.as_str()))
            .chain(request.overrides.system_suffix.as_deref());
        for text in texts {
            if let Some(category) = categories::detect(text, &guardrails.blocked_categories) {
                return Err(ApiError::GuardrailBlocked {
                    category: category.as_str().to_owned(),
                });
            }
        }
    }
    let redact_input = guardrails.content_filtering.contains(&ContentFilter::Pii);
    let mut input_redactions: BTreeMap<String, u32> = BTreeMap::new();
    let mut clean = |text: &str| -> String {
        if !redact_input {
            return text.to_owned();
        }
        let redacted = pii::redact(text);
        for (label, n) in redacted.counts {
            *input_redactions.entry(label.to_owned()).or_default() += n;
        }
        redacted.text
    };
    let user_input = clean(&request.user_input);
    let turns: Vec<(Role, String)> = request
        .turns
        .iter()
        .map(|(role, text)| (*role, clean(text)))
        .collect();
    let turn_texts: Vec<String> = turns.iter().map(|(_, t)| t.clone()).collect();
    let caller_system = request.overrides.system_suffix.as_deref().map(&mut clean);
    let system_prompt = match &caller_system {
        None => std::borrow::Cow::Borrowed(version.settings.system_prompt.as_str()),
        Some(suffix) => {
            std::borrow::Cow::Owned(format!("{}\n\n{suffix}", version.settings.system_prompt))
        }
    };

    let fitted = fit_context(
        &state.counter,
        &ContextInput {
            system_prompt: &system_prompt,
            examples: &version.settings.few_shot_examples,
            turns: &turn_texts,
            user_input: &user_input,
            max_output_tokens: request.max_output_tokens.unwrap_or(0),
            context_window: endpoint.context_window,
            tokenizer: endpoint.tokenizer,
        },
    )
    .map_err(|e| {
        ApiError::Invalid(vec![Violation::with_params(
            ViolationCode::ContextWindowExceeded,
            "userInput",
            "the request needs {needed} tokens ({tokenizer}) with every example and earlier turn dropped; the context window of {model} is {limit}",
            &[
                ("needed", e.needed.to_string()),
                ("tokenizer", e.tokenizer.to_owned()),
                ("limit", e.window.to_string()),
                ("model", endpoint.reference.clone()),
            ],
        )])
    })?;
    let mut messages: Vec<ChatMessage> = turns
        .into_iter()
        .skip(fitted.dropped_turns)
        .map(|(role, content)| ChatMessage { role, content })
        .collect();
    messages.push(ChatMessage {
        role: Role::User,
        content: user_input,
    });
    Ok(Prepared {
        caller_system,
        chat: ChatRequest {
            system: fitted.system,
            messages,
            temperature: request
                .overrides
                .temperature
                .unwrap_or(version.settings.temperature),
            max_output_tokens: request.max_output_tokens,
        },
        endpoint_ref: endpoint.reference.clone(),
        input_redactions,
        dropped_examples: u32::try_from(fitted.dropped_examples).unwrap_or(u32::MAX),
        dropped_turns: u32::try_from(fitted.dropped_turns).unwrap_or(u32::MAX),
        few_shot_tokens: u32::try_from(fitted.few_shot_tokens).unwrap_or(u32::MAX),
        redact_output: redact_input,
        mask_output: guardrails
            .content_filtering
            .contains(&ContentFilter::Profanity),
    })
}

/// The model-based check for blocked categories, when configured and the version blocks any:
/// it sees the text after PII redaction, as the provider would.
async fn moderate(
    state: &AppState,
    prepared: Prepared,
    version: &PromptVersion,
) -> Result<Prepared, ApiError> {
    let blocked = &version.settings.safety_guardrails.blocked_categories;
    let Some(check) = state.moderation.as_ref().filter(|_| !blocked.is_empty()) else {
        return Ok(prepared);
    };
    let inputs: Vec<&str> = prepared
        .caller_system
        .iter()
        .map(String::as_str)
        .chain(prepared.chat.messages.iter().map(|m| m.content.as_str()))
        .collect();
    match check.client.categories(&inputs).await {
        Ok(found) => match found.into_iter().find(|c| blocked.contains(c)) {
            Some(category) => Err(ApiError::GuardrailBlocked {
                category: category.as_str().to_owned(),
            }),
            None => Ok(prepared),
        },
        Err(err) if check.fail_open => {
            tracing::warn!(error = ?err.to_string(), "the moderation endpoint failed; serving anyway (fail_open)");
            Ok(prepared)
        }
        Err(err) => Err(ApiError::UpstreamError(format!(
            "the moderation endpoint failed, so the request was not served: {err}"
        ))),
    }
}

fn provider_error(err: ProviderError, endpoint_ref: &str) -> ApiError {
    match err {
        ProviderError::Timeout => ApiError::UpstreamTimeout(format!(
            "the model endpoint {endpoint_ref} did not answer in time after the gateway's retries"
        )),
        ProviderError::MissingKey { variable } => ApiError::UpstreamError(format!(
            "the model endpoint {endpoint_ref} needs its key in the gateway's environment variable {variable}"
        )),
        ProviderError::Upstream { status, message } => ApiError::UpstreamError(format!(
            "the model endpoint {endpoint_ref} failed{}: {message}",
            status
                .map(|s| format!(" with status {s}"))
                .unwrap_or_default()
        )),
        ProviderError::Invalid(message) => ApiError::UpstreamError(format!(
            "the model endpoint {endpoint_ref} answered something the gateway cannot read: {message}"
        )),
    }
}

fn answer(
    record: &InvocationRecord,
    prepared: &Prepared,
    output_redactions: BTreeMap<String, u32>,
    usage: Usage,
    finish_reason: String,
    output: Option<String>,
    return_token_usage: bool,
) -> api::InvokeResponse {
    api::InvokeResponse {
        response_id: record.id.clone(),
        prompt_id: record.prompt_id.to_string(),
        version: record.version.clone(),
        model: record.model.clone(),
        output,
        token_usage: return_token_usage.then_some(api::TokenUsage {
            prompt: usage.prompt_tokens,
            completion: usage.completion_tokens,
            total: usage.prompt_tokens.saturating_add(usage.completion_tokens),
        }),
        finish_reason,
        latency_ms: record.latency_ms,
        guardrails: api::GuardrailReport {
            input_redactions: prepared.input_redactions.clone(),
            output_redactions,
        },
        context: api::ContextReport {
            dropped_examples: prepared.dropped_examples,
            dropped_turns: prepared.dropped_turns,
        },
        few_shot_tokens: prepared.few_shot_tokens,
    }
}

async fn complete_answer(
    state: &AppState,
    prepared: Prepared,
    request: CheckedRequest,
    record: &mut RecordDraft,
) -> Result<Answer, ApiError> {
    let provider = state
        .providers
        .get(&prepared.endpoint_ref)
        .ok_or_else(|| ApiError::Internal(format!("no provider for {}", prepared.endpoint_ref)))?;
    let _slot = match state.upstream_slots.acquire(&prepared.endpoint_ref) {
        Ok(slot) => slot,
        Err(err) => {
            record.finish_error(&err);
            return Err(err);
        }
    };
    let upstream_started = Instant::now();
    let result = provider.complete(&prepared.chat).await;
    record.base.upstream_latency_ms = Some(millis(upstream_started));
    let response = match result {
        Ok(response) => response,
        Err(err) => {
            let err = provider_error(err, &prepared.endpoint_ref);
            record.finish_error(&err);
            return Err(err);
        }
    };
    let mut output_redactions = BTreeMap::new();
    let mut output = response.text;
    if prepared.redact_output {
        let redacted = pii::redact(&output);
        for (label, n) in redacted.counts {
            output_redactions.insert(label.to_owned(), n);
        }
        output = redacted.text;
    }
    if prepared.mask_output {
        let masked = profanity::mask(&output);
        if masked.count > 0 {
            output_redactions.insert("PROFANITY".to_owned(), masked.count);
        }
        output = masked.text;
    }
    if !response.model.is_empty() {
        record.base.model = response.model.clone();
    }
    record.base.prompt_tokens = response.usage.prompt_tokens;
    record.base.completion_tokens = response.usage.completion_tokens;
    let finished = record.finish(InvocationStatus::Success, None);
    Ok(Answer::Complete(answer(
        &finished,
        &prepared,
        output_redactions,
        response.usage,
        response.finish_reason,
        Some(output),
        request.return_token_usage,
    )))
}

async fn stream_answer(
    state: &AppState,
    prepared: Prepared,
    request: CheckedRequest,
    mut record: RecordDraft,
) -> Result<Answer, ApiError> {
    let provider = state
        .providers
        .get(&prepared.endpoint_ref)
        .ok_or_else(|| ApiError::Internal(format!("no provider for {}", prepared.endpoint_ref)))?;
    let slot = match state.upstream_slots.acquire(&prepared.endpoint_ref) {
        Ok(slot) => slot,
        Err(err) => {
            record.finish_error(&err);
            return Err(err);
        }
    };
    let upstream_started = Instant::now();
    let upstream = match provider.stream(&prepared.chat).await {
        Ok(upstream) => upstream,
        Err(err) => {
            let err = provider_error(err, &prepared.endpoint_ref);
            record.finish_error(&err);
            return Err(err);
        }
    };
    Ok(Answer::Stream(Relay {
        upstream,
        redactor: prepared.redact_output.then(pii::StreamRedactor::new),
        masker: prepared.mask_output.then(profanity::StreamMasker::new),
        pending: VecDeque::new(),
        record: Some(record),
        prepared,
        upstream_started,
        return_token_usage: request.return_token_usage,
        _slot: slot,
    }))
}

/// One step of a relayed stream, for each front door to put in its own wire format.
pub(crate) enum RelayEvent {
    /// Output text, after the guardrails.
    Delta(String),
    /// The end: the answer minus `output`.
    Done(api::InvokeResponse),
    /// The provider failed mid-stream (the record is an ERROR).
    Failed(ApiError),
}

/// Relays a provider's stream as `delta` events through the output guardrails, then `done`.
/// Dropping it (the client went away) drops the upstream stream, which cancels the provider
/// request, and leaves an ERROR record.
pub(crate) struct Relay {
    upstream: EventStream,
    redactor: Option<pii::StreamRedactor>,
    masker: Option<profanity::StreamMasker>,
    pending: VecDeque<RelayEvent>,
    record: Option<RecordDraft>,
    prepared: Prepared,
    upstream_started: Instant,
    return_token_usage: bool,
    /// The endpoint's call slot, held until the relay ends (or the client goes away).
    _slot: Option<crate::upstream::UpstreamSlot>,
}

impl Relay {
    /// The next step; `None` once the stream is over.
    pub(crate) async fn next_event(&mut self) -> Option<RelayEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            // Once the record is finished the stream is over.
            let record = self.record.as_mut()?;
            match self.upstream.next().await {
                Some(Ok(StreamEvent::Delta(text))) => {
                    if record.base.time_to_first_token_ms.is_none() {
                        record.base.time_to_first_token_ms = Some(millis(record.started));
                    }
                    let text = self.filter(&text);
                    if !text.is_empty() {
                        self.pending.push_back(RelayEvent::Delta(text));
                    }
                }
                Some(Ok(StreamEvent::Done {
                    usage,
                    finish_reason,
                    model,
                })) => {
                    let (tail, redactions) = self.flush();
                    if !tail.is_empty() {
                        self.pending.push_back(RelayEvent::Delta(tail));
                    }
                    let mut record = self.record.take()?;
                    record.base.upstream_latency_ms = Some(millis(self.upstream_started));
                    if !model.is_empty() {
                        record.base.model = model;
                    }
                    record.base.prompt_tokens = usage.prompt_tokens;
                    record.base.completion_tokens = usage.completion_tokens;
                    let finished = record.finish(InvocationStatus::Success, None);
                    // `ack-after-store`: `done` only once the record is committed, else an
                    // error event in its place (telemetry.rs).
                    if let Err(err) = record.sink.stored(&finished.id).await {
                        self.pending.push_back(RelayEvent::Failed(err));
                        continue;
                    }
                    let done = answer(
                        &finished,
                        &self.prepared,
                        redactions,
                        usage,
                        finish_reason,
                        None,
                        self.return_token_usage,
                    );
                    self.pending.push_back(RelayEvent::Done(done));
                }
                Some(Err(err)) => {
                    let mut record = self.record.take()?;
                    record.base.upstream_latency_ms = Some(millis(self.upstream_started));
                    let err = provider_error(err, &self.prepared.endpoint_ref);
                    record.finish_error(&err);
                    self.pending.push_back(RelayEvent::Failed(err));
                }
                None => {
                    let mut record = self.record.take()?;
                    let err = ApiError::UpstreamError(format!(
                        "the model endpoint {} ended its stream without finishing",
                        self.prepared.endpoint_ref
                    ));
                    record.finish_error(&err);
                    self.pending.push_back(RelayEvent::Failed(err));
                }
            }
        }
    }

    /// Passes a chunk through the stream guardrails (PII first, then profanity).
    fn filter(&mut self, text: &str) -> String {
        let redacted = match &mut self.redactor {
            Some(r) => r.push(text),
            None => text.to_owned(),
        };
        match &mut self.masker {
            Some(m) => m.push(&redacted),
            None => redacted,
        }
    }

    /// What the guardrails held back, once the upstream is done, and the output redaction
    /// counts of the whole stream.
    fn flush(&mut self) -> (String, BTreeMap<String, u32>) {
        let mut redactions = BTreeMap::new();
        let tail = match self.redactor.take() {
            Some(r) => {
                let rest = r.finish_redacted();
                for (label, n) in rest.counts {
                    redactions.insert(label.to_owned(), n);
                }
                rest.text
            }
            None => String::new(),
        };
        let tail = match self.masker.take() {
            Some(mut m) => {
                let mut out = m.push(&tail);
                let rest = m.finish_masked();
                out.push_str(&rest.text);
                if rest.count > 0 {
                    redactions.insert("PROFANITY".to_owned(), rest.count);
                }
                out
            }
            None => tail,
        };
        (tail, redactions)
    }
}

fn json_event<T: serde::Serialize>(name: &str, value: &T) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(value).unwrap_or_default())
}

fn error_event(err: &ApiError) -> Event {
    let body = serde_json::json!({
        "status": err.status().as_u16(),
        "code": err.code(),
        "message": err.to_string(),
    });
    Event::default().event("error").data(body.to_string())
}

fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// The record of one invocation in progress: finished exactly once, or, if dropped unfinished
/// (the client disconnected mid-stream), left as an ERROR with code `invocation.aborted`.
struct RecordDraft {
    sink: Arc<TelemetrySink>,
    metrics: Arc<crate::metrics::GatewayMetrics>,
    prompt_name: String,
    base: InvocationRecord,
    started: Instant,
}

impl RecordDraft {
    fn finish(&mut self, status: InvocationStatus, error_code: Option<String>) -> InvocationRecord {
        self.base.status = status;
        self.base.error_code = error_code;
        self.base.latency_ms = millis(self.started);
        let record = self.base.clone();
        self.metrics.observe(&self.prompt_name, &record);
        self.sink.emit(record.clone());
        // Mark as emitted so Drop does not emit again.
        self.base.id.clear();
        record
    }

    fn finish_error(&mut self, err: &ApiError) {
        let status = match err {
            ApiError::GuardrailBlocked { .. } => InvocationStatus::Blocked,
            _ => InvocationStatus::Error,
        };
        self.finish(status, Some(err.code()));
    }
}

impl Drop for RecordDraft {
    fn drop(&mut self) {
        if !self.base.id.is_empty() {
            self.finish(
                InvocationStatus::Error,
                Some("invocation.aborted".to_owned()),
            );
        }
    }
}
