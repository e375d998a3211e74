//! The offline provider: deterministic, labelled, counted with the real tokenizer.

use promptgate_core::{EndpointCatalogue, TokenCounter};
use promptgate_providers::{
    ChatRequest, OFFLINE_LABEL, Provider, StreamEvent, http_client, provider_for,
};
use std::sync::Arc;

use crate::common::{collect, request};

fn echo() -> (Arc<dyn Provider>, promptgate_core::ModelEndpoint) {
    let catalogue = EndpointCatalogue::with_overrides([]);
    let endpoint = catalogue.get("builtin/echo").unwrap().clone();
    let provider = provider_for(&endpoint, http_client().unwrap(), TokenCounter::load());
    (provider, endpoint)
}

#[tokio::test]
async fn answers_deterministically_and_says_it_is_offline() {
    let (provider, endpoint) = echo();
    let first = provider.complete(&request()).await.unwrap();
    let second = provider.complete(&request()).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(
        first.text,
        "[promptgate offline provider — no model was called] You said: Where is my order?"
    );
    assert!(first.text.starts_with(OFFLINE_LABEL));
    assert_eq!(first.finish_reason, "stop");
    assert_eq!(first.model, "echo");

    let counter = TokenCounter::load();
    let request = request();
    let prompt: usize = std::iter::once(&request.system)
        .chain(request.messages.iter().map(|m| &m.content))
        .map(|text| counter.count(endpoint.tokenizer, text))
        .sum();
    assert_eq!(first.usage.prompt_tokens, u32::try_from(prompt).unwrap());
    assert_eq!(
        first.usage.completion_tokens,
        u32::try_from(counter.count(endpoint.tokenizer, &first.text)).unwrap()
    );
}

#[tokio::test]
async fn honours_max_output_tokens_by_truncating() {
    let (provider, endpoint) = echo();
    let counter = TokenCounter::load();
    let full = provider
        .complete(&ChatRequest {
            max_output_tokens: None,
            ..request()
        })
        .await
        .unwrap();
    for limit in [0, 1, 5, 12] {
        let cut = provider
            .complete(&ChatRequest {
                max_output_tokens: Some(limit),
                ..request()
            })
            .await
            .unwrap();
        assert!(full.text.starts_with(&cut.text), "{limit}: {:?}", cut.text);
        assert!(cut.text.len() < full.text.len(), "{limit}");
        assert!(cut.usage.completion_tokens <= limit, "{limit}");
        assert_eq!(
            cut.usage.completion_tokens,
            u32::try_from(counter.count(endpoint.tokenizer, &cut.text)).unwrap()
        );
        assert_eq!(cut.finish_reason, "length");
    }
    // A limit the answer fits in changes nothing.
    let fits = provider
        .complete(&ChatRequest {
            max_output_tokens: Some(full.usage.completion_tokens),
            ..request()
        })
        .await
        .unwrap();
    assert_eq!(fits, full);
}

#[tokio::test]
async fn streams_the_same_answer_in_several_deltas() {
    let (provider, _) = echo();
    let answer = provider.complete(&request()).await.unwrap();
    let events: Vec<StreamEvent> = collect(provider.stream(&request()).await.unwrap())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let (done, deltas) = events.split_last().unwrap();
    assert!(deltas.len() > 3, "{deltas:?}");
    let text: String = deltas
        .iter()
        .map(|event| match event {
            StreamEvent::Delta(text) => text.as_str(),
            other => panic!("{other:?} before the end"),
        })
        .collect();
    assert_eq!(text, answer.text);
    assert_eq!(
        done,
        &StreamEvent::Done {
            usage: answer.usage,
            finish_reason: answer.finish_reason,
            model: answer.model
        }
    );
}
