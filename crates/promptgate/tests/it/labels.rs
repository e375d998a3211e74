//! Labels through the real binary (shared/API.md, "Labels"): `PUT`/`DELETE …/labels/{label}`
//! moving, creating and deleting named pins, each audited (`LABEL_MOVED`, `LABEL_DELETED`) with
//! the old and the new version; `If-Match`, names, versions, the limit of 20 and archived
//! prompts; invocations served by a label independently of the traffic split; the OpenAI front
//! door's `prompt:NAME@LABEL` with the `prompt_variables` body extension (the recording fake
//! upstream proves what was rendered); and telemetry filtered by label.

use reqwest::Method;
use serde_json::{Value, json};

use crate::audit::{AUDIT, all_entries, apply_patch, assert_chain, verify};
use crate::fake_upstream::*;
use crate::harness::*;

const TELEMETRY: &str = "/api/v2/ai/llm/gateway/telemetry";
const SUMMARY: &str = "/api/v2/ai/llm/gateway/telemetry/summary";
const CHAT: &str = "/v1/chat/completions";
const SYSTEM_A: &str = "You are a helpful customer support agent.";
const SYSTEM_B: &str =
    "You are a concise, friendly and very patient customer support agent for parcels.";

fn label_path(id: &str, label: &str) -> String {
    format!("{PROMPTS}/{id}/labels/{label}")
}

/// `…/invocations` of prompt `id` with `user_input` and the fields of `more`.
async fn invoke_with(
    server: &Server,
    token: &str,
    id: &str,
    user_input: &str,
    more: Value,
) -> Resp {
    let mut body = json!({"promptId": id, "userInput": user_input});
    if let Value::Object(extra) = more {
        for (k, v) in extra {
            body[k] = v;
        }
    }
    server
        .post(&format!("{GW}/invocations"), Some(token), &body)
        .await
}

/// A prompt on `builtin/echo` with 1.0.0 (`SYSTEM_A`, all the traffic) and 1.1.0 (`SYSTEM_B`).
async fn two_versions(server: &Server, token: &str, name: &str) -> String {
    let mut body = prompt_body(name);
    body["systemPrompt"] = json!(SYSTEM_A);
    let (created, _) = server.create_prompt(token, &body).await;
    let id = str_field(&created, "id");
    server
        .put(
            &prompt_path(&id),
            token,
            &json!({"systemPrompt": SYSTEM_B, "version": "1.1.0"}),
            None,
        )
        .await
        .ok(200);
    id
}

/// `PUT …/labels/{label}` with `{"version": version}`.
async fn put_label(
    server: &Server,
    token: &str,
    id: &str,
    label: &str,
    version: &str,
    if_match: Option<&str>,
) -> Resp {
    server
        .put(
            &label_path(id, label),
            token,
            &json!({"version": version}),
            if_match,
        )
        .await
}

/// `DELETE …/labels/{label}`, optionally with `If-Match`.
async fn delete_label(
    server: &Server,
    token: &str,
    id: &str,
    label: &str,
    if_match: Option<&str>,
) -> Resp {
    let mut builder = server
        .request(Method::DELETE, &label_path(id, label))
        .bearer_auth(token);
    if let Some(etag) = if_match {
        builder = builder.header("If-Match", etag);
    }
    server.send(builder).await
}

/// The audit entries of `action` on prompt `id`, oldest first.
async fn entries_of(server: &Server, token: &str, id: &str, action: &str) -> Vec<Value> {
    let page = server
        .get_query(
            AUDIT,
            token,
            &[("promptId", id), ("action", action), ("pageSize", "500")],
        )
        .await
        .ok(200);
    let mut entries = page["entities"].as_array().unwrap().clone();
    entries.sort_by_key(|e| e["sequence"].as_u64());
    entries
}

/// Asserts the field names of a 400 `invalid.value`.
#[track_caller]
fn invalid_field(resp: &Resp, field: &str) -> Value {
    let err = resp.error(400, "invalid.value");
    assert_eq!(
        resp.field_names(),
        [field.to_owned()].into_iter().collect(),
        "{resp}"
    );
    err
}

/// The version answer and header agree; answers the version.
#[track_caller]
fn served_version(body: &Value, resp: &Resp) -> String {
    let version = str_field(body, "version");
    assert_eq!(
        resp.header("x-prompt-version"),
        Some(version.clone()),
        "the header and the answer disagree: {resp}"
    );
    version
}

