//! API keys (shared/API.md "API keys", docs/api-keys.md): `pgk_…` keys of a client with a subset
//! of its scopes, shown once, accepted wherever a bearer token is (the OpenAI front door too),
//! refused once revoked (at once here, within about a second on a replica), expired or when the
//! client is disabled; `lastUsedAt` from batched writes; audited; named in telemetry; the CLI's
//! `api-keys create|list|revoke`.

use std::time::{Duration, Instant};

use promptgate_core::credentials::hash_secret;
use serde_json::{Value, json};

use crate::cli_kit::{Cli, assert_exit, assert_fails, stdout};
use crate::harness::*;

const INVOCATIONS: &str = "/api/v2/ai/llm/gateway/invocations";
const AUDIT: &str = "/api/v2/ai/llm/gateway/audit-logs";
const ALL_KEYS: &str = "/api/v2/oauth/api-keys";

fn keys_path(client_id: &str) -> String {
    format!("{CLIENTS}/{client_id}/api-keys")
}

/// Creates a key over HTTP, asserting 201; answers the body (with the key).
async fn create_key(server: &Server, admin: &str, client_id: &str, body: &Value) -> Value {
    let resp = server.post(&keys_path(client_id), Some(admin), body).await;
    resp.ok(201)
}

/// Polls `check` every 50 ms until it holds or `limit` has passed since `since`.
async fn within<F, Fut>(since: Instant, limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if check().await {
            return;
        }
        assert!(
            since.elapsed() < limit,
            "{what}: not within {limit:?} of the change"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn invoke(server: &Server, bearer: &str, prompt_id: &str) -> Resp {
    server
        .post(
            INVOCATIONS,
            Some(bearer),
            &json!({"promptId": prompt_id, "userInput": "Where is my order?"}),
        )
        .await
}

#[tokio::test]
async fn a_key_is_shown_once_and_acts_as_its_client_with_its_own_scopes() {
    let server = Server::start();
    let admin = server.admin_token().await;
    let (prompt, _) = server
        .create_prompt(&admin, &prompt_body("keys_support"))
        .await;
    let prompt_id = str_field(&prompt, "id");
    let (client_id, _) = server
        .create_client(&admin, "checkout", &["ai:prompt:read", "ai:gateway:write"])
        .await;

    let created = create_key(
        &server,
        &admin,
        &client_id,
        &json!({"name": "checkout-service", "scopes": "ai:gateway:write", "expiresAt": null}),
    )
    .await;
    let key = str_field(&created, "key");
    let key_id = str_field(&created, "id");
    // The prefix, then 32 random bytes in URL-safe base64 (256 bits).
    assert!(key.starts_with("pgk_") && key.len() == 4 + 43, "{created}");
    assert!(is_uuid(&key_id), "{created}");
    assert_eq!(created["name"], json!("checkout-service"));
    assert_eq!(created["scopes"], json!("ai:gateway:write"));
    assert_eq!(created["clientId"], json!(client_id));
    assert_eq!(created["expiresAt"], Value::Null);
    assert!(
        is_rfc3339_utc(&str_field(&created, "createdAt")),
        "{created}"
    );

    // Accepted as a bearer credential with the key's scopes only.
    let answer = invoke(&server, &key, &prompt_id).await;
    let body = answer.ok(200);
    let response_id = str_field(&body, "responseId");
    let refused = server.get(PROMPTS, Some(&key)).await;
    let error = refused.error(403, "missing.scope");
    assert!(error.to_string().contains("ai:prompt:read"), "{refused}");

    // The listing never shows the key; the record names the key and the client.
    let listed = server.get(&keys_path(&client_id), Some(&admin)).await;
    let entities = listed.ok(200)["entities"].as_array().unwrap().clone();
    assert_eq!(entities.len(), 1, "{listed}");
    assert!(entities[0].get("key").is_none(), "{listed}");
    assert!(!listed.text.contains(&key), "{listed}");
    let all = server.get(ALL_KEYS, Some(&admin)).await;
    assert!(
        all.ok(200)["entities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == json!(key_id))
    );
    let record = server
        .telemetry_record(&admin, &prompt_id, &response_id)
        .await;
    assert_eq!(record["apiKeyId"], json!(key_id), "{record}");
    assert_eq!(record["clientId"], json!(client_id), "{record}");
    // lastUsedAt arrives with the next batched write (about a second).
    within(
        Instant::now(),
        Duration::from_secs(10),
        "lastUsedAt",
        || async {
            let resp = server.get(&keys_path(&client_id), Some(&admin)).await;
            resp.ok(200)["entities"][0]["lastUsedAt"]
                .as_str()
                .is_some_and(is_rfc3339_utc)
        },
    )
    .await;

    // Audited with the key's id, never the key or its hash; neither is in the log.
    let audit = server
        .get_query(AUDIT, &admin, &[("action", "API_KEY_CREATED")])
        .await;
    let entries = audit.ok(200)["entities"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["details"]["keyId"], json!(key_id), "{audit}");
    assert_eq!(
        entries[0]["details"]["clientId"],
        json!(client_id),
        "{audit}"
    );
    let everything = server
        .get_query(AUDIT, &admin, &[("pageSize", "500")])
        .await;
    assert!(
        !everything.text.contains(&key),
        "the key is in the audit log"
    );
    assert!(!everything.text.contains(&hash_secret(&key)));
    assert!(!server.log().contains(&key), "the key is in the server log");

    // Without scopes, a key gets all of its client's.
    let all_scopes = create_key(&server, &admin, &client_id, &json!({"name": "all"})).await;
    assert_eq!(
        all_scopes["scopes"],
        json!("ai:prompt:read ai:gateway:write"),
        "{all_scopes}"
    );
    server
        .get(PROMPTS, Some(&str_field(&all_scopes, "key")))
        .await
        .ok(200);
}

#[tokio::test]
async fn the_openai_front_door_takes_a_key_as_its_api_key() {
    let server = Server::start();
    let admin = server.admin_token().await;
    server
        .create_prompt(&admin, &prompt_body("keys_openai"))
        .await;
    let (client_id, _) = server
        .create_client(&admin, "sdk", &["ai:gateway:write"])
        .await;
    let key = str_field(
        &create_key(&server, &admin, &client_id, &json!({"name": "sdk"})).await,
        "key",
    );
    let resp = server
        .post(
            "/v1/chat/completions",
            Some(&key),
            &json!({"model": "prompt:keys_openai", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    let body = resp.ok(200);
    assert_eq!(body["object"], json!("chat.completion"), "{resp}");
    // A wrong key gets OpenAI's 401 shape there, like a wrong token.
    let bad = server
        .post(
            "/v1/chat/completions",
            Some("pgk_not-a-key"),
            &json!({"model": "prompt:keys_openai", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(bad.status, 401, "{bad}");
}

#[tokio::test]
async fn bad_requests_name_the_field_and_store_nothing() {
    let server = Server::start();
    let admin = server.admin_token().await;
    let (client_id, _) = server
        .create_client(&admin, "narrow", &["ai:gateway:write"])
        .await;
    let gateway_only = server.scoped_token("ai:gateway:write").await;
    let before = server.dump().await;

    let resp = server
        .post(
            &keys_path(&client_id),
            Some(&admin),
            &json!({"name": "x", "scopes": "ai:gateway:write admin nope"}),
        )
        .await;
    let body = resp.error(400, "invalid.value");
    let fields: Vec<String> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["details"][0]["fieldName"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert!(
        fields.contains(&"scopes[1]".to_owned()) && fields.contains(&"scopes[2]".to_owned()),
        "{resp}"
    );
    assert!(
        resp.text.contains("ai:gateway:write"),
        "the client's scopes are named: {resp}"
    );

    for (body, field) in [
        (json!({"scopes": "ai:gateway:write"}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "k".repeat(201)}), "name"),
        (json!({"name": "k", "scopes": ""}), "scopes"),
        (json!({"name": "k", "expiresAt": "next week"}), "expiresAt"),
        (
            json!({"name": "k", "expiresAt": "2001-01-01T00:00:00Z"}),
            "expiresAt",
        ),
    ] {
        let resp = server
            .post(&keys_path(&client_id), Some(&admin), &body)
            .await;
        let err = resp.error(400, "invalid.value");
        assert!(err.to_string().contains(field), "{field}: {resp}");
    }
    let resp = server
        .post(
            &keys_path("no-such-client"),
            Some(&admin),
            &json!({"name": "k"}),
        )
        .await;
    resp.error(404, "not.found");
    server
        .get(&keys_path("no-such-client"), Some(&admin))
        .await
        .error(404, "not.found");
    server
        .delete(&format!("{ALL_KEYS}/no-such-key"), Some(&admin))
        .await
        .error(404, "not.found");
    // Only admins manage keys.
    server
        .post(
            &keys_path(&client_id),
            Some(&gateway_only),
            &json!({"name": "k"}),
        )
        .await
        .error(403, "missing.scope");
    server
        .get(ALL_KEYS, Some(&gateway_only))
        .await
        .error(403, "missing.scope");
    assert_eq!(
        server.dump().await,
        before,
        "a refused request changed the store"
    );

    // A disabled client gets no key (409), and its existing keys stop working.
    let live = create_key(&server, &admin, &client_id, &json!({"name": "live"})).await;
    let live_key = str_field(&live, "key");
    server
        .post(
            &format!("{CLIENTS}/{client_id}/disable"),
            Some(&admin),
            &json!({}),
        )
        .await
        .ok(200);
    server
        .post(&keys_path(&client_id), Some(&admin), &json!({"name": "k"}))
        .await
        .error(409, "conflict");
    let refused = server
        .post(
            INVOCATIONS,
            Some(&live_key),
            &json!({"promptId": "x", "userInput": "y"}),
        )
        .await;
    let err = refused.error(401, "unauthorized");
    assert!(err.to_string().contains("disabled"), "{refused}");
}

#[tokio::test]
async fn a_revoked_or_expired_key_is_refused_and_the_revocation_is_audited_once() {
    let server = Server::start();
    let admin = server.admin_token().await;
    let (client_id, _) = server
        .create_client(&admin, "reader", &["ai:prompt:read"])
        .await;
    let created = create_key(&server, &admin, &client_id, &json!({"name": "r"})).await;
    let (key, key_id) = (str_field(&created, "key"), str_field(&created, "id"));
    server.get(PROMPTS, Some(&key)).await.ok(200);

    let revoked = server
        .delete(&format!("{}/{key_id}", keys_path(&client_id)), Some(&admin))
        .await;
    let body = revoked.ok(200);
    assert!(
        body["revokedAt"].as_str().is_some_and(is_rfc3339_utc),
        "{revoked}"
    );
    // Refused at once on the gateway that revoked it.
    let refused = server.get(PROMPTS, Some(&key)).await;
    let err = refused.error(401, "unauthorized");
    assert!(err.to_string().contains("revoked"), "{refused}");
    assert!(
        refused
            .header("www-authenticate")
            .is_some_and(|h| h.contains("invalid_token")),
        "{refused}"
    );
    // Revoking again changes nothing; another client's path does not find it.
    server
        .delete(&format!("{ALL_KEYS}/{key_id}"), Some(&admin))
        .await
        .ok(200);
    server
        .delete(
            &format!("{}/{key_id}", keys_path("someone-else")),
            Some(&admin),
        )
        .await
        .error(404, "not.found");
    let audit = server
        .get_query(AUDIT, &admin, &[("action", "API_KEY_REVOKED")])
        .await;
    let entries = audit.ok(200)["entities"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["details"]["keyId"], json!(key_id));

    // An expiring key works until its time, then is refused.
    let soon = promptgate_server::clock::rfc3339(
        promptgate_server::clock::now() + time::Duration::seconds(2),
    );
    let expiring = create_key(
        &server,
        &admin,
        &client_id,
        &json!({"name": "short", "expiresAt": soon}),
    )
    .await;
    let short = str_field(&expiring, "key");
    server.get(PROMPTS, Some(&short)).await.ok(200);
    within(
        Instant::now(),
        Duration::from_secs(10),
        "the expiry",
        || async {
            let resp = server.get(PROMPTS, Some(&short)).await;
            resp.status == 401 && resp.text.contains("expired")
        },
    )
    .await;
    // A key that was never issued.
    let unknown = server
        .get(PROMPTS, Some(&format!("pgk_{}", "A".repeat(43))))
        .await;
    unknown.error(401, "unauthorized");
}

#[tokio::test]
async fn a_key_revoked_on_one_replica_is_refused_by_another_within_two_seconds() {
    let server = Server::start();
    let replica = server.start_replica();
    let admin = server.admin_token().await;
    let (client_id, _) = server
        .create_client(&admin, "svc", &["ai:prompt:read"])
        .await;
    let created = create_key(&server, &admin, &client_id, &json!({"name": "svc"})).await;
    let (key, key_id) = (str_field(&created, "key"), str_field(&created, "id"));
    // The replica has seen (and cached) the key before it is revoked.
    replica.get(PROMPTS, Some(&key)).await.ok(200);
    server
        .delete(&format!("{ALL_KEYS}/{key_id}"), Some(&admin))
        .await
        .ok(200);
    let since = Instant::now();
    within(
        since,
        Duration::from_secs(2),
        "the replica refusing the key",
        || async { replica.get(PROMPTS, Some(&key)).await.status == 401 },
    )
    .await;
}

#[tokio::test]
async fn the_cli_creates_lists_and_revokes_keys_and_runs_with_one() {
    let server = Server::start();
    let admin = server.admin_token().await;
    let (client_id, _) = server
        .create_client(&admin, "cli", &["ai:prompt:read", "ai:gateway:write"])
        .await;
    let cli = Cli::new(&server);
    let created = cli
        .json(&[
            "api-keys",
            "create",
            "--client",
            &client_id,
            "--name",
            "nightly",
            "--scopes",
            "ai:prompt:read",
            "--expires-in",
            "90d",
        ])
        .await;
    let key = str_field(&created, "key");
    let key_id = str_field(&created, "id");
    assert!(key.starts_with("pgk_"), "{created}");
    let expires = str_field(&created, "expiresAt");
    let days =
        (time::OffsetDateTime::parse(&expires, &time::format_description::well_known::Rfc3339)
            .unwrap()
            - promptgate_server::clock::now())
        .whole_days();
    assert!((89..=90).contains(&days), "{created}");

    let listed = cli
        .json(&["api-keys", "list", "--client", &client_id])
        .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert!(!listed.to_string().contains(&key));
    let text = cli.run(&["api-keys", "list"]).await;
    assert_exit(&text, 0);
    assert!(stdout(&text).contains(&key_id) && stdout(&text).contains("active"));

    // Any command runs with the key in place of client credentials.
    let mut cmd = std::process::Command::new(BIN);
    cmd.env_remove("PROMPTGATE_CLIENT_ID")
        .env_remove("PROMPTGATE_CLIENT_SECRET")
        .env_remove("PROMPTGATE_DATABASE_URL")
        .env("HOME", cli.home.path())
        .env("PROMPTGATE_API_KEY", &key)
        .args(["--url", &server.base, "prompts", "list", "--json"]);
    let with_key = run_bounded(cmd);
    assert_exit(&with_key, 0);
    assert!(!String::from_utf8_lossy(&with_key.stderr).contains(&key));

    let bad = cli
        .run(&[
            "api-keys",
            "create",
            "--client",
            &client_id,
            "--name",
            "x",
            "--expires-in",
            "90y",
        ])
        .await;
    assert_fails(&bad, 2, &["--expires-in"]);
    let wide = cli
        .run(&[
            "api-keys", "create", "--client", &client_id, "--name", "x", "--scopes", "admin",
        ])
        .await;
    assert_fails(
        &wide,
        3,
        &["invalid.value", "‘admin’", "the client's scopes"],
    );

    let revoked = cli.json(&["api-keys", "revoke", &key_id]).await;
    assert!(revoked["revokedAt"].is_string(), "{revoked}");
    server
        .get(PROMPTS, Some(&key))
        .await
        .error(401, "unauthorized");

    // On the database directly when no gateway URL is configured.
    let output = server.cli(&[
        "api-keys", "create", "--client", &client_id, "--name", "offline", "--json",
    ]);
    assert_exit(&output, 0);
    let offline: Value = serde_json::from_slice(&output.stdout).unwrap();
    let offline_key = str_field(&offline, "key");
    server.get(PROMPTS, Some(&offline_key)).await.ok(200);
}
