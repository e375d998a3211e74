//! PUT: new versions, traffic distribution, both at once, ETags; the version resources.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::harness::*;

fn version_list(page: &Value) -> Vec<String> {
    page["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| str_field(v, "version"))
        .collect()
}

fn version_set(prompt: &Value) -> BTreeSet<String> {
    prompt["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The weight the distribution gives `version`, 0 when it is not listed.
fn weight(prompt: &Value, version: &str) -> f64 {
    prompt["trafficDistribution"]["versions"]
        .as_array()
        .unwrap_or_else(|| panic!("no trafficDistribution.versions: {prompt}"))
        .iter()
        .find(|v| v["version"] == json!(version))
        .map_or(0.0, |v| v["weight"].as_f64().unwrap())
}

#[tokio::test]
async fn a_new_version_inherits_unset_fields_from_the_newest_and_gets_no_traffic() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, etag) = server
        .create_prompt(&token, &full_prompt_body("versioned"))
        .await;
    let id = str_field(&created, "id");

    let new_system = "You are a terse support agent. Answer in one sentence.";
    let resp = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"systemPrompt": new_system, "version": "1.1.0"}),
            Some(&etag),
        )
        .await;
    let updated = resp.ok(200);
    let new_etag = resp.etag();
    assert_ne!(new_etag, etag, "the ETag did not change with a new version");
    assert_eq!(
        updated["version"],
        json!("1.1.0"),
        "the answer shows the version just written"
    );
    assert_eq!(updated["systemPrompt"], json!(new_system));
    assert_eq!(updated["systemPromptTokens"], json!(o200k(new_system)));
    assert_eq!(
        updated["temperature"], created["temperature"],
        "temperature is inherited"
    );
    assert_eq!(updated["modelEndpointRef"], created["modelEndpointRef"]);
    assert_eq!(
        updated["safetyGuardrails"], created["safetyGuardrails"],
        "guardrails are inherited"
    );
    assert_eq!(version_set(&updated), set(&["1.0.0", "1.1.0"]));
    assert_eq!(
        updated["trafficDistribution"]["defaultVersion"],
        json!("1.0.0")
    );
    assert_eq!(
        weight(&updated, "1.1.0"),
        0.0,
        "a new version gets no traffic: {updated}"
    );
    assert_eq!(updated["id"], json!(id));
    assert_eq!(updated["createdAt"], created["createdAt"]);
    assert!(
        str_field(&updated, "updatedAt") >= str_field(&created, "updatedAt"),
        "{updated}"
    );

    // GET shows the default version's fields.
    let resp = server.get(&prompt_path(&id), Some(&token)).await;
    let got = resp.ok(200);
    assert_eq!(
        resp.etag(),
        new_etag,
        "GET and PUT disagree on the current ETag"
    );
    assert_eq!(got["version"], json!("1.0.0"));
    assert_eq!(got["systemPrompt"], created["systemPrompt"]);
    assert_eq!(version_set(&got), set(&["1.0.0", "1.1.0"]));

    // A third version inherits from the newest (1.1.0), not from the default.
    let resp = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"temperature": 0.9, "version": "1.2.0"}),
            None,
        )
        .await;
    let third = resp.ok(200);
    assert_eq!(third["systemPrompt"], json!(new_system), "{third}");
    assert_eq!(third["temperature"].as_f64(), Some(0.9));
}

