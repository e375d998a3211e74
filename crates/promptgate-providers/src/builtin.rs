//! The offline provider (`provider = "builtin"`): no network, no model. It answers
//! deterministically and says so in the answer itself, so that nobody mistakes its output for a
//! model's; it lets a fresh gateway, its tests and its demos run without any key.
//!
//! Its rules, in order:
//! - **A tool call.** When the newest turn is the user's `call NAME ARGS`, NAME is one of the
//!   request's tools, ARGS is a JSON object and `tool_choice` is not `none`, it answers with
//!   that one call (id `call_offline_N`, N the number of turns before it; ARGS as written,
//!   trimmed) and `finish_reason` `tool_calls`, and no text.
//! - **After a tool result** (the newest turn is a tool's), it echoes the result:
//!   `<label> The tool answered: CONTENT`.
//! - Otherwise it echoes the newest user turn: `<label> You said: TEXT`.

use futures_util::StreamExt;
use promptgate_core::{ModelEndpoint, TokenCounter, TokenizerKind};

use crate::{
    ChatRequest, ChatResponse, EventStream, Provider, ProviderError, Role, StreamEvent, ToolCall,
    ToolCallDelta, ToolChoice, Usage,
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
        let prompt_tokens = request
            .messages
            .iter()
            .fold(self.count(&request.system), |total, message| {
                total.saturating_add(self.count(&message.content))
            });
        if let Some(call) = requested_call(request) {
            return ChatResponse {
                usage: Usage {
                    prompt_tokens,
                    completion_tokens: self.count(&call.arguments),
                },
                text: String::new(),
                tool_calls: vec![call],
                finish_reason: "tool_calls".to_owned(),
                model: self.model.clone(),
            };
        }
        let full = match request.messages.last() {
            Some(last) if last.role == Role::Tool => {
                format!("{OFFLINE_LABEL} The tool answered: {}", last.content)
            }
            _ => {
                let said = request
                    .messages
                    .iter()
                    .rev()
                    .find(|message| message.role == Role::User)
                    .map_or("", |message| message.content.as_str());
                format!("{OFFLINE_LABEL} You said: {said}")
            }
        };
        let (text, finish_reason) = match request.max_output_tokens {
            Some(limit) if self.count(&full) > limit => (self.truncate(&full, limit), "length"),
            _ => (full, "stop"),
        };
        ChatResponse {
            usage: Usage {
                prompt_tokens,
                completion_tokens: self.count(&text),
            },
            text,
            tool_calls: Vec::new(),
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

/// The tool call the newest user turn asks for (`call NAME {…}`), under the rule above.
fn requested_call(request: &ChatRequest) -> Option<ToolCall> {
    if request.tool_choice == Some(ToolChoice::None) {
        return None;
    }
    let last = request.messages.last().filter(|m| m.role == Role::User)?;
    let rest = last.content.trim().strip_prefix("call ")?.trim_start();
    let (name, arguments) = rest.split_once(char::is_whitespace)?;
    let arguments = arguments.trim();
    if !request.tools.iter().any(|tool| tool.name == name) {
        return None;
    }
    let is_object =
        serde_json::from_str::<serde_json::Value>(arguments).is_ok_and(|value| value.is_object());
    is_object.then(|| ToolCall {
        id: format!("call_offline_{}", request.messages.len() - 1),
        name: name.to_owned(),
        arguments: arguments.to_owned(),
    })
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
        // A call in two pieces (its id and name, then its arguments), as a model streams one.
        for (index, call) in (0u32..).zip(answer.tool_calls) {
            events.push(Ok(StreamEvent::ToolCall(ToolCallDelta {
                index,
                id: Some(call.id),
                name: Some(call.name),
                arguments_delta: String::new(),
            })));
            events.push(Ok(StreamEvent::ToolCall(ToolCallDelta {
                index,
                id: None,
                name: None,
                arguments_delta: call.arguments,
            })));
        }
        events.push(Ok(StreamEvent::Done {
            usage: answer.usage,
            finish_reason: answer.finish_reason,
            model: answer.model,
        }));
        Ok(futures_util::stream::iter(events).boxed())
    }
}
