//! The invocation use case, the one pipeline behind both front doors (`POST …/invocations` and
//! `/v1/chat/completions`): the version that serves and the input guardrails and context
//! fitting (planned by `promptgate_core::invocation`), the model-based moderation, the
//! provider call within the endpoint's call slots, the output guardrails, and exactly one
//! telemetry record. It knows nothing of HTTP: each front door converts its wire request into
//! an [`Invocation`] and the [`Invoked`] result (or [`InvokeError`]) into its own wire format.

mod fallback;
mod record;
mod relay;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use promptgate_core::ToolCall;
use promptgate_core::guardrails::{pii, profanity};
use promptgate_core::invocation::{
    FallbackAttempt, FittedContext, InputDraft, InputPlan, InputRefusal, InvocationRecord,
    InvocationStatus, NoVersion, Pin, plan_input, serving_version,
};
use promptgate_core::prompt::TemplateRole;
use promptgate_core::violation::quoted;
use promptgate_core::{
    BlockedCategory, ModelEndpoint, Prompt, PromptStatus, PromptVersion, Scope, ScopeSet,
    VersionSettings, Violation, ViolationCode,
};
use promptgate_providers::{ChatMessage, ChatRequest, ProviderError, Role, Usage};
use promptgate_store::{PromptFilter, StoreError};
use promptgate_variables::{OutputCheck, OutputVerdict};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::cache::CachedPrompt;
use crate::state::AppState;
use crate::telemetry::NotStored;
use crate::templates::FillError;
use crate::tools::{ServedTools, guard_arguments};

use record::RecordDraft;
pub use relay::{Relay, RelayEvent};

/// Which prompt an invocation runs.
#[derive(Debug)]
pub enum PromptRef {
    /// The id as the caller sent it (`…/invocations`): looked up here, and an id that is no
    /// UUID is simply not found.
    Id(String),
    /// Already looked up by the front door: `/v1` finds the prompt by name and needs its
    /// policy to translate the request, and looking it up twice would cost a second lock.
    Found(Arc<CachedPrompt>),
}

/// Who invokes, moved out of the caller's proof so that the record takes the id without a
/// copy.
#[derive(Debug)]
pub struct Invoker {
    /// The OAuth client id the record names.
    pub client_id: String,
    /// The token's scopes: an unknown caller-chosen endpoint is answered with the catalogue
    /// only for callers who may read prompts (as `…/model-endpoints`).
    pub scopes: ScopeSet,
    /// The API key the caller used, which the record names (never the key).
    pub api_key_id: Option<String>,
}

/// When the request arrived: the record's timestamp, and the start of its latency.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// The monotonic start.
    pub started: Instant,
    /// The wall-clock time.
    pub at: OffsetDateTime,
}

impl Received {
    /// Now; taken first thing in a handler, so the latency covers the request's checks too.
    pub fn now() -> Self {
        Received {
            started: Instant::now(),
            at: crate::clock::now(),
        }
    }
}

/// A checked invocation request, from either front door.
#[derive(Debug)]
pub struct Invocation {
    /// The prompt.
    pub prompt: PromptRef,
    /// The user's input.
    pub user_input: String,
    /// The sticky-routing key, recorded with the invocation.
    pub session_id: Option<String>,
    /// The version or label the caller named, or none to let the traffic split choose.
    pub pin: PinRequest,
    /// The template's variables as sent (checked against the version's schema here).
    pub variables: Option<serde_json::Map<String, serde_json::Value>>,
    /// Earlier turns, oldest first: user and assistant text, assistant turns that called
    /// tools, and `tool` turns with their results.
    pub turns: Vec<ChatMessage>,
    /// Whether the answer is relayed as a stream.
    pub stream: bool,
    /// Whether the answer carries its token usage.
    pub return_token_usage: bool,
    /// The caller's maximum of output tokens.
    pub max_output_tokens: Option<u32>,
    /// The caller's metadata, recorded with the invocation.
    pub metadata: BTreeMap<String, String>,
    /// What the OpenAI-compatible front door lets a caller add or change.
    pub overrides: CallerOverrides,
    /// The caller's own tools and output format (`/v1`), already checked; the version's win
    /// where it sets them.
    pub caller_tools: Option<ServedTools>,
    /// The caller's `parallel_tool_calls` (`/v1`).
    pub parallel_tool_calls: Option<bool>,
}

