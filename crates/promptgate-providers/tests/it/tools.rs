//! Tools and structured output: what each provider sends (OpenAI's shapes as they are,
//! Anthropic's translation) and what every provider, the offline one included, makes of a tool
//! call, whole and streamed.

use std::sync::Arc;

use promptgate_core::{EndpointCatalogue, TokenCounter};
use promptgate_fake_upstream::{Fake, Reply};
use promptgate_providers::{
    ChatMessage, ChatRequest, ChatResponse, EventStream, JsonSchemaFormat, OFFLINE_LABEL, Provider,
    ProviderError, ResponseFormat, Role, StreamEvent, ToolCall, ToolChoice, ToolDefinition,
    http_client, provider_for,
};
use serde_json::json;

use crate::common::{FLAVORS, Flavor, collect, request};

const ORDER_SCHEMA: &str =
    r#"{"type":"object","properties":{"order_id":{"type":"string"}},"required":["order_id"]}"#;

fn tools() -> Arc<[ToolDefinition]> {
    Arc::from(vec![
        ToolDefinition {
            name: "lookup_order".to_owned(),
            description: Some("Finds an order by its id.".to_owned()),
            parameters: Some(ORDER_SCHEMA.to_owned()),
            strict: Some(true),
        },
        ToolDefinition {
            name: "escalate".to_owned(),
            description: None,
            parameters: None,
            strict: None,
        },
    ])
}

/// A conversation that has been through one tool call: the model's call, the caller's result,
/// and the user's next words.
fn after_a_tool_call() -> ChatRequest {
    ChatRequest {
        system: "You are a terse support agent.".to_owned(),
        messages: vec![
            ChatMessage::text(Role::User, "Where is order A-1?"),
            ChatMessage {
                role: Role::Assistant,
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_1".to_owned(),
                    name: "lookup_order".to_owned(),
                    arguments: r#"{"order_id":"A-1"}"#.to_owned(),
                }],
                tool_call_id: None,
            },
            ChatMessage::tool_result("call_1", "shipped today"),
            ChatMessage::text(Role::User, "Thanks. And A-2?"),
        ],
        temperature: 0.0,
        max_output_tokens: Some(64),
        tools: tools(),
        tool_choice: Some(ToolChoice::Function("lookup_order".to_owned())),
        parallel_tool_calls: Some(false),
        response_format: None,
    }
}

fn order_format() -> Arc<ResponseFormat> {
    Arc::new(ResponseFormat::JsonSchema(JsonSchemaFormat {
        name: "order".to_owned(),
        description: None,
        schema: Some(ORDER_SCHEMA.to_owned()),
        strict: Some(true),
    }))
}

fn offline() -> Arc<dyn Provider> {
    let catalogue = EndpointCatalogue::with_overrides([]);
    let endpoint = catalogue.get("builtin/echo").unwrap().clone();
    provider_for(&endpoint, http_client().unwrap(), TokenCounter::load())
}

/// The body `flavor`'s provider sends for `request` (the fake answers it plainly).
async fn sent_body(flavor: Flavor, request: &ChatRequest) -> serde_json::Value {
    let fake = Fake::start(vec![Reply::json(200, &flavor.answer())]).await;
    flavor
        .start_provider(&fake)
        .complete(request)
        .await
        .unwrap();
    fake.only_request().json()
}

/// Every event of a stream that must not fail.
async fn events_of(stream: EventStream) -> Vec<StreamEvent> {
    collect(stream)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

/// A stream's tool calls put together from their pieces, and its finish reason.
fn assemble(events: Vec<StreamEvent>) -> (String, Vec<ToolCall>, String) {
    let mut text = String::new();
    let mut calls: Vec<ToolCall> = Vec::new();
    let mut finish = None;
    for event in events {
        match event {
            StreamEvent::Delta(piece) => text.push_str(&piece),
            StreamEvent::ToolCall(delta) => {
                let index = usize::try_from(delta.index).unwrap();
                if index == calls.len() {
                    calls.push(ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    });
                }
                let call = &mut calls[index];
                if let Some(id) = delta.id {
                    call.id = id;
                }
                if let Some(name) = delta.name {
                    call.name = name;
                }
                call.arguments.push_str(&delta.arguments_delta);
            }
            StreamEvent::Done { finish_reason, .. } => finish = Some(finish_reason),
        }
    }
    (text, calls, finish.expect("the stream finished"))
}

