//! A rejected request (any 4xx) leaves the stored state byte-for-byte unchanged.
//!
//! The whole SQLite file is dumped (every row of every table) before and after a battery of
//! rejected requests and the two dumps are compared.

use reqwest::Method;
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn rejected_requests_leave_every_table_unchanged() {
    let server = Server::start();
    // Every token the battery needs is issued before the first dump: issuing one is a change.
    let token = server.admin_token().await;
    let read_only = server.scoped_token("ai:prompt:read").await;

    let (created, stale_etag) = server
        .create_prompt(&token, &full_prompt_body("kept"))
        .await;
    let id = str_field(&created, "id");
    let path = prompt_path(&id);
    let resp = server
        .put(
            &path,
            &token,
            &json!({"systemPrompt": "Two.", "version": "1.1.0"}),
            None,
        )
        .await;
    resp.ok(200);
    let (archived, _) = server.create_prompt(&token, &prompt_body("archived")).await;
    let archived_path = prompt_path(&str_field(&archived, "id"));
    server.delete(&archived_path, Some(&token)).await.ok(200);

    let before = server.dump().await;
    assert!(
        before.contains("kept"),
        "the dump does not show the stored prompt:\n{before}"
    );

    let mut rejected: Vec<Resp> = Vec::new();
    let raw_post = |body: &str, content_type: &str| {
        server
            .request(Method::POST, PROMPTS)
            .bearer_auth(&token)
            .header("Content-Type", content_type)
            .body(body.to_owned())
    };
    // Malformed JSON, wrong type, wrong media type, too large.
    rejected.push(
        server
            .send(raw_post("{\"name\": \"half", "application/json"))
            .await,
    );
    rejected.push(
        server
            .send(raw_post(&prompt_body("as-text").to_string(), "text/plain"))
            .await,
    );
    let mut body = prompt_body("wrong-type");
    body["temperature"] = json!("hot");
    rejected.push(server.post(PROMPTS, Some(&token), &body).await);
    let mut body = prompt_body("too-large");
    body["systemPrompt"] = json!("x".repeat(1024 * 1024 + 1));
    rejected.push(server.post(PROMPTS, Some(&token), &body).await);
    // Invalid fields, all at once.
    let body = json!({"name": "", "modelEndpointRef": "no/such", "systemPrompt": "x", "temperature": 5,
        "safetyGuardrails": {"contentFiltering": ["pii", "nonsense"]}, "version": "1.0.0"});
    rejected.push(server.post(PROMPTS, Some(&token), &body).await);
    // Budget exceeded, on create and on a new version.
    let mut body = prompt_body("over-budget");
    body["safetyGuardrails"] = json!({"maxTokens": 1});
    rejected.push(server.post(PROMPTS, Some(&token), &body).await);
    let put = json!({"systemPrompt": "Far too long for a one-token budget.", "safetyGuardrails": {"maxTokens": 1}, "version": "1.2.0"});
    rejected.push(server.put(&path, &token, &put, None).await);
    // Duplicate name; existing version with different content; archived prompt.
    rejected.push(
        server
            .post(PROMPTS, Some(&token), &prompt_body("kept"))
            .await,
    );
    rejected.push(
        server
            .put(
                &path,
                &token,
                &json!({"systemPrompt": "Changed.", "version": "1.1.0"}),
                None,
            )
            .await,
    );
    rejected.push(
        server
            .put(
                &archived_path,
                &token,
                &json!({"systemPrompt": "x", "version": "2.0.0"}),
                None,
            )
            .await,
    );
    rejected.push(
        server
            .put(
                &archived_path,
                &token,
                &json!({"trafficDistribution": {"splitStrategy": "random"}}),
                None,
            )
            .await,
    );
    // Stale If-Match.
    rejected.push(
        server
            .put(
                &path,
                &token,
                &json!({"systemPrompt": "Three.", "version": "1.3.0"}),
                Some(&stale_etag),
            )
            .await,
    );
    // Invalid traffic, alone and together with a new version.
    let bad_split = json!({"versions": [{"version": "1.0.0", "weight": 0.7}, {"version": "1.1.0", "weight": 0.7}]});
    rejected.push(
        server
            .put(
                &path,
                &token,
                &json!({"trafficDistribution": bad_split}),
                None,
            )
            .await,
    );
    rejected.push(server.put(&path, &token, &json!({"systemPrompt": "Four.", "version": "1.4.0", "trafficDistribution": bad_split}), None).await);
    let unknown_version = json!({"versions": [{"version": "1.0.0", "weight": 0.5}, {"version": "8.0.0", "weight": 0.5}]});
    rejected.push(
        server
            .put(
                &path,
                &token,
                &json!({"trafficDistribution": unknown_version}),
                None,
            )
            .await,
    );
    rejected.push(
        server
            .put(
                &path,
                &token,
                &json!({"trafficDistribution": {"defaultVersion": "8.0.0"}}),
                None,
            )
            .await,
    );
    // Unknown ids and routes; wrong method.
    let unknown = prompt_path(&uuid::Uuid::new_v4().to_string());
    rejected.push(
        server
            .put(
                &unknown,
                &token,
                &json!({"systemPrompt": "x", "version": "1.0.1"}),
                None,
            )
            .await,
    );
    rejected.push(server.delete(&unknown, Some(&token)).await);
    rejected.push(
        server
            .post(&format!("{GW}/nothing"), Some(&token), &json!({}))
            .await,
    );
    rejected.push(
        server
            .send(
                server
                    .request(Method::PATCH, &path)
                    .bearer_auth(&token)
                    .json(&json!({"name": "x"})),
            )
            .await,
    );
    // Missing scope, missing or bad token.
    rejected.push(
        server
            .post(PROMPTS, Some(&read_only), &prompt_body("read-only"))
            .await,
    );
    rejected.push(server.delete(&path, Some(&read_only)).await);
    rejected.push(
        server
            .put(
                &path,
                &read_only,
                &json!({"systemPrompt": "x", "version": "5.0.0"}),
                None,
            )
            .await,
    );
    rejected.push(
        server
            .post(
                CLIENTS,
                Some(&read_only),
                &json!({"name": "x", "scopes": ["admin"]}),
            )
            .await,
    );
    rejected.push(server.post(PROMPTS, None, &prompt_body("anonymous")).await);
    rejected.push(
        server
            .post(PROMPTS, Some("not-a-token"), &prompt_body("forged"))
            .await,
    );
    rejected.push(server.delete(&path, Some("not-a-token")).await);
    // Admin API rejections.
    rejected.push(
        server
            .post(
                CLIENTS,
                Some(&token),
                &json!({"name": "x", "scopes": ["ai:prompt:read", "root"]}),
            )
            .await,
    );
    let disable_unknown = format!("{CLIENTS}/{}/disable", uuid::Uuid::new_v4());
    rejected.push(
        server
            .post(&disable_unknown, Some(&token), &json!({}))
            .await,
    );
    // Bad list queries.
    rejected.push(
        server
            .get_query(PROMPTS, &token, &[("pageSize", "0")])
            .await,
    );

    for resp in &rejected {
        assert!(
            (400..500).contains(&resp.status),
            "this request of the battery was not rejected: {resp}"
        );
    }

    let after = server.dump().await;
    assert!(
        before == after,
        "rejected requests changed the stored state:\n{}",
        diff_lines(&before, &after)
    );

    // The comparison can fail: one accepted change shows in the dump.
    server
        .put(
            &path,
            &token,
            &json!({"trafficDistribution": {"splitStrategy": "random"}}),
            None,
        )
        .await
        .ok(200);
    let changed = server.dump().await;
    assert_ne!(
        after, changed,
        "an accepted change did not show in the dump"
    );
}

#[tokio::test]
async fn rejected_token_requests_leave_every_table_unchanged() {
    let server = Server::start();
    let token = server.admin_token().await;
    server.create_prompt(&token, &prompt_body("kept")).await;
    let before = server.dump().await;

    let id = server.admin_id.clone();
    let rejected = vec![
        server
            .token_request(
                &[("grant_type", "client_credentials")],
                Some((&id, "wrong-secret")),
            )
            .await,
        server
            .token_request(
                &[("grant_type", "client_credentials")],
                Some(("no-such-client", "x")),
            )
            .await,
        server
            .token_request(
                &[("grant_type", "password")],
                Some((&id, &server.admin_secret)),
            )
            .await,
        server
            .token_request(&[], Some((&id, &server.admin_secret)))
            .await,
        server
            .token_request(
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", "ai:prompt:read made:up"),
                ],
                Some((&id, &server.admin_secret)),
            )
            .await,
    ];
    for resp in &rejected {
        assert!((400..500).contains(&resp.status), "not rejected: {resp}");
    }
    let after = server.dump().await;
    assert!(
        before == after,
        "rejected token requests changed the stored state:\n{}",
        diff_lines(&before, &after)
    );
}
