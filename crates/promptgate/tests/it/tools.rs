//! Tools and structured output through the real binary (shared/API.md, "Tools and structured
//! output"): a version's `tools`, `toolChoice` and `responseFormat` as created, read back,
//! inherited, removed, audited and counted; what a create or update refuses (and that it
//! stores nothing); a tool round trip and a streamed one through the offline provider; the
//! same through a provider's wire format (the recording fake upstream proves what was sent);
//! tool results as caller input and tool-call arguments as output under the guardrails (PII
//! redacted inside JSON strings, the arguments still JSON); `parsed` and `outputErrors`;
//! `schemaValid` in telemetry and the schema-valid rate with its interval in summaries.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::audit::AUDIT;
use crate::fake_upstream::*;
use crate::harness::*;

const SUMMARY: &str = "/api/v2/ai/llm/gateway/telemetry/summary";

fn lookup_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "lookup_order",
        "description": "Find an order by its number.",
        "parameters": {"type": "object",
                       "properties": {"order": {"type": "string"}},
                       "required": ["order"]},
        "strict": true
    }})
}

fn refund_tool() -> Value {
    json!({"type": "function", "function": {"name": "refund",
        "parameters": {"type": "object", "properties": {"amount": {"type": "number"}}}}})
}

fn order_format() -> Value {
    json!({"type": "json_schema", "json_schema": {
        "name": "order_summary",
        "strict": true,
        "schema": {"type": "object",
                   "properties": {"items": {"type": "array", "items": {
                       "type": "object",
                       "properties": {"qty": {"type": "integer", "minimum": 1}},
                       "required": ["qty"]}}},
                   "required": ["items"]}
    }})
}

/// A prompt on the offline provider with the lookup tool.
fn tool_prompt(name: &str) -> Value {
    json!({
        "name": name,
        "modelEndpointRef": "builtin/echo",
        "systemPrompt": "You are a support agent. Use the tools.",
        "tools": [lookup_tool()],
        "toolChoice": "auto",
        "version": "1.0.0"
    })
}

/// Asserts a 400 `invalid.value` whose details name exactly `fields`.
#[track_caller]
fn invalid_fields(resp: &Resp, fields: &[&str]) -> Value {
    let err = resp.error(400, "invalid.value");
    let expected: BTreeSet<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    assert_eq!(resp.field_names(), expected, "{resp}");
    err
}

async fn invoke(server: &Server, token: &str, body: &Value) -> Resp {
    server.post(INVOCATIONS, Some(token), body).await
}

/// The events of a streamed invocation.
async fn stream(server: &Server, token: &str, mut body: Value) -> (Vec<SseEvent>, String) {
    body["options"] = json!({"stream": true});
    let response = server
        .request(reqwest::Method::POST, INVOCATIONS)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut sse = SseReader::new(response);
    let events = sse.rest().await;
    (events, sse.raw)
}