#[tokio::test]
async fn openai_gets_tools_choice_parallel_format_and_tool_turns_in_its_own_shapes() {
    let request = ChatRequest {
        response_format: Some(order_format()),
        ..after_a_tool_call()
    };
    let sent = sent_body(Flavor::OpenAi, &request).await;
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": "You are a terse support agent."},
            {"role": "user", "content": "Where is order A-1?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
                "type": "function",
                "function": {"name": "lookup_order", "arguments": "{\"order_id\":\"A-1\"}"}}]},
            {"role": "tool", "content": "shipped today", "tool_call_id": "call_1"},
            {"role": "user", "content": "Thanks. And A-2?"}
        ])
    );
    let order_schema: serde_json::Value = serde_json::from_str(ORDER_SCHEMA).unwrap();
    assert_eq!(
        sent["tools"],
        json!([
            {"type": "function", "function": {"name": "lookup_order",
                "description": "Finds an order by its id.", "parameters": order_schema,
                "strict": true}},
            {"type": "function", "function": {"name": "escalate"}}
        ])
    );
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "function", "function": {"name": "lookup_order"}})
    );
    assert_eq!(sent["parallel_tool_calls"], json!(false));
    assert_eq!(
        sent["response_format"],
        json!({"type": "json_schema",
            "json_schema": {"name": "order", "schema": order_schema, "strict": true}})
    );
}

#[tokio::test]
async fn a_request_without_tools_sends_none_of_their_fields() {
    for flavor in FLAVORS {
        let sent = sent_body(flavor, &request()).await;
        for field in [
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "response_format",
        ] {
            assert!(sent.get(field).is_none(), "{flavor:?} sent {field}: {sent}");
        }
    }
}

#[tokio::test]
async fn a_tool_choice_without_tools_is_not_sent_as_the_apis_refuse_it() {
    for flavor in FLAVORS {
        let request = ChatRequest {
            tool_choice: Some(ToolChoice::Required),
            parallel_tool_calls: Some(false),
            ..request()
        };
        let sent = sent_body(flavor, &request).await;
        assert!(sent.get("tool_choice").is_none(), "{flavor:?}: {sent}");
        assert!(
            sent.get("parallel_tool_calls").is_none(),
            "{flavor:?}: {sent}"
        );
    }
}

#[tokio::test]
async fn text_that_is_not_json_where_json_belongs_is_refused_before_any_call() {
    let broken_schema = ChatRequest {
        tools: Arc::from(vec![ToolDefinition {
            parameters: Some("{not json".to_owned()),
            ..tools()[0].clone()
        }]),
        ..request()
    };
    let mut broken_arguments = after_a_tool_call();
    broken_arguments.messages[1].tool_calls[0].arguments = "{\"order_id\": ".to_owned();
    let cases = [
        (
            Flavor::OpenAi,
            &broken_schema,
            "a tool's parameters is not JSON",
        ),
        (
            Flavor::Anthropic,
            &broken_schema,
            "a tool's parameters is not JSON",
        ),
        (
            Flavor::Anthropic,
            &broken_arguments,
            "a tool call's arguments is not JSON",
        ),
    ];
    for (flavor, request, expected) in cases {
        let fake = Fake::start(vec![Reply::json(200, &flavor.answer())]).await;
        let err = flavor
            .start_provider(&fake)
            .complete(request)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Invalid(text) if text.contains(expected)),
            "{flavor:?}: {err:?}"
        );
        assert!(fake.requests().is_empty(), "{flavor:?} called upstream");
    }
}

#[tokio::test]
async fn anthropic_gets_input_schemas_its_tool_choice_and_tool_blocks() {
    let sent = sent_body(Flavor::Anthropic, &after_a_tool_call()).await;
    let order_schema: serde_json::Value = serde_json::from_str(ORDER_SCHEMA).unwrap();
    assert_eq!(
        sent["tools"],
        json!([
            {"name": "lookup_order", "description": "Finds an order by its id.",
                "input_schema": order_schema},
            {"name": "escalate", "input_schema": {"type": "object"}}
        ])
    );
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "tool", "name": "lookup_order", "disable_parallel_tool_use": true})
    );
    // The tool's result and the user's next words share one user turn, result first.
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": "Where is order A-1?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1",
                "name": "lookup_order", "input": {"order_id": "A-1"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "shipped today"},
                {"type": "text", "text": "Thanks. And A-2?"}]}
        ])
    );
    assert!(sent.get("response_format").is_none());
}

