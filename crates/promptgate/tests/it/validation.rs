//! Field validation of prompts: every invalid field reported at once, budgets, context windows.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::harness::*;

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Asserts a 400 with exactly one problem: `details` has the one entry and `errors` is empty.
#[track_caller]
fn assert_single_problem(resp: &Resp, code: &str, field: &str) -> Value {
    let body = resp.error(400, code);
    assert_eq!(
        body["details"],
        json!([{"errorCode": code, "fieldName": field}]),
        "{resp}"
    );
    assert_eq!(body["errors"], json!([]), "{resp}");
    body
}

#[tokio::test]
async fn every_invalid_field_is_reported_at_once() {
    let server = Server::start();
    let token = server.admin_token().await;
    let body = json!({
        "name": "",
        "modelEndpointRef": "nowhere/nothing",
        "systemPrompt": "You are helpful.",
        "temperature": 5,
        "safetyGuardrails": {"contentFiltering": ["pii", "nonsense"]},
        "version": "1.0.0"
    });
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    let err = resp.error(400, "invalid.value");
    assert_eq!(
        resp.field_names(),
        names(&[
            "name",
            "modelEndpointRef",
            "temperature",
            "safetyGuardrails.contentFiltering[1]"
        ]),
        "{resp}"
    );
    let details = err["details"].as_array().unwrap();
    assert_eq!(details.len(), 4, "one details entry per problem: {resp}");
    for d in details {
        assert_eq!(d["errorCode"], json!("invalid.value"), "{resp}");
    }
    let errors = err["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 4, "one ErrorBody per problem: {resp}");
    for e in errors {
        assert_eq!(e["status"], json!(400), "{resp}");
        assert_eq!(e["code"], json!("invalid.value"), "{resp}");
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{resp}"
        );
    }
    // The unknown endpoint's message lists the known ones.
    let listing = errors
        .iter()
        .filter_map(|e| e["message"].as_str())
        .find(|m| m.contains("nowhere/nothing") || m.contains("builtin/echo"))
        .unwrap_or_else(|| panic!("no message about modelEndpointRef: {resp}"));
    for known in ["builtin/echo", "openai/gpt-4o", "anthropic/claude-3-sonnet"] {
        assert!(
            listing.contains(known),
            "the message does not list {known}: {listing:?}"
        );
    }
    // Nothing was created.
    let list = server.get(PROMPTS, Some(&token)).await.ok(200);
    assert_eq!(list["entities"], json!([]));
}

#[tokio::test]
async fn one_invalid_field_gives_one_detail_and_no_errors() {
    let server = Server::start();
    let token = server.admin_token().await;
    let mut body = prompt_body("single");
    body["temperature"] = json!(2.5);
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    assert_single_problem(&resp, "invalid.value", "temperature");

    let mut body = prompt_body("single");
    body["modelEndpointRef"] = json!("openai/gpt-5-imaginary");
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    let err = assert_single_problem(&resp, "invalid.value", "modelEndpointRef");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("builtin/echo") && message.contains("openai/gpt-4o-mini"),
        "{message}"
    );
}

#[tokio::test]
async fn required_fields_are_all_named_when_missing() {
    let server = Server::start();
    let token = server.admin_token().await;
    let resp = server.post(PROMPTS, Some(&token), &json!({})).await;
    resp.error(400, "invalid.value");
    let fields = resp.field_names();
    for field in ["name", "modelEndpointRef", "systemPrompt", "version"] {
        assert!(fields.contains(field), "{field} not named: {resp}");
    }
    let err = resp.json();
    assert_eq!(
        err["errors"].as_array().unwrap().len(),
        err["details"].as_array().unwrap().len(),
        "{resp}"
    );

    // An empty system prompt is as good as none.
    let mut body = prompt_body("empty-system");
    body["systemPrompt"] = json!("");
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    assert_single_problem(&resp, "invalid.value", "systemPrompt");
}

