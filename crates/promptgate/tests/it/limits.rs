//! `[limits]`, `[server] request_timeout_ms` and `[[model_endpoints]] max_concurrent_calls`:
//! each limit refuses what is over it with a 4xx that names the field, the limit and the setting
//! that raises it, accepts what is at the limit, and leaves nothing stored from a refused write.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_upstream::*;
use crate::harness::*;

/// A prompt body whose system prompt is `system`.
fn prompt_with_system(name: &str, system: &str) -> Value {
    let mut body = prompt_body(name);
    body["systemPrompt"] = json!(system);
    body
}

/// Asserts a single-violation 400 on `field` whose parameters name `setting` and `limit`.
#[track_caller]
fn assert_limit_error(resp: &Resp, field: &str, setting: &str, limit: usize) {
    let err = resp.error(400, "invalid.value");
    assert_eq!(err["details"][0]["fieldName"], field, "{err}");
    assert_eq!(
        param(&err, "setting"),
        json!(format!("[limits] {setting}")),
        "{err}"
    );
    assert_eq!(param(&err, "limit"), json!(limit.to_string()), "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains(setting) && message.contains(&limit.to_string()),
        "{message}"
    );
}

#[tokio::test]
async fn json_nested_deeper_than_the_limit_is_refused_before_parsing() {
    let server = Server::start_with(Options::with_config("[limits]\nmax_json_depth = 8\n"));
    let token = server.admin_token().await;
    // An unknown member nested 9 deep: the body object is level 1.
    let nested = |levels: usize| {
        let mut body = prompt_body("deep");
        body["extra"] =
            serde_json::from_str(&format!("{}1{}", "[".repeat(levels), "]".repeat(levels)))
                .unwrap();
        body
    };
    let resp = server.post(PROMPTS, Some(&token), &nested(8)).await;
    let err = resp.error(400, "invalid.value");
    assert_eq!(err["details"][0]["fieldName"], "body", "{err}");
    assert_eq!(param(&err, "limit"), json!("8"));
    assert_eq!(param(&err, "setting"), json!("[limits] max_json_depth"));
    assert!(
        server.get(PROMPTS, Some(&token)).await.ok(200)["entities"]
            .as_array()
            .unwrap()
            .is_empty(),
        "a refused body stores nothing"
    );
    // Seven levels inside the body object is depth 8: accepted.
    server.post(PROMPTS, Some(&token), &nested(7)).await.ok(201);

    // The default (32) holds without configuration: a body 10,000 levels deep is a 400, not a
    // stack overflow or a 500.
    let server = Server::start();
    let token = server.admin_token().await;
    let deep = format!(
        "{{\"name\":\"x\",\"a\":{}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let resp = server
        .send(
            server
                .request(reqwest::Method::POST, PROMPTS)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(deep),
        )
        .await;
    let err = resp.error(400, "invalid.value");
    assert_eq!(param(&err, "limit"), json!("32"));
}

#[tokio::test]
async fn system_prompt_and_few_shot_lengths_follow_the_configured_limits() {
    let server = Server::start_with(Options::with_config(
        "[limits]\nmax_system_prompt_chars = 100\nmax_few_shot_examples = 2\nmax_example_chars = 10\n",
    ));
    let token = server.admin_token().await;
    // Characters, not bytes: 100 two-byte characters are at the limit.
    let at_limit = "é".repeat(100);
    let over = "é".repeat(101);
    let resp = server
        .post(PROMPTS, Some(&token), &prompt_with_system("long", &over))
        .await;
    assert_limit_error(&resp, "systemPrompt", "max_system_prompt_chars", 100);
    assert_eq!(param(&resp.json(), "length"), json!("101"));
    let (created, etag) = server
        .create_prompt(&token, &prompt_with_system("long", &at_limit))
        .await;
    let id = str_field(&created, "id");

    // An update over the limit is refused and the prompt keeps its one version.
    let resp = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"version": "1.1.0", "systemPrompt": over}),
            Some(&etag),
        )
        .await;
    assert_limit_error(&resp, "systemPrompt", "max_system_prompt_chars", 100);
    let versions = server.get(&versions_path(&id), Some(&token)).await.ok(200);
    assert_eq!(
        versions["entities"].as_array().unwrap().len(),
        1,
        "{versions}"
    );

    let examples = |n: usize, text: &str| {
        (0..n)
            .map(|_| json!({"input": text, "output": "ok"}))
            .collect::<Vec<_>>()
    };
    let mut body = prompt_body("examples");
    body["fewShotExamples"] = json!(examples(3, "hi"));
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    let err = resp.error(400, "invalid.value");
    assert_eq!(err["details"][0]["fieldName"], "fewShotExamples");
    assert_eq!(
        param(&err, "setting"),
        json!("[limits] max_few_shot_examples")
    );
    body["fewShotExamples"] = json!(examples(2, "01234567890"));
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    // Two examples over the length: both named.
    let err = resp.error(400, "invalid.value");
    let fields: Vec<_> = err["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["fieldName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        fields,
        ["fewShotExamples[0].input", "fewShotExamples[1].input"],
        "{err}"
    );
    body["fewShotExamples"] = json!(examples(2, "0123456789"));
    server.post(PROMPTS, Some(&token), &body).await.ok(201);
}

