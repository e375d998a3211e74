//! The OpenAI-compatible front door (`/v1/chat/completions`, `/v1/models`) over HTTP: OpenAI's
//! answer, chunk and error shapes; prompt selection by name and pinned version; sticky routing
//! by `user` or the `promptgate-session-id` header (the same assignment as `…/invocations`);
//! the per-prompt policy (replace or prepend the caller's system message, caller settings)
//! checked at a recording fake upstream; guardrails, telemetry and audit as for invocations.
//! The official SDKs themselves are run by `scripts/openai-sdk-test`.

use serde_json::{Value, json};

use crate::fake_upstream::*;
use crate::harness::*;

const CHAT: &str = "/v1/chat/completions";
const MODELS: &str = "/v1/models";
const OFFLINE: &str = "[promptgate offline provider — no model was called]";
const SYSTEM_A: &str = "You are a helpful customer support agent.";
const SYSTEM_B: &str = "You are a terse support agent for parcels.";

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

/// A gateway with prompt `name` on `builtin/echo`: 1.0.0 (`SYSTEM_A`) and 1.1.0 (`SYSTEM_B`),
/// with `split` as its traffic distribution.
async fn two_versions(server: &Server, token: &str, name: &str, split: Value) -> String {
    let mut body = prompt_body(name);
    body["systemPrompt"] = json!(SYSTEM_A);
    let (created, _) = server.create_prompt(token, &body).await;
    let id = str_field(&created, "id");
    server
        .put(
            &prompt_path(&id),
            token,
            &json!({"systemPrompt": SYSTEM_B, "version": "1.1.0"}),
            None,
        )
        .await
        .ok(200);
    server
        .put(
            &prompt_path(&id),
            token,
            &json!({"trafficDistribution": split}),
            None,
        )
        .await
        .ok(200);
    id
}

/// `POST /v1/chat/completions` with `token`.
async fn chat(server: &Server, token: &str, body: &Value) -> Resp {
    server.post(CHAT, Some(token), body).await
}

#[track_caller]
fn openai_error(resp: &Resp, status: u16, kind: &str, code: &str) -> Value {
    assert_eq!(resp.status, status, "{resp}");
    let body = resp.json();
    let error = &body["error"];
    assert_eq!(error["type"], kind, "{body}");
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        error.get("param").is_some(),
        "param must be present: {body}"
    );
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "only `error`: {body}"
    );
    body
}

#[tokio::test]
async fn a_plain_completion_answers_in_openai_shape_and_leaves_telemetry() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server
        .create_prompt(&token, &prompt_body("support_agent"))
        .await;
    let id = str_field(&created, "id");
    let resp = chat(
        &server,
        &token,
        &json!({"model": "prompt:support_agent", "messages": user("Where is my parcel?")}),
    )
    .await;
    let body = resp.ok(200);
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].as_i64().is_some_and(|t| t > 1_700_000_000));
    assert_eq!(body["model"], "echo", "the endpoint's model: {body}");
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(
        choice["message"]["content"],
        format!("{OFFLINE} You said: Where is my parcel?")
    );
    assert_eq!(choice["finish_reason"], "stop");
    let usage = &body["usage"];
    let (p, c) = (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    assert!(p > 0 && c > 0, "{usage}");
    assert_eq!(usage["total_tokens"].as_u64(), Some(p + c));
    assert_eq!(resp.header("x-prompt-version").as_deref(), Some("1.0.0"));
    let report = &body["promptgate"];
    assert_eq!(report["promptId"], id.as_str());
    assert_eq!(report["version"], "1.0.0");
    let response_id = str_field(&body, "id");
    assert_eq!(report["responseId"], response_id.as_str());
    assert!(response_id.starts_with("inv-"), "{response_id}");

    // The same telemetry as an invocation, under the same id, usable for feedback.
    let telemetry = || async {
        let page = server
            .get_query(&format!("{GW}/telemetry"), &token, &[("promptId", &id)])
            .await
            .ok(200);
        page["entities"]
            .as_array()
            .and_then(|e| e.first().cloned())
            .filter(|e| e["id"] == response_id.as_str())
    };
    assert!(
        eventually(HANG_GUARD, || async { telemetry().await.is_some() }).await,
        "no telemetry record {response_id}"
    );
    let entity = telemetry().await.unwrap();
    assert_eq!(entity["status"], "SUCCESS");
    assert_eq!(entity["tokenUsage"]["total"].as_u64(), Some(p + c));
    server
        .post(
            &format!("{GW}/invocations/{response_id}/feedback"),
            Some(&token),
            &json!({"score": true}),
        )
        .await
        .ok(201);
}

