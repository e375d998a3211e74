//! Conversions between domain values and their stored columns. The JSON columns use the
//! contract's field names so that a database is readable by people with `sqlite3`.

use promptgate_core::invocation::FallbackAttempt;
use promptgate_core::label::{LabelName, Labels};
use promptgate_core::prompt::{
    BlockedCategory, ContentFilter, FewShotExample, SafetyGuardrails, TemplateMessage, TemplateRole,
};
use promptgate_core::{
    JsonSchemaFormat, ResponseFormat, ScopeSet, SplitStrategy, ToolChoice, ToolDefinition,
    ToolSettings, TrafficSplit, VersionLabel,
};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::StoreError;

pub(crate) fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// `text` with every U+0000 replaced by U+FFFD (the replacement character). PostgreSQL's text
/// cannot hold U+0000 and refuses the whole statement, so a NUL that a caller put in an
/// invocation's session id, a feedback comment or a lookup key would turn into a failed batch
/// or a 500. Both stores apply the same mapping to what they store and to what they look up, so
/// they behave alike and a lookup finds what a write with the same text stored. Prompt text
/// never gets here with a NUL: validation refuses it.
pub(crate) fn nul_free(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// [`nul_free`] of an optional text.
pub(crate) fn nul_free_opt(text: Option<&str>) -> Option<String> {
    text.map(nul_free)
}

/// When a lease taken at `now` for `ttl` runs out, in stored milliseconds.
pub(crate) fn lease_expiry(now: OffsetDateTime, ttl: std::time::Duration) -> i64 {
    millis(now).saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn from_millis(ms: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {ms}: {e}")))
}

pub(crate) fn scopes(text: &str) -> Result<ScopeSet, StoreError> {
    ScopeSet::parse_space_separated(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn version(text: &str) -> Result<VersionLabel, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("version {text:?}: {e}")))
}

pub(crate) fn traffic_json(split: &TrafficSplit) -> String {
    json!({
        "defaultVersion": split.default_version().to_string(),
        "splitStrategy": split.strategy().as_str(),
        "versions": split.weights().iter()
            .map(|w| json!({"version": w.version.to_string(), "weight": w.weight}))
            .collect::<Vec<_>>(),
    })
    .to_string()
}

pub(crate) fn traffic_from_json(text: &str) -> Result<TrafficSplit, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("traffic {what}: {text}"));
    let value: Value = serde_json::from_str(text).map_err(|_| corrupt("json"))?;
    let default = version(
        value["defaultVersion"]
            .as_str()
            .ok_or_else(|| corrupt("defaultVersion"))?,
    )?;
    let strategy = value["splitStrategy"]
        .as_str()
        .and_then(SplitStrategy::parse)
        .ok_or_else(|| corrupt("splitStrategy"))?;
    let mut weights = Vec::new();
    for entry in value["versions"]
        .as_array()
        .ok_or_else(|| corrupt("versions"))?
    {
        let label = version(
            entry["version"]
                .as_str()
                .ok_or_else(|| corrupt("version"))?,
        )?;
        let weight = entry["weight"].as_f64().ok_or_else(|| corrupt("weight"))?;
        weights.push((label, weight));
    }
    TrafficSplit::new(default, strategy, weights).map_err(|_| corrupt("weights"))
}

pub(crate) fn guardrails_json(g: &SafetyGuardrails) -> String {
    json!({
        "contentFiltering": g.content_filtering.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
        "maxTokens": g.max_tokens,
        "blockedCategories": g.blocked_categories.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
    })
    .to_string()
}

pub(crate) fn guardrails_from_json(text: &str) -> Result<SafetyGuardrails, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("safety guardrails: {text}"));
    let value: Value = serde_json::from_str(text).map_err(|_| corrupt())?;
    let names = |key: &str| -> Result<Vec<String>, StoreError> {
        value[key]
            .as_array()
            .ok_or_else(corrupt)?
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(corrupt))
            .collect()
    };
    let content_filtering = names("contentFiltering")?
        .iter()
        .map(|n| {
            ContentFilter::ALL
                .into_iter()
                .find(|f| f.as_str() == n)
                .ok_or_else(corrupt)
        })
        .collect::<Result<_, _>>()?;
    let blocked_categories = names("blockedCategories")?
        .iter()
        .map(|n| {
            BlockedCategory::ALL
                .into_iter()
                .find(|c| c.as_str() == n)
                .ok_or_else(corrupt)
        })
        .collect::<Result<_, _>>()?;
    let max_tokens = match &value["maxTokens"] {
        Value::Null => None,
        v => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(corrupt)?,
        ),
    };
    Ok(SafetyGuardrails {
        content_filtering,
        max_tokens,
        blocked_categories,
    })
}

