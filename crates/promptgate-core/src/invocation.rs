//! Invocations: choosing the version that serves, the input guardrails, fitting the
//! conversation into the model's context window, and the telemetry record every invocation
//! leaves. The server's `service::invoke` plans an invocation with [`serving_version`] and
//! `plan_input` (the input guardrails, in `input.rs`), then does the I/O (moderation, the
//! provider call, the record).

use std::collections::{BTreeMap, HashMap};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::fewshot::{self, FitStrategy};
use crate::prompt::{FewShotExample, Prompt, PromptStatus, PromptVersion};
use crate::tokenizer::{TokenCounter, TokenizerKind};
use crate::traffic::{SplitStrategy, TrafficSplit};
use crate::version::VersionLabel;

// The input guardrails need the `guardrails` feature; the rest of an invocation's rules do not.
#[cfg(feature = "guardrails")]
mod input;
#[cfg(feature = "guardrails")]
pub use input::{InputDraft, InputPlan, InputRefusal, plan_input};

/// Picks the version for one invocation: sticky by session (a session without an id is drawn
/// at random, as it has nothing to stick to), or random with the point `draw` in [0, 1).
pub fn choose_version<'a>(
    split: &'a TrafficSplit,
    prompt_id: Uuid,
    session_id: Option<&str>,
    draw: f64,
) -> &'a VersionLabel {
    match (split.strategy(), session_id) {
        (SplitStrategy::Sticky, Some(session)) => split.choose_sticky(prompt_id, session),
        _ => split.choose(draw),
    }
}

/// Why no version can serve an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoVersion {
    /// The prompt is archived: it keeps its history but serves nothing.
    Archived,
    /// The caller pinned a version the prompt does not have (or text that is no version label).
    UnknownPin,
    /// The caller named a label the prompt does not have.
    UnknownLabel,
    /// The traffic split routes to a label without a version. A split only names versions
    /// that exist, so this is a bug, reported rather than panicked on.
    Missing(VersionLabel),
}

/// What the caller named to choose the version, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin<'a> {
    /// Nothing: the traffic split decides.
    None,
    /// A version (`"version"`, `prompt:NAME@1.2.0`).
    Version(&'a str),
    /// A label (`"label"`, `prompt:NAME@staging`): a named pin, independent of the split.
    Label(&'a str),
}

/// The version that serves one invocation: the pinned or labelled one, or the traffic split's
/// choice ([`choose_version`], sticky by session). `draw` gives the random point in [0, 1) and
/// is called only when the split decides, so a pinned call costs no random number.
pub fn serving_version<'a>(
    prompt: &Prompt,
    versions: &'a HashMap<VersionLabel, PromptVersion>,
    pin: Pin<'_>,
    session_id: Option<&str>,
    draw: impl FnOnce() -> f64,
) -> Result<&'a PromptVersion, NoVersion> {
    if prompt.status == PromptStatus::Archived {
        return Err(NoVersion::Archived);
    }
    match pin {
        Pin::Version(pinned) => pinned
            .parse::<VersionLabel>()
            .ok()
            .and_then(|label| versions.get(&label))
            .ok_or(NoVersion::UnknownPin),
        Pin::Label(name) => {
            let version = prompt
                .labels
                .iter()
                .find(|(label, _)| label.as_str() == name)
                .map(|(_, version)| version)
                .ok_or(NoVersion::UnknownLabel)?;
            versions
                .get(version)
                .ok_or_else(|| NoVersion::Missing(version.clone()))
        }
        Pin::None => {
            let label = choose_version(&prompt.traffic, prompt.id, session_id, draw());
            versions
                .get(label)
                .ok_or_else(|| NoVersion::Missing(label.clone()))
        }
    }
}

/// What goes into the context window, as the caller sent it (after input guardrails).
#[derive(Debug, Clone, Copy)]
pub struct ContextInput<'a> {
    /// The version's system prompt.
    pub system_prompt: &'a str,
    /// The version's few-shot examples, oldest first.
    pub examples: &'a [FewShotExample],
    /// Earlier turns' texts, oldest first.
    pub turns: &'a [String],
    /// The user's input.
    pub user_input: &'a str,
    /// Tokens reserved for the answer.
    pub max_output_tokens: u32,
    /// The model's window.
    pub context_window: u32,
    /// The tokenizer that counts.
    pub tokenizer: TokenizerKind,
}

