//! The request-body decoders of the gateway: `promptgate_server::limits::decode_json_body`
//! (what `JsonBody<T>` runs for every JSON endpoint) for each request type a route decodes, the
//! nesting-depth pre-check `json_depth_over`, and `QueryParams::with_json_body` (GET filters
//! sent as a JSON body).
//!
//! The input is the raw body, so the seeds in `corpus/request_bodies/` are JSON files.
//!
//! Properties:
//! - no decoder panics; each answers `Ok` or a 400-class `ApiError` (`BadRequest` for bodies
//!   that are not JSON objects, `Invalid` for too deep or wrongly typed ones), never another;
//! - `json_depth_over` agrees with serde_json on every body serde_json parses: it never finds
//!   less than the value's nesting depth (the body object is depth 1), and on the value's own
//!   text exactly that depth (a body may be deeper than its value when a member name repeats:
//!   the text is what it bounds);
//! - a body that parses as an object within the depth limit decodes as `serde_json::Value`;
//! - `with_json_body` keeps every non-null member of an object body, strings as they are,
//!   other values as their JSON text; the query helpers then never panic.
//!
//! Past the decoders, a body that decodes goes on through the checks its route runs next
//! (issue 20: tools and structured output), none of which may panic:
//! - a `CreatePromptRequest` as a new version (`wire::prompts::new_prompt_draft`, then
//!   `SettingsDraft::check` with the built-in endpoints, the real `TokenCounter` and the real
//!   `promptgate_variables::SchemaChecker`); an `UpdatePromptRequest` likewise over a fixed base
//!   version that has a tool, a tool choice and a `json_schema` output format. An accepted
//!   version's tool settings come back equal through `ToolSettings::drafts` and the check again,
//!   and through the contract's JSON (`wire::tools::wire_tool_settings`, serialised, read back,
//!   `tool_drafts`/`tool_choice_draft`/`response_format_draft`, checked again), which is what a
//!   `GET` then `PUT` of the same settings does and what the store codec does with the same
//!   JSON; its `systemPromptTokens` are the system prompt's literal tokens plus
//!   `prompt::tool_tokens`; an update that sends none of `tools`/`toolChoice`/`responseFormat`
//!   keeps the base's;
//! - an `InvokeRequest` through `wire::invocations::invocation`: on acceptance every message is
//!   a turn, only assistant turns carry tool calls (at most `MAX_TOOLS`, with non-empty ids and
//!   names), every `tool` turn answers the id of a call an earlier assistant turn made, no other
//!   turn names one, and no caller tools are set;
//! - a `ChatCompletionRequest` through `wire::openai::translate` (both system-message
//!   policies): refusals name fields in OpenAI's spelling only (never `toolCalls`, `toolCallId`,
//!   `toolChoice`, `responseFormat`, `userInput`, `maxOutputTokens`, `sessionId`); on
//!   acceptance the caller's tools are set iff the body sent a non-null `tools`, `tool_choice`
//!   or `response_format`, and are then a checked set (at most `MAX_TOOLS`, unique names, a
//!   forced function among them, an output check exactly for a JSON output format),
//!   `parallel_tool_calls` is passed as sent, and the tool turns follow the same rule as above.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use promptgate_api as api;
use promptgate_core::prompt::{SettingsDraft, tool_tokens};
use promptgate_core::template::Template;
use promptgate_core::tools::{MAX_TOOLS, ToolFieldNames, check_tool_settings};
use promptgate_core::{
    ChatCompletionsPolicy, EndpointCatalogue, ResponseFormat, SystemMessageMode, TokenCounter,
    ToolChoice, ToolSettings, VersionSettings,
};
use promptgate_providers::{ChatMessage, Role};
use promptgate_server::error::ApiError;
use promptgate_server::extract::QueryParams;
use promptgate_server::limits::{
    DEFAULT_MAX_JSON_DEPTH, RequestLimits, decode_json_body, json_depth_over,
};
use promptgate_server::service::invoke::PinRequest;
use promptgate_server::wire;
use promptgate_server::wire::tools::{
    response_format_draft, tool_choice_draft, tool_drafts, wire_tool_settings,
};
use promptgate_variables::SchemaChecker;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

/// Loading the BPE tables takes a few hundred milliseconds: once per process.
static COUNTER: LazyLock<TokenCounter> = LazyLock::new(TokenCounter::load);
/// The built-in endpoints (`builtin/echo`, `openai/gpt-4o`, …), as a gateway without
/// `[[endpoints]]` has them.
static CATALOGUE: LazyLock<EndpointCatalogue> =
    LazyLock::new(|| EndpointCatalogue::with_overrides([]));
