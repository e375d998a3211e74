//! A fake model provider for benchmarks: OpenAI Chat Completions (`POST /v1/chat/completions`)
//! and Anthropic Messages (`POST /v1/messages`), each whole or streamed as server-sent events,
//! always with the same short answer after a fixed delay.
//!
//! ```sh
//! promptgate-fake-upstream --listen 127.0.0.1:0 --delay-ms 0
//! # prints "listening on http://127.0.0.1:PORT" on stdout, then serves until killed
//! ```
//!
//! Point a gateway endpoint at it with `provider = "openai"` and `base_url = "http://ADDR/v1"`,
//! or `provider = "anthropic"` and `base_url = "http://ADDR"`. Any key is accepted.
//!
//! It is built to cost as little as possible per request, so that it is never the bottleneck of
//! a load test: every answer is rendered once at start-up, the request body is only scanned for
//! its `stream` flag, nothing is logged per request, and the runtime is multi-threaded.
//!
//! `--delay-ms` is the time before the answer (whole answers) or before the first byte of the
//! body (streams; the response head is sent at once, as real providers do). A stream then sends
//! its events `--chunk-interval-ms` apart (default 0: back to back, each its own body chunk).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use clap::Parser;
use serde::Deserialize;
use serde_json::{Value, json};

/// The fixed answer, in the pieces a stream sends it in.
pub const ANSWER_PIECES: [&str; 3] = [
    "Thanks for waiting.",
    " Your order shipped yesterday",
    " and arrives on Tuesday.",
];
/// The model the answers report.
pub const OPENAI_MODEL: &str = "gpt-fake-2024-07-18";
/// The model the Anthropic answers report.
pub const ANTHROPIC_MODEL: &str = "claude-fake-20241022";
/// Usage every answer reports.
pub const PROMPT_TOKENS: u32 = 24;
/// Usage every answer reports.
pub const COMPLETION_TOKENS: u32 = 14;

#[derive(Debug, Parser)]
#[command(
    name = "promptgate-fake-upstream",
    about = "A fake OpenAI-compatible and Anthropic model provider for benchmarks"
)]
struct Args {
    /// Address to listen on; port 0 picks a free one. The address is printed on stdout.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Delay before each answer (streams: before the body's first byte), in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Pause between a stream's events after the first, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_interval_ms: u64,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
}

/// Every answer, rendered once.
#[derive(Debug)]
pub struct Answers {
    delay: Duration,
    chunk_interval: Duration,
    openai_json: Bytes,
    openai_stream: Arc<[Bytes]>,
    anthropic_json: Bytes,
    anthropic_stream: Arc<[Bytes]>,
}

impl Answers {
    /// The answers, sent after `delay` (and streams' events `chunk_interval` apart).
    pub fn new(delay: Duration, chunk_interval: Duration) -> Self {
        Answers {
            delay,
            chunk_interval,
            openai_json: Bytes::from(openai_answer().to_string()),
            openai_stream: openai_stream().into_iter().map(Bytes::from).collect(),
            anthropic_json: Bytes::from(anthropic_answer().to_string()),
            anthropic_stream: anthropic_stream().into_iter().map(Bytes::from).collect(),
        }
    }
}

fn full_text() -> String {
    ANSWER_PIECES.concat()
}

/// A whole Chat Completions answer.
pub fn openai_answer() -> Value {
    json!({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1_700_000_000,
        "model": OPENAI_MODEL, "system_fingerprint": "fp_fake",
        "choices": [{"index": 0,
            "message": {"role": "assistant", "content": full_text(), "refusal": null},
            "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                  "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}
    })
}

fn openai_chunk(delta: Value, finish_reason: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": OPENAI_MODEL, "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        "usage": null
    });
    format!("data: {chunk}\n\n")
}

/// A Chat Completions stream (`stream_options.include_usage`), one string per body chunk: the
/// role, the text pieces, the finish reason, the usage, `[DONE]`.
pub fn openai_stream() -> Vec<String> {
    let mut out = vec![openai_chunk(
        json!({"role": "assistant", "content": ""}),
        None,
    )];
    for piece in ANSWER_PIECES {
        out.push(openai_chunk(json!({"content": piece}), None));
    }
    out.push(openai_chunk(json!({}), Some("stop")));
    let usage = json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": OPENAI_MODEL, "system_fingerprint": "fp_fake", "choices": [],
        "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                  "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}
    });
    out.push(format!("data: {usage}\n\n"));
    out.push("data: [DONE]\n\n".to_owned());
    out
}

/// A whole Messages answer.
pub fn anthropic_answer() -> Value {
    json!({
        "id": "msg_fake", "type": "message", "role": "assistant", "model": ANTHROPIC_MODEL,
        "content": [{"type": "text", "text": full_text()}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS}
    })
}

fn anthropic_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// A Messages stream, one string per body chunk: message_start, content_block_start, ping, a
/// content_block_delta per piece, content_block_stop, message_delta, message_stop.
pub fn anthropic_stream() -> Vec<String> {
    let mut out = vec![
        anthropic_event(
            "message_start",
            json!({"type": "message_start",
                "message": {"id": "msg_fake", "type": "message", "role": "assistant",
                    "content": [], "model": ANTHROPIC_MODEL, "stop_reason": null,
                    "stop_sequence": null,
                    "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": 1}}}),
        ),
        anthropic_event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
        ),
        anthropic_event("ping", json!({"type": "ping"})),
    ];
    for piece in ANSWER_PIECES {
        out.push(anthropic_event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": piece}}),
        ));
    }
    out.push(anthropic_event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(anthropic_event(
        "message_delta",
        json!({"type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": COMPLETION_TOKENS}}),
    ));
    out.push(anthropic_event(
        "message_stop",
        json!({"type": "message_stop"}),
    ));
    out
}

