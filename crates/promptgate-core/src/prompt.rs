//! Prompts and their immutable versions, and the validation of what clients send for them.
//!
//! Validation takes a *draft* (every field optional, as decoded from the wire) and either
//! returns the checked value or every [`Violation`] at once.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::endpoint::{EndpointCatalogue, ModelEndpoint};
use crate::template::{Placeholder, SchemaCheck, Template};
use crate::tokenizer::{TokenCounter, TokenizerKind};
use crate::tools::{
    ResponseFormat, ResponseFormatDraft, ToolChoiceDraft, ToolDraft, ToolFieldNames, ToolSettings,
    check_tool_settings,
};
use crate::traffic::TrafficSplit;
use crate::version::VersionLabel;
use crate::violation::{Violation, ViolationCode};

/// The longest prompt name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The ceiling on a system prompt's length, in characters (a bound on work before counting
/// tokens). Servers enforce their own, lower, configurable limit first (`[limits]`).
pub const MAX_SYSTEM_PROMPT_CHARS: usize = 1_000_000;
/// The ceiling on the few-shot examples one version may hold (servers configure a lower one).
pub const MAX_FEW_SHOT_EXAMPLES: usize = 1_000;
/// The ceiling on one few-shot input or output, in characters (servers configure a lower one).
pub const MAX_EXAMPLE_CHARS: usize = 200_000;
/// The ceiling on a version's template messages (shared/API.md: at most 100).
pub const MAX_TEMPLATE_MESSAGES: usize = 100;
/// The temperature used when a new prompt does not give one (the providers' own default).
pub const DEFAULT_TEMPERATURE: f64 = 1.0;

/// Whether a prompt serves invocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptStatus {
    /// Serves invocations.
    Active,
    /// Kept with its history but serves nothing.
    Archived,
}

impl PromptStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PromptStatus::Active => "ACTIVE",
            PromptStatus::Archived => "ARCHIVED",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ACTIVE" => Some(PromptStatus::Active),
            "ARCHIVED" => Some(PromptStatus::Archived),
            _ => None,
        }
    }
}

/// A content filter applied to inputs and outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentFilter {
    /// Redact personal data.
    Pii,
    /// Mask profanity in outputs.
    Profanity,
}

impl ContentFilter {
    /// Every filter.
    pub const ALL: [ContentFilter; 2] = [ContentFilter::Pii, ContentFilter::Profanity];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentFilter::Pii => "pii",
            ContentFilter::Profanity => "profanity",
        }
    }
}

/// A category of content that refuses the request outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockedCategory {
    /// Violence.
    Violence,
    /// Hate speech.
    HateSpeech,
    /// Self-harm.
    SelfHarm,
    /// Sexual content.
    Sexual,
    /// Illegal activity.
    Illegal,
}

impl BlockedCategory {
    /// Every category.
    pub const ALL: [BlockedCategory; 5] = [
        BlockedCategory::Violence,
        BlockedCategory::HateSpeech,
        BlockedCategory::SelfHarm,
        BlockedCategory::Sexual,
        BlockedCategory::Illegal,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockedCategory::Violence => "violence",
            BlockedCategory::HateSpeech => "hate_speech",
            BlockedCategory::SelfHarm => "self_harm",
            BlockedCategory::Sexual => "sexual",
            BlockedCategory::Illegal => "illegal",
        }
    }
}

/// A version's guardrails.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SafetyGuardrails {
    /// Filters to apply.
    pub content_filtering: Vec<ContentFilter>,
    /// The system prompt's token budget; none means only the context window bounds it.
    pub max_tokens: Option<u32>,
    /// Categories that refuse a request.
    pub blocked_categories: Vec<BlockedCategory>,
}

/// One worked example shown to the model before the user's input.
#[derive(Debug, Clone, PartialEq)]
pub struct FewShotExample {
    /// What the user said.
    pub input: String,
    /// What the assistant answered.
    pub output: String,
}

/// Who speaks a fixed turn of a chat template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateRole {
    /// A user turn.
    User,
    /// An assistant turn.
    Assistant,
}

impl TemplateRole {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateRole::User => "user",
            TemplateRole::Assistant => "assistant",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "user" => Some(TemplateRole::User),
            "assistant" => Some(TemplateRole::Assistant),
            _ => None,
        }
    }
}

/// One fixed turn of a chat template, sent after the system prompt (and its examples) and
/// before the caller's conversation. Its content may hold placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateMessage {
    /// Who speaks.
    pub role: TemplateRole,
    /// What is said (a template).
    pub content: String,
}

/// Everything a version fixes about generation. Two versions with equal settings are the same
/// content (a re-sent version is then a no-op).
#[derive(Debug, Clone, PartialEq)]
pub struct VersionSettings {
    /// The model endpoint's `ref`.
    pub model_endpoint_ref: String,
    /// The system prompt.
    pub system_prompt: String,
    /// Sampling temperature, in [0, 2].
    pub temperature: f64,
    /// Guardrails.
    pub safety_guardrails: SafetyGuardrails,
    /// Few-shot examples, oldest first.
    pub few_shot_examples: Vec<FewShotExample>,
    /// The chat template's fixed turns (none for a plain system prompt).
    pub template_messages: Vec<TemplateMessage>,
    /// The variables' JSON Schema as compact JSON text; none: every placeholder is a required
    /// string. Core keeps it as text (it reads no JSON); [`SchemaCheck`] interprets it.
    pub variables_schema: Option<String>,
    /// The tools the model may call, how it chooses, and the output's form (empty: none).
    pub tool_settings: ToolSettings,
    /// The endpoints tried in order when the primary fails (after its own retries) with a
    /// failure that is not the request's fault; empty: none.
    pub fallback_endpoint_refs: Vec<String>,
}

/// An immutable version of a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptVersion {
    /// The prompt it belongs to.
    pub prompt_id: Uuid,
    /// Its label.
    pub version: VersionLabel,
    /// Its settings.
    pub settings: VersionSettings,
    /// The system prompt's token count with `tokenizer`.
    pub system_prompt_tokens: u32,
    /// The tokenizer that counted.
    pub tokenizer: TokenizerKind,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// The OAuth client that created it.
    pub created_by: String,
}

/// What the OpenAI-compatible front door (`/v1/chat/completions`) does with a caller's own
/// system message: a prompt owner decides whether callers may add to the managed prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SystemMessageMode {
    /// The version's system prompt replaces the caller's system and developer messages.
    #[default]
    Replace,
    /// The version's system prompt comes first, the caller's system messages after it.
    Prepend,
}

