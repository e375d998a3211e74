//! Invocations through the gateway to real provider wire formats: the gateway's `fake/openai`
//! and `fake/anthropic` endpoints point at a fake upstream that this test process runs and that
//! records every request. Exact request bodies and headers, the answer's fields, streaming
//! relay, retries, timeouts, disconnect cancellation, guardrails before the upstream, and keys
//! that never leave the gateway.

use serde_json::{Value, json};

use crate::fake_upstream::*;
use crate::harness::*;

const SYSTEM: &str = "You are a terse support agent.";
const EXAMPLES: [(&str, &str); 2] = [
    ("Hi", "Hello! How can I help?"),
    ("Where is my parcel?", "Let me check the tracking."),
];

fn examples_json() -> Value {
    json!(
        EXAMPLES
            .iter()
            .map(|(i, o)| json!({"input": i, "output": o}))
            .collect::<Vec<_>>()
    )
}

/// A prompt on `flavor`'s endpoint with the few-shot examples above.
fn prompt_with_examples(name: &str, flavor: Flavor) -> Value {
    let mut body = prompt_on(name, flavor.reference(), SYSTEM);
    body["fewShotExamples"] = examples_json();
    body
}

/// The invocation the exact-request tests send: two earlier turns, the input, a token limit.
fn conversation(prompt_id: &str) -> Value {
    json!({
        "promptId": prompt_id,
        "userInput": "Any news on order 42?",
        "sessionId": "s-exact",
        "messages": [
            {"role": "user", "content": "My order is 42."},
            {"role": "assistant", "content": "Thanks, I am looking."}
        ],
        "options": {"maxOutputTokens": 64}
    })
}

fn turns_then_input() -> Vec<Value> {
    vec![
        json!({"role": "user", "content": "My order is 42."}),
        json!({"role": "assistant", "content": "Thanks, I am looking."}),
        json!({"role": "user", "content": "Any news on order 42?"}),
    ]
}

#[track_caller]
fn assert_response_id(body: &Value) {
    let id = body["responseId"].as_str().unwrap_or_default();
    assert!(
        id.starts_with("inv-") && id.len() > 4,
        "responseId {id:?}: {body}"
    );
}

#[tokio::test]
async fn openai_gets_the_exact_chat_completions_request_and_the_answer_carries_its_fields() {
    let flavor = Flavor::OpenAi;
    let gw = Gateway::start(vec![Reply::json(
        200,
        &flavor.answer("Your order ships today.", 31, 6),
    )])
    .await;
    let id = gw
        .create_prompt(&prompt_with_examples("oa-exact", flavor))
        .await;
    let resp = gw.invoke(&conversation(&id)).await;
    let body = resp.ok(200);

    let sent = gw.fake.only_request();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/chat/completions");
    let system = render_examples(SYSTEM, &EXAMPLES);
    let mut messages = vec![json!({"role": "system", "content": system})];
    messages.extend(turns_then_input());
    assert_eq!(
        sent.json(),
        json!({
            "model": OPENAI_MODEL,
            "messages": messages,
            "temperature": 0.3,
            "max_tokens": 64,
            "stream": false
        }),
        "the upstream body"
    );
    assert_eq!(
        sent.header("authorization").map(str::to_owned),
        Some(format!("Bearer {}", gw.openai_key)),
        "{}",
        sent.header_text()
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("x-api-key"), None, "{}", sent.header_text());
    assert!(
        !sent.header_text().contains(&gw.token),
        "the gateway's own bearer token went upstream: {}",
        sent.header_text()
    );

    assert_eq!(resp.header("x-prompt-version").as_deref(), Some("1.0.0"));
    assert_response_id(&body);
    assert_eq!(body["promptId"], json!(id));
    assert_eq!(body["version"], json!("1.0.0"));
    assert_eq!(
        body["model"],
        json!(OPENAI_REPORTED),
        "as the provider said"
    );
    assert_eq!(body["output"], json!("Your order ships today."));
    assert_eq!(
        body["tokenUsage"],
        json!({"prompt": 31, "completion": 6, "total": 37})
    );
    assert_eq!(body["finishReason"], json!("stop"));
    assert!(
        body["latencyMs"].as_f64().is_some_and(|l| l >= 0.0),
        "{body}"
    );
    assert_eq!(
        body["guardrails"],
        json!({"inputRedactions": {}, "outputRedactions": {}})
    );
    assert_eq!(
        body["context"],
        json!({"droppedExamples": 0, "droppedTurns": 0})
    );
    assert_eq!(
        body["fewShotTokens"],
        json!(o200k(&system) - o200k(SYSTEM)),
        "{body}"
    );
}

