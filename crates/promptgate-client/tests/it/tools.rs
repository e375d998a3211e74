//! Tools and structured output in the SDK, against a real gateway and its offline provider
//! (`builtin/echo`), which answers `call NAME {JSON}` with that tool call and a tool's result
//! with "The tool answered: …": versions with tools and formats read back and removed, a tool
//! round trip whole and streamed, the output check, and the typed error naming a bad field.

use futures_util::StreamExt;
use promptgate_client::api::StreamToolCall;
use promptgate_client::{
    Client, Error, Invocation, InvokeEvent, OutputFormat, PromptDraft, ToolChoice, VersionDraft,
    function_tool,
};
use serde_json::{Value, json};

use crate::gateway::TestGateway;

const ARGS: &str = r#"{"id": "A-1"}"#;

fn order_parameters() -> Value {
    json!({
        "type": "object",
        "properties": {"id": {"type": "string"}},
        "required": ["id"]
    })
}

fn answer_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"status": {"type": "string"}},
        "required": ["status"]
    })
}

/// A prompt on the offline provider with the tool `get_order`; answers its id.
async fn order_desk(client: &Client, name: &str) -> String {
    let draft = PromptDraft::new(name, "builtin/echo")
        .system_prompt("You look orders up.")
        .function_tool(
            "get_order",
            "Looks an order up by its id.",
            order_parameters(),
        );
    client.create_prompt(&draft).await.unwrap().value.id
}

#[tokio::test]
async fn a_version_keeps_its_tools_choice_and_format_and_a_new_one_can_drop_each() {
    let gateway = TestGateway::start().await;
    let client = gateway.admin();
    let draft = PromptDraft::new("order_desk", "builtin/echo")
        .system_prompt("You look orders up.")
        .function_tool(
            "get_order",
            "Looks an order up by its id.",
            order_parameters(),
        )
        .function_tool("cancel_order", "", order_parameters())
        .tool_choice(&ToolChoice::Function("get_order".into()))
        .response_format(&OutputFormat::json_schema("answer", answer_schema(), true));
    let created = client.create_prompt(&draft).await.unwrap();
    let id = created.value.id.clone();
    let names: Vec<_> = created
        .value
        .tools
        .iter()
        .map(|t| t.function.as_ref().unwrap().name.clone().unwrap())
        .collect();
    assert_eq!(names, ["get_order", "cancel_order"]);

    let version = client.get_version(&id, "1.0.0").await.unwrap();
    assert_eq!(
        version.tools,
        vec![
            function_tool(
                "get_order",
                "Looks an order up by its id.",
                order_parameters()
            ),
            function_tool("cancel_order", "", order_parameters()),
        ]
    );
    assert_eq!(
        version.tool_choice.as_ref().and_then(ToolChoice::from_wire),
        Some(ToolChoice::Function("get_order".into()))
    );
    let format = version
        .response_format
        .as_ref()
        .and_then(OutputFormat::from_wire);
    assert_eq!(
        format,
        Some(OutputFormat::json_schema("answer", answer_schema(), true))
    );
    // The definitions count towards the system prompt's tokens, as the provider sees them.
    let bare = client
        .create_prompt(
            &PromptDraft::new("order_desk_bare", "builtin/echo")
                .system_prompt("You look orders up."),
        )
        .await
        .unwrap();
    assert!(
        version.system_prompt_tokens > bare.value.system_prompt_tokens,
        "{} tokens with tools, {} without",
        version.system_prompt_tokens,
        bare.value.system_prompt_tokens
    );

    // Left out, a new version keeps the newest one's settings.
    client
        .add_version(
            &id,
            &VersionDraft::new("1.1.0").system_prompt("Be brief."),
            None,
        )
        .await
        .unwrap();
    let kept = client.get_version(&id, "1.1.0").await.unwrap();
    assert_eq!(kept.tools, version.tools);
    assert_eq!(kept.tool_choice, version.tool_choice);
    assert_eq!(kept.response_format, version.response_format);

    // Removed, each is gone (the choice goes with the tools it names).
    let removed = VersionDraft::new("1.2.0")
        .remove_tools()
        .remove_tool_choice()
        .remove_response_format();
    client.add_version(&id, &removed, None).await.unwrap();
    let bare = client.get_version(&id, "1.2.0").await.unwrap();
    assert!(bare.tools.is_empty(), "{:?}", bare.tools);
    assert_eq!(bare.tool_choice, None);
    assert_eq!(bare.response_format, None);

    // Replaced: a new list, a word choice, a JSON-object format.
    let replaced = VersionDraft::new("1.3.0")
        .function_tool("track_parcel", "Where a parcel is.", order_parameters())
        .tool_choice(&ToolChoice::Required)
        .response_format(&OutputFormat::JsonObject);
    client.add_version(&id, &replaced, None).await.unwrap();
    let now = client.get_version(&id, "1.3.0").await.unwrap();
    assert_eq!(now.tools.len(), 1);
    assert_eq!(now.tool_choice, Some(json!("required")));
    assert_eq!(
        now.response_format
            .as_ref()
            .and_then(OutputFormat::from_wire),
        Some(OutputFormat::JsonObject)
    );
}

