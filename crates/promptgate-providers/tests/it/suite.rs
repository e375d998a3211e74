//! What every HTTP provider must do, run against each: relay streams as they arrive, retry
//! within limits, time out, cancel on drop, and refuse to call without its key.

use std::time::Duration;

use futures_util::StreamExt;
use promptgate_core::TokenCounter;
use promptgate_providers::{ProviderError, StreamEvent, provider_for};

use crate::common::{FLAVORS, collect, request};
use promptgate_fake_upstream::{Fake, Reply};

/// Only a guard against a hanging test; no assertion depends on how long anything takes.
const HANG_GUARD: Duration = Duration::from_secs(20);

#[tokio::test]
async fn the_first_delta_arrives_before_the_upstream_has_finished() {
    for flavor in FLAVORS {
        let (reply, mut feed) = Reply::stream();
        let fake = Fake::start(vec![reply]).await;
        let provider = flavor.start_provider(&fake);
        feed.send(&flavor.stream_start());

        let mut stream = provider.stream(&request()).await.unwrap();
        let first = tokio::time::timeout(HANG_GUARD, stream.next()).await;
        // The upstream has sent only the start; its final events are still held by this test.
        assert_eq!(
            first.unwrap(),
            Some(Ok(StreamEvent::Delta("Hel".to_owned()))),
            "{flavor:?}"
        );

        feed.send(&flavor.stream_rest());
        feed.finish();
        let rest: Vec<_> = collect(stream)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rest, flavor.expected_rest(), "{flavor:?}");
        assert_eq!(fake.requests().len(), 1);
    }
}

#[tokio::test]
async fn dropping_the_stream_closes_the_upstream_connection() {
    for flavor in FLAVORS {
        let (reply, feed) = Reply::stream();
        let fake = Fake::start(vec![reply]).await;
        let provider = flavor.start_provider(&fake);
        feed.send(&flavor.stream_start());

        let mut stream = provider.stream(&request()).await.unwrap();
        assert!(matches!(
            stream.next().await,
            Some(Ok(StreamEvent::Delta(_)))
        ));
        drop(stream);

        // The fake still holds the body's sender, so its body is dropped only because the
        // connection closed.
        tokio::time::timeout(HANG_GUARD, feed.body_dropped())
            .await
            .unwrap_or_else(|_| panic!("{flavor:?}: the upstream never saw the connection close"));
    }
}

#[tokio::test]
async fn retries_429_and_500_then_succeeds() {
    for flavor in FLAVORS {
        let fake = Fake::start(vec![
            Reply::json(429, &flavor.error("Rate limit reached")).with_header("retry-after", "0"),
            Reply::json(500, &flavor.error("The server had an error")),
            Reply::json(200, &flavor.answer()),
        ])
        .await;
        let answer = flavor
            .start_provider(&fake)
            .complete(&request())
            .await
            .unwrap();
        assert_eq!(answer.text, "Your order ships today.", "{flavor:?}");
        let requests = fake.requests();
        assert_eq!(requests.len(), 3, "{flavor:?}");
        // Each retry sends the same request again.
        assert!(
            requests
                .iter()
                .all(|r| r.path == flavor.path() && r.body == requests[0].body)
        );
    }
}

#[tokio::test]
async fn exhausted_retries_report_the_last_status() {
    for flavor in FLAVORS {
        let fake = Fake::start(vec![
            Reply::json(503, &flavor.error("busy")),
            Reply::json(502, &flavor.error("bad gateway")),
            Reply::json(529, &flavor.error("Overloaded")),
            Reply::json(200, &flavor.answer()),
        ])
        .await;
        let error = flavor
            .start_provider(&fake)
            .complete(&request())
            .await
            .unwrap_err();
        assert_eq!(
            error,
            ProviderError::Upstream {
                status: Some(529),
                message: flavor.error_text("Overloaded"),
            },
            "{flavor:?}"
        );
        // max_retries = 2: three attempts, and the fourth reply is never asked for.
        assert_eq!(fake.requests().len(), 3, "{flavor:?}");
    }
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for flavor in FLAVORS {
        let fake = Fake::start(vec![
            Reply::json(400, &flavor.error("messages: field required")),
            Reply::json(200, &flavor.answer()),
        ])
        .await;
        let error = flavor
            .start_provider(&fake)
            .complete(&request())
            .await
            .unwrap_err();
        assert_eq!(
            error,
            ProviderError::Upstream {
                status: Some(400),
                message: flavor.error_text("messages: field required"),
            }
        );
        assert_eq!(fake.requests().len(), 1, "{flavor:?}");
    }
}