#[tokio::test]
async fn a_pinned_version_serves_whatever_the_split_says_and_unknown_ones_are_model_not_found() {
    let server = Server::start();
    let token = server.admin_token().await;
    two_versions(
        &server,
        &token,
        "pinned",
        json!({"versions": [{"version": "1.1.0", "weight": 1.0}], "defaultVersion": "1.1.0"}),
    )
    .await;
    for (model, version) in [
        ("prompt:pinned", "1.1.0"),
        ("prompt:pinned@1.0.0", "1.0.0"),
        ("prompt:pinned@1.1.0", "1.1.0"),
    ] {
        let resp = chat(
            &server,
            &token,
            &json!({"model": model, "messages": user("hi")}),
        )
        .await;
        let body = resp.ok(200);
        assert_eq!(body["promptgate"]["version"], version, "{model}");
        assert_eq!(resp.header("x-prompt-version").as_deref(), Some(version));
    }
    for model in [
        "prompt:pinned@9.9.9",
        "prompt:pinned@not-a-version",
        "prompt:nobody",
        "gpt-4o",
        "prompt:",
    ] {
        let resp = chat(
            &server,
            &token,
            &json!({"model": model, "messages": user("hi")}),
        )
        .await;
        let body = openai_error(&resp, 404, "invalid_request_error", "model_not_found");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(model),
            "{body}"
        );
    }
}

#[tokio::test]
async fn the_session_key_is_the_header_or_user_and_routes_like_invocations() {
    let server = Server::start();
    let token = server.admin_token().await;
    let id = two_versions(
        &server,
        &token,
        "sticky",
        json!({"versions": [{"version": "1.0.0", "weight": 0.5}, {"version": "1.1.0", "weight": 0.5}],
               "splitStrategy": "sticky"}),
    )
    .await;
    let mut seen = std::collections::BTreeSet::new();
    for n in 0..24 {
        let session = format!("conversation-{n}");
        let via_invocations = server
            .post(
                INVOCATIONS,
                Some(&token),
                &json!({"promptId": id, "userInput": "hi", "sessionId": session}),
            )
            .await
            .ok(200)["version"]
            .clone();
        let by_user = chat(
            &server,
            &token,
            &json!({"model": "prompt:sticky", "messages": user("hi"), "user": session}),
        )
        .await
        .ok(200)["promptgate"]["version"]
            .clone();
        let by_header = server
            .send(
                server
                    .request(reqwest::Method::POST, CHAT)
                    .bearer_auth(&token)
                    .header("promptgate-session-id", &session)
                    .json(&json!({"model": "prompt:sticky", "messages": user("hi"),
                                  "user": "someone-else-entirely"})),
            )
            .await
            .ok(200)["promptgate"]["version"]
            .clone();
        assert_eq!(by_user, via_invocations, "{session}");
        assert_eq!(by_header, via_invocations, "the header wins: {session}");
        seen.insert(via_invocations.to_string());
    }
    assert_eq!(seen.len(), 2, "a 50/50 split serves both: {seen:?}");
}

