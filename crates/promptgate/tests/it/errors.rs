//! The error rows of API.md that are not about one field: routes, methods, media types, sizes,
//! authentication and scopes.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test]
async fn unknown_routes_are_404_with_or_without_a_token() {
    let server = Server::start();
    let token = server.admin_token().await;
    for path in [
        "/api/v2/ai/llm/gateway/bogus",
        "/api/v2/nothing",
        "/nope",
        "/api/v2/ai/llm/gateway/prompts/x/y/z/w",
    ] {
        server.get(path, None).await.error(404, "not.found");
        server.get(path, Some(&token)).await.error(404, "not.found");
        server
            .post(path, Some(&token), &json!({}))
            .await
            .error(404, "not.found");
    }
}

#[tokio::test]
async fn a_known_path_with_a_wrong_method_is_405() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server.create_prompt(&token, &prompt_body("methods")).await;
    let id = str_field(&created, "id");
    let resp = server
        .send(
            server
                .request(Method::PATCH, &prompt_path(&id))
                .bearer_auth(&token)
                .json(&json!({"name": "x"})),
        )
        .await;
    resp.error(405, "method.not.allowed");
    let resp = server
        .send(server.request(Method::DELETE, PROMPTS).bearer_auth(&token))
        .await;
    resp.error(405, "method.not.allowed");
    let resp = server
        .send(
            server
                .request(Method::PUT, &versions_path(&id))
                .bearer_auth(&token)
                .json(&json!({})),
        )
        .await;
    resp.error(405, "method.not.allowed");
    let resp = server
        .send(
            server
                .request(Method::DELETE, MODEL_ENDPOINTS)
                .bearer_auth(&token),
        )
        .await;
    resp.error(405, "method.not.allowed");
    // The prompt is untouched.
    let body = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(body["name"], json!("methods"));
}

#[tokio::test]
async fn malformed_json_is_400_bad_request() {
    let server = Server::start();
    let token = server.admin_token().await;
    for raw in ["{\"name\": ", "not json at all", "", "[1, 2"] {
        let resp = server
            .send(
                server
                    .request(Method::POST, PROMPTS)
                    .bearer_auth(&token)
                    .header("Content-Type", "application/json")
                    .body(raw),
            )
            .await;
        resp.error(400, "bad.request");
    }
    let (created, _) = server
        .create_prompt(&token, &prompt_body("bad-json-put"))
        .await;
    let id = str_field(&created, "id");
    let resp = server
        .send(
            server
                .request(Method::PUT, &prompt_path(&id))
                .bearer_auth(&token)
                .header("Content-Type", "application/json")
                .body("{\"systemPrompt\": \"x\", "),
        )
        .await;
    resp.error(400, "bad.request");
}

