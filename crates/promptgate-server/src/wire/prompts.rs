//! Prompts, versions, traffic splits and their settings between the contract's JSON shapes and
//! the core's types: requests into drafts (moved, not copied), domain values into answers. The
//! audit log's snapshots of a version and a split are these answers too, so an entry shows a
//! thing exactly as `GET` does.

use promptgate_api as api;
use promptgate_core::change::{ChangeDraft, NewPromptDraft};
use promptgate_core::prompt::{
    ChatCompletionsDraft, ExampleDraft, GuardrailsDraft, SettingsDraft, TemplateMessage,
    TemplateMessageDraft,
};
use promptgate_core::traffic::{TrafficDraft, WeightDraft};
use promptgate_core::{
    ChatCompletionsPolicy, EndpointCatalogue, FewShotExample, Prompt, PromptVersion,
    SafetyGuardrails, TrafficSplit, VersionLabel, VersionSettings,
};

use uuid::Uuid;

use crate::clock::rfc3339;
use crate::templates::{Filled, VersionTemplate};
use crate::wire::tools::{
    response_format_draft, tool_choice_draft, tool_drafts, wire_tool_settings,
};

/// `POST …/prompts` as a draft of the new prompt.
pub fn new_prompt_draft(body: api::CreatePromptRequest) -> NewPromptDraft {
    NewPromptDraft {
        name: body.name,
        version: body.version,
        settings: SettingsDraft {
            template_messages: body.template_messages.map(template_messages_draft),
            // On create, `null` and absent both mean no schema.
            variables_schema: body
                .variables_schema
                .filter(|schema| !schema.is_null())
                .map(|schema| Some(schema.to_string())),
            tools: body.tools.map(tool_drafts),
            tool_choice: body
                .tool_choice
                .filter(|choice| !choice.is_null())
                .map(|choice| Some(tool_choice_draft(&choice))),
            response_format: body
                .response_format
                .map(|format| Some(response_format_draft(format))),
            fallback_endpoint_refs: body.fallback_endpoint_refs,
            ..settings_draft(
                body.model_endpoint_ref,
                body.system_prompt,
                body.temperature,
                body.safety_guardrails,
                body.few_shot_examples,
            )
        },
        traffic: body.traffic_distribution.map(traffic_draft),
        chat_completions: body.chat_completions.map(chat_completions_draft),
    }
}

/// `PUT …/prompts/{id}` as a draft of the change.
pub fn change_draft(body: api::UpdatePromptRequest) -> ChangeDraft {
    ChangeDraft {
        version: body.version,
        settings: SettingsDraft {
            template_messages: body.template_messages.map(template_messages_draft),
            variables_schema: body.variables_schema.map(|schema| {
                schema
                    .filter(|schema| !schema.is_null())
                    .map(|schema| schema.to_string())
            }),
            tools: body.tools.map(tool_drafts),
            tool_choice: body.tool_choice.map(|choice| {
                choice
                    .filter(|choice| !choice.is_null())
                    .map(|choice| tool_choice_draft(&choice))
            }),
            response_format: body
                .response_format
                .map(|format| format.map(response_format_draft)),
            fallback_endpoint_refs: body.fallback_endpoint_refs,
            ..settings_draft(
                body.model_endpoint_ref,
                body.system_prompt,
                body.temperature,
                body.safety_guardrails,
                body.few_shot_examples,
            )
        },
        traffic: body.traffic_distribution.map(traffic_draft),
        chat_completions: body.chat_completions.map(chat_completions_draft),
    }
}

/// `templateMessages` as sent.
pub fn template_messages_draft(list: Vec<api::TemplateMessage>) -> Vec<TemplateMessageDraft> {
    list.into_iter()
        .map(|m| TemplateMessageDraft {
            role: m.role,
            content: m.content,
        })
        .collect()
}

