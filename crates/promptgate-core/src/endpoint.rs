//! Model endpoints: the provider, model and limits that a prompt's `modelEndpointRef` names.
//!
//! A built-in catalogue makes a fresh install useful without a configuration file; the server's
//! `[[model_endpoints]]` entries add to it or replace entries by `ref`.

use std::collections::BTreeMap;
use std::fmt;

use crate::tokenizer::TokenizerKind;

/// Which wire protocol an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI-compatible Chat Completions (OpenAI, vLLM, llama.cpp's server, Ollama, …).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// The offline provider inside the gateway: deterministic, needs no key.
    Builtin,
}

impl ProviderKind {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Builtin => "builtin",
        }
    }

    /// Parses the configuration name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "openai" => Some(ProviderKind::OpenAi),
            "anthropic" => Some(ProviderKind::Anthropic),
            "builtin" => Some(ProviderKind::Builtin),
            _ => None,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One callable model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEndpoint {
    /// The name prompts use, such as `anthropic/claude-3-sonnet`.
    pub reference: String,
    /// The protocol.
    pub provider: ProviderKind,
    /// Where the provider is; empty for the built-in provider.
    pub base_url: String,
    /// The provider's model name.
    pub model: String,
    /// The environment variable that holds the API key; never the key itself.
    pub api_key_env: Option<String>,
    /// The model's context window, in tokens.
    pub context_window: u32,
    /// The tokenizer used to count.
    pub tokenizer: TokenizerKind,
    /// Whether `tokenizer` is the model's own (false: the count is an estimate).
    pub tokenizer_exact: bool,
    /// The timeout of one provider request.
    pub timeout_ms: u64,
    /// Retries after a provider's 429 or 5xx.
    pub max_retries: u32,
    /// What the operator pays per token, when configured: the invocation records of a priced
    /// endpoint carry their cost. None are built in, since prices change and only the operator
    /// knows theirs.
    pub prices: Option<Prices>,
}

/// An endpoint's prices in US dollars per million tokens, as providers publish them. Both are
/// finite and at least 0 (the configuration checks it); a price the operator left out is 0.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Prices {
    /// Dollars per million prompt (input) tokens.
    pub input_per_million: f64,
    /// Dollars per million completion (output) tokens.
    pub output_per_million: f64,
}

impl Prices {
    /// The cost in dollars of one call that sent `prompt_tokens` and generated
    /// `completion_tokens`: prompt × input / 10⁶ + completion × output / 10⁶.
    ///
    /// Each product is divided by 10⁶ after the multiplication (rather than multiplying by a
    /// per-token price, which is rarely exact in binary) so that a whole number of dollars
    /// divided by 10⁶ is the correctly rounded figure a hand computation gives. Only absurd
    /// prices (above about 10²⁹⁹ dollars per million) make it overflow to infinity.
    pub fn cost_usd(&self, prompt_tokens: u32, completion_tokens: u32) -> f64 {
        f64::from(prompt_tokens) * self.input_per_million / 1e6
            + f64::from(completion_tokens) * self.output_per_million / 1e6
    }
}

/// Default per-request timeout for provider calls.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Default retries for provider calls.
pub const DEFAULT_MAX_RETRIES: u32 = 2;

impl ModelEndpoint {
    /// An endpoint with the tokenizer and its exactness derived from the provider and model:
    /// OpenAI models that tiktoken knows are exact; other models are estimated with
    /// `cl100k_base` (Anthropic) or `o200k_base` (anything else).
    pub fn new(
        reference: &str,
        provider: ProviderKind,
        base_url: &str,
        model: &str,
        api_key_env: Option<&str>,
        context_window: u32,
    ) -> Self {
        let (tokenizer, tokenizer_exact) = default_tokenizer(provider, model);
        ModelEndpoint {
            reference: reference.to_owned(),
            provider,
            base_url: base_url.to_owned(),
            model: model.to_owned(),
            api_key_env: api_key_env.map(str::to_owned),
            context_window,
            tokenizer,
            tokenizer_exact,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_retries: DEFAULT_MAX_RETRIES,
            prices: None,
        }
    }

    /// Sets a tokenizer explicitly; it is exact only if it is the model's published one.
    pub fn with_tokenizer(mut self, tokenizer: TokenizerKind) -> Self {
        self.tokenizer = tokenizer;
        self.tokenizer_exact = self.provider == ProviderKind::Builtin
            || (self.provider == ProviderKind::OpenAi
                && TokenizerKind::published_for_model(&self.model) == Some(tokenizer));
        self
    }
}

/// The tokenizer for a provider and model, and whether it is exact.
pub fn default_tokenizer(provider: ProviderKind, model: &str) -> (TokenizerKind, bool) {
    match (provider, TokenizerKind::published_for_model(model)) {
        (ProviderKind::Builtin, _) => (TokenizerKind::O200kBase, true),
        (ProviderKind::OpenAi, Some(kind)) => (kind, true),
        (ProviderKind::Anthropic, _) => (TokenizerKind::Cl100kBase, false),
        (_, _) => (TokenizerKind::O200kBase, false),
    }
}

