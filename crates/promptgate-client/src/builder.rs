//! Values built locally and checked before any request: a prompt draft whose token budget is
//! counted with the same tokenizer the server uses, a new version's draft, and a traffic split
//! whose weights must sum to one.

use promptgate_api::{self as api, CreatePromptRequest, UpdatePromptRequest};
use promptgate_core::{SplitStrategy, VersionLabel};
#[cfg(feature = "tokens")]
use promptgate_core::{TokenCounter, TokenizerKind, template::Template};

use crate::error::Error;
use crate::tools::{OutputFormat, ToolChoice, function_tool};

/// A new prompt, built step by step.
///
/// ```
/// use promptgate_client::PromptDraft;
/// let draft = PromptDraft::new("support_agent", "openai/gpt-4o-mini")
///     .system_prompt("You are a helpful customer support agent.")
///     .temperature(0.2)
///     .content_filtering(&["pii", "profanity"])
///     .max_tokens(1500)
///     .version("1.0.0");
/// # #[cfg(feature = "tokens")]
/// assert!(draft.check_budget(promptgate_core::TokenizerKind::O200kBase).is_ok());
/// ```
///
/// A template: placeholders in the system prompt and the template messages, declared by a
/// variables schema (without one, every placeholder is a required string).
///
/// ```
/// use promptgate_client::PromptDraft;
/// use serde_json::json;
/// let draft = PromptDraft::new("support_agent", "openai/gpt-4o-mini")
///     .system_prompt("You are the support agent of {{company}}.")
///     .template_messages(&[("user", "My name is {{customer_name}}.")])
///     .variables_schema(json!({
///         "type": "object",
///         "properties": {
///             "company": {"type": "string", "default": "Acme"},
///             "customer_name": {"type": "string", "maxLength": 200}
///         },
///         "required": ["customer_name"]
///     }));
/// # let _ = draft;
/// ```
///
/// Tools and structured output (shared/API.md, "Tools and structured output"): a function the
/// model may call, and the JSON Schema every output must match.
///
/// ```
/// use promptgate_client::{OutputFormat, PromptDraft, ToolChoice};
/// use serde_json::json;
/// let draft = PromptDraft::new("order_desk", "openai/gpt-4o-mini")
///     .system_prompt("You answer questions about orders.")
///     .function_tool("get_order", "Looks an order up by its id.", json!({
///         "type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}))
///     .tool_choice(&ToolChoice::Auto)
///     .response_format(&OutputFormat::json_schema("answer", json!({
///         "type": "object", "properties": {"status": {"type": "string"}}}), true));
/// let body = serde_json::to_value(draft.request()).unwrap();
/// assert_eq!(body["tools"][0]["function"]["name"], "get_order");
/// assert_eq!(body["toolChoice"], "auto");
/// assert_eq!(body["responseFormat"]["type"], "json_schema");
/// ```
#[derive(Debug, Clone, Default)]
pub struct PromptDraft {
    request: CreatePromptRequest,
}

impl PromptDraft {
    /// A draft with a name and a model endpoint `ref`; version 1.0.0 unless set.
    pub fn new(name: &str, model_endpoint_ref: &str) -> Self {
        PromptDraft {
            request: CreatePromptRequest {
                name: Some(name.to_owned()),
                model_endpoint_ref: Some(model_endpoint_ref.to_owned()),
                version: Some("1.0.0".to_owned()),
                ..CreatePromptRequest::default()
            },
        }
    }

    /// A draft from the contract's request body (for example read from a JSON file).
    pub fn from_request(request: CreatePromptRequest) -> Self {
        PromptDraft { request }
    }

    /// The system prompt.
    pub fn system_prompt(mut self, text: impl Into<String>) -> Self {
        self.request.system_prompt = Some(text.into());
        self
    }