pub(crate) fn examples_json(examples: &[FewShotExample]) -> String {
    Value::Array(
        examples
            .iter()
            .map(|e| json!({"input": e.input, "output": e.output}))
            .collect(),
    )
    .to_string()
}

pub(crate) fn examples_from_json(text: &str) -> Result<Vec<FewShotExample>, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("few-shot examples: {text}"));
    let value: Value = serde_json::from_str(text).map_err(|_| corrupt())?;
    value
        .as_array()
        .ok_or_else(corrupt)?
        .iter()
        .map(|e| {
            Ok(FewShotExample {
                input: e["input"].as_str().ok_or_else(corrupt)?.to_owned(),
                output: e["output"].as_str().ok_or_else(corrupt)?.to_owned(),
            })
        })
        .collect()
}

/// A version's template turns as the `template_messages` column holds them: a JSON array of
/// `{"role", "content"}`, as `few_shot_examples` holds its pairs.
pub(crate) fn template_messages_json(messages: &[TemplateMessage]) -> String {
    Value::Array(
        messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
            .collect(),
    )
    .to_string()
}

pub(crate) fn template_messages_from_json(text: &str) -> Result<Vec<TemplateMessage>, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("template messages: {text}"));
    let value: Value = serde_json::from_str(text).map_err(|_| corrupt())?;
    value
        .as_array()
        .ok_or_else(corrupt)?
        .iter()
        .map(|m| {
            Ok(TemplateMessage {
                role: m["role"]
                    .as_str()
                    .and_then(TemplateRole::parse)
                    .ok_or_else(corrupt)?,
                content: m["content"].as_str().ok_or_else(corrupt)?.to_owned(),
            })
        })
        .collect()
}

/// A stored variables schema, handed back as the exact text stored (core keeps it as text);
/// text that is not a JSON object cannot have been stored by the gateway, so it is corrupt
/// rather than a schema every later check would trip over.
pub(crate) fn variables_schema(text: Option<String>) -> Result<Option<String>, StoreError> {
    match text {
        Some(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(_)) => Ok(Some(text)),
            _ => Err(StoreError::Corrupt(format!("variables schema: {text}"))),
        },
        None => Ok(None),
    }
}

