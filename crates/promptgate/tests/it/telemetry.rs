//! Telemetry through the real binary: stored records, filters (query or JSON body), feedback,
//! the per-version summary and comparison, durability across a graceful restart, and the CLI's
//! telemetry, feedback and export commands.

use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{BIN, GW, Server, prompt_body, run_bounded};

const TELEMETRY: &str = "/api/v2/ai/llm/gateway/telemetry";
const SUMMARY: &str = "/api/v2/ai/llm/gateway/telemetry/summary";

/// Creates a prompt with versions 1.0.0 and 1.1.0 and invokes each version `per_version`
/// times (pinned); returns the prompt id and the responseIds in order.
async fn invoked(
    server: &Server,
    token: &str,
    name: &str,
    per_version: usize,
) -> (String, Vec<String>) {
    let (created, _) = server.create_prompt(token, &prompt_body(name)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    server
        .put(
            &format!("{GW}/prompts/{id}"),
            token,
            &json!({"version": "1.1.0", "systemPrompt": "Be brief."}),
            None,
        )
        .await
        .ok(200);
    let mut ids = Vec::new();
    for version in ["1.0.0", "1.1.0"] {
        for i in 0..per_version {
            let body = json!({"promptId": id, "userInput": format!("hello {i}"), "version": version,
                              "sessionId": format!("s-{i}"), "metadata": {"channel": "web"}});
            let answer = server
                .post(&format!("{GW}/invocations"), Some(token), &body)
                .await
                .ok(200);
            ids.push(answer["responseId"].as_str().unwrap().to_owned());
        }
    }
    (id, ids)
}

#[tokio::test]
async fn records_are_listed_with_filters_from_query_or_body_and_stable_pages() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (prompt_id, ids) = invoked(&server, &token, "telemetry_list", 3).await;

    // Paging with pageSize 2 covers every record once, oldest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("promptId", prompt_id.as_str()), ("pageSize", "2")];
        if let Some(c) = &cursor {
            query.push(("cursor", c.as_str()));
        }
        let page = server.get_query(TELEMETRY, &token, &query).await.ok(200);
        assert_eq!(page["pageSize"], 2);
        for entity in page["entities"].as_array().unwrap() {
            seen.push(entity["id"].as_str().unwrap().to_owned());
        }
        match page["nextPageCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every record once, in order");

    let first = server
        .get_query(
            TELEMETRY,
            &token,
            &[("promptId", &prompt_id), ("pageSize", "1")],
        )
        .await
        .ok(200);
    let entity = &first["entities"][0];
    for field in [
        "id",
        "timestamp",
        "promptId",
        "version",
        "model",
        "status",
        "latencyMs",
        "tokenUsage",
    ] {
        assert!(entity.get(field).is_some(), "{field} missing in {entity}");
    }
    assert_eq!(entity["status"], "SUCCESS");
    assert!(entity["errorCode"].is_null());
    assert_eq!(entity["metadata"]["channel"], "web");
    assert!(entity["tokenUsage"]["total"].as_u64().unwrap() > 0);

    let by_version = server
        .get_query(
            TELEMETRY,
            &token,
            &[("promptId", &prompt_id), ("version", "1.1.0")],
        )
        .await
        .ok(200);
    assert_eq!(by_version["entities"].as_array().unwrap().len(), 3);

    // The same filters as a JSON body on GET.
    let resp = server
        .send(
            server
                .request(Method::GET, TELEMETRY)
                .bearer_auth(&token)
                .json(&json!({"promptId": prompt_id, "version": "1.0.0"})),
        )
        .await;
    let from_body = resp.ok(200);
    assert_eq!(from_body["entities"].as_array().unwrap().len(), 3);
    assert!(
        from_body["entities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["version"] == "1.0.0")
    );

    // Bad filters are all reported at once.
    let bad = server
        .get_query(
            TELEMETRY,
            &token,
            &[
                ("pageSize", "501"),
                ("status", "MAYBE"),
                ("startTime", "yesterday"),
                ("cursor", "zzz"),
            ],
        )
        .await;
    let body = bad.error(400, "invalid.value");
    let fields: Vec<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["fieldName"].as_str().unwrap())
        .collect();
    for field in ["pageSize", "status", "startTime", "cursor"] {
        assert!(
            fields.contains(&field),
            "{field} not reported in {fields:?}"
        );
    }

    // Scope.
    let narrow = server.scoped_token("ai:prompt:read").await;
    server
        .get(TELEMETRY, Some(&narrow))
        .await
        .error(403, "missing.scope");
}

