//! API keys (`shared/API.md` "API keys", docs/api-keys.md): long-lived bearer credentials of an
//! OAuth client with a subset of its scopes. Created, listed and revoked by admins, each change
//! with its audit entry; the key is shown once and stored only as its SHA-256. Checking a key on
//! a request is the token authority's (`auth.rs`), from memory like a token.

use promptgate_core::credentials::{generate_secret, hash_secret};
use promptgate_core::violation::quoted;
use promptgate_core::{Scope, ScopeSet, Violation};
use promptgate_store::{ApiKey, Store, StoreError};
use time::OffsetDateTime;

use crate::auth::API_KEY_PREFIX;
use crate::clock::{now, rfc3339};
use crate::state::AppState;

/// The longest key name.
pub const MAX_KEY_NAME_CHARS: usize = 200;

/// Why an API key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    /// The request's name, scopes or expiry are invalid (every problem at once).
    #[error("invalid API key")]
    Invalid(Vec<Violation>),
    /// No client has this id.
    #[error("no client with id {0}")]
    ClientNotFound(String),
    /// No key has this id (for this client, when one is named).
    #[error("no API key with id {0}")]
    KeyNotFound(String),
    /// The client is disabled: a key of it could never be used.
    #[error("the client {0} is disabled: a key of a disabled client could never be used")]
    ClientDisabled(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A key as an admin asked for it: the name, the scope names and the expiry as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiKeyDraft<'a> {
    /// What the key is for, 1 to [`MAX_KEY_NAME_CHARS`] characters.
    pub name: Option<&'a str>,
    /// Scope names; all of the client's when `None`.
    pub scopes: Option<&'a [String]>,
    /// RFC 3339; never expires when `None`.
    pub expires_at: Option<&'a str>,
}

/// A new key with its secret, which is shown only this once.
#[derive(Clone)]
pub struct NewApiKey {
    /// The stored key.
    pub key: ApiKey,
    /// The key in clear (`pgk_…`).
    pub secret: String,
}

/// By hand, so that the key never reaches a log line through `{:?}`.
impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("id", &self.key.id)
            .field("client_id", &self.key.client_id)
            .field("name", &self.key.name)
            .field("scopes", &self.key.scopes)
            .field("secret", &crate::REDACTED)
            .finish_non_exhaustive()
    }
}

/// Creates a key for client `client_id`, by `actor`: checks the draft against the client (its
/// scopes must hold the key's), generates 256 random bits behind the `pgk_` prefix, and stores
/// the hash with an `API_KEY_CREATED` entry that names the key's id, never the key.
pub async fn create(
    state: &AppState,
    actor: &str,
    client_id: &str,
    draft: ApiKeyDraft<'_>,
) -> Result<NewApiKey, ApiKeyError> {
    create_key(state.store.as_ref(), actor, client_id, draft, now()).await
}