impl SystemMessageMode {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            SystemMessageMode::Replace => "replace",
            SystemMessageMode::Prepend => "prepend",
        }
    }

    /// Parses a wire or storage name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "replace" => Some(SystemMessageMode::Replace),
            "prepend" => Some(SystemMessageMode::Prepend),
            _ => None,
        }
    }
}

/// How the OpenAI-compatible front door treats what a caller sends beside the managed prompt.
/// Per prompt (not per version) because it is the owner's policy for every version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChatCompletionsPolicy {
    /// Replace or prepend to the caller's system message.
    pub system_message: SystemMessageMode,
    /// Whether the caller's `temperature` (and model endpoint) win over the version's; when
    /// false they are ignored, and the answer says so.
    pub allow_caller_settings: bool,
}

/// A prompt: identity, status and routing. Its versions are stored beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// Stable id.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Whether it serves.
    pub status: PromptStatus,
    /// Which versions serve.
    pub traffic: TrafficSplit,
    /// The OpenAI-compatible front door's policy.
    pub chat_completions: ChatCompletionsPolicy,
    /// Named pins to versions (`production` → `1.2.0`).
    pub labels: crate::label::Labels,
    /// Bumped on every change; the ETag is derived from it.
    pub revision: i64,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
    /// The OAuth client that created it.
    pub created_by: String,
}

impl Prompt {
    /// The entity tag for `If-Match`: changes whenever the prompt or its versions change.
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.id.simple(), self.revision)
    }

    /// Whether an `If-Match` value lets a change of this prompt through: `*`, or a list that
    /// holds the current ETag, weak (`W/`) or strong. A change decided on a stale read is
    /// refused, so an editor never overwrites a change it has not seen.
    pub fn matches(&self, if_match: &str) -> bool {
        let etag = self.etag();
        if_match == "*"
            || if_match
                .split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag)
    }
}

/// `chatCompletions` as a client sent it: parts left out keep the prompt's current policy (or
/// the default, on create).
#[derive(Debug, Clone, Default)]
pub struct ChatCompletionsDraft {
    /// `systemMessage`: `replace` or `prepend`.
    pub system_message: Option<String>,
    /// `allowCallerSettings`.
    pub allow_caller_settings: Option<bool>,
}

/// A checked change of a [`ChatCompletionsPolicy`]: what was sent, parsed; parts left out keep
/// the current value. Checked once, so that an unknown mode is refused before a prompt is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatCompletionsChange {
    /// The new system-message mode, if sent.
    pub system_message: Option<SystemMessageMode>,
    /// The new caller-settings switch, if sent.
    pub allow_caller_settings: Option<bool>,
}

impl ChatCompletionsDraft {
    /// Parses the mode; a violation names an unknown one.
    pub fn check(&self) -> Result<ChatCompletionsChange, Violation> {
        let system_message = match self.system_message.as_deref() {
            None => None,
            Some(text) => Some(SystemMessageMode::parse(text).ok_or_else(|| {
                Violation::invalid(
                    "chatCompletions.systemMessage",
                    format!(
                        "systemMessage is {}; use replace or prepend",
                        crate::violation::quoted(text)
                    ),
                )
            })?),
        };
        Ok(ChatCompletionsChange {
            system_message,
            allow_caller_settings: self.allow_caller_settings,
        })
    }
}

impl ChatCompletionsChange {
    /// `current` with the sent parts replaced.
    pub fn apply(self, current: ChatCompletionsPolicy) -> ChatCompletionsPolicy {
        ChatCompletionsPolicy {
            system_message: self.system_message.unwrap_or(current.system_message),
            allow_caller_settings: self
                .allow_caller_settings
                .unwrap_or(current.allow_caller_settings),
        }
    }
}

/// Version settings as a client sent them: every field optional. Left-out fields come from a
/// base version (on update) or are required (on create).
#[derive(Debug, Clone, Default)]
pub struct SettingsDraft {
    /// `modelEndpointRef`.
    pub model_endpoint_ref: Option<String>,
    /// `systemPrompt`.
    pub system_prompt: Option<String>,
    /// `temperature`.
    pub temperature: Option<f64>,
    /// `safetyGuardrails`.
    pub safety_guardrails: Option<GuardrailsDraft>,
    /// `fewShotExamples`.
    pub few_shot_examples: Option<Vec<ExampleDraft>>,
    /// `templateMessages`.
    pub template_messages: Option<Vec<TemplateMessageDraft>>,
    /// `variablesSchema` as compact JSON text: absent keeps the base version's, `null`
    /// (`Some(None)`) removes it.
    pub variables_schema: Option<Option<String>>,
    /// `tools`: absent keeps the base version's, `[]` removes them.
    pub tools: Option<Vec<ToolDraft>>,
    /// `toolChoice`: absent keeps, `null` (`Some(None)`) removes.
    pub tool_choice: Option<Option<ToolChoiceDraft>>,
    /// `responseFormat`: absent keeps, `null` (`Some(None)`) removes.
    pub response_format: Option<Option<ResponseFormatDraft>>,
    /// `fallbackEndpointRefs`: absent keeps the base version's, `[]` removes them.
    pub fallback_endpoint_refs: Option<Vec<String>>,
}

/// One turn of `templateMessages` as sent.
#[derive(Debug, Clone, Default)]
pub struct TemplateMessageDraft {
    /// `role`.
    pub role: Option<String>,
    /// `content`.
    pub content: Option<String>,
}

/// `safetyGuardrails` as sent; left-out parts come from the base version.
#[derive(Debug, Clone, Default)]
pub struct GuardrailsDraft {
    /// `contentFiltering`.
    pub content_filtering: Option<Vec<String>>,
    /// `maxTokens`; signed so that a negative value is reported rather than failing to decode.
    pub max_tokens: Option<i64>,
    /// `blockedCategories`.
    pub blocked_categories: Option<Vec<String>>,
}

/// One few-shot example as sent.
#[derive(Debug, Clone, Default)]
pub struct ExampleDraft {
    /// `input`.
    pub input: Option<String>,
    /// `output`.
    pub output: Option<String>,
}

/// Settings that passed validation, with their token count.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedSettings {
    /// The settings.
    pub settings: VersionSettings,
    /// The system prompt's tokens.
    pub system_prompt_tokens: u32,
    /// The tokenizer that counted them.
    pub tokenizer: TokenizerKind,
}

