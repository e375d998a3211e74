//! A fake model provider on a loopback socket, and a gateway configured to call it.
//!
//! The fake records every request (method, path, headers, body) and answers from a script, one
//! reply per request in order; when the script is exhausted it answers with its fallback, if it
//! has one, else 418. A streaming reply sends only what the test feeds it, so a test decides when
//! the upstream "finishes"; the test hears when the fake's response body is dropped, which
//! happens when the gateway closes the connection.
//!
//! Adapted from `promptgate-providers/tests/it/fake.rs`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::harness::*;

/// The invocation endpoint.
pub const INVOCATIONS: &str = "/api/v2/ai/llm/gateway/invocations";

/// How long a test waits for something that must happen before it calls the wait a hang. It
/// bounds waits only; no test asserts on how long anything took.
pub const HANG_GUARD: Duration = Duration::from_secs(20);

/// The configured endpoints' references and the variables that hold their keys.
pub const OPENAI_REF: &str = "fake/openai";
pub const ANTHROPIC_REF: &str = "fake/anthropic";
pub const OPENAI_KEY_VAR: &str = "FAKE_OPENAI_KEY";
pub const ANTHROPIC_KEY_VAR: &str = "FAKE_ANTHROPIC_KEY";
/// The models the endpoints configure, and the (dated) models the fixtures report back.
pub const OPENAI_MODEL: &str = "gpt-fake";
pub const ANTHROPIC_MODEL: &str = "claude-fake";
pub const OPENAI_REPORTED: &str = "gpt-fake-2024-07-18";
pub const ANTHROPIC_REPORTED: &str = "claude-fake-20241022";

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the upstream request body is not JSON ({e}): {self:?}"))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// Every header, rendered `name: value`, one a line.
    pub fn header_text(&self) -> String {
        self.headers
            .iter()
            .map(|(n, v)| format!("{n}: {}\n", String::from_utf8_lossy(v.as_bytes())))
            .collect()
    }
}

/// How the fake answers one request.
pub enum Reply {
    /// A whole answer at once.
    Full {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// An event stream whose chunks the test sends through a [`Feed`].
    Stream {
        chunks: mpsc::UnboundedReceiver<String>,
        dropped: oneshot::Sender<()>,
    },
    /// Accepts the request and never answers.
    Hang,
    /// An error whose message quotes the request's own `authorization` or `x-api-key` header,
    /// as a careless proxy might.
    EchoKey { status: u16 },
    /// An error whose message quotes pieces of the request's key ([`key_pieces`]) after the
    /// provider's reason, as providers do ("incorrect API key provided: sk-…abcd").
    EchoKeyPieces { status: u16 },
    /// A stream that starts, then fails with an error event quoting pieces of the key, in
    /// the format of the provider the path names.
    EchoKeyPiecesMidStream,
    /// A redirect to `location`.
    Redirect { status: u16, location: String },
}

/// The reason [`Reply::EchoKeyPieces`] gives before the pieces.
pub const KEY_REJECTED: &str = "incorrect API key provided";

/// Pieces of `key` a provider or a proxy might quote: its first and last 8 characters, 8 from
/// the middle, the whole key upper-cased, and the key broken over two lines.
pub fn key_pieces(key: &str) -> Vec<String> {
    let n = key.len();
    vec![
        key[..8].to_owned(),
        key[n - 8..].to_owned(),
        key[n / 2 - 4..n / 2 + 4].to_owned(),
        key.to_ascii_uppercase(),
        format!("{}\n{}", &key[..n / 2], &key[n / 2..]),
    ]
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Full {
            status,
            content_type: "application/json",
            body: body.to_owned(),
        }
    }

    /// A whole event stream at once.
    pub fn sse(body: &str) -> Reply {
        Reply::Full {
            status: 200,
            content_type: "text/event-stream",
            body: body.to_owned(),
        }
    }

    /// A streaming reply and the handle that feeds it.
    pub fn stream() -> (Reply, Feed) {
        let (tx, chunks) = mpsc::unbounded_channel();
        let (dropped, dropped_rx) = oneshot::channel();
        (
            Reply::Stream { chunks, dropped },
            Feed {
                tx: Some(tx),
                dropped: dropped_rx,
            },
        )
    }
}

