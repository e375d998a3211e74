//! Few-shot examples in a prompt: how they are rendered after the system prompt, and how many
//! fit a token limit.
//!
//! The rendering is the contract's: the system prompt, a blank line, `Examples:`, then one
//! `User: …` and one `Assistant: …` line per example, oldest first. Fitting counts each example
//! once (tiktoken splits text at line starts, so a block's count is the sum of its lines'
//! counts) and then checks the chosen block with one exact count, so the work is linear in the
//! number of examples rather than one render per dropped example.

use crate::prompt::FewShotExample;
use crate::tokenizer::{TokenCounter, TokenizerKind};

/// Which examples to keep when not all fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FitStrategy {
    /// Drop the oldest examples until the rest fit (the gateway's own behaviour).
    #[default]
    DropOldest,
    /// Keep the most recent examples that fit, skipping any single one that is too long
    /// instead of stopping at it.
    KeepRecent,
}

impl FitStrategy {
    /// The CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            FitStrategy::DropOldest => "drop-oldest",
            FitStrategy::KeepRecent => "keep-recent",
        }
    }

    /// Parses the CLI name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "drop-oldest" => Some(FitStrategy::DropOldest),
            "keep-recent" => Some(FitStrategy::KeepRecent),
            _ => None,
        }
    }
}

/// The result of fitting examples to a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FittedPrompt {
    /// The system prompt followed by the kept examples.
    pub text: String,
    /// `text`'s exact token count.
    pub tokens: usize,
    /// Indices (into the given examples) of the examples kept, oldest first.
    pub kept: Vec<usize>,
    /// Indices of the examples dropped, oldest first.
    pub dropped: Vec<usize>,
}

/// Why nothing fits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the base prompt alone is {tokens} tokens ({tokenizer}); the limit is {limit}")]
pub struct BaseTooLong {
    /// The base prompt's tokens.
    pub tokens: usize,
    /// The limit.
    pub limit: usize,
    /// The tokenizer's name.
    pub tokenizer: &'static str,
}

const EXAMPLES_HEADER: &str = "\n\nExamples:\n";

/// Renders the system prompt with its examples, oldest first; the prompt alone when there are
/// none.
pub fn render<'a>(base: &str, examples: impl IntoIterator<Item = &'a FewShotExample>) -> String {
    let mut examples = examples.into_iter().peekable();
    if examples.peek().is_none() {
        return base.to_owned();
    }
    let mut out = String::with_capacity(base.len() + 256);
    out.push_str(base);
    out.push_str(EXAMPLES_HEADER);
    for example in examples {
        push_example(&mut out, example);
    }
    out
}

fn push_example(out: &mut String, example: &FewShotExample) {
    out.push_str("User: ");
    out.push_str(&example.input);
    out.push_str("\nAssistant: ");
    out.push_str(&example.output);
    out.push('\n');
}

/// Keeps as many examples as fit within `limit` tokens together with `base`, by `strategy`.
pub fn fit(
    counter: &TokenCounter,
    tokenizer: TokenizerKind,
    base: &str,
    examples: &[FewShotExample],
    limit: usize,
    strategy: FitStrategy,
) -> Result<FittedPrompt, BaseTooLong> {
    let base_tokens = counter.count(tokenizer, base);
    if base_tokens > limit {
        return Err(BaseTooLong {
            tokens: base_tokens,
            limit,
            tokenizer: tokenizer.as_str(),
        });
    }
    let header_tokens = counter.count(tokenizer, &format!("{base}{EXAMPLES_HEADER}"));
    let costs: Vec<usize> = examples
        .iter()
        .map(|e| {
            let mut line = String::new();
            push_example(&mut line, e);
            counter.count(tokenizer, &line)
        })
        .collect();

    let mut kept = choose(&costs, header_tokens, limit, strategy);
    loop {
        let text = render(base, kept.iter().map(|&i| &examples[i]));
        let tokens = counter.count(tokenizer, &text);
        if tokens <= limit || kept.is_empty() {
            let dropped = (0..examples.len()).filter(|i| !kept.contains(i)).collect();
            return Ok(FittedPrompt {
                text,
                tokens,
                kept,
                dropped,
            });
        }
        // The per-line sum was off by a merge at a boundary: drop one more and check again.
        // This is rare and bounded by the number of examples.
        match strategy {
            FitStrategy::DropOldest => {
                kept.remove(0);
            }
            FitStrategy::KeepRecent => {
                let most_costly = (0..kept.len()).max_by_key(|&k| (costs[kept[k]], usize::MAX - k));
                if let Some(k) = most_costly {
                    kept.remove(k);
                }
            }
        }
    }
}

