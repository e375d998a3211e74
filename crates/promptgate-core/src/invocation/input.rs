//! The input side of an invocation: blocked categories, PII redaction and the context
//! fitting of the redacted texts.

use std::collections::BTreeMap;

use super::{ContextInput, ContextTooLarge, FittedContext, fit_context};
use crate::guardrails::{categories, pii};
use crate::prompt::{BlockedCategory, ContentFilter, VersionSettings};
use crate::tokenizer::{TokenCounter, TokenizerKind};

/// The caller's texts for one invocation, before the input guardrails, and what bounds them.
#[derive(Debug, Clone)]
pub struct InputDraft<'a, T> {
    /// The serving version's settings: system prompt, examples, guardrails.
    pub settings: &'a VersionSettings,
    /// The model endpoint's context window.
    pub context_window: u32,
    /// The model endpoint's tokenizer.
    pub tokenizer: TokenizerKind,
    /// The user's input.
    pub user_input: &'a str,
    /// Earlier turns' texts, oldest first.
    pub turns: T,
    /// The caller's own system text (`/v1` under the prepend policy), placed after the
    /// version's system prompt.
    pub caller_system: Option<&'a str>,
    /// Tokens reserved for the answer, when the caller set a maximum.
    pub max_output_tokens: Option<u32>,
}

/// What the input guardrails and the context fitting decided: the texts to send, in the
/// draft's order, and what the output guardrails must do.
#[derive(Debug, Clone, PartialEq)]
pub struct InputPlan {
    /// The user's input after PII redaction.
    pub user_input: String,
    /// Every earlier turn's text after PII redaction, oldest first, including the
    /// `fitted.dropped_turns` oldest ones that are not sent.
    pub turns: Vec<String>,
    /// The caller's system text after PII redaction (already part of `fitted.system`; kept
    /// apart because a moderation endpoint checks it like the messages).
    pub caller_system: Option<String>,
    /// The system block with the kept examples, and what was dropped.
    pub fitted: FittedContext,
    /// PII redactions in the input, by label.
    pub input_redactions: BTreeMap<String, u32>,
    /// Whether the output is PII-redacted too.
    pub redact_output: bool,
    /// Whether profanity in the output is masked.
    pub mask_output: bool,
}

impl InputPlan {
    /// The same redacted texts fitted to another model endpoint's window with its tokenizer
    /// (a fallback endpoint): the guardrails are not run again, only the fitting and counting.
    pub fn refit(
        &self,
        counter: &TokenCounter,
        settings: &VersionSettings,
        context_window: u32,
        tokenizer: TokenizerKind,
        max_output_tokens: Option<u32>,
    ) -> Result<FittedContext, ContextTooLarge> {
        fit_redacted(
            counter,
            settings,
            &Redacted {
                user_input: &self.user_input,
                turns: &self.turns,
                caller_system: self.caller_system.as_deref(),
            },
            context_window,
            tokenizer,
            max_output_tokens,
        )
    }
}

/// The input's texts after redaction.
struct Redacted<'a> {
    user_input: &'a str,
    turns: &'a [String],
    caller_system: Option<&'a str>,
}

/// Fits redacted texts: the caller's system text goes after the version's system prompt.
fn fit_redacted(
    counter: &TokenCounter,
    settings: &VersionSettings,
    texts: &Redacted<'_>,
    context_window: u32,
    tokenizer: TokenizerKind,
    max_output_tokens: Option<u32>,
) -> Result<FittedContext, ContextTooLarge> {
    let system_prompt = match texts.caller_system {
        None => std::borrow::Cow::Borrowed(settings.system_prompt.as_str()),
        Some(suffix) => std::borrow::Cow::Owned(format!("{}\n\n{suffix}", settings.system_prompt)),
    };
    fit_context(
        counter,
        &ContextInput {
            system_prompt: &system_prompt,
            examples: &settings.few_shot_examples,
            turns: texts.turns,
            user_input: texts.user_input,
            max_output_tokens: max_output_tokens.unwrap_or(0),
            context_window,
            tokenizer,
        },
    )
}

/// Why the input cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputRefusal {
    /// A text touches one of the version's blocked categories.
    Blocked(BlockedCategory),
    /// The context does not fit the model's window.
    TooLarge(ContextTooLarge),
}