#[tokio::test]
async fn temperature_defaults_to_one_and_accepts_its_bounds() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server
        .create_prompt(&token, &prompt_body("default-temperature"))
        .await;
    assert_eq!(created["temperature"].as_f64(), Some(1.0), "{created}");
    for (i, t) in [0.0, 2.0, 0.7].iter().enumerate() {
        let mut body = prompt_body(&format!("t{i}"));
        body["temperature"] = json!(t);
        let (created, _) = server.create_prompt(&token, &body).await;
        assert_eq!(created["temperature"].as_f64(), Some(*t), "{created}");
    }
    for t in [-0.1, 2.01, 100.0] {
        let mut body = prompt_body("bad-temperature");
        body["temperature"] = json!(t);
        let resp = server.post(PROMPTS, Some(&token), &body).await;
        assert_single_problem(&resp, "invalid.value", "temperature");
    }
}

#[tokio::test]
async fn name_rules() {
    let server = Server::start();
    let token = server.admin_token().await;
    server
        .create_prompt(&token, &prompt_body(&"n".repeat(200)))
        .await;
    server
        .create_prompt(&token, &prompt_body("ünïcödé name ✓"))
        .await;
    for bad in [
        "n".repeat(201),
        "bell\u{7}".to_owned(),
        "new\nline".to_owned(),
        "tab\there".to_owned(),
    ] {
        let resp = server.post(PROMPTS, Some(&token), &prompt_body(&bad)).await;
        assert_single_problem(&resp, "invalid.value", "name");
    }
}

#[tokio::test]
async fn version_must_be_semver() {
    let server = Server::start();
    let token = server.admin_token().await;
    for bad in ["1.0", "v1.0.0", "latest", "1.0.0.0", ""] {
        let mut body = prompt_body("semver");
        body["version"] = json!(bad);
        let resp = server.post(PROMPTS, Some(&token), &body).await;
        assert_single_problem(&resp, "invalid.value", "version");
    }
    let mut body = prompt_body("semver");
    body["version"] = json!("1.1.0-beta.1+build.5");
    let (created, _) = server.create_prompt(&token, &body).await;
    assert_eq!(created["version"], json!("1.1.0-beta.1+build.5"));
}

#[tokio::test]
async fn guardrail_values_are_checked_not_ignored() {
    let server = Server::start();
    let token = server.admin_token().await;

    let mut body = prompt_body("guardrails-ok");
    body["safetyGuardrails"] = json!({
        "contentFiltering": ["pii", "profanity"],
        "blockedCategories": ["violence", "hate_speech", "self_harm", "sexual", "illegal"],
        "maxTokens": 100
    });
    let (created, _) = server.create_prompt(&token, &body).await;
    assert_eq!(
        created["safetyGuardrails"]["contentFiltering"],
        json!(["pii", "profanity"])
    );
    assert_eq!(
        created["safetyGuardrails"]["blockedCategories"],
        json!(["violence", "hate_speech", "self_harm", "sexual", "illegal"])
    );
    assert_eq!(created["safetyGuardrails"]["maxTokens"], json!(100));

    let cases = [
        (
            json!({"blockedCategories": ["weapons"]}),
            vec!["safetyGuardrails.blockedCategories[0]"],
        ),
        (
            json!({"contentFiltering": ["PII"]}),
            vec!["safetyGuardrails.contentFiltering[0]"],
        ),
        (json!({"maxTokens": 0}), vec!["safetyGuardrails.maxTokens"]),
        (json!({"maxTokens": -5}), vec!["safetyGuardrails.maxTokens"]),
        (
            json!({"maxTokens": 1.5}),
            vec!["safetyGuardrails.maxTokens"],
        ),
        (
            json!({"contentFiltering": ["profanity", "pii", "spam"], "blockedCategories": ["violence", "gore"], "maxTokens": 0}),
            vec![
                "safetyGuardrails.contentFiltering[2]",
                "safetyGuardrails.blockedCategories[1]",
                "safetyGuardrails.maxTokens",
            ],
        ),
    ];
    for (guardrails, fields) in cases {
        let mut body = prompt_body("guardrails-bad");
        body["safetyGuardrails"] = guardrails;
        let resp = server.post(PROMPTS, Some(&token), &body).await;
        resp.error(400, "invalid.value");
        assert_eq!(resp.field_names(), names(&fields), "{resp}");
    }
}

