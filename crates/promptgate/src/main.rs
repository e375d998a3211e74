//! The `promptgate` binary: the gateway server (`serve`) and the command-line tools. It is glue:
//! the logic lives in the library crates.

mod clients_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use promptgate_server::config::{ConfigFile, DEFAULT_DATABASE_URL, DEFAULT_LISTEN};
use promptgate_server::{Gateway, ServeOptions};

/// promptgate: a self-hosted gateway for the system prompts of LLM applications.
#[derive(Debug, Parser)]
#[command(name = "promptgate", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    #[command(
        after_help = "Examples:\n  promptgate serve\n  promptgate serve --listen 0.0.0.0:8080 --database-url sqlite:///var/lib/promptgate/promptgate.db --config promptgate.toml"
    )]
    Serve(ServeArgs),
    /// Manage OAuth clients directly in the database (works while a server runs on it).
    #[command(subcommand)]
    Clients(clients_cmd::ClientsCommand),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "PROMPTGATE_LISTEN")]
    listen: Option<String>,
    /// Database URL [default: sqlite://promptgate.db].
    #[arg(long, env = "PROMPTGATE_DATABASE_URL")]
    database_url: Option<String>,
    /// TOML configuration file.
    #[arg(long, env = "PROMPTGATE_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            report(&anyhow::Error::new(err).context("cannot start the async runtime"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            ExitCode::FAILURE
        }
    }
}

/// Prints an error once, with its chain of causes.
#[allow(clippy::print_stderr)]
fn report(err: &anyhow::Error) {
    eprintln!("promptgate: error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Clients(command) => clients_cmd::run(command).await,
    }
}

#[allow(clippy::print_stderr)]
async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let not_yet = config.not_yet_active_sections();
    if !not_yet.is_empty() {
        tracing::warn!(
            sections = ?not_yet,
            "these configuration sections are accepted but not acted on by this build yet"
        );
    }
    let listen = args
        .listen
        .or_else(|| config.server.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let database_url = args
        .database_url
        .or_else(|| config.server.database_url.clone())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    let admin_credentials = match (
        std::env::var("PROMPTGATE_ADMIN_CLIENT_ID")
            .ok()
            .filter(|v| !v.is_empty()),
        std::env::var("PROMPTGATE_ADMIN_CLIENT_SECRET")
            .ok()
            .filter(|v| !v.is_empty()),
    ) {
        (Some(id), Some(secret)) => Some((id, secret)),
        (None, None) => None,
        _ => anyhow::bail!(
            "set both PROMPTGATE_ADMIN_CLIENT_ID and PROMPTGATE_ADMIN_CLIENT_SECRET, or neither"
        ),
    };
    let supplied_admin = admin_credentials.is_some();
    let gateway = Gateway::bind(ServeOptions {
        listen,
        database_url: database_url.clone(),
        config,
        admin_credentials,
    })
    .await
    .context("the gateway cannot start")?;
    if let Some(admin) = &gateway.bootstrapped_admin {
        if supplied_admin {
            tracing::info!(client_id = %admin.client.id, "created the admin client from PROMPTGATE_ADMIN_CLIENT_ID");
        } else {
            eprintln!("promptgate: created the admin client (shown once, store it now)");
            eprintln!("  client id:     {}", admin.client.id);
            eprintln!("  client secret: {}", admin.secret);
        }
    }
    eprintln!("promptgate listening on http://{}", gateway.local_addr);
    tracing::info!(database = %database_url, "serving");
    gateway.run(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
