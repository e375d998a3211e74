//! Invocations: one answer, or a stream of `delta` and `tool_call` events ending with `done`;
//! and the turns that continue a conversation after the model called tools.

use std::collections::BTreeMap;

use futures_util::stream::{self, BoxStream, StreamExt};
use promptgate_api::{
    BASE_PATH, ChatTurn, InvokeOptions, InvokeRequest, InvokeResponse, StreamDelta, StreamToolCall,
    ToolCall,
};
use reqwest::Method;
use serde_json::{Map, Value};

use crate::client::{Call, Client};
use crate::error::Error;
#[cfg(feature = "variables")]
use crate::variables::VariablesCheck;

/// An invocation, built step by step: what [`Client::invoke`] and [`Client::invoke_stream`]
/// send.
///
/// ```
/// use promptgate_client::Invocation;
/// let invocation = Invocation::new("01a21b90-f811-7001-9495-3ba146e3a674", "Where is my order?")
///     .session("s-42")
///     .label("staging")
///     .var("customer_name", "Jane")
///     .var("order_count", 3);
/// let body = serde_json::to_value(invocation.request()).unwrap();
/// assert_eq!(body["variables"], serde_json::json!({"customer_name": "Jane", "order_count": 3}));
/// assert_eq!(body["label"], "staging");
/// ```
///
/// After the model called tools (`finishReason` `tool_calls`), the conversation goes on with
/// the assistant's turn holding the calls and one `tool` turn per result:
///
/// ```
/// use promptgate_client::Invocation;
/// use promptgate_client::api::ToolCall;
/// let call = ToolCall {
///     id: Some("call_1".into()),
///     name: Some("get_order".into()),
///     arguments: Some(r#"{"id": "A-1"}"#.into()),
/// };
/// let next = Invocation::continuation("01a21b90-f811-7001-9495-3ba146e3a674")
///     .messages(&[("user", "Where is order A-1?")])
///     .assistant_tool_calls(&[call])
///     .tool_result("call_1", r#"{"status": "shipped"}"#);
/// let body = serde_json::to_value(next.request()).unwrap();
/// assert_eq!(body["messages"][1]["toolCalls"][0]["id"], "call_1");
/// assert_eq!(body["messages"][2], serde_json::json!(
///     {"role": "tool", "content": "{\"status\": \"shipped\"}", "toolCallId": "call_1"}));
/// assert!(body["userInput"].is_null(), "no new user input");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    request: InvokeRequest,
}

impl Invocation {
    /// An invocation of the prompt `prompt_id` with what the user said.
    pub fn new(prompt_id: &str, user_input: impl Into<String>) -> Self {
        Invocation {
            request: InvokeRequest {
                prompt_id: Some(prompt_id.to_owned()),
                user_input: Some(user_input.into()),
                ..InvokeRequest::default()
            },
        }
    }

    /// An invocation that adds no user input: it continues a conversation whose newest turn is
    /// a tool's result ([`Self::tool_result`]), which the gateway allows without `userInput`.
    pub fn continuation(prompt_id: &str) -> Self {
        Invocation {
            request: InvokeRequest {
                prompt_id: Some(prompt_id.to_owned()),
                ..InvokeRequest::default()
            },
        }
    }

    /// An invocation from the contract's request body as is.
    pub fn from_request(request: InvokeRequest) -> Self {
        Invocation { request }
    }

    /// The conversation id: sticky routing keeps a session on one version.
    pub fn session(mut self, session_id: impl Into<String>) -> Self {
        self.request.session_id = Some(session_id.into());
        self
    }

    /// Pins a version, bypassing the traffic split (not together with [`Self::label`]).
    pub fn version(mut self, version: &str) -> Self {
        self.request.version = Some(version.to_owned());
        self
    }

    /// Serves the version the label points at, such as `production` (not together with
    /// [`Self::version`]: the gateway refuses both).
    pub fn label(mut self, label: &str) -> Self {
        self.request.label = Some(label.to_owned());
        self
    }

    /// One template variable: a string, number, boolean, or an object read through dotted
    /// placeholders (`{{customer.tier}}`). A second value for the same name replaces the first.
    pub fn var(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.request
            .variables
            .get_or_insert_with(Map::new)
            .insert(name.to_owned(), value.into());
        self
    }

    /// Every template variable at once, replacing any set before.
    pub fn variables(mut self, variables: Map<String, Value>) -> Self {
        self.request.variables = Some(variables);
        self
    }

    /// Earlier turns, `(role, content)` oldest first, role `user` or `assistant`, replacing
    /// any set before. Tool calls and results follow with [`Self::assistant_tool_calls`] and
    /// [`Self::tool_result`].
    pub fn messages(mut self, turns: &[(&str, &str)]) -> Self {
        self.request.messages = Some(
            turns
                .iter()
                .map(|(role, content)| ChatTurn::text(role, *content))
                .collect(),
        );
        self
    }