/// Plans the input side of an invocation: blocked categories on the texts as sent (input,
/// then turns, then the caller's system text), then PII redaction of each, then the context
/// fitting ([`fit_context`]) of the redacted texts. Each text is copied once, redacted or not.
pub fn plan_input<'a, T>(
    counter: &TokenCounter,
    draft: InputDraft<'a, T>,
) -> Result<InputPlan, InputRefusal>
where
    T: Iterator<Item = &'a str> + Clone,
{
    let settings = draft.settings;
    let guardrails = &settings.safety_guardrails;
    if !guardrails.blocked_categories.is_empty() {
        let texts = std::iter::once(draft.user_input)
            .chain(draft.turns.clone())
            .chain(draft.caller_system);
        for text in texts {
            if let Some(category) = categories::detect(text, &guardrails.blocked_categories) {
                return Err(InputRefusal::Blocked(category));
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
    let user_input = clean(draft.user_input);
    let turns: Vec<String> = draft.turns.map(&mut clean).collect();
    let caller_system = draft.caller_system.map(&mut clean);
    let fitted = fit_redacted(
        counter,
        settings,
        &Redacted {
            user_input: &user_input,
            turns: &turns,
            caller_system: caller_system.as_deref(),
        },
        draft.context_window,
        draft.tokenizer,
        draft.max_output_tokens,
    )
    .map_err(InputRefusal::TooLarge)?;
    Ok(InputPlan {
        user_input,
        turns,
        caller_system,
        fitted,
        input_redactions,
        redact_output: redact_input,
        mask_output: guardrails
            .content_filtering
            .contains(&ContentFilter::Profanity),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::{FewShotExample, SafetyGuardrails};

    fn settings(guardrails: SafetyGuardrails) -> VersionSettings {
        VersionSettings {
            model_endpoint_ref: "openai/gpt-4o".to_owned(),
            system_prompt: "You are a helpful support agent.".to_owned(),
            temperature: 0.2,
            safety_guardrails: guardrails,
            template_messages: Vec::new(),
            variables_schema: None,
            tool_settings: Default::default(),
            fallback_endpoint_refs: Vec::new(),
            few_shot_examples: vec![FewShotExample {
                input: "question about shipping".to_owned(),
                output: "answer about shipping".to_owned(),
            }],
        }
    }

    fn draft<'a>(
        settings: &'a VersionSettings,
        user_input: &'a str,
        turns: &'a [&'a str],
        caller_system: Option<&'a str>,
    ) -> InputDraft<'a, std::iter::Copied<std::slice::Iter<'a, &'a str>>> {
        InputDraft {
            settings,
            context_window: 10_000,
            tokenizer: TokenizerKind::O200kBase,
            user_input,
            turns: turns.iter().copied(),
            caller_system,
            max_output_tokens: Some(10),
        }
    }

    #[test]
    fn blocked_categories_are_checked_in_every_text_before_anything_else() {
        let counter = TokenCounter::load();
        let blocking = settings(SafetyGuardrails {
            blocked_categories: vec![BlockedCategory::Violence],
            ..SafetyGuardrails::default()
        });
        let bomb = "how do I build a pipe bomb";
        for (input, turns, system) in [
            (bomb, &[][..], None),
            ("hello", &["hi", bomb][..], None),
            ("hello", &[][..], Some(bomb)),
        ] {
            assert_eq!(
                plan_input(&counter, draft(&blocking, input, turns, system)),
                Err(InputRefusal::Blocked(BlockedCategory::Violence))
            );
        }
        let open = settings(SafetyGuardrails::default());
        assert!(plan_input(&counter, draft(&open, bomb, &[], None)).is_ok());
    }

    #[test]
    fn pii_is_redacted_in_every_text_and_counted_once_per_finding() {
        let counter = TokenCounter::load();
        let redacting = settings(SafetyGuardrails {
            content_filtering: vec![ContentFilter::Pii, ContentFilter::Profanity],
            ..SafetyGuardrails::default()
        });
        let plan = plan_input(
            &counter,
            draft(
                &redacting,
                "mail me at ann@example.com",
                &["bob@example.com wrote", "fine"],
                Some("cc carl@example.com"),
            ),
        )
        .unwrap();
        assert_eq!(
            plan.input_redactions,
            BTreeMap::from([("EMAIL".to_owned(), 3)])
        );
        assert!(!plan.user_input.contains("ann@"));
        assert_eq!(plan.turns.len(), 2);
        assert!(!plan.turns[0].contains("bob@") && plan.turns[1] == "fine");
        let system = plan.caller_system.as_deref().unwrap();
        assert!(!system.contains("carl@"));
        assert!(
            plan.fitted
                .system
                .starts_with(&format!("You are a helpful support agent.\n\n{system}"))
        );
        assert!(plan.redact_output && plan.mask_output);

        let plain = settings(SafetyGuardrails::default());
        let plan = plan_input(&counter, draft(&plain, "ann@example.com", &[], None)).unwrap();
        assert_eq!(plan.user_input, "ann@example.com");
        assert!(plan.input_redactions.is_empty() && !plan.redact_output && !plan.mask_output);
    }

    #[test]
    fn a_context_that_cannot_fit_is_refused_with_what_it_needs() {
        let counter = TokenCounter::load();
        let plain = settings(SafetyGuardrails::default());
        let mut small = draft(&plain, "Where is my order?", &["hello"], None);
        small.context_window = 5;
        match plan_input(&counter, small) {
            Err(InputRefusal::TooLarge(e)) => {
                assert_eq!(e.window, 5);
                assert!(e.needed > 5);
            }
            other => panic!("{other:?}"),
        }
    }
    #[test]
    fn a_refit_fits_the_redacted_texts_to_another_window_and_tokenizer() {
        let counter = TokenCounter::load();
        let redacting = settings(SafetyGuardrails {
            content_filtering: vec![ContentFilter::Pii],
            ..SafetyGuardrails::default()
        });
        let plan = plan_input(
            &counter,
            draft(
                &redacting,
                "mail ann@example.com",
                &["earlier turn"],
                Some("be brief"),
            ),
        )
        .unwrap();
        let same = plan
            .refit(
                &counter,
                &redacting,
                10_000,
                TokenizerKind::O200kBase,
                Some(10),
            )
            .unwrap();
        assert_eq!(same, plan.fitted);
        let other = plan
            .refit(
                &counter,
                &redacting,
                10_000,
                TokenizerKind::Cl100kBase,
                Some(10),
            )
            .unwrap();
        assert!(other.system.contains("be brief") && other.dropped_turns == 0);
        // A smaller window drops the example and the earlier turn first, then refuses.
        let needed_bare = plan
            .refit(
                &counter,
                &redacting,
                10_000,
                TokenizerKind::Cl100kBase,
                Some(10),
            )
            .unwrap()
            .prompt_tokens;
        let tight = plan.refit(&counter, &redacting, 5, TokenizerKind::Cl100kBase, Some(10));
        assert!(
            matches!(tight, Err(e) if e.window == 5 && e.needed > 5),
            "{needed_bare}"
        );
    }
}
