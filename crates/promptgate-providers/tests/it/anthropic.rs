//! The Anthropic provider's wire format.

use promptgate_providers::{
    ANTHROPIC_DEFAULT_MAX_TOKENS, ChatRequest, ProviderError, StreamEvent, Usage,
};
use serde_json::json;

use crate::common::{Flavor, KEY, collect, request};
use promptgate_fake_upstream::{Fake, Reply};

#[tokio::test]
async fn sends_the_documented_request_body_and_headers() {
    let fake = Fake::start(vec![Reply::json(200, &Flavor::Anthropic.answer())]).await;
    Flavor::Anthropic
        .start_provider(&fake)
        .complete(&request())
        .await
        .unwrap();

    let sent = fake.only_request();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(
        sent.json(),
        json!({
            "model": "claude-3-5-sonnet-latest",
            "system": "You are a terse support agent.",
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello! How can I help?"},
                {"role": "user", "content": "Where is my order?"}
            ],
            "max_tokens": 64,
            "temperature": 0.25
        })
    );
}

#[tokio::test]
async fn max_tokens_defaults_and_an_empty_system_is_left_out() {
    let fake = Fake::start(vec![Reply::json(200, &Flavor::Anthropic.answer())]).await;
    let request = ChatRequest {
        system: String::new(),
        max_output_tokens: None,
        ..request()
    };
    Flavor::Anthropic
        .start_provider(&fake)
        .complete(&request)
        .await
        .unwrap();

    let body = fake.only_request().json();
    assert_eq!(body.get("system"), None);
    assert_eq!(body["max_tokens"], json!(ANTHROPIC_DEFAULT_MAX_TOKENS));
    assert_eq!(ANTHROPIC_DEFAULT_MAX_TOKENS, 1024);
}

#[tokio::test]
async fn streaming_sets_stream() {
    let (reply, mut feed) = Reply::stream();
    let fake = Fake::start(vec![reply]).await;
    feed.send(&Flavor::Anthropic.stream_start());
    feed.send(&Flavor::Anthropic.stream_rest());
    feed.finish();
    let stream = Flavor::Anthropic
        .start_provider(&fake)
        .stream(&request())
        .await
        .unwrap();
    assert_eq!(collect(stream).await.len(), 3);
    let sent = fake.only_request();
    assert_eq!(sent.json()["stream"], json!(true));
    assert_eq!(sent.header("x-api-key"), Some(KEY));
}

#[tokio::test]
async fn parses_text_blocks_usage_and_normalises_the_stop_reason() {
    let truncated = json!({
        "id": "msg_02", "type": "message", "role": "assistant",
        "model": "claude-3-5-sonnet-20241022",
        "content": [{"type": "text", "text": "Your order "}, {"type": "text", "text": "ships"}],
        "stop_reason": "max_tokens", "stop_sequence": null,
        "usage": {"input_tokens": 20, "cache_read_input_tokens": 11, "output_tokens": 3}
    });
    let fake = Fake::start(vec![
        Reply::json(200, &Flavor::Anthropic.answer()),
        Reply::json(200, &truncated.to_string()),
    ])
    .await;
    let provider = Flavor::Anthropic.start_provider(&fake);

    let answer = provider.complete(&request()).await.unwrap();
    assert_eq!(answer.text, "Your order ships today.");
    assert_eq!(
        answer.usage,
        Usage {
            prompt_tokens: 31,
            completion_tokens: 6
        }
    );
    assert_eq!(answer.finish_reason, "stop");
    assert_eq!(answer.model, "claude-3-5-sonnet-20241022");

    let answer = provider.complete(&request()).await.unwrap();
    assert_eq!(answer.text, "Your order ships");
    assert_eq!(answer.finish_reason, "length");
    // Cached prompt tokens are prompt tokens too.
    assert_eq!(answer.usage.prompt_tokens, 31);
}

#[tokio::test]
async fn an_error_event_ends_the_stream_with_upstream() {
    let (reply, mut feed) = Reply::stream();
    let fake = Fake::start(vec![reply]).await;
    feed.send(&Flavor::Anthropic.stream_start());
    feed.send(
        "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n",
    );
    let stream = Flavor::Anthropic
        .start_provider(&fake)
        .stream(&request())
        .await
        .unwrap();
    // The relay stops at the error without waiting for the body to end.
    let events = collect(stream).await;
    assert_eq!(
        events,
        vec![
            Ok(StreamEvent::Delta("Hel".to_owned())),
            Err(ProviderError::Upstream {
                status: None,
                message: "overloaded_error: Overloaded".to_owned()
            })
        ]
    );
    feed.finish();
}
