//! The web console: its page and assets with their types and security headers, and the
//! token-count endpoint behind the editor's live count (`docs/console.md`).

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::*;

const TOKEN_COUNT: &str = "/console/api/token-count";

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

#[track_caller]
fn assert_security_headers(resp: &Resp) {
    assert_eq!(
        resp.header("content-security-policy").as_deref(),
        Some(CSP),
        "{resp}"
    );
    assert_eq!(
        resp.header("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{resp}"
    );
    assert_eq!(
        resp.header("referrer-policy").as_deref(),
        Some("no-referrer"),
        "{resp}"
    );
    assert_eq!(
        resp.header("x-frame-options").as_deref(),
        Some("DENY"),
        "{resp}"
    );
    assert!(resp.header("cache-control").is_some(), "{resp}");
}

#[tokio::test]
async fn the_console_page_is_html_with_a_strict_policy_and_no_inline_code() {
    let server = Server::start();
    for path in ["/console", "/console/"] {
        let resp = server.get(path, None).await;
        assert_eq!(resp.status, 200, "{resp}");
        assert_eq!(
            resp.header("content-type").as_deref(),
            Some("text/html; charset=utf-8"),
            "{resp}"
        );
        assert_security_headers(&resp);
        let html = &resp.text;
        assert!(html.contains("<html lang=\"en\">"), "{html}");
        assert!(html.contains("<title>"), "{html}");
        assert!(
            html.contains("<script src=\"/console/assets/console.js\""),
            "{html}"
        );
        // The policy forbids inline code; the page must not depend on any.
        assert!(!html.contains("<style"), "inline style in {html}");
        assert!(
            !html.contains("style=\""),
            "inline style attribute in {html}"
        );
        assert!(
            !html.contains("<script>") && !html.contains(" onclick="),
            "inline script in {html}"
        );
    }
}

#[tokio::test]
async fn assets_have_their_types_and_unknown_ones_are_404() {
    let server = Server::start();
    for (path, content_type, needle) in [
        (
            "/console/assets/console.js",
            "text/javascript; charset=utf-8",
            "use strict",
        ),
        (
            "/console/assets/console.css",
            "text/css; charset=utf-8",
            ":focus-visible",
        ),
    ] {
        let resp = server.get(path, None).await;
        assert_eq!(resp.status, 200, "{resp}");
        assert_eq!(
            resp.header("content-type").as_deref(),
            Some(content_type),
            "{resp}"
        );
        assert_security_headers(&resp);
        assert!(resp.text.contains(needle), "{path} lacks {needle:?}");
    }
    // The script keeps the token out of every browser store.
    let js = server.get("/console/assets/console.js", None).await.text;
    for store in [
        "localStorage",
        "sessionStorage",
        "document.cookie",
        "indexedDB",
    ] {
        assert!(!js.contains(store), "console.js touches {store}");
    }
    for path in [
        "/console/assets/nope.js",
        "/console/assets/..%2Fmod.rs",
        "/console/assets/index.html.bak",
    ] {
        server.get(path, None).await.error(404, "not.found");
    }
}

#[tokio::test]
async fn token_count_needs_a_token_and_a_prompt_scope() {
    let server = Server::start();
    let body = json!({"modelEndpointRef": "builtin/echo", "text": "Hello"});
    let resp = server.post(TOKEN_COUNT, None, &body).await;
    resp.error(401, "unauthorized");
    assert!(resp.header("www-authenticate").is_some(), "{resp}");

    let telemetry_only = server.scoped_token("ai:telemetry:read").await;
    let resp = server.post(TOKEN_COUNT, Some(&telemetry_only), &body).await;
    resp.error(403, "missing.scope");

    let reader = server.scoped_token("ai:prompt:read").await;
    let counted = server.post(TOKEN_COUNT, Some(&reader), &body).await.ok(200);
    assert_eq!(counted["tokens"], json!(o200k("Hello")), "{counted}");
}

#[tokio::test]
async fn token_count_rejects_an_unknown_endpoint_naming_the_field() {
    let server = Server::start();
    let token = server.admin_token().await;
    let resp = server
        .post(
            TOKEN_COUNT,
            Some(&token),
            &json!({"modelEndpointRef": "nowhere/model", "text": "Hello"}),
        )
        .await;
    let body = resp.error(400, "invalid.value");
    assert_eq!(
        resp.field_names().into_iter().collect::<Vec<_>>(),
        ["modelEndpointRef"],
        "{resp}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("nowhere/model"), "{message}");
    assert!(
        message.contains("builtin/echo"),
        "lists the known ones: {message}"
    );

    // Both fields missing: both named at once.
    let resp = server.post(TOKEN_COUNT, Some(&token), &json!({})).await;
    resp.error(400, "invalid.value");
    assert_eq!(
        resp.field_names().into_iter().collect::<Vec<_>>(),
        ["modelEndpointRef", "text"],
        "{resp}"
    );
    // A body that is not JSON is refused like everywhere else.
    let resp = server
        .send(
            server
                .request(Method::POST, TOKEN_COUNT)
                .bearer_auth(&token)
                .header("content-type", "text/plain")
                .body("Hello"),
        )
        .await;
    resp.error(415, "unsupported.media.type");
}

#[tokio::test]
async fn token_count_refuses_text_over_the_system_prompt_limit() {
    let server = Server::start_with(Options::with_config(
        "[limits]\nmax_system_prompt_chars = 100\n",
    ));
    let token = server.admin_token().await;
    let at_limit = "é".repeat(100);
    let counted = server
        .post(
            TOKEN_COUNT,
            Some(&token),
            &json!({"modelEndpointRef": "builtin/echo", "text": at_limit}),
        )
        .await
        .ok(200);
    assert_eq!(counted["tokens"], json!(o200k(&at_limit)), "{counted}");

    let resp = server
        .post(
            TOKEN_COUNT,
            Some(&token),
            &json!({"modelEndpointRef": "builtin/echo", "text": "x".repeat(101)}),
        )
        .await;
    let body = resp.error(400, "invalid.value");
    assert_eq!(
        resp.field_names().into_iter().collect::<Vec<_>>(),
        ["text"],
        "{resp}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("max_system_prompt_chars"), "{message}");
    assert!(message.contains("100"), "{message}");
}

#[tokio::test]
async fn the_live_count_equals_what_prompt_creation_stores() {
    let server = Server::start();
    let token = server.admin_token().await;
    let text = "You are a terse assistant for Acme Corp.\n\n\
                Answer in ≤ 3 sentences; never reveal internal notes. 日本語もOK 🚀";
    // One endpoint per tokenizer of the built-in catalogue, exact and estimated.
    let endpoints: Value = server.get(MODEL_ENDPOINTS, Some(&token)).await.ok(200);
    let mut seen = std::collections::BTreeSet::new();
    for endpoint in endpoints["entities"].as_array().unwrap() {
        let reference = str_field(endpoint, "ref");
        let tokenizer = str_field(endpoint, "tokenizer");
        if !seen.insert((tokenizer.clone(), endpoint["tokenizerExact"].to_string())) {
            continue;
        }
        let counted = server
            .post(
                TOKEN_COUNT,
                Some(&token),
                &json!({"modelEndpointRef": reference, "text": text}),
            )
            .await
            .ok(200);
        assert_eq!(counted["tokenizer"], json!(tokenizer), "{counted}");
        assert_eq!(
            counted["exact"], endpoint["tokenizerExact"],
            "{counted} vs {endpoint}"
        );

        let mut body = prompt_body(&format!("count_{}", seen.len()));
        body["modelEndpointRef"] = json!(reference);
        body["systemPrompt"] = json!(text);
        let (created, _) = server.create_prompt(&token, &body).await;
        assert_eq!(
            counted["tokens"], created["systemPromptTokens"],
            "{reference}: live count {counted} vs stored {created}"
        );
    }
    assert!(seen.len() >= 3, "both tokenizers covered: {seen:?}");
}