#[tokio::test]
async fn a_label_is_created_moved_and_deleted_and_each_change_is_audited() {
    let server = Server::start();
    let token = server.admin_token().await;
    let id = two_versions(&server, &token, "labelled").await;
    let before = server.get(&prompt_path(&id), Some(&token)).await;
    let etag0 = before.etag();
    assert_eq!(before.ok(200)["labels"], json!({}));

    // Created.
    let resp = put_label(&server, &token, &id, "production", "1.0.0", None).await;
    let prompt = resp.ok(200);
    assert_eq!(prompt["labels"], json!({"production": "1.0.0"}), "{prompt}");
    assert_eq!(prompt["id"], json!(id));
    assert_eq!(prompt["versions"], json!(["1.0.0", "1.1.0"]));
    let etag1 = resp.etag();
    assert_ne!(etag1, etag0, "a label change is a change of the prompt");

    // Where it points already: nothing changes, nothing is audited.
    let resp = put_label(&server, &token, &id, "production", "1.0.0", None).await;
    assert_eq!(resp.ok(200)["labels"], json!({"production": "1.0.0"}));
    assert_eq!(resp.etag(), etag1, "a no-op keeps the ETag");

    // Moved.
    let resp = put_label(&server, &token, &id, "production", "1.1.0", None).await;
    assert_eq!(resp.ok(200)["labels"], json!({"production": "1.1.0"}));
    let etag2 = resp.etag();
    assert_ne!(etag2, etag1);
    let got = server.get(&prompt_path(&id), Some(&token)).await;
    assert_eq!(got.etag(), etag2);
    let got = got.ok(200);
    assert_eq!(got["labels"], json!({"production": "1.1.0"}), "{got}");
    // The label does not touch the traffic split or the shown version.
    assert_eq!(got["version"], "1.0.0", "{got}");
    assert_eq!(got["trafficDistribution"]["defaultVersion"], "1.0.0");
    // A new version and a traffic change leave the labels as they are.
    let resp = server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"systemPrompt": "Be brief.", "version": "1.2.0",
                    "trafficDistribution": {"defaultVersion": "1.2.0", "versions": []}}),
            None,
        )
        .await;
    assert_eq!(
        resp.ok(200)["labels"],
        json!({"production": "1.1.0"}),
        "{resp}"
    );
    let etag2 = resp.etag();

    let moved = entries_of(&server, &token, &id, "LABEL_MOVED").await;
    assert_eq!(moved.len(), 2, "{moved:#?}");
    for (entry, from, to) in [
        (&moved[0], Value::Null, json!("1.0.0")),
        (&moved[1], json!("1.0.0"), json!("1.1.0")),
    ] {
        let details = &entry["details"];
        assert_eq!(details["label"], "production", "{entry}");
        assert_eq!(details["fromVersion"], from, "{entry}");
        assert_eq!(details["toVersion"], to, "{entry}");
        assert_eq!(entry["actor"], json!(server.admin_id), "{entry}");
        assert_eq!(entry["promptId"], json!(id), "{entry}");
        assert_eq!(
            apply_patch(&details["before"], &details["diff"]),
            details["after"],
            "the diff turns before into after: {entry}"
        );
    }
    assert_eq!(moved[0]["details"]["before"], Value::Null);
    assert_eq!(
        moved[1]["details"]["after"],
        json!({"label": "production", "version": "1.1.0"})
    );

    // Deleted, with If-Match.
    let resp = delete_label(&server, &token, &id, "production", Some(&etag2)).await;
    assert_eq!(resp.ok(200)["labels"], json!({}), "{resp}");
    let etag3 = resp.etag();
    assert_ne!(etag3, etag2);
    let deleted = entries_of(&server, &token, &id, "LABEL_DELETED").await;
    assert_eq!(deleted.len(), 1, "{deleted:#?}");
    let details = &deleted[0]["details"];
    assert_eq!(details["label"], "production", "{details}");
    assert_eq!(details["fromVersion"], "1.1.0", "{details}");
    assert_eq!(details["toVersion"], Value::Null, "{details}");
    assert_eq!(
        details["before"],
        json!({"label": "production", "version": "1.1.0"})
    );

    // Deleting it again: 404 label.not.found, nothing written.
    let err = delete_label(&server, &token, &id, "production", None)
        .await
        .error(404, "label.not.found");
    assert!(
        err["message"].as_str().unwrap().contains("production"),
        "{err}"
    );
    assert_eq!(
        entries_of(&server, &token, &id, "LABEL_DELETED")
            .await
            .len(),
        1
    );

    // The chain holds, and the label entries are in it.
    let report = verify(&server, &token).await;
    assert_eq!(report["valid"], true, "{report}");
    assert_chain(&all_entries(&server, &token).await);
}