/// A version's settings as sent, in the shape both requests share.
pub fn settings_draft(
    model_endpoint_ref: Option<String>,
    system_prompt: Option<String>,
    temperature: Option<f64>,
    guardrails: Option<api::SafetyGuardrails>,
    examples: Option<Vec<api::FewShotExample>>,
) -> SettingsDraft {
    SettingsDraft {
        model_endpoint_ref,
        system_prompt,
        temperature,
        safety_guardrails: guardrails.map(|g| GuardrailsDraft {
            content_filtering: g.content_filtering,
            max_tokens: g.max_tokens,
            blocked_categories: g.blocked_categories,
        }),
        few_shot_examples: examples.map(|list| {
            list.into_iter()
                .map(|e| ExampleDraft {
                    input: e.input,
                    output: e.output,
                })
                .collect()
        }),
        ..SettingsDraft::default()
    }
}

/// `trafficDistribution` as sent.
pub fn traffic_draft(wire: api::TrafficDistribution) -> TrafficDraft {
    TrafficDraft {
        default_version: wire.default_version,
        split_strategy: wire.split_strategy,
        versions: wire.versions.map(|list| {
            list.into_iter()
                .map(|w| WeightDraft {
                    version: w.version,
                    weight: w.weight,
                })
                .collect()
        }),
    }
}

/// `chatCompletions` as sent.
pub fn chat_completions_draft(wire: api::ChatCompletionsDraft) -> ChatCompletionsDraft {
    ChatCompletionsDraft {
        system_message: wire.system_message,
        allow_caller_settings: wire.allow_caller_settings,
    }
}

/// The traffic split as the contract shows it (also the audit log's `before`/`after`).
pub fn wire_traffic(split: &TrafficSplit) -> api::TrafficDistribution {
    api::TrafficDistribution {
        default_version: Some(split.default_version().to_string()),
        split_strategy: Some(split.strategy().as_str().to_owned()),
        versions: Some(
            split
                .weights()
                .iter()
                .map(|w| api::VersionWeight {
                    version: Some(w.version.to_string()),
                    weight: Some(w.weight),
                })
                .collect(),
        ),
    }
}

/// A version's guardrails as the contract shows them.
pub fn wire_guardrails(g: &SafetyGuardrails) -> api::SafetyGuardrails {
    api::SafetyGuardrails {
        content_filtering: Some(
            g.content_filtering
                .iter()
                .map(|f| f.as_str().to_owned())
                .collect(),
        ),
        max_tokens: g.max_tokens.map(i64::from),
        blocked_categories: Some(
            g.blocked_categories
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
        ),
    }
}

/// A version's few-shot examples as the contract shows them.
pub fn wire_examples(examples: &[FewShotExample]) -> Vec<api::FewShotExample> {
    examples
        .iter()
        .map(|e| api::FewShotExample {
            input: Some(e.input.clone()),
            output: Some(e.output.clone()),
        })
        .collect()
}

/// A prompt as the contract shows it: its identity and routing with the settings of `shown`
/// (the default version, or the one a change named), and every label (`labels`, oldest first).
/// `tokenizerExact` says whether `shown` was counted with its endpoint's own tokenizer.
pub fn wire_prompt(
    catalogue: &EndpointCatalogue,
    prompt: &Prompt,
    labels: &[VersionLabel],
    shown: &PromptVersion,
) -> api::Prompt {
    let exact = catalogue
        .get(&shown.settings.model_endpoint_ref)
        .is_some_and(|e| e.tokenizer == shown.tokenizer && e.tokenizer_exact);
    let (tools, tool_choice, response_format) = wire_tool_settings(&shown.settings.tool_settings);
    api::Prompt {
        id: prompt.id.to_string(),
        name: prompt.name.clone(),
        status: prompt.status.as_str().to_owned(),
        version: shown.version.to_string(),
        model_endpoint_ref: shown.settings.model_endpoint_ref.clone(),
        system_prompt: shown.settings.system_prompt.clone(),
        temperature: shown.settings.temperature,
        safety_guardrails: wire_guardrails(&shown.settings.safety_guardrails),
        few_shot_examples: wire_examples(&shown.settings.few_shot_examples),
        template_messages: wire_template_messages(&shown.settings.template_messages),
        variables_schema: wire_schema(shown.settings.variables_schema.as_deref()),
        variables: wire_variables(&shown.settings),
        tools,
        tool_choice,
        response_format,
        system_prompt_tokens: shown.system_prompt_tokens,
        tokenizer: shown.tokenizer.as_str().to_owned(),
        tokenizer_exact: exact,
        traffic_distribution: wire_traffic(&prompt.traffic),
        chat_completions: wire_chat_completions(prompt.chat_completions),
        versions: labels.iter().map(ToString::to_string).collect(),
        labels: prompt
            .labels
            .iter()
            .map(|(label, version)| (label.to_string(), version.to_string()))
            .collect(),
        created_at: rfc3339(prompt.created_at),
        updated_at: rfc3339(prompt.updated_at),
        fallback_endpoint_refs: shown.settings.fallback_endpoint_refs.clone(),
    }
}