#[tokio::test]
async fn anthropic_gets_the_exact_messages_request_and_the_answer_carries_its_fields() {
    let gw = Gateway::start(vec![Reply::json(
        200,
        &Fixtures::TEST.anthropic_answer("Your order ships today.", 40, 7, "max_tokens"),
    )])
    .await;
    let id = gw
        .create_prompt(&prompt_with_examples("an-exact", Flavor::Anthropic))
        .await;
    let resp = gw.invoke(&conversation(&id)).await;
    let body = resp.ok(200);

    let sent = gw.fake.only_request();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(
        sent.json(),
        json!({
            "model": ANTHROPIC_MODEL,
            "system": render_examples(SYSTEM, &EXAMPLES),
            "messages": turns_then_input(),
            "max_tokens": 64,
            "temperature": 0.3
        }),
        "the upstream body: a top-level system, no system message"
    );
    assert_eq!(sent.header("x-api-key"), Some(gw.anthropic_key.as_str()));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("authorization"), None, "{}", sent.header_text());

    assert_eq!(resp.header("x-prompt-version").as_deref(), Some("1.0.0"));
    assert_response_id(&body);
    assert_eq!(body["promptId"], json!(id));
    assert_eq!(body["version"], json!("1.0.0"));
    assert_eq!(body["model"], json!(ANTHROPIC_REPORTED));
    assert_eq!(body["output"], json!("Your order ships today."));
    assert_eq!(
        body["tokenUsage"],
        json!({"prompt": 40, "completion": 7, "total": 47})
    );
    assert_eq!(
        body["finishReason"],
        json!("length"),
        "max_tokens in OpenAI's words"
    );
    assert_eq!(
        body["fewShotTokens"],
        json!(o200k(&render_examples(SYSTEM, &EXAMPLES)) - o200k(SYSTEM)),
        "the endpoint's tokenizer is o200k_base unless the model says otherwise: {body}"
    );
}

#[tokio::test]
async fn without_max_output_tokens_openai_sends_no_limit_and_anthropic_its_default() {
    let gw = Gateway::start(vec![
        Reply::json(200, &Flavor::OpenAi.answer("A.", 5, 1)),
        Reply::json(200, &Flavor::Anthropic.answer("B.", 5, 1)),
    ])
    .await;
    for flavor in FLAVORS {
        let id = gw
            .create_prompt(&prompt_on(
                &format!("bare-{flavor:?}"),
                flavor.reference(),
                SYSTEM,
            ))
            .await;
        gw.invoke(&json!({"promptId": id, "userInput": "Hello"}))
            .await
            .ok(200);
    }
    let sent = gw.fake.requests();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0].json(),
        json!({
            "model": OPENAI_MODEL,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hello"}],
            "temperature": 0.3,
            "stream": false
        })
    );
    assert_eq!(
        sent[1].json(),
        json!({
            "model": ANTHROPIC_MODEL,
            "system": SYSTEM,
            "messages": [{"role": "user", "content": "Hello"}],
            "max_tokens": 1024,
            "temperature": 0.3
        })
    );
}

