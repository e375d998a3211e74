//! No error message shows Rust syntax (issue 17: `…/invocations` with a `tool` turn answered
//! `role is Some("tool"); use user or assistant`).
//!
//! One gateway, driven through every 4xx that each route can be made to answer: the table below
//! pairs each request with the status it must get, so the walk cannot pass by answering
//! something else, and every message of every answer (the ErrorBody's `message`,
//! `messageWithParams`, `messageParams` and those of its `errors`; OpenAI's `error.message`; OAuth's
//! `error_description`) is checked for Rust's `Debug` forms.

use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use crate::harness::*;

const INVOCATIONS: &str = "/api/v2/ai/llm/gateway/invocations";
const TELEMETRY: &str = "/api/v2/ai/llm/gateway/telemetry";
const SUMMARY: &str = "/api/v2/ai/llm/gateway/telemetry/summary";
const AUDIT: &str = "/api/v2/ai/llm/gateway/audit-logs";
const CHAT: &str = "/v1/chat/completions";

/// Small limits so that the length checks can be reached with small requests.
const CONFIG: &str = "[limits]\nmax_input_chars = 100\nmax_text_chars = 50\nmax_metadata_key_chars = 16\nmax_conversation_messages = 3\n";

/// One request of the walk and the status it must get.
struct Case {
    request: RequestBuilder,
    status: u16,
    /// The message may hold `"`: the request sends a value holding one (repeated inside ‘…’), or
    /// the message names an ETag, an HTTP quoted string shown as the `ETag` header carries it.
    quotes_allowed: bool,
}

fn case(status: u16, request: RequestBuilder) -> Case {
    Case {
        request,
        status,
        quotes_allowed: false,
    }
}

/// What shows that a message was built from Rust's `Debug` output rather than written for people.
fn debug_syntax(message: &str, quotes_allowed: bool) -> Option<&'static str> {
    for (needle, why) in [
        ("Some(", "an Option's Debug form"),
        ("None", "an Option's Debug form"),
        ("Ok(", "a Result's Debug form"),
        ("Err(", "a Result's Debug form"),
        ("\\\"", "a string's Debug escape"),
        ("\\\\", "a string's Debug escape"),
        ("\\u{", "a string's Debug escape"),
        ("struct ", "a Rust type name"),
        ("expected u32", "a Rust type name"),
        ("expected i64", "a Rust type name"),
        ("expected f64", "a Rust type name"),
    ] {
        if message.contains(needle) {
            return Some(why);
        }
    }
    // A struct's Debug form: `Name { field: …`.
    let bytes = message.as_bytes();
    for (i, window) in bytes.windows(3).enumerate() {
        if window == b" { "
            && bytes[..i].last().is_some_and(u8::is_ascii_alphanumeric)
            && message[i + 3..].split_once(':').is_some_and(|(name, _)| {
                name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
            })
        {
            return Some("a struct's Debug form");
        }
    }
    if !quotes_allowed && message.contains('"') {
        return Some("a value quoted as a Rust or JSON string (values are quoted ‘so’)");
    }
    None
}