#[tokio::test]
async fn streaming_sends_openai_chunks_then_usage_then_done() {
    let server = Server::start();
    let token = server.admin_token().await;
    server.create_prompt(&token, &prompt_body("streamer")).await;
    let raw = server
        .request(reqwest::Method::POST, CHAT)
        .bearer_auth(&token)
        .json(
            &json!({"model": "prompt:streamer", "messages": user("Stream me."),
                      "stream": true, "stream_options": {"include_usage": true}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    assert_eq!(
        raw.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    assert_eq!(
        raw.headers()
            .get("x-prompt-version")
            .and_then(|v| v.to_str().ok()),
        Some("1.0.0")
    );
    let mut reader = SseReader::new(raw);
    let mut chunks = Vec::new();
    let mut done = false;
    while let Some(event) = reader.next().await {
        assert!(!done, "nothing after [DONE]: {}", reader.raw);
        assert!(
            event.event.is_empty(),
            "OpenAI sends unnamed events: {event:?}"
        );
        if event.data == "[DONE]" {
            done = true;
            continue;
        }
        chunks.push(event.json());
    }
    assert!(done, "the stream ends with [DONE]: {}", reader.raw);
    let id = chunks[0]["id"].clone();
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk", "{chunk}");
        assert_eq!(chunk["id"], id, "one id for the whole answer");
        assert!(
            chunk.get("usage").is_some(),
            "usage (null) on every chunk with include_usage: {chunk}"
        );
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, format!("{OFFLINE} You said: Stream me."));
    let (usage_chunk, rest) = chunks.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]), "{usage_chunk}");
    let usage = &usage_chunk["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        )
    );
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0);
    let finishing = rest.last().unwrap();
    assert_eq!(finishing["choices"][0]["finish_reason"], "stop");
    assert_eq!(finishing["promptgate"]["version"], "1.0.0");
    assert!(
        rest[..rest.len() - 1]
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null()),
        "only the last content chunk finishes"
    );

    // Without include_usage: no usage key anywhere, still [DONE].
    let raw = server
        .request(reqwest::Method::POST, CHAT)
        .bearer_auth(&token)
        .json(&json!({"model": "prompt:streamer", "messages": user("again"), "stream": true}))
        .send()
        .await
        .unwrap();
    let mut reader = SseReader::new(raw);
    let mut last = String::new();
    while let Some(event) = reader.next().await {
        if event.data != "[DONE]" {
            assert!(event.json().get("usage").is_none(), "{event:?}");
        }
        last = event.data;
    }
    assert_eq!(last, "[DONE]");
}

