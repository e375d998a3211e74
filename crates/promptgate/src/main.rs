//! The `promptgate` binary: the gateway server (`serve`) and the command-line client. It is
//! glue: the logic lives in the library crates (`promptgate-server`, `promptgate-client`).
//!
//! Exit codes: 0 success, 1 any other failure, 2 usage error, 3 the gateway refused the request
//! (an API error), 4 the gateway could not be reached.

mod api_keys_cmd;
mod audit_cmd;
mod clients_cmd;
mod invoke_cmd;
mod migrate_cmd;
mod output;
mod profile;
mod prompts_cmd;
mod telemetry_cmd;
mod template_flags;
mod tool_flags;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use promptgate_client::Client;
use promptgate_server::config::{ConfigFile, DEFAULT_DATABASE_URL, DEFAULT_LISTEN};
use promptgate_server::{Gateway, ServeOptions};

use crate::output::Output;

/// A mistake in how the command was called (exit code 2, like clap's own usage errors).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Exit code for a usage error.
const EXIT_USAGE: u8 = 2;
/// Exit code for an error answer of the gateway.
const EXIT_API_ERROR: u8 = 3;
/// Exit code when the gateway cannot be reached.
const EXIT_TRANSPORT_ERROR: u8 = 4;

/// promptgate: a self-hosted gateway for the system prompts of LLM applications.
#[derive(Debug, Parser)]
#[command(name = "promptgate", version, about, long_about = None)]
struct Cli {
    /// The gateway's URL (or PROMPTGATE_URL, or `url` in ~/.config/promptgate/config.toml).
    #[arg(long, global = true, env = "PROMPTGATE_URL")]
    url: Option<String>,
    /// OAuth client id (or PROMPTGATE_CLIENT_ID, or the profile's `client_id`).
    #[arg(long, global = true, env = "PROMPTGATE_CLIENT_ID")]
    client_id: Option<String>,
    /// OAuth client secret (or PROMPTGATE_CLIENT_SECRET, or the profile's `client_secret`).
    #[arg(
        long,
        global = true,
        env = "PROMPTGATE_CLIENT_SECRET",
        hide_env_values = true
    )]
    client_secret: Option<String>,
    /// An API key (pgk_…) to use instead of client credentials (or PROMPTGATE_API_KEY).
    #[arg(
        long,
        global = true,
        env = "PROMPTGATE_API_KEY",
        hide_env_values = true
    )]
    api_key: Option<String>,
    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    json: bool,
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
    /// Long-lived API keys (pgk_…) of a client: create, list, revoke.
    #[command(subcommand)]
    ApiKeys(api_keys_cmd::ApiKeysCommand),
    /// Create, read, version, split and archive prompts on a gateway.
    #[command(subcommand)]
    Prompts(prompts_cmd::PromptsCommand),
    /// Invoke a prompt: the gateway picks the version, applies guardrails and calls the model.
    Invoke(invoke_cmd::InvokeArgs),
    /// Chat with a prompt interactively, keeping the session and the earlier turns.
    Chat(invoke_cmd::ChatArgs),
    /// Telemetry: records, per-version summaries and comparisons, export.
    #[command(subcommand)]
    Telemetry(telemetry_cmd::TelemetryCommand),
    /// Give feedback on an invocation (a score from 0 to 1, or thumbs up/down).
    Feedback(telemetry_cmd::FeedbackArgs),
    /// The audit log: list, append, export, and verify it offline with the gateway's public key.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// Copy a SQLite database into an empty PostgreSQL database, audit log verbatim.
    #[command(
        after_help = "Example:\n  promptgate migrate --from sqlite:///var/lib/promptgate/promptgate.db --to postgres://promptgate@db.internal/promptgate"
    )]
    Migrate(migrate_cmd::MigrateArgs),
    /// List the gateway's model endpoints and whether each can be called.
    #[command(after_help = "Example:\n  promptgate model-endpoints --url http://127.0.0.1:8080")]
    ModelEndpoints,
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  promptgate completions bash > /etc/bash_completion.d/promptgate"
    )]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
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
    /// TLS certificate chain (PEM) [default: [server] tls_cert_file]; with --tls-key the gateway
    /// speaks HTTPS (HTTP/2 and HTTP/1.1 by ALPN) and re-reads both files on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1) [default: [server] tls_key_file].
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// The async runtime: multi-threaded, one worker per core unless `PROMPTGATE_WORKER_THREADS`
/// says otherwise (`1` runs everything on one thread).
fn build_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let workers = std::env::var("PROMPTGATE_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n >= 1);
    match workers {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => tokio::runtime::Runtime::new(),
    }
}

fn main() -> ExitCode {
    quiet_broken_pipe();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
        )
        .init();
    let runtime = match build_runtime() {
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
            exit_code_for(&err)
        }
    }
}