/// The only field of a request the fake looks at.
#[derive(Deserialize)]
struct Flags {
    #[serde(default)]
    stream: Option<bool>,
}

/// The fake's routes over `answers`.
pub fn app(answers: Arc<Answers>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/messages", post(messages))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(answers)
}

/// Whether the request asks for a stream; `None` when the body is not a JSON object.
fn wants_stream(body: &[u8]) -> Option<bool> {
    serde_json::from_slice::<Flags>(body)
        .ok()
        .map(|f| f.stream.unwrap_or(false))
}

async fn chat_completions(State(answers): State<Arc<Answers>>, body: Bytes) -> Response {
    let Some(stream) = wants_stream(&body) else {
        let error = json!({"error": {"message": "the body is not a JSON object",
            "type": "invalid_request_error", "param": null, "code": null}});
        return bad_request(error);
    };
    if stream {
        return sse(&answers, Arc::clone(&answers.openai_stream));
    }
    whole(&answers, answers.openai_json.clone()).await
}

async fn messages(State(answers): State<Arc<Answers>>, body: Bytes) -> Response {
    let Some(stream) = wants_stream(&body) else {
        let error = json!({"type": "error", "error": {"type": "invalid_request_error",
            "message": "the body is not a JSON object"}});
        return bad_request(error);
    };
    if stream {
        return sse(&answers, Arc::clone(&answers.anthropic_stream));
    }
    whole(&answers, answers.anthropic_json.clone()).await
}

fn bad_request(error: Value) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        error.to_string(),
    )
        .into_response()
}

async fn whole(answers: &Answers, body: Bytes) -> Response {
    if !answers.delay.is_zero() {
        tokio::time::sleep(answers.delay).await;
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn sse(answers: &Answers, chunks: Arc<[Bytes]>) -> Response {
    let delay = answers.delay;
    let interval = answers.chunk_interval;
    let body = futures_util::stream::unfold(0usize, move |i| {
        let chunks = Arc::clone(&chunks);
        async move {
            let chunk = chunks.get(i)?.clone();
            let pause = if i == 0 { delay } else { interval };
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            Some((Ok::<_, std::convert::Infallible>(chunk), i + 1))
        }
    });
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = builder.enable_all().build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> std::io::Result<()> {
    use axum::serve::ListenerExt;

    let answers = Arc::new(Answers::new(
        Duration::from_millis(args.delay_ms),
        Duration::from_millis(args.chunk_interval_ms),
    ));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    announce(address)?;
    let listener = listener.tap_io(|tcp| {
        // Small answers: send each at once rather than waiting for an ACK (Nagle).
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app(answers)).await
}

/// Prints the address scripts read, and flushes it (stdout may be a pipe).
#[allow(clippy::print_stdout)]
fn announce(address: SocketAddr) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on http://{address}")?;
    out.flush()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn post(path: &str, body: &str) -> (StatusCode, String, String) {
        let answers = Arc::new(Answers::new(Duration::ZERO, Duration::ZERO));
        let request = axum::http::Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = app(answers).oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn openai_whole_answer() {
        let (status, content_type, body) = post(
            "/v1/chat/completions",
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "application/json");
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["choices"][0]["message"]["content"], full_text());
        assert_eq!(answer["usage"]["completion_tokens"], COMPLETION_TOKENS);
    }

    #[tokio::test]
    async fn openai_stream_ends_with_done_and_usage() {
        let (status, content_type, body) = post("/v1/chat/completions", r#"{"stream":true}"#).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "text/event-stream");
        assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
        let mut text = String::new();
        let mut usage = None;
        for event in body.split("\n\n").filter(|e| !e.is_empty()) {
            let data = event.strip_prefix("data: ").unwrap();
            if data == "[DONE]" {
                continue;
            }
            let chunk: Value = serde_json::from_str(data).unwrap();
            if let Some(piece) = chunk["choices"][0]["delta"]["content"].as_str() {
                text.push_str(piece);
            }
            if chunk["usage"].is_object() {
                usage = Some(chunk["usage"]["total_tokens"].clone());
            }
        }
        assert_eq!(text, full_text());
        assert_eq!(usage, Some(json!(PROMPT_TOKENS + COMPLETION_TOKENS)));
    }

    #[tokio::test]
    async fn anthropic_whole_answer_and_stream() {
        let (status, _, body) = post("/v1/messages", r#"{"model":"m","messages":[]}"#).await;
        assert_eq!(status, StatusCode::OK);
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["content"][0]["text"], full_text());
        assert_eq!(answer["stop_reason"], "end_turn");

        let (status, content_type, body) = post("/v1/messages", r#"{"stream":true}"#).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "text/event-stream");
        let names: Vec<&str> = body
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("event: "))
            .map(|e| e.split('\n').next().unwrap())
            .collect();
        assert_eq!(names.first(), Some(&"message_start"));
        assert_eq!(names.last(), Some(&"message_stop"));
        assert!(names.contains(&"message_delta"));
        assert_eq!(
            names
                .iter()
                .filter(|n| **n == "content_block_delta")
                .count(),
            ANSWER_PIECES.len()
        );
    }

    #[tokio::test]
    async fn not_json_is_a_400() {
        let (status, _, _) = post("/v1/chat/completions", "not json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
