//! Operations: health, readiness, the OpenAPI document, request ids, graceful shutdown.

use reqwest::Method;
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn healthz_and_readyz_answer_without_a_token() {
    let server = Server::start();
    let resp = server.get("/healthz", None).await;
    assert_eq!(resp.ok(200), json!({"status": "ok"}), "{resp}");
    assert!(
        resp.header("x-request-id").is_some(),
        "no X-Request-Id: {resp}"
    );
    let resp = server.get("/readyz", None).await;
    assert_eq!(resp.ok(200), json!({"status": "ready"}), "{resp}");
    assert!(
        resp.header("x-request-id").is_some(),
        "no X-Request-Id: {resp}"
    );
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let server = Server::start();
    let resp = server.get("/openapi.json", None).await;
    let doc = resp.ok(200);
    let version = doc["openapi"]
        .as_str()
        .unwrap_or_else(|| panic!("no openapi version: {resp}"));
    assert!(
        version.starts_with('3'),
        "not an OpenAPI 3 document: {version}"
    );
    let paths = doc["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("no paths object: {resp}"));
    let expected = [
        ("/oauth/token", "post"),
        ("/api/v2/ai/llm/gateway/prompts", "get"),
        ("/api/v2/ai/llm/gateway/prompts", "post"),
        ("/api/v2/ai/llm/gateway/prompts/{id}", "get"),
        ("/api/v2/ai/llm/gateway/prompts/{id}", "put"),
        ("/api/v2/ai/llm/gateway/prompts/{id}", "delete"),
        ("/api/v2/ai/llm/gateway/prompts/{id}/versions", "get"),
        (
            "/api/v2/ai/llm/gateway/prompts/{id}/versions/{version}",
            "get",
        ),
        ("/api/v2/ai/llm/gateway/model-endpoints", "get"),
        ("/api/v2/oauth/clients", "get"),
        ("/api/v2/oauth/clients", "post"),
        ("/api/v2/oauth/clients/{id}/disable", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ];
    let mut missing = Vec::new();
    for (path, method) in expected {
        if paths.get(path).and_then(|p| p.get(method)).is_none() {
            missing.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    assert!(
        missing.is_empty(),
        "the OpenAPI document lacks {missing:?}; it has {:?}",
        paths.keys().collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_the_callers() {
    let server = Server::start();
    let token = server.admin_token().await;

    // Generated when not given, on successes and failures alike, and different each time.
    let a = server.get(PROMPTS, Some(&token)).await;
    let b = server.get(PROMPTS, Some(&token)).await;
    let a_id = a
        .header("x-request-id")
        .unwrap_or_else(|| panic!("no X-Request-Id: {a}"));
    let b_id = b
        .header("x-request-id")
        .unwrap_or_else(|| panic!("no X-Request-Id: {b}"));
    assert!(!a_id.is_empty());
    assert_ne!(a_id, b_id, "two requests got the same generated request id");
    let resp = server
        .token_request(
            &[("grant_type", "client_credentials")],
            Some(("nobody", "x")),
        )
        .await;
    assert!(
        resp.header("x-request-id").is_some(),
        "no X-Request-Id on /oauth/token: {resp}"
    );
    let resp = server.get(PROMPTS, None).await;
    assert!(
        resp.header("x-request-id").is_some(),
        "no X-Request-Id on a 401: {resp}"
    );

    // Echoed when given; an error's contextId is the same value.
    let mine = "it-request-7f3c2a";
    let resp = server
        .send(
            server
                .request(Method::GET, "/healthz")
                .header("X-Request-Id", mine),
        )
        .await;
    assert_eq!(resp.header("x-request-id").as_deref(), Some(mine), "{resp}");
    let resp = server
        .send(
            server
                .request(Method::GET, &prompt_path(&uuid::Uuid::new_v4().to_string()))
                .bearer_auth(&token)
                .header("X-Request-Id", mine),
        )
        .await;
    assert_eq!(resp.header("x-request-id").as_deref(), Some(mine), "{resp}");
    let body = resp.error(404, "not.found");
    assert_eq!(body["contextId"], json!(mine));
    let resp = server
        .send(
            server
                .request(Method::GET, "/api/v2/no/such/route")
                .header("X-Request-Id", mine),
        )
        .await;
    assert_eq!(resp.error(404, "not.found")["contextId"], json!(mine));
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_the_data_survives_a_restart() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server
        .create_prompt(&token, &full_prompt_body("survivor"))
        .await;
    let id = str_field(&created, "id");
    let resp = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"systemPrompt": "Second version.", "version": "1.1.0"}),
            None,
        )
        .await;
    resp.ok(200);

    // `restart` sends SIGTERM and asserts exit status 0 before starting again.
    let server = server.restart();
    let token = server.admin_token().await;
    let resp = server.get(&prompt_path(&id), Some(&token)).await;
    let body = resp.ok(200);
    assert_eq!(body["name"], json!("survivor"));
    assert_eq!(body["systemPrompt"], created["systemPrompt"]);
    let resp = server.get(&versions_path(&id), Some(&token)).await;
    let versions: Vec<_> = resp.ok(200)["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].clone())
        .collect();
    assert_eq!(versions, vec![json!("1.1.0"), json!("1.0.0")], "{resp}");
}

#[tokio::test]
async fn sigint_shuts_down_cleanly() {
    let mut server = Server::start();
    let token = server.admin_token().await;
    server
        .create_prompt(&token, &prompt_body("before-sigint"))
        .await;
    let status = server.signal_and_wait("INT");
    assert!(
        status.success(),
        "SIGINT: exit status {status:?}; output:\n{}",
        server.log()
    );
}

#[tokio::test]
async fn the_database_is_created_in_wal_mode() {
    use sqlx::{ConnectOptions, Row};
    use std::str::FromStr;

    if skip_on_postgres("the SQLite file's journal mode") {
        return;
    }
    let server = Server::start();
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(&server.db_url)
        .unwrap()
        .read_only(true);
    let mut conn = options.connect().await.unwrap();
    let row = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let mode: String = row.get(0);
    assert_eq!(mode.to_lowercase(), "wal");
}