/// A version's tools, tool choice and response format as the `tool_settings` column holds
/// them: one JSON object in the contract's shapes (`tools`, `toolChoice`, `responseFormat`,
/// each left out when unset); none when the version has none of them.
pub(crate) fn tool_settings_json(settings: &ToolSettings) -> Option<String> {
    if settings.is_empty() {
        return None;
    }
    let mut object = Map::new();
    if !settings.tools.is_empty() {
        let tools = settings
            .tools
            .iter()
            .map(|tool| {
                let mut function = Map::new();
                function.insert("name".into(), Value::String(tool.name.clone()));
                if let Some(description) = &tool.description {
                    function.insert("description".into(), Value::String(description.clone()));
                }
                if let Some(parameters) = &tool.parameters {
                    function.insert("parameters".into(), json_text(parameters));
                }
                if let Some(strict) = tool.strict {
                    function.insert("strict".into(), Value::Bool(strict));
                }
                json!({"type": "function", "function": function})
            })
            .collect();
        object.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = &settings.tool_choice {
        let value = match choice.word() {
            Some(word) => Value::String(word.to_owned()),
            None => match choice {
                ToolChoice::Function(name) => {
                    json!({"type": "function", "function": {"name": name}})
                }
                _ => Value::Null,
            },
        };
        object.insert("toolChoice".into(), value);
    }
    if let Some(format) = &settings.response_format {
        let value = match format {
            ResponseFormat::Text => json!({"type": "text"}),
            ResponseFormat::JsonObject => json!({"type": "json_object"}),
            ResponseFormat::JsonSchema(spec) => {
                let mut inner = Map::new();
                inner.insert("name".into(), Value::String(spec.name.clone()));
                if let Some(description) = &spec.description {
                    inner.insert("description".into(), Value::String(description.clone()));
                }
                if let Some(schema) = &spec.schema {
                    inner.insert("schema".into(), json_text(schema));
                }
                if let Some(strict) = spec.strict {
                    inner.insert("strict".into(), Value::Bool(strict));
                }
                json!({"type": "json_schema", "json_schema": inner})
            }
        };
        object.insert("responseFormat".into(), value);
    }
    Some(Value::Object(object).to_string())
}

/// Stored JSON text as a value (the gateway stores only JSON it parsed; anything else is kept
/// as a string rather than lost).
fn json_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// A version's fallback endpoints as the `fallback_endpoint_refs` column holds them: a JSON
/// array of refs in order; none when the version has none.
pub(crate) fn endpoint_refs_json(refs: &[String]) -> Option<String> {
    (!refs.is_empty()).then(|| Value::from(refs.to_vec()).to_string())
}

/// The `fallback_endpoint_refs` column.
pub(crate) fn endpoint_refs_from_json(text: Option<String>) -> Result<Vec<String>, StoreError> {
    match text {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(&text)
            .map_err(|_| StoreError::Corrupt(format!("fallback endpoint refs: {text}"))),
    }
}

/// An invocation's failed fallback attempts as the `fallback_attempts` column holds them: a
/// JSON array of `{"endpointRef", "errorCode"}`; none when there were none.
pub(crate) fn attempts_json(attempts: &[FallbackAttempt]) -> Option<String> {
    if attempts.is_empty() {
        return None;
    }
    let list: Vec<Value> = attempts
        .iter()
        .map(|a| json!({"endpointRef": a.endpoint_ref, "errorCode": a.error_code}))
        .collect();
    Some(Value::Array(list).to_string())
}

/// The `fallback_attempts` column.
pub(crate) fn attempts_from_json(text: Option<String>) -> Result<Vec<FallbackAttempt>, StoreError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let corrupt = || StoreError::Corrupt(format!("fallback attempts: {text}"));
    let list: Vec<Value> = serde_json::from_str(&text).map_err(|_| corrupt())?;
    list.iter()
        .map(|item| {
            let field = |name: &str| item.get(name).and_then(Value::as_str).map(str::to_owned);
            Some(FallbackAttempt {
                endpoint_ref: field("endpointRef")?,
                error_code: field("errorCode")?,
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(corrupt)
}

/// The `tool_settings` column; anything the gateway cannot have written is corrupt.
pub(crate) fn tool_settings_from_json(text: Option<String>) -> Result<ToolSettings, StoreError> {
    let Some(text) = text else {
        return Ok(ToolSettings::default());
    };
    let corrupt = || StoreError::Corrupt(format!("tool settings: {text}"));
    let value: Value = serde_json::from_str(&text).map_err(|_| corrupt())?;
    let string = |v: &Value| v.as_str().map(str::to_owned);
    let tools = match value.get("tools") {
        None => Vec::new(),
        Some(list) => list
            .as_array()
            .ok_or_else(corrupt)?
            .iter()
            .map(|tool| {
                let function = &tool["function"];
                Ok(ToolDefinition {
                    name: string(&function["name"]).ok_or_else(corrupt)?,
                    description: function.get("description").and_then(string),
                    parameters: function.get("parameters").map(Value::to_string),
                    strict: function.get("strict").and_then(Value::as_bool),
                })
            })
            .collect::<Result<_, StoreError>>()?,
    };
    let tool_choice = match value.get("toolChoice") {
        None => None,
        Some(Value::String(word)) => Some(match word.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => return Err(corrupt()),
        }),
        Some(object) => Some(ToolChoice::Function(
            string(&object["function"]["name"]).ok_or_else(corrupt)?,
        )),
    };
    let response_format = match value.get("responseFormat") {
        None => None,
        Some(format) => Some(match format["type"].as_str() {
            Some("text") => ResponseFormat::Text,
            Some("json_object") => ResponseFormat::JsonObject,
            Some("json_schema") => {
                let spec = &format["json_schema"];
                ResponseFormat::JsonSchema(JsonSchemaFormat {
                    name: string(&spec["name"]).ok_or_else(corrupt)?,
                    description: spec.get("description").and_then(string),
                    schema: spec.get("schema").map(Value::to_string),
                    strict: spec.get("strict").and_then(Value::as_bool),
                })
            }
            _ => return Err(corrupt()),
        }),
    };
    Ok(ToolSettings {
        tools,
        tool_choice,
        response_format,
    })
}

/// A prompt's labels as the `labels` column holds them: a JSON object from label name to
/// version, in name order.
pub(crate) fn labels_json(labels: &Labels) -> String {
    Value::Object(
        labels
            .iter()
            .map(|(name, version)| (name.to_string(), Value::String(version.to_string())))
            .collect(),
    )
    .to_string()
}

/// The `labels` column; a name that is not a label name or a version that is not a version is
/// corrupt, as everything else decoded here.
pub(crate) fn labels_from_json(text: &str) -> Result<Labels, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("labels: {text}"));
    let value: Value = serde_json::from_str(text).map_err(|_| corrupt())?;
    value
        .as_object()
        .ok_or_else(corrupt)?
        .iter()
        .map(|(name, version)| {
            let name = LabelName::parse("labels", name).map_err(|_| corrupt())?;
            Ok((name, self::version(version.as_str().ok_or_else(corrupt)?)?))
        })
        .collect()
}

/// An invocation's variable names as the `variable_names` column holds them: a JSON array of
/// strings, as `metadata` is a JSON object.
pub(crate) fn variable_names_json(names: &[String]) -> String {
    Value::Array(names.iter().map(|n| Value::String(n.clone())).collect()).to_string()
}

pub(crate) fn variable_names_from_json(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt(format!("variable names {text:?}")))
}

