//! No API key in an error, a log line or a `Debug` output, even when the upstream echoes it.

use std::io;
use std::sync::{Arc, Mutex};

use promptgate_core::{EndpointCatalogue, TokenCounter};
use promptgate_providers::{ProviderError, http_client, provider_for, provider_with_keys};

use crate::common::{FLAVORS, KEY_VAR, keys, request};
use promptgate_fake_upstream::{Fake, Reply, key_pieces};

const MARKER: &str = "sk-MARKER-d41d8cd98f00b204";

/// Collects formatted log output.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_key_appears_in_no_error_log_line_or_debug_output() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // `#[tokio::test]` runs everything on this thread, so this catches every log line.
    let _logging = tracing::subscriber::set_default(subscriber);

    let mut seen: Vec<String> = Vec::new();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for flavor in FLAVORS {
        let (stream_reply, mut feed) = Reply::stream();
        let fake = Fake::start(vec![
            // A retried error (logged), then a final one, both quoting the key back.
            Reply::EchoKey { status: 500 },
            Reply::EchoKey { status: 401 },
            Reply::json(200, &format!("{{\"not an answer\": \"{MARKER}\"}}")),
            stream_reply,
            Reply::Hang,
            Reply::Hang,
        ])
        .await;
        let mut endpoint = flavor.endpoint(&fake.url);
        endpoint.timeout_ms = 500;
        endpoint.max_retries = 1;
        let provider = provider_with_keys(
            &endpoint,
            http_client().unwrap(),
            TokenCounter::load(),
            keys(MARKER),
        );
        seen.push(format!("{provider:?}"));

        let echoed = provider.complete(&request()).await.unwrap_err();
        assert!(
            matches!(&echoed, ProviderError::Upstream { status: Some(401), message } if message.contains("[redacted]")),
            "{flavor:?}: {echoed:?}"
        );
        let invalid = provider.complete(&request()).await.unwrap_err();
        assert!(matches!(invalid, ProviderError::Invalid(_)), "{invalid:?}");

        let error_event = match flavor {
            crate::common::Flavor::OpenAi => {
                format!("data: {{\"error\":{{\"message\":\"bad key {MARKER}\"}}}}\n\n")
            }
            crate::common::Flavor::Anthropic => format!(
                "event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"authentication_error\",\"message\":\"bad key {MARKER}\"}}}}\n\n"
            ),
        };
        feed.send(&error_event);
        feed.finish();
        let events = crate::common::collect(provider.stream(&request()).await.unwrap()).await;
        let streamed = events.into_iter().find_map(Result::err).unwrap();
        assert!(
            matches!(&streamed, ProviderError::Upstream { status: None, message } if message.contains("[redacted]")),
            "{flavor:?}: {streamed:?}"
        );

        let timeout = provider.complete(&request()).await.unwrap_err();
        assert_eq!(timeout, ProviderError::Timeout);

        // The key really was sent, so its absence below means something.
        let sent = fake.requests();
        assert!(
            sent.iter().all(|r| {
                r.header("authorization")
                    .or_else(|| r.header("x-api-key"))
                    .is_some_and(|value| value.contains(MARKER))
            }),
            "{flavor:?}"
        );

        let mut unreachable = flavor.endpoint(&format!("http://127.0.0.1:{closed_port}"));
        unreachable.max_retries = 0;
        let provider = provider_with_keys(
            &unreachable,
            http_client().unwrap(),
            TokenCounter::load(),
            keys(MARKER),
        );
        let refused = provider.complete(&request()).await.unwrap_err();
        assert!(matches!(
            refused,
            ProviderError::Upstream { status: None, .. }
        ));

        for error in [echoed, invalid, streamed, timeout, refused] {
            seen.push(format!("{error}"));
            seen.push(format!("{error:?}"));
        }
    }
    let missing = ProviderError::MissingKey {
        variable: KEY_VAR.to_owned(),
    };
    seen.push(format!("{missing} {missing:?}"));
    let builtin = EndpointCatalogue::with_overrides([])
        .get("builtin/echo")
        .unwrap()
        .clone();
    seen.push(format!(
        "{:?}",
        provider_for(&builtin, http_client().unwrap(), TokenCounter::load())
    ));

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("retrying the model provider"),
        "no retry was logged: {logged}"
    );
    for text in seen.iter().chain([&logged]) {
        assert!(!text.contains(MARKER), "the key leaked: {text}");
        assert!(!text.contains("MARKER"), "part of the key leaked: {text}");
    }
}

#[tokio::test]
async fn provider_error_text_masks_any_8_char_piece_of_the_key() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    let mut seen: Vec<String> = Vec::new();
    for flavor in FLAVORS {
        for (which, piece) in key_pieces(MARKER).into_iter().enumerate() {
            let message = format!("incorrect API key provided: {piece}. Check your key");
            let (stream_reply, mut feed) = Reply::stream();
            let fake = Fake::start(vec![
                // Retried (and logged), then final; a broken answer quoting the piece; an
                // error event on a stream.
                Reply::json(500, &flavor.error(&message)),
                Reply::json(401, &flavor.error(&message)),
                // A parse error quotes the string it did not expect (OpenAI's `choices`,
                // Anthropic's `content`).
                Reply::json(
                    200,
                    &serde_json::json!({"choices": piece, "content": piece}).to_string(),
                ),
                Reply::json(401, &format!("<html>{piece}</html>")),
                stream_reply,
            ])
            .await;
            let mut endpoint = flavor.endpoint(&fake.url);
            endpoint.max_retries = 1;
            let provider = provider_with_keys(
                &endpoint,
                http_client().unwrap(),
                TokenCounter::load(),
                keys(MARKER),
            );
            // Which piece, by number: the label must not quote the key itself.
            let what = format!("{flavor:?} piece {which}");

            let rejected = provider.complete(&request()).await.unwrap_err();
            // The provider's reason still reaches the caller, masked.
            assert!(
                matches!(&rejected, ProviderError::Upstream { status: Some(401), message }
                    if message.contains("incorrect API key provided: [redacted]")),
                "{what}: {rejected:?}"
            );
            let invalid = provider.complete(&request()).await.unwrap_err();
            assert!(
                matches!(invalid, ProviderError::Invalid(_)),
                "{what}: {invalid:?}"
            );
            let on_stream_start = match provider.stream(&request()).await {
                Err(error) => error,
                Ok(_) => panic!("{what}: a 401 started a stream"),
            };
            let event = match flavor {
                crate::common::Flavor::OpenAi => format!(
                    "data: {}\n\n",
                    serde_json::json!({"error": {"message": message}})
                ),
                crate::common::Flavor::Anthropic => format!(
                    "event: error\ndata: {}\n\n",
                    serde_json::json!({"type": "error",
                        "error": {"type": "authentication_error", "message": message}})
                ),
            };
            feed.send(&event);
            feed.finish();
            let in_stream = crate::common::collect(provider.stream(&request()).await.unwrap())
                .await
                .into_iter()
                .find_map(Result::err)
                .unwrap();
            for error in [rejected, invalid, on_stream_start, in_stream] {
                seen.push(format!("{what}: {error}"));
                seen.push(format!("{what}: {error:?}"));
            }
        }
    }
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("retrying the model provider"),
        "no retry was logged: {logged}"
    );
    for text in seen.iter().chain([&logged]) {
        for start in 0..=MARKER.len() - 8 {
            let piece = &MARKER[start..start + 8];
            assert!(
                !text
                    .to_ascii_lowercase()
                    .contains(&piece.to_ascii_lowercase()),
                "{piece:?} of the key leaked: {text}"
            );
        }
    }
}
