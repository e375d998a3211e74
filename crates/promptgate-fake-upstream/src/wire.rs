//! The two providers' wire formats, as fixtures: OpenAI Chat Completions answers and chunk
//! streams, Anthropic Messages answers and event streams, and each provider's error body.
//!
//! One place renders every provider answer the tests and the benchmark send, so a format fix
//! reaches all of them. What an answer says about itself (its ids and dated model) is a
//! [`Fixtures`] value: the tests' [`Fixtures::TEST`], the benchmark's [`Fixtures::BENCH`], or a
//! suite's own (the providers' tests report real model names).

use serde_json::{Value, json};

/// The dated OpenAI model the kit's fixtures report (the configured alias is the caller's).
pub const OPENAI_REPORTED: &str = "gpt-fake-2024-07-18";
/// The dated Anthropic model the kit's fixtures report.
pub const ANTHROPIC_REPORTED: &str = "claude-fake-20241022";

/// `created` of every Chat Completions answer and chunk: fixed, so answers are reproducible.
const CREATED: u64 = 1_700_000_000;

/// What the rendered answers say about themselves: ids, dated models, and the prompt tokens a
/// stream reports (a whole answer takes its counts as arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixtures {
    /// The model a Chat Completions answer reports.
    pub openai_model: &'static str,
    /// The model a Messages answer reports.
    pub anthropic_model: &'static str,
    /// The `id` of a Chat Completions answer and of its chunks.
    pub openai_id: &'static str,
    /// The `system_fingerprint` of a Chat Completions answer and of its chunks.
    pub fingerprint: &'static str,
    /// The `id` of a Messages answer.
    pub anthropic_id: &'static str,
    /// The prompt (input) tokens a stream reports.
    pub stream_prompt_tokens: u32,
}

/// The two HTTP providers whose formats the kit speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// OpenAI Chat Completions (`POST /v1/chat/completions`).
    OpenAi,
    /// Anthropic Messages (`POST /v1/messages`).
    Anthropic,
}

/// Both flavors, for tests that every provider must pass.
pub const FLAVORS: [Flavor; 2] = [Flavor::OpenAi, Flavor::Anthropic];

impl Fixtures {
    /// The end-to-end tests' fixtures.
    pub const TEST: Fixtures = Fixtures {
        openai_model: OPENAI_REPORTED,
        anthropic_model: ANTHROPIC_REPORTED,
        openai_id: "chatcmpl-abc123",
        fingerprint: "fp_1",
        anthropic_id: "msg_01",
        stream_prompt_tokens: 31,
    };

    /// The benchmark binary's fixtures.
    pub const BENCH: Fixtures = Fixtures {
        openai_model: OPENAI_REPORTED,
        anthropic_model: ANTHROPIC_REPORTED,
        openai_id: "chatcmpl-fake",
        fingerprint: "fp_fake",
        anthropic_id: "msg_fake",
        stream_prompt_tokens: 24,
    };