#[tokio::test]
async fn a_tool_call_round_trip_through_the_offline_provider() {
    let gateway = TestGateway::start().await;
    let client = gateway.admin();
    let id = order_desk(&client, "order_desk").await;
    let asked = format!("call get_order {ARGS}");

    let answer = client
        .invoke(Invocation::new(&id, asked.clone()).session("s-1").request())
        .await
        .unwrap();
    assert_eq!(answer.finish_reason, "tool_calls");
    assert_eq!(answer.tool_calls.len(), 1, "{answer:?}");
    let call = &answer.tool_calls[0];
    assert_eq!(call.name.as_deref(), Some("get_order"));
    assert_eq!(call.arguments.as_deref(), Some(ARGS));
    let call_id = call.id.clone().unwrap();
    assert!(!call_id.is_empty());
    // Without a response format there is nothing to parse.
    assert_eq!(answer.parsed, None);

    // The caller runs the tool and sends its result back, with no new user input.
    let next = Invocation::continuation(&id)
        .session("s-1")
        .messages(&[("user", asked.as_str())])
        .assistant_tool_calls(&answer.tool_calls)
        .tool_result(&call_id, r#"{"status": "shipped"}"#);
    let finished = client.invoke(next.request()).await.unwrap();
    assert_eq!(finished.finish_reason, "stop");
    assert!(finished.tool_calls.is_empty(), "{finished:?}");
    let output = finished.output.unwrap_or_default();
    assert!(
        output.contains(r#"The tool answered: {"status": "shipped"}"#),
        "{output}"
    );

    // A word that names no tool is echoed: the provider calls only the version's tools.
    let other = client
        .invoke(Invocation::new(&id, format!("call delete_everything {ARGS}")).request())
        .await
        .unwrap();
    assert_eq!(other.finish_reason, "stop");
    assert!(other.tool_calls.is_empty());
}

#[tokio::test]
async fn a_streamed_tool_call_comes_in_pieces_and_whole_in_done() {
    let gateway = TestGateway::start().await;
    let client = gateway.admin();
    let id = order_desk(&client, "order_desk").await;
    let mut events = client
        .invoke_stream(Invocation::new(&id, format!("call get_order {ARGS}")).request())
        .await
        .unwrap();
    let mut pieces: Vec<StreamToolCall> = Vec::new();
    let mut text = String::new();
    let mut done = None;
    while let Some(event) = events.next().await {
        match event.unwrap() {
            InvokeEvent::ToolCall(piece) => pieces.push(piece),
            InvokeEvent::Delta(delta) => text.push_str(&delta),
            InvokeEvent::Done(answer) => done = Some(answer),
            other => panic!("unexpected event {other:?}"),
        }
    }
    let done = done.expect("a done event");
    assert!(text.is_empty(), "a call without text: {text:?}");
    assert!(!pieces.is_empty());
    assert!(pieces.iter().all(|p| p.index == 0), "{pieces:?}");
    assert_eq!(pieces[0].name.as_deref(), Some("get_order"));
    let arguments: String = pieces.iter().map(|p| p.arguments_delta.as_str()).collect();
    assert_eq!(arguments, ARGS);
    assert_eq!(done.finish_reason, "tool_calls");
    assert_eq!(done.tool_calls.len(), 1);
    assert_eq!(done.tool_calls[0].id, pieces[0].id);
    assert_eq!(done.tool_calls[0].arguments.as_deref(), Some(ARGS));
}

#[tokio::test]
async fn an_output_that_breaks_the_json_format_is_parsed_null_with_its_errors() {
    let gateway = TestGateway::start().await;
    let client = gateway.admin();
    let draft = PromptDraft::new("json_desk", "builtin/echo")
        .system_prompt("Answer in JSON.")
        .response_format(&OutputFormat::json_schema("answer", answer_schema(), true));
    let id = client.create_prompt(&draft).await.unwrap().value.id;
    let answer = client
        .invoke(Invocation::new(&id, "Where is my order?").request())
        .await
        .unwrap();
    // The offline provider never answers JSON.
    assert_eq!(answer.parsed, Some(None), "{answer:?}");
    let errors = answer.output_errors.unwrap_or_default();
    assert!(!errors.is_empty());
    assert!(errors.iter().all(|e| !e.message.is_empty()), "{errors:?}");
}

#[tokio::test]
async fn bad_tool_settings_are_a_typed_error_naming_the_field() {
    let gateway = TestGateway::start().await;
    let client = gateway.admin();
    let duplicate = PromptDraft::new("dup", "builtin/echo")
        .system_prompt("x")
        .function_tool("get_order", "", order_parameters())
        .function_tool("get_order", "", order_parameters());
    let err = client.create_prompt(&duplicate).await.unwrap_err();
    match &err {
        Error::InvalidToolSettings {
            violations,
            context_id,
        } => {
            let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
            assert_eq!(fields, ["tools[1].function.name"]);
            assert!(context_id.is_some());
        }
        other => panic!("expected InvalidToolSettings, got {other:?}"),
    }
    assert!(err.to_string().contains("tools[1].function.name"), "{err}");

    // A choice naming no tool, and a version that calls for JSON but gives no schema.
    let id = order_desk(&client, "order_desk").await;
    let err = client
        .add_version(
            &id,
            &VersionDraft::new("1.1.0").tool_choice(&ToolChoice::Function("missing".into())),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidToolSettings { violations, .. }
            if violations.iter().any(|v| v.field.starts_with("toolChoice"))),
        "{err:?}"
    );
    let broken_schema = VersionDraft::new("1.1.0").response_format(&OutputFormat::json_schema(
        "answer",
        json!({"type": "no-such-type"}),
        true,
    ));
    let err = client
        .add_version(&id, &broken_schema, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidToolSettings { violations, .. }
            if violations.iter().all(|v| v.field.starts_with("responseFormat"))),
        "{err:?}"
    );
    // Nothing was created by the refusals.
    let prompt = client.get_prompt(&id).await.unwrap();
    assert_eq!(prompt.value.versions, ["1.0.0"]);
}