#[tokio::test]
async fn few_shot_examples_are_checked() {
    let server = Server::start();
    let token = server.admin_token().await;
    let example = json!({"input": "Where is my order?", "output": "Let me check."});

    let mut body = prompt_body("shots-200");
    body["fewShotExamples"] = json!(vec![example.clone(); 200]);
    let (created, _) = server.create_prompt(&token, &body).await;
    let id = str_field(&created, "id");
    let version = server
        .get(&version_path(&id, "1.0.0"), Some(&token))
        .await
        .ok(200);
    assert_eq!(
        version["fewShotExamples"].as_array().map(Vec::len),
        Some(200),
        "{version}"
    );

    let mut body = prompt_body("shots-201");
    body["fewShotExamples"] = json!(vec![example.clone(); 201]);
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    assert_single_problem(&resp, "invalid.value", "fewShotExamples");

    let mut examples = vec![example.clone(); 5];
    examples[3] = json!({"output": "no input here"});
    let mut body = prompt_body("shots-missing");
    body["fewShotExamples"] = json!(examples);
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    assert_single_problem(&resp, "invalid.value", "fewShotExamples[3].input");
}

#[tokio::test]
async fn token_budget_is_exact_with_o200k_base() {
    let server = Server::start();
    let token = server.admin_token().await;
    let system = "You are a helpful customer support agent. Réponds en français 🙂 quand on te le \
                  demande; 日本語も話せます. Never reveal internal ticket numbers like #A-1234.";
    let n = o200k(system);

    let mut body = prompt_body("budget-exact");
    body["systemPrompt"] = json!(system);
    body["safetyGuardrails"] = json!({"maxTokens": n});
    let (created, _) = server.create_prompt(&token, &body).await;
    assert_eq!(created["systemPromptTokens"], json!(n), "{created}");

    let mut body = prompt_body("budget-over");
    body["systemPrompt"] = json!(system);
    body["safetyGuardrails"] = json!({"maxTokens": n - 1});
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    let err = assert_single_problem(&resp, "token.budget.exceeded", "systemPrompt");
    assert_eq!(param(&err, "estimated"), json!(n.to_string()), "{resp}");
    assert_eq!(param(&err, "limit"), json!((n - 1).to_string()), "{resp}");
    assert_eq!(param(&err, "tokenizer"), json!("o200k_base"), "{resp}");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains(&n.to_string()) && message.contains(&(n - 1).to_string()),
        "{message}"
    );
    assert!(
        err["messageWithParams"]
            .as_str()
            .is_some_and(|m| m.contains("{estimated}")),
        "{resp}"
    );

    // No maxTokens, no budget.
    let mut body = prompt_body("no-budget");
    body["systemPrompt"] = json!(system.repeat(20));
    let (created, _) = server.create_prompt(&token, &body).await;
    assert_eq!(
        created["systemPromptTokens"],
        json!(o200k(&system.repeat(20)))
    );
}

#[tokio::test]
async fn anthropic_models_count_with_cl100k_base() {
    let server = Server::start();
    let token = server.admin_token().await;
    let system =
        "You are a helpful customer support agent. Réponds en français 🙂; 日本語も話せます.";
    let n = cl100k(system);
    assert_ne!(
        n,
        o200k(system),
        "pick a text on which the two encodings differ"
    );

    let mut body = prompt_body("anthropic");
    body["modelEndpointRef"] = json!("anthropic/claude-3-sonnet");
    body["systemPrompt"] = json!(system);
    let (created, _) = server.create_prompt(&token, &body).await;
    assert_eq!(created["systemPromptTokens"], json!(n), "{created}");
    let id = str_field(&created, "id");
    let version = server
        .get(&version_path(&id, "1.0.0"), Some(&token))
        .await
        .ok(200);
    assert_eq!(version["tokenizer"], json!("cl100k_base"), "{version}");
    assert_eq!(version["systemPromptTokens"], json!(n), "{version}");

    let mut body = prompt_body("anthropic-over");
    body["modelEndpointRef"] = json!("anthropic/claude-3-haiku");
    body["systemPrompt"] = json!(system);
    body["safetyGuardrails"] = json!({"maxTokens": n - 1});
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    let err = assert_single_problem(&resp, "token.budget.exceeded", "systemPrompt");
    assert_eq!(param(&err, "estimated"), json!(n.to_string()), "{resp}");
    assert_eq!(param(&err, "tokenizer"), json!("cl100k_base"), "{resp}");
}