    /// The temperature, in [0, 2].
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.request.temperature = Some(temperature);
        self
    }

    /// The endpoints tried in order when the model endpoint fails (known endpoints, at most 5,
    /// no repeats, not the model endpoint itself; docs/fallbacks.md).
    pub fn fallback_endpoints(mut self, refs: &[&str]) -> Self {
        self.request.fallback_endpoint_refs = Some(refs.iter().map(|r| (*r).to_owned()).collect());
        self
    }

    /// The first version's label.
    pub fn version(mut self, version: &str) -> Self {
        self.request.version = Some(version.to_owned());
        self
    }

    /// Content filters: `pii`, `profanity`.
    pub fn content_filtering(mut self, filters: &[&str]) -> Self {
        self.guardrails().content_filtering =
            Some(filters.iter().map(|f| (*f).to_owned()).collect());
        self
    }

    /// Blocked categories: `violence`, `hate_speech`, `self_harm`, `sexual`, `illegal`.
    pub fn blocked_categories(mut self, categories: &[&str]) -> Self {
        self.guardrails().blocked_categories =
            Some(categories.iter().map(|c| (*c).to_owned()).collect());
        self
    }

    /// The system prompt's token budget.
    pub fn max_tokens(mut self, limit: u32) -> Self {
        self.guardrails().max_tokens = Some(i64::from(limit));
        self
    }

    /// Few-shot examples, oldest first.
    pub fn few_shot_examples(mut self, examples: &[(&str, &str)]) -> Self {
        self.request.few_shot_examples = Some(few_shot_examples(examples));
        self
    }

    /// The chat template's fixed turns, `(role, content)` with role `user` or `assistant`:
    /// sent after the system prompt and its examples, before the caller's conversation. Their
    /// content may hold `{{placeholders}}`.
    pub fn template_messages(mut self, messages: &[(&str, &str)]) -> Self {
        self.request.template_messages = Some(template_messages(messages));
        self
    }

    /// The variables' JSON Schema (draft 2020-12) of an object whose properties are the
    /// variables, with their types, `required` and `default`s. Without one, every placeholder
    /// is a required string.
    pub fn variables_schema(mut self, schema: serde_json::Value) -> Self {
        self.request.variables_schema = Some(schema);
        self
    }

    /// The function tools the model may call (at most 128, unique names), replacing any set
    /// before.
    pub fn tools(mut self, tools: &[api::Tool]) -> Self {
        self.request.tools = Some(tools.to_vec());
        self
    }

    /// Adds one function tool: its name (`[A-Za-z0-9_-]{1,64}`), what it does (for the model)
    /// and its arguments' JSON Schema.
    pub fn function_tool(
        mut self,
        name: &str,
        description: &str,
        parameters: serde_json::Value,
    ) -> Self {
        self.request
            .tools
            .get_or_insert_with(Vec::new)
            .push(function_tool(name, description, parameters));
        self
    }

    /// Whether and which tool the model must call.
    pub fn tool_choice(mut self, choice: &ToolChoice) -> Self {
        self.request.tool_choice = Some(choice.to_wire());
        self
    }

    /// The form of the output; with a JSON form the gateway checks every output against it.
    pub fn response_format(mut self, format: &OutputFormat) -> Self {
        self.request.response_format = Some(format.to_wire());
        self
    }

    /// The initial traffic split.
    pub fn traffic(mut self, split: &TrafficSplit) -> Self {
        self.request.traffic_distribution = Some(split.to_wire());
        self
    }

    fn guardrails(&mut self) -> &mut api::SafetyGuardrails {
        self.request
            .safety_guardrails
            .get_or_insert_with(api::SafetyGuardrails::default)
    }

    /// The model endpoint's `ref`.
    pub fn model_endpoint_ref(&self) -> Option<&str> {
        self.request.model_endpoint_ref.as_deref()
    }

    /// The request body this draft sends.
    pub fn request(&self) -> &CreatePromptRequest {
        &self.request
    }

    /// Counts the system prompt with `tokenizer` and fails with
    /// [`Error::TokenBudgetExceeded`] when it is over `maxTokens`. Returns the count.
    ///
    /// Like the server, it counts the template with its placeholders removed (the values are
    /// not known yet), and a malformed `{{` is an [`Error::Invalid`] on `systemPrompt`.
    ///
    /// Needs the `tokens` feature (on by default): counting uses tiktoken's tables. Without it
    /// the server still checks the budget when the prompt is created.
    #[cfg(feature = "tokens")]
    pub fn check_budget(&self, tokenizer: TokenizerKind) -> Result<usize, Error> {
        let template = Template::parse(self.request.system_prompt.as_deref().unwrap_or(""))
            .map_err(|e| Error::Invalid {
                field: "systemPrompt".to_owned(),
                message: e.to_string(),
            })?;
        let tokens = TokenCounter::load().count(tokenizer, &template.literal());
        let limit = self
            .request
            .safety_guardrails
            .as_ref()
            .and_then(|g| g.max_tokens)
            .and_then(|n| usize::try_from(n).ok());
        match limit {
            Some(limit) if tokens > limit => Err(Error::TokenBudgetExceeded {
                estimated: tokens,
                limit,
                tokenizer: tokenizer.as_str().to_owned(),
            }),
            _ => Ok(tokens),
        }
    }
}