#[tokio::test]
async fn version_resources_carry_their_fields_and_creator() {
    let server = Server::start();
    let admin = server.admin_token().await;
    let (writer_id, writer_secret) = server
        .create_client(&admin, "writer", &["ai:prompt:read", "ai:prompt:write"])
        .await;
    let writer = server.token(&writer_id, &writer_secret, None).await;

    let mut body = full_prompt_body("with-versions");
    body["fewShotExamples"] = json!([{"input": "Hi", "output": "Hello!"}]);
    let (created, _) = server.create_prompt(&admin, &body).await;
    let id = str_field(&created, "id");
    let haiku_system = "Answer like a haiku.";
    server
        .put(
            &prompt_path(&id),
            &writer,
            &json!({"systemPrompt": haiku_system, "modelEndpointRef": "anthropic/claude-3-haiku", "version": "2.0.0"}),
            None,
        )
        .await
        .ok(200);

    let v1 = server
        .get(&version_path(&id, "1.0.0"), Some(&admin))
        .await
        .ok(200);
    assert_eq!(v1["promptId"], json!(id));
    assert_eq!(v1["version"], json!("1.0.0"));
    assert_eq!(v1["modelEndpointRef"], json!("builtin/echo"));
    assert_eq!(v1["systemPrompt"], body["systemPrompt"]);
    assert_eq!(v1["temperature"].as_f64(), Some(0.2));
    assert_eq!(v1["safetyGuardrails"], created["safetyGuardrails"]);
    assert_eq!(
        v1["fewShotExamples"],
        json!([{"input": "Hi", "output": "Hello!"}])
    );
    assert_eq!(v1["systemPromptTokens"], created["systemPromptTokens"]);
    assert_eq!(v1["tokenizer"], json!("o200k_base"));
    assert!(is_rfc3339_utc(&str_field(&v1, "createdAt")), "{v1}");
    assert_eq!(v1["createdBy"], json!(server.admin_id), "{v1}");

    let v2 = server
        .get(&version_path(&id, "2.0.0"), Some(&writer))
        .await
        .ok(200);
    assert_eq!(v2["modelEndpointRef"], json!("anthropic/claude-3-haiku"));
    assert_eq!(v2["tokenizer"], json!("cl100k_base"));
    assert_eq!(v2["systemPromptTokens"], json!(cl100k(haiku_system)));
    assert_eq!(
        v2["createdBy"],
        json!(writer_id),
        "createdBy is the client that wrote it: {v2}"
    );
    assert_eq!(
        v2["fewShotExamples"], v1["fewShotExamples"],
        "few-shot examples are inherited"
    );

    // The list's entities are the same resources.
    let list = server.get(&versions_path(&id), Some(&admin)).await.ok(200);
    assert_eq!(list["entities"], json!([v2, v1]));

    server
        .get(&version_path(&id, "3.0.0"), Some(&admin))
        .await
        .error(404, "not.found");
    server
        .get(&version_path(&id, "not-semver"), Some(&admin))
        .await
        .error(404, "not.found");
}

#[tokio::test]
async fn versions_are_listed_newest_first_by_semver_and_paginated() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server.create_prompt(&token, &prompt_body("ordering")).await;
    let id = str_field(&created, "id");
    for (i, v) in ["1.10.0", "1.2.0", "1.1.0-beta.1", "1.1.0-alpha", "0.9.0"]
        .iter()
        .enumerate()
    {
        let body = json!({"systemPrompt": format!("Variant {i}."), "version": v});
        server
            .put(&prompt_path(&id), &token, &body, None)
            .await
            .ok(200);
    }
    let expected = [
        "1.10.0",
        "1.2.0",
        "1.1.0-beta.1",
        "1.1.0-alpha",
        "1.0.0",
        "0.9.0",
    ];
    let list = server.get(&versions_path(&id), Some(&token)).await.ok(200);
    assert_eq!(version_list(&list), expected, "{list}");
    assert_eq!(list["nextPageCursor"], Value::Null);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut query = vec![("pageSize", "4".to_owned())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = server
            .get_query(&versions_path(&id), &token, &query)
            .await
            .ok(200);
        assert_eq!(page["pageSize"], json!(4));
        seen.extend(version_list(&page));
        match &page["nextPageCursor"] {
            Value::String(c) => cursor = Some(c.clone()),
            _ => break,
        }
    }
    assert_eq!(seen, expected, "paging changed the order or lost a version");

    let resp = server
        .get_query(&versions_path(&id), &token, &[("pageSize", "0")])
        .await;
    resp.error(400, "invalid.value");
    assert!(resp.field_names().contains("pageSize"), "{resp}");
    let resp = server
        .get_query(&versions_path(&id), &token, &[("cursor", "garbage")])
        .await;
    resp.error(400, "invalid.value");
    assert!(resp.field_names().contains("cursor"), "{resp}");
}

#[tokio::test]
async fn resending_a_version_is_idempotent_and_different_content_is_409() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server
        .create_prompt(&token, &full_prompt_body("idempotent"))
        .await;
    let id = str_field(&created, "id");
    let body = json!({"systemPrompt": "Version two.", "temperature": 0.4, "version": "2.0.0"});
    let resp = server.put(&prompt_path(&id), &token, &body, None).await;
    resp.ok(200);
    let etag = resp.etag();

    let resp = server.put(&prompt_path(&id), &token, &body, None).await;
    let again = resp.ok(200);
    assert_eq!(version_set(&again), set(&["1.0.0", "2.0.0"]));
    assert_eq!(resp.etag(), etag, "a no-op changed the ETag");
    // The original version, re-sent as it was.
    let resp = server
        .put(&prompt_path(&id), &token, &json!({"systemPrompt": created["systemPrompt"], "temperature": 0.2, "version": "1.0.0"}), None)
        .await;
    resp.ok(200);

    let resp = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"systemPrompt": "Something else.", "version": "2.0.0"}),
            None,
        )
        .await;
    resp.error(409, "conflict");
    let resp = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"temperature": 1.5, "version": "1.0.0"}),
            None,
        )
        .await;
    resp.error(409, "conflict");

    let v2 = server
        .get(&version_path(&id, "2.0.0"), Some(&token))
        .await
        .ok(200);
    assert_eq!(v2["systemPrompt"], json!("Version two."));
    let list = server.get(&versions_path(&id), Some(&token)).await.ok(200);
    assert_eq!(version_list(&list), ["2.0.0", "1.0.0"]);
}

