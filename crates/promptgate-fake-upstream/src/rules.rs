//! A deterministic fake model that answers from the request by a few rules: OpenAI Chat
//! Completions (`POST /v1/chat/completions`) and Anthropic Messages (`POST /v1/messages`), each
//! whole or streamed, so that a client can drive tool calls and structured output end to end
//! through a gateway without a model (the SDK compatibility tests run it with `--rules`).
//!
//! The rules, first match wins (the "input" is the last message):
//! 1. the input is a tool result (OpenAI: a `tool` message; Anthropic: a user turn whose last
//!    block is a `tool_result`) → the text `The tool answered: RESULT` (several results of one
//!    turn joined by `; `);
//! 2. the request defines tools (and does not say `tool_choice` none) and the user text is
//!    `call NAME {JSON}` where NAME is one of them → one call of NAME with that JSON as its
//!    arguments (OpenAI: `finish_reason` `tool_calls`; Anthropic: a `tool_use` block, stop reason
//!    `tool_use`);
//! 3. a JSON output is required and the user text is `json {JSON}` → that JSON is the answer:
//!    OpenAI's `response_format` `json_object` or `json_schema` → the JSON as the content;
//!    Anthropic (which has no response format) a forced tool → the JSON as that tool's input.
//!    Forced means `tool_choice` `{"type": "tool", "name": N}` (tool N), or `{"type": "any"}`
//!    (the last tool listed: where a gateway that adds an output tool beside the caller's
//!    tools puts it);
//! 4. otherwise the text `Echo: TEXT`.
//!
//! Malformed JSON after `call NAME` or `json`, or an unknown NAME, falls through to the echo.
//! Answers are the same whole and streamed: a stream sends text in several deltas, and a tool
//! call's arguments (or the forced tool's input) in several pieces, so a client must assemble
//! them. Ids are derived from the tool's name (`call_rules_NAME`, `toolu_rules_NAME`). Usage:
//! [`PROMPT_TOKENS`] prompt tokens, and a completion token per started 4 bytes of the answer.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::wire::{Fixtures, Flavor};

/// Prompt tokens every answer reports.
pub const PROMPT_TOKENS: u32 = 20;

/// What the rules-mode answers say about themselves.
pub const RULES: Fixtures = Fixtures {
    openai_model: crate::wire::OPENAI_REPORTED,
    anthropic_model: crate::wire::ANTHROPIC_REPORTED,
    openai_id: "chatcmpl-rules",
    fingerprint: "fp_rules",
    anthropic_id: "msg_rules",
    stream_prompt_tokens: PROMPT_TOKENS,
};

/// The bytes of a streamed piece of a tool call's arguments, at most (UTF-8 boundaries kept).
const ARGUMENT_PIECE: usize = 8;

/// What the rules decided to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Text: an echo, the tool's answer, or (OpenAI) JSON output.
    Text(String),
    /// One call of the tool `name` with `arguments` (JSON text). On Anthropic this is also how
    /// structured output is answered (the forced tool's input).
    Call {
        /// The call's id.
        id: String,
        /// The tool's name.
        name: String,
        /// The arguments, as compact JSON text.
        arguments: String,
    },
}

impl Decision {
    /// The answer's text, or the call's arguments.
    fn payload(&self) -> &str {
        match self {
            Decision::Text(text) => text,
            Decision::Call { arguments, .. } => arguments,
        }
    }
}