#[tokio::test]
async fn feedback_is_stored_and_summarised_with_a_comparison() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (prompt_id, ids) = invoked(&server, &token, "telemetry_summary", 4).await;
    let feedback = |id: &str| format!("{GW}/invocations/{id}/feedback");

    let stored = server
        .post(
            &feedback(&ids[0]),
            Some(&token),
            &json!({"score": 0.5, "comment": "ok"}),
        )
        .await
        .ok(201);
    assert_eq!(stored["score"], 0.5);
    server
        .post(&feedback(&ids[1]), Some(&token), &json!({"score": true}))
        .await
        .ok(201);
    server
        .post(&feedback(&ids[4]), Some(&token), &json!({"score": false}))
        .await
        .ok(201);
    server
        .post(&feedback("inv-unknown"), Some(&token), &json!({"score": 1}))
        .await
        .error(404, "not.found");
    server
        .post(&feedback(&ids[2]), Some(&token), &json!({"score": 1.5}))
        .await
        .error(400, "invalid.value");
    server
        .post(
            &feedback(&ids[2]),
            Some(&token),
            &json!({"comment": "no score"}),
        )
        .await
        .error(400, "invalid.value");

    let summary = server
        .get_query(
            SUMMARY,
            &token,
            &[
                ("promptId", &prompt_id),
                ("groupBy", "version"),
                ("compareTo", "1.0.0"),
            ],
        )
        .await
        .ok(200);
    let entities = summary["entities"].as_array().unwrap();
    assert_eq!(entities.len(), 2);
    let find = |v: &str| entities.iter().find(|e| e["version"] == v).unwrap().clone();
    let old = find("1.0.0");
    let new = find("1.1.0");
    assert_eq!(old["count"], 4);
    assert_eq!(old["errorCount"], 0);
    assert_eq!(old["errorRate"], 0.0);
    assert_eq!(old["feedback"]["count"], 2);
    assert_eq!(old["feedback"]["mean"], 0.75);
    assert_eq!(new["feedback"]["count"], 1);
    let latency = &old["latencyMs"];
    assert!(latency["p50"].as_f64().unwrap() <= latency["p95"].as_f64().unwrap());
    assert!(latency["p95"].as_f64().unwrap() <= latency["p99"].as_f64().unwrap());
    assert!(
        old.get("comparison").is_none(),
        "the reference has no comparison with itself"
    );
    let comparison = &new["comparison"];
    assert_eq!(comparison["against"], "1.0.0");
    let diff = &comparison["meanLatencyMsDiff"];
    let (low, high) = (
        diff["ci95"][0].as_f64().unwrap(),
        diff["ci95"][1].as_f64().unwrap(),
    );
    let estimate = diff["estimate"].as_f64().unwrap();
    assert!(low <= estimate && estimate <= high, "{diff}");
    assert_eq!(
        diff["significant"].as_bool().unwrap(),
        low > 0.0 || high < 0.0
    );
    assert_eq!(comparison["errorRateDiff"]["estimate"], 0.0);

    server
        .get_query(SUMMARY, &token, &[("groupBy", "prompt")])
        .await
        .error(400, "invalid.value");
}

