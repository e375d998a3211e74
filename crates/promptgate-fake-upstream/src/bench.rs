//! The benchmark's fake provider: OpenAI Chat Completions (`POST /v1/chat/completions`) and
//! Anthropic Messages (`POST /v1/messages`), each whole or streamed as server-sent events,
//! always with the same short answer after a fixed delay.
//!
//! It is built to cost as little as possible per request, so that it is never the bottleneck of
//! a load test: every answer is rendered once at start-up ([`Answers`]), the request body is
//! only scanned for its `stream` flag, nothing is logged per request, and the binary's runtime
//! is multi-threaded.
//!
//! The delay is the time before the answer (whole answers) or before the first byte of the
//! body (streams; the response head is sent at once, as real providers do). A stream then sends
//! its events the chunk interval apart (0: back to back, each its own body chunk).

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
use serde::Deserialize;
use serde_json::{Value, json};

use crate::wire::{Fixtures, Flavor};

/// The fixed answer, in the pieces a stream sends it in.
pub const ANSWER_PIECES: [&str; 3] = [
    "Thanks for waiting.",
    " Your order shipped yesterday",
    " and arrives on Tuesday.",
];
/// Prompt tokens every answer reports.
pub const PROMPT_TOKENS: u32 = Fixtures::BENCH.stream_prompt_tokens;
/// Completion tokens every answer reports.
pub const COMPLETION_TOKENS: u32 = 14;

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
        let answers = Fixtures::BENCH;
        let text = full_text();
        let stream = |flavor| {
            answers
                .stream_events(flavor, &ANSWER_PIECES, COMPLETION_TOKENS)
                .into_iter()
                .map(Bytes::from)
                .collect()
        };
        Answers {
            delay,
            chunk_interval,
            openai_json: Bytes::from(answers.answer(
                Flavor::OpenAi,
                &text,
                PROMPT_TOKENS,
                COMPLETION_TOKENS,
            )),
            openai_stream: stream(Flavor::OpenAi),
            anthropic_json: Bytes::from(answers.answer(
                Flavor::Anthropic,
                &text,
                PROMPT_TOKENS,
                COMPLETION_TOKENS,
            )),
            anthropic_stream: stream(Flavor::Anthropic),
        }
    }
}

/// The whole answer's text.
pub fn full_text() -> String {
    ANSWER_PIECES.concat()
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

/// Serves [`app`] on `listen` until the process ends, after `announce` was told the bound
/// address (the binary prints it for the scripts that start it).
pub async fn serve(
    listen: SocketAddr,
    answers: Answers,
    announce: impl FnOnce(SocketAddr) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;

    let listener = tokio::net::TcpListener::bind(listen).await?;
    announce(listener.local_addr()?)?;
    let listener = listener.tap_io(|tcp| {
        // Small answers: send each at once rather than waiting for an ACK (Nagle).
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app(Arc::new(answers))).await
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