#[tokio::test]
async fn a_stream_is_retried_before_it_starts() {
    for flavor in FLAVORS {
        let (reply, mut feed) = Reply::stream();
        let fake = Fake::start(vec![
            Reply::json(500, &flavor.error("The server had an error")),
            reply,
        ])
        .await;
        feed.send(&flavor.stream_start());
        feed.send(&flavor.stream_rest());
        feed.finish();
        let stream = flavor
            .start_provider(&fake)
            .stream(&request())
            .await
            .unwrap();
        let events: Vec<_> = collect(stream)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(events.len(), 3, "{flavor:?}");
        assert_eq!(fake.requests().len(), 2, "{flavor:?}");
    }
}

#[tokio::test]
async fn a_silent_upstream_times_out() {
    for flavor in FLAVORS {
        let fake = Fake::start(vec![Reply::Hang, Reply::Hang, Reply::Hang]).await;
        let mut endpoint = flavor.endpoint(&fake.url);
        endpoint.timeout_ms = 200;
        endpoint.max_retries = 0;
        let provider = flavor.provider(&endpoint);
        assert_eq!(
            provider.complete(&request()).await.unwrap_err(),
            ProviderError::Timeout,
            "{flavor:?}"
        );
        assert_eq!(fake.requests().len(), 1);
        let Err(error) = provider.stream(&request()).await else {
            panic!("{flavor:?}: a stream from a silent upstream started");
        };
        assert_eq!(error, ProviderError::Timeout, "{flavor:?}");
    }
}

#[tokio::test]
async fn a_timed_out_attempt_is_retried_within_the_deadline() {
    for flavor in FLAVORS {
        let fake = Fake::start(vec![Reply::Hang, Reply::json(200, &flavor.answer())]).await;
        let mut endpoint = flavor.endpoint(&fake.url);
        endpoint.timeout_ms = 300;
        endpoint.max_retries = 2;
        let answer = flavor
            .provider(&endpoint)
            .complete(&request())
            .await
            .unwrap();
        assert_eq!(answer.text, "Your order ships today.");
        assert_eq!(fake.requests().len(), 2, "{flavor:?}");
    }
}

#[tokio::test]
async fn a_stream_that_stalls_ends_with_timeout() {
    for flavor in FLAVORS {
        let (reply, feed) = Reply::stream();
        let fake = Fake::start(vec![reply]).await;
        let mut endpoint = flavor.endpoint(&fake.url);
        endpoint.timeout_ms = 500;
        feed.send(&flavor.stream_start());
        let events = collect(flavor.provider(&endpoint).stream(&request()).await.unwrap()).await;
        assert_eq!(
            events,
            vec![
                Ok(StreamEvent::Delta("Hel".to_owned())),
                Err(ProviderError::Timeout)
            ],
            "{flavor:?}"
        );
        // Started streams are never retried.
        assert_eq!(fake.requests().len(), 1);
    }
}

#[tokio::test]
async fn an_unreachable_upstream_is_upstream_without_status() {
    // A port that was just free: nothing listens on it.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    for flavor in FLAVORS {
        let mut endpoint = flavor.endpoint(&format!("http://127.0.0.1:{port}"));
        endpoint.max_retries = 1;
        let error = flavor
            .provider(&endpoint)
            .complete(&request())
            .await
            .unwrap_err();
        assert!(
            matches!(error, ProviderError::Upstream { status: None, .. }),
            "{flavor:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_missing_key_stops_the_call_before_any_request() {
    for (n, flavor) in FLAVORS.into_iter().enumerate() {
        let fake = Fake::start(vec![Reply::json(200, &flavor.answer())]).await;
        // A name no test or machine sets, unique per case, so nothing races on it.
        let variable = format!("PROMPTGATE_TEST_UNSET_KEY_{n}_{}", std::process::id());
        let mut endpoint = flavor.endpoint(&fake.url);
        endpoint.api_key_env = Some(variable.clone());
        let provider = provider_for(
            &endpoint,
            promptgate_providers::http_client().unwrap(),
            TokenCounter::load(),
        );
        let missing = ProviderError::MissingKey {
            variable: variable.clone(),
        };
        assert_eq!(provider.complete(&request()).await.unwrap_err(), missing);
        let Err(error) = provider.stream(&request()).await else {
            panic!("{flavor:?}: streamed without a key");
        };
        assert_eq!(error, missing);
        assert!(fake.requests().is_empty(), "{flavor:?}");
        assert_eq!(
            missing.to_string(),
            format!("the API key variable {variable} is not set")
        );
    }
}
