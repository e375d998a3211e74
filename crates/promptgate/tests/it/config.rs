//! Server configuration: unknown keys, the body limit, settings from the environment.

use std::sync::Arc;

use reqwest::Method;
use serde_json::json;

use crate::harness::*;

#[track_caller]
fn assert_refuses_to_start(config: &str, key: &str) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    match Server::try_start_in(dir, Options::with_config(config)) {
        Ok(server) => panic!(
            "the server started with {key:?} in its config; output:\n{}",
            server.log()
        ),
        Err(failed) => {
            let status = failed
                .status
                .unwrap_or_else(|| panic!("the process did not exit:\n{}", failed.log));
            assert!(
                !status.success(),
                "exit status {status:?} for a bad config:\n{}",
                failed.log
            );
            assert!(
                failed.log.contains(key),
                "stderr does not name {key:?}:\n{}",
                failed.log
            );
            assert!(!failed.log.contains("listening on"), "{}", failed.log);
        }
    }
}

#[test]
fn an_unknown_key_in_a_section_stops_start_up_and_is_named() {
    assert_refuses_to_start(
        "[server]\nmax_body_bytes = 2048\nbogus_key = 1\n",
        "bogus_key",
    );
}

#[test]
fn an_unknown_top_level_key_stops_start_up_and_is_named() {
    assert_refuses_to_start("bogus_top_level = true\n", "bogus_top_level");
}

#[test]
fn an_unknown_key_in_a_model_endpoint_stops_start_up_and_is_named() {
    let config = r#"
[[model_endpoints]]
ref = "local/x"
provider = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "x"
api_key_env = "X_KEY"
context_window = 1000
api_key = "sk-never-in-a-file"
"#;
    assert_refuses_to_start(config, "api_key");
}

/// Issue 21: a price that is negative or not finite stops start-up, naming the key (with the
/// endpoint's index and ref).
#[test]
fn a_negative_or_non_finite_price_stops_start_up_and_is_named() {
    for (key, value) in [
        ("input_price_per_million", "-0.01"),
        ("output_price_per_million", "inf"),
        ("output_price_per_million", "nan"),
    ] {
        let config = format!(
            "[[model_endpoints]]\nref = \"local/priced\"\nprovider = \"openai\"\n\
             base_url = \"http://127.0.0.1:9/v1\"\nmodel = \"x\"\n{key} = {value}\n"
        );
        assert_refuses_to_start(&config, &format!("model_endpoints[0].{key}"));
    }
}

#[tokio::test]
async fn max_body_bytes_is_configurable() {
    let server = Server::start_with(Options::with_config("[server]\nmax_body_bytes = 2048\n"));
    let token = server.admin_token().await;
    let mut body = prompt_body("small");
    body["systemPrompt"] = json!("a".repeat(1500));
    server.post(PROMPTS, Some(&token), &body).await.ok(201);
    let mut body = prompt_body("large");
    body["systemPrompt"] = json!("a".repeat(3000));
    server
        .post(PROMPTS, Some(&token), &body)
        .await
        .error(413, "payload.too.large");
    // Also when the client does not announce the length up front.
    let chunks: Vec<Result<String, std::io::Error>> = vec![Ok(body.to_string())];
    let stream = futures::stream::iter(chunks);
    let resp = server
        .send(
            server
                .request(Method::POST, PROMPTS)
                .bearer_auth(&token)
                .header("Content-Type", "application/json")
                .body(reqwest::Body::wrap_stream(stream)),
        )
        .await;
    resp.error(413, "payload.too.large");
}

#[tokio::test]
async fn settings_come_from_the_environment_too() {
    let options = Options {
        settings_from_env: true,
        ..Options::with_config("[auth]\ntoken_ttl_seconds = 600\n")
    };
    let server = Server::start_with(options);
    let resp = server
        .token_request(
            &[("grant_type", "client_credentials")],
            Some((&server.admin_id, &server.admin_secret)),
        )
        .await;
    let body = resp.ok(200);
    assert_eq!(
        body["expires_in"],
        json!(600),
        "PROMPTGATE_CONFIG was not read"
    );
    let token = str_field(&body, "access_token");
    server
        .create_prompt(&token, &prompt_body("env-configured"))
        .await;
    // The prompt is in the database the harness named (a SQLite file in the test's directory, or
    // the test's PostgreSQL database), not in a default one.
    let dump = server.dump().await;
    assert!(
        dump.contains("env-configured"),
        "PROMPTGATE_DATABASE_URL was not used:\n{dump}"
    );
    if server.store == StoreKind::Postgres {
        assert!(
            !server.db_path.exists(),
            "a SQLite file appeared although the database URL names PostgreSQL"
        );
    }
}