#[tokio::test]
async fn new_versions_pass_the_same_checks_as_create() {
    let server = Server::start();
    let token = server.admin_token().await;
    let system = "Short.";
    let mut body = prompt_body("checked");
    body["systemPrompt"] = json!(system);
    body["safetyGuardrails"] = json!({"maxTokens": 10});
    let (created, _) = server.create_prompt(&token, &body).await;
    let id = str_field(&created, "id");

    // The inherited budget of 10 tokens applies to the new system prompt.
    let long = "This system prompt is certainly longer than ten tokens, by quite a margin indeed.";
    let n = o200k(long);
    assert!(n > 10);
    let resp = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"systemPrompt": long, "version": "1.1.0"}),
            None,
        )
        .await;
    let err = resp.error(400, "token.budget.exceeded");
    assert_eq!(param(&err, "estimated"), json!(n.to_string()), "{resp}");
    assert_eq!(param(&err, "limit"), json!("10"), "{resp}");

    // With a budget raised to exactly the count in the same request it passes.
    let resp = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"systemPrompt": long, "safetyGuardrails": {"maxTokens": n}, "version": "1.1.0"}),
            None,
        )
        .await;
    assert_eq!(resp.ok(200)["systemPromptTokens"], json!(n));

    let resp = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"modelEndpointRef": "nope/none", "temperature": 3, "version": "1.2.0"}),
            None,
        )
        .await;
    resp.error(400, "invalid.value");
    assert_eq!(
        resp.field_names(),
        set(&["modelEndpointRef", "temperature"]),
        "{resp}"
    );

    let resp = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"systemPrompt": "x", "version": "1.2"}),
            None,
        )
        .await;
    resp.error(400, "invalid.value");
    assert!(resp.field_names().contains("version"), "{resp}");

    let list = server.get(&versions_path(&id), Some(&token)).await.ok(200);
    assert_eq!(version_list(&list), ["1.1.0", "1.0.0"]);
}

#[tokio::test]
async fn traffic_split_merges_and_normalises() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server.create_prompt(&token, &prompt_body("traffic")).await;
    let id = str_field(&created, "id");
    let path = prompt_path(&id);
    server
        .put(
            &path,
            &token,
            &json!({"systemPrompt": "Two.", "version": "1.1.0"}),
            None,
        )
        .await
        .ok(200);

    let split = json!({"trafficDistribution": {"versions": [
        {"version": "1.0.0", "weight": 0.9}, {"version": "1.1.0", "weight": 0.1}]}});
    let resp = server.put(&path, &token, &split, None).await;
    let body = resp.ok(200);
    assert!((weight(&body, "1.0.0") - 0.9).abs() < 1e-9, "{body}");
    assert!((weight(&body, "1.1.0") - 0.1).abs() < 1e-9, "{body}");
    assert_eq!(
        body["trafficDistribution"]["defaultVersion"],
        json!("1.0.0"),
        "kept: {body}"
    );
    assert_eq!(
        body["trafficDistribution"]["splitStrategy"],
        json!("sticky"),
        "default: {body}"
    );
    assert_eq!(
        version_set(&body),
        set(&["1.0.0", "1.1.0"]),
        "traffic alone creates no version"
    );

    // Only the strategy: the weights stay.
    let body = server
        .put(
            &path,
            &token,
            &json!({"trafficDistribution": {"splitStrategy": "random"}}),
            None,
        )
        .await
        .ok(200);
    assert_eq!(
        body["trafficDistribution"]["splitStrategy"],
        json!("random")
    );
    assert!((weight(&body, "1.0.0") - 0.9).abs() < 1e-9, "{body}");
    assert!((weight(&body, "1.1.0") - 0.1).abs() < 1e-9, "{body}");

    // Only the default version: GET now shows its fields.
    let body = server
        .put(
            &path,
            &token,
            &json!({"trafficDistribution": {"defaultVersion": "1.1.0"}}),
            None,
        )
        .await
        .ok(200);
    assert_eq!(
        body["trafficDistribution"]["defaultVersion"],
        json!("1.1.0")
    );
    assert_eq!(
        body["trafficDistribution"]["splitStrategy"],
        json!("random")
    );
    let got = server.get(&path, Some(&token)).await.ok(200);
    assert_eq!(got["version"], json!("1.1.0"));
    assert_eq!(got["systemPrompt"], json!("Two."));

    // Weights within 0.01 of 1 are normalised.
    let body = server
        .put(
            &path,
            &token,
            &json!({"trafficDistribution": {"versions": [
                {"version": "1.0.0", "weight": 0.5}, {"version": "1.1.0", "weight": 0.505}]}}),
            None,
        )
        .await
        .ok(200);
    let (a, b) = (weight(&body, "1.0.0"), weight(&body, "1.1.0"));
    assert!((a + b - 1.0).abs() < 1e-9, "not normalised: {body}");
    assert!(
        (a - 0.5 / 1.005).abs() < 1e-6 && (b - 0.505 / 1.005).abs() < 1e-6,
        "{body}"
    );

    // An empty list sends everything to the default version.
    let body = server
        .put(
            &path,
            &token,
            &json!({"trafficDistribution": {"versions": []}}),
            None,
        )
        .await
        .ok(200);
    assert_eq!(body["trafficDistribution"]["versions"], json!([]), "{body}");
    assert_eq!(
        body["trafficDistribution"]["defaultVersion"],
        json!("1.1.0")
    );

    // The stored state is what GET shows.
    let got = server.get(&path, Some(&token)).await.ok(200);
    assert_eq!(got["trafficDistribution"], body["trafficDistribution"]);
}

