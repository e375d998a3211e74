//! JSON bodies: 415, 413, malformed JSON, wrong types and non-object bodies.

use crate::harness::{BASE, TestApp, create_body, send, with_body};

fn prompts() -> String {
    format!("{BASE}/prompts")
}

#[tokio::test]
async fn a_valid_body_creates_a_prompt() {
    // The baseline the other tests in this module vary from.
    let app = TestApp::new().await;
    let req = with_body(
        "POST",
        &prompts(),
        &app.bearer(),
        "application/json",
        create_body("support_agent").to_string(),
    );
    let answer = send(&app.router, req).await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.text());
    assert_eq!(answer.json()["name"], "support_agent");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let app = TestApp::new().await;
    let json = create_body("support_agent").to_string();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "text/json",
    ] {
        let req = with_body(
            "POST",
            &prompts(),
            &app.bearer(),
            content_type,
            json.clone(),
        );
        let answer = send(&app.router, req).await;
        let body = answer.expect_error(415, "unsupported.media.type");
        assert!(body.message.contains(content_type), "{}", body.message);
    }
    // No Content-Type at all.
    let mut req = with_body(
        "POST",
        &prompts(),
        &app.bearer(),
        "text/plain",
        json.clone(),
    );
    req.headers_mut().remove("content-type");
    send(&app.router, req)
        .await
        .expect_error(415, "unsupported.media.type");
    // Parameters and case do not matter.
    let req = with_body(
        "POST",
        &prompts(),
        &app.bearer(),
        "Application/JSON; charset=utf-8",
        json,
    );
    let answer = send(&app.router, req).await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.text());
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let app = TestApp::with_max_body(64).await;
    let big = create_body(&"n".repeat(100)).to_string();
    assert!(big.len() > 64);
    // With a Content-Length header and without one (the body is counted as it is read).
    for declare_length in [true, false] {
        let mut req = with_body(
            "POST",
            &prompts(),
            &app.bearer(),
            "application/json",
            big.clone(),
        );
        if declare_length {
            req.headers_mut()
                .insert("content-length", big.len().to_string().parse().unwrap());
        }
        let answer = send(&app.router, req).await;
        let body = answer.expect_error(413, "payload.too.large");
        assert_eq!(
            body.message_params.get("limit").map(String::as_str),
            Some("64")
        );
    }
    // Under the limit the same route answers normally (here a validation error).
    let small = with_body("POST", &prompts(), &app.bearer(), "application/json", "{}");
    send(&app.router, small)
        .await
        .expect_error(400, "invalid.value");
}

#[tokio::test]
async fn malformed_json_is_a_400_bad_request() {
    let app = TestApp::new().await;
    for text in [r#"{"name": "#, "not json", "", r#"{"name": "a",}"#] {
        let req = with_body("POST", &prompts(), &app.bearer(), "application/json", text);
        let answer = send(&app.router, req).await;
        answer.expect_error(400, "bad.request");
    }
}

#[tokio::test]
async fn a_wrong_type_is_a_400_naming_the_field() {
    let app = TestApp::new().await;
    let cases = [
        ("temperature", serde_json::json!("hot")),
        ("name", serde_json::json!(42)),
        ("safetyGuardrails", serde_json::json!("none")),
    ];
    for (field, value) in cases {
        let mut body = create_body("support_agent");
        body[field] = value;
        let req = with_body(
            "POST",
            &prompts(),
            &app.bearer(),
            "application/json",
            body.to_string(),
        );
        let answer = send(&app.router, req).await;
        let error = answer.expect_error(400, "invalid.value");
        assert_eq!(error.details.len(), 1, "{}", answer.text());
        assert_eq!(error.details[0].field_name.as_deref(), Some(field));
        assert_eq!(error.details[0].error_code, "invalid.value");
    }
    // A nested field is named by its path.
    let mut body = create_body("support_agent");
    body["safetyGuardrails"]["maxTokens"] = serde_json::json!("lots");
    let req = with_body(
        "POST",
        &prompts(),
        &app.bearer(),
        "application/json",
        body.to_string(),
    );
    let answer = send(&app.router, req).await;
    let error = answer.expect_error(400, "invalid.value");
    assert_eq!(
        error.details[0].field_name.as_deref(),
        Some("safetyGuardrails.maxTokens")
    );
    // Nothing was created by the refused requests.
    let list = send(
        &app.router,
        crate::harness::request("GET", &prompts(), Some(&app.bearer())),
    )
    .await;
    assert_eq!(list.json()["entities"], serde_json::json!([]));
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_a_400_bad_request() {
    let app = TestApp::new().await;
    for text in ["[]", r#"[{"name": "x"}]"#, "42", r#""text""#, "null"] {
        let req = with_body("POST", &prompts(), &app.bearer(), "application/json", text);
        let answer = send(&app.router, req).await;
        answer.expect_error(400, "bad.request");
    }
}