#[tokio::test]
async fn streamed_deltas_reach_the_client_before_the_upstream_finishes() {
    let (reply_a, feed_a) = Reply::stream();
    let (reply_b, feed_b) = Reply::stream();
    let gw = Gateway::start(vec![reply_a, reply_b]).await;
    for (flavor, mut feed) in FLAVORS.into_iter().zip([feed_a, feed_b]) {
        let id = gw
            .create_prompt(&prompt_on(
                &format!("stream-{flavor:?}"),
                flavor.reference(),
                SYSTEM,
            ))
            .await;
        // The upstream sends its start and first delta, then holds the rest until told.
        feed.send(&flavor.stream_start("Hel"));
        let response = gw
            .invoke_raw(&json!({"promptId": id, "userInput": "Hi", "options": {"stream": true}}))
            .await;
        assert_eq!(response.status(), 200, "{flavor:?}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        assert_eq!(response.headers()["x-prompt-version"], "1.0.0");
        let mut sse = SseReader::new(response);
        let first = sse
            .expect_next("the first delta, while the upstream still holds back its end")
            .await;
        assert_eq!(first.event, "delta", "{flavor:?}: {first:?}");
        assert_eq!(first.json(), json!({"text": "Hel"}), "{flavor:?}");
        assert!(
            !feed.body_was_dropped(),
            "{flavor:?}: the upstream body is still open while the client reads"
        );

        feed.send(&flavor.stream_delta("lo"));
        feed.send(&flavor.stream_end(2));
        feed.finish();
        let rest = sse.rest().await;
        let names: Vec<&str> = rest.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(names, ["delta", "done"], "{flavor:?}: {}", sse.raw);
        assert_eq!(rest[0].json(), json!({"text": "lo"}));
        let done = rest[1].json();
        assert_response_id(&done);
        assert_eq!(done.get("output"), None, "done carries no output: {done}");
        assert_eq!(done["promptId"], json!(id));
        assert_eq!(done["version"], json!("1.0.0"));
        assert_eq!(done["model"], json!(flavor.reported_model()));
        assert_eq!(
            done["tokenUsage"],
            json!({"prompt": 31, "completion": 2, "total": 33})
        );
        assert_eq!(done["finishReason"], json!("stop"));
        assert_eq!(
            done["context"],
            json!({"droppedExamples": 0, "droppedTurns": 0})
        );
    }
    let sent = gw.fake.requests();
    assert_eq!(sent.len(), 2);
    for (request, flavor) in sent.iter().zip(FLAVORS) {
        assert_eq!(request.path, flavor.path());
    }
    assert_eq!(sent[0].json()["stream"], json!(true));
    assert_eq!(
        sent[0].json()["stream_options"],
        json!({"include_usage": true})
    );
    assert_eq!(sent[1].json()["stream"], json!(true));
}

#[tokio::test]
async fn upstream_server_errors_are_retried_then_502() {
    // max_retries = 2: three attempts in all.
    let gw = Gateway::start(vec![
        Reply::json(500, &Flavor::OpenAi.error("boom")),
        Reply::json(500, &Flavor::OpenAi.error("boom")),
        Reply::json(500, &Flavor::OpenAi.error("boom")),
        Reply::json(529, &Flavor::Anthropic.error("Overloaded")),
        Reply::json(529, &Flavor::Anthropic.error("Overloaded")),
        Reply::json(529, &Flavor::Anthropic.error("Overloaded")),
        // A stream that fails before its first byte is an ordinary JSON error.
        Reply::json(503, &Flavor::OpenAi.error("unavailable")),
        Reply::json(503, &Flavor::OpenAi.error("unavailable")),
        Reply::json(503, &Flavor::OpenAi.error("unavailable")),
        // A failure that recovers within the retries is a success.
        Reply::json(500, &Flavor::OpenAi.error("boom")),
        Reply::json(429, &Flavor::OpenAi.error("slow down")),
        Reply::json(200, &Flavor::OpenAi.answer("Recovered.", 5, 2)),
        // A client error is not retried.
        Reply::json(400, &Flavor::OpenAi.error("bad request")),
    ])
    .await;
    let openai = gw
        .create_prompt(&prompt_on("retry-oa", OPENAI_REF, SYSTEM))
        .await;
    let anthropic = gw
        .create_prompt(&prompt_on("retry-an", ANTHROPIC_REF, SYSTEM))
        .await;
    let invoke = |id: &str| json!({"promptId": id, "userInput": "Hello"});

    let err = gw
        .invoke(&invoke(&openai))
        .await
        .error(502, "upstream.error");
    assert_eq!(gw.fake.requests().len(), 3, "1 + max_retries attempts");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains(OPENAI_REF) && message.contains("500"),
        "{err}"
    );

    let err = gw
        .invoke(&invoke(&anthropic))
        .await
        .error(502, "upstream.error");
    assert_eq!(gw.fake.requests().len(), 6, "1 + max_retries attempts");
    assert!(err["message"].as_str().unwrap().contains("529"), "{err}");

    let mut streamed = invoke(&openai);
    streamed["options"] = json!({"stream": true});
    gw.invoke(&streamed).await.error(502, "upstream.error");
    assert_eq!(gw.fake.requests().len(), 9, "1 + max_retries attempts");

    let body = gw.invoke(&invoke(&openai)).await.ok(200);
    assert_eq!(body["output"], json!("Recovered."));
    assert_eq!(gw.fake.requests().len(), 12);

    gw.invoke(&invoke(&openai))
        .await
        .error(502, "upstream.error");
    assert_eq!(gw.fake.requests().len(), 13, "a 400 is not retried");
    // Every attempt was the same request.
    let sent = gw.fake.requests();
    assert!(
        sent[..3].iter().all(|r| r.body == sent[0].body),
        "{sent:#?}"
    );
}

