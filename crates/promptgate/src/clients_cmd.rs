//! `promptgate clients`: create, list, disable OAuth clients and rotate their secrets directly in
//! the database.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use promptgate_core::ScopeSet;
use promptgate_server::config::DEFAULT_DATABASE_URL;
use promptgate_server::service::clients::create_client;
use promptgate_server::wire::clients::wire_client;
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Create a client and print its id and secret (the secret is shown only now).
    #[command(
        after_help = "Example:\n  promptgate clients create --name support-bot --scopes \"ai:prompt:read ai:gateway:write\" --json"
    )]
    Create {
        /// Database URL.
        #[arg(long, env = "PROMPTGATE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
        database_url: String,
        /// A name for people.
        #[arg(long)]
        name: String,
        /// Space-separated scopes: ai:prompt:read ai:prompt:write ai:gateway:write
        /// ai:telemetry:read ai:audit:read admin.
        #[arg(long)]
        scopes: String,
    },
    /// List clients (never their secrets).
    List {
        /// Database URL.
        #[arg(long, env = "PROMPTGATE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
        database_url: String,
    },
    /// Disable a client: its tokens stop working within seconds on every gateway.
    Disable {
        /// The client id.
        id: String,
        /// Database URL.
        #[arg(long, env = "PROMPTGATE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
        database_url: String,
    },
    /// Give a client a new secret and print it (shown only now): the old secret and every token
    /// issued with it stop working within seconds on every gateway.
    #[command(after_help = "Example:\n  promptgate clients rotate-secret 6f1c… --json")]
    RotateSecret {
        /// The client id.
        id: String,
        /// Database URL.
        #[arg(long, env = "PROMPTGATE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
        database_url: String,
    },
}

#[allow(clippy::print_stdout)]
pub async fn run(command: ClientsCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        ClientsCommand::Create {
            database_url,
            name,
            scopes,
        } => {
            let requested = scopes;
            let scopes = ScopeSet::parse_space_separated(&requested)?;
            let store = open(&database_url).await?;
            let created = create_client(
                store.as_ref(),
                promptgate_audit::SYSTEM_ACTOR,
                &name,
                scopes,
                None,
            )
            .await?;
            store.close().await;
            // Printed in the order given (without repeats), so a script reads back what it sent.
            let mut scopes: Vec<&str> = Vec::new();
            for scope in requested.split_whitespace() {
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
            if json {
                println!(
                    "{}",
                    json!({"clientId": created.client.id, "clientSecret": created.secret, "scopes": scopes})
                );
            } else {
                println!("created client {:?}", created.client.name);
                println!("  client id:     {}", created.client.id);
                println!("  client secret: {}", created.secret);
                println!("  scopes:        {}", scopes.join(" "));
                println!("The secret is shown only now; store it safely.");
            }
            Ok(ExitCode::SUCCESS)
        }
        ClientsCommand::List { database_url } => {
            let store = open(&database_url).await?;
            let clients = store.list_clients().await?;
            store.close().await;
            if json {
                let list: Vec<serde_json::Value> = clients
                    .iter()
                    .map(|c| {
                        let w = wire_client(c);
                        json!({"clientId": w.client_id, "name": w.name, "scopes": w.scopes,
                               "createdAt": w.created_at, "disabled": w.disabled, "disabledAt": w.disabled_at})
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                println!("{:<38} {:<9} {:<24} SCOPES", "CLIENT ID", "STATE", "NAME");
                for c in &clients {
                    let state = if c.disabled_at.is_some() {
                        "disabled"
                    } else {
                        "active"
                    };
                    println!("{:<38} {:<9} {:<24} {}", c.id, state, c.name, c.scopes);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ClientsCommand::Disable { id, database_url } => {
            let store = open(&database_url).await?;
            let disabled = store
                .disable_client(
                    &id,
                    promptgate_server::clock::now(),
                    &promptgate_server::service::clients::disable_entry(
                        promptgate_audit::SYSTEM_ACTOR,
                        &id,
                    ),
                )
                .await?;
            store.close().await;
            match disabled {
                Some(client) => {
                    println!("disabled client {} ({})", client.id, client.name);
                    Ok(ExitCode::SUCCESS)
                }
                None => anyhow::bail!("no client with id {id}"),
            }
        }
        ClientsCommand::RotateSecret { id, database_url } => {
            let store = open(&database_url).await?;
            let rotated = promptgate_server::service::clients::rotate_secret(
                store.as_ref(),
                promptgate_audit::SYSTEM_ACTOR,
                &id,
            )
            .await;
            store.close().await;
            let Some(rotated) = rotated? else {
                anyhow::bail!("no client with id {id}");
            };
            if json {
                println!(
                    "{}",
                    json!({"clientId": rotated.client.id, "clientSecret": rotated.secret})
                );
            } else {
                println!(
                    "rotated the secret of client {} ({})",
                    rotated.client.id, rotated.client.name
                );
                println!("  client secret: {}", rotated.secret);
                println!("The secret is shown only now; store it safely.");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn open(database_url: &str) -> anyhow::Result<std::sync::Arc<dyn promptgate_store::Store>> {
    promptgate_store::open(database_url).await.with_context(|| {
        format!(
            "cannot open the database {}",
            promptgate_core::redact::database_url_for_display(database_url)
        )
    })
}