#[tokio::test]
async fn label_changes_honour_if_match_and_refuse_bad_names_versions_the_21st_and_archived() {
    let server = Server::start();
    let token = server.admin_token().await;
    let id = two_versions(&server, &token, "checked").await;
    let etag0 = server.get(&prompt_path(&id), Some(&token)).await.etag();

    // If-Match: the current ETag passes, a stale one is 412 and changes nothing.
    let resp = put_label(&server, &token, &id, "staging", "1.0.0", Some(&etag0)).await;
    resp.ok(200);
    let etag1 = resp.etag();
    put_label(&server, &token, &id, "staging", "1.1.0", Some(&etag0))
        .await
        .error(412, "precondition.failed");
    put_label(&server, &token, &id, "canary", "1.1.0", Some(&etag0))
        .await
        .error(412, "precondition.failed");
    delete_label(&server, &token, &id, "staging", Some(&etag0))
        .await
        .error(412, "precondition.failed");
    let now = server.get(&prompt_path(&id), Some(&token)).await;
    assert_eq!(now.etag(), etag1);
    assert_eq!(now.ok(200)["labels"], json!({"staging": "1.0.0"}));

    // Names: `[a-z][a-z0-9-]{0,62}`.
    let too_long = format!("a{}", "b".repeat(63));
    for bad in ["Production", "1st", "-x", "pro_d", too_long.as_str()] {
        let resp = put_label(&server, &token, &id, bad, "1.0.0", None).await;
        invalid_field(&resp, "label");
    }
    // A name no label can have names no label the prompt has: deleting it is a 404.
    delete_label(&server, &token, &id, "Staging", None)
        .await
        .error(404, "label.not.found");
    // Versions: unknown, malformed, missing.
    let err = invalid_field(
        &put_label(&server, &token, &id, "staging", "9.9.9", None).await,
        "version",
    );
    assert!(err["message"].as_str().unwrap().contains("9.9.9"), "{err}");
    invalid_field(
        &put_label(&server, &token, &id, "staging", "not-a-version", None).await,
        "version",
    );
    invalid_field(
        &server
            .put(&label_path(&id, "staging"), &token, &json!({}), None)
            .await,
        "version",
    );

    // At most 20 labels: the 21st is refused; moving one of the 20 is still fine.
    for i in 2..=20 {
        put_label(&server, &token, &id, &format!("env-{i}"), "1.0.0", None)
            .await
            .ok(200);
    }
    let resp = put_label(&server, &token, &id, "env-21", "1.0.0", None).await;
    let err = invalid_field(&resp, "label");
    assert!(err["message"].as_str().unwrap().contains("20"), "{err}");
    let prompt = put_label(&server, &token, &id, "env-20", "1.1.0", None)
        .await
        .ok(200);
    let labels = prompt["labels"].as_object().unwrap();
    assert_eq!(labels.len(), 20, "{prompt}");
    assert_eq!(labels["env-20"], "1.1.0");
    assert_eq!(labels["staging"], "1.0.0");
    assert!(!labels.contains_key("env-21"));

    // Scopes and unknown prompts.
    let reader = server.scoped_token("ai:prompt:read").await;
    put_label(&server, &reader, &id, "staging", "1.1.0", None)
        .await
        .error(403, "missing.scope");
    delete_label(&server, &reader, &id, "staging", None)
        .await
        .error(403, "missing.scope");
    let unknown = uuid::Uuid::new_v4().to_string();
    put_label(&server, &token, &unknown, "staging", "1.0.0", None)
        .await
        .error(404, "not.found");
    delete_label(&server, &token, &unknown, "staging", None)
        .await
        .error(404, "not.found");

    // None of the refused requests was audited: one entry per accepted change (staging, 19
    // env-N created, env-20 moved).
    assert_eq!(
        entries_of(&server, &token, &id, "LABEL_MOVED").await.len(),
        21
    );

    // An archived prompt's labels no longer change.
    server.delete(&prompt_path(&id), Some(&token)).await.ok(200);
    put_label(&server, &token, &id, "staging", "1.1.0", None)
        .await
        .error(409, "conflict");
    delete_label(&server, &token, &id, "staging", None)
        .await
        .error(409, "conflict");
    let archived = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(archived["labels"]["staging"], "1.0.0", "{archived}");
}