#[tokio::test]
async fn queued_records_survive_a_graceful_restart() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (prompt_id, ids) = invoked(&server, &token, "telemetry_restart", 5).await;
    let server = server.restart();
    let token = server.admin_token().await;
    let listed = server
        .get_query(
            TELEMETRY,
            &token,
            &[("promptId", &prompt_id), ("pageSize", "100")],
        )
        .await
        .ok(200);
    let stored: Vec<&str> = listed["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(stored, ids.iter().map(String::as_str).collect::<Vec<_>>());
}

/// Each export a receiver got: its X-Source header and its body.
type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// A receiver for exports that records each body and its X-Source header.
async fn export_receiver() -> (Received, String) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/ingest",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::Json<Value>| {
                let sink = sink.clone();
                async move {
                    let source = headers
                        .get("x-source")
                        .map(|v| v.to_str().unwrap().to_owned());
                    sink.lock().unwrap().push((source, body.0));
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (received, format!("http://{addr}/ingest"))
}

#[tokio::test]
async fn cli_lists_summarises_gives_feedback_and_exports() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (prompt_id, ids) = invoked(&server, &token, "telemetry_cli", 2).await;
    let cli = |args: &[&str]| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args([
            "--url",
            &server.base,
            "--client-id",
            &server.admin_id,
            "--client-secret",
            &server.admin_secret,
        ]);
        cmd.args(args);
        run_bounded(cmd)
    };
    let ok = |output: std::process::Output| {
        assert!(
            output.status.success(),
            "exit {:?}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };

    let listed: Value = serde_json::from_str(&ok(cli(&[
        "--json",
        "telemetry",
        "list",
        "--prompt",
        &prompt_id,
    ])))
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 4);
    let text = ok(cli(&["telemetry", "summary", "--prompt", &prompt_id]));
    assert!(text.contains("1.0.0") && text.contains("1.1.0"), "{text}");
    let compared: Value = serde_json::from_str(&ok(cli(&[
        "--json",
        "telemetry",
        "compare",
        "1.0.0",
        "--prompt",
        &prompt_id,
    ])))
    .unwrap();
    let new = compared["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["version"] == "1.1.0")
        .unwrap()
        .clone();
    assert_eq!(new["comparison"]["against"], "1.0.0");

    ok(cli(&["feedback", &ids[0], "--up", "--comment", "solved"]));
    let stored: Value = serde_json::from_str(&ok(cli(&[
        "--json", "feedback", &ids[1], "--score", "0.25",
    ])))
    .unwrap();
    assert_eq!(stored["score"], 0.25);
    let bad = cli(&["feedback", &ids[1], "--score", "3"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    let (received, url) = export_receiver().await;
    let url_for_cli = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args([
            "--url",
            &server.base,
            "--client-id",
            &server.admin_id,
            "--client-secret",
            &server.admin_secret,
        ]);
        cmd.args([
            "telemetry",
            "export",
            "--to",
            &url_for_cli,
            "--prompt",
            &prompt_id,
        ]);
        (run_bounded(cmd), server)
    })
    .await
    .unwrap();
    let (output, _server) = out;
    let text = ok(output);
    assert!(text.contains("exported 4 records"), "{text}");
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "one payload");
    let (source, payload) = &received[0];
    assert_eq!(source.as_deref(), Some("promptgate"));
    assert_eq!(payload["metrics"].as_array().unwrap().len(), 4);
    assert!(payload["exportTimestamp"].is_string());
    let with_feedback = payload["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == ids[0].as_str())
        .unwrap();
    assert_eq!(with_feedback["feedback"]["score"], 1.0);
    assert_eq!(with_feedback["feedback"]["comment"], "solved");
}

/// A webhook receiver on a fixed address that records every payload.
async fn webhook_receiver(listener: tokio::net::TcpListener) -> Received {
    let received: Received = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::Json<Value>| {
                let sink = sink.clone();
                async move {
                    let key = headers
                        .get("idempotency-key")
                        .map(|v| v.to_str().unwrap().to_owned());
                    assert_eq!(headers.get("x-source").unwrap(), "promptgate");
                    assert_eq!(headers.get("x-team").unwrap(), "support");
                    sink.lock().unwrap().push((key, body.0));
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    received
}

#[tokio::test]
async fn a_webhook_down_across_a_restart_receives_every_record_once_back() {
    // Reserve a port, then free it: the webhook is down while records are made.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let config = format!(
        "[exporters.webhook]\nurl = \"http://127.0.0.1:{port}/hook\"\nheaders = {{ \"X-Team\" = \"support\" }}\nbatch_size = 4\nflush_interval_ms = 50\n"
    );
    let server = Server::start_with(crate::harness::Options::with_config(&config));
    let token = server.admin_token().await;
    let (_, ids) = invoked(&server, &token, "telemetry_webhook", 5).await;
    // Every record is stored (the listing flushes the queue) before the restart.
    server
        .get_query(TELEMETRY, &token, &[("pageSize", "100")])
        .await
        .ok(200);
    let server = server.restart();

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let received = webhook_receiver(listener).await;
    let mut delivered = std::collections::BTreeMap::<String, Value>::new();
    for _ in 0..300 {
        delivered.clear();
        for (key, payload) in received.lock().unwrap().iter() {
            let key = key.clone().expect("every batch carries an Idempotency-Key");
            assert_eq!(payload["batchId"], key.as_str());
            // A repeated batch must be the same batch.
            if let Some(earlier) = delivered.get(&key) {
                assert_eq!(earlier["metrics"], payload["metrics"]);
            }
            delivered.insert(key, payload.clone());
        }
        let count: usize = delivered
            .values()
            .map(|p| p["metrics"].as_array().unwrap().len())
            .sum();
        if count >= ids.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut got: Vec<String> = delivered
        .values()
        .flat_map(|p| {
            p["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_owned())
        })
        .collect();
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(
        got,
        want,
        "every record arrives exactly once after de-duplication; log:\n{}",
        server.log()
    );
    assert!(
        delivered.len() >= 3,
        "batches of at most 4: {}",
        delivered.len()
    );
}

/// Runs `promptgate check metrics`'s reference checker, Prometheus's `promtool`, on `text`.
/// CI installs it (`.ci/run`) and sets CI, which makes it required; elsewhere the structural
/// assertions of the test still run when it is missing.
pub(crate) fn promtool_check(text: &str) {
    use std::io::Write;
    let spawned = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "promtool not found ({err}); install the Debian package prometheus to run this check"
            );
            return;
        }
        Err(err) => panic!("promtool is required in CI: {err}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics ---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn metrics_count_invocations_by_labels_and_pass_promtool() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (_, ids) = invoked(&server, &token, "metrics \"quoted\"", 3).await;
    let resp = server.get("/metrics", None).await;
    assert_eq!(resp.status, 200, "{resp}");
    assert!(
        resp.header("content-type")
            .unwrap()
            .starts_with("text/plain"),
        "{resp}"
    );
    let text = resp.text.clone();
    for version in ["1.0.0", "1.1.0"] {
        let line = format!(
            "promptgate_invocations_total{{prompt=\"metrics \\\"quoted\\\"\",version=\"{version}\",model=\"echo\",status=\"SUCCESS\"}} 3"
        );
        assert!(text.contains(&line), "missing {line} in\n{text}");
    }
    assert!(
        text.contains("promptgate_invocation_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(text.contains("type=\"input\""), "{text}");
    assert!(
        text.contains(&format!(
            "promptgate_telemetry_records_queued_total {}",
            ids.len()
        )),
        "{text}"
    );
    promtool_check(&text);
}

#[tokio::test]
async fn metrics_can_require_a_token_or_be_disabled() {
    let guarded = Server::start_with(crate::harness::Options::with_config(
        "[exporters.prometheus]\nrequire_token = true\n",
    ));
    guarded
        .get("/metrics", None)
        .await
        .error(401, "unauthorized");
    let narrow = guarded.scoped_token("ai:prompt:read").await;
    guarded
        .get("/metrics", Some(&narrow))
        .await
        .error(403, "missing.scope");
    let reader = guarded.scoped_token("ai:telemetry:read").await;
    assert_eq!(guarded.get("/metrics", Some(&reader)).await.status, 200);

    let off = Server::start_with(crate::harness::Options::with_config(
        "[exporters.prometheus]\nenabled = false\n",
    ));
    off.get("/metrics", None).await.error(404, "not.found");
}

/// A path and the body posted to it.
type Posted = (String, Vec<u8>);

#[tokio::test]
async fn the_otlp_exporter_sends_spans_and_metrics_for_invocations() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    let bodies: Arc<Mutex<Vec<Posted>>> = Arc::default();
    let sink = bodies.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
        let sink = sink.clone();
        async move {
            sink.lock()
                .unwrap()
                .push((uri.path().to_owned(), body.to_vec()));
            axum::http::StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let config = format!("[exporters.otlp]\nendpoint = \"http://{addr}\"\n");
    let server = Server::start_with(crate::harness::Options::with_config(&config));
    let token = server.admin_token().await;
    let (prompt_id, ids) = invoked(&server, &token, "telemetry_otlp", 2).await;
    server
        .get_query(TELEMETRY, &token, &[("pageSize", "1")])
        .await
        .ok(200);

    let mut spans = Vec::new();
    for _ in 0..300 {
        spans = bodies
            .lock()
            .unwrap()
            .iter()
            .filter(|(path, _)| path == "/v1/traces")
            .flat_map(|(_, body)| {
                let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
                request
                    .resource_spans
                    .into_iter()
                    .flat_map(|r| r.scope_spans)
                    .flat_map(|s| s.spans)
                    .collect::<Vec<_>>()
            })
            .collect();
        if spans.len() >= ids.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        spans.len(),
        ids.len(),
        "one span per invocation; log:\n{}",
        server.log()
    );
    let span = &spans[0];
    assert_eq!(span.name, "chat echo");
    let attribute = |name: &str| {
        span.attributes
            .iter()
            .find(|a| a.key == name)
            .unwrap_or_else(|| panic!("no attribute {name}"))
            .value
            .clone()
    };
    let text = |name: &str| match attribute(name).and_then(|v| v.value) {
        Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) => s,
        other => panic!("{name} is {other:?}"),
    };
    assert_eq!(text("promptgate.prompt.id"), prompt_id);
    assert_eq!(text("promptgate.prompt.version"), "1.0.0");
    assert_eq!(text("gen_ai.request.model"), "echo");
    assert!(attribute("gen_ai.usage.input_tokens").is_some());
    // The batch's metrics are posted after its spans: wait for them too (bounded).
    let metrics_arrived =
        crate::harness::eventually(std::time::Duration::from_secs(20), || async {
            bodies
                .lock()
                .unwrap()
                .iter()
                .any(|(path, _)| path == "/v1/metrics")
        })
        .await;
    assert!(
        metrics_arrived,
        "no /v1/metrics post; log:\n{}",
        server.log()
    );
}

#[tokio::test]
async fn out_of_order_times_and_long_comments_are_refused() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (_, ids) = invoked(&server, &token, "telemetry_refusals", 1).await;
    let body = server
        .get_query(
            TELEMETRY,
            &token,
            &[
                ("startTime", "2026-11-27T10:00:00Z"),
                ("endTime", "2026-11-27T09:00:00Z"),
            ],
        )
        .await
        .error(400, "invalid.value");
    assert_eq!(body["details"][0]["fieldName"], "endTime");
    let long = "x".repeat(2_001);
    let body = server
        .post(
            &format!("{GW}/invocations/{}/feedback", ids[0]),
            Some(&token),
            &json!({"score": 1, "comment": long}),
        )
        .await
        .error(400, "invalid.value");
    assert_eq!(body["details"][0]["fieldName"], "comment");
}