/// What the caller named to choose the version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PinRequest {
    /// Nothing: the traffic split decides.
    #[default]
    None,
    /// A version, as sent.
    Version(String),
    /// A label, as sent.
    Label(String),
}

impl PinRequest {
    fn as_pin(&self) -> Pin<'_> {
        match self {
            PinRequest::None => Pin::None,
            PinRequest::Version(version) => Pin::Version(version),
            PinRequest::Label(label) => Pin::Label(label),
        }
    }

    /// The label named, which the record keeps.
    fn label(&self) -> Option<String> {
        match self {
            PinRequest::Label(label) => Some(label.clone()),
            _ => None,
        }
    }
}

/// What a caller of `/v1/chat/completions` adds to, or changes in, the version's settings,
/// already filtered by the prompt's policy. Empty for `…/invocations`.
#[derive(Debug, Default)]
pub struct CallerOverrides {
    /// The caller's own system text, placed after the version's system prompt.
    pub system_suffix: Option<String>,
    /// A temperature instead of the version's.
    pub temperature: Option<f64>,
    /// A model endpoint instead of the version's.
    pub model_endpoint: Option<String>,
}

/// The answer to an invocation (for a stream, its end: everything but the output).
#[derive(Debug)]
pub struct Answer {
    /// The invocation's id (`inv-…`), the record's.
    pub response_id: String,
    /// The prompt.
    pub prompt_id: Uuid,
    /// The version that served.
    pub version: String,
    /// The model, as the provider reported it (or the endpoint's).
    pub model: String,
    /// The output after the output guardrails; none at the end of a stream.
    pub output: Option<String>,
    /// The token usage, when the caller asked for it.
    pub token_usage: Option<Usage>,
    /// The provider's normalised finish reason.
    pub finish_reason: String,
    /// Time in the gateway.
    pub latency_ms: f64,
    /// PII redactions in the input, by label.
    pub input_redactions: BTreeMap<String, u32>,
    /// PII redactions and masked profanity (`PROFANITY`) in the output.
    pub output_redactions: BTreeMap<String, u32>,
    /// Few-shot examples dropped to fit the context window.
    pub dropped_examples: u32,
    /// Earlier turns dropped to fit the context window.
    pub dropped_turns: u32,
    /// Tokens of the kept few-shot examples.
    pub few_shot_tokens: u32,
    /// The tools the model called, their arguments through the output guardrails.
    pub tool_calls: Vec<ToolCall>,
    /// The check of the output against a JSON output format; none without one (or when the
    /// model called tools instead of answering).
    pub output_check: Option<OutputVerdict>,
    /// The model endpoint that served.
    pub endpoint_ref: String,
    /// The failed attempts before it; none when the version has no fallback endpoints.
    pub fallback: Option<Vec<FallbackAttempt>>,
}

/// What an invocation produced: the whole answer, or a relay of the provider's stream.
// Made once per request and moved straight into the response: boxing either variant would
// only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Reply {
    /// The answer, with its output.
    Complete(Answer),
    /// The stream, through the output guardrails.
    Stream(Relay),
}

/// An invocation under way or done, and the version that serves it.
pub struct Invoked {
    /// The version label.
    pub version: String,
    /// The model the serving endpoint names (before the provider reports its own).
    pub model: String,
    /// The model endpoint that serves (the version's, or a fallback).
    pub endpoint_ref: String,
    /// The invocation's id.
    pub response_id: String,
    /// The answer.
    pub reply: Reply,
}