/// The fitted context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FittedContext {
    /// The system prompt with the kept examples rendered after it.
    pub system: String,
    /// How many of the oldest earlier turns were dropped.
    pub dropped_turns: usize,
    /// How many of the oldest examples were dropped.
    pub dropped_examples: usize,
    /// Tokens of the kept examples (the system block minus the bare system prompt).
    pub few_shot_tokens: usize,
    /// Tokens of everything sent (system block, kept turns and the input), without the reserve.
    pub prompt_tokens: usize,
}

/// The context does not fit even with every example and earlier turn dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the request needs {needed} tokens ({tokenizer}) with every example and earlier turn dropped; the context window is {window}"
)]
pub struct ContextTooLarge {
    /// Tokens of system prompt + input + reserve.
    pub needed: usize,
    /// The window.
    pub window: u32,
    /// The tokenizer.
    pub tokenizer: &'static str,
}

/// Fits system prompt + few-shot examples + earlier turns + user input + the output reserve
/// into the context window: few-shot examples are dropped oldest first, then earlier turns
/// oldest first. Each text is counted once; the work is linear in examples and turns.
pub fn fit_context(
    counter: &TokenCounter,
    input: &ContextInput<'_>,
) -> Result<FittedContext, ContextTooLarge> {
    let window = input.context_window as usize;
    let count = |text: &str| counter.count(input.tokenizer, text);
    let system_tokens = count(input.system_prompt);
    let fixed = count(input.user_input) + input.max_output_tokens as usize;
    let turn_tokens: Vec<usize> = input.turns.iter().map(|t| count(t)).collect();
    let all_turns: usize = turn_tokens.iter().sum();

    // First keep every turn and fit as many examples as the rest of the window allows.
    if let Some(room) = window.checked_sub(fixed + all_turns)
        && room >= system_tokens
        && let Ok(fitted) = fewshot::fit(
            counter,
            input.tokenizer,
            input.system_prompt,
            input.examples,
            room,
            FitStrategy::DropOldest,
        )
    {
        return Ok(FittedContext {
            few_shot_tokens: fitted.tokens.saturating_sub(system_tokens),
            prompt_tokens: fitted.tokens + all_turns + count(input.user_input),
            system: fitted.text,
            dropped_turns: 0,
            dropped_examples: fitted.dropped.len(),
        });
    }
    // Then drop every example and the oldest turns until the rest fits.
    let mut remaining = all_turns;
    for (dropped, tokens) in turn_tokens.iter().enumerate() {
        remaining -= tokens;
        if system_tokens + fixed + remaining <= window {
            return Ok(FittedContext {
                system: input.system_prompt.to_owned(),
                dropped_turns: dropped + 1,
                dropped_examples: input.examples.len(),
                few_shot_tokens: 0,
                prompt_tokens: system_tokens + remaining + count(input.user_input),
            });
        }
    }
    Err(ContextTooLarge {
        needed: system_tokens + fixed,
        window: input.context_window,
        tokenizer: input.tokenizer.as_str(),
    })
}

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationStatus {
    /// The model answered.
    Success,
    /// The gateway or the provider failed.
    Error,
    /// A guardrail refused the request.
    Blocked,
}

impl InvocationStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationStatus::Success => "SUCCESS",
            InvocationStatus::Error => "ERROR",
            InvocationStatus::Blocked => "BLOCKED",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "SUCCESS" => Some(InvocationStatus::Success),
            "ERROR" => Some(InvocationStatus::Error),
            "BLOCKED" => Some(InvocationStatus::Blocked),
            _ => None,
        }
    }
}

/// The record every invocation leaves, whatever its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationRecord {
    /// The invocation's `responseId` (`inv-…`).
    pub id: String,
    /// When the gateway received the request.
    pub timestamp: OffsetDateTime,
    /// The prompt.
    pub prompt_id: Uuid,
    /// The version that served (or would have).
    pub version: String,
    /// The model.
    pub model: String,
    /// How it ended.
    pub status: InvocationStatus,
    /// The error code for ERROR and BLOCKED.
    pub error_code: Option<String>,
    /// Time in the gateway.
    pub latency_ms: f64,
    /// Time waiting on the provider.
    pub upstream_latency_ms: Option<f64>,
    /// Time to the first streamed token.
    pub time_to_first_token_ms: Option<f64>,
    /// Tokens sent.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// The session, if given.
    pub session_id: Option<String>,
    /// The OAuth client that invoked.
    pub client_id: String,
    /// The caller's metadata.
    pub metadata: BTreeMap<String, String>,
    /// The label the caller named (`"label"`, `prompt:NAME@LABEL`), if any.
    pub label: Option<String>,
    /// The names of the variables the caller supplied (never their values), sorted.
    pub variable_names: Vec<String>,
    /// Whether the output matched the version's JSON response format; none when it has none
    /// (or the invocation produced no output to check).
    pub schema_valid: Option<bool>,
    /// How many tool calls the answer made.
    pub tool_call_count: u32,
    /// The API key the caller used (its id, never the key); `None` for an access token.
    pub api_key_id: Option<String>,
    /// What the call cost in US dollars, from the serving endpoint's prices and the token
    /// counts ([`crate::Prices::cost_usd`]); none when that endpoint has no prices.
    pub cost_usd: Option<f64>,
    /// The model endpoint that served (or, when every attempt failed, the last one tried):
    /// the one place that says which endpoint's prices and limits apply to this invocation.
    pub endpoint_ref: String,
    /// The endpoints that failed before the serving one, in order (empty without fallback).
    pub fallback_attempts: Vec<FallbackAttempt>,
}