/// The test's end of a streaming reply.
pub struct Feed {
    tx: Option<mpsc::UnboundedSender<String>>,
    dropped: oneshot::Receiver<()>,
}

impl Feed {
    /// Sends `text` as the next body chunk.
    pub fn send(&self, text: &str) {
        self.tx.as_ref().unwrap().send(text.to_owned()).unwrap();
    }

    /// Ends the body.
    pub fn finish(&mut self) {
        self.tx = None;
    }

    /// Whether the fake has already dropped the response body.
    pub fn body_was_dropped(&mut self) -> bool {
        !matches!(
            self.dropped.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        )
    }

    /// Resolves when the fake has dropped the response body: after the body ended, or, while
    /// the test still holds the sender, because the gateway's connection closed.
    pub async fn body_dropped(self) {
        let _ = self.dropped.await;
    }
}

struct FallbackReply {
    status: u16,
    content_type: &'static str,
    body: String,
}

struct Shared {
    requests: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Reply>>,
    fallback: Option<FallbackReply>,
}

/// A running fake provider.
pub struct Fake {
    pub url: String,
    shared: Arc<Shared>,
}

impl Fake {
    pub async fn start(script: Vec<Reply>) -> Fake {
        Fake::start_inner(script, None).await
    }

    /// A fake that answers every request the script does not cover with `status` and `body`.
    pub async fn start_with_fallback(script: Vec<Reply>, status: u16, body: &str) -> Fake {
        let fallback = FallbackReply {
            status,
            content_type: "application/json",
            body: body.to_owned(),
        };
        Fake::start_inner(script, Some(fallback)).await
    }

    async fn start_inner(script: Vec<Reply>, fallback: Option<FallbackReply>) -> Fake {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(script.into()),
            fallback,
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fake { url, shared }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    #[track_caller]
    pub fn only_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(
            requests.len(),
            1,
            "expected exactly one upstream request: {requests:#?}"
        );
        requests.into_iter().next().unwrap()
    }