    /// Earlier turns in the contract's shape, oldest first, replacing any set before: for a
    /// conversation kept as it came (an answer's calls, results read from a file).
    pub fn turns(mut self, turns: Vec<ChatTurn>) -> Self {
        self.request.messages = Some(turns);
        self
    }

    /// Adds the assistant turn that called `calls` (an answer's `toolCalls`, as they came: the
    /// `tool` turns name their ids) after the earlier turns.
    pub fn assistant_tool_calls(mut self, calls: &[ToolCall]) -> Self {
        self.request
            .messages
            .get_or_insert_with(Vec::new)
            .push(ChatTurn {
                role: Some("assistant".to_owned()),
                content: Some(String::new()),
                tool_calls: Some(calls.to_vec()),
                tool_call_id: None,
            });
        self
    }

    /// Adds a `tool` turn: the result of the call `tool_call_id`. It is caller input, so the
    /// version's input guardrails apply to it.
    pub fn tool_result(mut self, tool_call_id: &str, content: impl Into<String>) -> Self {
        self.request
            .messages
            .get_or_insert_with(Vec::new)
            .push(ChatTurn {
                role: Some("tool".to_owned()),
                content: Some(content.into()),
                tool_calls: None,
                tool_call_id: Some(tool_call_id.to_owned()),
            });
        self
    }

    /// The most tokens the model may generate.
    pub fn max_output_tokens(mut self, limit: u32) -> Self {
        self.request
            .options
            .get_or_insert_with(InvokeOptions::default)
            .max_output_tokens = Some(i64::from(limit));
        self
    }

    /// One metadata entry kept with the telemetry.
    pub fn metadata(mut self, key: &str, value: &str) -> Self {
        self.request
            .metadata
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// Checks the variables locally against the version `check` was compiled for, so that a
    /// missing, mistyped or unknown variable fails with [`Error::InvalidVariables`] before any
    /// request. Unless the invocation names a label, it is pinned to that version, so that the
    /// version checked is the one that serves it; an invocation pinned to another version is an
    /// [`Error::Invalid`] on `version`. (With a label the gateway decides the version and checks
    /// again.)
    ///
    /// Needs the `variables` feature (on by default).
    #[cfg(feature = "variables")]
    pub fn checked(mut self, check: &VariablesCheck) -> Result<Self, Error> {
        match (&self.request.version, &self.request.label) {
            (Some(pinned), _) if pinned != check.version() => {
                return Err(Error::Invalid {
                    field: "version".to_owned(),
                    message: format!(
                        "the invocation pins {pinned} but its variables were checked against {}",
                        check.version()
                    ),
                });
            }
            (None, None) => self.request.version = Some(check.version().to_owned()),
            _ => {}
        }
        check.check(self.request.variables.as_ref())?;
        Ok(self)
    }

    /// The request body this invocation sends.
    pub fn request(&self) -> &InvokeRequest {
        &self.request
    }

    /// The request body, to change what the builder has no method for.
    pub fn into_request(self) -> InvokeRequest {
        self.request
    }
}

/// One event of a streamed invocation. Non-exhaustive: the contract may add event kinds, which
/// an older SDK skips.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum InvokeEvent {
    /// The next piece of output, after the gateway's output guardrails.
    Delta(String),
    /// A piece of a tool call: the first piece of a call (per `index`) carries its `id` and
    /// `name`; the `argumentsDelta` of every piece of one `index`, joined, are its arguments.
    /// The `done` event's `toolCalls` holds the calls whole.
    ToolCall(StreamToolCall),
    /// The end: the answer without `output` (boxed: it is much larger than a delta).
    Done(Box<InvokeResponse>),
}

impl Client {
    /// Invokes a prompt and waits for the whole answer. Like every POST it is not retried on
    /// 5xx unless the client was built with `retry_non_idempotent(true)` (the model may have
    /// run); a 429 is retried as the gateway asks.
    pub async fn invoke(&self, request: &InvokeRequest) -> Result<InvokeResponse, Error> {
        let mut request = request.clone();
        let mut options = request.options.take().unwrap_or_default();
        options.stream = Some(false);
        request.options = Some(options);
        self.send(invoke_call(&request)?).await?.json()
    }