/// The indices to keep by the per-example costs, oldest first.
fn choose(costs: &[usize], header: usize, limit: usize, strategy: FitStrategy) -> Vec<usize> {
    match strategy {
        FitStrategy::DropOldest => {
            // Walk from the newest while the suffix fits; what is left before it is dropped.
            let mut total = header;
            let mut first_kept = costs.len();
            for (i, cost) in costs.iter().enumerate().rev() {
                if total + cost > limit {
                    break;
                }
                total += cost;
                first_kept = i;
            }
            (first_kept..costs.len()).collect()
        }
        FitStrategy::KeepRecent => {
            let mut total = header;
            let mut kept: Vec<usize> = Vec::new();
            for (i, cost) in costs.iter().enumerate().rev() {
                if total + cost <= limit {
                    total += cost;
                    kept.push(i);
                }
            }
            kept.reverse();
            kept
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ex(input: &str, output: &str) -> FewShotExample {
        FewShotExample {
            input: input.to_owned(),
            output: output.to_owned(),
        }
    }

    #[test]
    fn renders_the_contract_block() {
        let text = render("Be kind.", &[ex("Hi", "Hello!"), ex("Bye", "Goodbye!")]);
        assert_eq!(
            text,
            "Be kind.\n\nExamples:\nUser: Hi\nAssistant: Hello!\nUser: Bye\nAssistant: Goodbye!\n"
        );
        assert_eq!(render("Be kind.", &[]), "Be kind.");
    }

    #[test]
    fn drop_oldest_keeps_a_suffix_and_reports_drops() {
        let counter = TokenCounter::load();
        let examples: Vec<_> = (0..10)
            .map(|i| {
                ex(
                    &format!("question number {i}"),
                    &format!("answer number {i}"),
                )
            })
            .collect();
        let all = fit(
            &counter,
            TokenizerKind::O200kBase,
            "Base.",
            &examples,
            10_000,
            FitStrategy::DropOldest,
        )
        .unwrap();
        assert!(all.dropped.is_empty());
        let limit = all.tokens - 1;
        let some = fit(
            &counter,
            TokenizerKind::O200kBase,
            "Base.",
            &examples,
            limit,
            FitStrategy::DropOldest,
        )
        .unwrap();
        assert_eq!(some.dropped, vec![0]);
        assert_eq!(some.kept, (1..10).collect::<Vec<_>>());
        assert!(some.tokens <= limit);
        assert_eq!(
            some.tokens,
            counter.count(TokenizerKind::O200kBase, &some.text)
        );
    }

    #[test]
    fn keep_recent_skips_one_long_example() {
        let counter = TokenCounter::load();
        let long = "word ".repeat(500);
        let examples = vec![ex("a", "b"), ex(&long, "x"), ex("c", "d")];
        let fitted = fit(
            &counter,
            TokenizerKind::O200kBase,
            "Base.",
            &examples,
            60,
            FitStrategy::KeepRecent,
        )
        .unwrap();
        assert_eq!(fitted.kept, vec![0, 2]);
        assert_eq!(fitted.dropped, vec![1]);
        let dropped_oldest = fit(
            &counter,
            TokenizerKind::O200kBase,
            "Base.",
            &examples,
            60,
            FitStrategy::DropOldest,
        )
        .unwrap();
        assert_eq!(dropped_oldest.kept, vec![2]);
    }

    #[test]
    fn base_over_limit_is_an_error() {
        let counter = TokenCounter::load();
        let err = fit(
            &counter,
            TokenizerKind::O200kBase,
            "one two three four",
            &[],
            2,
            FitStrategy::DropOldest,
        )
        .unwrap_err();
        assert_eq!(err.limit, 2);
        assert!(err.tokens > 2);
    }

    proptest! {
        /// Whatever the examples, the result fits, its count is exact, and kept ∪ dropped is
        /// every index exactly once.
        #[test]
        fn result_always_fits_exactly(
            examples in prop::collection::vec(("[a-zA-Z0-9 ,.!?'\\n]{0,40}", "[a-zA-Z0-9 ,.!?'\\n]{0,40}"), 0..12),
            limit in 5usize..200,
            keep_recent in any::<bool>(),
        ) {
            let counter = TokenCounter::load();
            let examples: Vec<_> = examples.iter().map(|(i, o)| ex(i, o)).collect();
            let strategy = if keep_recent { FitStrategy::KeepRecent } else { FitStrategy::DropOldest };
            if let Ok(fitted) = fit(&counter, TokenizerKind::O200kBase, "You help.", &examples, limit, strategy) {
                prop_assert!(fitted.tokens <= limit);
                prop_assert_eq!(fitted.tokens, counter.count(TokenizerKind::O200kBase, &fitted.text));
                let mut all: Vec<usize> = fitted.kept.iter().chain(&fitted.dropped).copied().collect();
                all.sort_unstable();
                prop_assert_eq!(all, (0..examples.len()).collect::<Vec<_>>());
                if strategy == FitStrategy::DropOldest {
                    // Drop-oldest keeps a suffix.
                    prop_assert!(fitted.kept.iter().enumerate().all(|(k, &i)| i == examples.len() - fitted.kept.len() + k));
                }
            }
        }
    }
}
