//! OAuth clients: creating them (with a fresh or a supplied id and secret), listing, disabling
//! and rotating their secrets, each with its audit entry. The admin HTTP API calls the
//! `AppState` functions ([`create`], [`list`], [`disable`], [`rotate`]), which also tell the
//! token authority; the `promptgate clients` commands and the first start's bootstrap work on a
//! bare `Store` with [`create_client`], [`disable_entry`], [`rotate_secret`] and
//! [`bootstrap_admin`], so that all of them create clients (and rotate secrets) the same way.

use promptgate_core::credentials::{generate_secret, hash_secret};
use promptgate_core::scope::UnknownScope;
use promptgate_core::{Scope, ScopeSet, Violation};
use promptgate_store::{Client, Store, StoreError};

use crate::clock::now;
use crate::state::AppState;

/// The longest client name.
pub const MAX_CLIENT_NAME_CHARS: usize = 200;
/// The longest client id accepted from `PROMPTGATE_ADMIN_CLIENT_ID`.
pub const MAX_CLIENT_ID_CHARS: usize = 128;

/// Why a client cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The name is empty or too long.
    #[error("name must be 1 to {MAX_CLIENT_NAME_CHARS} characters")]
    InvalidName,
    /// No scopes were given.
    #[error("a client needs at least one scope")]
    NoScopes,
    /// A scope is not known.
    #[error(transparent)]
    UnknownScope(#[from] UnknownScope),
    /// A supplied id or secret is unusable.
    #[error("{0}")]
    InvalidCredentials(String),
    /// The request's name or scopes are invalid (every problem at once).
    #[error("invalid client")]
    Invalid(Vec<Violation>),
    /// No client has this id.
    #[error("no client with id {0}")]
    NotFound(String),
    /// Storage failed (including a duplicate id).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new client with its secret, which is shown only this once.
#[derive(Clone)]
pub struct NewClient {
    /// The stored client.
    pub client: Client,
    /// The secret in clear.
    pub secret: String,
}

/// By hand, so that the secret never reaches a log line through `{:?}`.
impl std::fmt::Debug for NewClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewClient")
            .field("id", &self.client.id)
            .field("name", &self.client.name)
            .field("scopes", &self.client.scopes)
            .field("secret", &crate::REDACTED)
            .finish_non_exhaustive()
    }
}

/// Creates a client with a fresh id and secret unless both are supplied; `actor` (the admin
/// client's id, or `system`) is recorded in the audit log with it.
pub async fn create_client(
    store: &dyn Store,
    actor: &str,
    name: &str,
    scopes: ScopeSet,
    supplied: Option<(&str, &str)>,
) -> Result<NewClient, ClientError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_CLIENT_NAME_CHARS {
        return Err(ClientError::InvalidName);
    }
    if scopes.is_empty() {
        return Err(ClientError::NoScopes);
    }
    let (id, secret) = match supplied {
        Some((id, secret)) => {
            if id.is_empty()
                || id.chars().count() > MAX_CLIENT_ID_CHARS
                || id.chars().any(|c| c.is_control() || c == ':')
            {
                return Err(ClientError::InvalidCredentials(format!(
                    "a client id is 1 to {MAX_CLIENT_ID_CHARS} characters without ':' or control characters"
                )));
            }
            if secret.len() < 16 {
                return Err(ClientError::InvalidCredentials(
                    "a client secret must be at least 16 characters; 32 random bytes are best"
                        .to_owned(),
                ));
            }
            (id.to_owned(), secret.to_owned())
        }
        None => (uuid::Uuid::new_v4().to_string(), generate_secret()),
    };
    let client = Client {
        id,
        name: name.to_owned(),
        secret_hash: hash_secret(&secret),
        scopes,
        created_at: now(),
        disabled_at: None,
    };
    let after = serde_json::json!({
        "clientId": client.id,
        "name": client.name,
        "scopes": client.scopes.names(),
    });
    let audit = crate::audit::draft(
        actor,
        promptgate_audit::action::CLIENT_CREATED,
        None,
        promptgate_audit::change_details(None, Some(&after)),
    );
    store.insert_client(&client, &audit).await?;
    Ok(NewClient { client, secret })
}

/// On an empty database, creates the admin client with every scope: from the supplied id and
/// secret when given, else fresh ones. Returns the new client, or `None` when clients exist.
pub async fn bootstrap_admin(
    store: &dyn Store,
    supplied: Option<(&str, &str)>,
) -> Result<Option<NewClient>, ClientError> {
    if store.count_clients().await? > 0 {
        return Ok(None);
    }
    match create_client(
        store,
        promptgate_audit::SYSTEM_ACTOR,
        "admin",
        ScopeSet::all(),
        supplied,
    )
    .await
    {
        Ok(created) => Ok(Some(created)),
        // Another replica or process bootstrapped the same id first.
        Err(ClientError::Store(StoreError::DuplicateClient { .. })) => Ok(None),
        Err(other) => Err(other),
    }
}

/// The audit entry of disabling client `id`, by `actor`.
pub fn disable_entry(actor: &str, id: &str) -> promptgate_audit::AuditDraft {
    let mut details = promptgate_audit::change_details(
        Some(&serde_json::json!({"disabled": false})),
        Some(&serde_json::json!({"disabled": true})),
    );
    details["clientId"] = serde_json::json!(id);
    crate::audit::draft(
        actor,
        promptgate_audit::action::CLIENT_DISABLED,
        None,
        details,
    )
}