#[tokio::test]
async fn anthropic_tool_choices_translate_word_by_word() {
    let cases = [
        (Some(ToolChoice::Auto), None, json!({"type": "auto"})),
        (Some(ToolChoice::None), Some(false), json!({"type": "none"})),
        (Some(ToolChoice::Required), None, json!({"type": "any"})),
        (
            Some(ToolChoice::Required),
            Some(false),
            json!({"type": "any", "disable_parallel_tool_use": true}),
        ),
        (
            None,
            Some(false),
            json!({"type": "auto", "disable_parallel_tool_use": true}),
        ),
        (None, Some(true), serde_json::Value::Null),
    ];
    for (choice, parallel, expected) in cases {
        let request = ChatRequest {
            tools: tools(),
            tool_choice: choice.clone(),
            parallel_tool_calls: parallel,
            ..request()
        };
        let sent = sent_body(Flavor::Anthropic, &request).await;
        assert_eq!(
            sent.get("tool_choice").cloned().unwrap_or_default(),
            expected,
            "{choice:?} {parallel:?}"
        );
        assert_eq!(sent["tools"].as_array().unwrap().len(), 2);
    }
}

#[tokio::test]
async fn every_provider_returns_a_whole_tool_call() {
    let arguments = r#"{"order_id":"A-2"}"#;
    for flavor in FLAVORS {
        let fake = Fake::start(vec![Reply::json(
            200,
            &flavor.tool_call_answer(&[("call_9", "lookup_order", arguments)]),
        )])
        .await;
        let answer = flavor
            .start_provider(&fake)
            .complete(&after_a_tool_call())
            .await
            .unwrap();
        assert_tool_call(&answer, "call_9", arguments, &format!("{flavor:?}"));
        assert_eq!(answer.usage.completion_tokens, 9, "{flavor:?}");
    }
    let offline_request = ChatRequest {
        messages: vec![ChatMessage::text(
            Role::User,
            format!("call lookup_order {arguments}"),
        )],
        ..after_a_tool_call()
    };
    let answer = offline().complete(&offline_request).await.unwrap();
    assert_tool_call(&answer, "call_offline_0", arguments, "offline");
}

fn assert_tool_call(answer: &ChatResponse, id: &str, arguments: &str, who: &str) {
    assert_eq!(
        answer.tool_calls,
        vec![ToolCall {
            id: id.to_owned(),
            name: "lookup_order".to_owned(),
            arguments: arguments.to_owned(),
        }],
        "{who}"
    );
    assert_eq!(answer.text, "", "{who}");
    assert_eq!(answer.finish_reason, "tool_calls", "{who}");
}

#[tokio::test]
async fn every_provider_streams_a_tool_call_in_pieces() {
    let pieces = [r#"{"order"#, r#"_id": "#, r#""A-2"}"#];
    for flavor in FLAVORS {
        let fake = Fake::start(vec![Reply::sse(
            &flavor.tool_call_stream(("call_9", "lookup_order"), &pieces),
        )])
        .await;
        let stream = flavor
            .start_provider(&fake)
            .stream(&after_a_tool_call())
            .await
            .unwrap();
        let events: Vec<StreamEvent> = events_of(stream).await;
        let tool_events = events
            .iter()
            .filter(|e| matches!(e, StreamEvent::ToolCall(_)))
            .count();
        assert!(tool_events >= pieces.len(), "{flavor:?}: {events:?}");
        let (text, calls, finish) = assemble(events);
        assert_eq!(text, "", "{flavor:?}");
        assert_eq!(
            calls,
            vec![ToolCall {
                id: "call_9".to_owned(),
                name: "lookup_order".to_owned(),
                arguments: pieces.concat(),
            }],
            "{flavor:?}"
        );
        assert_eq!(finish, "tool_calls", "{flavor:?}");
    }
    let offline_request = ChatRequest {
        messages: vec![ChatMessage::text(
            Role::User,
            format!("call lookup_order {}", pieces.concat()),
        )],
        ..after_a_tool_call()
    };
    let stream = offline().stream(&offline_request).await.unwrap();
    let events = events_of(stream).await;
    let (text, calls, finish) = assemble(events);
    assert_eq!(text, "");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].arguments, pieces.concat());
    assert_eq!(finish, "tool_calls");
}