#[tokio::test]
async fn invalid_traffic_is_400_naming_the_fields() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server
        .create_prompt(&token, &prompt_body("bad-traffic"))
        .await;
    let id = str_field(&created, "id");
    let path = prompt_path(&id);
    server
        .put(
            &path,
            &token,
            &json!({"systemPrompt": "Two.", "version": "1.1.0"}),
            None,
        )
        .await
        .ok(200);
    let before = server.get(&path, Some(&token)).await;
    let before_etag = before.etag();
    let before = before.ok(200);

    let v = |pairs: &[(&str, f64)]| -> Value {
        json!({"trafficDistribution": {"versions": pairs.iter().map(|(v, w)| json!({"version": v, "weight": w})).collect::<Vec<_>>()}})
    };
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            v(&[("1.0.0", 1.5), ("1.1.0", -0.5)]),
            vec![
                "trafficDistribution.versions[0].weight",
                "trafficDistribution.versions[1].weight",
            ],
        ),
        (
            v(&[("1.0.0", 0.5), ("9.9.9", 0.5)]),
            vec!["trafficDistribution.versions[1].version"],
        ),
        (
            json!({"trafficDistribution": {"defaultVersion": "4.0.0"}}),
            vec!["trafficDistribution.defaultVersion"],
        ),
        (
            json!({"trafficDistribution": {"splitStrategy": "round-robin"}}),
            vec!["trafficDistribution.splitStrategy"],
        ),
    ];
    for (body, fields) in cases {
        let resp = server.put(&path, &token, &body, None).await;
        resp.error(400, "invalid.value");
        let named = resp.field_names();
        for field in fields {
            assert!(named.contains(field), "{field} not named: {resp}");
        }
    }
    // Weights that do not sum to 1 within 0.01.
    for pairs in [
        &[("1.0.0", 0.5), ("1.1.0", 0.3)][..],
        &[("1.0.0", 0.6), ("1.1.0", 0.42)][..],
    ] {
        let resp = server.put(&path, &token, &v(pairs), None).await;
        resp.error(400, "invalid.value");
        assert!(
            resp.field_names()
                .iter()
                .any(|f| f.starts_with("trafficDistribution")),
            "the sum problem names no trafficDistribution field: {resp}"
        );
    }
    let resp = server.get(&path, Some(&token)).await;
    assert_eq!(resp.etag(), before_etag, "a rejected PUT changed the ETag");
    assert_eq!(resp.ok(200), before, "a rejected PUT changed the prompt");
}