#[tokio::test]
async fn a_silent_upstream_is_504_after_the_endpoint_timeout() {
    let fake = Fake::start(vec![Reply::Hang, Reply::Hang, Reply::Hang]).await;
    let gw = Gateway::start_with(
        fake,
        Endpoints {
            timeout_ms: 300,
            max_retries: 0,
            ..Endpoints::default()
        },
    )
    .await;
    for (n, flavor) in FLAVORS.into_iter().enumerate() {
        let id = gw
            .create_prompt(&prompt_on(
                &format!("silent-{flavor:?}"),
                flavor.reference(),
                SYSTEM,
            ))
            .await;
        let err = gw
            .invoke(&json!({"promptId": id, "userInput": "Hello"}))
            .await
            .error(504, "upstream.timeout");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains(flavor.reference()),
            "{err}"
        );
        assert_eq!(
            gw.fake.requests().len(),
            n + 1,
            "max_retries = 0: one attempt"
        );
    }
    let id = gw
        .create_prompt(&prompt_on("silent-stream", OPENAI_REF, SYSTEM))
        .await;
    gw.invoke(&json!({"promptId": id, "userInput": "Hello", "options": {"stream": true}}))
        .await
        .error(504, "upstream.timeout");
    assert_eq!(gw.fake.requests().len(), 3);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_closes_the_upstream_connection() {
    let (reply_a, feed_a) = Reply::stream();
    let (reply_b, feed_b) = Reply::stream();
    // The endpoint's timeout (which also bounds the wait for each upstream chunk) is far longer
    // than the hang guard, so only the disconnect can close the upstream connection in time.
    let gw = Gateway::start_with(
        Fake::start(vec![reply_a, reply_b]).await,
        Endpoints {
            timeout_ms: 600_000,
            ..Endpoints::default()
        },
    )
    .await;
    for (flavor, mut feed) in FLAVORS.into_iter().zip([feed_a, feed_b]) {
        let id = gw
            .create_prompt(&prompt_on(
                &format!("gone-{flavor:?}"),
                flavor.reference(),
                SYSTEM,
            ))
            .await;
        feed.send(&flavor.stream_start("Hel"));
        let response = gw
            .invoke_raw(&json!({"promptId": id, "userInput": "Hi", "options": {"stream": true}}))
            .await;
        assert_eq!(response.status(), 200);
        let mut sse = SseReader::new(response);
        let first = sse.expect_next("the first delta").await;
        assert_eq!(first.event, "delta");
        assert!(
            !feed.body_was_dropped(),
            "{flavor:?}: the upstream body closed before the client went away"
        );

        // The client goes away; the test still holds the upstream's sender, so the upstream
        // body can only end because the gateway closed its connection.
        drop(sse);
        if tokio::time::timeout(HANG_GUARD, feed.body_dropped())
            .await
            .is_err()
        {
            panic!("{flavor:?}: the upstream connection stayed open after the client disconnected");
        }
    }
    assert_eq!(gw.fake.requests().len(), 2);
}