#[tokio::test]
async fn a_version_owns_its_tools_shown_as_sent_counted_inherited_audited_and_removed() {
    let server = Server::start();
    let token = server.admin_token().await;
    let mut body = tool_prompt("tools-shown");
    body["tools"] = json!([lookup_tool(), refund_tool()]);
    body["toolChoice"] = json!({"type": "function", "function": {"name": "refund"}});
    body["responseFormat"] = order_format();
    let (created, _) = server.create_prompt(&token, &body).await;
    let id = str_field(&created, "id");
    assert_eq!(created["tools"], body["tools"], "{created}");
    assert_eq!(created["toolChoice"], body["toolChoice"], "{created}");
    assert_eq!(
        created["responseFormat"], body["responseFormat"],
        "{created}"
    );
    let version = server
        .get(&version_path(&id, "1.0.0"), Some(&token))
        .await
        .ok(200);
    assert_eq!(version["tools"], body["tools"], "{version}");
    assert_eq!(
        version["responseFormat"], body["responseFormat"],
        "{version}"
    );

    // The definitions count towards systemPromptTokens: the same prompt without them is
    // smaller by what the documented estimate counts.
    let (plain, _) = server
        .create_prompt(
            &token,
            &json!({"name": "tools-plain", "modelEndpointRef": "builtin/echo",
                    "systemPrompt": body["systemPrompt"], "version": "1.0.0"}),
        )
        .await;
    let with = created["systemPromptTokens"].as_u64().unwrap();
    let without = plain["systemPromptTokens"].as_u64().unwrap();
    assert!(with > without + 40, "{with} vs {without}");

    // A new version without tool fields inherits them; `[]` and null remove them.
    let inherited = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"version": "1.1.0", "systemPrompt": "Be brief."}),
            None,
        )
        .await
        .ok(200);
    assert_eq!(inherited["tools"], body["tools"], "{inherited}");
    assert_eq!(inherited["toolChoice"], body["toolChoice"], "{inherited}");
    let removed = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"version": "1.2.0", "tools": [], "toolChoice": null, "responseFormat": null}),
            None,
        )
        .await
        .ok(200);
    for field in ["tools", "toolChoice", "responseFormat"] {
        assert_eq!(removed.get(field), None, "{field} not removed: {removed}");
    }

    // The audit log's snapshot of each version holds them as GET shows them.
    let page = server
        .get_query(
            AUDIT,
            &token,
            &[
                ("promptId", &id),
                ("action", "VERSION_CREATED"),
                ("pageSize", "50"),
            ],
        )
        .await
        .ok(200);
    let entries = page["entities"].as_array().unwrap();
    let first = entries
        .iter()
        .find(|e| e["details"]["after"]["version"] == "1.1.0")
        .unwrap_or_else(|| panic!("no entry for 1.1.0: {page}"));
    assert_eq!(first["details"]["after"]["tools"], body["tools"], "{first}");
}

#[tokio::test]
async fn invalid_tool_definitions_are_refused_naming_the_field_and_store_nothing() {
    let server = Server::start();
    let token = server.admin_token().await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"tools": [lookup_tool(), lookup_tool()]}),
            vec!["tools[1].function.name"],
        ),
        (
            json!({"toolChoice": {"type": "function", "function": {"name": "cancel"}}}),
            vec!["toolChoice.function.name"],
        ),
        (json!({"toolChoice": "sometimes"}), vec!["toolChoice"]),
        (
            json!({"tools": [{"type": "function", "function": {"name": "bad",
                    "parameters": {"type": "object", "properties": {"a": {"type": "strange"}}}}}]}),
            vec!["tools[0].function.parameters"],
        ),
        (
            json!({"tools": [{"type": "retrieval", "function": {"name": "bad name!"}}]}),
            vec!["tools[0].type", "tools[0].function.name"],
        ),
        (
            json!({"responseFormat": {"type": "json_schema", "json_schema": {"schema": {}}}}),
            vec!["responseFormat.json_schema.name"],
        ),
        (
            json!({"responseFormat": {"type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": 12}}}}),
            vec!["responseFormat.json_schema.schema"],
        ),
        (
            json!({"responseFormat": {"type": "yaml"}}),
            vec!["responseFormat.type"],
        ),
        (
            json!({"tools": (0..129).map(|i| json!({"type": "function",
                    "function": {"name": format!("t{i}")}})).collect::<Vec<_>>()}),
            vec!["tools"],
        ),
    ];
    for (i, (fields, expected)) in cases.into_iter().enumerate() {
        let name = format!("bad-tools-{i}");
        let mut body = tool_prompt(&name);
        for (key, value) in fields.as_object().unwrap() {
            body[key] = value.clone();
        }
        let resp = server.post(PROMPTS, Some(&token), &body).await;
        invalid_fields(&resp, &expected);
        let list = server
            .get_query(PROMPTS, &token, &[("name", &name)])
            .await
            .ok(200);
        assert_eq!(list["entities"], json!([]), "{name} was stored: {list}");
    }

    // An update that names a tool the kept tools lack is refused and changes nothing.
    let (created, _) = server
        .create_prompt(&token, &tool_prompt("tools-update"))
        .await;
    let id = str_field(&created, "id");
    let resp = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"version": "1.1.0",
                    "toolChoice": {"type": "function", "function": {"name": "refund"}}}),
            None,
        )
        .await;
    invalid_fields(&resp, &["toolChoice.function.name"]);
    let after = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(after["versions"], json!(["1.0.0"]), "{after}");
}