/// Gives client `id` a fresh secret, by `actor`: the old secret stops working and every token
/// issued to the client is deleted, in one transaction with a `CLIENT_SECRET_ROTATED` entry whose
/// details name the client only (never the secret or its hash). The caller must also forget the
/// client's cached tokens (`TokenAuthority::forget_client_tokens`) when it runs inside a gateway.
/// `None` when no such client exists (nothing is written).
pub async fn rotate_secret(
    store: &dyn Store,
    actor: &str,
    id: &str,
) -> Result<Option<NewClient>, StoreError> {
    let secret = generate_secret();
    let mut details = promptgate_audit::change_details(None, None);
    details["clientId"] = serde_json::json!(id);
    let audit = crate::audit::draft(
        actor,
        promptgate_audit::action::CLIENT_SECRET_ROTATED,
        None,
        details,
    );
    let rotated = store
        .rotate_client_secret(id, &hash_secret(&secret), now(), &audit)
        .await?;
    Ok(rotated.map(|client| NewClient { client, secret }))
}

/// A client as an admin asked for it over the API: the name and the scope names as sent.
#[derive(Debug, Clone, Copy)]
pub struct ClientDraft<'a> {
    /// A name for people, 1 to [`MAX_CLIENT_NAME_CHARS`] characters.
    pub name: Option<&'a str>,
    /// Scope names; at least one.
    pub scopes: Option<&'a [String]>,
}

/// Creates a client from `draft`, by `actor`, with a fresh id and secret; every invalid field
/// is reported at once.
pub async fn create(
    state: &AppState,
    actor: &str,
    draft: ClientDraft<'_>,
) -> Result<NewClient, ClientError> {
    let (name, scopes) = check_draft(draft).map_err(ClientError::Invalid)?;
    create_client(state.store.as_ref(), actor, name, scopes, None).await
}

/// Every client, secrets never included (only their hashes are stored).
pub async fn list(state: &AppState) -> Result<Vec<Client>, ClientError> {
    Ok(state.store.list_clients().await?)
}

/// Disables client `id`, by `actor`: its tokens stop working at once on this gateway (the token
/// authority's disabled set), within seconds on others.
pub async fn disable(state: &AppState, actor: &str, id: &str) -> Result<Client, ClientError> {
    let client = state
        .store
        .disable_client(id, now(), &disable_entry(actor, id))
        .await?
        .ok_or_else(|| ClientError::NotFound(id.to_owned()))?;
    state.auth.revoke_client(&client.id);
    Ok(client)
}

/// Gives client `id` a new secret, by `actor` ([`rotate_secret`]), and forgets its cached
/// tokens on this gateway; other gateways notice the rotation within about a second.
pub async fn rotate(state: &AppState, actor: &str, id: &str) -> Result<NewClient, ClientError> {
    let rotated = rotate_secret(state.store.as_ref(), actor, id)
        .await?
        .ok_or_else(|| ClientError::NotFound(id.to_owned()))?;
    state.auth.forget_client_tokens(&rotated.client.id);
    Ok(rotated)
}

/// The draft's name and scopes, or every violation: missing or empty scopes, unknown scope
/// names (by index), a blank or too long name.
fn check_draft(draft: ClientDraft<'_>) -> Result<(&str, ScopeSet), Vec<Violation>> {
    let mut violations = Vec::new();
    let mut scopes = Vec::new();
    match draft.scopes {
        None => violations.push(Violation::invalid("scopes", "scopes is required")),
        Some([]) => {
            violations.push(Violation::invalid(
                "scopes",
                "a client needs at least one scope",
            ));
        }
        Some(list) => {
            for (i, name) in list.iter().enumerate() {
                match name.parse::<Scope>() {
                    Ok(scope) => scopes.push(scope),
                    Err(e) => {
                        violations.push(Violation::invalid(format!("scopes[{i}]"), e.to_string()))
                    }
                }
            }
        }
    }
    let name = draft.name.unwrap_or_default();
    if name.trim().is_empty() || name.chars().count() > MAX_CLIENT_NAME_CHARS {
        violations.push(Violation::invalid(
            "name",
            format!("name must be 1 to {MAX_CLIENT_NAME_CHARS} characters"),
        ));
    }
    if !violations.is_empty() {
        return Err(violations);
    }
    Ok((name, ScopeSet::from_scopes(scopes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_reports_every_problem_at_once() {
        let scopes = vec!["admin".to_owned(), "nope".to_owned()];
        let draft = ClientDraft {
            name: Some("  "),
            scopes: Some(&scopes),
        };
        let fields: Vec<String> = check_draft(draft)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["scopes[1]", "name"]);
    }

    #[test]
    fn a_draft_needs_scopes_and_a_name() {
        let none = ClientDraft {
            name: None,
            scopes: None,
        };
        assert_eq!(check_draft(none).err().map(|v| v.len()), Some(2));
        let scopes = vec!["ai:prompt:read".to_owned()];
        let fine = ClientDraft {
            name: Some("bot"),
            scopes: Some(&scopes),
        };
        let (name, set) = check_draft(fine).unwrap_or_else(|v| panic!("{v:?}"));
        assert_eq!(name, "bot");
        assert!(set.contains(Scope::PromptRead));
    }
}
