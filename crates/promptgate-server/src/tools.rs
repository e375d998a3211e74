//! A version's tools and output format, ready for the invocation path: built once when the
//! version enters the prompt cache (`cache.rs`), like its templates. Also the guardrails of
//! tool-call arguments, which are JSON: PII redaction and profanity masking apply inside
//! string values only, so that the arguments stay valid JSON (shared/API.md, "Tools and
//! structured output"; `docs/tools.md`).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use promptgate_core::guardrails::{pii, profanity};
use promptgate_core::prompt::tool_tokens;
use promptgate_core::{
    ResponseFormat, TokenCounter, TokenizerKind, ToolChoice, ToolDefinition, ToolSettings,
};
use promptgate_variables::OutputCheck;
use serde_json::Value;

/// What an invocation sends and checks for tools and output format: the version's, or (on
/// `/v1`, for the parts the version leaves unset) the caller's.
#[derive(Debug, Default)]
pub struct ServedTools {
    /// The tools, shared with every request that sends them (no copy per call).
    pub tools: Arc<[ToolDefinition]>,
    /// The tool choice.
    pub tool_choice: Option<ToolChoice>,
    /// The output format, shared likewise.
    pub response_format: Option<Arc<ResponseFormat>>,
    /// The check of a JSON output format, compiled once.
    pub output_check: Option<Arc<OutputCheck>>,
    /// The tokens the definitions take in the context window, counted on first use with the
    /// tokenizer of that use (a fallback endpoint with another tokenizer counts its own).
    tokens: OnceLock<(TokenizerKind, usize)>,
}

impl ServedTools {
    /// Builds them from checked settings (a version's, or a caller's on `/v1`).
    pub fn build(settings: &ToolSettings) -> Self {
        let response_format = settings.response_format.clone().map(Arc::new);
        ServedTools {
            tools: settings.tools.clone().into(),
            tool_choice: settings.tool_choice.clone(),
            output_check: response_format
                .as_deref()
                .and_then(OutputCheck::compile)
                .map(Arc::new),
            response_format,
            tokens: OnceLock::new(),
        }
    }

    /// The version's parts where it sets them, else the caller's: the version's own `tools`
    /// (with their choice) and `responseFormat` win. Only `Arc`s are cloned.
    pub fn merged(version: Option<&ServedTools>, caller: &ServedTools) -> ServedTools {
        let own_tools = version.filter(|v| !v.tools.is_empty() || v.tool_choice.is_some());
        let (tools, tool_choice) = match own_tools {
            Some(own) => (own.tools.clone(), own.tool_choice.clone()),
            None => (caller.tools.clone(), caller.tool_choice.clone()),
        };
        let own_format = version.filter(|v| v.response_format.is_some());
        let (response_format, output_check) = match own_format {
            Some(own) => (own.response_format.clone(), own.output_check.clone()),
            None => (caller.response_format.clone(), caller.output_check.clone()),
        };
        ServedTools {
            tools,
            tool_choice,
            response_format,
            output_check,
            tokens: OnceLock::new(),
        }
    }

    /// Whether nothing is sent or checked.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty() && self.tool_choice.is_none() && self.response_format.is_none()
    }

    /// The tokens the definitions and the output schema take (the estimate `systemPromptTokens`
    /// counts too), with `tokenizer`; counted once for the first tokenizer asked for (the
    /// serving endpoint's), and again on each call for another one (a fallback's).
    pub fn tokens(&self, counter: &TokenCounter, tokenizer: TokenizerKind) -> usize {
        let count = || {
            let settings = ToolSettings {
                tools: self.tools.to_vec(),
                tool_choice: None,
                response_format: self.response_format.as_deref().cloned(),
            };
            tool_tokens(counter, tokenizer, &settings)
        };
        match self.tokens.get_or_init(|| (tokenizer, count())) {
            (cached, tokens) if *cached == tokenizer => *tokens,
            _ => count(),
        }
    }
}