#[tokio::test]
async fn a_tool_round_trip_through_the_offline_provider() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server
        .create_prompt(&token, &tool_prompt("tools-offline"))
        .await;
    let id = str_field(&created, "id");
    let call_input = r#"call lookup_order {"order": "A-1001"}"#;
    let first = invoke(
        &server,
        &token,
        &json!({"promptId": id, "userInput": call_input, "sessionId": "s-1"}),
    )
    .await
    .ok(200);
    assert_eq!(first["finishReason"], "tool_calls", "{first}");
    assert_eq!(first["output"], "", "{first}");
    let calls = first["toolCalls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{first}");
    assert_eq!(calls[0]["name"], "lookup_order");
    let arguments: Value = serde_json::from_str(calls[0]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"order": "A-1001"}));
    let call_id = calls[0]["id"].as_str().unwrap().to_owned();

    // The caller continues with the assistant's call and the tool's result, and nothing else
    // to say: the result is the last turn.
    let second = invoke(
        &server,
        &token,
        &json!({"promptId": id, "sessionId": "s-1", "messages": [
            {"role": "user", "content": call_input},
            {"role": "assistant", "content": "", "toolCalls": calls},
            {"role": "tool", "toolCallId": call_id, "content": "A-1001 shipped on Monday"}
        ]}),
    )
    .await
    .ok(200);
    assert_eq!(second["finishReason"], "stop", "{second}");
    assert!(
        second["output"]
            .as_str()
            .unwrap()
            .ends_with("The tool answered: A-1001 shipped on Monday"),
        "{second}"
    );
    assert_eq!(second.get("toolCalls"), None, "{second}");

    // A name that is no tool of the version is not a call: the offline provider echoes.
    let echoed = invoke(
        &server,
        &token,
        &json!({"promptId": id, "userInput": r#"call delete_everything {}"#}),
    )
    .await
    .ok(200);
    assert_eq!(echoed.get("toolCalls"), None, "{echoed}");

    let record = server
        .telemetry_record(&token, &id, first["responseId"].as_str().unwrap())
        .await;
    assert_eq!(record["toolCallCount"], 1, "{record}");
    assert_eq!(
        record.get("schemaValid"),
        None,
        "no output format: {record}"
    );
}

#[tokio::test]
async fn tool_turns_are_checked_and_each_problem_names_its_field() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server
        .create_prompt(&token, &tool_prompt("tools-turns"))
        .await;
    let id = str_field(&created, "id");
    let call = json!({"id": "call_1", "name": "lookup_order", "arguments": "{}"});
    let cases = [
        (
            json!([{"role": "assistant", "content": "", "toolCalls": [call]},
                   {"role": "tool", "content": "done"}]),
            vec!["messages[1].toolCallId"],
        ),
        (
            json!([{"role": "assistant", "content": "", "toolCalls": [call]},
                   {"role": "tool", "toolCallId": "call_9", "content": "done"}]),
            vec!["messages[1].toolCallId"],
        ),
        (
            json!([{"role": "user", "content": "hi", "toolCalls": [call]}]),
            vec!["messages[0].toolCalls"],
        ),
        (
            json!([{"role": "assistant", "content": "",
                    "toolCalls": [{"id": "call_1", "arguments": "{}"}]}]),
            vec!["messages[0].toolCalls[0].name"],
        ),
        (
            json!([{"role": "user", "content": "hi", "toolCallId": "call_1"}]),
            vec!["messages[0].toolCallId"],
        ),
        (
            json!([{"role": "function", "content": "hi"}]),
            vec!["messages[0].role"],
        ),
    ];
    for (messages, fields) in cases {
        let resp = invoke(
            &server,
            &token,
            &json!({"promptId": id, "userInput": "Thanks", "messages": messages}),
        )
        .await;
        invalid_fields(&resp, &fields);
    }
    // Without a tool turn last, userInput is still required.
    let resp = invoke(&server, &token, &json!({"promptId": id})).await;
    invalid_fields(&resp, &["userInput"]);
}

