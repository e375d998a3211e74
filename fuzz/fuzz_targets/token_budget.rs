//! The system-prompt token budget (`promptgate_core::prompt::SettingsDraft::check` with the
//! `TokenCounter` of `tokenizer.rs`), and the SDK's local budget check that must agree with it.
//!
//! The input is a small header (budget, tokenizer, context window) and the system prompt; the
//! endpoint has a small context window so that the context-window check is reached too.
//!
//! Properties:
//! - counting never panics, whatever the text (special-token text included);
//! - with every other field valid, `check` reports `token.budget.exceeded` iff the count is over
//!   `maxTokens`, and `context.window.exceeded` iff it is over the endpoint's window, with the
//!   count and the limit as the violation's `estimated` and `limit`; otherwise it accepts with
//!   `systemPromptTokens` equal to the count and the endpoint's tokenizer;
//! - an invalid prompt or budget is refused before counting, never accepted (a malformed
//!   `{{` placeholder makes a prompt invalid; a template is counted with its placeholders
//!   removed);
//! - the SDK's `PromptDraft::check_budget` gives the same count and the same verdict.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use promptgate_client::{Error as SdkError, PromptDraft};
use promptgate_core::endpoint::{EndpointCatalogue, ModelEndpoint, ProviderKind};
use promptgate_core::prompt::{GuardrailsDraft, MAX_SYSTEM_PROMPT_CHARS, SettingsDraft};
use promptgate_core::template::{Placeholder, SchemaCheck, Template};
use promptgate_core::{TokenCounter, TokenizerKind, Violation, ViolationCode};

/// Loading the BPE tables takes a few hundred milliseconds: once per process.
static COUNTER: LazyLock<TokenCounter> = LazyLock::new(TokenCounter::load);

/// The input: a 10-byte header, then the system prompt (UTF-8, invalid sequences replaced), so
/// that seeds are easy to write: `flags`, `context_window`, then `maxTokens` as 8 bytes
/// little-endian (read only when flag bit 2 is set).
#[derive(Debug)]
struct Input {
    system_prompt: String,
    /// `maxTokens` as a client may send it (negative and zero included).
    max_tokens: Option<i64>,
    /// Small so that short texts can exceed it.
    context_window: u8,
    /// Flag bit 0: the small endpoint counts with o200k_base (else cl100k_base).
    o200k: bool,
    /// Flag bit 1: also check against the built-in `openai/gpt-4o` (window 128 000).
    builtin: bool,
}

impl Input {
    fn read(data: &[u8]) -> Option<Input> {
        let (header, text) = data.split_at_checked(10)?;
        let flags = header[0];
        let mut budget = [0u8; 8];
        budget.copy_from_slice(&header[2..10]);
        Some(Input {
            system_prompt: String::from_utf8_lossy(text).into_owned(),
            max_tokens: (flags & 4 != 0).then(|| i64::from_le_bytes(budget)),
            context_window: header[1],
            o200k: flags & 1 != 0,
            builtin: flags & 2 != 0,
        })
    }
}

const FUZZ_REF: &str = "fuzz/small";

/// The drafts here carry no variables schema, so the schema check is never asked.
struct NoSchema;

impl SchemaCheck for NoSchema {
    fn check(&self, _schema: &str, _placeholders: &[Placeholder]) -> Vec<Violation> {
        unreachable!("a draft without a variables schema is not checked against one")
    }

    fn check_document(&self, _schema: &str, _field: &str) -> Vec<Violation> {
        unreachable!("a draft without tools or an output schema checks no schema document")
    }
}

fn catalogue(window: u32, kind: TokenizerKind) -> EndpointCatalogue {
    let small = ModelEndpoint::new(
        FUZZ_REF,
        ProviderKind::OpenAi,
        "",
        "fuzz-model",
        None,
        window,
    )
    .with_tokenizer(kind);
    EndpointCatalogue::with_overrides([small])
}