#[tokio::test]
async fn errors_take_openai_shape_with_openai_codes() {
    let server = Server::start();
    let admin = server.admin_token().await;
    server.create_prompt(&admin, &prompt_body("errs")).await;
    let ok_body = json!({"model": "prompt:errs", "messages": user("hi")});

    openai_error(
        &server.post(CHAT, None, &ok_body).await,
        401,
        "invalid_request_error",
        "invalid_api_key",
    );
    openai_error(
        &server.post(CHAT, Some("sk-not-a-token"), &ok_body).await,
        401,
        "invalid_request_error",
        "invalid_api_key",
    );
    openai_error(
        &server.get(MODELS, Some("sk-not-a-token")).await,
        401,
        "invalid_request_error",
        "invalid_api_key",
    );
    let reader = server.scoped_token("ai:prompt:read").await;
    openai_error(
        &chat(&server, &reader, &ok_body).await,
        403,
        "permission_error",
        "insufficient_permissions",
    );
    openai_error(
        &server.get(MODELS, Some(&reader)).await,
        403,
        "permission_error",
        "insufficient_permissions",
    );

    let cases = [
        (json!({"model": "prompt:errs"}), "messages"),
        (json!({"messages": user("hi")}), "model"),
        (
            json!({"model": "prompt:errs", "messages": [{"role": "user", "content": "a"},
                                                       {"role": "assistant", "content": "b"}]}),
            "messages",
        ),
        (
            json!({"model": "prompt:errs", "messages": [{"role": "tool", "content": "a"},
                                                       {"role": "user", "content": "b"}]}),
            "messages[0].tool_call_id",
        ),
        (
            json!({"model": "prompt:errs", "messages": [{"role": "function", "content": "a"},
                                                       {"role": "user", "content": "b"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "prompt:errs", "messages": [{"role": "user", "content":
                [{"type": "image_url", "image_url": {"url": "http://x"}}]}]}),
            "messages[0].content",
        ),
        (
            json!({"model": "prompt:errs", "messages": user("hi"), "n": 2}),
            "n",
        ),
        (
            json!({"model": "prompt:errs", "messages": user("hi"), "temperature": 3}),
            "temperature",
        ),
        (
            json!({"model": "prompt:errs", "messages": user("hi"),
                   "tools": [{"type": "function", "function": {"name": "f"}},
                             {"type": "function", "function": {"name": "f"}}]}),
            "tools[1].function.name",
        ),
        (
            json!({"model": "prompt:errs", "messages": user("hi"),
                   "functions": [{"name": "f"}]}),
            "functions",
        ),
        (
            json!({"model": "prompt:errs", "messages": user("hi"),
                   "stream_options": {"include_usage": true}}),
            "stream_options",
        ),
        (
            json!({"model": "prompt:errs", "messages": user("hi"), "max_tokens": 0}),
            "max_tokens",
        ),
        (
            json!({"model": "prompt:errs", "messages": [
                {"role": "system", "content": "x"},
                {"role": "user", "content": "a".repeat(200_001)}]}),
            "messages[1].content",
        ),
        (
            json!({"model": "prompt:errs", "messages": user("hi"), "user": "u".repeat(300)}),
            "user",
        ),
    ];
    for (body, param) in cases {
        let resp = chat(&server, &admin, &body).await;
        let error = openai_error(&resp, 400, "invalid_request_error", "invalid_value");
        assert_eq!(error["error"]["param"], param, "{error}");
    }
    // A body that is not JSON, and the wrong content type.
    let raw = |content_type: &'static str, body: &'static str| {
        server
            .request(reqwest::Method::POST, CHAT)
            .bearer_auth(&admin)
            .header("content-type", content_type)
            .body(body)
    };
    let resp = server.send(raw("application/json", "{not json")).await;
    openai_error(&resp, 400, "invalid_request_error", "bad_request");
    let resp = server.send(raw("text/plain", "hi")).await;
    assert_eq!(resp.status, 415, "{resp}");
    assert!(resp.json()["error"]["message"].is_string());
    // An unknown /v1 path.
    openai_error(
        &server.get("/v1/embeddings", Some(&admin)).await,
        404,
        "invalid_request_error",
        "unknown_url",
    );
    // The contract's own paths keep the contract's shape.
    server.get(PROMPTS, None).await.error(401, "unauthorized");
}

#[tokio::test]
async fn models_lists_active_prompts_and_retrieves_one() {
    let server = Server::start();
    let token = server.admin_token().await;
    server.create_prompt(&token, &prompt_body("alpha")).await;
    let (beta, _) = server.create_prompt(&token, &prompt_body("beta")).await;
    server
        .delete(&prompt_path(&str_field(&beta, "id")), Some(&token))
        .await
        .ok(200);
    let list = server.get(MODELS, Some(&token)).await.ok(200);
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["prompt:alpha"], "archived prompts are not models");
    let model = &list["data"][0];
    assert_eq!(model["object"], "model");
    assert_eq!(model["owned_by"], "promptgate");
    assert!(model["created"].as_i64().is_some_and(|t| t > 1_700_000_000));

    let one = server
        .get(&format!("{MODELS}/prompt:alpha"), Some(&token))
        .await
        .ok(200);
    assert_eq!(one["id"], "prompt:alpha");
    let pinned = server
        .get(&format!("{MODELS}/prompt:alpha@1.0.0"), Some(&token))
        .await
        .ok(200);
    assert_eq!(pinned["id"], "prompt:alpha@1.0.0");
    for missing in ["prompt:beta", "prompt:alpha@2.0.0", "gpt-4o"] {
        openai_error(
            &server
                .get(&format!("{MODELS}/{missing}"), Some(&token))
                .await,
            404,
            "invalid_request_error",
            "model_not_found",
        );
    }
    // An archived prompt is not served either.
    openai_error(
        &chat(
            &server,
            &token,
            &json!({"model": "prompt:beta", "messages": user("hi")}),
        )
        .await,
        404,
        "invalid_request_error",
        "model_not_found",
    );
}

/// The policy at the upstream: what the provider is sent under replace and prepend, and whether
/// the caller's temperature wins.
#[tokio::test]
async fn the_prompt_policy_decides_the_system_message_and_caller_settings() {
    let answer = Flavor::OpenAi.answer("Noted.", 20, 2);
    let gw = Gateway::start_with(
        Fake::start_with_fallback(Vec::new(), 200, &answer).await,
        Endpoints::default(),
    )
    .await;
    let id = gw
        .create_prompt(&prompt_on("policy", OPENAI_REF, SYSTEM_A))
        .await;
    let body = json!({
        "model": "prompt:policy",
        "temperature": 1.7,
        "messages": [
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Where is order 7?"},
            {"role": "assistant", "content": "Looking."},
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": "Any news?"}
        ]
    });

    // Default: replace, caller settings ignored (and said so).
    let resp = chat(&gw.server, &gw.token, &body).await;
    let out = resp.ok(200);
    assert_eq!(out["choices"][0]["message"]["content"], "Noted.");
    assert_eq!(out["model"], OPENAI_REPORTED);
    assert_eq!(
        resp.header("x-promptgate-ignored-params").as_deref(),
        Some("temperature")
    );
    assert_eq!(out["promptgate"]["ignoredParams"], json!(["temperature"]));
    let sent = gw.fake.requests().pop().unwrap().json();
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": SYSTEM_A},
            {"role": "user", "content": "Where is order 7?"},
            {"role": "assistant", "content": "Looking."},
            {"role": "user", "content": "Any news?"}
        ]),
        "replace: only the version's system prompt: {sent}"
    );
    assert_eq!(sent["temperature"], 0.3, "the version's temperature");

    // Prepend, with caller settings allowed; the change is audited.
    let resp = gw
        .server
        .put(
            &prompt_path(&id),
            &gw.token,
            &json!({"chatCompletions": {"systemMessage": "prepend", "allowCallerSettings": true}}),
            None,
        )
        .await;
    let prompt = resp.ok(200);
    assert_eq!(
        prompt["chatCompletions"],
        json!({"systemMessage": "prepend", "allowCallerSettings": true})
    );
    assert_eq!(prompt["versions"], json!(["1.0.0"]), "no new version");
    let resp = chat(&gw.server, &gw.token, &body).await;
    resp.ok(200);
    assert_eq!(resp.header("x-promptgate-ignored-params"), None);
    let sent = gw.fake.requests().pop().unwrap().json();
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content":
            format!("{SYSTEM_A}\n\nAnswer in French.\n\nBe brief.")}),
        "prepend: the version's prompt, then the caller's: {sent}"
    );
    assert_eq!(sent["temperature"], 1.7, "the caller's temperature");

    let audit = gw
        .server
        .get_query(
            &format!("{GW}/audit-logs"),
            &gw.token,
            &[("action", "CHAT_COMPLETIONS_UPDATED")],
        )
        .await
        .ok(200);
    let entry = &audit["entities"][0];
    assert_eq!(entry["promptId"], id.as_str(), "{audit}");
    assert_eq!(entry["details"]["before"]["systemMessage"], "replace");
    assert_eq!(entry["details"]["after"]["systemMessage"], "prepend");

    // A caller's model endpoint must be configured.
    let resp = chat(
        &gw.server,
        &gw.token,
        &json!({"model": "prompt:policy", "messages": user("hi"),
                    "model_endpoint": "nowhere/none"}),
    )
    .await;
    let error = openai_error(&resp, 400, "invalid_request_error", "invalid_value");
    assert_eq!(error["error"]["param"], "model_endpoint");
    let resp = chat(
        &gw.server,
        &gw.token,
        &json!({"model": "prompt:policy", "messages": user("hi"),
                    "model_endpoint": "builtin/echo"}),
    )
    .await;
    assert!(
        resp.ok(200)["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with(OFFLINE),
        "served by the caller's endpoint"
    );

    // An unknown mode is refused, naming the field, and changes nothing.
    let resp = gw
        .server
        .put(
            &prompt_path(&id),
            &gw.token,
            &json!({"chatCompletions": {"systemMessage": "append"}}),
            None,
        )
        .await;
    let body = resp.error(400, "invalid.value");
    assert!(
        body.to_string().contains("chatCompletions.systemMessage"),
        "{body}"
    );
    let now = gw
        .server
        .get(&prompt_path(&id), Some(&gw.token))
        .await
        .ok(200);
    assert_eq!(now["chatCompletions"]["systemMessage"], "prepend");
}