/// A new version of an existing prompt, for [`crate::Client::add_version`]: the fields left
/// unset are taken from the newest version by the gateway.
///
/// ```
/// use promptgate_client::VersionDraft;
/// let draft = VersionDraft::new("1.1.0")
///     .system_prompt("You are the concise support agent of {{company}}.")
///     .remove_variables_schema();
/// let body = serde_json::to_value(draft.request()).unwrap();
/// assert_eq!(body["variablesSchema"], serde_json::Value::Null);
/// assert!(body.as_object().unwrap().contains_key("variablesSchema"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct VersionDraft {
    request: UpdatePromptRequest,
}

impl VersionDraft {
    /// A draft of the version `version` (a new semantic version such as `1.1.0`).
    pub fn new(version: &str) -> Self {
        VersionDraft {
            request: UpdatePromptRequest {
                version: Some(version.to_owned()),
                ..UpdatePromptRequest::default()
            },
        }
    }

    /// A draft from the contract's PUT body (for example read from a JSON file).
    pub fn from_request(request: UpdatePromptRequest) -> Self {
        VersionDraft { request }
    }

    /// The new system prompt (a template).
    pub fn system_prompt(mut self, text: impl Into<String>) -> Self {
        self.request.system_prompt = Some(text.into());
        self
    }

