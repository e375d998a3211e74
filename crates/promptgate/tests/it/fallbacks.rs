//! Fallbacks across model endpoints and the per-endpoint circuit breaker (issue 21,
//! docs/fallbacks.md): a version's `fallbackEndpointRefs` are tried in order when its endpoint
//! fails in a way that is not the request's fault, before the first byte of a stream only; the
//! answer, the telemetry record and `/metrics` say which endpoint served and what failed; an
//! endpoint that keeps failing is not called for a while.
//!
//! Each test runs two fake providers of its own, the primary and the backup, so that the
//! requests each endpoint received are counted apart. Behaviour is measured by request counts
//! and states, never by durations.

use serde_json::{Value, json};

use crate::fake_upstream::*;
use crate::harness::*;

const TELEMETRY: &str = "/api/v2/ai/llm/gateway/telemetry";
const SUMMARY: &str = "/api/v2/ai/llm/gateway/telemetry/summary";
const PRIMARY: &str = "fb/primary";
const BACKUP: &str = "fb/backup";
const SYSTEM: &str = "You answer questions about orders.";

/// A gateway whose `fb/primary` endpoint calls `primary_url` (with `primary_more` TOML keys)
/// and whose `fb/backup` calls the `backup` fake.
async fn gateway(primary_url: &str, primary_more: &str, backup: &Fake) -> (Server, String) {
    let config = [
        endpoint_toml(
            PRIMARY,
            "openai",
            &format!("{primary_url}/v1"),
            OPENAI_MODEL,
            OPENAI_KEY_VAR,
            primary_more,
        ),
        endpoint_toml(
            BACKUP,
            "openai",
            &format!("{}/v1", backup.url),
            "gpt-backup",
            OPENAI_KEY_VAR,
            "max_retries = 0",
        ),
    ]
    .concat();
    let server = Server::start_with(Options {
        env: vec![(OPENAI_KEY_VAR.to_owned(), random_secret())],
        ..Options::with_config(&config)
    });
    let token = server.admin_token().await;
    (server, token)
}

/// A prompt on the primary with the backup as its fallback.
async fn prompt_with_fallback(server: &Server, token: &str, name: &str) -> String {
    let mut body = prompt_on(name, PRIMARY, SYSTEM);
    body["fallbackEndpointRefs"] = json!([BACKUP]);
    let (created, _) = server.create_prompt(token, &body).await;
    assert_eq!(
        created["fallbackEndpointRefs"],
        json!([BACKUP]),
        "{created}"
    );
    str_field(&created, "id")
}

/// A backup that answers every request.
async fn healthy_backup() -> Fake {
    Fake::start_with_fallback(
        Vec::new(),
        200,
        &Flavor::OpenAi.answer("From the backup.", 5, 3),
    )
    .await
}

/// A primary that answers every request with a 500.
async fn failing_primary() -> Fake {
    Fake::start_with_fallback(Vec::new(), 500, &Flavor::OpenAi.error("boom")).await
}

async fn invoke(server: &Server, token: &str, id: &str) -> Resp {
    server
        .post(
            INVOCATIONS,
            Some(token),
            &json!({"promptId": id, "userInput": "Where is my order?"}),
        )
        .await
}

/// The answer served by the backup after the primary failed with `code`.
async fn assert_backup_served(server: &Server, token: &str, id: &str, answer: &Value, code: &str) {
    assert_eq!(answer["output"], "From the backup.", "{answer}");
    assert_eq!(answer["endpointRef"], BACKUP, "{answer}");
    assert_eq!(answer["model"], OPENAI_REPORTED, "{answer}");
    assert_eq!(
        answer["fallback"],
        json!({"used": true, "attempts": [{"endpointRef": PRIMARY, "errorCode": code}]}),
        "{answer}"
    );
    let record = server
        .telemetry_record(token, id, &str_field(answer, "responseId"))
        .await;
    assert_eq!(record["status"], "SUCCESS", "{record}");
    assert_eq!(record["endpointRef"], BACKUP, "{record}");
    assert_eq!(
        record["fallbackAttempts"],
        json!([{"endpointRef": PRIMARY, "errorCode": code}]),
        "{record}"
    );
}