/// Tool-call arguments through the output guardrails: PII redacted and profanity masked inside
/// each string value (keys and structure untouched, so valid JSON stays valid JSON). Arguments
/// that are not JSON are treated as text. The counts add to `counts` under the labels the
/// answer reports (`EMAIL`, …, `PROFANITY`). Unchanged arguments keep their exact text.
pub fn guard_arguments(
    arguments: &str,
    redact: bool,
    mask: bool,
    counts: &mut BTreeMap<String, u32>,
) -> String {
    if !redact && !mask {
        return arguments.to_owned();
    }
    let Ok(mut value) = serde_json::from_str::<Value>(arguments) else {
        return guard_text(arguments, redact, mask, counts);
    };
    let mut changed = false;
    visit_strings(&mut value, &mut |text| {
        let guarded = guard_text(text, redact, mask, counts);
        if guarded != *text {
            *text = guarded;
            changed = true;
        }
    });
    if changed {
        value.to_string()
    } else {
        arguments.to_owned()
    }
}

fn guard_text(text: &str, redact: bool, mask: bool, counts: &mut BTreeMap<String, u32>) -> String {
    let mut out = if redact {
        let redacted = pii::redact(text);
        for (label, n) in redacted.counts {
            *counts.entry(label.to_owned()).or_default() += n;
        }
        redacted.text
    } else {
        text.to_owned()
    };
    if mask {
        let masked = profanity::mask(&out);
        if masked.count > 0 {
            *counts.entry("PROFANITY".to_owned()).or_default() += masked.count;
            out = masked.text;
        }
    }
    out
}

fn visit_strings(value: &mut Value, each: &mut impl FnMut(&mut String)) {
    match value {
        Value::String(text) => each(text),
        Value::Array(items) => items.iter_mut().for_each(|v| visit_strings(v, each)),
        Value::Object(map) => map.values_mut().for_each(|v| visit_strings(v, each)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pii_in_arguments_is_redacted_inside_strings_and_the_json_stays_valid() {
        let mut counts = BTreeMap::new();
        let args = r#"{"email": "jane.doe@example.com", "note": "call +1 415 555 0100", "qty": 4155550100, "nested": [{"to": "bob@example.org"}]}"#;
        let guarded = guard_arguments(args, true, false, &mut counts);
        let value: Value = serde_json::from_str(&guarded).expect("still JSON");
        assert_eq!(value["email"], "[EMAIL]");
        assert_eq!(value["nested"][0]["to"], "[EMAIL]");
        assert!(value["note"].as_str().unwrap().contains("[PHONE]"));
        // A number is structure, not text: left alone.
        assert_eq!(value["qty"], 4155550100_u64);
        assert_eq!(counts.get("EMAIL"), Some(&2));
        assert_eq!(counts.get("PHONE"), Some(&1));
    }

    #[test]
    fn unchanged_arguments_keep_their_text_and_non_json_is_text() {
        let mut counts = BTreeMap::new();
        let args = "{ \"city\" :  \"Paris\" }";
        assert_eq!(guard_arguments(args, true, true, &mut counts), args);
        assert_eq!(
            guard_arguments("mail jane@example.com", true, false, &mut counts),
            "mail [EMAIL]"
        );
        assert!(counts.contains_key("EMAIL"));
        assert_eq!(guard_arguments(args, false, false, &mut counts), args);
    }

    #[test]
    fn the_version_wins_where_it_sets_a_part() {
        let tool = |name: &str| ToolDefinition {
            name: name.into(),
            description: None,
            parameters: None,
            strict: None,
        };
        let version = Arc::new(ServedTools::build(&ToolSettings {
            tools: vec![tool("own")],
            ..ToolSettings::default()
        }));
        let caller = ServedTools::build(&ToolSettings {
            tools: vec![tool("theirs")],
            tool_choice: Some(ToolChoice::Required),
            response_format: Some(ResponseFormat::JsonObject),
        });
        let merged = ServedTools::merged(Some(&version), &caller);
        let callers_only = ServedTools::merged(None, &caller);
        assert_eq!(callers_only.tools[0].name, "theirs");
        assert_eq!(callers_only.tool_choice, Some(ToolChoice::Required));
        assert_eq!(merged.tools[0].name, "own");
        assert_eq!(merged.tool_choice, None);
        assert_eq!(
            merged.response_format.as_deref(),
            Some(&ResponseFormat::JsonObject)
        );
        assert!(merged.output_check.is_some());
    }
}