    /// Every recorded body, concatenated, to search for values that must not have been sent.
    pub fn all_bodies(&self) -> String {
        self.requests().iter().map(Recorded::text).collect()
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let echoed = headers
        .get("authorization")
        .or_else(|| headers.get("x-api-key"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let key = echoed.strip_prefix("Bearer ").unwrap_or(&echoed).to_owned();
    let anthropic = uri.path().ends_with("/messages");
    shared.requests.lock().unwrap().push(Recorded {
        method,
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let reply = shared.script.lock().unwrap().pop_front();
    match reply {
        None => match &shared.fallback {
            Some(f) => (
                StatusCode::from_u16(f.status).unwrap(),
                [("content-type", f.content_type)],
                f.body.clone(),
            )
                .into_response(),
            None => (StatusCode::IM_A_TEAPOT, "the fake's script is exhausted").into_response(),
        },
        Some(Reply::Full {
            status,
            content_type,
            body,
        }) => (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", content_type)],
            body,
        )
            .into_response(),
        Some(Reply::Stream { chunks, dropped }) => {
            let body = futures::stream::unfold(chunks, |mut chunks| async move {
                let chunk = chunks.recv().await?;
                Some((Ok::<_, Infallible>(Bytes::from(chunk)), chunks))
            })
            // The closure owns `dropped`, so it goes when the body goes and the test hears it.
            .map(move |chunk| {
                let _ = &dropped;
                chunk
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .header("cache-control", "no-cache")
                .body(Body::from_stream(body))
                .unwrap()
        }
        Some(Reply::Hang) => std::future::pending().await,
        Some(Reply::EchoKey { status }) => {
            let body = json!({
                "type": "error",
                "error": {"type": "authentication_error", "message": format!("invalid key: {echoed}")}
            });
            (
                StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Some(Reply::EchoKeyPieces { status }) => {
            let message = format!("{KEY_REJECTED}: {}", key_pieces(&key).join(" / "));
            let body = json!({
                "type": "error",
                "error": {"type": "authentication_error", "message": message}
            });
            (
                StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Some(Reply::EchoKeyPiecesMidStream) => {
            let message = format!("{KEY_REJECTED}: {}", key_pieces(&key).join(" / "));
            let (flavor, error) = if anthropic {
                (
                    Flavor::Anthropic,
                    format!(
                        "event: error\ndata: {}\n\n",
                        json!({"type": "error",
                            "error": {"type": "authentication_error", "message": message}})
                    ),
                )
            } else {
                (
                    Flavor::OpenAi,
                    format!("data: {}\n\n", json!({"error": {"message": message}})),
                )
            };
            (
                StatusCode::OK,
                [("content-type", "text/event-stream")],
                [flavor.stream_start("Hel"), error].concat(),
            )
                .into_response()
        }
        Some(Reply::Redirect { status, location }) => (
            StatusCode::from_u16(status).unwrap(),
            [("location", location)],
            "moved",
        )
            .into_response(),
    }
}

/// The two HTTP providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    OpenAi,
    Anthropic,
}

pub const FLAVORS: [Flavor; 2] = [Flavor::OpenAi, Flavor::Anthropic];

impl Flavor {
    pub fn reference(self) -> &'static str {
        match self {
            Flavor::OpenAi => OPENAI_REF,
            Flavor::Anthropic => ANTHROPIC_REF,
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Flavor::OpenAi => "/v1/chat/completions",
            Flavor::Anthropic => "/v1/messages",
        }
    }

    pub fn reported_model(self) -> &'static str {
        match self {
            Flavor::OpenAi => OPENAI_REPORTED,
            Flavor::Anthropic => ANTHROPIC_REPORTED,
        }
    }

    /// A successful answer with `text`, `prompt` + `completion` tokens, finished normally.
    pub fn answer(self, text: &str, prompt: u32, completion: u32) -> String {
        match self {
            Flavor::OpenAi => openai_answer(text, prompt, completion, "stop"),
            Flavor::Anthropic => anthropic_answer(text, prompt, completion, "end_turn"),
        }
    }

    /// The provider's error body.
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

    /// The stream up to and including the first text delta, `first`.
    pub fn stream_start(self, first: &str) -> String {
        match self {
            Flavor::OpenAi => [
                openai_chunk(json!({"role": "assistant", "content": ""}), None),
                openai_chunk(json!({"content": first}), None),
            ]
            .concat(),
            Flavor::Anthropic => [
                anthropic_event(
                    "message_start",
                    json!({
                        "type": "message_start",
                        "message": {"id": "msg_01", "type": "message", "role": "assistant",
                            "content": [], "model": ANTHROPIC_REPORTED, "stop_reason": null,
                            "stop_sequence": null, "usage": {"input_tokens": 31, "output_tokens": 1}}
                    }),
                ),
                anthropic_event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0,
                        "content_block": {"type": "text", "text": ""}}),
                ),
                anthropic_event("ping", json!({"type": "ping"})),
                anthropic_text_delta(first),
            ]
            .concat(),
        }
    }

    /// One more text delta.
    pub fn stream_delta(self, text: &str) -> String {
        match self {
            Flavor::OpenAi => openai_chunk(json!({"content": text}), None),
            Flavor::Anthropic => anthropic_text_delta(text),
        }
    }

    /// The end of the stream: the stop reason and usage (31 prompt, `completion` tokens).
    pub fn stream_end(self, completion: u32) -> String {
        match self {
            Flavor::OpenAi => [
                openai_chunk(json!({}), Some("stop")),
                format!(
                    "data: {}\n\n",
                    json!({
                        "id": "chatcmpl-abc123", "object": "chat.completion.chunk",
                        "created": 1_700_000_000, "model": OPENAI_REPORTED,
                        "system_fingerprint": "fp_1", "choices": [],
                        "usage": {"prompt_tokens": 31, "completion_tokens": completion,
                                  "total_tokens": 31 + completion}
                    })
                ),
                "data: [DONE]\n\n".to_owned(),
            ]
            .concat(),
            Flavor::Anthropic => [
                anthropic_event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                ),
                anthropic_event(
                    "message_delta",
                    json!({
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                        "usage": {"output_tokens": completion}
                    }),
                ),
                anthropic_event("message_stop", json!({"type": "message_stop"})),
            ]
            .concat(),
        }
    }

    /// A whole event stream of `pieces`.
    pub fn full_stream(self, pieces: &[&str], completion: u32) -> String {
        let mut out = self.stream_start(pieces[0]);
        for piece in &pieces[1..] {
            out.push_str(&self.stream_delta(piece));
        }
        out.push_str(&self.stream_end(completion));
        out
    }
}

pub fn openai_answer(text: &str, prompt: u32, completion: u32, finish_reason: &str) -> String {
    json!({
        "id": "chatcmpl-abc123", "object": "chat.completion", "created": 1_700_000_000,
        "model": OPENAI_REPORTED, "system_fingerprint": "fp_1",
        "choices": [{"index": 0,
            "message": {"role": "assistant", "content": text, "refusal": null},
            "logprobs": null, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion}
    })
    .to_string()
}

pub fn anthropic_answer(text: &str, input: u32, output: u32, stop_reason: &str) -> String {
    json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": ANTHROPIC_REPORTED,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason, "stop_sequence": null,
        "usage": {"input_tokens": input, "output_tokens": output}
    })
    .to_string()
}

fn openai_chunk(delta: Value, finish_reason: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-abc123", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": OPENAI_REPORTED, "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        "usage": null
    });
    format!("data: {chunk}\n\n")
}

fn anthropic_text_delta(text: &str) -> String {
    anthropic_event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": text}}),
    )
}