#[tokio::test]
async fn streamed_tool_calls_arrive_as_tool_call_events_and_done_lists_them() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server
        .create_prompt(&token, &tool_prompt("tools-stream"))
        .await;
    let id = str_field(&created, "id");
    let (events, raw) = stream(
        &server,
        &token,
        json!({"promptId": id, "userInput": r#"call lookup_order {"order": "B-7"}"#}),
    )
    .await;
    let pieces: Vec<Value> = events
        .iter()
        .filter(|e| e.event == "tool_call")
        .map(SseEvent::json)
        .collect();
    assert!(!pieces.is_empty(), "{raw}");
    assert_eq!(pieces[0]["index"], 0, "{raw}");
    assert_eq!(pieces[0]["name"], "lookup_order", "{raw}");
    let id0 = pieces[0]["id"].as_str().unwrap().to_owned();
    let arguments: String = pieces
        .iter()
        .map(|p| p["argumentsDelta"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"order": "B-7"})
    );
    let done = events.last().unwrap();
    assert_eq!(done.event, "done", "{raw}");
    let done = done.json();
    assert_eq!(done["finishReason"], "tool_calls", "{done}");
    assert_eq!(done["toolCalls"][0]["id"], id0.as_str(), "{done}");
    assert_eq!(
        done["toolCalls"][0]["arguments"],
        arguments.as_str(),
        "{done}"
    );
}

/// A gateway whose fake upstream answers with the given replies in order.
async fn scripted(replies: Vec<Reply>) -> Gateway {
    Gateway::start(replies).await
}

fn pii_tool_prompt(name: &str, endpoint: &str) -> Value {
    let mut body = prompt_on(name, endpoint, "You send e-mails for the customer.");
    body["tools"] = json!([{"type": "function", "function": {"name": "send_email",
        "parameters": {"type": "object", "properties": {
            "to": {"type": "string"}, "body": {"type": "string"}, "copies": {"type": "integer"}}}}}]);
    body["safetyGuardrails"] =
        json!({"contentFiltering": ["pii"], "blockedCategories": ["violence"]});
    body
}

const PII_ARGUMENTS: &str =
    r#"{"to": "jane.doe@example.com", "body": "Call me on +1 415 555 0100", "copies": 4155550100}"#;