    /// The model `flavor`'s answers report.
    pub fn reported_model(&self, flavor: Flavor) -> &'static str {
        match flavor {
            Flavor::OpenAi => self.openai_model,
            Flavor::Anthropic => self.anthropic_model,
        }
    }

    /// A successful whole answer with `text`, `prompt` + `completion` tokens, finished normally.
    pub fn answer(&self, flavor: Flavor, text: &str, prompt: u32, completion: u32) -> String {
        match flavor {
            Flavor::OpenAi => self.openai_answer(text, prompt, completion, "stop"),
            Flavor::Anthropic => self.anthropic_answer(text, prompt, completion, "end_turn"),
        }
    }

    /// A whole Chat Completions answer.
    pub fn openai_answer(
        &self,
        text: &str,
        prompt: u32,
        completion: u32,
        finish_reason: &str,
    ) -> String {
        json!({
            "id": self.openai_id, "object": "chat.completion", "created": CREATED,
            "model": self.openai_model, "system_fingerprint": self.fingerprint,
            "choices": [{"index": 0,
                "message": {"role": "assistant", "content": text, "refusal": null},
                "logprobs": null, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion}
        })
        .to_string()
    }

    /// A whole Messages answer.
    pub fn anthropic_answer(
        &self,
        text: &str,
        input: u32,
        output: u32,
        stop_reason: &str,
    ) -> String {
        json!({
            "id": self.anthropic_id, "type": "message", "role": "assistant",
            "model": self.anthropic_model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason, "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": output}
        })
        .to_string()
    }

    /// A whole stream of `pieces` (at least one) ending with `completion` tokens, one string per
    /// event, as a provider sends them: OpenAI's role chunk, a chunk per piece, the finish
    /// reason, the usage and `[DONE]`; Anthropic's message_start, content_block_start, ping, a
    /// content_block_delta per piece, content_block_stop, message_delta and message_stop.
    pub fn stream_events(&self, flavor: Flavor, pieces: &[&str], completion: u32) -> Vec<String> {
        let (first, rest) = pieces.split_first().map_or(("", &[][..]), |(f, r)| (*f, r));
        let mut out = self.start_events(flavor, first);
        out.extend(rest.iter().map(|piece| self.stream_delta(flavor, piece)));
        out.extend(self.end_events(flavor, completion));
        out
    }

    /// [`Fixtures::stream_events`] as one body.
    pub fn full_stream(&self, flavor: Flavor, pieces: &[&str], completion: u32) -> String {
        self.stream_events(flavor, pieces, completion).concat()
    }

    /// The stream up to and including the first text delta, `first`.
    pub fn stream_start(&self, flavor: Flavor, first: &str) -> String {
        self.start_events(flavor, first).concat()
    }

    /// One more text delta.
    pub fn stream_delta(&self, flavor: Flavor, text: &str) -> String {
        match flavor {
            Flavor::OpenAi => self.openai_chunk(json!({"content": text}), None),
            Flavor::Anthropic => anthropic_text_delta(text),
        }
    }

    /// The end of the stream: the stop reason and the usage (`completion` tokens).
    pub fn stream_end(&self, flavor: Flavor, completion: u32) -> String {
        self.end_events(flavor, completion).concat()
    }

    /// A whole answer that calls tools: each of `calls` is (id, name, arguments as JSON
    /// text; Anthropic's `input` is that JSON); no text; finished `tool_calls` (OpenAI) or `tool_use` (Anthropic).
    pub fn tool_call_answer(
        &self,
        flavor: Flavor,
        calls: &[(&str, &str, &str)],
        prompt: u32,
        completion: u32,
    ) -> String {
        match flavor {
            Flavor::OpenAi => {
                let tool_calls: Vec<Value> = calls
                    .iter()
                    .map(|(id, name, arguments)| {
                        json!({"id": id, "type": "function",
                            "function": {"name": name, "arguments": arguments}})
                    })
                    .collect();
                json!({
                    "id": self.openai_id, "object": "chat.completion", "created": CREATED,
                    "model": self.openai_model, "system_fingerprint": self.fingerprint,
                    "choices": [{"index": 0,
                        "message": {"role": "assistant", "content": null, "refusal": null,
                            "tool_calls": tool_calls},
                        "logprobs": null, "finish_reason": "tool_calls"}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                              "total_tokens": prompt + completion}
                })
                .to_string()
            }
            Flavor::Anthropic => {
                let content: Vec<Value> = calls
                    .iter()
                    .map(|(id, name, arguments)| {
                        // Text that is not JSON goes as a JSON string, as a broken upstream's
                        // would, so that a test can script one.
                        let input: Value = serde_json::from_str(arguments)
                            .unwrap_or_else(|_| Value::String((*arguments).to_owned()));
                        json!({"type": "tool_use", "id": id, "name": name, "input": input})
                    })
                    .collect();
                json!({
                    "id": self.anthropic_id, "type": "message", "role": "assistant",
                    "model": self.anthropic_model, "content": content,
                    "stop_reason": "tool_use", "stop_sequence": null,
                    "usage": {"input_tokens": prompt, "output_tokens": completion}
                })
                .to_string()
            }
        }
    }

    /// A stream that calls one tool, `id` and `name`, its arguments sent in `pieces`, ending
    /// with `completion` tokens, one string per event: OpenAI's role chunk, a chunk with the
    /// call's id and name, a chunk per piece, the finish reason `tool_calls`, the usage and
    /// `[DONE]`; Anthropic's message_start, a `tool_use` content_block_start, an
    /// `input_json_delta` per piece, content_block_stop, message_delta (`tool_use`) and
    /// message_stop.
    pub fn tool_call_stream_events(
        &self,
        flavor: Flavor,
        (id, name): (&str, &str),
        pieces: &[&str],
        completion: u32,
    ) -> Vec<String> {
        let prompt = self.stream_prompt_tokens;
        match flavor {
            Flavor::OpenAi => {
                let mut out = vec![
                    self.openai_chunk(json!({"role": "assistant", "content": null}), None),
                    self.openai_chunk(
                        json!({"tool_calls": [{"index": 0, "id": id, "type": "function",
                            "function": {"name": name, "arguments": ""}}]}),
                        None,
                    ),
                ];
                out.extend(pieces.iter().map(|piece| {
                    self.openai_chunk(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                        None,
                    )
                }));
                out.push(self.openai_chunk(json!({}), Some("tool_calls")));
                out.push(self.openai_usage_chunk(prompt, completion));
                out.push("data: [DONE]\n\n".to_owned());
                out
            }
            Flavor::Anthropic => {
                let mut out = vec![
                    self.anthropic_message_start(),
                    anthropic_event(
                        "content_block_start",
                        json!({"type": "content_block_start", "index": 0,
                            "content_block": {"type": "tool_use", "id": id, "name": name,
                                "input": {}}}),
                    ),
                ];
                out.extend(pieces.iter().map(|piece| {
                    anthropic_event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": 0,
                            "delta": {"type": "input_json_delta", "partial_json": piece}}),
                    )
                }));
                out.extend(anthropic_stop_events("tool_use", completion));
                out
            }
        }
    }

    fn start_events(&self, flavor: Flavor, first: &str) -> Vec<String> {
        match flavor {
            Flavor::OpenAi => vec![
                self.openai_chunk(json!({"role": "assistant", "content": ""}), None),
                self.openai_chunk(json!({"content": first}), None),
            ],
            Flavor::Anthropic => vec![
                self.anthropic_message_start(),
                anthropic_event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0,
                        "content_block": {"type": "text", "text": ""}}),
                ),
                anthropic_event("ping", json!({"type": "ping"})),
                anthropic_text_delta(first),
            ],
        }
    }

    fn end_events(&self, flavor: Flavor, completion: u32) -> Vec<String> {
        let prompt = self.stream_prompt_tokens;
        match flavor {
            Flavor::OpenAi => vec![
                self.openai_chunk(json!({}), Some("stop")),
                self.openai_usage_chunk(prompt, completion),
                "data: [DONE]\n\n".to_owned(),
            ],
            Flavor::Anthropic => anthropic_stop_events("end_turn", completion),
        }
    }

    fn openai_usage_chunk(&self, prompt: u32, completion: u32) -> String {
        format!(
            "data: {}\n\n",
            json!({
                "id": self.openai_id, "object": "chat.completion.chunk",
                "created": CREATED, "model": self.openai_model,
                "system_fingerprint": self.fingerprint, "choices": [],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion}
            })
        )
    }

    fn anthropic_message_start(&self) -> String {
        anthropic_event(
            "message_start",
            json!({
                "type": "message_start",
                "message": {"id": self.anthropic_id, "type": "message",
                    "role": "assistant", "content": [], "model": self.anthropic_model,
                    "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": self.stream_prompt_tokens,
                        "output_tokens": 1}}
            }),
        )
    }

    fn openai_chunk(&self, delta: Value, finish_reason: Option<&str>) -> String {
        let chunk = json!({
            "id": self.openai_id, "object": "chat.completion.chunk", "created": CREATED,
            "model": self.openai_model, "system_fingerprint": self.fingerprint,
            "choices": [{"index": 0, "delta": delta, "logprobs": null,
                "finish_reason": finish_reason}],
            "usage": null
        });
        format!("data: {chunk}\n\n")
    }
}