/// The version an update is checked over: a tool, a forced choice of it, a `json_schema`
/// output format (so that an update sending only some of the three is checked against the
/// kept rest).
static BASE: LazyLock<VersionSettings> = LazyLock::new(|| {
    let body = br#"{"name": "base", "version": "1.0.0", "modelEndpointRef": "builtin/echo",
        "systemPrompt": "You look up orders.",
        "tools": [{"type": "function", "function": {"name": "lookup_order",
            "description": "Finds an order", "strict": true,
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}},
                           "required": ["id"], "additionalProperties": false}}}],
        "toolChoice": {"type": "function", "function": {"name": "lookup_order"}},
        "responseFormat": {"type": "json_schema", "json_schema": {"name": "order",
            "schema": {"type": "object", "properties": {"qty": {"type": "integer"}}}}}}"#;
    let request: api::CreatePromptRequest = serde_json::from_slice(body).expect("the base decodes");
    let draft = wire::prompts::new_prompt_draft(request);
    draft
        .settings
        .check(None, &CATALOGUE, &COUNTER, &SchemaChecker)
        .expect("the base version is valid")
        .settings
});

/// The nesting depth of a parsed value: scalars 0, an array or object one more than its
/// deepest member.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(members) => 1 + members.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn decode<T: DeserializeOwned>(name: &str, body: &[u8]) -> Option<T> {
    match decode_json_body::<T>(body, DEFAULT_MAX_JSON_DEPTH) {
        Ok(value) => Some(value),
        Err(ApiError::BadRequest(_) | ApiError::Invalid(_)) => None,
        Err(other) => panic!("{name}: a body was refused with a non-400 error: {other:?}"),
    }
}

fuzz_target!(init: {
    // The BPE tables and the base version, loaded before the first input so that their few
    // seconds (more under AddressSanitizer) do not count against libFuzzer's per-input timeout.
    LazyLock::force(&BASE);
}, |body: &[u8]| {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();

    // The depth pre-check agrees with the parser on every body the parser accepts. It reads the
    // text, so it may find more than the value keeps (a member repeated under the same name
    // counts though serde_json keeps only the last one): it never finds less, and on the value's
    // own duplicate-free text it finds exactly the value's depth.
    if let Some(value) = &parsed {
        let d = depth(value);
        if d > 0 {
            assert_eq!(json_depth_over(body, d - 1), Some(d), "depth {d} not found");
        }
        let text = serde_json::to_vec(value).expect("a Value serialises");
        assert_eq!(
            json_depth_over(&text, d),
            None,
            "depth {d} reported over {d}"
        );
        if d > 0 {
            assert_eq!(json_depth_over(&text, d - 1), Some(d));
        }
    }
    let over = json_depth_over(body, DEFAULT_MAX_JSON_DEPTH);
    if let Some(found) = over {
        assert_eq!(
            found,
            DEFAULT_MAX_JSON_DEPTH + 1,
            "it stops as soon as it passes the limit"
        );
    }

    let as_value = decode::<Value>("Value", body);
    if let Some(value) = &parsed {
        let acceptable = value.is_object() && over.is_none();
        assert_eq!(
            as_value.is_some(),
            acceptable,
            "a JSON object within the limit is accepted"
        );
    } else {
        assert!(as_value.is_none(), "a body serde_json refuses was accepted");
    }

    // Every request type a route decodes with `JsonBody<T>`.
    let _ = decode::<api::CreatePromptRequest>("CreatePromptRequest", body);
    let _ = decode::<api::UpdatePromptRequest>("UpdatePromptRequest", body);
    let _ = decode::<api::InvokeRequest>("InvokeRequest", body);
    let _ = decode::<api::FeedbackRequest>("FeedbackRequest", body);
    let _ = decode::<api::AuditEntryRequest>("AuditEntryRequest", body);
    let _ = decode::<api::CreateClientRequest>("CreateClientRequest", body);
    let _ = decode::<api::LabelRequest>("LabelRequest", body);
    let _ = decode::<api::RenderRequest>("RenderRequest", body);
    let _ = decode::<api::openai::ChatCompletionRequest>("ChatCompletionRequest", body);

    // What the routes do next with a body that decoded.
    if let Some(request) = decode::<api::CreatePromptRequest>("CreatePromptRequest", body) {
        let draft = wire::prompts::new_prompt_draft(request);
        check_version(&draft.settings, None);
    }
    if let Some(request) = decode::<api::UpdatePromptRequest>("UpdatePromptRequest", body) {
        let draft = wire::prompts::change_draft(request);
        check_version(&draft.settings, Some(&BASE));
    }
    if let Some(request) = decode::<api::InvokeRequest>("InvokeRequest", body) {
        check_invocation(&request);
    }
    if let Some(request) =
        decode::<api::openai::ChatCompletionRequest>("ChatCompletionRequest", body)
    {
        check_chat_completion(&request);
    }

    // GET filters sent as a body.
    match QueryParams::default().with_json_body(body) {
        Ok(query) => {
            if let Some(Value::Object(members)) = &parsed {
                for (key, value) in members {
                    let expected = match value {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    };
                    assert_eq!(query.get(key), expected.as_deref(), "member {key:?}");
                }
            }
            let mut violations = Vec::new();
            let _ = query.page_size(50, &mut violations);
            let _ = query.cursor(&mut violations);
            let _ = query.cursor_as::<u64>(&mut violations);
        }
        Err(ApiError::BadRequest(_)) => {
            assert!(
                !matches!(parsed, Some(Value::Object(_))),
                "an object body was refused"
            );
        }
        Err(other) => panic!("with_json_body: a non-400 error: {other:?}"),
    }
});

