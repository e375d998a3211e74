//! What the CLI prints: human-readable tables by default, JSON with `--json` (one document on
//! standard output, nothing else there, so scripts can parse it). Notes go to standard error.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use promptgate_client::api::{ModelEndpoint, Prompt, PromptVersion, RenderResponse};
use serde::Serialize;

use crate::tool_flags;

/// The chosen output form.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Print JSON instead of text.
    pub json: bool,
}

impl Output {
    /// Prints any value as JSON.
    pub fn print_json<T: Serialize>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("promptgate: cannot encode the answer as JSON: {e}"),
        }
    }

    /// Prints text as is.
    pub fn print_text(&self, text: &str) {
        println!("{text}");
    }

    /// A remark for people, on standard error.
    pub fn note(&self, text: &str) {
        eprintln!("{text}");
    }

    /// One prompt; `verb` says what happened ("created", …) or is empty for a plain read.
    pub fn prompt(&self, verb: &str, prompt: &Prompt, etag: Option<&str>) {
        if self.json {
            self.print_json(prompt);
            return;
        }
        if !verb.is_empty() {
            println!("{verb} prompt {:?}", prompt.name);
        }
        let traffic = &prompt.traffic_distribution;
        let split = traffic
            .versions
            .as_deref()
            .filter(|v| !v.is_empty())
            .map(|versions| {
                versions
                    .iter()
                    .map(|w| {
                        format!(
                            "{}={:.3}",
                            w.version.as_deref().unwrap_or("?"),
                            w.weight.unwrap_or(0.0)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|| {
                format!(
                    "all to {}",
                    traffic.default_version.as_deref().unwrap_or("?")
                )
            });
        let exact = if prompt.tokenizer_exact {
            ""
        } else {
            ", an estimate"
        };
        println!("id:            {}", prompt.id);
        println!("name:          {}", prompt.name);
        println!("status:        {}", prompt.status);
        println!(
            "version:       {} (of {})",
            prompt.version,
            prompt.versions.join(", ")
        );
        println!("model:         {}", prompt.model_endpoint_ref);
        println!("temperature:   {}", prompt.temperature);
        println!(
            "tokens:        {} ({}{exact})",
            prompt.system_prompt_tokens, prompt.tokenizer
        );
        println!(
            "traffic:       {split} ({})",
            traffic.split_strategy.as_deref().unwrap_or("sticky")
        );
        println!(
            "/v1 policy:    {} the caller's system message; caller settings {}",
            prompt.chat_completions.system_message,
            if prompt.chat_completions.allow_caller_settings {
                "allowed"
            } else {
                "ignored"
            }
        );
        let labels = if prompt.labels.is_empty() {
            "none".to_owned()
        } else {
            prompt
                .labels
                .iter()
                .map(|(label, version)| format!("{label}={version}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!("labels:        {labels}");
        if !prompt.variables.is_empty() {
            // A required variable is marked with `*`, as forms do.
            let names: Vec<String> = prompt
                .variables
                .iter()
                .map(|v| format!("{}{}", v.name, if v.required { "*" } else { "" }))
                .collect();
            println!("variables:     {} (* required)", names.join(" "));
        }
        for (label, text) in tool_flags::describe(
            &prompt.tools,
            prompt.tool_choice.as_ref(),
            prompt.response_format.as_ref(),
        ) {
            println!("{:<14} {text}", format!("{label}:"));
        }
        if let Some(tag) = etag {
            println!("etag:          {tag}");
        }
        println!("system prompt: {}", prompt.system_prompt);
        for message in &prompt.template_messages {
            println!(
                "{:<14} {}",
                format!("{}:", message.role.as_deref().unwrap_or("?")),
                message.content.as_deref().unwrap_or_default()
            );
        }
    }

    /// A render preview: each rendered text under a heading with its token count.
    pub fn rendered(&self, rendered: &RenderResponse) {
        if self.json {
            self.print_json(rendered);
            return;
        }
        let budget = rendered
            .max_tokens
            .map(|limit| format!(", budget {limit}"))
            .unwrap_or_default();
        println!(
            "prompt {} version {} ({})",
            rendered.prompt_id, rendered.version, rendered.tokenizer
        );
        println!();
        println!(
            "--- system prompt ({} tokens{budget})",
            rendered.system_prompt_tokens
        );
        println!("{}", rendered.system_prompt);
        for example in &rendered.few_shot_examples {
            println!("--- example");
            println!("User: {}", example.input.as_deref().unwrap_or_default());
            println!(
                "Assistant: {}",
                example.output.as_deref().unwrap_or_default()
            );
        }
        for message in &rendered.template_messages {
            println!("--- {} ({} tokens)", message.role, message.tokens);
            println!("{}", message.content);
        }
        if !rendered.variables.is_empty() {
            // As used: defaults applied, PII redacted.
            println!("--- variables");
            println!("{}", serde_json::Value::Object(rendered.variables.clone()));
        }
    }

    /// A list of prompts.
    pub fn prompt_table(&self, prompts: &[Prompt]) {
        if self.json {
            self.print_json(&prompts);
            return;
        }
        println!(
            "{:<38} {:<9} {:<10} {:<28} NAME",
            "ID", "STATUS", "VERSION", "MODEL"
        );
        for p in prompts {
            println!(
                "{:<38} {:<9} {:<10} {:<28} {}",
                p.id, p.status, p.version, p.model_endpoint_ref, p.name
            );
        }
    }

    /// A list of versions.
    pub fn version_table(&self, versions: &[PromptVersion]) {
        if self.json {
            self.print_json(&versions);
            return;
        }
        println!(
            "{:<16} {:<28} {:>7} {:>5} {:<11} {:<25} CREATED BY",
            "VERSION", "MODEL", "TOKENS", "TOOLS", "OUTPUT", "CREATED"
        );
        for v in versions {
            // The output format's kind; `-` when the version has none (free text).
            let output = v
                .response_format
                .as_ref()
                .and_then(|f| f.kind.as_deref())
                .unwrap_or("-");
            println!(
                "{:<16} {:<28} {:>7} {:>5} {:<11} {:<25} {}",
                v.version,
                v.model_endpoint_ref,
                v.system_prompt_tokens,
                v.tools.len(),
                output,
                v.created_at,
                v.created_by
            );
        }
    }

    /// The model endpoints.
    pub fn endpoint_table(&self, endpoints: &[ModelEndpoint]) {
        if self.json {
            self.print_json(&endpoints);
            return;
        }
        println!(
            "{:<30} {:<10} {:<7} {:>9} {:<12} KEY",
            "REF", "PROVIDER", "USABLE", "CONTEXT", "TOKENIZER"
        );
        for e in endpoints {
            let key = match (&e.api_key_env, e.offline) {
                (_, true) => "none (offline provider: answers are not a model's)".to_owned(),
                (Some(var), false) => var.clone(),
                (None, false) => "none".to_owned(),
            };
            let tokenizer = if e.tokenizer_exact {
                e.tokenizer.clone()
            } else {
                format!("{}~", e.tokenizer)
            };
            println!(
                "{:<30} {:<10} {:<7} {:>9} {:<12} {}",
                e.reference,
                e.provider,
                if e.usable { "yes" } else { "no" },
                e.context_window,
                tokenizer,
                key
            );
        }
    }
}