#[tokio::test]
async fn a_value_of_the_wrong_type_is_400_naming_the_field() {
    let server = Server::start();
    let token = server.admin_token().await;
    let mut body = prompt_body("wrong-type");
    body["temperature"] = json!("hot");
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    resp.error(400, "invalid.value");
    assert!(resp.field_names().contains("temperature"), "{resp}");

    let mut body = prompt_body("wrong-type-2");
    body["safetyGuardrails"] = json!({"maxTokens": "many"});
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    resp.error(400, "invalid.value");
    assert!(
        resp.field_names().contains("safetyGuardrails.maxTokens"),
        "{resp}"
    );

    let mut body = prompt_body("wrong-type-3");
    body["name"] = json!(42);
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    resp.error(400, "invalid.value");
    assert!(resp.field_names().contains("name"), "{resp}");

    // A JSON document that is not an object at all.
    let resp = server.post(PROMPTS, Some(&token), &json!([1, 2, 3])).await;
    assert_eq!(resp.status, 400, "{resp}");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let server = Server::start();
    let token = server.admin_token().await;
    let body = prompt_body("media").to_string();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        let resp = server
            .send(
                server
                    .request(Method::POST, PROMPTS)
                    .bearer_auth(&token)
                    .header("Content-Type", content_type)
                    .body(body.clone()),
            )
            .await;
        resp.error(415, "unsupported.media.type");
    }
    // No Content-Type at all is not JSON either.
    let resp = server
        .send(
            server
                .request(Method::POST, PROMPTS)
                .bearer_auth(&token)
                .body(body.clone()),
        )
        .await;
    resp.error(415, "unsupported.media.type");
    // JSON with a charset parameter is JSON.
    let resp = server
        .send(
            server
                .request(Method::POST, PROMPTS)
                .bearer_auth(&token)
                .header("Content-Type", "application/json; charset=utf-8")
                .body(body),
        )
        .await;
    resp.ok(201);
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413() {
    let server = Server::start();
    let token = server.admin_token().await;
    let mut body = prompt_body("too-large");
    body["systemPrompt"] = json!("a".repeat(1024 * 1024 + 10));
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    resp.error(413, "payload.too.large");
    // Just under the limit is accepted; the size here is an unknown (ignored) field, so that no
    // limit on a field's own length is what decides.
    let mut body = prompt_body("under-limit");
    body["padding"] = json!("p".repeat(1000 * 1000));
    assert!(body.to_string().len() < 1024 * 1024);
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    resp.ok(201);
}

#[tokio::test]
async fn a_missing_or_bad_bearer_token_is_401_with_www_authenticate() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server.create_prompt(&token, &prompt_body("auth")).await;
    let id = str_field(&created, "id");

    // No token: a challenge without an error code (RFC 6750 §3.1).
    let resp = server.get(PROMPTS, None).await;
    resp.error(401, "unauthorized");
    let challenge = resp
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("no WWW-Authenticate: {resp}"));
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(
        !challenge.contains("invalid_token"),
        "no token was sent: {challenge}"
    );

    // A token that was sent but is bad.
    for bad in ["garbage", "Zm9vYmFy", &format!("{token}x")] {
        let resp = server.get(&prompt_path(&id), Some(bad)).await;
        resp.error(401, "unauthorized");
        let challenge = resp
            .header("www-authenticate")
            .unwrap_or_else(|| panic!("no WWW-Authenticate: {resp}"));
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }

    // Malformed Authorization headers.
    for header in ["Basic Zm9vOmJhcg==", "Bearer", "Bearer ", &token.clone()] {
        let resp = server
            .send(
                server
                    .request(Method::GET, PROMPTS)
                    .header("Authorization", header),
            )
            .await;
        resp.error(401, "unauthorized");
        assert!(
            resp.header("www-authenticate")
                .is_some_and(|c| c.starts_with("Bearer")),
            "{resp}"
        );
    }

    // Every protected endpoint refuses without a token.
    let endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, PROMPTS.to_owned(), None),
        (Method::POST, PROMPTS.to_owned(), Some(prompt_body("x"))),
        (Method::GET, prompt_path(&id), None),
        (
            Method::PUT,
            prompt_path(&id),
            Some(json!({"temperature": 0.5, "version": "2.0.0"})),
        ),
        (Method::DELETE, prompt_path(&id), None),
        (Method::GET, versions_path(&id), None),
        (Method::GET, version_path(&id, "1.0.0"), None),
        (Method::GET, MODEL_ENDPOINTS.to_owned(), None),
        (Method::GET, CLIENTS.to_owned(), None),
        (
            Method::POST,
            CLIENTS.to_owned(),
            Some(json!({"name": "x", "scopes": ["admin"]})),
        ),
        (
            Method::POST,
            format!("{CLIENTS}/{}/disable", server.admin_id),
            None,
        ),
    ];
    for (method, path, body) in endpoints {
        let mut builder = server.request(method, &path);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        server.send(builder).await.error(401, "unauthorized");
    }
    // And nothing changed.
    let body = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(body["status"], json!("ACTIVE"));
    assert_eq!(body["versions"], json!(["1.0.0"]));
}

