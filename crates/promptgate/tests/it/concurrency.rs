//! Concurrent writers: conditional PUTs race, creates of one name race, nothing is lost.

use std::collections::BTreeSet;

use futures::future::join_all;
use serde_json::json;

use crate::harness::*;

const TASKS: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_puts_with_one_if_match_let_exactly_one_through() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, etag) = server.create_prompt(&token, &prompt_body("race")).await;
    let id = str_field(&created, "id");
    let path = prompt_path(&id);

    let puts = (1..=TASKS).map(|i| {
        let body = json!({"systemPrompt": format!("Racer {i}."), "version": format!("1.{i}.0")});
        let (server, path, token, etag) = (&server, &path, &token, &etag);
        async move { (i, server.put(path, token, &body, Some(etag)).await) }
    });
    let results = join_all(puts).await;

    let winners: Vec<usize> = results
        .iter()
        .filter(|(_, r)| r.status == 200)
        .map(|(i, _)| *i)
        .collect();
    for (_, resp) in &results {
        if resp.status != 200 {
            resp.error(412, "precondition.failed");
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one PUT may succeed, these did: {winners:?}"
    );
    let winner = format!("1.{}.0", winners[0]);

    let list = server.get(&versions_path(&id), Some(&token)).await.ok(200);
    let versions: Vec<String> = list["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| str_field(v, "version"))
        .collect();
    assert_eq!(versions, vec![winner.clone(), "1.0.0".to_owned()], "{list}");
    let got = server.get(&path, Some(&token)).await.ok(200);
    assert_eq!(got["versions"].as_array().unwrap().len(), 2, "{got}");
    let stored = server
        .get(&version_path(&id, &winner), Some(&token))
        .await
        .ok(200);
    assert_eq!(
        stored["systemPrompt"],
        json!(format!("Racer {}.", winners[0]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_unconditional_puts_lose_no_version() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (created, _) = server
        .create_prompt(&token, &prompt_body("no-lost-update"))
        .await;
    let id = str_field(&created, "id");
    let path = prompt_path(&id);

    let puts = (1..=TASKS).map(|i| {
        let body = json!({"systemPrompt": format!("Writer {i}."), "version": format!("2.{i}.0")});
        let (server, path, token) = (&server, &path, &token);
        async move { server.put(path, token, &body, None).await }
    });
    for resp in join_all(puts).await {
        resp.ok(200);
    }
    let list = server
        .get_query(&versions_path(&id), &token, &[("pageSize", "100")])
        .await
        .ok(200);
    let versions: Vec<String> = list["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| str_field(v, "version"))
        .collect();
    let unique: BTreeSet<&String> = versions.iter().collect();
    assert_eq!(versions.len(), TASKS + 1, "{versions:?}");
    assert_eq!(
        unique.len(),
        TASKS + 1,
        "a version is duplicated: {versions:?}"
    );
    for i in 1..=TASKS {
        let v = format!("2.{i}.0");
        let stored = server
            .get(&version_path(&id, &v), Some(&token))
            .await
            .ok(200);
        assert_eq!(
            stored["systemPrompt"],
            json!(format!("Writer {i}.")),
            "{stored}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_creates_of_one_name_make_one_prompt() {
    let server = Server::start();
    let token = server.admin_token().await;
    let creates = (1..=TASKS).map(|i| {
        let mut body = prompt_body("contested");
        body["systemPrompt"] = json!(format!("Creator {i}."));
        let (server, token) = (&server, &token);
        async move { server.post(PROMPTS, Some(token), &body).await }
    });
    let results = join_all(creates).await;
    let created: Vec<&Resp> = results.iter().filter(|r| r.status == 201).collect();
    for resp in &results {
        if resp.status != 201 {
            resp.error(409, "conflict");
        }
    }
    assert_eq!(created.len(), 1, "exactly one create may succeed");
    let winner = created[0].json();

    let list = server
        .get_query(PROMPTS, &token, &[("name", "contested")])
        .await
        .ok(200);
    let entities = list["entities"].as_array().unwrap();
    assert_eq!(entities.len(), 1, "{list}");
    assert_eq!(entities[0]["id"], winner["id"]);
    assert_eq!(entities[0]["systemPrompt"], winner["systemPrompt"]);
    let all = server.get(PROMPTS, Some(&token)).await.ok(200);
    assert_eq!(all["entities"].as_array().unwrap().len(), 1, "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_creates_of_distinct_names_all_succeed() {
    let server = Server::start();
    let token = server.admin_token().await;
    let creates = (1..=TASKS).map(|i| {
        let body = prompt_body(&format!("parallel-{i}"));
        let (server, token) = (&server, &token);
        async move { server.post(PROMPTS, Some(token), &body).await }
    });
    let ids: BTreeSet<String> = join_all(creates)
        .await
        .iter()
        .map(|r| str_field(&r.ok(201), "id"))
        .collect();
    assert_eq!(ids.len(), TASKS);
    let all = server.get(PROMPTS, Some(&token)).await.ok(200);
    assert_eq!(all["entities"].as_array().unwrap().len(), TASKS);
}