/// The rules applied to a Chat Completions request body.
pub fn decide_openai(request: &Value) -> Decision {
    let messages = request["messages"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let Some(last) = messages
        .iter()
        .rev()
        .find(|m| m["role"] != "system" && m["role"] != "developer")
    else {
        return echo("");
    };
    if last["role"] == "tool" {
        // Consecutive tool results at the end are one turn's answers.
        let results: Vec<String> = messages
            .iter()
            .rev()
            .take_while(|m| m["role"] == "tool")
            .map(|m| openai_text(&m["content"]))
            .collect();
        return tool_answered(results.into_iter().rev().collect());
    }
    let text = openai_text(&last["content"]);
    let tools: Vec<&str> = request["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["function"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    if request["tool_choice"] != "none"
        && let Some((name, arguments)) = call_command(&text)
        && tools.contains(&name)
    {
        return Decision::Call {
            id: format!("call_rules_{name}"),
            name: name.to_owned(),
            arguments,
        };
    }
    let json_required = matches!(
        request["response_format"]["type"].as_str(),
        Some("json_object" | "json_schema")
    );
    if json_required && let Some(json) = json_command(&text) {
        return Decision::Text(json);
    }
    echo(&text)
}

/// The rules applied to a Messages request body.
pub fn decide_anthropic(request: &Value) -> Decision {
    let messages = request["messages"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let Some(last) = messages.last() else {
        return echo("");
    };
    let blocks: Vec<&Value> = match &last["content"] {
        Value::Array(blocks) => blocks.iter().collect(),
        _ => Vec::new(),
    };
    if last["role"] == "user" && blocks.last().is_some_and(|b| b["type"] == "tool_result") {
        let results = blocks
            .iter()
            .filter(|b| b["type"] == "tool_result")
            .map(|b| anthropic_text(&b["content"]))
            .collect();
        return tool_answered(results);
    }
    let text = anthropic_text(&last["content"]);
    let tools: Vec<&str> = request["tools"]
        .as_array()
        .map(|tools| tools.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    let choice = &request["tool_choice"];
    if choice["type"] != "none"
        && let Some((name, arguments)) = call_command(&text)
        && tools.contains(&name)
    {
        return anthropic_call(name, arguments);
    }
    let forced = match choice["type"].as_str() {
        Some("tool") => choice["name"].as_str().filter(|name| tools.contains(name)),
        Some("any") => tools.last().copied(),
        _ => None,
    };
    if let Some(name) = forced
        && let Some(json) = json_command(&text)
    {
        return anthropic_call(name, json);
    }
    echo(&text)
}

fn anthropic_call(name: &str, arguments: String) -> Decision {
    Decision::Call {
        id: format!("toolu_rules_{name}"),
        name: name.to_owned(),
        arguments,
    }
}

fn echo(text: &str) -> Decision {
    Decision::Text(format!("Echo: {text}"))
}

fn tool_answered(results: Vec<String>) -> Decision {
    Decision::Text(format!("The tool answered: {}", results.join("; ")))
}

/// `call NAME {JSON}` → (NAME, the JSON, compact), when the JSON is an object.
fn call_command(text: &str) -> Option<(&str, String)> {
    let rest = text.trim().strip_prefix("call ")?.trim_start();
    let (name, json) = rest.split_once(char::is_whitespace)?;
    Some((name, json_object(json)?))
}

/// `json {JSON}` → the JSON, compact, when it is an object.
fn json_command(text: &str) -> Option<String> {
    json_object(text.trim().strip_prefix("json ")?)
}

fn json_object(text: &str) -> Option<String> {
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(value @ Value::Object(_)) => Some(value.to_string()),
        _ => None,
    }
}

/// A Chat Completions message's content as text: a string, or the text of its parts.
fn openai_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// A Messages turn's (or tool result's) content as text: a string, or its text blocks.
fn anthropic_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// Completion tokens of an answer: one per started 4 bytes, at least one.
fn completion_tokens(decision: &Decision) -> u32 {
    u32::try_from(decision.payload().len().div_ceil(4))
        .unwrap_or(u32::MAX)
        .max(1)
}

/// The whole answer to `decision` in `flavor`'s format.
pub fn whole_answer(flavor: Flavor, decision: &Decision) -> String {
    let completion = completion_tokens(decision);
    match decision {
        Decision::Text(text) => RULES.answer(flavor, text, PROMPT_TOKENS, completion),
        Decision::Call {
            id,
            name,
            arguments,
        } => RULES.tool_call_answer(
            flavor,
            &[(id.as_str(), name.as_str(), arguments.as_str())],
            PROMPT_TOKENS,
            completion,
        ),
    }
}

/// The streamed answer to `decision` in `flavor`'s format, one string per event.
pub fn stream_answer(flavor: Flavor, decision: &Decision) -> Vec<String> {
    let completion = completion_tokens(decision);
    match decision {
        Decision::Text(text) => RULES.stream_events(flavor, &word_pieces(text), completion),
        Decision::Call {
            id,
            name,
            arguments,
        } => RULES.tool_call_stream_events(
            flavor,
            (id, name),
            &byte_pieces(arguments, ARGUMENT_PIECE),
            completion,
        ),
    }
}

/// The bytes of a streamed text piece, at most (JSON output has few spaces to cut at).
const TEXT_PIECE: usize = 16;

/// `text` in pieces of a word each, the spaces kept before the words, and words longer than
/// [`TEXT_PIECE`] bytes cut further (at least one piece).
fn word_pieces(text: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut start = 0;
    for (at, _) in text.match_indices(' ') {
        if at > start {
            words.push(&text[start..at]);
            start = at;
        }
    }
    words.push(&text[start..]);
    words
        .into_iter()
        .flat_map(|word| byte_pieces(word, TEXT_PIECE))
        .collect()
}

/// `text` in pieces of at most `size` bytes, cut on character boundaries (at least one piece).
fn byte_pieces(text: &str, size: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + size).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        pieces.push(&text[start..end]);
        start = end;
    }
    if pieces.is_empty() {
        pieces.push("");
    }
    pieces
}

/// The rules-mode routes: `POST /v1/chat/completions`, `POST /v1/messages`, `GET /healthz`.
pub fn app() -> Router {
    Router::new()
        .route(
            "/v1/chat/completions",
            post(|body: Bytes| async move { answer(Flavor::OpenAi, &body) }),
        )
        .route(
            "/v1/messages",
            post(|body: Bytes| async move { answer(Flavor::Anthropic, &body) }),
        )
        .route("/healthz", get(|| async { "ok" }))
}

/// Serves [`app`] on `listen` until the process ends, after `announce` was told the bound
/// address.
pub async fn serve(
    listen: SocketAddr,
    announce: impl FnOnce(SocketAddr) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    announce(listener.local_addr()?)?;
    axum::serve(listener, app()).await
}

fn answer(flavor: Flavor, body: &[u8]) -> Response {
    let request = match serde_json::from_slice::<Value>(body) {
        Ok(request @ Value::Object(_)) => request,
        _ => return bad_request(flavor, "the body is not a JSON object"),
    };
    if !request["messages"].is_array() {
        return bad_request(flavor, "messages must be an array");
    }
    let decision = match flavor {
        Flavor::OpenAi => decide_openai(&request),
        Flavor::Anthropic => decide_anthropic(&request),
    };
    if request["stream"] == true {
        let events = stream_answer(flavor, &decision);
        let body = futures_util::stream::iter(
            events
                .into_iter()
                .map(|event| Ok::<_, std::convert::Infallible>(Bytes::from(event))),
        );
        return (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/event-stream"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            Body::from_stream(body),
        )
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        whole_answer(flavor, &decision),
    )
        .into_response()
}

fn bad_request(flavor: Flavor, message: &str) -> Response {
    let error = match flavor {
        Flavor::OpenAi => json!({"error": {"message": message,
            "type": "invalid_request_error", "param": null, "code": null}}),
        Flavor::Anthropic => json!({"type": "error",
            "error": {"type": "invalid_request_error", "message": message}}),
    };
    (
        StatusCode::BAD_REQUEST,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        error.to_string(),
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    const WEATHER: &str = r#"{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}"#;

    fn openai_tools() -> Value {
        json!([serde_json::from_str::<Value>(WEATHER).unwrap()])
    }

    fn anthropic_tools() -> Value {
        json!([{"name": "get_weather", "input_schema": {"type": "object"}}])
    }

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": text})
    }

    fn call(id: &str, name: &str, arguments: &str) -> Decision {
        Decision::Call {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments: arguments.to_owned(),
        }
    }

    fn text(text: &str) -> Decision {
        Decision::Text(text.to_owned())
    }

    #[test]
    fn openai_calls_a_defined_tool() {
        let request = json!({"messages": [
            {"role": "system", "content": "be brief"},
            user(r#"call get_weather {"city": "Paris"}"#)], "tools": openai_tools()});
        assert_eq!(
            decide_openai(&request),
            call(
                "call_rules_get_weather",
                "get_weather",
                r#"{"city":"Paris"}"#
            )
        );
    }

    #[test]
    fn openai_echoes_without_the_tool_or_with_choice_none_or_bad_json() {
        for request in [
            json!({"messages": [user(r#"call get_weather {"city": "Paris"}"#)]}),
            json!({"messages": [user(r#"call get_time {"city": "Paris"}"#)],
                "tools": openai_tools()}),
            json!({"messages": [user(r#"call get_weather {"city": "Paris"}"#)],
                "tools": openai_tools(), "tool_choice": "none"}),
            json!({"messages": [user("call get_weather {nope")], "tools": openai_tools()}),
        ] {
            let Decision::Text(answer) = decide_openai(&request) else {
                panic!("a call for {request}");
            };
            assert!(answer.starts_with("Echo: call get_"), "{answer}");
        }
    }

    #[test]
    fn openai_answers_tool_results() {
        let request = json!({"messages": [
            user(r#"call get_weather {"city": "Paris"}"#),
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny, 21 C"},
            {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "dry"}]}],
            "tools": openai_tools()});
        assert_eq!(
            decide_openai(&request),
            text("The tool answered: sunny, 21 C; dry")
        );
    }

    #[test]
    fn openai_json_output_only_when_required() {
        for format in [
            json!({"type": "json_object"}),
            json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}),
        ] {
            let request = json!({"messages": [user(r#"json {"a": [1, 2]}"#)],
                "response_format": format});
            assert_eq!(decide_openai(&request), text(r#"{"a":[1,2]}"#));
        }
        let request = json!({"messages": [user(r#"json {"a": 1}"#)],
            "response_format": {"type": "text"}});
        assert_eq!(decide_openai(&request), text(r#"Echo: json {"a": 1}"#));
        let request = json!({"messages": [user("json [1]")],
            "response_format": {"type": "json_object"}});
        assert_eq!(decide_openai(&request), text("Echo: json [1]"));
    }

    #[test]
    fn openai_text_parts_are_joined() {
        let request = json!({"messages": [{"role": "user",
            "content": [{"type": "text", "text": "hello "}, {"type": "text", "text": "there"}]}]});
        assert_eq!(decide_openai(&request), text("Echo: hello there"));
    }

    #[test]
    fn anthropic_calls_a_defined_tool_unless_none() {
        let request = json!({"messages": [user(r#"call get_weather {"city": "Oslo"}"#)],
            "tools": anthropic_tools()});
        assert_eq!(
            decide_anthropic(&request),
            call(
                "toolu_rules_get_weather",
                "get_weather",
                r#"{"city":"Oslo"}"#
            )
        );
        let none = json!({"messages": [user(r#"call get_weather {"city": "Oslo"}"#)],
            "tools": anthropic_tools(), "tool_choice": {"type": "none"}});
        assert!(matches!(decide_anthropic(&none), Decision::Text(_)));
    }

    #[test]
    fn anthropic_answers_tool_results() {
        let request = json!({"messages": [
            user(r#"call get_weather {"city": "Oslo"}"#),
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1",
                "name": "get_weather", "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "snow"},
                {"type": "tool_result", "tool_use_id": "t2",
                    "content": [{"type": "text", "text": "-3 C"}]}]}],
            "tools": anthropic_tools()});
        assert_eq!(
            decide_anthropic(&request),
            text("The tool answered: snow; -3 C")
        );
        // A user text after the results is the input.
        let mut then_text = request.clone();
        then_text["messages"][2]["content"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "text", "text": "thanks"}));
        assert_eq!(decide_anthropic(&then_text), text("Echo: thanks"));
    }

    #[test]
    fn anthropic_json_output_through_the_forced_tool() {
        let forced = json!({"messages": [user(r#"json {"name": "Ada"}"#)],
            "tools": [{"name": "person", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "person"}});
        assert_eq!(
            decide_anthropic(&forced),
            call("toolu_rules_person", "person", r#"{"name":"Ada"}"#)
        );
        // With the caller's tools beside it, the output tool is the last one, and `any`.
        let any = json!({"messages": [user(r#"json {"name": "Ada"}"#)],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}},
                      {"name": "person", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any"}});
        assert_eq!(
            decide_anthropic(&any),
            call("toolu_rules_person", "person", r#"{"name":"Ada"}"#)
        );
        let not_forced = json!({"messages": [user(r#"json {"name": "Ada"}"#)],
            "tools": [{"name": "person", "input_schema": {"type": "object"}}]});
        assert_eq!(
            decide_anthropic(&not_forced),
            text(r#"Echo: json {"name": "Ada"}"#)
        );
    }

    #[test]
    fn pieces_cover_the_text() {
        assert_eq!(word_pieces("Echo: a b"), ["Echo:", " a", " b"]);
        assert_eq!(word_pieces(""), [""]);
        let json = r#"{"order_id":"A-17","items":["kettle"]}"#;
        let pieces = word_pieces(json);
        assert!(pieces.len() > 2, "{pieces:?}");
        assert!(pieces.iter().all(|p| p.len() <= TEXT_PIECE), "{pieces:?}");
        assert_eq!(pieces.concat(), json);
        let arguments = r#"{"city":"Zürich, Genève"}"#;
        let pieces = byte_pieces(arguments, ARGUMENT_PIECE);
        assert!(pieces.len() > 2, "{pieces:?}");
        assert_eq!(pieces.concat(), arguments);
        assert_eq!(byte_pieces("", 8), [""]);
    }

    async fn post(path: &str, body: Value) -> (StatusCode, String, String) {
        let request = axum::http::Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = app().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    /// The `data:` payloads of an event stream, `[DONE]` left out.
    fn data(body: &str) -> Vec<Value> {
        body.split("\n\n")
            .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
            .filter(|data| *data != "[DONE]")
            .map(|data| serde_json::from_str(data).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn openai_tool_call_whole_and_streamed() {
        let request = json!({"model": "m", "tools": openai_tools(),
            "messages": [user(r#"call get_weather {"city": "Paris"}"#)]});
        let (status, content_type, body) = post("/v1/chat/completions", request.clone()).await;
        assert_eq!(
            (status, content_type.as_str()),
            (StatusCode::OK, "application/json")
        );
        let answer: Value = serde_json::from_str(&body).unwrap();
        let choice = &answer["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], Value::Null);
        let called = &choice["message"]["tool_calls"][0];
        assert_eq!(called["id"], "call_rules_get_weather");
        assert_eq!(called["function"]["name"], "get_weather");
        assert_eq!(called["function"]["arguments"], r#"{"city":"Paris"}"#);

        let mut streamed = request;
        streamed["stream"] = true.into();
        let (status, content_type, body) = post("/v1/chat/completions", streamed).await;
        assert_eq!(
            (status, content_type.as_str()),
            (StatusCode::OK, "text/event-stream")
        );
        assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
        let (mut name, mut arguments, mut pieces, mut finish) =
            (String::new(), String::new(), 0, Vec::new());
        for chunk in data(&body) {
            let Some(choice) = chunk["choices"].get(0) else {
                continue;
            };
            if let Some(calls) = choice["delta"]["tool_calls"].as_array() {
                assert_eq!(calls[0]["index"], 0);
                name.push_str(calls[0]["function"]["name"].as_str().unwrap_or_default());
                arguments.push_str(calls[0]["function"]["arguments"].as_str().unwrap());
                pieces += 1;
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                finish.push(reason.to_owned());
            }
        }
        assert_eq!(name, "get_weather");
        assert_eq!(arguments, r#"{"city":"Paris"}"#);
        assert!(pieces > 2, "the arguments came in {pieces} chunks");
        assert_eq!(finish, ["tool_calls"]);
    }

    #[tokio::test]
    async fn openai_json_output_streamed_is_the_whole_json() {
        let request = json!({"model": "m", "stream": true,
            "response_format": {"type": "json_object"},
            "messages": [user(r#"json {"total": 3, "items": ["a b", "c"]}"#)]});
        let (_, _, body) = post("/v1/chat/completions", request).await;
        let text: String = data(&body)
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, r#"{"items":["a b","c"],"total":3}"#);
    }

    #[tokio::test]
    async fn anthropic_forced_tool_whole_and_streamed() {
        let request = json!({"model": "m", "max_tokens": 100,
            "tools": [{"name": "person", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "person"},
            "messages": [user(r#"json {"name": "Ada", "born": 1815}"#)]});
        let (status, _, body) = post("/v1/messages", request.clone()).await;
        assert_eq!(status, StatusCode::OK);
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["stop_reason"], "tool_use");
        assert_eq!(answer["content"][0]["type"], "tool_use");
        assert_eq!(answer["content"][0]["name"], "person");
        assert_eq!(
            answer["content"][0]["input"],
            json!({"name": "Ada", "born": 1815})
        );

        let mut streamed = request;
        streamed["stream"] = true.into();
        let (status, content_type, body) = post("/v1/messages", streamed).await;
        assert_eq!(
            (status, content_type.as_str()),
            (StatusCode::OK, "text/event-stream")
        );
        let events = data(&body);
        assert_eq!(events[0]["type"], "message_start");
        assert_eq!(events[1]["content_block"]["type"], "tool_use");
        assert_eq!(events[1]["content_block"]["name"], "person");
        let input: String = events
            .iter()
            .filter(|e| e["delta"]["type"] == "input_json_delta")
            .map(|e| e["delta"]["partial_json"].as_str().unwrap())
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&input).unwrap(),
            json!({"name": "Ada", "born": 1815})
        );
        assert!(
            events
                .iter()
                .any(|e| e["delta"]["stop_reason"] == "tool_use")
        );
        assert_eq!(events.last().unwrap()["type"], "message_stop");
    }

    #[tokio::test]
    async fn anthropic_text_streamed_in_pieces() {
        let request = json!({"model": "m", "max_tokens": 100, "stream": true,
            "messages": [user("where is my order")]});
        let (_, _, body) = post("/v1/messages", request).await;
        let pieces: Vec<String> = data(&body)
            .iter()
            .filter(|e| e["delta"]["type"] == "text_delta")
            .map(|e| e["delta"]["text"].as_str().unwrap().to_owned())
            .collect();
        assert!(pieces.len() > 2, "{pieces:?}");
        assert_eq!(pieces.concat(), "Echo: where is my order");
    }

    #[tokio::test]
    async fn a_body_that_is_not_a_request_is_a_400() {
        let (status, _, body) = post("/v1/messages", json!([1])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("invalid_request_error"), "{body}");
        let (status, _, _) = post("/v1/chat/completions", json!({"model": "m"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