/// The OpenAI-compatible front door's policy as the contract shows it (also the audit log's
/// `before`/`after`).
pub fn wire_chat_completions(policy: ChatCompletionsPolicy) -> api::ChatCompletionsSettings {
    api::ChatCompletionsSettings {
        system_message: policy.system_message.as_str().to_owned(),
        allow_caller_settings: policy.allow_caller_settings,
    }
}

/// A version as the contract shows it (also the audit log's snapshot of a version).
pub fn wire_version(v: &PromptVersion) -> api::PromptVersion {
    let (tools, tool_choice, response_format) = wire_tool_settings(&v.settings.tool_settings);
    api::PromptVersion {
        prompt_id: v.prompt_id.to_string(),
        version: v.version.to_string(),
        model_endpoint_ref: v.settings.model_endpoint_ref.clone(),
        system_prompt: v.settings.system_prompt.clone(),
        temperature: v.settings.temperature,
        safety_guardrails: wire_guardrails(&v.settings.safety_guardrails),
        few_shot_examples: wire_examples(&v.settings.few_shot_examples),
        template_messages: wire_template_messages(&v.settings.template_messages),
        variables_schema: wire_schema(v.settings.variables_schema.as_deref()),
        variables: wire_variables(&v.settings),
        tools,
        tool_choice,
        response_format,
        system_prompt_tokens: v.system_prompt_tokens,
        tokenizer: v.tokenizer.as_str().to_owned(),
        created_at: rfc3339(v.created_at),
        created_by: v.created_by.clone(),
        fallback_endpoint_refs: v.settings.fallback_endpoint_refs.clone(),
    }
}

/// A version's template messages as the contract shows them.
pub fn wire_template_messages(messages: &[TemplateMessage]) -> Vec<api::TemplateMessage> {
    messages
        .iter()
        .map(|m| api::TemplateMessage {
            role: Some(m.role.as_str().to_owned()),
            content: Some(m.content.clone()),
        })
        .collect()
}

/// A stored schema as JSON (stored as compact JSON text, so it always parses; a text that
/// would not is shown as a string rather than lost).
fn wire_schema(schema: Option<&str>) -> Option<serde_json::Value> {
    schema.map(|text| {
        serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
    })
}

/// The variables a version's templates use, with whether each is required (none for a plain
/// version, so its answer is unchanged).
fn wire_variables(settings: &VersionSettings) -> Vec<api::VariableInfo> {
    let template = VersionTemplate::build(settings);
    if template.is_constant() {
        return Vec::new();
    }
    template
        .describe()
        .into_iter()
        .map(|v| api::VariableInfo {
            name: v.name,
            required: v.required,
        })
        .collect()
}

/// A render preview as the contract shows it: `version`'s texts as `filled`, with the rendered
/// system prompt's tokens and each template message's.
pub fn wire_rendered(
    prompt_id: Uuid,
    version: &PromptVersion,
    filled: Filled,
    system_prompt_tokens: u32,
    message_tokens: Vec<u32>,
) -> api::RenderResponse {
    api::RenderResponse {
        prompt_id: prompt_id.to_string(),
        version: version.version.to_string(),
        system_prompt: filled.system_prompt,
        system_prompt_tokens,
        template_messages: filled
            .messages
            .into_iter()
            .zip(message_tokens)
            .map(|(m, tokens)| api::RenderedMessage {
                role: m.role.as_str().to_owned(),
                content: m.content,
                tokens,
            })
            .collect(),
        few_shot_examples: wire_examples(&filled.examples),
        tokenizer: version.tokenizer.as_str().to_owned(),
        max_tokens: version.settings.safety_guardrails.max_tokens,
        variables: filled.values,
    }
}