/// Why an invocation was not served. Each variant is one answer of the contract; its text is
/// the answer's message.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// No active prompt with that id, an archived prompt, or an unknown pinned version (404).
    #[error("{0}")]
    NotFound(String),
    /// The prompt has no label of the name the caller gave (404 `label.not.found`).
    #[error("{0}")]
    LabelNotFound(String),
    /// What only the serving version can judge: a caller-chosen model endpoint the gateway
    /// lacks, or a context over the model's window (400).
    #[error("invalid request")]
    Invalid(Vec<Violation>),
    /// The input touches a blocked category, by the lexicon or the moderation endpoint (422).
    #[error("the request was refused: it matches the blocked category {}", .0.as_str())]
    Blocked(BlockedCategory),
    /// The model endpoint has its `max_concurrent_calls` in flight (429).
    #[error("the model endpoint {endpoint} has {limit} calls in flight")]
    Busy {
        /// The endpoint's `ref`.
        endpoint: String,
        /// Its `max_concurrent_calls`.
        limit: u32,
    },
    /// The provider or the moderation endpoint failed, or the version's model endpoint is not
    /// configured on this gateway (502).
    #[error("{0}")]
    Upstream(String),
    /// The provider did not answer in time after the gateway's retries (504).
    #[error("{0}")]
    UpstreamTimeout(String),
    /// Under `ack-after-store`, the record could not be stored, so the answer is withheld (503).
    #[error("{0}")]
    NotStored(String),
    /// Reading the prompt failed.
    #[error("reading the prompt failed: {0}")]
    Store(#[from] StoreError),
    /// A bug (500): the text is logged, never sent.
    #[error("{0}")]
    Internal(String),
}

impl InvokeError {
    /// The contract's error code of this error's answer, as the telemetry record keeps it.
    pub fn code(&self) -> &'static str {
        match self {
            InvokeError::NotFound(_) | InvokeError::Store(StoreError::NotFound) => "not.found",
            InvokeError::LabelNotFound(_) => "label.not.found",
            InvokeError::Invalid(violations) => match violations.split_first() {
                Some((first, rest)) if rest.iter().all(|v| v.code == first.code) => {
                    first.code.as_str()
                }
                _ => ViolationCode::InvalidValue.as_str(),
            },
            InvokeError::Blocked(_) => "guardrail.blocked",
            InvokeError::Busy { .. } => "too.many.requests",
            InvokeError::Upstream(_) => "upstream.error",
            InvokeError::UpstreamTimeout(_) => "upstream.timeout",
            InvokeError::NotStored(_) | InvokeError::Store(StoreError::Unavailable(_)) => {
                "service.unavailable"
            }
            InvokeError::Store(_) | InvokeError::Internal(_) => "internal.server.error",
        }
    }
}

/// Runs one invocation: version choice, input guardrails, context fitting, moderation, the
/// provider call and the telemetry record. A complete answer returns once its record is
/// queued (or, under `ack-after-store`, committed); a stream returns as soon as the provider
/// accepted the call, and its [`Relay`] finishes the record.
pub async fn invoke(
    state: &AppState,
    invoker: Invoker,
    request: Invocation,
    received: Received,
) -> Result<Invoked, InvokeError> {
    let looked_up;
    let cached: &CachedPrompt = match &request.prompt {
        PromptRef::Found(cached) => cached,
        PromptRef::Id(id) => {
            let not_found = || InvokeError::NotFound(format!("no active prompt with id {id}"));
            let prompt_id = Uuid::parse_str(id).map_err(|_| not_found())?;
            looked_up = state.prompts.get(prompt_id).await?.ok_or_else(not_found)?;
            &looked_up
        }
    };
    run(state, invoker, cached, &request, received).await
}

/// The active prompt named `name`, if it has the `pinned` version (when one is pinned): what
/// `/v1` serves as the model `prompt:NAME[@VERSION]`. `None` when there is no such model.
pub async fn model_prompt(
    state: &AppState,
    name: &str,
    pinned: Option<&str>,
) -> Result<Option<Arc<CachedPrompt>>, InvokeError> {
    let Some(prompt_id) = state.prompts.id_by_name(name).await? else {
        return Ok(None);
    };
    let found = state.prompts.get(prompt_id).await?.filter(|cached| {
        cached.prompt.status == PromptStatus::Active
            && pinned.is_none_or(|version| {
                version
                    .parse()
                    .is_ok_and(|label| cached.versions.contains_key(&label))
            })
    });
    Ok(found)
}

/// Every active prompt, in id order, read `page_size` at a time and each mapped by `each` as
/// its page arrives (so no second list of prompts is built): what `/v1/models` lists.
pub async fn active_prompts<T>(
    state: &AppState,
    page_size: u32,
    mut each: impl FnMut(Prompt) -> T,
) -> Result<Vec<T>, InvokeError> {
    let filter = PromptFilter {
        name: None,
        status: Some(PromptStatus::Active),
    };
    let mut data = Vec::new();
    let mut after = None;
    loop {
        let page = state.store.list_prompts(&filter, after, page_size).await?;
        let full = page.len() == page_size as usize;
        after = page.last().map(|p| p.id);
        data.extend(page.into_iter().map(&mut each));
        if !full {
            break;
        }
    }
    Ok(data)
}

