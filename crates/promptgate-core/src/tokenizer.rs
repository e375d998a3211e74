//! Exact token counting with the model's real tokenizer (tiktoken's BPE tables, embedded in the
//! binary, so counting works offline).

use std::fmt;
use std::str::FromStr;

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
#[error("unknown tokenizer {0:?}; use o200k_base or cl100k_base")]
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

/// Both encoders, loaded once. Loading takes a few hundred milliseconds, so the server builds
/// one counter at start-up and shares it; nothing on the request path loads a table.
#[derive(Clone, Copy)]
pub struct TokenCounter {
    o200k: &'static CoreBPE,
    cl100k: &'static CoreBPE,
}

impl fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenCounter")
    }
}

impl TokenCounter {
    /// Loads (or reuses, process-wide) both encoders.
    pub fn load() -> Self {
        TokenCounter {
            o200k: tiktoken_rs::o200k_base_singleton(),
            cl100k: tiktoken_rs::cl100k_base_singleton(),
        }
    }

    /// The number of tokens of `text`. Special-token text such as `<|endoftext|>` counts as
    /// ordinary text, as providers treat it in user-supplied content.
    pub fn count(&self, kind: TokenizerKind, text: &str) -> usize {
        let encoder = match kind {
            TokenizerKind::O200kBase => self.o200k,
            TokenizerKind::Cl100kBase => self.cl100k,
        };
        encoder.encode_ordinary(text).len()
    }
}

#[cfg(test)]
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