#[tokio::test]
async fn invocation_input_conversation_and_metadata_limits_name_their_settings() {
    let server = Server::start_with(Options::with_config(
        "[limits]\nmax_input_chars = 20\nmax_conversation_messages = 2\nmax_metadata_entries = 2\nmax_metadata_key_chars = 5\nmax_metadata_value_chars = 6\n",
    ));
    let token = server.admin_token().await;
    let (created, _) = server.create_prompt(&token, &prompt_body("inv")).await;
    let id = str_field(&created, "id");
    let invoke = |body: Value| {
        let server = &server;
        let token = token.clone();
        async move {
            server
                .post(&format!("{GW}/invocations"), Some(&token), &body)
                .await
        }
    };
    let resp = invoke(json!({"promptId": id, "userInput": "x".repeat(21)})).await;
    assert_limit_error(&resp, "userInput", "max_input_chars", 20);

    let turns = |n: usize| {
        (0..n)
            .map(|i| json!({"role": if i % 2 == 0 {"user"} else {"assistant"}, "content": "hi"}))
            .collect::<Vec<_>>()
    };
    let resp = invoke(json!({"promptId": id, "userInput": "hi", "messages": turns(3)})).await;
    let err = resp.error(400, "invalid.value");
    assert_eq!(
        param(&err, "setting"),
        json!("[limits] max_conversation_messages")
    );
    let resp = invoke(json!({"promptId": id, "userInput": "hi",
        "messages": [{"role": "user", "content": "y".repeat(21)}]}))
    .await;
    assert_limit_error(&resp, "messages[0].content", "max_input_chars", 20);

    let resp = invoke(json!({"promptId": id, "userInput": "hi",
        "metadata": {"a": "1", "b": "2", "c": "3"}}))
    .await;
    let err = resp.error(400, "invalid.value");
    assert_eq!(
        param(&err, "setting"),
        json!("[limits] max_metadata_entries")
    );
    let resp =
        invoke(json!({"promptId": id, "userInput": "hi", "metadata": {"toolong": "1"}})).await;
    assert_limit_error(&resp, "metadata.toolo", "max_metadata_key_chars", 5);
    let resp =
        invoke(json!({"promptId": id, "userInput": "hi", "metadata": {"k": "1234567"}})).await;
    assert_limit_error(&resp, "metadata.k", "max_metadata_value_chars", 6);

    // Everything exactly at its limit is served.
    let ok = invoke(
        json!({"promptId": id, "userInput": "x".repeat(20), "messages": turns(2),
        "metadata": {"abcde": "123456", "k": "v"}}),
    )
    .await
    .ok(200);
    // No refused invocation reached the model or telemetry: only the served one is recorded.
    let response_id = str_field(&ok, "responseId");
    let recorded = eventually(Duration::from_secs(10), || async {
        let t = server
            .get(&format!("{GW}/telemetry"), Some(&token))
            .await
            .ok(200);
        t["entities"].as_array().unwrap().len() == 1 && t["entities"][0]["id"] == json!(response_id)
    })
    .await;
    let t = server
        .get(&format!("{GW}/telemetry"), Some(&token))
        .await
        .ok(200);
    assert!(
        recorded,
        "the telemetry holds only the served invocation: {t}"
    );
}

#[tokio::test]
async fn a_feedback_comment_over_the_text_limit_is_refused() {
    let server = Server::start_with(Options::with_config("[limits]\nmax_text_chars = 10\n"));
    let token = server.admin_token().await;
    let (created, _) = server.create_prompt(&token, &prompt_body("fb")).await;
    let id = str_field(&created, "id");
    let answer = server
        .post(
            &format!("{GW}/invocations"),
            Some(&token),
            &json!({"promptId": id, "userInput": "hi"}),
        )
        .await
        .ok(200);
    let feedback = format!(
        "{GW}/invocations/{}/feedback",
        str_field(&answer, "responseId")
    );
    let resp = server
        .post(
            &feedback,
            Some(&token),
            &json!({"score": 1, "comment": "12345678901"}),
        )
        .await;
    assert_limit_error(&resp, "comment", "max_text_chars", 10);
    server
        .post(
            &feedback,
            Some(&token),
            &json!({"score": 1, "comment": "1234567890"}),
        )
        .await
        .ok(201);
}