impl Flavor {
    /// The path the provider serves, under the fake's root.
    pub fn path(self) -> &'static str {
        match self {
            Flavor::OpenAi => "/v1/chat/completions",
            Flavor::Anthropic => "/v1/messages",
        }
    }

    /// The provider's error body, as a server error.
    pub fn error(self, message: &str) -> String {
        match self {
            Flavor::OpenAi => json!({
                "error": {"message": message, "type": "server_error", "param": null, "code": null}
            }),
            Flavor::Anthropic => json!({
                "type": "error", "error": {"type": "api_error", "message": message}
            }),
        }
        .to_string()
    }

    /// The model [`Fixtures::TEST`] answers report.
    pub fn reported_model(self) -> &'static str {
        Fixtures::TEST.reported_model(self)
    }

    /// [`Fixtures::answer`] of [`Fixtures::TEST`].
    pub fn answer(self, text: &str, prompt: u32, completion: u32) -> String {
        Fixtures::TEST.answer(self, text, prompt, completion)
    }

    /// [`Fixtures::stream_start`] of [`Fixtures::TEST`].
    pub fn stream_start(self, first: &str) -> String {
        Fixtures::TEST.stream_start(self, first)
    }

    /// [`Fixtures::stream_delta`] of [`Fixtures::TEST`].
    pub fn stream_delta(self, text: &str) -> String {
        Fixtures::TEST.stream_delta(self, text)
    }

    /// [`Fixtures::stream_end`] of [`Fixtures::TEST`].
    pub fn stream_end(self, completion: u32) -> String {
        Fixtures::TEST.stream_end(self, completion)
    }

    /// [`Fixtures::full_stream`] of [`Fixtures::TEST`].
    pub fn full_stream(self, pieces: &[&str], completion: u32) -> String {
        Fixtures::TEST.full_stream(self, pieces, completion)
    }
}

/// One Messages stream event.
fn anthropic_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// The end of a Messages stream whose one content block is index 0.
fn anthropic_stop_events(stop_reason: &str, completion: u32) -> Vec<String> {
    vec![
        anthropic_event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        anthropic_event(
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": completion}
            }),
        ),
        anthropic_event("message_stop", json!({"type": "message_stop"})),
    ]
}

fn anthropic_text_delta(text: &str) -> String {
    anthropic_event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": text}}),
    )
}

/// A stream error event in `flavor`'s format with `message` as an authentication error, as a
/// provider sends it after a stream has started.
pub(crate) fn stream_auth_error(flavor: Flavor, message: &str) -> String {
    match flavor {
        Flavor::Anthropic => format!(
            "event: error\ndata: {}\n\n",
            json!({"type": "error",
                "error": {"type": "authentication_error", "message": message}})
        ),
        Flavor::OpenAi => format!("data: {}\n\n", json!({"error": {"message": message}})),
    }
}