#[tokio::test]
async fn pii_in_the_input_and_earlier_turns_never_reaches_the_upstream() {
    let gw = Gateway::start(vec![
        Reply::json(200, &Flavor::OpenAi.answer("OK.", 5, 1)),
        Reply::json(200, &Flavor::Anthropic.answer("OK.", 5, 1)),
        Reply::sse(&Flavor::OpenAi.full_stream(&["O", "K."], 1)),
    ])
    .await;
    let raw = [
        "jane.doe@example.com",
        "john.smith@example.org",
        "4111 1111 1111 1111",
    ];
    let request = |id: &str| {
        json!({
            "promptId": id,
            "userInput": "Write to jane.doe@example.com or charge 4111 1111 1111 1111 please",
            "messages": [
                {"role": "user", "content": "My old address was john.smith@example.org"},
                {"role": "assistant", "content": "Noted, john.smith@example.org it is."}
            ]
        })
    };
    let redacted_messages = [
        json!({"role": "user", "content": "My old address was [EMAIL]"}),
        json!({"role": "assistant", "content": "Noted, [EMAIL] it is."}),
        json!({"role": "user", "content": "Write to [EMAIL] or charge [CARD] please"}),
    ];
    for flavor in FLAVORS {
        let mut prompt = prompt_on(&format!("pii-{flavor:?}"), flavor.reference(), SYSTEM);
        prompt["safetyGuardrails"] = json!({"contentFiltering": ["pii"]});
        let id = gw.create_prompt(&prompt).await;
        let body = gw.invoke(&request(&id)).await.ok(200);
        assert_eq!(
            body["guardrails"]["inputRedactions"],
            json!({"EMAIL": 3, "CARD": 1}),
            "{flavor:?}: {body}"
        );
        let sent = gw.fake.requests().pop().unwrap().json();
        let messages = sent["messages"].as_array().unwrap();
        assert_eq!(
            messages[messages.len() - 3..],
            redacted_messages[..],
            "{flavor:?}: {sent}"
        );
    }
    // Streamed invocations are redacted as well.
    let mut prompt = prompt_on("pii-stream", OPENAI_REF, SYSTEM);
    prompt["safetyGuardrails"] = json!({"contentFiltering": ["pii"]});
    let id = gw.create_prompt(&prompt).await;
    let mut streamed = request(&id);
    streamed["options"] = json!({"stream": true});
    let mut sse = SseReader::new(gw.invoke_raw(&streamed).await);
    let events = sse.rest().await;
    let done = events
        .iter()
        .find(|e| e.event == "done")
        .unwrap_or_else(|| panic!("no done event: {}", sse.raw));
    assert_eq!(
        done.json()["guardrails"]["inputRedactions"],
        json!({"EMAIL": 3, "CARD": 1})
    );

    assert_eq!(gw.fake.requests().len(), 3);
    let everything = gw.fake.all_bodies();
    for value in raw
        .iter()
        .copied()
        .chain(["4111111111111111", "jane.doe", "john.smith"])
    {
        assert!(
            !everything.contains(value),
            "{value:?} reached the upstream:\n{everything}"
        );
    }
}