/// The endpoints every gateway knows without configuration.
pub fn builtin_catalogue() -> Vec<ModelEndpoint> {
    const OPENAI: &str = "https://api.openai.com/v1";
    const ANTHROPIC: &str = "https://api.anthropic.com";
    let openai = |r: &str, m: &str, window: u32| {
        ModelEndpoint::new(
            r,
            ProviderKind::OpenAi,
            OPENAI,
            m,
            Some("OPENAI_API_KEY"),
            window,
        )
    };
    let anthropic = |r: &str, m: &str| {
        ModelEndpoint::new(
            r,
            ProviderKind::Anthropic,
            ANTHROPIC,
            m,
            Some("ANTHROPIC_API_KEY"),
            200_000,
        )
    };
    vec![
        ModelEndpoint::new(
            "builtin/echo",
            ProviderKind::Builtin,
            "",
            "echo",
            None,
            128_000,
        ),
        openai("openai/gpt-4o", "gpt-4o", 128_000),
        openai("openai/gpt-4o-mini", "gpt-4o-mini", 128_000),
        openai("openai/gpt-4.1", "gpt-4.1", 1_047_576),
        openai("openai/gpt-4.1-mini", "gpt-4.1-mini", 1_047_576),
        openai("openai/gpt-4.1-nano", "gpt-4.1-nano", 1_047_576),
        openai("openai/gpt-4-turbo", "gpt-4-turbo", 128_000),
        openai("openai/gpt-3.5-turbo", "gpt-3.5-turbo", 16_385),
        anthropic("anthropic/claude-3-5-sonnet", "claude-3-5-sonnet-latest"),
        anthropic("anthropic/claude-3-5-haiku", "claude-3-5-haiku-latest"),
        anthropic("anthropic/claude-3-7-sonnet", "claude-3-7-sonnet-latest"),
        anthropic("anthropic/claude-3-sonnet", "claude-3-sonnet-20240229"),
        anthropic("anthropic/claude-3-haiku", "claude-3-haiku-20240307"),
        anthropic("anthropic/claude-3-opus", "claude-3-opus-latest"),
        anthropic("anthropic/claude-sonnet-4", "claude-sonnet-4-20250514"),
    ]
}

/// The endpoints a gateway serves, by `ref`.
#[derive(Debug, Clone, Default)]
pub struct EndpointCatalogue {
    by_ref: BTreeMap<String, ModelEndpoint>,
}

impl EndpointCatalogue {
    /// The built-in catalogue with `overrides` added or replacing entries of the same `ref`.
    pub fn with_overrides(overrides: impl IntoIterator<Item = ModelEndpoint>) -> Self {
        let mut by_ref: BTreeMap<String, ModelEndpoint> = builtin_catalogue()
            .into_iter()
            .map(|e| (e.reference.clone(), e))
            .collect();
        for endpoint in overrides {
            by_ref.insert(endpoint.reference.clone(), endpoint);
        }
        EndpointCatalogue { by_ref }
    }

    /// The endpoint named `reference`.
    pub fn get(&self, reference: &str) -> Option<&ModelEndpoint> {
        self.by_ref.get(reference)
    }

    /// Every endpoint, sorted by `ref`.
    pub fn iter(&self) -> impl Iterator<Item = &ModelEndpoint> {
        self.by_ref.values()
    }

    /// Every `ref`, comma-separated, for error messages that list the choices.
    pub fn refs_list(&self) -> String {
        self.by_ref.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_tokens_times_the_price_per_million() {
        let prices = Prices {
            input_per_million: 3.0,
            output_per_million: 15.0,
        };
        // 1000 × 3 / 10⁶ + 500 × 15 / 10⁶ = 0.003 + 0.0075 = 0.0105.
        assert_eq!(prices.cost_usd(1000, 500), 0.003 + 0.0075);
        assert!((prices.cost_usd(1000, 500) - 0.0105).abs() < 1e-15);
        assert_eq!(prices.cost_usd(0, 0), 0.0);
        // One million of each costs exactly the two prices.
        assert_eq!(prices.cost_usd(1_000_000, 1_000_000), 18.0);
        // A price left out counts 0.
        let input_only = Prices {
            input_per_million: 0.15,
            ..Prices::default()
        };
        assert_eq!(input_only.cost_usd(2_000, 1_000_000), 2_000.0 * 0.15 / 1e6);
        // The largest token counts stay finite at real prices.
        assert!(prices.cost_usd(u32::MAX, u32::MAX).is_finite());
        assert!(builtin_catalogue().iter().all(|e| e.prices.is_none()));
    }

    #[test]
    fn builtin_catalogue_tokenizers() {
        let catalogue = EndpointCatalogue::with_overrides([]);
        let gpt = catalogue.get("openai/gpt-4o").unwrap();
        assert_eq!(
            (gpt.tokenizer, gpt.tokenizer_exact),
            (TokenizerKind::O200kBase, true)
        );
        let claude = catalogue.get("anthropic/claude-3-sonnet").unwrap();
        assert_eq!(
            (claude.tokenizer, claude.tokenizer_exact),
            (TokenizerKind::Cl100kBase, false)
        );
        let echo = catalogue.get("builtin/echo").unwrap();
        assert_eq!(echo.provider, ProviderKind::Builtin);
        assert!(echo.api_key_env.is_none());
    }

    #[test]
    fn overrides_replace_by_ref() {
        let local = ModelEndpoint::new(
            "openai/gpt-4o",
            ProviderKind::OpenAi,
            "http://127.0.0.1:9/v1",
            "gpt-4o",
            None,
            8_000,
        );
        let catalogue = EndpointCatalogue::with_overrides([local]);
        assert_eq!(
            catalogue.get("openai/gpt-4o").unwrap().context_window,
            8_000
        );
    }

    #[test]
    fn explicit_tokenizer_is_exact_only_when_published() {
        let e = ModelEndpoint::new("x/gpt-4o", ProviderKind::OpenAi, "", "gpt-4o", None, 1)
            .with_tokenizer(TokenizerKind::Cl100kBase);
        assert!(!e.tokenizer_exact);
        let e = e.with_tokenizer(TokenizerKind::O200kBase);
        assert!(e.tokenizer_exact);
    }
}