/// [`create`] on a bare store at `at` (the clock is the caller's, so tests can fix it).
pub async fn create_key(
    store: &dyn Store,
    actor: &str,
    client_id: &str,
    draft: ApiKeyDraft<'_>,
    at: OffsetDateTime,
) -> Result<NewApiKey, ApiKeyError> {
    let client = store
        .get_client(client_id)
        .await?
        .ok_or_else(|| ApiKeyError::ClientNotFound(client_id.to_owned()))?;
    let (name, scopes, expires_at) =
        check_draft(draft, &client.scopes, at).map_err(ApiKeyError::Invalid)?;
    if client.disabled_at.is_some() {
        return Err(ApiKeyError::ClientDisabled(client.id));
    }
    let secret = format!("{API_KEY_PREFIX}{}", generate_secret());
    let key = ApiKey {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: client.id,
        name: name.to_owned(),
        key_hash: hash_secret(&secret),
        scopes,
        created_at: at,
        expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    let after = serde_json::json!({
        "keyId": key.id,
        "clientId": key.client_id,
        "name": key.name,
        "scopes": key.scopes.names(),
        "expiresAt": key.expires_at.map(rfc3339),
    });
    let mut details = promptgate_audit::change_details(None, Some(&after));
    details["keyId"] = serde_json::json!(key.id);
    details["clientId"] = serde_json::json!(key.client_id);
    let audit = crate::audit::draft(
        actor,
        promptgate_audit::action::API_KEY_CREATED,
        None,
        details,
    );
    store.insert_api_key(&key, &audit).await?;
    Ok(NewApiKey { key, secret })
}

/// The keys of client `client_id` (404 when it does not exist), or of every client; never a key,
/// only ids, names, scopes and times.
pub async fn list(state: &AppState, client_id: Option<&str>) -> Result<Vec<ApiKey>, ApiKeyError> {
    if let Some(id) = client_id
        && state.store.get_client(id).await?.is_none()
    {
        return Err(ApiKeyError::ClientNotFound(id.to_owned()));
    }
    Ok(state.store.list_api_keys(client_id).await?)
}

/// Revokes key `key_id` (of client `client_id` when named), by `actor`: refused at once on this
/// gateway, within about a second on every other (their refresh reloads the revoked ids). A
/// repeated revoke answers the key as it is and writes nothing.
pub async fn revoke(
    state: &AppState,
    actor: &str,
    client_id: Option<&str>,
    key_id: &str,
) -> Result<ApiKey, ApiKeyError> {
    let key = revoke_key(state.store.as_ref(), actor, client_id, key_id, now()).await?;
    state.auth.revoke_key(&key.id);
    Ok(key)
}

/// [`revoke`] on a bare store at `at`, without telling a token authority.
pub async fn revoke_key(
    store: &dyn Store,
    actor: &str,
    client_id: Option<&str>,
    key_id: &str,
    at: OffsetDateTime,
) -> Result<ApiKey, ApiKeyError> {
    let not_found = || ApiKeyError::KeyNotFound(key_id.to_owned());
    let existing = store.get_api_key(key_id).await?.ok_or_else(not_found)?;
    if client_id.is_some_and(|id| id != existing.client_id) {
        return Err(not_found());
    }
    let mut details = promptgate_audit::change_details(
        Some(&serde_json::json!({"revoked": false})),
        Some(&serde_json::json!({"revoked": true})),
    );
    details["keyId"] = serde_json::json!(existing.id);
    details["clientId"] = serde_json::json!(existing.client_id);
    details["name"] = serde_json::json!(existing.name);
    let audit = crate::audit::draft(
        actor,
        promptgate_audit::action::API_KEY_REVOKED,
        None,
        details,
    );
    store
        .revoke_api_key(key_id, at, &audit)
        .await?
        .ok_or_else(not_found)
}

/// The draft's name, scopes and expiry, or every violation: a blank or too long name, unknown
/// scope names (by index), scopes the client does not hold, an expiry that is not RFC 3339 or
/// not in the future.
fn check_draft<'a>(
    draft: ApiKeyDraft<'a>,
    client_scopes: &ScopeSet,
    at: OffsetDateTime,
) -> Result<(&'a str, ScopeSet, Option<OffsetDateTime>), Vec<Violation>> {
    let mut violations = Vec::new();
    let name = draft.name.map(str::trim).unwrap_or_default();
    if name.is_empty() || name.chars().count() > MAX_KEY_NAME_CHARS {
        violations.push(Violation::invalid(
            "name",
            format!("name must be 1 to {MAX_KEY_NAME_CHARS} characters"),
        ));
    }
    let scopes = match draft.scopes {
        None => client_scopes.clone(),
        Some([]) => {
            violations.push(Violation::invalid(
                "scopes",
                "an API key needs at least one scope; leave scopes out for all of the client's",
            ));
            ScopeSet::from_scopes(Vec::new())
        }
        Some(list) => {
            let mut scopes = Vec::new();
            for (i, name) in list.iter().enumerate() {
                match name.parse::<Scope>() {
                    Ok(scope) if client_scopes.contains(scope) => scopes.push(scope),
                    Ok(_) => violations.push(Violation::invalid(
                        format!("scopes[{i}]"),
                        format!(
                            "the client does not hold the scope {}; an API key may have only the client's scopes: {client_scopes}",
                            quoted(name)
                        ),
                    )),
                    Err(e) => {
                        violations.push(Violation::invalid(format!("scopes[{i}]"), e.to_string()))
                    }
                }
            }
            ScopeSet::from_scopes(scopes)
        }
    };
    let expires_at = match draft.expires_at {
        None => None,
        Some(text) => {
            match OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
                Ok(when) if when > at => Some(when),
                Ok(_) => {
                    violations.push(Violation::invalid(
                        "expiresAt",
                        "expiresAt must be in the future",
                    ));
                    None
                }
                Err(_) => {
                    violations.push(Violation::invalid(
                        "expiresAt",
                        "expiresAt must be an RFC 3339 time such as 2027-03-01T00:00:00Z",
                    ));
                    None
                }
            }
        }
    };
    if !violations.is_empty() {
        return Err(violations);
    }
    Ok((name, scopes, expires_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_scopes() -> ScopeSet {
        ScopeSet::from_scopes(vec![Scope::GatewayWrite, Scope::PromptRead])
    }

    fn at() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    fn fields(violations: Vec<Violation>) -> Vec<String> {
        violations.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_key_without_scopes_gets_all_of_its_clients() {
        let draft = ApiKeyDraft {
            name: Some(" checkout "),
            ..ApiKeyDraft::default()
        };
        let (name, scopes, expires) =
            check_draft(draft, &client_scopes(), at()).unwrap_or_else(|v| panic!("{v:?}"));
        assert_eq!(name, "checkout");
        assert_eq!(scopes, client_scopes());
        assert_eq!(expires, None);
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let scopes = vec![
            "admin".to_owned(),
            "nope".to_owned(),
            "ai:gateway:write".to_owned(),
        ];
        let draft = ApiKeyDraft {
            name: Some(""),
            scopes: Some(&scopes),
            expires_at: Some("tomorrow"),
        };
        let got = check_draft(draft, &client_scopes(), at())
            .err()
            .unwrap_or_default();
        let messages: Vec<String> = got.iter().map(Violation::message).collect();
        assert_eq!(
            fields(got),
            ["name", "scopes[0]", "scopes[1]", "expiresAt"],
            "{messages:?}"
        );
        assert!(messages[1].contains("‘admin’"), "{messages:?}");
    }

    #[test]
    fn an_expiry_must_be_in_the_future_and_empty_scopes_are_refused() {
        let draft = ApiKeyDraft {
            name: Some("k"),
            scopes: Some(&[]),
            expires_at: Some("2020-01-01T00:00:00Z"),
        };
        let got = check_draft(draft, &client_scopes(), at())
            .err()
            .unwrap_or_default();
        assert_eq!(fields(got), ["scopes", "expiresAt"]);
        let later = ApiKeyDraft {
            name: Some("k"),
            scopes: None,
            expires_at: Some("2030-01-01T00:00:00Z"),
        };
        let (_, _, expires) =
            check_draft(later, &client_scopes(), at()).unwrap_or_else(|v| panic!("{v:?}"));
        assert_eq!(expires.map(|t| t.year()), Some(2030));
    }
}
