//! A scripted fake provider for tests, on a real loopback socket.
//!
//! [`Fake`] records every request (method, path, headers, body) and answers from a script, one
//! [`Reply`] per request in order; when the script is exhausted it answers with its fallback,
//! if it has one, else 418. A streaming reply sends only what the test feeds it through a
//! [`Feed`], so a test decides when the upstream "finishes", and hears when the fake's
//! response body is dropped (which happens when the caller closes the connection). Scripted
//! failures: error statuses, a reply that never comes ([`Reply::Hang`]), redirects, and errors
//! that quote the caller's key back, whole or in pieces, as careless providers and proxies do.

// A test double: a broken fixture or a poisoned lock fails the test that uses it, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::wire::{self, Flavor};

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The request method.
    pub method: Method,
    /// The request path, without the query.
    pub path: String,
    /// Every request header.
    pub headers: HeaderMap,
    /// The request body.
    pub body: Bytes,
}

impl Recorded {
    /// The body as JSON; fails the test when it is not.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the upstream request body is not JSON ({e}): {self:?}"))
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The header `name`; fails the test when its value is not visible ASCII.
    #[track_caller]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
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
        /// The status code.
        status: u16,
        /// The response headers, in order.
        headers: Vec<(&'static str, String)>,
        /// The body.
        body: String,
    },
    /// An event stream whose chunks the test sends through a [`Feed`].
    Stream {
        /// The chunks the test sends.
        chunks: mpsc::UnboundedReceiver<String>,
        /// Dropped with the response body, so the test hears of it.
        dropped: oneshot::Sender<()>,
    },
    /// Accepts the request and never answers.
    Hang,
    /// An error whose message quotes the request's own `authorization` or `x-api-key` header,
    /// as a careless proxy might.
    EchoKey {
        /// The status code.
        status: u16,
    },
    /// An error whose message quotes pieces of the request's key ([`key_pieces`]) after the
    /// provider's reason, as providers do ("incorrect API key provided: sk-…abcd").
    EchoKeyPieces {
        /// The status code.
        status: u16,
    },
    /// A stream that starts, then fails with an error event quoting pieces of the key, in
    /// the format of the provider the path names.
    EchoKeyPiecesMidStream,
    /// A redirect to `location`.
    Redirect {
        /// The status code (3xx).
        status: u16,
        /// Where the redirect points.
        location: String,
    },
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
    /// A whole JSON answer.
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::full(status, "application/json", body)
    }

    /// A whole event stream at once.
    pub fn sse(body: &str) -> Reply {
        Reply::full(200, "text/event-stream", body)
    }

    fn full(status: u16, content_type: &str, body: &str) -> Reply {
        Reply::Full {
            status,
            headers: vec![("content-type", content_type.to_owned())],
            body: body.to_owned(),
        }
    }

    /// The same reply with one more header (whole answers only).
    pub fn with_header(mut self, name: &'static str, value: &str) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((name, value.to_owned()));
        }
        self
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
        self.tx
            .as_ref()
            .expect("the feed is still open")
            .send(text.to_owned())
            .unwrap();
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
    /// the test still holds the sender, because the caller's connection closed.
    pub async fn body_dropped(self) {
        let _ = self.dropped.await;
    }
}

/// The answer to every request the script does not cover.
struct Fallback {
    status: u16,
    body: String,
}

struct Shared {
    requests: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Reply>>,
    fallback: Option<Fallback>,
}

/// A running fake provider; it serves until the test's runtime ends.
pub struct Fake {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub url: String,
    shared: Arc<Shared>,
}

impl Fake {
    /// A fake answering from `script`, then 418.
    pub async fn start(script: Vec<Reply>) -> Fake {
        Fake::start_inner(script, None).await
    }

    /// A fake that answers every request the script does not cover with `status` and the JSON
    /// `body`.
    pub async fn start_with_fallback(script: Vec<Reply>, status: u16, body: &str) -> Fake {
        let fallback = Fallback {
            status,
            body: body.to_owned(),
        };
        Fake::start_inner(script, Some(fallback)).await
    }

    async fn start_inner(script: Vec<Reply>, fallback: Option<Fallback>) -> Fake {
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

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The only request so far; fails the test when there were none or several.
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
    let flavor = if uri.path().ends_with("/messages") {
        Flavor::Anthropic
    } else {
        Flavor::OpenAi
    };
    shared.requests.lock().unwrap().push(Recorded {
        method,
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let reply = shared.script.lock().unwrap().pop_front();
    match reply {
        None => match &shared.fallback {
            Some(f) => json_response(f.status, f.body.clone()),
            None => (StatusCode::IM_A_TEAPOT, "the fake's script is exhausted").into_response(),
        },
        Some(Reply::Full {
            status,
            headers,
            body,
        }) => {
            let mut response = Response::builder().status(status);
            for (name, value) in headers {
                response = response.header(name, value);
            }
            response.body(Body::from(body)).unwrap()
        }
        Some(Reply::Stream { chunks, dropped }) => {
            let body = futures_util::stream::unfold(chunks, |mut chunks| async move {
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
        Some(Reply::EchoKey { status }) => auth_error(status, &format!("invalid key: {echoed}")),
        Some(Reply::EchoKeyPieces { status }) => auth_error(
            status,
            &format!("{KEY_REJECTED}: {}", key_pieces(&key).join(" / ")),
        ),
        Some(Reply::EchoKeyPiecesMidStream) => {
            let message = format!("{KEY_REJECTED}: {}", key_pieces(&key).join(" / "));
            (
                StatusCode::OK,
                [("content-type", "text/event-stream")],
                [
                    flavor.stream_start("Hel"),
                    wire::stream_auth_error(flavor, &message),
                ]
                .concat(),
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

/// An Anthropic-style authentication error quoting `message`.
fn auth_error(status: u16, message: &str) -> Response {
    let body = json!({
        "type": "error",
        "error": {"type": "authentication_error", "message": message}
    });
    json_response(status, body.to_string())
}

fn json_response(status: u16, body: String) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    )
        .into_response()
}
