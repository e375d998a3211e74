//! What the tests share: a request, fixed keys, and each HTTP provider's fixtures.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use promptgate_core::{ModelEndpoint, ProviderKind, TokenCounter};
use promptgate_fake_upstream::{Fake, Fixtures};
use promptgate_providers::{
    ChatMessage, ChatRequest, EventStream, KeySource, Provider, ProviderError, Role, StreamEvent,
    Usage, provider_with_keys,
};

/// The environment variable name the test endpoints configure; [`TestKeys`] answers for it,
/// so no test touches the process environment.
pub const KEY_VAR: &str = "PROMPTGATE_TEST_PROVIDER_KEY";
pub const KEY: &str = "sk-test-0123456789";

/// Keys from a map instead of the environment.
pub struct TestKeys(pub HashMap<String, String>);

impl KeySource for TestKeys {
    fn key(&self, variable: &str) -> Option<String> {
        self.0.get(variable).cloned()
    }
}

pub fn keys(key: &str) -> Arc<dyn KeySource> {
    Arc::new(TestKeys(HashMap::from([(
        KEY_VAR.to_owned(),
        key.to_owned(),
    )])))
}

/// A conversation with a system prompt, one earlier exchange and the user's input.
pub fn request() -> ChatRequest {
    ChatRequest {
        system: "You are a terse support agent.".to_owned(),
        messages: vec![
            ChatMessage::text(Role::User, "Hi"),
            ChatMessage::text(Role::Assistant, "Hello! How can I help?"),
            ChatMessage::text(Role::User, "Where is my order?"),
        ],
        temperature: 0.25,
        max_output_tokens: Some(64),
        ..ChatRequest::default()
    }
}

/// Reads a stream to its end.
pub async fn collect(stream: EventStream) -> Vec<Result<StreamEvent, ProviderError>> {
    stream.collect().await
}

/// What the fixtures report: real dated model names, so the providers are seen to pass them on.
const FIXTURES: Fixtures = Fixtures {
    openai_model: "gpt-4o-mini-2024-07-18",
    anthropic_model: "claude-3-5-sonnet-20241022",
    ..Fixtures::TEST
};

/// The two HTTP providers, for the tests every provider must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    OpenAi,
    Anthropic,
}

pub const FLAVORS: [Flavor; 2] = [Flavor::OpenAi, Flavor::Anthropic];

impl Flavor {
    pub fn endpoint(self, base: &str) -> ModelEndpoint {
        let (kind, base_url, model) = match self {
            Flavor::OpenAi => (ProviderKind::OpenAi, format!("{base}/v1"), "gpt-4o-mini"),
            Flavor::Anthropic => (
                ProviderKind::Anthropic,
                base.to_owned(),
                "claude-3-5-sonnet-latest",
            ),
        };
        let mut endpoint =
            ModelEndpoint::new("test/model", kind, &base_url, model, Some(KEY_VAR), 128_000);
        endpoint.timeout_ms = 10_000;
        endpoint.max_retries = 2;
        endpoint
    }

    pub fn provider(self, endpoint: &ModelEndpoint) -> Arc<dyn Provider> {
        provider_with_keys(
            endpoint,
            promptgate_providers::http_client().unwrap(),
            TokenCounter::load(),
            keys(KEY),
        )
    }

    pub fn start_provider(self, fake: &Fake) -> Arc<dyn Provider> {
        self.provider(&self.endpoint(&fake.url))
    }

    /// The kit's name for this provider's wire format.
    fn wire(self) -> promptgate_fake_upstream::Flavor {
        match self {
            Flavor::OpenAi => promptgate_fake_upstream::Flavor::OpenAi,
            Flavor::Anthropic => promptgate_fake_upstream::Flavor::Anthropic,
        }
    }

    pub fn path(self) -> &'static str {
        self.wire().path()
    }

    /// The model name the fixtures report (a dated snapshot, unlike the configured alias).
    pub fn reported_model(self) -> &'static str {
        FIXTURES.reported_model(self.wire())
    }

    /// A successful answer: "Your order ships today.", 31 prompt and 6 completion tokens.
    pub fn answer(self) -> String {
        FIXTURES.answer(self.wire(), "Your order ships today.", 31, 6)
    }

    /// A whole answer that calls `calls` (id, name, arguments), 31 prompt and 9 completion
    /// tokens.
    pub fn tool_call_answer(self, calls: &[(&str, &str, &str)]) -> String {
        FIXTURES.tool_call_answer(self.wire(), calls, 31, 9)
    }

    /// A whole stream that calls one tool, its arguments in `pieces`, 9 completion tokens.
    pub fn tool_call_stream(self, call: (&str, &str), pieces: &[&str]) -> String {
        FIXTURES
            .tool_call_stream_events(self.wire(), call, pieces, 9)
            .concat()
    }

    /// The provider's error body.
    pub fn error(self, message: &str) -> String {
        self.wire().error(message)
    }

    /// The error `error(message)` becomes.
    pub fn error_text(self, message: &str) -> String {
        match self {
            Flavor::OpenAi => format!("server_error: {message}"),
            Flavor::Anthropic => format!("api_error: {message}"),
        }
    }

    /// The stream up to and including the first text delta, "Hel".
    pub fn stream_start(self) -> String {
        FIXTURES.stream_start(self.wire(), "Hel")
    }

    /// The rest of the stream: "lo", the stop reason, usage (31 + 2) and the end.
    pub fn stream_rest(self) -> String {
        [
            FIXTURES.stream_delta(self.wire(), "lo"),
            FIXTURES.stream_end(self.wire(), 2),
        ]
        .concat()
    }

    /// What the whole stream relays after "Hel".
    pub fn expected_rest(self) -> Vec<StreamEvent> {
        vec![
            StreamEvent::Delta("lo".to_owned()),
            StreamEvent::Done {
                usage: Usage {
                    prompt_tokens: 31,
                    completion_tokens: 2,
                },
                finish_reason: "stop".to_owned(),
                model: self.reported_model().to_owned(),
            },
        ]
    }
}