    /// The new temperature, in [0, 2].
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.request.temperature = Some(temperature);
        self
    }

    /// New fallback endpoints, replacing the newest version's; an empty list removes them.
    pub fn fallback_endpoints(mut self, refs: &[&str]) -> Self {
        self.request.fallback_endpoint_refs = Some(refs.iter().map(|r| (*r).to_owned()).collect());
        self
    }

    /// The new model endpoint `ref`.
    pub fn model_endpoint_ref(mut self, reference: &str) -> Self {
        self.request.model_endpoint_ref = Some(reference.to_owned());
        self
    }

    /// New few-shot examples, oldest first.
    pub fn few_shot_examples(mut self, examples: &[(&str, &str)]) -> Self {
        self.request.few_shot_examples = Some(few_shot_examples(examples));
        self
    }

    /// New template messages, `(role, content)`; an empty list removes them.
    pub fn template_messages(mut self, messages: &[(&str, &str)]) -> Self {
        self.request.template_messages = Some(template_messages(messages));
        self
    }

    /// A new variables schema (JSON Schema draft 2020-12 of an object).
    pub fn variables_schema(mut self, schema: serde_json::Value) -> Self {
        self.request.variables_schema = Some(Some(schema));
        self
    }

    /// The new version has no variables schema (it sends `"variablesSchema": null`): every
    /// placeholder is then a required string. Without this or
    /// [`Self::variables_schema`] the newest version's schema is kept.
    pub fn remove_variables_schema(mut self) -> Self {
        self.request.variables_schema = Some(None);
        self
    }

    /// New tools, replacing the newest version's; an empty list removes them (as
    /// [`Self::remove_tools`]).
    pub fn tools(mut self, tools: &[api::Tool]) -> Self {
        self.request.tools = Some(tools.to_vec());
        self
    }

    /// Adds one function tool to the tools this draft sends. The first call starts a new list:
    /// the newest version's tools are not kept (a version's tools are sent whole).
    pub fn function_tool(
        mut self,
        name: &str,
        description: &str,
        parameters: serde_json::Value,
    ) -> Self {
        self.request
            .tools
            .get_or_insert_with(Vec::new)
            .push(function_tool(name, description, parameters));
        self
    }

    /// The new version has no tools (it sends `"tools": []`). A tool choice naming a function
    /// would then name none: remove it too, or the gateway refuses `toolChoice`.
    pub fn remove_tools(mut self) -> Self {
        self.request.tools = Some(Vec::new());
        self
    }

    /// A new tool choice.
    pub fn tool_choice(mut self, choice: &ToolChoice) -> Self {
        self.request.tool_choice = Some(Some(choice.to_wire()));
        self
    }

    /// The new version has no tool choice (it sends `"toolChoice": null`; the model then
    /// decides). Without this or [`Self::tool_choice`] the newest version's is kept.
    pub fn remove_tool_choice(mut self) -> Self {
        self.request.tool_choice = Some(None);
        self
    }

    /// A new response format.
    pub fn response_format(mut self, format: &OutputFormat) -> Self {
        self.request.response_format = Some(Some(format.to_wire()));
        self
    }

    /// The new version has no response format (it sends `"responseFormat": null`): its
    /// outputs are no longer checked. Without this or [`Self::response_format`] the newest
    /// version's is kept.
    pub fn remove_response_format(mut self) -> Self {
        self.request.response_format = Some(None);
        self
    }

    /// The request body this draft sends.
    pub fn request(&self) -> &UpdatePromptRequest {
        &self.request
    }
}

fn few_shot_examples(examples: &[(&str, &str)]) -> Vec<api::FewShotExample> {
    examples
        .iter()
        .map(|(input, output)| api::FewShotExample {
            input: Some((*input).to_owned()),
            output: Some((*output).to_owned()),
        })
        .collect()
}

fn template_messages(messages: &[(&str, &str)]) -> Vec<api::TemplateMessage> {
    messages
        .iter()
        .map(|(role, content)| api::TemplateMessage {
            role: Some((*role).to_owned()),
            content: Some((*content).to_owned()),
        })
        .collect()
}

/// A traffic split that cannot hold weights outside [0, 1] or weights that do not sum to 1
/// (within 0.01; they are then normalised), checked by the same code as the server.
///
/// ```
/// use promptgate_client::TrafficSplit;
/// let split = TrafficSplit::new(&[("1.0.0", 0.9), ("1.1.0", 0.1)]).unwrap();
/// assert!(TrafficSplit::new(&[("1.0.0", 0.9), ("1.1.0", 0.2)]).is_err());
/// # let _ = split;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficSplit {
    inner: promptgate_core::TrafficSplit,
}

impl TrafficSplit {
    /// A sticky split over `weights` (version, share), the first version as default.
    pub fn new(weights: &[(&str, f64)]) -> Result<Self, Error> {
        Self::with_strategy(weights, SplitStrategy::Sticky)
    }

