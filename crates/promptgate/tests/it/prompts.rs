//! Prompts: create, read, list, archive.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test]
async fn create_answers_the_full_prompt_with_an_etag() {
    let server = Server::start();
    let token = server.admin_token().await;
    let body = full_prompt_body("support_agent");
    let resp = server.post(PROMPTS, Some(&token), &body).await;
    let created = resp.ok(201);
    resp.etag();

    let id = str_field(&created, "id");
    assert!(is_uuid(&id), "id is not a UUID: {id}");
    assert_eq!(created["name"], json!("support_agent"));
    assert_eq!(created["status"], json!("ACTIVE"));
    assert_eq!(created["version"], json!("1.0.0"));
    assert_eq!(created["modelEndpointRef"], json!("builtin/echo"));
    assert_eq!(created["systemPrompt"], body["systemPrompt"]);
    assert_eq!(created["temperature"].as_f64(), Some(0.2));
    let guardrails = &created["safetyGuardrails"];
    assert_eq!(guardrails["contentFiltering"], json!(["pii", "profanity"]));
    assert_eq!(guardrails["maxTokens"], json!(1500));
    assert_eq!(
        guardrails["blockedCategories"],
        json!(["violence", "hate_speech", "self_harm"])
    );
    assert_eq!(
        created["systemPromptTokens"],
        json!(o200k("You are a helpful customer support agent."))
    );
    let traffic = &created["trafficDistribution"];
    assert_eq!(traffic["defaultVersion"], json!("1.0.0"), "{created}");
    assert_eq!(traffic["splitStrategy"], json!("sticky"), "{created}");
    assert!(traffic["versions"].is_array(), "{created}");
    assert_eq!(created["versions"], json!(["1.0.0"]));
    for field in ["createdAt", "updatedAt"] {
        let t = str_field(&created, field);
        assert!(is_rfc3339_utc(&t), "{field} is not RFC 3339 UTC: {t}");
    }

    // GET answers the same resource.
    let resp = server.get(&prompt_path(&id), Some(&token)).await;
    let got = resp.ok(200);
    resp.etag();
    assert_eq!(got, created, "GET differs from the POST answer");
}

#[tokio::test]
async fn the_readme_example_on_an_anthropic_endpoint_is_accepted_without_its_key() {
    let server = Server::start();
    let token = server.admin_token().await;
    let mut body = full_prompt_body("support_agent");
    body["modelEndpointRef"] = json!("anthropic/claude-3-sonnet");
    let (created, _) = server.create_prompt(&token, &body).await;
    assert_eq!(
        created["modelEndpointRef"],
        json!("anthropic/claude-3-sonnet")
    );
    assert_eq!(
        created["systemPromptTokens"],
        json!(cl100k("You are a helpful customer support agent."))
    );
}

#[tokio::test]
async fn a_second_prompt_with_the_same_name_is_409() {
    let server = Server::start();
    let token = server.admin_token().await;
    server.create_prompt(&token, &prompt_body("dup")).await;
    let mut body = full_prompt_body("dup");
    body["systemPrompt"] = json!("Entirely different.");
    server
        .post(PROMPTS, Some(&token), &body)
        .await
        .error(409, "conflict");
    let list = server
        .get_query(PROMPTS, &token, &[("name", "dup")])
        .await
        .ok(200);
    assert_eq!(list["entities"].as_array().unwrap().len(), 1, "{list}");
    // Names are exact: a different name is fine.
    server.create_prompt(&token, &prompt_body("dup2")).await;
}

