//! OAuth client management shared by the admin HTTP API, the `promptgate clients` commands and
//! the first start's bootstrap, so that all three create clients (and rotate their secrets) the
//! same way.

use promptgate_core::ScopeSet;
use promptgate_core::credentials::{generate_secret, hash_secret};
use promptgate_core::scope::UnknownScope;
use promptgate_store::{Client, Store, StoreError};

use crate::state::now;

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
