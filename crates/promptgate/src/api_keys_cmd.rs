//! `promptgate api-keys create|list|revoke`: long-lived `pgk_…` keys of an OAuth client
//! (`docs/api-keys.md`). Over the gateway's admin API by default (a revocation is then refused at
//! once by that gateway, within about a second by the others); with `--database-url` and no
//! gateway URL, directly in the database like `promptgate clients`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use promptgate_client::api::ApiKey;
use promptgate_client::{ApiKeyDraft, Client};
use promptgate_server::service::api_keys::{self, ApiKeyDraft as StoreDraft};
use promptgate_server::wire::clients::{wire_api_key, wire_new_api_key};
use promptgate_store::Store;
use time::OffsetDateTime;

use crate::UsageError;
use crate::output::Output;

/// `promptgate api-keys …`.
#[derive(Debug, clap::Subcommand)]
pub enum ApiKeysCommand {
    /// Create an API key for a client and print it (the key is shown only now).
    #[command(
        after_help = "Example:\n  promptgate api-keys create --client 6f1c… --name checkout-service --scopes \"ai:gateway:write\" --expires-in 90d --json"
    )]
    Create {
        /// The OAuth client the key acts as.
        #[arg(long = "client", value_name = "ID")]
        client: String,
        /// What the key is for, such as the service that holds it.
        #[arg(long)]
        name: String,
        /// Space-separated scopes, a subset of the client's [default: all of the client's].
        #[arg(long)]
        scopes: Option<String>,
        /// Lifetime, such as 90d, 12h, 30m, 2w or 3600s [default: never expires].
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// List API keys (never the keys themselves), with when each was last used.
    List {
        /// Only this client's keys [default: every client's].
        #[arg(long = "client", value_name = "ID")]
        client: Option<String>,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Revoke an API key: every gateway refuses it within about a second.
    Revoke {
        /// The key's id (from `api-keys list`), not the key.
        key_id: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

/// Where the keys are when no gateway URL is configured.
#[derive(Debug, clap::Args)]
pub struct DatabaseArg {
    /// Work on this database directly instead of a gateway (used only when no gateway URL is
    /// configured).
    #[arg(long, env = "PROMPTGATE_DATABASE_URL")]
    database_url: Option<String>,
}

impl ApiKeysCommand {
    fn database_url(&self) -> Option<&str> {
        match self {
            ApiKeysCommand::Create { database, .. }
            | ApiKeysCommand::List { database, .. }
            | ApiKeysCommand::Revoke { database, .. } => database.database_url.as_deref(),
        }
    }
}

/// Runs the command over the gateway (`client`), or on the database when there is no gateway
/// URL and `--database-url` is given.
pub async fn run(
    command: ApiKeysCommand,
    client: impl FnOnce() -> anyhow::Result<Client>,
    has_gateway_url: bool,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    if !has_gateway_url && let Some(url) = command.database_url() {
        let store = promptgate_store::open(url).await.with_context(|| {
            format!(
                "cannot open the database {}",
                promptgate_core::redact::database_url_for_display(url)
            )
        })?;
        let result = run_on_store(command, &store, out).await;
        store.close().await;
        return result;
    }
    let client = client()?;
    match command {
        ApiKeysCommand::Create {
            client: client_id,
            name,
            scopes,
            expires_in,
            ..
        } => {
            let draft = ApiKeyDraft {
                name,
                scopes,
                expires_at: expires_in.as_deref().map(expiry).transpose()?,
            };
            let created = client.create_api_key(&client_id, &draft).await?;
            print_created(out, &created);
        }
        ApiKeysCommand::List {
            client: client_id, ..
        } => {
            let keys = client.list_api_keys(client_id.as_deref()).await?;
            print_list(out, &keys);
        }
        ApiKeysCommand::Revoke { key_id, .. } => {
            let key = client.revoke_api_key(&key_id).await?;
            print_revoked(out, &key);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_on_store(
    command: ApiKeysCommand,
    store: &Arc<dyn Store>,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let actor = promptgate_audit::SYSTEM_ACTOR;
    let now = promptgate_server::clock::now();
    match command {
        ApiKeysCommand::Create {
            client: client_id,
            name,
            scopes,
            expires_in,
            ..
        } => {
            let scopes: Option<Vec<String>> =
                scopes.map(|s| s.split_whitespace().map(str::to_owned).collect());
            let expires_at = expires_in.as_deref().map(expiry).transpose()?;
            let draft = StoreDraft {
                name: Some(&name),
                scopes: scopes.as_deref(),
                expires_at: expires_at.as_deref(),
            };
            let created = api_keys::create_key(store.as_ref(), actor, &client_id, draft, now)
                .await
                .map_err(refusal)?;
            print_created(out, &wire_new_api_key(created));
        }
        ApiKeysCommand::List {
            client: client_id, ..
        } => {
            if let Some(id) = client_id.as_deref()
                && store.get_client(id).await?.is_none()
            {
                anyhow::bail!("no client with id {id}");
            }
            let keys = store.list_api_keys(client_id.as_deref()).await?;
            let keys: Vec<ApiKey> = keys.iter().map(wire_api_key).collect();
            print_list(out, &keys);
        }
        ApiKeysCommand::Revoke { key_id, .. } => {
            let key = api_keys::revoke_key(store.as_ref(), actor, None, &key_id, now)
                .await
                .map_err(refusal)?;
            print_revoked(out, &wire_api_key(&key));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The service's refusal as a message naming every invalid field.
fn refusal(err: api_keys::ApiKeyError) -> anyhow::Error {
    match err {
        api_keys::ApiKeyError::Invalid(violations) => {
            let lines: Vec<String> = violations
                .iter()
                .map(|v| format!("{}: {}", v.field, v.message()))
                .collect();
            UsageError(lines.join("; ")).into()
        }
        other => other.into(),
    }
}

/// `--expires-in` as the RFC 3339 time it ends at: a number and a unit (s, m, h, d, w).
fn expiry(text: &str) -> anyhow::Result<String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let amount: i64 = digits.parse().map_err(|_| {
        UsageError(format!(
            "--expires-in must be a number and a unit (s, m, h, d, w), such as 90d; got {text}"
        ))
    })?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(UsageError(format!(
                "--expires-in must end with a unit (s, m, h, d or w), such as 90d; got {text}"
            ))
            .into());
        }
    };
    let seconds = amount
        .checked_mul(seconds_per_unit)
        .filter(|s| *s > 0 && *s <= 100 * 365 * 86_400)
        .ok_or_else(|| {
            UsageError(format!(
                "--expires-in must be more than zero and at most 100 years; got {text}"
            ))
        })?;
    let at: OffsetDateTime = promptgate_server::clock::now() + time::Duration::seconds(seconds);
    Ok(promptgate_server::clock::rfc3339(at))
}

fn print_created(out: &Output, key: &ApiKey) {
    if out.json {
        out.print_json(key);
        return;
    }
    out.print_text(&format!(
        "created API key {} ({}) for client {}",
        key.id, key.name, key.client_id
    ));
    out.print_text(&format!("  key:     {}", key.key.as_deref().unwrap_or("")));
    out.print_text(&format!("  scopes:  {}", key.scopes));
    out.print_text(&format!(
        "  expires: {}",
        key.expires_at.as_deref().unwrap_or("never")
    ));
    out.note("The key is shown only now; store it safely. Use it as Authorization: Bearer <key>, or as the OpenAI SDKs' api_key.");
}

fn print_list(out: &Output, keys: &[ApiKey]) {
    if out.json {
        out.print_json(&keys);
        return;
    }
    out.print_text(&format!(
        "{:<38} {:<8} {:<20} {:<22} {:<22} SCOPES",
        "KEY ID", "STATE", "NAME", "EXPIRES", "LAST USED"
    ));
    let now = promptgate_server::clock::now();
    for key in keys {
        let expired = key
            .expires_at
            .as_deref()
            .and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .is_some_and(|t| t <= now);
        let state = if key.revoked_at.is_some() {
            "revoked"
        } else if expired {
            "expired"
        } else {
            "active"
        };
        out.print_text(&format!(
            "{:<38} {:<8} {:<20} {:<22} {:<22} {}",
            key.id,
            state,
            key.name,
            key.expires_at.as_deref().unwrap_or("never"),
            key.last_used_at.as_deref().unwrap_or("never"),
            key.scopes
        ));
    }
}

fn print_revoked(out: &Output, key: &ApiKey) {
    if out.json {
        out.print_json(key);
        return;
    }
    out.print_text(&format!(
        "revoked API key {} ({}) of client {}",
        key.id, key.name, key.client_id
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_takes_a_number_and_a_unit() {
        assert!(expiry("90d").is_ok());
        assert!(expiry("2w").is_ok());
        for bad in ["", "d", "90", "90y", "-1d", "0d", "999999999w"] {
            assert!(expiry(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