/// A version's settings through the core's check, as create (no base) and update (over `base`)
/// run it; the properties of an accepted version's tool settings.
fn check_version(settings: &SettingsDraft, base: Option<&VersionSettings>) {
    let Ok(checked) = settings.check(base, &CATALOGUE, &COUNTER, &SchemaChecker) else {
        return;
    };
    let tools = &checked.settings.tool_settings;
    let sent_tools = settings.tools.is_some()
        || settings.tool_choice.is_some()
        || settings.response_format.is_some();
    if let Some(base) = base
        && !sent_tools
    {
        assert_eq!(
            tools, &base.tool_settings,
            "an update without tools kept the base's"
        );
    }
    check_settings_shape(tools);

    // Back into drafts (what an update over this version starts from) and checked again.
    let (drafts, choice, format) = tools.drafts();
    let again = check_tool_settings(
        &drafts,
        choice.as_ref(),
        format.as_ref(),
        &ToolFieldNames::VERSION,
        &SchemaChecker,
    )
    .unwrap_or_else(|v| panic!("accepted tool settings refused as drafts: {v:?}\n{tools:?}"));
    assert_eq!(&again, tools, "tool settings changed through drafts");

    // Through the contract's JSON and back, as GET then PUT: equal again.
    assert_eq!(
        &through_wire(tools),
        tools,
        "tool settings changed through the wire"
    );

    // systemPromptTokens: the prompt's literal text plus the tool definitions.
    let endpoint = CATALOGUE
        .get(&checked.settings.model_endpoint_ref)
        .expect("an accepted version's endpoint exists");
    let literal = Template::parse(&checked.settings.system_prompt)
        .expect("an accepted system prompt parses")
        .literal();
    let expected = COUNTER.count(endpoint.tokenizer, &literal)
        + tool_tokens(&COUNTER, endpoint.tokenizer, tools);
    assert_eq!(
        checked.system_prompt_tokens as usize, expected,
        "systemPromptTokens is not the prompt's plus the tools' tokens"
    );
}

/// `tools`, `toolChoice` and `responseFormat` as `GET` shows them, as JSON text, read back as a
/// request sends them and checked again.
fn through_wire(settings: &ToolSettings) -> ToolSettings {
    let (tools, choice, format) = wire_tool_settings(settings);
    let text = serde_json::to_string(&(tools, choice, format)).expect("wire settings serialise");
    let (tools, choice, format): (Vec<api::Tool>, Option<Value>, Option<api::ResponseFormat>) =
        serde_json::from_str(&text).expect("wire settings read back");
    let drafts = tool_drafts(tools);
    let choice = choice
        .filter(|c| !c.is_null())
        .map(|c| tool_choice_draft(&c));
    let format = format.map(response_format_draft);
    check_tool_settings(
        &drafts,
        choice.as_ref(),
        format.as_ref(),
        &ToolFieldNames::VERSION,
        &SchemaChecker,
    )
    .unwrap_or_else(|v| panic!("settings refused after the wire: {v:?}\n{text}"))
}

