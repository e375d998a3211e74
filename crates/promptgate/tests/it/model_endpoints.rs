//! `GET …/model-endpoints`: the built-in catalogue, usability, and configured endpoints.

use serde_json::{Value, json};

use crate::harness::*;

const BUILT_IN: [&str; 7] = [
    "builtin/echo",
    "openai/gpt-4o",
    "openai/gpt-4o-mini",
    "openai/gpt-4.1",
    "anthropic/claude-3-5-sonnet",
    "anthropic/claude-3-sonnet",
    "anthropic/claude-3-haiku",
];

fn endpoint<'a>(list: &'a Value, reference: &str) -> &'a Value {
    list["entities"]
        .as_array()
        .unwrap_or_else(|| panic!("no entities: {list}"))
        .iter()
        .find(|e| e["ref"] == json!(reference))
        .unwrap_or_else(|| panic!("{reference} is not listed: {list}"))
}

#[tokio::test]
async fn the_built_in_catalogue_without_keys() {
    let server = Server::start();
    let token = server.scoped_token("ai:prompt:read").await;
    let resp = server.get(MODEL_ENDPOINTS, Some(&token)).await;
    let list = resp.ok(200);
    for reference in BUILT_IN {
        let e = endpoint(&list, reference);
        for key in [
            "ref",
            "provider",
            "baseUrl",
            "model",
            "contextWindow",
            "tokenizer",
            "tokenizerExact",
            "timeoutMs",
            "maxRetries",
            "apiKeyEnv",
            "usable",
        ] {
            assert!(e.get(key).is_some(), "{reference} lacks {key}: {e}");
        }
        let provider = reference.split('/').next().unwrap();
        assert_eq!(e["provider"], json!(provider), "{e}");
        assert!(e["contextWindow"].as_u64().is_some_and(|w| w > 0), "{e}");
        assert!(e["timeoutMs"].as_u64().is_some_and(|t| t > 0), "{e}");
        assert!(e["maxRetries"].is_u64(), "{e}");
        match provider {
            "builtin" => {
                assert_eq!(e["usable"], json!(true), "{e}");
                assert_eq!(e["tokenizer"], json!("o200k_base"), "{e}");
                assert_eq!(e["contextWindow"], json!(128000), "{e}");
            }
            "openai" => {
                assert_eq!(e["usable"], json!(false), "no key is set: {e}");
                assert_eq!(e["tokenizer"], json!("o200k_base"), "{e}");
                assert_eq!(e["tokenizerExact"], json!(true), "{e}");
                assert_eq!(e["apiKeyEnv"], json!("OPENAI_API_KEY"), "{e}");
                assert!(
                    e["baseUrl"]
                        .as_str()
                        .is_some_and(|u| u.starts_with("https://")),
                    "{e}"
                );
            }
            "anthropic" => {
                assert_eq!(e["usable"], json!(false), "no key is set: {e}");
                assert_eq!(e["tokenizer"], json!("cl100k_base"), "{e}");
                assert_eq!(e["tokenizerExact"], json!(false), "{e}");
                assert_eq!(e["apiKeyEnv"], json!("ANTHROPIC_API_KEY"), "{e}");
                assert!(
                    e["baseUrl"]
                        .as_str()
                        .is_some_and(|u| u.starts_with("https://")),
                    "{e}"
                );
            }
            other => panic!("unexpected provider {other}"),
        }
    }
}

#[tokio::test]
async fn a_key_in_the_environment_makes_its_endpoints_usable_without_showing_it() {
    let key = format!("sk-test-{}", random_secret());
    let options = Options {
        env: vec![("OPENAI_API_KEY".to_owned(), key.clone())],
        ..Options::default()
    };
    let server = Server::start_with(options);
    let token = server.admin_token().await;
    let resp = server.get(MODEL_ENDPOINTS, Some(&token)).await;
    let list = resp.ok(200);
    assert!(
        !resp.text.contains(&key),
        "the key's value is in the answer: {resp}"
    );
    assert!(
        !resp.text.contains("sk-test"),
        "part of the key's value is in the answer: {resp}"
    );
    for reference in [
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
        "openai/gpt-4.1",
        "builtin/echo",
    ] {
        assert_eq!(
            endpoint(&list, reference)["usable"],
            json!(true),
            "{reference}"
        );
    }
    for reference in [
        "anthropic/claude-3-5-sonnet",
        "anthropic/claude-3-sonnet",
        "anthropic/claude-3-haiku",
    ] {
        assert_eq!(
            endpoint(&list, reference)["usable"],
            json!(false),
            "{reference}"
        );
    }
    assert!(
        !server.log().contains(&key),
        "the key's value is in the server log"
    );
}