#[tokio::test]
async fn the_policy_is_set_at_creation_and_defaults_to_replace() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (plain, _) = server.create_prompt(&token, &prompt_body("plain")).await;
    assert_eq!(
        plain["chatCompletions"],
        json!({"systemMessage": "replace", "allowCallerSettings": false})
    );
    let mut body = prompt_body("prepending");
    body["chatCompletions"] = json!({"systemMessage": "prepend"});
    let (created, _) = server.create_prompt(&token, &body).await;
    assert_eq!(
        created["chatCompletions"],
        json!({"systemMessage": "prepend", "allowCallerSettings": false})
    );
    let mut bad = prompt_body("bad-mode");
    bad["chatCompletions"] = json!({"systemMessage": "sideways"});
    let resp = server.post(PROMPTS, Some(&token), &bad).await;
    let error = resp.error(400, "invalid.value");
    assert!(error.to_string().contains("chatCompletions.systemMessage"));
    let list = server
        .get_query(PROMPTS, &token, &[("name", "bad-mode")])
        .await
        .ok(200);
    assert_eq!(list["entities"], json!([]), "nothing stored");
}

#[tokio::test]
async fn guardrails_apply_as_for_invocations() {
    let gw = Gateway::start(vec![Reply::json(
        200,
        &Flavor::OpenAi.answer("Mail me at agent@example.com", 20, 5),
    )])
    .await;
    let mut body = prompt_on("guarded", OPENAI_REF, SYSTEM_A);
    body["safetyGuardrails"] =
        json!({"contentFiltering": ["pii"], "blockedCategories": ["violence"]});
    body["chatCompletions"] = json!({"systemMessage": "prepend"});
    let id = gw.create_prompt(&body).await;
    let resp = chat(
        &gw.server,
        &gw.token,
        &json!({"model": "prompt:guarded", "messages": [
                {"role": "system", "content": "The customer is jane@example.org."},
                {"role": "user", "content": "I am bob@example.com"}]}),
    )
    .await;
    let out = resp.ok(200);
    assert_eq!(
        out["choices"][0]["message"]["content"],
        "Mail me at [EMAIL]"
    );
    assert_eq!(
        out["promptgate"]["guardrails"]["inputRedactions"]["EMAIL"],
        2
    );
    assert_eq!(
        out["promptgate"]["guardrails"]["outputRedactions"]["EMAIL"],
        1
    );
    let sent = gw.fake.requests().pop().unwrap().text();
    assert!(
        !sent.contains("bob@example.com") && !sent.contains("jane@example.org"),
        "{sent}"
    );

    let before = gw.fake.requests().len();
    let resp = chat(
        &gw.server,
        &gw.token,
        &json!({"model": "prompt:guarded", "messages": user("I will kill him with a knife")}),
    )
    .await;
    openai_error(
        &resp,
        422,
        "invalid_request_error",
        "content_policy_violation",
    );
    assert_eq!(gw.fake.requests().len(), before, "no provider call");
    let blocked = eventually(HANG_GUARD, || async {
        let page = gw
            .server
            .get_query(
                &format!("{GW}/telemetry"),
                &gw.token,
                &[("promptId", &id), ("status", "BLOCKED")],
            )
            .await
            .ok(200);
        page["entities"].as_array().map(Vec::len) == Some(1)
    })
    .await;
    assert!(blocked, "the blocked call is recorded");
}

