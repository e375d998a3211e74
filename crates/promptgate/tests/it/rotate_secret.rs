//! Rotating a client's secret (`POST /api/v2/oauth/clients/{id}/rotate-secret`,
//! `promptgate clients rotate-secret ID`): the old secret and the tokens issued with it stop
//! working, the new secret works, and the audit log records who did it without the secret.

use std::time::Duration;

use promptgate_core::credentials::hash_secret;
use serde_json::{Value, json};

use crate::harness::*;

const AUDIT: &str = "/api/v2/ai/llm/gateway/audit-logs";
const GRANT: [(&str, &str); 1] = [("grant_type", "client_credentials")];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `CLIENT_SECRET_ROTATED` entries, checking that none of `secrets` (nor their hashes)
/// appears anywhere in the audit log.
async fn rotation_entries(server: &Server, admin: &str, secrets: &[&str]) -> Vec<Value> {
    let all = server.get_query(AUDIT, admin, &[("pageSize", "100")]).await;
    all.ok(200);
    for secret in secrets {
        assert!(!all.text.contains(secret), "a secret is in the log: {all}");
        assert!(
            !all.text.contains(&hash_secret(secret)),
            "a secret's hash is in the log: {all}"
        );
    }
    let resp = server
        .get_query(AUDIT, admin, &[("action", "CLIENT_SECRET_ROTATED")])
        .await;
    resp.ok(200)["entities"].as_array().unwrap().clone()
}

#[tokio::test]
async fn rotating_over_http_replaces_the_secret_and_revokes_old_tokens_at_once() {
    let server = Server::start();
    let admin = server.admin_token().await;
    let (id, old_secret) = server
        .create_client(&admin, "ci-bot", &["ai:prompt:read"])
        .await;
    let old_token = server.token(&id, &old_secret, None).await;
    server.get(PROMPTS, Some(&old_token)).await.ok(200);

    let resp = server
        .post(
            &format!("{CLIENTS}/{id}/rotate-secret"),
            Some(&admin),
            &json!({}),
        )
        .await;
    let rotated = resp.ok(200);
    assert_eq!(rotated["clientId"], json!(id), "{resp}");
    assert_eq!(rotated["name"], json!("ci-bot"), "{resp}");
    assert_eq!(rotated["scopes"], json!(["ai:prompt:read"]), "{resp}");
    let new_secret = str_field(&rotated, "clientSecret");
    assert!(new_secret.len() >= 32, "{resp}");
    assert_ne!(new_secret, old_secret);

    // The old token is refused right away on the gateway that rotated.
    server
        .get(PROMPTS, Some(&old_token))
        .await
        .error(401, "unauthorized");
    let resp = server.token_request(&GRANT, Some((&id, &old_secret))).await;
    assert_eq!(resp.status, 401, "{resp}");
    assert_eq!(resp.json()["error"], json!("invalid_client"), "{resp}");
    let new_token = server.token(&id, &new_secret, None).await;
    server.get(PROMPTS, Some(&new_token)).await.ok(200);

    // The listing never shows the secret.
    let list = server.get(CLIENTS, Some(&admin)).await;
    list.ok(200);
    assert!(!list.text.contains(&new_secret), "{list}");

    let entries = rotation_entries(&server, &admin, &[&old_secret, &new_secret]).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(entry["actor"], json!(server.admin_id), "{entry}");
    assert_eq!(entry["details"]["clientId"], json!(id), "{entry}");
    assert_eq!(entry["details"]["before"], Value::Null, "{entry}");
    assert_eq!(entry["details"]["after"], Value::Null, "{entry}");
    assert_eq!(entry["details"]["diff"], json!([]), "{entry}");
    assert!(entry["promptId"].is_null(), "{entry}");
}

#[tokio::test]
async fn rotating_an_unknown_client_or_without_admin_is_refused() {
    let server = Server::start();
    let admin = server.admin_token().await;
    server
        .post(
            &format!("{CLIENTS}/{}/rotate-secret", uuid::Uuid::new_v4()),
            Some(&admin),
            &json!({}),
        )
        .await
        .error(404, "not.found");
    let reader = server.scoped_token("ai:prompt:read").await;
    server
        .post(
            &format!("{CLIENTS}/{}/rotate-secret", server.admin_id),
            Some(&reader),
            &json!({}),
        )
        .await
        .error(403, "missing.scope");
    // The admin secret still works and nothing was recorded.
    let admin = server.admin_token().await;
    assert!(rotation_entries(&server, &admin, &[]).await.is_empty());
}

#[tokio::test]
async fn the_cli_rotates_on_the_database_and_prints_the_secret_once() {
    let server = Server::start();
    let admin = server.admin_token().await;
    let (id, old_secret) = server
        .create_client(&admin, "cron", &["ai:prompt:read"])
        .await;
    let old_token = server.token(&id, &old_secret, None).await;
    server.get(PROMPTS, Some(&old_token)).await.ok(200);

    let output = server.cli(&["clients", "rotate-secret", &id, "--json"]);
    let out = text(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {out}\nstderr: {}",
        output.status,
        text(&output.stderr)
    );
    let printed: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(printed["clientId"], json!(id), "{out}");
    let new_secret = str_field(&printed, "clientSecret");
    assert_eq!(out.matches(&new_secret).count(), 1, "{out}");
    assert!(!text(&output.stderr).contains(&new_secret));

    // Another process rotated: this gateway notices within its one-second refresh.
    let refused = eventually(Duration::from_secs(15), || async {
        server.get(PROMPTS, Some(&old_token)).await.status == 401
    })
    .await;
    assert!(refused, "the old token still works 15 s after the rotation");
    let resp = server.token_request(&GRANT, Some((&id, &old_secret))).await;
    assert_eq!(resp.json()["error"], json!("invalid_client"), "{resp}");
    let new_token = server.token(&id, &new_secret, None).await;
    server.get(PROMPTS, Some(&new_token)).await.ok(200);

    // The text form prints the new secret once too.
    let output = server.cli(&["clients", "rotate-secret", &id]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let out = text(&output.stdout);
    let third = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("client secret:"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| panic!("no secret line: {out}"));
    assert_eq!(out.matches(&third).count(), 1, "{out}");
    server.token(&id, &third, None).await;

    let entries = rotation_entries(&server, &admin, &[&old_secret, &new_secret, &third]).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    for entry in &entries {
        assert_eq!(entry["actor"], json!("system"), "{entry}");
        assert_eq!(entry["details"]["clientId"], json!(id), "{entry}");
    }
}

#[tokio::test]
async fn the_cli_refuses_an_unknown_client() {
    let server = Server::start();
    let missing = uuid::Uuid::new_v4().to_string();
    let output = server.cli(&["clients", "rotate-secret", &missing]);
    assert!(
        !output.status.success(),
        "rotating an unknown client succeeded: {}",
        text(&output.stdout)
    );
    let err = text(&output.stderr);
    assert!(
        err.contains(&format!("no client with id {missing}")),
        "{err}"
    );
    assert!(text(&output.stdout).trim().is_empty());
}