async fn run(
    state: &AppState,
    invoker: Invoker,
    cached: &CachedPrompt,
    request: &Invocation,
    received: Received,
) -> Result<Invoked, InvokeError> {
    let prompt_id = cached.prompt.id;
    let version = serving_version(
        &cached.prompt,
        &cached.versions,
        request.pin.as_pin(),
        request.session_id.as_deref(),
        rand::random::<f64>,
    )
    .map_err(|refusal| match refusal {
        NoVersion::Archived => InvokeError::NotFound(format!(
            "prompt {prompt_id} is archived and serves no invocations"
        )),
        NoVersion::UnknownPin => InvokeError::NotFound(format!(
            "prompt {prompt_id} has no version {}",
            quoted(match &request.pin {
                PinRequest::Version(version) => version,
                _ => "",
            })
        )),
        NoVersion::UnknownLabel => InvokeError::LabelNotFound(format!(
            "prompt {prompt_id} has no label {}",
            quoted(match &request.pin {
                PinRequest::Label(label) => label,
                _ => "",
            })
        )),
        NoVersion::Missing(label) => InvokeError::Internal(format!(
            "prompt {prompt_id} routes to missing version {label}"
        )),
    })?;
    let label = &version.version;
    let endpoint = serving_endpoint(state, &invoker, request, version)?;

    let mut record = RecordDraft {
        sink: state.telemetry.clone(),
        metrics: state.metrics.clone(),
        prompt_name: cached.prompt.name.clone(),
        base: InvocationRecord {
            id: format!("inv-{}", Uuid::now_v7()),
            timestamp: received.at,
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
            client_id: invoker.client_id,
            metadata: request.metadata.clone(),
            label: request.pin.label(),
            variable_names: variable_names(request.variables.as_ref()),
            schema_valid: None,
            tool_call_count: 0,
            api_key_id: invoker.api_key_id,
            cost_usd: None,
            endpoint_ref: endpoint.reference.clone(),
            fallback_attempts: Vec::new(),
        },
        started: received.started,
        prices: endpoint.prices,
    };
    let response_id = record.base.id.clone();
    let tools = served_tools(cached.tools.get(label), request);
    let staged = match prepare(state, request, cached, version, tools, endpoint) {
        Ok((staged, first)) => moderate(state, &first, version)
            .await
            .map(|()| (staged, first)),
        Err(err) => Err(err),
    };
    let (staged, first) = match staged {
        Ok(staged) => staged,
        Err(err) => {
            record.finish_error(&err);
            return Err(err);
        }
    };
    let chain = fallback::Chain::new(state, request, version, endpoint, staged, first);
    let (reply, serving) = if request.stream {
        start_stream(state, chain, request.return_token_usage, record).await?
    } else {
        complete(state, chain, request.return_token_usage, &mut record).await?
    };
    // `[telemetry] durability = "ack-after-store"`: a complete answer waits for its record's
    // commit (503 when it fails); a stream's `done` waits in `Relay` (telemetry.rs).
    if matches!(reply, Reply::Complete(_)) {
        state
            .telemetry
            .stored(&response_id)
            .await
            .map_err(|NotStored(message)| InvokeError::NotStored(message))?;
    }
    Ok(Invoked {
        version: label.to_string(),
        model: serving.model.clone(),
        endpoint_ref: serving.reference.clone(),
        response_id,
        reply,
    })
}

/// The tools and output format the call sends: the version's where it sets them, else the
/// caller's (`/v1`); none for a version and caller without any.
fn served_tools(
    version: Option<&Arc<ServedTools>>,
    request: &Invocation,
) -> Option<Arc<ServedTools>> {
    match (version, &request.caller_tools) {
        (None, None) => None,
        (Some(own), None) => Some(own.clone()),
        (own, Some(caller)) => Some(Arc::new(ServedTools::merged(own.map(Arc::as_ref), caller))),
    }
}