#[tokio::test]
async fn the_upstream_failing_is_a_server_error_and_the_rate_limit_is_rate_limit_exceeded() {
    let gw = Gateway::start_with(
        Fake::start(vec![Reply::json(400, r#"{"error": {"message": "bad"}}"#)]).await,
        Endpoints::default(),
    )
    .await;
    gw.create_prompt(&prompt_on("failing", OPENAI_REF, SYSTEM_A))
        .await;
    let resp = chat(
        &gw.server,
        &gw.token,
        &json!({"model": "prompt:failing", "messages": user("hi")}),
    )
    .await;
    openai_error(&resp, 502, "server_error", "upstream_error");

    let admin_id = uuid::Uuid::new_v4().to_string();
    let server = Server::start_with(Options {
        admin: Admin::Env {
            id: admin_id.clone(),
            secret: random_secret(),
        },
        ..Options::with_config(&format!(
            "[rate_limits]\nrequests_per_second = 0.05\nburst = 2\n\
             [rate_limits.clients.\"{admin_id}\"]\nburst = 50\n"
        ))
    });
    let admin = server.admin_token().await;
    server.create_prompt(&admin, &prompt_body("limited")).await;
    let (id, secret) = server
        .create_client(&admin, "app", &["ai:gateway:write"])
        .await;
    let app = server.token(&id, &secret, None).await;
    let body = json!({"model": "prompt:limited", "messages": user("hi")});
    chat(&server, &app, &body).await.ok(200);
    chat(&server, &app, &body).await.ok(200);
    let resp = chat(&server, &app, &body).await;
    openai_error(&resp, 429, "requests", "rate_limit_exceeded");
    assert!(resp.header("retry-after").is_some());
}

#[tokio::test]
async fn a_stream_that_breaks_off_ends_with_one_openai_error_and_no_done() {
    let (reply, mut feed) = Reply::stream();
    let gw = Gateway::start(vec![reply]).await;
    gw.create_prompt(&prompt_on("breaks", OPENAI_REF, SYSTEM_A))
        .await;
    feed.send(&Flavor::OpenAi.stream_start("Hel"));
    feed.finish();
    let raw = gw
        .server
        .request(reqwest::Method::POST, CHAT)
        .bearer_auth(&gw.token)
        .json(&json!({"model": "prompt:breaks", "messages": user("hi"), "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    let mut reader = SseReader::new(raw);
    let mut data = Vec::new();
    while let Some(event) = reader.next().await {
        data.push(event.data);
    }
    assert!(
        !data.iter().any(|d| d == "[DONE]"),
        "no [DONE]: {}",
        reader.raw
    );
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "server_error", "{last}");
    assert_eq!(last["error"]["code"], "upstream_error", "{last}");
    let text: String = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, "Hel", "what arrived before the break is relayed");
}

#[tokio::test]
async fn names_with_wildcards_and_at_signs_are_models_too() {
    let server = Server::start();
    let token = server.admin_token().await;
    for name in ["team*bot@eu", "teamXbot@eu"] {
        server.create_prompt(&token, &prompt_body(name)).await;
    }
    for (model, version) in [
        ("prompt:team*bot@eu", None),
        ("prompt:team*bot@eu@1.0.0", Some("1.0.0")),
        ("prompt:teamXbot@eu", None),
    ] {
        let body = chat(
            &server,
            &token,
            &json!({"model": model, "messages": user("hi")}),
        )
        .await
        .ok(200);
        if let Some(version) = version {
            assert_eq!(body["promptgate"]["version"], version);
        }
        server
            .get(&format!("{MODELS}/{model}"), Some(&token))
            .await
            .ok(200);
    }
    // Each name finds its own prompt, not the other that its wildcard would also match.
    let star = server
        .get_query(PROMPTS, &token, &[("name", "team*bot@eu")])
        .await
        .ok(200);
    let ids: Vec<String> = star["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| str_field(p, "id"))
        .collect();
    assert_eq!(ids.len(), 2, "the listing's pattern matches both: {star}");
    let first = chat(
        &server,
        &token,
        &json!({"model": "prompt:team*bot@eu", "messages": user("hi")}),
    )
    .await
    .ok(200);
    let second = chat(
        &server,
        &token,
        &json!({"model": "prompt:teamXbot@eu", "messages": user("hi")}),
    )
    .await
    .ok(200);
    assert_ne!(
        first["promptgate"]["promptId"],
        second["promptgate"]["promptId"]
    );
}

#[tokio::test]
async fn a_request_over_the_context_window_is_context_length_exceeded_on_the_input() {
    let server = Server::start();
    let token = server.admin_token().await;
    server.create_prompt(&token, &prompt_body("window")).await;
    let resp = chat(
        &server,
        &token,
        &json!({"model": "prompt:window", "max_tokens": 100_000_000, "messages": [
                {"role": "user", "content": "earlier"},
                {"role": "assistant", "content": "yes"},
                {"role": "user", "content": "now"}]}),
    )
    .await;
    let error = openai_error(
        &resp,
        400,
        "invalid_request_error",
        "context_length_exceeded",
    );
    assert_eq!(error["error"]["param"], "messages[2].content", "{error}");
}

#[tokio::test]
async fn a_bad_policy_is_refused_before_the_prompt_is_read() {
    let server = Server::start();
    let token = server.admin_token().await;
    // No such prompt: the mode is checked first, with the other fields, so this is a 400.
    let resp = server
        .put(
            &prompt_path(&uuid::Uuid::now_v7().to_string()),
            &token,
            &json!({"chatCompletions": {"systemMessage": "append"}, "version": "1.0.1",
                    "systemPrompt": "x".repeat(200_001)}),
            None,
        )
        .await;
    let body = resp.error(400, "invalid.value");
    let fields = resp.field_names();
    assert!(
        fields.contains("chatCompletions.systemMessage") && fields.contains("systemPrompt"),
        "{body}"
    );
}