#[tokio::test]
async fn pii_in_the_output_is_redacted_also_across_stream_chunks() {
    let (reply, mut feed) = Reply::stream();
    let gw = Gateway::start(vec![
        Reply::json(
            200,
            &Flavor::OpenAi.answer("Sure, I will write to jane.doe@example.com.", 5, 9),
        ),
        reply,
    ])
    .await;
    let mut prompt = prompt_on("pii-out", OPENAI_REF, SYSTEM);
    prompt["safetyGuardrails"] = json!({"contentFiltering": ["pii"]});
    let id = gw.create_prompt(&prompt).await;

    let body = gw
        .invoke(&json!({"promptId": id, "userInput": "Write to her."}))
        .await
        .ok(200);
    assert_eq!(body["output"], json!("Sure, I will write to [EMAIL]."));
    assert_eq!(
        body["guardrails"],
        json!({"inputRedactions": {}, "outputRedactions": {"EMAIL": 1}})
    );

    // The address arrives split over two chunks.
    feed.send(&Flavor::OpenAi.stream_start("Write to jane.d"));
    feed.send(&Flavor::OpenAi.stream_delta("oe@example.com today."));
    feed.send(&Flavor::OpenAi.stream_end(6));
    feed.finish();
    let response = gw
        .invoke_raw(
            &json!({"promptId": id, "userInput": "Write to her.", "options": {"stream": true}}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let mut sse = SseReader::new(response);
    let events = sse.rest().await;
    let text: String = events
        .iter()
        .filter(|e| e.event == "delta")
        .map(|e| e.json()["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(text, "Write to [EMAIL] today.", "{}", sse.raw);
    for piece in ["jane", "example.com"] {
        assert!(
            !sse.raw.contains(piece),
            "{piece:?} reached the client: {}",
            sse.raw
        );
    }
    let done = events.last().unwrap();
    assert_eq!(done.event, "done", "{}", sse.raw);
    assert_eq!(
        done.json()["guardrails"]["outputRedactions"],
        json!({"EMAIL": 1})
    );
}

#[tokio::test]
async fn a_blocked_category_is_422_and_calls_no_provider() {
    let fake = Fake::start_with_fallback(
        Vec::new(),
        200,
        &Flavor::OpenAi.answer("Run kill -9 on its pid.", 5, 6),
    )
    .await;
    let gw = Gateway::start_with(fake, Endpoints::default()).await;
    let mut prompt = prompt_on("blocked", OPENAI_REF, SYSTEM);
    prompt["safetyGuardrails"] =
        json!({"contentFiltering": ["pii"], "blockedCategories": ["violence", "self_harm"]});
    let id = gw.create_prompt(&prompt).await;

    let err = gw
        .invoke(&json!({"promptId": id, "userInput": "I am going to kill my neighbour tonight"}))
        .await
        .error(422, "guardrail.blocked");
    assert_eq!(param(&err, "category"), json!("violence"), "{err}");

    // In an earlier turn too.
    let err = gw
        .invoke(&json!({
            "promptId": id,
            "userInput": "What should I do now?",
            "messages": [{"role": "user", "content": "I want to kill myself"},
                         {"role": "assistant", "content": "I am sorry to hear that."}]
        }))
        .await
        .error(422, "guardrail.blocked");
    assert_eq!(param(&err, "category"), json!("self_harm"), "{err}");

    // A streamed invocation is refused before any byte of a stream.
    let resp = gw
        .invoke(&json!({
            "promptId": id,
            "userInput": "I am going to kill my neighbour tonight",
            "options": {"stream": true}
        }))
        .await;
    let err = resp.error(422, "guardrail.blocked");
    assert_eq!(param(&err, "category"), json!("violence"));

    assert!(
        gw.fake.requests().is_empty(),
        "a blocked request reached the upstream: {:#?}",
        gw.fake.requests()
    );

    // The same words in an everyday sense pass and reach the provider.
    gw.invoke(&json!({"promptId": id, "userInput": "How do I kill the process on port 8080?"}))
        .await
        .ok(200);
    assert_eq!(gw.fake.requests().len(), 1);
}

#[tokio::test]
async fn the_provider_key_is_in_no_answer_and_no_log() {
    let fake = Fake::start(vec![
        Reply::json(200, &Flavor::OpenAi.answer("Fine.", 5, 1)),
        Reply::json(200, &Flavor::Anthropic.answer("Fine.", 5, 1)),
        // Errors that quote the key back: retried (500), then not (401), and on a stream.
        Reply::EchoKey { status: 500 },
        Reply::EchoKey { status: 500 },
        Reply::EchoKey { status: 500 },
        Reply::EchoKey { status: 401 },
        Reply::EchoKey { status: 401 },
    ])
    .await;
    let gw = Gateway::start_with(fake, Endpoints::default()).await;
    let openai = gw
        .create_prompt(&prompt_on("key-oa", OPENAI_REF, SYSTEM))
        .await;
    let anthropic = gw
        .create_prompt(&prompt_on("key-an", ANTHROPIC_REF, SYSTEM))
        .await;
    let plain = |id: &str| json!({"promptId": id, "userInput": "Hello"});
    let streamed =
        |id: &str| json!({"promptId": id, "userInput": "Hello", "options": {"stream": true}});

    let mut answers = vec![
        gw.invoke(&plain(&openai)).await,
        gw.invoke(&plain(&anthropic)).await,
    ];
    assert_eq!(answers[0].status, 200, "{}", answers[0]);
    assert_eq!(answers[1].status, 200, "{}", answers[1]);
    let failing = [
        gw.invoke(&plain(&openai)).await,
        gw.invoke(&plain(&anthropic)).await,
        gw.invoke(&streamed(&anthropic)).await,
    ];
    for resp in &failing {
        let err = resp.error(502, "upstream.error");
        assert!(
            err["message"].as_str().unwrap().contains("invalid key"),
            "the provider's message is passed on, masked: {err}"
        );
    }
    answers.extend(failing);
    assert_eq!(
        gw.fake.requests().len(),
        2 + 3 + 1 + 1,
        "a 401 is not retried"
    );

    // The upstream did get the keys (so the checks below could fail).
    let sent = gw.fake.requests();
    for (request, flavor) in sent.iter().zip(FLAVORS) {
        assert!(request.header_text().contains(gw.key(flavor)), "{flavor:?}");
    }

    let log = gw.server.log();
    for key in FLAVORS.map(|f| gw.key(f)) {
        let secret_part = key.rsplit('-').next().unwrap();
        for resp in &answers {
            let headers = format!("{:?}", resp.headers);
            for needle in [key, secret_part] {
                assert!(
                    !resp.text.contains(needle),
                    "the key is in an answer: {resp}"
                );
                assert!(!headers.contains(needle), "the key is in a header: {resp}");
            }
        }
        assert!(
            !log.contains(secret_part),
            "the key is in the gateway's log:\n{log}"
        );
    }
    assert!(
        log.contains("retrying"),
        "the retries were logged (so the log was searched where the key could be):\n{log}"
    );
}

#[tokio::test]
async fn a_missing_key_variable_is_502_naming_it_and_calls_nobody() {
    let fake = Fake::start(Vec::new()).await;
    let gw = Gateway::start_with(
        fake,
        Endpoints {
            with_keys: false,
            ..Endpoints::default()
        },
    )
    .await;
    for (flavor, variable) in FLAVORS.into_iter().zip([OPENAI_KEY_VAR, ANTHROPIC_KEY_VAR]) {
        let id = gw
            .create_prompt(&prompt_on(
                &format!("nokey-{flavor:?}"),
                flavor.reference(),
                SYSTEM,
            ))
            .await;
        for options in [json!({}), json!({"stream": true})] {
            let err = gw
                .invoke(&json!({"promptId": id, "userInput": "Hello", "options": options}))
                .await
                .error(502, "upstream.error");
            assert!(
                err["message"].as_str().unwrap().contains(variable),
                "{flavor:?}: the message names {variable}: {err}"
            );
        }
    }
    assert!(gw.fake.requests().is_empty(), "{:#?}", gw.fake.requests());
}