    /// A split with an explicit strategy (`sticky` keeps a session on its version).
    pub fn with_strategy(weights: &[(&str, f64)], strategy: SplitStrategy) -> Result<Self, Error> {
        let mut labels = Vec::with_capacity(weights.len());
        for (i, (version, weight)) in weights.iter().enumerate() {
            let label: VersionLabel = version.parse().map_err(|e| Error::Invalid {
                field: format!("trafficDistribution.versions[{i}].version"),
                message: format!("{e}"),
            })?;
            labels.push((label, *weight));
        }
        let Some(first) = labels.first().map(|(l, _)| l.clone()) else {
            return Err(Error::Invalid {
                field: "trafficDistribution.versions".to_owned(),
                message: "name at least one version".to_owned(),
            });
        };
        let inner = promptgate_core::TrafficSplit::new(first, strategy, labels).map_err(|v| {
            Error::Invalid {
                field: v.first().map(|v| v.field.clone()).unwrap_or_default(),
                message: v.iter().map(|v| v.message()).collect::<Vec<_>>().join("; "),
            }
        })?;
        Ok(TrafficSplit { inner })
    }

    /// All traffic to one version.
    pub fn single(version: &str) -> Result<Self, Error> {
        Self::new(&[(version, 1.0)])
    }

    /// The normalised weights, in order.
    pub fn weights(&self) -> Vec<(String, f64)> {
        self.inner
            .weights()
            .iter()
            .map(|w| (w.version.to_string(), w.weight))
            .collect()
    }