/// What every checked set of tool settings is.
fn check_settings_shape(settings: &ToolSettings) {
    assert!(
        settings.tools.len() <= MAX_TOOLS,
        "more than {MAX_TOOLS} tools"
    );
    for (i, tool) in settings.tools.iter().enumerate() {
        assert!(
            promptgate_core::tools::is_function_name(&tool.name),
            "tool name {:?} accepted",
            tool.name
        );
        assert!(
            settings.tools[..i].iter().all(|t| t.name != tool.name),
            "tool {} defined twice",
            tool.name
        );
    }
    match &settings.tool_choice {
        Some(ToolChoice::Function(name)) => assert!(
            settings.tools.iter().any(|t| &t.name == name),
            "tool choice {name} names no tool"
        ),
        Some(ToolChoice::Required) => assert!(!settings.tools.is_empty(), "required without tools"),
        _ => {}
    }
    let _ = settings.counted_text();
}

/// Tool turns: only assistant turns carry calls, each tool turn answers an earlier call.
fn check_turns(turns: &[ChatMessage]) {
    let mut call_ids: Vec<&str> = Vec::new();
    for (i, turn) in turns.iter().enumerate() {
        if turn.role != Role::Assistant {
            assert!(
                turn.tool_calls.is_empty(),
                "turn {i}: calls on a {:?} turn",
                turn.role
            );
        }
        assert!(
            turn.tool_calls.len() <= MAX_TOOLS,
            "turn {i}: too many calls"
        );
        for call in &turn.tool_calls {
            assert!(
                !call.id.is_empty() && !call.name.is_empty(),
                "turn {i}: {call:?}"
            );
        }
        match (&turn.tool_call_id, turn.role == Role::Tool) {
            (Some(id), true) => assert!(
                call_ids.contains(&id.as_str()),
                "turn {i} answers {id:?}, which no earlier turn called"
            ),
            (None, true) => panic!("turn {i}: a tool turn without toolCallId"),
            (Some(id), false) => panic!("turn {i}: a {:?} turn names call {id:?}", turn.role),
            (None, false) => {}
        }
        call_ids.extend(turn.tool_calls.iter().map(|c| c.id.as_str()));
    }
}

fn check_invocation(request: &api::InvokeRequest) {
    match wire::invocations::invocation(request, &RequestLimits::default()) {
        Ok(invocation) => {
            let sent = request.messages.as_ref().map_or(0, Vec::len);
            assert_eq!(
                invocation.turns.len(),
                sent,
                "a message was dropped or added"
            );
            check_turns(&invocation.turns);
            assert!(invocation.caller_tools.is_none());
        }
        Err(violations) => assert!(!violations.is_empty(), "refused without a reason"),
    }
}

/// The contract's (camelCase) names that `/v1` must rename to OpenAI's in its errors.
const CONTRACT_NAMES: [&str; 7] = [
    "toolCalls",
    "toolCallId",
    "toolChoice",
    "responseFormat",
    "userInput",
    "maxOutputTokens",
    "sessionId",
];

fn check_chat_completion(body: &api::openai::ChatCompletionRequest) {
    let limits = RequestLimits::default();
    for system_message in [SystemMessageMode::Replace, SystemMessageMode::Prepend] {
        let policy = ChatCompletionsPolicy {
            system_message,
            allow_caller_settings: system_message == SystemMessageMode::Prepend,
        };
        match wire::openai::translate(body, Uuid::nil(), &PinRequest::None, None, policy, &limits) {
            Ok(translated) => {
                let request = &translated.request;
                check_turns(&request.turns);
                let present = |v: &Option<Value>| v.as_ref().is_some_and(|v| !v.is_null());
                let sent = present(&body.tools)
                    || present(&body.tool_choice)
                    || present(&body.response_format);
                assert_eq!(
                    request.caller_tools.is_some(),
                    sent,
                    "caller tools set iff sent"
                );
                assert_eq!(request.parallel_tool_calls, body.parallel_tool_calls);
                if let Some(served) = &request.caller_tools {
                    let settings = ToolSettings {
                        tools: served.tools.to_vec(),
                        tool_choice: served.tool_choice.clone(),
                        response_format: served.response_format.as_deref().cloned(),
                    };
                    check_settings_shape(&settings);
                    let json_output = matches!(
                        settings.response_format,
                        Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema(_))
                    );
                    assert_eq!(served.output_check.is_some(), json_output);
                }
            }
            Err(violations) => {
                assert!(!violations.is_empty(), "refused without a reason");
                for v in &violations {
                    assert!(
                        !CONTRACT_NAMES.iter().any(|name| v.field.contains(name)),
                        "/v1 named a field in the contract's spelling: {:?} ({})",
                        v.field,
                        v.message()
                    );
                }
            }
        }
    }
}
