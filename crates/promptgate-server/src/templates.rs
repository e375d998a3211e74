//! A version's templates, parsed and compiled once, when the version enters the prompt cache
//! (`cache.rs`), and filled per call: the caller's variables checked against the schema
//! (defaults applied), the blocked categories and PII redaction applied to their values, and
//! every text rendered. shared/API.md, "Templates and variables"; `docs/templates.md`.
//!
//! A version without placeholders, template messages or schema is *constant*: an invocation
//! that sends no variables skips all of this and uses the stored texts as they are, so a plain
//! prompt pays one branch.

use std::collections::BTreeMap;

use promptgate_core::guardrails::{categories, pii};
use promptgate_core::prompt::{ContentFilter, TemplateMessage, TemplateRole};
use promptgate_core::template::{Template, VariablePath};
use promptgate_core::{BlockedCategory, FewShotExample, VersionSettings, Violation};
use promptgate_variables::{ResolvedVariables, VariableInfo, VersionVariables};
use serde_json::{Map, Value};

/// A version's texts as templates, with its variables compiled.
#[derive(Debug)]
pub struct VersionTemplate {
    system: Template,
    messages: Vec<(TemplateRole, Template)>,
    examples: Vec<(Template, Template)>,
    /// None for a constant version, and when neither the stored schema nor the placeholders
    /// compile (a version stored before templates existed): it then declares no variables.
    variables: Option<VersionVariables>,
    constant: bool,
}

/// A version's texts with the variables filled in, ready for the context fitting.
#[derive(Debug, Clone, PartialEq)]
pub struct Filled {
    /// The rendered system prompt.
    pub system_prompt: String,
    /// The rendered few-shot examples.
    pub examples: Vec<FewShotExample>,
    /// The rendered template messages.
    pub messages: Vec<TemplateMessage>,
    /// The variables as used (defaults applied, values redacted).
    pub values: Map<String, Value>,
    /// PII redactions in the variables' values, by label.
    pub redactions: BTreeMap<String, u32>,
}

/// Why a version's templates cannot be filled with the caller's variables.
#[derive(Debug, thiserror::Error)]
pub enum FillError {
    /// The variables break the schema (every problem, `variables.<name>`), or the rendered
    /// system prompt is over the version's budget (`variables`).
    #[error("invalid variables: {} problems", .0.len())]
    Invalid(Vec<Violation>),
    /// A variable's value touches one of the version's blocked categories.
    #[error("a variable matches the blocked category {}", .0.as_str())]
    Blocked(BlockedCategory),
}

impl VersionTemplate {
    /// Parses a stored version's texts and compiles its variables. A text that no longer
    /// parses (stored before templates existed) is served verbatim, and a schema that no longer
    /// compiles leaves the version without variables: what was stored keeps working.
    pub fn build(settings: &VersionSettings) -> Self {
        let parse = |text: &str| Template::parse(text).unwrap_or_else(|_| Template::verbatim(text));
        let system = parse(&settings.system_prompt);
        let messages: Vec<(TemplateRole, Template)> = settings
            .template_messages
            .iter()
            .map(|m| (m.role, parse(&m.content)))
            .collect();
        let examples: Vec<(Template, Template)> = settings
            .few_shot_examples
            .iter()
            .map(|e| (parse(&e.input), parse(&e.output)))
            .collect();
        let placeholders: Vec<VariablePath> = std::iter::once(&system)
            .chain(messages.iter().map(|(_, t)| t))
            .chain(examples.iter().flat_map(|(i, o)| [i, o]))
            .flat_map(Template::placeholders)
            .cloned()
            .collect();
        // A schema without placeholders still has its `required` and its types to enforce.
        let constant =
            placeholders.is_empty() && messages.is_empty() && settings.variables_schema.is_none();
        // A constant version declares no variables: no validator is built for it (most prompts
        // are plain, and the JSON Schema machinery then stays unloaded).
        let variables = if constant {
            None
        } else {
            VersionVariables::compile(settings.variables_schema.as_deref(), placeholders.clone())
                .or_else(|_| VersionVariables::compile(None, placeholders))
                .ok()
        };
        VersionTemplate {
            system,
            messages,
            examples,
            variables,
            constant,
        }
    }

    /// Whether the stored texts serve as they are when the caller sends no variables.
    pub fn is_constant(&self) -> bool {
        self.constant
    }

    /// The variables the version declares, with whether each is required.
    pub fn describe(&self) -> Vec<VariableInfo> {
        self.variables
            .as_ref()
            .map(VersionVariables::describe)
            .unwrap_or_default()
    }

    /// Checks `supplied` against the schema (defaults applied), applies the version's blocked
    /// categories and PII redaction to every string value, then renders every text and checks
    /// the rendered system prompt against `budget` with `count`.
    pub fn fill(
        &self,
        settings: &VersionSettings,
        supplied: Option<&Map<String, Value>>,
        count: impl Fn(&str) -> usize,
    ) -> Result<Filled, FillError> {
        self.fill_reserving(settings, supplied, 0, count)
    }