#[tokio::test]
async fn pii_inside_tool_arguments_is_redacted_and_the_arguments_stay_json() {
    for flavor in FLAVORS {
        let answer = Fixtures::TEST.tool_call_answer(
            flavor,
            &[("call_1", "send_email", PII_ARGUMENTS)],
            30,
            12,
        );
        let pieces = [
            "{\"to\": \"jane.d",
            "oe@example.com\", \"body\": \"Call me on +1 415 ",
            "555 0100\", \"copies\": 4155550100}",
        ];
        let streamed = Fixtures::TEST
            .tool_call_stream_events(flavor, ("call_2", "send_email"), &pieces, 12)
            .concat();
        let gw = scripted(vec![Reply::json(200, &answer), Reply::sse(&streamed)]).await;
        let id = gw
            .create_prompt(&pii_tool_prompt("pii-args", flavor.reference()))
            .await;

        let body = gw
            .invoke(&json!({"promptId": id, "userInput": "Write to Jane."}))
            .await
            .ok(200);
        assert_eq!(body["finishReason"], "tool_calls", "{flavor:?}: {body}");
        let arguments: Value =
            serde_json::from_str(body["toolCalls"][0]["arguments"].as_str().unwrap())
                .unwrap_or_else(|e| panic!("{flavor:?}: arguments not JSON ({e}): {body}"));
        assert_eq!(arguments["to"], "[EMAIL]", "{flavor:?}: {body}");
        assert_eq!(
            arguments["body"], "Call me on [PHONE]",
            "{flavor:?}: {body}"
        );
        assert_eq!(
            arguments["copies"], 4155550100_u64,
            "numbers are not text: {body}"
        );
        assert_eq!(body["guardrails"]["outputRedactions"]["EMAIL"], 1, "{body}");
        assert!(!body.to_string().contains("jane.doe"), "{body}");

        // Streamed: the arguments come whole, redacted, split email and all.
        let (events, raw) = stream(
            &gw.server,
            &gw.token,
            json!({"promptId": id, "userInput": "Write to Jane again."}),
        )
        .await;
        assert!(
            !raw.contains("jane.d"),
            "{flavor:?}: PII in the stream: {raw}"
        );
        let calls: Vec<Value> = events
            .iter()
            .filter(|e| e.event == "tool_call")
            .map(SseEvent::json)
            .collect();
        assert_eq!(calls.len(), 1, "{flavor:?}: one whole call: {raw}");
        let arguments: Value =
            serde_json::from_str(calls[0]["argumentsDelta"].as_str().unwrap()).unwrap();
        assert_eq!(arguments["to"], "[EMAIL]", "{raw}");
        assert_eq!(calls[0]["name"], "send_email", "{raw}");
    }
}

