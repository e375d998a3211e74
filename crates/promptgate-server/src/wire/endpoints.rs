//! Model endpoints as the contract shows them: never a key, only the variable's name, and
//! `baseUrl` without user-info, query string or fragment (which may hold credentials: any
//! `ai:prompt:read` client reads this).

use promptgate_api as api;
use promptgate_core::{ModelEndpoint, ProviderKind};

use crate::upstream::CircuitReport;

/// A model endpoint as `GET …/model-endpoints` shows it, with this replica's circuit breaker.
pub fn wire_endpoint(e: &ModelEndpoint, circuit: Option<CircuitReport>) -> api::ModelEndpoint {
    api::ModelEndpoint {
        reference: e.reference.clone(),
        provider: e.provider.as_str().to_owned(),
        base_url: promptgate_core::redact::url_without_secrets(&e.base_url),
        model: e.model.clone(),
        context_window: e.context_window,
        tokenizer: e.tokenizer.as_str().to_owned(),
        tokenizer_exact: e.tokenizer_exact,
        timeout_ms: e.timeout_ms,
        max_retries: e.max_retries,
        api_key_env: e.api_key_env.clone(),
        usable: is_usable(e),
        offline: e.provider == ProviderKind::Builtin,
        input_price_per_million: e.prices.map(|p| p.input_per_million),
        output_price_per_million: e.prices.map(|p| p.output_per_million),
        circuit: circuit.map(|c| api::CircuitStatus {
            state: c.snapshot.state.as_str().to_owned(),
            consecutive_failures: c.snapshot.consecutive_failures,
            open_until: c.open_until.map(crate::clock::rfc3339),
        }),
    }
}

/// Whether an endpoint can be called: the built-in provider always, others when their key
/// variable is set and not empty.
pub fn is_usable(endpoint: &ModelEndpoint) -> bool {
    match (&endpoint.provider, &endpoint.api_key_env) {
        (ProviderKind::Builtin, _) => true,
        // An OpenAI-compatible local server (vLLM, Ollama) may need no key at all.
        (_, None) => true,
        (_, Some(var)) => std::env::var_os(var).is_some_and(|v| !v.is_empty()),
    }
}