fn anthropic_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// Settings of the two fake endpoints.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub timeout_ms: u64,
    pub max_retries: u32,
    /// More TOML appended to the configuration (other endpoints).
    pub extra: String,
    /// Whether the gateway's environment holds the keys.
    pub with_keys: bool,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            timeout_ms: 10_000,
            max_retries: 2,
            extra: String::new(),
            with_keys: true,
        }
    }
}

/// A `[[model_endpoints]]` table.
pub fn endpoint_toml(
    reference: &str,
    provider: &str,
    base_url: &str,
    model: &str,
    key_env: &str,
    more: &str,
) -> String {
    format!(
        "[[model_endpoints]]\nref = \"{reference}\"\nprovider = \"{provider}\"\nbase_url = \"{base_url}\"\nmodel = \"{model}\"\napi_key_env = \"{key_env}\"\n{more}\n"
    )
}

/// A gateway whose `fake/openai` and `fake/anthropic` endpoints point at a fake upstream.
pub struct Gateway {
    pub fake: Fake,
    pub server: Server,
    pub token: String,
    pub openai_key: String,
    pub anthropic_key: String,
}

impl Gateway {
    pub async fn start(script: Vec<Reply>) -> Gateway {
        Gateway::start_with(Fake::start(script).await, Endpoints::default()).await
    }

    pub async fn start_with(fake: Fake, endpoints: Endpoints) -> Gateway {
        let limits = format!(
            "timeout_ms = {}\nmax_retries = {}",
            endpoints.timeout_ms, endpoints.max_retries
        );
        let config = [
            endpoint_toml(
                OPENAI_REF,
                "openai",
                &format!("{}/v1", fake.url),
                OPENAI_MODEL,
                OPENAI_KEY_VAR,
                &limits,
            ),
            endpoint_toml(
                ANTHROPIC_REF,
                "anthropic",
                &fake.url,
                ANTHROPIC_MODEL,
                ANTHROPIC_KEY_VAR,
                &limits,
            ),
            endpoints.extra.clone(),
        ]
        .concat();
        let openai_key = format!("sk-test-marker-{}", random_secret());
        let anthropic_key = format!("sk-ant-test-marker-{}", random_secret());
        let env = if endpoints.with_keys {
            vec![
                (OPENAI_KEY_VAR.to_owned(), openai_key.clone()),
                (ANTHROPIC_KEY_VAR.to_owned(), anthropic_key.clone()),
            ]
        } else {
            Vec::new()
        };
        let server = Server::start_with(Options {
            env,
            ..Options::with_config(&config)
        });
        let token = server.admin_token().await;
        Gateway {
            fake,
            server,
            token,
            openai_key,
            anthropic_key,
        }
    }