#[tokio::test]
async fn an_export_target_that_refuses_is_an_api_error_exit() {
    let server = Server::start();
    let token = server.admin_token().await;
    invoked(&server, &token, "telemetry_refused_export", 1).await;
    let app =
        axum::Router::new().fallback(|| async { axum::http::StatusCode::INTERNAL_SERVER_ERROR });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let to = format!("http://{addr}/ingest");
    let output = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["--url", &server.base, "--client-id", &server.admin_id]);
        cmd.args([
            "--client-secret",
            &server.admin_secret,
            "telemetry",
            "export",
            "--to",
            &to,
        ]);
        run_bounded(cmd)
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("export target") && stderr.contains("500"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_version_whose_endpoint_left_the_configuration_is_a_502_naming_it() {
    let config =
        "[[model_endpoints]]\nref = \"local/echo\"\nprovider = \"builtin\"\nmodel = \"echo\"\n";
    let mut first = Server::start_with(crate::harness::Options::with_config(config));
    let token = first.admin_token().await;
    let mut body = prompt_body("orphaned_endpoint");
    body["modelEndpointRef"] = json!("local/echo");
    let (created, _) = first.create_prompt(&token, &body).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(first.signal_and_wait("TERM").success());

    // The same database, now without the endpoint in the configuration.
    let second = Server::start_in(
        first.dir.clone(),
        crate::harness::Options {
            admin: crate::harness::Admin::Existing {
                id: first.admin_id.clone(),
                secret: first.admin_secret.clone(),
            },
            ..crate::harness::Options::default()
        },
    );
    let token = second.admin_token().await;
    let invoke = json!({"promptId": id, "userInput": "hello"});
    let body = second
        .post(&format!("{GW}/invocations"), Some(&token), &invoke)
        .await
        .error(502, "upstream.error");
    assert!(
        body["message"].as_str().unwrap().contains("local/echo"),
        "{body}"
    );
    // The prompt itself is still readable.
    second
        .get(&format!("{GW}/prompts/{id}"), Some(&token))
        .await
        .ok(200);
}

/// Issue 17, item 12: feedback could be overwritten by any writer, unaudited.
#[tokio::test]
async fn feedback_from_another_client_is_refused_and_a_replacement_says_so_and_is_audited() {
    let server = Server::start();
    let admin = server.admin_token().await;
    let (created, _) = server
        .create_prompt(&admin, &prompt_body("feedback_owner"))
        .await;
    let prompt_id = created["id"].as_str().unwrap().to_owned();
    let (owner_id, owner_secret) = server
        .create_client(&admin, "owner", &["ai:gateway:write"])
        .await;
    let (other_id, other_secret) = server
        .create_client(&admin, "other", &["ai:gateway:write"])
        .await;
    let owner = server.token(&owner_id, &owner_secret, None).await;
    let other = server.token(&other_id, &other_secret, None).await;
    let answer = server
        .post(
            &format!("{GW}/invocations"),
            Some(&owner),
            &json!({"promptId": prompt_id, "userInput": "hello"}),
        )
        .await
        .ok(200);
    let response_id = answer["responseId"].as_str().unwrap().to_owned();
    let feedback = format!("{GW}/invocations/{response_id}/feedback");

    let first = server
        .post(
            &feedback,
            Some(&owner),
            &json!({"score": 1, "comment": "private remark 4111"}),
        )
        .await
        .ok(201);
    assert_eq!(first["replaced"], false, "{first}");

    // Another writer may not touch it.
    let refused = server
        .post(&feedback, Some(&other), &json!({"score": 0}))
        .await
        .error(403, "not.authorized");
    assert!(
        refused["message"].as_str().unwrap().contains(&response_id),
        "{refused}"
    );
    let stored_score = |page: &Value| {
        page["entities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == response_id.as_str())
            .map(|e| e["feedback"]["score"].clone())
    };
    let page = server
        .get_query(TELEMETRY, &admin, &[("promptId", &prompt_id)])
        .await
        .ok(200);
    assert_eq!(stored_score(&page), Some(json!(1.0)), "{page}");

    // The owner's second post replaces the first and says so; so does an admin's.
    let second = server
        .post(&feedback, Some(&owner), &json!({"score": 0.25}))
        .await
        .ok(201);
    assert_eq!(second["replaced"], true, "{second}");
    let by_admin = server
        .post(&feedback, Some(&admin), &json!({"score": false}))
        .await
        .ok(201);
    assert_eq!(by_admin["replaced"], true, "{by_admin}");
    let page = server
        .get_query(TELEMETRY, &admin, &[("promptId", &prompt_id)])
        .await
        .ok(200);
    assert_eq!(stored_score(&page), Some(json!(0.0)), "{page}");

    // Each replacement is in the audit log: who, which invocation, the scores before and
    // after; a comment only by its length and hash.
    let entries = server
        .get_query(
            "/api/v2/ai/llm/gateway/audit-logs",
            &admin,
            &[("action", "FEEDBACK_REPLACED")],
        )
        .await
        .ok(200);
    let entries = entries["entities"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["actor"], owner_id.as_str());
    assert_eq!(entries[1]["actor"], server.admin_id.as_str());
    for entry in entries {
        assert_eq!(entry["promptId"], prompt_id.as_str(), "{entry}");
        assert_eq!(
            entry["details"]["responseId"],
            response_id.as_str(),
            "{entry}"
        );
        assert_eq!(
            entry["details"]["invocationClientId"],
            owner_id.as_str(),
            "{entry}"
        );
        assert!(
            !entry.to_string().contains("private remark"),
            "a comment's text never enters the append-only log: {entry}"
        );
    }
    assert_eq!(entries[0]["details"]["before"]["score"], 1.0);
    assert_eq!(entries[0]["details"]["before"]["comment"]["chars"], 19);
    assert_eq!(entries[0]["details"]["after"]["score"], 0.25);
    assert_eq!(entries[1]["details"]["after"]["score"], 0.0);
    // Clients cannot write an entry that passes for one.
    server
        .post(
            "/api/v2/ai/llm/gateway/audit-logs",
            Some(&admin),
            &json!({"action": "FEEDBACK_REPLACED", "details": {}}),
        )
        .await
        .error(400, "invalid.value");
}

/// Issue 17, item 16: with `[telemetry] durability = "ack-after-store"` an acknowledged
/// invocation's record is in the database when the answer arrives (read straight from the
/// database, not through the API, which would flush the queue first).
#[tokio::test]
async fn ack_after_store_answers_only_once_the_record_is_committed() {
    let server = Server::start_with(crate::harness::Options::with_config(
        "[telemetry]\ndurability = \"ack-after-store\"\n",
    ));
    let token = server.admin_token().await;
    let (created, _) = server
        .create_prompt(&token, &prompt_body("durable_records"))
        .await;
    let prompt_id = created["id"].as_str().unwrap().to_owned();
    let mut db = crate::harness::RawDb::open(&server).await;
    for stream in [false, true, false, true] {
        let resp = server
            .post(
                &format!("{GW}/invocations"),
                Some(&token),
                &json!({"promptId": prompt_id, "userInput": "hello", "options": {"stream": stream}}),
            )
            .await;
        assert_eq!(resp.status, 200, "{resp}");
        let response_id = if stream {
            // The `done` event, sent only after the commit, carries the responseId.
            let done = resp
                .text
                .split("event: done")
                .nth(1)
                .unwrap_or_else(|| panic!("no done event: {resp}"));
            let data = done.split("data: ").nth(1).unwrap().lines().next().unwrap();
            serde_json::from_str::<Value>(data).unwrap()["responseId"]
                .as_str()
                .unwrap()
                .to_owned()
        } else {
            resp.json()["responseId"].as_str().unwrap().to_owned()
        };
        let rows = db
            .fetch(
                "SELECT id FROM invocations WHERE id = ?",
                &[crate::harness::Arg::Text(response_id.clone())],
            )
            .await;
        assert_eq!(rows, vec![vec![json!(response_id)]], "stream {stream}");
    }
    db.close().await;
}