/// Every message of an error answer, whatever its shape: the ErrorBody (and its `errors`),
/// OpenAI's `{"error": {"message"}}` and OAuth's `error_description`.
fn messages(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(members) => {
            for (key, member) in members {
                match (key.as_str(), member) {
                    ("message" | "messageWithParams" | "error_description", Value::String(s)) => {
                        out.push(s.clone());
                    }
                    ("messageParams", Value::Object(params)) => {
                        out.extend(params.values().filter_map(Value::as_str).map(str::to_owned));
                    }
                    _ => messages(member, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| messages(item, out)),
        _ => {}
    }
}

#[tokio::test]
async fn error_messages_show_no_rust_debug_syntax() {
    let server = Server::start_with(Options::with_config(CONFIG));
    let admin = server.admin_token().await;
    let reader = server.scoped_token("ai:prompt:read").await;

    let (created, etag) = server
        .create_prompt(&admin, &prompt_body("plain-errors"))
        .await;
    let id = str_field(&created, "id");
    let mut open = prompt_body("plain-errors-open");
    open["chatCompletions"] = json!({"systemMessage": "prepend", "allowCallerSettings": true});
    server.create_prompt(&admin, &open).await;
    let answer = server
        .post(
            INVOCATIONS,
            Some(&admin),
            &json!({"promptId": id, "userInput": "hello"}),
        )
        .await
        .ok(200);
    let response_id = str_field(&answer, "responseId");
    let feedback = format!("{INVOCATIONS}/{response_id}/feedback");
    let unknown_id = "0190a1b2-0000-7000-8000-000000000001";

    let post = |path: &str, body: Value| {
        server
            .request(Method::POST, path)
            .bearer_auth(&admin)
            .json(&body)
    };
    let get = |path: &str| server.request(Method::GET, path).bearer_auth(&admin);
    let raw = |method: Method, path: &str, content_type: Option<&str>, body: &str| {
        let builder = server
            .request(method, path)
            .bearer_auth(&admin)
            .body(body.to_owned());
        match content_type {
            Some(t) => builder.header("Content-Type", t),
            None => builder,
        }
    };
    let invoke = |extra: Value| {
        let mut body = json!({"promptId": id, "userInput": "hello"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        post(INVOCATIONS, body)
    };
    let turn = |role: Value| invoke(json!({"messages": [{"role": role, "content": "earlier"}]}));
    let chat = |model: &str, extra: Value| {
        let mut body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        post(CHAT, body)
    };
    let chat_turn = |message: Value| {
        post(
            CHAT,
            json!({"model": "prompt:plain-errors", "messages": [message, {"role": "user", "content": "hi"}]}),
        )
    };
    let create = |extra: Value| {
        let mut body = prompt_body("plain-errors-new");
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        post(PROMPTS, body)
    };
    let put = |body: Value, if_match: Option<&str>| {
        let builder = server
            .request(Method::PUT, &prompt_path(&id))
            .bearer_auth(&admin)
            .json(&body);
        match if_match {
            Some(tag) => builder.header("If-Match", tag),
            None => builder,
        }
    };
    let token = |form: &[(&str, &str)], basic: Option<(&str, &str)>| {
        let builder = server.request(Method::POST, "/oauth/token").form(form);
        match basic {
            Some((user, secret)) => builder.basic_auth(user, Some(secret)),
            None => builder,
        }
    };
    let admin_basic = Some((server.admin_id.as_str(), server.admin_secret.as_str()));
    let long = "x".repeat(120);

    let allow_quotes = |mut case: Case| {
        case.quotes_allowed = true;
        case
    };
    let cases = vec![
        // Invocations: roles (the finding itself), types, missing fields, limits.
        case(400, turn(json!("tool"))),
        case(400, turn(json!("function"))),
        case(400, turn(json!(""))),
        case(400, turn(json!(null))),
        case(400, turn(json!(5))),
        case(400, invoke(json!({"messages": [{"content": "no role"}]}))),
        case(400, invoke(json!({"messages": [{"role": "user"}]}))),
        allow_quotes(case(400, turn(json!("to\"ol")))),
        case(400, invoke(json!({"messages": "earlier"}))),
        case(400, invoke(json!({"options": {"maxOutputTokens": "5"}}))),
        case(400, invoke(json!({"options": {"maxOutputTokens": -1}}))),
        case(400, invoke(json!({"options": {"maxOutputTokens": 1.5}}))),
        case(400, invoke(json!({"options": {"stream": "yes"}}))),
        case(400, invoke(json!({"options": 5}))),
        case(400, invoke(json!({"metadata": {"k": 1}}))),
        case(400, invoke(json!({"metadata": ["k"]}))),
        case(400, invoke(json!({"promptId": 42}))),
        case(400, invoke(json!({"userInput": null, "promptId": null}))),
        case(400, post(INVOCATIONS, json!({}))),
        case(400, invoke(json!({"userInput": long}))),
        case(400, invoke(json!({"sessionId": "s".repeat(1000)}))),
        case(400, invoke(json!({"metadata": {"k".repeat(40): "v"}}))),
        case(
            400,
            invoke(json!({"messages": [
                {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]})),
        ),
        case(404, invoke(json!({"version": "1.x"}))),
        case(404, invoke(json!({"version": "9.9.9"}))),
        case(404, invoke(json!({"promptId": unknown_id}))),
        case(404, invoke(json!({"promptId": "not-a-uuid"}))),
        // Bodies that are not JSON objects, or not JSON.
        case(
            400,
            raw(
                Method::POST,
                INVOCATIONS,
                Some("application/json"),
                "{\"promptId\": ",
            ),
        ),
        case(
            400,
            raw(
                Method::POST,
                INVOCATIONS,
                Some("application/json"),
                "{\"promptId\" 1}",
            ),
        ),
        case(
            400,
            raw(
                Method::POST,
                INVOCATIONS,
                Some("application/json"),
                "[1, 2]",
            ),
        ),
        case(
            400,
            raw(Method::POST, INVOCATIONS, Some("application/json"), ""),
        ),
        case(
            415,
            raw(Method::POST, INVOCATIONS, Some("text/plain"), "{}"),
        ),
        case(415, raw(Method::POST, INVOCATIONS, None, "{}")),
        case(
            400,
            raw(
                Method::POST,
                INVOCATIONS,
                Some("application/json"),
                &format!("{{\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40)),
            ),
        ),
        case(
            413,
            raw(
                Method::POST,
                INVOCATIONS,
                Some("application/json"),
                &format!("{{\"userInput\": \"{}\"}}", "x".repeat(1024 * 1024 + 10)),
            ),
        ),
        // Authentication and scopes.
        case(401, server.request(Method::GET, PROMPTS)),
        case(
            401,
            server
                .request(Method::GET, PROMPTS)
                .bearer_auth("not-a-token"),
        ),
        case(
            403,
            server
                .request(Method::POST, INVOCATIONS)
                .bearer_auth(&reader)
                .json(&json!({})),
        ),
        case(
            403,
            server.request(Method::GET, TELEMETRY).bearer_auth(&reader),
        ),
        case(
            403,
            server.request(Method::GET, CLIENTS).bearer_auth(&reader),
        ),
        // Prompts: creation.
        case(400, create(json!({"name": 42}))),
        case(400, create(json!({"name": ""}))),
        case(400, create(json!({"temperature": "hot"}))),
        case(400, create(json!({"temperature": 5}))),
        case(400, create(json!({"version": "1.0"}))),
        case(400, create(json!({"version": 1}))),
        case(400, create(json!({"modelEndpointRef": "nowhere/none"}))),
        case(
            400,
            create(json!({"safetyGuardrails": {"contentFiltering": ["pii", "tool"]}})),
        ),
        case(
            400,
            create(json!({"safetyGuardrails": {"blockedCategories": ["gossip"]}})),
        ),
        case(
            400,
            create(json!({"safetyGuardrails": {"maxTokens": "many"}})),
        ),
        case(400, create(json!({"safetyGuardrails": {"maxTokens": -3}}))),
        case(400, create(json!({"safetyGuardrails": {"maxTokens": 1}}))),
        case(400, create(json!({"safetyGuardrails": "strict"}))),
        case(400, create(json!({"fewShotExamples": [{"input": "q"}]}))),
        case(
            400,
            create(json!({"fewShotExamples": [{"input": 1, "output": 2}]})),
        ),
        case(400, create(json!({"fewShotExamples": {"input": "q"}}))),
        case(
            400,
            create(json!({"trafficDistribution": {"splitStrategy": "round-robin"}})),
        ),
        case(
            400,
            create(json!({"trafficDistribution": {"defaultVersion": "2.0.0"}})),
        ),
        case(
            400,
            create(
                json!({"trafficDistribution": {"versions": [{"version": "1.0.0", "weight": "half"}]}}),
            ),
        ),
        case(
            400,
            create(json!({"chatCompletions": {"systemMessage": "merge"}})),
        ),
        case(
            400,
            create(json!({"chatCompletions": {"allowCallerSettings": "yes"}})),
        ),
        case(409, post(PROMPTS, prompt_body("plain-errors"))),
        // Prompts: reading.
        case(400, get(&format!("{PROMPTS}?status=DELETED"))),
        case(400, get(&format!("{PROMPTS}?pageSize=abc"))),
        case(400, get(&format!("{PROMPTS}?pageSize=0"))),
        case(400, get(&format!("{PROMPTS}?cursor=garbage"))),
        case(404, get(&prompt_path("not-a-uuid"))),
        case(404, get(&prompt_path(unknown_id))),
        case(404, get(&version_path(&id, "1.x"))),
        case(404, get(&version_path(&id, "9.9.9"))),
        case(400, get(&format!("{}?cursor=garbage", versions_path(&id)))),
        // Prompts: changes.
        allow_quotes(case(
            412,
            put(
                json!({"systemPrompt": "changed", "version": "1.1.0"}),
                Some("\"stale-1\""),
            ),
        )),
        case(
            409,
            put(
                json!({"systemPrompt": "different", "version": "1.0.0"}),
                Some(&etag),
            ),
        ),
        case(
            400,
            put(json!({"systemPrompt": "changed", "version": "one"}), None),
        ),
        case(
            400,
            put(
                json!({"trafficDistribution": {"versions": [{"version": "1.0.0", "weight": 0.5}]}}),
                None,
            ),
        ),
        case(
            400,
            put(
                json!({"trafficDistribution": {"versions": [{"version": "1.0.0", "weight": -1}]}}),
                None,
            ),
        ),
        case(
            400,
            put(
                json!({"trafficDistribution": {"versions": [{"version": "7.0.0", "weight": 1}]}}),
                None,
            ),
        ),
        case(
            400,
            put(
                json!({"trafficDistribution": {"versions": [{"version": "bad", "weight": 1}]}}),
                None,
            ),
        ),
        case(
            400,
            put(
                json!({"trafficDistribution": {"versions": [{"weight": 1}]}}),
                None,
            ),
        ),
        case(
            400,
            put(
                json!({"trafficDistribution": {"splitStrategy": "all"}}),
                None,
            ),
        ),
        case(400, put(json!({"trafficDistribution": [1]}), None)),
        case(
            400,
            raw(
                Method::PUT,
                &prompt_path(&id),
                Some("application/json"),
                "{\"systemPrompt\": ",
            ),
        ),
        case(
            404,
            server
                .request(Method::DELETE, &prompt_path(unknown_id))
                .bearer_auth(&admin),
        ),
        case(
            405,
            server
                .request(Method::PATCH, &prompt_path(&id))
                .bearer_auth(&admin),
        ),
        case(404, get("/api/v2/ai/llm/gateway/nothing-here")),
        // The OpenAI-compatible front door (OpenAI's error shape).
        case(
            400,
            post(
                CHAT,
                json!({"messages": [{"role": "user", "content": "hi"}]}),
            ),
        ),
        case(400, post(CHAT, json!({"model": 5}))),
        case(404, chat("gpt-4o", json!({}))),
        case(404, chat("prompt:nothing", json!({}))),
        case(404, chat("prompt:plain-errors@9.9.9", json!({}))),
        case(400, chat_turn(json!({"role": "tool", "content": "x"}))),
        case(400, chat_turn(json!({"role": "function", "content": "x"}))),
        case(400, chat_turn(json!({"role": "", "content": "x"}))),
        case(400, chat_turn(json!({"content": "x"}))),
        case(
            400,
            chat_turn(
                json!({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}),
            ),
        ),
        case(
            400,
            chat_turn(json!({"role": "user", "content": [{"text": "untyped"}]})),
        ),
        case(400, chat_turn(json!({"role": "user", "content": 5}))),
        case(400, chat("prompt:plain-errors", json!({"messages": "hi"}))),
        case(
            400,
            chat(
                "prompt:plain-errors",
                json!({"messages": [{"role": "assistant", "content": "hi"}]}),
            ),
        ),
        case(
            400,
            chat(
                "prompt:plain-errors",
                json!({"response_format": {"type": "yaml"}}),
            ),
        ),
        case(
            400,
            chat(
                "prompt:plain-errors",
                json!({"tools": [{"type": "function"}]}),
            ),
        ),
        case(
            400,
            chat("prompt:plain-errors", json!({"tool_choice": "required"})),
        ),
        case(400, chat("prompt:plain-errors", json!({"n": 2}))),
        case(400, chat("prompt:plain-errors", json!({"temperature": 7}))),
        case(400, chat("prompt:plain-errors", json!({"max_tokens": "5"}))),
        case(400, chat("prompt:plain-errors", json!({"max_tokens": 0}))),
        case(400, chat("prompt:plain-errors", json!({"stream": "yes"}))),
        case(
            400,
            chat(
                "prompt:plain-errors",
                json!({"stream_options": {"include_usage": true}}),
            ),
        ),
        case(
            400,
            chat("prompt:plain-errors", json!({"metadata": {"k": 1}})),
        ),
        case(
            400,
            chat(
                "prompt:plain-errors-open",
                json!({"model_endpoint": "nowhere/none"}),
            ),
        ),
        case(404, get("/v1/models/prompt:nothing")),
        case(404, get("/v1/models/gpt-4o")),
        case(401, server.request(Method::GET, "/v1/models")),
        // OAuth (RFC 6749 bodies; few failures, below the per-address lockout).
        case(400, token(&[], admin_basic)),
        case(400, token(&[("grant_type", "password")], admin_basic)),
        case(
            400,
            token(
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", "ai:prompt:read tool"),
                ],
                admin_basic,
            ),
        ),
        case(
            401,
            token(
                &[("grant_type", "client_credentials")],
                Some((server.admin_id.as_str(), "wrong")),
            ),
        ),
        // OAuth clients.
        case(400, post(CLIENTS, json!({"name": "c", "scopes": ["tool"]}))),
        case(400, post(CLIENTS, json!({"name": "", "scopes": ["admin"]}))),
        case(400, post(CLIENTS, json!({"name": "c", "scopes": "admin"}))),
        case(400, post(CLIENTS, json!({"name": "c"}))),
        case(404, post(&format!("{CLIENTS}/nobody/disable"), json!({}))),
        // Feedback.
        case(400, post(&feedback, json!({"score": "high"}))),
        case(400, post(&feedback, json!({"score": 2}))),
        case(400, post(&feedback, json!({"score": [1]}))),
        case(400, post(&feedback, json!({}))),
        case(400, post(&feedback, json!({"score": 1, "comment": long}))),
        case(400, post(&feedback, json!({"score": 1, "comment": 5}))),
        case(
            404,
            post(
                &format!("{INVOCATIONS}/inv-unknown/feedback"),
                json!({"score": 1}),
            ),
        ),
        // Audit log: appending and reading.
        case(400, post(AUDIT, json!({}))),
        case(400, post(AUDIT, json!({"action": 5}))),
        case(400, post(AUDIT, json!({"action": "PROMPT_CREATED"}))),
        case(
            400,
            post(
                AUDIT,
                json!({"action": "REVIEWED", "timestamp": "yesterday"}),
            ),
        ),
        case(
            400,
            post(
                AUDIT,
                json!({"action": "REVIEWED", "promptId": "not-a-uuid"}),
            ),
        ),
        case(
            400,
            post(AUDIT, json!({"action": "REVIEWED", "details": [1]})),
        ),
        case(
            400,
            post(AUDIT, json!({"action": "REVIEWED", "metadata": "x"})),
        ),
        case(
            404,
            post(AUDIT, json!({"action": "REVIEWED", "promptId": unknown_id})),
        ),
        case(400, get(&format!("{AUDIT}?startTime=yesterday"))),
        case(400, get(&format!("{AUDIT}?promptId=x"))),
        case(400, get(&format!("{AUDIT}?pageSize=9999"))),
        case(400, get(&format!("{AUDIT}?cursor=garbage"))),
        case(400, get(&format!("{AUDIT}/abc"))),
        case(404, get(&format!("{AUDIT}/999999"))),
        case(400, get(&format!("{AUDIT}/1/proof?treeSize=x"))),
        case(400, get(&format!("{AUDIT}/consistency?from=x&to=2"))),
        case(400, get(&format!("{AUDIT}/consistency"))),
        case(
            405,
            server
                .request(Method::DELETE, &format!("{AUDIT}/1"))
                .bearer_auth(&admin),
        ),
        // Telemetry queries (query string or JSON body).
        case(400, get(&format!("{TELEMETRY}?status=OK"))),
        case(400, get(&format!("{TELEMETRY}?startTime=yesterday"))),
        case(
            400,
            get(&format!(
                "{TELEMETRY}?startTime=2026-01-02T00:00:00Z&endTime=2026-01-01T00:00:00Z"
            )),
        ),
        case(400, get(&format!("{TELEMETRY}?promptId=x"))),
        case(400, get(&format!("{TELEMETRY}?pageSize=1000"))),
        case(400, get(&format!("{TELEMETRY}?cursor=garbage"))),
        case(
            400,
            raw(
                Method::GET,
                TELEMETRY,
                Some("application/json"),
                "{\"status\": ",
            ),
        ),
        case(
            400,
            raw(Method::GET, TELEMETRY, Some("application/json"), "[1]"),
        ),
        case(400, get(&format!("{SUMMARY}?groupBy=model"))),
        case(400, get(&format!("{SUMMARY}?status=nope"))),
        // Model endpoints and the console.
        case(401, server.request(Method::GET, MODEL_ENDPOINTS)),
        case(
            404,
            server.request(Method::GET, "/console/assets/nothing.js"),
        ),
    ];

    let mut checked = 0;
    let mut failures = Vec::new();
    let total = cases.len();
    for Case {
        request,
        status,
        quotes_allowed,
    } in cases
    {
        let resp = server.send(request).await;
        if resp.status != status {
            failures.push(format!("expected {status}: {resp}"));
            continue;
        }
        let body: Value = match serde_json::from_str(&resp.text) {
            Ok(body) => body,
            Err(_) => {
                failures.push(format!("not JSON: {resp}"));
                continue;
            }
        };
        let mut found = Vec::new();
        messages(&body, &mut found);
        if found.is_empty() {
            failures.push(format!("no message: {resp}"));
        }
        for message in &found {
            checked += 1;
            if let Some(why) = debug_syntax(message, quotes_allowed) {
                failures.push(format!("{why} in {message:?}: {}", resp.what));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Each case gives at least a message and its template, most several.
    assert!(total >= 150, "only {total} cases");
    assert!(
        checked >= 2 * total,
        "only {checked} messages checked in {total} cases"
    );
}

#[test]
fn the_checker_refuses_what_the_finding_showed() {
    assert!(debug_syntax("role is Some(\"tool\"); use user or assistant", false).is_some());
    assert!(debug_syntax("role is None; use user or assistant", false).is_some());
    assert!(debug_syntax("role is \"tool\"; use user or assistant", false).is_some());
    assert!(debug_syntax("role is \"to\\\"ol\"", true).is_some());
    assert!(debug_syntax("got Decision { allowed: false }", false).is_some());
    assert!(debug_syntax("n must be a whole number, expected u32", false).is_some());
    assert!(debug_syntax("role is ‘tool’; use user or assistant", false).is_none());
    assert!(debug_syntax("role is ‘to\"ol’; use user or assistant", true).is_none());
    assert!(debug_syntax("only {\"type\": \"text\"}", false).is_some());
    assert!(
        debug_syntax(
            "the body nests 33 levels; the limit is 32 ([limits] max_json_depth)",
            false
        )
        .is_none()
    );
}
