//! API keys (scope `admin`): create, list and revoke the long-lived `pgk_…` keys that services
//! and the OpenAI SDKs use as bearer credentials (`docs/api-keys.md`). A client built with
//! [`ClientBuilder::api_key`](crate::ClientBuilder::api_key) uses one.

use promptgate_api::{ApiKey, CreateApiKeyRequest, Listing, ScopeList};
use reqwest::Method;

use crate::client::{Call, Client};
use crate::error::Error;
use crate::prompts::{segment, to_json};

/// A key to create: its name, and optionally fewer scopes than its client's and an expiry.
#[derive(Debug, Clone, Default)]
pub struct ApiKeyDraft {
    /// What the key is for (1–200 characters), such as the service that holds it.
    pub name: String,
    /// Space-separated scopes, a subset of the client's; all of them when `None`.
    pub scopes: Option<String>,
    /// When the key stops working (RFC 3339, in the future); never when `None`.
    pub expires_at: Option<String>,
}

impl Client {
    /// Creates an API key for client `client_id`; the answer's `key` is shown only now.
    pub async fn create_api_key(
        &self,
        client_id: &str,
        draft: &ApiKeyDraft,
    ) -> Result<ApiKey, Error> {
        let request = CreateApiKeyRequest {
            name: Some(draft.name.clone()),
            scopes: draft.scopes.clone().map(ScopeList::Text),
            expires_at: draft.expires_at.clone(),
        };
        self.send(Call::with(
            Method::POST,
            format!("/api/v2/oauth/clients/{}/api-keys", segment(client_id)),
            Some(to_json(&request)?),
        ))
        .await?
        .json()
    }

    /// The API keys of client `client_id`, or of every client when `None`, revoked ones
    /// included, with when each was last used (never a key).
    pub async fn list_api_keys(&self, client_id: Option<&str>) -> Result<Vec<ApiKey>, Error> {
        let path = match client_id {
            Some(id) => format!("/api/v2/oauth/clients/{}/api-keys", segment(id)),
            None => "/api/v2/oauth/api-keys".to_owned(),
        };
        let listing: Listing<ApiKey> = self.send(Call::get(path)).await?.json()?;
        Ok(listing.entities)
    }

    /// Revokes API key `key_id`: refused by every gateway within about a second.
    pub async fn revoke_api_key(&self, key_id: &str) -> Result<ApiKey, Error> {
        self.send(Call::with(
            Method::DELETE,
            format!("/api/v2/oauth/api-keys/{}", segment(key_id)),
            None,
        ))
        .await?
        .json()
    }
}
