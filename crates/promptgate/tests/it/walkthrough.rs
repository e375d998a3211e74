//! The README's walkthrough, as a new user follows it on a fresh database: read the admin client
//! from the first start's output, get a token, create a prompt, add a version, split traffic.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test]
async fn a_new_user_follows_the_readme() {
    let server = Server::start_with(Options {
        admin: Admin::Printed,
        ..Options::default()
    });
    let log = server.log();
    let (id, secret) =
        parse_admin_announcement(&log).unwrap_or_else(|| panic!("no admin client printed:\n{log}"));
    assert!(
        log.contains("promptgate: created the admin client (shown once, store it now)"),
        "{log}"
    );

    // curl -u "$ID:$SECRET" -d grant_type=client_credentials http://…/oauth/token
    let resp = server
        .send(
            server
                .request(Method::POST, "/oauth/token")
                .basic_auth(&id, Some(&secret))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials"),
        )
        .await;
    let token = str_field(&resp.ok(200), "access_token");

    // curl -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{…}' …/prompts
    let create = r#"{"name": "support_agent", "modelEndpointRef": "builtin/echo",
        "systemPrompt": "You are a helpful customer support agent.", "temperature": 0.2,
        "safetyGuardrails": {"contentFiltering": ["pii", "profanity"], "maxTokens": 1500,
                             "blockedCategories": ["violence", "hate_speech", "self_harm"]},
        "version": "1.0.0", "trafficDistribution": {"defaultVersion": "1.0.0"}}"#;
    let resp = server
        .send(
            server
                .request(Method::POST, PROMPTS)
                .header("Authorization", format!("Bearer {token}"))
                .header("Content-Type", "application/json")
                .body(create),
        )
        .await;
    let prompt = resp.ok(201);
    let prompt_id = str_field(&prompt, "id");
    let path = prompt_path(&prompt_id);

    // Add a version.
    let resp = server
        .put(&path, &token, &json!({"systemPrompt": "You are a concise customer support agent.", "version": "1.1.0"}), None)
        .await;
    assert_eq!(resp.ok(200)["version"], json!("1.1.0"));

    // Split traffic 90/10.
    let split = json!({"trafficDistribution": {"versions": [
        {"version": "1.0.0", "weight": 0.9}, {"version": "1.1.0", "weight": 0.1}]}});
    server.put(&path, &token, &split, None).await.ok(200);

    let got = server.get(&path, Some(&token)).await.ok(200);
    assert_eq!(got["status"], json!("ACTIVE"));
    assert_eq!(got["version"], json!("1.0.0"));
    let weights: Vec<(Value, f64)> = got["trafficDistribution"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].clone(), v["weight"].as_f64().unwrap()))
        .collect();
    assert_eq!(weights.len(), 2, "{got}");
    for (version, expected) in [("1.0.0", 0.9), ("1.1.0", 0.1)] {
        let w = weights
            .iter()
            .find(|(v, _)| *v == json!(version))
            .map(|(_, w)| *w);
        assert!(
            w.is_some_and(|w| (w - expected).abs() < 1e-9),
            "{version}: {got}"
        );
    }
    let versions = server
        .get(&versions_path(&prompt_id), Some(&token))
        .await
        .ok(200);
    let listed: Vec<&Value> = versions["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["version"])
        .collect();
    assert_eq!(listed, [&json!("1.1.0"), &json!("1.0.0")]);
}
