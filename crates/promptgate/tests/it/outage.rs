//! PostgreSQL stopped under a running gateway and started again (issue 7): the gateway runs on a
//! PostgreSQL server of the test's own (`PrivateCluster`), which the test stops the way an
//! operator's restart does (`pg_ctl stop -m fast`) and starts again on the same port.
//!
//! What must hold: every write the gateway acknowledged before the stop is there afterwards;
//! during the outage `/readyz` and writes answer 503 (and invocations of cached prompts keep
//! working, their telemetry waiting in the queue); afterwards the same gateway process recovers
//! by itself and its audit log verifies.
//!
//! Runs in the PostgreSQL pass (`PROMPTGATE_TEST_STORE=postgres`) only; SQLite has no server to
//! stop.

use std::sync::Arc;
use std::time::Duration;

use promptgate_store::testing::PrivateCluster;
use serde_json::{Value, json};

use crate::audit::{AUDIT, VERIFY, all_entries, entry_path, post_entry, replay};
use crate::fake_upstream::INVOCATIONS;
use crate::harness::*;

const TELEMETRY: &str = "/api/v2/ai/llm/gateway/telemetry";

/// How long the gateway may take to notice PostgreSQL went away or came back (its pool's
/// acquire timeout is 5 s; a poll with this deadline, not a measured duration).
const NOTICE: Duration = Duration::from_secs(30);

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// What was acknowledged before the outage.
struct Acknowledged {
    prompts: Vec<(String, Value)>,
    versions: Vec<(String, String, Value)>,
    entries: Vec<Value>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_and_started_again_loses_no_acknowledged_write_and_the_gateway_recovers() {
    if !on_postgres() {
        eprintln!(
            "skipped on sqlite: stops and starts a PostgreSQL server (the postgres pass runs it)"
        );
        return;
    }
    let cluster = Arc::new(blocking(PrivateCluster::start).await);
    let server = Server::start_with(Options {
        database_url: Some(cluster.url()),
        ..Options::default()
    });
    let token = server.admin_token().await;

    // Acknowledged writes of every kind.
    let mut ack = Acknowledged {
        prompts: Vec::new(),
        versions: Vec::new(),
        entries: Vec::new(),
    };
    for i in 0..5 {
        let (created, _) = server
            .create_prompt(&token, &prompt_body(&format!("before-outage-{i}")))
            .await;
        let id = str_field(&created, "id");
        let updated = server
            .put(
                &prompt_path(&id),
                &token,
                &json!({"version": "1.1.0", "systemPrompt": format!("Version two of {i}.")}),
                None,
            )
            .await
            .ok(200);
        ack.versions.push((id.clone(), "1.1.0".to_owned(), updated));
        ack.entries.push(
            post_entry(
                &server,
                &token,
                &json!({"promptId": id, "action": "BEFORE_OUTAGE", "details": {"i": i}}),
            )
            .await,
        );
        ack.prompts.push((id, created));
    }
    let cached = ack.prompts[0].0.clone();
    // Cached by this gateway: served from memory during the outage.
    let invoke = json!({"promptId": cached, "userInput": "Hello", "version": "1.1.0"});
    server
        .post(INVOCATIONS, Some(&token), &invoke)
        .await
        .ok(200);
    server.get("/readyz", None).await.ok(200);
    let log_before = all_entries(&server, &token).await;

    // The outage.
    let stopping = cluster.clone();
    blocking(move || stopping.stop()).await;

    let down = eventually(NOTICE, || async {
        server.get("/readyz", None).await.status == 503
    })
    .await;
    assert!(
        down,
        "/readyz does not report the database down; log:\n{}",
        server.log()
    );
    // Writes of every kind are refused with 503 (not 500, not a hang past the client's timeout).
    // Each waits out the pool's acquire timeout, so they run at once.
    let new_version = json!({"version": "9.9.9", "systemPrompt": "Never stored."});
    let entry = json!({"promptId": cached, "action": "DURING_OUTAGE"});
    let (refused_body, cached_path) = (prompt_body("during-outage"), prompt_path(&cached));
    let (ready, create, update, append, during) = tokio::join!(
        server.get("/readyz", None),
        server.post(PROMPTS, Some(&token), &refused_body),
        server.put(&cached_path, &token, &new_version, None),
        server.post(AUDIT, Some(&token), &entry),
        // An invocation of a cached prompt needs no database: it is answered, and its
        // telemetry waits in the queue.
        server.post(INVOCATIONS, Some(&token), &invoke),
    );
    for refused in [ready, create, update, append] {
        refused.error(503, "service.unavailable");
    }
    let during_id = str_field(&during.ok(200), "responseId");

    // PostgreSQL is back, on the same port; the same gateway process recovers.
    let starting = cluster.clone();
    blocking(move || starting.restart()).await;
    let up = eventually(NOTICE, || async {
        server.get("/readyz", None).await.status == 200
    })
    .await;
    assert!(up, "/readyz does not recover; log:\n{}", server.log());

    // Writes work at once (the first one after readiness, not eventually).
    let (after, _) = server
        .create_prompt(&token, &prompt_body("after-outage"))
        .await;
    post_entry(
        &server,
        &token,
        &json!({"promptId": str_field(&after, "id"), "action": "AFTER_OUTAGE"}),
    )
    .await;

    // Every acknowledged write is there, exactly as acknowledged.
    for (id, created) in &ack.prompts {
        let versions = server.get(&versions_path(id), Some(&token)).await.ok(200);
        let labels: Vec<&Value> = versions["entities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| &v["version"])
            .collect();
        assert_eq!(labels, [&json!("1.1.0"), &json!("1.0.0")], "{versions}");
        let first = server
            .get(&version_path(id, "1.0.0"), Some(&token))
            .await
            .ok(200);
        assert_eq!(first["systemPrompt"], created["systemPrompt"]);
    }
    for (id, version, acknowledged) in &ack.versions {
        let stored = server
            .get(&version_path(id, version), Some(&token))
            .await
            .ok(200);
        assert_eq!(stored["systemPrompt"], acknowledged["systemPrompt"]);
        let prompt = server.get(&prompt_path(id), Some(&token)).await.ok(200);
        assert_eq!(prompt["name"], acknowledged["name"]);
    }
    for entry in &ack.entries {
        let stored = server
            .get(
                &entry_path(entry["sequence"].as_u64().unwrap()),
                Some(&token),
            )
            .await
            .ok(200);
        assert_eq!(&stored, entry, "an acknowledged audit entry changed");
    }
    // Nothing refused during the outage was stored.
    let names = server
        .get_query(PROMPTS, &token, &[("name", "during-outage")])
        .await
        .ok(200);
    assert_eq!(names["entities"], json!([]), "{names}");

    // The log is the one from before, extended: one chain that verifies.
    let log_after = all_entries(&server, &token).await;
    assert_eq!(&log_after[..log_before.len()], &log_before[..]);
    let actions: Vec<&str> = log_after[log_before.len()..]
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["PROMPT_CREATED", "AFTER_OUTAGE"]);
    let replayed = replay(&log_after);
    assert!(replayed.is_valid(), "{replayed:?}");
    let report = server.get(VERIFY, Some(&token)).await.ok(200);
    assert_eq!(report["valid"], json!(true), "{report}");
    assert_eq!(report["entries"], json!(log_after.len()));

    // The telemetry of the invocation answered during the outage reaches the database.
    let stored = eventually(NOTICE, || async {
        let page = server
            .get_query(TELEMETRY, &token, &[("pageSize", "100")])
            .await;
        page.status == 200 && page.text.contains(&during_id)
    })
    .await;
    assert!(
        stored,
        "the record of the invocation answered during the outage was lost; log:\n{}",
        server.log()
    );
}
