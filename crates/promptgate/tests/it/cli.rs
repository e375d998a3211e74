//! The `promptgate clients …` commands, run on the database of a running server.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_success(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

#[tokio::test]
async fn create_with_json_prints_exactly_the_client() {
    let server = Server::start();
    let output = server.cli(&[
        "clients",
        "create",
        "--name",
        "etl",
        "--scopes",
        "ai:prompt:read ai:prompt:write",
        "--json",
    ]);
    assert_success(&output);
    let printed: Value = serde_json::from_str(stdout(&output).trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", stdout(&output)));
    let keys: BTreeSet<&str> = printed
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["clientId", "clientSecret", "scopes"]),
        "{printed}"
    );
    assert_eq!(
        printed["scopes"],
        json!(["ai:prompt:read", "ai:prompt:write"])
    );
    let id = str_field(&printed, "clientId");
    let secret = str_field(&printed, "clientSecret");

    // The running server accepts the new client with its scopes.
    let resp = server
        .token_request(
            &[("grant_type", "client_credentials")],
            Some((&id, &secret)),
        )
        .await;
    let body = resp.ok(200);
    let scopes: BTreeSet<&str> = body["scope"].as_str().unwrap().split_whitespace().collect();
    assert_eq!(
        scopes,
        BTreeSet::from(["ai:prompt:read", "ai:prompt:write"])
    );
    let token = str_field(&body, "access_token");
    server
        .post(PROMPTS, Some(&token), &prompt_body("from-cli-client"))
        .await
        .ok(201);
    server
        .get(CLIENTS, Some(&token))
        .await
        .error(403, "missing.scope");
}

#[tokio::test]
async fn create_without_json_prints_the_id_and_secret_for_people() {
    let server = Server::start();
    let output = server.cli(&[
        "clients",
        "create",
        "--name",
        "human",
        "--scopes",
        "ai:prompt:read",
    ]);
    assert_success(&output);
    let text = stdout(&output) + &stderr(&output);

    let listed = server.cli(&["clients", "list", "--json"]);
    assert_success(&listed);
    let list: Value = serde_json::from_str(stdout(&listed).trim()).unwrap();
    let id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == json!("human"))
        .map(|c| str_field(c, "clientId"))
        .unwrap_or_else(|| panic!("the client is not listed: {list}"));
    assert!(text.contains(&id), "the id is not printed: {text}");

    // One of the printed words is the secret: it gets a token.
    let candidates: Vec<String> = text
        .split(|c: char| c.is_whitespace() || "\"',;()".contains(c))
        .filter(|w| w.len() >= 20 && *w != id)
        .map(str::to_owned)
        .collect();
    assert!(
        !candidates.is_empty() && candidates.len() < 10,
        "no secret-like word printed: {text}"
    );
    let mut found = false;
    for candidate in &candidates {
        let resp = server
            .token_request(
                &[("grant_type", "client_credentials")],
                Some((&id, candidate)),
            )
            .await;
        if resp.status == 200 {
            found = true;
            break;
        }
    }
    assert!(found, "none of the printed words is the secret: {text}");
}

#[tokio::test]
async fn an_unknown_scope_fails_and_names_it() {
    let server = Server::start();
    let output = server.cli(&[
        "clients",
        "create",
        "--name",
        "x",
        "--scopes",
        "ai:prompt:read ai:everything",
        "--json",
    ]);
    assert!(
        !output.status.success(),
        "an unknown scope was accepted: {}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("ai:everything"),
        "stderr does not name the scope: {}",
        stderr(&output)
    );
    let listed = server.cli(&["clients", "list", "--json"]);
    assert_success(&listed);
    let list: Value = serde_json::from_str(stdout(&listed).trim()).unwrap();
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "only the admin client: {list}"
    );
}