impl SettingsDraft {
    /// Whether the draft changes any setting (an update without one changes only traffic).
    pub fn is_empty(&self) -> bool {
        self.model_endpoint_ref.is_none()
            && self.system_prompt.is_none()
            && self.temperature.is_none()
            && self.safety_guardrails.is_none()
            && self.few_shot_examples.is_none()
            && self.template_messages.is_none()
            && self.variables_schema.is_none()
            && self.fallback_endpoint_refs.is_none()
            && !self.changes_tools()
    }

    /// Whether the draft sends any of `tools`, `toolChoice`, `responseFormat`.
    fn changes_tools(&self) -> bool {
        self.tools.is_some() || self.tool_choice.is_some() || self.response_format.is_some()
    }

    /// The tool settings: the base version's when none is sent (already checked), else those
    /// sent over the base's, checked together.
    fn check_tools(
        &self,
        base: Option<&VersionSettings>,
        schemas: &dyn SchemaCheck,
        violations: &mut Vec<Violation>,
    ) -> Option<ToolSettings> {
        if !self.changes_tools() {
            return Some(base.map(|b| b.tool_settings.clone()).unwrap_or_default());
        }
        let (base_tools, base_choice, base_format) =
            base.map(|b| b.tool_settings.drafts()).unwrap_or_default();
        let tools = self.tools.as_deref().unwrap_or(&base_tools);
        let choice = match &self.tool_choice {
            Some(choice) => choice.as_ref(),
            None => base_choice.as_ref(),
        };
        let format = match &self.response_format {
            Some(format) => format.as_ref(),
            None => base_format.as_ref(),
        };
        check_tool_settings(tools, choice, format, &ToolFieldNames::VERSION, schemas)
            .map_err(|found| violations.extend(found))
            .ok()
    }

    /// Checks the draft over `base` (the newest version, on update; none on create), counts the
    /// system prompt's tokens with the endpoint's tokenizer and checks the budget and the
    /// context window. Every violation is returned at once.
    ///
    /// Every text is parsed as a template: a malformed placeholder is a violation of its
    /// field, a schema is checked by `schemas` against the placeholders, and the budget is
    /// checked on the system prompt with its placeholders removed (the values come later).
    pub fn check(
        &self,
        base: Option<&VersionSettings>,
        catalogue: &EndpointCatalogue,
        counter: &TokenCounter,
        schemas: &dyn SchemaCheck,
    ) -> Result<CheckedSettings, Vec<Violation>> {
        let mut violations = Vec::new();

        let endpoint: Option<&ModelEndpoint> = match (&self.model_endpoint_ref, base) {
            (Some(reference), _) => catalogue.get(reference).or_else(|| {
                violations.push(Violation::with_params(
                    ViolationCode::InvalidValue,
                    "modelEndpointRef",
                    "unknown model endpoint {ref}; known endpoints: {known}",
                    &[("ref", reference.clone()), ("known", catalogue.refs_list())],
                ));
                None
            }),
            (None, Some(base)) => catalogue.get(&base.model_endpoint_ref).or_else(|| {
                violations.push(Violation::with_params(
                    ViolationCode::InvalidValue,
                    "modelEndpointRef",
                    "the newest version's model endpoint {ref} is no longer configured; send a modelEndpointRef (known endpoints: {known})",
                    &[("ref", base.model_endpoint_ref.clone()), ("known", catalogue.refs_list())],
                ));
                None
            }),
            (None, None) => {
                violations.push(Violation::invalid("modelEndpointRef", "modelEndpointRef is required"));
                None
            }
        };

        let system_prompt = match (&self.system_prompt, base) {
            (Some(text), _) => check_system_prompt(text, &mut violations),
            (None, Some(base)) => Some(base.system_prompt.clone()),
            (None, None) => {
                violations.push(Violation::invalid(
                    "systemPrompt",
                    "systemPrompt is required",
                ));
                None
            }
        };

        let temperature = match self.temperature {
            Some(t) if t.is_finite() && (0.0..=2.0).contains(&t) => Some(t),
            Some(t) => {
                violations.push(Violation::invalid(
                    "temperature",
                    format!("temperature is {t}; it must be between 0 and 2"),
                ));
                None
            }
            None => Some(base.map_or(DEFAULT_TEMPERATURE, |b| b.temperature)),
        };

        let base_guardrails = base.map(|b| &b.safety_guardrails);
        let guardrails = match &self.safety_guardrails {
            Some(draft) => draft.check(base_guardrails, &mut violations),
            None => Some(base_guardrails.cloned().unwrap_or_default()),
        };

        let examples = match &self.few_shot_examples {
            Some(drafts) => check_examples(drafts, &mut violations),
            None => Some(
                base.map(|b| b.few_shot_examples.clone())
                    .unwrap_or_default(),
            ),
        };

        let template_messages = match &self.template_messages {
            Some(drafts) => check_template_messages(drafts, &mut violations),
            None => Some(
                base.map(|b| b.template_messages.clone())
                    .unwrap_or_default(),
            ),
        };
        let variables_schema = match &self.variables_schema {
            Some(schema) => schema.clone(),
            None => base.and_then(|b| b.variables_schema.clone()),
        };

        let (
            Some(endpoint),
            Some(system_prompt),
            Some(temperature),
            Some(guardrails),
            Some(examples),
            Some(template_messages),
        ) = (
            endpoint,
            system_prompt,
            temperature,
            guardrails,
            examples,
            template_messages,
        )
        else {
            return Err(violations);
        };
        let templates = TemplateTexts::parse(&system_prompt, &template_messages, &examples);
        let system_template = match templates {
            Ok(parsed) => {
                if let Some(schema) = &variables_schema {
                    violations.extend(schemas.check(schema, &parsed.placeholders));
                }
                Some(parsed.system)
            }
            Err(problems) => {
                violations.extend(problems);
                None
            }
        };
        let tool_settings = self.check_tools(base, schemas, &mut violations);
        // The kept list is checked too: a new primary may be one of them, or one of them may
        // no longer be configured.
        let fallbacks = check_fallbacks(
            self.fallback_endpoint_refs
                .as_deref()
                .or(base.map(|b| b.fallback_endpoint_refs.as_slice()))
                .unwrap_or_default(),
            &endpoint.reference,
            catalogue,
            &mut violations,
        );
        if endpoint.provider == crate::ProviderKind::Anthropic && temperature > 1.0 {
            violations.push(Violation::invalid(
                "temperature",
                format!(
                    "temperature is {temperature}; Anthropic models ({}) take 0 to 1",
                    endpoint.reference
                ),
            ));
        }
        if !violations.is_empty() {
            return Err(violations);
        }

        let tool_settings = tool_settings.unwrap_or_default();
        let literal = system_template.map_or_else(String::new, |t| t.literal());
        let tokens = counter.count(endpoint.tokenizer, &literal)
            + tool_tokens(counter, endpoint.tokenizer, &tool_settings);
        let tokens_u32 = u32::try_from(tokens).unwrap_or(u32::MAX);
        let count_params = |limit: u32| {
            vec![
                ("estimated", tokens.to_string()),
                ("tokenizer", endpoint.tokenizer.as_str().to_owned()),
                ("limit", limit.to_string()),
            ]
        };
        if let Some(limit) = guardrails.max_tokens
            && tokens_u32 > limit
        {
            violations.push(Violation::with_params(
                ViolationCode::TokenBudgetExceeded,
                "systemPrompt",
                "system prompt is {estimated} tokens ({tokenizer}); the budget is {limit}",
                &count_params(limit),
            ));
        }
        if tokens_u32 > endpoint.context_window {
            violations.push(Violation::with_params(
                ViolationCode::ContextWindowExceeded,
                "systemPrompt",
                "system prompt is {estimated} tokens ({tokenizer}); the context window of {model} is {limit}",
                &[
                    count_params(endpoint.context_window).as_slice(),
                    &[("model", endpoint.reference.clone())],
                ]
                .concat(),
            ));
        }
        if !violations.is_empty() {
            return Err(violations);
        }
        Ok(CheckedSettings {
            settings: VersionSettings {
                model_endpoint_ref: endpoint.reference.clone(),
                system_prompt,
                temperature,
                safety_guardrails: guardrails,
                few_shot_examples: examples,
                template_messages,
                variables_schema,
                tool_settings,
                fallback_endpoint_refs: fallbacks,
            },
            system_prompt_tokens: tokens_u32,
            tokenizer: endpoint.tokenizer,
        })
    }
}