    /// [`Self::fill`] for a version whose budget also holds `reserved` tokens besides the
    /// system prompt: its tool definitions, which `systemPromptTokens` counts too.
    pub fn fill_reserving(
        &self,
        settings: &VersionSettings,
        supplied: Option<&Map<String, Value>>,
        reserved: usize,
        count: impl Fn(&str) -> usize,
    ) -> Result<Filled, FillError> {
        let mut resolved = match &self.variables {
            Some(variables) => variables.resolve(supplied).map_err(FillError::Invalid)?,
            None => match supplied.filter(|s| !s.is_empty()) {
                None => ResolvedVariables::default(),
                Some(supplied) => {
                    return Err(FillError::Invalid(
                        supplied
                            .keys()
                            .map(|name| {
                                Violation::with_params(
                                    promptgate_core::ViolationCode::InvalidValue,
                                    format!("variables.{name}"),
                                    "unknown variable {name}; this version declares no variables",
                                    &[("name", name.clone())],
                                )
                            })
                            .collect(),
                    ));
                }
            },
        };
        let redactions = guard(settings, &mut resolved)?;
        let system_prompt = resolved.render(&self.system);
        // A token covers at least one byte, so a text no longer in bytes than the budget is
        // within it without counting (the common case: budgets are in the thousands).
        if let Some(limit) = settings
            .safety_guardrails
            .max_tokens
            .filter(|limit| system_prompt.len().saturating_add(reserved) > *limit as usize)
        {
            let tokens = count(&system_prompt).saturating_add(reserved);
            if tokens > limit as usize {
                return Err(FillError::Invalid(vec![Violation::with_params(
                    promptgate_core::ViolationCode::TokenBudgetExceeded,
                    "variables",
                    "the system prompt rendered with these variables is {estimated} tokens; the budget is {limit}",
                    &[
                        ("estimated", tokens.to_string()),
                        ("limit", limit.to_string()),
                    ],
                )]));
            }
        }
        Ok(Filled {
            system_prompt,
            examples: self
                .examples
                .iter()
                .map(|(input, output)| FewShotExample {
                    input: resolved.render(input),
                    output: resolved.render(output),
                })
                .collect(),
            messages: self
                .messages
                .iter()
                .map(|(role, content)| TemplateMessage {
                    role: *role,
                    content: resolved.render(content),
                })
                .collect(),
            values: resolved.into_values(),
            redactions,
        })
    }
}