#[tokio::test]
async fn tool_results_are_caller_input_under_the_guardrails() {
    let gw = scripted(vec![Reply::json(
        200,
        &Flavor::OpenAi.answer("Sent.", 40, 2),
    )])
    .await;
    let id = gw
        .create_prompt(&pii_tool_prompt("tool-results", OPENAI_REF))
        .await;
    let call =
        json!({"id": "call_1", "name": "send_email", "arguments": "{\"to\": \"bob@example.org\"}"});
    let turns = |result: &str| {
        json!([
            {"role": "user", "content": "Write to Bob."},
            {"role": "assistant", "content": "", "toolCalls": [call]},
            {"role": "tool", "toolCallId": "call_1", "content": result}
        ])
    };
    // A blocked category in a tool's result refuses the call before any provider.
    let resp = gw
        .invoke(&json!({"promptId": id, "messages": turns("I will kill my neighbour tonight")}))
        .await;
    resp.error(422, "guardrail.blocked");
    assert!(gw.fake.requests().is_empty());

    let body = gw
        .invoke(&json!({"promptId": id, "messages": turns("Delivered to carol@example.net")}))
        .await
        .ok(200);
    assert_eq!(body["output"], "Sent.", "{body}");
    assert_eq!(body["guardrails"]["inputRedactions"]["EMAIL"], 2, "{body}");
    let sent = gw.fake.only_request().json();
    let sent_text = sent.to_string();
    assert!(!sent_text.contains("carol@example.net"), "{sent}");
    assert!(!sent_text.contains("bob@example.org"), "{sent}");
    // OpenAI's shape: the assistant's call and the tool's result, then nothing else.
    let messages = sent["messages"].as_array().unwrap();
    let last = messages.last().unwrap();
    assert_eq!(last["role"], "tool", "{sent}");
    assert_eq!(last["tool_call_id"], "call_1", "{sent}");
    assert_eq!(last["content"], "Delivered to [EMAIL]", "{sent}");
    let assistant = &messages[messages.len() - 2];
    assert_eq!(
        assistant["tool_calls"][0]["function"]["name"], "send_email",
        "{sent}"
    );
    let arguments: Value = serde_json::from_str(
        assistant["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(arguments["to"], "[EMAIL]", "{sent}");
    // The version's tools went with the request, in OpenAI's shape.
    assert_eq!(sent["tools"][0]["function"]["name"], "send_email", "{sent}");
}

#[tokio::test]
async fn structured_output_is_parsed_or_located_and_its_rate_is_summarised() {
    let answers = [
        r#"{"items": [{"qty": 2}]}"#,
        r#"{"items": [{"qty": "two"}]}"#,
        "Sure, here is your order.",
        r#"{"items": []}"#,
    ];
    let mut replies: Vec<Reply> = answers
        .iter()
        .map(|text| Reply::json(200, &Flavor::OpenAi.answer(text, 20, 8)))
        .collect();
    replies.push(Reply::sse(
        &Flavor::OpenAi.full_stream(&["{\"items\": [{\"qty", "\": 3}]}"], 8),
    ));
    let gw = scripted(replies).await;
    let mut body = prompt_on("structured", OPENAI_REF, "Summarise the order as JSON.");
    body["responseFormat"] = order_format();
    let id = gw.create_prompt(&body).await;

    let mut ids = Vec::new();
    let mut results = Vec::new();
    for _ in 0..answers.len() {
        let answer = gw
            .invoke(&json!({"promptId": id, "userInput": "Order A-1"}))
            .await
            .ok(200);
        ids.push(answer["responseId"].as_str().unwrap().to_owned());
        results.push(answer);
    }
    assert_eq!(
        results[0]["parsed"],
        json!({"items": [{"qty": 2}]}),
        "{}",
        results[0]
    );
    assert_eq!(results[0].get("outputErrors"), None, "{}", results[0]);
    assert_eq!(results[1]["parsed"], Value::Null, "{}", results[1]);
    assert_eq!(
        results[1]["outputErrors"][0]["path"], "/items/0/qty",
        "{}",
        results[1]
    );
    assert!(results[1]["outputErrors"][0]["message"].is_string());
    assert_eq!(results[2]["parsed"], Value::Null);
    assert_eq!(results[2]["outputErrors"][0]["path"], "", "{}", results[2]);
    assert_eq!(results[3]["parsed"], json!({"items": []}), "{}", results[3]);
    // The response format went upstream in OpenAI's shape.
    let sent = gw.fake.requests()[0].json();
    assert_eq!(sent["response_format"], order_format(), "{sent}");

    // Streamed: `done` carries the check of the whole output.
    let (events, raw) = stream(
        &gw.server,
        &gw.token,
        json!({"promptId": id, "userInput": "Order A-2"}),
    )
    .await;
    let done = events.last().unwrap().json();
    assert_eq!(done["parsed"], json!({"items": [{"qty": 3}]}), "{raw}");
    ids.push(done["responseId"].as_str().unwrap().to_owned());

    // Telemetry keeps whether each output matched; the summary's rate has its interval.
    let expected = [true, false, false, true, true];
    for (response_id, valid) in ids.iter().zip(expected) {
        let record = gw
            .server
            .telemetry_record(&gw.token, &id, response_id)
            .await;
        assert_eq!(record["schemaValid"], valid, "{record}");
    }
    let summary = gw
        .server
        .get_query(SUMMARY, &gw.token, &[("promptId", &id)])
        .await
        .ok(200);
    let rate = &summary["entities"][0]["schemaValidRate"];
    assert_eq!(rate["count"], 5, "{summary}");
    assert_eq!(rate["valid"], 3, "{summary}");
    assert!(
        (rate["rate"].as_f64().unwrap() - 0.6).abs() < 1e-9,
        "{summary}"
    );
    // Wilson's 95% interval for 3 of 5: 0.2307 to 0.8824.
    let (low, high) = (
        rate["ci95"][0].as_f64().unwrap(),
        rate["ci95"][1].as_f64().unwrap(),
    );
    assert!(
        (low - 0.2307).abs() < 5e-4 && (high - 0.8824).abs() < 5e-4,
        "{summary}"
    );
}

#[tokio::test]
async fn the_schema_valid_rate_is_compared_between_versions() {
    let server = Server::start();
    let token = server.admin_token().await;
    // On the offline provider the output is never JSON: every checked output is invalid.
    let mut body = tool_prompt("tools-compare");
    body["responseFormat"] = json!({"type": "json_object"});
    let (created, _) = server.create_prompt(&token, &body).await;
    let id = str_field(&created, "id");
    server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"version": "1.1.0", "responseFormat": {"type": "text"}}),
            None,
        )
        .await
        .ok(200);
    let mut last = String::new();
    for (version, n) in [("1.0.0", 4), ("1.1.0", 3)] {
        for i in 0..n {
            let answer = invoke(
                &server,
                &token,
                &json!({"promptId": id, "version": version, "userInput": format!("hi {i}")}),
            )
            .await
            .ok(200);
            if version == "1.0.0" {
                assert_eq!(answer["parsed"], Value::Null, "{answer}");
                let message = answer["outputErrors"][0]["message"].as_str().unwrap();
                assert!(message.starts_with("the output is not JSON"), "{answer}");
            } else {
                assert_eq!(
                    answer.get("parsed"),
                    None,
                    "a text format checks nothing: {answer}"
                );
            }
            last = answer["responseId"].as_str().unwrap().to_owned();
        }
    }
    server.telemetry_record(&token, &id, &last).await;
    let summary = server
        .get_query(
            SUMMARY,
            &token,
            &[("promptId", &id), ("compareTo", "1.1.0")],
        )
        .await
        .ok(200);
    let entities = summary["entities"].as_array().unwrap();
    let of = |v: &str| entities.iter().find(|e| e["version"] == v).unwrap().clone();
    let checked = of("1.0.0");
    assert_eq!(checked["schemaValidRate"]["count"], 4, "{summary}");
    assert_eq!(checked["schemaValidRate"]["valid"], 0, "{summary}");
    assert_eq!(of("1.1.0").get("schemaValidRate"), None, "{summary}");
    // Nothing checked on the reference side: no difference to estimate.
    assert_eq!(
        checked["comparison"].get("schemaValidRateDiff"),
        None,
        "{summary}"
    );
}

