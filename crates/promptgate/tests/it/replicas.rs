//! Two gateways on one database (issue 7, "several replicas"): two `promptgate serve` processes
//! that share nothing but the store. On PostgreSQL that is the deployment the issue is about; on
//! SQLite the two processes share one file, which the store supports too (the CLI writes beside
//! a running server the same way), so these tests run on both stores.
//!
//! Time limits are deadlines of a poll, never measured durations: a change on A must serve on B
//! within 2 s, a disabled client must be refused on B within 5 s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::audit::{AUDIT, VERIFY, all_entries, post_entry, replay, seq};
use crate::fake_upstream::INVOCATIONS;
use crate::harness::*;

/// How soon a prompt change made on one replica must serve on another (issue 7).
const PROMPT_PROPAGATION: Duration = Duration::from_secs(2);
/// How soon a client disabled on one replica must be refused by another (issue 7).
const DISABLE_PROPAGATION: Duration = Duration::from_secs(5);

/// Polls `check` until it answers `Some` or `limit` passes (measured from `since`); answers the
/// last value seen, so a failure can show what the replica served instead.
async fn poll_until<T, F, Fut>(since: Instant, limit: Duration, mut check: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = since + limit;
    loop {
        let last = match check().await {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Invokes `id` on `server` (optionally pinned) and answers the served version, or what came
/// back instead.
async fn served_version(
    server: &Server,
    token: &str,
    id: &str,
    pinned: Option<&str>,
) -> Result<String, String> {
    let mut body = json!({"promptId": id, "userInput": "Where is my parcel?", "sessionId": "s-1"});
    if let Some(version) = pinned {
        body["version"] = json!(version);
    }
    let resp = server.post(INVOCATIONS, Some(token), &body).await;
    if resp.status != 200 {
        return Err(resp.to_string());
    }
    resp.json()["version"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| resp.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_prompt_created_or_changed_on_one_replica_serves_on_the_other_within_2_s() {
    let a = Server::start();
    let b = a.start_replica();
    let token_a = a.admin_token().await;
    let token_b = b.admin_token().await;

    // Created on A: B serves it.
    let (created, _) = a.create_prompt(&token_a, &prompt_body("replicated")).await;
    let id = str_field(&created, "id");
    let acked = Instant::now();
    let served = poll_until(acked, PROMPT_PROPAGATION, || async {
        match served_version(&b, &token_b, &id, None).await {
            Ok(v) if v == "1.0.0" => Ok(v),
            Ok(other) => Err(format!("served {other}")),
            Err(e) => Err(e),
        }
    })
    .await;
    assert!(
        served.is_ok(),
        "B does not serve a prompt created on A within {PROMPT_PROPAGATION:?}; last: {}",
        served.unwrap_err()
    );
    // B has it cached now; what follows is a change B must notice.

    // A new version on A: B serves it when asked for it.
    a.put(
        &prompt_path(&id),
        &token_a,
        &json!({"version": "1.1.0", "systemPrompt": "You are brief."}),
        None,
    )
    .await
    .ok(200);
    let acked = Instant::now();
    let served = poll_until(acked, PROMPT_PROPAGATION, || {
        served_version(&b, &token_b, &id, Some("1.1.0"))
    })
    .await;
    assert_eq!(
        served.as_deref(),
        Ok("1.1.0"),
        "B does not serve a version added on A within {PROMPT_PROPAGATION:?}"
    );

    // Traffic moved on A: B's unpinned invocations follow.
    a.put(
        &prompt_path(&id),
        &token_a,
        &json!({"trafficDistribution": {"defaultVersion": "1.1.0", "versions": [
            {"version": "1.0.0", "weight": 0.0}, {"version": "1.1.0", "weight": 1.0}]}}),
        None,
    )
    .await
    .ok(200);
    let acked = Instant::now();
    let served = poll_until(acked, PROMPT_PROPAGATION, || async {
        match served_version(&b, &token_b, &id, None).await {
            Ok(v) if v == "1.1.0" => Ok(v),
            Ok(other) => Err(format!("served {other}")),
            Err(e) => Err(e),
        }
    })
    .await;
    assert!(
        served.is_ok(),
        "B keeps serving the old traffic split {PROMPT_PROPAGATION:?} after A changed it; last: {}",
        served.unwrap_err()
    );
    // Once switched, it stays switched (no flapping between a stale and a fresh cache).
    for _ in 0..5 {
        assert_eq!(
            served_version(&b, &token_b, &id, None).await.as_deref(),
            Ok("1.1.0")
        );
    }

    // Archived on A: B stops serving it.
    a.delete(&prompt_path(&id), Some(&token_a)).await.ok(200);
    let acked = Instant::now();
    let refused = poll_until(acked, PROMPT_PROPAGATION, || async {
        let body = json!({"promptId": id, "userInput": "Where is my parcel?"});
        let resp = b.post(INVOCATIONS, Some(&token_b), &body).await;
        if resp.status == 404 {
            Ok(resp)
        } else {
            Err(resp.to_string())
        }
    })
    .await;
    match refused {
        Ok(resp) => {
            resp.error(404, "not.found");
        }
        Err(last) => panic!(
            "B still serves a prompt archived on A {PROMPT_PROPAGATION:?} later; last: {last}"
        ),
    }

    // Reads go to the database and agree at once.
    let on_a = a.get(&prompt_path(&id), Some(&token_a)).await.ok(200);
    let on_b = b.get(&prompt_path(&id), Some(&token_b)).await.ok(200);
    assert_eq!(on_a, on_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_work_on_every_replica_and_a_client_disabled_on_one_is_refused_on_the_other_within_5_s()
 {
    let a = Server::start();
    let b = a.start_replica();
    let admin_a = a.admin_token().await;
    let (id, secret) = a
        .create_client(&admin_a, "replicated-client", &["ai:prompt:read"])
        .await;

    // A load balancer sends a client's requests to any replica: a token from one works on the
    // other, and the client created on A can get a token on B.
    let token_from_a = a.token(&id, &secret, None).await;
    b.get(PROMPTS, Some(&token_from_a)).await.ok(200);
    let token_from_b = b.token(&id, &secret, None).await;
    a.get(PROMPTS, Some(&token_from_b)).await.ok(200);
    b.get(PROMPTS, Some(&token_from_b)).await.ok(200);

    a.post(
        &format!("{CLIENTS}/{id}/disable"),
        Some(&admin_a),
        &json!({}),
    )
    .await
    .ok(200);
    let acked = Instant::now();
    // Refused on A at once.
    a.get(PROMPTS, Some(&token_from_b))
        .await
        .error(401, "unauthorized");
    // On B within the limit: both tokens, and a new token request.
    for (what, token) in [("A's token", &token_from_a), ("B's token", &token_from_b)] {
        let refused = poll_until(acked, DISABLE_PROPAGATION, || async {
            let resp = b.get(PROMPTS, Some(token)).await;
            if resp.status == 401 {
                Ok(resp)
            } else {
                Err(resp.to_string())
            }
        })
        .await;
        match refused {
            Ok(resp) => {
                resp.error(401, "unauthorized");
            }
            Err(last) => panic!(
                "B still accepts {what} of a client disabled on A {DISABLE_PROPAGATION:?} \
                 later; last: {last}"
            ),
        }
    }
    let resp = b
        .token_request(
            &[("grant_type", "client_credentials")],
            Some((&id, &secret)),
        )
        .await;
    assert!(
        resp.status == 400 || resp.status == 401,
        "B issues a token to a disabled client: {resp}"
    );
    assert!(resp.json().get("access_token").is_none(), "{resp}");
}

/// What one of the concurrent tasks did, and on which replica.
enum Done {
    Prompt(String),
    Version(String),
    Client(String),
    Entry(Value),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn thirty_two_concurrent_appends_split_across_two_replicas_form_one_chain() {
    let a = Arc::new(Server::start());
    let b = Arc::new(a.start_replica());
    let token_a = a.admin_token().await;
    let token_b = b.admin_token().await;
    let (shared, _) = a.create_prompt(&token_a, &prompt_body("shared")).await;
    let shared_id = str_field(&shared, "id");
    let start = all_entries(&a, &token_a).await.len();

    let mut tasks = Vec::new();
    for i in 0..32u32 {
        let (server, token) = if i % 2 == 0 {
            (a.clone(), token_a.clone())
        } else {
            (b.clone(), token_b.clone())
        };
        let shared_id = shared_id.clone();
        tasks.push(tokio::spawn(async move {
            // i % 8 in 0..8: each kind on both replicas.
            match (i / 2) % 4 {
                0 => {
                    let (created, _) = server
                        .create_prompt(&token, &prompt_body(&format!("replica-{i}")))
                        .await;
                    Done::Prompt(str_field(&created, "id"))
                }
                1 => {
                    // Both replicas change the same prompt: optimistic updates that race.
                    let version = format!("2.{i}.0");
                    server
                        .put(
                            &prompt_path(&shared_id),
                            &token,
                            &json!({"systemPrompt": format!("Version {i}."), "version": version}),
                            None,
                        )
                        .await
                        .ok(200);
                    Done::Version(version)
                }
                2 => {
                    let (id, _) = server
                        .create_client(&token, &format!("client-{i}"), &["ai:prompt:read"])
                        .await;
                    Done::Client(id)
                }
                _ => Done::Entry(
                    post_entry(
                        &server,
                        &token,
                        &json!({"promptId": shared_id, "action": "REPLICATED", "details": {"i": i}}),
                    )
                    .await,
                ),
            }
        }));
    }
    let mut done = Vec::new();
    for task in tasks {
        done.push(task.await.unwrap());
    }

    // One chain, as the library replays it from either replica's listing.
    let entries = all_entries(&a, &token_a).await;
    assert_eq!(entries, all_entries(&b, &token_b).await);
    assert_eq!(entries.len(), start + 32, "one entry per change");
    let sequences: Vec<u64> = entries.iter().map(seq).collect();
    assert_eq!(sequences, (1..=entries.len() as u64).collect::<Vec<_>>());
    let replayed = replay(&entries);
    assert!(replayed.is_valid(), "{replayed:?}");
    assert_eq!(replayed.entries, entries.len() as u64);

    // Both replicas verify the whole log and agree with the replay.
    for (name, server, token) in [("A", &a, &token_a), ("B", &b, &token_b)] {
        let report = server.get(VERIFY, Some(token)).await.ok(200);
        assert_eq!(report["valid"], json!(true), "{name}: {report}");
        assert_eq!(report["entries"], json!(entries.len()), "{name}: {report}");
        assert_eq!(
            report["rootHash"],
            json!(promptgate_audit::merkle::to_hex(&replayed.root_hash)),
            "{name}: {report}"
        );
        assert_eq!(
            report["headHash"],
            json!(promptgate_audit::merkle::to_hex(&replayed.head_hash)),
            "{name}: {report}"
        );
    }

    // Every change has exactly its entry.
    let new = &entries[start..];
    let count = |action: &str| new.iter().filter(|e| e["action"] == action).count();
    assert_eq!(count("PROMPT_CREATED"), 8);
    assert_eq!(count("VERSION_CREATED"), 8);
    assert_eq!(count("CLIENT_CREATED"), 8);
    assert_eq!(count("REPLICATED"), 8);
    for d in &done {
        let matching = match d {
            Done::Prompt(id) => new
                .iter()
                .filter(|e| e["action"] == "PROMPT_CREATED" && e["promptId"] == json!(id))
                .count(),
            Done::Version(v) => new
                .iter()
                .filter(|e| e["action"] == "VERSION_CREATED" && e["details"]["version"] == json!(v))
                .count(),
            Done::Client(id) => new
                .iter()
                .filter(|e| {
                    e["action"] == "CLIENT_CREATED"
                        && e["details"]["after"]["clientId"] == json!(id)
                })
                .count(),
            Done::Entry(stored) => {
                // What the POST answered, on whichever replica, is what is stored there.
                assert_eq!(&entries[seq(stored) as usize - 1], stored);
                1
            }
        };
        assert_eq!(matching, 1);
    }
    // The shared prompt got every version, whichever replica wrote it.
    let versions = a
        .get_query(&versions_path(&shared_id), &token_a, &[("pageSize", "100")])
        .await
        .ok(200);
    assert_eq!(versions["entities"].as_array().unwrap().len(), 1 + 8);

    // A head signed on either replica covers all of it.
    for server in [&a, &b] {
        let token = server.admin_token().await;
        let cp = server
            .get(&format!("{AUDIT}/checkpoint"), Some(&token))
            .await
            .ok(200);
        assert_eq!(cp["treeSize"], json!(entries.len()));
        assert_eq!(
            cp["rootHash"],
            json!(promptgate_audit::merkle::to_hex(&replayed.root_hash))
        );
    }
}

/// Each batch the webhook received: which replica sent it (its `X-Replica` header), its
/// Idempotency-Key and its body.
type Received = Arc<Mutex<Vec<(String, String, Value)>>>;

async fn webhook_receiver() -> (Received, String) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::Json<Value>| {
                let sink = sink.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .map(|v| v.to_str().unwrap().to_owned())
                            .unwrap_or_default()
                    };
                    sink.lock().unwrap().push((
                        header("x-replica"),
                        header("idempotency-key"),
                        body.0,
                    ));
                    // A receiver that takes its time: a replica delivering a batch holds it
                    // for a while, long enough for the other replica's passes (every 50 ms)
                    // to find the same batch pending unless only one replica may deliver.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (received, format!("http://{addr}/hook"))
}

fn webhook_config(url: &str, replica: &str) -> String {
    format!(
        "[exporters.webhook]\nurl = \"{url}\"\nheaders = {{ \"X-Replica\" = \"{replica}\" }}\n\
         batch_size = 4\nflush_interval_ms = 50\n"
    )
}

/// The record ids received so far, with how often each arrived (no de-duplication).
fn record_counts(received: &Received) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (_, _, payload) in received.lock().unwrap().iter() {
        for record in payload["metrics"].as_array().into_iter().flatten() {
            let id = record["id"].as_str().unwrap_or_default().to_owned();
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}

/// Waits (deadline 30 s) until every id in `ids` has arrived at least once.
async fn wait_for_records(received: &Received, ids: &[String], servers: [&Server; 2]) {
    let arrived = eventually(Duration::from_secs(30), || async {
        let counts = record_counts(received);
        ids.iter().all(|id| counts.contains_key(id))
    })
    .await;
    if !arrived {
        let counts = record_counts(received);
        let missing: Vec<&String> = ids.iter().filter(|id| !counts.contains_key(*id)).collect();
        panic!(
            "records never delivered: {missing:?}\nA's log:\n{}\nB's log:\n{}",
            servers[0].log(),
            servers[1].log()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_outbox_drained_by_two_replicas_delivers_every_batch_exactly_once() {
    let (received, url) = webhook_receiver().await;
    let a = Server::start_with(Options::with_config(&webhook_config(&url, "a")));
    let b = a.start_replica_with(Some(webhook_config(&url, "b")));
    let token_a = a.admin_token().await;
    let token_b = b.admin_token().await;
    let (created, _) = a.create_prompt(&token_a, &prompt_body("exported")).await;
    let id = str_field(&created, "id");

    // 40 invocations, alternating between the replicas, while both exporters run.
    let mut ids = Vec::new();
    for i in 0..40 {
        let (server, token) = if i % 2 == 0 {
            (&a, &token_a)
        } else {
            (&b, &token_b)
        };
        let body = json!({"promptId": id, "userInput": format!("hello {i}"), "sessionId": format!("s-{i}")});
        let answer = server.post(INVOCATIONS, Some(token), &body).await.ok(200);
        ids.push(str_field(&answer, "responseId"));
    }
    wait_for_records(&received, &ids, [&a, &b]).await;
    // One more record on each replica, delivered after all of the above: by then both exporters
    // have made passes over everything before it, so a second delivery of an earlier batch
    // would have happened already.
    let mut sentinels = Vec::new();
    for (server, token) in [(&a, &token_a), (&b, &token_b)] {
        let body = json!({"promptId": id, "userInput": "sentinel"});
        let answer = server.post(INVOCATIONS, Some(token), &body).await.ok(200);
        sentinels.push(str_field(&answer, "responseId"));
    }
    wait_for_records(&received, &sentinels, [&a, &b]).await;

    let batches = received.lock().unwrap().clone();
    // Every batch exactly once: no Idempotency-Key twice, whichever replica sent it.
    let mut keys = BTreeMap::<&str, Vec<&str>>::new();
    for (replica, key, payload) in &batches {
        assert!(
            !key.is_empty(),
            "a batch without an Idempotency-Key: {payload}"
        );
        assert_eq!(payload["batchId"], json!(key), "{payload}");
        keys.entry(key).or_default().push(replica);
    }
    let repeated: Vec<_> = keys.iter().filter(|(_, by)| by.len() > 1).collect();
    assert!(
        repeated.is_empty(),
        "batches delivered more than once (key → replicas): {repeated:?}\nA's log:\n{}\nB's log:\n{}",
        a.log(),
        b.log()
    );
    // Every record exactly once, in exactly one batch.
    let counts = record_counts(&received);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "records delivered twice: {twice:?}");
    let want: BTreeSet<&String> = ids.iter().chain(&sentinels).collect();
    let got: BTreeSet<&String> = counts.keys().collect();
    assert_eq!(got, want, "exactly the records made, nothing else");
    for (replica, _, _) in &batches {
        assert!(
            replica == "a" || replica == "b",
            "a batch from neither replica: {replica:?}"
        );
    }
    eprintln!(
        "webhook batches: {} from A, {} from B",
        batches.iter().filter(|(r, _, _)| r == "a").count(),
        batches.iter().filter(|(r, _, _)| r == "b").count()
    );
}
