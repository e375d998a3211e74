//! Issuing an access token for the client credentials grant (RFC 6749 §4.4). The route reads the
//! form and the `Authorization: Basic` header; this decides: the grant type, the presence of
//! credentials, then `TokenAuthority::issue_from` (the client and its secret, the failed-login
//! limits, the scopes, the issuance rate and the bound on live tokens).

use std::net::IpAddr;

use crate::auth::{IssuedToken, TokenError};
use crate::state::AppState;

/// The only grant the gateway supports.
const CLIENT_CREDENTIALS: &str = "client_credentials";

/// A token request as read from the wire.
#[derive(Clone, Copy)]
pub struct TokenGrant<'a> {
    /// `grant_type`.
    pub grant_type: Option<&'a str>,
    /// The client id and secret, from HTTP Basic or from the form; `None` when neither gave both.
    pub credentials: Option<(&'a str, &'a str)>,
    /// `scope`: space-separated scope names; `None` asks for all of the client's scopes.
    pub scope: Option<&'a str>,
    /// Where the request comes from, for the per-address failed-login limit.
    pub source: Option<IpAddr>,
}

/// By hand, so that the client secret never reaches a log line through `{:?}`.
impl std::fmt::Debug for TokenGrant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenGrant")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.credentials.map(|(id, _)| id))
            .field("scope", &self.scope)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Why no token was issued.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// No `grant_type` was sent.
    #[error("grant_type is required")]
    MissingGrantType,
    /// A grant other than `client_credentials` was asked for.
    #[error("only grant_type=client_credentials is supported")]
    UnsupportedGrantType,
    /// Neither HTTP Basic nor the form gave a client id and secret.
    #[error("client authentication failed")]
    NoCredentials,
    /// The token authority refused (wrong client, scope, a limit) or the store failed.
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// Issues a token for `grant`.
pub async fn issue(state: &AppState, grant: TokenGrant<'_>) -> Result<IssuedToken, GrantError> {
    match grant.grant_type {
        None => return Err(GrantError::MissingGrantType),
        Some(CLIENT_CREDENTIALS) => {}
        Some(_) => return Err(GrantError::UnsupportedGrantType),
    }
    let Some((client_id, client_secret)) = grant.credentials else {
        return Err(GrantError::NoCredentials);
    };
    Ok(state
        .auth
        .issue_from(client_id, client_secret, grant.scope, grant.source)
        .await?)
}
