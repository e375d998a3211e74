//! `promptgate prompts …` and `promptgate model-endpoints`: the gateway's prompt API from a
//! terminal or a script, on the client SDK.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use futures_util::TryStreamExt;
use promptgate_client::api::{
    ChatCompletionsDraft, CreatePromptRequest, Prompt, RenderRequest, UpdatePromptRequest,
};
use promptgate_client::{
    Client, FewShotExample, FitStrategy, OutputFormat, PromptDraft, PromptQuery, SplitStrategy,
    TokenCounter, TokenizerKind, ToolChoice, TrafficSplit, fewshot,
};
use serde_json::json;

use crate::UsageError;
use crate::output::Output;
use crate::template_flags::{self, VariableArgs, read_input};
use crate::tool_flags;

#[derive(Debug, Subcommand)]
pub enum PromptsCommand {
    /// Create a prompt from a JSON file (the contract's body) or from flags.
    #[command(
        after_help = "Examples:\n  promptgate prompts create --file prompt.json\n  promptgate prompts create --name support_agent --model openai/gpt-4o-mini \\\n      --system-prompt 'You are a helpful support agent.' --filters pii,profanity --max-tokens 1500\n  promptgate prompts create --name order_desk --model openai/gpt-4o-mini \\\n      --system-prompt 'You look orders up.' --tools tools.json --tool-choice auto --response-format answer.json\n\ntools.json: [{\"type\": \"function\", \"function\": {\"name\": \"get_order\", \"description\": \"…\", \"parameters\": {…}}}]\nanswer.json: {\"name\": \"answer\", \"schema\": {…}, \"strict\": true}"
    )]
    Create(CreateArgs),
    /// Show a prompt (its default version's settings).
    #[command(
        after_help = "Example:\n  promptgate prompts get 01a21b90-f811-7001-9495-3ba146e3a674 --json"
    )]
    Get {
        /// The prompt id.
        id: String,
    },
    /// List prompts.
    #[command(
        after_help = "Examples:\n  promptgate prompts list\n  promptgate prompts list --name 'support*' --status ACTIVE --json"
    )]
    List {
        /// Exact name, or a pattern with `*`.
        #[arg(long)]
        name: Option<String>,
        /// ACTIVE or ARCHIVED.
        #[arg(long)]
        status: Option<String>,
    },
    /// List a prompt's versions, newest first.
    #[command(
        after_help = "Example:\n  promptgate prompts versions 01a21b90-f811-7001-9495-3ba146e3a674"
    )]
    Versions {
        /// The prompt id.
        id: String,
    },
    /// Add a version (fields left out are taken from the newest version).
    #[command(
        after_help = "Examples:\n  promptgate prompts update ID --version 1.1.0 --system-prompt 'You are concise.'\n  promptgate prompts update ID --version 1.1.0 --file update.json\n  promptgate prompts update ID --version 1.2.0 --tools tools-v2.json --tool-choice get_order\n  promptgate prompts update ID --version 1.3.0 --remove-tools --remove-tool-choice --response-format text"
    )]
    Update(UpdateArgs),
    /// Split traffic between versions: VERSION=WEIGHT pairs that sum to 1.
    #[command(
        after_help = "Example:\n  promptgate prompts split ID 1.0.0=0.9 1.1.0=0.1 --strategy sticky"
    )]
    Split {
        /// The prompt id.
        id: String,
        /// VERSION=WEIGHT pairs, such as 1.0.0=0.9 1.1.0=0.1.
        #[arg(required = true)]
        weights: Vec<String>,
        /// sticky (a conversation keeps its version) or random.
        #[arg(long, default_value = "sticky")]
        strategy: String,
        /// Only if the prompt's ETag is still this.
        #[arg(long)]
        if_match: Option<String>,
    },
    /// Set how `/v1/chat/completions` treats a caller's system message and settings.
    #[command(
        after_help = "Example:\n  promptgate prompts chat-policy ID --system-message prepend --allow-caller-settings false"
    )]
    ChatPolicy {
        /// The prompt id.
        id: String,
        /// replace (the version's system prompt replaces the caller's) or prepend (it comes first).
        #[arg(long)]
        system_message: Option<String>,
        /// Whether the caller's temperature and model endpoint win over the version's.
        #[arg(long)]
        allow_caller_settings: Option<bool>,
        /// Only if the prompt's ETag is still this.
        #[arg(long)]
        if_match: Option<String>,
    },
    /// Archive a prompt: it stops serving; its history stays.
    #[command(
        after_help = "Example:\n  promptgate prompts archive 01a21b90-f811-7001-9495-3ba146e3a674"
    )]
    Archive {
        /// The prompt id.
        id: String,
        /// Only if the prompt's ETag is still this.
        #[arg(long)]
        if_match: Option<String>,
    },
    /// Preview a version's templates with sample variables: the rendered system prompt and
    /// template messages with their token counts (no model is called).
    #[command(
        after_help = "Examples:\n  promptgate prompts render ID --version 1.2.0 --var customer_name=Jane\n  promptgate prompts render ID --label production --vars-file vars.json --json"
    )]
    Render(RenderArgs),
    /// Create or move a label (a named pointer to a version, such as production), or delete it.
    #[command(
        after_help = "Examples:\n  promptgate prompts label ID production 1.2.0\n  promptgate prompts label ID production --delete"
    )]
    Label(LabelArgs),
    /// Fit few-shot examples to a token limit and print the combined prompt (offline).
    #[command(
        after_help = "Example:\n  promptgate prompts optimize --base-file system.txt --examples examples.jsonl --limit 1500 --strategy keep-recent\n\nexamples.jsonl holds one {\"input\": \"…\", \"output\": \"…\"} per line, oldest first."
    )]
    Optimize(OptimizeArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The contract's JSON body; `-` reads standard input.
    #[arg(long, conflicts_with_all = [
        "name", "model", "system_prompt", "system_prompt_file", "temperature", "version",
        "filters", "blocked", "max_tokens", "variables_schema", "template_messages", "tools",
        "tool_choice", "response_format",
    ])]
    file: Option<PathBuf>,
    /// Unique name.
    #[arg(long, required_unless_present = "file")]
    name: Option<String>,
    /// Model endpoint ref, such as openai/gpt-4o-mini.
    #[arg(long, required_unless_present = "file")]
    model: Option<String>,
    /// The system prompt text.
    #[arg(long, conflicts_with = "system_prompt_file")]
    system_prompt: Option<String>,
    /// A file holding the system prompt; `-` reads standard input.
    #[arg(long)]
    system_prompt_file: Option<PathBuf>,
    /// Temperature in [0, 2].
    #[arg(long)]
    temperature: Option<f64>,
    /// The first version.
    #[arg(long, default_value = "1.0.0")]
    version: String,
    /// Content filters, comma-separated: pii,profanity.
    #[arg(long, value_delimiter = ',')]
    filters: Vec<String>,
    /// Blocked categories, comma-separated: violence,hate_speech,self_harm,sexual,illegal.
    #[arg(long, value_delimiter = ',')]
    blocked: Vec<String>,
    /// The system prompt's token budget.
    #[arg(long)]
    max_tokens: Option<u32>,
    /// A JSON file: the variables' JSON Schema (draft 2020-12) of an object; without it every
    /// {{placeholder}} is a required string.
    #[arg(long, value_name = "FILE")]
    variables_schema: Option<PathBuf>,
    /// A JSON file: the chat template's fixed turns, [{"role": "user"|"assistant", "content": "…"}].
    #[arg(long, value_name = "FILE")]
    template_messages: Option<PathBuf>,
    #[command(flatten)]
    tools: ToolArgs,
    /// Endpoints tried in order when the model endpoint fails, comma-separated (at most 5).
    #[arg(long, value_name = "REF,REF")]
    fallback_endpoints: Option<String>,
}

