//! A gateway configured to call a fake model provider on a loopback socket, and a reader for
//! the gateway's event streams.
//!
//! The fake itself is the workspace's one test kit, the `promptgate-fake-upstream` crate
//! (re-exported here): it records every request and answers from a script, one reply per
//! request in order; when the script is exhausted it answers with its fallback, if it has one,
//! else 418. A streaming reply sends only what the test feeds it, so a test decides when the
//! upstream "finishes"; the test hears when the fake's response body is dropped, which happens
//! when the gateway closes the connection.

use std::time::Duration;

use axum::body::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};

use crate::harness::*;

pub use promptgate_fake_upstream::{
    ANTHROPIC_REPORTED, FLAVORS, Fake, Fixtures, Flavor, KEY_REJECTED, OPENAI_REPORTED, Reply,
};

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
/// The models the endpoints configure (the fixtures report the dated `OPENAI_REPORTED` and
/// `ANTHROPIC_REPORTED`).
pub const OPENAI_MODEL: &str = "gpt-fake";
pub const ANTHROPIC_MODEL: &str = "claude-fake";

/// The gateway's name for each fake endpoint.
pub trait EndpointRef {
    /// The configured endpoint reference that calls this provider on the fake.
    fn reference(self) -> &'static str;
}

impl EndpointRef for Flavor {
    fn reference(self) -> &'static str {
        match self {
            Flavor::OpenAi => OPENAI_REF,
            Flavor::Anthropic => ANTHROPIC_REF,
        }
    }
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
