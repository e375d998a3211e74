//! OAuth clients on the wire: a stored client as the contract shows it, never with its secret's
//! hash, and a new one with its secret (shown only in the answer that creates or rotates it).
//! Shared by the admin routes and `promptgate clients list --json`.

use promptgate_api as api;
use promptgate_store::Client;

use crate::clock::rfc3339;
use crate::service::clients::NewClient;

/// The wire form of a stored client, without its secret.
pub fn wire_client(client: &Client) -> api::OAuthClient {
    api::OAuthClient {
        client_id: client.id.clone(),
        client_secret: None,
        name: client.name.clone(),
        scopes: client
            .scopes
            .names()
            .into_iter()
            .map(str::to_owned)
            .collect(),
        created_at: rfc3339(client.created_at),
        disabled: client.disabled_at.is_some(),
        disabled_at: client.disabled_at.map(rfc3339),
    }
}

/// The wire form of a client just created or given a new secret: the only answer that shows
/// the secret.
pub fn wire_new_client(created: NewClient) -> api::OAuthClient {
    let mut wire = wire_client(&created.client);
    wire.client_secret = Some(created.secret);
    wire
}

/// The wire form of a stored API key: its id, name, scopes and times, never the key or its hash.
pub fn wire_api_key(key: &promptgate_store::ApiKey) -> api::ApiKey {
    api::ApiKey {
        id: key.id.clone(),
        client_id: key.client_id.clone(),
        name: key.name.clone(),
        key: None,
        scopes: key.scopes.to_string(),
        created_at: rfc3339(key.created_at),
        expires_at: key.expires_at.map(rfc3339),
        last_used_at: key.last_used_at.map(rfc3339),
        revoked_at: key.revoked_at.map(rfc3339),
    }
}

/// The wire form of a key just created: the only answer that shows the key.
pub fn wire_new_api_key(created: crate::service::api_keys::NewApiKey) -> api::ApiKey {
    let mut wire = wire_api_key(&created.key);
    wire.key = Some(created.secret);
    wire
}

/// The scope names of a key request, whichever form they came in (space-separated or a list).
pub fn api_key_scopes(scopes: Option<&api::ScopeList>) -> Option<Vec<String>> {
    scopes.map(|scopes| match scopes {
        api::ScopeList::Text(text) => text.split_whitespace().map(str::to_owned).collect(),
        api::ScopeList::List(list) => list.clone(),
    })
}
