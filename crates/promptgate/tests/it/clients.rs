//! The admin-scoped OAuth client API: `…/oauth/clients`.

use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test]
async fn create_list_and_disable_clients_over_http() {
    let server = Server::start();
    let admin = server.admin_token().await;

    let resp = server
        .post(
            CLIENTS,
            Some(&admin),
            &json!({"name": "ci-bot", "scopes": ["ai:prompt:read", "ai:prompt:write"]}),
        )
        .await;
    let created = resp.ok(201);
    let id = str_field(&created, "clientId");
    let secret = str_field(&created, "clientSecret");
    assert!(!id.is_empty());
    assert!(
        secret.len() >= 32,
        "a 256-bit secret is at least 32 characters: {secret}"
    );
    assert_eq!(created["name"], json!("ci-bot"));
    assert_eq!(
        created["scopes"],
        json!(["ai:prompt:read", "ai:prompt:write"])
    );
    assert!(
        is_rfc3339_utc(&str_field(&created, "createdAt")),
        "{created}"
    );
    assert_eq!(created["disabled"], json!(false));

    // The secret works, with exactly the client's scopes.
    let resp = server
        .token_request(
            &[("grant_type", "client_credentials")],
            Some((&id, &secret)),
        )
        .await;
    let token_body = resp.ok(200);
    let token = str_field(&token_body, "access_token");
    server
        .post(PROMPTS, Some(&token), &prompt_body("by-ci-bot"))
        .await
        .ok(201);
    server
        .get(CLIENTS, Some(&token))
        .await
        .error(403, "missing.scope");

    // The list shows it, never a secret.
    let resp = server.get(CLIENTS, Some(&admin)).await;
    let list = resp.ok(200);
    assert!(
        !resp.text.contains(&secret),
        "the list leaks a secret: {resp}"
    );
    assert!(
        !resp.text.contains(&server.admin_secret),
        "the list leaks the admin secret: {resp}"
    );
    let entities = list["entities"].as_array().unwrap();
    assert_eq!(entities.len(), 2, "the admin and ci-bot: {list}");
    for entity in entities {
        let keys: Vec<&String> = entity.as_object().unwrap().keys().collect();
        for key in &keys {
            let lower = key.to_lowercase();
            assert!(
                !lower.contains("secret") && !lower.contains("hash"),
                "the list has a {key} field: {entity}"
            );
        }
    }
    let listed = find(&list, &id);
    assert_eq!(listed["name"], json!("ci-bot"));
    assert_eq!(
        listed["scopes"],
        json!(["ai:prompt:read", "ai:prompt:write"])
    );
    assert_eq!(listed["createdAt"], created["createdAt"]);
    assert_eq!(listed["disabled"], json!(false));
    assert!(listed["disabledAt"].is_null(), "{listed}");

    // Disable.
    let resp = server
        .post(&format!("{CLIENTS}/{id}/disable"), Some(&admin), &json!({}))
        .await;
    let disabled = resp.ok(200);
    assert_eq!(disabled["clientId"], json!(id));
    assert_eq!(disabled["disabled"], json!(true));
    assert!(!resp.text.contains(&secret));
    let list = server.get(CLIENTS, Some(&admin)).await.ok(200);
    let listed = find(&list, &id);
    assert_eq!(listed["disabled"], json!(true));
    assert!(
        is_rfc3339_utc(listed["disabledAt"].as_str().unwrap_or_default()),
        "{listed}"
    );
    server
        .get(PROMPTS, Some(&token))
        .await
        .error(401, "unauthorized");

    // Disabling again is harmless.
    let again = server
        .post(&format!("{CLIENTS}/{id}/disable"), Some(&admin), &json!({}))
        .await
        .ok(200);
    assert_eq!(again["disabled"], json!(true));
}

fn find<'a>(list: &'a Value, id: &str) -> &'a Value {
    list["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["clientId"] == json!(id))
        .unwrap_or_else(|| panic!("client {id} not listed: {list}"))
}

#[tokio::test]
async fn client_api_rejections() {
    let server = Server::start();
    let admin = server.admin_token().await;

    server
        .post(
            &format!("{CLIENTS}/{}/disable", uuid::Uuid::new_v4()),
            Some(&admin),
            &json!({}),
        )
        .await
        .error(404, "not.found");
    server
        .post(
            &format!("{CLIENTS}/not-a-client/disable"),
            Some(&admin),
            &json!({}),
        )
        .await
        .error(404, "not.found");

    let resp = server
        .post(
            CLIENTS,
            Some(&admin),
            &json!({"name": "x", "scopes": ["ai:prompt:read", "superuser"]}),
        )
        .await;
    let err = resp.error(400, "invalid.value");
    assert!(
        resp.field_names().iter().any(|f| f.starts_with("scopes")),
        "{resp}"
    );
    assert!(
        err.to_string().contains("superuser"),
        "the unknown scope is not named: {resp}"
    );
    let resp = server
        .post(
            CLIENTS,
            Some(&admin),
            &json!({"name": "x", "scopes": "admin"}),
        )
        .await;
    resp.error(400, "invalid.value");
    let resp = server
        .post(CLIENTS, Some(&admin), &json!({"scopes": ["admin"]}))
        .await;
    resp.error(400, "invalid.value");
    assert!(resp.field_names().contains("name"), "{resp}");

    let writer = server
        .scoped_token("ai:prompt:read ai:prompt:write ai:gateway:write")
        .await;
    for resp in [
        server.get(CLIENTS, Some(&writer)).await,
        server
            .post(
                CLIENTS,
                Some(&writer),
                &json!({"name": "x", "scopes": ["admin"]}),
            )
            .await,
        server
            .post(
                &format!("{CLIENTS}/{}/disable", server.admin_id),
                Some(&writer),
                &json!({}),
            )
            .await,
    ] {
        let err = resp.error(403, "missing.scope");
        assert!(
            param(&err, "requiredScopes").to_string().contains("admin"),
            "{resp}"
        );
    }
    // Only the admin client exists still.
    let list = server.get(CLIENTS, Some(&admin)).await.ok(200);
    assert_eq!(list["entities"].as_array().unwrap().len(), 1, "{list}");
}
