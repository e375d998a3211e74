//! A fake model provider on a real loopback socket: it records every request and answers from
//! a script, one reply per request, in order.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// How the fake answers one request.
pub enum Reply {
    /// A whole answer at once.
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// An event stream whose chunks the test sends through a [`Feed`].
    Stream {
        chunks: mpsc::UnboundedReceiver<String>,
        dropped: oneshot::Sender<()>,
    },
    /// Accepts the request and never answers.
    Hang,
    /// Answers with the request's own `authorization` or `x-api-key` header in an error
    /// message, as a careless proxy might.
    EchoKey { status: u16 },
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Full {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.to_owned(),
        }
    }

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
        self.tx.as_ref().unwrap().send(text.to_owned()).unwrap();
    }

    /// Ends the body.
    pub fn finish(&mut self) {
        self.tx = None;
    }

    /// Resolves when the server has dropped the response body: after the body ended, or, while
    /// the test still holds the sender, because the client's connection closed.
    pub async fn body_dropped(self) {
        let _ = self.dropped.await;
    }
}

struct Shared {
    requests: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Reply>>,
}

/// A running fake provider.
pub struct Fake {
    pub url: String,
    shared: Arc<Shared>,
}

impl Fake {
    pub async fn start(script: Vec<Reply>) -> Fake {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(script.into()),
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

    pub fn only_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "{requests:#?}");
        requests.into_iter().next().unwrap()
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
    shared.requests.lock().unwrap().push(Recorded {
        method,
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let reply = shared.script.lock().unwrap().pop_front();
    match reply {
        None => (StatusCode::IM_A_TEAPOT, "the fake's script is exhausted").into_response(),
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
        Some(Reply::EchoKey { status }) => {
            let body = serde_json::json!({
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
    }
}