#[tokio::test]
async fn configured_endpoints_add_to_and_override_the_catalogue() {
    let config = r#"
[[model_endpoints]]
ref = "local/llama"
provider = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "llama-3.1-8b"
api_key_env = "PROMPTGATE_IT_LOCAL_KEY"
context_window = 8192
tokenizer = "cl100k_base"
timeout_ms = 5000
max_retries = 1

[[model_endpoints]]
ref = "openai/gpt-4o-mini"
provider = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "gpt-4o-mini"
api_key_env = "PROMPTGATE_IT_MINI_KEY"
context_window = 1000
timeout_ms = 2500
max_retries = 0
"#;
    let options = Options {
        env: vec![(
            "PROMPTGATE_IT_LOCAL_KEY".to_owned(),
            "local-secret-value".to_owned(),
        )],
        ..Options::with_config(config)
    };
    let server = Server::start_with(options);
    let token = server.admin_token().await;
    let resp = server.get(MODEL_ENDPOINTS, Some(&token)).await;
    let list = resp.ok(200);
    assert!(!resp.text.contains("local-secret-value"), "{resp}");

    let local = endpoint(&list, "local/llama");
    assert_eq!(local["provider"], json!("openai"));
    assert_eq!(local["baseUrl"], json!("http://127.0.0.1:9/v1"));
    assert_eq!(local["model"], json!("llama-3.1-8b"));
    assert_eq!(local["contextWindow"], json!(8192));
    assert_eq!(local["tokenizer"], json!("cl100k_base"));
    assert_eq!(local["timeoutMs"], json!(5000));
    assert_eq!(local["maxRetries"], json!(1));
    assert_eq!(local["apiKeyEnv"], json!("PROMPTGATE_IT_LOCAL_KEY"));
    assert_eq!(local["usable"], json!(true));

    let mini = endpoint(&list, "openai/gpt-4o-mini");
    assert_eq!(mini["baseUrl"], json!("http://127.0.0.1:9/v1"));
    assert_eq!(mini["contextWindow"], json!(1000));
    assert_eq!(mini["timeoutMs"], json!(2500));
    assert_eq!(mini["maxRetries"], json!(0));
    assert_eq!(
        mini["tokenizer"],
        json!("o200k_base"),
        "the tokenizer is defaulted from the model"
    );
    assert_eq!(mini["usable"], json!(false));
    let refs: Vec<&Value> = list["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["ref"])
        .collect();
    assert_eq!(
        refs.iter()
            .filter(|r| ***r == json!("openai/gpt-4o-mini"))
            .count(),
        1,
        "overridden, not duplicated"
    );
    for reference in BUILT_IN {
        endpoint(&list, reference);
    }

    // Prompts can use the new endpoint, and its tokenizer counts.
    let system = "Réponds brièvement 🙂.";
    let mut body = prompt_body("on-llama");
    body["modelEndpointRef"] = json!("local/llama");
    body["systemPrompt"] = json!(system);
    let (created, _) = server.create_prompt(&token, &body).await;
    assert_eq!(created["systemPromptTokens"], json!(cl100k(system)));
    // And the overridden window applies.
    let mut body = prompt_body("on-mini");
    body["modelEndpointRef"] = json!("openai/gpt-4o-mini");
    body["systemPrompt"] = json!("word ".repeat(1200));
    server
        .post(PROMPTS, Some(&token), &body)
        .await
        .error(400, "context.window.exceeded");
}

#[tokio::test]
async fn model_endpoints_need_prompt_read() {
    let server = Server::start();
    server
        .get(MODEL_ENDPOINTS, None)
        .await
        .error(401, "unauthorized");
    let token = server.scoped_token("admin ai:prompt:write").await;
    let err = server
        .get(MODEL_ENDPOINTS, Some(&token))
        .await
        .error(403, "missing.scope");
    assert!(
        param(&err, "requiredScopes")
            .to_string()
            .contains("ai:prompt:read"),
        "{err}"
    );
}