#[tokio::test]
async fn list_shows_clients_without_secrets() {
    let server = Server::start();
    let admin = server.admin_token().await;
    let (http_id, http_secret) = server
        .create_client(&admin, "over-http", &["ai:prompt:read"])
        .await;
    let output = server.cli(&[
        "clients",
        "create",
        "--name",
        "over-cli",
        "--scopes",
        "ai:audit:read",
        "--json",
    ]);
    assert_success(&output);
    let cli_client: Value = serde_json::from_str(stdout(&output).trim()).unwrap();

    let output = server.cli(&["clients", "list", "--json"]);
    assert_success(&output);
    let text = stdout(&output);
    for secret in [
        &http_secret,
        &server.admin_secret,
        &str_field(&cli_client, "clientSecret"),
    ] {
        assert!(
            !text.contains(secret.as_str()),
            "the list prints a secret: {text}"
        );
    }
    let list: Value = serde_json::from_str(text.trim()).unwrap();
    let entities = list
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"));
    assert_eq!(entities.len(), 3, "{list}");
    for entity in entities {
        for key in ["clientId", "name", "scopes", "createdAt", "disabled"] {
            assert!(entity.get(key).is_some(), "{key} missing: {entity}");
        }
        assert!(is_rfc3339_utc(&str_field(entity, "createdAt")), "{entity}");
    }
    let by_id = |id: &str| {
        entities
            .iter()
            .find(|c| c["clientId"] == json!(id))
            .cloned()
    };
    let http = by_id(&http_id).unwrap_or_else(|| panic!("{list}"));
    assert_eq!(http["name"], json!("over-http"));
    assert_eq!(http["scopes"], json!(["ai:prompt:read"]));
    assert_eq!(http["disabled"], json!(false));
    let cli = by_id(&str_field(&cli_client, "clientId")).unwrap_or_else(|| panic!("{list}"));
    assert_eq!(cli["scopes"], json!(["ai:audit:read"]));
    // The HTTP list sees the CLI's client too.
    let http_list = server.get(CLIENTS, Some(&admin)).await.ok(200);
    assert_eq!(
        http_list["entities"].as_array().unwrap().len(),
        3,
        "{http_list}"
    );
}

#[tokio::test]
async fn disable_from_the_cli_reaches_the_running_server() {
    let server = Server::start();
    let admin = server.admin_token().await;
    let (id, secret) = server
        .create_client(&admin, "to-disable", &["ai:prompt:read"])
        .await;
    let token = server.token(&id, &secret, None).await;
    server.get(PROMPTS, Some(&token)).await.ok(200);

    let output = server.cli(&["clients", "disable", &id]);
    assert_success(&output);
    let refused = eventually(Duration::from_secs(15), || async {
        server.get(PROMPTS, Some(&token)).await.status == 401
    })
    .await;
    assert!(
        refused,
        "the disabled client's token still works 15 s later"
    );
    server
        .get(PROMPTS, Some(&token))
        .await
        .error(401, "unauthorized");
    let resp = server
        .token_request(
            &[("grant_type", "client_credentials")],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(resp.status, 401, "{resp}");

    let listed = server.cli(&["clients", "list", "--json"]);
    let list: Value = serde_json::from_str(stdout(&listed).trim()).unwrap();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["clientId"] == json!(id))
        .cloned()
        .unwrap();
    assert_eq!(entry["disabled"], json!(true), "{entry}");
    server.get(PROMPTS, Some(&admin)).await.ok(200);
}

#[tokio::test]
async fn disable_of_an_unknown_client_fails() {
    let server = Server::start();
    let output = server.cli(&["clients", "disable", &uuid::Uuid::new_v4().to_string()]);
    assert!(
        !output.status.success(),
        "disabling an unknown client succeeded: {}",
        stdout(&output)
    );
    let admin = server.admin_token().await;
    server.get(PROMPTS, Some(&admin)).await.ok(200);
}

#[test]
fn help_names_the_commands() {
    let mut cmd = Command::new(BIN);
    cmd.arg("--help");
    let output = run_bounded(cmd);
    assert_success(&output);
    let text = stdout(&output);
    assert!(text.contains("serve") && text.contains("clients"), "{text}");

    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--help"]);
    let output = run_bounded(cmd);
    assert_success(&output);
    let text = stdout(&output);
    for flag in ["--listen", "--database-url", "--config"] {
        assert!(text.contains(flag), "serve --help lacks {flag}: {text}");
    }
}
