//! The offline provider (`provider = "builtin"`): no network, no model. It answers
//! deterministically and says so in the answer itself, so that nobody mistakes its output for a
//! model's; it lets a fresh gateway, its tests and its demos run without any key.

use futures_util::StreamExt;
use promptgate_core::{ModelEndpoint, TokenCounter, TokenizerKind};

use crate::{
    ChatRequest, ChatResponse, EventStream, Provider, ProviderError, Role, StreamEvent, Usage,
};

/// How every answer of the offline provider starts.
pub const OFFLINE_LABEL: &str = "[promptgate offline provider — no model was called]";

/// The offline provider.
#[derive(Debug)]
pub(crate) struct BuiltinProvider {
    model: String,
    tokenizer: TokenizerKind,
    counter: TokenCounter,
}

impl BuiltinProvider {
    pub(crate) fn new(endpoint: &ModelEndpoint, counter: TokenCounter) -> Self {
        BuiltinProvider {
            model: endpoint.model.clone(),
            tokenizer: endpoint.tokenizer,
            counter,
        }
    }

    fn count(&self, text: &str) -> u32 {
        u32::try_from(self.counter.count(self.tokenizer, text)).unwrap_or(u32::MAX)
    }

    /// The answer, cut to `max_output_tokens` as a model would be.
    fn answer(&self, request: &ChatRequest) -> ChatResponse {
        let said = request
            .messages
            .iter()
            .rev()
            .find(|message| message.role == Role::User)
            .map_or("", |message| message.content.as_str());
        let full = format!("{OFFLINE_LABEL} You said: {said}");
        let (text, finish_reason) = match request.max_output_tokens {
            Some(limit) if self.count(&full) > limit => (self.truncate(&full, limit), "length"),
            _ => (full, "stop"),
        };
        let prompt_tokens = request
            .messages
            .iter()
            .fold(self.count(&request.system), |total, message| {
                total.saturating_add(self.count(&message.content))
            });
        ChatResponse {
            usage: Usage {
                prompt_tokens,
                completion_tokens: self.count(&text),
            },
            text,
            finish_reason: finish_reason.to_owned(),
            model: self.model.clone(),
        }
    }

    /// The longest prefix of `text`, cut at a character boundary, of at most `limit` tokens.
    /// A binary search over the boundaries: counting every prefix would be quadratic.
    fn truncate(&self, text: &str, limit: u32) -> String {
        let boundaries: Vec<usize> = text
            .char_indices()
            .map(|(at, _)| at)
            .chain([text.len()])
            .collect();
        // Invariant: the prefix ending at boundaries[low] fits; the empty prefix always does.
        let (mut low, mut high) = (0, boundaries.len() - 1);
        while low < high {
            let middle = (low + high).div_ceil(2);
            if self.count(&text[..boundaries[middle]]) <= limit {
                low = middle;
            } else {
                high = middle - 1;
            }
        }
        text[..boundaries[low]].to_owned()
    }
}

#[async_trait::async_trait]
impl Provider for BuiltinProvider {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        Ok(self.answer(request))
    }

    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        let answer = self.answer(request);
        // Word by word, so that streaming clients see several deltas as they would from a model.
        let mut events: Vec<Result<StreamEvent, ProviderError>> = answer
            .text
            .split_inclusive(' ')
            .map(|word| Ok(StreamEvent::Delta(word.to_owned())))
            .collect();
        events.push(Ok(StreamEvent::Done {
            usage: answer.usage,
            finish_reason: answer.finish_reason,
            model: answer.model,
        }));
        Ok(futures_util::stream::iter(events).boxed())
    }
}