    pub fn key(&self, flavor: Flavor) -> &str {
        match flavor {
            Flavor::OpenAi => &self.openai_key,
            Flavor::Anthropic => &self.anthropic_key,
        }
    }

    /// Creates a prompt and answers its id.
    pub async fn create_prompt(&self, body: &Value) -> String {
        let (created, _) = self.server.create_prompt(&self.token, body).await;
        str_field(&created, "id")
    }

    pub async fn invoke(&self, body: &Value) -> Resp {
        self.server.post(INVOCATIONS, Some(&self.token), body).await
    }

    /// Starts a streamed invocation and answers the raw response, its body unread.
    pub async fn invoke_raw(&self, body: &Value) -> reqwest::Response {
        self.server
            .request(reqwest::Method::POST, INVOCATIONS)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

/// A prompt body on `endpoint` with `system` as its system prompt.
pub fn prompt_on(name: &str, endpoint: &str, system: &str) -> Value {
    json!({
        "name": name,
        "modelEndpointRef": endpoint,
        "systemPrompt": system,
        "temperature": 0.3,
        "version": "1.0.0"
    })
}

/// The contract's rendering of few-shot examples after the system prompt.
pub fn render_examples(system: &str, examples: &[(&str, &str)]) -> String {
    if examples.is_empty() {
        return system.to_owned();
    }
    let mut out = format!("{system}\n\nExamples:\n");
    for (input, output) in examples {
        out.push_str(&format!("User: {input}\nAssistant: {output}\n"));
    }
    out
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

impl SseEvent {
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {self:?}"))
    }
}

/// Reads server-sent events from a response body as they arrive.
pub struct SseReader {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    buffer: String,
    event: String,
    data: Vec<String>,
    /// Everything read so far, to search for values that must not be in the answer.
    pub raw: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> SseReader {
        SseReader {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
            event: String::new(),
            data: Vec::new(),
            raw: String::new(),
        }
    }

    /// The next event (comments skipped), or `None` when the body ends.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            while let Some(end) = self.buffer.find('\n') {
                let line: String = self.buffer.drain(..=end).collect();
                let line = line.trim_end_matches(['\n', '\r']);
                if line.is_empty() {
                    if self.data.is_empty() && self.event.is_empty() {
                        continue;
                    }
                    let event = SseEvent {
                        event: std::mem::take(&mut self.event),
                        data: std::mem::take(&mut self.data).join("\n"),
                    };
                    return Some(event);
                } else if let Some(value) = line.strip_prefix("event:") {
                    self.event = value.trim().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    self.data
                        .push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                }
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    let text = String::from_utf8_lossy(&chunk).into_owned();
                    self.raw.push_str(&text);
                    self.buffer.push_str(&text);
                }
                Some(Err(err)) => panic!("the event stream broke: {err}"),
                None => return None,
            }
        }
    }

    /// The next event, failing the test if none comes within [`HANG_GUARD`].
    pub async fn expect_next(&mut self, what: &str) -> SseEvent {
        match tokio::time::timeout(HANG_GUARD, self.next()).await {
            Ok(Some(event)) => event,
            Ok(None) => panic!("the stream ended before {what}; read so far:\n{}", self.raw),
            Err(_) => panic!(
                "no event within {HANG_GUARD:?} ({what}); read so far:\n{}",
                self.raw
            ),
        }
    }

    /// Every remaining event until the body ends.
    pub async fn rest(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        loop {
            match tokio::time::timeout(HANG_GUARD, self.next()).await {
                Ok(Some(event)) => out.push(event),
                Ok(None) => return out,
                Err(_) => panic!(
                    "the stream did not end within {HANG_GUARD:?}; read so far:\n{}",
                    self.raw
                ),
            }
        }
    }
}
