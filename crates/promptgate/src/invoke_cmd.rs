//! `promptgate invoke` and `promptgate chat`: talk to a prompt through the gateway.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use promptgate_client::api::{ChatTurn, InvokeOptions, InvokeRequest, InvokeResponse};
use promptgate_client::{Client, InvokeEvent, PromptQuery};

use crate::UsageError;
use crate::output::Output;
use crate::template_flags::VariableArgs;

/// `promptgate invoke` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  promptgate invoke support_agent 'Where is my order?' --session s-42\n  promptgate invoke 01a21b90-f811-7001-9495-3ba146e3a674 'Hi' --stream\n  promptgate invoke support_agent 'Where is my order?' --var customer_name=Jane --vars-file vars.json --label staging"
)]
pub struct InvokeArgs {
    /// The prompt's id or name.
    prompt: String,
    /// What the user says; `-` reads standard input.
    input: String,
    /// The conversation id: sticky routing keeps it on one version.
    #[arg(long)]
    session: Option<String>,
    /// Pin a version, bypassing the traffic split.
    #[arg(long)]
    version: Option<String>,
    /// Serve the version this label points at, such as production or staging.
    #[arg(long, conflicts_with = "version")]
    label: Option<String>,
    #[command(flatten)]
    variables: VariableArgs,
    /// Print the answer as it is generated.
    #[arg(long)]
    stream: bool,
    /// The most tokens the model may generate.
    #[arg(long)]
    max_output_tokens: Option<i64>,
    /// KEY=VALUE metadata kept with the telemetry (repeatable).
    #[arg(long = "metadata", value_name = "KEY=VALUE")]
    metadata: Vec<String>,
}

/// `promptgate chat` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  promptgate chat support_agent\n\nType a message and press Enter; an empty line or end of input (Ctrl-D) ends the chat."
)]
pub struct ChatArgs {
    /// The prompt's id or name.
    prompt: String,
    /// The conversation id (default: a new one, printed at the start).
    #[arg(long)]
    session: Option<String>,
    /// Pin a version, bypassing the traffic split.
    #[arg(long)]
    version: Option<String>,
    /// Serve the version this label points at, such as production or staging.
    #[arg(long, conflicts_with = "version")]
    label: Option<String>,
    #[command(flatten)]
    variables: VariableArgs,
}

/// Finds a prompt's id from an id or an exact name.
async fn resolve_prompt(client: &Client, prompt: &str) -> anyhow::Result<String> {
    if is_uuid(prompt) {
        return Ok(prompt.to_owned());
    }
    let found: Vec<_> = client
        .list_prompts(PromptQuery {
            name: Some(prompt.to_owned()),
            status: Some("ACTIVE".to_owned()),
            page_size: Some(2),
        })
        .take(1)
        .try_collect()
        .await?;
    found
        .into_iter()
        .next()
        .map(|p| p.id)
        .with_context(|| format!("no active prompt named {prompt:?}"))
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Runs `promptgate invoke`.
pub async fn invoke(args: InvokeArgs, client: &Client, out: &Output) -> anyhow::Result<ExitCode> {
    if args.input == "-" && args.variables.reads_stdin() {
        return Err(UsageError(
            "the input and --vars-file cannot both be - (standard input)".to_owned(),
        )
        .into());
    }
    // Every flag is checked before anything is sent.
    let variables = args.variables.variables()?;
    let input = if args.input == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("cannot read standard input")?;
        text
    } else {
        args.input
    };
    let mut metadata = BTreeMap::new();
    for pair in &args.metadata {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("--metadata {pair:?} is not KEY=VALUE"))?;
        metadata.insert(key.to_owned(), value.to_owned());
    }
    let request = InvokeRequest {
        prompt_id: Some(resolve_prompt(client, &args.prompt).await?),
        user_input: Some(input),
        session_id: args.session,
        version: args.version,
        label: args.label,
        variables,
        messages: None,
        options: Some(InvokeOptions {
            max_output_tokens: args.max_output_tokens,
            ..InvokeOptions::default()
        }),
        metadata: (!metadata.is_empty()).then_some(metadata),
    };
    let answer = if args.stream {
        let (text, done) = stream_to_stdout(client, &request, !out.json).await?;
        InvokeResponse {
            output: Some(text),
            ..done
        }
    } else {
        client.invoke(&request).await?
    };
    if out.json {
        out.print_json(&answer);
    } else {
        if !args.stream {
            println!("{}", answer.output.as_deref().unwrap_or_default());
        }
        report(&answer);
    }
    Ok(ExitCode::SUCCESS)
}

/// Streams an invocation, printing deltas as they come when `print` is set.
async fn stream_to_stdout(
    client: &Client,
    request: &InvokeRequest,
    print: bool,
) -> anyhow::Result<(String, InvokeResponse)> {
    let mut events = client.invoke_stream(request).await?;
    let mut text = String::new();
    while let Some(event) = events.next().await {
        match event? {
            InvokeEvent::Delta(piece) => {
                if print {
                    print!("{piece}");
                    std::io::stdout().flush().ok();
                }
                text.push_str(&piece);
            }
            InvokeEvent::Done(done) => {
                if print {
                    println!();
                }
                return Ok((text, *done));
            }
        }
    }
    anyhow::bail!("the stream ended before its done event")
}

/// One line about the answer, on standard error so standard output stays the answer.
fn report(answer: &InvokeResponse) {
    let usage = answer
        .token_usage
        .map(|u| format!(", {} + {} tokens", u.prompt, u.completion))
        .unwrap_or_default();
    eprintln!(
        "[{} · version {} · {} · {:.0} ms{usage}]",
        answer.response_id, answer.version, answer.model, answer.latency_ms
    );
}

/// Runs `promptgate chat`: one session, the earlier turns sent with every message.
pub async fn chat(args: ChatArgs, client: &Client) -> anyhow::Result<ExitCode> {
    let variables = args.variables.variables()?;
    let prompt_id = resolve_prompt(client, &args.prompt).await?;
    let session = args
        .session
        .unwrap_or_else(|| format!("chat-{}", std::process::id()));
    eprintln!("chatting with prompt {prompt_id} as session {session}; an empty line ends the chat");
    let mut turns: Vec<ChatTurn> = Vec::new();
    let stdin = std::io::stdin();
    loop {
        eprint!("you> ");
        std::io::stderr().flush().ok();
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end_matches(['\n', '\r']).to_owned();
        if line.is_empty() {
            break;
        }
        let request = InvokeRequest {
            prompt_id: Some(prompt_id.clone()),
            user_input: Some(line.clone()),
            session_id: Some(session.clone()),
            version: args.version.clone(),
            label: args.label.clone(),
            variables: variables.clone(),
            messages: Some(turns.clone()),
            options: None,
            metadata: None,
        };
        let (answer, done) = stream_to_stdout(client, &request, true).await?;
        report(&done);
        turns.push(ChatTurn::text("user", line));
        turns.push(ChatTurn::text("assistant", answer));
    }
    Ok(ExitCode::SUCCESS)
}
