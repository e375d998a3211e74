//! The optional moderation endpoint (OpenAI moderation API shape) on the invocation path, and
//! the telemetry record every invocation leaves, against a fake moderation server.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use promptgate_core::invocation::InvocationStatus;
use serde_json::{Value, json};

use crate::harness::{TestApp, send, with_body};

/// What the fake answers, and every body it received.
#[derive(Clone, Default)]
struct Fake {
    flag: Arc<Mutex<Option<&'static str>>>,
    fail: Arc<Mutex<bool>>,
    seen: Arc<Mutex<Vec<Value>>>,
}

async fn moderations(
    State(fake): State<Fake>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    fake.seen.lock().unwrap().push(body);
    if *fake.fail.lock().unwrap() {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"message": "down"}})),
        );
    }
    let mut categories = json!({"violence": false, "hate": false, "self-harm/intent": false});
    if let Some(name) = *fake.flag.lock().unwrap() {
        categories[name] = json!(true);
    }
    (
        StatusCode::OK,
        Json(json!({"id": "modr-1", "model": "omni-moderation-latest",
                    "results": [{"flagged": true, "categories": categories}]})),
    )
}

async fn start_fake() -> (Fake, String) {
    let fake = Fake::default();
    let app = axum::Router::new()
        .route("/v1/moderations", post(moderations))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, format!("http://{addr}/v1"))
}

/// A test app whose state has the moderation check, with a prompt blocking `violence` and
/// `self_harm`; returns the app and the prompt id.
async fn app_with_moderation(url: &str, fail_open: bool) -> (TestApp, String) {
    let mut app = TestApp::new().await;
    app.state = crate::harness::state_with(
        app.state.store().clone(),
        crate::harness::DEFAULT_MAX_BODY,
        &format!("[moderation]\nurl = \"{url}\"\nmax_retries = 0\nfail_open = {fail_open}\n"),
    )
    .await;
    app.router = promptgate_server::app(app.state.clone());
    let mut body = crate::harness::create_body("guarded");
    body["safetyGuardrails"]["blockedCategories"] = json!(["violence", "self_harm"]);
    let created = send(
        &app.router,
        with_body(
            "POST",
            "/api/v2/ai/llm/gateway/prompts",
            &app.bearer(),
            "application/json",
            body.to_string(),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    (app, id)
}

async fn invoke(app: &TestApp, prompt_id: &str, input: &str) -> crate::harness::Answer {
    let body = json!({"promptId": prompt_id, "userInput": input, "sessionId": "s-1"});
    send(
        &app.router,
        with_body(
            "POST",
            "/api/v2/ai/llm/gateway/invocations",
            &app.bearer(),
            "application/json",
            body.to_string(),
        ),
    )
    .await
}

#[tokio::test]
async fn a_flagged_blocked_category_is_a_422_and_the_moderator_sees_redacted_text() {
    let (fake, url) = start_fake().await;
    let (app, id) = app_with_moderation(&url, false).await;
    *fake.flag.lock().unwrap() = Some("self-harm/intent");
    let answer = invoke(&app, &id, "my email is jane.doe@example.com").await;
    let body = answer.expect_error(422, "guardrail.blocked");
    assert_eq!(body.message_params["category"], "self_harm");
    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["model"], "omni-moderation-latest");
    let sent = seen[0]["input"].to_string();
    assert!(sent.contains("[EMAIL]"), "{sent}");
    assert!(!sent.contains("jane.doe@example.com"), "{sent}");
}

#[tokio::test]
async fn a_flag_outside_the_blocked_categories_is_served() {
    let (fake, url) = start_fake().await;
    let (app, id) = app_with_moderation(&url, false).await;
    *fake.flag.lock().unwrap() = Some("hate");
    let answer = invoke(&app, &id, "hello").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

#[tokio::test]
async fn a_failing_moderator_refuses_unless_fail_open() {
    let (fake, url) = start_fake().await;
    *fake.fail.lock().unwrap() = true;
    let (closed, id) = app_with_moderation(&url, false).await;
    invoke(&closed, &id, "hello")
        .await
        .expect_error(502, "upstream.error");
    let (open, id) = app_with_moderation(&url, true).await;
    let answer = invoke(&open, &id, "hello").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

#[tokio::test]
async fn every_invocation_leaves_one_record_with_its_outcome() {
    let app = TestApp::new().await;
    let (sink, mut records) = promptgate_server::telemetry::TelemetrySink::new(16);
    let router = promptgate_server::app(app.state.clone().with_telemetry_sink(sink));
    let mut body = crate::harness::create_body("recorded");
    body["safetyGuardrails"]["blockedCategories"] = json!(["violence"]);
    let created = send(
        &router,
        with_body(
            "POST",
            "/api/v2/ai/llm/gateway/prompts",
            &app.bearer(),
            "application/json",
            body.to_string(),
        ),
    )
    .await;
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let call = |input: &str| {
        let body = json!({"promptId": id, "userInput": input, "metadata": {"channel": "web"}});
        with_body(
            "POST",
            "/api/v2/ai/llm/gateway/invocations",
            &app.bearer(),
            "application/json",
            body.to_string(),
        )
    };
    let ok = send(&router, call("where is my parcel?")).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let blocked = send(&router, call("I will kill you")).await;
    assert_eq!(blocked.status.as_u16(), 422, "{}", blocked.text());

    let first = records.try_recv().expect("a record for the success");
    assert_eq!(first.status, InvocationStatus::Success);
    assert_eq!(first.id, ok.json()["responseId"].as_str().unwrap());
    assert_eq!(first.metadata["channel"], "web");
    assert!(first.prompt_tokens > 0 && first.completion_tokens > 0);
    let second = records.try_recv().expect("a record for the blocked call");
    assert_eq!(second.status, InvocationStatus::Blocked);
    assert_eq!(second.error_code.as_deref(), Some("guardrail.blocked"));
    assert!(
        records.try_recv().is_err(),
        "exactly one record per invocation"
    );
}

/// Under the `prepend` policy the caller's system text of `/v1/chat/completions` reaches the
/// provider, so the moderation endpoint sees it too (after PII redaction), like the messages.
#[tokio::test]
async fn the_caller_system_text_of_v1_is_moderated_under_prepend() {
    let (fake, url) = start_fake().await;
    let (app, id) = app_with_moderation(&url, false).await;
    let policy = send(
        &app.router,
        with_body(
            "PUT",
            &format!("/api/v2/ai/llm/gateway/prompts/{id}"),
            &app.bearer(),
            "application/json",
            json!({"chatCompletions": {"systemMessage": "prepend"}}).to_string(),
        ),
    )
    .await;
    assert_eq!(policy.status, StatusCode::OK, "{}", policy.text());
    *fake.flag.lock().unwrap() = Some("violence");
    let body = json!({"model": "prompt:guarded", "messages": [
        {"role": "system", "content": "Write to ops@example.com about the plan."},
        {"role": "user", "content": "hello"}]});
    let answer = send(
        &app.router,
        with_body(
            "POST",
            "/v1/chat/completions",
            &app.bearer(),
            "application/json",
            body.to_string(),
        ),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text()
    );
    let error: Value = serde_json::from_str(&answer.text()).unwrap();
    assert_eq!(
        error["error"]["code"], "content_policy_violation",
        "{error}"
    );
    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let sent = seen[0]["input"].to_string();
    assert!(sent.contains("Write to [EMAIL] about the plan."), "{sent}");
    assert!(sent.contains("hello"), "{sent}");
    assert!(!sent.contains("ops@example.com"), "{sent}");
}