/// Reads what the server sends on `stream` until it closes or `limit` passes.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> String {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n")
                    && String::from_utf8_lossy(&out).contains("\"contextId\"")
                {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408_naming_the_limit() {
    let server = Server::start_with(Options::with_config(
        "[server]\nrequest_timeout_ms = 1000\n",
    ));
    let token = server.admin_token().await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).unwrap();
    // The head promises 100 bytes; only 10 come, then nothing.
    write!(
        stream,
        "POST {PROMPTS} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\nX-Request-Id: slow-body-1\r\n\r\n{{\"name\":\"s"
    )
    .unwrap();
    stream.flush().unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let body_start = body.find('{').unwrap();
    let err: Value = serde_json::from_str(body[body_start..].trim_end_matches(|c: char| c != '}'))
        .unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(err["code"], "request.timeout", "{err}");
    assert_eq!(err["contextId"], "slow-body-1");
    assert_eq!(err["messageParams"]["limit"], "1000");
    assert_eq!(
        err["messageParams"]["setting"],
        "[server] request_timeout_ms"
    );
    // A whole body is still served on another connection.
    server.create_prompt(&token, &prompt_body("fast")).await;
    let listed = server.get(PROMPTS, Some(&token)).await.ok(200);
    assert_eq!(listed["entities"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn calls_beyond_an_endpoints_concurrency_cap_get_429_until_a_slot_frees() {
    const NARROW: &str = "fake/narrow";
    let (held, mut feed) = Reply::stream();
    let fake = Fake::start(vec![
        held,
        Reply::json(200, &Flavor::OpenAi.answer("second", 5, 1)),
    ])
    .await;
    let extra = endpoint_toml(
        NARROW,
        "openai",
        &format!("{}/v1", fake.url),
        OPENAI_MODEL,
        OPENAI_KEY_VAR,
        "max_concurrent_calls = 1\nmax_retries = 0",
    );
    let gw = Gateway::start_with(
        fake,
        Endpoints {
            extra,
            ..Endpoints::default()
        },
    )
    .await;
    let id = gw
        .create_prompt(&prompt_on("narrow", NARROW, "Be brief."))
        .await;

    // The first call streams and holds the endpoint's only slot until its upstream finishes.
    feed.send(&Flavor::OpenAi.stream_start("Hel"));
    let first = gw
        .invoke_raw(&json!({"promptId": id, "userInput": "one", "options": {"stream": true}}))
        .await;
    assert_eq!(first.status(), 200);
    let mut sse = SseReader::new(first);
    sse.expect_next("the first delta").await;

    let refused = gw
        .invoke(&json!({"promptId": id, "userInput": "two"}))
        .await;
    let err = refused.error(429, "too.many.requests");
    assert_eq!(param(&err, "endpoint"), json!(NARROW), "{err}");
    assert_eq!(param(&err, "limit"), json!("1"));
    assert_eq!(
        param(&err, "setting"),
        json!("[[model_endpoints]] max_concurrent_calls")
    );
    assert_eq!(refused.header("retry-after").as_deref(), Some("1"));
    assert_eq!(
        refused.header("inin-ratelimit-allowed").as_deref(),
        Some("1")
    );
    assert!(refused.header("inin-ratelimit-count").is_some());
    assert!(refused.header("inin-ratelimit-reset").is_some());
    assert_eq!(
        gw.fake.requests().len(),
        1,
        "the refused call never reached the upstream"
    );

    // Other endpoints are not affected by this one's cap.
    let other = gw
        .create_prompt(&prompt_on("other", OPENAI_REF, "Be brief."))
        .await;
    let resp = gw
        .invoke(&json!({"promptId": other, "userInput": "three"}))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.json());

    // When the first call ends, its slot is free again.
    feed.send(&Flavor::OpenAi.stream_delta("lo"));
    feed.send(&Flavor::OpenAi.stream_end(2));
    feed.finish();
    sse.rest().await;
    let served = eventually(HANG_GUARD, || async {
        gw.invoke(&json!({"promptId": id, "userInput": "four"}))
            .await
            .status
            != 429
    })
    .await;
    assert!(served, "the slot came back after the streamed call ended");
}

#[tokio::test]
async fn limit_settings_out_of_range_stop_the_start_naming_the_key() {
    for (config, key) in [
        ("[limits]\nmax_json_depth = 0\n", "limits.max_json_depth"),
        (
            "[limits]\nmax_system_prompt_chars = 2000000\n",
            "limits.max_system_prompt_chars",
        ),
        ("[limits]\nmax_strings = 5\n", "max_strings"),
        (
            "[server]\nrequest_timeout_ms = 0\n",
            "server.request_timeout_ms",
        ),
        (
            "[auth]\nfailed_logins_per_address_per_minute = 0\n",
            "failed_logins_per_address_per_minute",
        ),
        (
            "[[model_endpoints]]\nref = \"x/y\"\nprovider = \"builtin\"\nmodel = \"m\"\nmax_concurrent_calls = 0\n",
            "max_concurrent_calls",
        ),
    ] {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let failed = match Server::try_start_in(dir, Options::with_config(config)) {
            Ok(_) => panic!("started with {config:?}"),
            Err(failed) => failed,
        };
        assert!(failed.log.contains(key), "{config:?}: {}", failed.log);
    }
}