/// A closed standard output (`promptgate prompts list | head`) is not an error: Rust ignores
/// SIGPIPE, so writing to stdout panics instead; this ends the process quietly in that case.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("Broken pipe") || message.contains("BrokenPipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// Prints an error once, with its chain of causes and the gateway's context id.
#[allow(clippy::print_stderr)]
fn report(err: &anyhow::Error) {
    eprintln!("promptgate: error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if let Some(context_id) = err
        .downcast_ref::<promptgate_client::Error>()
        .and_then(promptgate_client::Error::context_id)
    {
        eprintln!("  contextId: {context_id}");
    }
}

fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    if err.downcast_ref::<UsageError>().is_some() {
        return ExitCode::from(EXIT_USAGE);
    }
    match err.downcast_ref::<promptgate_client::Error>() {
        Some(promptgate_client::Error::Transport(_)) => ExitCode::from(EXIT_TRANSPORT_ERROR),
        Some(promptgate_client::Error::Config(_) | promptgate_client::Error::Invalid { .. }) => {
            ExitCode::from(EXIT_USAGE)
        }
        Some(_) => ExitCode::from(EXIT_API_ERROR),
        None => ExitCode::FAILURE,
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let out = Output { json: cli.json };
    let connection = Connection {
        url: cli.url,
        client_id: cli.client_id,
        client_secret: cli.client_secret,
        api_key: cli.api_key,
    };
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Clients(command) => clients_cmd::run(command, cli.json).await,
        Command::ApiKeys(command) => {
            let has_url = connection.has_url()?;
            api_keys_cmd::run(command, || connection.client(), has_url, &out).await
        }
        Command::Prompts(command) => prompts_cmd::run(command, || connection.client(), &out).await,
        Command::ModelEndpoints => prompts_cmd::model_endpoints(&connection.client()?, &out).await,
        Command::Invoke(args) => invoke_cmd::invoke(args, &connection.client()?, &out).await,
        Command::Telemetry(command) => {
            telemetry_cmd::run(command, &connection.client()?, &out).await
        }
        Command::Feedback(args) => telemetry_cmd::feedback(args, &connection.client()?, &out).await,
        Command::Chat(args) => invoke_cmd::chat(args, &connection.client()?).await,
        Command::Audit(command) => audit_cmd::run(command, || connection.client(), &out).await,
        Command::Migrate(args) => migrate_cmd::run(args, cli.json).await,
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "promptgate",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The gateway and credentials from flags and the environment, completed by the profile.
struct Connection {
    url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    api_key: Option<String>,
}

impl Connection {
    /// Whether a gateway URL is configured (flag, environment or profile).
    fn has_url(&self) -> anyhow::Result<bool> {
        Ok(self.url.is_some() || profile::load()?.url.is_some())
    }

    fn client(self) -> anyhow::Result<Client> {
        let has_key = self.api_key.as_deref().is_some_and(|k| !k.is_empty());
        let needs_profile = self.url.is_none()
            || (!has_key && (self.client_id.is_none() || self.client_secret.is_none()));
        let profile = if needs_profile {
            profile::load()?
        } else {
            profile::Profile::default()
        };
        let url = self.url.or(profile.url).ok_or_else(|| {
            UsageError(
                "no gateway URL: pass --url, set PROMPTGATE_URL, or put url in ~/.config/promptgate/config.toml"
                    .to_owned(),
            )
        })?;
        let mut builder = Client::builder().base_url(url);
        if let Some(key) = self.api_key.filter(|k| !k.is_empty()) {
            return Ok(builder.api_key(key).build()?);
        }
        match (
            self.client_id.or(profile.client_id),
            self.client_secret.or(profile.client_secret),
        ) {
            (Some(id), Some(secret)) => builder = builder.client_credentials(id, secret),
            _ => {
                return Err(UsageError(
                    "no client credentials: pass --client-id and --client-secret (or --api-key), set PROMPTGATE_CLIENT_ID and PROMPTGATE_CLIENT_SECRET (or PROMPTGATE_API_KEY), or use the profile file"
                        .to_owned(),
                )
                .into());
            }
        }
        Ok(builder.build()?)
    }
}

#[allow(clippy::print_stderr)]
async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    // The flags come in pairs (clap checks) and replace the configured pair.
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.server.tls_cert_file = Some(cert.display().to_string());
        config.server.tls_key_file = Some(key.display().to_string());
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
    let scheme = if gateway.tls { "https" } else { "http" };
    eprintln!("promptgate listening on {scheme}://{}", gateway.local_addr);
    tracing::info!(
        database = %promptgate_core::redact::database_url_for_display(&database_url),
        "serving"
    );
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