#[tokio::test]
async fn version_and_traffic_in_one_put_are_atomic() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server.create_prompt(&token, &prompt_body("atomic")).await;
    let id = str_field(&created, "id");
    let path = prompt_path(&id);

    // The traffic part is invalid: the version is not created either.
    let body = json!({
        "systemPrompt": "Version two.", "version": "2.0.0",
        "trafficDistribution": {"versions": [{"version": "1.0.0", "weight": 0.5}, {"version": "2.0.0", "weight": 0.6}]}
    });
    server
        .put(&path, &token, &body, None)
        .await
        .error(400, "invalid.value");
    let body = json!({
        "systemPrompt": "Version two.", "version": "2.0.0",
        "trafficDistribution": {"versions": [{"version": "1.0.0", "weight": 0.5}, {"version": "7.0.0", "weight": 0.5}]}
    });
    server
        .put(&path, &token, &body, None)
        .await
        .error(400, "invalid.value");
    let list = server.get(&versions_path(&id), Some(&token)).await.ok(200);
    assert_eq!(
        version_list(&list),
        ["1.0.0"],
        "a version was created by a rejected request"
    );
    server
        .get(&version_path(&id, "2.0.0"), Some(&token))
        .await
        .error(404, "not.found");

    // The version part is invalid: the traffic does not change either.
    let body = json!({
        "systemPrompt": "Version two.", "temperature": 9, "version": "2.0.0",
        "trafficDistribution": {"splitStrategy": "random"}
    });
    server
        .put(&path, &token, &body, None)
        .await
        .error(400, "invalid.value");
    let got = server.get(&path, Some(&token)).await.ok(200);
    assert_eq!(got["trafficDistribution"]["splitStrategy"], json!("sticky"));

    // Both valid: the split may name the version created by the same request.
    let body = json!({
        "systemPrompt": "Version two.", "version": "2.0.0",
        "trafficDistribution": {"versions": [{"version": "1.0.0", "weight": 0.9}, {"version": "2.0.0", "weight": 0.1}]}
    });
    let updated = server.put(&path, &token, &body, None).await.ok(200);
    assert_eq!(updated["version"], json!("2.0.0"));
    assert!((weight(&updated, "2.0.0") - 0.1).abs() < 1e-9, "{updated}");
    assert_eq!(version_set(&updated), set(&["1.0.0", "2.0.0"]));
}

#[tokio::test]
async fn if_match_makes_a_put_conditional() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, etag0) = server
        .create_prompt(&token, &prompt_body("conditional"))
        .await;
    let id = str_field(&created, "id");
    let path = prompt_path(&id);

    let resp = server
        .put(
            &path,
            &token,
            &json!({"systemPrompt": "One.", "version": "1.1.0"}),
            Some(&etag0),
        )
        .await;
    resp.ok(200);
    let etag1 = resp.etag();
    assert_ne!(etag0, etag1);

    // Stale.
    let resp = server
        .put(
            &path,
            &token,
            &json!({"systemPrompt": "Two.", "version": "1.2.0"}),
            Some(&etag0),
        )
        .await;
    resp.error(412, "precondition.failed");
    let resp = server
        .put(
            &path,
            &token,
            &json!({"trafficDistribution": {"splitStrategy": "random"}}),
            Some(&etag0),
        )
        .await;
    resp.error(412, "precondition.failed");
    let resp = server
        .put(
            &path,
            &token,
            &json!({"systemPrompt": "Two.", "version": "1.2.0"}),
            Some("\"made-up\""),
        )
        .await;
    resp.error(412, "precondition.failed");
    let got = server.get(&path, Some(&token)).await.ok(200);
    assert_eq!(version_set(&got), set(&["1.0.0", "1.1.0"]));
    assert_eq!(got["trafficDistribution"]["splitStrategy"], json!("sticky"));

    // Current, traffic only: the ETag changes with the traffic too.
    let resp = server
        .put(
            &path,
            &token,
            &json!({"trafficDistribution": {"splitStrategy": "random"}}),
            Some(&etag1),
        )
        .await;
    resp.ok(200);
    let etag2 = resp.etag();
    assert_ne!(etag1, etag2, "a traffic change did not change the ETag");

    // `*` always matches; no If-Match is unconditional.
    let resp = server
        .put(
            &path,
            &token,
            &json!({"systemPrompt": "Three.", "version": "1.3.0"}),
            Some("*"),
        )
        .await;
    resp.ok(200);
    let etag3 = resp.etag();
    assert_ne!(etag2, etag3);
    let resp = server
        .put(
            &path,
            &token,
            &json!({"systemPrompt": "Four.", "version": "1.4.0"}),
            None,
        )
        .await;
    resp.ok(200);
    assert_ne!(resp.etag(), etag3);

    // Archiving is a change too.
    let resp = server.get(&path, Some(&token)).await;
    let before_delete = resp.etag();
    server.delete(&path, Some(&token)).await.ok(200);
    let resp = server.get(&path, Some(&token)).await;
    assert_ne!(
        resp.etag(),
        before_delete,
        "archiving did not change the ETag"
    );
}