fn check_one(input: &Input, reference: &str, catalogue: &EndpointCatalogue) {
    let endpoint = catalogue
        .get(reference)
        .expect("the endpoint is in the catalogue");
    let counter = &*COUNTER;
    let text = input.system_prompt.as_str();
    // The budget is checked on the template with its placeholders removed; a malformed
    // placeholder makes the prompt invalid (refused before counting).
    let template = Template::parse(text);
    let count = template
        .as_ref()
        .map_or(0, |t| counter.count(endpoint.tokenizer, &t.literal()));

    let draft = SettingsDraft {
        model_endpoint_ref: Some(reference.to_owned()),
        system_prompt: Some(text.to_owned()),
        temperature: Some(0.5),
        safety_guardrails: Some(GuardrailsDraft {
            content_filtering: Some(vec!["pii".into()]),
            max_tokens: input.max_tokens,
            blocked_categories: Some(vec![]),
        }),
        few_shot_examples: None,
        template_messages: None,
        variables_schema: None,
        tools: None,
        tool_choice: None,
        response_format: None,
        fallback_endpoint_refs: None,
    };
    let result = draft.check(None, catalogue, counter, &NoSchema);

    let prompt_ok = !text.trim().is_empty()
        && text.chars().count() <= MAX_SYSTEM_PROMPT_CHARS
        && !text.contains('\0')
        && template.is_ok();
    let budget: Option<u32> = match input.max_tokens {
        None => None,
        Some(n) => match u32::try_from(n) {
            Ok(n) if n > 0 => Some(n),
            _ => {
                // An invalid budget is refused (before any counting), never accepted.
                let errs = result.expect_err("an invalid maxTokens was accepted");
                assert!(
                    errs.iter().any(|v| v.field == "safetyGuardrails.maxTokens"),
                    "maxTokens {n} refused without naming it: {errs:?}"
                );
                return;
            }
        },
    };
    if !prompt_ok {
        let errs = result.expect_err("an invalid system prompt was accepted");
        assert!(
            errs.iter().all(|v| v.code == ViolationCode::InvalidValue),
            "counted an invalid prompt: {errs:?}"
        );
        return;
    }

    let count_u32 = u32::try_from(count).unwrap_or(u32::MAX);
    let over_budget = budget.is_some_and(|limit| count_u32 > limit);
    let over_window = count_u32 > endpoint.context_window;
    match result {
        Ok(checked) => {
            assert!(
                !over_budget,
                "{count} tokens accepted with a budget of {budget:?}"
            );
            assert!(
                !over_window,
                "{count} tokens accepted with a window of {}",
                endpoint.context_window
            );
            assert_eq!(checked.system_prompt_tokens, count_u32);
            assert_eq!(checked.tokenizer, endpoint.tokenizer);
            assert_eq!(checked.settings.system_prompt, text);
            assert_eq!(checked.settings.safety_guardrails.max_tokens, budget);
        }
        Err(errs) => {
            let budget_violation = errs
                .iter()
                .find(|v| v.code == ViolationCode::TokenBudgetExceeded);
            let window_violation = errs
                .iter()
                .find(|v| v.code == ViolationCode::ContextWindowExceeded);
            assert_eq!(
                budget_violation.is_some(),
                over_budget,
                "budget {budget:?}, {count} tokens: {errs:?}"
            );
            assert_eq!(
                window_violation.is_some(),
                over_window,
                "window {}, {count} tokens: {errs:?}",
                endpoint.context_window
            );
            assert_eq!(
                errs.len(),
                usize::from(over_budget) + usize::from(over_window),
                "unexpected violations: {errs:?}"
            );
            if let Some(v) = budget_violation {
                assert_eq!(v.field, "systemPrompt");
                assert_eq!(v.params["estimated"], count.to_string());
                assert_eq!(v.params["limit"], budget.unwrap_or_default().to_string());
                assert_eq!(v.params["tokenizer"], endpoint.tokenizer.as_str());
            }
            if let Some(v) = window_violation {
                assert_eq!(v.params["estimated"], count.to_string());
                assert_eq!(v.params["limit"], endpoint.context_window.to_string());
            }
        }
    }

    // The SDK checks the budget locally with the same tokenizer: same count, same verdict.
    let mut sdk = PromptDraft::new("fuzz", reference).system_prompt(text);
    if let Some(limit) = budget {
        sdk = sdk.max_tokens(limit);
    }
    match sdk.check_budget(endpoint.tokenizer) {
        Ok(n) => {
            assert_eq!(n, count);
            assert!(
                !over_budget,
                "the SDK accepted {count} tokens over the budget {budget:?}"
            );
        }
        Err(SdkError::TokenBudgetExceeded {
            estimated, limit, ..
        }) => {
            assert_eq!(estimated, count);
            assert_eq!(Some(limit as u64), budget.map(u64::from));
            assert!(
                over_budget,
                "the SDK refused {count} tokens within the budget {limit}"
            );
        }
        Err(other) => panic!("unexpected SDK error: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::read(data) else {
        return;
    };
    // Both tokenizers count every text.
    let _ = COUNTER.count(TokenizerKind::O200kBase, &input.system_prompt);
    let _ = COUNTER.count(TokenizerKind::Cl100kBase, &input.system_prompt);

    let kind = if input.o200k {
        TokenizerKind::O200kBase
    } else {
        TokenizerKind::Cl100kBase
    };
    let catalogue = catalogue(u32::from(input.context_window), kind);
    check_one(&input, FUZZ_REF, &catalogue);
    if input.builtin {
        check_one(&input, "openai/gpt-4o", &catalogue);
    }
});