    /// Invokes a prompt and streams its answer as it is generated. Dropping the stream closes
    /// the connection, which cancels the model's generation at the gateway.
    pub async fn invoke_stream(
        &self,
        request: &InvokeRequest,
    ) -> Result<BoxStream<'static, Result<InvokeEvent, Error>>, Error> {
        let mut request = request.clone();
        let mut options = request.options.take().unwrap_or_default();
        options.stream = Some(true);
        request.options = Some(options);
        let mut call = invoke_call(&request)?;
        call.streaming = true;
        let response = self.send_raw(call).await?;
        let bytes = response.bytes_stream();
        let parser = SseParser::default();
        Ok(stream::unfold(
            (bytes, parser, false),
            |(mut bytes, mut parser, finished)| async move {
                if finished {
                    return None;
                }
                loop {
                    if let Some(event) = parser.next_event() {
                        let done =
                            !matches!(event, Ok(InvokeEvent::Delta(_) | InvokeEvent::ToolCall(_)));
                        return Some((event, (bytes, parser, done)));
                    }
                    match bytes.next().await {
                        Some(Ok(chunk)) => parser.feed(&chunk),
                        Some(Err(err)) => {
                            return Some((Err(Error::Transport(err)), (bytes, parser, true)));
                        }
                        None => {
                            let err =
                                Error::Decode("the stream ended before its done event".to_owned());
                            return Some((Err(err), (bytes, parser, true)));
                        }
                    }
                }
            },
        )
        .boxed())
    }
}

fn invoke_call(request: &InvokeRequest) -> Result<Call, Error> {
    let body = serde_json::to_value(request)
        .map_err(|e| Error::Config(format!("cannot encode the request: {e}")))?;
    Ok(Call::with(
        Method::POST,
        format!("{BASE_PATH}/invocations"),
        Some(body),
    ))
}

/// A minimal server-sent-events parser: `event:` and `data:` lines, dispatched at a blank line.
#[derive(Debug, Default)]
struct SseParser {
    buffer: String,
    event: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    fn feed(&mut self, chunk: &[u8]) {
        self.buffer.push_str(&String::from_utf8_lossy(chunk));
    }

    fn next_event(&mut self) -> Option<Result<InvokeEvent, Error>> {
        while let Some(end) = self.buffer.find('\n') {
            let line: String = self.buffer.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                let name = self.event.take().unwrap_or_else(|| "message".to_owned());
                let data = std::mem::take(&mut self.data).join("\n");
                if let Some(event) = decode(&name, &data) {
                    return Some(event);
                }
            } else if let Some(value) = line.strip_prefix("event:") {
                self.event = Some(value.trim().to_owned());
            } else if let Some(value) = line.strip_prefix("data:") {
                self.data
                    .push(value.strip_prefix(' ').unwrap_or(value).to_owned());
            }
            // Comments (`:`, keep-alives) and other fields are ignored.
        }
        None
    }
}

fn decode(name: &str, data: &str) -> Option<Result<InvokeEvent, Error>> {
    let bad = |e: serde_json::Error| {
        Error::Decode(format!("a {name} event is not the expected JSON: {e}"))
    };
    match name {
        "delta" => Some(
            serde_json::from_str::<StreamDelta>(data)
                .map(|d| InvokeEvent::Delta(d.text))
                .map_err(bad),
        ),
        "tool_call" => Some(
            serde_json::from_str::<StreamToolCall>(data)
                .map(InvokeEvent::ToolCall)
                .map_err(bad),
        ),
        "done" => Some(
            serde_json::from_str::<InvokeResponse>(data)
                .map(|done| InvokeEvent::Done(Box::new(done)))
                .map_err(bad),
        ),
        "error" => {
            let value: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
            Some(Err(Error::Api {
                status: value["status"]
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(502),
                code: value["code"]
                    .as_str()
                    .unwrap_or("upstream.error")
                    .to_owned(),
                message: value["message"].as_str().unwrap_or(data).to_owned(),
                context_id: None,
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_across_chunks() {
        let mut parser = SseParser::default();
        parser.feed(b"event: delta\ndata: {\"te");
        assert!(parser.next_event().is_none());
        parser.feed(
            b"xt\":\"Hel\"}\n\n: keep-alive\n\nevent: delta\r\ndata: {\"text\":\"lo\"}\r\n\r\n",
        );
        assert_eq!(
            parser.next_event().unwrap().unwrap(),
            InvokeEvent::Delta("Hel".into())
        );
        assert_eq!(
            parser.next_event().unwrap().unwrap(),
            InvokeEvent::Delta("lo".into())
        );
        assert!(parser.next_event().is_none());
        parser.feed(b"event: tool_call\ndata: {\"index\":0,\"id\":\"call_1\",\"name\":\"get_order\",\"argumentsDelta\":\"\"}\n\n");
        assert_eq!(
            parser.next_event().unwrap().unwrap(),
            InvokeEvent::ToolCall(StreamToolCall {
                index: 0,
                id: Some("call_1".into()),
                name: Some("get_order".into()),
                arguments_delta: String::new(),
            })
        );
        parser.feed(b"event: error\ndata: {\"status\":504,\"code\":\"upstream.timeout\",\"message\":\"slow\"}\n\n");
        match parser.next_event().unwrap() {
            Err(Error::Api { status, code, .. }) => {
                assert_eq!((status, code.as_str()), (504, "upstream.timeout"))
            }
            other => panic!("expected an API error, got {other:?}"),
        }
    }
}