#[tokio::test]
async fn an_invocation_naming_a_label_is_served_by_its_version_whatever_the_split() {
    let server = Server::start();
    let token = server.admin_token().await;
    let id = two_versions(&server, &token, "served").await;
    put_label(&server, &token, &id, "staging", "1.1.0", None)
        .await
        .ok(200);
    let invoke = |more: Value| invoke_with(&server, &token, &id, "Where is my order?", more);

    // The split sends everything to 1.0.0; the label serves 1.1.0, for every session.
    for i in 0..10 {
        let session = json!(format!("s-{i}"));
        let resp = invoke(json!({"label": "staging", "sessionId": session})).await;
        let body = resp.ok(200);
        assert_eq!(served_version(&body, &resp), "1.1.0");
        // 1.1.0's own system prompt was sent: the offline provider counts it.
        assert_eq!(
            body["tokenUsage"]["prompt"],
            json!(o200k(SYSTEM_B) + o200k("Where is my order?")),
            "{body}"
        );
        let resp = invoke(json!({"sessionId": session})).await;
        assert_eq!(served_version(&resp.ok(200), &resp), "1.0.0");
    }

    // A streamed invocation too.
    let response = server
        .request(Method::POST, &format!("{GW}/invocations"))
        .bearer_auth(&token)
        .json(
            &json!({"promptId": id, "userInput": "Hi", "label": "staging",
                      "options": {"stream": true}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-prompt-version"], "1.1.0");
    let mut sse = SseReader::new(response);
    let events = sse.rest().await;
    let done = events.last().unwrap();
    assert_eq!(done.event, "done", "{}", sse.raw);
    assert_eq!(done.json()["version"], "1.1.0", "{}", sse.raw);

    // Unknown label; a version and a label together.
    let err = invoke(json!({"label": "canary"}))
        .await
        .error(404, "label.not.found");
    assert!(err["message"].as_str().unwrap().contains("canary"), "{err}");
    let resp = invoke(json!({"label": "staging", "version": "1.1.0"})).await;
    invalid_field(&resp, "label");

    // Moving the label applies from the next invocation, and the split still decides the rest.
    put_label(&server, &token, &id, "staging", "1.0.0", None)
        .await
        .ok(200);
    server
        .put(
            &prompt_path(&id),
            &token,
            &json!({"trafficDistribution": {"versions": [
                {"version": "1.0.0", "weight": 0.0}, {"version": "1.1.0", "weight": 1.0}]}}),
            None,
        )
        .await
        .ok(200);
    let resp = invoke(json!({"label": "staging"})).await;
    assert_eq!(served_version(&resp.ok(200), &resp), "1.0.0");
    let resp = invoke(json!({})).await;
    assert_eq!(served_version(&resp.ok(200), &resp), "1.1.0");

    // Labels are stored: after a restart they serve as before.
    let server = server.restart();
    let token = server.admin_token().await;
    let got = server.get(&prompt_path(&id), Some(&token)).await.ok(200);
    assert_eq!(got["labels"], json!({"staging": "1.0.0"}), "{got}");
    let invoke = |more: Value| invoke_with(&server, &token, &id, "Where is my order?", more);
    let resp = invoke(json!({"label": "staging"})).await;
    assert_eq!(served_version(&resp.ok(200), &resp), "1.0.0");

    // A deleted label serves no more.
    delete_label(&server, &token, &id, "staging", None)
        .await
        .ok(200);
    invoke(json!({"label": "staging"}))
        .await
        .error(404, "label.not.found");
}

/// `POST /v1/chat/completions` with `token`.
async fn chat(gw: &Gateway, body: &Value) -> Resp {
    gw.server.post(CHAT, Some(&gw.token), body).await
}

#[track_caller]
fn openai_invalid(resp: &Resp, param: &str) -> Value {
    assert_eq!(resp.status, 400, "{resp}");
    let body = resp.json();
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert_eq!(body["error"]["param"], param, "{body}");
    body
}

#[tokio::test]
async fn the_openai_front_door_serves_name_at_label_and_renders_prompt_variables() {
    let answer = Flavor::OpenAi.answer("Noted.", 20, 2);
    // Requests answered in order: two whole answers, a stream (the streamed case), then whole
    // answers.
    let script = vec![
        Reply::json(200, &answer),
        Reply::json(200, &answer),
        Reply::sse(&Flavor::OpenAi.full_stream(&["Not", "ed."], 2)),
    ];
    let gw = Gateway::start_with(
        Fake::start_with_fallback(script, 200, &answer).await,
        Endpoints::default(),
    )
    .await;
    let mut body = prompt_on(
        "support_tpl",
        OPENAI_REF,
        "You help {{customer_name}} on the {{ tier }} plan.",
    );
    body["variablesSchema"] = json!({
        "type": "object",
        "properties": {
            "customer_name": {"type": "string", "maxLength": 20},
            "tier": {"enum": ["gold", "silver"], "default": "silver"}
        },
        "required": ["customer_name"]
    });
    let id = gw.create_prompt(&body).await;
    gw.server
        .put(
            &prompt_path(&id),
            &gw.token,
            &json!({"version": "1.1.0", "systemPrompt": "Be brief with {{customer_name}} ({{tier}})."}),
            None,
        )
        .await
        .ok(200);
    put_label(&gw.server, &gw.token, &id, "staging", "1.1.0", None)
        .await
        .ok(200);
    let messages = json!([{"role": "user", "content": "Where is my parcel?"}]);
    let last_system = || {
        let sent = gw.fake.requests().pop().unwrap().json();
        sent["messages"][0].clone()
    };

    // The label's version, its template rendered with the body extension.
    let resp = chat(
        &gw,
        &json!({"model": "prompt:support_tpl@staging", "messages": messages,
                "prompt_variables": {"customer_name": "Jane", "tier": "gold"}}),
    )
    .await;
    let answer = resp.ok(200);
    assert_eq!(resp.header("x-prompt-version").as_deref(), Some("1.1.0"));
    assert_eq!(answer["promptgate"]["version"], "1.1.0", "{answer}");
    assert_eq!(answer["promptgate"]["promptId"], json!(id), "{answer}");
    assert_eq!(
        last_system(),
        json!({"role": "system", "content": "Be brief with Jane (gold)."})
    );

    // Without the label: the split's version, defaults applied.
    let resp = chat(
        &gw,
        &json!({"model": "prompt:support_tpl", "messages": messages,
                "prompt_variables": {"customer_name": "Jane"}}),
    )
    .await;
    resp.ok(200);
    assert_eq!(resp.header("x-prompt-version").as_deref(), Some("1.0.0"));
    assert_eq!(
        last_system(),
        json!({"role": "system", "content": "You help Jane on the silver plan."})
    );
    // Streamed through the label, the same rendering.
    let response = gw
        .server
        .request(Method::POST, CHAT)
        .bearer_auth(&gw.token)
        .json(
            &json!({"model": "prompt:support_tpl@staging", "messages": messages, "stream": true,
                      "prompt_variables": {"customer_name": "Bo"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-prompt-version"], "1.1.0");
    drop(SseReader::new(response).rest().await);
    let sent = gw.fake.requests().pop().unwrap().json();
    assert_eq!(sent["stream"], true, "{sent}");
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "Be brief with Bo (silver)."})
    );
    // A pinned version still works beside labels.
    let resp = chat(
        &gw,
        &json!({"model": "prompt:support_tpl@1.1.0", "messages": messages,
                "prompt_variables": {"customer_name": "Al"}}),
    )
    .await;
    resp.ok(200);
    assert_eq!(resp.header("x-prompt-version").as_deref(), Some("1.1.0"));
    let served = gw.fake.requests().len();

    // Violations are named after the body extension.
    let resp = chat(
        &gw,
        &json!({"model": "prompt:support_tpl@staging", "messages": messages}),
    )
    .await;
    openai_invalid(&resp, "prompt_variables.customer_name");
    let resp = chat(
        &gw,
        &json!({"model": "prompt:support_tpl@staging", "messages": messages,
                "prompt_variables": {"customer_name": "Jane", "tier": "bronze"}}),
    )
    .await;
    openai_invalid(&resp, "prompt_variables.tier");
    let resp = chat(
        &gw,
        &json!({"model": "prompt:support_tpl", "messages": messages,
                "prompt_variables": {"customer_name": "Jane", "nickname": "JJ"}}),
    )
    .await;
    openai_invalid(&resp, "prompt_variables.nickname");

    // A label the prompt does not have: no such model.
    let resp = chat(
        &gw,
        &json!({"model": "prompt:support_tpl@canary", "messages": messages,
                "prompt_variables": {"customer_name": "Jane"}}),
    )
    .await;
    assert_eq!(resp.status, 404, "{resp}");
    assert_eq!(resp.json()["error"]["code"], "model_not_found", "{resp}");
    assert_eq!(
        gw.fake.requests().len(),
        served,
        "a refused request reached the upstream"
    );

    // Telemetry records the label of the front door's invocations (whole and streamed), and the
    // variable names.
    let labelled = || async {
        gw.server
            .get_query(
                TELEMETRY,
                &gw.token,
                &[
                    ("promptId", id.as_str()),
                    ("label", "staging"),
                    ("status", "SUCCESS"),
                ],
            )
            .await
            .json()
    };
    assert!(
        eventually(HANG_GUARD, || async {
            labelled().await["entities"].as_array().map(Vec::len) == Some(2)
        })
        .await,
        "not both labelled telemetry records: {}",
        labelled().await
    );
    let entities = labelled().await["entities"].clone();
    for (entity, names) in [
        (&entities[0], json!(["customer_name", "tier"])),
        (&entities[1], json!(["customer_name"])),
    ] {
        assert_eq!(entity["version"], "1.1.0", "{entity}");
        assert_eq!(entity["label"], "staging", "{entity}");
        assert_eq!(entity["variables"], names, "{entity}");
    }
}

#[tokio::test]
async fn telemetry_and_its_summary_filter_by_label() {
    let server = Server::start();
    let token = server.admin_token().await;
    let id = two_versions(&server, &token, "summarised").await;
    put_label(&server, &token, &id, "staging", "1.1.0", None)
        .await
        .ok(200);
    put_label(&server, &token, &id, "canary", "1.0.0", None)
        .await
        .ok(200);
    let invoke = |more: Value| async {
        invoke_with(&server, &token, &id, "Hello", more)
            .await
            .ok(200)
    };
    let mut staging_ids = Vec::new();
    for _ in 0..3 {
        staging_ids.push(str_field(
            &invoke(json!({"label": "staging"})).await,
            "responseId",
        ));
    }
    for _ in 0..2 {
        invoke(json!({})).await;
        invoke(json!({"label": "canary"})).await;
    }
    // The labelled version pinned by its number is not the label.
    invoke(json!({"version": "1.1.0"})).await;

    let all = || async {
        server
            .get_query(TELEMETRY, &token, &[("promptId", &id)])
            .await
            .json()
    };
    assert!(
        eventually(HANG_GUARD, || async {
            all().await["entities"].as_array().map(Vec::len) == Some(8)
        })
        .await,
        "not every record arrived: {}",
        all().await
    );

    let page = server
        .get_query(
            TELEMETRY,
            &token,
            &[("promptId", &id), ("label", "staging")],
        )
        .await
        .ok(200);
    let ids: Vec<String> = page["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["label"], "staging", "{e}");
            assert_eq!(e["version"], "1.1.0", "{e}");
            str_field(e, "id")
        })
        .collect();
    assert_eq!(ids, staging_ids, "{page}");

    let summary = |label: Option<&'static str>| {
        let server = &server;
        let token = &token;
        let id = &id;
        async move {
            let mut query = vec![("promptId", id.as_str())];
            if let Some(label) = label {
                query.push(("label", label));
            }
            server.get_query(SUMMARY, token, &query).await.ok(200)["entities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (str_field(e, "version"), e["count"].as_u64().unwrap()))
                .collect::<std::collections::BTreeMap<_, _>>()
        }
    };
    assert_eq!(
        summary(Some("staging")).await,
        [("1.1.0".to_owned(), 3)].into_iter().collect()
    );
    assert_eq!(
        summary(Some("canary")).await,
        [("1.0.0".to_owned(), 2)].into_iter().collect()
    );
    assert_eq!(
        summary(None).await,
        [("1.0.0".to_owned(), 4), ("1.1.0".to_owned(), 4)]
            .into_iter()
            .collect()
    );
    assert_eq!(
        summary(Some("nowhere")).await,
        std::collections::BTreeMap::new()
    );
}
