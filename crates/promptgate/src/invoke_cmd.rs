//! `promptgate invoke` and `promptgate chat`: talk to a prompt through the gateway.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use promptgate_client::api::{ChatTurn, InvokeOptions, InvokeRequest, InvokeResponse};
use promptgate_client::{Client, InvokeEvent, PromptQuery};

use crate::UsageError;
use crate::output::Output;
use crate::template_flags::VariableArgs;
use crate::tool_flags;

/// `promptgate invoke` arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  promptgate invoke support_agent 'Where is my order?' --session s-42\n  promptgate invoke 01a21b90-f811-7001-9495-3ba146e3a674 'Hi' --stream\n  promptgate invoke support_agent 'Where is my order?' --var customer_name=Jane --vars-file vars.json --label staging\n  promptgate invoke order_desk --messages-file turns.json    # continue after a tool call\n\nturns.json: [{\"role\": \"user\", \"content\": \"Where is A-1?\"},\n  {\"role\": \"assistant\", \"content\": \"\", \"toolCalls\": [{\"id\": \"call_1\", \"name\": \"get_order\", \"arguments\": \"{\\\"id\\\": \\\"A-1\\\"}\"}]},\n  {\"role\": \"tool\", \"toolCallId\": \"call_1\", \"content\": \"{\\\"status\\\": \\\"shipped\\\"}\"}]"
)]
pub struct InvokeArgs {
    /// The prompt's id or name.
    prompt: String,
    /// What the user says; `-` reads standard input. May be left out when --messages-file
    /// ends with a tool's result.
    input: Option<String>,
    /// A JSON file of earlier turns, oldest first, in the contract's shape: {"role":
    /// "user"|"assistant", "content"}, an assistant turn with its "toolCalls", {"role": "tool",
    /// "toolCallId", "content"} with a tool's result; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    messages_file: Option<PathBuf>,
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
    after_help = "Example:\n  promptgate chat support_agent\n\nType a message and press Enter; an empty line or end of input (Ctrl-D) ends the chat.\nWhen the model calls a tool, type the tool's result at the `result of NAME (ID)>` prompt:\nit is sent back and the model answers with it."
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
    let stdin = Path::new("-");
    let readers: Vec<&str> = [
        (args.input.as_deref() == Some("-"), "the input"),
        (args.variables.reads_stdin(), "--vars-file"),
        (
            args.messages_file.as_deref() == Some(stdin),
            "--messages-file",
        ),
    ]
    .into_iter()
    .filter_map(|(reads, name)| reads.then_some(name))
    .collect();
    if readers.len() > 1 {
        return Err(UsageError(format!(
            "{} cannot all be - (standard input)",
            readers.join(" and ")
        ))
        .into());
    }
    // Every flag is checked before anything is sent.
    let variables = args.variables.variables()?;
    let messages = args
        .messages_file
        .as_deref()
        .map(tool_flags::messages)
        .transpose()?;
    let after_tools = messages
        .as_ref()
        .and_then(|turns| turns.last())
        .is_some_and(|turn| turn.role.as_deref() == Some("tool"));
    let input = match args.input {
        Some(input) if input == "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("cannot read standard input")?;
            Some(text)
        }
        Some(input) => Some(input),
        // Continuing after tool results, the caller may have nothing to add.
        None if after_tools => None,
        None => {
            return Err(UsageError(
                "give what the user says (INPUT), or a --messages-file whose last turn is a tool's result"
                    .to_owned(),
            )
            .into());
        }
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
        user_input: input,
        session_id: args.session,
        version: args.version,
        label: args.label,
        variables,
        messages,
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
        let output = answer.output.as_deref().unwrap_or_default();
        // An answer that only calls tools has no text: its calls are the answer.
        let has_text = !output.is_empty() || answer.tool_calls.is_empty();
        if !args.stream && has_text {
            println!("{output}");
        }
        print_tool_calls(&answer);
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
                if print && !text.is_empty() {
                    println!();
                }
                return Ok((text, *done));
            }
            // The done event holds every call whole, printed from there; newer event kinds are
            // skipped.
            _ => {}
        }
    }
    anyhow::bail!("the stream ended before its done event")
}

/// The tools the answer calls, one line each on standard output (they are the answer):
/// `tool call ID: NAME ARGUMENTS`.
fn print_tool_calls(answer: &InvokeResponse) {
    for call in &answer.tool_calls {
        println!(
            "tool call {}: {} {}",
            call.id.as_deref().unwrap_or("?"),
            call.name.as_deref().unwrap_or("?"),
            call.arguments.as_deref().unwrap_or("{}")
        );
    }
}

/// One line about the answer, on standard error so standard output stays the answer; then,
/// with a JSON response format, what the output check found.
fn report(answer: &InvokeResponse) {
    let usage = answer
        .token_usage
        .map(|u| format!(", {} + {} tokens", u.prompt, u.completion))
        .unwrap_or_default();
    // `stop` is the usual end; any other (tool_calls, length, content_filter) is worth saying.
    let finish = if answer.finish_reason == "stop" {
        String::new()
    } else {
        format!(" · finish {}", answer.finish_reason)
    };
    eprintln!(
        "[{} · version {} · {} · {:.0} ms{usage}{finish}]",
        answer.response_id, answer.version, answer.model, answer.latency_ms
    );
    match &answer.parsed {
        Some(Some(value)) => eprintln!("parsed: {value}"),
        Some(None) => {
            eprintln!("the output does not match the response format:");
            for error in answer.output_errors.iter().flatten() {
                let at = if error.path.is_empty() {
                    "(the whole output)"
                } else {
                    error.path.as_str()
                };
                eprintln!("  {at}: {}", error.message);
            }
        }
        None => {}
    }
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
        // One message, then as many rounds as the model calls tools: each call's result is
        // asked for and sent back with no new user input.
        let mut input = Some(line);
        loop {
            let request = InvokeRequest {
                prompt_id: Some(prompt_id.clone()),
                user_input: input.clone(),
                session_id: Some(session.clone()),
                version: args.version.clone(),
                label: args.label.clone(),
                variables: variables.clone(),
                messages: Some(turns.clone()),
                options: None,
                metadata: None,
            };
            let (answer, done) = stream_to_stdout(client, &request, true).await?;
            print_tool_calls(&done);
            report(&done);
            if let Some(said) = input.take() {
                turns.push(ChatTurn::text("user", said));
            }
            if done.tool_calls.is_empty() {
                turns.push(ChatTurn::text("assistant", answer));
                break;
            }
            turns.push(ChatTurn {
                tool_calls: Some(done.tool_calls.clone()),
                ..ChatTurn::text("assistant", answer)
            });
            for call in &done.tool_calls {
                let id = call.id.clone().unwrap_or_default();
                eprint!("result of {} ({id})> ", call.name.as_deref().unwrap_or("?"));
                std::io::stderr().flush().ok();
                let mut result = String::new();
                if stdin.lock().read_line(&mut result)? == 0 {
                    return Ok(ExitCode::SUCCESS);
                }
                turns.push(ChatTurn {
                    tool_call_id: Some(id),
                    ..ChatTurn::text("tool", result.trim_end_matches(['\n', '\r']))
                });
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