/// One failed attempt of an invocation whose version has fallback endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackAttempt {
    /// The endpoint tried.
    pub endpoint_ref: String,
    /// Why it did not serve (`upstream.error`, `upstream.timeout`, `upstream.circuit_open`,
    /// `context.window.exceeded`, …).
    pub error_code: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::{ChatCompletionsPolicy, SafetyGuardrails, VersionSettings};

    fn input<'a>(
        examples: &'a [FewShotExample],
        turns: &'a [String],
        window: u32,
    ) -> ContextInput<'a> {
        ContextInput {
            system_prompt: "You are a helpful support agent.",
            examples,
            turns,
            user_input: "Where is my order?",
            max_output_tokens: 10,
            context_window: window,
            tokenizer: TokenizerKind::O200kBase,
        }
    }

    fn examples(n: usize) -> Vec<FewShotExample> {
        (0..n)
            .map(|i| FewShotExample {
                input: format!("question {i} about shipping"),
                output: format!("answer {i} about shipping"),
            })
            .collect()
    }

    #[test]
    fn everything_fits_in_a_large_window() {
        let counter = TokenCounter::load();
        let ex = examples(3);
        let turns = vec!["hello".to_owned(), "hi, how can I help?".to_owned()];
        let fitted = fit_context(&counter, &input(&ex, &turns, 10_000)).unwrap();
        assert_eq!((fitted.dropped_examples, fitted.dropped_turns), (0, 0));
        assert!(fitted.system.contains("Examples:"));
        assert!(fitted.few_shot_tokens > 0);
    }

    #[test]
    fn examples_go_before_turns() {
        let counter = TokenCounter::load();
        let ex = examples(5);
        let turns = vec!["hello".to_owned(), "hi, how can I help?".to_owned()];
        let full = fit_context(&counter, &input(&ex, &turns, 10_000)).unwrap();
        let window = u32::try_from(full.prompt_tokens + 10 - 1).unwrap();
        let fitted = fit_context(&counter, &input(&ex, &turns, window)).unwrap();
        assert_eq!(fitted.dropped_turns, 0);
        assert!(fitted.dropped_examples >= 1);
        assert!(fitted.prompt_tokens + 10 <= window as usize);
    }

    #[test]
    fn turns_are_dropped_oldest_first_then_it_fails() {
        let counter = TokenCounter::load();
        let ex = examples(2);
        let turns: Vec<String> = (0..4)
            .map(|i| format!("turn number {i} of the chat"))
            .collect();
        let bare = counter.count(TokenizerKind::O200kBase, "You are a helpful support agent.")
            + counter.count(TokenizerKind::O200kBase, "Where is my order?")
            + 10;
        let last_turn = counter.count(TokenizerKind::O200kBase, &turns[3]);
        let window = u32::try_from(bare + last_turn).unwrap();
        let fitted = fit_context(&counter, &input(&ex, &turns, window)).unwrap();
        assert_eq!((fitted.dropped_examples, fitted.dropped_turns), (2, 3));
        let err = fit_context(
            &counter,
            &input(&ex, &turns, u32::try_from(bare - 1).unwrap()),
        )
        .unwrap_err();
        assert_eq!(err.needed, bare);
    }

    fn label(text: &str) -> VersionLabel {
        text.parse().unwrap()
    }

    fn settings(guardrails: SafetyGuardrails) -> VersionSettings {
        VersionSettings {
            model_endpoint_ref: "openai/gpt-4o".to_owned(),
            system_prompt: "You are a helpful support agent.".to_owned(),
            temperature: 0.2,
            safety_guardrails: guardrails,
            few_shot_examples: examples(2),
            template_messages: Vec::new(),
            variables_schema: None,
            tool_settings: Default::default(),
            fallback_endpoint_refs: Vec::new(),
        }
    }

    fn prompt_with(
        labels: &[&str],
        status: PromptStatus,
    ) -> (Prompt, HashMap<VersionLabel, PromptVersion>) {
        let id = Uuid::from_u128(7);
        let at = OffsetDateTime::UNIX_EPOCH;
        let versions = labels
            .iter()
            .map(|l| {
                let version = PromptVersion {
                    prompt_id: id,
                    version: label(l),
                    settings: settings(SafetyGuardrails::default()),
                    system_prompt_tokens: 7,
                    tokenizer: TokenizerKind::O200kBase,
                    created_at: at,
                    created_by: "test".to_owned(),
                };
                (label(l), version)
            })
            .collect();
        let prompt = Prompt {
            id,
            name: "support".to_owned(),
            status,
            traffic: TrafficSplit::single(label(labels[0])),
            chat_completions: ChatCompletionsPolicy::default(),
            labels: crate::label::Labels::new(),
            revision: 1,
            created_at: at,
            updated_at: at,
            created_by: "test".to_owned(),
        };
        (prompt, versions)
    }

    #[test]
    fn a_pinned_version_serves_without_a_draw_and_must_exist() {
        let (prompt, versions) = prompt_with(&["1.0.0", "1.1.0"], PromptStatus::Active);
        let no_draw = || -> f64 { panic!("a pinned call draws no random number") };
        let found =
            serving_version(&prompt, &versions, Pin::Version("1.1.0"), None, no_draw).unwrap();
        assert_eq!(found.version, label("1.1.0"));
        for pin in ["2.0.0", "latest", ""] {
            assert_eq!(
                serving_version(&prompt, &versions, Pin::Version(pin), None, no_draw),
                Err(NoVersion::UnknownPin),
                "{pin}"
            );
        }
        let routed = serving_version(&prompt, &versions, Pin::None, Some("s-1"), || 0.5).unwrap();
        assert_eq!(routed.version, label("1.0.0"));
    }

    #[test]
    fn a_label_serves_its_version_without_a_draw_and_must_exist() {
        let (mut prompt, versions) = prompt_with(&["1.0.0", "1.1.0"], PromptStatus::Active);
        let no_draw = || -> f64 { panic!("a labelled call draws no random number") };
        let staging = crate::label::LabelName::parse("label", "staging").unwrap();
        prompt.labels.insert(staging, label("1.1.0"));
        let found =
            serving_version(&prompt, &versions, Pin::Label("staging"), None, no_draw).unwrap();
        assert_eq!(found.version, label("1.1.0"));
        assert_eq!(
            serving_version(&prompt, &versions, Pin::Label("production"), None, no_draw),
            Err(NoVersion::UnknownLabel)
        );
    }

    #[test]
    fn an_archived_prompt_serves_nothing_and_a_split_to_nowhere_is_reported() {
        let (prompt, versions) = prompt_with(&["1.0.0"], PromptStatus::Archived);
        assert_eq!(
            serving_version(&prompt, &versions, Pin::Version("1.0.0"), None, || 0.0),
            Err(NoVersion::Archived)
        );
        let (mut prompt, versions) = prompt_with(&["1.0.0"], PromptStatus::Active);
        prompt.traffic = TrafficSplit::single(label("3.0.0"));
        assert_eq!(
            serving_version(&prompt, &versions, Pin::None, None, || 0.0),
            Err(NoVersion::Missing(label("3.0.0")))
        );
    }

    #[test]
    fn sticky_without_session_draws_at_random() {
        let v = |s: &str| s.parse::<VersionLabel>().unwrap();
        let split = TrafficSplit::new(
            v("1.0.0"),
            SplitStrategy::Sticky,
            vec![(v("1.0.0"), 0.5), (v("1.1.0"), 0.5)],
        )
        .unwrap();
        let id = Uuid::from_u128(1);
        assert_eq!(choose_version(&split, id, None, 0.1), &v("1.0.0"));
        assert_eq!(choose_version(&split, id, None, 0.9), &v("1.1.0"));
        let pinned = choose_version(&split, id, Some("s-1"), 0.0);
        assert_eq!(pinned, choose_version(&split, id, Some("s-1"), 0.99));
    }
}
