//! The OpenAI-compatible provider's wire format.

use futures_util::StreamExt;
use promptgate_core::{ModelEndpoint, ProviderKind, TokenCounter, TokenizerKind};
use promptgate_providers::{
    ChatMessage, ChatRequest, ProviderError, Role, StreamEvent, Usage, provider_for,
};
use serde_json::json;

use crate::common::{Flavor, KEY, collect, request};
use promptgate_fake_upstream::{Fake, Reply};

#[tokio::test]
async fn sends_the_documented_request_body_and_headers() {
    let fake = Fake::start(vec![Reply::json(200, &Flavor::OpenAi.answer())]).await;
    Flavor::OpenAi
        .start_provider(&fake)
        .complete(&request())
        .await
        .unwrap();

    let sent = fake.only_request();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.header("authorization"),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("x-api-key"), None);
    assert_eq!(
        sent.json(),
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a terse support agent."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello! How can I help?"},
                {"role": "user", "content": "Where is my order?"}
            ],
            "temperature": 0.25,
            "max_tokens": 64,
            "stream": false
        })
    );
}

#[tokio::test]
async fn streaming_asks_for_usage_in_the_stream() {
    let (reply, mut feed) = Reply::stream();
    let fake = Fake::start(vec![reply]).await;
    feed.send(&Flavor::OpenAi.stream_start());
    feed.send(&Flavor::OpenAi.stream_rest());
    feed.finish();
    let stream = Flavor::OpenAi
        .start_provider(&fake)
        .stream(&request())
        .await
        .unwrap();
    assert_eq!(collect(stream).await.len(), 3);

    let body = fake.only_request().json();
    assert_eq!(body["stream"], json!(true));
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["max_tokens"], json!(64));
}

#[tokio::test]
async fn a_local_server_gets_no_authorization_and_optional_fields_are_left_out() {
    let fake = Fake::start(vec![Reply::json(200, &Flavor::OpenAi.answer())]).await;
    let mut endpoint = Flavor::OpenAi.endpoint(&fake.url);
    endpoint.api_key_env = None;
    let request = ChatRequest {
        system: String::new(),
        messages: vec![ChatMessage::text(Role::User, "Hi")],
        temperature: 1.0,
        max_output_tokens: None,
        ..ChatRequest::default()
    };
    Flavor::OpenAi
        .provider(&endpoint)
        .complete(&request)
        .await
        .unwrap();

    let sent = fake.only_request();
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(
        sent.json(),
        json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Hi"}],
            "temperature": 1.0,
            "stream": false
        })
    );
}

#[tokio::test]
async fn parses_the_answer_usage_and_finish_reason() {
    let truncated = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Your order"},
            "logprobs": null, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 31, "completion_tokens": 2, "total_tokens": 33}
    });
    let fake = Fake::start(vec![
        Reply::json(200, &Flavor::OpenAi.answer()),
        Reply::json(200, &truncated.to_string()),
    ])
    .await;
    let provider = Flavor::OpenAi.start_provider(&fake);

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
    assert_eq!(answer.model, "gpt-4o-mini-2024-07-18");

    let answer = provider.complete(&request()).await.unwrap();
    assert_eq!(
        (answer.text.as_str(), answer.finish_reason.as_str()),
        ("Your order", "length")
    );
}

#[tokio::test]
async fn a_server_that_reports_no_usage_is_counted_locally() {
    // Some OpenAI-compatible servers leave `usage` out.
    let answer = json!({
        "id": "1", "object": "chat.completion", "created": 1, "model": "llama3",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello world"},
            "finish_reason": "stop"}]
    });
    let fake = Fake::start(vec![Reply::json(200, &answer.to_string())]).await;
    let endpoint = Flavor::OpenAi
        .endpoint(&fake.url)
        .with_tokenizer(TokenizerKind::O200kBase);
    let answer = Flavor::OpenAi
        .provider(&endpoint)
        .complete(&request())
        .await
        .unwrap();

    let counter = TokenCounter::load();
    let request = request();
    let prompt: usize = std::iter::once(&request.system)
        .chain(request.messages.iter().map(|m| &m.content))
        .map(|text| counter.count(TokenizerKind::O200kBase, text))
        .sum();
    assert_eq!(
        answer.usage,
        Usage {
            prompt_tokens: u32::try_from(prompt).unwrap(),
            completion_tokens: 2
        }
    );
}

#[tokio::test]
async fn an_error_chunk_in_the_stream_ends_it_with_upstream() {
    let (reply, mut feed) = Reply::stream();
    let fake = Fake::start(vec![reply]).await;
    feed.send(&Flavor::OpenAi.stream_start());
    feed.send(
        "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}\n\n",
    );
    feed.finish();
    let stream = Flavor::OpenAi
        .start_provider(&fake)
        .stream(&request())
        .await
        .unwrap();
    let events = collect(stream).await;
    assert_eq!(
        events,
        vec![
            Ok(StreamEvent::Delta("Hel".to_owned())),
            Err(ProviderError::Upstream {
                status: None,
                message: "server_error: The server had an error".to_owned()
            })
        ]
    );
}

#[tokio::test]
async fn a_stream_cut_before_the_finish_is_an_error() {
    let (reply, mut feed) = Reply::stream();
    let fake = Fake::start(vec![reply]).await;
    feed.send(&Flavor::OpenAi.stream_start());
    feed.finish();
    let mut stream = Flavor::OpenAi
        .start_provider(&fake)
        .stream(&request())
        .await
        .unwrap();
    assert_eq!(
        stream.next().await,
        Some(Ok(StreamEvent::Delta("Hel".to_owned())))
    );
    assert!(matches!(
        stream.next().await,
        Some(Err(ProviderError::Upstream { status: None, .. }))
    ));
    assert_eq!(stream.next().await, None);
}

#[tokio::test]
async fn the_key_is_read_from_the_named_environment_variable() {
    // Cargo sets CARGO_PKG_NAME for the tests it runs; changing the environment would need
    // `unsafe`, which the workspace forbids.
    let fake = Fake::start(vec![Reply::json(200, &Flavor::OpenAi.answer())]).await;
    let endpoint = ModelEndpoint::new(
        "test/env",
        ProviderKind::OpenAi,
        &format!("{}/v1", fake.url),
        "gpt-4o-mini",
        Some("CARGO_PKG_NAME"),
        128_000,
    );
    let provider = provider_for(
        &endpoint,
        promptgate_providers::http_client().unwrap(),
        TokenCounter::load(),
    );
    provider.complete(&request()).await.unwrap();
    assert_eq!(
        fake.only_request().header("authorization"),
        Some("Bearer promptgate-providers")
    );
}