/// Most fallback endpoints a version may name: each failed attempt costs the caller up to an
/// endpoint's timeout, so a long chain would only turn an outage into a very slow error.
pub const MAX_FALLBACK_ENDPOINTS: usize = 5;

/// Checks `fallbackEndpointRefs`: known endpoints, at most [`MAX_FALLBACK_ENDPOINTS`], no
/// repeats, not the primary. Returns the list as sent (its violations go to `violations`).
fn check_fallbacks(
    refs: &[String],
    primary: &str,
    catalogue: &EndpointCatalogue,
    violations: &mut Vec<Violation>,
) -> Vec<String> {
    if refs.len() > MAX_FALLBACK_ENDPOINTS {
        violations.push(Violation::invalid(
            "fallbackEndpointRefs",
            format!(
                "fallbackEndpointRefs names {} endpoints; the limit is {MAX_FALLBACK_ENDPOINTS}",
                refs.len()
            ),
        ));
    }
    for (i, reference) in refs.iter().enumerate() {
        let field = format!("fallbackEndpointRefs[{i}]");
        if catalogue.get(reference).is_none() {
            violations.push(Violation::with_params(
                ViolationCode::InvalidValue,
                &field,
                "unknown model endpoint {ref}; known endpoints: {known}",
                &[("ref", reference.clone()), ("known", catalogue.refs_list())],
            ));
        } else if reference == primary {
            violations.push(Violation::invalid(
                &field,
                format!(
                    "{} is the version's modelEndpointRef; a fallback must be another endpoint",
                    crate::violation::quoted(reference)
                ),
            ));
        } else if refs[..i].contains(reference) {
            violations.push(Violation::invalid(
                &field,
                format!(
                    "{} is named twice in fallbackEndpointRefs",
                    crate::violation::quoted(reference)
                ),
            ));
        }
    }
    refs.to_vec()
}

/// The tokens that stand for a version's tool definitions and output schema in
/// `systemPromptTokens` (see [`ToolSettings::counted_text`]); 0 without any.
pub fn tool_tokens(
    counter: &TokenCounter,
    tokenizer: TokenizerKind,
    tools: &ToolSettings,
) -> usize {
    if tools.tools.is_empty()
        && !matches!(tools.response_format, Some(ResponseFormat::JsonSchema(_)))
    {
        return 0;
    }
    counter.count(tokenizer, &tools.counted_text())
}

impl GuardrailsDraft {
    fn check(
        &self,
        base: Option<&SafetyGuardrails>,
        violations: &mut Vec<Violation>,
    ) -> Option<SafetyGuardrails> {
        let before = violations.len();
        let content_filtering = match &self.content_filtering {
            Some(names) => parse_names(
                names,
                "safetyGuardrails.contentFiltering",
                &ContentFilter::ALL,
                ContentFilter::as_str,
                violations,
            ),
            None => base
                .map(|b| b.content_filtering.clone())
                .unwrap_or_default(),
        };
        let blocked_categories = match &self.blocked_categories {
            Some(names) => parse_names(
                names,
                "safetyGuardrails.blockedCategories",
                &BlockedCategory::ALL,
                BlockedCategory::as_str,
                violations,
            ),
            None => base
                .map(|b| b.blocked_categories.clone())
                .unwrap_or_default(),
        };
        let max_tokens = match self.max_tokens {
            Some(n) => match u32::try_from(n) {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    violations.push(Violation::invalid(
                        "safetyGuardrails.maxTokens",
                        format!(
                            "maxTokens is {n}; it must be a whole number from 1 to {}",
                            u32::MAX
                        ),
                    ));
                    None
                }
            },
            None => base.and_then(|b| b.max_tokens),
        };
        (violations.len() == before).then_some(SafetyGuardrails {
            content_filtering,
            max_tokens,
            blocked_categories,
        })
    }
}