/// The names of the variables the caller sent, sorted (telemetry keeps names, never values).
fn variable_names(variables: Option<&serde_json::Map<String, serde_json::Value>>) -> Vec<String> {
    let mut names: Vec<String> = variables
        .map(|vars| vars.keys().cloned().collect())
        .unwrap_or_default();
    names.sort_unstable();
    names
}

/// The model endpoint that serves: the caller's choice (`/v1`, when its prompt allows it), or
/// the version's.
fn serving_endpoint<'a>(
    state: &'a AppState,
    invoker: &Invoker,
    request: &Invocation,
    version: &PromptVersion,
) -> Result<&'a ModelEndpoint, InvokeError> {
    let endpoint_ref = request
        .overrides
        .model_endpoint
        .as_deref()
        .unwrap_or(&version.settings.model_endpoint_ref);
    match state.catalogue.get(endpoint_ref) {
        Some(endpoint) => Ok(endpoint),
        None if request.overrides.model_endpoint.is_some() => {
            // The list of endpoints is for callers who may read prompts (as `…/model-endpoints`).
            let known = if invoker.scopes.contains(Scope::PromptRead) {
                format!("; known: {}", state.catalogue.refs_list())
            } else {
                String::new()
            };
            Err(InvokeError::Invalid(vec![Violation::invalid(
                "model_endpoint",
                format!(
                    "model_endpoint {} is not configured on this gateway{known}",
                    quoted(endpoint_ref)
                ),
            )]))
        }
        None => Err(InvokeError::Upstream(format!(
            "model endpoint {endpoint_ref} of version {} is not configured on this gateway",
            version.version
        ))),
    }
}

/// The provider request for one model endpoint and what the guardrails and the fitting did.
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
    /// The check of a JSON output format, if the call has one.
    output_check: Option<Arc<OutputCheck>>,
    /// Whether the version has fallback endpoints (the answer then says whether one served).
    has_fallbacks: bool,
}

/// What is done once per invocation whichever endpoint serves: the variables rendered and the
/// input guardrails applied. Each endpoint's request is fitted from it ([`Staged::fit`]).
struct Staged {
    /// The rendered settings, when the version has variables; else the version's are used.
    rendered: Option<VersionSettings>,
    /// The rendered template turns.
    template_turns: Vec<promptgate_core::prompt::TemplateMessage>,
    /// The redacted texts, with the variables' redactions counted in.
    plan: InputPlan,
    /// The tools and output format sent.
    tools: Arc<ServedTools>,
}

fn prepare(
    state: &AppState,
    request: &Invocation,
    cached: &CachedPrompt,
    version: &PromptVersion,
    tools: Option<Arc<ServedTools>>,
    endpoint: &ModelEndpoint,
) -> Result<(Staged, Prepared), InvokeError> {
    let template = cached.templates.get(&version.version);
    // The variables first (shared/API.md: before anything else happens). A constant version
    // called without variables skips this and serves its stored texts.
    let filled = match template {
        Some(t)
            if !t.is_constant() || request.variables.as_ref().is_some_and(|v| !v.is_empty()) =>
        {
            let count = |text: &str| state.counter.count(version.tokenizer, text);
            // The budget holds the version's tool definitions too (systemPromptTokens does).
            let reserved = cached.tool_tokens(&version.version, &state.counter, version.tokenizer);
            Some(
                t.fill_reserving(
                    &version.settings,
                    request.variables.as_ref(),
                    reserved,
                    count,
                )
                .map_err(|err| match err {
                    FillError::Invalid(violations) => InvokeError::Invalid(violations),
                    FillError::Blocked(category) => InvokeError::Blocked(category),
                })?,
            )
        }
        _ => None,
    };
    let (rendered, template_turns, variable_redactions) = match filled {
        None => (None, Vec::new(), BTreeMap::new()),
        Some(filled) => (
            Some(VersionSettings {
                model_endpoint_ref: version.settings.model_endpoint_ref.clone(),
                system_prompt: filled.system_prompt,
                temperature: version.settings.temperature,
                safety_guardrails: version.settings.safety_guardrails.clone(),
                few_shot_examples: filled.examples,
                template_messages: Vec::new(),
                variables_schema: None,
                tool_settings: Default::default(),
                fallback_endpoint_refs: Vec::new(),
            }),
            filled.messages,
            filled.redactions,
        ),
    };
    let tools = tools.unwrap_or_default();
    let window = window_left(state, &template_turns, &tools, endpoint);
    let mut plan = plan_input(
        &state.counter,
        InputDraft {
            settings: rendered.as_ref().unwrap_or(&version.settings),
            context_window: window,
            tokenizer: endpoint.tokenizer,
            user_input: &request.user_input,
            turns: request.turns.iter().map(|turn| turn.content.as_str()),
            caller_system: request.overrides.system_suffix.as_deref(),
            max_output_tokens: request.max_output_tokens,
        },
    )
    .map_err(|refusal| match refusal {
        InputRefusal::Blocked(category) => InvokeError::Blocked(category),
        InputRefusal::TooLarge(e) => too_large(&e, endpoint),
    })?;
    for (label, n) in variable_redactions {
        *plan.input_redactions.entry(label).or_default() += n;
    }
    let staged = Staged {
        rendered,
        template_turns,
        plan,
        tools,
    };
    let first = staged.assemble(request, version, endpoint, staged.plan.fitted.clone());
    Ok((staged, first))
}