#[tokio::test]
async fn a_token_without_the_scope_is_403_missing_scope() {
    let server = Server::start();
    let admin = server.admin_token().await;
    let (created, _) = server.create_prompt(&admin, &prompt_body("scopes")).await;
    let id = str_field(&created, "id");
    let read = server.scoped_token("ai:prompt:read").await;
    let write = server.scoped_token("ai:prompt:write").await;
    let gateway = server
        .scoped_token("ai:gateway:write ai:telemetry:read ai:audit:read")
        .await;

    let requires = |resp: &Resp, scope: &str| {
        let body = resp.error(403, "missing.scope");
        let required = param(&body, "requiredScopes");
        assert!(
            required.to_string().contains(scope),
            "requiredScopes does not name {scope}: {resp}"
        );
    };

    // Read-only: every write is refused.
    requires(
        &server
            .post(PROMPTS, Some(&read), &prompt_body("nope"))
            .await,
        "ai:prompt:write",
    );
    requires(
        &server
            .put(
                &prompt_path(&id),
                &read,
                &json!({"systemPrompt": "y", "version": "2.0.0"}),
                None,
            )
            .await,
        "ai:prompt:write",
    );
    requires(
        &server.delete(&prompt_path(&id), Some(&read)).await,
        "ai:prompt:write",
    );
    requires(&server.get(CLIENTS, Some(&read)).await, "admin");
    requires(
        &server
            .post(
                CLIENTS,
                Some(&read),
                &json!({"name": "x", "scopes": ["admin"]}),
            )
            .await,
        "admin",
    );
    requires(
        &server
            .post(
                &format!("{CLIENTS}/{}/disable", server.admin_id),
                Some(&read),
                &json!({}),
            )
            .await,
        "admin",
    );

    // Write-only: reads are refused.
    requires(&server.get(PROMPTS, Some(&write)).await, "ai:prompt:read");
    requires(
        &server.get(&prompt_path(&id), Some(&write)).await,
        "ai:prompt:read",
    );
    requires(
        &server.get(&versions_path(&id), Some(&write)).await,
        "ai:prompt:read",
    );
    requires(
        &server.get(&version_path(&id, "1.0.0"), Some(&write)).await,
        "ai:prompt:read",
    );
    requires(
        &server.get(MODEL_ENDPOINTS, Some(&write)).await,
        "ai:prompt:read",
    );

    // Other scopes open none of these.
    requires(&server.get(PROMPTS, Some(&gateway)).await, "ai:prompt:read");
    requires(
        &server
            .post(PROMPTS, Some(&gateway), &prompt_body("nope"))
            .await,
        "ai:prompt:write",
    );

    // The read-only token reads; the prompt is unchanged and still active.
    let body = server.get(&prompt_path(&id), Some(&read)).await.ok(200);
    assert_eq!(body["status"], json!("ACTIVE"));
    assert_eq!(body["versions"], json!(["1.0.0"]));
    // The write-only token writes.
    server
        .post(PROMPTS, Some(&write), &prompt_body("written"))
        .await
        .ok(201);
}

#[tokio::test]
async fn unknown_or_malformed_ids_are_404() {
    let server = Server::start();
    let token = server.admin_token().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    for id in [unknown.as_str(), "not-a-uuid", "12345"] {
        server
            .get(&prompt_path(id), Some(&token))
            .await
            .error(404, "not.found");
        server
            .get(&versions_path(id), Some(&token))
            .await
            .error(404, "not.found");
        server
            .get(&version_path(id, "1.0.0"), Some(&token))
            .await
            .error(404, "not.found");
        server
            .put(
                &prompt_path(id),
                &token,
                &json!({"systemPrompt": "x", "version": "1.0.1"}),
                None,
            )
            .await
            .error(404, "not.found");
        server
            .delete(&prompt_path(id), Some(&token))
            .await
            .error(404, "not.found");
    }
}
