//! An optional model-based check for blocked categories: an endpoint with OpenAI's moderation
//! API shape (`POST {base_url}/moderations`, `{"model", "input": [texts]}` →
//! `{"results": [{"flagged", "categories": {name: bool}}]}`), mapped onto promptgate's
//! categories. It complements the in-process lexicon, which only sees keywords.

use std::sync::Arc;

use bytes::Bytes;
use promptgate_core::{BlockedCategory, ModelEndpoint, ProviderKind};
use reqwest::header::AUTHORIZATION;
use serde::Deserialize;

use crate::transport::{Transport, scrub};
use crate::{EnvKeys, KeySource, ProviderError};

/// The default moderation model.
pub const DEFAULT_MODERATION_MODEL: &str = "omni-moderation-latest";

/// Where the moderation endpoint is and how to call it.
#[derive(Debug, Clone)]
pub struct ModerationConfig {
    /// The API's base URL including its version path (`https://api.openai.com/v1`).
    pub base_url: String,
    /// The moderation model.
    pub model: String,
    /// The variable holding the key, if the endpoint needs one.
    pub api_key_env: Option<String>,
    /// The timeout of one attempt.
    pub timeout_ms: u64,
    /// Retries on 429/5xx.
    pub max_retries: u32,
}

/// A moderation client.
#[derive(Debug)]
pub struct Moderation {
    transport: Transport,
}

#[derive(Deserialize)]
struct WireResponse {
    results: Vec<WireResult>,
}

#[derive(Deserialize)]
struct WireResult {
    #[serde(default)]
    categories: std::collections::BTreeMap<String, bool>,
}

impl Moderation {
    /// A client with keys from the environment. `http` should come from
    /// [`http_client`](crate::http_client), which follows no redirects.
    pub fn new(config: &ModerationConfig, http: reqwest::Client) -> Self {
        Self::with_keys(config, http, Arc::new(EnvKeys))
    }

    /// A client with keys from `keys`.
    pub fn with_keys(
        config: &ModerationConfig,
        http: reqwest::Client,
        keys: Arc<dyn KeySource>,
    ) -> Self {
        let mut endpoint = ModelEndpoint::new(
            "moderation",
            ProviderKind::OpenAi,
            &config.base_url,
            &config.model,
            config.api_key_env.as_deref(),
            1,
        );
        endpoint.timeout_ms = config.timeout_ms;
        endpoint.max_retries = config.max_retries;
        Moderation {
            transport: Transport::new(&endpoint, http, keys),
        }
    }

    /// The promptgate categories the endpoint flags in any of `inputs`, in the order of
    /// [`BlockedCategory::ALL`].
    pub async fn categories(&self, inputs: &[&str]) -> Result<Vec<BlockedCategory>, ProviderError> {
        let prepared = self.transport.prepare("/moderations", &[], |key| {
            (AUTHORIZATION, format!("Bearer {key}"))
        })?;
        let body = serde_json::to_vec(&serde_json::json!({
            "model": self.transport.endpoint.model,
            "input": inputs,
        }))
        .map_err(|e| {
            ProviderError::Invalid(format!("the moderation request could not be encoded: {e}"))
        })?;
        // Every error leaves through `scrub`, whichever step made it.
        let answer = self
            .transport
            .post(&prepared, Bytes::from(body))
            .await
            .map_err(|e| scrub(e, prepared.key()))?;
        let wire: WireResponse = serde_json::from_slice(&answer).map_err(|e| {
            scrub(
                ProviderError::Invalid(format!("moderation answer: {e}")),
                prepared.key(),
            )
        })?;
        let flagged: Vec<&str> = wire
            .results
            .iter()
            .flat_map(|r| r.categories.iter())
            .filter(|(_, on)| **on)
            .map(|(name, _)| name.as_str())
            .collect();
        Ok(BlockedCategory::ALL
            .into_iter()
            .filter(|category| flagged.iter().any(|name| maps_to(name) == Some(*category)))
            .collect())
    }
}

/// OpenAI's moderation category names (and their sub-categories) on promptgate's.
fn maps_to(name: &str) -> Option<BlockedCategory> {
    let family = name.split('/').next().unwrap_or(name);
    match (family, name) {
        (_, "illicit/violent") => Some(BlockedCategory::Illegal),
        (_, "harassment/threatening") => Some(BlockedCategory::Violence),
        ("violence", _) => Some(BlockedCategory::Violence),
        ("hate", _) => Some(BlockedCategory::HateSpeech),
        ("self-harm", _) => Some(BlockedCategory::SelfHarm),
        ("sexual", _) => Some(BlockedCategory::Sexual),
        ("illicit", _) => Some(BlockedCategory::Illegal),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_categories_map_onto_promptgate_ones() {
        assert_eq!(maps_to("violence/graphic"), Some(BlockedCategory::Violence));
        assert_eq!(
            maps_to("hate/threatening"),
            Some(BlockedCategory::HateSpeech)
        );
        assert_eq!(maps_to("self-harm/intent"), Some(BlockedCategory::SelfHarm));
        assert_eq!(maps_to("sexual/minors"), Some(BlockedCategory::Sexual));
        assert_eq!(maps_to("illicit"), Some(BlockedCategory::Illegal));
        assert_eq!(maps_to("illicit/violent"), Some(BlockedCategory::Illegal));
        assert_eq!(maps_to("harassment"), None);
    }
}