    /// The wire form sent in `trafficDistribution`.
    pub fn to_wire(&self) -> api::TrafficDistribution {
        api::TrafficDistribution {
            default_version: Some(self.inner.default_version().to_string()),
            split_strategy: Some(self.inner.strategy().as_str().to_owned()),
            versions: Some(
                self.inner
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rejects_bad_weights_and_normalises_good_ones() {
        assert!(matches!(
            TrafficSplit::new(&[("1.0.0", 0.5), ("1.1.0", 0.6)]),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(TrafficSplit::new(&[]), Err(Error::Invalid { .. })));
        assert!(matches!(
            TrafficSplit::new(&[("one", 1.0)]),
            Err(Error::Invalid { .. })
        ));
        let split = TrafficSplit::new(&[("1.0.0", 0.5), ("1.1.0", 0.505)]).unwrap();
        let total: f64 = split.weights().iter().map(|(_, w)| w).sum();
        assert!((total - 1.0).abs() < 1e-9);
        let wire = split.to_wire();
        assert_eq!(wire.split_strategy.as_deref(), Some("sticky"));
        assert_eq!(wire.default_version.as_deref(), Some("1.0.0"));
    }

    #[test]
    #[cfg(feature = "tokens")]
    fn budget_is_checked_locally() {
        let draft = PromptDraft::new("p", "openai/gpt-4o")
            .system_prompt("one two three four five six")
            .max_tokens(3);
        match draft.check_budget(TokenizerKind::O200kBase) {
            Err(Error::TokenBudgetExceeded {
                estimated,
                limit,
                tokenizer,
            }) => {
                assert_eq!((estimated, limit, tokenizer.as_str()), (6, 3, "o200k_base"));
            }
            other => panic!("expected a budget error, got {other:?}"),
        }
    }

    #[test]
    #[cfg(feature = "tokens")]
    fn budget_counts_the_template_without_its_placeholders() {
        // As the server does: a value is not known when the version is created.
        let literal = TokenCounter::load().count(TokenizerKind::O200kBase, "one two  three");
        let limit = u32::try_from(literal).unwrap();
        let draft = PromptDraft::new("p", "openai/gpt-4o")
            .system_prompt("one two {{ customer.name }} three{{x}}")
            .max_tokens(limit);
        assert_eq!(
            draft.check_budget(TokenizerKind::O200kBase).unwrap(),
            literal
        );
        // An escaped `{{` is text, and it counts.
        let escaped = draft.clone().system_prompt(r"one two \{{x}} three");
        assert!(matches!(
            escaped.check_budget(TokenizerKind::O200kBase),
            Err(Error::TokenBudgetExceeded { .. })
        ));
        // A malformed placeholder is refused locally, naming the field as the server does.
        let broken = draft.system_prompt("Hello {{ customer name }}");
        match broken.check_budget(TokenizerKind::O200kBase) {
            Err(Error::Invalid { field, message }) => {
                assert_eq!(field, "systemPrompt");
                assert!(message.contains("not a variable name"), "{message}");
            }
            other => panic!("expected an invalid template, got {other:?}"),
        }
    }

    #[test]
    fn version_drafts_send_tool_settings_and_can_remove_each() {
        let params = serde_json::json!({"type": "object"});
        let set = VersionDraft::new("1.1.0")
            .function_tool("a", "A.", params.clone())
            .function_tool("b", "", params.clone())
            .tool_choice(&ToolChoice::Function("b".into()))
            .response_format(&OutputFormat::JsonObject);
        assert_eq!(
            serde_json::to_value(set.request()).unwrap(),
            serde_json::json!({
                "version": "1.1.0",
                "tools": [
                    {"type": "function", "function": {"name": "a", "description": "A.", "parameters": params}},
                    {"type": "function", "function": {"name": "b", "parameters": params}}
                ],
                "toolChoice": {"type": "function", "function": {"name": "b"}},
                "responseFormat": {"type": "json_object"}
            })
        );
        // A removal is sent explicitly; leaving a field out keeps the newest version's.
        let removed = set
            .remove_tools()
            .remove_tool_choice()
            .remove_response_format();
        assert_eq!(
            serde_json::to_value(removed.request()).unwrap(),
            serde_json::json!({"version": "1.1.0", "tools": [], "toolChoice": null, "responseFormat": null})
        );
    }

    #[test]
    fn drafts_send_templates_and_can_remove_a_schema() {
        let schema =
            serde_json::json!({"type": "object", "properties": {"tier": {"type": "string"}}});
        let draft = PromptDraft::new("p", "openai/gpt-4o")
            .system_prompt("Tier {{tier}}.")
            .template_messages(&[("user", "Hi, I am {{tier}}."), ("assistant", "Hello.")])
            .variables_schema(schema.clone());
        let body = serde_json::to_value(draft.request()).unwrap();
        assert_eq!(
            body["templateMessages"],
            serde_json::json!([
                {"role": "user", "content": "Hi, I am {{tier}}."},
                {"role": "assistant", "content": "Hello."}
            ])
        );
        assert_eq!(body["variablesSchema"], schema);

        let keep = serde_json::to_value(VersionDraft::new("1.1.0").request()).unwrap();
        assert_eq!(
            keep,
            serde_json::json!({"version": "1.1.0"}),
            "nothing else is sent"
        );
        let set = VersionDraft::new("1.1.0")
            .variables_schema(schema.clone())
            .template_messages(&[]);
        let set = serde_json::to_value(set.request()).unwrap();
        assert_eq!(
            set,
            serde_json::json!({"version": "1.1.0", "variablesSchema": schema, "templateMessages": []})
        );
        let removed = VersionDraft::new("1.1.0")
            .variables_schema(schema)
            .remove_variables_schema();
        assert_eq!(
            serde_json::to_value(removed.request()).unwrap(),
            serde_json::json!({"version": "1.1.0", "variablesSchema": null})
        );
    }

    #[test]
    fn drafts_send_fallback_endpoints_and_an_empty_list_removes_them() {
        let create = PromptDraft::new("p", "openai/gpt-4o")
            .system_prompt("Hi.")
            .fallback_endpoints(&["openai/gpt-4o-mini", "local/llama"]);
        let body = serde_json::to_value(create.request()).unwrap();
        assert_eq!(
            body["fallbackEndpointRefs"],
            serde_json::json!(["openai/gpt-4o-mini", "local/llama"])
        );
        let removed = VersionDraft::new("1.1.0").fallback_endpoints(&[]);
        let body = serde_json::to_value(removed.request()).unwrap();
        assert_eq!(body["fallbackEndpointRefs"], serde_json::json!([]));
        let left_out = serde_json::to_value(VersionDraft::new("1.1.0").request()).unwrap();
        assert!(left_out.get("fallbackEndpointRefs").is_none());
    }
}