#[tokio::test]
async fn on_anthropic_a_json_schema_is_a_forced_output_tool_whose_input_is_the_answer() {
    let output = r#"{"order_id":"A-2"}"#;
    let request = ChatRequest {
        response_format: Some(order_format()),
        ..request()
    };
    let fake = Fake::start(vec![
        Reply::json(
            200,
            &Flavor::Anthropic.tool_call_answer(&[("toolu_1", "order", output)]),
        ),
        Reply::sse(
            &Flavor::Anthropic
                .tool_call_stream(("toolu_2", "order"), &[r#"{"order_id""#, r#":"A-2"}"#]),
        ),
    ])
    .await;
    let provider = Flavor::Anthropic.start_provider(&fake);

    let answer = provider.complete(&request).await.unwrap();
    assert_eq!(answer.text, output);
    assert_eq!(answer.tool_calls, vec![]);
    assert_eq!(answer.finish_reason, "stop");

    let events = events_of(provider.stream(&request).await.unwrap()).await;
    let (text, calls, finish) = assemble(events);
    assert_eq!(text, output);
    assert_eq!(calls, vec![]);
    assert_eq!(finish, "stop");

    let sent = fake.requests()[0].json();
    let order_schema: serde_json::Value = serde_json::from_str(ORDER_SCHEMA).unwrap();
    assert_eq!(
        sent["tools"],
        json!([{"name": "order", "description": "Answer with the output in this form.",
            "input_schema": order_schema}])
    );
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "tool", "name": "order"})
    );
    assert!(sent.get("response_format").is_none());
}

#[tokio::test]
async fn on_anthropic_json_object_forces_json_output_and_other_tools_leave_the_model_a_choice() {
    let fake = Fake::start(vec![
        Reply::json(200, &Flavor::Anthropic.answer()),
        Reply::json(200, &Flavor::Anthropic.answer()),
    ])
    .await;
    let provider = Flavor::Anthropic.start_provider(&fake);
    let json_object = ChatRequest {
        response_format: Some(Arc::new(ResponseFormat::JsonObject)),
        ..request()
    };
    provider.complete(&json_object).await.unwrap();
    let with_tools = ChatRequest {
        tools: tools(),
        tool_choice: Some(ToolChoice::Auto),
        ..json_object.clone()
    };
    provider.complete(&with_tools).await.unwrap();

    let sent = fake.requests();
    let alone = sent[0].json();
    assert_eq!(
        alone["tools"],
        json!([{"name": "json_output", "description": "Answer with a JSON object.",
            "input_schema": {"type": "object"}}])
    );
    assert_eq!(
        alone["tool_choice"],
        json!({"type": "tool", "name": "json_output"})
    );
    let beside = sent[1].json();
    let names: Vec<&str> = beside["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lookup_order", "escalate", "json_output"]);
    assert_eq!(beside["tool_choice"], json!({"type": "any"}));
}

#[tokio::test]
async fn the_offline_provider_calls_only_a_declared_tool_with_an_object_and_echoes_results() {
    let provider = offline();
    let said = |text: &str, choice: Option<ToolChoice>| ChatRequest {
        messages: vec![ChatMessage::text(Role::User, text)],
        tool_choice: choice,
        ..after_a_tool_call()
    };
    for (text, choice) in [
        (r#"call unknown_tool {"a":1}"#, None),
        (r#"call lookup_order [1, 2]"#, None),
        (r#"call lookup_order {not json"#, None),
        (r#"call lookup_order"#, None),
        (r#"please call lookup_order {"a":1}"#, None),
        (r#"call lookup_order {"a":1}"#, Some(ToolChoice::None)),
    ] {
        let answer = provider.complete(&said(text, choice)).await.unwrap();
        assert_eq!(answer.tool_calls, vec![], "{text}");
        assert_eq!(answer.text, format!("{OFFLINE_LABEL} You said: {text}"));
        assert_eq!(answer.finish_reason, "stop");
    }
    // Without tools, the words are only words.
    let no_tools = ChatRequest {
        tools: Arc::from(Vec::new()),
        ..said(r#"call lookup_order {"a":1}"#, None)
    };
    assert_eq!(
        provider.complete(&no_tools).await.unwrap().tool_calls,
        vec![]
    );

    // After the tool's result, the offline provider echoes the result.
    let mut after_result = after_a_tool_call();
    after_result.messages.pop();
    let answer = provider.complete(&after_result).await.unwrap();
    assert_eq!(
        answer.text,
        format!("{OFFLINE_LABEL} The tool answered: shipped today")
    );
    assert_eq!(answer.finish_reason, "stop");
}