/// The version's tools and output format, as `prompts create` and `prompts update` take them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ToolArgs {
    /// A JSON file: the functions the model may call, in OpenAI's shape,
    /// [{"type": "function", "function": {"name", "description", "parameters": <JSON Schema>}}].
    #[arg(long, value_name = "FILE")]
    tools: Option<PathBuf>,
    /// auto, none, required, or the name of one of the tools (the model must call it).
    #[arg(long, value_name = "auto|none|required|NAME")]
    tool_choice: Option<String>,
    /// text, json_object, or a JSON file holding a json_schema spec,
    /// {"name": "…", "schema": <JSON Schema>, "strict": true}: the gateway checks every output.
    #[arg(long, value_name = "text|json_object|FILE")]
    response_format: Option<String>,
}

/// What [`ToolArgs`] asks for, read and checked.
struct ToolSettings {
    tools: Option<Vec<promptgate_client::api::Tool>>,
    tool_choice: Option<ToolChoice>,
    response_format: Option<OutputFormat>,
}

impl ToolArgs {
    /// Reads the files and words; a usage error names the flag (and the file).
    fn read(&self) -> anyhow::Result<ToolSettings> {
        Ok(ToolSettings {
            tools: self.tools.as_deref().map(tool_flags::tools).transpose()?,
            tool_choice: self
                .tool_choice
                .as_deref()
                .map(tool_flags::tool_choice)
                .transpose()?,
            response_format: self
                .response_format
                .as_deref()
                .map(tool_flags::response_format)
                .transpose()?,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The prompt id.
    id: String,
    /// The new version.
    #[arg(long)]
    version: String,
    /// The new system prompt.
    #[arg(long, conflicts_with_all = ["file", "system_prompt_file"])]
    system_prompt: Option<String>,
    /// A file holding the new system prompt; `-` reads standard input.
    #[arg(long, conflicts_with = "file")]
    system_prompt_file: Option<PathBuf>,
    /// The contract's PUT body as JSON; `-` reads standard input.
    #[arg(long)]
    file: Option<PathBuf>,
    /// New temperature.
    #[arg(long)]
    temperature: Option<f64>,
    /// New model endpoint ref.
    #[arg(long)]
    model: Option<String>,
    /// A JSON file: the new version's variables schema (JSON Schema draft 2020-12).
    #[arg(long, value_name = "FILE")]
    variables_schema: Option<PathBuf>,
    /// The new version has no variables schema: every {{placeholder}} is a required string.
    #[arg(long, conflicts_with = "variables_schema")]
    remove_variables_schema: bool,
    /// A JSON file: the new version's template messages, [{"role", "content"}] (`[]` removes them).
    #[arg(long, value_name = "FILE")]
    template_messages: Option<PathBuf>,
    #[command(flatten)]
    tools: ToolArgs,
    /// The new version's fallback endpoints, comma-separated; an empty value removes them.
    #[arg(long, value_name = "REF,REF")]
    fallback_endpoints: Option<String>,
    /// The new version has no tools.
    #[arg(long, conflicts_with = "tools")]
    remove_tools: bool,
    /// The new version has no tool choice (the model decides).
    #[arg(long, conflicts_with = "tool_choice")]
    remove_tool_choice: bool,
    /// The new version has no response format: its outputs are no longer checked.
    #[arg(long, conflicts_with = "response_format")]
    remove_response_format: bool,
    /// Only if the prompt's ETag is still this.
    #[arg(long)]
    if_match: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The prompt id.
    id: String,
    /// The version to render (default: the prompt's default version).
    #[arg(long)]
    version: Option<String>,
    /// Render the version this label points at.
    #[arg(long, conflicts_with = "version")]
    label: Option<String>,
    #[command(flatten)]
    variables: VariableArgs,
}

#[derive(Debug, clap::Args)]
pub struct LabelArgs {
    /// The prompt id.
    id: String,
    /// The label: a lower-case letter, then letters, digits and '-' (production, canary-eu).
    label: String,
    /// The version the label points at from now on.
    #[arg(required_unless_present = "delete", conflicts_with = "delete")]
    version: Option<String>,
    /// Delete the label instead.
    #[arg(long)]
    delete: bool,
    /// Only if the prompt's ETag is still this.
    #[arg(long)]
    if_match: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct OptimizeArgs {
    /// The base (system) prompt.
    #[arg(
        long,
        required_unless_present = "base_file",
        conflicts_with = "base_file"
    )]
    base: Option<String>,
    /// A file holding the base prompt; `-` reads standard input.
    #[arg(long)]
    base_file: Option<PathBuf>,
    /// JSON Lines of {"input", "output"}, oldest first; `-` reads standard input.
    #[arg(long)]
    examples: PathBuf,
    /// The token limit for the base prompt and examples together.
    #[arg(long)]
    limit: usize,
    /// drop-oldest, or keep-recent (skips any single example that is too long).
    #[arg(long, default_value = "drop-oldest")]
    strategy: String,
    /// o200k_base or cl100k_base.
    #[arg(long, default_value = "o200k_base")]
    tokenizer: String,
}

/// `--fallback-endpoints REF,REF` as a list; an empty value is an empty list (no fallbacks).
fn endpoint_list(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect()
}

pub async fn run(
    command: PromptsCommand,
    client: impl FnOnce() -> anyhow::Result<Client>,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    match command {
        PromptsCommand::Optimize(args) => optimize(args, out),
        other => {
            let client = client()?;
            online(other, &client, out).await
        }
    }
}

async fn online(
    command: PromptsCommand,
    client: &Client,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    match command {
        PromptsCommand::Create(args) => {
            // The tool files are checked before anything else is read.
            let settings = args.tools.read()?;
            let draft = match &args.file {
                Some(path) => {
                    let request: CreatePromptRequest = serde_json::from_str(&read_input(path)?)
                        .with_context(|| format!("{} is not a prompt body", path.display()))?;
                    PromptDraft::from_request(request)
                }
                None => {
                    let system_prompt = match (&args.system_prompt, &args.system_prompt_file) {
                        (Some(text), _) => text.clone(),
                        (None, Some(path)) => read_input(path)?,
                        (None, None) => bail!("give --system-prompt or --system-prompt-file"),
                    };
                    let mut draft = PromptDraft::new(
                        args.name.as_deref().unwrap_or_default(),
                        args.model.as_deref().unwrap_or_default(),
                    )
                    .system_prompt(system_prompt)
                    .version(&args.version);
                    if let Some(t) = args.temperature {
                        draft = draft.temperature(t);
                    }
                    if !args.filters.is_empty() {
                        draft = draft.content_filtering(
                            &args.filters.iter().map(String::as_str).collect::<Vec<_>>(),
                        );
                    }
                    if !args.blocked.is_empty() {
                        draft = draft.blocked_categories(
                            &args.blocked.iter().map(String::as_str).collect::<Vec<_>>(),
                        );
                    }
                    if let Some(limit) = args.max_tokens {
                        draft = draft.max_tokens(limit);
                    }
                    if let Some(path) = &args.variables_schema {
                        draft = draft.variables_schema(template_flags::variables_schema(path)?);
                    }
                    if let Some(path) = &args.template_messages {
                        let messages = template_flags::template_messages(path)?;
                        let pairs: Vec<(&str, &str)> = messages
                            .iter()
                            .map(|m| {
                                (
                                    m.role.as_deref().unwrap_or_default(),
                                    m.content.as_deref().unwrap_or_default(),
                                )
                            })
                            .collect();
                        draft = draft.template_messages(&pairs);
                    }
                    if let Some(tools) = &settings.tools {
                        draft = draft.tools(tools);
                    }
                    if let Some(choice) = &settings.tool_choice {
                        draft = draft.tool_choice(choice);
                    }
                    if let Some(format) = &settings.response_format {
                        draft = draft.response_format(format);
                    }
                    if let Some(list) = &args.fallback_endpoints {
                        draft = draft.fallback_endpoints(&endpoint_list(list));
                    }
                    draft
                }
            };
            let created = client.create_prompt(&draft).await?;
            out.prompt("created", &created.value, created.etag.as_deref());
        }
        PromptsCommand::Get { id } => {
            let prompt = client.get_prompt(&id).await?;
            out.prompt("", &prompt.value, prompt.etag.as_deref());
        }
        PromptsCommand::List { name, status } => {
            let prompts: Vec<Prompt> = client
                .list_prompts(PromptQuery {
                    name,
                    status,
                    page_size: Some(100),
                })
                .try_collect()
                .await?;
            out.prompt_table(&prompts);
        }
        PromptsCommand::Versions { id } => {
            let versions: Vec<_> = client.list_versions(&id, Some(100)).try_collect().await?;
            out.version_table(&versions);
        }
        PromptsCommand::Update(args) => {
            // The template files are checked before anything else is read.
            let schema = args
                .variables_schema
                .as_deref()
                .map(template_flags::variables_schema)
                .transpose()?;
            let messages = args
                .template_messages
                .as_deref()
                .map(template_flags::template_messages)
                .transpose()?;
            let settings = args.tools.read()?;
            let mut request = match &args.file {
                Some(path) => serde_json::from_str::<UpdatePromptRequest>(&read_input(path)?)
                    .with_context(|| format!("{} is not an update body", path.display()))?,
                None => UpdatePromptRequest::default(),
            };
            request.version = Some(args.version.clone());
            if let Some(text) = args.system_prompt {
                request.system_prompt = Some(text);
            } else if let Some(path) = &args.system_prompt_file {
                request.system_prompt = Some(read_input(path)?);
            }
            if args.temperature.is_some() {
                request.temperature = args.temperature;
            }
            if args.model.is_some() {
                request.model_endpoint_ref = args.model;
            }
            if let Some(schema) = schema {
                request.variables_schema = Some(Some(schema));
            } else if args.remove_variables_schema {
                request.variables_schema = Some(None);
            }
            if messages.is_some() {
                request.template_messages = messages;
            }
            if let Some(tools) = settings.tools {
                request.tools = Some(tools);
            } else if args.remove_tools {
                request.tools = Some(Vec::new());
            }
            if let Some(choice) = &settings.tool_choice {
                request.tool_choice = Some(Some(choice.to_wire()));
            } else if args.remove_tool_choice {
                request.tool_choice = Some(None);
            }
            if let Some(format) = &settings.response_format {
                request.response_format = Some(Some(format.to_wire()));
            } else if args.remove_response_format {
                request.response_format = Some(None);
            }
            if let Some(list) = &args.fallback_endpoints {
                request.fallback_endpoint_refs =
                    Some(endpoint_list(list).into_iter().map(str::to_owned).collect());
            }
            let updated = client
                .update_prompt(&args.id, &request, args.if_match.as_deref())
                .await?;
            out.prompt("updated", &updated.value, updated.etag.as_deref());
        }
        PromptsCommand::Split {
            id,
            weights,
            strategy,
            if_match,
        } => {
            let strategy = SplitStrategy::parse(&strategy).ok_or_else(|| {
                UsageError(format!("--strategy is {strategy:?}; use sticky or random"))
            })?;
            let mut pairs = Vec::with_capacity(weights.len());
            for pair in &weights {
                let (version, weight) = pair
                    .split_once('=')
                    .ok_or_else(|| UsageError(format!("{pair:?} is not VERSION=WEIGHT")))?;
                let weight: f64 = weight
                    .parse()
                    .map_err(|_| UsageError(format!("the weight in {pair:?} is not a number")))?;
                pairs.push((version, weight));
            }
            let split = TrafficSplit::with_strategy(&pairs, strategy)?;
            let updated = client.set_traffic(&id, &split, if_match.as_deref()).await?;
            out.prompt(
                "traffic updated for",
                &updated.value,
                updated.etag.as_deref(),
            );
        }
        PromptsCommand::ChatPolicy {
            id,
            system_message,
            allow_caller_settings,
            if_match,
        } => {
            if system_message.is_none() && allow_caller_settings.is_none() {
                return Err(UsageError(
                    "give --system-message, --allow-caller-settings or both".to_owned(),
                )
                .into());
            }
            let policy = ChatCompletionsDraft {
                system_message,
                allow_caller_settings,
            };
            let updated = client
                .set_chat_completions(&id, &policy, if_match.as_deref())
                .await?;
            out.prompt(
                "chat-completions policy set for",
                &updated.value,
                updated.etag.as_deref(),
            );
        }
        PromptsCommand::Archive { id, if_match } => {
            let archived = client.archive_prompt(&id, if_match.as_deref()).await?;
            out.prompt("archived", &archived.value, archived.etag.as_deref());
        }
        PromptsCommand::Render(args) => {
            let request = RenderRequest {
                version: args.version,
                label: args.label,
                variables: args.variables.variables()?,
            };
            let rendered = client.render(&args.id, &request).await?;
            out.rendered(&rendered);
        }
        PromptsCommand::Label(args) => {
            let if_match = args.if_match.as_deref();
            let (updated, verb) = if args.delete {
                (
                    client.delete_label(&args.id, &args.label, if_match).await?,
                    format!("label {} deleted from", args.label),
                )
            } else {
                // clap requires the version without --delete; this is its message otherwise.
                let Some(version) = &args.version else {
                    return Err(UsageError(
                        "give the version the label points at, or --delete".to_owned(),
                    )
                    .into());
                };
                (
                    client
                        .set_label(&args.id, &args.label, version, if_match)
                        .await?,
                    format!("label {} now points at {version} on", args.label),
                )
            };
            out.prompt(&verb, &updated.value, updated.etag.as_deref());
        }
        PromptsCommand::Optimize(args) => return optimize(args, out),
    }
    Ok(ExitCode::SUCCESS)
}

fn optimize(args: OptimizeArgs, out: &Output) -> anyhow::Result<ExitCode> {
    let base = match (&args.base, &args.base_file) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) => read_input(path)?,
        (None, None) => bail!("give --base or --base-file"),
    };
    let strategy = FitStrategy::parse(&args.strategy).ok_or_else(|| {
        UsageError(format!(
            "--strategy is {:?}; use drop-oldest or keep-recent",
            args.strategy
        ))
    })?;
    let tokenizer: TokenizerKind = args
        .tokenizer
        .parse()
        .map_err(|e: promptgate_core::tokenizer::UnknownTokenizer| UsageError(e.to_string()))?;
    let mut examples = Vec::new();
    for (n, line) in read_input(&args.examples)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not JSON", args.examples.display(), n + 1))?;
        let field = |key: &str| {
            value[key].as_str().map(str::to_owned).with_context(|| {
                format!(
                    "{} line {}: \"{key}\" must be a string",
                    args.examples.display(),
                    n + 1
                )
            })
        };
        examples.push(FewShotExample {
            input: field("input")?,
            output: field("output")?,
        });
    }
    let fitted = fewshot::fit(
        &TokenCounter::load(),
        tokenizer,
        &base,
        &examples,
        args.limit,
        strategy,
    )?;
    if out.json {
        out.print_json(&json!({
            "prompt": fitted.text,
            "tokens": fitted.tokens,
            "tokenizer": tokenizer.as_str(),
            "limit": args.limit,
            "kept": fitted.kept,
            "dropped": fitted.dropped,
            "droppedExamples": fitted.dropped.iter().map(|&i| json!({"index": i, "input": examples[i].input, "output": examples[i].output})).collect::<Vec<_>>(),
        }));
    } else {
        out.print_text(&fitted.text);
        out.note(&format!(
            "{} tokens ({}), limit {}; kept {} of {} examples; dropped {:?}",
            fitted.tokens,
            tokenizer.as_str(),
            args.limit,
            fitted.kept.len(),
            examples.len(),
            fitted.dropped
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `promptgate model-endpoints`.
pub async fn model_endpoints(client: &Client, out: &Output) -> anyhow::Result<ExitCode> {
    let endpoints = client.model_endpoints().await?;
    out.endpoint_table(&endpoints);
    Ok(ExitCode::SUCCESS)
}
