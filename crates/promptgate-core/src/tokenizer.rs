//! Exact token counting with the model's real tokenizer (tiktoken's BPE tables, embedded in the
//! binary, so counting works offline).
//!
//! The counter ([`TokenCounter`]) and [`TokenizerKind::published_for_model`] need the
//! `tokenizer` feature (on by default); the tokenizer names are always here, so a build without
//! the tables (the SDK without its `tokens` feature) still speaks of tokenizers.

use std::fmt;
use std::str::FromStr;

#[cfg(feature = "tokenizer")]
use tiktoken_rs::CoreBPE;

/// A BPE vocabulary promptgate can count with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenizerKind {
    /// GPT-4o, GPT-4.1 and the o-series.
    O200kBase,
    /// GPT-4 and GPT-3.5; also the estimate for models whose tokenizer is not public.
    Cl100kBase,
}

impl TokenizerKind {
    /// The wire and configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenizerKind::O200kBase => "o200k_base",
            TokenizerKind::Cl100kBase => "cl100k_base",
        }
    }

    /// The tokenizer OpenAI publishes for `model`, when it is an OpenAI model tiktoken knows.
    #[cfg(feature = "tokenizer")]
    pub fn published_for_model(model: &str) -> Option<Self> {
        match tiktoken_rs::tokenizer::get_tokenizer(model)? {
            tiktoken_rs::tokenizer::Tokenizer::O200kBase => Some(TokenizerKind::O200kBase),
            tiktoken_rs::tokenizer::Tokenizer::Cl100kBase => Some(TokenizerKind::Cl100kBase),
            _ => None,
        }
    }
}

impl fmt::Display for TokenizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tokenizer name that is not supported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown tokenizer {}; use o200k_base or cl100k_base",
    crate::violation::quoted(.0)
)]
pub struct UnknownTokenizer(pub String);

impl FromStr for TokenizerKind {
    type Err = UnknownTokenizer;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "o200k_base" => Ok(TokenizerKind::O200kBase),
            "cl100k_base" => Ok(TokenizerKind::Cl100kBase),
            _ => Err(UnknownTokenizer(s.to_owned())),
        }
    }
}

/// The token counter. Each encoder's table is loaded on its first use (a few hundred
/// milliseconds) and then shared process-wide; a process that never counts with `cl100k_base`
/// never pays its tens of megabytes. A server warms the encoders it expects to use at start-up
/// ([`TokenCounter::warm`]), so that no request waits for a table.
#[cfg(feature = "tokenizer")]
#[derive(Clone, Copy, Default)]
pub struct TokenCounter {
    _shared: (),
}

#[cfg(feature = "tokenizer")]
impl fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenCounter")
    }
}

#[cfg(feature = "tokenizer")]
impl TokenCounter {
    /// A counter; nothing is loaded until it is used or warmed.
    pub fn load() -> Self {
        TokenCounter { _shared: () }
    }

    /// Loads `kind`'s table now, if it is not loaded yet.
    pub fn warm(&self, kind: TokenizerKind) {
        let _ = encoder(kind);
    }

    /// The number of tokens of `text`. Special-token text such as `<|endoftext|>` counts as
    /// ordinary text, as providers treat it in user-supplied content.
    pub fn count(&self, kind: TokenizerKind, text: &str) -> usize {
        encoder(kind).encode_ordinary(text).len()
    }
}

/// The process-wide encoder of `kind`, loaded on first use.
#[cfg(feature = "tokenizer")]
fn encoder(kind: TokenizerKind) -> &'static CoreBPE {
    match kind {
        TokenizerKind::O200kBase => tiktoken_rs::o200k_base_singleton(),
        TokenizerKind::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
    }
}

#[cfg(all(test, feature = "tokenizer"))]
mod tests {
    use super::*;

    #[test]
    fn counts_match_published_examples() {
        let counter = TokenCounter::load();
        assert_eq!(counter.count(TokenizerKind::Cl100kBase, "hello world"), 2);
        assert_eq!(counter.count(TokenizerKind::O200kBase, "hello world"), 2);
        assert_eq!(counter.count(TokenizerKind::O200kBase, ""), 0);
        // Special tokens in content are text, not control tokens.
        assert!(counter.count(TokenizerKind::O200kBase, "<|endoftext|>") > 1);
    }

    #[test]
    fn knows_openai_models() {
        assert_eq!(
            TokenizerKind::published_for_model("gpt-4o-mini"),
            Some(TokenizerKind::O200kBase)
        );
        assert_eq!(
            TokenizerKind::published_for_model("gpt-4"),
            Some(TokenizerKind::Cl100kBase)
        );
        assert_eq!(
            TokenizerKind::published_for_model("claude-3-sonnet-20240229"),
            None
        );
    }
}
