//! API keys (`shared/API.md` "API keys"): long-lived bearer credentials of an OAuth client with a
//! subset of its scopes, for services and for the OpenAI SDKs' `api_key`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Scopes as the contract writes them (`"ai:gateway:write ai:prompt:read"`), or as a list like a
/// client's: both forms are read, so that a caller used to either is not refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ScopeList {
    /// Space-separated, as in OAuth's `scope` parameter.
    Text(String),
    /// One scope per item.
    List(Vec<String>),
}

/// `POST /api/v2/oauth/clients/{id}/api-keys`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateApiKeyRequest {
    /// What the key is for (1 to 200 characters), e.g. the service that holds it.
    #[schema(required = true, value_type = String)]
    pub name: Option<String>,
    /// A subset of the client's scopes; all of them when left out.
    #[serde(default)]
    pub scopes: Option<ScopeList>,
    /// When the key stops working (RFC 3339, in the future); never when null or left out.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// An API key as listed: never the key itself, which only the answer that created it holds.
/// `Debug` hides the key.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// The key's id, which telemetry and the audit log name.
    pub id: String,
    /// The client it acts as.
    pub client_id: String,
    /// What it is for.
    pub name: String,
    /// The key (`pgk_…`): present only in the answer that created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Its scopes, space-separated.
    pub scopes: String,
    /// When it was created.
    pub created_at: String,
    /// When it stops working; null for never.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// When a gateway last accepted it (recorded in batches, a few seconds late); null when never.
    #[serde(default)]
    pub last_used_at: Option<String>,
    /// When it was revoked; null while it is live.
    #[serde(default)]
    pub revoked_at: Option<String>,
}

// Written by hand so that `{:?}` never shows the key.
impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("key", &self.key.as_ref().map(|_| "[redacted]"))
            .field("scopes", &self.scopes)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("last_used_at", &self.last_used_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let key = ApiKey {
            id: "k1".to_owned(),
            client_id: "c1".to_owned(),
            name: "checkout".to_owned(),
            key: Some("pgk_secretvalue".to_owned()),
            scopes: "ai:gateway:write".to_owned(),
            created_at: "2026-12-07T00:00:00Z".to_owned(),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
        };
        let shown = format!("{key:?}");
        assert!(!shown.contains("pgk_secretvalue"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn scopes_are_read_as_text_or_as_a_list() {
        let text: CreateApiKeyRequest =
            serde_json::from_str(r#"{"name": "a", "scopes": "ai:gateway:write admin"}"#).unwrap();
        assert_eq!(
            text.scopes,
            Some(ScopeList::Text("ai:gateway:write admin".to_owned()))
        );
        let list: CreateApiKeyRequest =
            serde_json::from_str(r#"{"name": "a", "scopes": ["ai:gateway:write"]}"#).unwrap();
        assert_eq!(
            list.scopes,
            Some(ScopeList::List(vec!["ai:gateway:write".to_owned()]))
        );
    }
}