/// The version's blocked categories on every string value (before anything is redacted), then
/// PII redaction of each in place; the redaction counts.
fn guard(
    settings: &VersionSettings,
    resolved: &mut ResolvedVariables,
) -> Result<BTreeMap<String, u32>, FillError> {
    let guardrails = &settings.safety_guardrails;
    if !guardrails.blocked_categories.is_empty() {
        for text in resolved.strings() {
            if let Some(category) = categories::detect(text, &guardrails.blocked_categories) {
                return Err(FillError::Blocked(category));
            }
        }
    }
    let mut counts = BTreeMap::new();
    if guardrails.content_filtering.contains(&ContentFilter::Pii) {
        for text in resolved.strings_mut() {
            let redacted = pii::redact(text);
            if redacted.counts.is_empty() {
                continue;
            }
            for (label, n) in redacted.counts {
                *counts.entry(label.to_owned()).or_default() += n;
            }
            *text = redacted.text;
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptgate_core::SafetyGuardrails;
    use serde_json::json;

    fn settings(system: &str, schema: Option<Value>) -> VersionSettings {
        VersionSettings {
            model_endpoint_ref: "offline/echo".into(),
            system_prompt: system.into(),
            temperature: 0.2,
            safety_guardrails: SafetyGuardrails::default(),
            few_shot_examples: vec![FewShotExample {
                input: "I am {{name}}".into(),
                output: "Hello {{name}}".into(),
            }],
            template_messages: vec![TemplateMessage {
                role: TemplateRole::User,
                content: "My plan is {{tier}}".into(),
            }],
            variables_schema: schema.map(|s| s.to_string()),
            tool_settings: Default::default(),
            fallback_endpoint_refs: Vec::new(),
        }
    }

    fn vars(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    #[test]
    fn every_text_is_rendered_and_defaults_apply() {
        let schema = json!({"type": "object", "properties": {
            "name": {"type": "string"}, "tier": {"enum": ["gold", "silver"], "default": "silver"}},
            "required": ["name"]});
        let s = settings("Help {{name}} ({{tier}}).", Some(schema));
        let t = VersionTemplate::build(&s);
        assert!(!t.is_constant());
        let names: Vec<_> = t
            .describe()
            .into_iter()
            .map(|v| (v.name, v.required))
            .collect();
        assert_eq!(
            names,
            [("name".to_owned(), true), ("tier".to_owned(), false)]
        );
        let filled = t
            .fill(&s, Some(&vars(json!({"name": "Jane"}))), words)
            .unwrap();
        assert_eq!(filled.system_prompt, "Help Jane (silver).");
        assert_eq!(filled.examples[0].input, "I am Jane");
        assert_eq!(filled.examples[0].output, "Hello Jane");
        assert_eq!(filled.messages[0].content, "My plan is silver");
        assert_eq!(
            filled.values,
            vars(json!({"name": "Jane", "tier": "silver"}))
        );
        let err = t
            .fill(&s, Some(&vars(json!({"tier": "bronze", "x": 1}))), words)
            .unwrap_err();
        let FillError::Invalid(violations) = err else {
            panic!("expected invalid variables")
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["variables.name", "variables.tier", "variables.x"]);
    }

    #[test]
    fn values_are_guarded_before_rendering() {
        let mut s = settings("Customer: {{name}}. Plan {{tier}}.", None);
        s.safety_guardrails.content_filtering = vec![ContentFilter::Pii];
        let t = VersionTemplate::build(&s);
        let filled = t
            .fill(
                &s,
                Some(&vars(json!({"name": "jane@example.com", "tier": "gold"}))),
                words,
            )
            .unwrap();
        assert_eq!(filled.system_prompt, "Customer: [EMAIL]. Plan gold.");
        assert!(!format!("{filled:?}").contains("jane@example.com"));
        assert_eq!(
            filled.redactions.get("EMAIL"),
            Some(&1),
            "counted once per value, however often rendered"
        );
        assert_eq!(filled.examples[0].input, "I am [EMAIL]");
        s.safety_guardrails.blocked_categories = vec![BlockedCategory::Violence];
        let t = VersionTemplate::build(&s);
        let err = t
            .fill(
                &s,
                Some(&vars(json!({"name": "I will kill you", "tier": "gold"}))),
                words,
            )
            .unwrap_err();
        assert!(
            matches!(err, FillError::Blocked(BlockedCategory::Violence)),
            "{err:?}"
        );
    }

    #[test]
    fn the_budget_holds_the_reserved_tool_tokens_too() {
        let mut s = settings("Say hi to {{name}} and {{tier}}.", None);
        s.safety_guardrails.max_tokens = Some(8);
        let t = VersionTemplate::build(&s);
        let supplied = vars(json!({"name": "Jo", "tier": "x"}));
        // 6 words: within 8 alone and with 2 reserved, over it with 3.
        assert!(t.fill_reserving(&s, Some(&supplied), 2, words).is_ok());
        let Err(FillError::Invalid(violations)) = t.fill_reserving(&s, Some(&supplied), 3, words)
        else {
            panic!("expected the budget")
        };
        assert_eq!(violations[0].field, "variables");
        assert!(
            violations[0].message().contains("9 tokens"),
            "{}",
            violations[0].message()
        );
    }

    #[test]
    fn the_rendered_system_prompt_must_fit_the_budget() {
        let mut s = settings("Say hi to {{name}} and {{tier}}.", None);
        s.safety_guardrails.max_tokens = Some(6);
        let t = VersionTemplate::build(&s);
        assert!(
            t.fill(&s, Some(&vars(json!({"name": "Jo", "tier": "x"}))), words)
                .is_ok()
        );
        let err = t
            .fill(
                &s,
                Some(&vars(json!({"name": "Jo Ann Marie", "tier": "x"}))),
                words,
            )
            .unwrap_err();
        let FillError::Invalid(violations) = err else {
            panic!("expected the budget")
        };
        assert_eq!(violations[0].field, "variables");
        assert_eq!(
            violations[0].code,
            promptgate_core::ViolationCode::TokenBudgetExceeded
        );
        assert_eq!(violations[0].params["estimated"], "8");
        // Shorter in bytes than the budget: within it, and nothing is counted.
        s.safety_guardrails.max_tokens = Some(1000);
        let no_count =
            |_: &str| -> usize { panic!("a text shorter than the budget is not counted") };
        assert!(
            t.fill(
                &s,
                Some(&vars(json!({"name": "Jo", "tier": "x"}))),
                no_count
            )
            .is_ok()
        );
    }

    #[test]
    fn stored_texts_that_do_not_parse_serve_verbatim_and_take_no_variables() {
        let mut s = settings("Legacy {{ not a name }} text", None);
        s.few_shot_examples.clear();
        s.template_messages.clear();
        let t = VersionTemplate::build(&s);
        assert!(t.is_constant());
        assert!(t.describe().is_empty());
        // A schema alone makes a version checked, even without placeholders.
        let schema =
            json!({"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]});
        let checked = VersionSettings {
            system_prompt: "Plain".into(),
            variables_schema: Some(schema.to_string()),
            tool_settings: Default::default(),
            fallback_endpoint_refs: Vec::new(),
            ..s.clone()
        };
        assert!(!VersionTemplate::build(&checked).is_constant());
        let filled = t.fill(&s, None, words).unwrap();
        assert_eq!(filled.system_prompt, "Legacy {{ not a name }} text");
        let err = t
            .fill(&s, Some(&vars(json!({"a": "b"}))), words)
            .unwrap_err();
        assert!(
            matches!(&err, FillError::Invalid(v) if v[0].field == "variables.a"),
            "{err:?}"
        );
        let FillError::Invalid(v) = err else {
            unreachable!()
        };
        assert_eq!(
            v[0].message(),
            "unknown variable a; this version declares no variables"
        );
    }
}