/// The context window an endpoint leaves for the examples and the conversation: the
/// template's turns and the tool definitions are part of the prompt, never dropped.
fn window_left(
    state: &AppState,
    template_turns: &[promptgate_core::prompt::TemplateMessage],
    tools: &ServedTools,
    endpoint: &ModelEndpoint,
) -> u32 {
    let template_tokens: usize = template_turns
        .iter()
        .map(|m| state.counter.count(endpoint.tokenizer, &m.content))
        .sum::<usize>()
        + tools.tokens(&state.counter, endpoint.tokenizer);
    endpoint
        .context_window
        .saturating_sub(u32::try_from(template_tokens).unwrap_or(u32::MAX))
}

/// The refusal of a context that does not fit `endpoint` even with every example and earlier
/// turn dropped.
fn too_large(
    e: &promptgate_core::invocation::ContextTooLarge,
    endpoint: &ModelEndpoint,
) -> InvokeError {
    InvokeError::Invalid(vec![Violation::with_params(
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
}

impl Staged {
    /// The request for a fallback `endpoint`: the same redacted texts fitted to its window
    /// with its tokenizer (no variable is rendered and no guardrail runs again).
    fn fit(
        &self,
        state: &AppState,
        request: &Invocation,
        version: &PromptVersion,
        endpoint: &ModelEndpoint,
    ) -> Result<Prepared, InvokeError> {
        let window = window_left(state, &self.template_turns, &self.tools, endpoint);
        let fitted = self
            .plan
            .refit(
                &state.counter,
                self.rendered.as_ref().unwrap_or(&version.settings),
                window,
                endpoint.tokenizer,
                request.max_output_tokens,
            )
            .map_err(|e| too_large(&e, endpoint))?;
        Ok(self.assemble(request, version, endpoint, fitted))
    }

    /// The provider request for `endpoint` from the fitted context.
    fn assemble(
        &self,
        request: &Invocation,
        version: &PromptVersion,
        endpoint: &ModelEndpoint,
        fitted: FittedContext,
    ) -> Prepared {
        let mut input_redactions = self.plan.input_redactions.clone();
        let redact_output = self.plan.redact_output;
        let mut messages: Vec<ChatMessage> = self
            .template_turns
            .iter()
            .map(|turn| {
                let role = match turn.role {
                    TemplateRole::User => Role::User,
                    TemplateRole::Assistant => Role::Assistant,
                };
                ChatMessage::text(role, turn.content.clone())
            })
            .collect();
        // A tool result whose call was dropped would be refused by the provider: it goes too.
        let orphans = request
            .turns
            .iter()
            .skip(fitted.dropped_turns)
            .take_while(|turn| turn.role == Role::Tool)
            .count();
        let dropped_turns = fitted.dropped_turns + orphans;
        messages.extend(
            request
                .turns
                .iter()
                .zip(&self.plan.turns)
                .skip(dropped_turns)
                .map(|(turn, content)| ChatMessage {
                    role: turn.role,
                    content: content.clone(),
                    // Earlier calls' arguments go back to the provider: caller input like the
                    // rest.
                    tool_calls: turn
                        .tool_calls
                        .iter()
                        .map(|call| ToolCall {
                            arguments: guard_arguments(
                                &call.arguments,
                                redact_output,
                                false,
                                &mut input_redactions,
                            ),
                            ..call.clone()
                        })
                        .collect(),
                    tool_call_id: turn.tool_call_id.clone(),
                }),
        );
        // After tool results the input may be empty: the results are then the last turn.
        let after_tools = messages.last().is_some_and(|m| m.role == Role::Tool);
        if !(self.plan.user_input.is_empty() && after_tools) {
            messages.push(ChatMessage::text(Role::User, self.plan.user_input.clone()));
        }
        let tools = &self.tools;
        Prepared {
            caller_system: self.plan.caller_system.clone(),
            chat: ChatRequest {
                system: fitted.system,
                messages,
                temperature: request
                    .overrides
                    .temperature
                    .unwrap_or(version.settings.temperature),
                max_output_tokens: request.max_output_tokens,
                tools: tools.tools.clone(),
                tool_choice: tools.tool_choice.clone(),
                parallel_tool_calls: request.parallel_tool_calls,
                response_format: tools.response_format.clone(),
            },
            endpoint_ref: endpoint.reference.clone(),
            input_redactions,
            dropped_examples: u32::try_from(fitted.dropped_examples).unwrap_or(u32::MAX),
            dropped_turns: u32::try_from(dropped_turns).unwrap_or(u32::MAX),
            few_shot_tokens: u32::try_from(fitted.few_shot_tokens).unwrap_or(u32::MAX),
            redact_output,
            mask_output: self.plan.mask_output,
            output_check: tools.output_check.clone(),
            has_fallbacks: !version.settings.fallback_endpoint_refs.is_empty()
                && request.overrides.model_endpoint.is_none(),
        }
    }
}

/// The model-based check for blocked categories, when configured and the version blocks any:
/// it sees the text after PII redaction, as the provider would.
async fn moderate(
    state: &AppState,
    prepared: &Prepared,
    version: &PromptVersion,
) -> Result<(), InvokeError> {
    let blocked = &version.settings.safety_guardrails.blocked_categories;
    let Some(check) = state.moderation.as_ref().filter(|_| !blocked.is_empty()) else {
        return Ok(());
    };
    let inputs: Vec<&str> = prepared
        .caller_system
        .iter()
        .map(String::as_str)
        .chain(prepared.chat.messages.iter().map(|m| m.content.as_str()))
        .collect();
    match check.client.categories(&inputs).await {
        Ok(found) => match found.into_iter().find(|c| blocked.contains(c)) {
            Some(category) => Err(InvokeError::Blocked(category)),
            None => Ok(()),
        },
        Err(err) if check.fail_open => {
            // The line keeps the target it had before the engine layer, so that `RUST_LOG`
            // filters and alerts written against it still match.
            tracing::warn!(target: "promptgate_server::routes::invocations", error = ?err.to_string(), "the moderation endpoint failed; serving anyway (fail_open)");
            Ok(())
        }
        Err(err) => Err(InvokeError::Upstream(format!(
            "the moderation endpoint failed, so the request was not served: {err}"
        ))),
    }
}

fn provider_error(err: ProviderError, endpoint_ref: &str) -> InvokeError {
    match err {
        ProviderError::Timeout => InvokeError::UpstreamTimeout(format!(
            "the model endpoint {endpoint_ref} did not answer in time after the gateway's retries"
        )),
        ProviderError::MissingKey { variable } => InvokeError::Upstream(format!(
            "the model endpoint {endpoint_ref} needs its key in the gateway's environment variable {variable}"
        )),
        ProviderError::Upstream { status, message } => InvokeError::Upstream(format!(
            "the model endpoint {endpoint_ref} failed{}: {message}",
            status
                .map(|s| format!(" with status {s}"))
                .unwrap_or_default()
        )),
        ProviderError::Invalid(message) => InvokeError::Upstream(format!(
            "the model endpoint {endpoint_ref} answered something the gateway cannot read: {message}"
        )),
    }
}

/// What the model produced, through the output guardrails and the output check.
struct Produced {
    /// The output; none at the end of a stream (it was relayed).
    output: Option<String>,
    output_redactions: BTreeMap<String, u32>,
    usage: Usage,
    finish_reason: String,
    tool_calls: Vec<ToolCall>,
    output_check: Option<OutputVerdict>,
}

impl Produced {
    /// Writes what the record keeps of it: whether the output matched, how many calls.
    fn record_into(&self, record: &mut InvocationRecord) {
        record.prompt_tokens = self.usage.prompt_tokens;
        record.completion_tokens = self.usage.completion_tokens;
        record.schema_valid = self.output_check.as_ref().map(OutputVerdict::is_valid);
        record.tool_call_count = u32::try_from(self.tool_calls.len()).unwrap_or(u32::MAX);
    }
}

/// The check of the final output against the call's JSON output format: none without one, and
/// none when the model called tools instead of answering (there is no final output yet).
fn check_output(
    prepared: &Prepared,
    output: &str,
    tool_calls: &[ToolCall],
) -> Option<OutputVerdict> {
    let check = prepared.output_check.as_ref()?;
    tool_calls.is_empty().then(|| check.check(output))
}

/// The answer from the finished record (whose id, version and model move into it) and what
/// the guardrails and the fitting did.
fn answer(
    finished: InvocationRecord,
    prepared: &Prepared,
    produced: Produced,
    return_token_usage: bool,
) -> Answer {
    Answer {
        response_id: finished.id,
        prompt_id: finished.prompt_id,
        version: finished.version,
        model: finished.model,
        output: produced.output,
        token_usage: return_token_usage.then_some(produced.usage),
        finish_reason: produced.finish_reason,
        latency_ms: finished.latency_ms,
        input_redactions: prepared.input_redactions.clone(),
        output_redactions: produced.output_redactions,
        dropped_examples: prepared.dropped_examples,
        dropped_turns: prepared.dropped_turns,
        few_shot_tokens: prepared.few_shot_tokens,
        tool_calls: produced.tool_calls,
        output_check: produced.output_check,
        endpoint_ref: finished.endpoint_ref,
        fallback: prepared.has_fallbacks.then_some(finished.fallback_attempts),
    }
}

async fn complete<'a>(
    state: &AppState,
    mut chain: fallback::Chain<'a>,
    return_token_usage: bool,
    record: &mut RecordDraft,
) -> Result<(Reply, &'a ModelEndpoint), InvokeError> {
    let response = loop {
        match fallback::complete_once(state, &chain.prepared, record).await {
            Ok(response) => break response,
            Err(failure) => {
                if let Err(err) = chain.next(failure, record) {
                    record.finish_error(&err);
                    return Err(err);
                }
            }
        }
    };
    let (prepared, serving) = chain.finish();
    let prepared = &prepared;
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
        record.base.model = response.model;
    }
    let tool_calls: Vec<ToolCall> = response
        .tool_calls
        .into_iter()
        .map(|call| ToolCall {
            arguments: guard_arguments(
                &call.arguments,
                prepared.redact_output,
                prepared.mask_output,
                &mut output_redactions,
            ),
            ..call
        })
        .collect();
    let produced = Produced {
        output_check: check_output(prepared, &output, &tool_calls),
        output: Some(output),
        output_redactions,
        usage: response.usage,
        finish_reason: response.finish_reason,
        tool_calls,
    };
    produced.record_into(&mut record.base);
    let finished = record.finish(InvocationStatus::Success, None);
    let answer = answer(finished, prepared, produced, return_token_usage);
    Ok((Reply::Complete(answer), serving))
}

async fn start_stream<'a>(
    state: &AppState,
    mut chain: fallback::Chain<'a>,
    return_token_usage: bool,
    mut record: RecordDraft,
) -> Result<(Reply, &'a ModelEndpoint), InvokeError> {
    let opened = loop {
        match fallback::stream_once(state, &chain.prepared).await {
            Ok(opened) => break opened,
            Err(failure) => {
                if let Err(err) = chain.next(failure, &mut record) {
                    record.finish_error(&err);
                    return Err(err);
                }
            }
        }
    };
    let (prepared, serving) = chain.finish();
    let relay = Relay::new(
        opened.upstream,
        prepared,
        record,
        opened.upstream_started,
        return_token_usage,
        opened.slot,
    );
    Ok((Reply::Stream(relay), serving))
}

fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