fn parse_names<T: Copy + PartialEq>(
    names: &[String],
    field: &str,
    all: &[T],
    name_of: fn(T) -> &'static str,
    violations: &mut Vec<Violation>,
) -> Vec<T> {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match all.iter().copied().find(|v| name_of(*v) == name) {
            Some(v) if !out.contains(&v) => out.push(v),
            Some(_) => {}
            None => violations.push(Violation::invalid(
                format!("{field}[{i}]"),
                format!(
                    "{} is not supported; use {}",
                    crate::violation::quoted(name),
                    all.iter()
                        .map(|v| name_of(*v))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    out
}

/// A version's texts parsed as templates, with every placeholder and the field it is in.
struct TemplateTexts {
    system: Template,
    placeholders: Vec<Placeholder>,
}

impl TemplateTexts {
    /// Parses every text; each malformed one is a violation of its field.
    fn parse(
        system_prompt: &str,
        messages: &[TemplateMessage],
        examples: &[FewShotExample],
    ) -> Result<Self, Vec<Violation>> {
        let mut violations = Vec::new();
        let mut placeholders = Vec::new();
        let mut parse = |field: String, text: &str| match Template::parse(text) {
            Ok(template) => {
                placeholders.extend(template.placeholders().map(|path| Placeholder {
                    field: field.clone(),
                    path: path.clone(),
                }));
                Some(template)
            }
            Err(e) => {
                violations.push(Violation::invalid(field, e.to_string()));
                None
            }
        };
        let system = parse("systemPrompt".to_owned(), system_prompt);
        for (i, message) in messages.iter().enumerate() {
            parse(format!("templateMessages[{i}].content"), &message.content);
        }
        for (i, example) in examples.iter().enumerate() {
            parse(format!("fewShotExamples[{i}].input"), &example.input);
            parse(format!("fewShotExamples[{i}].output"), &example.output);
        }
        match system {
            Some(system) if violations.is_empty() => Ok(TemplateTexts {
                system,
                placeholders,
            }),
            _ => Err(violations),
        }
    }
}

fn check_template_messages(
    drafts: &[TemplateMessageDraft],
    violations: &mut Vec<Violation>,
) -> Option<Vec<TemplateMessage>> {
    let before = violations.len();
    if drafts.len() > MAX_TEMPLATE_MESSAGES {
        violations.push(Violation::invalid(
            "templateMessages",
            format!(
                "{} template messages given; the limit is {MAX_TEMPLATE_MESSAGES}",
                drafts.len()
            ),
        ));
        return None;
    }
    let mut messages = Vec::with_capacity(drafts.len());
    for (i, draft) in drafts.iter().enumerate() {
        let role = match draft.role.as_deref() {
            None => {
                violations.push(Violation::invalid(
                    format!("templateMessages[{i}].role"),
                    "role is required",
                ));
                None
            }
            Some(text) => TemplateRole::parse(text).or_else(|| {
                violations.push(Violation::invalid(
                    format!("templateMessages[{i}].role"),
                    format!(
                        "role is {}; use user or assistant",
                        crate::violation::quoted(text)
                    ),
                ));
                None
            }),
        };
        let field = format!("templateMessages[{i}].content");
        let content = match &draft.content {
            None => {
                violations.push(Violation::invalid(field, "content is required"));
                None
            }
            Some(text) if text.trim().is_empty() => {
                violations.push(Violation::invalid(field, "content must not be empty"));
                None
            }
            Some(text) if text.chars().count() > MAX_EXAMPLE_CHARS => {
                violations.push(Violation::invalid(
                    field,
                    format!("content is over {MAX_EXAMPLE_CHARS} characters"),
                ));
                None
            }
            Some(text) if text.contains('\0') => {
                violations.push(nul_violation(&field));
                None
            }
            Some(text) => Some(text.clone()),
        };
        if let (Some(role), Some(content)) = (role, content) {
            messages.push(TemplateMessage { role, content });
        }
    }
    (violations.len() == before).then_some(messages)
}

fn check_system_prompt(text: &str, violations: &mut Vec<Violation>) -> Option<String> {
    let chars = text.chars().count();
    if text.trim().is_empty() {
        violations.push(Violation::invalid(
            "systemPrompt",
            "systemPrompt must not be empty",
        ));
        None
    } else if chars > MAX_SYSTEM_PROMPT_CHARS {
        violations.push(Violation::invalid(
            "systemPrompt",
            format!("systemPrompt is {chars} characters; the limit is {MAX_SYSTEM_PROMPT_CHARS}"),
        ));
        None
    } else if text.contains('\0') {
        violations.push(nul_violation("systemPrompt"));
        None
    } else {
        Some(text.to_owned())
    }
}

fn check_examples(
    drafts: &[ExampleDraft],
    violations: &mut Vec<Violation>,
) -> Option<Vec<FewShotExample>> {
    let before = violations.len();
    if drafts.len() > MAX_FEW_SHOT_EXAMPLES {
        violations.push(Violation::invalid(
            "fewShotExamples",
            format!(
                "{} examples given; the limit is {MAX_FEW_SHOT_EXAMPLES}",
                drafts.len()
            ),
        ));
        return None;
    }
    let mut examples = Vec::with_capacity(drafts.len());
    for (i, draft) in drafts.iter().enumerate() {
        let mut text = |name: &str, value: &Option<String>| match value {
            None => {
                violations.push(Violation::invalid(
                    format!("fewShotExamples[{i}].{name}"),
                    format!("{name} is required"),
                ));
                String::new()
            }
            Some(v) if v.chars().count() > MAX_EXAMPLE_CHARS => {
                violations.push(Violation::invalid(
                    format!("fewShotExamples[{i}].{name}"),
                    format!("{name} is over {MAX_EXAMPLE_CHARS} characters"),
                ));
                String::new()
            }
            Some(v) if v.contains('\0') => {
                violations.push(nul_violation(&format!("fewShotExamples[{i}].{name}")));
                String::new()
            }
            Some(v) => v.clone(),
        };
        let input = text("input", &draft.input);
        let output = text("output", &draft.output);
        examples.push(FewShotExample { input, output });
    }
    (violations.len() == before).then_some(examples)
}

/// The character U+0000 in a text field. Refused rather than stored because PostgreSQL's text
/// cannot hold it (the database would refuse the write as a whole), and no prompt needs it.
fn nul_violation(field: &str) -> Violation {
    Violation::invalid(
        field,
        format!("{field} must not contain the character U+0000 (NUL)"),
    )
}

/// Checks a prompt name: 1 to [`MAX_NAME_CHARS`] characters, not blank, no control characters.
pub fn check_name(name: Option<&str>) -> Result<String, Violation> {
    let Some(name) = name else {
        return Err(Violation::invalid("name", "name is required"));
    };
    let chars = name.chars().count();
    if name.trim().is_empty() {
        Err(Violation::invalid("name", "name must not be empty"))
    } else if chars > MAX_NAME_CHARS {
        Err(Violation::invalid(
            "name",
            format!("name is {chars} characters; the limit is {MAX_NAME_CHARS}"),
        ))
    } else if name.contains('\0') {
        Err(nul_violation("name"))
    } else if name.chars().any(char::is_control) {
        Err(Violation::invalid(
            "name",
            "name must not contain control characters",
        ))
    } else {
        Ok(name.to_owned())
    }
}

/// Parses a required version label for the field `field`.
pub fn check_version(field: &str, text: Option<&str>) -> Result<VersionLabel, Violation> {
    match text {
        None => Err(Violation::invalid(field, format!("{field} is required"))),
        Some(text) => text
            .parse()
            .map_err(|e: crate::version::VersionLabelError| {
                Violation::invalid(field, e.to_string())
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::AcceptingSchemas;

    fn catalogue() -> EndpointCatalogue {
        EndpointCatalogue::with_overrides([])
    }

    fn draft() -> SettingsDraft {
        SettingsDraft {
            model_endpoint_ref: Some("openai/gpt-4o".into()),
            system_prompt: Some("You are a helpful customer support agent.".into()),
            temperature: Some(0.2),
            safety_guardrails: Some(GuardrailsDraft {
                content_filtering: Some(vec!["pii".into(), "profanity".into()]),
                max_tokens: Some(1500),
                blocked_categories: Some(vec!["violence".into()]),
            }),
            few_shot_examples: None,
            template_messages: None,
            variables_schema: None,
            ..SettingsDraft::default()
        }
    }

    #[test]
    fn valid_draft_counts_tokens() {
        let checked = draft()
            .check(None, &catalogue(), &TokenCounter::load(), &AcceptingSchemas)
            .unwrap();
        assert_eq!(checked.tokenizer, TokenizerKind::O200kBase);
        assert_eq!(checked.system_prompt_tokens, 8);
        assert_eq!(checked.settings.safety_guardrails.max_tokens, Some(1500));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut d = draft();
        d.model_endpoint_ref = Some("nope/model".into());
        d.temperature = Some(5.0);
        d.safety_guardrails = Some(GuardrailsDraft {
            content_filtering: Some(vec!["pii".into(), "nonsense".into()]),
            max_tokens: Some(0),
            blocked_categories: Some(vec!["weather".into()]),
        });
        d.few_shot_examples = Some(vec![ExampleDraft {
            input: Some("a".into()),
            output: None,
        }]);
        let errs = d
            .check(None, &catalogue(), &TokenCounter::load(), &AcceptingSchemas)
            .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "modelEndpointRef",
                "temperature",
                "safetyGuardrails.contentFiltering[1]",
                "safetyGuardrails.blockedCategories[0]",
                "safetyGuardrails.maxTokens",
                "fewShotExamples[0].output"
            ]
        );
        assert!(
            errs[0].message().contains("openai/gpt-4o"),
            "lists known refs: {}",
            errs[0].message()
        );
    }

    #[test]
    fn budget_is_exact() {
        let counter = TokenCounter::load();
        let mut d = draft();
        let tokens = counter.count(
            TokenizerKind::O200kBase,
            d.system_prompt.as_deref().unwrap(),
        ) as i64;
        d.safety_guardrails.as_mut().unwrap().max_tokens = Some(tokens);
        assert!(
            d.check(None, &catalogue(), &counter, &AcceptingSchemas)
                .is_ok()
        );
        d.safety_guardrails.as_mut().unwrap().max_tokens = Some(tokens - 1);
        let errs = d
            .check(None, &catalogue(), &counter, &AcceptingSchemas)
            .unwrap_err();
        assert_eq!(errs[0].code, ViolationCode::TokenBudgetExceeded);
        assert_eq!(errs[0].params["estimated"], tokens.to_string());
        assert_eq!(errs[0].params["limit"], (tokens - 1).to_string());
    }

    #[test]
    fn update_takes_left_out_fields_from_base() {
        let counter = TokenCounter::load();
        let base = draft()
            .check(None, &catalogue(), &counter, &AcceptingSchemas)
            .unwrap()
            .settings;
        let update = SettingsDraft {
            system_prompt: Some("You are terse.".into()),
            safety_guardrails: Some(GuardrailsDraft {
                max_tokens: Some(100),
                ..GuardrailsDraft::default()
            }),
            ..SettingsDraft::default()
        };
        let checked = update
            .check(Some(&base), &catalogue(), &counter, &AcceptingSchemas)
            .unwrap()
            .settings;
        assert_eq!(checked.temperature, 0.2);
        assert_eq!(checked.model_endpoint_ref, "openai/gpt-4o");
        assert_eq!(
            checked.safety_guardrails.content_filtering,
            base.safety_guardrails.content_filtering
        );
        assert_eq!(checked.safety_guardrails.max_tokens, Some(100));
    }

    #[test]
    fn create_requires_core_fields() {
        let errs = SettingsDraft::default()
            .check(None, &catalogue(), &TokenCounter::load(), &AcceptingSchemas)
            .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["modelEndpointRef", "systemPrompt"]);
    }

    #[test]
    fn context_window_bounds_prompts_without_budget() {
        let small = ModelEndpoint::new(
            "tiny/model",
            crate::ProviderKind::OpenAi,
            "",
            "gpt-4o",
            None,
            3,
        );
        let catalogue = EndpointCatalogue::with_overrides([small]);
        let d = SettingsDraft {
            model_endpoint_ref: Some("tiny/model".into()),
            system_prompt: Some("one two three four five".into()),
            ..SettingsDraft::default()
        };
        let errs = d
            .check(None, &catalogue, &TokenCounter::load(), &AcceptingSchemas)
            .unwrap_err();
        assert_eq!(errs[0].code, ViolationCode::ContextWindowExceeded);
    }

    #[test]
    fn anthropic_temperature_is_at_most_one() {
        let mut d = draft();
        d.model_endpoint_ref = Some("anthropic/claude-3-haiku".into());
        d.temperature = Some(1.5);
        let errs = d
            .check(None, &catalogue(), &TokenCounter::load(), &AcceptingSchemas)
            .unwrap_err();
        assert_eq!(errs[0].field, "temperature");
        d.temperature = Some(1.0);
        assert!(
            d.check(None, &catalogue(), &TokenCounter::load(), &AcceptingSchemas)
                .is_ok()
        );
    }

    #[test]
    fn nul_characters_are_refused_naming_the_field() {
        let mut d = draft();
        d.system_prompt = Some("You are\0 helpful.".into());
        d.few_shot_examples = Some(vec![
            ExampleDraft {
                input: Some("fine".into()),
                output: Some("fine".into()),
            },
            ExampleDraft {
                input: Some("a\0b".into()),
                output: Some("\0".into()),
            },
        ]);
        let errs = d
            .check(None, &catalogue(), &TokenCounter::load(), &AcceptingSchemas)
            .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "systemPrompt",
                "fewShotExamples[1].input",
                "fewShotExamples[1].output"
            ]
        );
        for err in &errs {
            assert_eq!(err.code, ViolationCode::InvalidValue);
            assert!(err.message().contains("U+0000"), "{}", err.message());
            assert!(err.message().contains(&err.field), "{}", err.message());
        }
        let name = check_name(Some("support\0agent")).unwrap_err();
        assert_eq!(name.field, "name");
        assert_eq!(name.code, ViolationCode::InvalidValue);
        assert!(name.message().contains("U+0000"), "{}", name.message());
        // Other text is untouched: a NUL-free prompt with unusual characters passes.
        let mut d = draft();
        d.system_prompt = Some("Tabs\tand newlines\n and \u{FFFD} are fine.".into());
        assert!(
            d.check(None, &catalogue(), &TokenCounter::load(), &AcceptingSchemas)
                .is_ok()
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name(Some("support_agent")).is_ok());
        assert!(check_name(Some("  ")).is_err());
        assert!(check_name(Some("a\u{7}b")).is_err());
        assert!(check_name(Some(&"x".repeat(MAX_NAME_CHARS + 1))).is_err());
        assert!(check_name(None).is_err());
    }

    /// Records what it was asked and refuses one placeholder, as the JSON Schema check would.
    struct RefusesCustomer(std::sync::Mutex<Vec<String>>);

    impl SchemaCheck for RefusesCustomer {
        fn check(&self, schema: &str, placeholders: &[Placeholder]) -> Vec<Violation> {
            self.0.lock().unwrap().push(schema.to_owned());
            placeholders
                .iter()
                .filter(|p| p.path.root() == "customer")
                .map(|p| Violation::invalid(p.field.clone(), "not declared"))
                .collect()
        }

        fn check_document(&self, _schema: &str, _field: &str) -> Vec<Violation> {
            Vec::new()
        }
    }

    #[test]
    fn templates_are_parsed_in_every_text_and_malformed_ones_name_their_field() {
        let d = SettingsDraft {
            system_prompt: Some("Hello {{name".into()),
            template_messages: Some(vec![
                TemplateMessageDraft {
                    role: Some("user".into()),
                    content: Some("fine {{ a }}".into()),
                },
                TemplateMessageDraft {
                    role: Some("system".into()),
                    content: Some("{{ 1x }}".into()),
                },
                TemplateMessageDraft {
                    role: None,
                    content: Some("   ".into()),
                },
            ]),
            few_shot_examples: Some(vec![ExampleDraft {
                input: Some("{{}}".into()),
                output: Some("ok".into()),
            }]),
            ..draft()
        };
        let errs = d
            .check(None, &catalogue(), &TokenCounter::load(), &AcceptingSchemas)
            .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "templateMessages[1].role",
                "templateMessages[2].role",
                "templateMessages[2].content",
            ],
            "{errs:?}"
        );
        // With the turns fixed, the malformed placeholders are reported, each in its field.
        let d = SettingsDraft {
            template_messages: Some(vec![TemplateMessageDraft {
                role: Some("assistant".into()),
                content: Some("{{ 1x }}".into()),
            }]),
            ..d
        };
        let errs = d
            .check(None, &catalogue(), &TokenCounter::load(), &AcceptingSchemas)
            .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "systemPrompt",
                "templateMessages[0].content",
                "fewShotExamples[0].input"
            ]
        );
        assert!(
            errs[0].message().contains("not closed"),
            "{}",
            errs[0].message()
        );
    }

    #[test]
    fn the_schema_check_sees_every_placeholder_and_the_budget_ignores_them() {
        let check = RefusesCustomer(Default::default());
        let d = SettingsDraft {
            system_prompt: Some("You help {{customer.name}} on the {{ tier }} plan.".into()),
            template_messages: Some(vec![TemplateMessageDraft {
                role: Some("user".into()),
                content: Some("I am {{customer.name}}".into()),
            }]),
            variables_schema: Some(Some(r#"{"type":"object"}"#.into())),
            ..draft()
        };
        let errs = d
            .check(None, &catalogue(), &TokenCounter::load(), &check)
            .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["systemPrompt", "templateMessages[0].content"]);
        assert_eq!(*check.0.lock().unwrap(), [r#"{"type":"object"}"#]);

        let checked = d
            .check(None, &catalogue(), &TokenCounter::load(), &AcceptingSchemas)
            .unwrap();
        let counter = TokenCounter::load();
        let literal = counter.count(checked.tokenizer, "You help  on the  plan.");
        assert_eq!(checked.system_prompt_tokens as usize, literal);
        assert_eq!(checked.settings.template_messages.len(), 1);
        assert_eq!(
            checked.settings.template_messages[0].role,
            TemplateRole::User
        );
        // Without a schema the check is not asked at all.
        let check = RefusesCustomer(Default::default());
        let plain = SettingsDraft {
            variables_schema: Some(None),
            ..d
        };
        assert!(
            plain
                .check(None, &catalogue(), &TokenCounter::load(), &check)
                .is_ok()
        );
        assert!(check.0.lock().unwrap().is_empty());
    }

    #[test]
    fn template_fields_are_inherited_from_the_base_unless_sent() {
        let counter = TokenCounter::load();
        let base = SettingsDraft {
            system_prompt: Some("Hi {{name}}".into()),
            template_messages: Some(vec![TemplateMessageDraft {
                role: Some("user".into()),
                content: Some("hello".into()),
            }]),
            variables_schema: Some(Some("{}".into())),
            ..draft()
        }
        .check(None, &catalogue(), &counter, &AcceptingSchemas)
        .unwrap()
        .settings;
        let next = SettingsDraft {
            temperature: Some(0.5),
            ..Default::default()
        }
        .check(Some(&base), &catalogue(), &counter, &AcceptingSchemas)
        .unwrap()
        .settings;
        assert_eq!(next.template_messages, base.template_messages);
        assert_eq!(next.variables_schema.as_deref(), Some("{}"));
        let cleared = SettingsDraft {
            variables_schema: Some(None),
            template_messages: Some(Vec::new()),
            ..Default::default()
        }
        .check(Some(&base), &catalogue(), &counter, &AcceptingSchemas)
        .unwrap()
        .settings;
        assert!(cleared.template_messages.is_empty());
        assert_eq!(cleared.variables_schema, None);
        let too_many = SettingsDraft {
            template_messages: Some(vec![
                TemplateMessageDraft {
                    role: Some("user".into()),
                    content: Some("x".into()),
                };
                MAX_TEMPLATE_MESSAGES + 1
            ]),
            ..Default::default()
        }
        .check(Some(&base), &catalogue(), &counter, &AcceptingSchemas)
        .unwrap_err();
        assert_eq!(too_many[0].field, "templateMessages");
        assert!(
            too_many[0].message().contains("100"),
            "{}",
            too_many[0].message()
        );
    }

    fn lookup_tool() -> crate::tools::ToolDraft {
        crate::tools::ToolDraft {
            kind: Some("function".into()),
            name: Some("lookup_order".into()),
            has_function: true,
            description: Some("Find an order by its number.".into()),
            parameters: Some(
                r#"{"type":"object","properties":{"order":{"type":"string"}}}"#.into(),
            ),
            strict: None,
        }
    }

    #[test]
    fn tool_definitions_count_towards_the_system_prompt_and_its_budget() {
        let counter = TokenCounter::load();
        let plain = draft()
            .check(None, &catalogue(), &counter, &AcceptingSchemas)
            .unwrap();
        let with_tools = SettingsDraft {
            tools: Some(vec![lookup_tool()]),
            ..draft()
        }
        .check(None, &catalogue(), &counter, &AcceptingSchemas)
        .unwrap();
        let tool_tokens = tool_tokens(
            &counter,
            plain.tokenizer,
            &with_tools.settings.tool_settings,
        ) as u32;
        assert!(tool_tokens > 10, "{tool_tokens}");
        assert_eq!(
            with_tools.system_prompt_tokens,
            plain.system_prompt_tokens + tool_tokens
        );
        let mut tight = draft();
        tight.tools = Some(vec![lookup_tool()]);
        tight.safety_guardrails.as_mut().unwrap().max_tokens =
            Some(i64::from(plain.system_prompt_tokens));
        let violations = tight
            .check(None, &catalogue(), &counter, &AcceptingSchemas)
            .unwrap_err();
        assert_eq!(violations[0].code, ViolationCode::TokenBudgetExceeded);
    }

    #[test]
    fn tool_settings_are_kept_unless_sent_and_checked_against_the_kept_ones() {
        let counter = TokenCounter::load();
        let base = SettingsDraft {
            tools: Some(vec![lookup_tool()]),
            ..draft()
        }
        .check(None, &catalogue(), &counter, &AcceptingSchemas)
        .unwrap()
        .settings;
        let kept = SettingsDraft {
            system_prompt: Some("Shorter.".into()),
            ..SettingsDraft::default()
        }
        .check(Some(&base), &catalogue(), &counter, &AcceptingSchemas)
        .unwrap();
        assert_eq!(kept.settings.tool_settings, base.tool_settings);
        let choice = |name: &str| SettingsDraft {
            tool_choice: Some(Some(crate::tools::ToolChoiceDraft::Function(Some(
                name.into(),
            )))),
            ..SettingsDraft::default()
        };
        assert!(
            choice("lookup_order")
                .check(Some(&base), &catalogue(), &counter, &AcceptingSchemas)
                .is_ok()
        );
        let refused = choice("refund")
            .check(Some(&base), &catalogue(), &counter, &AcceptingSchemas)
            .unwrap_err();
        assert_eq!(refused[0].field, "toolChoice.function.name");
        let removed = SettingsDraft {
            tools: Some(Vec::new()),
            ..SettingsDraft::default()
        }
        .check(Some(&base), &catalogue(), &counter, &AcceptingSchemas)
        .unwrap();
        assert!(removed.settings.tool_settings.is_empty());
    }
    #[test]
    fn fallback_endpoints_are_checked_kept_and_removable() {
        let counter = TokenCounter::load();
        let with = |refs: &[&str]| SettingsDraft {
            fallback_endpoint_refs: Some(refs.iter().map(|r| r.to_string()).collect()),
            ..draft()
        };
        let base = with(&["openai/gpt-4o-mini", "builtin/echo"])
            .check(None, &catalogue(), &counter, &AcceptingSchemas)
            .unwrap()
            .settings;
        assert_eq!(
            base.fallback_endpoint_refs,
            ["openai/gpt-4o-mini", "builtin/echo"]
        );
        let fields = |refs: &[&str]| -> Vec<String> {
            with(refs)
                .check(None, &catalogue(), &counter, &AcceptingSchemas)
                .unwrap_err()
                .into_iter()
                .map(|v| v.field)
                .collect()
        };
        assert_eq!(fields(&["nobody/knows"]), ["fallbackEndpointRefs[0]"]);
        assert_eq!(
            fields(&["builtin/echo", "openai/gpt-4o"]),
            ["fallbackEndpointRefs[1]"]
        );
        assert_eq!(
            fields(&["builtin/echo", "builtin/echo"]),
            ["fallbackEndpointRefs[1]"]
        );
        assert_eq!(fields(&["builtin/echo"; 6])[0], "fallbackEndpointRefs");
        let unknown = with(&["nobody/knows"])
            .check(None, &catalogue(), &counter, &AcceptingSchemas)
            .unwrap_err();
        assert!(
            unknown[0].message().contains("builtin/echo"),
            "{}",
            unknown[0].message()
        );
        // Left out: kept; a new primary that is one of the kept fallbacks is refused.
        let kept = SettingsDraft {
            system_prompt: Some("Shorter.".into()),
            ..SettingsDraft::default()
        }
        .check(Some(&base), &catalogue(), &counter, &AcceptingSchemas)
        .unwrap();
        assert_eq!(
            kept.settings.fallback_endpoint_refs,
            base.fallback_endpoint_refs
        );
        let clash = SettingsDraft {
            model_endpoint_ref: Some("builtin/echo".into()),
            ..SettingsDraft::default()
        }
        .check(Some(&base), &catalogue(), &counter, &AcceptingSchemas)
        .unwrap_err();
        assert_eq!(clash[0].field, "fallbackEndpointRefs[1]");
        let removed = SettingsDraft {
            fallback_endpoint_refs: Some(Vec::new()),
            ..SettingsDraft::default()
        }
        .check(Some(&base), &catalogue(), &counter, &AcceptingSchemas)
        .unwrap();
        assert!(removed.settings.fallback_endpoint_refs.is_empty());
    }
}