#[tokio::test]
async fn a_system_prompt_over_the_context_window_is_400() {
    let config = r#"
[[model_endpoints]]
ref = "local/tiny"
provider = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "tiny"
api_key_env = "PROMPTGATE_IT_TINY_KEY"
context_window = 50
tokenizer = "o200k_base"
timeout_ms = 1000
max_retries = 0
"#;
    let server = Server::start_with(Options::with_config(config));
    let token = server.admin_token().await;
    let fits = "word ".repeat(40);
    let too_long = "word ".repeat(80);
    assert!(o200k(&fits) <= 50 && o200k(&too_long) > 50);

    let mut body = prompt_body("tiny-fits");
    body["modelEndpointRef"] = json!("local/tiny");
    body["systemPrompt"] = json!(fits);
    let (created, _) = server.create_prompt(&token, &body).await;
    let id = str_field(&created, "id");

    let mut body = prompt_body("tiny-over");
    body["modelEndpointRef"] = json!("local/tiny");
    body["systemPrompt"] = json!(too_long);
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    let err = resp.error(400, "context.window.exceeded");
    assert!(resp.field_names().contains("systemPrompt"), "{resp}");
    assert!(
        err["message"].as_str().unwrap().contains("50"),
        "the message names the window: {resp}"
    );

    // The same check on a new version.
    let resp = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"systemPrompt": too_long, "version": "1.1.0"}),
            None,
        )
        .await;
    resp.error(400, "context.window.exceeded");
    let versions = server.get(&versions_path(&id), Some(&token)).await.ok(200);
    assert_eq!(
        versions["entities"].as_array().unwrap().len(),
        1,
        "{versions}"
    );
}

#[tokio::test]
async fn builtin_echo_has_a_128000_token_window() {
    let server = Server::start();
    let token = server.admin_token().await;
    // Text dense in tokens (rare CJK ideographs, mostly more than one token each), so that it
    // is over the window while staying short in characters and bytes.
    let text: String = (0..100_000u32)
        .map(|i| char::from_u32(0x4E00 + (i * 7919) % 20_000).unwrap())
        .collect();
    assert!(o200k(&text) > 128_000, "{} tokens", o200k(&text));
    let mut body = prompt_body("huge");
    body["systemPrompt"] = json!(text);
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    resp.error(400, "context.window.exceeded");
}

#[tokio::test]
async fn unknown_request_fields_are_ignored() {
    let server = Server::start();
    let token = server.admin_token().await;
    let mut body = prompt_body("forward-compatible");
    body["someFutureField"] = json!({"nested": [1, 2, 3]});
    body["safetyGuardrails"] = json!({"maxTokens": 100, "futureKnob": true});
    let (created, _) = server.create_prompt(&token, &body).await;
    assert!(created.get("someFutureField").is_none(), "{created}");
}

#[tokio::test]
async fn create_traffic_must_name_existing_versions() {
    let server = Server::start();
    let token = server.admin_token().await;
    let mut body = prompt_body("traffic-on-create");
    body["trafficDistribution"] = json!({"defaultVersion": "2.0.0"});
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    assert_single_problem(&resp, "invalid.value", "trafficDistribution.defaultVersion");

    let mut body = prompt_body("traffic-on-create");
    body["trafficDistribution"] = json!({"versions": [{"version": "1.0.0", "weight": 0.5}, {"version": "3.0.0", "weight": 0.5}]});
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    resp.error(400, "invalid.value");
    assert!(
        resp.field_names()
            .contains("trafficDistribution.versions[1].version"),
        "{resp}"
    );

    let list = server.get(PROMPTS, Some(&token)).await.ok(200);
    assert_eq!(list["entities"], json!([]));
}