/// The front door's policy from its two columns.
pub(crate) fn chat_completions_policy(
    system_message_mode: &str,
    allow_caller_settings: bool,
) -> Result<promptgate_core::ChatCompletionsPolicy, StoreError> {
    let system_message = promptgate_core::SystemMessageMode::parse(system_message_mode)
        .ok_or_else(|| {
            StoreError::Corrupt(format!("system message mode {system_message_mode:?}"))
        })?;
    Ok(promptgate_core::ChatCompletionsPolicy {
        system_message,
        allow_caller_settings,
    })
}

/// A stored hex hash (a chain hash, a Merkle leaf or root).
pub(crate) fn stored_hash(hex: &str) -> Result<promptgate_audit::Hash, StoreError> {
    promptgate_audit::merkle::from_hex(hex)
        .map_err(|_| StoreError::Corrupt(format!("audit hash {hex:?}")))
}

/// An audit sequence or tree size as the `BIGINT` column stores it (saturating: a bound past
/// `i64::MAX` means "everything").
pub(crate) fn sql_sequence(sequence: u64) -> i64 {
    i64::try_from(sequence).unwrap_or(i64::MAX)
}

/// Turns a name filter into a `LIKE` pattern: `*` is the wildcard, and the pattern characters
/// `%`, `_` and `\` match themselves.
pub(crate) fn like_pattern(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '*' => out.push('%'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// The listing's name filter as the two conditions it binds: an exact name, or a `LIKE`
/// pattern when the name holds the wildcard `*` (NULL switches a condition off).
pub(crate) fn name_filter(name: Option<&str>) -> (Option<String>, Option<String>) {
    match name {
        Some(name) if name.contains('*') => (None, Some(like_pattern(&nul_free(name)))),
        Some(name) => (Some(nul_free(name)), None),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_messages_labels_and_variable_names_round_trip() {
        let messages = vec![
            TemplateMessage {
                role: TemplateRole::User,
                content: "Hi {{ name }} \"quoted\"".to_owned(),
            },
            TemplateMessage {
                role: TemplateRole::Assistant,
                content: String::new(),
            },
        ];
        let text = template_messages_json(&messages);
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!([
                {"role": "user", "content": "Hi {{ name }} \"quoted\""},
                {"role": "assistant", "content": ""},
            ])
        );
        assert_eq!(template_messages_from_json(&text).unwrap(), messages);
        assert_eq!(template_messages_from_json("[]").unwrap(), Vec::new());

        let mut labels = Labels::new();
        labels.insert(
            LabelName::parse("l", "staging").unwrap(),
            "1.1.0".parse().unwrap(),
        );
        labels.insert(
            LabelName::parse("l", "production").unwrap(),
            "1.0.0".parse().unwrap(),
        );
        let text = labels_json(&labels);
        assert_eq!(text, r#"{"production":"1.0.0","staging":"1.1.0"}"#);
        assert_eq!(labels_from_json(&text).unwrap(), labels);
        assert_eq!(labels_from_json("{}").unwrap(), Labels::new());

        let names = vec!["customer.tier".to_owned(), "name".to_owned()];
        let text = variable_names_json(&names);
        assert_eq!(text, r#"["customer.tier","name"]"#);
        assert_eq!(variable_names_from_json(&text).unwrap(), names);
    }

    #[test]
    fn corrupt_templates_labels_schemas_and_variable_names_are_refused() {
        for text in [
            "",
            "{}",
            r#"[{"role":"system","content":"x"}]"#,
            r#"[{"role":"user"}]"#,
            r#"[{"role":"user","content":1}]"#,
        ] {
            let err = template_messages_from_json(text).unwrap_err();
            assert!(
                matches!(&err, StoreError::Corrupt(m) if m.starts_with("template messages")),
                "{text}: {err:?}"
            );
        }
        for text in [
            "[]",
            "not json",
            r#"{"Production":"1.0.0"}"#,
            r#"{"production":1}"#,
            r#"{"production":"one"}"#,
        ] {
            let err = labels_from_json(text).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{text}: {err:?}");
        }
        for text in ["", "[1]", r#"{"a":"b"}"#] {
            let err = variable_names_from_json(text).unwrap_err();
            assert!(
                matches!(&err, StoreError::Corrupt(m) if m.starts_with("variable names")),
                "{text}: {err:?}"
            );
        }
        for text in ["", "[]", "\"text\"", "{"] {
            let err = variables_schema(Some(text.to_owned())).unwrap_err();
            assert!(
                matches!(&err, StoreError::Corrupt(m) if m.starts_with("variables schema")),
                "{text}: {err:?}"
            );
        }
        let schema = r#"{"type":"object","properties":{"name":{"type":"string"}}}"#;
        assert_eq!(
            variables_schema(Some(schema.to_owned()))
                .unwrap()
                .as_deref(),
            Some(schema),
            "a schema is handed back as the exact text stored"
        );
        assert_eq!(variables_schema(None).unwrap(), None);
    }

    #[test]
    fn like_pattern_escapes_sql_wildcards() {
        assert_eq!(like_pattern("support*"), "support%");
        assert_eq!(like_pattern("50%_off\\*"), "50\\%\\_off\\\\%");
    }

    #[test]
    fn a_name_is_exact_unless_it_holds_the_wildcard() {
        assert_eq!(name_filter(None), (None, None));
        assert_eq!(name_filter(Some("a_b")), (Some("a_b".to_owned()), None));
        assert_eq!(name_filter(Some("a_*")), (None, Some("a\\_%".to_owned())));
    }

    #[test]
    fn fallback_columns_round_trip_none_is_null_and_garbage_is_corrupt() {
        let refs = vec!["openai/gpt-4o-mini".to_owned(), "local/llama".to_owned()];
        let text = endpoint_refs_json(&refs).unwrap();
        assert_eq!(endpoint_refs_from_json(Some(text)).unwrap(), refs);
        assert_eq!(endpoint_refs_json(&[]), None);
        assert!(endpoint_refs_from_json(None).unwrap().is_empty());
        let attempts = vec![FallbackAttempt {
            endpoint_ref: "openai/gpt-4o".to_owned(),
            error_code: "upstream.circuit_open".to_owned(),
        }];
        let text = attempts_json(&attempts).unwrap();
        assert_eq!(attempts_from_json(Some(text)).unwrap(), attempts);
        assert_eq!(attempts_json(&[]), None);
        assert!(attempts_from_json(None).unwrap().is_empty());
        for corrupt in ["{", "[1]", r#"[{"endpointRef": "a"}]"#] {
            assert!(matches!(
                attempts_from_json(Some(corrupt.into())),
                Err(StoreError::Corrupt(_))
            ));
        }
        assert!(matches!(
            endpoint_refs_from_json(Some("[1]".into())),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn tool_settings_round_trip_and_none_is_stored_as_null() {
        let settings = ToolSettings {
            tools: vec![
                ToolDefinition {
                    name: "lookup_order".into(),
                    description: Some("Find an order.".into()),
                    parameters: Some(
                        r#"{"properties":{"order":{"type":"string"}},"type":"object"}"#.into(),
                    ),
                    strict: Some(true),
                },
                ToolDefinition {
                    name: "ping".into(),
                    description: None,
                    parameters: None,
                    strict: None,
                },
            ],
            tool_choice: Some(ToolChoice::Function("ping".into())),
            response_format: Some(ResponseFormat::JsonSchema(JsonSchemaFormat {
                name: "answer".into(),
                description: None,
                schema: Some(r#"{"type":"object"}"#.into()),
                strict: Some(true),
            })),
        };
        let text = tool_settings_json(&settings).unwrap();
        assert_eq!(tool_settings_from_json(Some(text)).unwrap(), settings);
        assert_eq!(tool_settings_json(&ToolSettings::default()), None);
        assert_eq!(
            tool_settings_from_json(None).unwrap(),
            ToolSettings::default()
        );
        for corrupt in [
            "[",
            r#"{"toolChoice":"sometimes"}"#,
            r#"{"tools":[{"function":{}}]}"#,
        ] {
            assert!(matches!(
                tool_settings_from_json(Some(corrupt.into())),
                Err(StoreError::Corrupt(_))
            ));
        }
    }
}