#[tokio::test]
async fn a_primary_answering_500_falls_back_and_the_answer_telemetry_and_metrics_say_so() {
    let (primary, backup) = (failing_primary().await, healthy_backup().await);
    let (server, token) = gateway(&primary.url, "max_retries = 0", &backup).await;
    let id = prompt_with_fallback(&server, &token, "fallback-500").await;

    let answer = invoke(&server, &token, &id).await.ok(200);
    assert_backup_served(&server, &token, &id, &answer, "upstream.error").await;
    assert_eq!(primary.requests().len(), 1);
    // The backup got the same rendered prompt.
    let sent = backup.only_request().json();
    assert_eq!(sent["messages"][0]["content"], SYSTEM, "{sent}");
    assert_eq!(sent["model"], "gpt-backup", "{sent}");

    let metrics = server.get("/metrics", None).await;
    assert!(
        metrics.text.contains(&format!(
            "promptgate_fallbacks_total{{prompt=\"fallback-500\",from=\"{PRIMARY}\",to=\"{BACKUP}\"}} 1"
        )),
        "{}",
        metrics.text
    );

    // `/v1` names the serving endpoint in a header, and the model that answered.
    let chat = server
        .post(
            "/v1/chat/completions",
            Some(&token),
            &json!({"model": "prompt:fallback-500", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    let completion = chat.ok(200);
    assert_eq!(
        chat.header("x-promptgate-endpoint-ref").as_deref(),
        Some(BACKUP)
    );
    assert_eq!(completion["model"], OPENAI_REPORTED, "{completion}");

    // Summaries by endpoint: one entity per serving endpoint, named by endpointRef.
    let summary = server
        .get_query(
            SUMMARY,
            &token,
            &[("promptId", &id), ("groupBy", "endpoint")],
        )
        .await
        .ok(200);
    let entities = summary["entities"].as_array().unwrap();
    assert_eq!(entities.len(), 1, "{summary}");
    assert_eq!(entities[0]["endpointRef"], BACKUP, "{summary}");
    assert_eq!(entities[0]["count"], 2, "{summary}");
    assert!(entities[0].get("version").is_none(), "{summary}");
}

#[tokio::test]
async fn a_primary_timing_out_falls_back() {
    let primary = Fake::start(vec![Reply::Hang]).await;
    let backup = healthy_backup().await;
    let (server, token) = gateway(&primary.url, "max_retries = 0\ntimeout_ms = 300", &backup).await;
    let id = prompt_with_fallback(&server, &token, "fallback-timeout").await;

    let answer = invoke(&server, &token, &id).await.ok(200);
    assert_backup_served(&server, &token, &id, &answer, "upstream.timeout").await;
    assert_eq!(primary.requests().len(), 1);
}

#[tokio::test]
async fn a_primary_refusing_connections_falls_back() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let backup = healthy_backup().await;
    let (server, token) = gateway(
        &format!("http://127.0.0.1:{port}"),
        "max_retries = 0",
        &backup,
    )
    .await;
    let id = prompt_with_fallback(&server, &token, "fallback-refused").await;

    let answer = invoke(&server, &token, &id).await.ok(200);
    assert_backup_served(&server, &token, &id, &answer, "upstream.error").await;
}

#[tokio::test]
async fn a_400_from_the_primary_is_the_requests_fault_and_does_not_fall_back() {
    let primary =
        Fake::start_with_fallback(Vec::new(), 400, &Flavor::OpenAi.error("bad request")).await;
    let backup = healthy_backup().await;
    let (server, token) = gateway(&primary.url, "max_retries = 0", &backup).await;
    let id = prompt_with_fallback(&server, &token, "no-fallback-400").await;

    // The upstream's 400 is answered as an upstream error, as without fallbacks.
    let err = invoke(&server, &token, &id)
        .await
        .error(502, "upstream.error");
    assert!(err["message"].as_str().unwrap().contains("400"), "{err}");
    assert_eq!(primary.requests().len(), 1);
    assert!(backup.requests().is_empty(), "the backup was called");
    // Nor is it a failure of the endpoint: its circuit counts nothing.
    let endpoints = server.get(MODEL_ENDPOINTS, Some(&token)).await.ok(200);
    assert_eq!(circuit_of(&endpoints, PRIMARY)["consecutiveFailures"], 0);
}

#[tokio::test]
async fn every_endpoint_failing_answers_the_last_failure_and_records_every_attempt() {
    let (primary, backup) = (failing_primary().await, failing_primary().await);
    let (server, token) = gateway(&primary.url, "max_retries = 0", &backup).await;
    let id = prompt_with_fallback(&server, &token, "all-fail").await;

    let resp = invoke(&server, &token, &id).await;
    let err = resp.error(502, "upstream.error");
    assert!(err["message"].as_str().unwrap().contains(BACKUP), "{err}");
    assert_eq!((primary.requests().len(), backup.requests().len()), (1, 1));
    let page = server
        .get_query(TELEMETRY, &token, &[("promptId", &id)])
        .await
        .ok(200);
    let record = &page["entities"][0];
    assert_eq!(record["status"], "ERROR", "{page}");
    assert_eq!(record["endpointRef"], BACKUP, "{page}");
    assert_eq!(
        record["fallbackAttempts"],
        json!([
            {"endpointRef": PRIMARY, "errorCode": "upstream.error"},
            {"endpointRef": BACKUP, "errorCode": "upstream.error"}
        ]),
        "{page}"
    );
}

#[tokio::test]
async fn a_stream_whose_primary_fails_before_its_first_byte_is_streamed_by_the_fallback() {
    let primary = failing_primary().await;
    let backup = Fake::start(vec![Reply::sse(
        &Flavor::OpenAi.full_stream(&["From the ", "backup."], 3),
    )])
    .await;
    let (server, token) = gateway(&primary.url, "max_retries = 0", &backup).await;
    let id = prompt_with_fallback(&server, &token, "stream-fallback").await;

    let response = server
        .request(reqwest::Method::POST, INVOCATIONS)
        .bearer_auth(&token)
        .json(&json!({"promptId": id, "userInput": "Hi", "options": {"stream": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = SseReader::new(response).rest().await;
    let text: String = events
        .iter()
        .filter(|e| e.event == "delta")
        .map(|e| e.json()["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(text, "From the backup.");
    let done = events.last().unwrap();
    assert_eq!(done.event, "done", "{events:?}");
    let done = done.json();
    assert_eq!(done["endpointRef"], BACKUP, "{done}");
    assert_eq!(
        done["fallback"],
        json!({"used": true, "attempts": [{"endpointRef": PRIMARY, "errorCode": "upstream.error"}]})
    );
    assert_eq!(primary.requests().len(), 1);
}

#[tokio::test]
async fn a_stream_that_failed_after_its_first_chunk_ends_with_an_error_and_does_not_fall_back() {
    let (reply, mut feed) = Reply::stream();
    let primary = Fake::start(vec![reply]).await;
    let backup = healthy_backup().await;
    let (server, token) = gateway(&primary.url, "max_retries = 0", &backup).await;
    let id = prompt_with_fallback(&server, &token, "stream-midway").await;

    feed.send(&Flavor::OpenAi.stream_start("Half an "));
    let response = server
        .request(reqwest::Method::POST, INVOCATIONS)
        .bearer_auth(&token)
        .json(&json!({"promptId": id, "userInput": "Hi", "options": {"stream": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut sse = SseReader::new(response);
    let first = sse.expect_next("the first delta").await;
    assert_eq!(first.event, "delta", "{first:?}");
    // The primary's connection ends without the stream's end.
    feed.finish();
    let rest = sse.rest().await;
    let last = rest.last().unwrap();
    assert_eq!(last.event, "error", "{rest:?}");
    assert_eq!(last.json()["code"], "upstream.error", "{rest:?}");
    assert!(rest.iter().all(|e| e.event != "done"), "{rest:?}");
    assert!(backup.requests().is_empty(), "the backup was called");
    let page = server
        .get_query(TELEMETRY, &token, &[("promptId", &id)])
        .await
        .ok(200);
    let record = &page["entities"][0];
    assert_eq!(record["status"], "ERROR", "{page}");
    assert_eq!(record["endpointRef"], PRIMARY, "{page}");
    assert!(record.get("fallbackAttempts").is_none(), "{page}");
}

/// The circuit of `endpoint` in a `…/model-endpoints` listing.
fn circuit_of(listing: &Value, endpoint: &str) -> Value {
    listing["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ref"] == endpoint)
        .unwrap_or_else(|| panic!("no endpoint {endpoint}: {listing}"))["circuit"]
        .clone()
}

async fn circuit(server: &Server, token: &str) -> Value {
    let listing = server.get(MODEL_ENDPOINTS, Some(token)).await.ok(200);
    circuit_of(&listing, PRIMARY)
}

/// Waits until the primary's circuit is half-open (its open period is over).
async fn until_half_open(server: &Server, token: &str) {
    let half_open = eventually(HANG_GUARD, || async {
        circuit(server, token).await["state"] == "halfOpen"
    })
    .await;
    assert!(half_open, "the circuit never became half-open");
}

#[tokio::test]
async fn the_circuit_opens_after_the_threshold_lets_one_probe_through_and_closes_when_it_succeeds()
{
    // Three failures, then a healthy primary.
    let primary = Fake::start(vec![
        Reply::json(500, &Flavor::OpenAi.error("boom")),
        Reply::json(500, &Flavor::OpenAi.error("boom")),
        Reply::json(500, &Flavor::OpenAi.error("still down")),
        Reply::json(200, &Flavor::OpenAi.answer("From the primary.", 5, 3)),
    ])
    .await;
    let backup = healthy_backup().await;
    let (server, token) = gateway(
        &primary.url,
        "max_retries = 0\ncircuit_failure_threshold = 2\ncircuit_open_ms = 400",
        &backup,
    )
    .await;
    let id = prompt_with_fallback(&server, &token, "breaker").await;
    assert_eq!(
        circuit(&server, &token).await,
        json!({"state": "closed", "consecutiveFailures": 0, "openUntil": null})
    );

    // Two failures open the circuit.
    for _ in 0..2 {
        invoke(&server, &token, &id).await.ok(200);
    }
    assert_eq!(primary.requests().len(), 2);
    let open = circuit(&server, &token).await;
    assert_eq!(open["state"], "open", "{open}");
    assert_eq!(open["consecutiveFailures"], 2, "{open}");
    assert!(open["openUntil"].is_string(), "{open}");
    let metrics = server.get("/metrics", None).await.text;
    assert!(
        metrics.contains(&format!(
            "promptgate_circuit_state{{endpoint=\"{PRIMARY}\"}} 1"
        )) && metrics.contains(&format!(
            "promptgate_circuit_opened_total{{endpoint=\"{PRIMARY}\"}} 1"
        )),
        "{metrics}"
    );

    // While open, the primary is not called at all: the backup serves at once.
    let answer = invoke(&server, &token, &id).await.ok(200);
    assert_eq!(
        primary.requests().len(),
        2,
        "the open circuit called the primary"
    );
    assert_eq!(
        answer["fallback"]["attempts"],
        json!([{"endpointRef": PRIMARY, "errorCode": "upstream.circuit_open"}])
    );
    assert_eq!(answer["endpointRef"], BACKUP);

    // After the open period one probe reaches the primary; it fails, so the circuit opens
    // again.
    until_half_open(&server, &token).await;
    invoke(&server, &token, &id).await.ok(200);
    assert_eq!(primary.requests().len(), 3, "exactly one probe");
    assert_eq!(circuit(&server, &token).await["state"], "open");
    invoke(&server, &token, &id).await.ok(200);
    assert_eq!(
        primary.requests().len(),
        3,
        "the reopened circuit called the primary"
    );

    // The next probe succeeds: the primary serves and the circuit closes.
    until_half_open(&server, &token).await;
    let answer = invoke(&server, &token, &id).await.ok(200);
    assert_eq!(primary.requests().len(), 4);
    assert_eq!(answer["endpointRef"], PRIMARY, "{answer}");
    assert_eq!(answer["fallback"], json!({"used": false, "attempts": []}));
    assert_eq!(
        circuit(&server, &token).await,
        json!({"state": "closed", "consecutiveFailures": 0, "openUntil": null})
    );
    let metrics = server.get("/metrics", None).await.text;
    assert!(
        metrics.contains(&format!(
            "promptgate_circuit_state{{endpoint=\"{PRIMARY}\"}} 0"
        )) && metrics.contains(&format!(
            "promptgate_circuit_opened_total{{endpoint=\"{PRIMARY}\"}} 2"
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn fallback_endpoint_refs_are_checked_kept_shown_and_part_of_a_versions_content() {
    let backup = healthy_backup().await;
    let (server, token) = gateway(&backup.url, "", &backup).await;
    let refused = |refs: Value| {
        let mut body = prompt_on("checked", PRIMARY, SYSTEM);
        body["fallbackEndpointRefs"] = refs;
        body
    };
    for (refs, field) in [
        (json!(["nobody/knows"]), "fallbackEndpointRefs[0]"),
        (json!([BACKUP, BACKUP]), "fallbackEndpointRefs[1]"),
        (json!([PRIMARY]), "fallbackEndpointRefs[0]"),
        (json!(vec![BACKUP; 6]), "fallbackEndpointRefs"),
    ] {
        let resp = server.post(PROMPTS, Some(&token), &refused(refs)).await;
        resp.error(400, "invalid.value");
        assert!(resp.field_names().contains(field), "{field}: {resp}");
    }
    let unknown = server
        .post(PROMPTS, Some(&token), &refused(json!(["nobody/knows"])))
        .await
        .json();
    let message = unknown["message"].as_str().unwrap();
    assert!(
        message.contains(BACKUP) && message.contains(PRIMARY),
        "{unknown}"
    );

    // Kept by a new version that leaves it out, shown on the version.
    let id = prompt_with_fallback(&server, &token, "kept").await;
    let updated = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"version": "1.1.0", "temperature": 0.5}),
            None,
        )
        .await
        .ok(200);
    assert_eq!(
        updated["fallbackEndpointRefs"],
        json!([BACKUP]),
        "{updated}"
    );
    let version = server
        .get(
            &format!("{}/versions/1.1.0", prompt_path(&id)),
            Some(&token),
        )
        .await
        .ok(200);
    assert_eq!(
        version["fallbackEndpointRefs"],
        json!([BACKUP]),
        "{version}"
    );
    // The same label re-sent with other fallbacks is another content: a conflict.
    server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"version": "1.1.0", "temperature": 0.5, "fallbackEndpointRefs": []}),
            None,
        )
        .await
        .error(409, "conflict");
    // Removed with an empty list.
    let removed = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"version": "1.2.0", "fallbackEndpointRefs": []}),
            None,
        )
        .await
        .ok(200);
    assert!(removed.get("fallbackEndpointRefs").is_none(), "{removed}");
}

#[tokio::test]
async fn an_unknown_group_by_is_refused_naming_it() {
    let backup = healthy_backup().await;
    let (server, token) = gateway(&backup.url, "", &backup).await;
    let resp = server
        .get_query(SUMMARY, &token, &[("groupBy", "model")])
        .await;
    let err = resp.error(400, "invalid.value");
    assert!(resp.field_names().contains("groupBy"), "{resp}");
    assert!(
        err["message"].as_str().unwrap().contains("‘model’"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sets_and_removes_fallback_endpoints() {
    let backup = healthy_backup().await;
    let (server, _) = gateway(&backup.url, "", &backup).await;
    let cli = crate::cli_kit::Cli::new(&server);
    let created = cli
        .json(&[
            "prompts",
            "create",
            "--name",
            "cli-fallbacks",
            "--model",
            PRIMARY,
            "--system-prompt",
            SYSTEM,
            "--fallback-endpoints",
            &format!("{BACKUP},builtin/echo"),
        ])
        .await;
    assert_eq!(
        created["fallbackEndpointRefs"],
        json!([BACKUP, "builtin/echo"]),
        "{created}"
    );
    let id = str_field(&created, "id");
    let updated = cli
        .json(&[
            "prompts",
            "update",
            &id,
            "--version",
            "1.1.0",
            "--fallback-endpoints",
            "",
        ])
        .await;
    assert!(updated.get("fallbackEndpointRefs").is_none(), "{updated}");
    // The gateway's refusal is reported.
    let refused = cli
        .run(&[
            "prompts",
            "update",
            &id,
            "--version",
            "1.2.0",
            "--fallback-endpoints",
            PRIMARY,
        ])
        .await;
    crate::cli_kit::assert_fails(
        &refused,
        3,
        &["400 invalid.value", "a fallback must be another"],
    );
}