#[tokio::test]
async fn the_openai_door_passes_the_callers_tools_and_the_versions_win() {
    let answer = Fixtures::TEST.tool_call_answer(
        Flavor::OpenAi,
        &[("call_7", "get_weather", r#"{"city": "Paris"}"#)],
        25,
        9,
    );
    let gw = scripted(vec![
        Reply::json(200, &answer),
        Reply::json(200, &Flavor::OpenAi.answer("Sunny.", 30, 2)),
        Reply::json(200, &Flavor::OpenAi.answer("Fine.", 30, 2)),
    ])
    .await;
    let plain = prompt_on("v1-tools", OPENAI_REF, "You answer about the weather.");
    gw.create_prompt(&plain).await;
    let weather = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let gw = &gw;
    let chat = |body: Value| async move {
        gw.server
            .post("/v1/chat/completions", Some(&gw.token), &body)
            .await
    };
    let first = chat(json!({
        "model": "prompt:v1-tools",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": weather, "tool_choice": "auto", "parallel_tool_calls": false,
        "response_format": {"type": "text"}
    }))
    .await
    .ok(200);
    let choice = &first["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{first}");
    assert_eq!(choice["message"]["content"], Value::Null, "{first}");
    assert_eq!(
        choice["message"]["tool_calls"][0]["id"], "call_7",
        "{first}"
    );
    assert_eq!(
        choice["message"]["tool_calls"][0]["type"], "function",
        "{first}"
    );
    assert_eq!(
        choice["message"]["tool_calls"][0]["function"],
        json!({"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}),
        "{first}"
    );
    let sent = gw.fake.requests()[0].json();
    assert_eq!(sent["tools"], weather, "{sent}");
    assert_eq!(sent["tool_choice"], "auto", "{sent}");
    assert_eq!(sent["parallel_tool_calls"], false, "{sent}");

    // The tool's result goes back in OpenAI's shape, and the conversation ends with it.
    let second = chat(json!({
        "model": "prompt:v1-tools",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            choice["message"].clone(),
            {"role": "tool", "tool_call_id": "call_7", "content": "sunny, 21 °C"}
        ],
        "tools": weather
    }))
    .await
    .ok(200);
    assert_eq!(
        second["choices"][0]["message"]["content"], "Sunny.",
        "{second}"
    );
    let sent = gw.fake.requests()[1].json();
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages.last().unwrap()["role"], "tool", "{sent}");
    assert_eq!(messages.last().unwrap()["tool_call_id"], "call_7", "{sent}");

    // A version's own tools win over the caller's.
    let mut owned = prompt_on("v1-owned", OPENAI_REF, "You look orders up.");
    owned["tools"] = json!([lookup_tool()]);
    gw.create_prompt(&owned).await;
    chat(json!({
        "model": "prompt:v1-owned",
        "messages": [{"role": "user", "content": "Where is A-1?"}],
        "tools": weather
    }))
    .await
    .ok(200);
    let sent = gw.fake.requests()[2].json();
    assert_eq!(sent["tools"], json!([lookup_tool()]), "{sent}");

    // A caller's bad definitions are refused in OpenAI's error shape, naming the field.
    let resp = chat(json!({
        "model": "prompt:v1-tools",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "a"}},
                  {"type": "function", "function": {"name": "a"}}]
    }))
    .await;
    assert_eq!(resp.status, 400, "{resp}");
    assert_eq!(
        resp.json()["error"]["param"],
        "tools[1].function.name",
        "{resp}"
    );
}