fn ids(list: &Value) -> Vec<String> {
    list["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| str_field(p, "id"))
        .collect()
}

fn names_of(list: &Value) -> BTreeSet<String> {
    list["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| str_field(p, "name"))
        .collect()
}

#[tokio::test]
async fn list_filters_by_name_and_status() {
    let server = Server::start();
    let token = server.admin_token().await;
    for name in ["support_agent", "support_bot", "sales_agent", "supportive"] {
        server.create_prompt(&token, &prompt_body(name)).await;
    }
    let (archived, _) = server
        .create_prompt(&token, &prompt_body("support_old"))
        .await;
    server
        .delete(&prompt_path(&str_field(&archived, "id")), Some(&token))
        .await
        .ok(200);

    let all = server.get(PROMPTS, Some(&token)).await.ok(200);
    assert_eq!(
        all["entities"].as_array().unwrap().len(),
        5,
        "the list holds every status: {all}"
    );
    assert_eq!(all["pageSize"], json!(25), "{all}");
    assert_eq!(all["nextPageCursor"], Value::Null, "{all}");

    // The entities are the full prompt resources.
    let agent = all["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == json!("support_agent"))
        .unwrap();
    let got = server
        .get(&prompt_path(&str_field(agent, "id")), Some(&token))
        .await
        .ok(200);
    assert_eq!(*agent, got, "a list entity differs from GET");

    let set = |list: &[&str]| {
        list.iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>()
    };
    let exact = server
        .get_query(PROMPTS, &token, &[("name", "support_agent")])
        .await
        .ok(200);
    assert_eq!(names_of(&exact), set(&["support_agent"]));
    let exact = server
        .get_query(PROMPTS, &token, &[("name", "support")])
        .await
        .ok(200);
    assert_eq!(
        names_of(&exact),
        set(&[]),
        "name is an exact match, not a prefix"
    );
    let wildcard = server
        .get_query(PROMPTS, &token, &[("name", "support*")])
        .await
        .ok(200);
    assert_eq!(
        names_of(&wildcard),
        set(&["support_agent", "support_bot", "supportive", "support_old"])
    );
    let wildcard = server
        .get_query(PROMPTS, &token, &[("name", "*_agent")])
        .await
        .ok(200);
    assert_eq!(names_of(&wildcard), set(&["support_agent", "sales_agent"]));

    let active = server
        .get_query(PROMPTS, &token, &[("status", "ACTIVE")])
        .await
        .ok(200);
    assert_eq!(
        names_of(&active),
        set(&["support_agent", "support_bot", "sales_agent", "supportive"])
    );
    let archived = server
        .get_query(PROMPTS, &token, &[("status", "ARCHIVED")])
        .await
        .ok(200);
    assert_eq!(names_of(&archived), set(&["support_old"]));
    for entity in archived["entities"].as_array().unwrap() {
        assert_eq!(entity["status"], json!("ARCHIVED"));
    }
    let both = server
        .get_query(
            PROMPTS,
            &token,
            &[("status", "ARCHIVED"), ("name", "support*")],
        )
        .await
        .ok(200);
    assert_eq!(names_of(&both), set(&["support_old"]));

    let resp = server
        .get_query(PROMPTS, &token, &[("status", "DELETED")])
        .await;
    resp.error(400, "invalid.value");
    assert!(resp.field_names().contains("status"), "{resp}");
}

#[tokio::test]
async fn list_pages_with_cursors() {
    let server = Server::start();
    let token = server.admin_token().await;
    let mut created = BTreeSet::new();
    for i in 0..5 {
        let (p, _) = server
            .create_prompt(&token, &prompt_body(&format!("paged-{i}")))
            .await;
        created.insert(str_field(&p, "id"));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![("pageSize", "2".to_owned())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = server.get_query(PROMPTS, &token, &query).await.ok(200);
        assert_eq!(page["pageSize"], json!(2), "{page}");
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 2, "{page}");
        seen.extend(page_ids);
        pages += 1;
        assert!(pages <= 5, "the cursor never ends");
        match &page["nextPageCursor"] {
            Value::Null => break,
            Value::String(c) => cursor = Some(c.clone()),
            other => panic!("nextPageCursor is neither a string nor null: {other}"),
        }
    }
    assert_eq!(pages, 3, "5 prompts in pages of 2");
    assert_eq!(seen.len(), 5, "an entity was repeated or skipped: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), created);

    let page = server
        .get_query(PROMPTS, &token, &[("pageSize", "500")])
        .await
        .ok(200);
    assert_eq!(ids(&page).len(), 5);
    let page = server
        .get_query(PROMPTS, &token, &[("pageSize", "1")])
        .await
        .ok(200);
    assert_eq!(ids(&page).len(), 1);
    assert!(page["nextPageCursor"].is_string());
}

#[tokio::test]
async fn bad_page_sizes_and_cursors_are_400() {
    let server = Server::start();
    let token = server.admin_token().await;
    server.create_prompt(&token, &prompt_body("one")).await;
    for size in ["0", "501", "-1", "abc"] {
        let resp = server
            .get_query(PROMPTS, &token, &[("pageSize", size)])
            .await;
        resp.error(400, "invalid.value");
        assert!(resp.field_names().contains("pageSize"), "{resp}");
    }
    for cursor in ["garbage", "!!!", "eyJmb28iOiJiYXIifQ"] {
        let resp = server
            .get_query(PROMPTS, &token, &[("cursor", cursor)])
            .await;
        resp.error(400, "invalid.value");
        assert!(resp.field_names().contains("cursor"), "{resp}");
    }
}

#[tokio::test]
async fn delete_archives_and_is_idempotent() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server
        .create_prompt(&token, &full_prompt_body("to-archive"))
        .await;
    let id = str_field(&created, "id");

    let first = server.delete(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(first["status"], json!("ARCHIVED"), "{first}");
    assert_eq!(first["id"], json!(id));
    let second = server.delete(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(second["status"], json!("ARCHIVED"), "{second}");

    let got = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(got["status"], json!("ARCHIVED"));
    assert_eq!(got["systemPrompt"], created["systemPrompt"]);
    // Its versions are kept.
    let versions = server.get(&versions_path(&id), Some(&token)).await.ok(200);
    assert_eq!(versions["entities"].as_array().unwrap().len(), 1);
    server
        .get(&version_path(&id, "1.0.0"), Some(&token))
        .await
        .ok(200);

    // An archived prompt takes no changes.
    let resp = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"systemPrompt": "new", "version": "1.1.0"}),
            None,
        )
        .await;
    resp.error(409, "conflict");
    let resp = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"trafficDistribution": {"splitStrategy": "random"}}),
            None,
        )
        .await;
    resp.error(409, "conflict");
    let got = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(got["versions"], json!(["1.0.0"]));
    assert_eq!(got["trafficDistribution"]["splitStrategy"], json!("sticky"));
}