#[tokio::test]
async fn the_openai_door_streams_tool_calls_in_openais_chunks() {
    let events = Fixtures::TEST.tool_call_stream_events(
        Flavor::OpenAi,
        ("call_9", "get_weather"),
        &["{\"city\": ", "\"Paris\"}"],
        7,
    );
    let gw = scripted(vec![Reply::sse(&events.concat())]).await;
    gw.create_prompt(&prompt_on("v1-stream-tools", OPENAI_REF, "Weather."))
        .await;
    let response = gw
        .server
        .request(reqwest::Method::POST, "/v1/chat/completions")
        .bearer_auth(&gw.token)
        .json(&json!({
            "model": "prompt:v1-stream-tools", "stream": true,
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather"}}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut sse = SseReader::new(response);
    let chunks: Vec<Value> = sse
        .rest()
        .await
        .into_iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| e.json())
        .collect();
    let raw = &sse.raw;
    // OpenAI's first chunk before tool calls: the role, and content null (not "").
    let first = &chunks[0]["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant", "{raw}");
    assert_eq!(first.get("content"), Some(&Value::Null), "{raw}");
    let pieces: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .collect();
    assert_eq!(pieces[0][0]["index"], 0, "{raw}");
    assert_eq!(pieces[0][0]["id"], "call_9", "{raw}");
    assert_eq!(pieces[0][0]["type"], "function", "{raw}");
    assert_eq!(pieces[0][0]["function"]["name"], "get_weather", "{raw}");
    let arguments: String = pieces
        .iter()
        .filter_map(|p| p[0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(arguments, "{\"city\": \"Paris\"}", "{raw}");
    let last = chunks
        .iter()
        .rev()
        .find(|c| c["choices"][0]["finish_reason"].is_string())
        .unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls", "{raw}");
}
